"""Outbound mappings: compiling (with located errors), mapping views, and the payload hash."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub._yaml import loads_located
from hub.delivery.changes import payload_hash
from hub.delivery.outbound import OutboundError, compile_outbound_mapping, load_outbound_mapping
from hub.delivery.views import CONSENT_CHANNELS, CUSTOMER_FIELDS, IDENTITY_LISTS
from hub.errors import MappingError
from hub_plugins.standard.transforms import TRANSFORMS

REPO = Path(__file__).resolve().parents[2]


def compile_text(text: str, file: str = "mappings/voyado.yaml"):
    return compile_outbound_mapping(loads_located(text, file=file), TRANSFORMS)


def errors(text: str) -> list[str]:
    with pytest.raises(MappingError) as caught:
        compile_text(text)
    return [str(issue) for issue in caught.value.issues]


def view(customer: dict[str, Any] | None = None, **parts: Any) -> dict[str, Any]:
    return {
        "customer": {"id": 1, **(customer or {})},
        "identities": parts.get("identities", {"email": [], "phone": [], "member_no": [], "external_id": {}}),
        "consents": parts.get("consents", {}),
    }


@pytest.fixture(scope="module")
def voyado():
    return load_outbound_mapping(REPO / "mappings" / "voyado.yaml", TRANSFORMS, display="mappings/voyado.yaml")


# ------------------------------------------------------------------------------------------------ mapping


def test_the_voyado_mapping_builds_nested_contact_fields(voyado):
    contact = voyado(
        view(
            {"email": "kari@example.no", "first_name": "Kari", "birth_date": "1980-05-17", "country": "no"},
            identities={"email": [], "phone": [], "member_no": [], "external_id": {"erp": "K1", "webshop": "9"}},
            consents={"email": {"status": "opt_out", "at": "2024-01-01T00:00:00+00:00"}, "sms": {"status": "opt_in"}},
        )
    )
    assert contact == {
        "email": "kari@example.no",
        "firstName": "Kari",
        "birthDay": "1980-05-17",
        "countryCode": "NO",
        "externalId": "K1",
        "preferences": {"acceptsEmail": False, "acceptsSms": True},
    }


def test_missing_values_are_left_out_or_sent_as_null():
    text = "fields:\n  email: customer.email\n  prefs.sms: consents.sms.status\n"
    assert compile_text(text)(view()) == {}
    assert compile_text("missing: null\n" + text)(view()) == {"email": None, "prefs": {"sms": None}}


def test_constants_defaults_and_types():
    mapping = compile_text(
        """\
fields:
  contactType: {value: Member}
  lang: {path: customer.language, default: nb}
  born: {path: customer.birth_date, type: date}
  seen: {path: customer.updated_at, type: datetime}
  number: {path: customer.member_no, type: int}
  b2b: {path: customer.is_b2b, type: bool}
"""
    )
    got = mapping(view({"birth_date": "1980-05-17", "updated_at": "2025-03-01T13:00:00+01:00", "member_no": "0042"}))
    assert got == {
        "contactType": "Member",
        "lang": "nb",
        "born": "1980-05-17",
        "seen": "2025-03-01T12:00:00+00:00",
        "number": 42,
    }


def test_identity_lists_read_by_position():
    mapping = compile_text("fields:\n  second: identities.email[1]\n  all: identities.phone[]\n")
    ids = {"email": ["a@x.no", "b@x.no"], "phone": ["+4791234567"], "member_no": [], "external_id": {}}
    assert mapping(view(identities=ids)) == {"second": "b@x.no", "all": ["+4791234567"]}


def test_a_value_a_transform_refuses_names_every_failing_field():
    mapping = compile_text(
        """\
fields:
  email: {path: customer.email, transforms: [email]}
  gender: {path: customer.gender, transforms: [{map: {values: {m: M, f: F}, strict: true}}]}
  city: customer.city
"""
    )
    with pytest.raises(OutboundError) as caught:
        mapping(view({"email": "not an address", "gender": "x", "city": "Oslo"}))
    assert [e.split(":")[0] for e in caught.value.errors] == ["email", "gender"]


# ------------------------------------------------------------------------------------------------- errors


def test_every_error_is_reported_at_once_with_file_line_and_key():
    found = errors(
        """\
description: typos everywhere
fields:
  firstName: customer.first_name
  email: customer.emial
  lang: {path: customer.language, transforms: [lowr]}
  acceptsEmail: {path: consents.mail.status}
  zip: {pth: customer.postcode}
