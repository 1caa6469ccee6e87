"""TokenAuth over real loopback HTTP: fetched once and shared, renewed before expiry, renewed once on a 401."""

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.delivery.auth import TokenAuth, TokenError
from hub.sandbox.server import serve


class Server:
    def __init__(self) -> None:
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.expires_in = 7200
        self.refuse_tokens = False

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            if self.refuse_tokens:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            value = f"t{len(self.issued) + 1}"
            self.issued.append(value)
            self.valid.add(value)
            return JSONResponse({"access_token": value, "expires_in": self.expires_in, "token_type": "bearer"})

        async def thing(request: Request) -> JSONResponse:
            header = request.headers.get("authorization", "")
            if header.removeprefix("Bearer ") not in self.valid:
                return JSONResponse({"error": "expired"}, status_code=401)
            return JSONResponse({"ok": True, "token": header.removeprefix("Bearer ")})

        return Starlette(routes=[Route("/oauth2/token", token, methods=["POST"]), Route("/thing", thing)])


class ClientCredentials(TokenAuth):
    def token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request("POST", request.url.join("/oauth2/token"), data={"grant_type": "client_credentials"})


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def base_url(server: Server) -> Iterator[str]:
    with serve(server.app()) as url:
        yield url


def test_one_token_serves_many_requests(server: Server, base_url: str) -> None:
    auth = ClientCredentials()
    with httpx.Client(base_url=base_url, auth=auth) as client:
        tokens = {client.get("/thing").json()["token"] for _ in range(5)}
    assert tokens == {"t1"}
    assert server.issued == ["t1"]


def test_a_revoked_token_is_renewed_once_and_the_request_goes_through(server: Server, base_url: str) -> None:
    auth = ClientCredentials()
    with httpx.Client(base_url=base_url, auth=auth) as client:
        client.get("/thing")
        server.valid.clear()
        response = client.get("/thing")
    assert response.status_code == 200
    assert response.json()["token"] == "t2"


def test_a_token_near_its_expiry_is_renewed_before_use(server: Server, base_url: str) -> None:
    server.expires_in = 30
    auth = ClientCredentials(margin=60)
    with httpx.Client(base_url=base_url, auth=auth) as client:
        first = client.get("/thing").json()["token"]
        second = client.get("/thing").json()["token"]
    assert (first, second) == ("t1", "t2")


def test_a_second_401_is_returned_to_the_caller(server: Server, base_url: str) -> None:
    class Broken(ClientCredentials):
        def apply(self, request: httpx.Request, token) -> None:
            request.headers["Authorization"] = "Bearer wrong"

    with httpx.Client(base_url=base_url, auth=Broken()) as client:
        response = client.get("/thing")
    assert response.status_code == 401
    assert len(server.issued) == 2


def test_a_refused_token_request_raises_without_secrets(server: Server, base_url: str) -> None:
    server.refuse_tokens = True
    with httpx.Client(base_url=base_url, auth=ClientCredentials()) as client, pytest.raises(TokenError) as raised:
        client.get("/thing")
    assert "HTTP 401" in str(raised.value)
    assert "/oauth2/token" in str(raised.value)
