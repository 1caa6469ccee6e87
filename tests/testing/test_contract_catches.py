"""The contract fails a destination that gets one thing wrong: each test breaks the toy plugin in one way and runs
the contract's test for that behaviour, which must fail (saying why).

The contract's tests are called directly with what their fixtures would give; ``test_pytest_reports_...`` runs one
broken subclass through pytest itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from hub.connectors import CheckResult, ClientOptions, Destination, KindSpec, Outgoing
from hub.delivery.outcomes import Outcome
from hub.sandbox import Faults
from tests.testing._toy import BATCH_LIMIT, ToyContract, ToyDestination, ToySettings

pytest_plugins = ("pytester",)


def contract_failure(contract: ToyContract, test: str, tmp_path: Path, **params: Any) -> str:
    """Run the contract's ``test`` on ``contract`` as pytest would; return its failure message (it must fail)."""
    method = getattr(contract, test)
    wanted = inspect.signature(method).parameters
    with ExitStack() as stack:
        if "contract" in wanted:
            params["contract"] = stack.enter_context(contract.open_contract(tmp_path))
        if "tmp_path" in wanted:
            params["tmp_path"] = tmp_path
        with pytest.raises((AssertionError, pytest.fail.Exception)) as failure:
            method(**params)
    return str(failure.value)


def broken(destination: type[Destination], **attributes: Any) -> ToyContract:
    """The toy contract pointed at ``destination``."""
    contract_type = type("BrokenContract", (ToyContract,), {"destination_type": destination, **attributes})
    return contract_type()  # type: ignore[no-any-return]


def test_a_check_that_always_passes_fails_on_bad_credentials_and_an_unreachable_url(tmp_path: Path) -> None:
    class Optimist(ToyDestination):
        def check(self) -> CheckResult:
            return CheckResult(True, "all good")

    contract = broken(Optimist)
    assert "credentials the emulator refuses" in contract_failure(
        contract, "test_check_names_refused_credentials", tmp_path
    )
    assert "nothing listens" in contract_failure(contract, "test_check_says_an_unreachable_url_does_not_work", tmp_path)


def test_a_check_that_does_not_name_the_credentials_fails(tmp_path: Path) -> None:
    class Vague(ToyDestination):
        def check(self) -> CheckResult:
            result = super().check()
            return result if result.ok else CheckResult(False, "it did not work")

    message = contract_failure(broken(Vague), "test_check_names_refused_credentials", tmp_path)
    assert "does not name the credentials" in message


def test_settings_without_descriptions_or_with_a_plain_text_secret_fail(tmp_path: Path) -> None:
    class Undocumented(ToySettings):
        region: str = "eu"

    class Sloppy(ToyDestination):
        Settings = Undocumented

    assert "without a description" in contract_failure(broken(Sloppy), "test_settings_schema_is_valid", tmp_path)


def test_a_lost_consent_fails(tmp_path: Path) -> None:
    class ForgetsOptOut(ToyDestination):
        def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
            payload = super().prepare(kind, view)
            if kind == "contact_upsert" and payload.get("emailConsent") is False:
                del payload["emailConsent"]
            return payload

    message = contract_failure(broken(ForgetsOptOut), "test_consents_reach_the_remote_both_ways", tmp_path)
    assert "email_consent=False" in message


def test_an_order_missing_lines_fails(tmp_path: Path) -> None:
    class FirstLineOnly(ToyDestination):
        def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
            payload = super().prepare(kind, view)
            if kind == "order":
                payload["lines"] = payload["lines"][:1]
            return payload

    contract_failure(broken(FirstLineOnly), "test_order_arrives_with_its_lines", tmp_path)


def test_a_segment_never_left_fails(tmp_path: Path) -> None:
    class NeverLeaves(ToyDestination):
        def _one(self, kind: str, payload: dict[str, Any]) -> Outcome:
            if kind == "segment_membership" and not payload["add"]:
                return Outcome.sent()
            return super()._one(kind, payload)

    contract_failure(broken(NeverLeaves), "test_segment_membership_is_added_and_removed", tmp_path)


def test_a_trigger_without_its_data_fails(tmp_path: Path) -> None:
    class NoData(ToyDestination):
        def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
            payload = super().prepare(kind, view)
            if kind == "trigger":
                payload["data"] = {"ref": payload["data"]["ref"]}
            return payload

    contract_failure(broken(NoData), "test_trigger_fires_with_its_payload", tmp_path)


def test_a_429_without_its_retry_after_fails(tmp_path: Path) -> None:
    class IgnoresRetryAfter(ToyDestination):
        def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
            return [Outcome.retryable(o.code, o.body) if o.code == 429 else o for o in super().send(kind, batch)]

    message = contract_failure(
        broken(IgnoresRetryAfter), "test_429_is_retryable_after_its_retry_after_and_changes_nothing", tmp_path
    )
    assert "429" in message


