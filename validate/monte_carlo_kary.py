r"""Monte Carlo of the clipped K-class G-OPD dynamics (derivations/model.md, "K-ary
extension"), independent of the closed forms: it only evaluates the definitions.

Student ``pi = softmax(theta)`` over K classes; advantage
``A_k = clip(log t_k - log pi_k, log c_low, log c) + (lambda - 1)(log t_k - log r_k)``.

* mean field: ``theta_k += eta * pi_k (A_k - sum_j pi_j A_j)`` (Euler on the softmax logits);
* finite sample: each step draws ``N`` tokens from ``pi`` and takes the REINFORCE step
  ``theta += eta * mean_n A(y_n) (onehot(y_n) - pi)``.

Everything is vectorised over a batch of rows (positions x seeds x lambdas), and seeded.
``python -m validate.monte_carlo_kary`` runs a small demonstration and writes
``runs/monte_carlo_kary.json`` (config included).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_softmax
from tqdm import tqdm

from cliff import kary_fixed_point, solve_kary
from cliff.internal import write_json

FloatArray = NDArray[np.float64]

__all__ = ["Config", "advantage", "mean_field", "reinforce", "main"]


@dataclass(frozen=True)
class Config:
    """Settings of one simulation batch."""

    steps: int = 20_000
    """Number of updates T."""
    eta: float = 0.5
    """Step size on the logits."""
    samples: int = 0
    """Tokens per step N; 0 = mean field."""
    seed: int = 0
    """Seed of the sampler (finite sample only)."""
    record_every: int = 0
    """Keep ``log pi`` every this many steps (0 = only the end)."""


def advantage(log_pi: FloatArray, log_t: FloatArray, log_r: FloatArray, lam: FloatArray,
              c: FloatArray, c_low: FloatArray) -> FloatArray:
    """Clipped G-OPD advantage per class, shape (B, K); ``lam``, ``c``, ``c_low`` are (B,)."""
    with np.errstate(divide="ignore"):
        lo, hi = np.log(c_low)[:, None], np.log(c)[:, None]
    ratio = np.clip(log_t - log_pi, lo, hi)
    return ratio + (lam[:, None] - 1.0) * (log_t - log_r)


def mean_field(log_t: FloatArray, log_r: FloatArray, lam: FloatArray, c: FloatArray,
               c_low: FloatArray, cfg: Config, *, progress: bool = False
               ) -> tuple[FloatArray, list[FloatArray]]:
    """Euler steps of the mean-field drift from the warm start ``theta_0 = log r``.

    Returns the final ``log pi`` (B, K) and the recorded trajectory.
    """
    theta = log_r.copy()  # (B, K)
    trace: list[FloatArray] = []
    for step in tqdm(range(cfg.steps), disable=not progress, desc="mean field"):
        log_pi = log_softmax(theta, axis=-1)
        pi = np.exp(log_pi)
        a = advantage(log_pi, log_t, log_r, lam, c, c_low)
        theta += cfg.eta * pi * (a - np.einsum("bk,bk->b", pi, a)[:, None])
        theta -= theta.max(axis=-1, keepdims=True)
        if cfg.record_every and step % cfg.record_every == 0:
            trace.append(log_softmax(theta, axis=-1))
    return log_softmax(theta, axis=-1), trace


def reinforce(log_t: FloatArray, log_r: FloatArray, lam: FloatArray, c: FloatArray,
              c_low: FloatArray, cfg: Config, *, progress: bool = False
              ) -> tuple[FloatArray, list[FloatArray]]:
    """Finite-sample REINFORCE with ``cfg.samples`` tokens per step (seeded)."""
    if cfg.samples < 1:
        raise ValueError(f"cfg.samples must be >= 1 for reinforce, got {cfg.samples}")
    rng = np.random.default_rng(cfg.seed)
    theta = log_r.copy()
    trace: list[FloatArray] = []
    for step in tqdm(range(cfg.steps), disable=not progress, desc="reinforce"):
        log_pi = log_softmax(theta, axis=-1)
        pi = np.exp(log_pi)
        counts = rng.multinomial(cfg.samples, pi / pi.sum(-1, keepdims=True))  # (B, K)
        a = advantage(log_pi, log_t, log_r, lam, c, c_low)
        grad = (counts * a - pi * np.einsum("bk,bk->b", counts, a)[:, None]) / cfg.samples
        theta += cfg.eta * grad
        theta -= theta.max(axis=-1, keepdims=True)
        if cfg.record_every and step % cfg.record_every == 0:
            trace.append(log_softmax(theta, axis=-1))
    return log_softmax(theta, axis=-1), trace


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Demonstration: K = 8 random positions at lambda below lambda*, between, and past
    lambda_collapse; reports the distance to the unclipped fixed point and the smallest
    class mass."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/monte_carlo_kary.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    k = 8
    t = rng.dirichlet(np.ones(k), size=args.positions) * 0.99 + 0.01 / k
    r = rng.dirichlet(np.ones(k), size=args.positions) * 0.99 + 0.01 / k
    c = np.full(args.positions, 5.0)
    res = solve_kary(t, r, c)
    ls, lc = np.asarray(res.lambda_star), np.asarray(res.lambda_collapse)
    lams = {"below": 1 + 0.5 * (ls - 1), "past_collapse": 1 + 1.5 * (lc - 1)}
    cfg = Config(steps=args.steps)
    out: dict[str, object] = {"config": asdict(cfg), "K": k, "c": 5.0, "seed": args.seed}
    for name, lam in lams.items():
        log_pi, _ = mean_field(np.log(t), np.log(r), lam, c, 1 / c, cfg, progress=True)
        fp = kary_fixed_point(t, r, lam)
        out[name] = {
            "max_abs_log_err_vs_fixed_point": float(np.abs(log_pi - np.log(fp)).max()),
            "min_class_mass": np.exp(log_pi.min(-1)).tolist(),
        }
    write_json(args.out, out)
    return out


if __name__ == "__main__":
    print(main())
