"""The Business Central source against its emulator, through hub's SourceContract: every stream, and again under
30 % transient faults (the contract's own ``test_a_sync_under_transient_faults_loads_every_record_once``)."""

from __future__ import annotations

from typing import Any

from hub.testing import SourceContract
from hub_plugins.business_central.emulator import BLANK
from hub_plugins.business_central.source import BusinessCentralSource


class TestBusinessCentralContract(SourceContract):
    source_type = BusinessCentralSource
    emulator = BLANK
    streams = ("customers", "contacts", "items", "salesInvoices", "salesCreditMemos")
    page_size = 5
    no_deletions = {
        "*": "Business Central API v2.0 reports no deletions on its read path (only webhook subscriptions do)",
    }

    def settings(self, target: str) -> dict[str, Any]:
        return {**BLANK.settings(target), "page_size": self.page_size}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "client_secret": "not-the-secret"}
