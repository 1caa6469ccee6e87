"""`hub validate` compiles destinations' outbound mappings too, and names the file, line and key of each error."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from hub import cli as hub_cli

ROOT = Path(__file__).resolve().parents[2]


def test_validate_reports_a_broken_outbound_mapping_with_its_location(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "voyado.yaml").write_text(
        "description: broken on purpose\nfields:\n  email: customer.email\n  firstName: customer.frist_name\n",
        encoding="utf-8",
    )
    config = {
        "database": {"url": "sqlite:///hub.db"},
        "connectors": {
            "voyado": {
                "plugin": "voyado",
                "mapping": "mappings/voyado.yaml",
                "settings": {"base_url": "http://127.0.0.1:9", "api_key": "k"},
            }
        },
    }
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(hub_cli.make_cli(), ["validate", "--config", str(tmp_path / "hub.yaml")])
    assert result.exit_code != 0
    message = str(result.exception)  # hub.cli.main prints a HubError's message; the runner keeps the exception
    assert "mappings/voyado.yaml:4: fields.firstName: unknown path customer.frist_name" in message
