"""The GraphQL documents the Shopify source sends: one page query per stream, its bulk twin, and the follow-ups.

Page sizes are chosen so that one page stays under Shopify's 1000-point cap on a query's requested cost (objects
cost 1, a connection ``2 + first x its node``): orders are the dearest (their lines and refunds are nested
connections), customers the cheapest. A nested connection longer than its page (an order with 40 lines) is
completed with :data:`CONNECTION_PAGE` queries on the parent's id, so no page size ever truncates a record.
"""

from __future__ import annotations

from dataclasses import dataclass

_MONEY = "{ shopMoney { amount currencyCode } }"
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"

CUSTOMER = """
id firstName lastName email phone state tags locale createdAt updatedAt
emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
smsMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt consentCollectedFrom }
defaultAddress { address1 city zip countryCodeV2 }
"""

ORDER_LINE = f"id sku title quantity originalUnitPriceSet {_MONEY} totalDiscountSet {_MONEY}"

REFUND_LINE = f"id quantity lineItem {{ id sku }} subtotalSet {_MONEY}"

_ORDER_HEAD = f"""
id name email phone createdAt updatedAt processedAt cancelledAt currencyCode displayFinancialStatus discountCodes
sourceName totalPriceSet {_MONEY} currentTotalPriceSet {_MONEY} totalDiscountsSet {_MONEY}
customer {{ id email phone firstName lastName }}
"""

PRODUCT_HEAD = "id title handle productType vendor tags status createdAt updatedAt"
VARIANT = "id sku title price barcode updatedAt inventoryItem { id }"

CHECKOUT_HEAD = f"""
id name createdAt updatedAt completedAt abandonedCheckoutUrl totalPriceSet {_MONEY}
customer {{ id email phone firstName lastName }}
"""
CHECKOUT_LINE = f"id sku title quantity originalUnitPriceSet {_MONEY}"

INVENTORY_HEAD = "id sku updatedAt variant { id }"
INVENTORY_LEVEL = 'id updatedAt location { id name } quantities(names: ["available"]) { name quantity }'


@dataclass(frozen=True, slots=True)
class Nested:
    """A connection inside a node: its field, its node fields, and how many come with the parent's page."""

    field: str
    fields: str
    first: int

    def page(self) -> str:
        return f"{self.field}(first: {self.first}) {{ {_PAGE_INFO} nodes {{ {self.fields} }} }}"

    def bulk(self) -> str:
        return f"{self.field} {{ edges {{ node {{ {self.fields} }} }} }}"


@dataclass(frozen=True, slots=True)
class StreamQuery:
    """How one stream is read: its root field, fields, nested connections, sort key and default page size.

    ``sort_key`` is None where Shopify cannot sort by update time (abandoned checkouts, inventory items): those
    streams are read in id order and their cursor moves to the time the read started (see the source).
    """

    root: str
    head: str
    nested: tuple[Nested, ...]
    sort_key: str | None
    page_size: int
    node_type: str

    def page(self) -> str:
        sort = f", sortKey: {self.sort_key}" if self.sort_key else ""
        body = " ".join([self.head, *(n.page() for n in self.nested), self._extra(bulk=False)])
        return (
            "query Page($first: Int!, $after: String, $query: String) {\n"
            f"  {self.root}(first: $first, after: $after, query: $query{sort}) {{\n"
            f"    {_PAGE_INFO}\n    edges {{ cursor node {{ {body} }} }}\n  }}\n}}"
        )

    def node(self) -> str:
        """One record by id, with the same fields as a page: for a webhook that names a record (refunds/create)."""
        body = " ".join([self.head, *(n.page() for n in self.nested), self._extra(bulk=False)])
        return f"query One($id: ID!) {{\n  node(id: $id) {{ ... on {self.node_type} {{ {body} }} }}\n}}"

    def bulk(self) -> str:
        body = " ".join([self.head, *(n.bulk() for n in self.nested), self._extra(bulk=True)])
        return f"{{ {self.root} {{ edges {{ node {{ {body} }} }} }} }}"

    def _extra(self, *, bulk: bool) -> str:
        if self.root != "orders":
            return ""
        # A bulk query may not hold a connection inside a list field, so its refunds come without their lines;
        # the source fetches those by refund id (REFUND_LINES) for the few orders that have any.
        if bulk:
            return "refunds { id createdAt }"
        return f"refunds {{ id createdAt {REFUND_LINES_NESTED.page()} }}"


REFUND_LINES_NESTED = Nested("refundLineItems", REFUND_LINE, 5)

STREAMS: dict[str, StreamQuery] = {
    "customers": StreamQuery("customers", CUSTOMER, (), "UPDATED_AT", 100, "Customer"),
    "orders": StreamQuery("orders", _ORDER_HEAD, (Nested("lineItems", ORDER_LINE, 10),), "UPDATED_AT", 8, "Order"),
    "products": StreamQuery("products", PRODUCT_HEAD, (Nested("variants", VARIANT, 20),), "UPDATED_AT", 20, "Product"),
    "checkouts": StreamQuery(
        "abandonedCheckouts", CHECKOUT_HEAD, (Nested("lineItems", CHECKOUT_LINE, 20),), None, 8, "AbandonedCheckout"
    ),
    "inventory": StreamQuery(
        "inventoryItems", INVENTORY_HEAD, (Nested("inventoryLevels", INVENTORY_LEVEL, 10),), None, 25, "InventoryItem"
    ),
}


def connection_page(node_type: str, nested: Nested) -> str:
    """The rest of one node's nested connection, 100 at a time: for records longer than their page."""
    return (
        "query Rest($id: ID!, $after: String) {\n"
        f"  node(id: $id) {{ ... on {node_type} {{ {nested.field}(first: 100, after: $after) "
        f"{{ {_PAGE_INFO} nodes {{ {nested.fields} }} }} }} }}\n}}"
    )


REFUND_LINES = (
    "query RefundLines($ids: [ID!]!) {\n"
    f"  nodes(ids: $ids) {{ ... on Refund {{ id {REFUND_LINES_NESTED.page()} }} }}\n}}"
)
REFUND_BATCH = 25  # refunds per REFUND_LINES query: 25 x (1 + 2 + 5 x 4) = 575 points

DELETIONS = """
query Deletions($first: Int!, $after: String, $query: String) {
  deletionEvents(first: $first, after: $after, query: $query, subjectTypes: [PRODUCT], sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { subjectId subjectType occurredAt }
  }
}"""

SHOP = "query Shop { shop { name myshopifyDomain currencyCode } }"

BULK_RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { field message }
  }
}"""

BULK_RUN_GROUPED = BULK_RUN.replace("(query: $query)", "(query: $query, groupObjects: true)")

_BULK_FIELDS = "id status errorCode objectCount rootObjectCount url partialDataUrl createdAt completedAt query"
BULK_NODE = f"query Bulk($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {_BULK_FIELDS} }} }} }}"
BULK_CURRENT = f"query Current {{ currentBulkOperation(type: QUERY) {{ {_BULK_FIELDS} }} }}"


def bulk_mutation(api_version: str) -> str:
    """``groupObjects: true`` (children right after their parent) where the version has the argument (2025-10+);
    earlier versions always group."""
    return BULK_RUN_GROUPED if api_version >= "2025-10" else BULK_RUN
