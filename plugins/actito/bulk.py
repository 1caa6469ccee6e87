"""The bulk path: one zipped CSV per table, imported with ``POST .../import`` and polled until its report is in,
within the licence's daily import quota.

Actito allows 12 imports per table per day and refuses the 13th with a 429. The API notes know of no call that
lists a table's imports, so hub cannot ask how many are left today. :class:`ImportLedger` therefore counts, in
memory, every import hub started *or may have started* (a request that left without an answer counts), and a
refusal marks the table spent until the quota's day ends; after a restart the count starts at zero again and
Actito's own refusal is what stops hub, which the destination handles as "later", never as a dead letter.

:class:`Importer` runs one import: it builds nothing itself (rows come from the destination), posts the file,
polls ``GET .../import/{id}`` and reads the rejected lines from ``GET .../import/{id}/errors``. When polling
ends without a result (the import was accepted but its report never came), it remembers the import for those
messages, so their retry polls that import again instead of importing twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from hub.delivery.auth import TokenError
from hub.delivery.outcomes import Outcome
from hub_plugins.actito._errors import failure, json_body
from hub_plugins.actito.csvformat import zipped_csv

PARAMETERS = {"mode": "CREATE_UPDATE", "format": "SEMI_COLON_SEPARATED_VALUES", "charset": "UTF-8"}
QUOTA_CODE = "IMPORT_QUOTA_EXCEEDED"
#: Seconds after the quota's midnight before a deferred batch is due, so clocks that differ a little agree.
RESET_MARGIN = 120.0


class ImportLedger:
    """Imports started per table in the current quota day (in the licence's time zone), shared by all threads."""

    def __init__(self, per_day: int, zone: str, clock: Callable[[], datetime] | None = None) -> None:
        self.per_day = per_day
        self.zone = ZoneInfo(zone)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], int] = {}

    def day(self) -> str:
        return self.clock().astimezone(self.zone).date().isoformat()

    def remaining(self, table: str) -> int:
        with self._lock:
            return max(0, self.per_day - self._used.get((table, self.day()), 0))

    def reserve(self, *tables: str) -> bool:
        """Take one import of each table, all or none: False when any of them has none left today."""
        with self._lock:
            day = self.day()
            if any(self._used.get((table, day), 0) >= self.per_day for table in tables):
                return False
            for table in tables:
                self._used[(table, day)] = self._used.get((table, day), 0) + 1
            return True

    def release(self, table: str) -> None:
        """Give one back: the import request certainly never reached Actito."""
        with self._lock:
            key = (table, self.day())
            self._used[key] = max(0, self._used.get(key, 0) - 1)

    def exhaust(self, table: str) -> None:
        """Actito refused an import: none is left for ``table`` today, whatever hub counted."""
        with self._lock:
            self._used[(table, self.day())] = self.per_day

    def seconds_to_reset(self) -> float:
        """Seconds until the quota's next day starts, plus a small margin."""
        now = self.clock().astimezone(self.zone)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=self.zone)
        return (midnight - now).total_seconds() + RESET_MARGIN


@dataclass(frozen=True, slots=True)
class RowError:
    """A line Actito rejected, with its reason."""

    line: int
    code: str
    message: str
    reference: str | None = None


