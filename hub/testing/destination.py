"""``DestinationContract``: the tests every destination plugin must pass, for its test module to subclass.

A plain class (pytest does not collect it: its name does not start with ``Test``). A plugin's test module
subclasses it as ``class TestAcmeContract(DestinationContract)``, points it at the connector type and its emulator,
and says how the emulator shows what it received. Every test runs over real loopback HTTP against a fresh emulator
app (``hub.sandbox.server.serve``, wrapped in ``hub.sandbox.faults.FaultInjector``), with the destination's HTTP
client built by the core (``hub.delivery.http.make_client``), so ``ClientOptions.auth`` (e.g. ``TokenAuth``), the
limits and the timeouts are the real ones. Two tests go through the real core path: the outbox and
``hub.delivery.dispatcher.deliver``.

The subclass sets::

    destination_type: type[Destination]        # the connector class
    emulator: hub.sandbox.Emulator              # its emulator: app factory + settings(base_url)
    timezone = "Europe/Oslo"                    # the hub's time zone (ConnectorContext.timezone)
    fault_rate = 0.3                            # share of requests the pipeline test faults (0 turns faults off)
    pipeline_size = 10                          # contacts (and as many orders) in the pipeline test
    delivery = {}                               # overrides of the `delivery:` block for every client built here
    payload_limit = None                        # the largest request body the API accepts, in bytes

and implements (``app`` is what ``emulator.app()`` returned; ``email`` identifies the person everywhere)::

    contact_view(email, *, first_name, email_consent) -> dict   # required: the view after the outbound mapping
    remote_contact(app, email) -> dict | None                   # required: {"first_name", "email_consent", ...}
    remote_order_lines(app, order_no) -> int                    # if it takes orders: lines of that order held
    remote_segment_members(app, segment) -> set[str]            # if it takes segment_membership: member e-mails
    remote_triggers(app, email) -> list[dict]                   # if it takes triggers: {"name", "data"} per firing

and may override (defaults in brackets)::

    settings(base_url) -> dict                   [emulator.settings(base_url)]
    bad_credentials(base_url) -> dict            [settings with every SecretStr setting changed]
    invalid_contact_view(email) -> dict | None   [None: the validation test skips]
    order_view(email, order_no, lines) / segment_view(email, segment, change) / trigger_view(email, name, data)
                                                 [the core's own views, see hub.delivery.views]
    hub_keys(email) -> dict                      [the ``_hub`` block: customer_id, email, phone, member_no, ...]
    remote_contact_count(app, email) -> int      [0 or 1 from remote_contact; override to see duplicates]
    expire_tokens(app) -> bool                   [False: the API has no tokens, the token test skips]
    max_batch_seen(app, kind) -> int | None      [None: batch sizes are not checked at the emulator]
    batch_limit(kind) -> int                     [the kind's KindSpec.batch_size]
    lost_response_faults(kind) -> Faults         [drop every POST, PUT, PATCH and DELETE answer]
    pipeline_faults() -> Faults                  [fault_rate split over 5xx, 429, timeouts and lost answers]

Kinds the destination does not take (not in ``destination_type.kinds``) are skipped with the reason. The fixture
``contract`` (a :class:`ContractEnv`, from :meth:`DestinationContract.open_contract`) is available to the
subclass's own tests too. The machinery (recorder, served emulator, the pipeline's hub) is in
:mod:`hub.testing._delivery`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from hub.connectors import CheckResult, ConnectorContext, Destination
from hub.delivery.auth import TokenAuth
from hub.delivery.outcomes import InvalidMessage
from hub.sandbox import Emulator, Faults
from hub.testing._delivery import (
    ContractEnv,
    Seen,
    closed_port_url,
    contract_hub,
    customer_id,
    drain,
    enqueue,
    is_secret,
    served,
)

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = ["ContractEnv", "DestinationContract", "Seen"]

#: The kinds the contract sends, in the order a pass sends them.
CONTRACT_KINDS = ("contact_upsert", "order", "segment_membership", "trigger")
#: Delivery settings for every client the contract builds: quick retries; the emulator answers in milliseconds,
#: so a short read timeout only catches injected faults. ``DestinationContract.delivery`` overrides them.
CONTRACT_DELIVERY: dict[str, Any] = {
    "concurrency": 4,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "max_attempts": 30,
    "attempts_per_pass": 3,
    "connect_timeout": 2.0,
    "read_timeout": 1.0,
}
#: Words one of which a refused-credentials message from ``check()`` must contain.
CREDENTIAL_WORDS = ("credential", "key", "secret", "token", "password", "refused", "unauthori", "401", "403")


# ------------------------------------------------------------------------------------------------ the contract


class DestinationContract:
    """Subclass as ``class TestXxxContract(DestinationContract)``; see the module docstring for what to provide."""

    destination_type: ClassVar[type[Destination]]
    emulator: ClassVar[Emulator]
    timezone: ClassVar[str] = "Europe/Oslo"
    fault_rate: ClassVar[float] = 0.3
    fault_seed: ClassVar[int] = 7
    pipeline_size: ClassVar[int] = 10
    delivery: ClassVar[Mapping[str, Any]] = {}
    payload_limit: ClassVar[int | None] = None

    # -- what the subclass provides -------------------------------------------------------------------------------

    def settings(self, base_url: str) -> dict[str, Any]:
        """Settings that point the destination at the emulator at ``base_url``."""
        return dict(self.emulator.settings(base_url))

    def bad_credentials(self, base_url: str) -> dict[str, Any]:
        """Settings whose credentials the emulator refuses: by default every secret setting is changed."""
        settings = self.settings(base_url)
        secrets = [name for name, f in self.destination_type.Settings.model_fields.items() if is_secret(f.annotation)]
        if not secrets:
            pytest.skip(f"{self._type_name()} has no secret settings: override bad_credentials(base_url)")
        for name in secrets:
            if settings.get(name) is not None:
                settings[name] = f"wrong-{settings[name]}"
        return settings

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        """The ``contact_upsert`` view after the plugin's outbound mapping, with ``_hub`` (see :meth:`hub_keys`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement contact_view(email, *, first_name, ...)")

    def invalid_contact_view(self, email: str) -> dict[str, Any] | None:
        """A contact view that ``prepare`` accepts and the remote API refuses with a 4xx (e.g. a bad phone)."""
        return None

    def hub_keys(self, email: str) -> dict[str, Any]:
        """The ``_hub`` block the core adds to every view (:func:`hub.delivery.views.hub_keys`)."""
        return {
            "customer_id": customer_id(email),
            "email": email,
            "phone": None,
            "member_no": None,
            "external_ids": {},
        }

    def order_view(self, email: str, order_no: str, lines: int) -> dict[str, Any]:
        """The core's ``order`` view (:func:`hub.delivery.views.order_views`) of a web order with ``lines`` lines."""
        items = [
            {
                "line_no": n,
                "sku": f"SKU-{n}",
                "quantity": 1,
                "unit_price": f"{100 + n}.00",
                "discount": "0.00",
                "line_total": f"{100 + n}.00",
                "product_name": f"Product {n}",
                "product_group": "Grills",
            }
            for n in range(1, lines + 1)
        ]
        order = {
            "id": customer_id(order_no),
            "source": "webshop",
            "external_id": order_no,
            "placed_at": "2025-01-02T10:00:00+00:00",
            "channel": "web",
            "store_external_id": "WEB",
            "currency": "NOK",
            "total": f"{sum(100 + n for n in range(1, lines + 1))}.00",
            "status": "completed",
            "is_return": False,
            "original_order_external_id": None,
        }
        return {"order": order, "lines": items, "_hub": self.hub_keys(email)}

    def segment_view(self, email: str, segment: str, change: Literal["entered", "left"]) -> dict[str, Any]:
        """The core's ``segment_membership`` view (:mod:`hub.audience.push`)."""
        return {"segment": segment, "change": change, "_hub": self.hub_keys(email)}

    def trigger_view(self, email: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """The core's ``trigger`` view (:mod:`hub.audience.triggers`); ``name`` stands for the ``to:`` target."""
        return {"trigger_id": name, "data": data, "_hub": self.hub_keys(email)}

    def remote_contact(self, app: Any, email: str) -> dict[str, Any] | None:
        """The contact the emulator holds for ``email``, with ``first_name`` and ``email_consent`` (True, False
        or None) normalised; None when it holds none."""
        raise NotImplementedError(f"{type(self).__name__} must implement remote_contact(app, email)")

    def remote_contact_count(self, app: Any, email: str) -> int:
        """How many contacts the emulator holds for ``email``; override it so duplicates can be seen."""
        return int(self.remote_contact(app, email) is not None)

    def remote_order_lines(self, app: Any, order_no: str) -> int:
        """How many lines of order ``order_no`` the emulator holds (a doubled order shows twice as many)."""
        raise NotImplementedError(f"{type(self).__name__} takes orders: implement remote_order_lines(app, order_no)")

    def remote_segment_members(self, app: Any, segment: str) -> set[str]:
        """The e-mails of the members of ``segment`` at the emulator."""
        raise NotImplementedError(f"{type(self).__name__}: implement remote_segment_members(app, segment)")

    def remote_triggers(self, app: Any, email: str) -> list[dict[str, Any]]:
        """One entry per trigger fired for ``email``: ``{"name": ..., "data": {...}}`` (data as the API got it)."""
        raise NotImplementedError(f"{type(self).__name__} takes triggers: implement remote_triggers(app, email)")

    def expire_tokens(self, app: Any) -> bool:
        """Make every token the emulator issued invalid; False when the API has no tokens."""
        return False

    def max_batch_seen(self, app: Any, kind: str) -> int | None:
        """The largest number of ``kind`` records the emulator received in one request; None: not tracked."""
        return None

    def batch_limit(self, kind: str) -> int:
        """The largest batch of ``kind`` the API accepts."""
        return self.destination_type.kinds[kind].batch_size

    def lost_response_faults(self, kind: str) -> Faults:
        """Faults that let the emulator process the request that has the effect, then lose its answer."""
        return Faults(drop_rate=1.0, methods=["POST", "PUT", "PATCH", "DELETE"])

    def pipeline_faults(self) -> Faults:
        """The pipeline test's faults: ``fault_rate`` of requests, half 5xx, a fifth 429 (``Retry-After: 0``),
        a tenth held past the read timeout, a fifth answered then lost."""
        rate = self.fault_rate
        return Faults(
            error_rate=rate * 0.5,
            rate_429=rate * 0.2,
            retry_after=0,
            timeout_rate=rate * 0.1,
            hang_seconds=5.0,
            drop_rate=rate * 0.2,
            seed=self.fault_seed,
        )

    # -- building blocks ------------------------------------------------------------------------------------------

    def _type_name(self) -> str:
        return getattr(self.destination_type, "type", self.destination_type.__name__)

    def _delivery(self) -> dict[str, Any]:
        return {**CONTRACT_DELIVERY, **self.delivery}

    def make_destination(self, settings: dict[str, Any], project_dir: Path) -> Destination:
        """A destination with ``settings``, its HTTP client built by the core from the contract's delivery block."""
        from hub.config._models import DeliveryConfig
        from hub.delivery.http import make_client

        model = self.destination_type.Settings.model_validate(settings)
        context = ConnectorContext(name=self._type_name(), project_dir=project_dir, timezone=self.timezone)
        destination = self.destination_type(model, context)
        destination.bind_http(make_client(destination, DeliveryConfig.model_validate(self._delivery())))
        return destination

    def _needs(self, kind: str) -> None:
        if kind not in self.destination_type.kinds:
            pytest.skip(f"{self._type_name()} does not take {kind} messages")

    @contextmanager
    def open_contract(self, project_dir: Path) -> Iterator[ContractEnv]:
        """A fresh emulator served on loopback behind a fault injector, and a destination pointed at it."""
        with served(self.emulator) as (app, injector, recorder, url):
            destination = self.make_destination(self.settings(url), project_dir)
            try:
                yield ContractEnv(app, injector, url, destination, recorder)
            finally:
                destination.http.close()

    @pytest.fixture
    def contract(self, tmp_path: Path) -> Iterator[ContractEnv]:
        """:meth:`open_contract` for one test."""
        with self.open_contract(tmp_path) as env:
            yield env

    def _contact(self, env: ContractEnv, email: str, first_name: str = "Ada", consent: bool | None = True) -> None:
        """Make sure ``email`` is a contact at the emulator (what orders, segments and triggers refer to)."""
        if "contact_upsert" not in self.destination_type.kinds:
            return
        outcome = env.send("contact_upsert", self.contact_view(email, first_name=first_name, email_consent=consent))
        assert outcome.status == "sent", f"contact upsert for {email}: {outcome}"

    def _probe_kind(self) -> str:
        for kind in CONTRACT_KINDS:
            if kind in self.destination_type.kinds:
                return kind
        pytest.skip(f"{self._type_name()} takes none of {', '.join(CONTRACT_KINDS)}")

    def _probe(self, env: ContractEnv, kind: str, email: str, n: int = 1) -> tuple[dict[str, Any], Any]:
        """A view of ``kind`` for ``email`` and a function of the app that says how often it landed (0, 1, 2...)."""
        if kind == "contact_upsert":
            view = self.contact_view(email, first_name=f"Probe{n}", email_consent=True)
            return view, lambda: self.remote_contact_count(env.app, email)
        if kind == "order":
            order_no = f"P-{n}-{customer_id(email)}"
            view = self.order_view(email, order_no, 2)
            return view, lambda: self.remote_order_lines(env.app, order_no) / 2
        if kind == "segment_membership":
            segment = f"probe_{n}"
            view = self.segment_view(email, segment, "entered")
            return view, lambda: int(email in self.remote_segment_members(env.app, segment))
        view = self.trigger_view(email, f"probe_{n}", {"ref": f"probe-{n}"})
        return view, lambda: len(self.remote_triggers(env.app, email))

    def _warm_up(self, env: ContractEnv) -> None:
        """One successful send before faults are injected: a token is fetched, connections are open."""
        self._contact(env, "warm.up@example.com", "Warm")

    # -- settings and check() --------------------------------------------------------------------------------------

    def test_settings_schema_is_valid(self) -> None:
        """The Settings model gives a JSON schema hub can show (``hub plugins``): an object of described
        properties, secrets write-only, unknown keys refused."""
        settings_type = self.destination_type.Settings
        schema = settings_type.model_json_schema()
        json.dumps(schema)
        assert schema.get("type") == "object"
        properties = schema.get("properties", {})
        assert set(schema.get("required", [])) <= set(properties)
        undescribed = [name for name, prop in properties.items() if not prop.get("description")]
        assert not undescribed, f"settings without a description (hub plugins shows it): {undescribed}"
        for name, model_field in settings_type.model_fields.items():
            if is_secret(model_field.annotation):
                assert "writeOnly" in json.dumps(properties[name]), f"{name} is a secret but not writeOnly"
        assert schema.get("additionalProperties") is False, "unknown settings must be errors (ConnectorSettings)"

    def test_emulator_settings_validate_and_hide_their_secrets(self) -> None:
        """The emulator's own settings are valid settings, and no secret shows in their repr or dump."""
        url = "http://127.0.0.1:8999"
        settings = self.destination_type.Settings.model_validate(self.emulator.settings(url))
        assert isinstance(settings, BaseModel)
        shown = repr(settings) + str(settings) + settings.model_dump_json()
        for name, model_field in type(settings).model_fields.items():
            value = getattr(settings, name)
            if is_secret(model_field.annotation) and isinstance(value, SecretStr):
                assert value.get_secret_value() not in shown, f"the secret {name} shows in the settings' repr"
        with pytest.raises(ValidationError):
            self.destination_type.Settings.model_validate({**self.emulator.settings(url), "no_such_setting": 1})

    def _check(self, settings: dict[str, Any], tmp_path: Path) -> CheckResult:
        destination = self.make_destination(settings, tmp_path)
        try:
            result = destination.check()
        finally:
            destination.http.close()
        assert isinstance(result, CheckResult)
        assert result.message.strip(), "check() must say in words what it found"
        assert "Traceback" not in result.message
        return result

    def test_check_says_good_settings_work(self, contract: ContractEnv, tmp_path: Path) -> None:
        result = self._check(self.settings(contract.url), tmp_path)
        assert result.ok, result.message

    def test_check_names_refused_credentials(self, contract: ContractEnv, tmp_path: Path) -> None:
        """Refused credentials: not ok, the message says so, and it never shows the secret."""
        bad = self.bad_credentials(contract.url)
        result = self._check(bad, tmp_path)
        assert not result.ok, f"check() passed with credentials the emulator refuses: {result.message}"
        assert any(word in result.message.lower() for word in CREDENTIAL_WORDS), (
            f"the message does not name the credentials as the problem: {result.message}"
        )
        for name, model_field in self.destination_type.Settings.model_fields.items():
            secret = bad.get(name)
            if is_secret(model_field.annotation) and isinstance(secret, str) and secret:
                assert secret not in result.message, f"check() shows the secret {name}"

    def test_check_says_an_unreachable_url_does_not_work(self, tmp_path: Path) -> None:
        url = closed_port_url()
        result = self._check(self.settings(url), tmp_path)
        assert not result.ok, f"check() passed for {url}, where nothing listens: {result.message}"

    # -- what each kind does ---------------------------------------------------------------------------------------

    def test_contact_upsert_creates_then_updates(self, contract: ContractEnv) -> None:
        self._needs("contact_upsert")
        email = "ada.lovelace@example.com"
        created = contract.send("contact_upsert", self.contact_view(email, first_name="Ada", email_consent=True))
        assert created.status == "sent", created
        assert (self.remote_contact(contract.app, email) or {}).get("first_name") == "Ada"

        updated = contract.send("contact_upsert", self.contact_view(email, first_name="Augusta", email_consent=True))

        assert updated.status == "sent", updated
        assert (self.remote_contact(contract.app, email) or {}).get("first_name") == "Augusta"
        assert self.remote_contact_count(contract.app, email) == 1

    def test_consents_reach_the_remote_both_ways(self, contract: ContractEnv) -> None:
        """An opt-out creates a contact that does not accept e-mail; an opt-in, then an opt-out, reach it."""
        self._needs("contact_upsert")
        email = "grace.hopper@example.com"
        for consent in (False, True, False):
            outcome = contract.send(
                "contact_upsert", self.contact_view(email, first_name="Grace", email_consent=consent)
            )
            assert outcome.status == "sent", outcome
            held = self.remote_contact(contract.app, email) or {}
            assert held.get("email_consent") is consent, f"sent email_consent={consent}, the remote holds {held}"

    def test_order_arrives_with_its_lines(self, contract: ContractEnv) -> None:
        self._needs("order")
        email = "order.buyer@example.com"
        self._contact(contract, email)

        outcome = contract.send("order", self.order_view(email, "W-1001", 3))

        assert outcome.status == "sent", outcome
        held = self.remote_order_lines(contract.app, "W-1001")
        assert held == 3, f"an order of 3 lines was sent; the remote holds {held} of its lines"

    def test_segment_membership_is_added_and_removed(self, contract: ContractEnv) -> None:
        self._needs("segment_membership")
        email = "segment.member@example.com"
        self._contact(contract, email)

        entered = contract.send("segment_membership", self.segment_view(email, "tier_a", "entered"))
        assert entered.status == "sent", entered
        assert email in self.remote_segment_members(contract.app, "tier_a"), "entered, but not a member remotely"

        left = contract.send("segment_membership", self.segment_view(email, "tier_a", "left"))
        assert left.status == "sent", left
        assert email not in self.remote_segment_members(contract.app, "tier_a"), "left, but still a member remotely"

    def test_trigger_fires_with_its_payload(self, contract: ContractEnv) -> None:
        """The trigger arrives once, and every value of its data with it (keys compared case-insensitively)."""
        self._needs("trigger")
        email = "trigger.target@example.com"
        self._contact(contract, email)
        data = {"ref": "t-1", "total": 1299, "sku": "GRILL-1"}

        outcome = contract.send("trigger", self.trigger_view(email, "welcome", data))

        assert outcome.status == "sent", outcome
        fired = self.remote_triggers(contract.app, email)
        assert len(fired) == 1, fired
        received = {str(k).lower(): str(v) for k, v in (fired[0].get("data") or {}).items()}
        assert {k: str(v) for k, v in data.items()}.items() <= received.items(), received

    # -- failures --------------------------------------------------------------------------------------------------

    def test_429_is_retryable_after_its_retry_after_and_changes_nothing(self, contract: ContractEnv) -> None:
        kind = self._probe_kind()
        email = "throttled@example.com"
        self._warm_up(contract)
        if kind != "contact_upsert":
            self._contact(contract, email)
        view, landed = self._probe(contract, kind, email)
        contract.faults.faults = Faults(rate_429=1.0, retry_after=7)

        outcome = contract.send(kind, view)

        assert (outcome.status, outcome.code, outcome.retry_after) == ("retryable", 429, 7.0), outcome
        assert landed() == 0, "a 429 must mean nothing changed"

    def test_5xx_is_retryable_and_a_resend_lands_once(self, contract: ContractEnv) -> None:
        kind = self._probe_kind()
        email = "unlucky@example.com"
        self._warm_up(contract)
        if kind != "contact_upsert":
            self._contact(contract, email)
        view, landed = self._probe(contract, kind, email)
        contract.faults.faults = Faults(error_rate=1.0)

        failed = contract.send(kind, view)
        assert failed.status == "retryable" and (failed.code or 0) >= 500, failed
        assert landed() == 0

        contract.quiet()
        resent = contract.send(kind, view, attempts=2)
        assert resent.status == "sent", resent
        assert landed() == 1

    def test_validation_error_is_rejected_at_once_with_the_body(self, contract: ContractEnv) -> None:
        """A 4xx for a bad record is ``rejected`` (dead at once), carrying the API's response body."""
        self._needs("contact_upsert")
        email = "bad.record@example.com"
        view = self.invalid_contact_view(email)
        if view is None:
            pytest.skip("no invalid_contact_view(email): give a contact view the API refuses with a 4xx")
        try:
            contract.prepare("contact_upsert", view)
        except InvalidMessage as exc:
            pytest.fail(f"prepare refused invalid_contact_view ({exc}): give one only the remote API refuses")

        outcome = contract.send("contact_upsert", view)

        assert outcome.status == "rejected", outcome
        assert outcome.code is not None and 400 <= outcome.code < 500, outcome
        refusals = [s for s in contract.seen if 400 <= s.status < 500 and s.status not in (401, 403, 404, 429)]
        assert refusals, f"the emulator refused nothing with a 4xx: {contract.seen}"
        assert outcome.body and refusals[-1].body[:200] in outcome.body, (outcome.body, refusals[-1].body)
        assert self.remote_contact(contract.app, email) is None

    def test_expired_token_is_renewed_without_losing_the_message(self, contract: ContractEnv) -> None:
        self._needs("contact_upsert")
        self._warm_up(contract)
        if not self.expire_tokens(contract.app):
            pytest.skip(f"{self._type_name()} uses no tokens (expire_tokens returned False)")
        auth = contract.destination.http.auth
        renewals = auth.renewals if isinstance(auth, TokenAuth) else None
        email = "after.expiry@example.com"

        outcome = contract.send("contact_upsert", self.contact_view(email, first_name="Late", email_consent=True))

        assert outcome.status == "sent", outcome
        assert (self.remote_contact(contract.app, email) or {}).get("first_name") == "Late"
        if isinstance(auth, TokenAuth) and renewals is not None:
            assert auth.renewals > renewals, "the token was not renewed"

    @pytest.mark.parametrize("kind", CONTRACT_KINDS)
    def test_lost_response_follows_the_kinds_guarantee(self, contract: ContractEnv, kind: str) -> None:
        """The request is processed and its answer lost. At least once: the outcome lets the core resend, and
        the resend (marked uncertain) leaves exactly one effect. At most once: the outcome parks it (unknown)."""
        self._needs(kind)
        guarantee = self.destination_type.kinds[kind].guarantee
        email = f"lost.{kind}@example.com"
        self._warm_up(contract)
        if kind != "contact_upsert":
            self._contact(contract, email)
        view, landed = self._probe(contract, kind, email)
        contract.faults.faults = self.lost_response_faults(kind)

        lost = contract.send(kind, view)

        contract.quiet()
        assert contract.faults.stats["drop"] > 0, "no answer was lost: adjust lost_response_faults(kind)"
        assert landed() == 1, f"the request with the effect was not processed before its answer was lost: {lost}"
        if guarantee == "at_most_once":
            assert lost.status in ("unknown", "sent"), f"at most once, yet {lost.status}: the core would resend it"
            return
        assert lost.status in ("unknown", "retryable", "sent"), f"at least once, yet {lost.status}: {lost}"
        resent = contract.send(kind, view, uncertain=True, attempts=2)
        assert resent.status in ("sent", "skipped"), resent
        assert landed() == 1, f"{kind} is at least once, but a resend after a lost answer doubled it"

    # -- through the outbox and the dispatcher --------------------------------------------------------------------

    def _hub(self, tmp_path: Path, url: str) -> AbstractContextManager[Hub]:
        """A real hub whose one destination is this plugin pointed at ``url``."""
        project = tmp_path / "contract-project"
        settings = self.settings(url)
        return contract_hub(self.destination_type, settings, self._delivery(), timezone=self.timezone, project=project)

    def _people(self, count: int, prefix: str) -> list[str]:
        return [f"{prefix}{n}@example.com" for n in range(count)]

    def test_batches_and_payloads_stay_within_the_limits(self, tmp_path: Path) -> None:
        """More than one batch of each kind goes through the dispatcher; every request stays within the API's
        batch and payload limits, and everything is sent."""
        kinds = [k for k in ("contact_upsert", "order") if k in self.destination_type.kinds]
        if not kinds:
            pytest.skip(f"{self._type_name()} takes neither contacts nor orders")
        sizes = {kind: self.destination_type.kinds[kind].batch_size + 1 for kind in kinds}
        people = self._people(max(sizes.get("contact_upsert", 1), 2), "batch")
        messages: list[tuple[str, dict[str, Any], str]] = []
        if "contact_upsert" in kinds:
            for n, email in enumerate(people):
                view = self.contact_view(email, first_name=f"Batch{n}", email_consent=True)
                messages.append(("contact_upsert", view, f"{n}:v1"))
        if "order" in kinds:
            for n in range(sizes["order"]):
                messages.append(("order", self.order_view(people[n % len(people)], f"B-{n}", 1), f"B-{n}"))
        with served(self.emulator) as (app, _, recorder, url), self._hub(tmp_path, url) as hub:
            enqueue(hub, self._type_name(), messages)
            rows = drain(hub, self._type_name())
        assert [(r.kind, r.status, r.last_error) for r in rows if r.status != "sent"] == []
        for kind in kinds:
            seen = self.max_batch_seen(app, kind)
            if seen is not None:
                assert 0 < seen <= self.batch_limit(kind), f"{kind}: a request carried {seen} records"
        if self.payload_limit is not None:
            largest = max((s.size for s in recorder.seen), default=0)
            assert largest <= self.payload_limit, f"a request body of {largest} bytes (limit {self.payload_limit})"

    def test_pipeline_with_faults_delivers_everything_once(self, tmp_path: Path) -> None:
        """Contacts and their orders through the outbox and the dispatcher while ``fault_rate`` of the requests
        fail (5xx, 429, timeouts, answers lost after processing): every at-least-once message is sent, and the
        emulator holds each contact and each sent order exactly once. An at-most-once message is sent or parked
        for review (dead, unknown); what it left at the remote (an order of several requests may have landed in
        part) is never more than once."""
        kinds = [k for k in ("contact_upsert", "order") if k in self.destination_type.kinds]
        if not kinds:
            pytest.skip(f"{self._type_name()} takes neither contacts nor orders")
        people = self._people(self.pipeline_size, "pipeline")
        messages: list[tuple[str, dict[str, Any], str]] = []
        for n, email in enumerate(people):
            if "contact_upsert" in kinds:
                view = self.contact_view(email, first_name=f"Pipe{n}", email_consent=n % 2 == 0)
                messages.append(("contact_upsert", view, f"{n}:v1"))
            if "order" in kinds:
                messages.append(("order", self.order_view(email, f"PL-{n}", 2), f"PL-{n}"))
        with served(self.emulator) as (app, injector, _, url), self._hub(tmp_path, url) as hub:
            enqueue(hub, self._type_name(), messages)
            injector.faults = self.pipeline_faults()
            rows = drain(hub, self._type_name())
            injector.faults = Faults()
        stats = injector.stats
        if self.fault_rate:
            assert sum(stats[k] for k in ("error", "rate_429", "timeout", "drop")) > 0, stats
        kinds_spec = self.destination_type.kinds
        for row in rows:
            if kinds_spec[row.kind].guarantee == "at_least_once":
                assert row.status == "sent", (row.kind, row.status, row.error_class, row.last_error)
            else:
                assert (row.status, row.error_class) in (("sent", None), ("dead", "unknown")), row
        for n, email in enumerate(people):
            if "contact_upsert" in kinds:
                held = self.remote_contact_count(app, email)
                assert held == 1, f"{email} is held {held} times"
                contact = self.remote_contact(app, email) or {}
                assert (contact.get("first_name"), contact.get("email_consent")) == (f"Pipe{n}", n % 2 == 0), contact
        for row in rows:
            if row.kind == "order":
                order_no = row.idempotency_key.rsplit(":", 1)[-1]
                lines = self.remote_order_lines(app, order_no)
                if row.status == "sent":
                    assert lines == 2, f"order {order_no} was sent with 2 lines; the remote holds {lines}"
                else:  # parked for review, at most once: it may have landed, in part or whole, but never twice
                    assert lines <= 2, f"order {order_no} has 2 lines; the remote holds {lines}"
