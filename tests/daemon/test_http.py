"""/healthz, /readyz and /metrics over loopback HTTP, in process: readiness reasons and the exposition format."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from hub.config import Schedule
from hub.daemon.http import HttpServer, Readiness, make_app
from hub.daemon.jobs import Job, JobBoard, JobOutcome, build_jobs, run_job
from hub.daemon.metrics import DaemonMetrics

EVERY = Schedule(every=timedelta(minutes=1))


@pytest.fixture
def served(make_hub):
    hub = make_hub()
    jobs = build_jobs(hub)
    board = JobBoard(jobs)
    metrics = DaemonMetrics(hub.engine, board)
    state = {"scheduler": True}
    readiness = Readiness(
        hub.engine,
        board,
        scheduler_running=lambda: state["scheduler"],
        stuck_after=timedelta(minutes=30),
        stopping=threading.Event(),
    )
    with (
        HttpServer(make_app(readiness, metrics), "127.0.0.1", 0).running() as url,
        httpx.Client(base_url=url) as client,
    ):
        yield SimpleNamespace(
            client=client, jobs=jobs, board=board, metrics=metrics, state=state, readiness=readiness, hub=hub
        )


def test_healthz_and_readyz_answer_200_when_all_is_well(served) -> None:
    client = served.client
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_readyz_is_503_with_every_reason(served) -> None:
    client, readiness = served.client, served.readiness
    served.state["scheduler"] = False
    served.board.started(served.jobs[0].id, datetime.now(UTC) - timedelta(hours=1))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["reasons"] == [
        "scheduler not running",
        "job sync:shop has been running for 60 min (stuck_after: 30 min)",
    ]
    readiness.stopping.set()
    assert "shutting down" in client.get("/readyz").json()["reasons"]


def test_metrics_count_a_sync_and_read_the_database(served) -> None:
    client = served.client
    run_job(served.jobs[0], served.board, observe=served.metrics.observe)
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'hub_sync_records_total{connector="shop",outcome="read",stream="records"} 3.0' in text
    assert 'hub_sync_records_total{connector="shop",outcome="rejected",stream="records"} 1.0' in text
    assert 'hub_sync_last_run_records{connector="shop",outcome="loaded",stream="records"} 2.0' in text
    assert 'hub_job_runs_total{job="sync:shop",outcome="succeeded"} 1.0' in text
    assert 'hub_job_last_success_timestamp_seconds{job="sync:shop"}' in text
    assert "hub_database_up 1.0" in text


def test_metrics_count_the_deletions_of_a_sync(served, tmp_path) -> None:
    run_job(served.jobs[0], served.board, observe=served.metrics.observe)
    # tombstones: customer 1 was loaded by the first run, 404 never was
    (tmp_path / "data" / "gone.csv").write_text("id,_deleted\n1,true\n404,true\n", encoding="utf-8")
    run_job(served.jobs[0], served.board, observe=served.metrics.observe)
    text = served.client.get("/metrics").text
    assert 'hub_sync_records_total{connector="shop",outcome="deleted",stream="records"} 1.0' in text
    assert 'hub_sync_records_total{connector="shop",outcome="deletion_ignored",stream="records"} 1.0' in text
    assert 'hub_sync_records_total{connector="shop",outcome="read",stream="records"} 5.0' in text
    assert 'hub_sync_last_run_records{connector="shop",outcome="deleted",stream="records"} 1.0' in text
    assert 'hub_sync_last_run_records{connector="shop",outcome="deletion_ignored",stream="records"} 1.0' in text
    assert 'hub_sync_last_run_records{connector="shop",outcome="loaded",stream="records"} 0.0' in text


def test_metrics_show_outbox_depth_and_delivery_counts(served) -> None:
    import sqlalchemy as sa

    from hub.delivery.dispatcher import DeliverySummary, DestinationSummary
    from hub.models import Message

    client, metrics = served.client, served.metrics
    now = datetime.now(UTC)
    base = {"destination": "esp", "kind": "trigger", "payload": {}, "next_attempt_at": now, "created_at": now}
    with served.hub.engine.begin() as conn:
        conn.execute(
            sa.insert(Message.__table__),
            [
                {**base, "idempotency_key": "a", "status": "pending"},
                {**base, "idempotency_key": "b", "status": "pending"},
                {**base, "idempotency_key": "c", "status": "dead"},
                {**base, "idempotency_key": "d", "status": "sent"},
            ],
        )
    deliver = Job("deliver", "deliver", EVERY, JobOutcome)
    summary = DeliverySummary(destinations={"esp": DestinationSummary("esp", sent={"trigger": 5}, dead=1, error="x")})
    metrics.observe(deliver, JobOutcome(ok=False, summary=summary))
    text = client.get("/metrics").text
    assert 'hub_outbox_messages{destination="esp",status="pending"} 2.0' in text
    assert 'hub_outbox_messages{destination="esp",status="dead"} 1.0' in text
    assert 'status="sent"' not in text
    assert 'hub_delivery_messages_total{destination="esp",kind="trigger",outcome="sent"} 5.0' in text
    assert 'hub_delivery_failures_total{destination="esp"} 1.0' in text
    assert 'hub_outbox_oldest_pending_age_seconds{destination="esp"}' in text
