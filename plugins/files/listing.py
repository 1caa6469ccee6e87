"""Which files a stream's patterns match, named the way cursors remember them, and their content hashes."""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class MatchedFile:
    """A file on disk and its name in cursors and messages: relative to the project directory if inside."""

    path: Path
    relpath: str


def match_pattern(project_dir: Path, pattern: str) -> list[MatchedFile]:
    """Regular files matching one glob (``**`` recurses), sorted by name.

    Relative patterns start at ``project_dir``. Dot-files are not matched by ``*``, so an exporter can write
    ``.orders.csv.tmp`` and rename it when complete, and a half-written file is never read.
    """
    root = Path(os.path.abspath(project_dir))
    found = []
    for hit in glob.glob(os.path.expanduser(pattern), root_dir=root, recursive=True):
        path = Path(os.path.normpath(root / hit))
        if path.is_file():
            relpath = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
            found.append(MatchedFile(path, relpath))
    return sorted(found, key=lambda f: f.relpath)


def match_all(project_dir: Path, patterns: Iterable[str]) -> list[MatchedFile]:
    """Every file any pattern matches, once, sorted by name: the order a stream reads its files in."""
    unique = {f.relpath: f for pattern in patterns for f in match_pattern(project_dir, pattern)}
    return [unique[name] for name in sorted(unique)]


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes (compressed bytes for .gz), read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
