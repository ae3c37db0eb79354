"""The mean-field path against a 50-digit scalar Euler iteration written from the model's
definitions (``derivations/model.md``: the clipped advantage, the drift, the Euler step), in
modal-class coordinates in both regimes, and against the exact finite-budget onset."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import cliff

STEPS = [0, 1, 7, 60, 241]


def reference(p: float, b: float, c: float, c_low: float | None, lam: float, steps: list[int],
              lr: float) -> tuple[list[mp.mpf], list[mp.mpf], bool]:
    """(log m_n, log(1 - m_n) at each n in steps, whether any ratio was clipped)."""
    mp.mp.dps = 50
    p_, b_, c_, lam_, lr_ = (mp.mpf(v) for v in (p, b, c, lam, lr))
    floor = 1 / c_ if c_low is None else mp.mpf(c_low)
    lo, hi = (mp.log(floor) if floor > 0 else -mp.inf), mp.log(c_)
    theta = mp.log(b_) - mp.log(1 - b_)
    clipped = False

    def advantage(teacher: mp.mpf, student: mp.mpf, ref: mp.mpf) -> mp.mpf:
        nonlocal clipped
        ratio = mp.log(teacher) - mp.log(student)
        clipped = clipped or not lo <= ratio <= hi
        return min(max(ratio, lo), hi) + (lam_ - 1) * (mp.log(teacher) - mp.log(ref))

    log_m, log_t = [], []
    for n in range(max(steps) + 1):
        m = 1 / (1 + mp.exp(-theta))
        if n in steps:
            log_m.append(mp.log(m))
            log_t.append(-mp.log(1 + mp.exp(theta)))
        g = advantage(p_, m, b_) - advantage(1 - p_, 1 - m, 1 - b_)
        theta = theta + lr_ * m * (1 - m) * g
    return log_m, log_t, clipped


CASES = [  # (p, b, c, c_low, lam, lr, clip binds)
    (0.7, 0.5, 5.0, None, 1.0, 0.3, False),  # sharpening, inside the clip-safe region
    (0.9, 0.5, 2.0, None, 3.0, 0.3, True),  # sharpening past the cliff: the tail is capped
    (0.9, 0.5, 2.0, 0.0, 3.0, 0.3, True),  # no lower clip
    (0.3, 0.6, 5.0, None, 1.0, 0.3, False),  # softening, unclipped
    (0.2, 0.9, 1.5, 0.5, 2.5, 0.2, True),  # softening, clipped
    (0.999, 0.99, 5.0, None, 1.6, 0.5, True),  # masses near 1: the tail's digits
]


@pytest.mark.parametrize("case", CASES)
def test_path_matches_the_50_digit_iteration(case: tuple) -> None:
    p, b, c, c_low, lam, lr, binds = case
    path = cliff.mean_field_path(p, b, c, lam, STEPS, lr, c_low=c_low)
    log_m, log_t, clipped = reference(p, b, c, c_low, lam, STEPS, lr)
    assert clipped == binds  # the case exercises the branch it says
    assert path.steps == tuple(STEPS) and path.log_modal.shape == (len(STEPS),)
    np.testing.assert_allclose(path.log_modal, [float(v) for v in log_m], rtol=1e-9, atol=0)
    np.testing.assert_allclose(path.log_tail, [float(v) for v in log_t], rtol=1e-9, atol=0)


def test_broadcast_batch_equals_each_point() -> None:
    cols = list(zip(*[case[:6] for case in CASES if case[3] is None], strict=True))
    p, b, c, _, lam, lr = (np.asarray(col, dtype=float) for col in cols)
    path = cliff.mean_field_path(p, b, c, lam[:, None], STEPS, lr)  # (k, k) of points
    assert path.log_tail.shape == (len(p), len(p), len(STEPS))
    for i in range(len(p)):
        for j in range(len(p)):
            _, log_t, _ = reference(p[j], b[j], c[j], None, lam[i], STEPS, lr[j])
            np.testing.assert_allclose(path.log_tail[i, j], [float(v) for v in log_t],
                                       rtol=1e-9)


def test_the_neutral_point_never_moves() -> None:
    path = cliff.mean_field_path(0.8, 0.8, 5.0, [1.0, 4.0], [0, 50, 500], 0.5)
    np.testing.assert_allclose(path.log_modal, math.log(0.8), rtol=1e-14)
    np.testing.assert_allclose(path.log_tail, math.log(0.2), rtol=1e-13)


@pytest.mark.parametrize(("p", "b", "tau", "steps"), [
    (0.6, 0.9, 0.5, 60),  # softening: the valid mass falls below 1/2
    (0.8, 0.6, 0.95, 120),  # sharpening: the valid mass rises past 0.95 (entropy collapse)
])
def test_finite_budget_onset_is_where_the_path_crosses(p: float, b: float, tau: float,
                                                        steps: int) -> None:
    lr = 0.5 * float(cliff.max_monotone_lr(p, b, 5.0, 4.0))
    onset = cliff.finite_budget_onset(p, b, 5.0, steps, lr, threshold=tau)
    assert 1.0 < onset < 4.0
    around = np.array([onset * (1 - 1e-8), onset * (1 + 1e-9)])
    m_t = np.exp(cliff.mean_field_path(p, b, 5.0, around, [steps], lr).log_modal[:, 0])
    past = m_t <= tau if p < b else m_t >= tau
    assert past.tolist() == [False, True]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"steps": [3, 3]}, "steps must be strictly increasing"),
    ({"steps": [-1, 2]}, r"steps\[0\] must be an integer >= 0"),
    ({"steps": [1.0, 2]}, r"steps\[0\] must be an integer"),
    ({"steps": [True, 2]}, r"steps\[0\] must be an integer"),
    ({"steps": []}, "steps must be a non-empty"),
    ({"steps": np.array([[1, 2]])}, "steps must be a non-empty 1-D"),
    ({"lr": 0.0}, r"lr must be in \(0, inf\)"),
    ({"lr": math.nan}, r"lr must be in \(0, inf\)"),
    ({"lam": -0.5}, r"lam must be in \[0, inf\)"),
    ({"c": 1.0}, "c must be in"),
    ({"p": 1.0}, "p must be in"),
    ({"c_low": 1.0}, "c_low must be in"),
])
def test_refusals_name_the_argument(kwargs: dict, words: str) -> None:
    args = {"p": 0.9, "b": 0.5, "c": 5.0, "lam": 1.0, "steps": [1, 2], "lr": 0.1} | kwargs
    c_low = args.pop("c_low", None)
    with pytest.raises(ValueError, match=words):
        cliff.mean_field_path(**args, c_low=c_low)
