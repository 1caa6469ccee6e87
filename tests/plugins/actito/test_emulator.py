"""The Actito emulator over real loopback HTTP: tokens, the licence's limits, profiles, records, imports, mail."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from httpx import Response
from starlette.applications import Starlette

from hub.sandbox.server import serve
from hub_plugins.actito import emulator
from hub_plugins.actito._state import ActitoState
from hub_plugins.actito.csvformat import zipped_csv
from tests.plugins.actito._support import token_client

PROFILES = "/v4/entity/hub/table/customers/profile"
IMPORT = "/v4/entity/hub/table/customers/import"
ORDERS = "/v4/entity/hub/customTable/ORDERS/record"
LINES = "/v4/entity/hub/customTable/ORDER_LINES/record"
PARAMETERS = {"mode": "CREATE_UPDATE", "format": "SEMI_COLON_SEPARATED_VALUES", "headerKeyColumn": "emailAddress"}


def named(**values: object) -> list[dict[str, object]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def post_import(client: httpx.Client, rows: list[list[str]], header: tuple[str, ...] = ("emailAddress",)) -> Response:
    data = zipped_csv(list(header), rows)
    return client.post(
        IMPORT, files={"inputFile": ("f.zip", data, "application/zip")}, data={"parameters": json.dumps(PARAMETERS)}
    )


# -- tokens -----------------------------------------------------------------------------------------------------------


def test_the_api_key_buys_a_15_minute_token(base_url: str) -> None:
    answer = httpx.get(
        base_url + "/auth/token", headers={"Authorization": emulator.DEFAULT_API_KEY, "Accept": "application/json"}
    )
    assert answer.status_code == 200
    assert answer.json()["expiresIn"] == "900s" and answer.json()["tokenType"] == "bearer"


def test_a_wrong_api_key_gets_401(base_url: str) -> None:
    answer = httpx.get(base_url + "/auth/token", headers={"Authorization": "nope", "Accept": "application/json"})
    assert answer.status_code == 401


def test_an_expired_token_gets_401(base_url: str, state: ActitoState) -> None:
    with token_client(base_url) as client:
        assert client.get("/v5/entities").status_code == 200
        state.expire_tokens()
        assert client.get("/v5/entities").status_code == 401


def test_calls_without_accept_json_get_406(base_url: str) -> None:
    with token_client(base_url) as client:
        assert client.get("/v5/entities", headers={"Accept": "text/html"}).status_code == 406


def test_the_api_name_prefixed_url_scheme_is_the_same_api(base_url: str) -> None:
    with token_client(base_url) as client:
        assert client.get("/entities/v5/entities").json()["entities"][0]["name"] == "hub"


# -- the licence's limits ------------------------------------------------------------------------------------------


def test_the_sixth_concurrent_call_gets_429() -> None:
    app = emulator.app(calls_per_minute=None, latency=0.5)
    with serve(app) as url, token_client(url) as client:
        codes: list[int] = []

        def call() -> None:
            codes.append(client.get("/v5/entities").status_code)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(codes) == [200] * 5 + [429]
    assert app.state.actito.max_in_flight == 6


def test_calls_over_the_minute_budget_are_slowed_not_refused() -> None:
    app = emulator.app(calls_per_minute=4, rate_window=0.4)
    with serve(app) as url, token_client(url) as client:  # the token call is the first of the budget
        started = time.monotonic()
        codes = [client.get("/v5/entities").status_code for _ in range(7)]
        elapsed = time.monotonic() - started
    assert codes == [200] * 7
    assert elapsed >= 0.4
    assert app.state.actito.throttled >= 1


def test_the_thirteenth_import_of_a_table_in_a_day_is_refused(base_url: str, state: ActitoState) -> None:
    with token_client(base_url) as client:
        accepted = [post_import(client, [[f"a{n}@example.com"]]).status_code for n in range(12)]
        refused = post_import(client, [["late@example.com"]])
    assert accepted == [201] * 12
    assert refused.status_code == 429
    assert refused.json()["code"] == "IMPORT_QUOTA_EXCEEDED"
    assert state.find_profile("emailAddress", "late@example.com") is None


def test_the_import_quota_starts_again_the_next_day(base_url: str, state: ActitoState) -> None:
    today = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Brussels
    state.clock = lambda: today
    state.imports_per_day = 1
    with token_client(base_url) as client:
        assert post_import(client, [["a@example.com"]]).status_code == 201
        assert post_import(client, [["b@example.com"]]).status_code == 429
        state.clock = lambda: today + timedelta(hours=1)  # 00:30 in Brussels
        assert post_import(client, [["b@example.com"]]).status_code == 201


def test_the_quota_counts_per_table(base_url: str, state: ActitoState) -> None:
    state.imports_per_day = 1
    with token_client(base_url) as client:
        assert post_import(client, [["a@example.com"]]).status_code == 201
        data = zipped_csv(["orderId", "emailAddress", "orderMoment"], [["o1", "a@example.com", "2026-01-01 10:00:00"]])
        parameters = {**PARAMETERS, "headerKeyColumn": "orderId"}
        answer = client.post(
            "/v4/entity/hub/customTable/ORDERS/import",
            files={"inputFile": ("o.zip", data, "application/zip")},
            data={"parameters": json.dumps(parameters)},
        )
    assert answer.status_code == 201
    assert "o1" in state.records["ORDERS"]


# -- profiles ---------------------------------------------------------------------------------------------------------


def test_v5_upserts_on_the_key_it_names_case_insensitively_for_emails(base_url: str, state: ActitoState) -> None:
    path = "/v5/entities/hub/profile-tables/customers/profiles"
    with token_client(base_url) as client:
        created = client.put(path, json={"key": {"emailAddress": "ann@example.com"}, "attributes": {"firstName": "A"}})
        updated = client.put(
            path, json={"key": {"emailAddress": "ANN@example.com"}, "subscriptions": {"Newsletter": True}}
        )
    assert (created.status_code, updated.status_code) == (201, 200)
    (profile,) = state.profiles.values()
    assert profile["attributes"] == {"emailAddress": "ANN@example.com", "firstName": "A"}
    assert profile["subscriptions"] == {"Newsletter": True}


def test_v4_updates_only_with_allow_update(base_url: str) -> None:
    body = {"attributes": named(emailAddress="ann@example.com")}
    with token_client(base_url) as client:
        assert client.post(PROFILES, json=body).status_code == 201
        assert client.post(PROFILES, json=body).status_code == 409
        assert client.post(PROFILES, params={"allowUpdate": "true"}, json=body).status_code == 200


def test_unknown_attributes_and_bad_values_are_400(base_url: str) -> None:
    with token_client(base_url) as client:
        unknown = client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com", shoeSize=44)})
        bad_phone = client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com", gsmNumber="0470")})
        technical = client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com", profileId=3)})
    assert [r.status_code for r in (unknown, bad_phone, technical)] == [400, 400, 400]
    assert unknown.json()["code"] == "UNKNOWN_ATTRIBUTE"


def test_an_exclusive_segmentation_holds_one_category(base_url: str, state: ActitoState) -> None:
    with token_client(base_url) as client:
        client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com")})
        ref = f"{PROFILES}/emailAddress=a@example.com/segmentation"
        assert client.put(f"{ref}/Tier;category=A").status_code == 204
        assert client.put(f"{ref}/Tier;category=B").status_code == 204
        assert client.put(f"{ref}/HubSegments;category=vip").status_code == 204
        assert client.put(f"{ref}/HubSegments;category=new").status_code == 204
        assert client.delete(f"{ref}/HubSegments;category=vip").status_code == 204
        held = client.get(ref).json()["segmentation"]
    assert held == {"Tier": ["B"], "HubSegments": ["new"]}


# -- custom tables and mail ------------------------------------------------------------------------------------------


def test_an_interaction_insert_emits_its_event_once(base_url: str, state: ActitoState) -> None:
    order = {"properties": named(orderId="o1", emailAddress="a@example.com", orderMoment="2026-01-01 10:00:00")}
    with token_client(base_url) as client:
        client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com")})
        assert client.post(ORDERS, json=order).json() == {"businessKey": "o1"}
        assert client.post(ORDERS, json=order).status_code == 200
    assert [(e["event"], e["businessKey"], e["profile"]) for e in state.events] == [
        ("order_created", "o1", "a@example.com")
    ]


def test_records_need_their_profile_and_lines_their_order(base_url: str) -> None:
    order = {"properties": named(orderId="o1", emailAddress="a@example.com", orderMoment="2026-01-01 10:00:00")}
    line = {"properties": named(lineId="o1:1", orderId="o1", emailAddress="a@example.com", sku="S")}
    with token_client(base_url) as client:
        no_profile = client.post(ORDERS, json=order)
        client.post(PROFILES, json={"attributes": named(emailAddress="a@example.com")})
        no_order = client.post(LINES, json=line)
    assert (no_profile.status_code, no_profile.json()["reference"]) == (400, "profile")
    assert (no_order.status_code, no_order.json()["reference"]) == (400, "ORDERS")


def test_an_import_is_polled_and_reports_its_rejected_lines() -> None:
    app: Starlette = emulator.app(calls_per_minute=None, import_seconds=0.2)
    with serve(app) as url, token_client(url) as client:
        created = post_import(client, [["a@example.com", "A"], ["not-an-email", "B"]], ("emailAddress", "firstName"))
        path = f"/v4/entity/hub/import/{created.json()['id']}"
        running = client.get(path).json()
        time.sleep(0.25)
        finished = client.get(path).json()
        errors = client.get(path + "/errors").json()["errors"]
    assert running["status"] == "RUNNING"
    assert finished["result"] == {"totalLines": 2, "createdLines": 1, "updatedLines": 0, "rejectedLines": 1}
    assert [(e["line"], e["code"]) for e in errors] == [(3, "INVALID_EMAIL_ADDRESS")]


def test_a_transactional_mail_needs_an_active_campaign(base_url: str, state: ActitoState) -> None:
    state.campaigns = {"welcome": True, "paused": False}
    profile = {"attributes": named(emailAddress="a@example.com")}
    body = {"profile": profile, "parameters": [{"key": "x", "values": ["1"]}]}
    with token_client(base_url) as client:
        sent = client.post("/v4/entity/hub/transactionalmail/welcome/contact", json=body)
        unknown = client.post("/v4/entity/hub/transactionalmail/nope/contact", json=body)
        paused = client.post("/v4/entity/hub/transactionalmail/paused/contact", json=body)
    assert (sent.status_code, unknown.status_code, paused.status_code) == (200, 404, 400)
    assert [(m["campaign"], m["parameters"]) for m in state.mails] == [("welcome", {"x": ["1"]})]
    assert state.find_profile("emailAddress", "a@example.com") is not None
