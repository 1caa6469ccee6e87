"""ARTS/NRF POSLog XML: the transactions of a file, streamed and parsed safely, one receipt record each.

**Safety.** Files are read by the standard library's expat parser with the same refusals as defusedxml, set here
directly because the reader also needs expat's byte offsets (below). A document type declaration that names an
external DTD, or whose internal subset declares any entity, refuses the *whole file* at that declaration, before
any entity is used: nothing is expanded (no "billion laughs"), nothing is fetched or opened (no external
entities), and nothing from the file is loaded, since a DTD comes before the first transaction. Parameter
entities are never read, and a reference to an undeclared entity is an error. A file is never parsed into one
tree: only the transaction being read is held, its raw bytes (at most :data:`MAX_TRANSACTION_BYTES`, as is any
single piece of markup) and a small element tree, both dropped at its end tag, so memory stays flat however large
the file.

**Damage.** A transaction that is well-formed XML but not a readable receipt (no identity, a quantity that is
not a number, a sale line without an item) is a :class:`Rejected` with its raw XML and the reason; the rest of
the file loads. XML that is *not* well-formed (an unescaped ``&`` in a description, a broken tag) stops a normal
parser for good; here the damaged transaction is rejected with its raw bytes, and reading resumes at the next
``<Transaction`` start tag with a fresh parser, so one bad byte costs one receipt, not the rest of the file.

**Records**: one per sale or return, as :mod:`hub_plugins.files.poslog_receipts` describes.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from hub_plugins.files.poslog_receipts import MalformedTransaction, label, receipt_record

CHUNK_SIZE = 64 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64  # elements nested inside one transaction
RAW_LIMIT = 64 * 1024  # bytes of raw XML kept with a reject

_TRANSACTION_TAG = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?Transaction[\s/>]")
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True, slots=True)
class Receipt:
    """A sale or return, as a record; ``line`` is where its ``<Transaction>`` starts."""

    line: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """Something that cannot be loaded: a transaction, damaged XML between transactions, or a refused file."""

    line: int
    reason: str
    raw: str


def read_poslog(
    handle: IO[bytes], *, encoding: str | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Receipt | Rejected]:
    """Every receipt and reject of one POSLog file, in file order.

    ``encoding`` overrides what the file declares (``None``: the XML declaration or byte-order mark decides).
    A file refused whole (see the module docstring) gives exactly one :class:`Rejected` and nothing else.
    """
    splitter = _Splitter(handle, encoding, chunk_size)
    try:
        for piece in splitter:
            if isinstance(piece, Rejected):
                yield piece
                continue
            if piece.element is None:
                yield Rejected(piece.line, f"transaction {piece.problem}", splitter.decode(piece.raw))
                continue
            try:
                record = receipt_record(piece.element)
            except MalformedTransaction as exc:
                reason = f"transaction {label(piece.element)}: {exc}"
                yield Rejected(piece.line, reason, splitter.decode(piece.raw))
                continue
            if record is not None:
                yield Receipt(piece.line, record)
    except _Unreadable as exc:
        yield Rejected(exc.line, f"{exc}; nothing in this file was loaded", splitter.decode(splitter.first_bytes()))


# -- cutting the byte stream into transactions ----------------------------------------------------------------


class _Unreadable(Exception):
    """The file as a whole cannot be read: a refused DTD, or not POSLog at all."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class _Piece:
    line: int
    raw: bytes
    element: Element | None
    problem: str | None


