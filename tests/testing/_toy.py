"""A toy API, its emulator and a destination for it: the smallest plugin that passes the whole contract.

The toy API has what Voyado's lacks (short-lived tokens, segments, contact batches with a limit), so every check
of the contract runs against something; the broken destinations in the tests each get one thing wrong.

API: ``POST /token`` (header ``x-api-key``) gives a bearer token; ``GET /me``; ``POST /contacts:batch`` (at most
``BATCH_LIMIT`` contacts, each ``{"email", "firstName", "emailConsent", "phone"?}``); ``PUT /orders/{orderNo}``
(idempotent) or ``POST /orders`` (every call adds one, for the broken plugin); ``PUT|DELETE
/segments/{segment}/members/{email}``; ``POST /triggers/{name}`` ``{"email", "data"}``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.connectors import CheckResult, ClientOptions, ConnectorSettings, Destination, KindSpec, Outgoing
from hub.delivery.auth import TokenAuth, TokenError
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub.sandbox import Emulator
from hub.testing.destination import DestinationContract

API_KEY = "toy-key"
BATCH_LIMIT = 5
_PHONE = re.compile(r"^\+\d{8,15}$")


class ToyState:
    """The emulator's memory; tests read it directly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.contacts: dict[str, list[dict[str, Any]]] = {}  # email -> contacts (a list, so doubles show)
        self.orders: list[dict[str, Any]] = []
        self.segments: dict[str, set[str]] = {}
        self.triggers: list[dict[str, Any]] = []
        self.largest_batch = 0


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def toy_app() -> Starlette:
    state = ToyState()

    def authorised(request: Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        with state.lock:
            return token in state.tokens

    async def token(request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "unknown API key")
        value = uuid.uuid4().hex
        with state.lock:
            state.tokens.add(value)
        return JSONResponse({"access_token": value, "expires_in": 3600})

    async def me(request: Request) -> Response:
        return JSONResponse({"account": "toy"}) if authorised(request) else _error(401, "invalid token")

    async def contacts(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid token")
        batch = await request.json()
        with state.lock:
            state.largest_batch = max(state.largest_batch, len(batch))  # what was asked, refused or not
        if len(batch) > BATCH_LIMIT:
            return _error(400, f"at most {BATCH_LIMIT} contacts per batch")
        for index, contact in enumerate(batch):
            phone = contact.get("phone")
            if phone is not None and not _PHONE.match(phone):
                return _error(400, f"{phone!r} is not a phone number", index=index, field="phone")
        with state.lock:
            for contact in batch:
                held = state.contacts.setdefault(contact["email"], [])
                if contact.get("create") or not held:
                    held.append({})
                held[0].update({k: v for k, v in contact.items() if k != "create"})
        return JSONResponse({"accepted": len(batch)})

    async def put_order(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid token")
        order = await request.json()
        with state.lock:
            state.orders = [o for o in state.orders if o["orderNo"] != request.path_params["order_no"]]
            state.orders.append({**order, "orderNo": request.path_params["order_no"]})
        return JSONResponse({"ok": True})

    async def post_order(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid token")
        order = await request.json()
        with state.lock:
            state.orders.append(order)
        return JSONResponse({"ok": True}, status_code=201)

    async def member(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid token")
        segment, email = request.path_params["segment"], request.path_params["email"]
        with state.lock:
            members = state.segments.setdefault(segment, set())
            members.discard(email) if request.method == "DELETE" else members.add(email)
        return Response(status_code=204)

    async def trigger(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid token")
        body = await request.json()
        with state.lock:
            state.triggers.append({"name": request.path_params["name"], **body})
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/me", me),
            Route("/contacts:batch", contacts, methods=["POST"]),
            Route("/orders/{order_no}", put_order, methods=["PUT"]),
            Route("/orders", post_order, methods=["POST"]),
            Route("/segments/{segment}/members/{email}", member, methods=["PUT", "DELETE"]),
            Route("/triggers/{name}", trigger, methods=["POST"]),
        ]
    )
    app.state.toy = state
    return app


TOY_EMULATOR = Emulator(
    name="toy",
    connector_type="toy",
    app=toy_app,
    settings=lambda base_url: {"base_url": base_url, "api_key": API_KEY},
)


class ToySettings(ConnectorSettings):
    base_url: str = Field(description="the API root")
    api_key: SecretStr = Field(description="exchanged for a bearer token at POST /token")


class ToyToken(TokenAuth):
    def __init__(self, api_key: str) -> None:
        super().__init__(margin=60)
        self.api_key = api_key

    def token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request("POST", request.url.join("/token"), headers={"x-api-key": self.api_key})


class ToyDestination(Destination):
    """Contacts in batches, idempotent orders, segments and triggers: every kind the contract checks."""

    type = "toy"
    Settings = ToySettings
    kinds: ClassVar[Mapping[str, KindSpec]] = {
        "contact_upsert": KindSpec(BATCH_LIMIT, "at_least_once", "contacts are keyed by e-mail"),
        "order": KindSpec(1, "at_least_once", "PUT /orders/{orderNo} replaces"),
        "segment_membership": KindSpec(1, "at_least_once", "membership is a set"),
        "trigger": KindSpec(1, "at_most_once", "a repeat fires twice"),
    }
    settings: ToySettings

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.settings.base_url, auth=ToyToken(self.settings.api_key.get_secret_value()))

    def check(self) -> CheckResult:
        url = self.settings.base_url
        try:
            response = self.http.get("/me")
        except TokenError as exc:
            return CheckResult(False, f"{url} refused the API key ({exc}); check api_key")
        except httpx.TransportError as exc:
            return CheckResult(False, f"cannot reach {url} ({type(exc).__name__})")
        if response.status_code == 200:
            return CheckResult(True, f"the toy API at {url} works with this key")
        return CheckResult(False, f"{url} answered HTTP {response.status_code}")

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        email = (view.get("_hub") or {}).get("email")
        if not email:
            raise InvalidMessage("no e-mail")
        if kind == "contact_upsert":
            return {k: v for k, v in view.items() if k != "_hub"}
        if kind == "order":
            lines = [{"sku": line["sku"], "qty": line["quantity"]} for line in view["lines"]]
            return {"orderNo": view["order"]["external_id"], "email": email, "lines": lines}
        if kind == "segment_membership":
            return {"segment": view["segment"], "email": email, "add": view["change"] == "entered"}
        return {"name": view["trigger_id"], "email": email, "data": view["data"]}

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        try:
            if kind == "contact_upsert":
                response = self.http.post("/contacts:batch", json=[m.payload for m in batch])
                if response.status_code == 400 and len(batch) > 1:
                    return [Outcome.rejected(400, response.text, batch=True)] * len(batch)
                return [Outcome.from_response(response)] * len(batch)
            return [self._one(kind, message.payload) for message in batch]
        except TokenError as exc:
            code = exc.response.status_code if exc.response is not None else None
            outcome = Outcome.retryable(code, str(exc)) if code and code >= 429 else Outcome.auth(code, str(exc))
            return [outcome] * len(batch)
        except httpx.TransportError as exc:
            return [Outcome.from_error(exc)] * len(batch)

    def _one(self, kind: str, payload: dict[str, Any]) -> Outcome:
        if kind == "order":
            return Outcome.from_response(self.http.put(f"/orders/{payload['orderNo']}", json=payload))
        if kind == "segment_membership":
            path = f"/segments/{payload['segment']}/members/{payload['email']}"
            return Outcome.from_response(self.http.put(path) if payload["add"] else self.http.delete(path))
        body = {"email": payload["email"], "data": payload["data"]}
        return Outcome.from_response(self.http.post(f"/triggers/{payload['name']}", json=body))


class ToyContract(DestinationContract):
    """The contract pointed at the toy plugin; the tests subclass it (with a broken destination, or as it is)."""

    destination_type: ClassVar[type[Destination]] = ToyDestination
    emulator: ClassVar[Emulator] = TOY_EMULATOR
    payload_limit: ClassVar[int | None] = 10_000

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        return {"email": email, "firstName": first_name, "emailConsent": email_consent, "_hub": self.hub_keys(email)}

    def invalid_contact_view(self, email: str) -> dict[str, Any] | None:
        return {**self.contact_view(email, first_name="Bad", email_consent=None), "phone": "+47 12"}

    def remote_contact(self, app: Starlette, email: str) -> dict[str, Any] | None:
        held = _toy(app).contacts.get(email)
        if not held:
            return None
        return {"first_name": held[0].get("firstName"), "email_consent": held[0].get("emailConsent")}

    def remote_contact_count(self, app: Starlette, email: str) -> int:
        return len(_toy(app).contacts.get(email, []))

    def remote_order_lines(self, app: Starlette, order_no: str) -> int:
        return sum(len(order["lines"]) for order in _toy(app).orders if order["orderNo"] == order_no)

    def remote_segment_members(self, app: Starlette, segment: str) -> set[str]:
        return set(_toy(app).segments.get(segment, set()))

    def remote_triggers(self, app: Starlette, email: str) -> list[dict[str, Any]]:
        return [{"name": t["name"], "data": t["data"]} for t in _toy(app).triggers if t["email"] == email]

    def expire_tokens(self, app: Starlette) -> bool:
        with _toy(app).lock:
            _toy(app).tokens.clear()
        return True

    def max_batch_seen(self, app: Starlette, kind: str) -> int | None:
        return _toy(app).largest_batch if kind == "contact_upsert" else None

    def batch_limit(self, kind: str) -> int:
        return BATCH_LIMIT if kind == "contact_upsert" else 1


def _toy(app: Starlette) -> ToyState:
    return app.state.toy  # type: ignore[no-any-return]
