r"""Monte Carlo of the clipped G-OPD dynamics of the Bernoulli model (derivations/model.md,
"Dynamics").

Everything here is built from the *definitions* only: the clipped advantage

    A(y) = clip(log piT(y) - log pi(y), log c_low, log c) + (lambda - 1) (log piT(y) - log pi0(y))

of the two classes M (modal, contract-valid) and T (tail), with ``pi = (m, 1-m)``,
``m = sigmoid(theta)`` and every log-probability a stable log-sigmoid of ``theta``, so
``p = 1 - 1e-9`` keeps its tail mass.  No closed form of :mod:`cliff` is used.

Simulations (all vectorised in numpy over broadcast arrays: parameter sets x lambdas, and a
leading seed axis for the sampled version; the only Python loop is over steps):

* :func:`mean_field`: Euler steps of the mean-field drift, with three clocks that share the
  orbit (same fixed points, same direction of motion):

  - ``"sgd"``: ``theta += eta m(1-m) g(m)`` (the expected REINFORCE step; optional PPO
    epochs in expectation over the two classes);
  - ``"natural"``: ``theta += eta g(m)`` (Fisher-preconditioned: the natural gradient);
  - ``"relaxed"``: ``theta += g (1 - e^-eta) / k`` with ``k = -dg/dtheta``, i.e. each step
    takes ``eta`` local relaxation times (exponential Euler at step ``eta/k``), exact on each
    linear piece; steps are capped at ``trust`` log-odds (the cap is what moves a
    both-clipped state, where ``k = 0``) and kept inside the bracket of the limit that the
    drift signs seen so far imply (``g`` is nonincreasing in ``theta``, so the orbit's limit
    is unique).  Near-deterministic ``p`` makes the flow stiff (the restoring rate at a
    clipped fixed point is ``1 - m ~ (1-p)/c``); this clock still finds the settled state
    in tens of steps whatever ``p`` is, but its steps are not physical time.

* :func:`finite_sample`: ``N`` tokens per step sampled from ``pi``, each with its advantage,
  a REINFORCE step ``theta += eta mean_i A(y_i) d log pi(y_i)/d theta``, optionally ``E``
  epochs of a PPO ratio clip ``pi/pi_old`` in ``[1 - eps, 1 + eps]`` on top.
  :func:`finite_sample_loop` does the same steps in plain Python (reference, benchmark).

Command line: ``python -m validate.monte_carlo --p P --b B --c C`` scans lambda and compares
the simulated lambda*, lambda_collapse and finite-budget onset with the predictions.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_expit
from tqdm import tqdm

import cliff
from cliff.internal import save_figure, write_json

FloatArray = NDArray[np.float64]
CLOCKS = ("sgd", "natural", "relaxed")


# --- the model, from the definitions ----------------------------------------------------
@dataclass(frozen=True)
class Model:
    """Broadcast model parameters in log space (``lo = log c_low`` may be ``-inf``)."""

    log_p: FloatArray
    log_pbar: FloatArray
    lo: FloatArray
    hi: FloatArray
    push_m: FloatArray  # (lambda - 1) (log p - log b)
    push_t: FloatArray  # (lambda - 1) (log(1-p) - log(1-b))

    @classmethod
    def build(cls, p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike,
              c_low: ArrayLike | None = None) -> Model:
        p_, b_, c_, lam_ = (np.asarray(v, dtype=np.float64) for v in (p, b, c, lam))
        if not (np.all((p_ > 0) & (p_ < 1)) and np.all((b_ > 0) & (b_ < 1))):
            raise ValueError("p and b must be in the open interval (0, 1)")
        if not np.all(c_ > 1):
            raise ValueError(f"c must be in (1, inf), got min {float(np.min(c_))!r}")
        if not np.all(lam_ >= 0):
            raise ValueError(f"lam must be >= 0, got min {float(np.min(lam_))!r}")
        cl_ = 1.0 / c_ if c_low is None else np.asarray(c_low, dtype=np.float64)
        if not np.all((cl_ >= 0) & (cl_ < 1)):
            raise ValueError("c_low must be in [0, 1) (0 = no lower clip)")
        p_, b_, c_, cl_, lam_ = np.broadcast_arrays(p_, b_, c_, cl_, lam_)
        log_p, log_pbar = np.log(p_), np.log1p(-p_)
        with np.errstate(divide="ignore"):
            lo = np.log(cl_)
        return cls(log_p, log_pbar, lo, np.log(c_), (lam_ - 1.0) * (log_p - np.log(b_)),
                   (lam_ - 1.0) * (log_pbar - np.log1p(-b_)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.log_p))

    def log_ratios(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Unclipped log IS ratios ``log piT(y) - log pi(y)`` of M and T."""
        return self.log_p - log_expit(theta), self.log_pbar - log_expit(-theta)

    def advantages(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Clipped G-OPD advantages ``(A(M), A(T))``."""
        r_m, r_t = self.log_ratios(theta)
        a_m = np.minimum(np.maximum(r_m, self.lo), self.hi) + self.push_m
        a_t = np.minimum(np.maximum(r_t, self.lo), self.hi) + self.push_t
        return a_m, a_t

    def drift(self, theta: FloatArray) -> FloatArray:
        """g(m) = A(M) - A(T); the mean-field flow is d theta/dt = m(1-m) g(m)."""
        a_m, a_t = self.advantages(theta)
        return a_m - a_t

    def slope(self, theta: FloatArray) -> FloatArray:
        """k = -dg/dtheta = (1-m) [M's ratio unclipped] + m [T's ratio unclipped] >= 0."""
        r_m, r_t = self.log_ratios(theta)
        free_m = (r_m > self.lo) & (r_m < self.hi)
        free_t = (r_t > self.lo) & (r_t < self.hi)
        return np.where(free_m, expit(-theta), 0.0) + np.where(free_t, expit(theta), 0.0)

    def clipped(self, theta: FloatArray, tol: float = 1e-9) -> NDArray[np.bool_]:
        """Whether either class's ratio is clipped at ``theta`` (beyond ``tol`` in log)."""
        r_m, r_t = self.log_ratios(theta)
        out = (r_m < self.lo - tol) | (r_m > self.hi + tol)
        return np.asarray(out | (r_t < self.lo - tol) | (r_t > self.hi + tol))


def _theta0(model: Model, b: ArrayLike, theta0: ArrayLike | None) -> FloatArray:
    b_ = np.asarray(b, dtype=np.float64)
    start = np.log(b_) - np.log1p(-b_) if theta0 is None else np.asarray(theta0, float)
    return np.array(np.broadcast_to(start, model.shape), dtype=np.float64)


def _ppo_keep(adv: FloatArray, ratio: FloatArray, eps: float | None) -> FloatArray:
    """1 where the PPO surrogate min(r A, clip(r, 1-eps, 1+eps) A) has gradient r A."""
    if eps is None:
        return np.ones_like(ratio)
    cut = ((adv > 0) & (ratio > 1.0 + eps)) | ((adv < 0) & (ratio < 1.0 - eps))
    return np.where(cut, 0.0, 1.0)


# --- mean field ---------------------------------------------------------------------------
def mean_field(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, *,
               c_low: ArrayLike | None = None, steps: int = 400, lr: float = 1.0,
               clock: str = "relaxed", theta0: ArrayLike | None = None, epochs: int = 1,
               eps: float | None = None, trust: float = 2.0,
               progress: bool = False) -> FloatArray:
    r"""Euler steps of the clipped mean-field flow; returns ``theta_T`` (broadcast shape).

    .. math:: \theta_{n+1} = \theta_n + \eta\, m_n(1-m_n)\, g(m_n) \quad (\texttt{sgd}),\qquad
              g = A(M) - A(T).

    Parameters
    ----------
    p, b, c, lam, c_low : array_like
        Teacher / reference modal probabilities, IS cap, extrapolation coefficient, floor
        (default ``1/c``); broadcast together.
    steps : int
        Number of Euler steps.
    lr : float
        Step size ``eta`` (``sgd``/``natural``) or relaxation times per step (``relaxed``).
    clock : {'sgd', 'natural', 'relaxed'}
        Time parametrisation (see module docstring); all share fixed points and direction.
    theta0 : array_like, optional
        Initial log-odds; default ``logit b`` (the warm start).
    epochs, eps : int, float
        ``sgd`` only: PPO epochs per step on the expected surrogate, ratio clip ``eps``.
    trust : float
        ``relaxed`` only: largest step in log-odds.
    progress : bool
        Show a tqdm bar.

    Examples
    --------
    >>> theta = mean_field(0.9, 0.5, 5.0, 1.0)  # lambda = 1: the student learns the teacher
    >>> bool(abs(expit(theta) - 0.9) < 1e-12)
    True
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
    model = Model.build(p, b, c, lam, c_low)
    theta = _theta0(model, b, theta0)
    gain = -math.expm1(-lr)
    lo, hi = np.full_like(theta, -np.inf), np.full_like(theta, np.inf)
    for _ in tqdm(range(steps), disable=not progress, desc=f"mean field ({clock})"):
        if clock == "sgd":
            # the expected step: each class drawn in proportion to its mass
            theta = _ppo_step(model, theta, expit(theta), expit(-theta), lr, epochs, eps)
        elif clock == "natural":
            theta = theta + lr * model.drift(theta)
        else:
            theta, lo, hi = _relaxed_step(model, theta, lo, hi, gain, trust)
    return theta


def _relaxed_step(model: Model, theta: FloatArray, lo: FloatArray, hi: FloatArray,
                  gain: float, trust: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One exponential-Euler step of eta local relaxation times, safeguarded.

    g is nonincreasing in theta (each clipped log ratio is monotone), so the orbit's limit
    lies above every visited state with g > 0 and below every one with g < 0; a step that
    would leave that bracket is replaced by its midpoint.  k = 0 (both ratios clipped:
    constant drift) gives a ``trust`` step.
    """
    g, k = model.drift(theta), model.slope(theta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        step = np.where(k > 0, g * gain / k, np.sign(g) * np.inf)
    new = theta + np.clip(step, -trust, trust)
    outside = ((new >= hi) | (new <= lo)) & (new != theta)  # far end, before this state
    lo = np.where(g > 0, np.maximum(lo, theta), lo)
    hi = np.where(g < 0, np.minimum(hi, theta), hi)
    new = np.where(outside, 0.5 * (lo + hi), new)
    return new, lo, hi


# --- finite sample ------------------------------------------------------------------------
@dataclass(frozen=True)
class FiniteSampleResult:
    """Final and time-averaged log-odds of every chain, shape ``(seeds, *broadcast)``."""

    theta: FloatArray
    theta_avg: FloatArray  # mean of theta over the last ``window`` fraction of the steps


def finite_sample(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, *,
                  c_low: ArrayLike | None = None, steps: int = 400, lr: float = 0.5,
                  samples: int = 64, seeds: int = 8, seed: int = 0, epochs: int = 1,
                  eps: float | None = None, theta0: ArrayLike | None = None,
                  window: float = 0.5, progress: bool = False) -> FiniteSampleResult:
    r"""REINFORCE on sampled tokens, optionally with PPO epochs; vectorised over all chains.

    Each step draws ``N`` tokens from ``pi_old = (m, 1-m)``; ``n_M ~ Binomial(N, m)`` of them
    are modal (drawing the count is the same as drawing the tokens, since a token's update
    depends only on its class).  Each epoch ``e`` then applies

    .. math:: \theta \mathrel{+}= \eta \frac{1}{N}\sum_i \kappa_i\, r_i A(y_i)
              \frac{\partial \log\pi_\theta(y_i)}{\partial\theta},\quad
              r_i = \frac{\pi_\theta(y_i)}{\pi_{\mathrm{old}}(y_i)},

    with ``A`` evaluated at ``pi_old`` and ``kappa_i`` the PPO clip indicator (1 without
    ``eps``); with one epoch ``r = 1`` and this is plain REINFORCE.

    Parameters
    ----------
    p, b, c, lam, c_low : array_like
        Model parameters, broadcast together (the chain grid).
    steps, lr, samples : int, float, int
        Steps ``T``, step size ``eta``, tokens per step ``N``.
    seeds : int
        Independent chains per grid point (leading axis of the result).
    seed : int
        Seed of the single ``np.random.Generator`` that drives every chain; results are a
        function of ``(seed, seeds, broadcast shape)`` and the other arguments.
    epochs, eps : int, float
        PPO epochs per sampled batch and ratio clip (``None``: no clip).
    theta0 : array_like, optional
        Initial log-odds; default ``logit b``.
    window : float
        Fraction of the final steps averaged into ``theta_avg``.
    progress : bool
        Show a tqdm bar.

    Examples
    --------
    >>> r = finite_sample(0.8, 0.5, 5.0, 1.0, steps=2000, samples=256, seeds=4)
    >>> bool(abs(expit(r.theta_avg.mean()) - 0.8) < 0.02)
    True
    """
    model = Model.build(p, b, c, lam, c_low)
    rng = np.random.default_rng(seed)
    theta = np.broadcast_to(_theta0(model, b, theta0), (seeds, *model.shape)).copy()
    total = np.zeros_like(theta)
    start = steps - max(1, int(round(window * steps)))
    for n in tqdm(range(steps), disable=not progress, desc="finite sample"):
        m, m_bar = expit(theta), expit(-theta)
        f_m = rng.binomial(samples, m) / samples  # (S, *shape) share of modal tokens drawn
        if epochs == 1:  # one epoch: r = 1, nothing clipped; plain REINFORCE
            a_m, a_t = model.advantages(theta)
            theta = theta + lr * (f_m * a_m * m_bar - (1.0 - f_m) * a_t * m)
        else:
            theta = _ppo_step(model, theta, f_m, 1.0 - f_m, lr, epochs, eps)
        if n >= start:
            total += theta
    return FiniteSampleResult(theta, total / (steps - start))


def _ppo_step(model: Model, theta: FloatArray, share_m: FloatArray, share_t: FloatArray,
              lr: float, epochs: int, eps: float | None) -> FloatArray:
    """One sampling step: advantages at theta_old, then ``epochs`` PPO updates on a batch
    whose classes M and T hold the shares ``share_m``, ``share_t`` (the drawn fractions, or
    ``m_old``, ``1 - m_old`` for the expected step)."""
    a_m, a_t = model.advantages(theta)
    old_m, old_t = log_expit(theta), log_expit(-theta)
    new = theta
    for _ in range(epochs):
        r_m, r_t = np.exp(log_expit(new) - old_m), np.exp(log_expit(-new) - old_t)
        keep_m, keep_t = _ppo_keep(a_m, r_m, eps), _ppo_keep(a_t, r_t, eps)
        # d log pi(M)/dtheta = 1 - m, d log pi(T)/dtheta = -m
        grad = (share_m * keep_m * r_m * a_m * expit(-new)
                - share_t * keep_t * r_t * a_t * expit(new))
        new = new + lr * grad
    return new


def finite_sample_loop(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, *,
                       c_low: ArrayLike | None = None, steps: int = 400, lr: float = 0.5,
                       samples: int = 64, seeds: int = 8, seed: int = 0, epochs: int = 1,
                       eps: float | None = None) -> FloatArray:
    """Plain-Python reference of :func:`finite_sample` (same steps, same random stream).

    Loops over steps, then chains in C order (the order in which the vectorised draw
    consumes the generator), with ``math`` scalars.  Returns the final ``theta``.
    """
    cl = 1.0 / np.asarray(c, float) if c_low is None else np.asarray(c_low, float)
    grids = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (p, b, c, cl, lam)))
    shape = grids[0].shape
    params = [tuple(float(g.flat[j]) for g in grids) for j in range(grids[0].size)]
    rng = np.random.default_rng(seed)
    thetas = [math.log(bb) - math.log1p(-bb) for _, bb, _, _, _ in params] * seeds
    n_chain = len(params)

    def log_sig(t: float) -> float:
        return -math.log1p(math.exp(-t)) if t >= 0 else t - math.log1p(math.exp(t))

    def sig(t: float) -> float:  # scipy.special.expit's formula
        if t < 0:
            e = math.exp(t)
            return e / (1 + e)
        return 1 / (1 + math.exp(-t))

    for _ in range(steps):
        for j in range(seeds * n_chain):
            pp, bb, cc, ll, lm = params[j % n_chain]
            th = thetas[j]
            n_m = int(rng.binomial(samples, sig(th)))
            f_m = n_m / samples
            lo = math.log(ll) if ll > 0 else -math.inf
            hi = math.log(cc)
            lp_m, lp_t = log_sig(th), log_sig(-th)
            a_m = min(max(math.log(pp) - lp_m, lo), hi) + (lm - 1) * (math.log(pp) - math.log(bb))
            a_t = (min(max(math.log1p(-pp) - lp_t, lo), hi)
                   + (lm - 1) * (math.log1p(-pp) - math.log1p(-bb)))
            if epochs == 1:
                thetas[j] = th + lr * (f_m * a_m * sig(-th) - (1 - f_m) * a_t * sig(th))
                continue
            new = th
            for _ in range(epochs):
                r_m, r_t = math.exp(log_sig(new) - lp_m), math.exp(log_sig(-new) - lp_t)
                k_m = k_t = 1.0
                if eps is not None:
                    k_m = 0.0 if (a_m > 0 and r_m > 1 + eps) or (a_m < 0 and r_m < 1 - eps) else 1
                    k_t = 0.0 if (a_t > 0 and r_t > 1 + eps) or (a_t < 0 and r_t < 1 - eps) else 1
                m_new, m_bar = math.exp(log_sig(new)), math.exp(log_sig(-new))
                grad = f_m * k_m * r_m * a_m * m_bar - (1 - f_m) * k_t * r_t * a_t * m_new
                new = new + lr * grad
            thetas[j] = new
    return np.array(thetas, dtype=np.float64).reshape((seeds, *shape))


