"""Resolve: the identity keys of a batch's ``customer`` rows find, create or merge golden customers.

Per batch and set-based: one lookup of every key of the batch, then union-find in memory over the batch's
records and the customers their keys already point at, so transitive links inside one batch are found (record
A has an email and a phone, record B the phone and a member number: one person). A component with no known
customer becomes a new one, one with a known customer attaches to it, and one with several merges them into a
survivor (configured source priority, then recency, then the oldest id) with a ``customer_merge`` row that
says which keys linked them. Records are linked in input order, and one that would give a customer more values
of a kind than allowed (a second member number) is rejected whole, so no single bad record can fold strangers
into one giant false customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.db import bulk_upsert, is_postgres, one_of, select_ids
from hub.engine.consent import merge_consents
from hub.errors import DatabaseError
from hub.identity import Component, Key, KeyReader, Linker
from hub.models import Cart, Customer, CustomerMerge, Event, Identity, Order

__all__ = ["DEFAULT_MAX_PER_CUSTOMER", "IdentityRules", "ResolveResult", "resolve_batch"]

DEFAULT_MAX_PER_CUSTOMER: dict[str, int] = {"member_no": 1, "email": 5, "phone": 5, "external_id": 5}

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_identity: sa.Table = Identity.__table__  # type: ignore[attr-defined]
_merge: sa.Table = CustomerMerge.__table__  # type: ignore[attr-defined]
#: Tables whose rows follow a merged customer to its survivor (consents have their own rule).
_FOLLOW_MERGES: tuple[sa.Table, ...] = (
    Order.__table__,  # type: ignore[attr-defined]
    Cart.__table__,  # type: ignore[attr-defined]
    Event.__table__,  # type: ignore[attr-defined]
    _identity,
)
_PLAIN_ATTRIBUTES = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "street",
    "postcode",
    "city",
    "country",
    "language",
    "company_name",
    "is_b2b",
)
#: The survivorship state of a customer, held as a list in this order while a batch is applied.
_STATE_COLUMNS = (
    "email",
    "phone",
    "member_no",
    *_PLAIN_ATTRIBUTES,
    "source",
    "source_rank",
    "source_updated_at",
    "created_at",
)
_ATTRIBUTE_COUNT = len(_STATE_COLUMNS) - 4
_SOURCE, _RANK, _UPDATED, _CREATED = range(_ATTRIBUTE_COUNT, len(_STATE_COLUMNS))
_IS_B2B = _STATE_COLUMNS.index("is_b2b")
_WRITE_COLUMNS = ("id", *_STATE_COLUMNS, "updated_at")
_IDENTITY_COLUMNS = ("customer_id", "kind", "system", "value", "source", "first_seen_at")
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class IdentityRules:
    """How keys identify people: source priority for survivorship, blocked values, and limits per key kind.

    Mutable on purpose: the engine starts from :meth:`default` and overlays the configuration.
    """

    source_priority: list[str] = field(default_factory=list)
    blocked_values: dict[str, set[str]] = field(default_factory=dict)
    max_per_customer: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_PER_CUSTOMER))

    @classmethod
    def default(cls) -> IdentityRules:
        return cls()

    def rank(self, source: str | None) -> int:
        """Higher is better: the first of ``source_priority`` ranks ``len(source_priority)``, unknown 0."""
        if source is None or source not in self.source_priority:
            return 0
        return len(self.source_priority) - self.source_priority.index(source)


@dataclass
class ResolveResult:
    """Per input record its customer (None: anonymous or rejected); rejects as index -> reasons; counts.

    ``merged`` maps every customer merged away in this batch to its survivor, for steps that cache ids.
    """

    customer_ids: list[int | None]
    rejected: dict[int, list[str]] = field(default_factory=dict)
    created: int = 0
    merges: int = 0
    merged: dict[int, int] = field(default_factory=dict)


class _State:
    """A customer's survivorship state (a list in ``_STATE_COLUMNS`` order) while the batch is applied."""

    __slots__ = ("dirty", "values")

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.dirty = False

    def apply(self, attributes: list[Any], source: str, rank: int, updated: datetime, explicit: bool) -> None:
        """Apply one record's attributes: all of them when its source ranks higher, or equal and not older;
        otherwise only where the customer has no value yet. A None never erases."""
        values = self.values
        current_rank, current_updated = values[_RANK], values[_UPDATED]
        changed = False
        if rank > current_rank or (rank == current_rank and (current_updated is None or updated >= current_updated)):
            for i, value in enumerate(attributes):
                if value is not None and values[i] != value:
                    values[i] = value
                    changed = True
            if values[_SOURCE] != source or current_rank != rank:
                values[_SOURCE], values[_RANK] = source, rank
                changed = True
            # Without its own updated_at a record counts as now, but re-reading it is no change by itself.
            if changed or current_updated is None or (explicit and updated != current_updated):
                values[_UPDATED] = updated
                changed = True
        else:
            for i, value in enumerate(attributes):
                if value is not None and values[i] is None:
                    values[i] = value
                    changed = True
        if changed:
            self.dirty = True

    def fill(self, other: Sequence[Any]) -> None:
        """Take a merged customer's attributes where the survivor has none."""
        values = self.values
        for i in range(_ATTRIBUTE_COUNT):
            if values[i] is None and other[i] is not None:
                values[i] = other[i]
                self.dirty = True

    def created(self, at: Any) -> None:
        """The customer exists since the earliest creation any source reports."""
        if isinstance(at, datetime) and at.utcoffset() is not None:
            current = self.values[_CREATED]
            if current is None or at < current:
                self.values[_CREATED] = at
                self.dirty = True


