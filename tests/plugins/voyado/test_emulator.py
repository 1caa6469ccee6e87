"""The Voyado Engage emulator over real loopback HTTP: the gate, contacts, receipts, orders, triggers, inspection."""

from typing import Any

import httpx
import pytest

from hub.plugins import make_plugin_manager
from hub_plugins import voyado
from hub_plugins.voyado._state import VoyadoState
from hub_plugins.voyado.settings import VoyadoSettings

from .conftest import HEADERS


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v2/contacts", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def receipt(contact: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "contact": contact or {"matchKey": "ann@example.com", "matchKeyType": "Email"},
        "uniqueReceiptId": "pos:R1",
        "createdDate": "2026-03-01T10:14:00+01:00",
        "storeExternalId": "600",
        "currency": "SEK",
        "totalGrossPrice": 150.0,
        "paymentMethods": [{"type": "card", "value": 150.0}],
        "items": [
            {"type": "PURCHASE", "sku": "A", "quantity": 1, "grossPaidPrice": 200.0},
            {"type": "RETURN", "sku": "B", "quantity": 1, "grossPaidPrice": -50.0},
        ],
    }
    body.update(overrides)
    return body


def order(**overrides: Any) -> dict[str, Any]:
    body = {
        "contact": {"matchKey": "ann@example.com", "matchKeyType": "Email"},
        "orderNumber": "W1",
        "createdDate": "2026-03-01T10:14:00+01:00",
        "orderStatus": "ORDER_CREATED",
        "paymentStatus": "SUCCESS",
        "language": "sv-SE",
        "storeId": "web",
        "currency": "SEK",
        "totalGrossPrice": 249.0,
        "freightFee": {"value": 49.0},
        "items": [{"type": "PURCHASE", "sku": "A", "quantity": 2, "grossPaidPrice": 200.0}],
    }
    body.update(overrides)
    return body


# -- the gate ---------------------------------------------------------------------------------------------------


def test_a_request_without_api_key_is_401(base_url: str) -> None:
    response = httpx.get(f"{base_url}/api/v2/contacts/count", headers={"User-Agent": "x/1"})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "Unauthorized"


def test_a_wrong_api_key_is_401(base_url: str) -> None:
    response = httpx.get(f"{base_url}/api/v2/contacts/count", headers={**HEADERS, "apikey": "nope"})
    assert response.status_code == 401


def test_the_x_api_key_header_is_accepted_too(base_url: str) -> None:
    response = httpx.get(
        f"{base_url}/api/v2/contacts/count", headers={"x-api-key": HEADERS["apikey"], "User-Agent": "x/1"}
    )
    assert response.status_code == 200


def test_a_request_without_user_agent_is_400_with_an_error_code(client: httpx.Client) -> None:
    del client.headers["User-Agent"]
    response = client.get("/api/v2/contacts/count")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "MissingUserAgent"


