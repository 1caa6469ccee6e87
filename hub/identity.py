"""Identity keys: which values of a ``customer`` row identify a person, which never do, and how they link.

A key is ``(kind, system, value)``: ``system`` is the connector's name for ``external_id`` (a system's own id
means nothing outside that system) and ``''`` for the global kinds (``member_no``, ``email``, ``phone``).

Placeholder values ("guest", ``noreply@shop.no``, ``+4700000000``...) are shared by thousands of unrelated
people; a single one used as a key would fold them all into one giant false customer. They are therefore
*blocked*: ignored as keys, never an error. The built-in list is below; a configuration adds its own per kind.

:class:`Linker` is the in-memory half of resolution (``hub.engine.resolve`` does the database half): it joins
the records of a batch and the customers their keys point at into connected components, refusing a record
that would give a customer more values of a kind than allowed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

__all__ = [
    "GLOBAL_SYSTEM",
    "KINDS",
    "Component",
    "Key",
    "KeyReader",
    "Linker",
    "is_placeholder",
    "key_of",
    "normalise",
]

#: Identity kinds, in the order resolution reads them from a ``customer`` row.
KINDS: tuple[str, ...] = ("external_id", "member_no", "email", "phone")
GLOBAL_SYSTEM = ""

Key = tuple[str, str, str]

#: Values that stand for "no value" in exports of every kind (compared in lower case).
_PLACEHOLDER_WORDS = frozenset(
    {"", "null", "none", "nil", "nan", "undefined", "n/a", "-1", "0", "anonymous", "unknown", "guest", "test"}
)
_PLACEHOLDER_MAILBOXES = _PLACEHOLDER_WORDS | {
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
}
#: RFC 2606 reserves these for documentation: nobody receives mail there.
_PLACEHOLDER_DOMAINS = frozenset({"example.com", "example.org", "example.net"})
_SUBDOMAINS = tuple("." + domain for domain in sorted(_PLACEHOLDER_DOMAINS))
_FILLER = "0-+. "  # a value made only of these ("0000", "---", "+00 000") is a filler, not a key
_MIN_REPEATED_DIGITS = 6
_NON_DIGITS = re.compile(r"[^0-9]")
_COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def normalise(kind: str, value: Any) -> str | None:
    """The canonical text of a key value, or None when there is none.

    Mappings already normalise (``email``, ``e164`` transforms); this repeats the cheap part so that a mapping
    without them cannot split one person in two: surrounding whitespace never counts, and e-mail addresses
    are case-insensitive. A whole float (a member number that went through a spreadsheet) loses its ``.0``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return None
    return text.lower() if kind == "email" else text


def is_placeholder(kind: str, value: str) -> bool:
    """True when a normalised value is one of the built-in placeholders that never identify anyone."""
    low = value.lower()
    check = _KIND_CHECKS.get(kind)
    return low in _PLACEHOLDER_WORDS or not low.strip(_FILLER) or (check is not None and check(low))


def _placeholder_email(address: str) -> bool:
    mailbox, _, domain = address.rpartition("@")
    if not mailbox or "." not in domain:
        return True  # not an address at all: it cannot be told apart from anybody else's garbage
    return mailbox in _PLACEHOLDER_MAILBOXES or domain in _PLACEHOLDER_DOMAINS or domain.endswith(_SUBDOMAINS)


def _placeholder_phone(phone: str) -> bool:
    international = phone.startswith("+")
    digits = phone[1:] if international else phone
    if not (digits.isascii() and digits.isdigit()):
        digits = _NON_DIGITS.sub("", digits)
    if len(digits) < _MIN_REPEATED_DIGITS:
        return True  # no personal number is that short, even with its country code
    national = digits
    if international:
        # E.164 country codes are prefix-free, so the first 1-3 digits that name one are the code.
        for size in (1, 2, 3):
            if digits[:size] in _COUNTRY_CODES:
                national = digits[size:]
                break
    return len(national) >= _MIN_REPEATED_DIGITS and national.count(national[0]) == len(national)


_KIND_CHECKS: dict[str, Callable[[str], bool]] = {"email": _placeholder_email, "phone": _placeholder_phone}


class _Blocklist:
    """Configured values for one kind: exact values, or ``*`` patterns such as ``*@mailinator.com``."""

    __slots__ = ("_exact", "_pattern")

    def __init__(self, values: Iterable[str]) -> None:
        exact: set[str] = set()
        patterns: list[str] = []
        for value in values:
            low = str(value).strip().lower()
            if "*" in low or "?" in low:
                patterns.append(fnmatch.translate(low))
            else:
                exact.add(low)
        self._exact = frozenset(exact)
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def __contains__(self, low: str) -> bool:
        return low in self._exact or (self._pattern is not None and self._pattern.match(low) is not None)


class KeyReader:
    """Reads the usable identity values of ``customer`` rows: normalised, minus placeholders and blocked ones.

    Built once per batch from the configured blocked values (``{kind: values}``; matched case-insensitively,
    ``*`` and ``?`` as wildcards).
    """

    __slots__ = ("_blocked",)

    def __init__(self, blocked_values: Mapping[str, Iterable[str]] | None = None) -> None:
        self._blocked = {kind: _Blocklist(values) for kind, values in (blocked_values or {}).items() if values}

    def values(self, row: Mapping[str, Any]) -> dict[str, str]:
        """``{kind: value}`` for every identity kind of ``row`` that holds a usable value."""
        found: dict[str, str] = {}
        blocked = self._blocked
        for kind in KINDS:
            raw = row.get(kind)
            if raw is None:
                continue
            value = raw.strip() if raw.__class__ is str else normalise(kind, raw)  # str: the hot path, inlined
            if not value:
                continue
            low = value.lower()
            if kind == "email":
                value = low
            check = _KIND_CHECKS.get(kind)
            if low in _PLACEHOLDER_WORDS or not low.strip(_FILLER) or (check is not None and check(low)):
                continue
            if blocked and kind in blocked and low in blocked[kind]:
                continue
            found[kind] = value
        return found


