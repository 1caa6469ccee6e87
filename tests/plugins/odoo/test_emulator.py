"""The Odoo emulator answers as Odoo's JSON-2 and JSON-RPC dispatchers do: auth, errors (HTTP 200 for JSON-RPC),
domains, throttling, and the control API's Odoo-specific effects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from hub_plugins.odoo import emulator
from hub_plugins.odoo._state import DATABASE, DEFAULT_KEY, DEFAULT_LOGIN, OdooState
from hub_plugins.odoo.demo import seed_demo

OLD = "2025-01-06T09:00:00Z"
BEARER = {"Authorization": f"bearer {DEFAULT_KEY}"}


def json2(
    url: str, model: str, method: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(f"{url}/json/2/{model}/{method}", json=body, headers=BEARER if headers is None else headers)


def rpc(url: str, service: str, method: str, *args: Any) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"service": service, "method": method, "args": list(args)},
        "id": 7,
    }
    response = httpx.post(f"{url}/jsonrpc", json=body)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_json2_refuses_a_wrong_key_with_an_error_object_or_a_bare_string(url: str, state: OdooState) -> None:
    refused = json2(url, "res.partner", "search_read", {}, {"Authorization": "bearer nope"})
    assert refused.status_code == 401
    assert (refused.json()["name"], refused.json()["message"]) == ("werkzeug.exceptions.Unauthorized", "Invalid apikey")
    state.json2_error_style = "string"
    assert json2(url, "res.partner", "search_read", {}, {"Authorization": "bearer nope"}).json() == "Invalid apikey"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"domain": [["colour", "=", "red"]]}, "Invalid field res.partner.colour in leaf ('colour', '=', 'red')"),
        ({"domain": [["name", "~", "x"]]}, "Invalid leaf ('name', '~', 'x'): unknown operator '~'"),
        ({"order": "colour desc"}, 'Invalid "order" specified (colour desc).'),
        ({"fields": ["mobile"]}, "Invalid field 'mobile' on model 'res.partner'"),
    ],
)
def test_a_bad_domain_order_or_field_is_a_500_value_error(
    url: str, app: Any, body: dict[str, Any], message: str
) -> None:
    response = json2(url, "res.partner", "search_read", body)
    assert (response.status_code, response.json()["name"]) == (500, "builtins.ValueError")
    assert response.json()["message"].startswith(message)


def test_json_rpc_errors_come_with_http_200_and_the_servers_code(url: str, state: OdooState) -> None:
    denied = rpc(url, "object", "execute_kw", DATABASE, 2, "wrong", "res.partner", "search_count", [[]])
    assert denied["error"]["code"] == 200 and denied["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    state.rpc_error_code = 0
    missing = rpc(url, "object", "execute_kw", DATABASE, 2, DEFAULT_KEY, "res.partner", "read", [[999]])
    assert missing["error"]["code"] == 0 and missing["error"]["data"]["name"] == "odoo.exceptions.MissingError"


def test_json_rpc_authenticate_answers_the_uid_or_false(url: str, app: Any) -> None:
    assert rpc(url, "common", "authenticate", DATABASE, DEFAULT_LOGIN, DEFAULT_KEY, {})["result"] == 2
    assert rpc(url, "common", "authenticate", DATABASE, DEFAULT_LOGIN, "wrong", {})["result"] is False


def test_positional_execute_kw_arguments_map_to_odoos_signatures(url: str, state: OdooState) -> None:
    state.put("partners", [{"name": "A"}, {"name": "B"}], updated_at=OLD)
    args = [[["name", "=", "B"]], ["name", "is_company"]]
    answer = rpc(url, "object", "execute_kw", DATABASE, 2, DEFAULT_KEY, "res.partner", "search_read", args)
    assert [(r["name"], r["is_company"]) for r in answer["result"]] == [("B", False)]


def test_archived_rows_are_hidden_unless_active_test_is_false(url: str, state: OdooState) -> None:
    keep, gone = state.put("products", [{}, {}], updated_at=OLD)
    state.delete("products", gone, at=OLD)
    shown = json2(url, "product.product", "search", {"domain": []}).json()
    everything = json2(url, "product.product", "search", {"domain": [], "context": {"active_test": False}}).json()
    assert (shown, sorted(everything)) == ([int(keep)], sorted([int(keep), int(gone)]))


def test_deleting_an_order_unlinks_it_with_its_lines(url: str, state: OdooState) -> None:
    (order,) = state.put("orders", [{"order_line": [{"name": "note", "display_type": "line_note"}]}], updated_at=OLD)
    state.delete("orders", order)
    assert json2(url, "sale.order.line", "search_count", {"domain": []}).json() == 0
    assert json2(url, "sale.order", "search_count", {"domain": []}).json() == 0


def test_a_malformed_row_is_served_without_its_write_date(url: str, state: OdooState) -> None:
    (key,) = state.put("partners", [{}], updated_at=OLD)
    state.malformed("partners", key)
    (row,) = json2(url, "res.partner", "read", {"ids": [int(key)], "fields": ["write_date"]}).json()
    assert row == {"id": int(key), "write_date": False}


def test_the_throttle_is_a_429_with_retry_after_on_both_apis(url: str, state: OdooState) -> None:
    state.throttle(2, 3)
    throttled = json2(url, "res.partner", "search_count", {"domain": []})
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "3")
    assert throttled.json()["name"] == "werkzeug.exceptions.TooManyRequests"
    assert httpx.post(f"{url}/jsonrpc", json={}).status_code == 429


def test_several_databases_need_the_database_header(url: str, state: OdooState) -> None:
    state.databases = [DATABASE, "nordhjem_test"]
    assert json2(url, "res.partner", "search_count", {"domain": []}).status_code == 404
    assert (
        json2(url, "res.partner", "search_count", {"domain": []}, {**BEARER, "X-Odoo-Database": DATABASE}).json() == 1
    )


def test_json2_exists_from_odoo_19_and_the_version_says_which(url: str, state: OdooState) -> None:
    assert httpx.get(f"{url}/web/version").json()["version"] == "19.0"
    state.version = "17.0"
    assert json2(url, "res.partner", "search_count", {"domain": []}).status_code == 404
    assert rpc(url, "common", "version")["result"]["server_version"] == "17.0"


def test_the_demo_seed_makes_companies_with_their_contacts(tmp_path: Path) -> None:
    erp = tmp_path / "erp" / "customers.csv"
    erp.parent.mkdir()
    erp.write_text(
        "\ufeffkundenr;kundetype;medlemsnr;fornavn;etternavn;epost;mobil;adresse;postnr;sted;land;fodt;bedrift;orgnr;"
        "nyhetsbrev;endret\n"
        "100001;P;7063274069;HARALD;HAUGLAND;h@x.no;970-28-866;Industriveien 55;9425;HARSTAD;NO;06.11.1978;;;N;"
        "2024-06-13 20:10:18\n"
        "100010;B;7064027013;Kari;Pettersen;k@p.no;47293718;Tunet 58A;8653;MO I RANA;NO;;Pettersen Eiendom ENK;"
        "956236940;J;2024-04-15 16:50:15\n",
        encoding="utf-8",
    )
    state = OdooState()
    assert seed_demo(state, erp_csv=erp)["partners"] == 3
    partners = {row["name"]: row for row in state.tables["res.partner"].values()}
    company = partners["Pettersen Eiendom ENK"]
    assert company["is_company"] and company["write_date"].isoformat() == "2024-04-15T14:50:15"
    assert partners["Kari Pettersen"]["parent_id"] == company["id"]


def test_the_sandbox_emulator_without_the_demo_export_is_seeded_with_synthetic_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    records = emulator.EMULATOR.app().state.odoo.summary()["records"]
    assert (records["res.partner"], records["product.product"]) == (1 + 300 + 50, 40)
    assert records["sale.order"] > 50


def test_a_fault_set_through_the_control_api_answers_the_next_call_on_its_model(url: str, state: OdooState) -> None:
    fault = {"name": "odoo.exceptions.AccessError", "message": "No access", "count": 1, "model": "sale.order"}
    assert httpx.post(f"{url}/_emulator/faults", json=fault).status_code == 204
    assert "result" in rpc(url, "object", "execute_kw", DATABASE, 2, DEFAULT_KEY, "res.partner", "search_count", [[]])
    refused = rpc(url, "object", "execute_kw", DATABASE, 2, DEFAULT_KEY, "sale.order", "search_count", [[]])
    assert refused["error"]["data"]["name"] == "odoo.exceptions.AccessError"
    assert json2(url, "sale.order", "search_count", {"domain": []}).json() == 0