@dataclass(slots=True)
class ImportResult:
    """One import's result: ``failure`` applies to every row (the import as a whole did not work); otherwise
    ``errors`` holds the rejected rows by their index in the file (0 = the first data line)."""

    failure: Outcome | None = None
    errors: dict[int, RowError] = field(default_factory=dict)
    quota_refused: bool = False
    import_id: int | None = None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def csv_table(rows: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and text rows for ``rows``: the ``first`` columns, then every other key in order of appearance."""
    header = list(dict.fromkeys([*first, *(name for row in rows for name in row)]))
    return header, [[_cell(row.get(name)) for name in header] for row in rows]


class Importer:
    """Runs bulk imports through ``http`` (the destination's client: token, limits and timeouts included)."""

    def __init__(
        self,
        http: Callable[[], httpx.Client],
        entity: str,
        ledger: ImportLedger,
        *,
        poll_interval: float,
        poll_timeout: float,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self.entity = entity
        self.ledger = ledger
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self._in_doubt: dict[tuple[str, tuple[int, ...]], int] = {}
        self.started = 0

    def run(
        self,
        table: str,
        *,
        custom: bool,
        header: Sequence[str],
        rows: Iterable[Sequence[str]],
        key_column: str,
        messages: tuple[int, ...],
    ) -> ImportResult:
        """Import one table's rows (its quota unit already reserved by the caller) and return the result."""
        doubt = (table, messages)
        with self._lock:
            known = self._in_doubt.get(doubt)
        if known is not None:
            self.ledger.release(table)  # the earlier import is polled again: no new one is started
            return self._finish(doubt, self._poll(known))
        kind = "customTable" if custom else "table"
        data = zipped_csv(header, rows)
        parameters = json.dumps({**PARAMETERS, "headerKeyColumn": key_column})
        try:
            response = self._http().post(
                f"/v4/entity/{self.entity}/{kind}/{table}/import",
                files={"inputFile": (f"{table}.zip", data, "application/zip")},
                data={"parameters": parameters},
            )
        except (TokenError, httpx.TransportError) as exc:
            outcome = failure(exc)
            if outcome.status != "unknown":
                self.ledger.release(table)  # refused before it left: nothing was imported
            return ImportResult(failure=outcome)
        body = json_body(response)
        if response.status_code == 429 and body.get("code") == QUOTA_CODE:
            self.ledger.exhaust(table)
            return ImportResult(failure=Outcome.retryable(429, response.text[:4000]), quota_refused=True)
        if response.status_code >= 300:
            outcome = Outcome.from_response(response)
            if response.status_code in (401, 403, 429):
                self.ledger.release(table)  # refused at the gate: no import was started
            return ImportResult(failure=outcome)
        import_id = body.get("id")
        if not isinstance(import_id, int):
            return ImportResult(failure=Outcome.unknown(f"the import answered without an id: {response.text[:300]}"))
        self.started += 1
        with self._lock:
            self._in_doubt[doubt] = import_id
        return self._finish(doubt, self._poll(import_id))

    def _finish(self, doubt: tuple[str, tuple[int, ...]], result: ImportResult) -> ImportResult:
        if result.failure is None or result.failure.status != "unknown":
            with self._lock:
                self._in_doubt.pop(doubt, None)
        return result

    def _get(self, path: str) -> httpx.Response | Outcome | None:
        """A read: its response, a final outcome (credentials refused), or None (failed in transit: ask again)."""
        try:
            response = self._http().get(path)
        except (TokenError, httpx.TransportError) as exc:
            outcome = failure(exc)
            return outcome if outcome.status == "auth" else None
        if response.status_code in (401, 403):
            return Outcome.from_response(response)
        return response

    def _poll(self, import_id: int) -> ImportResult:
        base = f"/v4/entity/{self.entity}/import/{import_id}"
        deadline = self.clock() + self.poll_timeout
        while True:
            answer = self._get(base)
            if isinstance(answer, Outcome):
                return ImportResult(failure=answer, import_id=import_id)
            if answer is not None and answer.status_code == 200:
                status = json_body(answer).get("status")
                if status == "FINISHED":
                    errors = self._errors(base, deadline)
                    if isinstance(errors, Outcome):
                        return ImportResult(failure=errors, import_id=import_id)
                    return ImportResult(errors=errors, import_id=import_id)
                if status in ("ERROR", "FAILED", "CANCELLED"):
                    reason = f"import {import_id} ended {status}: {answer.text[:300]}"
                    return ImportResult(failure=Outcome.unknown(reason), import_id=import_id)
            elif answer is not None and answer.status_code == 404:
                return ImportResult(failure=Outcome.unknown(f"import {import_id} is gone"), import_id=import_id)
            if self.clock() >= deadline:
                reason = f"import {import_id} gave no result within {self.poll_timeout:g} s; it may still finish"
                return ImportResult(failure=Outcome.unknown(reason), import_id=import_id)
            self.sleep(self.poll_interval)

    def _errors(self, base: str, deadline: float) -> dict[int, RowError] | Outcome:
        while True:
            answer = self._get(base + "/errors")
            if isinstance(answer, Outcome):
                return answer
            if answer is not None and answer.status_code == 200:
                found: dict[int, RowError] = {}
                for error in json_body(answer).get("errors") or []:
                    line = error.get("line")
                    if isinstance(line, int) and line >= 2:
                        found[line - 2] = RowError(
                            line, str(error.get("code") or "REJECTED"), str(error.get("message") or ""),
                            error.get("reference"),
                        )  # fmt: skip
                return found
            if self.clock() >= deadline:
                return Outcome.unknown(f"the report of {base} could not be read in time")
            self.sleep(self.poll_interval)
