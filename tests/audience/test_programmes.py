"""Acceptance: the two programmes of the issue, end to end through ``run_audience`` on a real SQLite hub.

A Norwegian hardware chain's post-purchase mails with an accessory split and protection rules (no B2B, one mail
in two days, two days out of the newsletter), and a Danish housewares chain's tier A welcome. Each test builds
its customers and orders, runs audience passes at chosen moments (a ``FixedClock``, never sleeping) and checks
the decisions, the outbox and ``hub explain``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.app import Hub
from hub.audience.pipeline import run_audience
from hub.cli import make_cli
from hub.clock import FixedClock
from hub.models import Consent, ContactLog, Customer, Message, Order, OrderLine, Product, ProductRelation
from hub.schema import upgrade

REPO = Path(__file__).resolve().parents[2]
DAY0 = datetime(2025, 5, 5, 8, 0, tzinfo=UTC)  # a Monday

customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
consent_t: sa.Table = Consent.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relation_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
log_t: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]
message_t: sa.Table = Message.__table__  # type: ignore[attr-defined]

CONFIG = {
    "database": {"url": "sqlite:///hub.db"},
    "timezone": "UTC",
    "connectors": {
        "voyado": {
            "plugin": "voyado",
            "mapping": str(REPO / "mappings" / "voyado.yaml"),
            "settings": {"base_url": "http://127.0.0.1:9", "api_key": "k", "match_key": "email"},
        }
    },
    "attributes": {"accessory_window": "14d"},
    "segments": {
        "tier_a": {"when": 'tier == "A"'},
        "newsletter": {"when": 'consent("email") and not is_b2b', "message_type": "newsletter"},
    },
    "triggers": {
        "post_purchase": {
            "on": "order_placed",
            "message_type": "post_purchase",
            "filter": {"product_groups": ["grills", "power_tools"]},
            "variants": {"a": 50, "b": 50},
            "branches": [
                {
                    "name": "care_tips",
                    "when": "has_accessory_for_group",
                    "to": {"voyado": {"trigger_id": "pp-care"}},
                },
                {"name": "tips_and_accessories", "to": {"voyado": {"trigger_id": "pp-accessories"}}},
            ],
        },
        "welcome_tier_a": {
            "on": "segment_entered",
            "segment": "tier_a",
            "message_type": "vip",
            "to": {"voyado": {"trigger_id": "welcome-a"}},
        },
        "sales_newsletter": {
            "on": "campaign",
            "schedule": "0 8 * * *",
            "segment": "newsletter",
            "message_type": "newsletter",
            "to": {"voyado": {"trigger_id": "newsletter"}},
        },
    },
    "contact_pressure": {
        "message_types": {
            "post_purchase": {"priority": "triggered", "max_hold": "1d"},
            "vip": {"priority": "triggered"},
            "newsletter": {"priority": "campaign", "max_hold": "1d"},
        },
        "caps": [
            {
                "name": "one post-purchase in two days",
                "message_types": ["post_purchase"],
                "max": 1,
                "per": "2d",
                "then": "drop",
            },
        ],
        "quarantines": [
            {
                "name": "no newsletter after a post-purchase",
                "after": ["post_purchase"],
                "keep_out_of": ["newsletter"],
                "for": "2d",
                "then": "drop",
            },
        ],
        "exclusions": {"b2b": ["post_purchase", "newsletter", "vip"]},
    },
}


class Shop:
    """A small chain: grills with an accessory, a power tool, customers, orders; and audience passes over it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.next_order = 1
        with hub.engine.begin() as conn:
            loaded = {"source": "pim", "loaded_at": DAY0 - timedelta(days=400)}
            conn.execute(
                product_t.insert(),
                [
                    {"sku": "GRL-1", "product_group": "grills", "is_accessory": False, "name": "Gas grill", **loaded},
                    {"sku": "GRL-A1", "product_group": "grills", "is_accessory": True, "name": "Grill cover", **loaded},
                    {"sku": "GRL-A2", "product_group": "grills", "is_accessory": True, "name": "Grill brush", **loaded},
                    {"sku": "PT-1", "product_group": "power_tools", "is_accessory": False, "name": "Drill", **loaded},
                    {"sku": "PNT-1", "product_group": "paint", "is_accessory": False, "name": "Paint", **loaded},
                ],
            )
            conn.execute(
                relation_t.insert(),
                [
                    {"sku": "GRL-1", "related_sku": "GRL-A1", "kind": "accessory", **loaded},
                    {"sku": "GRL-1", "related_sku": "GRL-A2", "kind": "accessory", **loaded},
                ],
            )

    def customer(self, email: str, *, b2b: bool = False, consent: str | None = "opt_in") -> int:
        at = DAY0 - timedelta(days=400)
        with self.hub.engine.begin() as conn:
            customer_id = conn.execute(
                customer_t.insert().values(
                    email=email, first_name=email.split("@")[0].title(), is_b2b=b2b, created_at=at, updated_at=at
                )
            ).inserted_primary_key[0]
            if consent is not None:
                conn.execute(
                    consent_t.insert().values(
                        customer_id=customer_id, channel="email", status=consent, source="erp", updated_at=at
                    )
                )
        return int(customer_id)

    def order(self, customer_id: int, at: datetime, *skus: str, price: str = "1000") -> int:
        number = self.next_order
        self.next_order += 1
        with self.hub.engine.begin() as conn:
            order_id = conn.execute(
                order_t.insert().values(
                    source="webshop",
                    external_id=f"o{number}",
                    customer_id=customer_id,
                    placed_at=at,
                    channel="web",
                    total=Decimal(price) * len(skus),
                    loaded_at=at,
                    currency="NOK",
                )
            ).inserted_primary_key[0]
            conn.execute(
                line_t.insert(),
                [
                    {
                        "order_id": order_id,
                        "line_no": i + 1,
                        "sku": sku,
                        "quantity": Decimal(1),
                        "unit_price": Decimal(price),
                        "line_total": Decimal(price),
                    }
                    for i, sku in enumerate(skus)
                ],
            )
        return int(order_id)

    def run(self, at: datetime) -> Any:
        self.hub.clock = FixedClock(at)
        return run_audience(self.hub, full=True)

    def decisions(self, customer_id: int, message_type: str | None = None) -> list[tuple[str, str, str]]:
        query = sa.select(log_t.c.message_type, log_t.c.decision, log_t.c.rule).where(
            log_t.c.customer_id == customer_id
        )
        if message_type is not None:
            query = query.where(log_t.c.message_type == message_type)
        with self.hub.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query.order_by(log_t.c.id))]

    def sent(self, customer_id: int, message_type: str) -> int:
        return sum(1 for _, decision, _ in self.decisions(customer_id, message_type) if decision == "send")

    def triggers_out(self, customer_id: int) -> list[dict[str, Any]]:
        query = sa.select(message_t.c.payload).where(
            message_t.c.customer_id == customer_id, message_t.c.kind == "trigger"
        )
        with self.hub.engine.connect() as conn:
            return [row[0] for row in conn.execute(query.order_by(message_t.c.id))]


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    """The chain on SQLite and on PostgreSQL: every programme test runs on both."""
    config = {**CONFIG, "project_dir": str(tmp_path), "database": {"url": database_url}}
    (tmp_path / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(tmp_path / "hub.yaml")
    hub.config_file = tmp_path / "hub.yaml"  # type: ignore[attr-defined]
    upgrade(hub.engine)
    yield Shop(hub)
    hub.close()


# ---------------------------------------------------------------------------------------- the hardware chain


def test_the_accessory_branch_is_chosen_by_accessories_in_the_order_or_within_the_window(shop: Shop) -> None:
    same_order = shop.customer("same@example.no")
    shop.order(same_order, DAY0, "GRL-1", "GRL-A1")
    before = shop.customer("before@example.no")
    shop.order(before, DAY0 - timedelta(days=10), "GRL-A2")
    shop.order(before, DAY0, "GRL-1")
    too_early = shop.customer("early@example.no")
    shop.order(too_early, DAY0 - timedelta(days=20), "GRL-A2")
    shop.order(too_early, DAY0, "GRL-1")
    none = shop.customer("none@example.no")
    shop.order(none, DAY0, "GRL-1")

    shop.run(DAY0 + timedelta(hours=1))

    def trigger_ids(customer_id: int) -> list[str]:
        return [payload["trigger_id"] for payload in shop.triggers_out(customer_id)]

    assert trigger_ids(same_order) == ["pp-care"]
    assert trigger_ids(before) == ["pp-care"]
    assert trigger_ids(too_early) == ["pp-accessories"]
    assert trigger_ids(none) == ["pp-accessories"]
    accessories = shop.triggers_out(none)[0]["data"]
    assert {accessories.get("accessory1Sku"), accessories.get("accessory2Sku")} == {"GRL-A1", "GRL-A2"}


def test_several_trigger_products_in_one_day_make_one_post_purchase_mail(shop: Shop) -> None:
    kari = shop.customer("kari@example.no")
    shop.order(kari, DAY0, "GRL-1", "PT-1")
    shop.order(kari, DAY0 + timedelta(hours=3), "PT-1")
    shop.run(DAY0 + timedelta(hours=1))
    shop.order(kari, DAY0 + timedelta(hours=5), "GRL-1")

    shop.run(DAY0 + timedelta(hours=6))

    assert shop.sent(kari, "post_purchase") == 1
    assert len(shop.triggers_out(kari)) == 1
    assert [rule for _, decision, rule in shop.decisions(kari, "post_purchase") if decision == "suppress"] == [
        "cap:one post-purchase in two days",
        "cap:one post-purchase in two days",
    ]


def test_b2b_customers_get_no_post_purchase_mail(shop: Shop) -> None:
    firm = shop.customer("innkjop@firma.no", b2b=True)
    shop.order(firm, DAY0, "GRL-1")

    shop.run(DAY0 + timedelta(hours=1))

    assert shop.decisions(firm, "post_purchase") == [("post_purchase", "suppress", "b2b")]
    assert shop.triggers_out(firm) == []


def test_the_newsletter_quarantine_after_a_post_purchase_lasts_exactly_two_days(shop: Shop) -> None:
    on_the_hour = shop.customer("hour@example.no")
    a_second_later = shop.customer("second@example.no")
    shop.run(DAY0 - timedelta(days=1))  # segments exist before the purchases
    shop.order(on_the_hour, DAY0, "GRL-1")
    shop.order(a_second_later, DAY0 + timedelta(seconds=1), "GRL-1")
    shop.run(DAY0)  # on_the_hour's mail is sent at 08:00:00
    shop.run(DAY0 + timedelta(seconds=1))  # a_second_later's at 08:00:01

    for day in (1, 2):
        shop.run(DAY0 + timedelta(days=day))  # the 08:00 newsletter, decided at 08:00:00 each day

    assert shop.sent(on_the_hour, "post_purchase") == shop.sent(a_second_later, "post_purchase") == 1
    # The newsletter of day 2 at 08:00 is exactly two days after the first mail and 1 s short of the second.
    assert [d for _, d, _ in shop.decisions(on_the_hour, "newsletter")][-2:] == ["suppress", "send"]
    assert [d for _, d, _ in shop.decisions(a_second_later, "newsletter")][-2:] == ["suppress", "suppress"]
    assert shop.decisions(a_second_later, "newsletter")[-1][2] == "quarantine:no newsletter after a post-purchase"


# ---------------------------------------------------------------------------------------- the housewares chain


def test_a_member_entering_tier_a_is_welcomed_once_not_on_every_evaluation(shop: Shop) -> None:
    regulars = [shop.customer(f"r{i}@example.no") for i in range(6)]
    for i, customer_id in enumerate(regulars):
        shop.order(customer_id, DAY0 - timedelta(days=30), "PNT-1", price=str(500 + 100 * i))
    shop.run(DAY0)  # the first evaluation: tier A members were already in, nobody is welcomed
    assert all(shop.sent(c, "vip") == 0 for c in regulars)
    newcomer = shop.customer("big@example.no")
    shop.order(newcomer, DAY0 + timedelta(hours=1), "PNT-1", price="50000")

    for hours in (2, 3, 4):
        shop.run(DAY0 + timedelta(hours=hours))

    assert shop.sent(newcomer, "vip") == 1
    assert all(shop.sent(c, "vip") == 0 for c in regulars)


# ---------------------------------------------------------------------------------------- hub explain


def test_hub_explain_gives_the_reason_for_sent_capped_quarantined_b2b_and_no_consent(shop: Shop) -> None:
    sent = shop.customer("sent@example.no")
    capped = shop.customer("capped@example.no")
    firm = shop.customer("firm@example.no", b2b=True)
    silent = shop.customer("silent@example.no", consent=None)
    shop.run(DAY0 - timedelta(days=1))
    for customer_id in (sent, capped, firm, silent):
        shop.order(customer_id, DAY0, "GRL-1")
    shop.order(capped, DAY0 + timedelta(hours=2), "PT-1")
    shop.run(DAY0 + timedelta(hours=3))
    shop.run(DAY0 + timedelta(days=1, seconds=1))  # the newsletter: sent's is quarantined

    def explain(customer: str, message: str) -> str:
        result = CliRunner().invoke(
            make_cli(),
            [
                "explain",
                customer,
                "--message",
                message,
                "-c",
                str(shop.hub.config_file),  # type: ignore[attr-defined]
                "--now",
                (DAY0 + timedelta(days=1, hours=1)).isoformat(),
            ],
        )
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "sent" in explain("sent@example.no", "post_purchase")
    assert "one post-purchase in two days" in explain("capped@example.no", "post_purchase")
    assert "no newsletter after a post-purchase" in explain("sent@example.no", "newsletter")
    assert "B2B" in explain("firm@example.no", "post_purchase")
    assert "consent" in explain("silent@example.no", "post_purchase")
    assert date(2025, 5, 5).isoformat() in explain(str(sent), "post_purchase")


# ---------------------------------------------------------------------------------------- the command line


def test_the_commands_print_segments_triggers_and_decisions_by_reason(shop: Shop) -> None:
    kari = shop.customer("kari@example.no")
    firm = shop.customer("firm@example.no", b2b=True)
    for customer_id in (kari, firm):
        shop.order(customer_id, DAY0, "GRL-1")
    shop.order(kari, DAY0 + timedelta(hours=1), "PT-1")
    config = str(shop.hub.config_file)  # type: ignore[attr-defined]
    at = ["--now", (DAY0 + timedelta(hours=2)).isoformat(), "-c", config]

    def run(*args: str) -> str:
        result = CliRunner().invoke(make_cli(), [*args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    audience = run("audience", *at)
    segments = run("segments", "-c", config)
    preview = run("segments", "preview", "newsletter", *at)

    # The 08:00 newsletter ticked within the first run's reach; Kari's is quarantined by her post-purchase mail.
    assert "triggers fired: post_purchase 3, welcome_tier_a 0, sales_newsletter 1" in audience
    assert "decisions: 1 send, 0 hold, 3 suppress" in audience
    assert (
        "suppressed: cap:one post-purchase in two days 1, quarantine:no newsletter after a post-purchase 1, b2b 1"
        in audience
    )
    assert "newsletter" in segments and "tier_a" in segments
    assert "kari@example.no" in preview and "firm@example.no" not in preview
