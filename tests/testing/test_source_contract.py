"""``SourceContract`` on a toy API, "ledger": a faithful source passes every check; each broken one fails its check.

The toy is also the worked example for source authors: the emulator serves the control API with
``hub.sources.emulator.control_routes``, and the source reads through ``hub.sources.http.SourceHttp`` with a
cursor of the last change time and the keys seen at it.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import Batch, CheckResult, ConnectorContext, ConnectorSettings, Source, SourceError, Stream
from hub.sandbox import Emulator
from hub.sources.emulator import control_routes
from hub.sources.http import RetryPolicy, SourceHttp, describe
from hub.testing import SourceContract

TOKEN = "ledger-token"
STREAMS = ("customers", "orders")

# -- the emulator -----------------------------------------------------------------------------------------


class LedgerState:
    """The ledger's rows, in memory, and the control API on them (``hub.sources.emulator.EmulatorControl``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {stream: {} for stream in STREAMS}
        self.malformed_keys: set[tuple[str, str]] = set()
        self.throttled = 0
        self.retry_after = 1.0
        self._ids = itertools.count(1)
        self.lock = threading.Lock()

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        table, stamp, keys = self.rows[stream], updated_at or _now(), []
        with self.lock:
            for item in records:
                if "_key" in item:
                    key, row = str(item["_key"]), table[str(item["_key"])]
                else:
                    key = str(self.next_id(stream))
                    row = table[key] = {"id": key, "name": f"{stream} {key}", "deleted": False}
                row.update({k: v for k, v in item.items() if k != "_key"}, updated_at=stamp)
                keys.append(key)
        return keys

    def next_id(self, stream: str) -> int:
        return next(self._ids)

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        with self.lock:
            self.rows[stream][key].update(deleted=True, updated_at=at or _now())

    def malformed(self, stream: str, key: str) -> None:
        self.rows[stream][key]  # KeyError (404) for an unknown record
        self.malformed_keys.add((stream, key))

    def throttle(self, count: int, retry_after: float) -> None:
        self.throttled, self.retry_after = count, retry_after

    def page(self, stream: str, since: str | None, after: str | None, limit: int) -> tuple[list[dict[str, Any]], Any]:
        """Rows changed at or after ``since``, in (updated_at, id) order, after the keyset token ``after``."""
        with self.lock:
            rows = sorted(self.rows[stream].values(), key=lambda r: (r["updated_at"], int(r["id"])))
            rows = [r for r in rows if since is None or r["updated_at"] >= since]
            if after:
                stamp, ident = after.split("|")
                rows = [r for r in rows if (r["updated_at"], int(r["id"])) > (stamp, int(ident))]
            chosen = [dict(r) for r in rows[:limit]]
        token = f"{chosen[-1]['updated_at']}|{chosen[-1]['id']}" if len(rows) > limit else None
        served = []
        for row in chosen:
            if row.pop("deleted"):
                served.append({"id": row["id"], "deleted": True, "updated_at": row["updated_at"]})
            elif (stream, row["id"]) in self.malformed_keys:
                served.append({**row, "updated_at": "last tuesday"})
            else:
                served.append(row)
        return served, token


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NumberedPerStream(LedgerState):
    """Each stream numbers its rows from 1, as many APIs do: customer 7 and order 7 both exist."""

    def __init__(self) -> None:
        super().__init__()
        self._per_stream = {stream: itertools.count(1) for stream in STREAMS}

    def next_id(self, stream: str) -> int:
        return next(self._per_stream[stream])


