"""``replace: true`` on an ``each`` block: the record's list is the whole set of this connector's rows for the
record's ``$.``-read key fields, so what the list no longer has is deleted, in the batch's transaction.

Batches go through the engine's own path (``map_batch`` then ``load_mapped``) on a real database.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from hub._yaml import loads_located
from hub.engine.load import load_batch
from hub.engine.map import map_batch
from hub.engine.resolve import IdentityRules
from hub.engine.run import BatchOutcome, load_mapped
from hub.errors import MappingError
from hub.mapping import CompiledMapping, ReplacingMapped, compile_mapping, load_mapping
from hub_plugins.standard.transforms import TRANSFORMS

RELATIONS = """\
    key: "{sku}"
    entities:
      - entity: product_relation
        each: relations
        replace: true
        fields:
          sku: {path: $.sku, required: true}
          related_sku: {path: related, required: true}
          kind:
            path: kind
            transforms: [{map: {values: {accessory: accessory, cross_sell: cross_sell}, strict: true}}]
"""


def compiled(text: str) -> CompiledMapping:
    return compile_mapping(loads_located(textwrap.dedent(text), file="mappings/test.yaml"), TRANSFORMS)


MAPPING = compiled(RELATIONS)


def load(engine: Engine, records: list[dict[str, Any]], *, source: str = "pim") -> BatchOutcome:
    """One batch of ``source`` through map and load, in one transaction, as a sync loads it."""
    mapped = map_batch(MAPPING, records)
    with engine.begin() as conn:
        return load_mapped(
            conn,
            mapped,
            connector=source,
            stream="relations",
            rules=IdentityRules.default(),
            now=datetime.now(UTC),
            run_id=None,
        )


def product(sku: str, *relations: str, kind: str = "accessory") -> dict[str, Any]:
    return {"sku": sku, "relations": [{"related": related, "kind": kind} for related in relations]}


def stored(engine: Engine) -> set[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source, sku, related_sku, kind FROM product_relation"))
        return {tuple(row) for row in rows}  # type: ignore[misc]


@pytest.fixture
def db(any_engine: Engine) -> Engine:
    return any_engine


# ----------------------------------------------------------------------------------------------- deleting


def test_a_relation_removed_from_the_list_is_deleted_on_the_next_sync(db: Engine) -> None:
    load(db, [product("GRILL", "COVER", "TONGS")])
    load(db, [product("GRILL", "COVER")])
    assert stored(db) == {("pim", "GRILL", "COVER", "accessory")}


def test_a_relation_whose_kind_changed_is_replaced(db: Engine) -> None:
    load(db, [product("GRILL", "TABLE", kind="accessory")])
    load(db, [product("GRILL", "TABLE", kind="cross_sell")])
    assert stored(db) == {("pim", "GRILL", "TABLE", "cross_sell")}


@pytest.mark.parametrize("record", [{"sku": "GRILL", "relations": []}, {"sku": "GRILL"}], ids=["empty", "missing"])
def test_an_empty_or_missing_list_deletes_all_the_records_rows_of_this_connector(
    db: Engine, record: dict[str, Any]
) -> None:
    load(db, [product("GRILL", "COVER", "TONGS"), product("PAINT", "ROLLER")])
    outcome = load(db, [record])
    assert outcome.rejects == []
    assert stored(db) == {("pim", "PAINT", "ROLLER", "accessory")}


def test_another_connectors_rows_with_the_same_sku_stay(db: Engine) -> None:
    load(db, [product("GRILL", "BRUSH")], source="erp")
    load(db, [product("GRILL", "COVER", "TONGS")])
    load(db, [product("GRILL")])
    assert stored(db) == {("erp", "GRILL", "BRUSH", "accessory")}


def test_records_not_in_the_batch_keep_their_rows(db: Engine) -> None:
    load(db, [product("GRILL", "COVER", "TONGS"), product("PAINT", "ROLLER", "TRAY")])
    load(db, [product("GRILL", "COVER")])
    assert stored(db) == {
        ("pim", "GRILL", "COVER", "accessory"),
        ("pim", "PAINT", "ROLLER", "accessory"),
        ("pim", "PAINT", "TRAY", "accessory"),
    }


def test_a_rejected_record_deletes_nothing(db: Engine) -> None:
    load(db, [product("GRILL", "COVER", "TONGS"), product("PAINT", "ROLLER", "TRAY")])
    bad = {"sku": "GRILL", "relations": [{"related": "COVER", "kind": "spare_part"}]}  # strict map: rejected
    outcome = load(db, [bad, product("PAINT", "ROLLER")])
    assert len(outcome.rejects) == 1
    assert stored(db) == {
        ("pim", "GRILL", "COVER", "accessory"),
        ("pim", "GRILL", "TONGS", "accessory"),
        ("pim", "PAINT", "ROLLER", "accessory"),
    }


def test_a_record_without_its_key_deletes_nothing(db: Engine) -> None:
    load(db, [product("GRILL", "COVER")])
    load(db, [{"relations": []}, {"sku": "", "relations": []}])
    assert stored(db) == {("pim", "GRILL", "COVER", "accessory")}


def test_loading_the_same_batch_twice_is_idempotent(db: Engine) -> None:
    load(db, [product("GRILL", "COVER", "TONGS"), product("PAINT", "ROLLER")])
    batch = [product("GRILL", "COVER"), product("PAINT"), product("LAMP", "BULB")]
    load(db, batch)
    after_once = stored(db)
    with db.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM product_relation")).scalars())
    load(db, batch)
    with db.connect() as conn:
        assert set(conn.execute(sa.text("SELECT id FROM product_relation")).scalars()) == ids
    assert stored(db) == after_once == {("pim", "GRILL", "COVER", "accessory"), ("pim", "LAMP", "BULB", "accessory")}


def test_the_last_record_of_a_sku_in_a_batch_is_its_set(db: Engine) -> None:
    load(db, [product("GRILL", "COVER", "TONGS"), product("GRILL", "COVER")])
    assert stored(db) == {("pim", "GRILL", "COVER", "accessory")}
    load(db, [product("GRILL"), product("GRILL", "BRUSH")])
    assert stored(db) == {("pim", "GRILL", "BRUSH", "accessory")}


def test_the_deletions_are_counted_and_cost_two_statements_per_batch(db: Engine) -> None:
    load(db, [product(f"P{n}", "A", "B", "C") for n in range(50)])
    mapped = map_batch(MAPPING, [product(f"P{n}", "A") for n in range(50)])
    assert all(isinstance(m, ReplacingMapped) for m in mapped.mapped)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(db, "before_cursor_execute", count)
    try:
        with db.begin() as conn:
            result = load_batch(conn, mapped.mapped, [None] * 50, source="pim", now=datetime.now(UTC))
    finally:
        sa.event.remove(db, "before_cursor_execute", count)
    assert result.removed == {"product_relation": 100}
    touching = [s.split()[0] for s in statements if "product_relation" in s]  # the upsert bypasses the events
    assert touching == ["SELECT", "DELETE"]
    assert len(stored(db)) == 50


def test_a_block_skipped_by_a_when_on_the_record_deletes_nothing(engine: Engine) -> None:
    mapping = compiled(RELATIONS.replace("replace: true\n", "replace: true\n        when: $.active\n"))
    first = map_batch(mapping, [{"active": "y", **product("GRILL", "COVER")}])
    again = map_batch(mapping, [product("GRILL")])
    for batch in (first, again):
        with engine.begin() as conn:
            load_batch(conn, batch.mapped, [None], source="pim", now=datetime.now(UTC))
    assert stored(engine) == {("pim", "GRILL", "COVER", "accessory")}


def test_two_replace_blocks_of_one_mapping_keep_each_others_rows(engine: Engine) -> None:
    mapping = compiled(
        """\
        entities:
          - entity: product_relation
            each: accessories
            replace: true
            fields: {sku: $.sku, related_sku: sku, kind: {value: accessory}}
          - entity: product_relation
            each: cross_sells
            replace: true
            fields: {sku: $.sku, related_sku: sku, kind: {value: cross_sell}}
        """
    )
    record = {"sku": "GRILL", "accessories": [{"sku": "COVER"}], "cross_sells": [{"sku": "TABLE"}]}
    for _ in range(2):
        with engine.begin() as conn:
            load_batch(conn, map_batch(mapping, [record]).mapped, [None], source="pim", now=datetime.now(UTC))
    assert stored(engine) == {("pim", "GRILL", "COVER", "accessory"), ("pim", "GRILL", "TABLE", "cross_sell")}


@settings(max_examples=30)
@given(
    lists=st.lists(
        st.tuples(st.sampled_from(["GRILL", "PAINT"]), st.lists(st.sampled_from(["A", "B", "C", "D"]), max_size=4)),
        min_size=1,
        max_size=8,
    ),
    cuts=st.sets(st.integers(1, 7)),
)
def test_the_stored_relations_are_the_last_list_of_each_sku(
    lists: list[tuple[str, list[str]]],
    cuts: set[int],
    make_database: Callable[[str], Engine],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    engine = make_database(f"sqlite:///{tmp_path_factory.mktemp('replace')}/hub.db")
    try:
        records = [product(sku, *related) for sku, related in lists]
        bounds = [0, *sorted(c for c in cuts if c < len(records)), len(records)]
        for start, end in pairwise(bounds):
            load(engine, records[start:end])
        last = dict(lists)
        assert stored(engine) == {("pim", sku, r, "accessory") for sku, related in last.items() for r in related}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------- validation


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TRANSFORMS, display="mappings/bad.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_replace_without_each_is_refused(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: product_relation
            replace: true
            fields: {sku: sku, related_sku: related, kind: kind}
        """,
    )
    assert found == [
        "mappings/bad.yaml:4: entities[0].replace: `replace` needs `each`: it makes the block's list the whole "
        "set of the record's rows"
    ]


