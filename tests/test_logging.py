"""Logs: JSON lines off a terminal, secrets never rendered."""

from __future__ import annotations

import io
import json

import structlog

from hub.logging import REDACTED, configure_logging


def render(**event) -> dict:
    stream = io.StringIO()
    configure_logging(json=True, secrets=["s3cr3t-token-value"], stream=stream)
    structlog.get_logger("t").info("calling", **event)
    return json.loads(stream.getvalue().strip())


def test_a_known_secret_is_redacted_wherever_it_appears():
    line = render(url="https://x/?key=s3cr3t-token-value", nested={"headers": ["Bearer s3cr3t-token-value"]})
    assert "s3cr3t" not in json.dumps(line)
    assert line["url"] == f"https://x/?key={REDACTED}"


def test_secret_looking_keys_are_redacted_even_when_the_value_is_unknown():
    line = render(api_key="abc", password="hunter2", settings={"client_secret": "zzz", "base_url": "https://x"})
    assert line["api_key"] == REDACTED
    assert line["password"] == REDACTED
    assert line["settings"] == {"client_secret": REDACTED, "base_url": "https://x"}


def test_json_lines_carry_level_and_utc_timestamp():
    line = render(connector="pos")
    assert line["level"] == "info"
    assert line["event"] == "calling"
    assert line["timestamp"].endswith("Z")
