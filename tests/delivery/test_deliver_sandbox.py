"""`hub deliver --sandbox`: the configured destinations are swapped for in-process emulators, faults and all."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hub import cli as hub_cli
from hub._yaml import load_located
from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.schema import upgrade
from hub_plugins.demo.generator import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded config (its voyado connector points at a host that does not exist) over a small demo set."""
    generate(tmp_path / "var" / "demo", customers=40, seed=3)
    (tmp_path / "mappings").symlink_to(ROOT / "mappings")
    config = load_located(ROOT / "config" / "hub.yaml").data  # hub's reader: `on:` is a key, not true
    assert config["connectors"]["voyado"]["plugin"] == "voyado"
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_CONFIG", str(tmp_path / "hub.yaml"))
    monkeypatch.setenv("COLUMNS", "200")
    hub = Hub.load(tmp_path / "hub.yaml", project_dir=tmp_path)
    upgrade(hub.engine)
    SyncEngine(hub).sync()
    hub.close()
    return tmp_path


def test_deliver_sandbox_sends_everything_to_the_emulator_through_injected_faults(project: Path) -> None:
    result = CliRunner().invoke(hub_cli.make_cli(), ["deliver", "--sandbox", "--faults", "error_rate=0.2,seed=5"])
    assert result.exit_code == 0, result.output
    assert "voyado -> voyado emulator at http://127.0.0.1:" in result.stdout
    holds = next(line for line in result.stdout.splitlines() if "holds:" in line)
    assert "contacts" in holds and "receipts" in holds and "injected error" in holds
    assert "retries   0" not in result.stdout  # faults were injected, so something was retried


def test_faults_without_sandbox_is_a_usage_error(project: Path) -> None:
    result = CliRunner().invoke(hub_cli.make_cli(), ["deliver", "--faults", "error_rate=0.2"])
    assert result.exit_code == 2
    assert "--faults needs --sandbox" in result.output
