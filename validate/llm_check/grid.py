r"""The lambda grid of test (a), placed around the predicted windows before the sweep.

Rule (:func:`design_grid`): ``lambda = 1`` plus ``n`` equally spaced points covering the hull
``[A, B]`` of the predicted windows with one step to spare on each side,

.. math::

    h = \max\Big(\frac{B - A}{n - 3},\ h_{\min}\Big),\qquad
    \lambda_k = \tfrac{A + B}2 + \big(k - \tfrac{n-1}2\big) h,\ k = 0, \dots, n-1,

moved (not stretched) inside ``[lower, upper]`` when it sticks out, and compressed to fit
only when it is wider than that range.  Both windows are then bracketed (a grid point at or
below ``A`` - ``lambda = 1`` if need be - and one at or above ``B``), and the step at the
windows is at most half the distance between the predictors,

.. math:: h \le d/2,\qquad d = \min_{i \ne j} |m_i - m_j|,\ m_i \text{ the window midpoints},

so that windows widened by half a step (the verdict rule) stay apart whenever the
predictors are ``2 h_min`` or more apart; when ``n`` is too small for that, the design is
refused with the smallest ``n`` that works.  When the predictors are closer than ``2 h_min``
(they coincide, or nearly) no grid at the resolution floor meets the rule: the grid is built
anyway by the same formula (centred on the hull, step ``max((B - A)/(n - 3), h_min)``) and
``separable`` is False - the test then scores both predictors on one cliff and cannot tell
them apart, which the prediction states in advance.

The windows are asymptotic (``T -> inf``); after ``T`` updates the onset lies above them
(the finite-budget law: ``lambda_T - lambda_inf ~ 1/(eta T)``), by an amount that depends on
the uncalibrated step size.  ``beyond`` points past the last one, ``L``, therefore follow it,
spaced geometrically in the distance from ``lambda = 1`` up to twice that distance,

.. math:: e_j = 1 + (L - 1)\, 2^{j/J},\quad j = 1, \dots, J,

(capped at ``upper``), so that an onset delayed past the windows is located rather than
reported as "none on the grid".  They do not change the step at the windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from validate.llm_check.verdict_rules import local_step, windows_from

__all__ = ["GridDesign", "design_grid", "finite_windows"]


@dataclass(frozen=True)
class GridDesign:
    """A designed grid and the quantities its rule was checked on (serialisable).

    Attributes
    ----------
    lambdas : sorted grid, ``lambdas[0] = 1``, ``n_points + 1`` values.
    step : the widest grid step meeting the hull of the windows (the resolution there).
    distance : ``d``, the smallest distance between window midpoints (``inf`` for one window).
    separable : ``step <= d / 2``.
    hull : ``(A, B)``, the smallest interval holding every window.
    windows : the windows the grid was designed for.
    rule : the rule, in words.
    """

    lambdas: tuple[float, ...]
    step: float
    distance: float
    separable: bool
    hull: tuple[float, float]
    windows: dict[str, tuple[float, float]]
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridDesign:
        """Inverse of :meth:`to_dict`, also on its JSON (lists for tuples, non-finite floats
        as the strings "inf", "nan")."""
        lo, hi = d["hull"]
        return cls(lambdas=tuple(float(x) for x in d["lambdas"]), step=float(d["step"]),
                   distance=float(d["distance"]), separable=bool(d["separable"]),
                   hull=(float(lo), float(hi)),
                   windows={str(k): (float(v[0]), float(v[1])) for k, v in d["windows"].items()},
                   rule=str(d["rule"]))


def finite_windows(windows: Mapping[str, Any], upper: float
                   ) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The windows a grid can be designed around (finite, inside ``[1, upper]``), and why
    each other one was left out (``None`` windows are skipped silently).

    Examples
    --------
    >>> ok, why = finite_windows({"a": [1.1, 1.2], "b": [0.5, 1.2], "c": None}, 6.0)
    >>> ok
    {'a': (1.1, 1.2)}
    >>> why
    ["window b = [0.5, 1.2] does not lie inside [1, 6.0] (the grid's range)"]
    """
    out, why = {}, []
    for name, w in windows.items():
        if w is None:
            continue
        lo, hi = float(w[0]), float(w[1])
        if math.isfinite(lo) and math.isfinite(hi) and 1.0 <= lo <= hi <= upper:
            out[name] = (lo, hi)
        else:
            why.append(f"window {name} = [{lo:.6g}, {hi:.6g}] does not lie inside [1, {upper}] "
                       f"(the grid's range)")
    return out, why


