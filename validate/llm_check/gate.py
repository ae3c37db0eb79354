r"""The warm-start gate: conditions a configuration must meet before any sweep runs.

The thresholds (:class:`GateThresholds`) are code defaults, fixed before any model is
trained, and are written into the prediction with the measured warm-start statistics
(:class:`WarmStartStats`) and the gate's outcome (:class:`GateResult`).  A failed gate makes
every test of the configuration VOID; one retry with a longer SFT (``retry_student_steps``,
also in the prediction) is allowed.

Criteria (all must hold; ``n`` evaluation rollouts per run, ``z`` = ``halving_z``):

===========================  ==================================================================
name                         rule
===========================  ==================================================================
teacher_parse_rate           ``>= teacher_parse_min``
warm_start_parse_rate        ``>= 6 z^2 / (n + 5 z^2)`` (:func:`halving_parse_min`: a halving
                             is ``z`` standard errors)
binding_regime               ``==`` the configuration's name ("sharpening" / "softening")
binding_type                 ``==`` ``binding_type`` (when the thresholds name one)
binding_contexts             ``>= min_binding_contexts``
next_type_gap_steps          ``(lambda*_next - lambda*_binding) / grid step >= min_gap_steps``
sharpening: format_p         ``>= sharpening_p_min`` (teacher valid mass at the format token)
sharpening: format_b         ``in [sharpening_b_low, sharpening_b_high]`` (base-neutral start)
softening: format_gap        ``b - p >= softening_gap_min`` at the format token
softening: student_parses_   ``warm_start_parse_rate > teacher_parse_rate``
more_often
===========================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["GateThresholds", "WarmStartStats", "Criterion", "GateResult", "check_gate",
           "halving_parse_min", "CONFIGURATIONS"]

CONFIGURATIONS = ("sharpening", "softening")


def halving_parse_min(n: int, z: float = 6.0) -> float:
    r"""Smallest parse rate ``r`` whose halving is ``z`` standard errors at ``n`` rollouts.

    .. math::

        \frac r2 \ \ge\ z\,\sqrt{\frac{r(1-r) + \frac r2\big(1-\frac r2\big)}{n}}
        \iff r \ \ge\ \frac{6 z^2}{n + 5 z^2}\qquad (n \ge z^2).

    Parameters
    ----------
    n : int
        Evaluation rollouts of *one run* (one seed at one lambda), >= 1.
    z : float
        Standard errors the halving must span, > 0.

    Returns
    -------
    float
        The threshold in (0, 1]; ``inf`` when ``n < z^2`` (no rate qualifies).

    Notes
    -----
    A lambda "breaks" when its rate falls below half the lambda = 1 rate, and both rates are
    *estimated*, each from the ``n`` rollouts of its own run, with independent rollout
    noise.  What must be resolved is therefore the difference of two estimated proportions,
    and its standard error is the two-sample one,
    ``sqrt(r(1-r)/n + (r/2)(1-r/2)/n)``, evaluated at the rates the halving itself produces
    (``r`` and ``r/2``; the Wald error of the estimated difference).  The one-sample error
    ``sqrt(r(1-r)/n)`` would treat the lambda = 1 rate as known and lower the threshold
    (to ``4 z^2 / (n + 4 z^2)``, 0.2195 instead of 0.3121 at n = 512, z = 6).  Squaring and
    dividing by ``r > 0``: ``r/4 >= z^2 (3/2 - 5r/4) / n``, i.e. ``r >= 6 z^2/(n + 5 z^2)``;
    the left side grows faster in ``r`` than the right, so every larger rate qualifies too.
    Per-run (not pooled over seeds) because each seed's own onset must be defined.  At gate
    time the lambda = 1 rate after OPD is not known; the warm start's rate stands in for it.

    Examples
    --------
    >>> round(halving_parse_min(512), 4)   # 216 / 692
    0.3121
    >>> r = halving_parse_min(512); n, z = 512, 6.0
    >>> bool(abs(r / 2 - z * math.sqrt((r * (1 - r) + r / 2 * (1 - r / 2)) / n)) < 1e-12)
    True
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not (z > 0.0 and math.isfinite(z)):
        raise ValueError(f"z must be finite and > 0, got {z!r}")
    if n < z * z:
        return math.inf
    return 6.0 * z * z / (n + 5.0 * z * z)


