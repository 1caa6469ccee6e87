"""The safe expression language of segments (``when``), trigger filters (``where``) and branches (``when``).

Config is never run as SQL or Python: the text is parsed by :mod:`ast` and every node is checked against a
whitelist, then compiled to a SQLAlchemy expression with bound parameters (``to_sql``) or walked in Python
(``evaluate``, for branches). Allowed::

    and  or  not  ==  !=  <  <=  >  >=  (chained)   x in [...]   x not in [...]   "a" in product_groups
    + - * /   ( )   "text" 12 1.5 true false null (True False None)   attribute names
    bought(group=, brand=, sku=, within=)   owns(group)   has_accessory_for(group)   consent(channel)
    in_segment(name)   event(type, within=)          (helpers read the database: segments and where only)

Both evaluations follow SQL's three-valued logic: a comparison with a missing value (NULL, None) is unknown,
``not`` of unknown is unknown, and an expression holds only when it is true, so SQL and Python agree on the
same values. ``x == null`` asks whether the value is missing. Division by zero gives a missing value.
Errors (:class:`ExpressionError`) name the 1-based column in the text; the config loader adds file, line and key.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from hub.audience.catalog import ATTRIBUTES
from hub.audience.types import AttributeSpec
from hub.db import UTCDateTime
from hub.models import (
    Consent,
    Customer,
    CustomerAttributes,
    CustomerGroup,
    Event,
    Order,
    OrderLine,
    Product,
    SegmentMembership,
)

__all__ = [
    "ATTRIBUTES_TABLE",
    "BRANCH_FACTS",
    "CUSTOMER",
    "HELPERS",
    "Expression",
    "ExpressionError",
    "customer_select",
    "parse",
    "parse_duration",
    "virtual_attributes",
]

Context = Literal["segment", "branch"]

#: The FROM every compiled expression reads: live customers left-joined with their computed attributes.
CUSTOMER = Customer.__table__.alias("audience_customer")  # type: ignore[attr-defined]
ATTRIBUTES_TABLE = CustomerAttributes.__table__.alias("audience_attributes")  # type: ignore[attr-defined]

#: Names a trigger provides to its branches besides the attributes, with their types.
BRANCH_FACTS: dict[str, str] = {
    "has_accessory_for_group": "bool",
    "product_groups": "list",
    "order_total": "float",
    "channel": "str",
    "variant": "str",
}

#: helper -> its parameters in positional order, and whether each is required.
HELPERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "bought": (("group", False), ("brand", False), ("sku", False), ("within", False)),
    "owns": (("group", True),),
    "has_accessory_for": (("group", True),),
    "consent": (("channel", True),),
    "in_segment": (("name", True),),
    "event": (("type", True), ("within", False)),
}

MAX_LENGTH = 4000
#: Deeper nesting is refused when parsed, so neither evaluation can exhaust Python's recursion limit.
MAX_DEPTH = 60
_LITERALS = {"true": True, "false": False, "null": None}
_DURATION = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "y": timedelta(days=365)}
_NUMBERS = frozenset({"int", "float"})
_KINDS = {
    "int": "a number",
    "float": "a number",
    "str": "text",
    "bool": "true/false",
    "date": "a date",
    "datetime": "a date and time",
    "list": "a list",
    "null": "null",
}
_ALLOWED = "use and/or/not, comparisons, in [...], + - * /, literals, attribute names and the helpers " + ", ".join(
    f"{name}()" for name in HELPERS
)
#: One table for both evaluations: SQLAlchemy's columns overload the same operators.
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_COMPARE_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_ARITH_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_NODE_NAMES = {
    ast.Attribute: "attribute access (.)",
    ast.Subscript: "subscripts ([...])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.IfExp: "if/else",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "f-strings",
    ast.Dict: "dicts",
    ast.Starred: "*",
    ast.Await: "await",
}


class ExpressionError(ValueError):
    """An expression outside the language, or a name, helper or type that does not fit; ``column`` is 1-based."""

    def __init__(self, column: int, message: str) -> None:
        self.column = column
        self.message = message
        super().__init__(f"column {column}: {message}")


def parse_duration(text: str) -> timedelta:
    """``12h``, ``30d``, ``2w``, ``1y`` (365 days) as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"{text!r} is not a duration: use a number above 0 and a unit, e.g. 12h, 30d, 2w, 1y")
    return int(match[1]) * _UNITS[match[2]]


