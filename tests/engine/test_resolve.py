"""Identity resolution: keys find, create and merge golden customers, per batch, on a real database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from hub.engine.consent import apply_consents
from hub.engine.resolve import IdentityRules, ResolveResult, resolve_batch
from hub.models import Consent, ConsentEvent, Customer, CustomerMerge, Identity, Order

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RULES = IdentityRules(source_priority=["shop", "erp", "pos"])

customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
identity_t: sa.Table = Identity.__table__  # type: ignore[attr-defined]
merge_t: sa.Table = CustomerMerge.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
consent_t: sa.Table = Consent.__table__  # type: ignore[attr-defined]
consent_event_t: sa.Table = ConsentEvent.__table__  # type: ignore[attr-defined]


def resolve(
    engine: Engine,
    rows: Sequence[Mapping[str, Any] | None],
    *,
    source: str = "shop",
    rules: IdentityRules = RULES,
    now: datetime = NOW,
    run_id: int | None = None,
) -> ResolveResult:
    with engine.begin() as conn:
        return resolve_batch(conn, rows, source=source, rules=rules, now=now, run_id=run_id)


def customers(engine: Engine) -> dict[int, dict[str, Any]]:
    """Every customer row by id, merged ones included."""
    with engine.connect() as conn:
        return {row["id"]: dict(row) for row in conn.execute(sa.select(customer_t)).mappings()}


def live(engine: Engine) -> dict[int, dict[str, Any]]:
    return {cid: row for cid, row in customers(engine).items() if row["merged_into"] is None}


def keys_of(engine: Engine, customer_id: int) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        query = sa.select(identity_t.c.kind, identity_t.c.system, identity_t.c.value).where(
            identity_t.c.customer_id == customer_id
        )
        return {tuple(row) for row in conn.execute(query)}  # type: ignore[misc]


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def add_order(engine: Engine, customer_id: int, external_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            order_t.insert().values(
                source="shop", external_id=external_id, customer_id=customer_id, placed_at=NOW, loaded_at=NOW
            )
        )


# --------------------------------------------------------------------------------------------- creating


def test_new_records_create_one_customer_each_with_their_keys(engine: Engine) -> None:
    result = resolve(
        engine,
        [
            {"external_id": "1", "email": "ann@shop.no", "first_name": "Ann"},
            {"external_id": "2", "phone": "+4791234567", "first_name": "Bo"},
        ],
    )

    assert result.created == 2
    first, second = result.customer_ids
    assert first is not None and second is not None and first != second
    assert keys_of(engine, first) == {("external_id", "shop", "1"), ("email", "", "ann@shop.no")}
    assert keys_of(engine, second) == {("external_id", "shop", "2"), ("phone", "", "+4791234567")}
    ann = customers(engine)[first]
    assert (ann["first_name"], ann["email"], ann["source"], ann["source_rank"]) == (
        "Ann",
        "ann@shop.no",
        "shop",
        3,
    )


def test_records_without_usable_keys_are_anonymous_not_rejected(engine: Engine) -> None:
    result = resolve(engine, [None, {}, {"first_name": "Ann"}, {"email": "guest", "member_no": "0"}])

    assert result.customer_ids == [None, None, None, None]
    assert result.rejected == {}
    assert count(engine, customer_t) == 0


def test_same_email_in_other_case_and_whitespace_is_one_customer(engine: Engine) -> None:
    first = resolve(engine, [{"email": "Ann@Shop.no"}, {"email": " ann@shop.NO "}])
    second = resolve(engine, [{"email": "ANN@SHOP.NO\t"}], source="pos")

    assert first.created == 1 and second.created == 0
    assert first.customer_ids[0] == first.customer_ids[1] == second.customer_ids[0]
    assert count(engine, identity_t) == 1


def test_keys_link_transitively_within_one_batch(engine: Engine) -> None:
    result = resolve(
        engine,
        [
            {"email": "ann@shop.no", "phone": "+4791234567"},
            {"phone": "+4791234567", "member_no": "M1"},
            {"member_no": "M1", "external_id": "9"},
        ],
    )

    assert result.created == 1
    assert len(set(result.customer_ids)) == 1


def test_keys_link_transitively_across_batches(engine: Engine) -> None:
    first = resolve(engine, [{"email": "ann@shop.no", "phone": "+4791234567"}])
    second = resolve(engine, [{"phone": "+4791234567", "member_no": "M1"}], source="pos")
    third = resolve(engine, [{"member_no": "M1"}], source="erp")

    assert first.customer_ids == second.customer_ids == third.customer_ids
    assert keys_of(engine, first.customer_ids[0]) == {  # type: ignore[arg-type]
        ("email", "", "ann@shop.no"),
        ("phone", "", "+4791234567"),
        ("member_no", "", "M1"),
    }


def test_an_external_id_always_lands_on_the_same_customer(engine: Engine) -> None:
    first = resolve(engine, [{"external_id": "42", "email": "ann@shop.no"}])
    moved = resolve(engine, [{"external_id": "42", "email": "ann.berg@work.no"}])

    assert moved.customer_ids == first.customer_ids
    assert moved.created == 0


def test_the_same_external_id_in_another_system_is_another_customer(engine: Engine) -> None:
    shop = resolve(engine, [{"external_id": "42"}], source="shop")
    pos = resolve(engine, [{"external_id": "42"}], source="pos")

    assert shop.customer_ids != pos.customer_ids


def test_rerunning_a_batch_changes_nothing(engine: Engine) -> None:
    batch = [
        {"external_id": "1", "email": "ann@shop.no", "phone": "+4791234567", "first_name": "Ann"},
        {"external_id": "2", "email": "bo@shop.no", "updated_at": NOW - timedelta(days=1)},
        {"member_no": "M1", "phone": "+4791234567"},
    ]
    first = resolve(engine, batch)
    before = (customers(engine), count(engine, identity_t))

    again = resolve(engine, batch, now=NOW + timedelta(hours=1))

    assert again.customer_ids == first.customer_ids
    assert (again.created, again.merges) == (0, 0)
    assert (customers(engine), count(engine, identity_t)) == before
    assert count(engine, merge_t) == 0


# ---------------------------------------------------------------------------------------------- merging


def test_a_record_carrying_keys_of_two_customers_merges_them_into_the_higher_priority_one(
    engine: Engine,
) -> None:
    pos = resolve(engine, [{"member_no": "M1", "first_name": "Anna", "birth_date": date(1990, 5, 1)}], source="pos")
    shop = resolve(engine, [{"external_id": "7", "email": "ann@shop.no", "first_name": "Ann"}], source="shop")
    pos_id, shop_id = pos.customer_ids[0], shop.customer_ids[0]
    assert pos_id is not None and shop_id is not None
    add_order(engine, pos_id, "o-pos")
    add_order(engine, shop_id, "o-shop")

    result = resolve(engine, [{"external_id": "E1", "member_no": "M1", "email": "ann@shop.no"}], source="erp", run_id=5)

    assert result.customer_ids == [shop_id]
    assert (result.merges, result.merged) == (1, {pos_id: shop_id})
    rows = customers(engine)
    assert rows[pos_id]["merged_into"] == shop_id
    assert rows[shop_id]["merged_into"] is None
    assert rows[shop_id]["first_name"] == "Ann"  # the survivor keeps its own values...
    assert rows[shop_id]["birth_date"] == date(1990, 5, 1)  # ...and fills its gaps from the merged one
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(order_t.c.customer_id)).scalars()) == {shop_id}
        merge = conn.execute(sa.select(merge_t)).mappings().one()
    assert (merge["survivor_id"], merge["merged_id"], merge["source"], merge["run_id"]) == (
        shop_id,
        pos_id,
        "erp",
        5,
    )
    assert merge["rule"] == "shared email and member_no"
    assert ["member_no", "", "M1"] in merge["keys"] and ["email", "", "ann@shop.no"] in merge["keys"]
    assert keys_of(engine, shop_id) == {
        ("external_id", "shop", "7"),
        ("external_id", "erp", "E1"),
        ("email", "", "ann@shop.no"),
        ("member_no", "", "M1"),
    }


def test_with_equal_priority_the_most_recently_updated_customer_survives(engine: Engine) -> None:
    old = resolve(engine, [{"email": "ann@shop.no", "updated_at": NOW - timedelta(days=30)}])
    recent = resolve(engine, [{"phone": "+4791234567", "updated_at": NOW - timedelta(days=1)}])

    result = resolve(engine, [{"email": "ann@shop.no", "phone": "+4791234567", "updated_at": NOW - timedelta(days=60)}])

    assert result.customer_ids == recent.customer_ids
    assert customers(engine)[old.customer_ids[0]]["merged_into"] == recent.customer_ids[0]  # type: ignore[index]


def test_with_equal_priority_and_time_the_oldest_id_survives(engine: Engine) -> None:
    first = resolve(engine, [{"email": "ann@shop.no", "updated_at": NOW}])
    second = resolve(engine, [{"phone": "+4791234567", "updated_at": NOW}])

    result = resolve(engine, [{"email": "ann@shop.no", "phone": "+4791234567", "updated_at": NOW}])

    assert result.customer_ids == first.customer_ids
    assert customers(engine)[second.customer_ids[0]]["merged_into"] == first.customer_ids[0]  # type: ignore[index]


def test_a_merge_repoints_customers_merged_earlier_into_the_merged_one(engine: Engine) -> None:
    a = resolve(engine, [{"email": "a@shop.no"}], source="pos").customer_ids[0]
    b = resolve(engine, [{"phone": "+4791234567"}], source="erp").customer_ids[0]
    resolve(engine, [{"email": "a@shop.no", "phone": "+4791234567"}], source="pos")  # a folds into b (erp ranks higher)
    c = resolve(engine, [{"member_no": "M1"}], source="shop").customer_ids[0]

    resolve(engine, [{"member_no": "M1", "phone": "+4791234567"}], source="pos")  # b folds into c (shop ranks higher)

    rows = customers(engine)
    assert (rows[a]["merged_into"], rows[b]["merged_into"], rows[c]["merged_into"]) == (c, c, None)  # type: ignore[index]


def test_consents_and_their_audit_trail_follow_a_merge_monotonically(engine: Engine) -> None:
    shop_id = resolve(engine, [{"email": "ann@shop.no"}], source="shop").customer_ids[0]
    pos_id = resolve(engine, [{"member_no": "M1"}], source="pos").customer_ids[0]
    assert shop_id is not None and pos_id is not None
    opt_in = {"channel": "email", "status": "opt_in", "at": NOW - timedelta(days=10), "evidence": "form"}
    opt_out = {"channel": "email", "status": "opt_out", "at": NOW - timedelta(days=2)}
    sms_in = {"channel": "sms", "status": "opt_in", "at": NOW - timedelta(days=5)}
    with engine.begin() as conn:
        apply_consents(conn, [(shop_id, opt_in)], source="shop", now=NOW)
        apply_consents(conn, [(pos_id, opt_out), (pos_id, sms_in), (pos_id, opt_in)], source="pos", now=NOW)

    resolve(engine, [{"email": "ann@shop.no", "member_no": "M1"}], source="erp")

    with engine.connect() as conn:
        current = {row.channel: row for row in conn.execute(sa.select(consent_t))}
        events = conn.execute(sa.select(consent_event_t.c.customer_id)).scalars().all()
    assert {row.customer_id for row in current.values()} == {shop_id}
    assert (current["email"].status, current["email"].source) == ("opt_out", "pos")  # the newer opt-out wins
    assert current["sms"].status == "opt_in"
    assert set(events) == {shop_id}
    assert len(events) == 4  # each distinct statement once: shop's opt-in, pos's opt-out, sms and opt-in


def test_blocked_values_never_link_two_people(engine: Engine) -> None:
    result = resolve(
        engine,
        [
            {"external_id": "1", "email": "noreply@shop.no", "phone": "+4700000000", "first_name": "Ann"},
            {"external_id": "2", "email": "NoReply@shop.no", "phone": "+4700000000", "first_name": "Bo"},
            {"email": "noreply@shop.no"},
            {"email": "noreply@shop.no", "member_no": "unknown"},
        ],
    )

    first, second, third, fourth = result.customer_ids
    assert first is not None and second is not None and first != second
    assert (third, fourth) == (None, None)
    assert ("email", "", "noreply@shop.no") not in keys_of(engine, first)
    assert customers(engine)[first]["email"] is None


def test_configured_blocked_values_never_link_two_people(engine: Engine) -> None:
    rules = IdentityRules(source_priority=["shop"], blocked_values={"email": {"store@shop.no"}})

    result = resolve(
        engine,
        [{"external_id": "1", "email": "Store@shop.no"}, {"external_id": "2", "email": "store@shop.no"}],
        rules=rules,
    )

    assert len(set(result.customer_ids)) == 2


# ----------------------------------------------------------------------------------------------- limits


def test_a_record_that_would_give_a_customer_a_second_member_number_is_rejected_whole(engine: Engine) -> None:
    ann = resolve(engine, [{"email": "ann@shop.no", "member_no": "M1", "first_name": "Ann"}]).customer_ids[0]
    before = (customers(engine), count(engine, identity_t))

    result = resolve(
        engine,
        [
            {"email": "ann@shop.no", "member_no": "M2", "phone": "+4791234567", "first_name": "Eve"},
            {"email": "bo@shop.no"},
        ],
        now=NOW + timedelta(hours=1),
    )

    assert result.customer_ids[0] is None
    (reason,) = result.rejected[0]
    assert "member_no" in reason and f"customer {ann}" in reason and " 2 " in reason
    assert result.customer_ids[1] is not None  # the rest of the batch goes on
    after = customers(engine)
    del after[result.customer_ids[1]]
    assert (after, count(engine, identity_t) - 1) == before


def test_a_record_that_would_merge_two_member_numbers_is_rejected_and_merges_nothing(engine: Engine) -> None:
    resolve(engine, [{"email": "ann@shop.no", "member_no": "M1"}, {"phone": "+4791234567", "member_no": "M2"}])

    result = resolve(engine, [{"email": "ann@shop.no", "phone": "+4791234567"}])

    assert 0 in result.rejected and result.merges == 0
    assert len(live(engine)) == 2
    assert count(engine, merge_t) == 0


def test_limits_apply_to_links_made_earlier_in_the_same_batch(engine: Engine) -> None:
    result = resolve(engine, [{"email": "ann@shop.no", "member_no": "M1"}, {"email": "ann@shop.no", "member_no": "M2"}])

    assert result.customer_ids[0] is not None and result.customer_ids[1] is None
    assert "a new customer" in result.rejected[1][0]
    assert count(engine, identity_t) == 2


# ----------------------------------------------------------------------------------------- survivorship


def test_a_higher_priority_source_overwrites_and_a_lower_one_only_fills_gaps(engine: Engine) -> None:
    ann = resolve(engine, [{"member_no": "M1", "first_name": "Anna", "city": "Bergen"}], source="pos").customer_ids[0]

    resolve(engine, [{"member_no": "M1", "first_name": "Ann", "last_name": "Berg"}], source="shop")
    resolve(
        engine,
        [{"member_no": "M1", "first_name": "A.", "last_name": "B.", "birth_date": date(1990, 5, 1)}],
        source="pos",
    )

    row = customers(engine)[ann]  # type: ignore[index]
    assert (row["first_name"], row["last_name"], row["city"], row["birth_date"]) == (
        "Ann",
        "Berg",
        "Bergen",
        date(1990, 5, 1),
    )
    assert (row["source"], row["source_rank"]) == ("shop", 3)


def test_with_equal_priority_the_newer_record_wins_and_an_older_one_does_not(engine: Engine) -> None:
    ann = resolve(engine, [{"external_id": "1", "city": "Oslo", "updated_at": NOW - timedelta(days=5)}]).customer_ids[0]

    resolve(engine, [{"external_id": "1", "city": "Bergen", "updated_at": NOW - timedelta(days=1)}])
    resolve(engine, [{"external_id": "1", "city": "Tromsø", "updated_at": NOW - timedelta(days=3)}])

    row = customers(engine)[ann]  # type: ignore[index]
    assert row["city"] == "Bergen"
    assert row["source_updated_at"] == NOW - timedelta(days=1)


def test_a_record_without_updated_at_counts_as_now(engine: Engine) -> None:
    ann = resolve(engine, [{"external_id": "1", "city": "Oslo", "updated_at": NOW - timedelta(days=5)}]).customer_ids[0]

    resolve(engine, [{"external_id": "1", "city": "Bergen"}])

    assert customers(engine)[ann]["city"] == "Bergen"  # type: ignore[index]


def test_null_never_erases(engine: Engine) -> None:
    ann = resolve(engine, [{"external_id": "1", "first_name": "Ann", "email": "ann@shop.no"}]).customer_ids[0]

    resolve(
        engine,
        [{"external_id": "1", "first_name": None, "email": None, "updated_at": NOW + timedelta(days=1)}],
    )

    row = customers(engine)[ann]  # type: ignore[index]
    assert (row["first_name"], row["email"]) == ("Ann", "ann@shop.no")


def test_records_of_one_customer_in_one_batch_apply_in_input_order(engine: Engine) -> None:
    result = resolve(engine, [{"external_id": "1", "city": "Oslo"}, {"external_id": "1", "city": "Bergen"}])

    assert customers(engine)[result.customer_ids[0]]["city"] == "Bergen"  # type: ignore[index]


def test_the_customer_exists_since_the_earliest_creation_any_source_reports(engine: Engine) -> None:
    ann = resolve(engine, [{"external_id": "1", "created_at": NOW - timedelta(days=10)}]).customer_ids[0]

    resolve(engine, [{"external_id": "1", "created_at": NOW - timedelta(days=400)}])
    resolve(engine, [{"external_id": "1", "created_at": NOW - timedelta(days=20)}])

    assert customers(engine)[ann]["created_at"] == NOW - timedelta(days=400)  # type: ignore[index]


# ----------------------------------------------------------------------------------------- dialects


def test_creation_merge_and_rerun_work_on_every_dialect(any_engine: Engine) -> None:
    first = resolve(any_engine, [{"email": "ann@shop.no"}, {"phone": "+4791234567"}, {"email": "bo@shop.no"}])
    merged = resolve(any_engine, [{"email": "ann@shop.no", "phone": "+4791234567", "first_name": "Ann"}])
    again = resolve(any_engine, [{"email": "ann@shop.no", "phone": "+4791234567", "first_name": "Ann"}])

    assert first.created == 3 and len(set(first.customer_ids)) == 3
    assert merged.merges == 1 and merged.customer_ids == [first.customer_ids[0]]
    assert (again.created, again.merges, again.customer_ids) == (0, 0, merged.customer_ids)
    assert len(live(any_engine)) == 2


def test_consents_follow_a_merge_on_every_dialect(any_engine: Engine) -> None:
    shop_id = resolve(any_engine, [{"email": "ann@shop.no"}], source="shop").customer_ids[0]
    pos_id = resolve(any_engine, [{"member_no": "M1"}], source="pos").customer_ids[0]
    assert shop_id is not None and pos_id is not None
    statement = {"channel": "email", "status": "opt_out", "at": NOW - timedelta(days=1)}
    with any_engine.begin() as conn:
        apply_consents(
            conn,
            [(shop_id, {"channel": "email", "status": "opt_in", "at": NOW - timedelta(days=9)})],
            source="shop",
            now=NOW,
        )
        apply_consents(conn, [(shop_id, statement)], source="pos", now=NOW)
        apply_consents(conn, [(pos_id, statement)], source="pos", now=NOW)  # the same statement: one fingerprint

    resolve(any_engine, [{"email": "ann@shop.no", "member_no": "M1"}], source="erp")

    with any_engine.connect() as conn:
        (row,) = conn.execute(sa.select(consent_t)).mappings().all()
        events = conn.execute(sa.select(consent_event_t.c.customer_id)).scalars().all()
    assert (row["customer_id"], row["status"]) == (shop_id, "opt_out")
    assert sorted(events) == [shop_id, shop_id]


# ------------------------------------------------------------------------------------------- property


EMAIL = "ann.berg@shop.no"


def _variant(draw: st.DrawFn) -> str:
    cased = "".join(ch.upper() if draw(st.booleans()) else ch for ch in EMAIL)
    return draw(st.sampled_from(["", " ", "  ", "\t"])) + cased + draw(st.sampled_from(["", " ", "\n"]))


@st.composite
def _deliveries(draw: st.DrawFn) -> list[tuple[str, list[dict[str, Any]]]]:
    """One person described by three systems, each record sent one or more times, in batches in any order,
    mixed with a stranger who shares no key with the person."""
    records = [
        ("shop", {"external_id": "S1", "email": _variant(draw), "phone": "+4791234567", "first_name": "Ann"}),
        ("pos", {"member_no": "M1"}),
        ("erp", {"external_id": "E1", "member_no": "M1", "email": _variant(draw), "phone": "+4791234567"}),
    ]
    sends = [*records, *draw(st.lists(st.sampled_from(records), max_size=3))]
    sends = draw(st.permutations(sends))
    sends = [(source, {**row, "email": _variant(draw)} if "email" in row else row) for source, row in sends]
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for source, row in sends:
        if batches and batches[-1][0] == source and draw(st.booleans()):
            batches[-1][1].append(row)
        else:
            batches.append((source, [row]))
    stranger = draw(st.integers(min_value=0, max_value=len(batches) - 1))
    batches[stranger][1].append({"external_id": "X9", "email": "bo@shop.no"})
    return batches


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_deliveries())
def test_one_person_in_any_batches_and_order_is_exactly_one_customer(
    make_database: Callable[[str], Engine], batches: list[tuple[str, list[dict[str, Any]]]]
) -> None:
    engine = make_database("sqlite://")
    try:
        for source, rows in batches:
            assert resolve(engine, rows, source=source).rejected == {}
        people = live(engine)
        assert len(people) == 2
        (ann,) = [cid for cid, row in people.items() if row["email"] == EMAIL]
        assert keys_of(engine, ann) == {
            ("external_id", "shop", "S1"),
            ("external_id", "erp", "E1"),
            ("member_no", "", "M1"),
            ("email", "", EMAIL),
            ("phone", "", "+4791234567"),
        }
        assert people[ann]["first_name"] == "Ann"
    finally:
        engine.dispose()
