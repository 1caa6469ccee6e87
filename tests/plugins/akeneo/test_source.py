"""The Akeneo source against its emulator: flattened products, incremental reads, tokens, relations, check()."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hub.testing.source import read_all as records
from hub_plugins.akeneo._state import AkeneoState
from hub_plugins.akeneo.source import AkeneoSource
from tests.plugins.akeneo._support import Switch, product

Make = Callable[..., AkeneoSource]
OLD = "2025-01-06T09:00:00Z"


def stamp(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- what a product becomes -------------------------------------------------------------------------------------------


def test_a_product_is_flattened_with_labels_in_the_configured_locale(state: AkeneoState, source: Make) -> None:
    state.put("attributes", [{"code": "brand", "options": [{"code": "glod", "labels": {"nb_NO": "Glød"}}]}])
    values = {
        "name": [
            {"locale": "en_US", "scope": None, "data": "Gas grill"},
            {"locale": "nb_NO", "scope": None, "data": "Gassgrill"},
        ],
        "brand": [{"locale": None, "scope": None, "data": "glod"}],
        "price": [{"locale": None, "scope": None, "data": [{"amount": "4990.00", "currency": "NOK"}]}],
        "accessory": [{"locale": None, "scope": None, "data": False}],
    }
    (key,) = state.put("products", [product("GRL-1", values=values, parent="grill-model")], updated_at=OLD)
    (record,), _ = records(source(locale="nb_NO"), "products")
    expected = {"uuid": key, "sku": "GRL-1", "name": "Gassgrill", "product_group": "grills", "category": "Gassgriller"}
    assert {k: record[k] for k in expected} == expected
    assert (record["brand"], record["price"], record["is_accessory"]) == ("Glød", "4990.00", False)
    assert (record["master_id"], record["updated"]) == ("grill-model", "2025-01-06T09:00:00+00:00")


def test_the_group_can_be_the_first_categorys_label(state: AkeneoState, source: Make) -> None:
    state.put("products", [product("GRL-1")], updated_at=OLD)
    (record,), _ = records(source(group_from="category", group_as="label"), "products")
    assert record["product_group"] == "Gas grills"


def test_a_product_without_a_sku_is_an_error_record_with_its_payload(state: AkeneoState, source: Make) -> None:
    (key,) = state.put("products", [{"values": {"sku": []}}], updated_at=OLD)
    (record,), _ = records(source(), "products")
    assert "has no sku" in record["_error"] and json.loads(record["_raw"])["uuid"] == key


# -- incremental reads ----------------------------------------------------------------------------------------------


def test_the_next_read_filters_on_updated_one_second_before_the_cursor(
    state: AkeneoState, source: Make, switch: Switch
) -> None:
    state.put("products", [product("A"), product("B")], updated_at=OLD)
    reader = source(page_size=1)
    _, cursor = records(reader, "products")
    (changed,) = state.put("products", [product("C")], updated_at="2025-01-06T10:00:00Z")
    switch.calls.clear()
    got, _ = records(reader, "products", json.loads(json.dumps(cursor)))
    first = next(c for c in switch.calls if c.path.endswith("/products-uuid"))
    assert json.loads(first.query["search"]) == {"updated": [{"operator": ">", "value": "2025-01-06 08:59:59"}]}
    assert (first.query["pagination_type"], first.query["limit"]) == ("search_after", "1")
    assert [r["uuid"] for r in got] == [changed]


def test_a_change_behind_the_read_is_not_passed_over_by_a_later_one(state: AkeneoState, source: Make) -> None:
    """search_after pages go by UUID. A, already read, gets a change stamped a little before the read began (a late
    commit, a lagging search index); then Z, not read yet, one stamped a little later. Z's time must not become the
    next starting point, or A's change is lost: ``settle`` keeps times that recent out of the cursor."""
    keys = sorted(state.put("products", [product(f"P{n}") for n in range(6)], updated_at=OLD))
    for settle, expect_a in ((timedelta(seconds=10), True), (timedelta(0), False)):
        reader = source(page_size=2, settle=settle)
        pages = reader.read("products", None)
        first = next(pages)
        assert first.records[0]["uuid"] == keys[0]
        state.put("products", [{"_key": keys[0]}], updated_at=stamp(4))
        state.put("products", [{"_key": keys[-1]}], updated_at=stamp(2))
        cursor = [batch.cursor for batch in pages][-1]
        again, _ = records(reader, "products", cursor)
        assert (keys[0] in {r["uuid"] for r in again}) is expect_a, f"settle {settle}"


