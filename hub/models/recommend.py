"""What the built-in recommender learns from the orders: which products buyers of a product, or of a group, buy next."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime


class ProductFollowup(SQLModel, table=True):
    """One follow-up rule: customers who bought ``antecedent`` bought ``sku`` in a later order within the window.

    ``antecedent_kind`` is ``product`` (``antecedent`` is a SKU) or ``group`` (a product group: any of its
    products). Only rules with at least the minimum support and lift are kept. The table is rebuilt in full,
    set-based, by a full ``hub compute``; ``hub recommend`` and trigger payloads read it.
    """

    __tablename__ = "product_followup"

    antecedent_kind: str = Field(primary_key=True)
    antecedent: str = Field(primary_key=True)
    sku: str = Field(primary_key=True)
    #: Customers who bought the antecedent and then ``sku`` within the window.
    support: int
    #: Customers who bought the antecedent at all.
    buyers: int
    #: ``support / buyers``: the share of the antecedent's buyers who bought ``sku`` next.
    confidence: float
    #: ``confidence / base``, base being the share of all buying customers who ever bought ``sku``.
    lift: float
    #: What buying the antecedent adds to the chance of buying ``sku``, damped for few buyers: the rank
    #: (``hub.recommend.followups`` gives the formula).
    score: float
    computed_at: datetime = Field(sa_type=UTCDateTime)
