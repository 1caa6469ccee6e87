"""Calling Odoo's model methods over its two external APIs, with one error type whatever the protocol.

**JSON-2** (Odoo 19+): ``POST /json/2/<model>/<method>`` with ``Authorization: bearer <api key>`` (and
``X-Odoo-Database`` when set) and the method's named arguments as the JSON body; the answer is the return value.
Errors have an HTTP status (401 bad key, 403 access, 404 missing, 422 user error, 500 anything else) and a body
``{"name", "message", "arguments", "context", "debug"}``, or, in an early revision, a bare JSON string.

**JSON-RPC** (older servers; deprecated in 19): ``POST /jsonrpc`` with ``{"jsonrpc": "2.0", "method": "call",
"params": {"service", "method", "args"}}``: ``common.authenticate(db, login, key, {})`` gives the uid (``false``
when refused), ``object.execute_kw(db, uid, key, model, method, args, kwargs)`` calls a method. Errors arrive with
**HTTP 200**: ``{"error": {"code": 200 (0 on newer servers), "message": "Odoo Server Error", "data": {"name",
"message", "arguments", "debug"}}}``; they are errors all the same. Those that are transient (a serialization
failure, a lock, a lost database connection) are retried through :class:`hub.sources.http.SourceHttp`'s throttle
hook; the others become an :class:`OdooError`.

Neither protocol ever puts ``debug`` (a server traceback) in a message.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from hub.sources.http import SourceHttp

#: Server-side exceptions that a retry may cure (psycopg2's, and Odoo's own wrappers of them).
TRANSIENT = (
    "SerializationFailure",
    "TransactionRollbackError",
    "LockNotAvailable",
    "DeadlockDetected",
    "InterfaceError",
    "PoolError",
    "ConcurrencyError",
)
#: Seconds before retrying a transient JSON-RPC error (HTTP 200, so no Retry-After).
RETRY_WAIT = 0.5
_AUTH = ("AccessDenied", "Unauthorized", "SessionExpired")


class OdooError(Exception):
    """An Odoo error answer. ``name`` is the server's exception class; ``auth``: the credentials were refused."""

    def __init__(self, name: str, message: str, *, status: int | None = None, auth: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status
        self.auth = auth

    @property
    def access(self) -> bool:
        """The user may not do this (Odoo's AccessError), as opposed to wrong credentials."""
        return self.name.endswith("AccessError")

    def __str__(self) -> str:
        short = self.name.rsplit(".", 1)[-1]
        return f"{short}: {self.message}" if self.message else short


class Json2:
    """Odoo's JSON-2 API over ``http`` (whose headers carry the bearer key)."""

    protocol = "json2"

    def __init__(self, http: SourceHttp) -> None:
        self.http = http

    def call(self, model: str, method: str, **arguments: Any) -> Any:
        response = self.http.post(f"/json/2/{model}/{method}", json=arguments)
        if response.status_code == 200:
            return response.json()
        raise self._error(response)

    def version(self) -> str:
        response = self.http.get("/web/version")
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        return str(body.get("version") or "?") if isinstance(body, dict) else "?"

    def whoami(self) -> str:
        context = self.call("res.users", "context_get")
        return f"user {context.get('uid')}" if isinstance(context, dict) and context.get("uid") else "its user"

    @staticmethod
    def _error(response: httpx.Response) -> OdooError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            name, message = str(body.get("name") or f"HTTP {response.status_code}"), str(body.get("message") or "")
        else:
            name, message = f"HTTP {response.status_code}", body if isinstance(body, str) else response.reason_phrase
        auth = response.status_code == 401 or name.rsplit(".", 1)[-1] in _AUTH
        return OdooError(name, message.strip()[:300], status=response.status_code, auth=auth)


class JsonRpc:
    """Odoo's JSON-RPC API over ``http``: logs in once (``common.authenticate``), then calls ``execute_kw``."""

    protocol = "jsonrpc"

    def __init__(self, http: SourceHttp, *, database: str, login: str, key: str) -> None:
        self.http = http
        self.database = database
        self.login = login
        self._key = key
        self._uid: int | None = None
        self._ids = itertools.count(1)

    def rpc(self, service: str, method: str, *args: Any) -> Any:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
        }
        response = self.http.post("/jsonrpc", json={**body, "id": next(self._ids)})
        if response.status_code != 200:
            raise Json2._error(response)
        answer = response.json()
        if isinstance(answer, dict) and answer.get("error") is not None:
            raise rpc_error(answer["error"])
        if not isinstance(answer, dict) or "result" not in answer:
            raise OdooError("ProtocolError", "the answer is not a JSON-RPC response")
        return answer["result"]

    @property
    def uid(self) -> int:
        if self._uid is None:
            uid = self.rpc("common", "authenticate", self.database, self.login, self._key, {})
            if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
                raise OdooError(
                    "AccessDenied", f"the login {self.login!r} was refused on database {self.database!r}", auth=True
                )
            self._uid = uid
        return self._uid

    def call(self, model: str, method: str, **arguments: Any) -> Any:
        return self.rpc("object", "execute_kw", self.database, self.uid, self._key, model, method, [], arguments)

    def version(self) -> str:
        info = self.rpc("common", "version")
        return str(info.get("server_version") or "?") if isinstance(info, dict) else "?"

    def whoami(self) -> str:
        return f"{self.login} (user {self.uid})"


def rpc_error(error: Any) -> OdooError:
    """The :class:`OdooError` of a JSON-RPC ``error`` member."""
    if not isinstance(error, dict):
        return OdooError("ProtocolError", "the error member is not an object")
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    name = str(data.get("name") or error.get("message") or "Odoo Server Error")
    message = str(data.get("message") or error.get("message") or "")
    if error.get("code") == 100:
        name = "odoo.http.SessionExpiredException"
    auth = name.rsplit(".", 1)[-1] in _AUTH
    return OdooError(name, message.strip()[:300], auth=auth)


def transient_rpc_error(response: httpx.Response) -> float | None:
    """SourceHttp's throttle hook for JSON-RPC: seconds to wait before retrying an HTTP-200 error that a retry may
    cure; None for every other answer (which the caller then reads)."""
    if response.status_code != 200 or b'"error"' not in response.content[:4096]:
        return None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    name = str(((error or {}).get("data") or {}).get("name") or "") if isinstance(error, dict) else ""
    message = str(((error or {}).get("data") or {}).get("message") or "") if isinstance(error, dict) else ""
    if any(marker in name for marker in TRANSIENT):
        return RETRY_WAIT
    if name.endswith("OperationalError") and "does not exist" not in message:
        return RETRY_WAIT  # the database went away mid-request; an unknown database is not transient
    return None
