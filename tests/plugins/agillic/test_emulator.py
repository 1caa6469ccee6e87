"""The Agillic emulator over real loopback HTTP: tokens, the gate's limits, recipients, One-to-Many rows, events,
flows, target groups, inspection."""

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hub.plugins import make_plugin_manager
from hub.sandbox.registry import emulators
from hub_plugins import agillic
from hub_plugins.agillic import emulator
from hub_plugins.agillic._state import AgillicState, ApiError

from .conftest import token


def purchase(row_id: str = "webshop:W1:1", **fields: Any) -> dict[str, Any]:
    return {"ID": row_id, "ORDER_ID": "W1", "LINE_NO": 1, "SKU": "A", "QUANTITY": 1, **fields}


# -- tokens and the gate ------------------------------------------------------------------------------------------


def test_the_token_endpoint_gives_a_two_hour_bearer_token(base_url: str) -> None:
    form = {"grant_type": "client_credentials", "client_id": "emulator-client", "client_secret": "emulator-secret"}
    response = httpx.post(f"{base_url}/oauth2/token", data=form)
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    assert response.json()["expires_in"] == 7200


def test_a_wrong_secret_gets_no_token(base_url: str) -> None:
    form = {"grant_type": "client_credentials", "client_id": "emulator-client", "client_secret": "nope"}
    response = httpx.post(f"{base_url}/oauth2/token", data=form)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_the_token_request_must_be_form_encoded_client_credentials(base_url: str) -> None:
    json_body = httpx.post(f"{base_url}/oauth2/token", json={"grant_type": "client_credentials"})
    password = httpx.post(f"{base_url}/oauth2/token", data={"grant_type": "password"})
    assert (json_body.status_code, password.json()["error"]) == (400, "unsupported_grant_type")


def test_a_call_without_a_token_is_401(base_url: str) -> None:
    assert httpx.get(f"{base_url}/recipients/ann@example.com").status_code == 401