extra: 1
"""
    )
    assert found == [
        "mappings/voyado.yaml:4: fields.email: unknown path customer.emial; did you mean customer.email?",
        "mappings/voyado.yaml:5: fields.lang.transforms[0]: unknown transform 'lowr'; known: "
        + ", ".join(sorted(TRANSFORMS)),
        "mappings/voyado.yaml:6: fields.acceptsEmail.path: unknown path consents.mail.status; "
        "did you mean consents.email.status?",
        "mappings/voyado.yaml:7: fields.zip.pth: unknown key",
        "mappings/voyado.yaml:8: extra: unknown key",
    ]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("x: customer.email[0]", "customer.email is not a list"),
        ("x: identities.email.first", "identities.email is a list of values; read one with identities.email[0]"),
        ("x: customer.email.domain", "customer.email is a single value, it has no key 'domain'"),
        ("x: $index", "`$` paths belong to inbound mappings"),
        ("x: attributes.rfm", "unknown path attributes.rfm; valid keys at the top: customer, identities, consents"),
        ("x: {path: customer.email, value: 1}", "give either a path or a value"),
        ("x: {value: abc, type: int}", "'abc' is not a number"),
        ("x: {path: customer.email, default: abc, type: date}", "'abc' is not an ISO 8601"),
        ("x: {path: customer.email, transforms: [{truncate: many}]}", "bad arguments for transform 'truncate'"),
        ("_hub.id: customer.id", "_hub is reserved"),
        ("a..b: customer.id", "names joined by dots"),
        ("x:", "a field needs a path"),
    ],
)
def test_a_bad_field_is_a_located_error(field, message):
    (found,) = errors(f"fields:\n  {field}\n")
    assert found.startswith("mappings/voyado.yaml:2: ")
    assert message in found


def test_a_key_cannot_be_both_a_value_and_an_object():
    (found,) = errors("fields:\n  preferences: customer.email\n  preferences.acceptsEmail: consents.email.status\n")
    assert found == (
        "mappings/voyado.yaml:3: fields.preferences.acceptsEmail: "
        "preferences is a field too: a key cannot be a value and an object"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "a YAML mapping with a `fields:` mapping"),
        ("fields: {}", "add at least one field"),
        ("description: no fields", "fields: required key is missing"),
        ("missing: drop\nfields: {x: customer.id}", "missing: Input should be 'omit' or 'null'"),
    ],
)
def test_a_bad_file_is_a_located_error(text, message):
    assert any(message in e for e in errors(text))


def test_a_missing_file_is_a_mapping_error(tmp_path):
    with pytest.raises(MappingError, match="file not found"):
        load_outbound_mapping(tmp_path / "nope.yaml", TRANSFORMS)


# ----------------------------------------------------------------------------------------------- properties

text_or_none = st.none() | st.text(max_size=20)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)

customer_views = st.fixed_dictionaries(
    {
        "customer": st.fixed_dictionaries({name: text_or_none for name in CUSTOMER_FIELDS}),
        "identities": st.fixed_dictionaries(
            {
                **{kind: st.lists(st.text(max_size=20), max_size=3) for kind in IDENTITY_LISTS},
                "external_id": st.dictionaries(st.sampled_from(["erp", "webshop", "pos"]), st.text(max_size=10)),
            }
        ),
        "consents": st.dictionaries(
            st.sampled_from(CONSENT_CHANNELS),
            st.fixed_dictionaries({"status": st.sampled_from(["opt_in", "opt_out"]), "at": text_or_none}),
        ),
    }
)


@given(customer_views)
def test_the_voyado_mapping_is_total_on_customer_views(voyado, customer_view):
    contact = voyado(customer_view)
    assert set(contact) <= {key.split(".")[0] for key in voyado.fields}
    assert json.loads(json.dumps(contact)) == contact
    assert all(value is not None for value in contact.values())


@given(st.dictionaries(st.sampled_from(["customer", "identities", "consents", "other"]), json_values))
def test_any_json_view_maps_or_is_invalid_never_crashes(voyado, any_view):
    try:
        contact = voyado(any_view)
    except OutboundError as exc:
        assert exc.errors
    else:
        json.dumps(contact)


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6), st.randoms())
def test_the_payload_hash_ignores_key_order(payload, rng):
    assert payload_hash(shuffled(payload, rng)) == payload_hash(payload)


@given(st.dictionaries(st.text(max_size=5), json_values, min_size=1, max_size=6))
def test_the_payload_hash_sees_a_changed_value(payload):
    key = next(iter(payload))
    changed = {**payload, key: [payload[key], "changed"]}
    assert payload_hash(changed) != payload_hash(payload)
