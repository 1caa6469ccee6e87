"""The operator commands: deliver, outbox, deadletters list/show/replay, check (typer's runner, real SQLite)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub import cli as hub_cli
from hub.delivery.outcomes import Outcome
from hub.models.delivery import OutboxAudit


@pytest.fixture
def run(env, monkeypatch):
    monkeypatch.setattr(hub_cli, "_load", lambda config: env.hub)
    monkeypatch.setenv("COLUMNS", "200")
    app = hub_cli.make_cli()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_deliver_sends_and_prints_a_summary(env, run):
    env.enqueue("contact_upsert", customer_id=1)
    env.enqueue("order", customer_id=1)
    result = run("deliver")
    assert result.exit_code == 0, result.output
    assert "contact_upsert 1, order 1" in result.stdout
    assert set(env.statuses().values()) == {"sent"}


def test_deliver_dry_run_counts_and_sends_nothing(env, run):
    env.enqueue("contact_upsert", customer_id=1)
    env.enqueue("order", customer_id=1)
    env.enqueue("trigger", customer_id=1)
    result = run("deliver", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "nothing was sent" in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("dest "))
    assert line.split()[1:] == ["1", "0", "0", "1", "1", "0", "0"]
    assert env.script().calls == [] and set(env.statuses().values()) == {"pending"}


def test_deliver_exits_1_and_says_so_when_a_destination_is_paused(env, run):
    key = env.enqueue("order", customer_id=1)
    env.script().on(key, Outcome.auth(401, "bad key"))
    result = run("deliver")
    assert result.exit_code == 1
    assert "dest is PAUSED" in result.stderr


def test_deliver_refuses_an_unknown_destination(env, run):
    result = run("deliver", "nope")
    assert result.exit_code != 0
    assert "no enabled destination named 'nope'" in str(result.exception)


def test_outbox_shows_counts_by_destination_kind_and_status_and_the_oldest_pending(env, run):
    env.enqueue("order", customer_id=1)
    dead = env.enqueue("order", customer_id=2)
    env.script().on(dead, Outcome.rejected(400, "bad"))
    run("deliver")
    env.enqueue("order", customer_id=3)
    result = run("outbox")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "order" in line)
    assert row.split() == ["dest", "order", "1", "0", "1", "1", "0"]
    assert "dest: oldest pending message is" in result.stdout


def test_deadletters_list_show_and_replay(env, run):
    key = env.enqueue("order", customer_id=1, payload={"order": {"id": 5}})
    env.script().on(key, Outcome.rejected(422, '{"error": "bad sku"}'), Outcome.sent("o5"))
    run("deliver")
    listed = run("deadletters", "list", "--destination", "dest")
    assert "rejected" in listed.stdout and "bad sku" in listed.stdout
    message_id = env.row(key).id
    shown = run("deadletters", "show", str(message_id))
    assert '"id": 5' in shown.stdout and "422" in shown.stdout
    replayed = run("deadletters", "replay", str(message_id), "--actor", "kari")
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed 1 by kari: {message_id}" in replayed.stdout
    row = env.row(key)
    assert (row.status, row.max_attempts) == ("pending", row.attempts + 5)
    with env.hub.engine.connect() as conn:
        audit = conn.execute(sa.select(OutboxAudit.__table__)).one()
    assert (audit.message_id, audit.action, audit.actor) == (message_id, "replay", "kari")
    run("deliver")
    assert env.status(key) == "sent"
    assert "replay by kari" in run("deadletters", "show", str(message_id)).stdout


def test_replay_all_of_a_destination_and_refusal_of_rows_not_dead(env, run):
    keys = [env.enqueue("order", customer_id=i) for i in range(3)]
    for key in keys[:2]:
        env.script().on(key, Outcome.invalid("no id"))
    run("deliver")
    result = run("deadletters", "replay", "--all", "--destination", "dest")
    assert "replayed 2" in result.stdout
    refused = run("deadletters", "replay", str(env.row(keys[2]).id))
    assert refused.exit_code == 1
    assert "it is sent, not dead" in refused.stderr


def test_check_says_in_plain_words_and_exits_1_when_not_ok(env, run):
    ok = run("check", "dest")
    assert (ok.exit_code, ok.stdout.strip()) == (0, "dest: OK, credentials accepted")
    env.script().check_ok = False
    bad = run("check", "dest")
    assert (bad.exit_code, bad.stdout.strip()) == (1, "dest: NOT OK, 401")
