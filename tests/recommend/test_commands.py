"""``hub recommend``: the ranking for a customer or after a product, with the reason for each line (typer's
runner, real SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from hub import cli as hub_cli
from hub.app import Hub
from hub.config._audience import FollowupConfig
from hub.models import Product
from hub.recommend.followups import compute_followups
from tests.recommend._planted import NOW, START, Shop

AT = "--now=2025-01-01T09:00:00+01:00"


@pytest.fixture
def shop_hub(make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Hub]:
    """A hub whose shop has 20 console buyers who bought GAME3 next, and customer 41, who bought a console."""

    def make(**blocks: Any) -> Hub:
        hub = make_hub(**blocks)
        with hub.engine.begin() as conn:
            shop = Shop(conn)
            shop.products()
            for n in range(20):
                person = shop.customer()
                shop.order(person, START + timedelta(days=n), "CONSOLE1")
                shop.order(person, START + timedelta(days=n + 3), "GAME3")
                shop.order(shop.customer(), START, "PAINT1")
            shop.order(shop.customer(), NOW - timedelta(days=2), "CONSOLE1")
            shop.relation("CONSOLE1", "GAME5")
            shop.flush()
            compute_followups(conn, FollowupConfig(), NOW)
        monkeypatch.setattr(hub_cli, "_load", lambda config: hub)
        return hub

    return make


def run(*args: str) -> Result:
    return CliRunner().invoke(hub_cli.make_cli(), ["recommend", *args], env={"COLUMNS": "250"})


def test_after_a_product_it_shows_what_its_buyers_bought_next_and_why(shop_hub: Callable[..., Hub]) -> None:
    shop_hub()
    result = run("--product", "CONSOLE1", AT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(line for line in lines if line.startswith("│ 1 "))
    assert "GAME3" in first and "Game3" in first
    assert "bought next by 95% (20 of 21) of buyers of Console1 within 90d, lift 2.0" in first
    assert any("GAME5" in line and "accessory of Console1 (PIM)" in line for line in lines)
    assert "answered by builtin" in result.stdout
    assert "follow-up rules of 2025-01-01 08:00: 1 product and 1 group rules" in result.stdout


def test_for_a_customer_it_says_whom_and_what_the_ranking_follows(shop_hub: Callable[..., Hub]) -> None:
    shop_hub()
    result = run("c41@example.no", AT, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["customer"] == "customer 41: C41 <c41@example.no>"
    assert shown["follows"] == [{"sku": "CONSOLE1", "name": "Console1"}]
    assert [item["sku"] for item in shown["items"]][:2] == ["GAME3", "GAME5"]
    assert shown["source"] == "builtin"


def test_from_a_connector_it_says_who_answered(shop_hub: Callable[..., Hub]) -> None:
    shop_hub(connectors={"raptorish": {"plugin": "slowrec"}})
    result = run("41", AT, "--from", "raptorish")
    assert result.exit_code == 0, result.output
    assert "answered by raptorish" in result.stdout
    assert "GAME8" in result.stdout and "slowrec's model" in result.stdout


def test_from_a_slow_connector_the_builtin_answers_and_says_why(shop_hub: Callable[..., Hub]) -> None:
    shop_hub(connectors={"raptorish": {"plugin": "slowrec", "settings": {"delay": 1.0}}})  # timeout: 800 ms
    result = run("41", AT, "--from", "raptorish")
    assert result.exit_code == 0, result.output
    assert "answered by builtin" in result.stdout
    assert "the connector's call ended in timeout" in result.stdout


def test_it_needs_a_customer_or_a_product(shop_hub: Callable[..., Hub]) -> None:
    shop_hub()
    result = run(AT)
    assert result.exit_code == 1
    assert "give a customer, or --product SKU" in result.stderr


def test_an_unknown_product_is_said_so(shop_hub: Callable[..., Hub]) -> None:
    shop_hub()
    result = run("--product", "NOPE", AT)
    assert result.exit_code == 1
    assert "no product with SKU 'NOPE'" in result.stderr


def test_a_deleted_product_is_not_shown_after_a_product(shop_hub: Callable[..., Hub]) -> None:
    hub = shop_hub()
    product = Product.__table__  # type: ignore[attr-defined]
    with hub.engine.begin() as conn:
        conn.execute(product.update().where(product.c.sku == "GAME3").values(deleted_at=NOW))

    result = run("--product", "CONSOLE1", AT, "--json")

    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert items[0]["sku"] == "GAME5" and items[0]["reason"].startswith("accessory of Console1 (PIM)")
    assert "GAME3" not in [item["sku"] for item in items]