def test_a_product_the_search_index_has_not_caught_up_with_arrives_next_time(state: AkeneoState, source: Make) -> None:
    state.put("products", [product("A")], updated_at=OLD)
    state.index_delay = 0.3
    (late,) = state.put("products", [product("LATE")])
    reader = source()
    first, cursor = records(reader, "products")
    time.sleep(0.35)
    second, _ = records(reader, "products", cursor)
    assert late not in {r["uuid"] for r in first}
    assert [r["uuid"] for r in second] == [late]


# -- tokens ---------------------------------------------------------------------------------------------------------


def test_an_expired_token_is_renewed_with_the_refresh_token_mid_read(state: AkeneoState, source: Make) -> None:
    state.put("products", [product(f"P{n}") for n in range(4)], updated_at=OLD)
    reader = source(page_size=2)
    pages = reader.read("products", None)
    first = next(pages)
    state.expire_tokens()
    rest = [r for batch in pages for r in batch.records]
    assert len(first.records) + len(rest) == 4
    assert state.grants == ["password", "refresh_token"]


def test_a_refused_refresh_logs_in_again_with_the_password(state: AkeneoState, source: Make) -> None:
    state.put("products", [product(f"P{n}") for n in range(4)], updated_at=OLD)
    reader = source(page_size=2)
    pages = reader.read("products", None)
    next(pages)
    state.expire_tokens(refresh=True)
    assert sum(len(batch.records) for batch in pages) == 2
    assert state.grants == ["password", "password"]


# -- relations ------------------------------------------------------------------------------------------------------


def test_relations_name_the_related_skus_of_the_configured_associations(state: AkeneoState, source: Make) -> None:
    cover, tongs, table = state.put("products", [product("COVER"), product("TONGS"), product("TABLE")], updated_at=OLD)
    state.put("products", [product("GRILL", accessories=[cover, tongs], cross_sells=[table])], updated_at=OLD)
    got, _ = records(source(associations={"ACCESSORIES": "accessory"}), "relations")
    grill = next(r for r in got if r["sku"] == "GRILL")
    assert [(r["related_sku"], r["kind"]) for r in grill["relations"]] == [
        ("COVER", "accessory"),
        ("TONGS", "accessory"),
    ]
    assert all(r["relations"] == [] for r in got if r["sku"] != "GRILL")


def test_an_association_to_a_deleted_product_is_left_out_and_listed(state: AkeneoState, source: Make) -> None:
    cover, gone = state.put("products", [product("COVER"), product("GONE")], updated_at=OLD)
    state.put("products", [product("GRILL", accessories=[gone, cover])], updated_at=OLD)
    state.delete("products", gone)
    got, _ = records(source(), "relations")
    grill = next(r for r in got if r["sku"] == "GRILL")
    assert ([r["related_sku"] for r in grill["relations"]], grill["unresolved"]) == (["COVER"], [gone])


# -- check() --------------------------------------------------------------------------------------------------------


def test_check_names_an_association_type_the_pim_does_not_have(app: object, source: Make) -> None:
    result = source(associations={"ACCESORIES": "accessory"}).check()
    assert not result.ok and "no association type ACCESORIES" in result.message


def test_check_says_which_credential_akeneo_refused(app: object, source: Make) -> None:
    result = source(password="wrong").check()
    assert not result.ok and "No user found for the given username and password" in result.message
    assert "wrong" not in result.message
