"""Settings of the ``files`` source: which files make which stream, and how to read them.

Two shapes, exactly one of which is given::

    # one stream, named "records", over every pattern
    paths: ["exports/pos/*.csv.gz"]
    delimiter: ";"
    key: receipt_id

    # one stream per entry; keys at the top level are defaults that each stream may override
    encoding: cp1252
    streams:
      customers: {paths: ["erp/customers_*.csv"], key: id, updated_at: changed_at, lag: 10m}
      orders:    {paths: ["erp/orders/**/*.jsonl"]}
      receipts:  {paths: ["pos/poslog/*.xml.gz"], format: poslog}   # one receipt per POSLog transaction
"""

from __future__ import annotations

import codecs
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub import ConnectorSettings
from hub.cursors import Duration

#: Names a YAML author may write instead of a bare tab or other hard-to-see character.
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
_DELIMITERS = {",", ";", "\t", "|"}


class ReadOptions(BaseModel):
    """How the files of a stream are parsed and followed. Shared by a stream and the top-level shorthand."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["auto", "csv", "jsonl", "poslog"] = Field(
        "auto",
        description="auto: by extension (.csv, .tsv, .jsonl, .ndjson; .xml is poslog), after a .gz suffix is removed; "
        "poslog: ARTS POSLog XML, one receipt record per sale or return transaction",
    )
    delimiter: str | None = Field(None, description='CSV field separator: "," (default; "\\t" for .tsv), ";", tab, "|"')
    encoding: str = Field(
        "utf-8-sig",
        description="text encoding; utf-8-sig reads UTF-8 with or without a BOM. POSLog files name their own "
        "encoding: set one other than UTF-8 only to override it",
    )
    header: bool = Field(True, description="whether the first CSV row names the columns")
    columns: list[str] | None = Field(
        None,
        description="CSV column names; required when header is false, and replaces the header row otherwise",
    )
    key: str | None = Field(None, description="the field that identifies a record")
    updated_at: str | None = Field(None, description="a field holding when the record last changed; reads only changes")
    updated_at_as: Literal["datetime", "string"] = Field(
        "datetime", description="compare updated_at as ISO 8601 datetimes or as plain text"
    )
    lag: Duration = Field(
        timedelta(0), description='re-read records changed up to this long before the last one: "10m"'
    )

    @field_validator("delimiter", mode="before")
    @classmethod
    def _named_delimiter(cls, value: object) -> object:
        if isinstance(value, str) and value.lower() in _DELIMITER_NAMES:
            return _DELIMITER_NAMES[value.lower()]
        return value

    @field_validator("delimiter")
    @classmethod
    def _known_delimiter(cls, value: str | None) -> str | None:
        if value is not None and value not in _DELIMITERS:
            raise ValueError(f'{value!r} is not a supported delimiter; use ",", ";", "|" or tab')
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8-sig, cp1252, latin-1, utf-16)") from None
        return value


class StreamSettings(ReadOptions):
    """One stream: the glob patterns of its files (relative to the project directory; ``**`` recurses)."""

    paths: list[str] = Field(min_length=1)


class FilesSettings(ConnectorSettings, ReadOptions):
    """Either ``paths`` (one stream, ``records``) or ``streams`` (one per entry), plus default options."""

    paths: list[str] | None = Field(None, min_length=1)
    streams: dict[str, StreamSettings] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_shape(self) -> FilesSettings:
        if (self.paths is None) == (self.streams is None):
            raise ValueError(
                "give either paths: [...] (one stream named records) or streams: {name: {paths: [...]}}, not "
                + ("both" if self.paths is not None else "neither")
            )
        for name, options in self.stream_settings().items():
            _check_combination(name, options)
        return self

    def stream_settings(self) -> dict[str, StreamSettings]:
        """Every stream with its effective options: a stream's own keys win over the top-level defaults."""
        if self.paths is not None:
            options = {name: getattr(self, name) for name in ReadOptions.model_fields}
            return {"records": StreamSettings(paths=self.paths, **options)}
        given = self.model_fields_set & ReadOptions.model_fields.keys()
        effective = {}
        for name, stream in (self.streams or {}).items():
            inherited = {key: getattr(self, key) for key in given - stream.model_fields_set}
            effective[name] = stream.model_copy(update=inherited)
        return effective


def _check_combination(name: str, options: ReadOptions) -> None:
    where = f"stream {name!r}: "
    if not options.header and not options.columns and options.format not in ("jsonl", "poslog"):
        raise ValueError(where + "header: false needs columns: [...] to name the fields")
    if options.updated_at_as == "string" and options.lag:
        raise ValueError(where + "lag needs updated_at_as: datetime; text cannot be shifted by a duration")
    if options.format in ("jsonl", "poslog") and (options.columns or options.delimiter):
        raise ValueError(where + "columns and delimiter apply to CSV files only")