@dataclass(frozen=True)
class GateThresholds:
    """Pre-registered thresholds of the warm-start gate (defaults fixed in code)."""

    teacher_parse_min: float = 0.5
    """the teacher's strict parse rate must be at least this"""
    eval_rollouts: int = 512
    """evaluation rollouts per run (sets the warm-start parse threshold)"""
    halving_z: float = 6.0
    """a halving of the warm-start parse rate must be this many standard errors"""
    binding_type: str | None = None
    """position type that must bind (e.g. "close"); None: any type"""
    min_binding_contexts: int = 100
    """contexts measured at the binding type"""
    min_gap_steps: float = 2.0
    """the next type's lambda* at least this many grid steps above the binding one"""
    sharpening_p_min: float = 0.995
    """sharpening: teacher valid mass at the format token at least this"""
    sharpening_b_low: float = 0.35
    """sharpening: warm-start valid mass at the format token at least this"""
    sharpening_b_high: float = 0.65
    """sharpening: ... and at most this (the base-neutral case)"""
    softening_gap_min: float = 0.1
    """softening: p <= b - this at the format token"""
    max_attempts: int = 2
    """the gate may be evaluated this many times (one retry)"""
    retry_student_steps: int | None = None
    """SFT steps of the warm start on the retry (longer than the first attempt's)"""

    def __post_init__(self) -> None:
        unit = ("teacher_parse_min", "sharpening_p_min", "sharpening_b_low",
                "sharpening_b_high", "softening_gap_min")
        for name in unit:
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.sharpening_b_low > self.sharpening_b_high:
            raise ValueError(f"sharpening_b_low must be <= sharpening_b_high, got "
                             f"{self.sharpening_b_low!r} > {self.sharpening_b_high!r}")
        for name in ("eval_rollouts", "min_binding_contexts", "max_attempts"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (self.halving_z > 0 and math.isfinite(self.halving_z)):
            raise ValueError(f"halving_z must be finite and > 0, got {self.halving_z!r}")
        if not self.min_gap_steps >= 0:
            raise ValueError(f"min_gap_steps must be >= 0, got {self.min_gap_steps!r}")
        if self.retry_student_steps is not None and self.retry_student_steps < 1:
            raise ValueError(f"retry_student_steps must be >= 1 or None, got "
                             f"{self.retry_student_steps!r}")

    @property
    def warm_start_parse_min(self) -> float:
        """``halving_parse_min(eval_rollouts, halving_z)``."""
        return halving_parse_min(self.eval_rollouts, self.halving_z)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warm_start_parse_min": self.warm_start_parse_min}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateThresholds:
        """Inverse of :meth:`to_dict` (the derived ``warm_start_parse_min`` is checked)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - {"warm_start_parse_min"}
        if unknown:
            raise ValueError(f"GateThresholds: unknown fields {sorted(unknown)}")
        out = cls(**{k: v for k, v in d.items() if k in names})
        stored = d.get("warm_start_parse_min")
        if stored is not None and stored != out.warm_start_parse_min:
            raise ValueError(f"warm_start_parse_min = {stored!r} does not follow from "
                             f"eval_rollouts and halving_z ({out.warm_start_parse_min!r})")
        return out


@dataclass(frozen=True)
class WarmStartStats:
    """What the gate measures on a configuration's teacher and warm start.

    Attributes
    ----------
    configuration : "sharpening" or "softening" (the configuration's name).
    teacher_parse_rate, warm_start_parse_rate : strict parse rates on the evaluation set.
    binding_type : the position type with the smallest two-class lambda*.
    binding_regime : ``cliff.solve``'s regime there ("sharpening", "softening", "neutral").
    binding_contexts : contexts measured at the binding type.
    binding_lambda_star : its lambda*.
    next_lambda_star : the smallest lambda* among the other types (``inf`` if none solved).
    format_p, format_b : teacher and warm-start valid masses at the format token.
    """

    configuration: str
    teacher_parse_rate: float
    warm_start_parse_rate: float
    binding_type: str
    binding_regime: str
    binding_contexts: int
    binding_lambda_star: float
    next_lambda_star: float
    format_p: float
    format_b: float

    def __post_init__(self) -> None:
        if self.configuration not in CONFIGURATIONS:
            raise ValueError(f"configuration must be one of {CONFIGURATIONS}, got "
                             f"{self.configuration!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_position_table(cls, configuration: str, rows: Sequence[Mapping[str, Any]], *,
                            teacher_parse_rate: float, warm_start_parse_rate: float,
                            format_type: str = "close") -> WarmStartStats:
        """From per-type rows with keys ``type``, ``n``, ``mean_p``, ``mean_b``, ``regime``,
        ``lambda_star`` (one row per position type; ``lambda_star`` ``inf`` when unsolved)."""
        need = ("type", "n", "mean_p", "mean_b", "regime", "lambda_star")
        for i, r in enumerate(rows):
            missing = [k for k in need if k not in r]
            if missing:
                raise ValueError(f"rows[{i}] lacks {missing} (needs {list(need)})")
        finite = sorted((r for r in rows if math.isfinite(float(r["lambda_star"]))),
                        key=lambda r: float(r["lambda_star"]))
        if not finite:
            raise ValueError("rows: no position type has a finite lambda_star (nothing binds)")
        fmt = [r for r in rows if r["type"] == format_type]
        if not fmt:
            raise ValueError(f"format_type {format_type!r} is not among the rows' types "
                             f"{[r['type'] for r in rows]}")
        bind = finite[0]
        nxt = float(finite[1]["lambda_star"]) if len(finite) > 1 else math.inf
        return cls(configuration=configuration, teacher_parse_rate=float(teacher_parse_rate),
                   warm_start_parse_rate=float(warm_start_parse_rate),
                   binding_type=str(bind["type"]), binding_regime=str(bind["regime"]),
                   binding_contexts=int(bind["n"]),
                   binding_lambda_star=float(bind["lambda_star"]), next_lambda_star=nxt,
                   format_p=float(fmt[0]["mean_p"]), format_b=float(fmt[0]["mean_b"]))


@dataclass(frozen=True)
class Criterion:
    """One row of the gate: ``measured`` against ``threshold`` under ``rule``."""

    name: str
    measured: float | str
    threshold: float | str | tuple[float, float]
    rule: str
    passed: bool

    def describe(self) -> str:
        return f"{self.name} = {_fmt(self.measured)} (needs {self.rule})"


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`check_gate`.

    Attributes
    ----------
    passed : every criterion holds.
    criteria : one row per criterion, in the order of the module table.
    message : one line; on failure "VOID: ..." naming each failed criterion with its
        measured value and threshold.
    attempt : which attempt this was (1 = first).
    retry_allowed : failed, and an attempt remains (with ``retry_student_steps`` of SFT).
    """

    passed: bool
    criteria: tuple[Criterion, ...]
    message: str
    attempt: int
    retry_allowed: bool

    @property
    def failed(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "message": self.message, "attempt": self.attempt,
                "retry_allowed": self.retry_allowed,
                "criteria": [asdict(c) for c in self.criteria]}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return repr(v)


def check_gate(stats: WarmStartStats, thresholds: GateThresholds, grid_step: float, *,
               attempt: int = 1) -> GateResult:
    """Evaluate the warm-start gate (criteria in the module table).

    Parameters
    ----------
    stats : WarmStartStats
        The measured warm start and teacher of one configuration.
    thresholds : GateThresholds
        The pre-registered thresholds.
    grid_step : float
        The designed grid's step at the predicted windows
        (:attr:`~validate.llm_check.grid.GridDesign.step`), > 0.
    attempt : int
        1 for the first evaluation, 2 after the retry's longer SFT; at most
        ``thresholds.max_attempts``.

    Returns
    -------
    GateResult

    Examples
    --------
    >>> s = WarmStartStats("sharpening", 0.99, 0.5, "close", "sharpening", 256, 1.19, 1.6,
    ...                    0.999, 0.5)
    >>> check_gate(s, GateThresholds(), 0.0128).passed
    True
    >>> bad = WarmStartStats("sharpening", 0.99, 0.008, "close", "sharpening", 256, 1.19, 1.6,
    ...                      0.999, 0.5)
    >>> r = check_gate(bad, GateThresholds(), 0.0128)
    >>> r.message.startswith("VOID: warm-start gate failed"), r.retry_allowed
    (True, True)
    >>> [c.describe() for c in r.failed]
    ['warm_start_parse_rate = 0.008 (needs >= 0.312139)']
    """
    th = thresholds
    if not (grid_step > 0.0 and math.isfinite(grid_step)):
        raise ValueError(f"grid_step must be finite and > 0, got {grid_step!r}")
    if int(attempt) != attempt or not 1 <= attempt <= th.max_attempts:
        raise ValueError(f"attempt must be an integer in [1, max_attempts = "
                         f"{th.max_attempts}], got {attempt!r}")
    s = stats
    rows: list[Criterion] = []

    def row(name: str, measured: float | str, threshold: float | str | tuple[float, float],
            rule: str, passed: bool) -> None:
        rows.append(Criterion(name, measured, threshold, rule, bool(passed)))

    r_min = th.warm_start_parse_min
    row("teacher_parse_rate", s.teacher_parse_rate, th.teacher_parse_min,
        f">= {th.teacher_parse_min:.6g}", s.teacher_parse_rate >= th.teacher_parse_min)
    row("warm_start_parse_rate", s.warm_start_parse_rate, r_min,
        f">= {r_min:.6g}", s.warm_start_parse_rate >= r_min)
    row("binding_regime", s.binding_regime, s.configuration, f"== {s.configuration!r}",
        s.binding_regime == s.configuration)
    if th.binding_type is not None:
        row("binding_type", s.binding_type, th.binding_type, f"== {th.binding_type!r}",
            s.binding_type == th.binding_type)
    row("binding_contexts", float(s.binding_contexts), float(th.min_binding_contexts),
        f">= {th.min_binding_contexts}", s.binding_contexts >= th.min_binding_contexts)
    gap = (s.next_lambda_star - s.binding_lambda_star) / grid_step
    row("next_type_gap_steps", gap, th.min_gap_steps,
        f">= {th.min_gap_steps:.6g} grid steps of {grid_step:.6g}",
        not math.isnan(gap) and gap >= th.min_gap_steps)
    if s.configuration == "sharpening":
        row("format_p", s.format_p, th.sharpening_p_min, f">= {th.sharpening_p_min:.6g}",
            s.format_p >= th.sharpening_p_min)
        band = (th.sharpening_b_low, th.sharpening_b_high)
        row("format_b", s.format_b, band, f"in [{band[0]:.6g}, {band[1]:.6g}]",
            band[0] <= s.format_b <= band[1])
    else:
        row("format_gap", s.format_b - s.format_p, th.softening_gap_min,
            f"b - p >= {th.softening_gap_min:.6g}",
            s.format_b - s.format_p >= th.softening_gap_min)
        row("student_parses_more_often", s.warm_start_parse_rate - s.teacher_parse_rate, 0.0,
            "warm_start_parse_rate - teacher_parse_rate > 0",
            s.warm_start_parse_rate > s.teacher_parse_rate)
    passed = all(c.passed for c in rows)
    retry = not passed and attempt < th.max_attempts
    if passed:
        message = f"gate passed (attempt {attempt} of {th.max_attempts})"
    else:
        tail = "retry allowed" if retry else "no retry left"
        message = (f"VOID: warm-start gate failed (attempt {attempt} of {th.max_attempts}, "
                   f"{tail}): " + "; ".join(c.describe() for c in rows if not c.passed))
    return GateResult(passed=passed, criteria=tuple(rows), message=message, attempt=attempt,
                      retry_allowed=retry)