def parse(
    text: str,
    *,
    context: Context,
    attributes: Collection[str] | None = None,
    segments: Collection[str] | None = None,
) -> Expression:
    """Parse ``text`` against the whitelist; ``attributes``/``segments`` None accept any name."""
    if not isinstance(text, str):
        raise ExpressionError(1, "an expression is text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(MAX_LENGTH + 1, f"an expression is at most {MAX_LENGTH} characters")
    # One line, same length: columns count in the text as written, and YAML's folded lines parse.
    flat = re.sub(r"[\r\n\t\f\v]", " ", text)
    lead = len(flat) - len(flat.lstrip(" "))
    source = flat[lead:]
    if not source.strip():
        raise ExpressionError(1, "the expression is empty")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        message = (exc.msg or "invalid syntax").removesuffix(" (<unknown>, line 1)")
        if not exc.offset or exc.lineno not in (None, 1):  # at the end of the text
            column = lead + len(source.rstrip()) + 1
            message = "the expression ends too early" if message == "invalid syntax" else message
        else:
            column = lead + exc.offset
        message = message if message.startswith("invalid syntax") else f"invalid syntax: {message}"
        raise ExpressionError(max(column, 1), message) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(lead + 1, f"invalid expression: {exc}") from None
    builder = _Builder(source, lead, context, attributes, segments)
    root = builder.build(tree.body)
    if root.type not in ("bool", "any"):
        raise ExpressionError(root.col, f"the expression must be a condition, not {_KINDS[root.type]}; {_ALLOWED}")
    return Expression(text, context, frozenset(builder.names), frozenset(builder.segments), root)


# --- the checked tree ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    col: int
    type: str


@dataclass(frozen=True, slots=True)
class _Const(_Node):
    value: Any


@dataclass(frozen=True, slots=True)
class _Name(_Node):
    name: str


@dataclass(frozen=True, slots=True)
class _Not(_Node):
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Logic(_Node):
    op: str  # and | or
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _In(_Node):
    left: _Node
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class _Contains(_Node):
    item: _Node
    container: _Name
    negated: bool


@dataclass(frozen=True, slots=True)
class _Arith(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Neg(_Node):
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    helper: str
    args: tuple[tuple[str, str], ...]  # (parameter, value) of the given arguments


class _Builder:
    """ast -> checked tree: the whitelist, name resolution and type checks."""

    def __init__(
        self,
        source: str,
        lead: int,
        context: Context,
        attributes: Collection[str] | None,
        segments: Collection[str] | None,
    ) -> None:
        self.source = source
        self.lead = lead
        self.context = context
        self.known: frozenset[str] | None = None
        if attributes is not None:
            self.known = frozenset(attributes) | (frozenset(BRANCH_FACTS) if context == "branch" else frozenset())
        self.known_segments = None if segments is None else frozenset(segments)
        self.names: set[str] = set()
        self.segments: set[str] = set()
        self.depth = 0

    def col(self, node: ast.AST) -> int:
        offset = getattr(node, "col_offset", 0)  # ast counts UTF-8 bytes
        return self.lead + len(self.source.encode()[:offset].decode(errors="ignore")) + 1

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(self.col(node), message)

    def build(self, node: ast.expr) -> _Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(node, f"the expression is nested more than {MAX_DEPTH} deep")
        try:
            return self._build(node)
        finally:
            self.depth -= 1

    def _build(self, node: ast.expr) -> _Node:
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            operands = tuple(self.condition(value, op) for value in node.values)
            return _Logic(self.col(node), "bool", op, operands)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BinOp):
            return self.arith(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            raise self.fail(node, "a list may only follow in or not in")
        what = _NODE_NAMES.get(type(node), type(node).__name__)
        raise self.fail(node, f"{what} is not allowed; {_ALLOWED}")

    def condition(self, node: ast.expr, where: str) -> _Node:
        built = self.build(node)
        if built.type not in ("bool", "any"):
            raise ExpressionError(built.col, f"{where} needs conditions on both sides, not {_KINDS[built.type]}")
        return built

    def unary(self, node: ast.UnaryOp) -> _Node:
        if isinstance(node.op, ast.Not):
            return _Not(self.col(node), "bool", self.condition(node.operand, "not"))
        if isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.build(node.operand)
            if operand.type not in (*_NUMBERS, "any"):
                raise ExpressionError(operand.col, f"- and + need a number, not {_KINDS[operand.type]}")
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(operand, _Const):
                return _Const(self.col(node), operand.type, -operand.value)
            return _Neg(self.col(node), operand.type, operand)
        raise self.fail(node, f"the operator ~ is not allowed; {_ALLOWED}")

    def arith(self, node: ast.BinOp) -> _Node:
        op = _ARITH_OPS.get(type(node.op))
        if op is None:
            raise self.fail(node, f"only + - * / are allowed in arithmetic; {_ALLOWED}")
        left, right = self.build(node.left), self.build(node.right)
        for side in (left, right):
            if side.type not in (*_NUMBERS, "any"):
                raise ExpressionError(side.col, f"{op} needs numbers, not {_KINDS[side.type]}")
        if op == "/" or "float" in (left.type, right.type):
            kind = "float"
        elif "any" in (left.type, right.type):
            kind = "any"
        else:
            kind = "int"
        return _Arith(self.col(node), kind, op, left, right)

    def constant(self, node: ast.Constant) -> _Const:
        value = node.value
        if value is None:
            return _Const(self.col(node), "null", None)
        if isinstance(value, bool):
            return _Const(self.col(node), "bool", value)
        if isinstance(value, int):
            if abs(value) >= 2**63:
                raise self.fail(node, "the number is too large")
            return _Const(self.col(node), "int", value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, "the number is too large")
            return _Const(self.col(node), "float", value)
        if isinstance(value, str):
            if "\x00" in value:
                raise self.fail(node, "text may not contain NUL characters")
            return _Const(self.col(node), "str", value)
        raise self.fail(node, f"{type(value).__name__} literals are not allowed; use text, numbers, true, false, null")

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in _LITERALS:
            value = _LITERALS[name]
            return _Const(self.col(node), "null" if value is None else "bool", value)
        if name.startswith("_"):
            raise self.fail(node, f"names starting with _ are not allowed ({name!r})")
        if self.known is not None and name not in self.known:
            raise self.fail(node, f"unknown attribute {name!r}{_suggest(name, self.known)}")
        self.names.add(name)
        kind = _name_type(name, self.context)
        return _Name(self.col(node), kind, name)

    def call(self, node: ast.Call) -> _Call:
        if not isinstance(node.func, ast.Name):
            self.build(node.func)  # names what is wrong with it (attribute access, lambda...)
            raise self.fail(node, f"only the helpers may be called: {', '.join(HELPERS)}")
        helper = node.func.id
        if helper not in HELPERS:
            raise self.fail(
                node, f"unknown helper {helper}(){_suggest(helper, HELPERS)}; helpers: {', '.join(HELPERS)}"
            )
        if self.context == "branch":
            facts = ", ".join(BRANCH_FACTS)
            raise self.fail(
                node,
                f"{helper}() reads the database and is not allowed in a branch; use attributes and the "
                f"trigger facts ({facts})",
            )
        params = HELPERS[helper]
        given: dict[str, tuple[str, ast.AST]] = {}
        if len(node.args) > len(params):
            raise self.fail(node.args[len(params)], f"{helper}() takes at most {len(params)} argument(s)")
        named = [(params[i][0], arg) for i, arg in enumerate(node.args)]
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.fail(keyword.value, "** is not allowed")
            named.append((keyword.arg, keyword.value))
        names = [param for param, _ in params]
        for param, value in named:
            if param not in names:
                raise self.fail(value, f"{helper}() has no argument {param!r}; it takes {', '.join(names)}")
            if param in given:
                raise self.fail(value, f"{helper}() got {param!r} twice")
            if isinstance(value, ast.Starred):
                raise self.fail(value, "* is not allowed")
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
                raise self.fail(value, f'{helper}(): {param} must be text in quotes, e.g. {param}="..."')
            if param == "within":
                try:
                    parse_duration(value.value)
                except ValueError as exc:
                    raise self.fail(value, str(exc)) from None
            given[param] = (value.value, value)
        for param, required in params:
            if required and param not in given:
                raise self.fail(node, f"{helper}() needs {param}")
        if helper == "in_segment":
            segment, where = given["name"]
            if self.known_segments is not None and segment not in self.known_segments:
                known = ", ".join(sorted(self.known_segments)) or "none"
                suggestion = _suggest(segment, self.known_segments)
                raise self.fail(where, f"unknown segment {segment!r}{suggestion} (segments: {known})")
            self.segments.add(segment)
        args = tuple((param, given[param][0]) for param in names if param in given)
        return _Call(self.col(node), "bool", helper, args)

    def compare(self, node: ast.Compare) -> _Node:
        left = self.build(node.left)
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if len(node.ops) > 1:
                raise self.fail(node, "in cannot be chained with other comparisons; use and")
            return self.membership(left, node.comparators[0], negated=isinstance(node.ops[0], ast.NotIn))
        parts: list[_Node] = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.build(comparator)
            if isinstance(op, ast.Is | ast.IsNot):
                if right.type != "null":
                    raise ExpressionError(right.col, "is / is not only work with null; use == or !=")
                symbol = "==" if isinstance(op, ast.Is) else "!="
            else:
                symbol = _COMPARE_OPS[type(op)]
            left_checked, right_checked = _comparable(symbol, left, right)
            parts.append(_Compare(left.col, "bool", symbol, left_checked, right_checked))
            left = right
        if len(parts) == 1:
            return parts[0]
        return _Logic(self.col(node), "bool", "and", tuple(parts))

    def membership(self, left: _Node, node: ast.expr, *, negated: bool) -> _Node:
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            values = []
            for element in node.elts:
                item = self.build(element)
                if not isinstance(item, _Const) or item.type == "null":
                    raise ExpressionError(item.col, "a list holds literal text or numbers (no names, no null)")
                _, checked = _comparable("==", left, item)
                values.append(checked.value)  # type: ignore[attr-defined]
            return _In(left.col, "bool", left, tuple(values), negated)
        container = self.build(node)
        if not isinstance(container, _Name) or container.type not in ("list", "any"):
            raise ExpressionError(container.col, 'in needs a list: ["a", "b"] or a list attribute (product_groups)')
        if left.type not in ("str", "any"):
            raise ExpressionError(left.col, f"a list attribute holds text, not {_KINDS[left.type]}")
        return _Contains(left.col, "bool", left, container, negated)


def _name_type(name: str, context: Context) -> str:
    if context == "branch" and name in BRANCH_FACTS:
        return BRANCH_FACTS[name]
    if name == "product_groups":
        return "list"
    attribute = ATTRIBUTES.get(name)
    return attribute.type if attribute is not None else "any"


def _suggest(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe(node: _Node) -> str:
    if isinstance(node, _Name):
        return f"{node.name} ({_KINDS[node.type]})"
    if isinstance(node, _Const):
        return f"{_KINDS[node.type]} {node.value!r}" if node.type != "null" else "null"
    return _KINDS[node.type]


def _comparable(op: str, left: _Node, right: _Node) -> tuple[_Node, _Node]:
    """Check ``left op right`` and convert a text literal compared with a date into a date."""
    kinds = {left.type, right.type}
    if "null" in kinds:
        if op not in ("==", "!="):
            raise ExpressionError(right.col if right.type == "null" else left.col, "null only works with == and !=")
        return left, right
    if "any" in kinds or kinds <= _NUMBERS or left.type == right.type:
        if op not in ("==", "!=") and kinds & {"bool", "list"}:
            raise ExpressionError(left.col, f"{_describe(left)} can only be compared with == and !=")
        return left, right
    for this, other in ((left, right), (right, left)):
        if this.type in ("date", "datetime") and other.type == "str" and isinstance(other, _Const):
            converted = _Const(other.col, this.type, _temporal(other, this.type))
            return (converted, right) if other is left else (left, converted)
    where = right if isinstance(right, _Const) else left
    raise ExpressionError(where.col, f"cannot compare {_describe(left)} with {_describe(right)}")


def _temporal(node: _Const, kind: str) -> date | datetime:
    text = str(node.value).strip()
    try:
        if kind == "date":
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        example = "2024-12-31" if kind == "date" else "2024-12-31 or 2024-12-31T08:00"
        raise ExpressionError(node.col, f"{text!r} is not {_KINDS[kind]} (use {example})") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- the parsed expression -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked expression: ``names`` it reads, ``segments`` it refers to (``in_segment``), and two evaluations."""

    text: str
    context: Context
    names: frozenset[str]
    segments: frozenset[str]
    _root: _Node

    def to_sql(self, now: datetime, *, plugin_attributes: Mapping[str, AttributeSpec] = {}) -> sa.ColumnElement[bool]:
        """The condition over :data:`CUSTOMER` and :data:`ATTRIBUTES_TABLE` (see :func:`customer_select`)."""
        return _Sql(now, plugin_attributes).condition(self._root)

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        """True when the expression holds for ``values`` (attributes and facts); a missing name is null."""
        return _evaluate(self._root, values) is True


def customer_select(
    expression: Expression | None, now: datetime, *, plugin_attributes: Mapping[str, AttributeSpec] = {}
) -> sa.Select[tuple[int]]:
    """``SELECT id`` of the live customers for whom ``expression`` holds (None: every live customer)."""
    query = (
        sa.select(CUSTOMER.c.id)
        .select_from(CUSTOMER.outerjoin(ATTRIBUTES_TABLE, ATTRIBUTES_TABLE.c.customer_id == CUSTOMER.c.id))
        .where(CUSTOMER.c.merged_into.is_(None))
    )
    if expression is not None:
        query = query.where(expression.to_sql(now, plugin_attributes=plugin_attributes))
    return query


def virtual_attributes(values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The catalog's ``virtual`` attributes from stored values, exactly as :meth:`Expression.to_sql` derives them.

    ``values`` holds the stored attributes and the customer's ``email``, ``phone``, ``member_no`` and
    ``birth_date``. Meant for ``read_attributes``, so that a branch sees what a segment sees.
    """

    def days(at: datetime | None) -> int | None:
        return None if at is None else (now - at) // timedelta(days=1)

    since_last = days(values.get("last_order_at"))
    mean = values.get("mean_days_between")
    expected = values.get("expected_next_order_at")
    birth = values.get("birth_date")
    return {
        "days_since_last_order": since_last,
        "days_since_first_order": days(values.get("first_order_at")),
        "days_overdue": None if expected is None else (now - expected).total_seconds() / 86400,
        "overdue_factor": None if since_last is None or not mean else since_last / float(mean),
        "age": None if birth is None else now.year - birth.year - ((now.month, now.day) < (birth.month, birth.day)),
        "has_email": bool(values.get("email")),
        "has_phone": bool(values.get("phone")),
        "is_member": bool(values.get("member_no")),
    }


# --- SQL -------------------------------------------------------------------------------------------------------------


class _Epoch(FunctionElement[float]):
    """Seconds since 1970 of a stored timestamp, on either dialect."""

    type = sa.Float()
    inherit_cache = True


@compiles(_Epoch)
def _epoch_default(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"ROUND((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0, 3)"


class _Floor(FunctionElement[int]):
    type = sa.Integer()
    inherit_cache = True


@compiles(_Floor)
def _floor_default(element: _Floor, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(_Floor, "sqlite")
def _floor_sqlite(element: _Floor, compiler: Any, **kw: Any) -> str:
    # SQLite's CAST truncates towards zero and floor() needs its math extension; shifting into the positive
    # range floors any value above -10**6 (days: 2,700 years) with one evaluation.
    return f"(CAST(({compiler.process(element.clauses, **kw)}) + 1000000 AS INTEGER) - 1000000)"


class _BirthYear(FunctionElement[int]):
    type = sa.Integer()
    inherit_cache = True


@compiles(_BirthYear)
def _birth_year_default(element: _BirthYear, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(YEAR FROM {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(_BirthYear, "sqlite")
def _birth_year_sqlite(element: _BirthYear, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%Y', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


class _MonthDay(FunctionElement[str]):
    """``MM-DD`` of a date: compared as text with today's, to know whether this year's birthday is still to come."""

    type = sa.String()
    inherit_cache = True


@compiles(_MonthDay)
def _month_day_default(element: _MonthDay, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'MM-DD')"


@compiles(_MonthDay, "sqlite")
def _month_day_sqlite(element: _MonthDay, compiler: Any, **kw: Any) -> str:
    return f"strftime('%m-%d', {compiler.process(element.clauses, **kw)})"


class _ListHas(FunctionElement[bool]):
    """A JSON list column holds the text value."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(_ListHas)
def _list_has_default(element: _ListHas, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST({column} AS JSONB) ? CAST({value} AS TEXT))"


@compiles(_ListHas, "sqlite")
def _list_has_sqlite(element: _ListHas, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


_SQL_TYPES: dict[str, Any] = {
    "int": sa.Integer(),
    "float": sa.Float(),
    "str": sa.String(),
    "bool": sa.Boolean(),
    "date": sa.Date(),
    "datetime": UTCDateTime(),
}


class _Sql:
    """Checked tree -> SQLAlchemy, every literal a bound parameter."""

    def __init__(self, now: datetime, plugins: Mapping[str, AttributeSpec]) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now
        self.plugins = plugins
        self.now_epoch = sa.bindparam("now_epoch", now.timestamp(), type_=sa.Float(), unique=True)

    def condition(self, node: _Node) -> sa.ColumnElement[bool]:
        if isinstance(node, _Const):
            if node.type != "bool":
                raise ExpressionError(node.col, "expected a condition")
            return sa.true() if node.value else sa.false()
        if isinstance(node, _Logic):
            parts = [self.condition(operand) for operand in node.operands]
            return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        if isinstance(node, _Not):
            return sa.not_(self.condition(node.operand))
        if isinstance(node, _Compare):
            return self.compare(node)
        if isinstance(node, _In):
            left = self.value(node.left)
            values = [self.bind(value) for value in node.values]
            return left.not_in(values) if node.negated else left.in_(values)
        if isinstance(node, _Contains):
            item = self.value(node.item)
            has: sa.ColumnElement[bool] = _ListHas(self.column(node.container), item)
            if not isinstance(node.item, _Const):  # a missing item is unknown, not absent (as in Python)
                has = sa.type_coerce(sa.case((item.is_(None), sa.null()), else_=has), sa.Boolean())
            return sa.not_(has) if node.negated else has
        if isinstance(node, _Call):
            return self.call(node)
        value = self.value(node)
        return value if isinstance(value.type, sa.Boolean) else value.is_(sa.true())

    def compare(self, node: _Compare) -> sa.ColumnElement[bool]:
        left, right = node.left, node.right
        if right.type == "null" or left.type == "null":
            other = left if right.type == "null" else right
            if other.type == "null":
                return sa.true() if node.op == "==" else sa.false()
            value = self.value(other)
            return value.is_(None) if node.op == "==" else value.is_not(None)
        return _OPERATORS[node.op](self.value(left), self.value(right))  # type: ignore[no-any-return]

    def bind(self, value: Any) -> sa.BindParameter[Any]:
        kind = _value_type(value)
        return sa.bindparam(None, value, type_=_SQL_TYPES[kind])

    def value(self, node: _Node) -> sa.ColumnElement[Any]:
        if isinstance(node, _Const):
            if node.type == "null":
                return sa.null()
            return self.bind(node.value)
        if isinstance(node, _Name):
            return self.column(node)
        if isinstance(node, _Neg):
            return -self.value(node.operand)
        if isinstance(node, _Arith):
            a, b = self.value(node.left), self.value(node.right)
            return _divide(a, b) if node.op == "/" else _OPERATORS[node.op](a, b)  # type: ignore[no-any-return]
        return self.condition(node)

    def column(self, node: _Name) -> sa.ColumnElement[Any]:
        name = node.name
        attribute = ATTRIBUTES.get(name)
        if attribute is not None:
            if attribute.source == "attributes":
                return ATTRIBUTES_TABLE.c[name]
            if attribute.source == "customer":
                return CUSTOMER.c[name]
            return self.virtual(name)
        spec = self.plugins.get(name)
        if spec is None:
            known = set(ATTRIBUTES) | set(self.plugins)
            raise ExpressionError(node.col, f"unknown attribute {name!r}{_suggest(name, known)}")
        field = ATTRIBUTES_TABLE.c.extra[name]
        if spec.type == "int":
            return field.as_integer()
        if spec.type == "float":
            return field.as_float()
        if spec.type == "bool":
            return field.as_boolean()
        return field.as_string()  # text; dates and times as ISO text, which sorts like the values

    def virtual(self, name: str) -> sa.ColumnElement[Any]:
        attrs, cust = ATTRIBUTES_TABLE.c, CUSTOMER.c
        if name == "days_since_last_order":
            return self.days_since(attrs.last_order_at)
        if name == "days_since_first_order":
            return self.days_since(attrs.first_order_at)
        if name == "days_overdue":
            return _divide(self.now_epoch - _Epoch(attrs.expected_next_order_at), _DAY)
        if name == "overdue_factor":
            return _divide(self.days_since(attrs.last_order_at), attrs.mean_days_between)
        if name == "age":
            to_come = _MonthDay(cust.birth_date) > sa.bindparam("now_mmdd", f"{self.now:%m-%d}", unique=True)
            year = sa.bindparam("now_year", self.now.year, type_=sa.Integer(), unique=True)
            return year - _BirthYear(cust.birth_date) - sa.case((to_come, 1), else_=0)
        column = {"has_email": cust.email, "has_phone": cust.phone, "is_member": cust.member_no}[name]
        return sa.and_(column.is_not(None), column != "")

    def days_since(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        # The tiny epsilon absorbs float error at an exact day boundary (julianday carries milliseconds).
        return _Floor(_divide(self.now_epoch - _Epoch(column), _DAY) + sa.literal_column("1e-9"))

    def call(self, node: _Call) -> sa.ColumnElement[bool]:
        args = dict(node.args)
        customer_id = CUSTOMER.c.id
        if node.helper == "bought":
            orders, lines, products = Order.__table__, OrderLine.__table__, Product.__table__  # type: ignore[attr-defined]
            query = (
                sa.select(sa.literal_column("1"))
                .select_from(orders.join(lines, lines.c.order_id == orders.c.id))
                .where(orders.c.customer_id == customer_id, orders.c.is_return.is_(False))
            )
            if "group" in args or "brand" in args:
                query = query.join(products, products.c.sku == lines.c.sku)
            if "group" in args:
                query = query.where(products.c.product_group == self.bind(args["group"]))
            if "brand" in args:
                query = query.where(products.c.brand == self.bind(args["brand"]))
            if "sku" in args:
                query = query.where(lines.c.sku == self.bind(args["sku"]))
            if "within" in args:
                query = query.where(orders.c.placed_at >= self.since(args["within"]))
            return query.exists()
        if node.helper in ("owns", "has_accessory_for"):
            groups = CustomerGroup.__table__  # type: ignore[attr-defined]
            query = sa.select(sa.literal_column("1")).where(
                groups.c.customer_id == customer_id, groups.c.product_group == self.bind(args["group"])
            )
            if node.helper == "has_accessory_for":
                query = query.where(groups.c.accessory_owned.is_(True))
            return query.exists()
        if node.helper == "consent":
            consent = Consent.__table__  # type: ignore[attr-defined]
            return (
                sa.select(sa.literal_column("1"))
                .where(
                    consent.c.customer_id == customer_id,
                    consent.c.channel == self.bind(args["channel"]),
                    consent.c.status == "opt_in",
                )
                .exists()
            )
        if node.helper == "in_segment":
            membership = SegmentMembership.__table__  # type: ignore[attr-defined]
            return (
                sa.select(sa.literal_column("1"))
                .where(membership.c.customer_id == customer_id, membership.c.segment == self.bind(args["name"]))
                .exists()
            )
        events = Event.__table__  # type: ignore[attr-defined]
        query = sa.select(sa.literal_column("1")).where(
            events.c.customer_id == customer_id, events.c.type == self.bind(args["type"])
        )
        if "within" in args:
            query = query.where(events.c.at >= self.since(args["within"]))
        return query.exists()

    def since(self, within: str) -> sa.BindParameter[datetime]:
        return sa.bindparam(None, self.now - parse_duration(within), type_=UTCDateTime())


_DAY = sa.literal_column("86400.0", sa.Float())


def _divide(a: sa.ColumnElement[Any], b: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
    """True division whatever the operands' types; dividing by zero gives NULL, as in Python's evaluation."""
    divisor = sa.func.nullif(sa.cast(b, sa.Float()), sa.literal_column("0.0"))
    return sa.cast(a, sa.Float()).op("/", return_type=sa.Float())(divisor)


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return "str"


# --- Python ----------------------------------------------------------------------------------------------------------


def _evaluate(node: _Node, values: Mapping[str, Any]) -> Any:
    """Three-valued: None is unknown, as NULL in SQL."""
    if isinstance(node, _Const):
        return node.value
    if isinstance(node, _Name):
        value = values.get(node.name)
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if node.type == "datetime" and isinstance(value, str):
            return _temporal(_Const(node.col, "str", value), "datetime")
        if node.type == "date" and isinstance(value, str):
            return date.fromisoformat(value)
        return value
    if isinstance(node, _Logic):
        results = [_evaluate(operand, values) for operand in node.operands]
        if node.op == "and":
            return False if any(r is False for r in results) else (None if None in results else True)
        return True if any(r is True for r in results) else (None if None in results else False)
    if isinstance(node, _Not):
        result = _evaluate(node.operand, values)
        return None if result is None else not result
    if isinstance(node, _Compare):
        if node.left.type == "null" or node.right.type == "null":
            other = node.left if node.right.type == "null" else node.right
            missing = other.type == "null" or _evaluate(other, values) is None
            return missing if node.op == "==" else not missing
        a, b = _evaluate(node.left, values), _evaluate(node.right, values)
        if a is None or b is None:
            return None
        try:
            return _OPERATORS[node.op](a, b)
        except TypeError:  # values of a type the expression could not know (a plugin's, a fact): unknown
            return None
    if isinstance(node, _In):
        if not node.values:  # nothing is in an empty list, not even null (as in SQL)
            return node.negated
        value = _evaluate(node.left, values)
        if value is None:
            return None
        return (value in node.values) != node.negated
    if isinstance(node, _Contains):
        item, container = _evaluate(node.item, values), _evaluate(node.container, values)
        if item is None or container is None:
            return None
        return (item in container) != node.negated
    if isinstance(node, _Neg):
        value = _evaluate(node.operand, values)
        return None if value is None else -value
    if isinstance(node, _Arith):
        a, b = _evaluate(node.left, values), _evaluate(node.right, values)
        if a is None or b is None:
            return None
        try:
            if node.op == "/":
                return None if b == 0 else float(a) / float(b)
            return _OPERATORS[node.op](a, b)
        except (TypeError, ValueError):
            return None
    assert isinstance(node, _Call)
    raise ExpressionError(node.col, f"{node.helper}() reads the database: it is evaluated in SQL only")
