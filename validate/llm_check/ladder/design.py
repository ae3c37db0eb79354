r"""The ladder's design: its rungs, budgets, seeds and runs, fixed before any run.

Rungs (:func:`ladder_rungs`): ``lambda = 1`` and ``n`` equally spaced rungs above it, reaching
three steps past the largest predicted window ``W`` (the two-class window at the binding
type and the by-token window),

.. math:: h = \max\Big(\frac{W - 1}{n - 3},\ h_{\min}\Big),\qquad \lambda_k = 1 + k h,
          \ k = 0, \dots, n,

so that ``lambda_n = W + 3h``.  Every rung runs ``len(seeds)`` OPD seeds at one constant
step size (plain SGD on the REINFORCE step: the update closest to the model's Euler steps),
each evaluated after each budget ``T, 2T, 4T``; the no-clip control runs one seed at
``lambda = 1`` and the top ``control_rungs`` rungs.  The lambda = 1 runs go first: the clock
is calibrated on them alone (:mod:`validate.llm_check.ladder.clock`) and sealed before any
other run starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from validate.llm_check.plan import Job

__all__ = ["LadderDesign", "ladder_rungs", "design_ladder"]


def ladder_rungs(largest_window: float, n: int, min_step: float = 0.01) -> tuple[float, ...]:
    """``lambda = 1`` and ``n`` rungs up to three steps past ``largest_window`` (module
    docstring).

    Examples
    --------
    >>> [round(x, 4) for x in ladder_rungs(1.2, 5)]
    [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    """
    if int(n) != n or n < 4:
        raise ValueError(f"n must be an integer >= 4 (three rungs past the window and one "
                         f"below it), got {n!r}")
    if not (math.isfinite(largest_window) and largest_window > 1.0):
        raise ValueError(f"largest_window must be finite and > 1, got {largest_window!r}")
    h = max((largest_window - 1.0) / (n - 3), min_step)
    return tuple(round(1.0 + k * h, 12) for k in range(n + 1))


@dataclass(frozen=True)
class LadderDesign:
    """Everything the ladder's runs are (written into the prediction)."""

    lambdas: tuple[float, ...]
    """the rungs, ``lambdas[0] = 1``"""
    step: float
    """the rungs' spacing ``h``"""
    largest_window: float
    """``W``, the largest upper end of the predicted windows"""
    budgets: tuple[int, ...]
    """the evaluation budgets ``T, 2T, 4T`` (updates)"""
    seeds: tuple[int, ...]
    """OPD seeds at every rung"""
    c: float
    """the IS clip cap"""
    c_low: float
    """the lower IS clip"""
    control_c: float
    """the no-clip control's cap (lower clip ``1 / control_c``)"""
    control_lambdas: tuple[float, ...]
    """the control's rungs: lambda = 1 and the top ones"""
    lr: float
    """the constant SGD step size of every run"""
    delta: float
    """the ladder onset's margin on the trend (:mod:`validate.llm_check.ladder.statistic`)"""

    RULE: ClassVar[str] = ("lambda = 1 and n equal rungs up to 3 steps past the largest "
                           "predicted window; SGD at one constant step; evaluated at T, 2T, 4T")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rule": self.RULE}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LadderDesign:
        return cls(lambdas=tuple(d["lambdas"]), step=float(d["step"]),
                   largest_window=float(d["largest_window"]), budgets=tuple(d["budgets"]),
                   seeds=tuple(d["seeds"]), c=float(d["c"]), c_low=float(d["c_low"]),
                   control_c=float(d["control_c"]),
                   control_lambdas=tuple(d["control_lambdas"]), lr=float(d["lr"]),
                   delta=float(d["delta"]))

    def jobs(self, stage: str) -> list[Job]:
        """The runs of ``stage``: ``"calibration"`` (the lambda = 1 runs) or ``"sweep"``
        (every other rung, then the control)."""
        steps, at = self.budgets[-1], tuple(self.budgets[:-1])
        if stage == "calibration":
            return [Job("ladder", 1.0, s, self.c, self.c_low, steps, at) for s in self.seeds]
        if stage != "sweep":
            raise ValueError(f"stage must be 'calibration' or 'sweep', got {stage!r}")
        jobs = [Job("ladder", x, s, self.c, self.c_low, steps, at)
                for x in self.lambdas[1:] for s in self.seeds]
        jobs += [Job("ladder_control", x, self.seeds[0], self.control_c, 1.0 / self.control_c,
                     steps, at) for x in self.control_lambdas]
        return jobs


def design_ladder(windows: Mapping[str, Sequence[float]], n_rungs: int, budgets: Sequence[int],
                  seeds: Sequence[int], *, c: float, c_low: float, control_c: float,
                  control_rungs: int, lr: float, delta: float) -> LadderDesign:
    """The :class:`LadderDesign` around the finite predicted ``windows`` (name -> [lo, hi])."""
    ends = [float(w[1]) for w in windows.values() if math.isfinite(float(w[1]))]
    if not ends:
        raise ValueError(f"windows: no finite predicted window to place rungs around, got "
                         f"{dict(windows)}")
    b = tuple(int(x) for x in budgets)
    if len(b) < 2 or any(x < 1 for x in b) or list(b) != sorted(set(b)):
        raise ValueError(f"budgets must be increasing integers >= 1, at least two, got {budgets!r}")
    if int(control_rungs) != control_rungs or not 0 <= control_rungs <= n_rungs:
        raise ValueError(f"control_rungs must be an integer in [0, n_rungs], got {control_rungs!r}")
    lam = ladder_rungs(max(ends), n_rungs)
    control = (1.0, *lam[len(lam) - control_rungs:]) if control_rungs else (1.0,)
    return LadderDesign(lambdas=lam, step=lam[1] - lam[0], largest_window=max(ends),
                        budgets=b, seeds=tuple(int(s) for s in seeds), c=float(c),
                        c_low=float(c_low), control_c=float(control_c),
                        control_lambdas=control, lr=float(lr), delta=float(delta))