def test_a_5xx_taken_for_a_refusal_fails(tmp_path: Path) -> None:
    class GivesUpOn5xx(ToyDestination):
        def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
            return [Outcome.rejected(o.code, o.body) if (o.code or 0) >= 500 else o for o in super().send(kind, batch)]

    contract_failure(broken(GivesUpOn5xx), "test_5xx_is_retryable_and_a_resend_lands_once", tmp_path)


def test_a_refusal_without_the_response_body_fails(tmp_path: Path) -> None:
    class HidesTheBody(ToyDestination):
        def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
            return [
                Outcome.rejected(o.code, "refused") if o.status == "rejected" else o for o in super().send(kind, batch)
            ]

    contract_failure(broken(HidesTheBody), "test_validation_error_is_rejected_at_once_with_the_body", tmp_path)


def test_a_token_that_is_never_renewed_fails(tmp_path: Path) -> None:
    class StaticToken(httpx.Auth):
        """Fetches a token once and keeps it forever."""

        def __init__(self, api_key: str) -> None:
            self.api_key = api_key
            self.token: str | None = None

        def auth_flow(self, request: httpx.Request) -> Any:
            if self.token is None:
                answer = yield httpx.Request("POST", request.url.join("/token"), headers={"x-api-key": self.api_key})
                answer.read()
                self.token = answer.json()["access_token"]
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    class NeverRenews(ToyDestination):
        def client_options(self) -> ClientOptions:
            return ClientOptions(
                base_url=self.settings.base_url, auth=StaticToken(self.settings.api_key.get_secret_value())
            )

    contract_failure(broken(NeverRenews), "test_expired_token_is_renewed_without_losing_the_message", tmp_path)


class PostsOrders(ToyDestination):
    """Claims at-least-once orders but sends them with POST, which the API counts every time."""

    def _one(self, kind: str, payload: dict[str, Any]) -> Outcome:
        if kind == "order":
            return Outcome.from_response(self.http.post("/orders", json=payload))
        return super()._one(kind, payload)


def test_an_at_least_once_kind_that_is_not_idempotent_fails_the_lost_response_check(tmp_path: Path) -> None:
    message = contract_failure(
        broken(PostsOrders), "test_lost_response_follows_the_kinds_guarantee", tmp_path, kind="order"
    )
    assert "doubled it" in message


def test_an_at_most_once_kind_that_asks_for_a_resend_fails_the_lost_response_check(tmp_path: Path) -> None:
    class RetriesTriggers(ToyDestination):
        def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
            return [Outcome.retryable(None, o.body) if o.status == "unknown" else o for o in super().send(kind, batch)]

    message = contract_failure(
        broken(RetriesTriggers), "test_lost_response_follows_the_kinds_guarantee", tmp_path, kind="trigger"
    )
    assert "the core would resend it" in message


def test_batches_larger_than_the_api_takes_fail(tmp_path: Path) -> None:
    class Greedy(ToyDestination):
        kinds: ClassVar[Mapping[str, KindSpec]] = {
            **ToyDestination.kinds,
            "contact_upsert": KindSpec(BATCH_LIMIT + 3, "at_least_once", "too big"),
        }

    message = contract_failure(broken(Greedy), "test_batches_and_payloads_stay_within_the_limits", tmp_path)
    assert "a request carried 8 records" in message


def test_requests_over_the_payload_limit_fail(tmp_path: Path) -> None:
    contract = broken(ToyDestination, payload_limit=50)
    message = contract_failure(contract, "test_batches_and_payloads_stay_within_the_limits", tmp_path)
    assert "limit 50" in message


def test_the_pipeline_finds_orders_doubled_by_lost_answers(tmp_path: Path) -> None:
    lost_orders = Faults(drop_rate=0.6, paths=["/orders"], seed=1)  # ~7 of 12 orders lose their first answer
    contract = broken(PostsOrders, pipeline_size=12, pipeline_faults=lambda self: lost_orders)
    message = contract_failure(contract, "test_pipeline_with_faults_delivers_everything_once", tmp_path)
    assert "order PL-" in message


def test_pytest_reports_a_broken_plugin_and_never_collects_the_contract_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plugin="""
        from hub.connectors import CheckResult
        from hub.testing import DestinationContract
        from tests.testing._toy import ToyContract, ToyDestination

        class Optimist(ToyDestination):
            def check(self):
                return CheckResult(True, "all good")

        class TestOptimistContract(ToyContract):
            destination_type = Optimist
        """
    )
    result = pytester.runpytest_inprocess("-k", "check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*TestOptimistContract::test_check_names_refused_credentials*"])
