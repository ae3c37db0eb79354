r"""The pre-registered plan of a unit: what each test predicts and which runs will test it.

Made from the measurement and the main grid after the gate passed (:func:`make_plan`), and
sealed into ``prediction.json`` before any OPD run (:mod:`validate.llm_check.sealing`):

* test (a), the cliff interval: the main grid (:class:`~validate.llm_check.grid.GridDesign`)
  around the predicted windows, the primary window and the null predictors;
* test (b), the budget extension: the finite-budget law's own onset ``lambda_2T`` at the
  binding type's masses, its nulls and its simulated power (:class:`BudgetExtensionPrediction`);
* test (c), the second clip c': the predicted onset at c', its nulls, its power and the grid
  it is measured on (:class:`ClipCrossPrediction`);
* the no-clip control (:class:`ControlPlan`), the direction past the cliff
  (:class:`~validate.llm_check.verdict_rules.DirectionPrediction`) and, with ``--schedule``,
  the scheduled run's pass mark (:class:`SchedulePlan`).

Each rule is stated once, as the class constant written beside the numbers it produced
(``rule``, ``threshold_rule``, ``prediction``, ``pass_mark``).  :meth:`Plan.to_dict` is the
prediction's plan part and :meth:`Plan.from_dict` reads it back from the sealed file for the
analysis; :func:`planned_runs` lists the OPD runs, longest first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

import cliff
from validate.llm_check.absolute_power import PowerDesign, absolute_test_power
from validate.llm_check.config import Config
from validate.llm_check.grid import GridDesign, design_grid, finite_windows
from validate.llm_check.preregistered_tests import (
    AffineNull,
    OnsetTestConfig,
    budget_nulls,
    budget_shift_predictor,
    clip_nulls,
)
from validate.llm_check.verdict_rules import DirectionPrediction, null_windows

if TYPE_CHECKING:  # measurement runs the models (torch); the plan only reads its numbers
    from validate.llm_check.measurement import Measurement

__all__ = ["THRESHOLD_RULE", "law_threshold", "BudgetExtensionPrediction",
           "ClipCrossPrediction", "ControlPlan", "SchedulePlan", "Plan", "with_power",
           "make_plan", "Job", "planned_runs"]

THRESHOLD_RULE = ("tau of the finite-budget law: b/2 when softening (the binding class's mass "
                  "halves, the one-position form of the parse-rate halving that defines the "
                  "measured onset); 1 - (1-p)/(2c) when sharpening (half the tail mass the "
                  "clip-safe edge allows: the dynamics run upwards, past every fixed point "
                  "below lambda_collapse)")
"""How the onset threshold tau of test (b)'s law is chosen (:func:`law_threshold`)."""


def law_threshold(p: float, b: float, c: float) -> float:
    """The onset threshold ``tau`` on the modal mass for the finite-budget law (THRESHOLD_RULE).

    The model's default ``tau = 1/2`` is degenerate here: a sharpening warm start at
    ``b ~ 1/2`` starts past it, and a teacher at ``p ~ 1`` ends past any ``tau < p``.

    Examples
    --------
    >>> law_threshold(0.7, 0.9, 5.0)  # softening: half the warm start's mass
    0.45
    >>> round(law_threshold(0.999, 0.5, 5.0), 6)  # sharpening: half the clip-safe tail
    0.9999
    """
    return 0.5 * b if p < b else 1.0 - (1.0 - p) / (2.0 * c)


