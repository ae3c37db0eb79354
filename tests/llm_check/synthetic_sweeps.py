"""Synthetic sweeps for the statistics tests: parse indicators drawn from a known curve.

Synthetic sweeps are drawn from a known parse-rate curve, so the onset they estimate is
known exactly: it is the interpolated onset of the true rates at the grid points (the
quantity the estimator targets), computed without noise.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from validate.llm_check.onset import Sweep

GRID = np.r_[1.0, np.linspace(1.05, 1.40, 8)]  # 1 and 8 points, step 0.05
S, N = 3, 512


def curve(center: float, lam: np.ndarray = GRID, width: float = 0.04, r0: float = 0.8
          ) -> np.ndarray:
    """A falling parse-rate curve, ``r0 expit((center - lam) / width)``."""
    return np.asarray(r0 * expit((center - lam) / width))


def draw(rates: np.ndarray, rng: np.random.Generator, n: int = N) -> np.ndarray:
    """Parse indicators (S, L, n) with per-seed, per-lambda rates ``rates`` (S, L)."""
    return rng.random((*rates.shape, n)) < rates[..., None]


def falling_sweep(center: float, rng: np.random.Generator, lam: np.ndarray = GRID,
                  seeds: int = S, n: int = N, r0: float = 0.8) -> Sweep:
    """A sweep whose every seed follows :func:`curve` with cliff centre ``center``."""
    rates = np.tile(curve(center, lam, r0=r0), (seeds, 1))
    return Sweep(tuple(lam), draw(rates, rng, n))
