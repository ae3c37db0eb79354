r"""The law on its own clock: the mean-field step size read off the lambda = 1 runs, and the
model's absolute ladder predictions on that clock.

A trained network's steps are not the model's Euler steps: the model moves one logit per
position type, the network moves all of them through shared weights.  What the model can
say on its own terms is how the losing mass moves on *some* step size ``eta``.
:func:`calibrate_lr` fits that ``eta`` to the lambda = 1 rung alone (ordinary OPD, where
nothing about the cliff is at stake), so every prediction at lambda > 1
(:func:`ladder_prediction`) is made with no free parameter left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

import cliff
from validate.llm_check.ladder.statistic import check_budgets, check_delta, ladder_onset, trend
from validate.llm_check.onset import check_grid

__all__ = ["CLOCK_RULE", "ClockFit", "LadderPrediction", "calibrate_lr", "ladder_prediction",
           "losing_class"]

FloatArray = NDArray[np.float64]
Losing = Literal["tail", "valid"]

CLOCK_RULE = ("eta minimises sum over budgets T of (log x_pred(T; eta, lambda=1) - "
              "log x_obs(T))^2, x the losing-class mass and x_pred the mean-field path, over "
              "log eta in [eta_lo, eta_hi]: the best of a log grid of n_grid points, refined by "
              "bounded Brent between its grid neighbours and kept only if it improves; "
              "at_bound when the fit lies within 1e-3 in log eta of a bracket end")
"""The calibration rule, stated once (it goes into the sealed prediction)."""

_EDGE = 1e-3  # in log eta: a fit this close to a bracket end is "at the bound"


def _scalar(name: str, value: Any) -> float:
    if np.ndim(value) != 0 or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a real scalar (one position type), got {value!r}")
    return float(value)


def _clip(c: float, c_low: float | None) -> None:
    """One position type's clip: scalars (their ranges are checked by :mod:`cliff`)."""
    _scalar("c", c)
    if c_low is not None:
        _scalar("c_low", c_low)


def _step_size(eta: float) -> float:
    e = _scalar("eta", eta)
    if not (e > 0.0 and np.isfinite(e)):
        raise ValueError(f"eta must be finite and > 0, got {eta!r}")
    return e


def losing_class(p: float, b: float) -> Losing:
    """The class the dynamics shrink: ``"tail"`` when sharpening (``p > b``), ``"valid"``
    when softening (``p < b``); refused when neutral (``p == b``: nothing moves)."""
    p_, b_ = _scalar("p", p), _scalar("b", b)
    if p_ == b_:
        raise ValueError(f"p and b must differ (p == b = {p_!r} is neutral: no class loses "
                         f"mass, and the ladder has nothing to measure)")
    return "tail" if p_ > b_ else "valid"


def _log_losing(p: float, b: float, c: float, c_low: float | None, lam: ArrayLike,
                budgets: tuple[int, ...], eta: ArrayLike) -> FloatArray:
    """Predicted log losing-class mass, shape broadcast(lam, eta) + (B,)."""
    path = cliff.mean_field_path(p, b, c, lam, budgets, eta, c_low=c_low)
    return path.log_tail if losing_class(p, b) == "tail" else path.log_modal


@dataclass(frozen=True)
class ClockFit:
    """The mean-field step size fitted to the lambda = 1 runs (:func:`calibrate_lr`).

    Attributes
    ----------
    eta : the fitted step size.
    residuals : per budget, predicted minus measured log losing mass at lambda = 1.
    rms : root mean square of the residuals.
    at_bound : the fit lies at an end of the bracket: the mean field cannot reproduce the
        lambda = 1 runs with any step size inside it (the clock is not read).
    bracket : ``(eta_lo, eta_hi)`` searched.
    rule : :data:`CLOCK_RULE`.
    """

    eta: float
    residuals: tuple[float, ...]
    rms: float
    at_bound: bool
    bracket: tuple[float, float]
    rule: str = CLOCK_RULE


def _bracket(p: float, b: float, c: float, c_low: float | None, eta_lo: float,
             eta_hi: float | None) -> tuple[float, float]:
    hi = float(cliff.max_monotone_lr(p, b, c, 1.0, c_low=c_low)) if eta_hi is None \
        else float(eta_hi)
    lo = float(eta_lo)
    if not (0.0 < lo < hi < np.inf):
        raise ValueError(f"eta_lo and eta_hi must satisfy 0 < eta_lo < eta_hi < inf, got "
                         f"eta_lo={eta_lo!r}, eta_hi={hi!r}")
    return lo, hi


