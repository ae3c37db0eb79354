"""The finite-budget law over the whole float64 domain: its log-odds rate
``D = |logit p - logit b|`` against a 50-digit reference, subnormal masses included.

The rate was formed from ``RATE = log1p(delta / (beta qbar))`` of the rounded masses, whose
product underflows once ``b`` or ``1 - p`` is subnormal-small: ``D`` became ``inf`` and
``asymptotic_onset`` answered 1 (and ``max_monotone_lr`` 0) without a word.  In the unclipped
branch the asymptotic onset is the definition's
``lambda_inf = (logit tau - logit b) / (logit p - logit b)`` (the unclipped fixed point
``logit m = logit b + lambda (logit p - logit b)`` meets ``tau``), checked here in 50 digits.
"""

from __future__ import annotations

import math

import mpmath
import pytest

import cliff


def _logit(x: float) -> mpmath.mpf:
    x = mpmath.mpf(x)
    return mpmath.log(x) - mpmath.log1p(-x)


def unclipped_onset(p: float, b: float, tau: float) -> mpmath.mpf:
    with mpmath.workdps(50):
        return (_logit(tau) - _logit(b)) / (_logit(p) - _logit(b))


POINTS = [  # (p, b, tau): sharpening from a subnormal-small or tiny b, and softening mirrors
    (0.3, 1e-310, 0.5), (0.3, 5e-324, 0.5), (0.3, 1e-300, 0.5), (0.6, 1e-320, 0.9),
    (0.9, 2.5e-308, 0.95), (0.55, 1e-200, 0.8),
    (0.7, 1 - 1e-16, 0.5), (0.4, 1 - 2**-53, 0.2), (1e-3, 0.5, 5e-4),
]


@pytest.mark.parametrize(("p", "b", "tau"), POINTS)
def test_asymptotic_onset_matches_the_unclipped_definition(p: float, b: float, tau: float
                                                           ) -> None:
    want = unclipped_onset(p, b, tau)
    assert want < cliff.solve(p, b, 5.0).lambda_star  # the unclipped branch
    got = cliff.asymptotic_onset(p, b, 5.0, threshold=tau)
    assert abs(mpmath.mpf(got) - want) <= 1e-12 * (want - 1), (got, want)


@pytest.mark.parametrize(("p", "b", "tau"), POINTS)
def test_the_monotone_step_bound_is_positive_and_finite(p: float, b: float, tau: float) -> None:
    lr = cliff.max_monotone_lr(p, b, 5.0, 1.0 + 0.5 * float(unclipped_onset(p, b, tau) - 1))
    assert math.isfinite(lr) and lr > 0
