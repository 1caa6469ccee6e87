"""The files source under ``SourceContract``: its "emulator" is a drop folder that an exporter writes into."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.testing import SourceContract
from hub.testing.source import Remote, at
from hub_plugins.files.source import FilesSource

STREAMS = ("customers", "orders")


class DropFolder:
    """The files source's :class:`~hub.testing.source.EmulatorControl`: each ``put`` is one new JSON Lines export.

    An exporter writes ``<stream>/<n>.jsonl`` under a dot-name and renames it when complete, as the files source
    asks. A record is ``{"id", "updated_at", ...}``; a malformed one is its line cut short, in every file it is in.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids = itertools.count(1)
        self._files = itertools.count(1)
        self._latest: dict[str, dict[str, dict[str, Any]]] = {stream: {} for stream in STREAMS}

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        stamp = updated_at or at(0)
        written = []
        for item in records:
            fields = {k: v for k, v in item.items() if k != "_key"}
            key = str(item.get("_key") or f"{stream[0]}{next(self._ids)}")
            record = {**self._latest[stream].get(key, {"email": f"{key}@example.com"}), **fields}
            record.update(id=key, updated_at=stamp)
            self._latest[stream][key] = record
            written.append(record)
        self._write(stream, f"{next(self._files):05d}.jsonl", [json.dumps(r) for r in written])
        return [r["id"] for r in written]

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        raise AssertionError("a drop folder reports no deletions: the contract should have skipped")

    def malformed(self, stream: str, key: str) -> None:
        for path in sorted((self.root / stream).glob("*.jsonl")):
            lines = path.read_text(encoding="utf-8").splitlines()
            cut = [line[: line.index('"updated_at"')] if json.loads(line)["id"] == key else line for line in lines]
            if cut != lines:
                path.write_text("\n".join(cut) + "\n", encoding="utf-8")

    def throttle(self, count: int, retry_after: float) -> None:
        raise AssertionError("a drop folder has no HTTP: the contract should have skipped")

    def _write(self, stream: str, name: str, lines: list[str]) -> None:
        folder = self.root / stream
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.tmp"
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial.rename(folder / name)


class TestFilesContract(SourceContract):
    source_type = FilesSource
    streams = STREAMS
    page_size = 4
    no_deletions = {"*": "an export lists what exists; a row missing from a later file is not a deletion"}

    def settings(self, target: str) -> dict[str, Any]:
        stream = {"key": "id", "updated_at": "updated_at", "format": "jsonl"}
        return {"streams": {name: {**stream, "paths": [f"{target}/{name}/*.jsonl"]} for name in STREAMS}}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {"streams": {name: {"paths": [f"{target}/nowhere/{name}/*.jsonl"]} for name in STREAMS}}

    @contextmanager
    def open_emulator(self, tmp_path: Path) -> Iterator[Remote]:
        folder = tmp_path / "drop"
        folder.mkdir()
        yield Remote(target=str(folder), control=DropFolder(folder), project_dir=tmp_path)
