"""``control_routes``: the emulator control API's paths, bodies and error answers, the same in every emulator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub.sandbox import serve
from hub.sources.emulator import control_routes


class Recorder:
    """An EmulatorControl that remembers its calls; stream ``customers`` and key ``gid://shop/Customer/1`` exist."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def _known(self, stream: str, key: str | None = None) -> None:
        if stream != "customers" or key not in (None, "gid://shop/Customer/1"):
            raise KeyError(key or stream)

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        self._known(stream)
        if any("email" in r and "@" not in r["email"] for r in records):
            raise ValueError("email: not an e-mail address")
        self.calls.append(("put", stream, list(records), updated_at))
        return [str(n) for n in range(len(records))]

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        self._known(stream, key)
        self.calls.append(("delete", stream, key, at))

    def malformed(self, stream: str, key: str) -> None:
        self._known(stream, key)
        self.calls.append(("malformed", stream, key))

    def throttle(self, count: int, retry_after: float) -> None:
        self.calls.append(("throttle", count, retry_after))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Recorder, httpx.Client]]:
    control = Recorder()
    with serve(Starlette(routes=control_routes(control))) as base_url, httpx.Client(base_url=base_url) as client:
        yield control, client


@pytest.fixture
def control(served: tuple[Recorder, httpx.Client]) -> Recorder:
    served[0].calls.clear()
    return served[0]


@pytest.fixture
def client(served: tuple[Recorder, httpx.Client], control: Recorder) -> httpx.Client:
    return served[1]


def test_put_creates_and_answers_the_keys_in_order(client, control):
    response = client.post("/_emulator/records/customers", json={"records": [{}, {"_key": "7"}], "updated_at": "X"})

    assert (response.status_code, response.json()) == (200, {"keys": ["0", "1"]})
    assert control.calls == [("put", "customers", [{}, {"_key": "7"}], "X")]


@pytest.mark.parametrize(
    "body", [b"[]", b'{"records": {}}', b'{"records": [1]}', b'{"records": [], "updated_at": 5}', b"not json"]
)
def test_put_with_a_body_of_the_wrong_shape_is_a_422(client, control, body):
    response = client.post("/_emulator/records/customers", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["message"]
    assert control.calls == []


def test_a_record_the_control_refuses_is_a_422_with_its_reason(client):
    response = client.post("/_emulator/records/customers", json={"records": [{"email": "nope"}]})

    assert (response.status_code, response.json()) == (422, {"message": "email: not an e-mail address"})


def test_an_unknown_stream_is_a_404(client):
    response = client.post("/_emulator/records/invoices", json={"records": []})

    assert response.status_code == 404
    assert "invoices" in response.json()["message"]


def test_delete_and_malformed_take_url_encoded_keys_with_slashes(client, control):
    key = "gid%3A%2F%2Fshop%2FCustomer%2F1"

    assert client.delete(f"/_emulator/records/customers/{key}", params={"at": "T"}).status_code == 204
    assert client.post(f"/_emulator/malformed/customers/{key}").status_code == 204
    assert control.calls == [
        ("delete", "customers", "gid://shop/Customer/1", "T"),
        ("malformed", "customers", "gid://shop/Customer/1"),
    ]


def test_an_unknown_key_is_a_404(client):
    assert client.delete("/_emulator/records/customers/42").status_code == 404


def test_throttle_takes_a_count_and_seconds(client, control):
    assert client.post("/_emulator/throttle", json={"count": 2, "retry_after": 1.5}).status_code == 204
    assert control.calls == [("throttle", 2, 1.5)]


@pytest.mark.parametrize("body", [{"count": 0}, {"count": "1"}, {"retry_after": -1}, {"retry_after": "soon"}])
def test_throttle_with_a_bad_count_or_wait_is_a_422(client, body):
    assert client.post("/_emulator/throttle", json=body).status_code == 422
