"""The command line as a user runs it: a real process, real files, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def hub(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = hub(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_init_validate_upgrade_sync_status_and_rejects_work_together(project):
    assert "OK" in hub(project, "validate").stdout
    assert hub(project, "db", "upgrade").returncode == 0
    sync = hub(project, "sync")
    assert sync.returncode == 0, sync.stderr
    assert "example.records" in sync.stdout
    assert "customers after merging: 2" in sync.stdout
    status = hub(project, "status")
    assert "succeeded" in status.stdout
    rejects = hub(project, "rejects")
    assert "not-an-email" not in rejects.stdout or "email" in rejects.stdout
    assert "top reasons" in rejects.stdout
    shown = hub(project, "rejects", "show", "1")
    assert '"email": "not-an-email"' in shown.stdout


def sync_with_tombstones(project: Path) -> tuple[str, str]:
    """Sync the example, then a file of two tombstones: one for a loaded customer, one naming nothing loaded.

    Returns the stdout of the first and of the second sync."""
    assert hub(project, "db", "upgrade").returncode == 0
    first = hub(project, "sync")
    assert first.returncode == 0, first.stderr
    (project / "data" / "gone.csv").write_text("id,_deleted\n1,true\n404,true\n", encoding="utf-8")
    second = hub(project, "sync")
    assert second.returncode == 0, second.stderr
    return first.stdout, second.stdout


def test_the_sync_summary_shows_deletions_when_the_run_met_tombstones(project):
    first, second = sync_with_tombstones(project)
    assert "deleted" not in first  # no tombstones, no column
    header, row = second.splitlines()[:2]
    cells = dict(zip(header.split(), row.split(), strict=False))  # "new cust." is two words, after "deleted"
    assert (cells["stream"], cells["read"], cells["loaded"], cells["rejected"], cells["deleted"]) == (
        "example.records",
        "2",
        "0",
        "0",
        "1",
    )
    assert "deleted this run: 1; ignored tombstones: 1 (nothing loaded to delete)" in second


def test_status_shows_each_runs_deletions_and_ignored_tombstones(project):
    sync_with_tombstones(project)
    status = hub(project, "status").stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in status.splitlines() if "│" in line]
    header = next([cell.strip() for cell in line.split("┃")[1:-1]] for line in status.splitlines() if "┃" in line)
    runs = {row[0]: dict(zip(header, row, strict=True)) for row in rows if row[0] in ("1", "2")}
    assert runs["2"]["deleted"] == "1 (+1 ignored)"
    assert (runs["2"]["read"], runs["2"]["loaded"]) == ("2", "0")
    assert runs["1"]["deleted"] == "0"


def test_a_broken_config_reports_every_error_with_file_line_and_key_and_exits_2(project):
    config = project / "config" / "hub.yaml"
    text = config.read_text().replace("plugin: files", "plugin: filez").replace("batch_size: 5000", "batch_size: x")
    config.write_text(text)
    result = hub(project, "validate")
    assert result.returncode == 2
    lines = {line.strip() for line in result.stderr.splitlines()}
    assert any(line.startswith("config/hub.yaml:") and ": batch_size:" in line for line in lines), result.stderr
    assert any("connectors.example.plugin: unknown connector type 'filez'" in line for line in lines)


def test_a_broken_mapping_is_reported_by_validate_with_file_line_and_key(project):
    mapping = project / "mappings" / "example.yaml"
    mapping.write_text(mapping.read_text().replace("transforms: [email]", "transforms: [emale]"))
    result = hub(project, "validate")
    assert result.returncode == 2
    assert "mappings/example.yaml:" in result.stderr
    assert "emale" in result.stderr


def test_a_secret_from_the_environment_never_reaches_the_output(project):
    config = project / "config" / "hub.yaml"
    config.write_text(config.read_text().replace("batch_size: 5000", "batch_size: ${BATCH}"))
    result = hub(project, "validate", env={"BATCH": "not-a-number-but-secret"})
    assert result.returncode == 2
    assert "not-a-number-but-secret" not in result.stderr + result.stdout


def test_sync_before_db_upgrade_says_what_to_run(project):
    result = hub(project, "sync")
    assert result.returncode == 1
    assert "hub db upgrade" in result.stderr


def test_schema_prints_json_schema_with_the_files_settings(project):
    schema = json.loads(hub(project, "schema").stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "files" in json.dumps(schema)


def test_plugins_lists_the_builtin_connector_types_with_roles(project):
    listing = json.loads(hub(project, "plugins", "--json").stdout)
    types = {t["type"]: t["roles"] for p in listing["plugins"] for t in p["connector_types"]}
    assert types["files"] == ["source"]


def test_plugins_shows_each_destination_kinds_delivery_guarantee_and_why(project):
    listing = json.loads(hub(project, "plugins", "--json").stdout)
    kinds = {t["type"]: t["kinds"] for p in listing["plugins"] for t in p["connector_types"]}
    assert kinds["files"] == {}
    assert kinds["voyado"]["trigger"]["guarantee"] == "at_most_once"
    assert "idempotency" in kinds["voyado"]["trigger"]["why"]
    text = hub(project, "plugins").stdout
    assert "voyado.order: at-least-once" in text
