"""Monthly export files sorted by time, written in bounded memory.

People are generated one after the other, so their orders arrive in person order; a real export is in
time order. Rows are buffered up to a byte budget, each full buffer is sorted and spilled to a run file, and
the runs are merged (``heapq.merge``) into one file per month. Every row carries a fixed-width sort key that
starts with ``YYYYMM``; keys are unique, so the output is the same on every run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

FAN_IN = 128  # run files merged at once; more runs are merged in rounds


class MonthlyFiles:
    """Collects ``(key, line)`` rows; writes ``directory/<prefix><YYYY-MM><suffix>``, one file per month."""

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str,
        suffix: str,
        months: Iterable[str],
        key_width: int,
        scratch: Path,
        header: str = "",
        budget: int = 2 << 20,
    ) -> None:
        self.directory = directory
        self._prefix, self._suffix, self._header = prefix, suffix, header
        self._months = tuple(months)
        self._key_width = key_width
        self._scratch = scratch
        self._budget = budget
        self._buffer: list[str] = []
        self._buffered = 0
        self._runs: list[Path] = []
        self._made = 0  # run files made, to name the next one

    def add(self, key: str, line: str) -> None:
        """Add one row. ``key`` is exactly ``key_width`` characters, ``line`` ends with a newline."""
        row = key + line
        self._buffer.append(row)
        self._buffered += len(row)
        if self._buffered >= self._budget:
            self._spill()

    def close(self) -> dict[str, int]:
        """Merge everything into the monthly files; return rows written per file name."""
        self._spill()
        while len(self._runs) > FAN_IN:  # oldest runs first, the merged run last: each row is rewritten log(n) times
            self._runs = [*self._runs[FAN_IN:], self._merge_runs(self._runs[:FAN_IN])]
        self.directory.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        with ExitStack() as stack:
            inputs = [stack.enter_context(run.open(encoding="utf-8", newline="")) for run in self._runs]
            merged: Iterator[str] = heapq.merge(*inputs)
            pending = next(merged, None)
            for month in self._months:
                name = f"{self._prefix}{month}{self._suffix}"
                stamp = month.replace("-", "")
                rows = 0
                with (self.directory / name).open("w", encoding="utf-8", newline="") as out:
                    out.write(self._header)
                    while pending is not None and pending.startswith(stamp):
                        out.write(pending[self._key_width :])
                        rows += 1
                        pending = next(merged, None)
                counts[name] = rows
            if pending is not None:
                raise ValueError(f"row outside the months written: {pending[: self._key_width]!r}")
        for run in self._runs:
            run.unlink()
        self._runs = []
        return counts

    def _spill(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        run = self._next_run()
        with run.open("w", encoding="utf-8", newline="") as out:
            out.writelines(self._buffer)
        self._runs.append(run)
        self._buffer = []
        self._buffered = 0

    def _merge_runs(self, runs: list[Path]) -> Path:
        target = self._next_run()
        with ExitStack() as stack, target.open("w", encoding="utf-8", newline="") as out:
            inputs: list[TextIO] = [stack.enter_context(run.open(encoding="utf-8", newline="")) for run in runs]
            out.writelines(heapq.merge(*inputs))
        for run in runs:
            run.unlink()
        return target

    def _next_run(self) -> Path:
        self._made += 1
        return self._scratch / f"{self._prefix}{self._made:06d}.run"
