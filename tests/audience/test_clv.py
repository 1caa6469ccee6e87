"""Predictive CLV against the published CDNOW results (Fader, Hardie & Lee 2005).

The CDNOW sample ships in the ``lifetimes`` package's datasets folder; it is read as data, never imported.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from hub.audience import clv
from hub.audience.attributes import compute_attributes
from hub.config._audience import AttributesConfig, ClvConfig
from hub.db import bulk_upsert, make_engine
from hub.models import Customer, CustomerAttributes, ModelFit, Order
from hub.schema import upgrade

CALIBRATION_END = date(1997, 9, 30)
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # BG/NBD, weeks
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # Gamma-Gamma, dollars


def datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations, "lifetimes (a dev dependency) holds the CDNOW data"
    return Path(spec.submodule_search_locations[0]) / "datasets"


def cdnow_transactions() -> list[tuple[int, date, float]]:
    """(customer, day, spend) of the calibration period."""
    rows = []
    for line in (datasets() / "CDNOW_sample.txt").read_text().splitlines():
        customer, _, ymd, _units, spend = line.split()
        day = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
        if day <= CALIBRATION_END:
            rows.append((int(customer), day, float(spend)))
    return rows


def weekly_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frequency (repeat purchase days), recency and T in weeks, as FHL define them."""
    days: dict[int, set[int]] = {}
    for customer, day, _ in cdnow_transactions():
        days.setdefault(customer, set()).add(day.toordinal())
    first = np.array([min(d) for d in days.values()], dtype=float)
    last = np.array([max(d) for d in days.values()], dtype=float)
    frequency = np.array([len(d) - 1 for d in days.values()], dtype=float)
    return frequency, (last - first) / 7, (CALIBRATION_END.toordinal() - first) / 7


def assert_near(fitted: dict[str, float], published: dict[str, float], tolerance: float = 0.05) -> None:
    for name, value in published.items():
        assert fitted[name] == pytest.approx(value, rel=tolerance), name


def test_bgnbd_fit_on_cdnow_is_within_5_percent_of_the_published_parameters():
    model = clv.fit_bgnbd(*weekly_summary())
    assert_near(model.to_dict(), PUBLISHED)


def test_bgnbd_alpha_carries_the_time_unit():
    frequency, recency, age = weekly_summary()
    weeks, days = clv.fit_bgnbd(frequency, recency, age), clv.fit_bgnbd(frequency, recency * 7, age * 7)
    assert days.alpha == pytest.approx(7 * weeks.alpha, rel=1e-3)
    assert (days.r, days.a, days.b) == pytest.approx((weeks.r, weeks.a, weeks.b), rel=1e-3)


def test_conditional_expectation_matches_the_papers_worked_example():
    # FHL 2005: a customer with x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in the next 39 weeks.
    model = clv.BgNbd(**PUBLISHED)
    assert clv.expected_purchases(model, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=1e-3)


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    model = clv.BgNbd(**PUBLISHED)
    alive = clv.p_alive(model, [0, 3, 3], [0, 30, 10], [38, 38, 38])
    assert alive[0] == 1.0
    assert 0 < alive[2] < alive[1] < 1


def test_expected_purchases_grow_with_the_horizon():
    model = clv.BgNbd(**PUBLISHED)
    horizons = [clv.expected_purchases(model, t, [1, 0], [10, 0], [30, 30]) for t in (10, 52, 104)]
    assert np.all(np.diff(np.array(horizons), axis=0) > 0)


def test_gamma_gamma_fit_on_cdnow_is_within_5_percent_of_the_published_parameters():
    with (datasets() / "cdnow_customers_summary_with_transactions.csv").open() as handle:
        rows = [(float(row["x"]), float(row["zbar"])) for row in csv.DictReader(handle) if float(row["x"]) > 0]
    frequency, spend = np.array(rows).T
    model = clv.fit_gamma_gamma(frequency, spend)
    assert_near(model.to_dict(), PUBLISHED_GG)
    # The expected spend shrinks a customer's own mean towards the population's.
    expected = clv.expected_spend(model, [1, 50], [100.0, 100.0])
    assert model.population_mean < expected[0] < expected[1] < 100.0


