"""Rejects: bad input kept with its raw payload and every reason, so nothing is lost and everything is explainable."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub.db import bulk_upsert
from hub.models import Reject

_COLUMNS = (
    "run_id",
    "connector",
    "stream",
    "record_key",
    "stage",
    "errors",
    "payload",
    "fingerprint",
    "created_at",
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d+\b")


@dataclass(slots=True)
class RejectRow:
    stage: str  # read | map | resolve | load
    errors: list[str]
    payload: Any
    record_key: str | None = None


def _json_safe(payload: Any) -> Any:
    return orjson.loads(orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS))


def fingerprint(payload: Any) -> str:
    """A stable hash of a raw record: the same bad record seen again is one reject, not two."""
    data = orjson.dumps(payload, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(data).hexdigest()[:32]


def save_rejects(
    conn: sa.Connection,
    rejects: Iterable[RejectRow],
    *,
    run_id: int | None,
    connector: str,
    stream: str,
    now: datetime,
) -> int:
    """Store rejects of one batch; a record already rejected before is updated (new run, new reasons), not doubled."""
    rows: dict[str, tuple[Any, ...]] = {}
    for r in rejects:
        payload = _json_safe(r.payload)
        fp = fingerprint(payload)
        rows[fp] = (run_id, connector, stream, r.record_key, r.stage, r.errors, payload, fp, now)
    if rows:
        bulk_upsert(
            conn,
            Reject.__table__,  # type: ignore[attr-defined]
            list(rows.values()),
            _COLUMNS,
            conflict=("connector", "stream", "fingerprint"),
            update=("run_id", "record_key", "stage", "errors", "created_at"),
        )
    return len(rows)


def reason_of(error: str) -> str:
    """The shape of an error without its values, so rejects can be counted by reason."""
    return _QUOTED.sub("…", error)


def top_reasons(errors: Iterable[list[str]], n: int = 5) -> list[tuple[str, int]]:
    counter: Counter[str] = Counter()
    for errs in errors:
        for e in errs:
            counter[reason_of(e)] += 1
    return counter.most_common(n)
