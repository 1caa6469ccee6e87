"""The emulator's GraphQL: the schema (``schema.graphql``, built by graphql-core), root resolvers, query cost and
bulk operations.

**Cost**, as Shopify documents it: a scalar or enum costs 0, an object 1, a connection ``2 + first x`` the cost of
one of its nodes (a node is an object: 1 plus its fields), a list of objects counts one object (its length is not
known in advance). A mutation costs 10. A query runs only when the bucket holds its *requested* cost; the bucket
is then charged the *actual* cost, which counts the nodes each connection returned (Shopify's refund of the
difference), so a page of orders with two lines each is charged for two lines, not for ``first``.

**Bulk operations** validate the query as Shopify does (one root connection, at most five connections, nesting two
deep, no connection inside a list field, a nested connection's parent selects ``id``), then run it on a thread
over a snapshot of the records with every connection unpaginated, and flatten the result to JSONL: each
connection node on its own line, children with ``__parentId``, right after their parent (``groupObjects``; from
2026-01 the default is not to group, and then every root comes first).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
    value_from_ast_untyped,
)

from hub_plugins.shopify._records import iso
from hub_plugins.shopify._state import GID_TYPES, BulkOp, ShopState
from hub_plugins.shopify._views import VIEWS, RefundView, connection, matches, search

MUTATION_COST = 10
MAX_CONNECTIONS = 5
_SORT_TIMES = {"UPDATED_AT": "updated_at", "CREATED_AT": "created_at", "PROCESSED_AT": "created_at"}
_SEARCH_TIMES = {"updated_at": "updated_at", "created_at": "created_at"}
_ROOTS = {
    "customers": "customers",
    "orders": "orders",
    "products": "products",
    "abandonedCheckouts": "checkouts",
    "inventoryItems": "inventory",
}
_TYPE_STREAMS = {kind: stream for stream, kind in GID_TYPES.items()}


@cache
def schema_for(version: str) -> GraphQLSchema:
    """The schema of an API version: ``groupObjects`` exists from 2025-10."""
    text = resources.files("hub_plugins.shopify").joinpath("schema.graphql").read_text(encoding="utf-8")
    group = ", groupObjects: Boolean" if version >= "2025-10" else ""
    return build_schema(text.replace("GROUP_OBJECTS", group))


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0


class Root:
    """The root value of every query: the top-level fields read the shop's state."""

    def __init__(self, state: ShopState, version: str, base_url: str) -> None:
        self.state = state
        self.version = version
        self.base_url = base_url

    # ------------------------------------------------------------------------------------------ queries

    def shop(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        return {"name": "hub emulator", "myshopifyDomain": self.state.shop_domain, "currencyCode": "NOK"}

    def _list(
        self, info: GraphQLResolveInfo, stream: str, args: dict[str, Any], times: dict[str, str] = _SEARCH_TIMES
    ) -> dict[str, Any]:
        terms = search(args.get("query"))
        records = [r for r in self._records(info, stream) if matches(r, terms, times)]
        sort_field = _SORT_TIMES.get(args.get("sortKey") or "ID")

        def key(record: dict[str, Any]) -> tuple[Any, ...]:
            if sort_field is None:
                return (record["id"],)
            return (_seconds(record.get(sort_field)), record["id"])

        view = VIEWS[stream]
        return connection(
            info,
            records,
            key,
            lambda r: view(self.state, r),
            first=args.get("first"),
            after=args.get("after"),
            reverse=bool(args.get("reverse")),
        )

    def _records(self, info: GraphQLResolveInfo, stream: str) -> list[dict[str, Any]]:
        snapshot = info.context.get("snapshot")
        return snapshot if snapshot is not None else self.state.snapshot(stream)

    def customers(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        return self._list(info, "customers", args)

    def orders(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        return self._list(info, "orders", args)

    def products(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        return self._list(info, "products", args)

    def abandonedCheckouts(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        return self._list(info, "checkouts", args)

    def inventoryItems(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        return self._list(info, "inventory", args)

    def deletionEvents(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        wanted = set(args.get("subjectTypes") or ["COLLECTION", "PRODUCT"])
        terms = search(args.get("query"))
        with self.state.lock:
            events = [e for e in self.state.deletions if e["type"] in wanted]
        events = [e for e in events if matches(e, terms, {"occurred_at": "occurred_at"})]
        numbered = list(enumerate(events))
        by_time = (args.get("sortKey") or "ID") == "CREATED_AT"

        def key(pair: tuple[int, dict[str, Any]]) -> tuple[Any, ...]:
            return (pair[1]["occurred_at"].timestamp(), pair[0]) if by_time else (pair[0],)

        def wrap(pair: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            event = pair[1]
            return {
                "subjectId": event["subject_id"],
                "subjectType": event["type"],
                "occurredAt": iso(event["occurred_at"]),
            }

        return connection(info, numbered, key, wrap, first=args.get("first"), after=args.get("after"))

    def node(self, info: GraphQLResolveInfo, id: str) -> Any:
        return self._node(id)

    def nodes(self, info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
        return [self._node(ident) for ident in ids]

    def _node(self, ident: str) -> Any:
        parts = ident.split("/")
        if len(parts) != 5 or not ident.startswith("gid://shopify/"):
            raise GraphQLError(f"Invalid global id '{ident}'")
        kind, number = parts[3], parts[4].split("?")[0]
        if not number.isdigit():
            raise GraphQLError(f"Invalid global id '{ident}'")
        with self.state.lock:
            if kind in _TYPE_STREAMS:
                stream = _TYPE_STREAMS[kind]
                record = self.state.records[stream].get(int(number))
                return VIEWS[stream](self.state, record) if record is not None else None
            if kind == "Refund":
                for order in self.state.records["orders"].values():
                    for refund in order.get("refunds") or []:
                        if refund["id"] == int(number):
                            return RefundView(refund, order)
                return None
            if kind == "BulkOperation":
                op = self.state.bulk_ops.get(int(number))
                return BulkView(op, self.state) if op is not None else None
        return None

    def currentBulkOperation(self, info: GraphQLResolveInfo, type: str = "QUERY") -> Any:
        op = self.state.current_bulk()
        return BulkView(op, self.state) if op is not None and type == "QUERY" else None

    # ------------------------------------------------------------------------------------------ mutations

    def bulkOperationRunQuery(self, info: GraphQLResolveInfo, query: str, groupObjects: bool | None = None) -> Any:
        schema = schema_for(self.version)
        problem = bulk_problem(schema, query)
        if problem is not None:
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": problem, "code": "INVALID"}]}
        running = self.state.running_bulk()
        if running is not None and self.version < "2026-01":
            message = f"A bulk query operation for this app and shop is already in progress: {running.gid}."
            return {
                "bulkOperation": None,
                "userErrors": [{"field": None, "message": message, "code": "OPERATION_IN_PROGRESS"}],
            }
        group = groupObjects if groupObjects is not None else self.version < "2026-01"
        op = self.state.new_bulk(query, self.base_url)
        thread = threading.Thread(target=run_bulk, args=(self.state, schema, op, group), daemon=True)
        thread.start()
        return {"bulkOperation": BulkView(op, self.state), "userErrors": []}


class BulkView:
    __typename = "BulkOperation"

    def __init__(self, op: BulkOp, state: ShopState) -> None:
        self.op = op
        self.type = "QUERY"
        self.id = op.gid
        self.status = op.status
        self.errorCode = op.error_code
        self.createdAt = iso(op.created_at)
        self.completedAt = iso(op.completed_at)
        self.objectCount = str(len(op.lines))
        self.rootObjectCount = str(op.root_count)
        self.fileSize = str(sum(len(line) + 1 for line in op.lines)) if op.status == "COMPLETED" else None
        self.query = op.query
        link = f"{op.base_url}/_bulk/{op.number}.jsonl?token={op.token}"
        self.url = link if op.status == "COMPLETED" and op.lines else None
        self.partialDataUrl = link if op.status == "FAILED" and op.lines else None


# ------------------------------------------------------------------------------------------------ cost


def query_cost(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: dict
) -> int:
    """The requested cost of ``operation`` under Shopify's rules (see the module docstring)."""
    if operation.operation.value == "mutation":
        return MUTATION_COST
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.query_type
    assert root is not None
    return _selection_cost(schema, operation.selection_set, root, fragments, variables)


def _selection_cost(
    schema: GraphQLSchema,
    selections: SelectionSetNode | None,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    if selections is None:
        return 0
    total = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            total += _field_cost(schema, selection, parent, fragments, variables)
        elif isinstance(selection, InlineFragmentNode):
            kind = schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
            total += _selection_cost(schema, selection.selection_set, kind, fragments, variables)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            fragment = fragments[selection.name.value]
            kind = schema.get_type(fragment.type_condition.name.value)
            total += _selection_cost(schema, fragment.selection_set, kind, fragments, variables)
    return total


def _field_cost(
    schema: GraphQLSchema,
    field: FieldNode,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    name = field.name.value
    fields = getattr(parent, "fields", {})
    if name.startswith("__") or name not in fields:
        return 0
    named = get_named_type(fields[name].type)
    if is_leaf_type(named) or name == "pageInfo":
        return 0
    if named.name.endswith("Connection"):
        first = 0
        for argument in field.arguments or ():
            if argument.name.value == "first":
                first = int(value_from_ast_untyped(argument.value, variables) or 0)
        node_type = get_named_type(named.fields["nodes"].type)  # type: ignore[union-attr]
        node_cost = 0
        for part in field.selection_set.selections if field.selection_set else ():
            if isinstance(part, FieldNode) and part.name.value == "nodes":
                node_cost = max(
                    node_cost, 1 + _selection_cost(schema, part.selection_set, node_type, fragments, variables)
                )
            elif isinstance(part, FieldNode) and part.name.value == "edges" and part.selection_set:
                for inner in part.selection_set.selections:
                    if isinstance(inner, FieldNode) and inner.name.value == "node":
                        cost = 1 + _selection_cost(schema, inner.selection_set, node_type, fragments, variables)
                        node_cost = max(node_cost, cost)
        return 2 + first * node_cost
    return 1 + _selection_cost(schema, field.selection_set, named, fragments, variables)


def actual_cost(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, data: dict[str, Any] | None
) -> int:
    """The cost of what a query returned: each connection counts the nodes it held, not ``first``."""
    if operation.operation.value == "mutation":
        return MUTATION_COST
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    assert schema.query_type is not None
    return _data_cost(schema, operation.selection_set, schema.query_type, fragments, data)


def _data_cost(
    schema: GraphQLSchema,
    selections: SelectionSetNode | None,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    data: Any,
) -> int:
    if selections is None or not isinstance(data, dict):
        return 0
    total = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            fields = getattr(parent, "fields", {})
            if name.startswith("__") or name not in fields:
                continue
            named = get_named_type(fields[name].type)
            value = data.get(selection.alias.value if selection.alias else name)
            if is_leaf_type(named) or name == "pageInfo" or value is None:
                continue
            if named.name.endswith("Connection"):
                node_type = get_named_type(named.fields["nodes"].type)  # type: ignore[union-attr]
                total += 2
                for part in selection.selection_set.selections if selection.selection_set else ():
                    if not isinstance(part, FieldNode):
                        continue
                    if part.name.value == "nodes":
                        for node in value.get("nodes") or []:
                            total += 1 + _data_cost(schema, part.selection_set, node_type, fragments, node)
                    elif part.name.value == "edges" and part.selection_set:
                        inner = next(
                            (
                                f
                                for f in part.selection_set.selections
                                if isinstance(f, FieldNode) and f.name.value == "node"
                            ),
                            None,
                        )
                        for edge in value.get("edges") or []:
                            sub = inner.selection_set if inner else None
                            total += 1 + _data_cost(schema, sub, node_type, fragments, edge.get("node"))
            elif isinstance(value, list):
                total += sum(1 + _data_cost(schema, selection.selection_set, named, fragments, item) for item in value)
            else:
                total += 1 + _data_cost(schema, selection.selection_set, named, fragments, value)
        elif isinstance(selection, InlineFragmentNode):
            kind = schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
            if not selection.type_condition or data.get("__typename", kind.name) == kind.name or True:
                total += _data_cost(schema, selection.selection_set, kind, fragments, data)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            fragment = fragments[selection.name.value]
            kind = schema.get_type(fragment.type_condition.name.value)
            total += _data_cost(schema, fragment.selection_set, kind, fragments, data)
    return total


# ------------------------------------------------------------------------------------------------ bulk


def bulk_problem(schema: GraphQLSchema, query: str) -> str | None:
    """Why Shopify would refuse ``query`` as a bulk query, or None."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return f"Invalid bulk query: {exc.message}"
    errors = validate(schema, document)
    if errors:
        return "Invalid bulk query: " + "; ".join(e.message for e in errors[:3])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return "Bulk queries must contain exactly one query operation."
    roots = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(roots) != 1:
        return "Bulk queries must select exactly one top-level field."
    if roots[0].name.value in ("node", "nodes"):
        return "The top-level node and nodes fields can't be used in bulk queries."
    assert schema.query_type is not None
    counted = {"connections": 0}
    problem = _walk_bulk(roots[0], schema.query_type, depth=0, in_list=False, counted=counted)
    if problem is None and counted["connections"] == 0:
        problem = "Bulk queries must contain at least one connection."
    if problem is None and counted["connections"] > MAX_CONNECTIONS:
        problem = f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    return problem


def _walk_bulk(field: FieldNode, parent: Any, *, depth: int, in_list: bool, counted: dict[str, int]) -> str | None:
    definition = parent.fields.get(field.name.value)
    if definition is None:
        return None
    named = get_named_type(definition.type)
    if is_leaf_type(named) or field.selection_set is None:
        return None
    is_connection = named.name.endswith("Connection")
    if is_connection:
        if in_list:
            return "Queries that contain a connection field within a list field are not currently supported."
        counted["connections"] += 1
        depth += 1
        if depth > 2:
            return "Bulk queries cannot contain connections nested more than two levels deep."
    kind = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
    listed = in_list or (isinstance(kind, GraphQLList) and not is_connection)
    for selection in field.selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        child_parent = named
        if is_connection and selection.name.value in ("edges", "nodes"):
            child_parent = get_named_type(named.fields[selection.name.value].type)  # type: ignore[union-attr]
        if isinstance(child_parent, GraphQLObjectType) and child_parent.name.endswith("Edge"):
            for inner in selection.selection_set.selections if selection.selection_set else ():
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    node_type = get_named_type(child_parent.fields["node"].type)
                    problem = _walk_node(inner, node_type, depth=depth, in_list=listed, counted=counted)
                    if problem:
                        return problem
            continue
        if is_connection and selection.name.value == "nodes":
            problem = _walk_node(selection, child_parent, depth=depth, in_list=listed, counted=counted)
        else:
            problem = _walk_bulk(selection, child_parent, depth=depth, in_list=listed, counted=counted)
        if problem:
            return problem
    return None


def _walk_node(node: FieldNode, node_type: Any, *, depth: int, in_list: bool, counted: dict[str, int]) -> str | None:
    selections = [s for s in (node.selection_set.selections if node.selection_set else ()) if isinstance(s, FieldNode)]
    names = {s.name.value for s in selections}
    for selection in selections:
        definition = node_type.fields.get(selection.name.value)
        if definition is None:
            continue
        if get_named_type(definition.type).name.endswith("Connection") and "id" not in names:
            return (
                "The parent 'node' field for a nested connection must select the 'id' field without an alias "
                f"and must be of 'ID' return type. Connection fields without 'id': {selection.name.value}."
            )
        problem = _walk_bulk(selection, node_type, depth=depth, in_list=in_list, counted=counted)
        if problem:
            return problem
    return None


def run_bulk(state: ShopState, schema: GraphQLSchema, op: BulkOp, group: bool) -> None:
    """Run a bulk query over a snapshot and keep its JSONL lines (the thread behind ``bulkOperationRunQuery``)."""
    op.status = "RUNNING"
    if state.bulk_delay:
        time.sleep(state.bulk_delay)
    document = parse(op.query)
    root_field = next(s for s in document.definitions[0].selection_set.selections if isinstance(s, FieldNode))  # type: ignore[attr-defined]
    stream = _ROOTS.get(root_field.name.value)
    context = {"bulk": True, "snapshot": state.snapshot(stream) if stream else None}
    result = execute(schema, document, root_value=Root(state, "bulk", op.base_url), context_value=context)
    with state.lock:
        if result.errors or result.data is None:
            op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
        else:
            connection_value = result.data[root_field.alias.value if root_field.alias else root_field.name.value]
            roots, lines = _flatten(connection_value, group)
            op.lines, op.root_count = lines, roots
            if state.bulk_fail_next:
                state.bulk_fail_next = False
                op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
                op.lines = lines[: len(lines) // 2]
            else:
                op.status = "COMPLETED"
        op.completed_at = datetime.now(UTC).replace(microsecond=0)
        op.expires = time.monotonic() + state.bulk_url_ttl


def _nodes(connection_value: dict[str, Any]) -> list[dict[str, Any]]:
    if connection_value.get("nodes") is not None:
        return list(connection_value["nodes"])
    return [edge["node"] for edge in connection_value.get("edges") or []]


def _flatten(connection_value: dict[str, Any], group: bool) -> tuple[int, list[bytes]]:
    roots = _nodes(connection_value)
    later: list[bytes] = []
    lines: list[bytes] = []

    def emit(node: dict[str, Any], parent: str | None, out: list[bytes]) -> None:
        row, children = {}, []
        for key, value in node.items():
            if isinstance(value, dict) and ("edges" in value or "nodes" in value):
                children.extend(_nodes(value))
            else:
                row[key] = value
        if parent is not None:
            row["__parentId"] = parent
        out.append(orjson.dumps(row))
        for child in children:
            emit(child, node.get("id"), out if group else later)

    for node in roots:
        emit(node, None, lines)
    return len(roots), lines + later
