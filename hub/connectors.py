"""The connector contract: what a source (and, later, a destination) plugin provides.

A connector *type* is a class registered by ``hub_connector_types``. It declares its ``type`` name, the ``roles``
it plays, its ``Settings`` model and its streams; an *instance* is built by the core for each entry under
``connectors:`` in hub.yaml, with its validated settings. Reading records is a method of the instance, not a hook,
so the hot path never goes through hook dispatch.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from hub.delivery.outcomes import Guarantee, Outcome

Role = Literal["source", "destination", "recommender"]


class ConnectorSettings(BaseModel):
    """Base class of every connector type's settings. Unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream a source offers: its name, the field that is its primary key and the one its cursor follows."""

    name: str
    key: str | None = None
    cursor_field: str | None = None
    description: str = ""


@dataclass(slots=True)
class Batch:
    """Raw records read from a stream, with the cursor value that is true once they are loaded.

    The engine commits ``records`` and ``cursor`` in one transaction, so a crash replays at most this batch.
    ``cursor`` must be JSON-serialisable.
    """

    records: list[dict[str, Any]]
    cursor: Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to ``check()``: a yes or no, in plain words a user can act on."""

    ok: bool
    message: str


@dataclass(slots=True)
class ConnectorContext:
    """What the core hands every connector instance: its name in hub.yaml and where relative paths start."""

    name: str
    project_dir: Path
    timezone: str = "UTC"
    extra: dict[str, Any] = field(default_factory=dict)


class Connector:
    """Base class of every connector type. Subclasses set the class attributes and implement their role's methods."""

    type: ClassVar[str]
    roles: ClassVar[tuple[Role, ...]] = ()
    Settings: ClassVar[builtins.type[ConnectorSettings]] = ConnectorSettings
    description: ClassVar[str] = ""

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    def check(self) -> CheckResult:
        """Say whether the remote end is reachable and the credentials work."""
        return CheckResult(ok=True, message="nothing to check")


class Source(Connector):
    """A connector that reads records. ``read`` yields batches, each carrying the cursor that follows it."""

    roles: ClassVar[tuple[Role, ...]] = ("source",)

    def streams(self) -> Mapping[str, Stream]:
        """The streams this instance offers, by name. May depend on the settings (e.g. one per file pattern)."""
        raise NotImplementedError

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        """Yield batches of raw records of ``stream`` that follow ``cursor`` (None on the first read).

        Contract: records equal to the cursor's boundary may be yielded again (the engine's upserts are
        idempotent), but none that follow it may be skipped. Each batch's cursor must be enough to resume after it.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what the instance holds (an HTTP client's pooled connections); called by ``Hub.close()``."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How a destination handles one message kind.

    ``batch_size`` is how many messages one request carries (1 for per-row APIs). ``guarantee`` is what happens
    when a request's outcome is unknown (sent, no answer): ``at_least_once`` retries (safe when the remote API
    de-duplicates, or when the plugin checks before re-sending), ``at_most_once`` parks the message for review.
    Users may override both in ``connectors.<name>.delivery``. ``why`` documents the choice for ``hub plugins``.
    """

    batch_size: int = 1
    guarantee: Guarantee = "at_least_once"
    why: str = ""


@dataclass(slots=True)
class Outgoing:
    """One outbox row as a destination sees it when sending.

    ``remote_ref`` is the destination's own id for the customer, when a previous delivery learnt it.
    ``uncertain`` is True when an earlier attempt's outcome is unknown: check whether it landed before
    re-sending anything that is not idempotent (e.g. look the contact up before creating it).
    """

    id: int
    kind: str
    customer_id: int | None
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int = 0
    remote_ref: str | None = None
    uncertain: bool = False


class Destination(Connector):
    """A connector that receives messages from the outbox.

    The core owns the outbox, retries, dead letters, rate and concurrency limits; a destination only turns a
    batch of messages into requests and says, per message, what happened (:class:`hub.delivery.outcomes.Outcome`).
    ``self.http`` is an ``httpx.Client`` built by the core from :meth:`client_options`, with pooled connections,
    explicit timeouts and the destination's adaptive rate limit applied to every request.
    """

    roles: ClassVar[tuple[Role, ...]] = ("destination",)
    kinds: ClassVar[Mapping[str, KindSpec]] = {}

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError(f"{self.name}: no HTTP client bound; the core binds one when it builds the connector")
        return self._http

    def bind_http(self, client: httpx.Client) -> None:
        """Called by the core once, with the client every request of this destination must go through."""
        self._http = client

    def client_options(self) -> ClientOptions:
        """Base URL and headers (credentials included) for ``self.http``."""
        raise NotImplementedError

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        """Turn the unified view of a record (after the outbound mapping) into the payload kept in the outbox.

        Called when a message is enqueued (and again when a dead letter is replayed), never while sending.
        Raise :class:`hub.delivery.outcomes.InvalidMessage` when it can never be sent (e.g. no identifier).
        """
        return view

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        """Send ``batch`` (at most the kind's ``batch_size`` messages); return one outcome per message, in order.

        Exceptions are not outcomes: an exception escaping ``send`` is treated as ``unknown`` for every message
        of the batch. Use :meth:`Outcome.from_response` and :meth:`Outcome.from_error` to classify HTTP results.
        """
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """What the core needs to build a destination's HTTP client."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Per-request authentication, e.g. :class:`hub.delivery.auth.TokenAuth` for OAuth2 or short-lived tokens.
    auth: httpx.Auth | None = None


@dataclass(frozen=True, slots=True)
class RecommendationRequest:
    """What a trigger payload asks a recommender for.

    ``products``: the SKUs the recommendations follow (an order's lines, a cart's items); empty asks for the
    customer alone. ``exclude``: SKUs never to suggest (owned, returned, already in the order). ``keys``: the
    customer's identifiers (``email``, ``member_no``, ``external_ids``...) for APIs that key by them.
    """

    customer_id: int | None
    products: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    limit: int = 3
    keys: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One suggested product, with the recommender's score and, where it has one, why (for ``hub recommend``)."""

    sku: str
    score: float | None = None
    reason: str = ""


class Recommender(Connector):
    """A connector that suggests products (``roles`` includes ``recommender``).

    The core calls :meth:`recommend` while it builds trigger payloads, with a bounded wait; when the call is slow,
    fails or returns nothing, hub's built-in recommender answers instead and the payload names which one did. A
    recommender must therefore never block past ``timeout`` seconds and may raise on any failure.
    """

    roles: ClassVar[tuple[Role, ...]] = ("recommender",)

    def recommend(self, request: RecommendationRequest, *, timeout: float) -> list[Recommendation]:
        raise NotImplementedError