class _Splitter:
    """Feeds a file to expat in chunks and cuts it into transactions, each with its raw bytes.

    ``_buffer`` holds the file from ``_buffer_start`` on: at least the transaction being read, so that it can be
    given raw to a reject. After XML that is not well-formed, a new parser starts at the next transaction's start
    tag, fed first with the open ancestors (``<POSLog>``) so that the rest of the file parses in its context.
    """

    def __init__(self, handle: IO[bytes], encoding: str | None, chunk_size: int) -> None:
        self._handle, self._override, self._chunk_size = handle, encoding, chunk_size
        self._buffer = bytearray()
        self._buffer_start = 0
        self._newlines = 0  # newlines before _buffer_start
        self._eof = False
        self.head = b""  # the file's first bytes: the raw payload of a refused file
        self._codec = encoding or "utf-8"
        self._declared: str | None = None
        self._out: deque[_Piece | Rejected] = deque()
        self._ancestors: list[str] = []  # open elements around the last transaction
        self._seen_transaction = False
        self._tags: dict[str, str] = {}
        self._last_end = 0
        self._reset_transaction()

    def first_bytes(self) -> bytes:
        """The start of the file, up to :data:`RAW_LIMIT` bytes: the raw payload of a file refused whole."""
        while len(self.head) < RAW_LIMIT and not self._eof:
            self._fill()
        return self.head

    def decode(self, raw: bytes) -> str:
        try:
            return raw[:RAW_LIMIT].decode(self._codec, "replace")
        except LookupError:
            return raw[:RAW_LIMIT].decode("utf-8", "replace")

    def __iter__(self) -> Iterator[_Piece | Rejected]:
        while len(self._buffer) < 4 and not self._eof:  # enough for a byte-order mark
            self._fill()
        self._sniff()
        self._start_parser(origin=0, prefix=b"", first=True)
        position = 0
        while True:
            chunk = self._bytes_at(position)
            try:
                self._parser.Parse(chunk, not chunk)
            except LookupError as exc:  # an encoding expat does not know, found by pyexpat's codec lookup
                raise _Unreadable(f"not an ARTS POSLog file: {exc}", self._line()) from None
            except expat.ExpatError:
                parser = self._parser
                error_at = self._origin + parser.ErrorByteIndex - self._prefix_length
                error = (expat.ErrorString(parser.ErrorCode), error_at, parser.ErrorLineNumber + self._line_base)
            else:
                position += len(chunk)
                pending = self._at()  # where the markup expat is still holding starts
                error = None
                if position - pending > MAX_TRANSACTION_BYTES:  # one tag, comment or CDATA section of megabytes
                    error = (f"markup larger than {MAX_TRANSACTION_BYTES} bytes", pending, self._line())
            yield from self._drain()
            if error is not None:
                resume = self._recover(*error)
                yield from self._drain()
                if resume is None:
                    return
                position = resume
            elif not chunk:
                return
            else:
                self._drop_before(self._keep_from(position))

    def _drain(self) -> Iterator[_Piece | Rejected]:
        while self._out:
            yield self._out.popleft()

    # -- bytes --

    def _fill(self) -> None:
        data = self._handle.read(self._chunk_size)
        if not data:
            self._eof = True
            return
        if len(self.head) < RAW_LIMIT:
            self.head += data[: RAW_LIMIT - len(self.head)]
        self._buffer += data

    def _bytes_at(self, position: int) -> bytes:
        offset = position - self._buffer_start
        while offset >= len(self._buffer) and not self._eof:
            self._fill()
        return bytes(self._buffer[offset : offset + self._chunk_size])

    def _drop_before(self, position: int) -> None:
        cut = position - self._buffer_start
        if cut > 0:
            self._newlines += self._buffer.count(b"\n", 0, cut)
            del self._buffer[:cut]
            self._buffer_start = position

    def _keep_from(self, position: int) -> int:
        """The first byte still needed: the transaction being read (of a spoiled one, its first RAW_LIMIT bytes),
        else a little context for a reject."""
        start = self._txn_start
        if start is not None:
            if self._builder is not None:
                return start
            if not self._preview:
                if self._buffer_start + len(self._buffer) < start + RAW_LIMIT:
                    return start
                self._preview = bytes(self._slice(start, start + RAW_LIMIT))
        return max(self._last_end, position - RAW_LIMIT)

    def _line_at(self, position: int) -> int:
        return 1 + self._newlines + self._buffer.count(b"\n", 0, max(position - self._buffer_start, 0))

    def _sniff(self) -> None:
        """The codec of raw payloads, and whether markup is ASCII (so a start tag can be found in raw bytes)."""
        if self._override is None:
            for mark, codec in _BYTE_ORDER_MARKS:
                if self._buffer.startswith(mark):
                    self._codec = codec
                    break
        self._set_codec(self._codec)

    def _set_codec(self, codec: str) -> None:
        try:
            self._ascii = "<Transaction>".encode(codec) == b"<Transaction>"
            self._gt = ">".encode(codec)
            self._codec = codec
        except (LookupError, UnicodeError):
            self._ascii, self._gt = False, b">"

    # -- the parser --

    def _start_parser(self, *, origin: int, prefix: bytes, first: bool) -> None:
        parser = expat.ParserCreate(self._override)
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.XmlDeclHandler = self._on_xml_declaration
        parser.StartDoctypeDeclHandler = self._on_doctype
        parser.EntityDeclHandler = self._on_entity
        parser.UnparsedEntityDeclHandler = self._on_unparsed_entity
        parser.ExternalEntityRefHandler = self._on_external_reference
        parser.SkippedEntityHandler = self._on_skipped_entity
        parser.StartElementHandler = self._on_start
        parser.EndElementHandler = self._on_end
        parser.CharacterDataHandler = self._on_data
        self._parser, self._first, self._origin = parser, first, origin
        self._line_base = 0 if first else self._line_at(origin) - 1
        self._stack: list[str] = []
        self._root_seen = not first
        self._prefix_length = len(prefix)
        if prefix:
            parser.Parse(prefix, False)  # opens the ancestors again: _on_start puts them on the stack

    def _at(self) -> int:
        """The file offset of the event expat is reporting."""
        return self._origin + self._parser.CurrentByteIndex - self._prefix_length

    def _line(self) -> int:
        return self._parser.CurrentLineNumber + self._line_base

    def _on_xml_declaration(self, version: str, encoding: str | None, standalone: int) -> None:
        if encoding and self._override is None and self._first:
            self._declared = encoding
            if not self.head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                self._set_codec(encoding)

    def _on_doctype(self, name: str, system_id: str | None, public_id: str | None, internal_subset: int) -> None:
        if system_id or public_id:
            raise _Unreadable(
                f"refused: it refers to an external DTD ({system_id or public_id!r}), which is never fetched",
                self._line(),
            )

    def _on_entity(
        self,
        name: str,
        is_parameter: int,
        value: str | None,
        base: str | None,
        system_id: str | None,
        public_id: str | None,
        notation: str | None,
    ) -> None:
        what = f"the {'parameter ' if is_parameter else ''}entity {name!r}"
        if system_id or public_id:
            raise _Unreadable(
                f"refused: it declares {what} as external ({system_id or public_id!r}); "
                "external entities are never opened or fetched",
                self._line(),
            )
        raise _Unreadable(
            f"refused: it declares {what}; entity declarations are never processed, so nothing is expanded "
            "(the 'billion laughs' attack)",
            self._line(),
        )

    def _on_unparsed_entity(
        self, name: str, base: str | None, system_id: str | None, public_id: str | None, notation: str | None
    ) -> None:
        self._on_entity(name, 0, None, base, system_id, public_id, notation)

    def _on_external_reference(
        self, context: str, base: str | None, system_id: str | None, public_id: str | None
    ) -> int:
        raise _Unreadable(f"refused: it refers to an external entity ({system_id or public_id!r})", self._line())

    def _on_skipped_entity(self, name: str, is_parameter: int) -> None:
        raise _Unreadable(f"refused: it refers to the entity {name!r}, which it does not declare", self._line())

    def _on_start(self, name: str, attributes: dict[str, str]) -> None:
        builder = self._builder
        if builder is not None:  # the common case first: an element inside a transaction being read
            self._depth += 1
            tag = self._tag(name)
            if tag == "Transaction":
                self._spoil("holds another <Transaction> inside it")
            elif self._depth > MAX_DEPTH:
                self._spoil(f"nests elements deeper than {MAX_DEPTH} levels")
            elif self._parser.CurrentByteIndex > self._limit:
                self._spoil(f"is larger than {MAX_TRANSACTION_BYTES} bytes")
            else:
                builder.start(tag, _local_attributes(attributes) if attributes else attributes)
        elif self._txn_start is not None:  # inside a transaction already spoiled: only its end matters
            self._depth += 1
        else:
            self._outside(name, attributes)

    def _outside(self, name: str, attributes: dict[str, str]) -> None:
        tag = self._tag(name)
        if not self._root_seen:
            self._root_seen = True
            if tag != "POSLog":
                raise _Unreadable(f"not an ARTS POSLog file: its root element is <{name}>, not <POSLog>", self._line())
        if tag != "Transaction":
            self._stack.append(name)
            return
        parser = self._parser
        self._txn_start, self._txn_line = self._at(), self._line()
        self._limit = parser.CurrentByteIndex + MAX_TRANSACTION_BYTES
        self._ancestors, self._seen_transaction = list(self._stack), True
        self._depth = 1
        self._builder = TreeBuilder()
        self._builder.start("Transaction", _local_attributes(attributes))

    def _on_end(self, name: str) -> None:
        if self._txn_start is None:
            if self._stack:
                self._stack.pop()
            return
        self._depth -= 1
        if self._depth:
            if self._builder is not None:
                self._builder.end(name)  # TreeBuilder closes the innermost element whatever the name
            return
        start, end = self._txn_start, self._end_of_tag(self._at())
        if self._builder is not None:
            self._builder.end("Transaction")
            piece = _Piece(self._txn_line, bytes(self._slice(start, end)), self._builder.close(), None)
        else:
            piece = _Piece(
                self._txn_line, self._preview[: end - start] or bytes(self._slice(start, end)), None, self._problem
            )
        self._out.append(piece)
        self._last_end = end
        self._reset_transaction()

    def _on_data(self, data: str) -> None:
        builder = self._builder
        if builder is not None:
            if self._parser.CurrentByteIndex > self._limit:
                self._spoil(f"is larger than {MAX_TRANSACTION_BYTES} bytes")
            else:
                builder.data(data)

    def _tag(self, name: str) -> str:
        """The element's name without its namespace prefix; cached, as a file uses few names."""
        tag = self._tags.get(name)
        if tag is None:
            tag = name.rpartition(":")[2]
            if len(self._tags) < 1000:  # a hostile file may use endless names: no unbounded cache
                self._tags[name] = tag
        return tag

    def _reset_transaction(self) -> None:
        self._txn_start: int | None = None
        self._txn_line = 0
        self._limit = 0
        self._depth = 0
        self._builder: TreeBuilder | None = None
        self._problem: str | None = None
        self._preview = b""

    def _spoil(self, problem: str) -> None:
        """Stop building the transaction: it will be a reject, of which only the first bytes are kept."""
        assert self._txn_start is not None
        self._problem, self._builder = problem, None

    def _slice(self, start: int, end: int) -> bytearray:
        base = self._buffer_start
        return self._buffer[max(start - base, 0) : max(end - base, 0)]

    def _end_of_tag(self, position: int) -> int:
        found = self._buffer.find(self._gt, max(position - self._buffer_start, 0))
        return position if found < 0 else self._buffer_start + found + len(self._gt)

    # -- after XML that is not well-formed --

    def _recover(self, message: str, error_at: int, error_line: int) -> int | None:
        """Reject the damaged part and start a new parser at the next transaction; None when the file is done."""
        error_at = max(error_at, self._origin)
        if not self._root_seen:
            if not self.head.lstrip(b"\xef\xbb\xbf \t\r\n"):
                return None  # an empty file holds no transactions
            raise _Unreadable(
                f"not an ARTS POSLog file: not well-formed XML before <POSLog> (line {error_line}: {message})",
                error_line,
            )
        if self._txn_start is not None:
            start, line, floor = self._txn_start, self._txn_line, self._txn_start + 1
            reason = f"transaction is not well-formed XML (line {error_line}: {message})"
        else:
            start, line, floor = self._last_end, error_line, self._origin + 1
            reason = f"not well-formed XML between transactions ({message})"
        start = max(start, self._buffer_start)
        preview = self._preview or self._read_preview(start)
        resume = self._find_transaction(max(error_at, floor)) if self._ascii else None
        raw = preview if resume is None else preview[: max(resume - start, 0)]
        self._out.append(Rejected(line, reason, self.decode(raw)))
        self._reset_transaction()
        if resume is None:
            return None
        ancestors = self._ancestors if self._seen_transaction else self._stack
        self._last_end = resume
        self._drop_before(resume)
        try:
            prefix = b"".join(f"<{name}>".encode(self._codec) for name in ancestors)
        except (LookupError, UnicodeError):
            return None
        if self._declared and self._override is None:
            prefix = f'<?xml version="1.0" encoding="{self._declared}"?>'.encode("ascii", "replace") + prefix
        try:
            self._start_parser(origin=resume, prefix=prefix, first=False)
        except (expat.ExpatError, LookupError):  # the context cannot be written again: the rest is lost
            return None
        return resume

    def _read_preview(self, start: int) -> bytes:
        while self._buffer_start + len(self._buffer) < start + RAW_LIMIT and not self._eof:
            self._fill()
        return bytes(self._slice(start, start + RAW_LIMIT))

    def _find_transaction(self, start: int) -> int | None:
        """The offset of the next ``<Transaction`` start tag at or after ``start``, reading on as needed."""
        while True:
            found = _TRANSACTION_TAG.search(self._buffer, max(start - self._buffer_start, 0))
            if found:
                return self._buffer_start + found.start()
            if self._eof:
                return None
            start = max(start, self._buffer_start + len(self._buffer) - 64)  # a tag split across two reads
            self._drop_before(start)
            self._fill()


def _local_attributes(attributes: dict[str, str]) -> dict[str, str]:
    return {key.rpartition(":")[2]: value for key, value in attributes.items() if not key.startswith("xmlns")}
