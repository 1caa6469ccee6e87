"""Whole runs against the emulator: the shipped mapping end to end, tokens expiring mid-run, the 20-call ceiling,
and a pass through the real outbox and dispatcher with 30% faults."""

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from hub.app import Hub
from hub.delivery.changes import enqueue_many
from hub.delivery.dispatcher import deliver
from hub.delivery.outbound import load_outbound_mapping
from hub.models.delivery import Message
from hub.plugins import make_plugin_manager
from hub.sandbox.faults import FaultInjector, Faults
from hub.schema import upgrade
from hub_plugins import agillic, standard
from hub_plugins.agillic import emulator, emulator_settings
from hub_plugins.agillic._state import AgillicState
from hub_plugins.agillic.destination import AgillicDestination
from hub_plugins.standard.transforms import TRANSFORMS

from .conftest import keys, send

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_mapping_gives_person_data_the_instance_accepts(
    destination: AgillicDestination, state: AgillicState
) -> None:
    mapping = load_outbound_mapping(REPO / "mappings" / "agillic.yaml", TRANSFORMS)
    customer = {"id": 12, "email": "kari@example.no", "first_name": "Kari", "birth_date": "1980-05-17", "country": "no"}
    view = mapping(
        {
            "customer": customer,
            "identities": {"email": [], "phone": [], "member_no": [], "external_id": {"erp": "K1"}},
            "consents": {"email": {"status": "opt_in"}, "sms": {"status": "opt_out"}},
        }
    )
    (outcome,) = send(destination, "contact_upsert", {**view, "_hub": keys("kari@example.no")})
    assert outcome.status == "sent", outcome
    assert state.recipients["kari@example.no"] == {
        "EMAIL": "kari@example.no", "FIRSTNAME": "Kari", "BIRTHDATE": "17.05.1980", "COUNTRY": "NO",
        "CUSTOMER_NO": "K1", "EMAIL_OPT_IN": True, "SMS_OPT_IN": False,
    }  # fmt: skip


def test_a_token_is_renewed_before_it_expires(
    make: Callable[..., AgillicDestination], use: Callable[[Any], str]
) -> None:
    app = emulator.app(token_lifetime=1)
    state: AgillicState = app.state.agillic
    destination = make(use(app), token_margin=0.6)
    outcomes = []
    for n in range(12):
        outcomes += send(destination, "contact_upsert", {"FIRSTNAME": "A", "_hub": keys(f"p{n}@example.com")})
        time.sleep(0.1)
    assert {o.status for o in outcomes} == {"sent"}
    assert state.tokens_issued >= 3
    assert state.refused_tokens == 0


def test_tokens_expiring_mid_run_lose_nothing(
    make: Callable[..., AgillicDestination], use: Callable[[Any], str]
) -> None:
    """The token expires twice while four threads send batches: each 401 renews the token once and the call is
    repeated, so every contact arrives. (Expiries are far apart, as two-hour tokens are: a thread stalled across two
    expiries would retry with a token revoked since, and report the credentials refused.)"""
    app = emulator.app()
    state: AgillicState = app.state.agillic
    destination = make(use(app), delivery={"concurrency": 4})
    results: list[str] = []
    progress = threading.Condition()

    def expire_twice() -> None:
        for done in (50, 150):
            with progress:
                progress.wait_for(lambda done=done: len(results) >= done, timeout=10)
            state.expire_tokens()

    def work(worker: int) -> None:
        for n in range(10):
            people = [{"FIRSTNAME": "A", "_hub": keys(f"w{worker}.{n}.{i}@example.com")} for i in range(5)]
            outcomes = send(destination, "contact_upsert", *people)
            with progress:
                results.extend(o.status for o in outcomes)
                progress.notify_all()

    run_all([expire_twice, *(functools.partial(work, w) for w in range(4))])
    assert results == ["sent"] * 200
    assert len(state.recipients) == 200
    assert state.refused_tokens > 0
    assert state.tokens_issued >= 3


def test_hub_never_has_more_than_20_calls_in_flight(
    make: Callable[..., AgillicDestination], use: Callable[[Any], str]
) -> None:
    """Even with delivery.concurrency 40, the plugin's auth flow holds 20 slots: Agillic never refuses a call."""
    app = emulator.app(latency=0.2)
    state: AgillicState = app.state.agillic
    destination = make(use(app), delivery={"concurrency": 40})
    send(destination, "contact_upsert", {"_hub": keys("first@example.com")})
    results: list[str] = []

    def one(n: int) -> None:
        results.extend(o.status for o in send(destination, "contact_upsert", {"_hub": keys(f"p{n}@example.com")}))

    run_all([functools.partial(one, n) for n in range(40)])
    assert results == ["sent"] * 40
    assert (state.refused_concurrency, state.max_in_flight) == (0, 20)


