"""Speed of the K-ary solver: vectorised :func:`cliff.solve_kary` against a per-position
``scipy.optimize.brentq`` on the same equations (``python -m validate.bench`` reports it)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import logsumexp

import cliff

FloatArray = NDArray[np.float64]


def bench(*, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Vectorised :func:`cliff.solve_kary` against ``scipy.optimize.brentq`` per position.

    Same ``10^4`` random K = 8 positions (``10^3`` when ``quick``), c = 5, both timed in this
    call, with ``c_low = 0``; per position ``brentq`` solves the same two equations the
    vectorised call solves (cap: ``log sum_k t_k e^{y d_k} = log c``; collapse: the same
    sum over the non-minimal classes) on the tangent brackets to ``xtol = 1e-14``.  Returns
    the timings, the speed-up ``kary_speedup_vs_brentq`` and the largest relative
    disagreement of the two solvers.
    """
    rng = np.random.default_rng(seed)
    n, k, c = (1000 if quick else 10_000), 8, 5.0
    t = rng.dirichlet(np.full(k, 0.3), size=n) + 1e-9
    r = rng.dirichlet(np.full(k, 0.3), size=n) + 1e-9
    t /= t.sum(-1, keepdims=True)
    r /= r.sum(-1, keepdims=True)
    t0 = time.perf_counter()
    res = cliff.solve_kary(t, r, c, c_low=0.0)
    t_vec = time.perf_counter() - t0
    lt, lr = np.log(t), np.log(r)
    t0 = time.perf_counter()
    ref, ref_col = np.empty(n), np.empty(n)
    log_c = np.log(c)
    for i in range(n):
        d = (lt[i] - lr[i]) - (lt[i] - lr[i]).min()
        rest = d > 0

        def cap(y: float, i: int = i, d: FloatArray = d) -> float:
            return float(logsumexp(lt[i] + y * d)) - log_c

        def col(y: float, i: int = i, d: FloatArray = d, rest: NDArray[np.bool_] = rest
                ) -> float:
            return float(logsumexp(lt[i][rest] + y * d[rest])) - log_c

        ref[i] = 1.0 + brentq(cap, 0.0, log_c / float(np.dot(t[i], d)), xtol=1e-14,
                              rtol=4 * np.finfo(float).eps)
        hi = (log_c - float(logsumexp(lt[i][rest]))) / float(
            np.dot(t[i][rest], d[rest]) / t[i][rest].sum())
        ref_col[i] = 1.0 + brentq(col, 0.0, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
    t_brent = time.perf_counter() - t0
    ls = np.asarray(res.lambda_star)
    return {
        "n_positions": n, "K": k, "c": c,
        "kary_vectorised_s": t_vec, "kary_brentq_s": t_brent,
        "kary_speedup_vs_brentq": t_brent / t_vec,
        "kary_max_rel_diff_vs_brentq": float(max(
            np.max(np.abs(ls - ref) / (ref - 1.0)),
            np.max(np.abs(np.asarray(res.lambda_collapse) - ref_col) / (ref_col - 1.0)))),
    }
