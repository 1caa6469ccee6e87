"""Record readers for one file, CSV, JSON Lines or ARTS POSLog XML, plain or gzip, streamed.

A reader yields plain dicts: CSV values as strings, JSONL values as parsed, a POSLog transaction as a receipt
(:mod:`hub_plugins.files.poslog`). Bad data *inside* a file (a line that is not JSON, a row with the wrong number
of columns, a malformed transaction) is yielded as an error record, never dropped and never raised, so one bad
line cannot stop a stream::

    {"_error": "line 17: invalid JSON: unexpected end of data at column 9", "_raw": "<the line>",
     "_file": "exports/orders.jsonl", "_line": 17}

A file that cannot be read at all (not gzip, wrong encoding, unreadable) raises :class:`hub.SourceError`
naming the file and what to do, since every record after that point would be wrong too. A POSLog file that
declares entities or an external DTD is refused *as data*: one error record for the whole file, nothing else.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from hub import SourceError
from hub_plugins.files.poslog import Receipt, read_poslog

Format = Literal["csv", "jsonl", "poslog"]
Record = dict[str, Any]

ERROR_KEY = "_error"
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xml": "poslog",
}
_CONFIGURED: dict[str, Format] = {"csv": "csv", "jsonl": "jsonl", "poslog": "poslog"}
_UTF8 = {"utf-8", "utf-8-sig"}


def detect_format(name: str, configured: str) -> Format | None:
    """The format of a file: as configured, else by extension once ``.gz`` is removed; None if unknown."""
    if configured != "auto":
        return _CONFIGURED.get(configured, "jsonl")
    stem = name.lower().removesuffix(".gz")
    return _EXTENSIONS.get(stem[stem.rfind(".") :]) if "." in stem else None


def default_delimiter(name: str) -> str:
    """Tab for ``.tsv`` files, comma otherwise; used when a stream sets no delimiter."""
    return "\t" if name.lower().removesuffix(".gz").endswith(".tsv") else ","


def error_record(message: str, raw: str, file: str, line: int) -> Record:
    """The record that stands for bad data at ``file:line``; the engine turns it into a reject."""
    return {ERROR_KEY: f"line {line}: {message}", "_raw": raw, "_file": file, "_line": line}


class _FileRecords(ABC):
    """Iterating opens the file, yields records and closes it. ``line`` is where the last record started."""

    def __init__(self, path: Path, relpath: str, encoding: str) -> None:
        self.path = path
        self.relpath = relpath
        self.encoding = encoding
        self.line = 0

    def __iter__(self) -> Generator[Record, None, None]:
        try:
            yield from self._records()
        except UnicodeDecodeError as exc:
            where = f"after line {self.line}" if self.line else "in the first lines"
            raise SourceError(
                f"{self.relpath}: the text {where} is not valid {self.encoding} ({exc.reason}); "
                "set encoding: for this stream (e.g. cp1252, latin-1, utf-16)"
            ) from exc
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise SourceError(f"{self.relpath}: not a readable gzip file ({exc}); replace or remove the file") from exc
        except OSError as exc:
            raise SourceError(f"{self.relpath}: cannot read the file: {exc.strerror or exc}") from exc

    @abstractmethod
    def _records(self) -> Iterable[Record]:
        """The records of the file, in order; errors other than bad data propagate to ``__iter__``."""

    @property
    def _gzip(self) -> bool:
        return self.path.name.lower().endswith(".gz")

    def _open_text(self) -> IO[str]:
        if self._gzip:
            return gzip.open(self.path, "rt", encoding=self.encoding, newline="")
        return open(self.path, encoding=self.encoding, newline="")  # closed by the caller's with


class CsvRecords(_FileRecords):
    """Rows of a CSV file as dicts keyed by the header (or ``columns``); ragged rows become error records.

    ``required`` names columns the header must have (the stream's key and updated_at): a file without them is
    a configuration mistake, reported as :class:`hub.SourceError` rather than as one reject per row.
    """

    def __init__(
        self,
        path: Path,
        relpath: str,
        *,
        encoding: str,
        delimiter: str,
        header: bool,
        columns: list[str] | None,
        required: Iterable[str] = (),
    ) -> None:
        super().__init__(path, relpath, encoding)
        self.delimiter = delimiter
        self.header = header
        self.columns = columns
        self.required = tuple(required)

    def _records(self) -> Iterable[Record]:
        with self._open_text() as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            names = self.columns
            if self.header:
                first = next((row for row in reader if row), None)
                if first is None:
                    return
                names = names or first
            assert names is not None  # settings require columns when there is no header
            missing = [name for name in self.required if name not in names]
            if missing:
                raise SourceError(
                    f"{self.relpath}: no column {', '.join(map(repr, missing))}; the columns are: {', '.join(names)}"
                )
            yield from self._rows(reader, names)

    def _rows(self, reader: Any, names: list[str]) -> Iterable[Record]:
        width, file = len(names), self.relpath
        done = reader.line_num  # physical lines consumed so far; a quoted field may span several
        while True:
            try:
                for row in reader:
                    self.line, done = done + 1, reader.line_num
                    if len(row) == width:
                        yield dict(zip(names, row, strict=True))
                    elif row:  # an empty list is a blank line, which holds no data
                        message = f"expected {width} columns, got {len(row)}"
                        yield error_record(message, self._dump(row), file, self.line)
            except csv.Error as exc:  # e.g. a field over the size limit; the reader goes on after it
                self.line, done = done + 1, reader.line_num
                yield error_record(f"unreadable CSV: {exc}", "", file, self.line)
                continue
            return

    def _dump(self, row: list[str]) -> str:
        """The row as CSV text again, with the file's delimiter: the closest thing to the line as written."""
        out = io.StringIO()
        csv.writer(out, delimiter=self.delimiter, lineterminator="").writerow(row)
        return out.getvalue()


class JsonlRecords(_FileRecords):
    """One JSON object per line; blank lines are skipped, anything else that is not an object is an error."""

    def _records(self) -> Iterable[Record]:
        if codecs.lookup(self.encoding).name in _UTF8:
            with gzip.open(self.path, "rb") if self._gzip else open(self.path, "rb") as handle:
                yield from self._lines(handle, lambda raw: raw.decode("utf-8", "replace"))
        else:  # orjson reads UTF-8 only: decode other encodings first
            with self._open_text() as text:
                yield from self._lines(text, str)

    def _lines(self, lines: Iterable[Any], show: Any) -> Iterable[Record]:
        loads, file, number = orjson.loads, self.relpath, 0
        for raw in lines:
            number += 1
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8 if isinstance(raw, bytes) else "\ufeff")
            try:
                value = loads(raw)
            except orjson.JSONDecodeError as exc:
                if not raw.strip():
                    continue
                self.line = number
                column = exc.colno if exc.lineno == 1 else len(raw.rstrip()) + 1  # past the line's end
                message = f"invalid JSON: {exc.msg} at column {column}"
                yield error_record(message, show(raw).rstrip("\r\n"), file, number)
                continue
            self.line = number
            if type(value) is dict:
                yield value
            else:
                message = f"expected a JSON object, got {type(value).__name__}"
                yield error_record(message, show(raw).rstrip("\r\n"), file, number)


class PoslogRecords(_FileRecords):
    """One receipt per sale or return transaction of an ARTS POSLog file; see :mod:`hub_plugins.files.poslog`.

    The XML declaration (or byte-order mark) gives the encoding; a stream's ``encoding`` overrides it only when
    it is not UTF-8, the default. A malformed transaction, damaged XML and a refused file are error records whose
    ``_raw`` is the XML as written (at most 64 KiB of it).
    """

    def _records(self) -> Iterable[Record]:
        override = None if codecs.lookup(self.encoding).name in _UTF8 else self.encoding
        with gzip.open(self.path, "rb") if self._gzip else open(self.path, "rb") as handle:
            for item in read_poslog(handle, encoding=override):
                self.line = item.line
                if isinstance(item, Receipt):
                    yield item.record
                else:
                    yield error_record(item.reason, item.raw, self.relpath, item.line)
