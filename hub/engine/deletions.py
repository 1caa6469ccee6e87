"""Deletions: the tombstones a source reports, applied to the model in the transaction of their batch.

A source reports a record deleted at its end as a tombstone, ``{"_deleted": true, <Stream.key field>: <key>,
...}``, once, in the read after the deletion. :func:`hub.engine.map.map_batch` sets tombstones aside (they never go
through field mapping: a tombstone lacks the fields a mapping requires) and :func:`apply_deletions` applies them
after the batch's records are loaded, set-based, so the cursor that passes a tombstone commits with its effect and
a crash replays at most the batch.

What a tombstone deletes is read from the stream's mapping (:class:`DeletionKeys`). Its *target* is the first entity
the mapping loads among order, cart, event, product, product relation and store, else its customer; the target's
natural key is read from the tombstone by the target blocks' own key fields, paths and transforms included, so
``external_id: {path: id, transforms: [{prefix: "refund-"}]}`` finds the row it loaded. Only what this source
loaded is touched, as the model can bear it:

- order: deleted with its lines (orders are keyed by source), so RFM, CLV, triggers and recommendations stop
  counting it without learning a new status; its customer is touched for the next attribute compute;
- cart, event: deleted (a deleted cart fires no abandoned-cart trigger; one already fired is dropped at send);
- product: marked ``deleted_at`` when this source last wrote it, and kept, so past order lines keep their name
  and group; the relations the same mapping loaded with it are deleted; a later load of the SKU clears the mark;
- product relation: deleted when this source wrote it;
- customer: this source's link (its ``external_id`` identity) is removed. A customer no other source knows any
  more (no other system's id, no key first seen elsewhere, no attributes set last by another source, no order,
  cart, event or consent from elsewhere) is erased (``erased_at``: no message goes to them) and loses its keys,
  so a re-created record is a new customer;
- store: kept (orders name it).

A tombstone that matches nothing (never loaded, already deleted, loaded by another source, or a key its mapping
cannot read from it, such as a Shopify product's id for products keyed by variant SKU) is counted as ignored,
never rejected, so reading one twice is harmless. A tombstone followed in its batch by a record with the same key
is superseded by that record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hub._yaml import LocatedYaml, load_located
from hub.db import one_of, select_ids
from hub.identity import KeyReader
from hub.mapping.coerce import zone
from hub.mapping.fields import CompileContext, TransformFactory, compile_field
from hub.mapping.pipeline import FieldGetter
from hub.mapping.spec import parse_mapping
from hub.models import Cart, ConsentEvent, Customer, Event, Identity, Order, OrderLine, Product, ProductRelation
from hub.records import IDENTITY_KEYS, Mapped

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = [
    "NATURAL_KEYS",
    "Applied",
    "DeletionKeys",
    "Tombstone",
    "apply_deletions",
    "compile_deletion_keys",
    "deletion_keys",
]

Key = tuple[Any, ...]

#: The entities a stream's tombstones can target, searched in the mapping's block order, with their natural key
#: (the connector completes the key of orders, carts and events). A mapping with none of them targets its customer,
#: keyed by its first identity key (``external_id`` is this source's own).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "order": ("external_id",),
    "cart": ("external_id",),
    "event": ("external_id",),
    "product": ("sku",),
    "product_relation": ("sku", "related_sku", "kind"),
    "store": ("external_id",),
}

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_identity: sa.Table = Identity.__table__  # type: ignore[attr-defined]
_consent_event: sa.Table = ConsentEvent.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_cart: sa.Table = Cart.__table__  # type: ignore[attr-defined]
_event: sa.Table = Event.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_relation: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
_READER = KeyReader()


@dataclass(slots=True)
class Tombstone:
    """A tombstone set aside from its batch, and the natural keys of its stream's target that it deletes."""

    raw: dict[str, Any]
    keys: list[Key]


