"""The Akeneo emulator over loopback HTTP: OAuth, search validation, search-after paging, errors, reference data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from hub_plugins.akeneo._state import DEFAULT_CLIENT, DEFAULT_USER, AkeneoState
from hub_plugins.akeneo.demo import product_uuid
from tests.plugins.akeneo._support import product

BASIC = "Basic " + base64.b64encode(":".join(DEFAULT_CLIENT).encode()).decode()
PRODUCTS = "/api/rest/v1/products-uuid"


def token_response(url: str, body: dict[str, str], *, basic: str = BASIC) -> httpx.Response:
    return httpx.post(f"{url}/api/oauth/v1/token", json=body, headers={"Authorization": basic})


def login(url: str) -> dict[str, str]:
    body = {"grant_type": "password", "username": DEFAULT_USER[0], "password": DEFAULT_USER[1]}
    return token_response(url, body).json()  # type: ignore[no-any-return]


@pytest.fixture
def api(app: object, url: str) -> httpx.Client:
    """A client with a valid bearer token."""
    token = login(url)["access_token"]
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    yield client  # type: ignore[misc]
    client.close()


# -- OAuth ----------------------------------------------------------------------------------------------------------


def test_the_password_grant_answers_a_bearer_token_and_a_refresh_token(app: object, url: str) -> None:
    body = login(url)
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["scope"] is None
    assert body["access_token"] and body["refresh_token"]


def test_a_form_encoded_password_grant_is_accepted_too(app: object, url: str) -> None:
    form = {"grant_type": "password", "username": DEFAULT_USER[0], "password": DEFAULT_USER[1]}
    response = httpx.post(f"{url}/api/oauth/v1/token", data=form, headers={"Authorization": BASIC})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("basic", "password", "message"),
    [
        (
            "Basic " + base64.b64encode(b"hub_client_id:wrong").decode(),
            DEFAULT_USER[1],
            'Parameter "client_id" is missing or does not match any client, or secret is invalid',
        ),
        (BASIC, "wrong", "No user found for the given username and password"),
    ],
)
def test_refused_credentials_are_a_422_with_akeneos_message(
    app: object, url: str, basic: str, password: str, message: str
) -> None:
    body = {"grant_type": "password", "username": DEFAULT_USER[0], "password": password}
    response = token_response(url, body, basic=basic)
    assert (response.status_code, response.json()) == (422, {"code": 422, "message": message})


def test_a_refresh_token_gives_a_new_pair_once(app: object, url: str) -> None:
    refresh = login(url)["refresh_token"]
    renewed = token_response(url, {"grant_type": "refresh_token", "refresh_token": refresh})
    again = token_response(url, {"grant_type": "refresh_token", "refresh_token": refresh})
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != refresh
    assert (again.status_code, again.json()["message"]) == (422, "Refresh token is invalid or has expired")


def test_no_token_an_unknown_one_and_an_expired_one_are_401s(app: object, state: AkeneoState, url: str) -> None:
    token = login(url)["access_token"]
    state.expire_tokens()
    answers = [
        httpx.get(f"{url}{PRODUCTS}", headers=headers)
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {token}"})
    ]
    assert [(r.status_code, r.json()["message"]) for r in answers] == [
        (401, "Authentication is required"),
        (401, "The access token provided is invalid."),
        (401, "The access token provided has expired."),
    ]


def test_the_token_lifetime_is_configurable(app: object, url: str) -> None:
    httpx.post(f"{url}/_emulator/config", json={"token_ttl": 0})
    body = login(url)
    answer = httpx.get(f"{url}{PRODUCTS}", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert body["expires_in"] == 0
    assert (answer.status_code, answer.json()["message"]) == (401, "The access token provided has expired.")


# -- search ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "status", "message"),
    [
        ("{updated:", 400, "Search query parameter should be valid JSON."),
        ('"updated"', 422, 'Search query parameter has to be an array, "string" given.'),
        (
            '{"updated":{"operator":">"}}',
            422,
            'Structure of filter "updated" should respect this structure: '
            '{"updated":[{"operator": "my_operator", "value": "my_value"}]}',
        ),
        ('{"updated":[{"value":"2025-01-01 00:00:00"}]}', 422, 'Operator is missing for the property "updated".'),
        (
            '{"updated":[{"operator":"IN","value":[]}]}',
            422,
            'Filter on property "updated" is not supported or does not support operator "IN"',
        ),
        (
            '{"updated":[{"operator":">","value":"2025-01-01T00:00:00Z"}]}',
            422,
            'Property "updated" expects a string with the format "yyyy-mm-dd H:i:s" as data, '
            '"2025-01-01T00:00:00Z" given.',
        ),
        (
            '{"colour":[{"operator":"=","value":"red"}]}',
            422,
            'Filter on property "colour" is not supported or does not support operator "="',
        ),
    ],
)
def test_a_bad_search_is_refused_with_akeneos_error_body(
    api: httpx.Client, search: str, status: int, message: str
) -> None:
    response = api.get(PRODUCTS, params={"search": search})
    assert (response.status_code, response.json()) == (status, {"code": status, "message": message})


def test_search_on_updated_returns_the_products_changed_after_the_time(api: httpx.Client, state: AkeneoState) -> None:
    state.put("products", [product("OLD")], updated_at="2025-01-01T10:00:00Z")
    (new,) = state.put("products", [product("NEW")], updated_at="2025-01-01T10:00:01Z")
    search = json.dumps({"updated": [{"operator": ">", "value": "2025-01-01 10:00:00"}]})
    items = api.get(PRODUCTS, params={"search": search}).json()["_embedded"]["items"]
    assert [(i["uuid"], i["updated"]) for i in items] == [(new, "2025-01-01T10:00:01+00:00")]


def test_search_after_pages_follow_links_next_in_uuid_order(api: httpx.Client, state: AkeneoState) -> None:
    keys = state.put("products", [product(f"P{n}") for n in range(5)], updated_at="2025-01-01T10:00:00Z")
    seen: list[str] = []
    pages = 0
    url: str | None = f"{PRODUCTS}?pagination_type=search_after&limit=2"
    while url is not None:
        body = api.get(url).json()
        seen += [item["uuid"] for item in body["_embedded"]["items"]]
        url = body["_links"].get("next", {}).get("href")
        pages += 1
    assert (seen, pages) == (sorted(keys), 3)


def test_more_than_100_items_a_page_is_a_422(api: httpx.Client) -> None:
    response = api.get(PRODUCTS, params={"limit": 101, "pagination_type": "search_after"})
    assert (response.status_code, response.json()["message"]) == (422, "You cannot request more than 100 items.")


def test_page_pagination_past_10000_items_asks_for_search_after(api: httpx.Client) -> None:
    response = api.get(PRODUCTS, params={"limit": 100, "page": 101})
    assert response.status_code == 422 and "search after pagination type" in response.json()["message"]


# -- throttle and headers -------------------------------------------------------------------------------------------


def test_a_throttled_request_is_a_429_with_retry_after_in_whole_seconds(api: httpx.Client, state: AkeneoState) -> None:
    state.throttle(1, 15)
    throttled, after = api.get(PRODUCTS), api.get(PRODUCTS)
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "15")
    assert throttled.json() == {"code": 429, "message": "You have exceeded the limit of API requests per second."}
    assert after.status_code == 200


def test_an_accept_header_without_json_is_a_406(api: httpx.Client) -> None:
    assert api.get(PRODUCTS, headers={"Accept": "text/html"}).status_code == 406


# -- reference data and the demo's catalogue -------------------------------------------------------------------------


def test_families_categories_attributes_and_options_are_listed_with_labels(api: httpx.Client) -> None:
    families = api.get("/api/rest/v1/families").json()["_embedded"]["items"]
    category = api.get("/api/rest/v1/categories/gas_grills").json()
    brand = api.get("/api/rest/v1/attributes/brand").json()
    options = api.get("/api/rest/v1/attributes/brand/options").json()["_embedded"]["items"]
    assert [f["code"] for f in families] == ["grills"]
    assert category["labels"]["nb_NO"] == "Gassgriller" and category["parent"] == "master"
    assert brand["type"] == "pim_catalog_simpleselect"
    assert [(o["code"], o["labels"]["en_US"]) for o in options] == [("nordhjem", "Nordhjem")]
    missing = api.get("/api/rest/v1/families/nope")
    assert (missing.status_code, missing.json()["message"]) == (404, 'Family "nope" does not exist.')


def test_seeding_from_the_demos_pim_export_makes_associations_of_its_relations(
    api: httpx.Client, url: str, tmp_path: Path
) -> None:
    rows = [
        {"sku": "GRL-1", "name": "Grill", "product_group": "grills", "category": "Gas grills", "brand": "Glød"},
        {"sku": "GRL-2", "name": "Cover", "product_group": "grills", "category": "Grill covers", "brand": "Glød"},
    ]
    lines = [
        json.dumps({**r, "price": "10.00", "is_accessory": False, "updated_at": "2024-01-01T00:00:00Z"}) for r in rows
    ]
    (tmp_path / "products.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
    (tmp_path / "relations.csv").write_text("sku,related_sku,kind\nGRL-1,GRL-2,accessory\n", encoding="utf-8")
    seeded = httpx.post(f"{url}/_emulator/seed", json={"pim_dir": str(tmp_path)}).json()
    grill = api.get(f"{PRODUCTS}/{product_uuid('GRL-1')}").json()
    assert seeded == {"products": 2}
    assert grill["associations"]["ACCESSORIES"]["products"] == [product_uuid("GRL-2")]
    assert grill["values"]["brand"][0]["data"] == "glod" and grill["categories"] == ["gas_grills"]