@dataclass(slots=True)
class _Known:
    """A customer the batch's keys point at: its state and the timestamps that rank it as a merge survivor."""

    state: list[Any]
    updated_at: datetime | None


def resolve_batch(
    conn: sa.Connection,
    customers: Sequence[Mapping[str, Any] | None],
    *,
    source: str,
    rules: IdentityRules,
    now: datetime,
    run_id: int | None = None,
) -> ResolveResult:
    """Find or create the golden customer of each record of a batch from ``source``, merging where keys link.

    ``customers[i]`` is record i's ``customer`` row (``hub.records``) or None for an anonymous record. Runs in
    the caller's transaction with a fixed number of statements per batch; re-running a batch changes nothing.
    """
    result = ResolveResult(customer_ids=[None] * len(customers))
    reader = KeyReader(rules.blocked_values)
    records: dict[int, tuple[dict[str, str], list[Key]]] = {}
    for index, row in enumerate(customers):
        if row:
            values = reader.values(row)
            if values:
                keys = [(kind, source if kind == "external_id" else "", value) for kind, value in values.items()]
                records[index] = (values, keys)
    if not records:
        return result

    owners = select_ids(
        conn,
        _identity,
        ("kind", "system", "value"),
        {k for _, keys in records.values() for k in keys},
        "customer_id",
    )
    known = _load_customers(conn, owners)
    counts = _identity_counts(conn, list(known)) if rules.max_per_customer else {}
    linker = Linker(rules.max_per_customer, owners, counts)
    for index, (_, keys) in records.items():
        reason = linker.add(index, keys)
        if reason is not None:
            result.rejected[index] = [reason]
    groups = linker.groups()

    rank = rules.rank(source)
    states = [_apply_group(group, customers, records, known, rules, source, rank, now) for group in groups]
    fresh = [state.values for group, state in zip(groups, states, strict=True) if group.target is None]
    new_ids = iter(_insert_customers(conn, fresh, now))
    targets = [next(new_ids) if group.target is None else group.target for group in groups]
    result.created = len(fresh)
    changed = [
        (group.target, state.values)
        for group, state in zip(groups, states, strict=True)
        if group.target is not None and state.dirty
    ]
    _write_customers(conn, changed, now, update=True)
    identities = [
        (target, kind, system, value, source, now)
        for group, target in zip(groups, targets, strict=True)
        for kind, system, value in group.new_keys
    ]
    bulk_upsert(conn, _identity, identities, _IDENTITY_COLUMNS, conflict=("kind", "system", "value"), update=())
    merging = [group for group in groups if group.merged]
    if merging:
        _merge_customers(conn, merging, records, owners, source=source, now=now, run_id=run_id)
        result.merged = {merged: group.target for group in merging for merged in group.merged}  # type: ignore[misc]
        result.merges = len(result.merged)
    for group, target in zip(groups, targets, strict=True):
        for index in group.records:
            result.customer_ids[index] = target
    return result


