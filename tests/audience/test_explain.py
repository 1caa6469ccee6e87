"""``hub explain``: a correct plain-words reason for each kind of decision (sent, capped, quarantined, B2B, no
consent), the customer's segments and attributes, what would have to happen when nothing fired, and finding a
customer by id, e-mail, member number or phone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.audience.explain import Explanation, explain, resolve_customer
from hub.models import CustomerAttributes, Identity, SegmentMembership
from tests.audience.test_policy import DAY, PP_CAP, QUARANTINE, T, World, make_world, schema_template  # noqa: F401  # the fixture

member_t: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]
attributes_t: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
identity_t: sa.Table = Identity.__table__  # type: ignore[attr-defined]


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    template = request.getfixturevalue("schema_template")
    made = make_world(tmp_path, template=template)
    yield made
    made.hub.close()


def why(world: World, customer: int, now: object = T + DAY, message_type: str | None = None) -> Explanation:
    with world.hub.engine.connect() as conn:
        return explain(conn, world.config, customer, now, message_type=message_type)  # type: ignore[arg-type]


def texts(explanation: Explanation) -> list[str]:
    return [line.text for story in explanation.candidates for line in story.decisions]


def test_a_sent_message_says_when_and_by_which_trigger(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.decide(T)
    assert texts(why(world, customer)) == ["sent post_purchase (trigger pp_grill) on 2024-12-30 10:00 to voyado"]


def test_a_capped_message_names_the_cap_and_the_earlier_send(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.candidate(customer, "pp_paint", T + timedelta(hours=2))
    world.decide(T)
    world.decide(T + timedelta(hours=2))
    assert texts(why(world, customer))[1] == (
        f"suppressed by cap '{PP_CAP}' (1 per 2 days): already got post_purchase at 2024-12-30 10:00"
    )


def test_a_held_message_says_until_when(world: World) -> None:
    capped = world.with_pressure(caps=[{"name": "one a day", "channel": "email", "max": 1, "per": "1d"}])
    customer = capped.customer()
    capped.candidate(customer, "birthday", T)
    capped.candidate(customer, "weekly", T)
    capped.decide(T)
    assert texts(why(capped, customer, message_type="newsletter")) == [
        "held until 2024-12-31 10:00 by cap 'one a day' (1 per 1 day): already got birthday at 2024-12-30 10:00; "
        "a higher-priority birthday took the slot"
    ]


def test_a_quarantined_newsletter_names_the_post_purchase_and_the_end(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.decide(T)
    world.candidate(customer, "weekly", T + DAY)
    world.decide(T + DAY)
    assert texts(why(world, customer, message_type="newsletter")) == [
        f"quarantined (suppressed): quarantine '{QUARANTINE}': got post_purchase on 2024-12-30 10:00, so no "
        "newsletter for 2 days (until 2025-01-01 10:00)"
    ]


def test_b2b_and_no_consent_are_said_in_plain_words(world: World) -> None:
    business = world.customer(b2b=True)
    silent = world.customer(consent=None)
    world.candidate(business, "pp_grill", T)
    world.candidate(silent, "pp_grill", T)
    world.decide(T)
    assert texts(why(world, business)) == [
        "suppressed: B2B customers get no post_purchase (contact_pressure.exclusions.b2b)"
    ]
    assert texts(why(world, silent)) == ["suppressed: no e-mail consent"]


def test_the_message_type_filters_the_candidates(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.candidate(customer, "birthday", T)
    world.decide(T)
    assert [s.message_type for s in why(world, customer, message_type="birthday").candidates] == ["birthday"]
    assert {s.message_type for s in why(world, customer).candidates} == {"post_purchase", "birthday"}


def test_an_undecided_candidate_says_when_it_is_due(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T, due_at=T + DAY)
    assert "not decided yet (due 2024-12-31 10:00)" in why(world, customer, now=T).render()


def test_when_nothing_fired_it_lists_the_triggers_and_what_contact_pressure_would_say(world: World) -> None:
    silent = world.customer(consent=None)
    notes = why(world, silent, message_type="post_purchase").notes
    assert notes[0] == "No trigger of type post_purchase has fired for this customer."
    assert "trigger pp_grill would fire when the customer places an order with product group in grills" in notes[1]
    assert notes[2].startswith("trigger pp_paint would fire when the customer places an order (on: order_placed)")
    assert notes[-1] == "If one fired now, it would be suppressed: no e-mail consent."
    ready = world.customer()
    assert why(world, ready, message_type="birthday").notes[-1] == "If one fired now, contact pressure would send it."


def test_it_shows_segments_with_since_and_key_attributes(world: World) -> None:
    customer = world.customer(first_name="Kari", last_name="Nordmann")
    with world.hub.engine.begin() as conn:
        conn.execute(sa.insert(member_t).values(segment="newsletter", customer_id=customer, since=T - DAY))
        conn.execute(
            sa.insert(attributes_t).values(
                customer_id=customer,
                tier="A",
                rfm_segment="champions",
                orders_lifetime=4,
                product_groups=["grills"],
                extra={},
                computed_at=T,
            )
        )
    explanation = why(world, customer)
    rendered = explanation.render()
    assert explanation.segments == [("newsletter", T - DAY)]
    assert "segments: newsletter (since 2024-12-29 10:00)" in rendered
    assert "tier A" in rendered and "rfm_segment champions" in rendered and "orders_lifetime 4" in rendered
    assert f"customer {customer}: Kari Nordmann <{world.emails[customer]}>" in rendered
    data = explanation.to_dict()
    assert data["segments"] == [{"segment": "newsletter", "since": (T - DAY).isoformat()}]
    assert data["attributes"]["tier"] == "A"


def test_render_escapes_rich_markup_in_customer_data(world: World) -> None:
    customer = world.customer(first_name="[red]x[/red]")
    assert "\\[red]x\\[/red]" in why(world, customer).render()


def test_resolve_customer_by_id_email_member_number_and_phone(world: World) -> None:
    customer = world.customer(member_no="M-1001", phone="+4791234567")
    other = world.customer()
    with world.hub.engine.begin() as conn:
        conn.execute(
            sa.insert(identity_t).values(
                customer_id=other, kind="email", value="old@example.com", source="erp", first_seen_at=T
            )
        )
        found = [
            resolve_customer(conn, text)
            for text in (str(customer), world.emails[customer].upper(), "M-1001", "+47 912 34 567", "old@example.com")
        ]
        assert found == [customer, customer, customer, customer, other]
        assert resolve_customer(conn, "nobody@example.com") is None
        assert resolve_customer(conn, "  ") is None


def test_resolve_customer_follows_a_merge_to_the_survivor(world: World) -> None:
    survivor = world.customer()
    merged = world.customer(member_no="M-7")
    with world.hub.engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET merged_into = :s WHERE id = :m"), {"s": survivor, "m": merged})
        assert resolve_customer(conn, "M-7") == survivor