def calibrate_lr(p: float, b: float, c: float, c_low: float | None, budgets: Any,
                 log_mass_at_1: ArrayLike, *, losing: Losing, eta_lo: float = 1e-4,
                 eta_hi: float | None = None, n_grid: int = 41) -> ClockFit:
    r"""Fit the mean-field step size ``eta`` to the lambda = 1 runs alone.

    .. math:: \hat\eta = \arg\min_{\eta \in [\eta_{lo}, \eta_{hi}]}
              \sum_t \big(\log x_{\eta}(T_t) - y_t\big)^2,

    with ``x_eta(T)`` the losing-class mass after ``T`` Euler steps of size ``eta`` at
    lambda = 1 (:func:`cliff.mean_field_path`) and ``y_t`` the measured pooled log mass.

    Parameters
    ----------
    p, b, c, c_low : float
        The position type's teacher and reference valid masses and the clip (``c_low``
        None: ``1/c``).
    budgets : sequence of int
        The evaluation budgets ``T_t`` (at least 2, increasing).
    log_mass_at_1 : array_like, shape (B,)
        Measured log losing-class mass at lambda = 1 (e.g. ``pooled_log_mass[0]``); finite.
    losing : {"tail", "valid"}
        The class measured; must be the one the dynamics shrink (:func:`losing_class`), so
        that a mislabelled measurement is refused rather than fitted.
    eta_lo, eta_hi : float
        The bracket; ``eta_hi`` defaults to ``cliff.max_monotone_lr(p, b, c, 1.0)``.
    n_grid : int
        Points of the coarse log grid (>= 3): the refinement starts from the best of them,
        so a loss with several minima cannot trap it in a poor one.

    Returns
    -------
    ClockFit
    """
    t = check_budgets("budgets", budgets)
    y = np.asarray(log_mass_at_1, dtype=np.float64)
    if y.shape != (len(t),) or not np.all(np.isfinite(y)) or np.any(y > 0.0):
        raise ValueError(f"log_mass_at_1 must be {len(t)} finite log masses <= 0, got "
                         f"{np.asarray(log_mass_at_1).tolist()!r}")
    if losing not in ("tail", "valid") or losing != losing_class(p, b):
        raise ValueError(f"losing must be {losing_class(p, b)!r} for p={p!r}, b={b!r} (the "
                         f"class the dynamics shrink), got {losing!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, (int, np.integer)) or n_grid < 3:
        raise ValueError(f"n_grid must be an integer >= 3, got {n_grid!r}")
    _clip(c, c_low)
    lo, hi = _bracket(p, b, c, c_low, eta_lo, eta_hi)
    grid = np.linspace(np.log(lo), np.log(hi), int(n_grid))

    def loss(log_eta: Any) -> Any:
        pred = _log_losing(p, b, c, c_low, 1.0, t, np.exp(log_eta))
        return ((pred - y) ** 2).sum(axis=-1)

    values = loss(grid)
    k = int(np.argmin(values))
    best, best_loss = grid[k], float(values[k])
    window = (grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)])
    fine = minimize_scalar(lambda v: float(loss(v)), bounds=window, method="bounded",
                           options={"xatol": 1e-9})
    if float(fine.fun) < best_loss:
        best = float(fine.x)
    res = _log_losing(p, b, c, c_low, 1.0, t, np.exp(best)) - y
    at_bound = bool(min(best - grid[0], grid[-1] - best) < _EDGE)
    return ClockFit(eta=float(np.exp(best)), residuals=tuple(float(v) for v in res),
                    rms=float(np.sqrt(np.mean(res ** 2))), at_bound=at_bound, bracket=(lo, hi))


@dataclass(frozen=True)
class LadderPrediction:
    """The model's ladder on its calibrated clock (:func:`ladder_prediction`).

    Attributes
    ----------
    losing : the class whose mass is predicted (:func:`losing_class`).
    log_mass : (L, B) predicted log losing mass per rung and budget.
    trends : (L,) the predicted trend per rung.
    onset : :func:`~validate.llm_check.ladder.statistic.ladder_onset` of ``trends``: the
        statistic the data is scored with, applied to the model's own ladder.
    fine_lambdas, fine_trends : a fine grid from 1 to the last rung, and its trends.
    fine_onset : the onset on the fine grid (not quantised to the rungs): the sealed number.
    lambda_star, lambda_collapse : the two-class asymptotic thresholds (:func:`cliff.solve`).
    """

    losing: Losing
    log_mass: FloatArray
    trends: FloatArray
    onset: float
    fine_lambdas: FloatArray
    fine_trends: FloatArray
    fine_onset: float
    lambda_star: float
    lambda_collapse: float


def ladder_prediction(p: float, b: float, c: float, c_low: float | None, lambdas: ArrayLike,
                      budgets: Any, eta: float, delta: float, *,
                      n_fine: int = 200) -> LadderPrediction:
    r"""Absolute predictions of the ladder at step size ``eta``.

    .. math:: \hat y_{l,t} = \log x_\eta(T_t;\ \lambda_l),\qquad
              \hat\beta_l = \operatorname{trend}(\hat y_{l,\cdot}),\qquad
              \hat\lambda = \operatorname{onset}(\hat\beta;\ \delta).

    Parameters
    ----------
    p, b, c, c_low : float
        As in :func:`calibrate_lr`.
    lambdas : array_like
        The rungs (``lambdas[0] = 1``).
    budgets : sequence of int
        The evaluation budgets.
    eta : float
        The step size (:attr:`ClockFit.eta`).
    delta : float
        The onset margin (> 0).
    n_fine : int
        Points of the fine lambda grid (>= 2).

    Returns
    -------
    LadderPrediction
    """
    lam = check_grid("lambdas", lambdas)
    t = check_budgets("budgets", budgets)
    d = check_delta(delta)
    if isinstance(n_fine, bool) or not isinstance(n_fine, (int, np.integer)) or n_fine < 2:
        raise ValueError(f"n_fine must be an integer >= 2, got {n_fine!r}")
    eta_ = _step_size(eta)
    losing = losing_class(p, b)
    _clip(c, c_low)
    fine = np.linspace(1.0, lam[-1], int(n_fine))
    log_mass = _log_losing(p, b, c, c_low, lam, t, eta_)
    fine_trends = np.asarray(trend(_log_losing(p, b, c, c_low, fine, t, eta_), t))
    trends = np.asarray(trend(log_mass, t))
    res = cliff.solve(p, b, c, c_low=c_low)
    return LadderPrediction(
        losing=losing, log_mass=log_mass, trends=trends, onset=float(ladder_onset(lam, trends, d)),
        fine_lambdas=fine, fine_trends=fine_trends,
        fine_onset=float(ladder_onset(fine, fine_trends, d)),
        lambda_star=float(res.lambda_star), lambda_collapse=float(res.lambda_collapse))