def test_a_body_without_json_content_type_is_500_an_error_has_occurred(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/contacts", content=b'{"email": "ann@example.com"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 500
    assert response.json()["message"] == "An error has occurred."


def test_above_the_rate_limit_the_key_gets_429_with_retry_after(client: httpx.Client, state: VoyadoState) -> None:
    state.rate_limit = 3
    codes = [client.get("/api/v2/contacts/count").status_code for _ in range(5)]
    throttled = client.get("/api/v2/contacts/count")
    assert codes[:3] == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1"


def test_the_rate_limit_is_per_api_key(client: httpx.Client, state: VoyadoState) -> None:
    state.rate_limit = 2
    state.api_keys.add("other-key")
    for _ in range(3):
        client.get("/api/v2/contacts/count")
    response = client.get("/api/v2/contacts/count", headers={"apikey": "other-key"})
    assert response.status_code == 200


def test_the_rate_limit_is_set_over_http(client: httpx.Client) -> None:
    assert client.post("/_emulator/config", json={"rate_limit": 1}).json()["rate_limit"] == 1
    codes = [client.get("/api/v2/contacts/count").status_code for _ in range(2)]
    assert codes == [200, 429]


# -- contact lookup ------------------------------------------------------------------------------------------------


def test_lookup_returns_the_id_as_a_bare_json_string(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com")
    response = client.get("/api/v2/contacts/id", params={"email": "ANN@example.com"})
    assert response.status_code == 200
    assert response.text == f'"{contact["id"]}"'


def test_lookup_of_an_unknown_contact_is_404_contact_not_found(client: httpx.Client) -> None:
    response = client.get("/api/v2/contacts/id", params={"email": "nobody@example.com"})
    assert response.status_code == 404
    assert response.json() == {"errorCode": "ContactNotFound", "message": "No contact matches the query"}


def test_lookup_by_a_malformed_email_is_400_invalid_email_address(client: httpx.Client) -> None:
    response = client.get("/api/v2/contacts/id", params={"email": "not-an-email"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidEmailAddress")


def test_lookup_by_a_malformed_phone_is_400_invalid_phone_number(client: httpx.Client) -> None:
    response = client.get("/api/v2/contacts/id", params={"mobilePhone": "call me"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidPhoneNumber")


def test_lookup_with_several_matches_is_409_listing_them(client: httpx.Client) -> None:
    first = create(client, email="ann@example.com", mobilePhone="+46701234567")
    second = create(client, email="ann2@example.com", mobilePhone="+46 70-123 45 67")
    response = client.get("/api/v2/contacts/id", params={"mobilePhone": "+46701234567"})
    assert response.status_code == 409
    assert response.json()["errorCode"] == "MultipleMatches"
    assert response.json()["multipleMatchesFound"] == [first["id"], second["id"]]


def test_lookup_by_custom_key_finds_a_member_number(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", memberNumber="M-77")
    assert client.get("/api/v2/contacts/id", params={"customKey": "M-77"}).json() == contact["id"]


def test_lookup_is_limited_to_the_contact_type_asked_for(client: httpx.Client) -> None:
    create(client, email="ann@example.com", contactType="Contact")
    member = create(client, email="ann@example.com")
    response = client.get("/api/v2/contacts/id", params={"email": "ann@example.com", "contactType": "Member"})
    assert response.json() == member["id"]


def test_lookup_without_a_key_is_400_invalid_search_query(client: httpx.Client) -> None:
    response = client.get("/api/v2/contacts/id")
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidSearchQuery")


# -- contacts -----------------------------------------------------------------------------------------------------


def test_create_defaults_the_contact_type_to_member_and_answers_201(client: httpx.Client) -> None:
    response = client.post("/api/v2/contacts", json={"email": "ann@example.com", "firstName": "Ann"})
    assert response.status_code == 201
    assert response.json()["meta"]["contactType"] == "Member"
    assert response.json()["attributes"] == {"email": "ann@example.com", "firstName": "Ann"}


def test_create_without_the_key_attribute_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v2/contacts", json={"firstName": "Ann"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "MissingKeyAttribute")


def test_create_with_a_malformed_email_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v2/contacts", json={"email": "ann(at)example.com"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidEmailAddress")


def test_create_with_a_malformed_phone_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v2/contacts", json={"email": "ann@example.com", "mobilePhone": "12"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidPhoneNumber")


def test_create_with_an_existing_key_returns_the_existing_contact(client: httpx.Client, state: VoyadoState) -> None:
    first = create(client, email="ann@example.com", firstName="Ann")
    response = client.post("/api/v2/contacts", json={"email": "Ann@Example.com", "firstName": "Other"})
    assert (response.status_code, response.json()["id"]) == (200, first["id"])
    assert len(state.contacts) == 1


def test_create_v2_takes_source_from_a_header_and_v3_from_the_query(client: httpx.Client) -> None:
    v2 = client.post("/api/v2/contacts", json={"email": "a@example.com"}, headers={"source": "POS"})
    v3 = client.post("/api/v3/contacts", params={"source": "ECOM"}, json={"email": "b@example.com"})
    assert (v2.json()["meta"]["source"], v3.json()["meta"]["source"]) == ("POS", "ECOM")


def test_update_overwrites_with_empty_and_null_and_ignores_unknown_fields(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", firstName="Ann", lastName="Berg", city="Lund")
    body = {"firstName": "", "lastName": None, "shoeSize": 42}
    response = client.post(f"/api/v2/contacts/{contact['id']}", json=body)
    assert response.status_code == 200
    assert response.json()["attributes"] == {
        "email": "ann@example.com",
        "firstName": "",
        "lastName": None,
        "city": "Lund",
    }


def test_v3_patch_updates_only_the_attributes_given(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", firstName="Ann", city="Lund")
    response = client.patch(f"/api/v3/contacts/{contact['id']}", json={"city": "Malmö"})
    assert response.json()["attributes"] == {"email": "ann@example.com", "firstName": "Ann", "city": "Malmö"}


def test_update_cannot_change_the_contact_type(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com")
    response = client.post(f"/api/v2/contacts/{contact['id']}", json={"contactType": "Contact"})
    assert response.json()["meta"]["contactType"] == "Member"


def test_update_of_an_unknown_contact_is_404(client: httpx.Client) -> None:
    response = client.post("/api/v2/contacts/00000000-0000-0000-0000-000000000000", json={"firstName": "X"})
    assert (response.status_code, response.json()["errorCode"]) == (404, "ContactNotFound")


def test_update_contact_type_moves_the_contact(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", contactType="Contact")
    response = client.post(f"/api/v3/contacts/{contact['id']}/updateContactType", params={"contactTypeId": "Member"})
    assert response.json()["meta"]["contactType"] == "Member"


def test_update_contact_type_to_an_unknown_type_is_400(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com")
    response = client.post(f"/api/v3/contacts/{contact['id']}/updateContactType", params={"contactTypeId": "Vip"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidContactType")


def test_delete_removes_the_contact_and_a_second_delete_is_404(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com")
    assert client.delete(f"/api/v2/contacts/{contact['id']}").status_code == 204
    assert client.get(f"/api/v2/contacts/{contact['id']}").status_code == 404
    assert client.delete(f"/api/v2/contacts/{contact['id']}").status_code == 404


def test_preferences_are_set_by_update_and_by_their_own_route(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", preferences={"acceptsEmail": True})
    client.post(f"/api/v2/contacts/{contact['id']}/preferences/acceptsSms", json={"value": False})
    preferences = client.get(f"/api/v2/contacts/{contact['id']}").json()["preferences"]
    assert preferences == {"acceptsEmail": True, "acceptsSms": False, "acceptsPostal": None}


def test_a_consent_flips_between_yes_and_no_but_never_back_to_not_set(client: httpx.Client) -> None:
    contact = create(client, email="ann@example.com", consents=[{"id": "memberConsent", "value": True}])
    path = f"/api/v2/contacts/{contact['id']}"
    client.post(path, json={"consents": [{"id": "memberConsent", "value": False}]})
    client.post(path, json={"consents": [{"id": "memberConsent", "value": None}]})
    consents = client.get(path).json()["consents"]
    assert [(c["id"], c["value"]) for c in consents] == [("memberConsent", False)]


def test_count_is_a_bare_integer(client: httpx.Client) -> None:
    create(client, email="a@example.com")
    create(client, email="b@example.com", contactType="Contact")
    assert client.get("/api/v2/contacts/count").json() == 2
    assert client.get("/api/v2/contacts/Member/count").json() == 1


# -- receipts -----------------------------------------------------------------------------------------------------


def test_a_receipt_without_a_mandatory_field_is_400_naming_it(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    body = receipt()
    del body["storeExternalId"]
    response = client.post("/api/v2/receipts", json=body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "MissingRequiredField"
    assert response.json()["field"] == "storeExternalId"


def test_a_receipt_whose_totals_do_not_add_up_is_422(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    response = client.post("/api/v2/receipts", json=receipt(totalGrossPrice=999.0))
    assert (response.status_code, response.json()["errorCode"]) == (422, "TotalsDoNotAddUp")


def test_a_receipt_in_utc_without_an_offset_is_400(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    response = client.post("/api/v2/receipts", json=receipt(createdDate="2026-03-01T10:14:00"))
    assert (response.status_code, response.json()["field"]) == (400, "createdDate")


def test_a_receipt_for_an_unknown_contact_is_404_contact_not_found(client: httpx.Client) -> None:
    response = client.post("/api/v2/receipts", json=receipt())
    assert (response.status_code, response.json()["errorCode"]) == (404, "ContactNotFound")


def test_a_receipt_with_a_known_unique_receipt_id_is_accepted_but_ignored(
    client: httpx.Client, state: VoyadoState
) -> None:
    create(client, email="ann@example.com")
    first = client.post("/api/v2/receipts", json=receipt())
    again = client.post("/api/v2/receipts", json=receipt(receiptNumber="changed"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert len(state.receipts) == 1
    assert state.receipt_duplicates == 1
    assert "receiptNumber" not in state.receipts["pos:R1"]


def test_a_receipt_matched_by_contact_id(client: httpx.Client, state: VoyadoState) -> None:
    contact = create(client, email="ann@example.com")
    response = client.post("/api/v2/receipts", json=receipt({"matchKey": contact["id"], "matchKeyType": "contactId"}))
    assert response.status_code == 200
    assert state.receipts["pos:R1"]["contactId"] == contact["id"]


# -- v2 orders ----------------------------------------------------------------------------------------------------


def test_the_same_v2_order_twice_is_kept_twice(client: httpx.Client, state: VoyadoState) -> None:
    create(client, email="ann@example.com")
    codes = [client.post("/api/v2/orders", json=order()).status_code for _ in range(2)]
    assert codes == [202, 202]
    assert len(state.orders) == 2


def test_a_v2_order_whose_items_and_fees_do_not_add_up_is_422(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    response = client.post("/api/v2/orders", json=order(freightFee=None))
    assert (response.status_code, response.json()["field"]) == (422, "totalGrossPrice")


def test_a_v2_order_without_a_mandatory_field_is_400_naming_it(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    response = client.post("/api/v2/orders", json=order(paymentStatus=None))
    assert (response.status_code, response.json()["field"]) == (400, "paymentStatus")


# -- custom triggers ------------------------------------------------------------------------------------------------


def test_each_trigger_call_is_counted(client: httpx.Client, state: VoyadoState) -> None:
    contact = create(client, email="ann@example.com")
    path = f"/api/v2/automation/customTriggers/welcome/triggerByContactId/{contact['id']}"
    for _ in range(2):
        assert client.post(path, json={"voucher": "ABC"}).status_code == 200
    assert state.trigger_count("welcome", contact["id"]) == 2
    assert client.get("/_emulator/state").json()["trigger_counts"] == {"welcome": 2}


def test_a_trigger_by_external_contact_id(client: httpx.Client, state: VoyadoState) -> None:
    contact = create(client, email="ann@example.com", externalId="K1")
    response = client.post("/api/v2/automation/customTriggers/welcome/triggerByExternalContactId/K1", json={})
    assert response.status_code == 200
    assert state.triggers[0]["contactId"] == contact["id"]


def test_a_trigger_for_an_unknown_contact_is_404(client: httpx.Client, state: VoyadoState) -> None:
    response = client.post("/api/v2/automation/customTriggers/welcome/triggerByContactId/nobody", json={})
    assert (response.status_code, response.json()["errorCode"]) == (404, "ContactNotFound")
    assert state.triggers == []


# -- inspection and registration --------------------------------------------------------------------------------------


def test_reset_forgets_everything_received(client: httpx.Client) -> None:
    create(client, email="ann@example.com")
    client.post("/_emulator/reset")
    snapshot = client.get("/_emulator/state").json()
    assert (snapshot["contacts"], snapshot["receipts"], snapshot["triggers"]) == ([], [], [])


def test_each_app_has_its_own_state() -> None:
    first, second = voyado.emulator.app(), voyado.emulator.app()
    first.state.voyado.create_contact({"email": "ann@example.com"})
    assert second.state.voyado.contacts == {}


def test_the_plugin_offers_the_emulator_with_settings_that_point_at_it() -> None:
    pm = make_plugin_manager(entrypoints=False, plugins=[voyado])
    (emulator,) = [e for found in pm.hook.hub_emulators() for e in found]
    assert (emulator.name, emulator.connector_type) == ("voyado", "voyado")
    assert emulator.settings("http://127.0.0.1:9") == {"base_url": "http://127.0.0.1:9", "api_key": "emulator-key"}
    assert VoyadoSettings(**emulator.settings("http://127.0.0.1:9")).url() == "http://127.0.0.1:9"


@pytest.mark.parametrize("path", ["/api/v2/contacts/count", "/api/v3/contacts/id?email=a@example.com"])
def test_v3_and_v2_share_the_gate(base_url: str, path: str) -> None:
    assert httpx.get(base_url + path).status_code == 401