# --- test (b) ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetExtensionPrediction:
    """Test (b): the onset's shift from ``T`` to ``2T`` steps by the finite-budget law."""

    T: int
    """the step budget at which tests (a) and (c) evaluate"""
    two_T: int
    """the budget the main runs go on to"""
    mean_field_lr: float
    """the law's step size eta (fixed, not calibrated)"""
    p: float
    """teacher valid mass at the binding type"""
    b: float
    """warm-start valid mass at the binding type"""
    threshold: float
    """the law's onset threshold tau (:data:`THRESHOLD_RULE`)"""
    undefined: str | None
    """why the law cannot predict at these masses (test (b) VOID by design); None when it can"""
    shift_lambdas: tuple[float, ...]
    """the main grid above 1, where :attr:`shift_at_grid` is evaluated"""
    shift_at_grid: tuple[float, ...] | None
    """the shift the law gives with lambda_T at each of those points (None when undefined);
    descriptive since the test is absolute"""
    lambda_T: float = math.nan
    """the law's own onset after T steps (inf: none within the budget)"""
    lambda_2T: float = math.nan
    """test (b)'s prediction: the law's own onset after 2T steps (NaN in a prediction sealed
    before the test was absolute: the test is then VOID)"""
    lambda_inf: float = math.nan
    """the law's asymptote (T -> inf)"""
    nulls: Mapping[str, AffineNull] = field(default_factory=dict)
    """the nulls scored beside it (:func:`~validate.llm_check.preregistered_tests.
    budget_nulls`)"""
    power: Mapping[str, Any] | None = None
    """the test's simulated power (:mod:`validate.llm_check.absolute_power`)"""

    RULE: ClassVar[str] = ("lambda_2T of cliff.budget_extension(p, b, c, T, mean_field_lr, "
                           "threshold) at the binding type's masses, absolute (not read from "
                           "the measured lambda_T); eta fixed, not calibrated")

    @property
    def defined(self) -> bool:
        """Whether the law gives an onset at 2T to test against."""
        return not self.undefined and not math.isnan(self.lambda_2T)

    def to_dict(self) -> dict[str, Any]:
        return {"T": self.T, "two_T": self.two_T, "mean_field_lr": self.mean_field_lr,
                "p": self.p, "b": self.b, "threshold": self.threshold, "rule": self.RULE,
                "threshold_rule": THRESHOLD_RULE, "undefined": self.undefined,
                "lambda_T": self.lambda_T, "lambda_2T": self.lambda_2T,
                "lambda_inf": self.lambda_inf,
                "nulls": {k: list(v) for k, v in self.nulls.items()}, "power": self.power,
                "predicted_shift_at_grid": {
                    "lambdas": list(self.shift_lambdas),
                    "shift": None if self.shift_at_grid is None else list(self.shift_at_grid)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetExtensionPrediction:
        at_grid = d["predicted_shift_at_grid"]
        shift = at_grid["shift"]
        return cls(T=int(d["T"]), two_T=int(d["two_T"]),
                   mean_field_lr=float(d["mean_field_lr"]), p=float(d["p"]), b=float(d["b"]),
                   threshold=float(d["threshold"]), undefined=d.get("undefined"),
                   shift_lambdas=tuple(float(x) for x in at_grid["lambdas"]),
                   shift_at_grid=None if shift is None else tuple(float(x) for x in shift),
                   lambda_T=float(d.get("lambda_T", math.nan)),
                   lambda_2T=float(d.get("lambda_2T", math.nan)),
                   lambda_inf=float(d.get("lambda_inf", math.nan)),
                   nulls=_nulls(d.get("nulls", {})), power=d.get("power"))


def _nulls(d: Mapping[str, Sequence[float]]) -> dict[str, AffineNull]:
    return {k: (float(v[0]), float(v[1])) for k, v in d.items()}


def budget_extension_prediction(cfg: Config, p: float, b: float, lambdas: Sequence[float],
                                two_class: float = math.nan) -> BudgetExtensionPrediction:
    """:class:`BudgetExtensionPrediction` at the binding type's masses ``p``, ``b`` on the main
    grid ``lambdas`` (derivations/notes/budget.md, "The threshold of the model
    check"); ``undefined`` says why when the law is degenerate there (it would predict
    ``lambda_T = 1`` at every budget) or cannot be evaluated.  ``two_class`` (the two-class
    lambda*) anchors one of the nulls."""
    T = cfg.opd_steps
    tau = law_threshold(p, b, cfg.c)
    shift: tuple[float, ...] | None = None
    undefined = None
    absolute = (math.nan, math.nan, math.nan)
    nulls: dict[str, AffineNull] = {}
    try:
        e = cliff.budget_extension(p, b, cfg.c, T, cfg.mean_field_lr, c_low=cfg.c_low_value,
                                   threshold=tau)
        absolute = (float(e.lambda_T), float(e.lambda_2T), float(e.lambda_inf))
        nulls = budget_nulls({"1": 1.0, "two_class": two_class, "law_lambda_inf": absolute[2],
                              "grid_end": float(lambdas[-1])})
        if e.regime in ("start", "teacher") or not float(e.lambda_inf) > 1.0:
            undefined = (f"the finite-budget law is degenerate at the binding type's masses "
                         f"(p = {p:.6g}, b = {b:.6g}, tau = {tau:.6g}): regime "
                         f"{e.regime!r}, lambda_inf = {float(e.lambda_inf):.6g}, so it "
                         f"predicts lambda_T = 1 at every budget")
        else:
            f = budget_shift_predictor(p, b, cfg.c, T, cfg.mean_field_lr,
                                       c_low=cfg.c_low_value, threshold=tau)
            shift = tuple(float(v) for v in f(np.asarray(lambdas[1:])))
    except (ValueError, ZeroDivisionError) as err:
        undefined = f"budget shift predictor undefined: {err}"
    return BudgetExtensionPrediction(T, 2 * T, cfg.mean_field_lr, p, b, tau, undefined,
                                     tuple(lambdas[1:]), shift, *absolute, nulls)


# --- test (c) ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipCrossPrediction:
    """Test (c): the onset's shift from clip ``c`` to ``c'`` and the grid it is measured on."""

    grid: GridDesign | None
    """the c' grid around the shifted windows (None: it could not be designed, the main grid
    is used)"""
    c_new: float
    """the second clip c'"""
    c_low_new: float
    """its lower clip, 1/c'"""
    lambdas: tuple[float, ...]
    """the lambdas the c' runs are trained at"""
    predicted_shift: float
    """lambda_T(c') - lambda_T(c) (NaN: undefined, test (c) VOID)"""
    source: str
    """which prediction the onsets are: :attr:`FROM_LAW` or :attr:`FROM_ASYMPTOTE`"""
    lambda_T: float = math.nan
    """the predicted onset at c"""
    lambda_T_new: float = math.nan
    """test (c)'s prediction: the onset at c' (inf: none within the budget; NaN: undefined,
    or a prediction sealed before the test was absolute, and the test is VOID)"""
    lambda_inf: float = math.nan
    """the asymptote at c (where a wrong world of the power check lands)"""
    lambda_inf_new: float = math.nan
    """the asymptote at c'"""
    nulls: Mapping[str, AffineNull] = field(default_factory=dict)
    """the nulls scored beside it (:func:`~validate.llm_check.preregistered_tests.
    clip_nulls`)"""
    power: Mapping[str, Any] | None = None
    """the test's simulated power (:mod:`validate.llm_check.absolute_power`)"""

    RULE: ClassVar[str] = ("the onset at c', absolute, at the binding type's masses; the shift "
                           "designs the c' grid")
    FROM_LAW: ClassVar[str] = ("cliff.clip_cross_prediction: lambda_T(c') of the finite-budget "
                               "law; shift lambda_inf(c') - lambda_inf(c)")
    FROM_ASYMPTOTE: ClassVar[str] = ("asymptotic: two-class lambda*(c') of cliff.solve; shift "
                                     "lambda*(c') - lambda*(c)")

    def to_dict(self) -> dict[str, Any]:
        return {"grid": None if self.grid is None else self.grid.to_dict(),
                "c_new": self.c_new, "c_low_new": self.c_low_new, "lambdas": list(self.lambdas),
                "predicted_shift": self.predicted_shift, "source": self.source,
                "lambda_T": self.lambda_T, "lambda_T_new": self.lambda_T_new,
                "lambda_inf": self.lambda_inf, "lambda_inf_new": self.lambda_inf_new,
                "nulls": {k: list(v) for k, v in self.nulls.items()}, "power": self.power,
                "rule": self.RULE}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClipCrossPrediction:
        return cls(grid=None if d["grid"] is None else GridDesign.from_dict(d["grid"]),
                   c_new=float(d["c_new"]), c_low_new=float(d["c_low_new"]),
                   lambdas=tuple(float(x) for x in d["lambdas"]),
                   predicted_shift=float(d["predicted_shift"]), source=str(d["source"]),
                   lambda_T=float(d.get("lambda_T", math.nan)),
                   lambda_T_new=float(d.get("lambda_T_new", math.nan)),
                   lambda_inf=float(d.get("lambda_inf", math.nan)),
                   lambda_inf_new=float(d.get("lambda_inf_new", math.nan)),
                   nulls=_nulls(d.get("nulls", {})), power=d.get("power"))


def clip_cross_prediction(cfg: Config, meas: Measurement, budget: BudgetExtensionPrediction,
                          lambdas: Sequence[float], notes: list[str]) -> ClipCrossPrediction:
    """:class:`ClipCrossPrediction`: ``cliff.clip_cross_prediction``'s shift, or, where the
    finite-budget law is degenerate (``budget.undefined``), the asymptotic two-class shift
    ``lambda*(c') - lambda*(c)``; the c' grid is designed around the windows moved by that
    shift and the two-class window at c' (the main grid ``lambdas`` when none can be).  Why
    anything was left undefined is appended to ``notes``."""
    source = ClipCrossPrediction.FROM_LAW
    absolute = (math.nan, math.nan, math.nan, math.nan)
    try:
        shift = math.nan
        if not budget.undefined:
            x = cliff.clip_cross_prediction(budget.p, budget.b, cfg.c, cfg.c_new, cfg.opd_steps,
                                            cfg.mean_field_lr, c_low=cfg.c_low_value,
                                            c_low_new=1.0 / cfg.c_new,
                                            threshold=budget.threshold)
            shift = float(x.lambda_inf_new - x.lambda_inf)
            absolute = (float(x.lambda_T), float(x.lambda_T_new), float(x.lambda_inf),
                        float(x.lambda_inf_new))
    except (ValueError, ZeroDivisionError) as err:
        shift = math.nan
        notes.append(f"clip shift prediction undefined: {err}")
    if not math.isfinite(shift) and meas.two_class_c_new and "two_class" in meas.windows:
        star, star_new = float(meas.windows["two_class"][0]), float(meas.two_class_c_new[0])
        shift = star_new - star
        absolute = (star, star_new, star, star_new)
        source = ClipCrossPrediction.FROM_ASYMPTOTE
    wins, _ = finite_windows(meas.windows, cfg.grid_upper)
    c_new_wins: dict[str, tuple[float, float]] = {}
    if math.isfinite(shift):
        c_new_wins = {f"{k}_shifted": (max(1.0, lo + shift), max(1.0, hi + shift))
                      for k, (lo, hi) in wins.items()}
    if meas.two_class_c_new:
        extra, _ = finite_windows({"two_class_at_c_new": meas.two_class_c_new}, cfg.grid_upper)
        c_new_wins.update(extra)
    c_new_wins = {k: (min(lo, cfg.grid_upper), min(hi, cfg.grid_upper))
                  for k, (lo, hi) in c_new_wins.items()}
    grid: GridDesign | None
    try:
        grid = design_grid(c_new_wins or wins, cfg.n_grid, upper=cfg.grid_upper,
                           min_step=cfg.grid_min_step, beyond=cfg.n_beyond)
        lam_new = tuple(grid.lambdas)
    except ValueError as err:
        grid, lam_new = None, tuple(lambdas)
        notes.append(f"c' grid: {err}; the main grid is used")
    return ClipCrossPrediction(grid, cfg.c_new, 1.0 / cfg.c_new, lam_new, shift, source,
                               *absolute, clip_nulls(cfg.c, cfg.c_new))


# --- control, direction, schedule --------------------------------------------------------------
@dataclass(frozen=True)
class ControlPlan:
    """The no-clip control: runs at ``c`` effectively infinite on three main grid points."""

    c: float
    """the control's clip (``cfg.control_c``, lower clip 1/c)"""
    lambdas: tuple[float, ...]
    """the first, middle and last main grid points"""

    PREDICTION: ClassVar[str] = "no onset on the control grid (the cliff disappears)"

    def to_dict(self) -> dict[str, Any]:
        return {"c": self.c, "lambdas": list(self.lambdas), "prediction": self.PREDICTION}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ControlPlan:
        return cls(c=float(d["c"]), lambdas=tuple(float(x) for x in d["lambdas"]))


DIRECTION_RULE = ("the binding type's valid mass moves past the windows the way log(p/b) points "
                  "(up when p > b: its tail shrinks by min_shrink of its lambda = 1 value or "
                  "more), and the parse rate falls by min_change or more")
"""What the direction prediction claims, in words (written beside it)."""


@dataclass(frozen=True)
class SchedulePlan:
    """The scheduled runs (``--schedule``): ``cliff.LambdaScheduler`` aimed at the main grid's
    highest lambda, and their pass mark."""

    target: float
    """the scheduler's target lambda"""
    margin: float
    """``cfg.schedule_margin``"""
    min_gain: float
    """``cfg.schedule_min_gain``"""

    PASS_MARK: ClassVar[str] = ("mean parse rate >= best sub-threshold main run's (lambda below "
                                "lambda*) - margin, and mean lambda over the run >= 1 + "
                                "min_gain")

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "margin": self.margin, "min_gain": self.min_gain,
                "pass_mark": self.PASS_MARK}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SchedulePlan:
        return cls(target=float(d["target"]), margin=float(d["margin"]),
                   min_gain=float(d["min_gain"]))


# --- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Everything the prediction fixes before the sweep, beside the measurement and the gate."""

    grid: GridDesign
    """the main grid (tests (a), (b))"""
    notes: tuple[str, ...]
    """what the plan could not predict, and why"""
    budget_extension: BudgetExtensionPrediction
    clip_cross: ClipCrossPrediction
    control: ControlPlan
    direction: DirectionPrediction
    nulls: dict[str, tuple[float, float]]
    """the null predictors of test (a)"""
    primary_window: str
    """the window whose verdict is test (a)'s"""
    test_config: OnsetTestConfig
    schedule: SchedulePlan | None
    """None without ``--schedule``"""

    @property
    def lambdas(self) -> tuple[float, ...]:
        """The main grid."""
        return self.grid.lambdas

    def to_dict(self) -> dict[str, Any]:
        """The prediction's plan keys (``schedule`` only with a schedule)."""
        out = {"grid": self.grid.to_dict(), "lambdas": list(self.lambdas),
               "notes": list(self.notes), "budget_extension": self.budget_extension.to_dict(),
               "clip_cross": self.clip_cross.to_dict(),
               "control": self.control.to_dict(),
               "direction": {**self.direction.to_dict(), "rule": DIRECTION_RULE},
               "nulls": {k: list(v) for k, v in self.nulls.items()},
               "primary_window": self.primary_window, "test_config": self.test_config.to_dict()}
        if self.schedule is not None:
            out["schedule"] = self.schedule.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """The plan of a (verified) prediction payload."""
        direction = {f.name: d["direction"][f.name] for f in fields(DirectionPrediction)}
        return cls(grid=GridDesign.from_dict(d["grid"]), notes=tuple(d["notes"]),
                   budget_extension=BudgetExtensionPrediction.from_dict(d["budget_extension"]),
                   clip_cross=ClipCrossPrediction.from_dict(d["clip_cross"]),
                   control=ControlPlan.from_dict(d["control"]),
                   direction=DirectionPrediction(**direction),
                   nulls={k: (float(v[0]), float(v[1])) for k, v in d["nulls"].items()},
                   primary_window=str(d["primary_window"]),
                   test_config=OnsetTestConfig.from_dict(d["test_config"]),
                   schedule=SchedulePlan.from_dict(d["schedule"]) if "schedule" in d else None)


def with_power(cfg: Config, budget: BudgetExtensionPrediction, clip: ClipCrossPrediction,
               lambdas: Sequence[float], test_config: OnsetTestConfig
               ) -> tuple[BudgetExtensionPrediction, ClipCrossPrediction]:
    """Tests (b) and (c) with their simulated power at the design's grids, seeds and rollouts
    (:mod:`validate.llm_check.absolute_power`), where each has a prediction to test."""
    design = PowerDesign(n_sim=cfg.power_simulations)
    if budget.defined and math.isfinite(budget.lambda_inf):
        pw = absolute_test_power("budget", (lambdas, lambdas),
                                 (budget.lambda_T, budget.lambda_2T),
                                 (budget.lambda_inf, budget.lambda_inf),
                                 budget.nulls, cfg.n_seeds, cfg.eval_rollouts, test_config,
                                 design, cfg.seed + 777)
        budget = replace(budget, power=pw.to_dict())
    if not math.isnan(clip.lambda_T_new) and math.isfinite(clip.lambda_inf) \
            and math.isfinite(clip.lambda_inf_new):
        pw = absolute_test_power("clip", (lambdas, clip.lambdas),
                                 (clip.lambda_T, clip.lambda_T_new),
                                 (clip.lambda_inf, clip.lambda_inf_new),
                                 clip.nulls, cfg.n_seeds, cfg.eval_rollouts, test_config,
                                 design, cfg.seed + 778)
        clip = replace(clip, power=pw.to_dict())
    return budget, clip


def make_plan(cfg: Config, meas: Measurement, grid: GridDesign) -> Plan:
    """The plan on the main ``grid`` at the measured binding type (module docstring)."""
    if meas.p is None or meas.b is None or meas.binding_type is None:
        raise ValueError(f"meas: a plan needs a binding type with its masses, got binding_type "
                         f"= {meas.binding_type!r}, p = {meas.p!r}, b = {meas.b!r}")
    p, b = float(meas.p), float(meas.b)
    lam = grid.lambdas
    notes: list[str] = []
    star = float(meas.windows["two_class"][0]) if "two_class" in meas.windows else math.nan
    budget = budget_extension_prediction(cfg, p, b, lam, star)
    if budget.undefined:
        notes.append(f"test (b) VOID by design: {budget.undefined}")
    clip = clip_cross_prediction(cfg, meas, budget, lam, notes)
    test_config = OnsetTestConfig(fraction=cfg.break_fraction, n_boot=cfg.n_boot)
    budget, clip = with_power(cfg, budget, clip, lam, test_config)
    wins, _ = finite_windows(meas.windows, cfg.grid_upper)
    past = max(hi for _, hi in wins.values()) + 0.5 * grid.step
    return Plan(
        grid=grid, notes=tuple(notes), budget_extension=budget, clip_cross=clip,
        control=ControlPlan(cfg.control_c, (lam[0], lam[len(lam) // 2], lam[-1])),
        direction=DirectionPrediction(meas.binding_type, "up" if p > b else "down", True, past),
        nulls=null_windows(lam, cfg.null_constant), primary_window="two_class",
        test_config=test_config,
        schedule=(SchedulePlan(lam[-1], cfg.schedule_margin, cfg.schedule_min_gain)
                  if cfg.schedule else None))


@dataclass(frozen=True)
class Job:
    """One planned OPD run (serialisable into the prediction: the planned runs are
    pre-registered), run by :func:`validate.llm_check.jobs.run_jobs`."""

    kind: str
    """'main' (test (a), and (b) at 2T), 'clip' (test (c)), 'control' (no clip), 'schedule'"""
    lam: float
    """lambda of the run (the target of a scheduled run)"""
    seed: int
    """OPD seed"""
    c: float
    """IS clip (ratio cap)"""
    c_low: float
    """lower IS clip"""
    steps: int
    """OPD updates"""
    eval_at: tuple[int, ...]
    """step counts after which the student is evaluated (the last one always)"""
    scheduled: bool = False
    """lambda chosen each step by cliff.LambdaScheduler(target = lam)"""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def planned_runs(cfg: Config, plan: Plan, seeds: Sequence[int]) -> list[Job]:
    """The OPD runs of ``plan`` for each OPD seed, longest first: the main runs to ``2T``
    (evaluated at ``T`` too), the c' runs, the control, and the scheduled runs."""
    T = cfg.opd_steps
    c_new = plan.clip_cross.c_new
    jobs = [Job("main", x, s, cfg.c, cfg.c_low_value, 2 * T, (T,))
            for x in plan.lambdas for s in seeds]
    jobs += [Job("clip", x, s, c_new, 1.0 / c_new, T, ())
             for x in plan.clip_cross.lambdas for s in seeds]
    jobs += [Job("control", x, s, plan.control.c, 1.0 / plan.control.c, T, ())
             for x in plan.control.lambdas for s in seeds]
    if plan.schedule is not None:
        jobs += [Job("schedule", plan.schedule.target, s, cfg.c, cfg.c_low_value, T, (), True)
                 for s in seeds]
    return jobs
