"""The Odoo emulator's memory: one database with its users and API keys, the models hub reads, the ORM methods it
calls on them, and the control API.

Rows are stored as Python values (many2one as an id, ``None`` for empty, ``write_date`` a naive UTC datetime to the
microsecond, as PostgreSQL keeps it) and served as Odoo serves them: many2one as ``[id, "Name"]``, one2many as an id
list, empty as ``false``, times as ``"YYYY-MM-DD HH:MM:SS"``.

Control API streams: ``partners`` (res.partner), ``orders`` (sale.order; ``order_line`` given as a list of line
values, or Odoo's ``[0, 0, {...}]`` commands, replaces its lines and re-stamps it), ``products`` (product.product).
Deleting a partner or product archives it (``active = false``: Odoo refuses to unlink one with history); deleting an
order unlinks it with its lines. A malformed row is served with ``write_date: false``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hub_plugins.odoo._domain import parse_domain, parse_order, sort_rows

DATABASE = "nordhjem"
DEFAULT_LOGIN = "hub@nordhjem.no"
DEFAULT_KEY = "0f3c9a7d2b8e4f61a5c7d9e1b3f5a7c9d1e3f5a7"
STREAMS = {"partners": "res.partner", "orders": "sale.order", "products": "product.product"}
_STAMPS = {"create_date": "datetime", "write_date": "datetime"}

#: Field kinds per model ("many2one:<comodel>", "one2many:<comodel>:<inverse>").
FIELDS: dict[str, dict[str, str]] = {
    "res.partner": {
        "id": "int", "name": "char", "display_name": "char", "email": "char", "phone": "char", "street": "char",
        "street2": "char", "zip": "char", "city": "char", "country_code": "char", "country_id": "many2one:res.country",
        "lang": "selection", "is_company": "bool", "parent_id": "many2one:res.partner",
        "commercial_company_name": "char", "company_name": "char", "ref": "char", "vat": "char", "type": "selection",
        "customer_rank": "int", "active": "bool", **_STAMPS,
    },
    "sale.order": {
        "id": "int", "name": "char", "display_name": "char", "partner_id": "many2one:res.partner",
        "date_order": "datetime", "state": "selection", "amount_total": "float", "amount_untaxed": "float",
        "currency_id": "many2one:res.currency", "client_order_ref": "char", "origin": "char",
        "order_line": "one2many:sale.order.line:order_id", "company_id": "many2one:res.company", **_STAMPS,
    },
    "sale.order.line": {
        "id": "int", "order_id": "many2one:sale.order", "sequence": "int", "product_id": "many2one:product.product",
        "name": "char", "display_name": "char", "product_uom_qty": "float", "price_unit": "float", "discount": "float",
        "price_subtotal": "float", "price_total": "float", "display_type": "selection", **_STAMPS,
    },
    "product.product": {
        "id": "int", "default_code": "char", "name": "char", "display_name": "char", "barcode": "char",
        "list_price": "float", "lst_price": "float", "standard_price": "float", "categ_id": "many2one:product.category",
        "type": "selection", "sale_ok": "bool", "active": "bool", "product_tmpl_id": "many2one:product.template",
        **_STAMPS,
    },
    "res.company": {
        "id": "int", "name": "char", "display_name": "char", "partner_id": "many2one:res.partner", **_STAMPS,
    },
    "res.users": {"id": "int", "login": "char", "name": "char", "display_name": "char", **_STAMPS},
}  # fmt: skip
NAMES = {"res.country": {1: "Norway", 2: "Sweden", 3: "Denmark"}, "res.currency": {1: "NOK", 2: "EUR"}}
COUNTRIES = {"NO": 1, "SE": 2, "DK": 3}
FIRST_IDS = {"res.partner": 10, "product.product": 100_001, "sale.order": 500_001, "sale.order.line": 900_001}


class OdooFault(Exception):
    """A server-side exception as Odoo reports it: its class ``name`` and message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status JSON-2 gives it (``UserError.http_status`` and subclasses; 500 for anything else)."""
        short = self.name.rsplit(".", 1)[-1]
        return {"AccessDenied": 403, "AccessError": 403, "MissingError": 404, "UserError": 422,
                "ValidationError": 422, "Unauthorized": 401, "NotFound": 404}.get(short, 500)  # fmt: skip


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_time(text: str | None) -> datetime:
    """A control API time (ISO 8601; an offset is converted, naive is UTC), or now; stored naive UTC."""
    if text is None:
        return now_utc()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class OdooState:
    """Everything the emulator holds; ``lock`` guards it (requests run on several threads)."""

    def __init__(self, *, version: str = "19.0") -> None:
        self.lock = threading.RLock()
        self.version = version
        self.databases = [DATABASE]
        self.users = {2: {"login": DEFAULT_LOGIN, "name": "Hub Integration", "keys": {DEFAULT_KEY}}}
        self.json2_error_style = "object"  # or "string": the bare "Invalid apikey" of an early revision
        self.rpc_error_code = 200  # older servers; newer ones send 0
        self.tables: dict[str, dict[int, dict[str, Any]]] = {model: {} for model in FIELDS}
        # Ids start apart per model: Odoo's overlap, but hub's SourceContract keys every stream's events alike
        self._ids = {model: itertools.count(FIRST_IDS.get(model, 10)) for model in FIELDS}
        self.malformed_keys: set[tuple[str, int]] = set()
        self.faults: deque[tuple[str, str, str | None]] = deque()  # (exception, message, model or None: any)
        self.throttled = 0
        self.retry_after = 1.0
        self.calls: list[tuple[str, str]] = []  # (model, method) of every ORM call, in order
        self.categories: dict[int, str] = {1: "All"}  # product.category id -> complete name
        self._seed_company()

    def _seed_company(self) -> None:
        stamp = datetime(2024, 1, 1, 8, 0)
        company = {"name": "Nordhjem AS", "is_company": True, "type": "contact", "customer_rank": 0, "lang": "nb_NO"}
        self.tables["res.partner"][1] = {
            **self._partner_defaults(1),
            **company,
            "create_date": stamp,
            "write_date": stamp,
        }
        self.tables["res.company"][1] = {
            "id": 1,
            "name": "Nordhjem AS",
            "partner_id": 1,
            "create_date": stamp,
            "write_date": stamp,
        }
        user = {"id": 2, "login": DEFAULT_LOGIN, "name": "Hub Integration", "create_date": stamp, "write_date": stamp}
        self.tables["res.users"][2] = user

    # -- users and keys -------------------------------------------------------------------------------------------

    def user_of_key(self, key: str | None) -> int | None:
        for uid, user in self.users.items():
            if key and any(secrets.compare_digest(key, k) for k in user["keys"]):
                return uid
        return None

    def login(self, login: str, password: str) -> int | None:
        uid = next((u for u, user in self.users.items() if user["login"] == login), None)
        return uid if uid is not None and self.user_of_key(password) == uid else None

    # -- rows -----------------------------------------------------------------------------------------------------

    def _partner_defaults(self, key: int) -> dict[str, Any]:
        return {
            "id": key, "name": f"Kunde {key}", "email": f"kunde{key}@example.no", "phone": None, "street": None,
            "street2": None, "zip": None, "city": None, "country_code": "NO", "lang": "nb_NO", "is_company": False,
            "parent_id": None, "company_name": None, "ref": None, "vat": None, "type": "contact", "customer_rank": 1,
            "active": True,
        }  # fmt: skip

    def _defaults(self, model: str, key: int, stamp: datetime) -> dict[str, Any]:
        if model == "res.partner":
            return self._partner_defaults(key)
        if model == "sale.order":
            return {
                "id": key, "name": f"S{key - FIRST_IDS['sale.order'] + 1:05d}", "partner_id": 1,
                "date_order": stamp, "state": "sale", "currency_id": 1, "client_order_ref": None, "origin": None,
                "company_id": 1,
            }  # fmt: skip
        if model == "product.product":
            return {
                "id": key, "default_code": f"ODOO-{key}", "name": f"Vare {key}", "barcode": None,
                "list_price": 199.0, "standard_price": 99.0, "categ_id": 1, "type": "consu", "sale_ok": True,
                "active": True, "product_tmpl_id": key,
            }  # fmt: skip
        return {"id": key}

    def create(self, model: str, values: Mapping[str, Any], *, stamp: datetime) -> int:
        with self.lock:
            key = next(self._ids[model])
            row = self._defaults(model, key, stamp)
            row.update(create_date=stamp, write_date=stamp)
            self.tables[model][key] = row
            self.write(model, key, values, stamp=stamp)
            return key

    def write(self, model: str, key: int, values: Mapping[str, Any], *, stamp: datetime) -> None:
        kinds = FIELDS[model]
        with self.lock:
            row = self.tables[model][key]
            for name, value in values.items():
                if name == "order_line" and model == "sale.order":
                    self._set_lines(key, value, stamp)
                    continue
                if name not in kinds or name in ("id", "create_date", "write_date", "display_name"):
                    raise ValueError(f"Invalid field {name!r} on model {model!r}")
                if kinds[name].startswith("many2one") and isinstance(value, list | tuple):
                    if kinds[name] == "many2one:product.category" and len(value) == 2:
                        self.categories[int(value[0])] = str(value[1])
                    value = value[0] if value else None
                if kinds[name] == "datetime" and isinstance(value, str):
                    value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
                row[name] = None if value is False and kinds[name] != "bool" else value
            if model == "res.partner" and "country_code" in values:
                row["country_code"] = str(values["country_code"] or "").upper() or None
            row["write_date"] = stamp
            if model == "sale.order":
                self._totals(key)

    def _set_lines(self, order: int, given: Any, stamp: datetime) -> None:
        if not isinstance(given, list):
            raise ValueError("order_line must be a list of line values or [0, 0, {...}] commands")
        lines = self.tables["sale.order.line"]
        for line_id in [k for k, line in lines.items() if line["order_id"] == order]:
            del lines[line_id]
        for n, item in enumerate(given, start=1):
            values = item[2] if isinstance(item, list | tuple) and len(item) == 3 and item[0] == 0 else item
            if not isinstance(values, Mapping):
                raise ValueError("an order line must be an object of line values")
            key = next(self._ids["sale.order.line"])
            lines[key] = {
                "id": key, "order_id": order, "sequence": 10 * n, "product_id": None, "name": "",
                "product_uom_qty": 1.0, "price_unit": 0.0, "discount": 0.0, "display_type": None,
                "create_date": stamp, "write_date": stamp,
            }  # fmt: skip
            for name, value in values.items():
                if name not in FIELDS["sale.order.line"] or name in ("id", "order_id"):
                    raise ValueError(f"Invalid field {name!r} on model 'sale.order.line'")
                lines[key][name] = (
                    value[0] if isinstance(value, list) and value else (None if value is False else value)
                )
            line = lines[key]
            product = self.tables["product.product"].get(line["product_id"] or -1)
            if product is not None and not line["name"]:
                line["name"] = product["name"]
            gross = float(line["product_uom_qty"]) * float(line["price_unit"]) * (1 - float(line["discount"]) / 100)
            line.update(price_total=round(gross, 2), price_subtotal=round(gross / 1.25, 2))

    def _totals(self, order: int) -> None:
        lines = [x for x in self.tables["sale.order.line"].values() if x["order_id"] == order]
        row = self.tables["sale.order"][order]
        row["amount_total"] = round(sum(x["price_total"] for x in lines), 2)
        row["amount_untaxed"] = round(sum(x["price_subtotal"] for x in lines), 2)

    def display(self, model: str, key: int | None) -> Any:
        """A many2one's ``[id, "Name"]`` (False when empty)."""
        if key is None:
            return False
        if model in NAMES:
            return [key, NAMES[model].get(key, str(key))]
        if model == "product.category":
            return [key, self.categories.get(key, str(key))]
        row = self.tables.get(model, {}).get(key)
        name = _display_name(self, model, row) if row is not None else str(key)
        return [key, name]

    def serve(self, model: str, row: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
        kinds = FIELDS[model]
        out: dict[str, Any] = {"id": row["id"]}
        for name in fields:
            kind = kinds[name]
            if name == "display_name":
                value: Any = _display_name(self, model, row)
            elif name == "commercial_company_name":
                value = _commercial_name(self, row) or False
            elif name == "country_id":
                value = self.display("res.country", COUNTRIES.get(row.get("country_code") or ""))
            elif name == "lst_price":
                value = row.get("list_price") or 0.0
            elif kind.startswith("many2one"):
                value = self.display(kind.split(":")[1], row.get(name))
            elif kind.startswith("one2many"):
                _, comodel, inverse = kind.split(":")
                value = sorted(k for k, r in self.tables[comodel].items() if r.get(inverse) == row["id"])
            elif kind == "datetime":
                stamp = row.get(name)
                value = stamp.strftime("%Y-%m-%d %H:%M:%S") if isinstance(stamp, datetime) else False
            elif kind == "bool":
                value = bool(row.get(name))
            elif kind in ("int", "float"):
                value = row.get(name) if row.get(name) is not None else (0 if kind == "int" else 0.0)
            else:
                value = row.get(name) if row.get(name) not in (None, "") else False
            out[name] = value
        if (STREAM_OF.get(model), row["id"]) in self.malformed_keys and "write_date" in out:
            out["write_date"] = False
        return out

    # -- the ORM methods ----------------------------------------------------------------------------------------

    def execute(self, uid: int, model: str, method: str, ids: list[int] | None, kwargs: Mapping[str, Any]) -> Any:
        """Run ``model.method(**kwargs)`` for user ``uid`` as Odoo's ORM would, or raise an :class:`OdooFault`."""
        with self.lock:
            self.calls.append((model, method))
            fault = next((f for f in self.faults if f[2] in (None, model)), None)
            if fault is not None:
                self.faults.remove(fault)
                raise OdooFault(fault[0], fault[1])
            if model not in FIELDS:
                raise OdooFault("builtins.KeyError", f"Object {model} doesn't exist")
            function = _METHODS.get(method)
            if function is None:
                raise OdooFault("builtins.AttributeError", f"The method '{model}.{method}' does not exist")
            context = {**(kwargs.get("context") or {}), "uid": uid}
            arguments = {k: v for k, v in kwargs.items() if k != "context"}
            try:
                return function(self, model, ids, context, **arguments)
            except TypeError as exc:
                raise OdooFault("builtins.TypeError", str(exc)) from None
            except ValueError as exc:
                raise OdooFault("builtins.ValueError", str(exc)) from None

    def search(self, model: str, domain: Any, context: Mapping[str, Any], order: Any = None) -> list[dict[str, Any]]:
        kinds = FIELDS[model]
        test = parse_domain(domain, model, kinds)
        spec = parse_order(order, model, kinds)
        active_test = "active" in kinds and context.get("active_test", True) is not False
        if active_test and not any(isinstance(t, list | tuple) and t and t[0] == "active" for t in domain or []):
            test = (lambda inner: lambda row: inner(row) and bool(row.get("active")))(test)
        rows = [row for row in self.tables[model].values() if test(_searchable(self, model, row))]
        return sort_rows(rows, spec)

    # -- the control API (hub.sources.emulator.EmulatorControl) ---------------------------------------------------

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        model = STREAMS[stream]
        stamp = parse_time(updated_at)
        keys: list[str] = []
        with self.lock:
            for item in records:
                values = {k: v for k, v in item.items() if k != "_key"}
                if "_key" in item:
                    key = self._key(stream, str(item["_key"]))
                    self.write(model, key, values, stamp=stamp)
                else:
                    key = self.create(model, values, stamp=stamp)
                keys.append(str(key))
        return keys

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        model = STREAMS[stream]
        with self.lock:
            row_id = self._key(stream, key)
            if "active" in FIELDS[model]:
                self.write(model, row_id, {"active": False}, stamp=parse_time(at))
                return
            del self.tables[model][row_id]
            lines = self.tables["sale.order.line"]
            for line_id in [k for k, line in lines.items() if line["order_id"] == row_id]:
                del lines[line_id]

    def malformed(self, stream: str, key: str) -> None:
        with self.lock:
            self.malformed_keys.add((stream, self._key(stream, key)))

    def throttle(self, count: int, retry_after: float) -> None:
        with self.lock:
            self.throttled, self.retry_after = count, retry_after

    def take_throttle(self) -> float | None:
        with self.lock:
            if self.throttled:
                self.throttled -= 1
                return self.retry_after
            return None

    def _key(self, stream: str, key: str) -> int:
        model = STREAMS[stream]
        try:
            row_id = int(key)
        except ValueError:
            raise KeyError(key) from None
        if row_id not in self.tables[model]:
            raise KeyError(key)
        return row_id

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": self.version,
                "databases": self.databases,
                "records": {model: len(rows) for model, rows in self.tables.items()},
                "malformed": sorted(f"{s}/{k}" for s, k in self.malformed_keys),
                "calls": len(self.calls),
            }

    def reset(self) -> None:
        with self.lock:
            self.tables = {model: {} for model in FIELDS}
            self.malformed_keys.clear()
            self._seed_company()


