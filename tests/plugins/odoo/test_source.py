"""The Odoo source against its emulator, over JSON-2 and JSON-RPC: what it asks, the cursor, records, errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from hub import SourceError
from hub.testing.source import read_all as records
from hub_plugins.odoo._state import OdooState
from hub_plugins.odoo.source import OdooSource
from tests.plugins.odoo.conftest import BOTH, Switch

Make = Callable[..., OdooSource]
OLD = "2025-01-06T09:00:00Z"
LATER = "2025-01-07T09:00:00Z"


@BOTH
def test_a_read_from_a_cursor_asks_for_what_follows_it_in_write_date_order(
    state: OdooState, source: Make, switch: Switch
) -> None:
    state.put("partners", [{}, {}], updated_at=OLD)
    reader = source()
    _, cursor = records(reader, "partners")
    switch.calls.clear()
    records(reader, "partners", cursor)
    (asked,) = switch.arguments("search_read")
    assert asked["domain"] == [
        ["write_date", ">=", "2025-01-06 09:00:00"],
        "|",
        ["write_date", ">=", "2025-01-06 09:00:01"],
        ["id", "not in", cursor["ids"]],
        ["type", "=", "contact"],
        ["id", "not in", [1]],
    ]
    assert (asked["order"], asked["offset"], asked["limit"]) == ("write_date asc, id asc", 0, 200)
    assert asked["context"] == {"active_test": False}


@BOTH
def test_json2_sends_the_key_as_a_bearer_and_the_database_header(
    state: OdooState, source: Make, switch: Switch, protocol: str
) -> None:
    records(source(), "products")
    call = switch.calls[-1]
    if protocol == "json2":
        assert call.path == "/json/2/product.product/search_read"
        assert call.headers["authorization"].startswith("bearer ") and call.headers["x-odoo-database"] == "nordhjem"
    else:
        assert call.path == "/jsonrpc" and "authorization" not in call.headers
        logins = [c for c in switch.calls if c.path == "/jsonrpc" and c.body["params"]["method"] == "authenticate"]
        assert len(logins) == 1  # the uid is kept


def test_rows_sharing_a_second_are_read_once_across_pages(state: OdooState, source: Make) -> None:
    keys = [int(k) for k in state.put("partners", [{} for _ in range(5)], updated_at=OLD)]
    for n, key in enumerate(keys):  # one second, different microseconds, as PostgreSQL keeps them
        state.tables["res.partner"][key]["write_date"] = datetime(2025, 1, 6, 9, 0, 0, 900_000 - n * 1000)
    reader = source(page_size=2)
    got, cursor = records(reader, "partners")
    assert sorted(r["id"] for r in got) == keys
    assert cursor == {"write_date": "2025-01-06 09:00:00", "ids": keys}
    (late,) = state.put("partners", [{}], updated_at=OLD)
    assert [r["id"] for r in records(reader, "partners", cursor)[0]] == [int(late)]


def test_a_row_changed_during_a_read_skips_none_of_the_others(state: OdooState, source: Make) -> None:
    keys = state.put("partners", [{} for _ in range(6)], updated_at=OLD)
    batches = iter(source(page_size=2).read("partners", None))
    first = next(batches)
    state.put("partners", [{"_key": str(first.records[0]["id"])}], updated_at=LATER)
    rest = [r["id"] for batch in batches for r in batch.records]
    assert sorted({r["id"] for r in first.records} | set(rest)) == sorted(int(k) for k in keys)
    assert rest[-1] == first.records[0]["id"]  # the change comes at the end of the same read


def test_empty_values_are_null_but_booleans_stay_booleans(state: OdooState, source: Make) -> None:
    state.put("partners", [{"email": False, "phone": False}], updated_at=OLD)
    (record,), _ = records(source(), "partners")
    assert (record["email"], record["phone"], record["parent_id"]) == (None, None, None)
    assert (record["is_company"], record["active"]) == (False, True)


def test_a_company_and_its_contact_carry_the_company_name(state: OdooState, source: Make) -> None:
    (company,) = state.put("partners", [{"name": "Pettersen Eiendom ENK", "is_company": True}], updated_at=OLD)
    (person,) = state.put("partners", [{"name": "Kari Pettersen", "parent_id": int(company)}], updated_at=OLD)
    got = {r["id"]: r for r in records(source(), "partners")[0]}
    assert got[int(company)]["commercial_company_name"] == "Pettersen Eiendom ENK"
    assert got[int(company)]["_person_name"] is None
    assert got[int(person)]["parent_id"] == [int(company), "Pettersen Eiendom ENK"]
    assert (got[int(person)]["commercial_company_name"], got[int(person)]["_person_name"]) == (
        "Pettersen Eiendom ENK",
        "Kari Pettersen",
    )


@BOTH
def test_an_order_comes_with_its_lines_and_their_skus(state: OdooState, source: Make) -> None:
    (grill,) = state.put("products", [{"default_code": "GRL-00001", "name": "Gassgrill"}], updated_at=OLD)
    line = {"product_id": int(grill), "product_uom_qty": 2, "price_unit": 4990.0}
    note = {"display_type": "line_note", "name": "Levering fredag"}
    (order,) = state.put("orders", [{"order_line": [[0, 0, line], note]}], updated_at=OLD)
    (record,), _ = records(source(), "orders")
    assert record["id"] == int(order) and record["amount_total"] == 9980.0
    assert [(x["sku"], x["product_uom_qty"], x["display_type"]) for x in record["lines"]] == [
        ("GRL-00001", 2.0, None),
        (None, 1.0, "line_note"),
    ]


def test_quotations_and_cancelled_orders_are_tombstones(state: OdooState, source: Make) -> None:
    quotation, cancelled, sale = state.put("orders", [{"state": "draft"}, {"state": "cancel"}, {}], updated_at=OLD)
    got = {str(r["id"]): r for r in records(source(), "orders")[0]}
    assert got[quotation]["_deleted"] and got[cancelled]["_deleted"] and "_deleted" not in got[sale]
    assert "_deleted" not in records(source(order_states=["sale", "cancel"]), "orders")[0][1]


@BOTH
def test_an_http_200_json_rpc_error_is_an_error_and_a_transient_one_is_retried(
    state: OdooState, source: Make, protocol: str
) -> None:
    state.put("products", [{}], updated_at=OLD)
    state.faults.append(("psycopg2.errors.SerializationFailure", "could not serialize access", None))
    assert len(records(source(), "products")[0]) == 1
    state.faults.append(("odoo.exceptions.AccessError", "You are not allowed to access 'Product' records.", None))
    with pytest.raises(SourceError, match=r"may not read product.product \(AccessError: You are not allowed"):
        records(source(), "products")


@pytest.mark.parametrize("code", [200, 0])
def test_a_refused_json_rpc_login_fails_check_in_plain_words(source: Make, state: OdooState, code: int) -> None:
    state.rpc_error_code = code
    result = source(protocol="jsonrpc", api_key="wrong").check()
    assert not result.ok
    assert "refused the credentials (AccessDenied: the login 'hub@nordhjem.no' was refused" in result.message
    assert result.message.endswith("check username, api_key and database")


def test_a_wrong_execute_kw_password_is_access_denied_not_a_retry(state: OdooState, source: Make) -> None:
    reader = source(protocol="jsonrpc")
    reader.client.uid  # noqa: B018  logs in
    reader.client._key = "changed-since"  # type: ignore[union-attr]
    with pytest.raises(SourceError, match=r"Odoo refused the credentials \(AccessDenied: Access Denied\)"):
        records(reader, "products")


@pytest.mark.parametrize(
    ("style", "said"), [("object", "Unauthorized: Invalid apikey"), ("string", "HTTP 401: Invalid apikey")]
)
def test_a_refused_json2_key_fails_check_in_both_body_styles(
    source: Make, state: OdooState, style: str, said: str
) -> None:
    state.json2_error_style = style
    result = source(protocol="json2", api_key="wrong").check()
    assert not result.ok and result.message.endswith(f"refused the credentials ({said}); check api_key")


def test_json2_on_an_older_server_says_so_and_json_rpc_still_reads_it(state: OdooState, source: Make) -> None:
    state.version = "17.0"
    assert (
        source(protocol="json2")
        .check()
        .message.endswith("runs Odoo 17.0, which has no JSON-2 API (19.0 brought it); set protocol: jsonrpc")
    )
    result = source(protocol="jsonrpc").check()
    assert result.ok and "version 17.0" in result.message


def test_an_unknown_database_is_not_retried(state: OdooState, source: Make, switch: Switch) -> None:
    result = source(protocol="jsonrpc", database="nordhjem_test").check()
    assert not result.ok and 'database "nordhjem_test" does not exist' in result.message
    assert len([c for c in switch.calls if c.path == "/jsonrpc"]) == 2  # version, then one login attempt


def test_check_names_a_model_the_user_may_not_read(state: OdooState, source: Make) -> None:
    state.faults.append(
        ("odoo.exceptions.AccessError", "You are not allowed to access 'Sales Order' records.", "sale.order")
    )
    result = source(streams=["orders"]).check()
    assert not result.ok
    assert result.message.endswith(
        "the API user may not read sale.order (AccessError: You are not allowed to access 'Sales Order' records.); "
        "grant it read access"
    )


def test_domains_and_extra_fields_come_from_the_settings(state: OdooState, source: Make, switch: Switch) -> None:
    state.put("partners", [{"customer_rank": 0}, {"customer_rank": 2}], updated_at=OLD)
    got, _ = records(
        source(domains={"partners": [["customer_rank", ">", 0]]}, extra_fields={"partners": ["vat"]}), "partners"
    )
    assert [r["customer_rank"] for r in got] == [2] and "vat" in got[0]
    asked = switch.arguments("search_read")[-1]
    assert ["type", "=", "contact"] not in asked["domain"] and "vat" in asked["fields"]
