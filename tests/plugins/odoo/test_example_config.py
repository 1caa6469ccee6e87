"""config/examples/odoo.yaml is a valid configuration whose ERP connector syncs from the emulator."""

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
from hub_plugins import odoo as odoo_plugin
from hub_plugins.odoo.demo import seed_demo
from hub_plugins.odoo.source import OdooSource
from tests.plugins.odoo.conftest import BOTH

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "odoo.yaml"


@pytest.fixture
def example(app: Starlette, url: str, tmp_path: Path, protocol: str) -> Iterator[Hub]:
    """The example, run in a temp project (the shipped mappings linked in), its ERP pointed at the emulator."""
    (tmp_path / "mappings").symlink_to(ROOT / "mappings")
    (tmp_path / "var").mkdir()
    pm = make_plugin_manager()
    if not pm.is_registered(odoo_plugin):
        pm.register(odoo_plugin, name="odoo")
    hub = Hub.load(EXAMPLE, pm=pm, project_dir=tmp_path, environ={"ODOO_BASE_URL": url, "ODOO_PROTOCOL": protocol})
    try:
        yield hub
    finally:
        connector = hub._connectors.get("erp")
        if isinstance(connector, OdooSource):
            connector.close()
        hub.close()


@BOTH
def test_the_example_reads_the_erp_from_odoo_and_its_mappings_compile(example: Hub, protocol: str) -> None:
    assert example.check_mappings() == []
    erp = example.connector("erp")
    assert isinstance(erp, OdooSource) and erp.settings.protocol == protocol


def test_the_examples_erp_connector_syncs_the_seeded_emulator(example: Hub, app: Starlette) -> None:
    counts = seed_demo(app.state.odoo, count=30)
    upgrade(example.engine)
    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        summary = SyncEngine(example).sync(["erp"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    assert {s.stream: s.read for s in summary.streams} == {"partners": counts["partners"], "orders": counts["orders"]}
    query = "SELECT first_name IS NOT NULL, company_name IS NOT NULL FROM customer WHERE is_b2b"
    with example.engine.connect() as conn:
        b2b = [tuple(row) for row in conn.execute(sa.text(query))]
    # five companies; each company and the person who buys for it share the ERP row's e-mail, so they are one
    # customer with the buyer's name and the company's
    assert b2b == [(1, 1)] * 5
