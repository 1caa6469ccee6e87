"""The public types of the audience steps: what a plugin adds (attributes) and what flows between the steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

AttributeType = Literal["int", "float", "str", "bool", "date", "datetime"]


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """An attribute a plugin adds through ``hub_attributes``; segments and triggers read it like a built-in one.

    ``compute(conn, customer_ids, now)`` returns ``(customer_id, value)`` pairs for the given customers (``None``:
    every live customer). It runs inside the compute transaction and should be set-based SQL (one query, not one
    per customer). A customer it returns nothing for gets ``None``. Values are kept in ``customer_attributes.extra``.
    """

    name: str
    type: AttributeType
    description: str
    compute: Callable[[sa.Connection, Sequence[int] | None, datetime], Iterable[tuple[int, Any]]]


@dataclass(slots=True)
class Prepared:
    """A due candidate made ready for the contact-pressure decision: branch, variant, payload and the view each
    destination's ``prepare("trigger", view)`` receives (``trigger_id``, ``data``, ``_hub``)."""

    candidate_id: int
    key: str
    trigger: str
    message_type: str
    customer_id: int
    fired_at: datetime
    due_at: datetime
    status: str  # waiting | held: what it was before this decision
    order: int  # the trigger's position in hub.yaml: ties between equal priorities go to the first
    branch: str | None = None
    variant: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # destination -> view for prepare()
    error: str | None = None  # could not be prepared (e.g. the order is gone): suppressed with this reason
