"""The Akeneo source against its emulator, through hub's SourceContract: products, then relations.

Both streams read the same ``products-uuid`` pages, so each has a contract class of its own: every check gets a
fresh emulator, and what a check seeds into one stream is then all that stream's read can return.
"""

from __future__ import annotations

from typing import Any

from hub.testing import SourceContract
from hub_plugins.akeneo.emulator import BLANK
from hub_plugins.akeneo.source import AkeneoSource

NO_DELETIONS = {
    "*": "Akeneo's REST API reports no deletions (only its Event Platform does, which hub does not read)",
}


class TestAkeneoContract(SourceContract):
    source_type = AkeneoSource
    emulator = BLANK
    streams = ("products",)
    page_size = 5
    no_deletions = NO_DELETIONS

    def settings(self, target: str) -> dict[str, Any]:
        return {**BLANK.settings(target), "page_size": self.page_size}

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "secret": "not-the-secret"}


class TestAkeneoRelationsContract(TestAkeneoContract):
    streams = ("relations",)

    def bad_credentials(self, target: str) -> dict[str, Any]:
        return {**self.settings(target), "password": "not-the-password"}