STREAM_OF = {model: stream for stream, model in STREAMS.items()}


def _display_name(state: OdooState, model: str, row: dict[str, Any]) -> str:
    if model == "res.partner" and row.get("parent_id") and not row.get("is_company"):
        parent = state.tables["res.partner"].get(row["parent_id"])
        if parent is not None:
            return f"{parent['name']}, {row['name']}"
    if model == "product.product" and row.get("default_code"):
        return f"[{row['default_code']}] {row['name']}"
    return str(row.get("name") or row.get("login") or row["id"])


def _commercial_name(state: OdooState, row: dict[str, Any]) -> str | None:
    """res.partner's stored ``commercial_company_name``: the company's name for it and its contacts."""
    seen = row
    while seen.get("parent_id") and not seen.get("is_company"):
        parent = state.tables["res.partner"].get(seen["parent_id"])
        if parent is None:
            break
        seen = parent
    if seen.get("is_company"):
        return str(seen["name"])
    return seen.get("company_name")


def _searchable(state: OdooState, model: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row with the computed fields a domain may name."""
    if model == "res.partner":
        return {
            **row,
            "commercial_company_name": _commercial_name(state, row),
            "display_name": _display_name(state, model, row),
        }
    if model == "sale.order":
        lines = [k for k, line in state.tables["sale.order.line"].items() if line["order_id"] == row["id"]]
        return {**row, "order_line": lines}
    if model == "product.product":
        return {**row, "lst_price": row.get("list_price"), "display_name": _display_name(state, model, row)}
    return row


# -- the ORM methods hub calls ----------------------------------------------------------------------------------------


def _fields(model: str, fields: Any) -> list[str]:
    names = [n for n in FIELDS[model] if n != "id"] if not fields else list(fields)
    for name in names:
        if name not in FIELDS[model]:
            raise ValueError(f"Invalid field {name!r} on model {model!r}")
    return [n for n in names if n != "id"]


def _search_read(
    state: OdooState,
    model: str,
    ids: Any,
    context: Mapping[str, Any],
    domain: Any = None,
    fields: Any = None,
    offset: int = 0,
    limit: int | None = None,
    order: Any = None,
) -> list[dict[str, Any]]:
    names = _fields(model, fields)
    rows = state.search(model, domain, context, order)[offset or 0 :]
    rows = rows[:limit] if limit else rows
    return [state.serve(model, row, names) for row in rows]


def _search(
    state: OdooState, model: str, ids: Any, context: Mapping[str, Any], domain: Any = None, offset: int = 0,
    limit: int | None = None, order: Any = None,
) -> list[int]:  # fmt: skip
    rows = state.search(model, domain, context, order)[offset or 0 :]
    return [row["id"] for row in (rows[:limit] if limit else rows)]


def _search_count(
    state: OdooState, model: str, ids: Any, context: Mapping[str, Any], domain: Any = None, limit: Any = None
) -> int:
    return len(state.search(model, domain, context))


def _read(
    state: OdooState, model: str, ids: Any, context: Mapping[str, Any], fields: Any = None
) -> list[dict[str, Any]]:
    names = _fields(model, fields)
    missing = [i for i in ids or [] if i not in state.tables[model]]
    if missing:
        raise OdooFault(
            "odoo.exceptions.MissingError",
            f"Record does not exist or has been deleted.\n(Record: {model}({missing[0]},), User: 2)",
        )
    return [state.serve(model, state.tables[model][i], names) for i in ids or []]


def _context_get(state: OdooState, model: str, ids: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    return {"lang": "en_US", "tz": "Europe/Oslo", "uid": context.get("uid", 2)}


_METHODS: dict[str, Any] = {
    "search_read": _search_read,
    "search": _search,
    "search_count": _search_count,
    "read": _read,
    "context_get": _context_get,
}
