"""The same person from shop, POS and ERP, in any order and any formatting, becomes exactly one customer.

This runs the shipped mappings (so e-mail and phone normalisation are the real transforms) and the real resolver
on a real SQLite database, over arbitrary arrival orders, batch splits and key variants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.engine.resolve import IdentityRules, resolve_batch
from hub.mapping import load_mapping
from hub_plugins.standard.transforms import TRANSFORMS

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SHOP = load_mapping(MAPPINGS / "webshop_orders.yaml", TRANSFORMS, timezone="Europe/Oslo")
POS = load_mapping(MAPPINGS / "pos_receipts.yaml", TRANSFORMS, timezone="Europe/Oslo")
ERP = load_mapping(MAPPINGS / "erp_customers.yaml", TRANSFORMS, timezone="Europe/Oslo")

EMAIL = "kari.nordmann@example.no"
MEMBER = "7012345678"
PHONE_VARIANTS = ["+47 412 34 567", "0047 41234567", "41234567", "412-34-567", "+4741234567", " 412 34 567 "]


def email_variants() -> st.SearchStrategy[str]:
    cases = st.lists(st.booleans(), min_size=len(EMAIL), max_size=len(EMAIL))
    pads = st.sampled_from(["", " ", "  ", "\t"])
    return st.builds(
        lambda upper, left, right: (
            left + "".join(c.upper() if u else c for c, u in zip(EMAIL, upper, strict=True)) + right
        ),
        cases,
        pads,
        pads,
    )


def shop_record(n: int, email: str, phone: str) -> tuple[str, dict]:
    return "webshop", {
        "id": 5500000000000 + n,
        "created_at": "2024-03-01T10:00:00+01:00",
        "currency": "NOK",
        "total_price": "100.00",
        "current_total_price": "100.00",
        "customer": {"id": 6100000000001, "email": email, "phone": phone, "first_name": "Kari"},
        "line_items": [{"id": 1, "sku": "A-1", "quantity": 1, "price": "100.00", "total_discount": "0.00"}],
    }


def pos_record(n: int) -> tuple[str, dict]:
    return "pos", {
        "receipt_id": str(1000 + n),
        "store_id": "S001",
        "register_id": "1",
        "business_date": "2024-03-02",
        "timestamp": "2024-03-02 12:00:00",
        "line_no": "1",
        "sku": "A-1",
        "qty": "1",
        "unit_price": "100.00",
        "line_discount": "0.00",
        "line_total": "100.00",
        "currency": "NOK",
        "loyalty_id": MEMBER,
        "original_receipt_id": "",
    }


def erp_record(email: str, phone: str) -> tuple[str, dict]:
    return "erp", {
        "kundenr": "100001",
        "kundetype": "P",
        "medlemsnr": MEMBER,
        "fornavn": "KARI",
        "etternavn": "NORDMANN",
        "epost": email,
        "mobil": phone,
        "adresse": "Storgata 1",
        "postnr": "0155",
        "sted": "Oslo",
        "land": "NO",
        "fodt": "01.02.1980",
        "bedrift": "",
        "orgnr": "",
        "nyhetsbrev": "J",
        "endret": "2024-03-03 09:00:00",
    }


MAPPING_OF = {"webshop": SHOP, "pos": POS, "erp": ERP}


@settings(max_examples=40)
@given(
    data=st.data(),
    shop_email=email_variants(),
    erp_email=email_variants(),
    shop_phone=st.sampled_from(PHONE_VARIANTS),
    erp_phone=st.sampled_from(PHONE_VARIANTS),
)
def test_one_person_from_three_systems_in_any_order_is_one_customer(
    data, shop_email, erp_email, shop_phone, erp_phone, make_database, tmp_path_factory
):
    records = [shop_record(1, shop_email, shop_phone), pos_record(1), erp_record(erp_email, erp_phone)]
    records += [shop_record(2, shop_email.strip(), erp_phone), pos_record(2)]
    order = data.draw(st.permutations(records))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(order) - 1), max_size=len(order) - 1)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]

    engine = make_database(f"sqlite:///{tmp_path_factory.mktemp('identity')}/hub.db")
    try:
        rules = IdentityRules.default()
        rules.source_priority = ["erp", "webshop", "pos"]
        for batch in batches:
            # A batch holds one stream's records: consecutive records of one source resolve together.
            runs: list[tuple[str, list[dict]]] = []
            for source, raw in batch:
                if not runs or runs[-1][0] != source:
                    runs.append((source, []))
                runs[-1][1].append(MAPPING_OF[source].map(raw).customer)
            for source, customers in runs:
                with engine.begin() as conn:
                    result = resolve_batch(conn, customers, source=source, rules=rules, now=datetime.now(UTC))
                assert result.rejected == {}
        with engine.connect() as conn:
            live = conn.execute(sa.text("SELECT id FROM customer WHERE merged_into IS NULL")).scalars().all()
            keys = set(conn.execute(sa.text("SELECT kind, value FROM identity")).all())
    finally:
        engine.dispose()
    assert len(live) == 1
    assert {("email", EMAIL), ("phone", "+4741234567"), ("member_no", MEMBER)} <= keys
