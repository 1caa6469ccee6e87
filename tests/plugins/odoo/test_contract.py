"""The Odoo source against its emulator, through hub's SourceContract, over both protocols: JSON-2 (Odoo 19+) and
JSON-RPC (older servers); each also under 30 % transient faults (the contract's own check)."""

from __future__ import annotations

from typing import Any

from hub.testing import SourceContract
from hub_plugins.odoo.emulator import BLANK
from hub_plugins.odoo.source import OdooSource


class TestOdooJson2Contract(SourceContract):
    source_type = OdooSource
    emulator = BLANK
    streams = ("partners", "orders", "products")
    page_size = 5
    no_deletions = {
        "orders": "an order deleted outright (unlink) leaves no trace in search_read; a cancelled one is a tombstone",
    }

    def settings(self, target: str) -> dict[str, Any]:
        return {**BLANK.settings(target), "page_size": self.page_size}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "api_key": "not-the-key"}


class TestOdooJsonRpcContract(TestOdooJson2Contract):
    def settings(self, target: str) -> dict[str, Any]:
        return {**super().settings(target), "protocol": "jsonrpc"}