def test_basic_key_and_secret_are_accepted_too(base_url: str, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    basic = base64.b64encode(b"emulator-client:emulator-secret").decode()
    response = httpx.get(f"{base_url}/recipients/ann@example.com", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200


def test_an_expired_token_is_401(use: Callable[[Any], str]) -> None:
    url = use(emulator.app(token_lifetime=0.05))
    with httpx.Client(base_url=url) as http:
        http.headers["Authorization"] = f"Bearer {token(http)}"
        time.sleep(0.1)
        response = http.get("/discovery/onetomany")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


def test_expire_tokens_invalidates_every_issued_token(client: httpx.Client) -> None:
    assert client.post("/_emulator/expire-tokens").json() == {"expired": 1}
    assert client.get("/discovery/onetomany").status_code == 401


def test_a_body_that_is_not_json_is_415(client: httpx.Client) -> None:
    response = client.put("/recipients/ann@example.com", content=b"EMAIL=ann", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_a_payload_over_the_limit_is_413_and_changes_nothing(use: Callable[[Any], str]) -> None:
    app = emulator.app(max_payload_bytes=200)
    with httpx.Client(base_url=use(app)) as http:
        http.headers["Authorization"] = f"Bearer {token(http)}"
        response = http.put("/recipients/ann@example.com", json={"personData": {"FIRSTNAME": "A" * 300}})
    assert response.status_code == 413
    assert app.state.agillic.recipients == {}


def test_the_21st_concurrent_call_is_429_and_changes_nothing(use: Callable[[Any], str]) -> None:
    app = emulator.app(latency=0.5)
    state: AgillicState = app.state.agillic
    statuses: list[int] = []
    with httpx.Client(base_url=use(app), limits=httpx.Limits(max_connections=30)) as http:
        http.headers["Authorization"] = f"Bearer {token(http)}"

        def put(n: int) -> None:
            response = http.put(f"/recipients/p{n}@example.com", json={"personData": {"FIRSTNAME": "P"}})
            statuses.append(response.status_code)

        threads = [threading.Thread(target=put, args=(n,)) for n in range(25)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [201] * 20 + [429] * 5
    assert (len(state.recipients), state.max_in_flight, state.refused_concurrency) == (20, 20, 5)


# -- recipients -----------------------------------------------------------------------------------------------------


def test_put_creates_then_updates_only_the_fields_it_carries(client: httpx.Client, state: AgillicState) -> None:
    created = client.put("/recipients/ann@example.com", json={"personData": {"FIRSTNAME": "Ann", "CITY": "Oslo"}})
    updated = client.put("/recipients/ann@example.com", json={"personData": {"FIRSTNAME": "Anna"}})
    assert (created.status_code, updated.status_code) == (201, 200)
    assert state.recipients["ann@example.com"] == {"EMAIL": "ann@example.com", "FIRSTNAME": "Anna", "CITY": "Oslo"}


def test_an_empty_field_in_a_put_clears_it(client: httpx.Client, state: AgillicState) -> None:
    client.put("/recipients/ann@example.com", json={"personData": {"CITY": "Oslo"}})
    client.put("/recipients/ann@example.com", json={"personData": {"CITY": ""}})
    assert "CITY" not in state.recipients["ann@example.com"]


def test_person_data_fields_must_be_upper_case(client: httpx.Client) -> None:
    response = client.put("/recipients/ann@example.com", json={"personData": {"firstName": "Ann"}})
    assert (response.status_code, response.json()["error"]) == (400, "InvalidField")


def test_a_date_field_must_be_in_the_instance_format(client: httpx.Client) -> None:
    good = client.put("/recipients/ann@example.com", json={"personData": {"BIRTHDATE": "31.12.1990"}})
    iso = client.put("/recipients/ann@example.com", json={"personData": {"BIRTHDATE": "1990-12-31"}})
    assert good.status_code == 201
    assert (iso.status_code, iso.json()["error"]) == (400, "InvalidFieldValue")


def test_the_recipient_id_cannot_change_with_put(client: httpx.Client) -> None:
    client.put("/recipients/ann@example.com", json={"personData": {}})
    response = client.put("/recipients/ann@example.com", json={"personData": {"EMAIL": "new@example.com"}})
    assert (response.status_code, response.json()["error"]) == (400, "RecipientIdImmutable")


def test_a_recipient_can_be_named_by_any_field(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {"MEMBER_NO": "M-9"}})
    response = client.get("/recipients/MEMBER_NO=M-9")
    assert response.json() == {
        "recipientId": "ann@example.com",
        "personData": {"EMAIL": "ann@example.com", "MEMBER_NO": "M-9"},
    }


def test_strict_fields_refuse_a_field_the_instance_lacks() -> None:
    state = emulator.app(strict_fields=True).state.agillic
    with pytest.raises(ApiError, match="no Person Data field HUB_VIP"):
        state.upsert("ann@example.com", {"personData": {"HUB_VIP": True}})


def test_delete_removes_the_recipient_and_its_rows(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    state.update_records("ann@example.com", "PURCHASES", [purchase()])
    assert client.delete("/recipients/ann@example.com").status_code == 204
    assert client.delete("/recipients/ann@example.com").status_code == 404
    assert state.records["PURCHASES"] == {}


def test_a_batch_upserts_each_entry_and_lists_the_refused_ones(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("bob@example.com", {"personData": {}})
    entries = [
        {"personData": {"EMAIL": "ann@example.com"}},
        {"personData": {"EMAIL": "bob@example.com", "FIRSTNAME": "Bob"}},
        {"personData": {"EMAIL": "eve@example.com", "BIRTHDATE": "yesterday"}},
    ]
    body = client.post("/recipients/:batch", json=entries).json()
    assert (body["created"], body["updated"], body["errors"]) == (1, 1, 1)
    assert [(d["index"], d["error"]) for d in body["details"]] == [(2, "InvalidFieldValue")]
    assert sorted(state.recipients) == ["ann@example.com", "bob@example.com"]


def test_a_batch_over_1000_entries_is_400_and_changes_nothing(client: httpx.Client, state: AgillicState) -> None:
    entries = [{"personData": {"EMAIL": f"p{n}@example.com"}} for n in range(1001)]
    response = client.post("/recipients/:batch", json=entries)
    assert (response.status_code, response.json()["error"]) == (400, "BatchTooLarge")
    assert state.recipients == {}
    assert state.largest_batch["recipients:batch"] == 1001


# -- One-to-Many tables ---------------------------------------------------------------------------------------------


def test_batch_update_records_upserts_rows_by_id(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    path = "/recipients/ann@example.com/oneToManyTables/PURCHASES/:batchUpdateRecords"
    client.post(path, json=[purchase(QUANTITY=1), purchase("webshop:W1:2")])
    client.post(path, json=[purchase(QUANTITY=3)])
    rows = client.get("/recipients/ann@example.com/oneToManyTables/PURCHASES").json()
    assert sorted((r["ID"], r["QUANTITY"]) for r in rows) == [("webshop:W1:1", 3), ("webshop:W1:2", 1)]


@pytest.mark.parametrize(
    ("table", "record", "status", "error"),
    [
        ("ORDERS", purchase(), 404, "TableNotFound"),
        ("PURCHASES", {"SKU": "A"}, 400, "MissingPrimaryKey"),
        ("PURCHASES", purchase(COLOUR="red"), 400, "UnknownField"),
        ("PURCHASES", purchase(PURCHASE_DATE="2025-01-02T10:00:00"), 400, "InvalidFieldValue"),
    ],
)
def test_records_are_checked_against_the_table(
    client: httpx.Client, state: AgillicState, table: str, record: dict[str, Any], status: int, error: str
) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    response = client.post(f"/recipients/ann@example.com/oneToManyTables/{table}/:batchUpdateRecords", json=[record])
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_records_for_an_unknown_recipient_are_404(client: httpx.Client) -> None:
    response = client.post("/recipients/x@example.com/oneToManyTables/PURCHASES/:batchUpdateRecords", json=[purchase()])
    assert (response.status_code, response.json()["error"]) == (404, "RecipientNotFound")


# -- events, flows, target groups -----------------------------------------------------------------------------------


def test_achieving_an_event_counts_up(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    client.post("/recipients/ann@example.com/events/BIRTHDAY/:achieveEvent")
    second = client.post("/recipients/ann@example.com/events/BIRTHDAY/:achieveEvent").json()
    assert second == {"eventId": "BIRTHDAY", "count": 2}
    assert client.get("/recipients/ann@example.com/events").json() == [{"eventId": "BIRTHDAY", "count": 2}]


def test_an_event_is_achieved_with_its_context(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    body = {"schemaName": "HUB_TRIGGER", "contextData": {"sku": "GRILL-1"}}
    client.post("/recipients/ann@example.com/events/BIRTHDAY/:achieveWithContext", json=body)
    assert state.achievements[0]["context"] == body


def test_an_unknown_event_or_flow_is_404(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    event = client.post("/recipients/ann@example.com/events/NO_SUCH/:achieveEvent")
    flow = client.post("/flows/NO_SUCH/:execute")
    assert (event.status_code, event.json()["error"]) == (404, "EventNotFound")
    assert (flow.status_code, flow.json()["error"]) == (404, "FlowNotFound")


def test_a_flow_runs_for_recipients_with_their_context(client: httpx.Client, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    body = {"schemaName": "HUB_TRIGGER", "recipients": [{"recipientId": "ann@example.com", "contextData": {"a": 1}}]}
    response = client.post("/flows/WIN_BACK/:executeWithContext", json=body)
    assert response.json() == {"flowId": "WIN_BACK", "recipients": 1}
    assert state.executions[0]["contextData"] == {"a": 1}


def test_static_target_groups_add_and_remove_and_list_unknown_recipients(
    client: httpx.Client, state: AgillicState
) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    ids = ["ann@example.com", "ghost@example.com"]
    added = client.post(
        "/recipients/:addToStaticTargetGroup", json={"targetGroupName": "HUB_TIER_A", "recipientIds": ids}
    )
    assert added.json() == {"changed": 1, "notFound": ["ghost@example.com"]}
    assert client.get("/recipients/ann@example.com/targetGroups").json() == [{"name": "HUB_TIER_A"}]
    body = {"targetGroupName": "HUB_TIER_A", "recipientIds": ["ann@example.com"]}
    client.post("/recipients/:removeFromStaticTargetGroup", json=body)
    assert state.target_groups["HUB_TIER_A"] == set()


def test_target_group_calls_take_at_most_100_recipients(client: httpx.Client) -> None:
    body = {"targetGroupName": "HUB_TIER_A", "recipientIds": [f"p{n}" for n in range(101)]}
    response = client.post("/recipients/:addToStaticTargetGroup", json=body)
    assert (response.status_code, response.json()["error"]) == (400, "BatchTooLarge")


def test_an_unknown_target_group_is_404(client: httpx.Client) -> None:
    body = {"targetGroupName": "NOPE", "recipientIds": []}
    assert client.post("/recipients/:addToStaticTargetGroup", json=body).status_code == 404


# -- discovery and inspection ---------------------------------------------------------------------------------------


def test_discovery_lists_the_one_to_many_tables(client: httpx.Client) -> None:
    tables = client.get("/discovery/onetomany").json()
    assert [t["tableId"] for t in tables] == ["PURCHASES"]
    assert client.get("/discovery/onetomany/ORDERS").status_code == 404


def test_state_shows_what_was_received_and_is_never_gated(base_url: str, client: httpx.Client) -> None:
    client.put("/recipients/ann@example.com", json={"personData": {}})
    snapshot = httpx.get(f"{base_url}/_emulator/state").json()
    assert snapshot["recipients"] == [{"EMAIL": "ann@example.com"}]
    assert (snapshot["tokens_issued"], snapshot["max_concurrent"]) == (1, 20)


def test_config_defines_events_flows_and_groups(base_url: str, state: AgillicState) -> None:
    body = {"events": ["NEW_EVENT"], "flows": ["NEW_FLOW"], "target_groups": ["NEW_GROUP"], "token_lifetime": 60}
    shown = httpx.post(f"{base_url}/_emulator/config", json=body).json()
    assert {"NEW_EVENT", "NEW_FLOW", "NEW_GROUP"} <= {*shown["events"], *shown["flows"], *shown["target_groups"]}
    assert state.token_lifetime == 60


def test_reset_forgets_data_and_keeps_configuration(base_url: str, state: AgillicState) -> None:
    state.upsert("ann@example.com", {"personData": {}})
    state.define(events=["KEPT"])
    httpx.post(f"{base_url}/_emulator/reset")
    assert state.recipients == {}
    assert "KEPT" in state.events


def test_the_plugin_provides_its_emulator_to_hub_sandbox() -> None:
    found = emulators(make_plugin_manager(entrypoints=False, plugins=[agillic]))
    assert found["agillic"].settings("http://127.0.0.1:1")["client_id"] == "emulator-client"
    assert found["agillic"].app().state.agillic.token_lifetime == 7200