def design_grid(windows: Mapping[str, tuple[float, float]], n_points: int = 8, *,
                lower: float | None = None, upper: float = 6.0,
                min_step: float = 0.01, beyond: int = 0) -> GridDesign:
    r"""``lambda = 1`` plus ``n_points`` points around the predicted windows (module rule).

    Parameters
    ----------
    windows : mapping of name -> (low, high)
        Predicted windows, finite, in ``[1, upper]``; e.g. ``{"two_class": (lambda*,
        lambda_collapse), "by_token": (q05, median)}``.
    n_points : int
        Grid points besides ``lambda = 1``, >= 8.
    lower : float, optional
        Smallest grid point above 1; default ``1 + min_step``.
    upper : float
        Largest grid point allowed (e.g. ``min(6, lambda up to which the OPD step is
        stable)``); the windows must end at or below it.
    min_step : float
        Resolution floor ``h_min`` > 0: the grid never steps finer than this.
    beyond : int
        Points past the designed grid (module rule), >= 0; none beyond ``upper``.

    Returns
    -------
    GridDesign

    Raises
    ------
    ValueError
        When ``n_points < 8``, a window is not finite or not inside ``[1, upper]``, or
        ``n_points`` is too few for the step rule (the message names the smallest count that
        satisfies it, ``3 + ceil(2 (B - A) / d)``).

    Examples
    --------
    >>> g = design_grid({"two_class": (1.19, 1.19), "by_token": (1.126, 1.150)})
    >>> len(g.lambdas), g.lambdas[0], g.separable, round(g.step, 4)
    (9, 1.0, True, 0.0128)
    >>> g.step <= g.distance / 2 and g.lambdas[1] <= 1.126 and g.lambdas[-1] >= 1.19
    True
    """
    wins = windows_from(windows)
    if not wins:
        raise ValueError("windows must hold at least one predicted window, got none")
    n = int(n_points)
    if n != n_points or n < 8:
        raise ValueError(f"n_points must be an integer >= 8, got {n_points!r}")
    if int(beyond) != beyond or beyond < 0:
        raise ValueError(f"beyond must be an integer >= 0, got {beyond!r}")
    h_min = float(min_step)
    if not (h_min > 0.0 and math.isfinite(h_min)):
        raise ValueError(f"min_step must be finite and > 0, got {min_step!r}")
    low_bound = 1.0 + h_min if lower is None else float(lower)
    if not (1.0 < low_bound < upper and math.isfinite(upper)):
        raise ValueError(f"need 1 < lower < upper < inf, got lower={low_bound!r}, "
                         f"upper={upper!r}")
    for k, (lo, hi) in wins.items():
        if lo < 1.0 or hi > upper:
            raise ValueError(f"windows[{k!r}] must lie in [1, upper = {upper!r}], got "
                             f"{(lo, hi)!r}")
    a = min(lo for lo, _ in wins.values())
    b = max(hi for _, hi in wins.values())
    mids = [0.5 * (lo + hi) for lo, hi in wins.values()]
    d = min((abs(x - y) for x, y in combinations(mids, 2)), default=math.inf)
    h0 = (b - a) / (n - 3)
    tol = 1.0 + 1e-9  # rounding in (B - A) and the midpoints
    achievable = 0.5 * d >= h_min  # the step rule can be met, given enough points
    if achievable and h0 > 0.5 * d * tol:
        need = 3 + math.ceil(2.0 * (b - a) / d / tol)
        raise ValueError(f"n_points = {n} gives a step of {h0:.4g} at the windows, more than "
                         f"half the distance between the predictors (d/2 = {0.5 * d:.4g}); "
                         f"n_points must be >= {need}")
    h = max(h0, h_min)
    span = (n - 1) * h
    start = 0.5 * (a + b) - 0.5 * span
    if start + span > upper:
        start = upper - span
    if start < low_bound:
        start = low_bound
    stop = min(start + span, upper)
    pts = np.linspace(start, stop, n)
    lam = (1.0,) + tuple(float(v) for v in pts)
    step = local_step(np.asarray(lam), (a, b))
    far = 1.0 + (stop - 1.0) * 2.0 ** (np.arange(1, int(beyond) + 1) / max(int(beyond), 1))
    lam += tuple(float(v) for v in far if v <= upper)
    separable = step <= 0.5 * d * tol
    if not separable and achievable:
        raise ValueError(f"the bounds force a step of {step:.4g} at the windows, more than half "
                         f"the distance between the predictors (d/2 = {0.5 * d:.4g}); widen "
                         f"[lower, upper] = [{low_bound!r}, {upper!r}] or raise n_points")
    rule = (f"1 and {n} equal steps h = max((B - A)/(n - 3), {h_min:g}) centred on the hull "
            f"[A, B] of the windows, moved inside [{low_bound:g}, {upper:g}]; then {int(beyond)} "
            f"points 1 + (L - 1) 2^(j/{int(beyond)}) past the last one, L, up to {upper:g}")
    return GridDesign(lambdas=lam, step=step, distance=d, separable=bool(separable),
                      hull=(a, b), windows=wins, rule=rule)
