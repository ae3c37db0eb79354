"""The power of the ladder test on simulated model ladders: with tiny noise it refutes a
prediction 0.05 off; with a wrong shift of 0 its miss rate is the two-level bootstrap's
expected one (the values derived in validate.llm_check.onset.resample_rates), within three
binomial standard errors of the simulations; the noise model draws what it states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from validate.llm_check.ladder.power import power, simulate

POINT = (0.99, 0.9, 5.0, None)  # sharpening: the tail (below 0.011 here) loses
RUNGS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
BUDGETS = (240, 480, 960)
ETA, DELTA, N_SIM = 1.0, 0.5, 200


def se3(rate: float) -> float:
    """Three binomial standard errors of a share of N_SIM simulations."""
    return 3 * math.sqrt(rate * (1 - rate) / N_SIM)


def _power(**kwargs: float) -> object:
    args = {"n_seeds": 5, "n_rollouts": 32, "sigma_seed": 0.0, "sigma_rollout": 0.3,
            "wrong_shift": 0.0, "n_sim": N_SIM, "n_boot": 200, "rng": 0} | kwargs
    return power(*POINT, RUNGS, BUDGETS, ETA, DELTA, **args)


def test_tiny_noise_refutes_a_prediction_off_by_005() -> None:
    res = _power(sigma_seed=0.01, sigma_rollout=0.01, wrong_shift=0.05)
    assert 1.5 < res.true_onset < 2.0 and res.n_sim == N_SIM
    assert res.excludes_below >= 0.95 and res.excludes_above >= 0.95
    assert res.no_onset == 0.0 and res.undefined == 0.0


def test_seed_dominated_miss_rate_is_the_student_t_one() -> None:
    s = 8
    expected = 1 - (2 * student_t.cdf(1.645 * math.sqrt((s - 1) / s), s - 1) - 1)  # 0.17
    res = _power(n_seeds=s, n_rollouts=8, sigma_seed=0.1, sigma_rollout=0.0)
    assert res.excludes_below == res.excludes_above == pytest.approx(1 - res.coverage)
    # (the onset is not linear in the cells: 1000 simulations measure about 0.185)
    assert abs(res.excludes_below - expected) <= se3(expected)


def test_rollout_dominated_miss_rate_is_at_most_nominal() -> None:
    # no seed-to-seed variation: the two-level scheme is conservative (coverage up to
    # 2 Phi(1.645 sqrt(2 - 1/S)) - 1 = 0.973 at S = 5)
    res = _power(sigma_rollout=0.5, n_rollouts=64)
    assert 0.027 - se3(0.027) <= 1 - res.coverage <= 0.1 + se3(0.1)


def test_simulated_noise_is_the_stated_one() -> None:
    log_mass = np.log([[1e-3, 1e-4], [1e-2, 1e-3]])
    x = simulate(log_mass, 400, 200, 0.2, 0.5, np.random.default_rng(0))
    assert x.shape == (400, 2, 2, 200) and np.all((x > 0) & (x < 1))
    log_x = np.log(x)
    seed_means = log_x.mean(axis=3)  # (S, L, B): the offset plus the rollouts' mean
    np.testing.assert_allclose(log_x.mean(axis=(0, 3)), log_mass, atol=0.03)
    np.testing.assert_allclose((log_x - seed_means[..., None]).std(axis=(0, 3)), 0.5, rtol=0.02)
    np.testing.assert_allclose(seed_means.std(axis=0), math.sqrt(0.2**2 + 0.5**2 / 200),
                               rtol=0.1)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"sigma_seed": -0.1}, "sigma_seed must be finite and >= 0"),
    ({"sigma_rollout": math.inf}, "sigma_rollout must be finite and >= 0"),
    ({"wrong_shift": -1.0}, "wrong_shift must be finite and >= 0"),
    ({"n_sim": 0}, "n_sim must be an integer >= 1"),
    ({"n_seeds": 0}, "n_seeds must be an integer >= 1"),
    ({"n_boot": 0}, "n_boot must be an integer >= 1"),
])
def test_refusals_name_the_argument(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _power(**kwargs | {"n_sim": kwargs.get("n_sim", 2)})


def test_no_model_onset_on_the_rungs_is_refused() -> None:
    with pytest.raises(ValueError, match="no onset on lambdas"):
        power(*POINT, (1.0, 1.2), BUDGETS, ETA, DELTA, 3, 8, 0.1, 0.1, 0.1, 2, 10, 0)
