"""The ladder's five warm-start configurations, each named for what it means.

==============  ===========================================  =======================================
name            what it is meant to be                        gate (beside the sharpening or
                                                              softening gate of its regime)
==============  ===========================================  =======================================
paper           the paper's case: a format-certain teacher   ``p >= .995`` and ``b`` in [.3, .6] at
                (``p ~ 1`` at ``]``), a base-neutral warm    ``]``; warm-start valid mass at the
                start (``b ~ 1/2``) and clean item ids       ids ``>= .99``; pooled parse rate at
                                                             ``lambda = 1`` after ``T`` ``>= .9``
reachable       the same with a teacher that drops ``]``     ``p`` in [.97, .99] at ``]``, the rest
                at rate .02, so that the clip-safe edge      as paper: ``(1-p)/c`` is 2e-3 to 6e-3,
                ``(1-p)/c`` lies within a few hundred        within what the tail reaches
                updates' reach
dirty_ids       the paper's teacher and a warm start         ``p >= .995`` and ``b`` in [.3, .6] at
                trained four times shorter, whose ids         ``]``; id valid mass ``<= .97``
                still repeat
dirty_ids_1000  dirty_ids with a warm start trained twice     as dirty_ids
                as long (1000 steps, half the paper's)
softening       the student more format-certain than its     the softening gate: ``b - p >= .1`` at
                teacher (the teacher drops ``]`` at .2):     ``]`` and the warm start parses more
                the contract itself can collapse             often than its teacher
==============  ===========================================  =======================================

The SFT recipe of paper, reachable and softening is the check's pre-registered retry
(teacher 1200 steps, warm start 2000), which gave clean ids on every warm start that reached
it; dirty_ids keeps the first attempt's 500 warm-start steps, and dirty_ids_1000 trains 1000
(added after the 500-step warm starts failed the gate's parse floor on four seeds of five:
most were too broken to reach ``]`` often enough). Models are seeded from the
warm-start seed as in :func:`validate.llm_check.warmstart.train_warm_start`, with the
teacher's and warm start's seeds shared by configurations that share a recipe: paper and
dirty_ids share the teacher (the same weights), and reachable is the paper's warm start with
another teacher, so the two differ in the teacher alone. There is one attempt: the gate
statistics over warm seeds say how often the recipe passes, instead of a retry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from validate.llm_check.gate import Criterion, GateThresholds
from validate.llm_check.warmstart import FORMAT_TYPE, Recipe

__all__ = ["Configuration", "CONFIGURATIONS", "configuration", "extra_criteria",
           "parse_at_one_criterion"]


@dataclass(frozen=True)
class Configuration:
    """A warm-start configuration of the ladder: its recipes, SFT budgets and gate."""

    name: str
    regime: str
    """the regime the gate asks of the binding type ("sharpening" or "softening")"""
    teacher: Recipe
    student: Recipe
    teacher_steps: int
    student_steps: int
    seed_index: int
    """``j`` of the teacher's seed ``100 w + 10 j``"""
    student_seed_index: int
    """``j`` of the warm start's seed ``100 w + 10 j + 1``"""
    format_p: tuple[float, float] | None
    """band of the teacher's valid mass at ``]`` (None: the regime's gate alone)"""
    format_b: tuple[float, float] | None
    """band of the warm start's valid mass at ``]``"""
    id_b: tuple[float, float] | None
    """band of the warm start's valid mass at the item ids"""
    parse_at_one_min: float | None
    """least pooled parse rate at lambda = 1 after T updates (checked after the lambda = 1
    runs, before any other; None: not asked)"""

    def thresholds(self, eval_rollouts: int) -> GateThresholds:
        """The regime's gate with this configuration's bands at ``]``, one attempt."""
        th = GateThresholds(eval_rollouts=eval_rollouts, binding_type=FORMAT_TYPE,
                            max_attempts=1)
        if self.regime == "sharpening" and self.format_p and self.format_b:
            th = replace(th, sharpening_p_min=self.format_p[0],
                         sharpening_b_low=self.format_b[0], sharpening_b_high=self.format_b[1])
        return th

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CLEAN = Recipe(0.0, 0.0)
_WARM = Recipe(1.0, 0.5)  # noisy ranking, ']' dropped at rate 1/2

CONFIGURATIONS: dict[str, Configuration] = {c.name: c for c in (
    Configuration("paper", "sharpening", _CLEAN, _WARM, 1200, 2000, 1, 1,
                  (0.995, 1.0), (0.3, 0.6), (0.99, 1.0), 0.9),
    Configuration("reachable", "sharpening", Recipe(0.0, 0.02), _WARM, 1200, 2000, 2, 1,
                  (0.97, 0.99), (0.3, 0.6), (0.99, 1.0), 0.9),
    Configuration("dirty_ids", "sharpening", _CLEAN, _WARM, 1200, 500, 1, 1,
                  (0.995, 1.0), (0.3, 0.6), (0.0, 0.97), None),
    Configuration("dirty_ids_1000", "sharpening", _CLEAN, _WARM, 1200, 1000, 1, 1,
                  (0.995, 1.0), (0.3, 0.6), (0.0, 0.97), None),
    Configuration("softening", "softening", Recipe(0.0, 0.2), Recipe(1.0, 0.0), 1200, 2000, 0, 0,
                  None, None, None, None),
)}
"""The five configurations, by name."""


def configuration(name: str) -> Configuration:
    """The configuration called ``name`` (a ValueError lists the names)."""
    if name not in CONFIGURATIONS:
        raise ValueError(f"configuration must be one of {sorted(CONFIGURATIONS)}, got {name!r}")
    return CONFIGURATIONS[name]


def _band(name: str, measured: float, band: tuple[float, float]) -> Criterion:
    lo, hi = band
    return Criterion(name, measured, band, f"in [{lo:.6g}, {hi:.6g}]",
                     bool(lo <= measured <= hi))


def extra_criteria(conf: Configuration, format_p: float, id_b: float) -> list[Criterion]:
    """The rows the configuration adds to its regime's gate: the upper end of the teacher's
    band at ``]`` (the regime's gate checks only the lower) and the warm start's band at the
    ids."""
    rows = []
    if conf.format_p is not None and conf.format_p[1] < 1.0:
        rows.append(_band("format_p_band", format_p, conf.format_p))
    if conf.id_b is not None:
        rows.append(_band("id_b", id_b, conf.id_b))
    return rows


def parse_at_one_criterion(conf: Configuration, pooled_parse_rate: float) -> Criterion | None:
    """The configuration's parse-rate floor at lambda = 1 after T updates (None: none)."""
    if conf.parse_at_one_min is None:
        return None
    m = conf.parse_at_one_min
    return Criterion("parse_at_lambda_1", pooled_parse_rate, m, f">= {m:.6g}",
                     bool(pooled_parse_rate >= m))
