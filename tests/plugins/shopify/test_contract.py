"""The Shopify source against its emulator, through hub's SourceContract: bulk first loads, then paginated reads."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from hub.sandbox import Faults
from hub.testing import SourceContract
from hub_plugins.shopify import emulator
from hub_plugins.shopify.emulator import EMULATOR
from hub_plugins.shopify.source import ShopifySource

_NO_DELETIONS = {
    "customers": "deleted customers are reported only by the customers/delete webhook, not on the read path",
    "orders": "orders are cancelled or archived; a deleted order is reported only by the orders/delete webhook",
    "checkouts": "abandoned checkouts are never deleted, they expire; the API reports neither",
    "inventory": "an inventory item goes with its variant; the read path reports no deletion events for it",
}


class TestShopifyContract(SourceContract):
    source_type = ShopifySource
    emulator = EMULATOR
    page_size = 5
    no_deletions = _NO_DELETIONS

    def settings(self, base_url: str) -> dict[str, Any]:
        return {**emulator.settings(base_url), "page_size": 5}

    def bad_credentials(self, base_url: str) -> dict[str, Any]:
        return {**self.settings(base_url), "access_token": "shpat_wrong"}


class TestShopifyPagesContract(TestShopifyContract):
    """Every read through pages (``first_load: pages``), 30% transient faults included. The bucket refills 20
    times faster than Shopify's default here: pacing is the first class's to prove, and this one would wait."""

    emulator = dataclasses.replace(EMULATOR, app=functools.partial(emulator.app, restore_rate=1000.0))
    streams = ("orders", "products", "checkouts")
    transient_faults: ClassVar[Faults] = Faults(error_rate=0.15, rate_429=0.10, drop_rate=0.05, retry_after=0, seed=3)

    def settings(self, base_url: str) -> dict[str, Any]:
        return {**super().settings(base_url), "first_load": "pages"}
