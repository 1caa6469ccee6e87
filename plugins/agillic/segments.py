"""Segment membership in Agillic: a Person Data field per segment, or a static target group per segment.

``segment_mode: person_data`` writes ``segment_fields[segment]``: with a ``value`` (``HUB_TIER = "A"``) the field
holds it while the customer is a member, and leaving clears it only if it still holds this segment's value, since
several segments may share one field (tier A, B and C all write ``HUB_TIER``) and the customer may already have
entered the next one. That check reads the recipient before writing, so changes of shared fields for one recipient
are serialised in this process (a lock per recipient). Without a ``value`` the field is a BOOLEAN flag, true while a
member and false after. ``segment_mode: target_group`` adds to and removes from
``segment_target_groups[segment]``, at most 100 recipients per call.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from hub.connectors import Outgoing
from hub.delivery.outcomes import Outcome
from hub_plugins.agillic.limits import CONTACT_PENDING_RETRY, MAX_TARGET_GROUP_CALL
from hub_plugins.agillic.settings import AgillicSettings

if TYPE_CHECKING:
    from hub_plugins.agillic.destination import AgillicDestination

ADD = "/recipients/:addToStaticTargetGroup"
REMOVE = "/recipients/:removeFromStaticTargetGroup"


def prepare(settings: AgillicSettings, view: dict[str, Any]) -> dict[str, Any]:
    """The payload of one change, resolved against the settings when it is enqueued."""
    segment, change = str(view["segment"]), view["change"]
    if settings.segment_mode == "target_group":
        return {"segment": segment, "change": change, "mode": "target_group", "group": settings.target_group(segment)}
    target = settings.segment_field(segment)
    return {"segment": segment, "change": change, "mode": "person_data", "field": target.field, "value": target.value}


class _Stripes:
    """A fixed set of locks, one chosen per key: holding several takes them in one global order (no deadlock)."""

    def __init__(self, count: int = 256) -> None:
        self._locks = [threading.Lock() for _ in range(count)]

    @contextmanager
    def holding(self, keys: Iterable[Hashable]) -> Iterator[None]:
        chosen = [self._locks[i] for i in sorted({hash(key) % len(self._locks) for key in keys})]
        for lock in chosen:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(chosen):
                lock.release()


_stripes = _Stripes()


@dataclass
class _ClearIf:
    """Clear the field if Agillic still holds one of ``values`` (known only after reading the recipient)."""

    values: set[str] = field(default_factory=set)


def send(destination: AgillicDestination, batch: list[Outgoing]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(batch)
    by_field = [(i, m.payload) for i, m in enumerate(batch) if m.payload.get("mode") != "target_group"]
    by_group = [(i, m.payload) for i, m in enumerate(batch) if m.payload.get("mode") == "target_group"]
    if by_field:
        for index, outcome in _person_data(destination, by_field).items():
            outcomes[index] = outcome
    if by_group:
        for index, outcome in _target_groups(destination, by_group).items():
            outcomes[index] = outcome
    return [o if o is not None else Outcome.unknown("no outcome") for o in outcomes]


def _person_data(destination: AgillicDestination, items: list[tuple[int, dict[str, Any]]]) -> dict[int, Outcome]:
    """One row of fields per recipient, in message order (a later change of the same field wins), then one write."""
    rows: dict[str, dict[str, Any]] = {}
    owners: dict[str, list[int]] = {}
    shared = {p["recipient_id"] for _, p in items if p.get("value") is not None}
    with _stripes.holding((destination.name, rid) for rid in shared):
        for index, payload in items:
            rid, name, value = payload["recipient_id"], payload["field"], payload.get("value")
            row = rows.setdefault(rid, {})
            owners.setdefault(rid, []).append(index)
            entered = payload["change"] == "entered"
            if value is None:
                row[name] = entered
            elif entered:
                row[name] = value
            else:
                current = row.get(name)
                if current is None or isinstance(current, _ClearIf):
                    row[name] = current if isinstance(current, _ClearIf) else _ClearIf()
                    row[name].values.add(value)
                elif current == value:
                    row[name] = ""
        for rid, row in rows.items():
            pending = {name: c for name, c in row.items() if isinstance(c, _ClearIf)}
            if pending:
                held = destination.read_recipient(rid) or {}
                for name, clear in pending.items():
                    if held.get(name) in clear.values:
                        row[name] = ""
                    else:
                        del row[name]
        writes = [(rid, {destination.settings.recipient_id_field: rid, **row}) for rid, row in rows.items() if row]
        written = dict(zip((rid for rid, _ in writes), destination.write_recipients(writes), strict=True))
    results: dict[int, Outcome] = {}
    for rid, indices in owners.items():
        outcome = written.get(rid) or Outcome.skipped("the field no longer holds this segment's value")
        for index in indices:
            results[index] = outcome
    return results


def _target_groups(destination: AgillicDestination, items: list[tuple[int, dict[str, Any]]]) -> dict[int, Outcome]:
    """One call per group and direction (in the order they first appear), at most 100 recipients each."""
    calls: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for index, payload in items:
        calls.setdefault((payload["group"], payload["change"]), []).append((index, payload["recipient_id"]))
    results: dict[int, Outcome] = {}
    for (group, change), members in calls.items():
        for start in range(0, len(members), MAX_TARGET_GROUP_CALL):
            part = members[start : start + MAX_TARGET_GROUP_CALL]
            ids = list(dict.fromkeys(rid for _, rid in part))
            body = {"targetGroupName": group, "recipientIds": ids}
            try:
                response = destination.call("POST", ADD if change == "entered" else REMOVE, body)
            except httpx.HTTPError as exc:
                failed = destination.failure(exc)
                results.update((index, failed) for index, _ in part)
                continue
            if response.status_code >= 300:
                outcome = Outcome.from_response(response)
                results.update((index, outcome) for index, _ in part)
                continue
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            missing = {str(r) for r in (answer.get("notFound") or [])} if isinstance(answer, dict) else set()
            for index, rid in part:
                if rid not in missing:
                    results[index] = Outcome.sent(code=response.status_code)
                elif change == "entered":
                    results[index] = Outcome.retryable(
                        404, f"Agillic has no recipient {rid} yet", retry_after=CONTACT_PENDING_RETRY
                    )
                else:
                    results[index] = Outcome.skipped(f"Agillic has no recipient {rid}: nothing to remove")
    return results
