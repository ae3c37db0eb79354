r"""A test that can fail: coverage and power of the ladder test on simulated model data.

The truth is the model's own ladder (:func:`~validate.llm_check.ladder.clock.
ladder_prediction` at a step size ``eta``); the data add noise to it; the test is the one
the real data get (:func:`~validate.llm_check.ladder.statistic.ladder_onset_interval`).
Reported: how often the interval covers the true onset, how often it excludes a wrong
prediction ``true -+ wrong_shift`` (the power to refute a prediction that far off), and how
often no onset is found at all.

The noise model is a stated assumption, not a measurement.  On the log-odds of the losing
mass ``x`` of cell (seed ``s``, rung ``l``, budget ``t``) and rollout ``n``,

.. math:: \operatorname{logit} x_{s,l,t,n} = \operatorname{logit} x^{\mathrm{model}}_{l,t}
          + e_{s,l,t} + r_{s,l,t,n},\qquad
          e \sim N(0, \sigma_{\mathrm{seed}}^2),\quad r \sim N(0, \sigma_{\mathrm{rollout}}^2),

all independent: a per-seed offset independent per cell and per-rollout noise.  For the
small losing masses of the ladder (``x << 1``) this is multiplicative lognormal noise on
``x``; the log-odds keep every simulated mass inside (0, 1) without clipping.  Where the
losing mass is not small (a softening type's valid mass below the cliff) the noise is not
multiplicative, so the pooled log mass ``log E[x]`` moves by a different amount in each cell
and the statistic is biased against the model's onset; the reported coverage includes that
bias, which is the test's own behaviour under this noise model.

With multiplicative noise the two-level percentile interval inherits the coverage of
:func:`validate.llm_check.onset.resample_rates` (see its Notes): conservative when the rollout
noise dominates, about ``P(|T_{S-1}| < 1.645 sqrt((S-1)/S))`` when the seed offsets do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from validate.llm_check.ladder.clock import ladder_prediction
from validate.llm_check.ladder.statistic import (
    LadderData,
    OnsetInterval,
    ladder_onset_interval,
)
from validate.llm_check.onset import check_grid

__all__ = ["Power", "power", "simulate"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Power:
    """Operating characteristics of the ladder test (:func:`power`).

    Attributes
    ----------
    true_onset : the onset of the noiseless model ladder on the rungs (the estimand).
    fine_onset : the model's onset on a fine lambda grid (what a prediction states).
    coverage : share of simulations whose interval contains ``true_onset``.
    excludes_below, excludes_above : shares whose interval excludes ``true_onset -
        wrong_shift`` and ``true_onset + wrong_shift`` (with ``wrong_shift = 0`` both are
        the miss rate ``1 - coverage``).
    no_onset : share of simulations whose point estimate finds no onset on the rungs.
    undefined : share whose interval is undefined (every replicate NaN).
    n_sim : number of simulations.
    """

    true_onset: float
    fine_onset: float
    coverage: float
    excludes_below: float
    excludes_above: float
    no_onset: float
    undefined: float
    n_sim: int


def _count(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _spread(name: str, value: float) -> float:
    v = float(value)
    if not (v >= 0.0 and np.isfinite(v)):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def simulate(log_mass: ArrayLike, n_seeds: int, n_rollouts: int, sigma_seed: float,
             sigma_rollout: float, gen: np.random.Generator) -> FloatArray:
    """Masses ``(S, L, B, N)`` drawn around the model's log masses ``(L, B)`` by the noise
    model of this module."""
    mu = np.asarray(log_mass, dtype=np.float64)
    s, n = _count("n_seeds", n_seeds), _count("n_rollouts", n_rollouts)
    logit = mu - np.log(-np.expm1(mu))
    seed = gen.normal(0.0, _spread("sigma_seed", sigma_seed), size=(s, *mu.shape, 1))
    roll = gen.normal(0.0, _spread("sigma_rollout", sigma_rollout), size=(s, *mu.shape, n))
    return np.asarray(expit(logit[..., None] + seed + roll), dtype=np.float64)


def _score(res: OnsetInterval, truth: float, shift: float) -> tuple[bool, ...]:
    """(covers truth, excludes truth - shift, excludes truth + shift, no onset, undefined)."""
    if math.isnan(res.low):
        return (False, False, False, res.point == math.inf, True)
    inside = [res.low <= v <= res.high for v in (truth, truth - shift, truth + shift)]
    return (inside[0], not inside[1], not inside[2], res.point == math.inf, False)


def power(p: float, b: float, c: float, c_low: float | None, lambdas: ArrayLike,
          budgets: Any, eta: float, delta: float, n_seeds: int, n_rollouts: int,
          sigma_seed: float, sigma_rollout: float, wrong_shift: float, n_sim: int,
          n_boot: int, rng: np.random.Generator | int, level: float = 0.9) -> Power:
    """Simulate the ladder test ``n_sim`` times on the model's ladder at ``eta``.

    Parameters
    ----------
    p, b, c, c_low, lambdas, budgets, eta, delta
        As in :func:`~validate.llm_check.ladder.clock.ladder_prediction`.
    n_seeds, n_rollouts : int
        The simulated design.
    sigma_seed, sigma_rollout : float
        Noise standard deviations on the log-odds (>= 0); assumed, not measured.
    wrong_shift : float
        Distance (>= 0) of the wrong predictions from the true onset.
    n_sim, n_boot : int
        Simulations, and bootstrap replicates per simulation.
    rng : numpy.random.Generator or int
    level : float
        Nominal coverage of the interval.

    Returns
    -------
    Power
    """
    shift = _spread("wrong_shift", wrong_shift)
    sims = _count("n_sim", n_sim)
    pred = ladder_prediction(p, b, c, c_low, lambdas, budgets, eta, delta)
    truth = pred.onset
    if not np.isfinite(truth):
        raise ValueError(f"the model ladder has no onset on lambdas (true onset {truth!r}) at "
                         f"eta={eta!r}, delta={delta!r}: there is nothing to cover")
    gen = np.random.default_rng(rng)
    lam, t = tuple(float(v) for v in check_grid("lambdas", lambdas)), tuple(budgets)
    scores = np.zeros((sims, 5), dtype=bool)
    for i in range(sims):
        mass = simulate(pred.log_mass, n_seeds, n_rollouts, sigma_seed, sigma_rollout, gen)
        res = ladder_onset_interval(LadderData(lam, t, mass), delta, n_boot, gen, level)
        scores[i] = _score(res, truth, shift)
    share = scores.mean(axis=0)
    return Power(true_onset=truth, fine_onset=pred.fine_onset, coverage=float(share[0]),
                 excludes_below=float(share[1]), excludes_above=float(share[2]),
                 no_onset=float(share[3]), undefined=float(share[4]), n_sim=sims)
