"""The ``files`` source: CSV and JSON Lines exports (POS receipts, ERP dumps), plain or gzip, found by globs.

Bad data never stops a stream and is never dropped. A JSONL line that is not a JSON object, a CSV row with
the wrong number of columns, or an ``updated_at`` that is not a timestamp is yielded as an *error record* in
place of the record; the engine turns every record with an ``_error`` key into a reject::

    {"_error": "line 17: invalid JSON: unexpected end of data at column 9",
     "_raw": "<the line; a CSV row is written out again; a bad updated_at gives the record as JSON>",
     "_file": "exports/orders.jsonl",          # relative to the project directory
     "_line": 17}                              # 1-based, where the record starts

A file that cannot be read at all (not gzip, wrong encoding, a configured column missing) raises
:class:`hub.SourceError` naming the file; the batches before it stay committed and a rerun resumes there.

Each stream has one cursor, a small JSON object; every batch carries a complete one::

    {"files": {"exports/a.csv": {"size": 1234, "sha256": "<hex>"}},   # files read to the end
     "current": {"file": "exports/b.csv", "sha256": "<hex>", "records": 5000},   # b.csv is half read
     "updated_at": {...}}            # hub.cursors.IncrementalCursor state, when updated_at is set

A file whose size and content hash are in ``files`` is skipped; a new or changed file is read (from the
start, or after ``records`` records when it is ``current`` with the same hash). Files no longer matched are
dropped from ``files``, which keeps the cursor small; one that comes back is read again, harmlessly, as loads
are upserts. Every matched file is hashed on every read: a changed file is caught even when its size and
modification time are not, at the price of reading unchanged files once (fast, but not free for big dumps).

Exporters should write a file under a dot-name (``.orders.csv.tmp``, which ``*`` does not match) and rename it
when complete; a file read while half written is read again once it changes, and its cut-off last line is
an error record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.cursors import IncrementalCursor, record_digest
from hub_plugins.files.formats import (
    ERROR_KEY,
    CsvRecords,
    JsonlRecords,
    PoslogRecords,
    Record,
    default_delimiter,
    detect_format,
    error_record,
)
from hub_plugins.files.listing import MatchedFile, match_all, match_pattern, sha256_of
from hub_plugins.files.settings import FilesSettings, StreamSettings

DEFAULT_BATCH_SIZE = 5000
_FORMAT_NAMES = {
    "auto": "CSV, JSON Lines or POSLog XML files",
    "csv": "CSV files",
    "jsonl": "JSON Lines files",
    "poslog": "ARTS POSLog XML files",
}


class FilesSource(Source):
    """CSV and JSON Lines files matched by glob patterns, read incrementally by file and optionally by row.

    Files are read in name order and streamed, never loaded whole. A file already read (same size and SHA-256)
    is skipped, so a drop folder or a daily full export costs only what changed. With ``updated_at`` set, rows
    are filtered too (see :mod:`hub.cursors`): a re-exported file yields only the rows that changed.

    Bad data inside a file is yielded as an error record, ``{"_error", "_raw", "_file", "_line"}``, which the
    engine turns into a reject; see the module docstring for the cursor and error-record formats.
    """

    type = "files"
    roles = ("source",)
    Settings = FilesSettings
    description = "CSV and JSON Lines files (plain or gzip) matched by glob patterns"

    settings: FilesSettings

    def __init__(self, settings: FilesSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._streams = settings.stream_settings()

    def streams(self) -> dict[str, Stream]:
        return {
            name: Stream(
                name=name,
                key=options.key,
                cursor_field=options.updated_at,
                description=f"{_FORMAT_NAMES[options.format]} matching {', '.join(options.paths)}",
            )
            for name, options in self._streams.items()
        }

    def check(self) -> CheckResult:
        """How many files each pattern matches; which files cannot be read or lack a configured column."""
        root, lines, ok = self.context.project_dir, [], True
        for name, options in self._streams.items():
            for pattern in options.paths:
                count = len(match_pattern(root, pattern))
                if count:
                    lines.append(f"{name}: {pattern} matches {count} file{'' if count == 1 else 's'}")
                else:
                    ok = False
                    lines.append(f"{name}: {pattern} matches no files (looked in {root})")
            for file in match_all(root, options.paths):
                problem = self._probe(name, file, options)
                if problem:
                    ok = False
                    lines.append(f"{name}: {problem}")
        return CheckResult(ok=ok, message="\n".join(lines))

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        options = self._options(stream)
        saved_files, current, saved_incremental = _load_cursor(stream, cursor)
        files = match_all(self.context.project_dir, options.paths)
        present = {file.relpath for file in files}
        done = {name: entry for name, entry in saved_files.items() if name in present}
        incremental = self._incremental(options, saved_incremental)
        keep = _make_filter(options, incremental) if incremental else None
        batch_size = self._batch_size()

        def snapshot(position: dict[str, Any] | None) -> dict[str, Any]:
            state: dict[str, Any] = {"files": dict(done)}
            if position:
                state["current"] = position
            if incremental:
                state["updated_at"] = incremental.state()
            return state

        pending: list[Record] = []
        for file in files:
            try:
                size, digest = file.path.stat().st_size, sha256_of(file.path)
            except FileNotFoundError:
                continue  # moved away since it was listed: the same as gone before the listing
            entry = {"size": size, "sha256": digest}
            if done.get(file.relpath) == entry:
                continue
            position = _resume_position(current, file.relpath, digest)
            records = self._reader(stream, file, options)
            for record in islice(records, position, None):
                position += 1
                if keep is not None:
                    try:
                        if not keep(record):
                            continue
                    except ValueError as exc:
                        raw = orjson.dumps(record, default=str).decode()
                        record = error_record(f"{options.updated_at}: {exc}", raw, file.relpath, records.line)
                pending.append(record)
                if len(pending) >= batch_size:
                    where = {"file": file.relpath, "sha256": digest, "records": position}
                    yield Batch(records=pending, cursor=snapshot(where))
                    pending = []
            done[file.relpath] = entry

        final: dict[str, Any] = {"files": done}
        if incremental:
            final["updated_at"] = incremental.completed_state()
        if pending or final != cursor:
            yield Batch(records=pending, cursor=final)

    def _options(self, stream: str) -> StreamSettings:
        try:
            return self._streams[stream]
        except KeyError:
            raise SourceError(
                f"connector {self.name!r} has no stream {stream!r}; it has: {', '.join(self._streams)}"
            ) from None

    def _batch_size(self) -> int:
        size = int(self.context.extra.get("batch_size", DEFAULT_BATCH_SIZE))
        if size < 1:
            raise SourceError(f"connector {self.name!r}: batch_size must be at least 1, not {size}")
        return size

    def _incremental(self, options: StreamSettings, state: Any) -> IncrementalCursor | None:
        if not options.updated_at:
            return None
        return IncrementalCursor.from_state(
            state, lag=options.lag, kind=options.updated_at_as, timezone=ZoneInfo(self.context.timezone)
        )

    def _reader(
        self, stream: str, file: MatchedFile, options: StreamSettings
    ) -> CsvRecords | JsonlRecords | PoslogRecords:
        found = detect_format(file.relpath, options.format)
        if found is None:
            raise SourceError(
                f"{file.relpath}: cannot tell CSV from JSON Lines by the file's name; "
                f"set format: csv or format: jsonl for stream {stream!r}"
            )
        if found == "poslog":
            return PoslogRecords(file.path, file.relpath, options.encoding)
        if found == "jsonl":
            return JsonlRecords(file.path, file.relpath, options.encoding)
        return CsvRecords(
            file.path,
            file.relpath,
            encoding=options.encoding,
            delimiter=options.delimiter or default_delimiter(file.relpath),
            header=options.header,
            columns=options.columns,
            required=[column for column in (options.key, options.updated_at) if column],
        )

    def _probe(self, stream: str, file: MatchedFile, options: StreamSettings) -> str | None:
        """Read a file's first record: enough to catch a bad format, encoding, compression or header."""
        try:
            records = iter(self._reader(stream, file, options))
            try:
                first = next(records, None)
            finally:
                records.close()
        except SourceError as exc:
            return str(exc)
        if first is not None and ERROR_KEY in first:
            return f"{file.relpath}: {first[ERROR_KEY]}"
        return None


