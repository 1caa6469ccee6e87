"""``SourceContract``: the behaviour every source connector owes hub, as a test base class for its plugin's tests.

A source plugin's test module subclasses it and points it at its connector type and its emulator::

    from hub.testing import SourceContract

    class TestShopifyContract(SourceContract):
        source_type = ShopifySource
        emulator = SHOPIFY_EMULATOR             # the hub.sandbox.Emulator the plugin returns from hub_emulators
        streams = ("customers", "orders")       # the streams to check (default: all of source.streams())
        page_size = 5                           # records one page holds under settings(); 3 pages and more are seeded
        no_deletions = {"orders": "orders are cancelled, never deleted"}   # streams whose reads report no deletions

        def settings(self, base_url): ...       # default: emulator.settings(base_url)
        def bad_credentials(self, base_url): ...  # settings whose credentials the emulator refuses (required)

It then checks, over real loopback HTTP: the settings schema; ``check()`` in plain words for good and bad
credentials; a full read across pages; a second read from the saved cursor returning only what changed; records
that share the cursor's last timestamp neither lost nor repeated; a record changed during a read arriving; reported
deletions read as tombstones once and, through the engine, deleted from the model; the API's own throttle answer
and a proxy's 429 honoured; 5xx retried; a sync killed after a committed batch resuming there (through a real
``Hub``, ``SyncEngine`` and SQLite); a malformed record becoming one reject with its raw payload while the rest of
its page loads; and all of it again under ``transient_faults``.

**The emulator control API.** Every source emulator serves these under ``/_emulator/`` (never faulted), so the
contract can change the remote data between and during reads. ``stream`` is the source's stream name, keys are
strings as :meth:`SourceContract.key_of` returns them, times ISO 8601 UTC (``2025-01-06T09:00:00Z``); errors are
``{"message": ...}`` with 404 (unknown stream or key) or 422 (bad body):

``POST /_emulator/records/{stream}`` ``{"records": [{...}], "updated_at": "<ISO>"}`` -> ``200 {"keys": [...]}``
    Each item is a partial record in the API's own field names (``{}`` is fine). An item with ``"_key"`` naming an
    existing record changes it (given fields replace the stored ones; none is a touch); any other item creates a
    record with realistic defaults and a fresh key. Every record of the request gets the change time
    ``updated_at`` (what the API reports in its cursor field), else the emulator's clock. Keys in body order.
``DELETE /_emulator/records/{stream}/{key}?at=<ISO>`` -> ``204``
    The record is gone; an API that reports deletions on its read path reports this one, at ``at``.
``POST /_emulator/malformed/{stream}/{key}`` -> ``204``
    From now on the record is served malformed, the way the real API could plausibly send bad data and its source
    detects (a change time that is no timestamp, a required field missing or mistyped), its key still in it.
``POST /_emulator/throttle`` ``{"count": 1, "retry_after": 1}`` -> ``204``
    The next ``count`` API requests get the API's own throttle answer, asking to wait ``retry_after`` seconds.

:class:`hub.sources.emulator.EmulatorControl` is the same interface in Python: an emulator implements it on its
state and mounts ``hub.sources.emulator.control_routes(control)`` to serve the routes above, which
:class:`HttpEmulatorControl` calls. A source without HTTP overrides :meth:`SourceContract.open_emulator` to give
its own control (the files source: a drop folder); the HTTP checks then skip, saying why.

**What a source yields.** Bad data as an error record, ``{"_error": "<why>", "_raw": "<the payload as received>"}``,
never an exception and never a drop. A deletion its API reports as a tombstone, ``{"_deleted": True, <key>: ...}``,
once; the engine applies it (:mod:`hub.engine.deletions`). Cursors that resume exactly after their batch: boundary
records are not yielded again.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, SecretStr, ValidationError

from hub.app import Hub
from hub.connectors import Batch, ConnectorContext, ConnectorSettings, Source
from hub.engine.run import SyncEngine
from hub.plugins import hookimpl, make_plugin_manager
from hub.sandbox import Emulator, FaultInjector, Faults, serve
from hub.schema import upgrade
from hub.sources.emulator import EmulatorControl
from hub.sources.http import RetryPolicy, use_policy

__all__ = [
    "Call",
    "EmulatorControl",
    "HttpEmulatorControl",
    "HttpTap",
    "Remote",
    "SourceContract",
    "read_all",
    "read_batches",
]

#: Where the contract's timeline starts: every time it gives the emulator is this plus whole minutes.
EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
#: Backoff for the contract's reads: waits an API asks for are kept, blind backoff is made short.
FAST_RETRIES = RetryPolicy(attempts=8, backoff=0.02, max_backoff=0.2)
_SECRET_NAME = re.compile(r"(password|secret|token|api_key)$")
_NOT_WORDS = ("Traceback", "object at 0x", "httpx.", "Error(", "Exception(")
CONNECTOR = "contract"


def at(minutes: float) -> str:
    """The contract's time ``minutes`` after :data:`EPOCH`, as the control API takes it."""
    return (EPOCH + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------- the control API


class HttpEmulatorControl:
    """:class:`EmulatorControl` over an emulator's ``/_emulator/`` routes."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10.0)

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        body: dict[str, Any] = {"records": [dict(r) for r in records]}
        if updated_at is not None:
            body["updated_at"] = updated_at
        keys = self._call("POST", f"/_emulator/records/{stream}", json=body).json()["keys"]
        assert len(keys) == len(records), (
            f"POST /_emulator/records/{stream} answered {len(keys)} keys, not {len(records)}"
        )
        return [str(key) for key in keys]

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        path = f"/_emulator/records/{stream}/{quote(key, safe='')}"
        self._call("DELETE", path, params={"at": at} if at else None)

    def malformed(self, stream: str, key: str) -> None:
        self._call("POST", f"/_emulator/malformed/{stream}/{quote(key, safe='')}")

    def throttle(self, count: int, retry_after: float) -> None:
        self._call("POST", "/_emulator/throttle", json={"count": count, "retry_after": retry_after})

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        if response.status_code == 404 and "detail" not in response.text and "message" not in response.text:
            raise AssertionError(f"the emulator does not serve {method} {path}: see hub.testing.source's control API")
        if response.is_error:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response


# ---------------------------------------------------------------------------------------------- the HTTP tap


@dataclass(frozen=True, slots=True)
class Call:
    """One API request as the emulator's side saw it (``time.monotonic()`` seconds)."""

    method: str
    path: str
    status: int
    started: float
    ended: float


class HttpTap:
    """ASGI middleware in front of an emulator: records the source's API requests and can answer the next ones.

    ``/_emulator/*`` passes untouched and unrecorded. :meth:`answer_next` queues statuses that the next API
    requests get instead of reaching the emulator, as a proxy or load balancer in front of the API would answer.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._script: deque[tuple[int, float | None]] = deque()

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def answer_next(self, *statuses: int, retry_after: float | None = None) -> None:
        """The next ``len(statuses)`` API requests are answered with these statuses (429s with ``Retry-After``)."""
        with self._lock:
            self._script.extend((status, retry_after if status == 429 else None) for status in statuses)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        status = 0
        if scripted is not None:
            status, retry_after = scripted
            while (await receive()).get("more_body"):
                pass
            body = json.dumps({"message": f"scripted {status}", "status": status}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if retry_after is not None:
                headers.append((b"retry-after", f"{retry_after:g}".encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:

            async def capture(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, capture)
        call = Call(scope["method"], scope["path"], status, started, time.monotonic())
        with self._lock:
            self._calls.append(call)


@dataclass(slots=True)
class Remote:
    """A running emulator as the contract uses it.

    ``target`` is what :meth:`SourceContract.settings` takes (a base URL, or a directory); ``tap`` and ``faults``
    are None for a source that makes no HTTP requests, whose HTTP checks then skip.
    """

    target: str
    control: EmulatorControl
    project_dir: Path
    tap: HttpTap | None = None
    faults: FaultInjector | None = None


class _Killed(Exception):
    """Raised by the contract right after a batch committed: the process dying at that moment."""


@dataclass(slots=True)
class _Read:
    batches: list[Batch] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch.records]

    @property
    def cursor(self) -> Any:
        return self.batches[-1].cursor if self.batches else None


def read_batches(source: Source, stream: str, cursor: Any = None) -> list[Batch]:
    """Every batch of one read of ``stream`` from ``cursor``, each cursor through JSON as the engine stores it
    (a cursor that does not survive that fails here, as it would in a sync)."""
    return [Batch(batch.records, json.loads(json.dumps(batch.cursor))) for batch in source.read(stream, cursor)]


def read_all(source: Source, stream: str, cursor: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """Every record of one read, and the cursor to start the next one from (``cursor`` when nothing came): what a
    plugin's own tests of its reads need."""
    read = _Read(read_batches(source, stream, cursor))
    return read.records, read.cursor if read.batches else cursor


# ---------------------------------------------------------------------------------------------- the contract


class SourceContract:
    """Subclass as ``TestXxxContract`` to run every check on a source type; see the module docstring."""

    source_type: ClassVar[type[Source]]
    emulator: ClassVar[Emulator | None] = None
    #: The streams to check; empty: every stream the source offers under :meth:`settings`.
    streams: ClassVar[Sequence[str]] = ()
    #: Records one page (or batch) holds under :meth:`settings`; the contract seeds more than three pages' worth.
    page_size: ClassVar[int] = 5
    #: Streams whose reads report no deletions, with why (``"*"``: every stream); their deletion check skips.
    no_deletions: ClassVar[Mapping[str, str]] = {}
    #: The faults of the "30% transient faults" check (no ``timeout``: a source's read timeout is its own).
    transient_faults: ClassVar[Faults] = Faults(error_rate=0.15, rate_429=0.10, drop_rate=0.05, retry_after=0, seed=8)
    timezone: ClassVar[str] = "Europe/Oslo"
    _stream_keys: dict[str, str | None]

    # -------------------------------------------------------------------------------------- overridable

    def settings(self, target: str) -> dict[str, Any]:
        """The connector settings that read the emulator at ``target`` (its base URL)."""
        if self.emulator is None:
            raise NotImplementedError(f"{type(self).__name__}: set emulator or override settings()")
        return self.emulator.settings(target)

    def bad_credentials(self, target: str) -> dict[str, Any]:
        """Settings the emulator refuses (a wrong token); without credentials: settings that cannot work."""
        raise NotImplementedError(f"{type(self).__name__}: override bad_credentials()")

    def key_of(self, stream: str, record: Mapping[str, Any]) -> str:
        """The key of a raw record (a tombstone included), as the control API names it."""
        key = self._stream_keys[stream]
        if key is None:
            raise AssertionError(f"stream {stream!r} has no key: set Stream.key or override key_of()")
        return str(record[key])

    def new_record(self, stream: str, n: int) -> dict[str, Any]:
        """The ``n``-th created record, partial, in the API's field names; the emulator fills in the rest."""
        return {}

    @contextmanager
    def open_emulator(self, tmp_path: Path) -> Iterator[Remote]:
        """Serve a fresh emulator on loopback behind a fault injector and an :class:`HttpTap`."""
        if self.emulator is None:
            raise NotImplementedError(f"{type(self).__name__}: set emulator or override open_emulator()")
        injector = FaultInjector(self.emulator.app())
        tap = HttpTap(injector)
        with serve(tap) as base_url:
            control = HttpEmulatorControl(base_url)
            try:
                yield Remote(base_url, control, tmp_path, tap, injector)
            finally:
                control.close()

    # -------------------------------------------------------------------------------------- fixtures and helpers

    @contextmanager
    def serving(self, tmp_path: Path) -> Iterator[Remote]:
        """The emulator as each check gets it, with fast blind backoff: to run one check by hand."""
        with use_policy(FAST_RETRIES), self.open_emulator(tmp_path) as remote:
            self._stream_keys = {}
            yield remote

    @pytest.fixture
    def contract_remote(self, tmp_path: Path) -> Iterator[Remote]:
        with self.serving(tmp_path) as remote:
            yield remote

    @contextmanager
    def _source(self, remote: Remote, settings: dict[str, Any] | None = None) -> Iterator[Source]:
        parsed = self.source_type.Settings.model_validate(
            self.settings(remote.target) if settings is None else settings
        )
        context = ConnectorContext(
            name=CONNECTOR, project_dir=remote.project_dir, timezone=self.timezone, extra={"batch_size": self.page_size}
        )
        source = self.source_type(parsed, context)
        try:
            self._stream_keys = {name: stream.key for name, stream in source.streams().items()}
            yield source
        finally:
            _close(source)

    def _streams(self, source: Source) -> list[str]:
        offered = source.streams()
        names = list(self.streams) or list(offered)
        missing = [name for name in names if name not in offered]
        assert not missing, f"streams {missing} are not offered; the source has: {', '.join(offered)}"
        return names

    def _read(self, source: Source, stream: str, cursor: Any = None) -> _Read:
        """Every batch of one read, each cursor through JSON as the engine stores it."""
        return _Read(read_batches(source, stream, cursor))

    def _keys(self, stream: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Keys of the good records (not error records, not tombstones), in order, repeats kept."""
        return [self.key_of(stream, r) for r in records if "_error" not in r and not r.get("_deleted")]

    def _seed(self, control: EmulatorControl, stream: str, count: int, *, shared_last: int = 1) -> list[str]:
        """``count`` records, minute ``i`` each, except the last ``shared_last``, which share the last minute."""
        keys: list[str] = []
        distinct = count - shared_last + 1
        for minute in range(distinct):
            size = shared_last if minute == distinct - 1 else 1
            items = [self.new_record(stream, len(keys) + i) for i in range(size)]
            keys += control.put(stream, items, updated_at=at(minute))
        return keys

    @property
    def _many(self) -> int:
        return 3 * self.page_size + 2

    def _http(self, remote: Remote) -> HttpTap:
        if remote.tap is None:
            pytest.skip(f"the {self.source_type.type} source makes no HTTP requests")
        return remote.tap

    # -------------------------------------------------------------------------------------- settings and check

    def test_the_settings_schema_is_valid(self, contract_remote: Remote) -> None:
        settings_type = self.source_type.Settings
        assert issubclass(settings_type, ConnectorSettings), "Settings must subclass hub.ConnectorSettings"
        schema = settings_type.model_json_schema()
        assert json.loads(json.dumps(schema))["type"] == "object"
        assert schema.get("additionalProperties") is False, "unknown settings keys must be refused"
        good = self.settings(contract_remote.target)
        settings_type.model_validate(good)
        with pytest.raises(ValidationError):
            settings_type.model_validate({**good, "no_such_setting": 1})
        for name, info in settings_type.model_fields.items():
            if _SECRET_NAME.search(name):
                assert "SecretStr" in repr(info.annotation), f"setting {name!r} holds a secret: make it SecretStr"

    def test_check_answers_in_plain_words_for_good_and_bad_credentials(self, contract_remote: Remote) -> None:
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                self._seed(contract_remote.control, stream, 1)
            good = source.check()
            good_secrets = _secrets(source.settings)
        assert good.ok, f"check() failed on the emulator: {good.message}"
        _assert_plain(good.message, good_secrets, "check() with good credentials")
        with self._source(contract_remote, self.bad_credentials(contract_remote.target)) as source:
            bad = source.check()
            bad_secrets = _secrets(source.settings)
        assert not bad.ok, f"check() accepted bad credentials: {bad.message}"
        _assert_plain(bad.message, good_secrets + bad_secrets, "check() with bad credentials")

    # -------------------------------------------------------------------------------------- reading

    def test_a_full_read_returns_every_record_across_pages_once(self, contract_remote: Remote) -> None:
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                created = self._seed(contract_remote.control, stream, self._many)
                read = self._read(source, stream)
                assert Counter(self._keys(stream, read.records)) == Counter(created), stream
                assert not [r for r in read.records if "_error" in r], f"{stream}: error records on clean data"
                sizes = [len(batch.records) for batch in read.batches]
                assert max(sizes) <= self.page_size, (
                    f"{stream}: batches of {sizes} records; page_size is {self.page_size}"
                )

    def test_a_second_read_from_the_saved_cursor_returns_only_what_changed(self, contract_remote: Remote) -> None:
        control = contract_remote.control
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                created = self._seed(control, stream, self._many)
                cursor = self._read(source, stream).cursor
                changed = control.put(stream, [{"_key": created[1]}, {"_key": created[-2]}], updated_at=at(600))
                changed += control.put(stream, [self.new_record(stream, len(created))], updated_at=at(601))
                second = self._read(source, stream, cursor)
                got = self._keys(stream, second.records)
                assert Counter(got) == Counter(changed), f"{stream}: changed {changed}, the next read returned {got}"
                third = self._read(source, stream, second.cursor or cursor)
                assert self._keys(stream, third.records) == [], (
                    f"{stream}: a read with nothing changed returned records"
                )

    def test_records_sharing_the_cursors_last_timestamp_are_neither_lost_nor_repeated(
        self, contract_remote: Remote
    ) -> None:
        control = contract_remote.control
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                created = self._seed(control, stream, self._many, shared_last=3)
                last = at(self._many - 3)
                cursor = self._read(source, stream).cursor
                late = control.put(stream, [self.new_record(stream, self._many + i) for i in range(2)], updated_at=last)
                second = self._read(source, stream, cursor)
                got = self._keys(stream, second.records)
                assert Counter(got) == Counter(late), (
                    f"{stream}: {created[-3:]} were read at {last}, then {late} were added at {last}; "
                    f"the next read returned {got}"
                )
                third = self._read(source, stream, second.cursor or cursor)
                assert self._keys(stream, third.records) == [], stream

    def test_a_record_changed_during_a_read_arrives(self, contract_remote: Remote) -> None:
        control = contract_remote.control
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                created = self._seed(control, stream, self._many)
                batches = source.read(stream, None)
                before: list[str] = []
                for first in batches:  # up to the first batch with records
                    before = self._keys(stream, first.records)
                    if before:
                        break
                assert before, f"{stream}: the read returned no records"
                control.put(stream, [{"_key": before[0]}], updated_at=at(600))
                rest = [Batch(b.records, json.loads(json.dumps(b.cursor))) for b in batches]
                final = rest[-1].cursor if rest else json.loads(json.dumps(first.cursor))
                after = [r for b in rest for r in b.records] + self._read(source, stream, final).records
                assert before[0] in self._keys(stream, after), f"{stream}: {before[0]}, changed mid-read, never came"
                assert set(created) <= set(before) | set(self._keys(stream, after)), f"{stream}: records lost"

    def test_deletions_the_api_reports_are_read_as_tombstones(self, contract_remote: Remote) -> None:
        control = contract_remote.control
        with self._source(contract_remote) as source:
            streams = self._streams(source)
            reporting = [s for s in streams if s not in self.no_deletions and "*" not in self.no_deletions]
            if not reporting:
                everywhere = self.no_deletions.get("*")
                why = everywhere or "; ".join(f"{s}: {self.no_deletions[s]}" for s in streams)
                pytest.skip(f"the {self.source_type.type} source reads no deletions: {why}")
            created: dict[str, list[str]] = {}
            for stream in reporting:
                created[stream] = self._seed(control, stream, self._many)
                cursor = self._read(source, stream).cursor
                control.delete(stream, created[stream][2], at=at(600))
                second = self._read(source, stream, cursor)
                tombstones = [self.key_of(stream, r) for r in second.records if r.get("_deleted")]
                assert tombstones == [created[stream][2]], f"{stream}: expected one tombstone for {created[stream][2]}"
                third = self._read(source, stream, second.cursor or cursor)
                assert not [r for r in third.records if r.get("_deleted")], f"{stream}: the tombstone came twice"
        self._deletions_reach_the_model(contract_remote, created)

    def _deletions_reach_the_model(self, remote: Remote, created: Mapping[str, list[str]]) -> None:
        """Through the engine: a record deleted remotely is deleted from the model (its generic mapping's event row)
        by the next sync, once; the tombstone of a record the hub never loaded is ignored, not rejected."""
        with self._hub(remote) as (hub, _):
            for stream, keys in created.items():
                first = SyncEngine(hub).sync_stream(CONNECTOR, stream)
                assert first.status == "succeeded", first.error
                assert (first.rejected, first.deleted) == (0, 0), (
                    f"{stream}: a first sync after {keys[2]} was deleted rejected {first.rejected} and deleted "
                    f"{first.deleted} records; a tombstone for a record never loaded is ignored"
                )
                held = _event_keys(hub, stream)
                victim = keys[3]
                assert victim in held and keys[2] not in held, f"{stream}: the first sync did not load {victim} alone"
                remote.control.delete(stream, victim, at=at(700))
                second = SyncEngine(hub).sync_stream(CONNECTOR, stream)
                assert second.status == "succeeded", second.error
                assert second.deleted == 1, f"{stream}: the sync after {victim} was deleted deleted {second.deleted}"
                assert _event_keys(hub, stream) == held - {victim}, f"{stream}: {victim} is still in the model"
                third = SyncEngine(hub).sync_stream(CONNECTOR, stream)
                assert third.status == "succeeded", third.error
                assert third.deleted == 0 and _event_keys(hub, stream) == held - {victim}, stream

    # -------------------------------------------------------------------------------------- HTTP failures

    def test_the_apis_own_throttle_answer_is_honoured(self, contract_remote: Remote) -> None:
        tap = self._http(contract_remote)
        with self._source(contract_remote) as source:
            stream = self._streams(source)[0]
            created = self._seed(contract_remote.control, stream, self._many)
            contract_remote.control.throttle(1, 1)
            read = self._read(source, stream)
        assert Counter(self._keys(stream, read.records)) == Counter(created)
        _assert_waited(tap.calls, 1.0, "after the API's throttle answer")

    def test_a_429_with_retry_after_is_honoured(self, contract_remote: Remote) -> None:
        tap = self._http(contract_remote)
        with self._source(contract_remote) as source:
            stream = self._streams(source)[0]
            created = self._seed(contract_remote.control, stream, self._many)
            tap.answer_next(429, retry_after=1)
            read = self._read(source, stream)
        assert Counter(self._keys(stream, read.records)) == Counter(created)
        _assert_waited(tap.calls, 1.0, "after a 429 with Retry-After: 1")

    def test_a_5xx_is_retried(self, contract_remote: Remote) -> None:
        tap = self._http(contract_remote)
        with self._source(contract_remote) as source:
            stream = self._streams(source)[0]
            created = self._seed(contract_remote.control, stream, self._many)
            tap.answer_next(503, 500)
            read = self._read(source, stream)
        assert Counter(self._keys(stream, read.records)) == Counter(created)
        assert [c.status for c in tap.calls[:2]] == [503, 500]

    # -------------------------------------------------------------------------------------- through the engine

    def test_a_sync_killed_mid_read_resumes_from_the_last_committed_batch(self, contract_remote: Remote) -> None:
        with self._hub(contract_remote) as (hub, streams):
            for stream in streams:
                created = self._seed(contract_remote.control, stream, self._many)
                killed = SyncEngine(hub, progress=_kill_after_batches(2)).sync_stream(CONNECTOR, stream)
                assert killed.status == "failed" and "_Killed" in (killed.error or ""), (
                    f"{stream}: the read made fewer than 3 batches of at most page_size={self.page_size} records"
                    if killed.status == "succeeded"
                    else f"{stream}: {killed.error}"
                )
                assert _events(hub, stream) == killed.read, f"{stream}: the committed batches are not all loaded"
                resumed = SyncEngine(hub).sync_stream(CONNECTOR, stream)
                assert resumed.status == "succeeded", resumed.error
                assert _events(hub, stream) == len(created), f"{stream}: records lost or doubled across the kill"
                assert killed.read + resumed.read == len(created), (
                    f"{stream}: {killed.read} read before the kill, {resumed.read} after: the resume re-read "
                    "committed records"
                    if killed.read + resumed.read > len(created)
                    else f"{stream}: the resume skipped records"
                )

    def test_a_malformed_record_is_a_reject_with_its_raw_payload_and_the_rest_loads(
        self, contract_remote: Remote
    ) -> None:
        control = contract_remote.control
        bad: dict[str, str] = {}
        with self._source(contract_remote) as source:
            for stream in self._streams(source):
                created = self._seed(control, stream, self._many)
                bad[stream] = created[self.page_size + 1]
                control.malformed(stream, bad[stream])
                read = self._read(source, stream)
                errors = [r for r in read.records if "_error" in r]
                assert len(errors) == 1, f"{stream}: expected one error record for {bad[stream]}, got {len(errors)}"
                assert bad[stream] in str(errors[0].get("_raw")), f"{stream}: the error record's _raw lacks its key"
                assert Counter(self._keys(stream, read.records)) == Counter(k for k in created if k != bad[stream])
        with self._hub(contract_remote) as (hub, streams):
            for stream in streams:
                result = SyncEngine(hub).sync_stream(CONNECTOR, stream)
                assert result.status == "succeeded", result.error
                assert (result.rejected, _events(hub, stream)) == (1, self._many - 1), stream
                payloads = _reject_payloads(hub, stream)
                assert len(payloads) == 1 and bad[stream] in payloads[0], f"{stream}: the reject lacks the raw payload"

    def test_a_sync_under_transient_faults_loads_every_record_once(self, contract_remote: Remote) -> None:
        self._http(contract_remote)
        injector = contract_remote.faults
        assert injector is not None
        control = contract_remote.control
        with self._hub(contract_remote) as (hub, streams):
            created = {stream: self._seed(control, stream, self._many) for stream in streams}
            injector.faults = self.transient_faults
            first = SyncEngine(hub).sync([CONNECTOR])
            assert first.ok, [s.error for s in first.streams if s.error]
            for stream in streams:
                assert _events(hub, stream) == len(created[stream]), stream
                changed = control.put(stream, [{"_key": created[stream][0]}], updated_at=at(600))
                changed += control.put(stream, [self.new_record(stream, self._many)], updated_at=at(600))
                created[stream].append(changed[-1])
            second = SyncEngine(hub).sync([CONNECTOR])
            assert second.ok, [s.error for s in second.streams if s.error]
            read = {s.stream: s.read for s in second.streams}
            for stream in streams:
                assert _events(hub, stream) == len(created[stream]), stream
                assert read[stream] == 2, (
                    f"{stream}: the incremental sync read {read[stream]} records, not the 2 changed"
                )
        stats = injector.stats
        assert sum(stats[kind] for kind in ("error", "rate_429", "drop")) > 0, f"no fault was injected: {stats}"

    # -------------------------------------------------------------------------------------- the hub around it

    @contextmanager
    def _hub(self, remote: Remote) -> Iterator[tuple[Hub, list[str]]]:
        """A Hub on a temp project: this source as connector ``contract``, each stream mapped to ``event`` rows."""
        with self._source(remote) as probe:
            checked = self._streams(probe)
            every = list(probe.streams())
        project = remote.project_dir / "contract-project"
        (project / "mappings").mkdir(parents=True, exist_ok=True)
        for stream in every:
            (project / "mappings" / f"{stream}.yaml").write_text(_mapping(stream), encoding="utf-8")
        config = {
            "database": {"url": f"sqlite:///{project / 'hub.db'}"},
            "project_dir": str(project),
            "timezone": self.timezone,
            "batch_size": self.page_size,
            "connectors": {
                CONNECTOR: {
                    "plugin": self.source_type.type,
                    "mapping": {stream: f"mappings/{stream}.yaml" for stream in every},
                    "settings": self.settings(remote.target),
                }
            },
        }
        (project / "hub.yaml").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
        pm = make_plugin_manager(entrypoints=False, plugins=[_KeyedPlugin(self._keyed_type())])
        hub = Hub.load(project / "hub.yaml", pm=pm)
        try:
            upgrade(hub.engine)
            yield hub, checked
        finally:
            if CONNECTOR in hub._connectors:
                _close(hub._connectors[CONNECTOR])
            hub.close()

    def _keyed_type(self) -> type[Source]:
        """The source type, its records marked with their stream and key (``_contract_key``, ``stream:key``) for the
        generic mapping: event rows are unique by (source, external id), and two streams may use the same keys."""
        contract = self

        class Keyed(self.source_type):  # type: ignore[name-defined,misc]
            def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
                contract._stream_keys = {name: s.key for name, s in self.streams().items()}
                for batch in super().read(stream, cursor):
                    for record in batch.records:
                        if "_error" not in record:
                            record["_contract_key"] = f"{stream}:{contract.key_of(stream, record)}"
                    yield batch

        Keyed.__name__ = Keyed.__qualname__ = self.source_type.__name__
        return Keyed


class _KeyedPlugin:
    """Registers one connector type: the source under test, as the contract's Hub sees it."""

    def __init__(self, source_type: type[Source]) -> None:
        self.source_type = source_type

    @hookimpl
    def hub_connector_types(self) -> list[type[Source]]:
        return [self.source_type]


def _mapping(stream: str) -> str:
    return (
        f"description: every raw record of stream {stream} as one event, keyed by stream and the source's key\n"
        'key: "{_contract_key}"\n'
        "entities:\n"
        "  - entity: event\n"
        "    fields:\n"
        "      external_id: {path: _contract_key, required: true}\n"
        f'      type: {{value: "contract:{stream}"}}\n'
        '      at: {value: "2025-01-06T09:00:00Z", type: datetime}\n'
    )


def _kill_after_batches(count: int) -> Any:
    batches = itertools.count(1)

    def progress(connector: str, stream: str, read: int) -> None:
        if read and next(batches) >= count:
            raise _Killed(f"killed after {count} committed batches")

    return progress


def _events(hub: Hub, stream: str) -> int:
    with hub.engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM event WHERE source = :c AND type = :t")
        return int(conn.execute(query, {"c": CONNECTOR, "t": f"contract:{stream}"}).scalar_one())


def _event_keys(hub: Hub, stream: str) -> set[str]:
    """The source's keys of the stream's event rows (their external ids less the ``stream:`` prefix)."""
    with hub.engine.connect() as conn:
        query = sa.text("SELECT external_id FROM event WHERE source = :c AND type = :t")
        rows = conn.execute(query, {"c": CONNECTOR, "t": f"contract:{stream}"}).scalars()
        return {str(key).removeprefix(f"{stream}:") for key in rows}


def _reject_payloads(hub: Hub, stream: str) -> list[str]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT payload FROM reject WHERE connector = :c AND stream = :s"), {"c": CONNECTOR, "s": stream}
        )
        return [row[0] if isinstance(row[0], str) else json.dumps(row[0]) for row in rows]


def _assert_waited(calls: list[Call], seconds: float, what: str) -> None:
    assert len(calls) >= 2, f"expected a retry {what}, but the source made {len(calls)} request(s)"
    gap = calls[1].started - calls[0].ended
    assert gap >= seconds - 0.05, f"the source retried {gap:.2f} s {what}, not {seconds:g} s"


def _assert_plain(message: str, secrets: list[str], what: str) -> None:
    assert isinstance(message, str) and len(message.split()) >= 3, f"{what}: {message!r} is not in plain words"
    for marker in _NOT_WORDS:
        assert marker not in message, f"{what}: {message!r} reads like a traceback, not plain words"
    for secret in secrets:
        assert secret not in message, f"{what}: the message holds a secret from the settings"


def _secrets(value: Any) -> list[str]:
    """Every SecretStr value in settings (nested models, dicts, lists)."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()] if value.get_secret_value() else []
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secrets(getattr(value, name))]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secrets(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _secrets(v)]
    return []


def _close(source: Any) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()