def ledger_app(state: LedgerState | None = None) -> Starlette:
    state = state or LedgerState()

    async def listing(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if state.throttled:
            state.throttled -= 1
            headers = {"Retry-After": f"{state.retry_after:g}"}
            return JSONResponse({"error": "rate_limited"}, status_code=429, headers=headers)
        stream = request.path_params["stream"]
        if stream == "ping":
            return JSONResponse({"ok": True})
        if stream not in state.rows:
            return JSONResponse({"error": "not_found"}, status_code=404)
        query = request.query_params
        rows, token = state.page(stream, query.get("updated_since"), query.get("after"), int(query.get("limit", 100)))
        return JSONResponse({"data": rows, "next": token})

    app = Starlette(routes=[Route("/v1/{stream}", listing), *control_routes(state)])
    app.state.ledger = state
    return app


LEDGER = Emulator(
    name="ledger",
    connector_type="ledger",
    app=ledger_app,
    settings=lambda base_url: {"base_url": base_url, "token": TOKEN},
)
LEDGER_NUMBERED_PER_STREAM = Emulator(
    name="ledger",
    connector_type="ledger",
    app=lambda: ledger_app(NumberedPerStream()),
    settings=LEDGER.settings,
)

# -- the source -------------------------------------------------------------------------------------------


class LedgerSettings(ConnectorSettings):
    base_url: str = Field(description="the ledger's address")
    token: SecretStr = Field(description="API token")
    page_size: int = Field(100, ge=1, le=100, description="rows per request")


class LedgerSource(Source):
    """Customers and orders of the ledger, read by change time with the keys at the last one in the cursor."""

    type = "ledger"
    Settings = LedgerSettings
    settings: LedgerSettings
    policy: RetryPolicy | None = None

    def __init__(self, settings: LedgerSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        headers = {"Authorization": f"Bearer {settings.token.get_secret_value()}"}
        self.http = SourceHttp(settings.base_url, name=context.name, headers=headers, policy=self.policy)

    def streams(self) -> dict[str, Stream]:
        return {name: Stream(name, key="id", cursor_field="updated_at") for name in STREAMS}

    def check(self) -> CheckResult:
        try:
            response = self.http.get("/v1/ping")
        except SourceError as exc:
            return CheckResult(False, str(exc))
        if response.status_code == 401:
            return CheckResult(False, "the ledger refused the token (401): check token in the settings")
        if response.is_error:
            return CheckResult(False, f"the ledger answered {describe(response)}")
        return CheckResult(True, f"the ledger at {self.settings.base_url} accepts the token")

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        since, seen = (cursor["since"], set(cursor["keys"])) if cursor else (None, set())
        last, keys, after = since, set(seen), None
        while True:
            params = {"limit": self.settings.page_size, "updated_since": since, "after": after}
            response = self.http.get(f"/v1/{stream}", params={k: v for k, v in params.items() if v is not None})
            if response.is_error:
                raise SourceError(f"{self.name}: {describe(response)}")
            body = response.json()
            records = []
            for row in body["data"]:
                stamp, key = row.get("updated_at"), str(row["id"])
                if not _is_time(stamp):
                    records.append(self.malformed(row))
                    continue
                if self.skip(stamp, key, since, seen):
                    continue
                if stamp != last:
                    last, keys = stamp, set()
                keys.add(key)
                records.append({**row, "_deleted": True} if row.get("deleted") else row)
            yield Batch(records, {"since": last, "keys": sorted(keys)})
            after = body["next"]
            if after is None:
                return

    def skip(self, stamp: str, key: str, since: str | None, seen: set[str]) -> bool:
        """Whether a row was read before: at the cursor's time with a key the cursor holds."""
        return stamp == since and key in seen

    def malformed(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"_error": f"updated_at {row.get('updated_at')!r} is not a timestamp", "_raw": json.dumps(row)}

    def close(self) -> None:
        self.http.close()


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


class TestLedgerContract(SourceContract):
    source_type = LedgerSource
    emulator = LEDGER
    streams = STREAMS
    page_size = 5

    def settings(self, target: str) -> dict[str, Any]:
        return {**LEDGER.settings(target), "page_size": self.page_size}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "token": "stolen-or-stale"}


class TestLedgerNumberedPerStreamContract(TestLedgerContract):
    """Two streams with the same keys: the contract's own bookkeeping keeps them apart."""

    emulator = LEDGER_NUMBERED_PER_STREAM


# -- broken sources fail the check that names their fault ------------------------------------------------


def run_check(contract: SourceContract, check: str, tmp_path: Path) -> None:
    with contract.serving(tmp_path) as remote:
        getattr(contract, check)(remote)


class LosesBoundary(LedgerSource):
    def skip(self, stamp: str, key: str, since: str | None, seen: set[str]) -> bool:
        return stamp == since  # "changed after", strictly: late rows at the cursor's time are lost


class RaisesOnBadData(LedgerSource):
    def malformed(self, row: dict[str, Any]) -> dict[str, Any]:
        raise SourceError(f"bad row {row['id']}")


class NeverRetries(LedgerSource):
    policy = RetryPolicy(attempts=1)


class IgnoresCursor(LedgerSource):
    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        return super().read(stream, None)


class AcceptsAnyone(LedgerSource):
    def check(self) -> CheckResult:
        return CheckResult(True, "looks fine to me")


class IgnoresRetryAfter(LedgerSource):
    def __init__(self, settings: LedgerSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http.pause = lambda seconds: None  # type: ignore[method-assign]


def contract_for(source_type: type[LedgerSource]) -> SourceContract:
    contract = TestLedgerContract()
    contract.source_type = source_type  # type: ignore[misc]
    return contract


@pytest.mark.parametrize(
    ("source_type", "check", "error"),
    [
        (
            LosesBoundary,
            "test_records_sharing_the_cursors_last_timestamp_are_neither_lost_nor_repeated",
            AssertionError,
        ),
        (RaisesOnBadData, "test_a_malformed_record_is_a_reject_with_its_raw_payload_and_the_rest_loads", SourceError),
        (NeverRetries, "test_a_5xx_is_retried", SourceError),
        (IgnoresCursor, "test_a_second_read_from_the_saved_cursor_returns_only_what_changed", AssertionError),
        (IgnoresCursor, "test_a_sync_killed_mid_read_resumes_from_the_last_committed_batch", AssertionError),
        (AcceptsAnyone, "test_check_answers_in_plain_words_for_good_and_bad_credentials", AssertionError),
        (IgnoresRetryAfter, "test_a_429_with_retry_after_is_honoured", AssertionError),
        (IgnoresRetryAfter, "test_the_apis_own_throttle_answer_is_honoured", AssertionError),
    ],
)
def test_a_broken_source_fails_the_check_of_its_fault(tmp_path, source_type, check, error):
    with pytest.raises(error):
        run_check(contract_for(source_type), check, tmp_path)


def test_a_source_that_reports_no_deletions_is_skipped_with_its_reason(tmp_path):
    contract = TestLedgerContract()
    contract.no_deletions = {"customers": "deleted customers vanish", "orders": "orders are never deleted"}  # type: ignore[misc]

    with pytest.raises(pytest.skip.Exception, match="deleted customers vanish; orders: orders are never deleted"):
        run_check(contract, "test_deletions_the_api_reports_are_read_as_tombstones", tmp_path)
