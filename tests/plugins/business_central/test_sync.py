"""Business Central through a real sync (a Hub on a temp SQLite project, the shipped bc_*.yaml mappings)."""

from __future__ import annotations

from decimal import Decimal

from hub.app import Hub
from hub_plugins.business_central._state import BcState
from tests.plugins.business_central._support import rows, sync

OLD = "2025-01-06T09:00:00Z"
LATER = "2025-01-07T09:00:00Z"
NOTHING = {"customers": 0, "contacts": 0, "items": 0, "salesInvoices": 0, "salesCreditMemos": 0}


def seed_business(state: BcState) -> dict[str, str]:
    """A private customer, a business with its company contact and its buyer, an item and an invoice."""
    private, business = state.put(
        "customers",
        [
            {
                "number": "100001",
                "displayName": "kari NORDMANN",
                "email": "Kari@Example.no",
                "phoneNumber": "912 34 567",
            },
            {
                "number": "100010",
                "type": "Company",
                "displayName": "Pettersen Eiendom ENK",
                "email": "post@pettersen.no",
            },
        ],
        updated_at=OLD,
    )
    company = {"companyNumber": "CT100010", "companyName": "Pettersen Eiendom ENK", "email": "post@pettersen.no"}
    state.put(
        "contacts",
        [
            {"number": "CT100010", "type": "Company", "displayName": "Pettersen Eiendom ENK", **company},
            {
                **company,
                "number": "CT100011",
                "type": "Person",
                "displayName": "Ola Pettersen",
                "email": "ola@pettersen.no",
            },
        ],
        updated_at=OLD,
    )
    item = {"number": "GRL-00001", "displayName": "Gassgrill", "itemCategoryCode": "GRILLS", "unitPrice": 4990}
    state.put("items", [item], updated_at=OLD)
    lines = [
        {"lineObjectNumber": "GRL-00001", "quantity": 2, "unitPrice": 4990},
        {"lineType": "Comment", "description": "Levert"},
    ]
    invoice = {"customerNumber": "100010", "invoiceDate": "2025-01-05", "salesInvoiceLines": lines}
    (key,) = state.put("salesInvoices", [invoice], updated_at=OLD)
    return {"private": private, "business": business, "invoice": key}


def test_a_change_made_between_two_syncs_arrives_exactly_once(hub: Hub, state: BcState) -> None:
    keys = seed_business(state)
    assert sync(hub) == {"customers": 2, "contacts": 2, "items": 1, "salesInvoices": 1, "salesCreditMemos": 0}
    state.put("customers", [{"_key": keys["private"], "city": "bergen"}], updated_at=LATER)
    assert sync(hub) == {**NOTHING, "customers": 1}
    assert sync(hub) == NOTHING
    assert rows(hub, "SELECT city FROM customer WHERE first_name = 'Kari'") == [("Bergen",)]


def test_a_company_customer_and_its_buyer_arrive_as_b2b_with_the_company(hub: Hub, state: BcState) -> None:
    seed_business(state)
    sync(hub)
    found = rows(hub, "SELECT email, first_name, last_name, company_name, is_b2b FROM customer ORDER BY email")
    assert found == [
        ("kari@example.no", "Kari", "Nordmann", None, 0),
        ("ola@pettersen.no", "Ola", "Pettersen", "Pettersen Eiendom ENK", 1),
        ("post@pettersen.no", None, None, "Pettersen Eiendom ENK", 1),
    ]


def test_an_invoice_is_an_erp_order_of_its_customer_without_its_comment_lines(hub: Hub, state: BcState) -> None:
    seed_business(state)
    sync(hub)
    (order,) = rows(
        hub, "SELECT o.channel, o.total, c.company_name FROM orders o JOIN customer c ON c.id = o.customer_id"
    )
    assert (order[0], Decimal(str(order[1])), order[2]) == ("erp", Decimal("9980"), "Pettersen Eiendom ENK")
    assert [(sku, float(quantity)) for sku, quantity in rows(hub, "SELECT sku, quantity FROM order_line")] == [
        ("GRL-00001", 2.0)
    ]


def test_a_credit_memo_is_a_return_of_its_invoice_with_negative_lines(hub: Hub, state: BcState) -> None:
    keys = seed_business(state)
    lines = [{"lineObjectNumber": "GRL-00001", "quantity": 1, "unitPrice": 4990}]
    memo = {"customerNumber": "100010", "invoiceId": keys["invoice"], "salesCreditMemoLines": lines}
    state.put("salesCreditMemos", [memo], updated_at=LATER)
    sync(hub)
    returned = rows(hub, "SELECT is_return, original_order_external_id, total FROM orders WHERE is_return")
    assert [(r[0], r[1], float(r[2])) for r in returned] == [(1, keys["invoice"], -4990.0)]
    lines = rows(hub, "SELECT l.quantity FROM order_line l JOIN orders o ON o.id = l.order_id WHERE o.is_return")
    assert [float(q) for (q,) in lines] == [-1.0]


def test_a_draft_invoice_is_no_order_until_it_is_posted(hub: Hub, state: BcState) -> None:
    keys = seed_business(state)
    (draft,) = state.put("salesInvoices", [{"customerNumber": "100001", "status": "Draft"}], updated_at=OLD)
    sync(hub)
    assert rows(hub, "SELECT external_id FROM orders") == [(keys["invoice"],)]
    state.put("salesInvoices", [{"_key": draft, "status": "Open"}], updated_at=LATER)
    assert sync(hub)["salesInvoices"] == 1
    assert sorted(rows(hub, "SELECT external_id FROM orders")) == sorted([(keys["invoice"],), (draft,)])
