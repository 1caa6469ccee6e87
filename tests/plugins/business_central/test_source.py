"""The Business Central source against its emulator: the requests it makes, paging and resuming, tokens, check()."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import SourceError
from hub.testing.source import read_all as records
from hub_plugins.business_central._state import BcState
from hub_plugins.business_central.source import BusinessCentralSource
from tests.plugins.business_central.conftest import Switch

Make = Callable[..., BusinessCentralSource]
OLD = "2025-01-06T09:00:00Z"
LATER = "2025-01-07T09:00:00Z"


def test_a_read_from_a_cursor_filters_with_ge_in_change_order_and_expands_the_lines(
    state: BcState, source: Make, switch: Switch
) -> None:
    state.put("salesInvoices", [{}, {}], updated_at=OLD)
    reader = source(page_size=1)
    _, cursor = records(reader, "salesInvoices")
    (changed,) = state.put("salesInvoices", [{}], updated_at=LATER)
    switch.calls.clear()
    got, _ = records(reader, "salesInvoices", cursor)
    first = switch.api_calls()[0]
    assert first.query == {
        "$filter": "lastModifiedDateTime ge 2025-01-06T09:00:00Z",
        "$orderby": "lastModifiedDateTime,id",
        "$expand": "salesInvoiceLines",
    }
    assert first.headers["prefer"] == "odata.maxpagesize=1"
    assert [r["id"] for r in got] == [changed] and len(got[0]["salesInvoiceLines"]) == 1


def test_a_read_killed_after_a_page_resumes_at_the_next_page(state: BcState, source: Make, switch: Switch) -> None:
    keys = state.put("customers", [{} for _ in range(5)], updated_at=OLD)
    reader = source(page_size=2)
    first = next(iter(reader.read("customers", None)))
    switch.calls.clear()
    rest, _ = records(reader, "customers", first.cursor)
    assert "$skiptoken" in switch.api_calls()[0].query
    assert sorted(r["id"] for r in first.records + rest) == sorted(keys)


def test_the_token_is_fetched_once_and_renewed_when_the_api_refuses_it(
    state: BcState, source: Make, switch: Switch
) -> None:
    state.put("customers", [{} for _ in range(4)], updated_at=OLD)
    reader = source(page_size=1)
    batches = iter(reader.read("customers", None))
    next(batches)
    state.expire_tokens()
    rest = [r for batch in batches for r in batch.records]
    assert len(rest) == 3
    assert [c.method for c in switch.calls if c.path.endswith("/token")] == ["POST", "POST"]


def test_a_record_with_bcs_blank_time_is_read_but_leaves_the_cursor_alone(state: BcState, source: Make) -> None:
    (blank,) = state.put("items", [{}], updated_at="0001-01-01T00:00:00Z")
    (dated,) = state.put("items", [{}], updated_at=OLD)
    got, cursor = records(source(), "items")
    assert sorted(r["id"] for r in got) == sorted([blank, dated])
    assert cursor["position"] == {"last_value": "2025-01-06T09:00:00+00:00", "last_keys": [dated]}


def test_drafts_are_tombstones_unless_include_drafts(state: BcState, source: Make) -> None:
    (draft,) = state.put("salesCreditMemos", [{"status": "Draft"}], updated_at=OLD)
    (record,), _ = records(source(), "salesCreditMemos")
    assert record["_deleted"] is True and record["id"] == draft
    (record,), _ = records(source(include_drafts=True), "salesCreditMemos")
    assert "_deleted" not in record and record["status"] == "Draft"


def test_the_company_may_be_named_by_its_id(state: BcState, source: Make) -> None:
    state.add_company("Nordhjem Sverige AB")
    assert source(company=state.first.id.upper()).company() == (state.first.id, "Nordhjem AS")


def test_check_lists_the_companies_when_the_company_is_unknown(state: BcState, source: Make) -> None:
    result = source(company="Cronus").check()
    assert not result.ok
    assert result.message == (
        f"the environment has no company 'Cronus' (it has: Nordhjem AS ({state.first.id})); "
        "set `company` to one of these names or ids"
    )


def test_check_says_when_the_environment_does_not_exist(source: Make) -> None:
    result = source(environment="staging").check()
    assert not result.ok and "404 (BadRequest_NotFound: The environment 'staging' was not found.)" in result.message


def test_check_says_when_the_tenant_does_not_exist(source: Make) -> None:
    result = source(tenant="contoso.onmicrosoft.com").check()
    assert not result.ok
    assert "Microsoft Entra ID refused the app for tenant contoso.onmicrosoft.com (invalid_request: AADSTS90002" in (
        result.message
    )


def test_a_next_link_outside_the_api_is_not_followed(source: Make) -> None:
    reader = source()
    with pytest.raises(SourceError, match="next link outside"):
        reader._own_link("https://evil.example/v2.0/x?$skiptoken=1")
