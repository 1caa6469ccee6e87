"""The unified customer model. Importing this package registers every table on ``SQLModel.metadata``."""

from hub.models.audience import (
    AudienceCandidate,
    AudienceState,
    ContactLog,
    CustomerAttributes,
    CustomerGroup,
    ModelFit,
    SegmentChange,
    SegmentMembership,
    SegmentPush,
    SegmentState,
    VariantAssignment,
)
from hub.models.commerce import Cart, Order, OrderLine, Product, ProductRelation, Store, WishlistItem
from hub.models.customer import Consent, ConsentEvent, Customer, CustomerMerge, Identity
from hub.models.delivery import DestinationState, Message, OutboundState, OutboxAudit
from hub.models.engagement import Event
from hub.models.product_events import ProductEvent
from hub.models.recommend import ProductFollowup
from hub.models.runs import Reject, SyncRun, SyncState

__all__ = [
    "AudienceCandidate",
    "AudienceState",
    "Cart",
    "Consent",
    "ConsentEvent",
    "ContactLog",
    "Customer",
    "CustomerAttributes",
    "CustomerGroup",
    "CustomerMerge",
    "DestinationState",
    "Event",
    "Identity",
    "Message",
    "ModelFit",
    "Order",
    "OrderLine",
    "OutboundState",
    "OutboxAudit",
    "Product",
    "ProductEvent",
    "ProductFollowup",
    "ProductRelation",
    "Reject",
    "SegmentChange",
    "SegmentMembership",
    "SegmentPush",
    "SegmentState",
    "Store",
    "SyncRun",
    "SyncState",
    "VariantAssignment",
    "WishlistItem",
]
