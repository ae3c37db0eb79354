r"""The three pre-registered tests of the real-model check, from parse indicators to verdicts.

(a) :func:`cliff_interval_test`: the pooled onset and its bootstrap interval against each
    predicted window (two-class, by-token) and against null predictors.
(b) :func:`budget_extension_test`: the onset's shift from ``T`` to ``2T`` steps (the same runs
    evaluated twice) against the finite-budget law.
(c) :func:`clip_cross_test`: the onset's shift from clip ``c`` to ``c'`` against
    ``cliff.clip_cross_prediction``.

Each returns a result whose ``verdict`` is one of HIT, MISS, INCONCLUSIVE, VOID
(:class:`~validate.llm_check.verdict_rules.Verdict`) and whose ``to_dict()`` is the report's
``tests.<name>`` entry.  Onsets, bootstrap and rules: :mod:`validate.llm_check.onset`,
:mod:`validate.llm_check.verdict_rules`.  Randomness comes only from the ``rng`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cliff
from validate.llm_check.onset import (
    Rollouts,
    Sweep,
    check_fraction,
    onset,
    percentile_interval,
    resample_rates,
    seed_dispersion,
)
from validate.llm_check.verdict_rules import (
    Verdict,
    contrast_verdict,
    local_step,
    window_verdict,
    windows_from,
)

__all__ = ["OnsetTestConfig", "IntervalTestResult", "ShiftTestResult", "cliff_interval_test",
           "budget_extension_test", "clip_cross_test", "budget_shift_predictor",
           "clip_shift_prediction"]

FloatArray = NDArray[np.float64]
ShiftPredictor = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class OnsetTestConfig:
    """Statistical settings shared by the three tests (serialisable into the prediction)."""

    fraction: float = 0.5
    """the onset is where the parse rate first falls below fraction x its lambda = 1 value"""
    level: float = 0.90
    """coverage of the equal-tailed percentile interval"""
    n_boot: int = 2000
    """bootstrap replicates"""
    rollouts: Rollouts = "paired"
    """rollout resampling within a seed: 'paired' (one draw shared by every lambda, prompts
    stay together) or 'independent' (a draw per lambda)"""
    min_seeds: int = 3
    """fewer OPD seeds per grid point make the test VOID"""
    min_rollouts: int = 512
    """fewer evaluation rollouts per run make the test VOID"""
    min_grid_points: int = 9
    """fewer grid points (lambda = 1 included) make test (a) VOID"""

    def __post_init__(self) -> None:
        check_fraction(self.fraction)
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in the open interval (0, 1), got {self.level!r}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be >= 100 (the interval's tails need replicates), "
                             f"got {self.n_boot!r}")
        if self.rollouts not in ("paired", "independent"):
            raise ValueError(f"rollouts must be 'paired' or 'independent', got "
                             f"{self.rollouts!r}")
        for name in ("min_seeds", "min_rollouts", "min_grid_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    @property
    def max_undefined(self) -> float:
        """Largest share of undefined replicates (lambda = 1 rate 0 in the draw) for which
        the interval is still formed: ``(1 - level) / 2``, one tail's worth."""
        return (1.0 - self.level) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OnsetTestConfig:
        return cls(**dict(d))


def _design_problems(sweep: Sweep, cfg: OnsetTestConfig, name: str) -> list[str]:
    out = []
    if sweep.n_seeds < cfg.min_seeds:
        out.append(f"{name}: {sweep.n_seeds} seeds < min_seeds = {cfg.min_seeds}")
    if sweep.n_rollouts < cfg.min_rollouts:
        out.append(f"{name}: {sweep.n_rollouts} rollouts < min_rollouts = {cfg.min_rollouts}")
    ref = float(sweep.pooled_rates[0])
    if ref <= 0.0:
        out.append(f"{name}: parse rate 0 at lambda = 1 (no onset can be defined)")
    return out