def test_replace_without_a_key_field_read_from_the_record_is_refused(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: product_relation
            each: relations
            replace: true
            fields: {sku: sku, related_sku: related, kind: {value: accessory}}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(
        "mappings/bad.yaml:5: entities[0].replace: `replace` needs a key field of product_relation "
        "(sku, related_sku, kind) read from the record with `$.` (e.g. `sku: $.sku`)"
    )


def test_replace_with_every_key_field_read_from_the_record_is_refused(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order
            each: refunds
            replace: true
            fields: {external_id: $.id, placed_at: {path: $.at, type: datetime}}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(
        "mappings/bad.yaml:5: entities[0].replace: `replace` needs a key field of order (external_id) read from "
        "the list's elements"
    )


def test_replace_on_an_entity_not_kept_per_connector_is_refused(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order_line
            each: lines
            replace: true
            fields: {order_external_id: $.id, line_no: {path: $index, type: int}, quantity: {path: qty, type: decimal}}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(
        "mappings/bad.yaml:5: entities[0].replace: `replace` applies to entities whose rows hub keeps per "
        "connector: store, product, product_relation, order, cart, event, wishlist_item"
    )


def test_replace_false_and_a_mapping_without_replace_map_as_before() -> None:
    plain = compiled(RELATIONS.replace("replace: true", "replace: false"))
    (mapped,) = map_batch(plain, [product("GRILL", "COVER")]).mapped
    assert not isinstance(mapped, ReplacingMapped)
    (replacing,) = map_batch(MAPPING, [product("GRILL", "COVER")]).mapped
    assert isinstance(replacing, ReplacingMapped)
    assert replacing.rows == mapped.rows
    assert replacing.replaces == (("product_relation", ("sku",), ("GRILL",)),)


@pytest.fixture
def shipped() -> Iterator[CompiledMapping]:
    yield load_mapping(Path(__file__).parents[2] / "mappings" / "akeneo_relations.yaml", TRANSFORMS)


def test_the_akeneo_relations_mapping_replaces_by_sku(shipped: CompiledMapping) -> None:
    (mapped,) = shipped.map_batch([{"sku": "GRILL", "relations": []}])[0]
    assert isinstance(mapped, ReplacingMapped)
    assert mapped.replaces == (("product_relation", ("sku",), ("GRILL",)),)
