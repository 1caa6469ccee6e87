"""Helpers for the Akeneo tests: a switchable ASGI app, and products for the control API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass(slots=True)
class Call:
    method: str
    path: str
    query: dict[str, str]


@dataclass(slots=True)
class Switch:
    """ASGI app that forwards to ``app`` and records every request outside ``/_emulator/``."""

    app: Any = None
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_emulator/"):
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            self.calls.append(Call(scope["method"], scope["path"], query))
        await self.app(scope, receive, send)


def product(sku: str, **fields: Any) -> dict[str, Any]:
    """A product for the control API, with SKU ``sku``; ``accessories=[uuid...]`` fills ``ACCESSORIES``."""
    values = {"sku": [{"locale": None, "scope": None, "data": sku}]}
    values.update(fields.pop("values", {}))
    item: dict[str, Any] = {"values": values, **fields}
    for name, code in (("accessories", "ACCESSORIES"), ("cross_sells", "X_SELL")):
        if name in item:
            item.setdefault("associations", {})[code] = {"products": item.pop(name)}
    return item
