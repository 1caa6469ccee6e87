"""hub.identity: key normalisation and the values that never identify anyone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.identity import KeyReader, Linker, is_placeholder, key_of, normalise


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Ann.Berg@Shop.NO \t", "ann.berg@shop.no"),
        ("phone", " +4791234567 ", "+4791234567"),
        ("member_no", " M-0042 ", "M-0042"),
        ("external_id", 1042, "1042"),
        ("member_no", 123456.0, "123456"),
        ("email", "   ", None),
        ("email", None, None),
        ("external_id", True, None),
    ],
)
def test_normalise(kind: str, raw: object, expected: str | None) -> None:
    assert normalise(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "null"),
        ("member_no", "NONE"),
        ("member_no", "nil"),
        ("member_no", "N/A"),
        ("external_id", "-1"),
        ("external_id", "0"),
        ("email", "Anonymous"),
        ("member_no", "unknown"),
        ("email", "guest"),
        ("member_no", "test"),
        ("member_no", "000000"),
        ("member_no", "---"),
        ("phone", "+4700000000"),
        ("phone", "+4799999999"),
        ("phone", "+12222222222"),
        ("phone", "99999999"),
        ("phone", "+47123"),
        ("email", "noreply@shop.no"),
        ("email", "no-reply@shop.no"),
        ("email", "donotreply@shop.no"),
        ("email", "ann@example.com"),
        ("email", "ann@mail.example.org"),
        ("email", "guest@shop.no"),
        ("email", "not-an-address"),
    ],
)
def test_placeholders_are_recognised(kind: str, value: str) -> None:
    assert is_placeholder(kind, value)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "ann@shop.no"),
        ("email", "noreply.ann@shop.no"),
        ("phone", "+4791000000"),
        ("phone", "+4740000001"),
        ("member_no", "00012345"),
        ("external_id", "10"),
    ],
)
def test_real_values_are_not_placeholders(kind: str, value: str) -> None:
    assert not is_placeholder(kind, value)


def test_reader_keeps_usable_keys_and_normalises_them() -> None:
    reader = KeyReader()

    values = reader.values({"external_id": 7, "email": " Ann@Shop.no", "phone": "guest", "first_name": "Ann"})

    assert values == {"external_id": "7", "email": "ann@shop.no"}


def test_reader_drops_configured_blocked_values_case_insensitively_and_by_pattern() -> None:
    reader = KeyReader({"email": {"Shared@Shop.no", "*@mailinator.com"}, "member_no": {"99"}})

    assert reader.values({"email": "shared@shop.no", "member_no": "99"}) == {}
    assert reader.values({"email": "x@MAILINATOR.com"}) == {}
    assert reader.values({"email": "ann@shop.no", "member_no": "98"}) == {
        "email": "ann@shop.no",
        "member_no": "98",
    }


def test_external_ids_are_scoped_to_their_system_and_global_keys_are_not() -> None:
    assert key_of("external_id", "42", "shop") == ("external_id", "shop", "42")
    assert key_of("email", "ann@shop.no", "shop") == ("email", "", "ann@shop.no")


@given(st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{2,8}\.(no|se|com)", fullmatch=True), st.data())
def test_email_variants_normalise_to_one_key(address: str, data: st.DataObject) -> None:
    variant = "".join(ch.upper() if data.draw(st.booleans()) else ch for ch in address)
    padded = data.draw(st.sampled_from(["", " ", "\t", "  "])) + variant + data.draw(st.sampled_from(["", " ", "\n"]))

    assert KeyReader().values({"email": padded}) == KeyReader().values({"email": address})


EMAIL = ("email", "", "ann@shop.no")
PHONE = ("phone", "", "+4791234567")
MEMBER_1 = ("member_no", "", "M1")
MEMBER_2 = ("member_no", "", "M2")


def test_linker_joins_records_transitively_and_with_the_customers_their_keys_know() -> None:
    linker = Linker({"member_no": 1}, owners={MEMBER_1: 7}, counts={7: {"member_no": 1}})

    for index, keys in enumerate([[EMAIL, PHONE], [PHONE], [MEMBER_1, EMAIL], [("email", "", "bo@shop.no")]]):
        assert linker.add(index, keys) is None

    ann, bo = linker.groups()
    assert (ann.records, ann.customers, sorted(ann.new_keys)) == ([0, 1, 2], [7], [EMAIL, PHONE])
    assert (bo.records, bo.customers) == ([3], [])


def test_linker_refuses_a_record_over_a_limit_and_keeps_no_trace_of_it() -> None:
    linker = Linker({"member_no": 1}, owners={MEMBER_1: 7}, counts={7: {"member_no": 1}})
    assert linker.add(0, [EMAIL, MEMBER_2]) is None

    reason = linker.add(1, [PHONE, MEMBER_1, EMAIL])

    assert reason == "member_no: this record would give customer 7 2 distinct member_no values (at most 1)"
    assert linker.add(2, [PHONE]) is None  # the refused record's phone was not kept: nobody known yet
    first, second = linker.groups()
    assert (first.records, first.customers) == ([0], [])
    assert (second.records, second.customers, second.new_keys) == ([2], [], [PHONE])