@dataclass(slots=True)
class Applied:
    """Tombstones of a batch that deleted something, and those ignored (nothing of this source had their key)."""

    deleted: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class _Block:
    """The key fields of one target block of the mapping (one row per record, or per ``each`` element)."""

    fields: tuple[tuple[str, FieldGetter], ...]
    each: Callable[[Any], Any] | None

    def rows(self, raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
        elements = [raw] if self.each is None else self.each(raw)
        if not isinstance(elements, list):
            return
        for index, element in enumerate(elements):
            row: dict[str, Any] = {}
            for name, get in self.fields:
                try:
                    row[name] = get(raw, element, index)
                except (ValueError, TypeError):  # a key the tombstone lacks or cannot give
                    row[name] = None
            yield row


class DeletionKeys:
    """What the tombstones of one stream delete: the target entity of its mapping and how to read its key."""

    __slots__ = ("_blocks", "target", "with_relations")

    def __init__(self, target: str | None, blocks: Sequence[_Block] = (), *, with_relations: bool = False) -> None:
        self.target = target  # None: the mapping loads nothing a tombstone could name
        self.with_relations = with_relations  # a product mapping that also loads the product's relations
        self._blocks = tuple(blocks)

    def __repr__(self) -> str:
        return f"<DeletionKeys {self.target}>"

    def keys(self, raw: dict[str, Any]) -> list[Key]:
        """The target's natural keys named by a tombstone, in block order, without repeats."""
        found: list[Key] = []
        for block in self._blocks:
            for row in block.rows(raw):
                key = self._key(row)
                if key is not None and key not in found:
                    found.append(key)
        return found

    def loaded(self, mapped: Mapped) -> list[Key]:
        """The target's natural keys a mapped record loads (a re-creation supersedes an earlier tombstone)."""
        if self.target == "customer":
            row = mapped.customer
            key = self._key(row) if row is not None else None
            return [] if key is None else [key]
        if self.target is None:
            return []
        return [key for row in mapped.rows.get(self.target, ()) if (key := self._key(row)) is not None]

    def tombstones(
        self, records: Sequence[tuple[int, dict[str, Any]]], loaded: Sequence[tuple[int, Mapped]]
    ) -> list[Tombstone]:
        """The batch's tombstones with their keys; ``records`` and ``loaded`` carry their positions in the batch.

        A key that a later record of the batch loads again is left out: the source re-created what it deleted.
        """
        last: dict[Key, int] = {}
        for position, mapped in loaded:
            for key in self.loaded(mapped):
                last[key] = position
        return [
            Tombstone(raw, [key for key in self.keys(raw) if last.get(key, -1) < position]) for position, raw in records
        ]

    def _key(self, row: Mapping[str, Any]) -> Key | None:
        if self.target == "customer":
            values = _READER.values(row)
            return next(((kind, values[kind]) for kind in IDENTITY_KEYS if kind in values), None)
        assert self.target is not None
        key = tuple(row.get(name) for name in NATURAL_KEYS[self.target])
        return None if any(value is None or value == "" for value in key) else key


def compile_deletion_keys(
    located: LocatedYaml, transforms: Mapping[str, TransformFactory], *, timezone: str = "UTC"
) -> DeletionKeys:
    """The :class:`DeletionKeys` of a mapping file (already valid: ``hub.mapping`` compiled it).

    The key fields are compiled as the mapping compiles them, so a tombstone's key reads exactly as its record's.
    """
    parsed = parse_mapping(located)
    ctx = CompileContext(located=located, transforms=transforms, timezone=zone(timezone))
    blocks = [block for block in parsed.blocks if block.spec is not None]
    entities = [block.spec.entity for block in blocks if block.spec is not None]
    target = next((e for e in entities if e in NATURAL_KEYS), "customer" if "customer" in entities else None)
    names = IDENTITY_KEYS if target == "customer" else NATURAL_KEYS.get(target or "", ())
    compiled: list[_Block] = []
    for block in blocks:
        spec = block.spec
        assert spec is not None
        if spec.entity != target:
            continue
        loc = ("entities", block.position)
        in_each = spec.each is not None
        fields = []
        for name in names:
            if name in block.fields:
                field = compile_field(
                    ctx, (*loc, "fields", name), name, block.fields[name], required=False, in_each=in_each
                )
                if field is not None:
                    fields.append((name, field.get))
        each = None
        if spec.each is not None:
            path = ctx.path((*loc, "each"), spec.each, element=False, index=False)
            if path is None:
                continue
            each = path.getter()
        if fields:
            compiled.append(_Block(tuple(fields), each))
    return DeletionKeys(target, compiled, with_relations=target == "product" and "product_relation" in entities)


def deletion_keys(hub: Hub, connector: str, stream: str) -> DeletionKeys:
    """The :class:`DeletionKeys` of a connector's stream, from the mapping file ``hub.mapping`` compiles."""
    path = hub.config.connectors[connector].mapping_for(stream)
    if path is None:
        return DeletionKeys(None)
    return compile_deletion_keys(load_located(path), hub.transforms, timezone=hub.config.timezone)


def apply_deletions(
    conn: sa.Connection,
    keys: DeletionKeys | None,
    tombstones: Sequence[Tombstone],
    *,
    source: str,
    now: datetime,
) -> Applied:
    """Apply a batch's tombstones from ``source`` in the caller's transaction; a fixed few statements per batch."""
    if not tombstones:
        return Applied()
    wanted = sorted({key for tombstone in tombstones for key in tombstone.keys})
    matched: set[Key] = set()
    if keys is not None and wanted:
        target = keys.target
        if target == "order":
            matched = _delete_orders(conn, wanted, source=source, now=now)
        elif target in ("cart", "event"):
            matched = _delete_keyed(conn, _cart if target == "cart" else _event, wanted, source=source)
        elif target == "product":
            matched = _mark_products(conn, wanted, source=source, now=now, relations=keys.with_relations)
        elif target == "product_relation":
            matched = _delete_relations(conn, wanted, source=source)
        elif target == "customer":
            matched = _unlink_customers(conn, wanted, source=source, now=now)
    deleted = sum(1 for tombstone in tombstones if any(key in matched for key in tombstone.keys))
    return Applied(deleted=deleted, ignored=len(tombstones) - deleted)


def _delete_orders(conn: sa.Connection, keys: list[Key], *, source: str, now: datetime) -> set[Key]:
    """Delete the orders and their lines; touch their customers so the next compute recounts their figures."""
    query = sa.select(_order.c.id, _order.c.external_id, _order.c.customer_id).where(
        _order.c.source == source, one_of(conn, _order.c.external_id, [key[0] for key in keys])
    )
    rows = conn.execute(query).all()
    if not rows:
        return set()
    ids = sorted(row[0] for row in rows)
    conn.execute(_line.delete().where(one_of(conn, _line.c.order_id, ids)))
    conn.execute(_order.delete().where(one_of(conn, _order.c.id, ids)))
    _touch(conn, {row[2] for row in rows if row[2] is not None}, now)
    return {(row[1],) for row in rows}


def _delete_keyed(conn: sa.Connection, table: sa.Table, keys: list[Key], *, source: str) -> set[Key]:
    """Delete rows keyed by (source, external_id): carts, events."""
    query = sa.select(table.c.id, table.c.external_id).where(
        table.c.source == source, one_of(conn, table.c.external_id, [key[0] for key in keys])
    )
    rows = conn.execute(query).all()
    if rows:
        conn.execute(table.delete().where(one_of(conn, table.c.id, sorted(row[0] for row in rows))))
    return {(row[1],) for row in rows}


def _mark_products(conn: sa.Connection, keys: list[Key], *, source: str, now: datetime, relations: bool) -> set[Key]:
    """Mark the products this source last wrote as deleted; drop the relations its mapping loaded with them."""
    query = sa.select(_product.c.sku).where(
        one_of(conn, _product.c.sku, [key[0] for key in keys]),
        _product.c.source == source,
        _product.c.deleted_at.is_(None),
    )
    skus = sorted(conn.execute(query).scalars())
    if not skus:
        return set()
    conn.execute(_product.update().where(one_of(conn, _product.c.sku, skus)).values(deleted_at=now, loaded_at=now))
    if relations:
        conn.execute(_relation.delete().where(_relation.c.source == source, one_of(conn, _relation.c.sku, skus)))
    return {(sku,) for sku in skus}


def _delete_relations(conn: sa.Connection, keys: list[Key], *, source: str) -> set[Key]:
    """Delete the product relations this source wrote."""
    ids = select_ids(conn, _relation, ("sku", "related_sku", "kind"), keys)
    if not ids:
        return set()
    query = sa.select(_relation.c.id).where(
        one_of(conn, _relation.c.id, sorted(ids.values())), _relation.c.source == source
    )
    own = set(conn.execute(query).scalars())
    if own:
        conn.execute(_relation.delete().where(one_of(conn, _relation.c.id, sorted(own))))
    return {key for key, relation_id in ids.items() if relation_id in own}


def _unlink_customers(conn: sa.Connection, keys: list[Key], *, source: str, now: datetime) -> set[Key]:
    """Remove this source's links to the customers; erase the customers no other source knows any more."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    matched: set[Key] = set()
    owners: set[int] = set()
    for kind, values in by_kind.items():
        query = sa.select(_identity.c.id, _identity.c.value, _identity.c.customer_id).where(
            _identity.c.kind == kind,
            _identity.c.system == (source if kind == "external_id" else ""),
            one_of(conn, _identity.c.value, values),
        )
        rows = conn.execute(query).all()
        matched.update((kind, row[1]) for row in rows)
        owners.update(row[2] for row in rows)
        if kind == "external_id" and rows:
            conn.execute(_identity.delete().where(one_of(conn, _identity.c.id, sorted(row[0] for row in rows))))
    if not owners:
        return matched
    ids = sorted(owners)
    forgotten = sorted(owners - _known_elsewhere(conn, ids, source))
    _touch(conn, owners, now)
    if forgotten:
        conn.execute(_identity.delete().where(one_of(conn, _identity.c.customer_id, forgotten)))
        conn.execute(
            _customer.update()
            .where(one_of(conn, _customer.c.id, forgotten), _customer.c.erased_at.is_(None))
            .values(erased_at=now)
        )
    return matched


def _known_elsewhere(conn: sa.Connection, ids: list[int], source: str) -> set[int]:
    """The customers that something besides ``source`` still vouches for: a system's id (another account of this
    source included), a key another source saw first, attributes another source set last, or an order, cart,
    event or consent from another source."""
    parts: list[sa.Select[Any]] = [
        sa.select(_customer.c.id).where(one_of(conn, _customer.c.id, ids), _customer.c.source != source),
        sa.select(_identity.c.customer_id).where(
            one_of(conn, _identity.c.customer_id, ids),
            sa.or_(_identity.c.kind == "external_id", _identity.c.source != source),
        ),
    ]
    parts += [
        sa.select(table.c.customer_id).where(one_of(conn, table.c.customer_id, ids), table.c.source != source)
        for table in (_order, _cart, _event, _consent_event)
    ]
    return set(conn.execute(sa.union(*parts)).scalars())


def _touch(conn: sa.Connection, customer_ids: set[int], now: datetime) -> None:
    """Mark customers changed: the next attribute compute and delivery pass look at them again."""
    if customer_ids:
        conn.execute(
            _customer.update().where(one_of(conn, _customer.c.id, sorted(customer_ids))).values(updated_at=now)
        )