def _apply_group(
    group: Component,
    customers: Sequence[Mapping[str, Any] | None],
    records: Mapping[int, tuple[dict[str, str], list[Key]]],
    known: Mapping[int, _Known],
    rules: IdentityRules,
    source: str,
    rank: int,
    now: datetime,
) -> _State:
    """The group's customer state after its records, applied in input order, on top of its starting state."""
    state = _start_state(group, known, rules)
    for index in group.records:
        row = customers[index]
        assert row is not None
        values = records[index][0]
        attributes = [values.get("email"), values.get("phone"), values.get("member_no")]
        attributes.extend(map(row.get, _PLAIN_ATTRIBUTES))
        updated = row.get("updated_at")
        state.apply(attributes, source, rank, updated or now, updated is not None)
        state.created(row.get("created_at"))
    return state


def _start_state(group: Component, known: Mapping[int, _Known], rules: IdentityRules) -> _State:
    """The state a group's records are applied to, choosing the group's target customer on the way.

    New customer: blank. One known customer: its state. Several: a merge; the survivor is the customer from
    the highest-priority source, then the most recently updated, then the oldest id; its gaps are filled from
    the merged customers, best first.
    """
    if not group.customers:
        blank: list[Any] = [None] * len(_STATE_COLUMNS)
        blank[_RANK] = -1  # below every real rank: the first record always sets the attributes
        return _State(blank)
    ranked = sorted(
        group.customers,
        key=lambda i: (
            rules.rank(known[i].state[_SOURCE]),
            known[i].state[_UPDATED] or known[i].updated_at or _OLDEST,
            -i,
        ),
        reverse=True,
    )
    group.target, group.merged = ranked[0], ranked[1:]
    state = _State(list(known[group.target].state))
    for merged in group.merged:
        state.fill(known[merged].state)
        state.created(known[merged].state[_CREATED])
    return state


def _load_customers(conn: sa.Connection, owners: dict[Key, int]) -> dict[int, _Known]:
    """The live customers the keys point at, by id.

    Merges move identities, so a key never points at a merged-away customer; should one do so anyway (data
    written by other means), ``owners`` is re-pointed in place along ``merged_into`` rather than trusted.
    """
    columns = [_customer.c.id, _customer.c.merged_into, _customer.c.updated_at]
    columns += [_customer.c[name] for name in _STATE_COLUMNS]
    known: dict[int, _Known] = {}
    merged_into: dict[int, int] = {}
    asked: set[int] = set()
    wanted = set(owners.values())
    while wanted:
        ids = sorted(wanted)
        asked.update(ids)
        query = sa.select(*columns).where(one_of(conn, _customer.c.id, ids))
        for customer_id, into, updated_at, *state in conn.execute(query):
            if into is None:
                known[customer_id] = _Known(state, updated_at)
            else:
                merged_into[customer_id] = into
        wanted = set(merged_into.values()) - asked
    if merged_into:
        for key, owner in owners.items():
            live, hops = owner, 0
            while live in merged_into and hops <= len(merged_into):
                live, hops = merged_into[live], hops + 1
            if live not in known:
                raise DatabaseError(
                    f"identity {key} points at customer {owner}, which leads to no live customer "
                    f"(merged_into chain {owner} -> {live}); the customer table needs repair"
                )
            owners[key] = live
    return known


def _identity_counts(conn: sa.Connection, ids: list[int]) -> dict[int, dict[str, int]]:
    """How many keys of each kind the known customers hold, for the limits per kind."""
    counts: dict[int, dict[str, int]] = {}
    if not ids:
        return counts
    query = (
        sa.select(_identity.c.customer_id, _identity.c.kind, sa.func.count())
        .where(one_of(conn, _identity.c.customer_id, ids))
        .group_by(_identity.c.customer_id, _identity.c.kind)
    )
    for customer_id, kind, n in conn.execute(query):
        counts.setdefault(customer_id, {})[kind] = n
    return counts


def _insert_customers(conn: sa.Connection, states: list[list[Any]], now: datetime) -> list[int]:
    """Insert new customers in bulk and return their ids, in order.

    The ids are allocated first (:func:`_allocate_ids`) so that one ``bulk_upsert`` writes every row:
    SQLAlchemy's RETURNING in parameter order falls back to one statement per row on SQLite.
    """
    if not states:
        return []
    ids = _allocate_ids(conn, len(states))
    written = _write_customers(conn, list(zip(ids, states, strict=True)), now, update=False)
    if written != len(ids):
        raise DatabaseError(f"customer ids {ids[0]}..{ids[-1]} were taken while this batch allocated them")
    return ids


