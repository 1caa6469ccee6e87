"""The unified customer model. Importing this package registers every table on ``SQLModel.metadata``."""

from hub.models.commerce import Cart, Order, OrderLine, Product, ProductRelation, Store
from hub.models.customer import Consent, ConsentEvent, Customer, CustomerMerge, Identity
from hub.models.engagement import Event
from hub.models.runs import Reject, SyncRun, SyncState

__all__ = [
    "Cart",
    "Consent",
    "ConsentEvent",
    "Customer",
    "CustomerMerge",
    "Event",
    "Identity",
    "Order",
    "OrderLine",
    "Product",
    "ProductRelation",
    "Reject",
    "Store",
    "SyncRun",
    "SyncState",
]
