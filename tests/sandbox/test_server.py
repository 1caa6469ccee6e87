"""``serve``: an ASGI app on loopback in a thread, stopped at the end of the block."""

from __future__ import annotations

import socket

import httpx
import pytest

from hub.sandbox import serve

from .tiny import notes_app


def test_serve_yields_a_loopback_url_and_stops_at_the_end_of_the_block():
    with serve(notes_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/items").json() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/items")


def test_a_port_in_use_is_a_runtime_error_in_the_caller_not_a_crash_in_the_thread():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"did not start on 127.0.0.1:{port}"), serve(notes_app(), port=port):
            pass
