"""Bulk operations: a stream's first load as one ``bulkOperationRunQuery`` whose JSONL result is read as a stream.

The result is never held whole: it is downloaded with ``httpx`` streaming and read line by line. Nested
connection nodes (an order's lines) sit on their own lines with ``__parentId``, right after their parent, so
:func:`assemble` rebuilds each record from consecutive lines and hands it on with the number of the last line it
used. That number is the resume point: a read killed mid-way downloads the result again (its URL is valid for a
week) and skips the lines already committed. A connection cut mid-download resumes the same way.

The download goes to another host (Shopify's storage) through a client *without* the access token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from hub import SourceError
from hub.sources.http import SourceHttp
from hub_plugins.shopify import queries
from hub_plugins.shopify.client import ShopifyGraphQL

log = structlog.get_logger("hub_plugins.shopify")
_DOWNLOAD_ATTEMPTS = 6


class BulkUnavailable(Exception):
    """The bulk path cannot serve this read (failed, cancelled, another operation running): read pages instead."""


class BulkExpired(Exception):
    """The operation or its result URL is gone (results live 7 days): start a new one."""


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    created_at: str
    url: str | None = None


class BulkRunner:
    """Starts, polls and downloads one bulk query at a time for a shop."""

    def __init__(
        self,
        api: ShopifyGraphQL,
        download: SourceHttp,
        *,
        poll_interval: float,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.download = download
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock

    def start(self, query: str) -> Operation:
        """Run ``query`` as a bulk operation; adopt the running one if it is ours (an answer lost on the way)."""
        data = self.api.execute(queries.bulk_mutation(self.api.version), {"query": query})
        payload = data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        operation = payload.get("bulkOperation")
        if not errors and operation:
            return Operation(id=operation["id"], created_at=operation["createdAt"])
        current = (self.api.execute(queries.BULK_CURRENT).get("currentBulkOperation")) or {}
        if current.get("status") in ("CREATED", "RUNNING", "COMPLETED") and _same(current.get("query"), query):
            return Operation(id=current["id"], created_at=current["createdAt"])
        message = "; ".join(str(e.get("message")) for e in errors) or "no operation was created"
        raise BulkUnavailable(f"Shopify did not start the bulk query: {message}")

    def wait(self, operation_id: str) -> Operation:
        """Poll until the operation completes; BulkUnavailable when it fails, BulkExpired when it is gone."""
        deadline = self.clock() + self.timeout
        while True:
            node = self.api.execute(queries.BULK_NODE, {"id": operation_id}).get("node")
            if not node:
                raise BulkExpired(f"bulk operation {operation_id} no longer exists")
            status = node.get("status")
            if status == "COMPLETED":
                return Operation(id=node["id"], created_at=node["createdAt"], url=node.get("url"))
            if status == "EXPIRED":
                raise BulkExpired(f"bulk operation {operation_id} expired")
            if status in ("FAILED", "CANCELED", "CANCELING"):
                raise BulkUnavailable(f"bulk operation {status.lower()} ({node.get('errorCode') or 'no error code'})")
            if self.clock() > deadline:
                raise BulkUnavailable(f"bulk operation still {status} after {self.timeout:.0f} s")
            self.sleep(self.poll_interval)

    def lines(self, url: str, skip: int) -> Iterator[tuple[int, bytes]]:
        """``(line number, line)`` of the result after the first ``skip`` lines, streamed; resumes after a cut."""
        done, failures = skip, 0
        while True:
            try:
                with self.download.stream("GET", url) as response:
                    if response.status_code in (403, 404, 410):
                        raise BulkExpired(f"the bulk result URL answered {response.status_code} (expired)")
                    if response.status_code != 200:
                        raise SourceError(f"{self.api.name}: the bulk result answered {response.status_code}")
                    number = 0
                    for line in response.iter_lines():
                        if not line:
                            continue
                        number += 1
                        if number <= done:
                            continue
                        done = number
                        yield number, line.encode()
                return
            except (httpx.TransportError, httpx.DecodingError) as exc:
                failures += 1
                if failures >= _DOWNLOAD_ATTEMPTS:
                    raise SourceError(
                        f"{self.api.name}: the bulk result download was cut {failures} times; the next sync resumes "
                        f"after line {done}"
                    ) from None
                log.warning("bulk download cut; resuming", line=done, error=type(exc).__name__)


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and " ".join(a.split()) == " ".join(b.split())


def assemble(lines: Iterator[tuple[int, bytes]], child_field: str | None) -> Iterator[tuple[dict[str, Any], int]]:
    """Rebuild records from JSONL lines: each root with its children (``__parentId``) as ``child_field``'s nodes.

    Yields ``(node, last line number)``. A line that is not JSON, or a child whose parent is not the record being
    built (an ungrouped result), is yielded as ``{"_bulk_error": why, "_line": text}`` for the caller to reject.
    """
    current: dict[str, Any] | None = None
    end = 0
    for number, line in lines:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if current is not None:
                yield current, end
                current = None
            yield {"_bulk_error": f"bulk result line {number} is not JSON: {exc}", "_line": line.decode()}, number
            end = number
            continue
        parent = row.pop("__parentId", None) if isinstance(row, dict) else None
        if parent is None:
            if current is not None:
                yield current, end
            current, end = row, number
            if child_field is not None and isinstance(current, dict):
                current.setdefault(child_field, {"nodes": []})
            continue
        if current is None or current.get("id") != parent or child_field is None:
            yield (
                {
                    "_bulk_error": f"bulk result line {number}: child of {parent} is not after it",
                    "_line": line.decode(),
                },
                number,
            )
            continue
        current[child_field]["nodes"].append(row)
        end = number
    if current is not None:
        yield current, end
