"""The Business Central emulator answers as API v2.0 and Entra ID do: tokens, the gate, OData options and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from hub_plugins.business_central import emulator
from hub_plugins.business_central._state import DEFAULT_CLIENT, DEFAULT_TENANT, SCOPE, BcState
from hub_plugins.business_central.demo import seed_demo

OLD = "2025-01-06T09:00:00Z"
FORM = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT[0],
    "client_secret": DEFAULT_CLIENT[1],
    "scope": SCOPE,
}


def token(url: str, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/{form.pop('tenant', DEFAULT_TENANT)}/oauth2/v2.0/token", data={**FORM, **form})


@pytest.fixture
def api(url: str, app: Any) -> httpx.Client:
    bearer = token(url).json()["access_token"]
    root = f"{url}/v2.0/{DEFAULT_TENANT}/production/api/v2.0"
    with httpx.Client(base_url=root + "/", headers={"Authorization": f"Bearer {bearer}"}) as client:
        yield client


def company(state: BcState, entity: str) -> str:
    return f"companies({state.first.id})/{entity}"


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "00000000-1111-2222-3333-444444444444"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"tenant": "contoso.onmicrosoft.com"}, 400, "invalid_request", 90002),
    ],
)
def test_the_token_endpoint_refuses_as_entra_id_does(
    url: str, app: Any, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = token(url, **form)
    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def test_a_granted_token_is_a_bearer_token_for_an_hour(url: str, app: Any) -> None:
    body = token(url, tenant="nordhjem.onmicrosoft.com").json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599) and body["access_token"]


def test_the_api_refuses_a_request_without_a_valid_token(url: str, app: Any) -> None:
    response = httpx.get(
        f"{url}/v2.0/{DEFAULT_TENANT}/production/api/v2.0/companies", headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Authentication_InvalidCredentials"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"$filter": "lastModifiedDateTime gt '2025-01-01'"},
            "The types 'Edm.DateTimeOffset' and 'Edm.String' are not compatible.",
        ),
        (
            {"$filter": "modifiedAt gt 2025-01-01T00:00:00Z"},
            "Could not find a property named 'modifiedAt' on type 'Microsoft.NAV.customer'.",
        ),
        (
            {"$filter": "lastModifiedDateTime gtt 2025-01-01T00:00:00Z"},
            "Syntax error at position 21 in 'lastModifiedDateTime gtt 2025-01-01T00:00:00Z'.",
        ),
        ({"$orderby": "name"}, "Could not find a property named 'name' on type 'Microsoft.NAV.customer'."),
        (
            {"$expand": "salesInvoiceLines"},
            "Could not find a property named 'salesInvoiceLines' on type 'Microsoft.NAV.customer'.",
        ),
        ({"$top": "-1"}, "Invalid value '-1' for $top query option found."),
    ],
)
def test_a_bad_query_option_is_a_400_with_an_odata_error_body(
    api: httpx.Client, state: BcState, query: dict[str, str], message: str
) -> None:
    response = api.get(company(state, "customers"), params=query)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "BadRequest")
    assert error["message"].startswith(message)


def test_filters_combine_with_and_or_not_and_parentheses(api: httpx.Client, state: BcState) -> None:
    a, b, c = state.put("customers", [{"type": "Company"}, {}, {"city": "Bergen"}], updated_at=OLD)
    state.put("customers", [{"_key": c}], updated_at="2025-02-01T10:00:00.250Z")
    query = "(type eq 'Company' or city eq 'Bergen') and not (lastModifiedDateTime lt 2025-01-06)"
    got = api.get(company(state, "customers"), params={"$filter": query, "$orderby": "number desc"}).json()["value"]
    assert [r["id"] for r in got] == [c, a]
    assert got[0]["lastModifiedDateTime"] == "2025-02-01T10:00:00.250Z"
    assert b not in [r["id"] for r in got]


def test_server_driven_paging_follows_the_preferred_page_size(api: httpx.Client, state: BcState) -> None:
    keys = state.put("items", [{} for _ in range(5)], updated_at=OLD)
    response = api.get(
        company(state, "items"), headers={"Prefer": "odata.maxpagesize=2"}, params={"$select": "id,number"}
    )
    assert response.headers["preference-applied"] == "odata.maxpagesize=2"
    seen = []
    while True:
        body = response.json()
        seen += [r["id"] for r in body["value"]]
        assert all(set(r) == {"@odata.etag", "id", "number"} for r in body["value"])
        if "@odata.nextLink" not in body:
            break
        assert "$skiptoken=" in body["@odata.nextLink"] and "$select=id,number" in body["@odata.nextLink"]
        response = api.get(body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"})
    assert sorted(seen) == sorted(keys) and len(seen) == 5


def test_the_throttle_answers_429_with_retry_after_and_an_odata_error(api: httpx.Client, state: BcState) -> None:
    state.throttle(1, 2)
    response = api.get("companies")
    assert (response.status_code, response.headers["retry-after"]) == (429, "2")
    assert response.json()["error"]["code"] == "Application_TooManyRequests"
    assert api.get("companies").status_code == 200


def test_the_request_window_of_an_app_is_enforced(api: httpx.Client, state: BcState) -> None:
    state.window = (2, 300.0)
    assert [api.get("companies").status_code for _ in range(3)] == [200, 200, 429]


def test_a_single_record_and_an_unknown_company_or_set(api: httpx.Client, state: BcState) -> None:
    (key,) = state.put("salesInvoices", [{}], updated_at=OLD)
    one = api.get(company(state, f"salesInvoices({key})"), params={"$expand": "salesInvoiceLines"}).json()
    assert one["id"] == key and len(one["salesInvoiceLines"]) == 1
    assert api.get("companies(00000000-0000-0000-0000-000000000001)/customers").status_code == 404
    assert api.get(company(state, "vendors")).json()["error"]["code"] == "BadRequest_NotFound"


def test_the_control_api_refuses_unknown_streams_keys_and_fields(url: str, app: Any) -> None:
    assert httpx.post(f"{url}/_emulator/records/vendors", json={"records": [{}]}).status_code == 404
    assert httpx.delete(f"{url}/_emulator/records/customers/nope").status_code == 404
    refused = httpx.post(f"{url}/_emulator/records/customers", json={"records": [{"colour": "red"}]})
    assert refused.status_code == 422 and "colour" in refused.json()["message"]


def test_the_demo_seed_makes_b2b_customers_with_their_contacts(tmp_path: Path) -> None:
    erp = tmp_path / "erp" / "customers.csv"
    erp.parent.mkdir()
    erp.write_text(
        "\ufeffkundenr;kundetype;medlemsnr;fornavn;etternavn;epost;mobil;adresse;postnr;sted;land;fodt;bedrift;orgnr;nyhetsbrev;endret\n"
        "100001;P;7063274069;HARALD;HAUGLAND;h@x.no;970-28-866;Industriveien 55;9425;HARSTAD;NO;06.11.1978;;;N;"
        "2024-06-13 20:10:18\n"
        "100010;B;7064027013;Kari;Pettersen;k@p.no;47293718;Tunet 58A;8653;MO I RANA;NO;;Pettersen Eiendom ENK;"
        "956236940;J;2024-04-15 16:50:15\n",
        encoding="utf-8",
    )
    state = BcState()
    counts = seed_demo(state, erp_csv=erp)
    assert (counts["customers"], counts["contacts"], counts["items"]) == (2, 2, 40)
    company_customer = next(r for r in state.first.tables["customers"].values() if r.data["type"] == "Company")
    assert company_customer.data["displayName"] == "Pettersen Eiendom ENK"
    buyer = next(r for r in state.first.tables["contacts"].values() if r.data["type"] == "Person")
    assert (buyer.data["displayName"], buyer.data["companyName"]) == ("Kari Pettersen", "Pettersen Eiendom ENK")
    assert counts["salesInvoices"] >= 1


def test_the_sandbox_emulator_without_the_demo_export_is_seeded_with_synthetic_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    records = emulator.EMULATOR.app().state.bc.summary()["companies"][0]["records"]
    assert (records["customers"], records["contacts"], records["items"]) == (300, 100, 40)
    assert records["salesInvoices"] > 50
