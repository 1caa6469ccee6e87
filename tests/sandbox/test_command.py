"""``hub sandbox``: every installed emulator served on its port, described, and stopped on Ctrl-C."""

from __future__ import annotations

import _thread
import io
import socket
import threading
import time

import httpx
import pytest
import typer
import yaml
from rich.console import Console
from typer.testing import CliRunner

from hub.plugins import make_plugin_manager
from hub.sandbox import Faults
from hub.sandbox.command import SandboxError, parse_ports, print_sandbox, run_sandbox, sandbox, start_sandbox

from .tiny import EmulatorPlugin, notes_emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pm():
    plugin = EmulatorPlugin(notes_emulator("notes", inspect_path="/_emulator/received"), notes_emulator("other"))
    return make_plugin_manager(entrypoints=False, plugins=[plugin])


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_every_emulator_is_served_on_its_own_port(pm):
    port = free_port()
    with start_sandbox(pm, ports={"notes": port}) as running:
        assert [r.name for r in running] == ["notes", "other"]
        assert running["notes"].url == f"http://127.0.0.1:{port}"
        assert running["other"].url != running["notes"].url
        for served in running:
            assert httpx.post(f"{served.url}/items", json={"at": served.name}).status_code == 201
        assert running["notes"].injector.app.state.notes.items == {1: {"at": "notes"}}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/items")


def test_each_emulator_gets_its_own_copy_of_the_faults(pm):
    with start_sandbox(pm, faults=Faults(error_rate=1)) as running:
        assert httpx.post(f"{running['notes'].url}/items", json={}).status_code >= 500
        running["notes"].injector.faults = Faults()
        assert httpx.post(f"{running['notes'].url}/items", json={}).status_code == 201
        assert httpx.post(f"{running['other'].url}/items", json={}).status_code >= 500


def test_only_serves_the_named_emulators(pm):
    with start_sandbox(pm, only=["other"]) as running:
        assert [r.name for r in running] == ["other"]


def test_an_unknown_name_is_an_error_listing_what_is_installed(pm):
    with pytest.raises(SandboxError, match=r"no emulator named 'nope' \(installed: notes, other\)"):
        start_sandbox(pm, only=["nope"])
    with pytest.raises(SandboxError, match="'typo'"):
        start_sandbox(pm, ports={"typo": 8000})


def test_no_emulator_installed_is_an_error():
    with pytest.raises(SandboxError, match="no installed plugin provides an emulator"):
        start_sandbox(make_plugin_manager(entrypoints=False))


def test_a_port_in_use_is_an_error_and_the_servers_already_started_are_stopped(pm):
    first = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(SandboxError, match=f"'other' cannot listen on 127.0.0.1:{busy}: Address already in use"):
            start_sandbox(pm, ports={"notes": first, "other": busy})
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{first}/items")


def test_the_description_has_the_urls_and_a_config_snippet_that_points_at_the_emulator(pm):
    out_console, out = console()
    with start_sandbox(pm) as running:
        print_sandbox(running, out_console)
        notes = running["notes"]
        text = out.getvalue()
        assert notes.url in text and f"{notes.url}/_emulator/received" in text and notes.faults_url in text
        snippet = text.split("paste into config/hub.yaml:")[1].split("other emulator")[0]
        assert yaml.safe_load(snippet) == {
            "connectors": {"notes": {"plugin": "notes-api", "settings": {"base_url": notes.url, "api_key": "sandbox"}}}
        }
        assert running["other"].inspect_url == f"{running['other'].url}/_emulator/state"


def test_run_sandbox_serves_until_stopped(pm):
    port, stop = free_port(), threading.Event()
    out_console, out = console()
    thread = threading.Thread(
        target=run_sandbox, args=(pm,), kwargs={"ports": {"notes": port}, "console": out_console, "stop": stop}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while "press Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(f"http://127.0.0.1:{port}/items").json() == []
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/items")


def test_ctrl_c_stops_the_sandbox(pm):
    out_console, out = console()
    stop = threading.Event()

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 10
        while "press Ctrl-C" not in out.getvalue():
            if time.monotonic() > deadline:
                stop.set()  # never interrupt a test run that is somewhere else
                return
            time.sleep(0.02)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c).start()
    run_sandbox(pm, console=out_console, stop=stop)
    assert not stop.is_set()
    assert out.getvalue().rstrip().endswith("stopping")


def test_ports_parse_from_name_equals_port():
    assert parse_ports(["notes=8081", " other = 0 "]) == {"notes": 8081, "other": 0}
    for bad in ("notes", "notes=", "=8081", "notes=http", "notes=70000"):
        with pytest.raises(ValueError, match="NAME=PORT"):
            parse_ports([bad])


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "notes"], "NAME=PORT"), (["--faults", "error_rate=2"], "less than or equal to 1")],
)
def test_the_command_refuses_bad_options_before_starting_anything(args, message):
    cli = typer.Typer()
    cli.command()(sandbox)
    cli.command("other")(lambda: None)  # two commands, so `sandbox` is addressed by name as under `hub`
    result = CliRunner().invoke(cli, ["sandbox", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output
