"""Speed, measured side by side in one run: ``python -m validate.bench [--json] [--quick]``.

Every figure is a ratio of two timings taken here, now, on the same inputs, so it says how
the vectorised code compares with the obvious alternative on this machine, not how fast the
machine is.  Each timing is the best of ``repeats`` runs (100 for sub-millisecond ones); the
per-point root search is timed once over all its points.

Figures
-------
solve_points_per_s
    Points per second of ``cliff.solve`` on 10^7 (p, b, c) points (p, b, c all arrays).
solve_over_log_pass
    Time of ``cliff.solve(p, 0.5, 5.0)`` over the time of one ``np.log(p)`` on the same
    10^7-element ``p``: how many memory-bound passes the whole solve costs.
solve_over_log_pass_all_arrays
    The same with p, b and c all 10^7-element arrays and both regimes mixed.
solve_speedup_vs_root_search
    ``scipy.optimize.brentq`` per point on the *definition* of lambda* (the fixed point
    ``pi ∝ pi0^(1-lambda) piT^lambda`` meets the clip-safe boundary), over 10^4 points,
    against ``cliff.solve`` on the same points.
mc_speedup_vs_loop, mc_steps_per_s, mc_draw_ceiling
    :func:`validate.monte_carlo.finite_sample` against the plain-Python
    :func:`~validate.monte_carlo.finite_sample_loop` on the same chains and random stream;
    the ceiling is the speed-up left if all but numpy's binomial draws cost nothing.
kary_speedup_vs_brentq
    From :func:`validate.bench_kary.bench`.
contract_*, calibrate_*
    The output contract's cost in :func:`cliff.calibrate` as a ratio to the model forward
    passes it needs, from :mod:`validate.bench_contract`.
scheduler_*
    One :meth:`cliff.LambdaScheduler.update` at ``V = 151,936`` and 512 contexts, on torch
    tensors (reduced where they are) and on numpy arrays, over one forward and backward pass
    of the small model on the same batch, both on the CPU, from :mod:`validate.bench_schedule`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

import cliff
from cliff.internal import threads
from validate import bench_contract, bench_schedule
from validate.bench_kary import bench as bench_kary
from validate.monte_carlo import finite_sample, finite_sample_loop
from validate.timing import best_time


def _points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Near-deterministic teachers, references on both sides, clip caps in [1.2, 10]."""
    p = -np.expm1(-rng.uniform(1.0, 25.0, n))  # 1 - p from e^-1 down to 1e-11
    b = rng.uniform(0.01, 0.9999, n)
    c = rng.uniform(1.2, 10.0, n)
    return p, b, c


def _lambda_star_by_root_search(p: float, b: float, c: float, c_low: float) -> float:
    """lambda* from its definition: the first lambda >= 1 at which some IS ratio of the
    fixed point pi_lambda ∝ pi0^(1-lambda) piT^lambda reaches the clip band's edge."""
    log_c, log_cl = np.log(c), np.log(c_low)
    lp, lpbar, lb, lbbar = np.log(p), np.log1p(-p), np.log(b), np.log1p(-b)

    def margin(lam: float) -> float:
        z_m, z_t = (1 - lam) * lb + lam * lp, (1 - lam) * lbbar + lam * lpbar
        log_norm = np.logaddexp(z_m, z_t)
        r_m, r_t = lp - (z_m - log_norm), lpbar - (z_t - log_norm)
        return min(log_c - r_m, r_m - log_cl, log_c - r_t, r_t - log_cl)

    hi = 2.0
    while margin(hi) > 0:
        hi = 1 + 2 * (hi - 1)
    return float(brentq(margin, 1.0, hi, xtol=1e-14, rtol=1e-12))


