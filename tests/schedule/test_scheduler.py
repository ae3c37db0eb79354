"""LambdaScheduler in closed loop with the clipped Bernoulli dynamics, written from
derivations/model.md.

The dynamics here are the model's definitions only (clipped advantage, drift g = A(M) - A(T),
natural-gradient Euler steps theta += eta g, which share the fixed points of the SGD clock);
no closed form of ``cliff`` is used to decide whether a run kept the contract or stayed in
the clip-safe region: that is read off the simulated state, as the IS ratios of both classes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.special import expit, log_expit

import cliff
from cliff import LambdaScheduler
from cliff.internal import safe_lambda

C = 5.0
VALID = np.array([True, True, False, False])  # V = 4: two contract-valid tokens, two tail
SPLIT = np.log([0.7, 0.3, 0.6, 0.4])  # within-class shares of the four tokens


# --- dynamics from the definitions -----------------------------------------------------
def drift(theta: np.ndarray, p: np.ndarray, b: np.ndarray, lam: np.ndarray | float,
          c: float = C) -> np.ndarray:
    """g = A(M) - A(T), A(y) = clip(log piT(y) - log pi(y), log(1/c), log c)
    + (lam - 1)(log piT(y) - log pi0(y))."""
    lo, hi = -math.log(c), math.log(c)
    a_m = np.clip(np.log(p) - log_expit(theta), lo, hi) + (lam - 1) * (np.log(p) - np.log(b))
    a_t = (np.clip(np.log1p(-p) - log_expit(-theta), lo, hi)
           + (lam - 1) * (np.log1p(-p) - np.log1p(-b)))
    return np.asarray(a_m - a_t)


def in_region(theta: np.ndarray, p: np.ndarray, c: float = C, slack: float = 1e-9) -> np.ndarray:
    """Neither class's IS ratio piT/pi is clipped (the definition of R), up to ``slack``."""
    r_m, r_t = np.log(p) - log_expit(theta), np.log1p(-p) - log_expit(-theta)
    lim = math.log(c) + slack
    return np.asarray((np.abs(r_m) <= lim) & (np.abs(r_t) <= lim))


def log_probs(valid_mass: np.ndarray) -> np.ndarray:
    """``[..., 4]`` log-probs with the given valid mass, split by ``SPLIT`` in each class."""
    lv = np.log(valid_mass)[..., None]
    lr = np.log1p(-valid_mass)[..., None]
    return np.where(VALID, lv, lr) + SPLIT


def context_pool(mass: float, rng: np.random.Generator, k: int = 64,
                 spread: float = 2.0) -> np.ndarray:
    """k context-level valid masses whose tail masses average exactly ``1 - mass``.

    Tails are ``(1 - mass) u_i``, ``u`` log-uniform in ``[1/spread, spread]`` rescaled to
    mean 1, so the population mean the scheduler estimates is known exactly.
    """
    u = np.exp(rng.uniform(-math.log(spread), math.log(spread), k))
    return np.asarray(1.0 - (1.0 - mass) * u / u.mean())


