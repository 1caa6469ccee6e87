"""config/examples/business_central.yaml is a valid configuration whose ERP connector syncs from the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins import business_central as bc_plugin
from hub_plugins.business_central._state import DEFAULT_TENANT
from hub_plugins.business_central.demo import seed_demo
from hub_plugins.business_central.source import BusinessCentralSource

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "business_central.yaml"


@pytest.fixture
def example(app: Starlette, url: str, tmp_path: Path) -> Iterator[Hub]:
    """The example, run in a temp project (the shipped mappings linked in), its ERP pointed at the emulator."""
    (tmp_path / "mappings").symlink_to(ROOT / "mappings")
    (tmp_path / "var").mkdir()
    pm = make_plugin_manager()
    if not pm.is_registered(bc_plugin):
        pm.register(bc_plugin, name="business_central")
    environ = {"BC_BASE_URL": url, "BC_TOKEN_URL": f"{url}/{DEFAULT_TENANT}/oauth2/v2.0/token"}
    hub = Hub.load(EXAMPLE, pm=pm, project_dir=tmp_path, environ=environ)
    try:
        yield hub
    finally:
        connector = hub._connectors.get("erp")
        if isinstance(connector, BusinessCentralSource):
            connector.close()
        hub.close()


def test_the_example_reads_the_erp_from_business_central_and_its_mappings_compile(example: Hub) -> None:
    assert example.check_mappings() == []
    assert isinstance(example.connector("erp"), BusinessCentralSource)
    assert example.config.identity.source_priority[0] == "erp"


def test_the_examples_erp_connector_syncs_the_seeded_emulator(example: Hub, app: Starlette) -> None:
    counts = seed_demo(app.state.bc, count=30)
    upgrade(example.engine)
    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        summary = SyncEngine(example).sync(["erp"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    read = {s.stream: s.read for s in summary.streams}
    assert read == {k: counts[k] for k in ("customers", "contacts", "salesInvoices", "salesCreditMemos")}
    query = "SELECT first_name IS NOT NULL, company_name IS NOT NULL FROM customer WHERE is_b2b"
    with example.engine.connect() as conn:
        b2b = [tuple(row) for row in conn.execute(sa.text(query))]
    # five businesses; each company customer and its buyer share the ERP row's e-mail, so they are one customer
    # with the buyer's name and the company's
    assert b2b == [(1, 1)] * 5