def _interval_or_void(values: FloatArray, cfg: OnsetTestConfig, what: str, cause: str
                      ) -> tuple[tuple[float, float], int, str | None]:
    lo, hi, undefined = percentile_interval(values, cfg.level)
    if undefined > cfg.max_undefined * values.size:
        return ((math.nan, math.nan), undefined,
                f"{what}: {undefined} of {values.size} bootstrap replicates undefined "
                f"({cause}), more than (1 - level)/2 = {cfg.max_undefined:g}")
    return (lo, hi), undefined, None


# --- (a) the cliff interval ------------------------------------------------------------------
@dataclass(frozen=True)
class IntervalTestResult:
    """Test (a) (:func:`cliff_interval_test`).

    Attributes
    ----------
    verdict : the primary predictor's verdict.
    primary : its name.
    verdicts : verdict of every predicted window, by name.
    null_verdicts : verdict of every null predictor, by name.
    onset : pooled onset of the data (``inf``: beyond the grid; ``nan``: undefined).
    interval : the bootstrap percentile interval of the pooled onset.
    onset_per_seed : each seed's own onset.
    reference_parse_rate : pooled parse rate at lambda = 1.
    widen : half the grid step at each window (predicted and null), by name.
    undefined_replicates : replicates with no defined onset (excluded from the interval).
    seed_dispersion, seed_dispersion_p : Pearson's homogeneity ratio ``X^2/nu`` over seeds
        and its p-value (:func:`~validate.llm_check.onset.seed_dispersion`); well above 1
        means the seeds differ beyond rollout noise and, with few seeds, the interval is
        too narrow.  Reported beside the verdict; it does not change it.
    reasons : why the verdict is VOID (empty otherwise).
    config : the settings used.
    """

    verdict: Verdict
    primary: str
    verdicts: dict[str, Verdict]
    null_verdicts: dict[str, Verdict]
    onset: float
    interval: tuple[float, float]
    onset_per_seed: tuple[float, ...]
    reference_parse_rate: float
    widen: dict[str, float]
    undefined_replicates: int
    seed_dispersion: float
    seed_dispersion_p: float
    reasons: tuple[str, ...]
    config: OnsetTestConfig = field(default_factory=OnsetTestConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # recurses into config (OnsetTestConfig.to_dict is asdict too)


def cliff_interval_test(sweep: Sweep, windows: Mapping[str, tuple[float, float]], *,
                        primary: str, nulls: Mapping[str, tuple[float, float]],
                        rng: np.random.Generator | int, gate_passed: bool,
                        config: OnsetTestConfig | None = None) -> IntervalTestResult:
    r"""Test (a): the pooled onset's bootstrap interval against each predicted window.

    .. math::

        \hat\lambda = \text{onset}\Big(\frac1S\sum_s \hat r_{s,\cdot}\Big),\qquad
        I = [\hat\lambda^*_{(\alpha/2)},\ \hat\lambda^*_{(1-\alpha/2)}],

    ``hat lambda^*`` the onsets of the two-level bootstrap replicates
    (:func:`~validate.llm_check.onset.resample_rates`), and each window ``W`` is scored by
    :func:`~validate.llm_check.verdict_rules.window_verdict` widened by half the grid step at it.

    Parameters
    ----------
    sweep : Sweep
        Parse indicators ``(S, L, N)`` on the pre-registered grid.
    windows : mapping of name -> (low, high)
        The predicted windows, e.g. ``{"two_class": (l_star, l_collapse), "by_token": (q05,
        median)}``.
    primary : str
        The window whose verdict is the test's verdict (named in the prediction).
    nulls : mapping of name -> (low, high)
        Null predictors (:func:`~validate.llm_check.verdict_rules.null_windows`), same rule.
    rng : numpy.random.Generator or int
        Bootstrap randomness.
    gate_passed : bool
        The warm-start gate's outcome; ``False`` makes every verdict VOID.
    config : OnsetTestConfig, optional

    Returns
    -------
    IntervalTestResult
        VOID (with ``reasons``) when the gate failed, the design minimums are not met
        (seeds, rollouts, grid points), the pooled lambda = 1 rate is 0, or more than
        ``(1 - level)/2`` of the replicates have no defined onset.

    Notes
    -----
    The statistic is the onset of the *pooled* curve, not the mean of per-seed onsets: a
    seed whose rate never halves on the grid has an infinite onset, which would make the
    mean infinite; the pooled curve averages rates, which stay finite.  Replicates whose
    onset lies beyond the grid are ``inf`` and enter the interval as such, so an interval
    ``[x, inf]`` says "not before x" (MISS against a window wholly below ``x``).
    """
    cfg = config or OnsetTestConfig()
    wins = windows_from(windows)
    null_wins = windows_from(nulls)
    if primary not in wins:
        raise ValueError(f"primary must name one of the windows {sorted(wins)}, got "
                         f"{primary!r}")
    lam = np.asarray(sweep.lambdas)
    widen = {k: 0.5 * local_step(lam, w) for k, w in {**wins, **null_wins}.items()}
    reasons = [] if gate_passed else ["the warm-start gate failed"]
    reasons += _design_problems(sweep, cfg, "sweep")
    if lam.size < cfg.min_grid_points:
        reasons.append(f"sweep: {lam.size} grid points < min_grid_points = "
                       f"{cfg.min_grid_points}")
    point = float(onset(lam, sweep.pooled_rates, cfg.fraction))
    per_seed = tuple(float(v) for v in np.atleast_1d(onset(lam, sweep.rates, cfg.fraction)))
    (rates,) = resample_rates([sweep], cfg.n_boot, rng, cfg.rollouts)
    interval, undefined, why = _interval_or_void(onset(lam, rates, cfg.fraction), cfg, "onset",
                                                 "parse rate 0 at lambda = 1 in the draw")
    if why:
        reasons.append(why)
    if reasons:
        verdicts = dict.fromkeys(wins, Verdict.VOID)
        null_verdicts = dict.fromkeys(null_wins, Verdict.VOID)
    else:
        verdicts = {k: window_verdict(interval, w, widen[k]) for k, w in wins.items()}
        null_verdicts = {k: window_verdict(interval, w, widen[k]) for k, w in null_wins.items()}
    ratio, _, p_value = seed_dispersion(sweep)
    return IntervalTestResult(
        verdict=verdicts[primary], primary=primary, verdicts=verdicts,
        null_verdicts=null_verdicts, onset=point, interval=interval, onset_per_seed=per_seed,
        reference_parse_rate=float(sweep.pooled_rates[0]), widen=widen,
        undefined_replicates=undefined, seed_dispersion=ratio, seed_dispersion_p=p_value,
        reasons=tuple(reasons), config=cfg)


# --- (b), (c) predicted shifts ----------------------------------------------------------------
@dataclass(frozen=True)
class ShiftTestResult:
    """Tests (b) and (c): a measured onset shift against its prediction.

    Attributes
    ----------
    verdict : :func:`~validate.llm_check.verdict_rules.contrast_verdict` of the prediction against
        the rival "no shift".
    null_verdict : the rival scored by the same rule (against the prediction).
    zero_excluded : whether the shift's interval excludes 0 (a shift was detected).
    shift : measured shift (sign convention in ``definition``).
    shift_interval : its bootstrap percentile interval.
    predicted : predicted shift at the measured onsets.
    discrepancy_interval : interval of (measured - predicted) over the same replicates.
    onsets : the two pooled onsets (first, second).
    definition : what ``shift`` is, in words.
    undefined_replicates : replicates with an undefined shift (excluded).
    reasons : why the verdict is VOID (empty otherwise).
    config : the settings used.
    """

    verdict: Verdict
    null_verdict: Verdict
    zero_excluded: bool | None
    shift: float
    shift_interval: tuple[float, float]
    predicted: float
    discrepancy_interval: tuple[float, float]
    onsets: tuple[float, float]
    definition: str
    undefined_replicates: int
    reasons: tuple[str, ...]
    config: OnsetTestConfig = field(default_factory=OnsetTestConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # recurses into config (OnsetTestConfig.to_dict is asdict too)


def _shift_test(first: Sweep, second: Sweep, names: tuple[str, str],
                predicted: float | ShiftPredictor, sign: float, definition: str,
                cfg: OnsetTestConfig, rng: np.random.Generator | int,
                gate_passed: bool) -> ShiftTestResult:
    """Shift ``sign * (onset(second) - onset(first))`` against ``predicted(onset(first))``."""
    reasons = [] if gate_passed else ["the warm-start gate failed"]
    reasons += _design_problems(first, cfg, names[0]) + _design_problems(second, cfg, names[1])
    lam1, lam2 = np.asarray(first.lambdas), np.asarray(second.lambdas)
    o1 = float(onset(lam1, first.pooled_rates, cfg.fraction))
    o2 = float(onset(lam2, second.pooled_rates, cfg.fraction))
    with np.errstate(invalid="ignore"):
        shift = float(sign * (o2 - o1))
        pred = float(_predict(predicted, np.asarray([o1]))[0])
    if not reasons and not math.isfinite(pred):
        reasons.append(f"predicted shift is not finite ({pred!r}) at the measured onset {o1!r}")
    r1, r2 = resample_rates([first, second], cfg.n_boot, rng, cfg.rollouts)
    b1, b2 = onset(lam1, r1, cfg.fraction), onset(lam2, r2, cfg.fraction)
    with np.errstate(invalid="ignore"):
        s_rep = sign * (b2 - b1)  # inf - inf = nan: undefined
        d_rep = s_rep - _predict(predicted, b1)
    d_rep = np.where(np.isnan(s_rep), np.nan, d_rep)
    cause = ("parse rate 0 at lambda = 1, or no onset on the grid at either sweep "
             "(inf - inf), in the draw")
    s_int, undefined, why = _interval_or_void(s_rep, cfg, "shift", cause)
    d_int, _, _ = _interval_or_void(d_rep, cfg, "discrepancy", cause)
    if why:
        reasons.append(why)
    elif math.isnan(d_int[0]):
        reasons.append("the prediction is undefined in too many bootstrap replicates")
    if reasons:
        verdict = null = Verdict.VOID
        zero_out: bool | None = None
    else:
        verdict = contrast_verdict(d_int, s_int)
        null = contrast_verdict(s_int, d_int)
        zero_out = not s_int[0] <= 0.0 <= s_int[1]
    return ShiftTestResult(
        verdict=verdict, null_verdict=null, zero_excluded=zero_out, shift=shift,
        shift_interval=s_int, predicted=pred, discrepancy_interval=d_int, onsets=(o1, o2),
        definition=definition, undefined_replicates=undefined, reasons=tuple(reasons),
        config=cfg)


def _predict(predicted: float | ShiftPredictor, onsets: FloatArray) -> FloatArray:
    """The predicted shift at each measured first onset: a constant is the same at every
    onset, past the grid included (a censored shift of -inf then still counts); a function
    of the onset is evaluated at the finite ones, NaN elsewhere (no onset, no prediction)."""
    if not callable(predicted):
        return np.full(onsets.shape, float(predicted))
    out = np.full(onsets.shape, np.nan)
    ok = np.isfinite(onsets)
    if ok.any():
        out[ok] = np.asarray(predicted(onsets[ok]), dtype=np.float64)
    return out


def budget_extension_test(at_T: Sweep, at_2T: Sweep, predicted_shift: float | ShiftPredictor,
                          *, rng: np.random.Generator | int, gate_passed: bool,
                          config: OnsetTestConfig | None = None) -> ShiftTestResult:
    r"""Test (b): how far the onset moves when the step budget doubles.

    .. math:: \Delta = \hat\lambda_T - \hat\lambda_{2T}

    (positive: the onset comes earlier with more steps; the sign of
    ``cliff.BudgetExtension.shift``), against the predicted shift ``pi``, a number or a
    function of the measured ``lambda_T`` (:func:`budget_shift_predictor`) fixed in the
    prediction.  Both sweeps are the same runs evaluated after ``T`` and ``2T`` steps, so
    every bootstrap replicate resamples the same seeds and (paired) the same rollouts in
    both.

    Verdict (:func:`~validate.llm_check.verdict_rules.contrast_verdict`): with ``I_Delta`` the
    interval of ``Delta`` and ``I_D`` that of ``Delta - pi(lambda_T)`` over the same
    replicates, HIT when ``0 in I_D`` and ``0 notin I_Delta`` (consistent with the law, not
    with no shift), MISS when ``0 notin I_D``, INCONCLUSIVE otherwise; ``zero_excluded``
    reports ``0 notin I_Delta`` on its own, and ``null_verdict`` scores "no shift" by the same
    rule.  With a constant ``pi``, ``0 in I_D`` is "pi lies in the 90% interval of Delta".

    Parameters
    ----------
    at_T, at_2T : Sweep
        The same runs evaluated at ``T`` and ``2T`` steps (same grid, seeds and prompts).
    predicted_shift : float or callable
        ``pi``, or ``pi(lambda_T)`` vectorised over an array of measured onsets (conditioning
        on the measured ``lambda_T`` tests the law of the shift, not the level of the onset).
    rng, gate_passed, config
        As in :func:`cliff_interval_test`.

    Returns
    -------
    ShiftTestResult
        VOID when the gate failed, the grids differ, a design minimum is not met, either
        lambda = 1 rate is 0, the prediction is not finite, or more than ``(1 - level)/2`` of
        the replicates have an undefined shift (no onset at either budget: ``inf - inf``).
    """
    cfg = config or OnsetTestConfig()
    definition = "lambda_T - lambda_2T (onset at T steps minus onset at 2T steps)"
    if at_T.lambdas != at_2T.lambdas or at_T.indicators.shape != at_2T.indicators.shape:
        return _void_shift(cfg, [
            f"at_T and at_2T must be the same runs (same grid and shape), got grids "
            f"{at_T.lambdas} and {at_2T.lambdas}, shapes {at_T.indicators.shape} and "
            f"{at_2T.indicators.shape}"], definition)
    return _shift_test(at_T, at_2T, ("at_T", "at_2T"), predicted_shift, -1.0, definition, cfg,
                       rng, gate_passed)


def clip_cross_test(at_c: Sweep, at_c_new: Sweep, predicted_shift: float | ShiftPredictor, *,
                    rng: np.random.Generator | int, gate_passed: bool,
                    config: OnsetTestConfig | None = None) -> ShiftTestResult:
    r"""Test (c): the onset at a second clip ``c'`` predicted from the onset at ``c``.

    .. math:: \Delta = \hat\lambda_T(c') - \hat\lambda_T(c)

    (the sign of ``ClipCross.lambda_T_new - ClipCross.lambda_T``) against the predicted
    shift, ``log(c'/c)/D`` on the capped branch (:func:`clip_shift_prediction`); the verdict
    rule is that of :func:`budget_extension_test`.

    Parameters
    ----------
    at_c, at_c_new : Sweep
        Runs at ``c`` (e.g. test (a)'s) and at ``c'``, each on its own grid, evaluated after
        the same number of steps.  Seed ``s`` of each is the same OPD seed and rollout ``n``
        the same prompt, so replicates resample them jointly (the runs at ``c`` and ``c'``
        are different runs; the pairing is valid whether or not they are correlated).
    predicted_shift : float or callable
        As in :func:`budget_extension_test` (a callable receives the measured onset at ``c``).
    rng, gate_passed, config
        As in :func:`cliff_interval_test`.

    Returns
    -------
    ShiftTestResult
    """
    cfg = config or OnsetTestConfig()
    definition = ("lambda_T(c') - lambda_T(c) (onset at the second clip minus onset at the "
                  "first)")
    if at_c.n_seeds != at_c_new.n_seeds or (cfg.rollouts == "paired"
                                            and at_c.n_rollouts != at_c_new.n_rollouts):
        return _void_shift(cfg, [
            f"at_c and at_c_new must share seeds and prompts, got shapes "
            f"{at_c.indicators.shape} and {at_c_new.indicators.shape}"], definition)
    return _shift_test(at_c, at_c_new, ("at_c", "at_c_new"), predicted_shift, 1.0, definition,
                       cfg, rng, gate_passed)


def _void_shift(cfg: OnsetTestConfig, reasons: list[str], definition: str) -> ShiftTestResult:
    nan2 = (math.nan, math.nan)
    return ShiftTestResult(Verdict.VOID, Verdict.VOID, None, math.nan, nan2, math.nan, nan2,
                           nan2, definition, 0, tuple(reasons), cfg)


# --- predictions from the finite-budget law ---------------------------------------------------
def budget_shift_predictor(p: float, b: float, c: float, steps: int, lr: float, *,
                           c_low: float | None = None, threshold: float = 0.5
                           ) -> ShiftPredictor:
    r"""``lambda_T -> lambda_T - lambda_2T`` of ``cliff.budget_extension`` at fixed masses.

    .. math:: \pi(\lambda_T) = \lambda_T - \lambda_{2T}(\lambda_T),\qquad
              \lambda_{2T} - \lambda_\infty = \frac{\mu^T}{1+\mu^T}(\lambda_T - \lambda_\infty)
              \ \text{(relaxation)},\ \tfrac12(\lambda_T - \lambda_c)\ \text{(runaway)}.

    Parameters
    ----------
    p, b, c, steps, lr, c_low, threshold
        As in ``cliff.budget_extension`` (the binding type's masses, the clip, the step budget
        ``T`` and the mean-field step size), all fixed in the prediction.

    Returns
    -------
    callable
        Vectorised over an array of measured onsets ``lambda_T`` (finite, >= 0).

    Examples
    --------
    >>> f = budget_shift_predictor(0.7, 0.9, 5.0, 30, 0.5)
    >>> import cliff
    >>> e = cliff.budget_extension(0.7, 0.9, 5.0, 30, 0.5)
    >>> bool(np.isclose(f(np.array([e.lambda_T]))[0], e.shift))
    True
    """
    def predict(lambda_T: FloatArray) -> FloatArray:
        lt = np.asarray(lambda_T, dtype=np.float64)
        e = cliff.budget_extension(p, b, c, steps, lr, c_low=c_low, threshold=threshold,
                             lambda_T=lt)
        return np.asarray(lt - np.asarray(e.lambda_2T, dtype=np.float64), dtype=np.float64)

    return predict


def clip_shift_prediction(p: float, b: float, c: float, c_new: float, steps: int, lr: float, *,
                          c_low: float | None = None, c_low_new: float | None = None,
                          threshold: float = 0.5) -> float:
    r"""Predicted ``lambda_T(c') - lambda_T(c)`` of ``cliff.clip_cross_prediction``.

    .. math:: \lambda_T(c') - \lambda_T(c) = \lambda_\infty(c') - \lambda_\infty(c)
              = \log(c'/c)/D\ \text{on the capped branch},

    the finite-budget excess being carried over unchanged, so the predicted shift does not
    depend on the measured onset.

    Examples
    --------
    >>> round(clip_shift_prediction(0.7, 0.9, 5.0, 1.2, 300, 0.5), 6) < 0  # c' below c_crit
    True
    """
    x = cliff.clip_cross_prediction(p, b, c, c_new, steps, lr, c_low=c_low, c_low_new=c_low_new,
                              threshold=threshold, lambda_T=1.0)
    return float(x.lambda_inf_new - x.lambda_inf)