def run(p: np.ndarray, b: np.ndarray, steps: int, *, sched: LambdaScheduler | None,
        fixed: float = 1.0, batch: int = 16, eta: float = 0.5, seed: int = 0
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed loop: each step the scheduler sees B sampled contexts per position (teacher,
    reference and current student log-probs) and its lambda drives the next Euler step.

    Returns the theta path (steps+1, P), the lambdas used (steps, P) and the final theta.
    """
    rng = np.random.default_rng(seed)
    pools_t = np.stack([context_pool(v, rng) for v in p], -1)  # (k, P)
    pools_r = np.stack([context_pool(v, rng) for v in b], -1)
    theta = np.log(b) - np.log1p(-b)  # warm start: the student starts at the reference
    path, lams = [theta], []
    cols = np.arange(len(p))
    for _ in range(steps):
        lam = np.full(len(p), fixed)
        if sched is not None:
            idx = rng.integers(0, pools_t.shape[0], size=(batch, len(p)))
            student = np.broadcast_to(expit(theta), (batch, len(p)))
            out = sched.update(log_probs(pools_t[idx, cols]), log_probs(pools_r[idx, cols]),
                               VALID, student_logprobs=log_probs(student))
            lam = np.broadcast_to(np.asarray(out, dtype=float), (len(p),))
        theta = theta + eta * drift(theta, p, b, lam)
        path.append(theta)
        lams.append(lam)
    return np.array(path), np.array(lams), theta


# Position 0 softens (p < b: past lambda_collapse the contract collapses, m -> 0); position 1
# sharpens (p > b: past lambda_collapse the tail's entropy collapses, m -> 1).
P = np.array([0.99, 0.999])
B = np.array([0.999, 0.99])
TARGET = 3.0  # above lambda_collapse of both positions (2.39 and 1.70)


def test_fixed_lambda_above_collapse_crosses_the_cliff() -> None:
    path, _, theta = run(P, B, 400, sched=None, fixed=TARGET)
    m = expit(theta)
    assert m[0] < 0.5  # softening: the contract is lost
    assert not in_region(theta, P).any()  # both states clipped: past the cliff
    assert (1 - m[1]) < (1 - P[1]) / C / 10  # sharpening: tail driven far below (1-p)/c


ESTIMATORS = ["per_context", "pooled"]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("mode", ["global", "per_position"])
def test_scheduled_run_keeps_the_contract_and_stays_clip_safe(mode: str, estimator: str) -> None:
    sched = LambdaScheduler(TARGET, c=C, margin=0.05, mode=mode,  # type: ignore[arg-type]
                            estimator=estimator)  # type: ignore[arg-type]
    path, lams, theta = run(P, B, 400, sched=sched)
    m_path = expit(path)
    # softening position: modal mass never crosses the contract threshold 1/2
    assert m_path[:, 0].min() > 0.5
    # both positions end inside R: neither ratio clipped (read off the simulated state);
    # the sharpening tail stays >= (1 - p)/c
    assert in_region(theta, P).all()
    assert (1 - m_path[-1, 1]) >= (1 - P[1]) / C
    # and every state along the way stays clip-safe once the estimate is warm
    warm = np.asarray(sched.state()["warm"]).all()
    assert warm and in_region(path[-100:], P).all()
    assert np.asarray(sched.state()["student_in_region"]).all()
    assert (lams <= TARGET).all() and (lams >= 1.0).all()
    if mode == "global":
        assert (lams[:, 0] == lams[:, 1]).all()


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_per_position_lambdas_differ_and_global_is_their_minimum(estimator: str) -> None:
    rng = np.random.default_rng(3)
    scheds = {m: LambdaScheduler(TARGET, c=C, mode=m, estimator=estimator)  # type: ignore[arg-type]
              for m in ("global", "per_position")}
    for _ in range(5):
        t = log_probs(np.stack([context_pool(v, rng, 16) for v in P], -1))  # (16, 2, 4)
        r = log_probs(np.stack([context_pool(v, rng, 16) for v in B], -1))
        out = {m: s.update(t, r, VALID) for m, s in scheds.items()}
    per = np.asarray(out["per_position"])
    assert per.shape == (2,) and isinstance(out["global"], float)
    assert out["global"] == per.min() and per[0] != per[1]


@settings(deadline=None, max_examples=40)
@given(p=st.floats(0.6, 1 - 1e-8), b=st.floats(0.05, 0.999), c=st.floats(1.5, 20.0),
       frac=st.floats(0.0, 0.999), margin=st.floats(0.0, 0.5),
       estimator=st.sampled_from(ESTIMATORS))
def test_below_the_bound_the_target_is_returned_exactly(p: float, b: float, c: float,
                                                         frac: float, margin: float,
                                                         estimator: str) -> None:
    """Identical contexts (zero variance): the bound is lambda* itself; a target below
    1 + (1 - margin)(lambda* - 1) comes back unchanged, one above is cut to it."""
    if abs(math.log(p / (1 - p)) - math.log(b / (1 - b))) < 1e-3:
        return
    ref = cliff.solve(p, b, c).lambda_star
    safe = 1.0 + (1 - margin) * (ref - 1.0)
    below = 1.0 + frac * (safe - 1.0) * (1 - 1e-9)
    t = log_probs(np.full((64, 1), p))
    r = log_probs(np.full((64, 1), b))
    for target in (below, 0.5, safe * 1.5 + 1.0):
        s = LambdaScheduler(target, c=c, margin=margin, estimator=estimator)  # type: ignore[arg-type]
        lam = s.update(t, r, VALID)
        if target <= safe * (1 - 1e-9):
            assert lam == target
        else:
            assert lam == pytest.approx(safe, rel=1e-9)


@pytest.mark.parametrize(("target", "expected"), [
    # bounds: 1.126, 1.03, 1 (no headroom), inf (no cliff), 2 (not ready yet)
    (3.0, [1.1197, 1.0285, 1.0, 3.0, 1.0]),
    (1.05, [1.05, 1.0285, 1.0, 1.05, 1.0]),
    (0.7, [0.7, 0.7, 0.7, 0.7, 0.7]),
])
def test_rule_keeps_one_minus_margin_of_the_headroom(target: float,
                                                      expected: list[float]) -> None:
    """min(target, 1 + 0.95 (bound - 1)) where ready, min(target, 1) where not; the expected
    values are that arithmetic by hand (1 + 0.95 * 0.126 = 1.1197, 1 + 0.95 * 0.03 = 1.0285)."""
    bound = np.array([1.126, 1.03, 1.0, np.inf, 2.0])
    ready = np.array([True, True, True, True, False])
    assert safe_lambda(target, bound, ready, 0.05) == pytest.approx(expected, rel=1e-12)


def b_with_threshold(p: float, lam_star: float, c: float = C) -> float:
    """The reference mass b < p at which ``cliff.solve(p, b, c)`` is ``lam_star`` (root in
    the log-odds of b; lambda* falls as b moves away from p)."""
    z = brentq(lambda z: cliff.solve(p, float(expit(z)), c).lambda_star - lam_star,
               -60.0, math.log(p / (1 - p)) - 1e-3, xtol=1e-12)
    return float(expit(z))


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize(("p", "lam_star", "expected"), [
    (0.99, 1.126, 1.1197),            # 1 + 0.95 * 0.126; the old (1 - margin) * bound: 1.0697
    (float(expit(20.0)), 1.03, 1.0285),  # 1 + 0.95 * 0.03; the old rule: max(1, 0.9785) = 1
], ids=["bound-1.126", "bound-1.03"])
def test_margin_is_a_share_of_the_headroom(estimator: str, p: float, lam_star: float,
                                           expected: float) -> None:
    """Identical contexts, so the bound is lambda* itself, placed at a chosen value: the
    scheduler keeps 1 - margin of the headroom lambda* - 1."""
    b = b_with_threshold(p, lam_star)
    assert cliff.solve(p, b, C).lambda_star == pytest.approx(lam_star, rel=1e-10)
    t, r = log_probs(np.full((64, 1), p)), log_probs(np.full((64, 1), b))
    s = LambdaScheduler(TARGET, c=C, margin=0.05, estimator=estimator)  # type: ignore[arg-type]
    assert s.update(t, r, VALID) == pytest.approx(expected, rel=1e-9)
    assert s.state()["lambda_star_bound"] == [pytest.approx(lam_star, rel=1e-9)]


def test_tails_below_float_resolution_use_log_masses() -> None:
    """p = 1 - 1e-12 (a tail below the 2e-9 switch): the log-space path agrees with
    the Bernoulli threshold computed from the same log-probs' two-class masses."""
    p = 1 - 1e-12
    t, r = log_probs(np.full((64, 1), p)), log_probs(np.full((64, 1), 0.5))
    lam = LambdaScheduler(TARGET, c=C, margin=0.0).update(t, r, VALID)
    ref = cliff.estimate(t[:1], r[:1], VALID).solve_kary(C).lambda_star[0, 0]
    assert lam == pytest.approx(ref, rel=1e-9)
    assert lam == pytest.approx(cliff.solve(p, 0.5, C).lambda_star, rel=1e-4)


def test_warm_up_returns_plain_opd_until_enough_samples() -> None:
    s = LambdaScheduler(2.0, c=C, min_samples=6, estimator="pooled")
    t, r = log_probs(np.full((4, 1), 0.99)), log_probs(np.full((4, 1), 0.999))
    assert s.update(t, r, VALID) == 1.0  # n_eff = 4 < 6
    assert s.update(t, r, VALID) > 1.0  # n_eff = 7.96^2 / 7.92 ~ 8 >= 6
    assert LambdaScheduler(0.7, c=C).update(t, r, VALID) == 0.7  # target <= 1 untouched
    # per context: the 5% quantile's 95% order-statistic bound needs n >= 59 contexts
    s = LambdaScheduler(2.0, c=C)
    t, r = log_probs(np.full((29, 1), 0.99)), log_probs(np.full((29, 1), 0.999))
    assert s.update(t, r, VALID) == 1.0 and s.update(t, r, VALID) == 1.0  # 58 contexts
    assert s.update(t[:1], r[:1], VALID) > 1.0  # 59


def test_confidence_bound_covers_the_true_threshold() -> None:
    """200 independent positions, heterogeneous contexts: the lower bound lies below the
    population lambda* in >= 85% of them (each of the p and b intervals is two-sided 95%,
    so coverage >= 90%; binomial sd at 200 positions is 2.1%, 85% is 2.4 sd below)."""
    rng = np.random.default_rng(7)
    n = 200
    p = 1 - 10 ** rng.uniform(-4, -1, n)
    b = 1 - 10 ** rng.uniform(-4, -1, n)
    keep = np.abs(np.log((1 - b) / (1 - p))) > 0.3  # away from neutral
    p, b = p[keep], b[keep]
    pools_t = np.stack([context_pool(v, rng, spread=4.0) for v in p], -1)
    pools_r = np.stack([context_pool(v, rng, spread=4.0) for v in b], -1)
    s = LambdaScheduler(10.0, c=C, mode="per_position", estimator="pooled")
    cols = np.arange(len(p))
    for _ in range(4):
        idx = rng.integers(0, pools_t.shape[0], size=(8, len(p)))
        s.update(log_probs(pools_t[idx, cols]), log_probs(pools_r[idx, cols]), VALID)
    bound = np.asarray(s.state()["lambda_star_bound"])
    truth = cliff.solve(p, b, C).lambda_star
    assert np.mean(bound <= truth) >= 0.85
    # and it is a useful bound, not 1 everywhere
    assert np.median((bound - 1) / (truth - 1)) > 0.5


def test_quantile_bound_covers_the_population_quantile() -> None:
    """200 independent positions, each a pool of 64 contexts (p_i, b_i): the per-context
    bound lies below the pool's 5% quantile of lambda*_i in >= 90% of them (nominal 95% for
    a one-sided order-statistic bound; binomial sd at 200 positions is 1.5%)."""
    rng = np.random.default_rng(11)
    n = 200
    p = 1 - 10 ** rng.uniform(-4, -1, n)
    b = 1 - 10 ** rng.uniform(-4, -1, n)
    keep = np.abs(np.log((1 - b) / (1 - p))) > 0.3
    p, b = p[keep], b[keep]
    pools_t = np.stack([context_pool(v, rng, spread=4.0) for v in p], -1)  # (64, n)
    pools_r = np.stack([context_pool(v, rng, spread=4.0) for v in b], -1)
    s = LambdaScheduler(10.0, c=C, mode="per_position")
    cols = np.arange(len(p))
    for _ in range(2):
        idx = rng.integers(0, pools_t.shape[0], size=(40, len(p)))
        s.update(log_probs(pools_t[idx, cols]), log_probs(pools_r[idx, cols]), VALID)
    bound = np.asarray(s.state()["lambda_star_bound"], dtype=float)
    per_context = np.sort(cliff.solve(pools_t, pools_r, C).lambda_star, axis=0)
    truth = per_context[math.ceil(0.05 * 64) - 1]  # smallest x with F(x) >= 0.05
    assert np.mean(bound <= truth) >= 0.90
    assert np.median((bound - 1) / (truth - 1)) > 0.5


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_state_dict_round_trips_through_json(estimator: str) -> None:
    rng = np.random.default_rng(1)
    s = LambdaScheduler(TARGET, c=C, mode="per_position", decay=0.9,
                        estimator=estimator, window=50)  # type: ignore[arg-type]
    batches = [(log_probs(np.stack([context_pool(v, rng, 24) for v in P], -1)),
                log_probs(np.stack([context_pool(v, rng, 24) for v in B], -1)))
               for _ in range(4)]
    for t, r in batches[:3]:
        s.update(t, r, VALID)
    blob = json.loads(json.dumps(s.state_dict()))
    s2 = LambdaScheduler(1.0, c=2.0)  # config comes from the state
    s2.load_state_dict(blob)
    assert s2.config() == s.config() and s2.state() == s.state()
    assert np.array_equal(s2.update(*batches[3], VALID), s.update(*batches[3], VALID))
    assert s2.state_dict() == s.state_dict()
    fresh = LambdaScheduler(2.0, c=C)
    fresh.load_state_dict(json.loads(json.dumps(fresh.state_dict())))
    assert fresh.state()["steps"] == 0 and fresh.lambda_ is None


def test_accepts_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor(log_probs(np.full((64, 1), 0.99)), dtype=torch.float32)
    r = torch.tensor(log_probs(np.full((64, 1), 0.999)), dtype=torch.float32)
    lam = LambdaScheduler(TARGET, c=C).update(t, r, torch.tensor(VALID))
    assert lam == pytest.approx(1 + 0.95 * (cliff.solve(0.99, 0.999, C).lambda_star - 1),
                                rel=1e-5)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target_lambda": -1.0}, "target_lambda"),
    ({"target_lambda": math.nan}, "target_lambda"),
    ({"c": 1.0}, "c must be in"),
    ({"c_low": 1.0}, "c_low"),
    ({"margin": 1.0}, "margin"),
    ({"decay": 1.0}, "decay"),
    ({"confidence": 0.0}, "confidence"),
    ({"mode": "both"}, "mode"),
    ({"min_samples": 1.0}, "min_samples"),
    ({"estimator": "mean"}, "estimator"),
    ({"quantile": 0.0}, "quantile"),
    ({"quantile": 1.0}, "quantile"),
    ({"window": 0}, "window"),
    ({"window": 2.5}, "window"),
])
def test_constructor_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"target_lambda": 2.0, "c": C, **kwargs}
    with pytest.raises(ValueError, match=match):
        LambdaScheduler(**args)  # type: ignore[arg-type]