# --- lambda scan, thresholds read off the simulation -------------------------------------
@dataclass(frozen=True)
class Config:
    """One lambda scan (saved with every result)."""

    p: float
    """Teacher modal probability."""
    b: float
    """Reference / warm-start modal probability."""
    c: float
    """IS clip cap."""
    c_low: float | None = None
    """IS clip floor (None: 1/c)."""
    steps: int = 400
    """Budget T (Euler steps; sampled steps)."""
    lr: float = 0.5
    """Step size eta."""
    samples: int = 64
    """Tokens per sampled step N."""
    seeds: int = 8
    """Sampled chains per lambda."""
    seed: int = 0
    """Generator seed."""
    threshold: float = 0.5
    """Contract threshold tau on the modal mass."""
    n_lambda: int = 161
    """Grid size."""
    lam_max: float | None = None
    """Top of the grid (default: 1 + 2 (lambda_collapse - 1), or 3 when that is inf)."""
    relaxed_steps: int = 400
    """Steps of the relaxed clock used for the asymptotic state."""


def _first(lams: FloatArray, flag: NDArray[np.bool_]) -> float:
    """Smallest grid lambda with ``flag`` (inf when none)."""
    hit = np.flatnonzero(flag)
    return float(lams[hit[0]]) if hit.size else math.inf


