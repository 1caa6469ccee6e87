"""Every built-in attribute an expression may read, with its type and meaning: the reference of the docs.

``source`` says where the value lives: ``attributes`` (a column of ``customer_attributes``), ``customer`` (a
column of ``customer``), or ``virtual`` (derived from another value and the clock when it is read, so it is never
stale: ``days_since_last_order`` is computed at the moment a segment is evaluated).
Plugin attributes (``hub_attributes``) are added at run time and live in ``customer_attributes.extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.audience.types import AttributeType

Source = Literal["attributes", "customer", "virtual"]


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: AttributeType
    source: Source
    description: str


_ALL = (
    # purchases
    Attribute("first_order_at", "datetime", "attributes", "time of the first order"),
    Attribute("last_order_at", "datetime", "attributes", "time of the last order"),
    Attribute("days_since_last_order", "int", "virtual", "whole days from the last order to now"),
    Attribute("days_since_first_order", "int", "virtual", "whole days from the first order to now"),
    Attribute("orders_window", "int", "attributes", "orders in the attributes window (default 365 days)"),
    Attribute("orders_lifetime", "int", "attributes", "orders ever (returns are not orders)"),
    Attribute("monetary_window", "float", "attributes", "value in the window, net of returns"),
    Attribute("monetary_lifetime", "float", "attributes", "value ever, net of returns"),
    Attribute("returns_value", "float", "attributes", "value returned ever"),
    Attribute("return_rate", "float", "attributes", "returned value / purchased value (0-1)"),
    Attribute("avg_order_value", "float", "attributes", "monetary_lifetime / orders_lifetime"),
    # RFM, CLV, tiers
    Attribute("r_score", "int", "attributes", "recency score 1-5 by quintiles (5 = most recent)"),
    Attribute("f_score", "int", "attributes", "frequency score 1-5 by quintiles (5 = most orders)"),
    Attribute("m_score", "int", "attributes", "monetary score 1-5 by quintiles (5 = most value)"),
    Attribute("rfm_segment", "str", "attributes", "named RFM segment: champions, loyal, at_risk, hibernating, ..."),
    Attribute("clv_historical", "float", "attributes", "value so far, net of returns (= monetary_lifetime)"),
    Attribute("clv_predicted", "float", "attributes", "expected value over the CLV horizon (BG/NBD x Gamma-Gamma)"),
    Attribute("expected_purchases", "float", "attributes", "expected orders over the CLV horizon (BG/NBD)"),
    Attribute("p_alive", "float", "attributes", "probability the customer is still active (BG/NBD)"),
    Attribute("tier", "str", "attributes", "value tier A/B/C by share of value (attributes.tiers)"),
    # rhythm
    Attribute("mean_days_between", "float", "attributes", "mean days between purchase days"),
    Attribute("median_days_between", "float", "attributes", "median days between purchase days"),
    Attribute("expected_next_order_at", "datetime", "attributes", "last order + mean days between"),
    Attribute("days_overdue", "float", "virtual", "days past expected_next_order_at (negative: not yet due)"),
    Attribute(
        "overdue_factor", "float", "virtual", "days_since_last_order / mean_days_between (win-back at 1.5 or more)"
    ),
    # where and how
    Attribute("favourite_store", "str", "attributes", "store external id with the most orders"),
    Attribute("favourite_channel", "str", "attributes", "channel with the most orders (web, store, ...)"),
    Attribute("product_groups", "str", "attributes", "product groups bought (a list: use owns(group=...))"),
    # the customer
    Attribute("is_b2b", "bool", "customer", "a business customer"),
    Attribute("country", "str", "customer", "country code"),
    Attribute("city", "str", "customer", "city"),
    Attribute("postcode", "str", "customer", "postcode"),
    Attribute("gender", "str", "customer", "gender as the source gave it"),
    Attribute("language", "str", "customer", "language"),
    Attribute("birth_date", "date", "customer", "date of birth"),
    Attribute("age", "int", "virtual", "whole years of age now"),
    Attribute("created_at", "datetime", "customer", "when hub first saw the customer"),
    Attribute("has_email", "bool", "virtual", "the customer has an e-mail address"),
    Attribute("has_phone", "bool", "virtual", "the customer has a phone number"),
    Attribute("is_member", "bool", "virtual", "the customer has a loyalty member number"),
)

ATTRIBUTES: dict[str, Attribute] = {attribute.name: attribute for attribute in _ALL}


def builtin_names() -> frozenset[str]:
    return frozenset(ATTRIBUTES)
