"""The WooCommerce source against its emulator, through hub's SourceContract, on every stream.

The emulator is plain http on loopback, so the source signs each request with OAuth 1.0a and the emulator checks
signature, timestamp and nonce on every one, faults included. HTTP Basic behind TLS: test_source.py.
"""

from __future__ import annotations

from typing import Any

from hub.testing import SourceContract
from hub_plugins.woocommerce import emulator
from hub_plugins.woocommerce.source import WooCommerceSource


class TestWooCommerceContract(SourceContract):
    source_type = WooCommerceSource
    emulator = emulator.BLANK
    streams = ("customers", "orders", "products")
    page_size = 5

    def settings(self, target: str) -> dict[str, Any]:
        # customer_scan_every 0: every read of the customers stream is a full read, as the contract's reads expect.
        return {**emulator.settings(target), "page_size": self.page_size, "customer_scan_every": "0s"}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "consumer_secret": "cs_not_the_secret"}
