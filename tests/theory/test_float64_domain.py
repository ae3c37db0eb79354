"""No silent wrong answer anywhere in the float64 domain.

``cliff.solve`` against a 50-digit reference written from the model's definitions
(``tests/_reference.mp_thresholds``) over the whole domain: subnormal masses, ``p`` within a
few ulps of ``b``, caps from ``1 + 2^-52`` to the float maximum, floors at 0, at ``1/c``
(exactly, the default, and its float rounding), near 1 and near both of their switches.
A *unit* is the larger of one ulp of the true value and ``1e-12 (lambda - 1)``.  Then
``cliff.solve_kary`` at K = 2 against ``cliff.solve``, and a fuzz over the domain for NaN,
silent 1.0, warnings (errors in this suite) and the order ``lambda* <= lambda_collapse``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

import cliff
from tests import _reference as ref
from tests.strategies import C_MAX, domain_point

THOROUGH = os.environ.get("CLIFF_THOROUGH", "") not in ("", "0")
UNITS = 64


@settings(max_examples=100_000 if THOROUGH else 2000)
@given(domain_point())
def test_solve_within_64_units_of_50_digit_reference(
        point: tuple[float, float, float, float | None]) -> None:
    """lambda*, lambda_collapse within 64 units; neutral points give inf; the binding side
    is the reference's unless the two classes' first exits are within 1e-9 of each other.
    ``--hypothesis-show-statistics`` reports the largest errors seen (target scores)."""
    p, b, c, c_low = point
    want_star, want_col, want_binding, separation = ref.mp_thresholds(p, b, c, c_low)
    r = cliff.solve(p, b, c, c_low=c_low)
    star = ref.error_units(r.lambda_star, want_star)
    col = ref.error_units(r.lambda_collapse, want_col)
    target(min(star, 1e300), label="lambda* error (units)")
    target(min(col, 1e300), label="lambda_collapse error (units)")
    assert star <= UNITS, (point, r.lambda_star, want_star)
    assert col <= UNITS, (point, r.lambda_collapse, want_col)
    assert r.binding == want_binding or separation < 1e-9, (point, r.binding, separation)


REPRODUCERS = [  # the issue's points: (p, b, c, c_low), and the true lambda* it quotes
    ((1 - 1e-10, 1e-300, 5.0, None), 1.0022547419498448),
    ((1e-300, 1 - 1e-10, 5.0, None), None),
    ((1e-310, 0.5, 5.0, None), None),
    ((0.9, 0.5, 1.7e308, None), 324.0585552021465),
    ((1e-12, 0.5, 5.0, 1 - 5e-13), None),
    ((7.372820509500967e-16, 0.984731379343848, 999999.0, 0.9999999999999999), None),
]


@pytest.mark.parametrize(("point", "quoted"), REPRODUCERS)
def test_issue_reproducers(point: tuple[float, float, float, float | None],
                           quoted: float | None) -> None:
    """Overflow (silent 1.0 or inf) and cancellation at the floor's switch: within 64
    units of the reference and of the value the issue quotes, which the CLI prints too."""
    p, b, c, c_low = point
    want_star, want_col, _, _ = ref.mp_thresholds(p, b, c, c_low)
    r = cliff.solve(p, b, c, c_low=c_low)
    assert ref.error_units(r.lambda_star, want_star) <= UNITS
    assert ref.error_units(r.lambda_collapse, want_col) <= UNITS
    if quoted is None:
        return
    assert ref.error_units(r.lambda_star, quoted) <= UNITS
    args = ["--p", repr(p), "--b", repr(b), "--c", repr(c)]
    args += [] if c_low is None else ["--c-low", repr(c_low)]
    out = subprocess.run([sys.executable, "-m", "cliff", "solve", *args, "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["lambda_star"] == r.lambda_star


# --- solve_kary at K = 2 ----------------------------------------------------------------
def _pair(x: float) -> tuple[float, float]:
    """A two-class distribution summing to 1 exactly with first mass ~x: ``(x, 1 - x)`` when
    that is exact (x >= 1/2), ``(1 - Q, Q)`` with ``Q = fl(1 - x)`` otherwise; ``(x, 1)``
    for x below 2^-54 (renormalised: within x relative of ``(x, 1 - x)``, below rounding)."""
    if x >= 0.5:
        return x, 1.0 - x
    if x < 2.0 ** -54:
        return x, 1.0
    return 1.0 - (1.0 - x), 1.0 - x


def _k2_units(got: float, want: float) -> float:
    """|got - want| in units of max(2 ulp(want), 1e-12 (want - 1)) (inf when only one is)."""
    if np.isinf(want) or np.isinf(got):
        return 0.0 if got == want else np.inf
    return abs(got - want) / max(2 * float(np.spacing(want)), 1e-12 * (want - 1))


@settings(max_examples=5000 if THOROUGH else 300)
@given(st.lists(domain_point(), min_size=8, max_size=8))
def test_kary_k2_equals_solve(points: list[tuple[float, float, float, float | None]]) -> None:
    """solve_kary on exact two-class distributions equals cliff.solve to 1e-12 relative in
    lambda - 1 (or 2 ulps of lambda, the resolution of lambda - 1 below ~1e-4), inf exactly
    where solve is inf; the default floor and explicit floors in separate calls."""
    for default in (True, False):
        pts = [pt for pt in points if (pt[3] is None) == default]
        if not pts:
            continue
        t = np.array([_pair(pt[0]) for pt in pts])
        r = np.array([_pair(pt[1]) for pt in pts])
        c = np.array([pt[2] for pt in pts])
        c_low = None if default else np.array([pt[3] for pt in pts])
        got = cliff.solve_kary(t, r, c, c_low=c_low)
        want = cliff.solve(t[:, 0], r[:, 0], c, c_low=c_low)
        for g, w in ((got.lambda_star, want.lambda_star),
                     (got.lambda_collapse, want.lambda_collapse)):
            units = [_k2_units(gi, wi) for gi, wi in zip(g, w, strict=True)]
            assert max(units) <= 1, (pts, g, w, units)


# --- fuzz ----------------------------------------------------------------------------------
def _masses(rng: np.random.Generator, n: int) -> np.ndarray:
    """Probabilities over the whole of (0, 1): log-uniform down to the subnormals, log-uniform
    up to one ulp below 1, uniform."""
    kind = rng.integers(0, 3, n)
    low = 10.0 ** rng.uniform(-323.3, 0.0, n)
    high = 1.0 - 10.0 ** rng.uniform(-16.0, 0.0, n)
    out = np.select([kind == 0, kind == 1], [low, high], rng.uniform(0.0, 1.0, n))
    return np.where((out > 0.0) & (out < 1.0), out, 0.5)


def _near(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """``x`` moved 1-8 ulps either way, or by a relative 10^-k, k in [1, 15]."""
    steps = x.copy()
    toward = np.where(rng.random(x.size) < 0.5, 0.0, 2.0)
    for k in range(8):
        move = rng.integers(1, 9, x.size) > k
        steps = np.where(move, np.nextafter(steps, toward), steps)
    rel = x * (1.0 + rng.choice([-1.0, 1.0], x.size) * 10.0 ** -rng.uniform(1.0, 15.0, x.size))
    return np.where(rng.random(x.size) < 0.5, steps, rel)


def fuzz_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """``(p, b, c, c_low)`` arrays over the domain (``c_low`` explicit; 0, the float 1/c,
    uniform, near 1, subnormal, near either switch)."""
    p = _masses(rng, n)
    how = rng.integers(0, 5, n)
    b = np.select([how == 0, how == 1, how == 2, how == 3],
                  [_masses(rng, n), _near(rng, p), 1.0 - _near(rng, 1.0 - p), p], _near(rng, p))
    b = np.where((b > 0.0) & (b < 1.0), b, 0.5)
    kind = rng.integers(0, 4, n)
    c = np.select([kind == 0, kind == 1, kind == 2],
                  [1.0 + 10.0 ** rng.uniform(-9.0, 0.0, n), 10.0 ** rng.uniform(0.0, 300.0, n),
                   1.0 + rng.integers(1, 1000, n) * 2.0 ** -52], C_MAX)
    c = np.where(c > 1.0, c, 2.0)
    q = np.where(p > b, p, 1.0 - p)
    which = rng.integers(0, 7, n)
    with np.errstate(under="ignore"):
        c_low = np.select(
            [which == 0, which == 1, which == 2, which == 3, which == 4, which == 5],
            [np.zeros(n), 1.0 / c, rng.uniform(0.0, 1.0, n), 1.0 - 10.0 ** -rng.uniform(1, 16, n),
             10.0 ** rng.uniform(-323.3, -300.0, n), _near(rng, c * q / (c - 1.0 + q))],
            _near(rng, q))
    c_low = np.where((c_low >= 0.0) & (c_low < 1.0), c_low, 0.0)
    return p, b, c, c_low


def _check(p: np.ndarray, b: np.ndarray, c: np.ndarray, c_low: np.ndarray | None) -> None:
    r = cliff.solve(p, b, c, c_low=c_low)
    ls, lc = r.lambda_star, r.lambda_collapse
    assert not (np.isnan(ls).any() or np.isnan(lc).any())
    neutral = p == b
    assert (ls[neutral] == np.inf).all() and (lc[neutral] == np.inf).all()
    assert np.isfinite(ls[~neutral]).all() and np.isfinite(lc[~neutral]).all()
    assert (ls >= 1.0).all() and (ls <= lc).all()
    # no silent 1.0: kappa >= min(log c, -log c_low) and D <= |logit p| + |logit b|
    floor = np.log(c) if c_low is None else -np.log(np.where(c_low > 0, c_low, 1e-300))
    reach = np.minimum(np.log(c), floor)
    span = np.abs(np.log(p) - np.log1p(-p)) + np.abs(np.log(b) - np.log1p(-b))
    bound = reach / span
    short = (ls - 1.0) < bound * (1.0 - 1e-9) - 1.2e-16
    assert not short[~neutral].any(), np.flatnonzero(short & ~neutral)[:5]
    lo, hi = r.region_low, r.region_high
    assert ((0.0 <= lo) & (lo <= hi) & (hi <= 1.0)).all()
    # inside the window the clipped fixed point is a probability and its complement's
    i = np.flatnonzero(~neutral)
    lam = ls[i] + 0.5 * (lc[i] - ls[i])
    cl = None if c_low is None else c_low[i]
    m = cliff.clipped_fixed_point(p[i], b[i], c[i], lam, c_low=cl)
    tail = cliff.clipped_fixed_point(p[i], b[i], c[i], lam, c_low=cl, complement=True)
    assert ((0.0 <= m) & (m <= 1.0) & (0.0 <= tail) & (tail <= 1.0)).all()
    assert np.abs(m + tail - 1.0).max() <= 1e-12


def test_fuzz_no_nan_no_silent_one_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    """10^5 points (10^6 thorough), explicit and default floor: no NaN, inf exactly at
    p == b, finite elsewhere, 1 <= lambda* <= lambda_collapse, lambda* - 1 at least the
    bound min(log c, log 1/c_low) / (|logit p| + |logit b|) (so never a silent 1.0), no
    warning; the region inside [0, 1]; the clipped fixed point mid-window a probability
    whose complement sums with it to 1; the same bits with one thread."""
    rng = np.random.default_rng(20260101)
    n = 1_000_000 if THOROUGH else 100_000
    p, b, c, c_low = fuzz_points(rng, n)
    _check(p, b, c, c_low)
    _check(p, b, c, None)
    many = cliff.solve(p, b, c, c_low=c_low)
    monkeypatch.setenv("CLIFF_NUM_THREADS", "1")
    one = cliff.solve(p, b, c, c_low=c_low)
    assert np.array_equal(many.lambda_star, one.lambda_star)
    assert np.array_equal(many.lambda_collapse, one.lambda_collapse)


def _kary_rows(rng: np.random.Generator, kind: str, n: int, k: int) -> tuple[np.ndarray, ...]:
    if kind == "dirichlet":
        t, r = rng.dirichlet(np.full(k, 0.5), n), rng.dirichlet(np.full(k, 0.5), n)
    elif kind == "peaked":  # a near-deterministic teacher
        t = rng.dirichlet(np.full(k, 0.5), n) * 10.0 ** rng.uniform(-12.0, -1.0, (n, 1))
        t[:, 0] += 1.0 - t.sum(axis=-1)
        r = rng.dirichlet(np.full(k, 0.5), n)
    elif kind == "near":  # the reference within 1e-14..1e-2 of the teacher
        t = rng.dirichlet(np.ones(k), n)
        r = t * np.exp(10.0 ** rng.uniform(-14.0, -2.0, (n, 1)) * rng.standard_normal((n, k)))
    else:  # masses spread over 300 decades
        t, r = 10.0 ** rng.uniform(-300.0, 0.0, (2, n, k))
    t, r = t / t.sum(axis=-1, keepdims=True), r / r.sum(axis=-1, keepdims=True)
    ok = (t > 0).all(axis=-1) & (r > 0).all(axis=-1)
    return t[ok], r[ok]


@pytest.mark.parametrize("k", [2, 3, 8, 64])
@pytest.mark.parametrize("kind", ["dirichlet", "peaked", "near", "tiny"])
def test_kary_fuzz_ordered(k: int, kind: str) -> None:
    """solve_kary: no NaN, 1 <= lambda* <= lambda_collapse on every row (3000 rows per
    (K, kind), 20 000 thorough; c in 1 + 10^[-9, 3]; floor default, 0 and uniform)."""
    rng = np.random.default_rng([k, len(kind)])
    t, r = _kary_rows(rng, kind, 20_000 if THOROUGH else 3000, k)
    c = 1.0 + 10.0 ** rng.uniform(-9.0, 3.0, len(t))
    for c_low in (None, 0.0, rng.uniform(0.0, 1.0, len(t))):
        res = cliff.solve_kary(t, r, c, c_low=c_low)
        ls, lc = np.asarray(res.lambda_star), np.asarray(res.lambda_collapse)
        assert not (np.isnan(ls).any() or np.isnan(lc).any())
        assert (ls >= 1.0).all() and (ls <= lc).all(), np.flatnonzero(ls > lc)[:5]
