"""The unified customer model. Importing this package registers every table on ``SQLModel.metadata``."""

from hub.models.commerce import Cart, Order, OrderLine, Product, ProductRelation, Store
from hub.models.customer import Consent, ConsentEvent, Customer, CustomerMerge, Identity
from hub.models.delivery import DestinationState, Message, OutboundState, OutboxAudit
from hub.models.engagement import Event
from hub.models.runs import Reject, SyncRun, SyncState

__all__ = [
    "Cart",
    "Consent",
    "ConsentEvent",
    "Customer",
    "CustomerMerge",
    "DestinationState",
    "Event",
    "Identity",
    "Message",
    "Order",
    "OrderLine",
    "OutboundState",
    "OutboxAudit",
    "Product",
    "ProductRelation",
    "Reject",
    "Store",
    "SyncRun",
    "SyncState",
]