# ------------------------------------------------------------------------------- through compute_attributes


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def load_cdnow(conn: sa.Connection) -> None:
    at = datetime(1997, 1, 1, tzinfo=UTC)
    transactions = cdnow_transactions()
    customers = sorted({customer for customer, _, _ in transactions})
    bulk_upsert(
        conn,
        Customer.__table__,  # type: ignore[attr-defined]
        [(c, False, 0, at, at) for c in customers],
        ["id", "is_b2b", "source_rank", "created_at", "updated_at"],
        ["id"],
    )
    bulk_upsert(
        conn,
        Order.__table__,  # type: ignore[attr-defined]
        [
            (n, "cdnow", str(n), customer, datetime(day.year, day.month, day.day, 12, tzinfo=UTC), spend, False, at)
            for n, (customer, day, spend) in enumerate(transactions, 1)
        ],
        ["id", "source", "external_id", "customer_id", "placed_at", "total", "is_return", "loaded_at"],
        ["id"],
    )


def test_compute_fits_cdnow_in_days_and_an_incremental_compute_reuses_the_fit(engine):
    now = datetime(1997, 9, 30, 23, 59, tzinfo=UTC)
    config = AttributesConfig(clv=ClvConfig(horizon=timedelta(weeks=39)))
    fits: sa.Table = ModelFit.__table__  # type: ignore[attr-defined]
    attributes: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        load_cdnow(conn)
        summary = compute_attributes(conn, config, now)
        params = {row.name: row.params for row in conn.execute(sa.select(fits))}
        first = conn.execute(sa.select(attributes).where(attributes.c.customer_id == 4)).mappings().one()
        conn.execute(attributes.update().values(clv_predicted=None, p_alive=None))
        again = compute_attributes(conn, config, now, customer_ids=[4])
        second = conn.execute(sa.select(attributes).where(attributes.c.customer_id == 4)).mappings().one()
    assert summary.fitted and not again.fitted
    bgnbd = params["bgnbd"]
    assert_near({**bgnbd, "alpha": bgnbd["alpha"] / 7}, PUBLISHED)
    model = clv.BgNbd(**bgnbd)
    # Customer 00004 bought on 1997-01-01, 01-18 and 08-02: 2 repeat days, recency 213 days, T 272 days.
    history = [2], [213], [(now.date() - date(1997, 1, 1)).days]
    assert first["p_alive"] == pytest.approx(clv.p_alive(model, *history)[0])
    assert first["expected_purchases"] == pytest.approx(clv.expected_purchases(model, 273, *history)[0])
    assert first["clv_predicted"] > 0
    assert (second["clv_predicted"], second["p_alive"]) == (first["clv_predicted"], first["p_alive"])


def test_too_few_repeat_customers_leave_the_predictions_empty_and_forget_an_old_fit(engine):
    now = datetime(2025, 6, 1, tzinfo=UTC)
    fits: sa.Table = ModelFit.__table__  # type: ignore[attr-defined]
    attributes: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.insert(fits).values(name="bgnbd", params=PUBLISHED, details={}, fitted_at=now))
        conn.execute(sa.insert(Customer.__table__).values(id=1, created_at=now, updated_at=now))  # type: ignore[attr-defined]
        for n in (1, 2):
            conn.execute(
                sa.insert(Order.__table__).values(  # type: ignore[attr-defined]
                    id=n, source="s", external_id=str(n), customer_id=1, placed_at=now - timedelta(days=n * 10),
                    total=10, loaded_at=now,
                )
            )  # fmt: skip
        summary = compute_attributes(conn, AttributesConfig(), now)
        row = conn.execute(sa.select(attributes)).mappings().one()
        left = conn.execute(sa.select(sa.func.count()).select_from(fits)).scalar_one()
    assert not summary.fitted and left == 0
    assert (row["clv_predicted"], row["expected_purchases"], row["p_alive"]) == (None, None, None)
