"""Predictive CLV: BG/NBD for how many purchases to expect, Gamma-Gamma for how much each one is worth.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a customer buys at a
  Poisson rate (gamma-distributed over customers: ``r``, ``alpha``); after each purchase they drop out with a
  probability (beta-distributed: ``a``, ``b``). Inputs per customer: ``frequency`` (repeat purchases, here repeat
  purchase days), ``recency`` (first to last purchase) and ``T`` (first purchase to now), in one time unit;
  ``alpha`` carries that unit (days: 7x the weekly value), ``r``, ``a`` and ``b`` are unit-free.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves"): spend per purchase varies around a
  customer's own mean, which varies over customers (``p``, ``q``, ``gamma``); fitted on repeat customers only.

Both are fitted by maximum likelihood with scipy (L-BFGS-B on log-parameters, analytic gradients), vectorised over
numpy arrays: one fit over 100k customers takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BgNbd:
    """Fitted BG/NBD parameters; ``alpha`` is in the time unit of the data it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters; ``gamma`` is in the currency of the data."""

    p: float
    q: float
    gamma: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """Mean spend per purchase over customers (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


def _arrays(*values: npt.ArrayLike) -> list[Array]:
    return [np.asarray(value, dtype=np.float64) for value in values]


def _bgnbd_nll(log_params: Array, x: Array, tx: Array, big_t: Array) -> tuple[float, Array]:
    """Mean negative log-likelihood of BG/NBD and its gradient with respect to the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    # Only repeat buyers can have dropped out after their last purchase; b + x - 1 > 0 holds for them.
    safe = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(safe) - (r + x) * np.log(alpha + tx), -np.inf)
    mix = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - mix)
    w3 = 1.0 - w4
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + big_t) - w4 * np.log(alpha + tx)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + big_t) - w4 * (r + x) / (alpha + tx)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / safe
    n = len(x)
    gradient = np.array([d_r.sum() * r, d_alpha.sum() * alpha, d_a.sum() * a, d_b.sum() * b]) / n
    return -float((a1 + a2 + mix).sum()) / n, -gradient


def fit_bgnbd(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> BgNbd:
    """Fit BG/NBD by maximum likelihood. ``frequency`` = repeat purchases, ``recency`` and ``T`` in one unit.

    Time is rescaled to its mean ``T`` for the optimiser (only ``alpha`` depends on the unit, and exactly).
    """
    x, tx, big_t = _arrays(frequency, recency, T)
    if len(x) == 0:
        raise ValueError("no customers to fit on")
    scale = float(big_t.mean()) or 1.0
    result = minimize(
        _bgnbd_nll,
        np.zeros(4),
        args=(x, tx / scale, big_t / scale),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 4,
    )
    r, alpha, a, b = np.exp(result.x)
    return BgNbd(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b))


def p_alive(model: BgNbd, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """Probability each customer is still active (FHL 2005, eq. 13); 1 for customers with no repeat purchase."""
    x, tx, big_t = _arrays(frequency, recency, T)
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    safe = np.where(x > 0, b + x - 1, 1.0)
    odds = np.where(x > 0, a / safe * np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(
    model: BgNbd,
    t: float,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """Expected purchases in the next ``t`` time units given each customer's history (FHL 2005, eq. 10)."""
    x, tx, big_t = _arrays(frequency, recency, T)
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    hyp_a, hyp_b, hyp_c = r + x, b + x, a + b + x - 1
    z = t / (alpha + big_t + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(hyp_a, hyp_b, hyp_c, z))
        # Euler's transformation where the series overflows: the same value, computed another way.
        ln_alt = np.log(hyp2f1(hyp_c - hyp_a, hyp_c - hyp_b, hyp_c, z)) + (hyp_c - hyp_a - hyp_b) * np.log1p(-z)
    ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, ln_alt)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + big_t) / (alpha + t + big_t)))
    safe = np.where(x > 0, b + x - 1, 1.0)
    odds = np.where(x > 0, a / safe * np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))), 0.0)
    return np.asarray(first * second / (1 + odds), dtype=np.float64)


def _gamma_gamma_nll(log_params: Array, x: Array, m: Array) -> tuple[float, Array]:
    p, q, gamma = np.exp(log_params)
    px = p * x
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )
    log_mx = np.log(gamma + m * x)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_mx)
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - log_mx
    d_gamma = q / gamma - (px + q) / (gamma + m * x)
    n = len(x)
    gradient = np.array([d_p.sum() * p, d_q.sum() * q, d_gamma.sum() * gamma]) / n
    return -float(ll.sum()) / n, -gradient


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> GammaGamma:
    """Fit Gamma-Gamma on customers with ``frequency`` purchases > 0 and a positive mean spend ``monetary``.

    Spend is rescaled to its mean for the optimiser (only ``gamma`` depends on the currency unit, and exactly).
    """
    x, m = _arrays(frequency, monetary)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if len(x) == 0:
        raise ValueError("no repeat customers with positive spend to fit on")
    scale = float(m.mean())
    result = minimize(
        _gamma_gamma_nll,
        np.zeros(3),
        args=(x, m / scale),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 3,
    )
    p, q, gamma = np.exp(result.x)
    return GammaGamma(p=float(p), q=float(q), gamma=float(gamma * scale))


def expected_spend(model: GammaGamma, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> Array:
    """Expected mean spend per future purchase: a weighted mean of the population's and the customer's own.

    A customer with no purchases (or no positive spend) gets the population mean's weight alone.
    """
    x, m = _arrays(frequency, monetary)
    p, q = model.p, model.q
    own = np.clip(m, 0.0, None)
    weight = p * x / (p * x + q - 1)
    return np.asarray((1 - weight) * model.population_mean + weight * own, dtype=np.float64)