def bench_solve(*, quick: bool = False, repeats: int = 5) -> dict[str, float]:
    rng = np.random.default_rng(0)
    n = 10**6 if quick else 10**7
    p, b, c = _points(n, rng)
    t_log = best_time(lambda: np.log(p), repeats)
    t_scalar = best_time(lambda: cliff.solve(p, 0.5, 5.0), repeats)
    t_arrays = best_time(lambda: cliff.solve(p, b, c), repeats)

    m = 10**3 if quick else 10**4
    ps, bs, cs = p[:m], b[:m], c[:m]
    t0 = time.perf_counter()
    roots = np.array([_lambda_star_by_root_search(*v, 1 / v[2]) for v in zip(
        ps, bs, cs, strict=True)])
    t_root = time.perf_counter() - t0
    t_small = best_time(lambda: cliff.solve(ps, bs, cs), 20 * repeats)  # sub-ms: more tries
    agree = float(np.max(np.abs(cliff.solve(ps, bs, cs).lambda_star - roots) / roots))
    return {
        "solve_points_per_s": n / t_arrays,
        "solve_over_log_pass": t_scalar / t_log,
        "solve_over_log_pass_all_arrays": t_arrays / t_log,
        "solve_speedup_vs_root_search": t_root / t_small,
        "root_search_max_rel_diff": agree,
        "points": n,
        "root_search_points": m,
        "threads": threads(),
    }


def bench_mc(*, quick: bool = False, repeats: int = 3) -> dict[str, float]:
    """Vectorised finite-sample simulator against the plain-Python loop, same work.

    Work: ``seeds x lambdas x parameter sets`` chains, ``steps`` REINFORCE steps of ``N``
    tokens each, run by ``finite_sample`` and by ``finite_sample_loop`` (each timed best of
    ``repeats``, after one untimed run whose results are checked against each other).

    Returns
    -------
    dict
        ``mc_speedup_vs_loop``: loop time / vectorised time on that work;
        ``mc_steps_per_s``: chain-steps per second of the vectorised simulator, one
        chain-step being one REINFORCE update of one (seed, lambda, parameter set) chain
        from ``N`` sampled tokens (multiply by ``mc_tokens_per_step`` for token-steps);
        ``mc_draw_ceiling``: loop time / the time of numpy's array ``binomial`` alone, as
        many draws at the chains' final ``m`` (best of ``repeats``; the final, extreme
        ``m`` draw fastest): the speed-up no simulator that draws with numpy's sampler can
        pass, since the draws remain when everything else is free; plus the sizes and the
        wall times.
    """
    seeds, n_lam, steps = (4, 16, 40) if quick else (8, 32, 150)
    p = np.array([0.7, 0.9, 0.99, 1 - 1e-6])[None, :]
    lam = np.linspace(1.0, 3.0, n_lam)[:, None]
    kwargs: dict[str, Any] = dict(c_low=None, steps=steps, lr=0.2, samples=64, seeds=seeds,
                                  seed=1)
    vec = finite_sample(p, 0.5, 5.0, lam, **kwargs).theta  # also the warm-up
    t_vec = best_time(lambda: finite_sample(p, 0.5, 5.0, lam, **kwargs), repeats)
    ref = finite_sample_loop(p, 0.5, 5.0, lam, **kwargs)
    t_loop = best_time(lambda: finite_sample_loop(p, 0.5, 5.0, lam, **kwargs), repeats)
    if not np.allclose(vec, ref, rtol=1e-9, atol=1e-9):
        raise RuntimeError("vectorised and loop simulators disagree")
    rng, m_final = np.random.default_rng(2), expit(vec)
    t_draws = best_time(lambda: [rng.binomial(64, m_final) for _ in range(steps)], repeats)
    chains = seeds * vec[0].size
    return {"mc_speedup_vs_loop": t_loop / t_vec, "mc_steps_per_s": chains * steps / t_vec,
            "mc_draw_ceiling": t_loop / t_draws, "mc_tokens_per_step": 64.0,
            "mc_chains": float(chains), "mc_steps": float(steps), "mc_vectorised_s": t_vec,
            "mc_loop_s": t_loop, "mc_draws_s": t_draws}


def run(*, quick: bool = False) -> dict[str, Any]:
    """Every benchmark figure, measured in this process."""
    out: dict[str, Any] = bench_solve(quick=quick)
    out.update(bench_mc(quick=quick))
    out.update(bench_kary(quick=quick))
    out.update(bench_contract.run(quick=quick))
    out.update(bench_schedule.bench(quick=quick))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validate.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="10x smaller problem sizes")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick)
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:<34} {v:.4g}" if isinstance(v, float) else f"{k:<34} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