def test_update_errors() -> None:
    s = LambdaScheduler(2.0, c=C)
    t, r = log_probs(np.full((4, 2), 0.99)), log_probs(np.full((4, 2), 0.999))
    with pytest.raises(ValueError, match=r"\[\.\.\., P, V\]"):
        s.update(t[0, 0], r[0, 0], VALID)
    s.update(t, r, VALID)
    with pytest.raises(ValueError, match="tracks 2"):
        s.update(t[:, :1], r[:, :1], VALID)
    with pytest.raises(ValueError, match="reference_logprobs"):  # from cliff.estimate
        s.update(t, r + 0.1, VALID)
    with pytest.raises(ValueError, match="reference_valid"):
        s.update(t, r, VALID, reference_valid=VALID)
    with pytest.raises(ValueError, match="missing keys"):
        s.load_state_dict({"config": s.config()})
    bad = s.state_dict()
    bad["stats"]["weight"] = [1.0]
    with pytest.raises(ValueError, match="stats"):
        s.load_state_dict(bad)


# --- positions that do not occur in a batch --------------------------------------------
def batch_with_absent(rng: np.random.Generator, n: int, present: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` contexts at the two positions (P, B); where ``present[i, j]`` is False the
    valid row is all False and the log-probs are zeros (not a distribution: reading them
    would fail the normalisation check).  Returns teacher, reference, student, valid."""
    t = log_probs(np.stack([context_pool(v, rng, n) for v in P], -1))  # (n, 2, 4)
    r = log_probs(np.stack([context_pool(v, rng, n) for v in B], -1))
    s = log_probs(np.stack([context_pool(v, rng, n) for v in B], -1))
    valid = np.broadcast_to(VALID, t.shape).copy()
    for x in (t, r, s, valid):
        x[~present] = 0
    return t, r, s, valid


def approx_list(values: list[float | bool | None]) -> list[object]:
    return [v if v is None or isinstance(v, bool) else pytest.approx(v, rel=1e-12)
            for v in values]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_absent_positions_contribute_nothing(estimator: str) -> None:
    """Two positions; position 1 is missing from the first batch and from some rows of the
    third, position 0 from some rows of the third, both from the fourth.  Each position must
    end as a one-position scheduler fed only its own present contexts, and the EMA weights
    follow w = decay^(updates since), counted over the updates in which it occurs."""
    rng = np.random.default_rng(4)
    n, decay = 40, 0.9
    mixed = np.ones((n, 2), dtype=bool)
    mixed[:10, 0] = False
    mixed[::3, 1] = False  # 14 of 40 rows absent at position 1
    masks = [np.tile([True, False], (n, 1)), np.ones((n, 2), dtype=bool), mixed,
             np.zeros((n, 2), dtype=bool)]
    batches = [batch_with_absent(rng, n, m) for m in masks]
    kw = {"c": C, "mode": "per_position", "estimator": estimator, "decay": decay,
          "window": 100}
    sched = LambdaScheduler(TARGET, **kw)  # type: ignore[arg-type]
    alone = [LambdaScheduler(TARGET, **kw) for _ in range(2)]  # type: ignore[arg-type]
    for k, ((t, r, s, valid), m) in enumerate(zip(batches, masks, strict=True)):
        lam = np.asarray(sched.update(t, r, valid, student_logprobs=s))
        for j, one in enumerate(alone):
            rows = m[:, j]
            if rows.any():
                one.update(t[rows, j : j + 1], r[rows, j : j + 1], VALID,
                           student_logprobs=s[rows, j : j + 1])
            ref = 1.0 if one.lambda_ is None else float(one.lambda_[0])
            assert lam[j] == pytest.approx(ref, rel=1e-12)
        if k == 0:  # position 1 has not occurred yet: plain OPD there, nothing estimated
            state = sched.state()
            assert lam[1] == 1.0 and state["p"][1] is None and state["n_eff"][1] == 0.0
            assert state["warm"][1] is False and state["student_mass"][1] is None
    state = sched.state()
    assert state["steps"] == 4
    for j, one in enumerate(alone):
        ref = one.state()
        for key in ("p", "b", "lambda_star", "n_eff", "lambda_star_bound", "warm",
                    "student_mass", "student_in_region"):
            assert state[key][j] == approx_list(ref[key])[0], key
    # by hand: position 0 occurs in updates 1, 2, 3 (40, 40 and 30 contexts), position 1 in
    # updates 2, 3 (40 and 26); each occurrence decays the older weights once
    w0, w1 = (40 * decay + 40) * decay + 30, 40 * decay + 26
    w0_sq, w1_sq = (40 * decay**2 + 40) * decay**2 + 30, 40 * decay**2 + 26
    assert state["n_eff"] == pytest.approx([w0**2 / w0_sq, w1**2 / w1_sq], rel=1e-12)
    if estimator == "per_context":
        assert state["contexts"] == [100, 66]  # 110 kept to the window of 100; 40 + 26
        assert all(state["warm"])  # 66 >= 59 contexts: both bounds exist


def test_absent_contexts_as_empty_id_lists() -> None:
    """``valid`` as valid column ids per row: an empty list marks the context absent, the
    same as an all-False mask row."""
    rng = np.random.default_rng(5)
    present = np.ones((30, 2), dtype=bool)
    present[::2, 1] = False
    t, r, _, valid = batch_with_absent(rng, 30, present)
    ids = [np.flatnonzero(row) for row in valid.reshape(-1, 4)]  # C order over (30, 2)
    by_mask = LambdaScheduler(TARGET, c=C, mode="per_position")
    by_ids = LambdaScheduler(TARGET, c=C, mode="per_position")
    by_mask.update(t, r, valid)
    by_ids.update(t, r, ids)
    assert by_ids.state_dict() == by_mask.state_dict()
    assert by_ids.state()["contexts"] == [30, 15]


def test_absent_positions_round_trip_and_still_check_the_present() -> None:
    """A state with a position that never occurred round-trips through JSON; a present
    context is checked as before (NaN anywhere is refused, index as passed)."""
    rng = np.random.default_rng(6)
    present = np.tile([True, False], (20, 1))
    t, r, s, valid = batch_with_absent(rng, 20, present)
    for estimator in ESTIMATORS:
        sched = LambdaScheduler(TARGET, c=C, estimator=estimator)  # type: ignore[arg-type]
        sched.update(t, r, valid)
        again = LambdaScheduler(1.0, c=2.0)
        again.load_state_dict(json.loads(json.dumps(sched.state_dict())))
        assert again.state() == sched.state()
        assert again.update(t, r, valid) == sched.update(t, r, valid)
    bad = r.copy()
    bad[3, 0, 1] = -50.0  # a present context whose reference log-probs do not sum to 1
    with pytest.raises(ValueError, match=r"reference_logprobs.*\(3, 0\)"):
        LambdaScheduler(TARGET, c=C).update(t, bad, valid)
    bad = t.copy()
    bad[3, 1, 1] = np.nan  # absent, but NaN is refused everywhere
    with pytest.raises(ValueError, match="teacher_logprobs"):
        LambdaScheduler(TARGET, c=C).update(bad, r, valid)


def test_state_with_no_threshold_anywhere() -> None:
    """Teacher = reference: every context's lambda* is infinite, and so are the empirical
    quantile and the bound; the target is returned once the window is warm."""
    t = log_probs(np.full((64, 1), 0.99))
    sched = LambdaScheduler(TARGET, c=C)
    assert sched.update(t, t, VALID) == TARGET
    state = sched.state()
    assert state["lambda_star_quantile"] == [math.inf] and state["lambda_star_bound"] == [math.inf]