def _allocate_ids(conn: sa.Connection, count: int) -> list[int]:
    """``count`` fresh customer ids. PostgreSQL draws them from the column's sequence (safe under concurrent
    writers). SQLite continues after the highest id: a write transaction on SQLite sees the latest data or
    fails to write, so ids read here cannot be taken by anyone before this transaction commits."""
    if is_postgres(conn):
        query = sa.text("SELECT nextval(pg_get_serial_sequence('customer', 'id')) FROM generate_series(1, :count)")
        return list(conn.execute(query, {"count": count}).scalars())
    highest = conn.execute(sa.select(sa.func.coalesce(sa.func.max(_customer.c.id), 0))).scalar_one()
    return list(range(highest + 1, highest + 1 + count))


def _write_customers(
    conn: sa.Connection, customers: Sequence[tuple[int, list[Any]]], now: datetime, *, update: bool
) -> int:
    """Insert customers with their ids, or (``update``) overwrite existing ones: one statement either way."""
    rows = []
    for customer_id, state in customers:
        row = [customer_id, *state, now]
        row[1 + _IS_B2B] = bool(row[1 + _IS_B2B])
        row[1 + _CREATED] = row[1 + _CREATED] or now
        rows.append(row)
    return bulk_upsert(
        conn, _customer, rows, _WRITE_COLUMNS, conflict=("id",), update=_WRITE_COLUMNS[1:] if update else ()
    )


def _merge_customers(
    conn: sa.Connection,
    groups: list[Component],
    records: Mapping[int, tuple[dict[str, str], list[Key]]],
    owners: Mapping[Key, int],
    *,
    source: str,
    now: datetime,
    run_id: int | None,
) -> None:
    """Fold each merged customer into its survivor: rows, keys and consents follow, lineage is written."""
    survivor_of: dict[int, int] = {merged: group.target for group in groups for merged in group.merged}  # type: ignore[misc]
    pairs = [{"merged": merged, "survivor": survivor} for merged, survivor in survivor_of.items()]
    for table in _FOLLOW_MERGES:
        conn.execute(
            table.update()
            .where(table.c.customer_id == sa.bindparam("merged"))
            .values(customer_id=sa.bindparam("survivor")),
            pairs,
        )
    merge_consents(conn, survivor_of, now=now)
    # Whoever was merged into a now-merged customer earlier points straight at the survivor: chains stay flat.
    conn.execute(
        _customer.update()
        .where(_customer.c.merged_into == sa.bindparam("merged"))
        .values(merged_into=sa.bindparam("survivor")),
        pairs,
    )
    conn.execute(
        _customer.update()
        .where(_customer.c.id == sa.bindparam("merged"))
        .values(merged_into=sa.bindparam("survivor"), updated_at=now),
        pairs,
    )
    lineage = []
    for group in groups:
        for merged in group.merged:
            keys, rule = _linking_keys(merged, group, records, owners)
            lineage.append(
                {
                    "survivor_id": group.target,
                    "merged_id": merged,
                    "rule": rule,
                    "keys": keys,
                    "source": source,
                    "run_id": run_id,
                    "at": now,
                }
            )
    conn.execute(sa.insert(_merge), lineage)


def _linking_keys(
    merged: int,
    group: Component,
    records: Mapping[int, tuple[dict[str, str], list[Key]]],
    owners: Mapping[Key, int],
) -> tuple[list[list[str]], str]:
    """The evidence for one merge: the keys, in the records that carried the merged customer's keys, that tie
    those records to the rest of the group (known keys, or new ones another record of the batch shares)."""
    seen: dict[Key, int] = {}
    for index in group.records:
        for key in records[index][1]:
            seen[key] = seen.get(key, 0) + 1
    linking: set[Key] = set()
    for index in group.records:
        keys = records[index][1]
        if any(owners.get(key) == merged for key in keys):
            linking.update(key for key in keys if key in owners or seen[key] > 1)
    kinds = sorted({kind for kind, _, _ in linking})
    return [list(key) for key in sorted(linking)], "shared " + " and ".join(kinds)