def _load_cursor(stream: str, cursor: Any) -> tuple[dict[str, Any], dict[str, Any] | None, Any]:
    """The saved files, the half-read file and the updated_at state; a cursor of another shape is an error."""
    if cursor is None:
        return {}, None, None
    if not isinstance(cursor, dict) or not isinstance(cursor.get("files", {}), dict):
        raise SourceError(f"stream {stream!r}: the saved cursor is not a files cursor; reset the stream's cursor")
    return cursor.get("files", {}), cursor.get("current"), cursor.get("updated_at")


def _resume_position(current: dict[str, Any] | None, relpath: str, sha256: str) -> int:
    """Records of ``relpath`` already committed: the cursor's count if it was half read with this content."""
    if current is not None and current.get("file") == relpath and current.get("sha256") == sha256:
        return int(current["records"])
    return 0


def _make_filter(options: StreamSettings, cursor: IncrementalCursor) -> Callable[[Record], bool]:
    """Whether a record is new since the cursor, observing it if so. Raises ValueError for a bad timestamp."""
    field, key_field = options.updated_at, options.key
    parse, accepts, observe = cursor.parse, cursor.accepts, cursor.observe

    def keep(record: Record) -> bool:
        value = parse(record.get(field))  # type: ignore[arg-type]  # field is set when a filter is made
        if value is None:  # no timestamp: it cannot be placed, so it is always read
            return True
        ident = record.get(key_field) if key_field else None
        key = record_digest(record) if ident is None else str(ident)
        if accepts(value, key):
            observe(value, key)
            return True
        return False

    return keep