def key_of(kind: str, value: str, system: str) -> Key:
    """The identity key of one value: ``system`` only qualifies ``external_id``."""
    return (kind, system if kind == "external_id" else GLOBAL_SYSTEM, value)


@dataclass(slots=True)
class Component:
    """One person as a batch sees it: the records (indexes, input order), the known customers they link, and
    the keys that are new to hub. Resolution fills in ``target`` (the survivor) and ``merged``."""

    records: list[int]
    customers: list[int]
    new_keys: list[Key]
    target: int | None = None
    merged: list[int] = field(default_factory=list)


class Linker:
    """Union-find over records and known customers, with each component's count of key values per kind.

    Records are added in input order; a record that would push a component over a limit is refused and
    leaves no trace, so the outcome is exactly that of resolving the records one by one.

    :param limits: the most values of a kind one customer may hold (``max_per_customer``).
    :param owners: every key of the batch that hub knows -> the customer it identifies.
    :param counts: per known customer, how many keys of each kind it already holds.
    """

    def __init__(
        self, limits: Mapping[str, int], owners: Mapping[Key, int], counts: Mapping[int, dict[str, int]]
    ) -> None:
        self._limits = limits
        self._below_one = {kind for kind, limit in limits.items() if limit < 1}
        self._owners = owners
        self._db_counts = counts
        self._parent: list[int] = []
        self._counts: list[dict[str, int]] = []
        self._customers: list[list[int]] = []
        self._customer_node: dict[int, int] = {}
        self._key_node: dict[Key, int] = {}
        self._record_node: dict[int, int] = {}
        self._accepted: dict[tuple[Key, ...], int] = {}

    def _new_node(self, counts: dict[str, int], customers: list[int]) -> int:
        node = len(self._parent)
        self._parent.append(node)
        self._counts.append(counts)
        self._customers.append(customers)
        return node

    def _find(self, node: int) -> int:
        parent = self._parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def _union(self, a: int, b: int) -> int:
        if len(self._counts[a]) + len(self._customers[a]) < len(self._counts[b]) + len(self._customers[b]):
            a, b = b, a
        self._parent[b] = a
        counts = self._counts[a]
        for kind, n in self._counts[b].items():
            counts[kind] = counts.get(kind, 0) + n
        self._customers[a].extend(self._customers[b])
        return a

    def add(self, index: int, keys: Sequence[Key]) -> str | None:
        """Link record ``index`` by its keys, or return why it must be rejected (and link nothing)."""
        # A record with exactly the keys of one accepted before (a receipt's lines, a customer's orders) adds
        # nothing: its keys are all in that record's component already, so it joins it as it is.
        same = tuple(keys)
        earlier = self._accepted.get(same)
        if earlier is not None:
            self._record_node[index] = earlier
            return None
        roots: list[int] = []
        new: list[Key] = []
        for key in keys:
            owner = self._owners.get(key)
            if owner is not None:
                node = self._customer_node.get(owner)
                if node is None:
                    node = self._new_node(dict(self._db_counts.get(owner, {})), [owner])
                    self._customer_node[owner] = node
            else:
                found = self._key_node.get(key)
                if found is None:
                    new.append(key)
                    continue
                node = found
            root = self._find(node)
            if root not in roots:
                roots.append(root)
        # A record alone can hold one value per kind, so only a join or a zero limit can break a limit.
        joins = bool(roots) and (bool(new) or len(roots) > 1)
        if joins or (self._below_one and any(kind in self._below_one for kind, _, _ in new)):
            reason = self._over_limit(roots, new)
            if reason is not None:
                return reason
        counts: dict[str, int] = {}
        for kind, _, _ in new:
            counts[kind] = counts.get(kind, 0) + 1
        node = self._new_node(counts, [])
        for key in new:
            self._key_node[key] = node
        for root in roots:
            node = self._union(node, root)
        self._record_node[index] = node
        self._accepted[same] = node
        return None

    def _over_limit(self, roots: list[int], new: list[Key]) -> str | None:
        proposed: dict[str, int] = {}
        for root in roots:
            for kind, n in self._counts[root].items():
                proposed[kind] = proposed.get(kind, 0) + n
        for kind, _, _ in new:
            proposed[kind] = proposed.get(kind, 0) + 1
        for kind, n in proposed.items():
            limit = self._limits.get(kind)
            # A customer already over a lowered limit may still be attached to, as long as it does not grow.
            if limit is None or n <= limit or n <= max((self._counts[r].get(kind, 0) for r in roots), default=0):
                continue
            ids = sorted(c for root in roots for c in self._customers[root])
            if not ids:
                who = "a new customer"
            elif len(ids) == 1:
                who = f"customer {ids[0]}"
            else:
                who = "customers " + ", ".join(map(str, ids))
            return f"{kind}: this record would give {who} {n} distinct {kind} values (at most {limit})"
        return None

    def groups(self) -> list[Component]:
        """The components of the accepted records, in the order of their first record."""
        by_root: dict[int, Component] = {}
        for index, node in self._record_node.items():
            root = self._find(node)
            group = by_root.get(root)
            if group is None:
                group = by_root[root] = Component([], self._customers[root], [])
            group.records.append(index)
        for key, node in self._key_node.items():
            by_root[self._find(node)].new_keys.append(key)
        return list(by_root.values())