def scan(cfg: Config, *, progress: bool = True) -> dict[str, Any]:
    """Simulate a lambda grid three ways and read the thresholds off the simulations.

    * asymptotic state (``relaxed`` clock): ``lambda*_sim`` = first lambda whose settled
      state has a clipped ratio; ``lambda_collapse_sim`` = first lambda whose drift has not
      vanished after ``relaxed_steps`` (``|g| > 1e-7``: it is running away);
    * budget ``T`` (``sgd`` clock, the mean field of training): ``onset_sim`` = first lambda
      with ``m_T`` past ``tau`` in the regime's direction;
    * sampled (REINFORCE, ``N`` tokens, ``seeds`` chains): the same onset per chain.
    """
    res = cliff.solve(cfg.p, cfg.b, cfg.c, c_low=cfg.c_low)
    sharp = cfg.p > cfg.b
    top = cfg.lam_max or (1 + 2 * (res.lambda_collapse - 1)
                          if math.isfinite(res.lambda_collapse) else 3.0)
    lams = np.linspace(1.0, top, cfg.n_lambda)
    model = Model.build(cfg.p, cfg.b, cfg.c, lams, cfg.c_low)
    theta_inf = mean_field(cfg.p, cfg.b, cfg.c, lams, c_low=cfg.c_low,
                           steps=cfg.relaxed_steps, clock="relaxed", progress=progress)
    theta_t = mean_field(cfg.p, cfg.b, cfg.c, lams, c_low=cfg.c_low, steps=cfg.steps,
                         lr=cfg.lr, clock="sgd", progress=progress)
    fs = finite_sample(cfg.p, cfg.b, cfg.c, lams, c_low=cfg.c_low, steps=cfg.steps,
                       lr=cfg.lr, samples=cfg.samples, seeds=cfg.seeds, seed=cfg.seed,
                       progress=progress)
    level = math.log(cfg.threshold) - math.log1p(-cfg.threshold)
    sign = 1.0 if sharp else -1.0
    per_seed = [_first(lams, sign * (th - level) >= 0) for th in fs.theta]
    onset_pred = cliff.finite_budget_onset(cfg.p, cfg.b, cfg.c, cfg.steps, cfg.lr,
                                             c_low=cfg.c_low, threshold=cfg.threshold)
    return {
        "config": asdict(cfg),
        "predicted": {
            "lambda_star": res.lambda_star, "lambda_collapse": res.lambda_collapse,
            "onset_T": onset_pred,
            "onset_inf": cliff.asymptotic_onset(cfg.p, cfg.b, cfg.c, c_low=cfg.c_low,
                                                  threshold=cfg.threshold),
            "regime": res.regime, "binding": res.binding},
        "simulated": {
            "lambda_star": _first(lams, model.clipped(theta_inf)),
            "lambda_collapse": _first(lams, np.abs(model.drift(theta_inf)) > 1e-7),
            "onset_T_mean_field": _first(lams, sign * (theta_t - level) >= 0),
            "onset_T_sampled_median": float(np.median(per_seed)),
            "onset_T_sampled_per_seed": per_seed,
            "grid_step": float(lams[1] - lams[0])},
        "lambda": lams, "theta_asymptotic": theta_inf, "theta_T_mean_field": theta_t,
        "theta_T_sampled": fs.theta,
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    """Final modal mass (top) and its log-odds (bottom) against lambda, thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams, cfg, pred = result["lambda"], result["config"], result["predicted"]
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    curves = [("theta_T_sampled", None), ("theta_T_mean_field", "mean field, T steps"),
              ("theta_asymptotic", "mean field, asymptotic")]
    for ax, transform, ylabel in [(axes[0], expit, "final modal mass m"),
                                  (axes[1], lambda t: t, "final log-odds logit m")]:
        for i, th in enumerate(result["theta_T_sampled"]):
            ax.plot(lams, transform(th), color="tab:blue", lw=0.6, alpha=0.5,
                    label=f"sampled, N={cfg['samples']}, one line per seed" if i == 0 else None)
        for key, label in curves[1:]:
            ax.plot(lams, transform(result[key]), lw=2,
                    ls="-" if "T" in key else "--", label=label)
        for value, name, color in [(pred["lambda_star"], r"$\lambda^*$", "tab:green"),
                                   (pred["lambda_collapse"], r"$\lambda_{collapse}$", "tab:red"),
                                   (pred["onset_T"], r"$\lambda_T$ (onset, T steps)",
                                    "tab:purple")]:
            if math.isfinite(value) and lams[0] <= value <= lams[-1]:
                ax.axvline(value, color=color, ls=":", lw=1.5, label=f"predicted {name}")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].axhline(cfg["threshold"], color="grey", lw=0.8)
    finite_t = np.concatenate([np.ravel(result["theta_T_sampled"]),
                               np.ravel(result["theta_T_mean_field"])])
    pad = 0.1 * (np.ptp(finite_t) + 1.0)  # the asymptotic curve may run off to +-inf
    axes[1].set_ylim(max(finite_t.min() - pad, -40), min(finite_t.max() + pad, 40))
    axes[1].set_xlabel(r"extrapolation coefficient $\lambda$")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"p={cfg['p']:g}, b={cfg['b']:g}, c={cfg['c']:g}, T={cfg['steps']}, "
                 f"eta={cfg['lr']:g} ({pred['regime']}, {pred['binding']} binds)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m validate.monte_carlo", description=__doc__)
    ap.add_argument("--p", type=float, required=True)
    ap.add_argument("--b", type=float, required=True)
    ap.add_argument("--c", type=float, required=True)
    ap.add_argument("--c-low", type=float, default=None)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=Path("figures"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cfg = Config(args.p, args.b, args.c, args.c_low, args.steps, args.lr, args.samples,
                 args.seeds, args.seed, args.threshold)
    result = scan(cfg, progress=not args.no_progress)
    tag = f"p{cfg.p:g}_b{cfg.b:g}_c{cfg.c:g}" + ("" if cfg.c_low is None else f"_cl{cfg.c_low:g}")
    png = plot(result, args.out / f"mc_{tag}.png")
    summary = {k: result[k] for k in ("config", "predicted", "simulated")}
    write_json(args.out / f"mc_{tag}.json", summary)
    sim, pred = result["simulated"], result["predicted"]
    print(f"{'quantity':<26}{'predicted':>14}{'simulated':>14}   (grid step "
          f"{sim['grid_step']:.4g})")
    for name, p_key, s_key in [("lambda*", "lambda_star", "lambda_star"),
                               ("lambda_collapse", "lambda_collapse", "lambda_collapse"),
                               ("onset T (mean field)", "onset_T", "onset_T_mean_field"),
                               ("onset T (sampled median)", "onset_T",
                                "onset_T_sampled_median")]:
        print(f"{name:<26}{pred[p_key]:>14.6g}{sim[s_key]:>14.6g}")
    print(f"asymptotic onset {pred['onset_inf']:.6g}; wrote {png} and its .json")
    return summary


if __name__ == "__main__":
    main()
