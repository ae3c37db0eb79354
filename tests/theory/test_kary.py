"""K-ary thresholds against brute force on the definitions, the simulated dynamics and the
Bernoulli solver (K = 2); the lambdified kernels against their SymPy source are in
``tests/symbolic/test_kary_kernels.py``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cliff
from cliff import kary_fixed_point, reduction, solve_kary
from tests._reference import kary_lambda_star
from tests.strategies import point
from validate.monte_carlo_kary import Config, mean_field, reinforce

THOROUGH = os.environ.get("CLIFF_THOROUGH", "") not in ("", "0")


def _dists(seed: int, n: int, k: int, conc: float, floor: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.full(k, conc), size=n) * (1 - floor) + floor / k
    r = rng.dirichlet(np.full(k, conc), size=n) * (1 - floor) + floor / k
    return t, r


# --- K = 2 is the Bernoulli model --------------------------------------------------------
@given(st.lists(point(), min_size=10, max_size=10))
def test_k2_equals_bernoulli(points: list[tuple[float, float, float, float]]) -> None:
    """lambda* and lambda_collapse of the two-class problem equal cliff.solve, rel 1e-12
    on lambda - 1 (600 points)."""
    p, b, c, cl = (np.array(v) for v in zip(*points, strict=True))
    got = solve_kary(np.stack([p, 1 - p], -1), np.stack([b, 1 - b], -1), c, c_low=cl)
    want = cliff.solve(p, b, c, c_low=cl)
    for g, w in ((got.lambda_star, want.lambda_star),
                 (got.lambda_collapse, want.lambda_collapse)):
        fin = np.isfinite(w)
        assert np.array_equal(fin, np.isfinite(g))
        np.testing.assert_allclose(g[fin] - 1, w[fin] - 1, rtol=1e-12, atol=0)


@settings(max_examples=200 if THOROUGH else 25)
@given(k=st.integers(2, 64), seed=st.integers(0, 2**31), c=st.floats(1.05, 50.0),
       conc=st.sampled_from([0.1, 0.5, 2.0]), low=st.sampled_from(["zero", "inv", "high"]))
def test_lambda_star_matches_brute_force(k: int, seed: int, c: float, conc: float,
                                         low: str) -> None:
    """solve_kary's lambda* equals a scan-plus-bisection search on the definitions (ratio of
    the unclipped fixed point leaving [c_low, c]) to 1e-6 relative in lambda - 1."""
    t, r = _dists(seed, 4, k, conc, 1e-4)
    cl = {"zero": 0.0, "inv": 1 / c, "high": 0.9}[low]
    got = np.asarray(solve_kary(t, r, c, c_low=cl).lambda_star)
    want = kary_lambda_star(t, r, c, cl)
    far = np.isinf(want)  # no exit up to lambda - 1 = 1e4 in the scan
    assert (got[far] - 1 > 1e4).all()
    np.testing.assert_allclose(got[~far] - 1, want[~far] - 1, rtol=1e-6)


# --- the simulated dynamics ------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 8])
def test_mean_field_fixed_point_and_runaway(k: int) -> None:
    """Mean-field Euler (eta 0.5, 20k steps) from theta_0 = log r: at 0.9 lambda* it
    converges to pi_lambda (|log err| < 1e-7: the slowest mode decays like
    exp(-eta pi_min T) with pi_min ~ 5e-3, i.e. to ~1e-22, so 1e-7 leaves room for rounding
    accumulated over 2e4 steps); at 1.2 lambda_collapse the smallest class runs to 0 (mass at
    T is < 0.75 of its value at T/2: the 1/t decay of a runaway halves it, a converged run
    keeps it)."""
    t, r = _dists(7 + k, 16, k, 1.0, 0.05)
    c = np.full(len(t), 5.0)
    res = solve_kary(t, r, c)
    ls, lc = np.asarray(res.lambda_star), np.asarray(res.lambda_collapse)
    assert (lc >= ls).all()
    lt, lr = np.log(t), np.log(r)
    cfg, half = Config(steps=20_000), Config(steps=10_000)
    lam = 1 + 0.9 * (ls - 1)
    log_pi, _ = mean_field(lt, lr, lam, c, 1 / c, cfg)
    assert np.abs(log_pi - np.log(kary_fixed_point(t, r, lam))).max() < 1e-7
    lam = 1 + 1.2 * (lc - 1)
    end, _ = mean_field(lt, lr, lam, c, 1 / c, cfg)
    mid, _ = mean_field(lt, lr, lam, c, 1 / c, half)
    shrink = np.exp(end.min(-1) - mid.min(-1))
    assert (shrink < 0.75).all(), shrink


def test_reinforce_fixed_point() -> None:
    """Finite-sample REINFORCE (N = 2000 tokens, eta 0.05, 4000 steps, 8 seeds) averaged over
    the last 2000 steps and the seeds sits at pi_lambda below lambda*: the stationary
    logit noise is ~ sqrt(eta / 2 N) ~ 4e-3 per step, so the average is within 0.01 of it."""
    t, r = _dists(3, 1, 4, 1.0, 0.1)
    c = 5.0
    ls = float(solve_kary(t, r, c).lambda_star[0])
    lam = 1 + 0.8 * (ls - 1)
    seeds = 8
    tt, rr = np.repeat(t, seeds, 0), np.repeat(r, seeds, 0)
    cfg = Config(steps=4000, eta=0.05, samples=2000, seed=11, record_every=1)
    _, trace = reinforce(np.log(tt), np.log(rr), np.full(seeds, lam), np.full(seeds, c),
                         np.full(seeds, 1 / c), cfg)
    avg = np.exp(np.array(trace[2000:])).mean(axis=(0, 1))
    assert np.abs(avg - kary_fixed_point(t, r, lam)[0]).max() < 0.01


# --- the Bernoulli reduction -----------------------------------------------------------------
def _calibrated(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(k), size=n)
    mask = np.zeros(k, bool)
    mask[: rng.integers(1, k)] = True
    rho_e = rng.uniform(0.5, 3.0, size=(n, 1))
    t = r * np.where(mask, rho_e, 1.0)
    t /= t.sum(-1, keepdims=True)
    return t, r, mask


@given(seed=st.integers(0, 2**31), k=st.integers(3, 16), c=st.floats(1.1, 20.0))
def test_reduction_exact_when_calibrated(seed: int, k: int, c: float) -> None:
    """Ratios constant inside E and inside the rest: aggregated lambda* = K-ary lambda*
    (rel 1e-9 on lambda - 1; the tie tolerance is 1e-12)."""
    t, r, mask = _calibrated(seed, 8, k)
    red = reduction(t, r, mask, c, c_low=0.0)
    assert red.calibrated.all()
    fin = np.isfinite(red.lambda_star_kary)
    np.testing.assert_allclose(red.lambda_star_aggregated[fin] - 1,
                               red.lambda_star_kary[fin] - 1, rtol=1e-9)


@given(seed=st.integers(0, 2**31), k=st.integers(3, 16), c=st.floats(1.1, 20.0),
       conc=st.sampled_from([0.2, 1.0, 5.0]))
def test_reduction_error_within_bound(seed: int, k: int, c: float, conc: float) -> None:
    """Uncalibrated splits: 0 <= lambda*_agg - lambda*_kary <= bound wherever both bind on
    the cap side (the aggregated model is never conservative)."""
    t, r = _dists(seed, 16, k, conc, 1e-3)
    mask = np.arange(k) < max(1, k // 3)
    red = reduction(t, r, mask, c)
    ok = red.bounded & np.isfinite(red.lambda_star_aggregated)
    tol = 1e-10 * (red.lambda_star_aggregated - 1)
    assert (red.error[ok] >= -tol[ok]).all()
    assert (red.error[ok] <= red.bound[ok] + tol[ok]).all()


# --- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("t, r, match", [
    ([0.5, 0.4], [0.5, 0.5], "sum to 1"),
    ([1.2, -0.2], [0.5, 0.5], "> 0"),
    ([1.0], [1.0], "K >= 2"),
    ([0.5, 0.5], [0.2, 0.3, 0.5], "same shape"),
    ([[0.5, 0.5]], [0.5, 0.5], "same shape"),
    ([0.5, 0.5, 0.0], [0.2, 0.3, 0.5], "> 0"),
])
def test_bad_input(t: list[float], r: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_kary(t, r, 5.0)


def test_bad_caps_and_binding() -> None:
    t, r = [0.7, 0.2, 0.1], [0.4, 0.4, 0.2]
    with pytest.raises(ValueError, match="c must be in"):
        solve_kary(t, r, 1.0)
    with pytest.raises(ValueError, match="c_low must be in"):
        solve_kary(t, r, 5.0, c_low=1.5)
    with pytest.raises(ValueError, match="class index"):
        solve_kary(t, r, 5.0, binding=3)
    with pytest.raises(ValueError, match="non-empty"):
        solve_kary(t, r, 5.0, binding=np.array([True, True, True]))


def test_binding_aggregates_to_bernoulli() -> None:
    """binding=E gives cliff.solve(t(E), r(E)) (rel 1e-12)."""
    t, r = _dists(5, 32, 6, 1.0, 1e-3)
    mask = np.array([True, False, True, False, False, False])
    got = solve_kary(t, r, 5.0, binding=mask)
    want = cliff.solve(t[:, mask].sum(-1), r[:, mask].sum(-1), 5.0)
    np.testing.assert_allclose(got.lambda_star - 1, want.lambda_star - 1, rtol=1e-12)
