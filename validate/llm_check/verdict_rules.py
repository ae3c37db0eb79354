r"""Verdict rules of the pre-registered tests: intervals against predicted windows and shifts.

Every rule here maps intervals and predicted values to one of four verdicts, and nothing
else: no data, no randomness.

* :func:`window_verdict` (test (a), the cliff interval): HIT when the onset interval lies
  inside the predicted window widened by half a grid step on each side, MISS when it is
  disjoint from it, INCONCLUSIVE otherwise.
  Tests (b) and (c) use it too, on the interval of (measured - predicted) against ``(0, 0)``.
* :func:`counted`: a predictor's HIT that a null shares counts as INCONCLUSIVE.
* :func:`null_windows`: the null predictors scored beside the real ones.
* :func:`direction_check`: did what the prediction says happens past the cliff happen?

VOID (the gate failed, or the data cannot define the quantity) is decided by the callers in
:mod:`validate.llm_check.preregistered_tests`, never here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from validate.llm_check.onset import check_grid

__all__ = ["Verdict", "window_verdict", "counted", "COUNTED_RULE",
           "local_step", "null_windows",
           "DirectionPrediction", "DirectionResult", "direction_check"]


class Verdict(StrEnum):
    """Outcome of a pre-registered test (a ``str``: serialises as its name)."""

    HIT = "HIT"
    MISS = "MISS"
    INCONCLUSIVE = "INCONCLUSIVE"
    VOID = "VOID"


def _interval(name: str, interval: tuple[float, float], *, allow_inf: bool) -> tuple[float, float]:
    lo, hi = (float(v) for v in interval)
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"{name} must be an interval (low <= high, no NaN), got {interval!r}")
    if not allow_inf and not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {interval!r}")
    return lo, hi


def local_step(lambdas: ArrayLike, window: tuple[float, float]) -> float:
    r"""The grid step at a window: the widest spacing of consecutive grid points whose
    closed interval meets the window.

    .. math:: h(W) = \max\{\lambda_{i+1} - \lambda_i :
              [\lambda_i, \lambda_{i+1}] \cap [w_-, w_+] \neq \emptyset\},

    with a window beyond either end of the grid moved onto that end first (it is then read
    at the first or last step).

    Examples
    --------
    >>> local_step([1.0, 1.1, 1.2, 1.5], (1.15, 1.25))
    0.30000000000000004
    >>> local_step([1.0, 1.1, 1.2, 1.5], (1.12, 1.12))
    0.09999999999999987
    """
    lam = check_grid("lambdas", lambdas)
    lo, hi = _interval("window", window, allow_inf=False)
    lo, hi = min(max(lo, lam[0]), lam[-1]), min(max(hi, lam[0]), lam[-1])
    meets = (lam[1:] >= lo) & (lam[:-1] <= hi)
    return float(np.max(np.diff(lam)[meets]))


def window_verdict(interval: tuple[float, float], window: tuple[float, float],
                   widen: float) -> Verdict:
    r"""Test (a): the onset interval against a predicted window widened by ``widen``.

    .. math::

        W' = [w_- - \delta,\ w_+ + \delta],\qquad
        \text{HIT}: I \subseteq W',\quad \text{MISS}: I \cap W' = \emptyset,\quad
        \text{INCONCLUSIVE otherwise.}

    Parameters
    ----------
    interval : (low, high)
        The onset's interval; ``high = inf`` allowed (no onset within the grid).
    window : (low, high)
        The predicted window (a point prediction is ``(x, x)``); finite.
    widen : float
        ``delta >= 0``: half the grid step at the window (:func:`local_step` / 2), since the
        onset's interpolation can place it only to within a step.

    Examples
    --------
    >>> window_verdict((1.12, 1.16), (1.126, 1.150), 0.01)
    <Verdict.HIT: 'HIT'>
    >>> window_verdict((1.30, math.inf), (1.126, 1.150), 0.01)
    <Verdict.MISS: 'MISS'>
    """
    lo, hi = _interval("interval", interval, allow_inf=True)
    w_lo, w_hi = _interval("window", window, allow_inf=False)
    d = float(widen)
    if not d >= 0.0 or not math.isfinite(d):
        raise ValueError(f"widen must be finite and >= 0, got {widen!r}")
    w_lo, w_hi = w_lo - d, w_hi + d
    if w_lo <= lo and hi <= w_hi:
        return Verdict.HIT
    if hi < w_lo or lo > w_hi:
        return Verdict.MISS
    return Verdict.INCONCLUSIVE


COUNTED_RULE = ("a predictor's HIT counts only where no null predictor HITs on the same "
                "interval; otherwise the test cannot tell it from a prediction without theory "
                "and counts as INCONCLUSIVE")
"""How a predictor's verdict is counted beside its nulls' (:func:`counted`)."""


def counted(verdict: Verdict, nulls: Mapping[str, Verdict]) -> Verdict:
    """:data:`COUNTED_RULE`: a HIT that a null shares counts as INCONCLUSIVE.

    Examples
    --------
    >>> counted(Verdict.HIT, {"no_shift": Verdict.HIT, "log_c": Verdict.MISS})
    <Verdict.INCONCLUSIVE: 'INCONCLUSIVE'>
    >>> counted(Verdict.HIT, {"no_shift": Verdict.MISS})
    <Verdict.HIT: 'HIT'>
    """
    if verdict == Verdict.HIT and any(v == Verdict.HIT for v in nulls.values()):
        return Verdict.INCONCLUSIVE
    return verdict


def null_windows(lambdas: ArrayLike, constant: float | None = None
                 ) -> dict[str, tuple[float, float]]:
    """Point predictions that carry no theory, scored beside the real predictors.

    ``"first_grid_point"``: the first grid point above 1 (the cliff is as early as the grid
    can show); ``"grid_midpoint"``: ``(lambdas[0] + lambdas[-1]) / 2``; ``"constant"``: a
    number fixed in the prediction (when given).  The grid is placed around the predicted
    windows, so its midpoint and first point carry some of the theory's information; the
    constant, stated before any measurement, carries none.

    Examples
    --------
    >>> null_windows([1.0, 1.1, 1.3], 1.5)
    {'first_grid_point': (1.1, 1.1), 'grid_midpoint': (1.15, 1.15), 'constant': (1.5, 1.5)}
    """
    lam = check_grid("lambdas", lambdas)
    mid = float(0.5 * (lam[0] + lam[-1]))
    out = {"first_grid_point": (float(lam[1]), float(lam[1])), "grid_midpoint": (mid, mid)}
    if constant is not None:
        c = float(constant)
        if not math.isfinite(c) or c < 1.0:
            raise ValueError(f"constant must be a finite lambda >= 1, got {constant!r}")
        out["constant"] = (c, c)
    return out


# --- direction past the cliff --------------------------------------------------------------
@dataclass(frozen=True)
class DirectionPrediction:
    """What the prediction says happens past the cliff (serialisable into the prediction).

    Attributes
    ----------
    position_type : str
        The position type whose valid mass is predicted to move (e.g. ``"close"``).
    valid_mass : {"up", "down"}
        Which way the student's valid mass there moves from its lambda = 1 value.
    parse_rate_falls : bool
        Whether the strict parse rate falls below its lambda = 1 value.
    past : float
        Grid points with ``lambda > past`` count as past the cliff (e.g. the upper end of the
        predicted windows widened by half a step); fixed before the sweep.
    min_change : float
        Smallest change of the parse rate, in probability, that counts as a move (>= 0).
    min_shrink : float
        Smallest relative shrink of the class the move takes mass from (the tail ``1 - m``
        for "up", ``m`` for "down") that counts as a move of the valid mass, in [0, 1): a
        move is judged against the room there is, so a mass already at 0.998 can still
        move "up" by halving its tail.
    """

    position_type: str
    valid_mass: Literal["up", "down"]
    parse_rate_falls: bool
    past: float
    min_change: float = 0.02
    min_shrink: float = 0.5

    def __post_init__(self) -> None:
        if self.valid_mass not in ("up", "down"):
            raise ValueError(f"valid_mass must be 'up' or 'down', got {self.valid_mass!r}")
        if not math.isfinite(self.past) or self.past < 1.0:
            raise ValueError(f"past must be a finite lambda >= 1, got {self.past!r}")
        if not 0.0 <= self.min_change < 1.0:
            raise ValueError(f"min_change must be in [0, 1), got {self.min_change!r}")
        if not 0.0 <= self.min_shrink < 1.0:
            raise ValueError(f"min_shrink must be in [0, 1), got {self.min_shrink!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DirectionResult:
    """Measured moves past the cliff (:func:`direction_check`).

    Attributes
    ----------
    past_lambdas : grid points counted as past the cliff.
    mass_change, parse_change : mean over seeds and past points of (value - value at 1).
    mass_change_per_seed, parse_change_per_seed : the same per seed.
    shrink : the mean over seeds and past points of the losing class's share relative to
        its lambda = 1 value, ``(1 - m)/(1 - m_1)`` ("up") or ``m/m_1`` ("down"), minus one
        (``-0.5``: halved).
    mass_as_predicted, parse_as_predicted : whether each moved as predicted (None: no point
        past the cliff on the grid).
    happened : both as predicted (None when undetermined).
    """

    past_lambdas: tuple[float, ...]
    mass_change: float
    mass_change_per_seed: tuple[float, ...]
    shrink: float
    parse_change: float
    parse_change_per_seed: tuple[float, ...]
    mass_as_predicted: bool | None
    parse_as_predicted: bool | None
    happened: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def direction_check(prediction: DirectionPrediction, lambdas: ArrayLike, valid_mass: ArrayLike,
                    parse_rate: ArrayLike) -> DirectionResult:
    r"""Did the predicted moves past the cliff happen?

    .. math::

        \Delta_x = \frac1S \sum_s \frac1{|P|}\sum_{l \in P} \big(x_{s,l} - x_{s,0}\big),
        \qquad P = \{l : \lambda_l > \text{past}\},

    for ``x`` the student's valid mass at the predicted position type and the parse rate.
    The mass moved as predicted when the class it leaves shrank by ``min_shrink`` or more,

    .. math:: \rho = \frac1S \sum_s \frac1{|P|}\sum_{l \in P}
              \frac{1 - m_{s,l}}{1 - m_{s,0}} - 1 \le -\text{min\_shrink}

    ("up"; ``m`` in place of ``1 - m`` for "down"); the parse rate fell when
    ``Delta <= -min_change`` (and, when the prediction says it does not fall, "as predicted"
    means ``Delta > -min_change``).

    Parameters
    ----------
    prediction : DirectionPrediction
    lambdas : array_like, shape (L,)
        The grid (``lambdas[0] = 1``).
    valid_mass, parse_rate : array_like, shape (S, L)
        Per seed and grid point: the mean valid mass at ``prediction.position_type`` over the
        evaluation rollouts, and the strict parse rate.

    Examples
    --------
    >>> pred = DirectionPrediction("close", "up", True, past=1.2)
    >>> r = direction_check(pred, [1.0, 1.1, 1.3], [[0.5, 0.6, 0.99]], [[0.9, 0.9, 0.1]])
    >>> r.happened, round(r.mass_change, 2), round(r.shrink, 2), round(r.parse_change, 2)
    (True, 0.49, -0.98, -0.8)
    """
    lam = check_grid("lambdas", lambdas)
    mass = np.asarray(valid_mass, dtype=np.float64)
    parse = np.asarray(parse_rate, dtype=np.float64)
    for name, arr in (("valid_mass", mass), ("parse_rate", parse)):
        if arr.ndim != 2 or arr.shape[1] != lam.size:
            raise ValueError(f"{name} must have shape (seeds, {lam.size}), got {arr.shape}")
        if not (np.all(arr >= 0.0) and np.all(arr <= 1.0)):
            raise ValueError(f"{name} must be probabilities in [0, 1], got {arr.tolist()!r}")
    past = lam > prediction.past
    if not past.any():
        nan = math.nan
        return DirectionResult((), nan, (), nan, nan, (), None, None, None)
    dm = (mass[:, past] - mass[:, :1]).mean(axis=1)  # (S,)
    dp = (parse[:, past] - parse[:, :1]).mean(axis=1)
    losing = 1.0 - mass if prediction.valid_mass == "up" else mass
    with np.errstate(divide="ignore", invalid="ignore"):  # a share of 0 at 1 cannot shrink
        rho = float(np.mean(losing[:, past] / losing[:, :1]) - 1.0)
    m, p, eps = float(dm.mean()), float(dp.mean()), prediction.min_change
    mass_ok = bool(rho <= -prediction.min_shrink)  # False for NaN
    parse_ok = p <= -eps if prediction.parse_rate_falls else p > -eps
    return DirectionResult(tuple(float(v) for v in lam[past]), m, tuple(float(v) for v in dm),
                           rho, p, tuple(float(v) for v in dp), mass_ok, bool(parse_ok),
                           bool(mass_ok and parse_ok))


def windows_from(mapping: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Named windows as float pairs, checked (finite, low <= high)."""
    out = {}
    for k, v in mapping.items():
        pair = tuple(v)
        if len(pair) != 2:
            raise ValueError(f"windows[{k!r}] must be a (low, high) pair, got {v!r}")
        out[str(k)] = _interval(f"windows[{k!r}]", (pair[0], pair[1]), allow_inf=False)
    return out
