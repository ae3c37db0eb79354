"""The closed forms against the *simulated* clipped G-OPD dynamics (validate.monte_carlo).

Nothing here re-evaluates a formula to check itself: each prediction of :mod:`cliff` is set
against a simulation built from the definitions of derivations/model.md.  lambda is drawn
at a relative margin from every threshold (at least 1% of the interval it is drawn in, or 1% of
lambda_collapse above it), so the measure-zero boundary cases, where the simulated state
sits exactly on a kink, are avoided.  ``CLIFF_THOROUGH=1`` draws more examples.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy.special import expit

import cliff
from validate import monte_carlo as mc

THOROUGH = os.environ.get("CLIFF_THOROUGH", "") not in ("", "0")
FEW, MANY = (60, 30) if THOROUGH else (25, 8)


def _prob() -> st.SearchStrategy[float]:
    """Uniform, near-deterministic (1 - 10^-k) and near-zero (10^-k) probabilities, k <= 12."""
    return st.one_of(st.floats(0.02, 0.98), st.floats(2.0, 12.0).map(lambda k: 1 - 10**-k),
                     st.floats(2.0, 12.0).map(lambda k: 10**-k))


@st.composite
def points(draw: st.DrawFn, prob: st.SearchStrategy[float] | None = None
           ) -> tuple[float, float, float, float | None]:
    """(p, b, c, c_low): both regimes, |logit p - logit b| >= 0.3, c in [1.2, 10],
    c_low in {0, 1/c (None), other in [0, 0.95]}."""
    p = draw(_prob() if prob is None else prob)
    b = draw(st.floats(0.05, 0.95).filter(
        lambda v: abs(math.log(p / (1 - p)) - math.log(v / (1 - v))) >= 0.3))
    c = draw(st.floats(1.2, 10.0))
    c_low = draw(st.one_of(st.just(0.0), st.none(), st.floats(0.0, 0.95)))
    return p, b, c, c_low


def _logit_pred(p: float, b: float, c: float, lam: float, c_low: float | None) -> float:
    m = cliff.clipped_fixed_point(p, b, c, lam, c_low=c_low)
    tail = cliff.clipped_fixed_point(p, b, c, lam, c_low=c_low, complement=True)
    return math.log(m) - math.log(tail)


def _tol(p: float, b: float, c: float, lam: float, c_low: float | None, theta: object,
         want: float) -> float:
    """1e-7 (1 + |theta|) plus the conditioning of the zero of g: g's constant terms
    (log-ratios, log c, the push (lambda-1) log piT/pi0) carry rounding ~ 1e-16 each, which
    moves the zero by that over k = -dg/dtheta (tiny at a clipped near-deterministic point)."""
    model = mc.Model.build(p, b, c, lam, c_low)
    k = max(float(model.slope(np.asarray(theta, dtype=float))), 1e-300)
    scale = 1 + abs(float(model.push_m)) + abs(float(model.push_t)) + math.log(c) + abs(
        float(model.log_pbar)) + abs(float(model.log_p))
    return 1e-7 * (1 + abs(want)) + 1e-14 * scale / k


@settings(max_examples=FEW)
@given(pt=points(), u=st.floats(0.01, 0.99))
def test_below_threshold_settles_at_unclipped_fixed_point(pt: tuple, u: float) -> None:
    """(1) 1 < lambda < lambda*: the simulated flow settles at logit b + lambda D.

    The relaxed clock contracts the distance by e^-1 per step on each linear piece; after
    400 steps the residual is at rounding level, so the tolerance is 1e-7 (1 + |theta|).
    """
    p, b, c, c_low = pt
    r = cliff.solve(p, b, c, c_low=c_low)
    lam = 1 + u * (r.lambda_star - 1)
    theta = float(mc.mean_field(p, b, c, lam, c_low=c_low, steps=400, clock="relaxed"))
    want = math.log(cliff.fixed_point(p, b, lam)) - math.log(
        cliff.fixed_point(p, b, lam, complement=True))
    assert theta == pytest.approx(want, abs=_tol(p, b, c, lam, c_low, theta, want))


@settings(max_examples=FEW)
@given(pt=points(), u=st.floats(0.01, 0.99))
def test_between_thresholds_settles_at_clipped_fixed_point(pt: tuple, u: float) -> None:
    """(2) lambda* <= lambda < lambda_collapse: the flow settles at the clipped fixed point,
    and its state there has a clipped ratio.  Tolerance as in (1)."""
    p, b, c, c_low = pt
    r = cliff.solve(p, b, c, c_low=c_low)
    lam = r.lambda_star + u * (r.lambda_collapse - r.lambda_star)
    theta = mc.mean_field(p, b, c, lam, c_low=c_low, steps=400, clock="relaxed")
    want = _logit_pred(p, b, c, lam, c_low)
    assert float(theta) == pytest.approx(want, abs=_tol(p, b, c, lam, c_low, theta, want))
    assert bool(mc.Model.build(p, b, c, lam, c_low).clipped(theta, tol=-1e-12))


@settings(max_examples=FEW)
@given(pt=points(), r_=st.floats(0.01, 1.0))
def test_past_collapse_runs_away_in_predicted_direction(pt: tuple, r_: float) -> None:
    """(3) lambda > lambda_collapse: no fixed point; the state runs to m -> 1 (sharpening) or
    m -> 0 (softening): after 400 relaxed steps the log-odds is past +-100 on that side and
    the drift still pushes that way."""
    p, b, c, c_low = pt
    res = cliff.solve(p, b, c, c_low=c_low)
    lam = res.lambda_collapse * (1 + r_)
    sign = 1.0 if res.regime == "sharpening" else -1.0
    theta = mc.mean_field(p, b, c, lam, c_low=c_low, steps=400, clock="relaxed")
    assert sign * float(theta) > 100.0
    assert sign * float(mc.Model.build(p, b, c, lam, c_low).drift(theta)) > 0.0


@settings(max_examples=FEW)
@given(pt=points())
def test_mean_field_scan_locates_cliff(pt: tuple) -> None:
    """(4a) Scanning 401 lambdas on [1, 2 lambda_collapse - 1], the first lambda whose
    simulated drift has not vanished (|g| > 1e-7 after 400 relaxed steps) is within 1%
    (relative) of lambda_collapse.  Grid step <= lambda_collapse / 200 = 0.5%."""
    p, b, c, c_low = pt
    lam_c = cliff.solve(p, b, c, c_low=c_low).lambda_collapse
    lams = np.linspace(1.0, 1.0 + 2.0 * (lam_c - 1.0), 401)
    theta = mc.mean_field(p, b, c, lams, c_low=c_low, steps=400, clock="relaxed")
    moving = np.abs(mc.Model.build(p, b, c, lams, c_low).drift(theta)) > 1e-7
    found = lams[np.flatnonzero(moving)[0]]
    assert abs(found - lam_c) <= 0.01 * lam_c


@settings(max_examples=MANY)
@given(pt=points(st.floats(0.1, 0.9)), u=st.floats(0.05, 0.95))
def test_finite_sample_settles_where_mean_field_does(pt: tuple, u: float) -> None:
    """(4b) The sampled dynamics (REINFORCE, N = 256 tokens, S = 16 seeds) fluctuate around the
    simulated mean-field fixed point, below and above lambda*.

    Tolerance from N and S: at a fixed point A(M) = A(T) = a, so the per-step gradient noise
    has variance m(1-m) a^2 / N, and the linearised chain theta_{n+1} - theta* =
    (1 - eta kappa)(theta_n - theta*) + noise (kappa = m(1-m) k, k = -dg/dtheta) has
    stationary sd sigma = |a| sqrt(eta / (2 N k)).  The mean over S seeds of each chain's
    average over its last 1000 steps has sd at most sigma / sqrt(S); we allow
    5 sigma / sqrt(S) plus sigma^2 for the O(sigma^2) bias of the curved drift.
    """
    p, b, c, c_low = pt
    res = cliff.solve(p, b, c, c_low=c_low)
    lam = 1 + u * (min(res.lambda_collapse, 4.0) - 1)
    n, s, lr = 256, 16, 0.5
    star = mc.mean_field(p, b, c, lam, c_low=c_low, steps=400, clock="relaxed")
    model = mc.Model.build(p, b, c, lam, c_low)
    k = float(model.slope(star))
    a = float(model.advantages(star)[0])
    m = float(expit(star))
    if k * m * (1 - m) * lr < 5e-3:  # relaxation slower than the 2000-step budget
        event("skipped: slow relaxation")
        return
    sim = mc.finite_sample(p, b, c, lam, c_low=c_low, steps=2000, lr=lr, samples=n,
                           seeds=s, seed=7, window=0.5)
    sigma = abs(a) * math.sqrt(lr / (2 * n * k))
    assert float(sim.theta_avg.mean()) == pytest.approx(
        float(star), abs=5 * sigma / math.sqrt(s) + sigma**2 + 1e-9)


@settings(max_examples=MANY)
@given(pt=points(st.floats(0.1, 0.9)))
def test_finite_sample_scan_locates_cliff(pt: tuple) -> None:
    """(4b') The sampled scan (N = 256, S = 16 seeds, T = 3000 steps) finds the cliff where the
    drift stops vanishing: the first of 41 lambdas on [1, 2 lambda_collapse - 1] whose
    seed-mean drift at the final state, in the runaway direction, exceeds 5 SE.  SE is the
    seed-to-seed sd of that drift over sqrt(S) (its size set by N through sigma above).  Past
    lambda_collapse the drift is >= (lambda - lambda_collapse) D in every state, so the
    located cliff is at most one grid step (2.5% of lambda_collapse - 1) plus 5 SE / D above
    lambda_collapse; and it is at most one grid step below where the same criterion puts
    the cliff on the T-step mean field (below lambda_collapse, slowly relaxing points may
    not have settled within T steps)."""
    p, b, c, c_low = pt
    res = cliff.solve(p, b, c, c_low=c_low)
    lam_c = res.lambda_collapse
    if not lam_c < 4.0:
        event("skipped: lambda_collapse >= 4")
        return
    sign = 1.0 if res.regime == "sharpening" else -1.0
    lams = np.linspace(1.0, 1.0 + 2.0 * (lam_c - 1.0), 41)
    sim = mc.finite_sample(p, b, c, lams, c_low=c_low, steps=3000, lr=0.5, samples=256,
                           seeds=16, seed=3)
    g = sign * mc.Model.build(p, b, c, lams, c_low).drift(sim.theta)  # (S, 41)
    se = g.std(axis=0, ddof=1) / math.sqrt(16)
    ran = g.mean(axis=0) > 5 * se + 1e-12
    found = lams[np.flatnonzero(ran)[0]]
    step = lams[1] - lams[0]
    d = abs(math.log(p / (1 - p)) - math.log(b / (1 - b)))
    assert found <= lam_c + step + 5 * float(se.max()) / d
    # below lambda_collapse the chains may not have settled in T steps; the same criterion on
    # the T-step mean field (the chains' expectation) marks where that stops being so
    g_mf = sign * mc.Model.build(p, b, c, lams, c_low).drift(
        mc.mean_field(p, b, c, lams, c_low=c_low, steps=3000, lr=0.5, clock="sgd"))
    mf_found = lams[np.flatnonzero(g_mf > 5 * se + 1e-12)[0]]
    assert found >= min(mf_found, lam_c) - step


@settings(max_examples=FEW)
@given(pt=points(st.floats(0.05, 0.95)), steps=st.integers(20, 300),
       tau=st.floats(0.2, 0.8))
def test_finite_budget_onset_matches_simulated_scan(pt: tuple, steps: int, tau: float) -> None:
    """(4c) The exact onset lambda_T agrees with the simulated T-step mean field: just below it
    (relative 1e-8, > the 1e-10 bisection bracket) m_T is not past tau, at it m_T is."""
    p, b, c, c_low = pt
    lr = 0.9 * float(cliff.max_monotone_lr(p, b, c, 4.0, c_low=c_low))
    lt = cliff.finite_budget_onset(p, b, c, steps, lr, c_low=c_low, threshold=tau,
                                     lam_max=4.0)
    if not (1.0 < lt < 4.0):
        event("skipped: onset 1 or beyond 4")
        return
    sign = 1.0 if p > b else -1.0
    lams = np.array([lt * (1 - 1e-8), lt])
    theta = mc.mean_field(p, b, c, lams, c_low=c_low, steps=steps, lr=lr, clock="sgd")
    past = sign * (theta - math.log(tau / (1 - tau))) >= 0
    assert past.tolist() == [False, True]


@settings(max_examples=FEW)
@given(pt=points(st.floats(0.05, 0.95)), tau=st.floats(0.2, 0.8))
def test_asymptotic_onset_matches_long_simulation(pt: tuple, tau: float) -> None:
    """(4d) lambda_inf: at lambda_inf (1 - 1e-3) the settled state is not past tau, at
    lambda_inf (1 + 1e-3) it is (relaxed clock, 600 steps)."""
    p, b, c, c_low = pt
    li = cliff.asymptotic_onset(p, b, c, c_low=c_low, threshold=tau)
    if not (1.0 < li < math.inf):
        event("skipped: lambda_inf = 1")
        return
    sign = 1.0 if p > b else -1.0
    lams = np.array([li * (1 - 1e-3), li * (1 + 1e-3)])
    theta = mc.mean_field(p, b, c, lams, c_low=c_low, steps=600, clock="relaxed")
    past = sign * (theta - math.log(tau / (1 - tau))) >= 0
    assert past.tolist() == [False, True]


@settings(max_examples=MANY)
@given(pt=points(st.floats(0.1, 0.9)), u=st.floats(0.05, 0.95),
       epochs=st.integers(2, 4), eps=st.floats(0.05, 0.3))
def test_ppo_ratio_clip_does_not_move_fixed_point(pt: tuple, u: float, epochs: int,
                                                  eps: float) -> None:
    """(5) E epochs of a PPO ratio clip on top: the expected (mean-field) dynamics settle at
    the same point as without (at a fixed point theta does not move in the first epoch, so
    r = 1 and nothing is clipped in the later ones), to 1e-6 after 6000 steps; the sampled
    chains (N = 256, S = 16) average to it within the (4b) tolerance."""
    p, b, c, c_low = pt
    res = cliff.solve(p, b, c, c_low=c_low)
    lam = 1 + u * (min(res.lambda_collapse, 4.0) - 1)
    star = float(mc.mean_field(p, b, c, lam, c_low=c_low, steps=400, clock="relaxed"))
    model = mc.Model.build(p, b, c, lam, c_low)
    k, a, m = float(model.slope(star)), float(model.advantages(star)[0]), float(expit(star))
    lr = 0.5 / epochs
    if k * m * (1 - m) * lr * epochs < 5e-3:
        event("skipped: slow relaxation")
        return
    ppo = mc.mean_field(p, b, c, lam, c_low=c_low, steps=6000, lr=lr, clock="sgd",
                        epochs=epochs, eps=eps)
    assert float(ppo) == pytest.approx(star, abs=1e-6 * (1 + abs(star)))
    sim = mc.finite_sample(p, b, c, lam, c_low=c_low, steps=2000, lr=lr, samples=256,
                           seeds=16, seed=11, epochs=epochs, eps=eps)
    sigma = abs(a) * math.sqrt(lr * epochs / (2 * 256 * k))
    assert float(sim.theta_avg.mean()) == pytest.approx(
        star, abs=5 * sigma / math.sqrt(16) + sigma**2 + 1e-9)


def test_vectorised_equals_loop_reference() -> None:
    """The vectorised sampler and the plain-Python loop take the same steps on the same
    random stream (seeds x lambdas x parameter sets, with and without PPO epochs)."""
    p = np.array([0.7, 0.99, 1 - 1e-9])[None, :]
    lam = np.linspace(1.0, 3.0, 4)[:, None]
    for epochs, eps in [(1, None), (3, 0.2)]:
        kw = dict(steps=30, lr=0.3, samples=16, seeds=3, seed=5, epochs=epochs, eps=eps)
        vec = mc.finite_sample(p, 0.5, 5.0, lam, **kw).theta  # type: ignore[arg-type]
        ref = mc.finite_sample_loop(p, 0.5, 5.0, lam, **kw)  # type: ignore[arg-type]
        np.testing.assert_allclose(vec, ref, rtol=1e-12, atol=1e-12)


def test_seeded_runs_reproduce() -> None:
    """Same seed, same result; another seed, another result."""
    kw = dict(steps=50, samples=32, seeds=4)
    one = mc.finite_sample(0.8, 0.5, 5.0, 1.5, seed=1, **kw).theta  # type: ignore[arg-type]
    two = mc.finite_sample(0.8, 0.5, 5.0, 1.5, seed=1, **kw).theta  # type: ignore[arg-type]
    three = mc.finite_sample(0.8, 0.5, 5.0, 1.5, seed=2, **kw).theta  # type: ignore[arg-type]
    assert np.array_equal(one, two) and not np.array_equal(one, three)