def run_all(work: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=job) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- through the outbox and the dispatcher ----------------------------------------------------------------------------


@pytest.fixture
def faulty_hub(tmp_path: Path, use: Callable[[Any], str]) -> Iterator[tuple[Hub, Starlette, FaultInjector]]:
    app = emulator.app()
    injector = FaultInjector(app)
    url = use(injector)
    settings = {**emulator_settings(url), "context_schema": "HUB_TRIGGER"}
    delivery = {"concurrency": 4, "backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 40,
                "attempts_per_pass": 3, "read_timeout": 0.5, "connect_timeout": 2.0}  # fmt: skip
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "project_dir": str(tmp_path),
        "timezone": "Europe/Copenhagen",
        "connectors": {"agillic": {"plugin": "agillic", "mapping": str(REPO / "mappings" / "agillic.yaml"),
                                   "settings": settings, "delivery": delivery}},
    }  # fmt: skip
    (tmp_path / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(tmp_path / "hub.yaml", pm=make_plugin_manager(entrypoints=False, plugins=[agillic, standard]))
    try:
        upgrade(hub.engine)
        yield hub, app, injector
    finally:
        hub.close()


def _views(n: int) -> list[tuple[str, dict[str, Any], str]]:
    email = f"buyer{n}@example.com"
    lines = [
        {"line_no": i, "sku": f"S{i}", "quantity": 1, "unit_price": "10.00", "line_total": "10.00"} for i in (1, 2)
    ]
    order = {"source": "webshop", "external_id": f"W{n}", "placed_at": "2025-01-02T10:00:00+00:00", "currency": "DKK"}
    hub_keys = {**keys(email), "customer_id": n + 1}
    return [
        ("contact_upsert", {"EMAIL": email, "FIRSTNAME": f"Buyer{n}", "_hub": hub_keys}, f"c{n}"),
        ("order", {"order": order, "lines": lines, "_hub": hub_keys}, f"o{n}"),
        ("segment_membership", {"segment": "newsletter", "change": "entered", "_hub": hub_keys}, f"s{n}"),
        ("trigger", {"trigger_id": "BIRTHDAY", "data": {"n": n}, "_hub": hub_keys}, f"t{n}"),
    ]


def test_a_run_with_30_percent_faults_and_expiring_tokens_delivers_by_each_kinds_guarantee(
    faulty_hub: tuple[Hub, Starlette, FaultInjector],
) -> None:
    hub, app, injector = faulty_hub
    state: AgillicState = app.state.agillic
    destination = hub.connector("agillic")
    assert isinstance(destination, AgillicDestination)
    rows = [
        (kind, view["_hub"]["customer_id"], destination.prepare(kind, view), f"agillic:{kind}:{key}", None)
        for n in range(20)
        for kind, view, key in _views(n)
    ]
    with hub.engine.begin() as conn:
        enqueue_many(conn, "agillic", rows, datetime.now(UTC))
    injector.faults = Faults(
        error_rate=0.15, rate_429=0.06, retry_after=0, timeout_rate=0.03, hang_seconds=1.0, drop_rate=0.06, seed=3
    )
    table: sa.Table = Message.__table__  # type: ignore[attr-defined]
    expiry = threading.Thread(target=expire_after, args=(state, 20))
    expiry.start()
    for _ in range(60):
        summary = deliver(hub, ["agillic"])["agillic"]
        assert summary.error is None and not summary.paused, summary
        with hub.engine.begin() as conn:
            pending = conn.execute(
                sa.update(table).where(table.c.status == "pending").values(next_attempt_at=datetime.now(UTC))
            ).rowcount
        if not pending:
            break
    expiry.join()
    with hub.engine.connect() as conn:
        done = conn.execute(sa.select(table.c.kind, table.c.status, table.c.error_class, table.c.customer_id)).all()
    assert sum(injector.stats[k] for k in ("error", "rate_429", "timeout", "drop")) > 5, injector.stats
    assert state.refused_tokens > 0
    for kind, status, error_class, customer_id in done:
        email = f"buyer{customer_id - 1}@example.com"
        if kind == "trigger":
            assert (status, error_class) in (("sent", None), ("dead", "unknown")), (kind, status, error_class)
            fired = state.event_counts[(email, "BIRTHDAY")]
            assert fired == 1 if status == "sent" else fired <= 1
            continue
        assert status == "sent", (kind, status, error_class)
    assert len(state.recipients) == 20
    assert all(r["HUB_NEWSLETTER"] is True for r in state.recipients.values())
    assert sum(len(rows) for rows in state.records["PURCHASES"].values()) == 40


def expire_after(state: AgillicState, requests: int) -> None:
    """Expire every token once the emulator has had ``requests`` calls: in the middle of the run."""
    deadline = time.monotonic() + 10
    while state.requests < requests and time.monotonic() < deadline:
        time.sleep(0.005)
    state.expire_tokens()
