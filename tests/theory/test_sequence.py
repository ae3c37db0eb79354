"""Sequence calibration: the predicted parse rate against simulated per-position dynamics,
and the sequence cliff against the per-position thresholds."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import cliff
from cliff import predict_parse_rate, sequence_cliff
from validate.monte_carlo_kary import Config, mean_field


def test_parse_rate_equals_simulated_product() -> None:
    """prod_i of the mean-field (K = 2) end states after 40k Euler steps equals the
    predicted rate where every position converges (lambda below each lambda_collapse by
    10%; rel 1e-6 -- the clipped fixed points are attracting, error decays geometrically)."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.6, 0.99, size=(3, 4))
    b = rng.uniform(0.3, 0.95, size=(3, 4))
    lc = cliff.solve(p, b, 5.0).lambda_collapse
    lam = float(1 + 0.9 * (lc.min() - 1))
    t2, r2 = np.stack([p, 1 - p], -1).reshape(-1, 2), np.stack([b, 1 - b], -1).reshape(-1, 2)
    n = len(t2)
    log_pi, _ = mean_field(np.log(t2), np.log(r2), np.full(n, lam), np.full(n, 5.0),
                           np.full(n, 0.2), Config(steps=40_000))
    sim = np.exp(log_pi[:, 0].reshape(3, 4).sum(-1))
    np.testing.assert_allclose(predict_parse_rate([lam], p, b, 5.0)[0], sim, rtol=1e-6)


@given(seed=st.integers(0, 2**31), n_pos=st.integers(1, 12))
def test_sequence_cliff_bounds(seed: int, n_pos: int) -> None:
    """lambda_seq <= min softening lambda_collapse; inf if all positions sharpen; the rate
    at lambda_seq is at most half the lambda = 1 rate and above it just before."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.999, size=(5, n_pos))
    b = rng.uniform(0.05, 0.999, size=(5, n_pos))
    seq = sequence_cliff(p, b, 5.0)
    res = cliff.solve(p, b, 5.0)
    soft = p < b
    lc_soft = np.where(soft, res.lambda_collapse, np.inf).min(-1)
    assert (seq <= lc_soft * (1 + 1e-9)).all()
    assert np.isinf(seq[~soft.any(-1)]).all()
    fin = np.isfinite(seq)
    r1 = predict_parse_rate([1.0], p, b, 5.0)[0]
    at = np.array([predict_parse_rate([s], p[i], b[i], 5.0)[0] for i, s in
                   zip(np.flatnonzero(fin), seq[fin], strict=True)])
    before = np.array([predict_parse_rate([max(1.0, s * (1 - 1e-7))], p[i], b[i], 5.0)[0]
                       for i, s in zip(np.flatnonzero(fin), seq[fin], strict=True)])
    assert (at <= 0.5 * r1[fin] * (1 + 1e-9)).all()
    assert (before >= 0.5 * r1[fin] * (1 - 1e-6)).all()
