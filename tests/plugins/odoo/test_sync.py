"""Odoo through a real sync (a Hub on a temp SQLite project, the shipped odoo_*.yaml mappings), over both protocols."""

from __future__ import annotations

from hub.app import Hub
from hub_plugins.odoo._state import OdooState
from tests.plugins.odoo._support import rows, sync
from tests.plugins.odoo.conftest import BOTH

OLD = "2025-01-06T09:00:00Z"
LATER = "2025-01-07T09:00:00Z"


def seed(state: OdooState) -> dict[str, str]:
    """A private customer, a company with its buyer, a product and a confirmed order of the company's buyer."""
    (private,) = state.put(
        "partners", [{"name": "kari NORDMANN", "email": "Kari@Example.no", "phone": "912 34 567"}], updated_at=OLD
    )
    (company,) = state.put(
        "partners",
        [{"name": "Pettersen Eiendom ENK", "is_company": True, "email": "post@pettersen.no"}],
        updated_at=OLD,
    )
    (buyer,) = state.put(
        "partners", [{"name": "Ola Pettersen", "parent_id": int(company), "email": "ola@pettersen.no"}], updated_at=OLD
    )
    category = [5, "All / Saleable / Grills"]
    (grill,) = state.put(
        "products", [{"default_code": "GRL-00001", "name": "Gassgrill", "categ_id": category}], updated_at=OLD
    )
    lines = [
        {"product_id": int(grill), "product_uom_qty": 2, "price_unit": 4990.0},
        {"display_type": "line_section", "name": "Grill"},
    ]
    (order,) = state.put("orders", [{"partner_id": int(buyer), "order_line": lines}], updated_at=OLD)
    return {"private": private, "company": company, "buyer": buyer, "grill": grill, "order": order}


@BOTH
def test_a_change_made_between_two_syncs_arrives_exactly_once(hub: Hub, state: OdooState) -> None:
    keys = seed(state)
    assert sync(hub) == {"partners": 3, "orders": 1, "products": 1}
    state.put("partners", [{"_key": keys["private"], "city": "bergen"}], updated_at=LATER)
    assert sync(hub) == {"partners": 1, "orders": 0, "products": 0}
    assert sync(hub) == {"partners": 0, "orders": 0, "products": 0}
    assert rows(hub, "SELECT city FROM customer WHERE first_name = 'Kari'") == [("Bergen",)]


@BOTH
def test_a_company_and_its_contact_arrive_as_b2b_with_the_company(hub: Hub, state: OdooState) -> None:
    seed(state)
    sync(hub)
    found = rows(hub, "SELECT email, first_name, last_name, company_name, is_b2b FROM customer ORDER BY email")
    assert found == [
        ("kari@example.no", "Kari", "Nordmann", None, 0),
        ("ola@pettersen.no", "Ola", "Pettersen", "Pettersen Eiendom ENK", 1),
        ("post@pettersen.no", None, None, "Pettersen Eiendom ENK", 1),
    ]


def test_an_order_is_an_erp_order_of_its_partner_with_its_product_lines(hub: Hub, state: OdooState) -> None:
    seed(state)
    sync(hub)
    (order,) = rows(
        hub, "SELECT o.channel, o.currency, o.total, c.email FROM orders o JOIN customer c ON c.id = o.customer_id"
    )
    assert (order[0], order[1], float(order[2]), order[3]) == ("erp", "NOK", 9980.0, "ola@pettersen.no")
    lines = rows(hub, "SELECT sku, quantity FROM order_line")
    assert [(sku, float(quantity)) for sku, quantity in lines] == [("GRL-00001", 2.0)]
    assert rows(hub, "SELECT product_group, category FROM product") == [("grills", "All / Saleable / Grills")]


def test_a_cancelled_order_and_an_archived_product_are_deleted(hub: Hub, state: OdooState) -> None:
    keys = seed(state)
    sync(hub)
    state.put("orders", [{"_key": keys["order"], "state": "cancel"}], updated_at=LATER)
    state.delete("products", keys["grill"], at=LATER)
    assert sync(hub) == {"partners": 0, "orders": 1, "products": 1}
    assert rows(hub, "SELECT count(*) FROM orders") == [(0,)]
    assert rows(hub, "SELECT deleted_at IS NOT NULL FROM product WHERE sku = 'GRL-00001'") == [(1,)]
