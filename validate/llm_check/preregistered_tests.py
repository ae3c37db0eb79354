r"""The three pre-registered tests of the real-model check, from parse indicators to verdicts.

(a) :func:`cliff_interval_test`: the pooled onset and its bootstrap interval against each
    predicted window (two-class, by-token) and against null predictors.
(b) :func:`budget_extension_test`: the onset after ``2T`` steps (the same runs evaluated
    twice) against the finite-budget law's absolute ``lambda_2T``, beside nulls that only
    move the measured onset at ``T`` part of the way to an asymptote.
(c) :func:`clip_cross_test`: the onset at a second clip ``c'`` against its absolute
    prediction, beside nulls that only rescale the onset at ``c`` (no shift; ``lambda - 1``
    proportional to ``log c``).

In (b) and (c) the real predictor's HIT counts only where no null HITs as well
(:func:`~validate.llm_check.verdict_rules.counted`).

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
    counted,
    local_step,
    window_verdict,
    windows_from,
)

__all__ = ["OnsetTestConfig", "IntervalTestResult", "AbsoluteTestResult", "AffineNull",
           "cliff_interval_test", "budget_extension_test", "clip_cross_test", "budget_nulls",
           "clip_nulls", "residual", "budget_shift_predictor"]

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


# --- (b), (c) absolute predictions against nulls ---------------------------------------------
AffineNull = tuple[float, float]
"""``(a, k)``: a null that predicts the second onset from the measured first one as
``lambda_2 = a + k (lambda_1 - a)`` (``k = 1``: no shift; ``k = 1/2``: half the way to ``a``)."""


@dataclass(frozen=True)
class AbsoluteTestResult:
    """Tests (b) and (c): a predicted second onset against the measured one, beside nulls.

    Attributes
    ----------
    verdict : the real predictor's verdict as counted (:func:`~validate.llm_check.
        verdict_rules.counted`): a HIT that a null shares is INCONCLUSIVE.
    own_verdict : the real predictor's verdict on its own.
    null_verdicts : each null's verdict by the same rule.
    predicted : the sealed second onset (``inf``: no onset on the second grid).
    nulls : each null's ``(a, k)`` (:data:`AffineNull`).
    onsets : the two measured pooled onsets (first, second).
    second_interval : bootstrap interval of the second onset.
    residual_interval : interval of (measured second onset - predicted).
    null_residual_intervals : the same for each null, over the same replicates.
    widen : half the second grid's step at each predictor's value, by name (``"own"`` for
        the real one).
    shift, shift_interval : the measured shift (``definition``) and its interval; descriptive,
        they enter no verdict.
    definition : what ``shift`` is, in words.
    undefined_replicates : replicates with an undefined second onset (excluded).
    reasons : why the verdict is VOID (empty otherwise).
    config : the settings used.
    """

    verdict: Verdict
    own_verdict: Verdict
    null_verdicts: dict[str, Verdict]
    predicted: float
    nulls: dict[str, AffineNull]
    onsets: tuple[float, float]
    second_interval: tuple[float, float]
    residual_interval: tuple[float, float]
    null_residual_intervals: dict[str, tuple[float, float]]
    widen: dict[str, float]
    shift: float
    shift_interval: tuple[float, float]
    definition: str
    undefined_replicates: int
    reasons: tuple[str, ...]
    config: OnsetTestConfig = field(default_factory=OnsetTestConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # recurses into config (OnsetTestConfig.to_dict is asdict too)


def residual(measured: FloatArray, predicted: FloatArray, last: float) -> FloatArray:
    r"""Measured minus predicted onset on a grid that ends at ``last``.

    A prediction past ``last`` is a prediction of no onset on the grid (``inf``); where both
    are ``inf`` (no onset, as predicted) the residual is 0, where only one is it is ``+-inf``;
    an undefined onset (NaN) stays NaN.

    Examples
    --------
    >>> residual(np.array([1.3, np.inf, np.inf, 1.3]), np.array([1.25, 1.6, 1.2, np.inf]), 1.5)
    array([0.05, 0.  ,  inf, -inf])
    """
    m = np.asarray(measured, dtype=np.float64)
    q = np.asarray(predicted, dtype=np.float64)
    q = np.where(q > last, np.inf, q)
    with np.errstate(invalid="ignore"):
        out = m - q
    return np.where((m == np.inf) & (q == np.inf), 0.0, out)


def _null_values(null: AffineNull, first: FloatArray) -> FloatArray:
    a, k = null
    with np.errstate(invalid="ignore"):
        return np.asarray(a + k * (np.asarray(first, dtype=np.float64) - a), dtype=np.float64)


def _half_step(lambdas: FloatArray, value: float) -> float:
    """Half the grid step at ``value`` (``inf`` or NaN: the grid's last step; local_step moves
    a finite value beyond the grid onto its end)."""
    x = value if math.isfinite(value) else float(lambdas[-1])
    return 0.5 * local_step(lambdas, (x, x))


def _absolute_test(first: Sweep, second: Sweep, names: tuple[str, str], predicted: float,
                   nulls: Mapping[str, AffineNull], sign: float, definition: str,
                   cfg: OnsetTestConfig, rng: np.random.Generator | int,
                   gate_passed: bool) -> AbsoluteTestResult:
    reasons = [] if gate_passed else ["the warm-start gate failed"]
    reasons += _design_problems(first, cfg, names[0]) + _design_problems(second, cfg, names[1])
    if math.isnan(predicted):
        reasons.append("the predicted second onset is undefined (NaN)")
    lam1, lam2 = np.asarray(first.lambdas), np.asarray(second.lambdas)
    last = float(lam2[-1])
    o1 = float(onset(lam1, first.pooled_rates, cfg.fraction))
    o2 = float(onset(lam2, second.pooled_rates, cfg.fraction))
    r1, r2 = resample_rates([first, second], cfg.n_boot, rng, cfg.rollouts)
    b1, b2 = onset(lam1, r1, cfg.fraction), onset(lam2, r2, cfg.fraction)
    cause = "parse rate 0 at lambda = 1 in the draw"
    second_int, undefined, why = _interval_or_void(b2, cfg, "second onset", cause)
    if why:
        reasons.append(why)
    def interval(values: FloatArray) -> tuple[float, float]:
        lo, hi, _ = percentile_interval(values, cfg.level)
        return lo, hi

    own_int = interval(residual(b2, np.full(b2.shape, predicted), last))
    null_ints = {k: interval(residual(b2, _null_values(v, b1), last)) for k, v in nulls.items()}
    widen = {"own": _half_step(lam2, predicted)}
    widen |= {k: _half_step(lam2, float(_null_values(v, np.array([o1]))[0]))
              for k, v in nulls.items()}
    if reasons or any(math.isnan(i[0]) for i in [own_int, *null_ints.values()]):
        reasons += [] if reasons else ["a residual is undefined in every replicate"]
        own = Verdict.VOID
        null_v = dict.fromkeys(nulls, Verdict.VOID)
    else:
        own = window_verdict(own_int, (0.0, 0.0), widen["own"])
        null_v = {k: window_verdict(i, (0.0, 0.0), widen[k]) for k, i in null_ints.items()}
    with np.errstate(invalid="ignore"):
        shift_int = interval(sign * (b2 - b1))
        shift = float(sign * (o2 - o1))
    return AbsoluteTestResult(
        verdict=counted(own, null_v), own_verdict=own, null_verdicts=null_v,
        predicted=float(predicted), nulls={k: (float(a), float(b)) for k, (a, b) in nulls.items()},
        onsets=(o1, o2), second_interval=second_int, residual_interval=own_int,
        null_residual_intervals=null_ints, widen=widen,
        shift=shift, shift_interval=shift_int, definition=definition,
        undefined_replicates=undefined, reasons=tuple(reasons), config=cfg)


def budget_extension_test(at_T: Sweep, at_2T: Sweep, predicted_2T: float,
                          nulls: Mapping[str, AffineNull], *, rng: np.random.Generator | int,
                          gate_passed: bool, config: OnsetTestConfig | None = None
                          ) -> AbsoluteTestResult:
    r"""Test (b): the onset after ``2T`` steps against the finite-budget law's ``lambda_2T``.

    .. math::

        \rho = \hat\lambda_{2T} - \lambda_{2T}^{\text{law}},\qquad
        \rho_j = \hat\lambda_{2T} - \big(a_j + k_j(\hat\lambda_T - a_j)\big)\ \text{(nulls)},

    each scored by :func:`~validate.llm_check.verdict_rules.window_verdict` of its bootstrap
    interval against 0 widened by half the ``2T`` grid's step at the predicted value; the
    replicates resample the same seeds and rollouts at both budgets (the same runs evaluated
    twice), so a null that reads ``hat lambda_T`` carries its noise.  The prediction is
    absolute: it does not read the measured ``lambda_T``.  The nulls are predictors without
    theory that any law of the form "the onset moves part of the way to an asymptote" would
    also pass (:func:`budget_nulls`); the real predictor's HIT counts only where none of them
    HITs.  ``shift = lambda_T - lambda_2T`` is reported beside the verdicts.

    Parameters
    ----------
    at_T, at_2T : Sweep
        The same runs evaluated at ``T`` and ``2T`` steps (same grid, seeds and prompts).
    predicted_2T : float
        ``lambda_2T`` sealed in the prediction (``inf``: no onset on the grid; a value past the
        grid's end means the same).
    nulls : mapping of name -> (a, k)
        :data:`AffineNull` predictors.
    rng, gate_passed, config
        As in :func:`cliff_interval_test`.

    Returns
    -------
    AbsoluteTestResult
        VOID when the gate failed, the grids differ, a design minimum is not met, either
        lambda = 1 rate is 0, the prediction is NaN, or more than ``(1 - level)/2`` of the
        replicates have an undefined onset at ``2T``.

    Examples
    --------
    >>> sorted(budget_nulls({"1": 1.0, "law": 1.19}))
    ['halfway_to_1', 'halfway_to_law', 'no_shift']
    """
    cfg = config or OnsetTestConfig()
    definition = "lambda_T - lambda_2T (onset at T steps minus onset at 2T steps)"
    if at_T.lambdas != at_2T.lambdas or at_T.indicators.shape != at_2T.indicators.shape:
        return _void_absolute(cfg, predicted_2T, nulls, [
            f"at_T and at_2T must be the same runs (same grid and shape), got grids "
            f"{at_T.lambdas} and {at_2T.lambdas}, shapes {at_T.indicators.shape} and "
            f"{at_2T.indicators.shape}"], definition)
    return _absolute_test(at_T, at_2T, ("at_T", "at_2T"), predicted_2T, nulls, -1.0,
                          definition, cfg, rng, gate_passed)


def clip_cross_test(at_c: Sweep, at_c_new: Sweep, predicted_new: float,
                    nulls: Mapping[str, AffineNull], *, rng: np.random.Generator | int,
                    gate_passed: bool, config: OnsetTestConfig | None = None
                    ) -> AbsoluteTestResult:
    r"""Test (c): the onset at a second clip ``c'`` against its sealed prediction.

    .. math:: \rho = \hat\lambda_T(c') - \lambda_T^{\text{pred}}(c'),

    beside the nulls of :func:`clip_nulls` (no shift; any threshold with ``lambda - 1``
    proportional to ``log c``), each read from the measured onset at ``c``; the verdict
    rule is that of :func:`budget_extension_test`.  ``shift = lambda_T(c') - lambda_T(c)``
    is reported beside the verdicts.

    Parameters
    ----------
    at_c, at_c_new : Sweep
        Runs at ``c`` (e.g. test (a)'s) and at ``c'``, each on its own grid, evaluated after
        the same number of steps.  Seed ``s`` of each is the same OPD seed and rollout ``n``
        the same prompt, so replicates resample them jointly (the runs at ``c`` and ``c'``
        are different runs; the pairing is valid whether or not they are correlated).
    predicted_new : float
        The onset at ``c'`` sealed in the prediction (``inf``: none on the ``c'`` grid).
    nulls : mapping of name -> (a, k)
    rng, gate_passed, config
        As in :func:`cliff_interval_test`.

    Returns
    -------
    AbsoluteTestResult

    Examples
    --------
    >>> {k: (a, round(s, 3)) for k, (a, s) in clip_nulls(5.0, 2.0).items()}
    {'no_shift': (1.0, 1.0), 'log_c': (1.0, 0.431)}
    """
    cfg = config or OnsetTestConfig()
    definition = ("lambda_T(c') - lambda_T(c) (onset at the second clip minus onset at the "
                  "first)")
    if at_c.n_seeds != at_c_new.n_seeds or (cfg.rollouts == "paired"
                                            and at_c.n_rollouts != at_c_new.n_rollouts):
        return _void_absolute(cfg, predicted_new, nulls, [
            f"at_c and at_c_new must share seeds and prompts, got shapes "
            f"{at_c.indicators.shape} and {at_c_new.indicators.shape}"], definition)
    return _absolute_test(at_c, at_c_new, ("at_c", "at_c_new"), predicted_new, nulls, 1.0,
                          definition, cfg, rng, gate_passed)


def _void_absolute(cfg: OnsetTestConfig, predicted: float, nulls: Mapping[str, AffineNull],
                   reasons: list[str], definition: str) -> AbsoluteTestResult:
    nan2 = (math.nan, math.nan)
    return AbsoluteTestResult(
        Verdict.VOID, Verdict.VOID, dict.fromkeys(nulls, Verdict.VOID), float(predicted),
        dict(nulls), nan2, nan2, nan2, dict.fromkeys(nulls, nan2), {}, math.nan, nan2,
        definition, 0, tuple(reasons), cfg)


def budget_nulls(anchors: Mapping[str, float]) -> dict[str, AffineNull]:
    """Test (b)'s nulls: no shift, and half the way to each anchor (a constant fixed in the
    prediction: 1, the two-class lambda*, the law's own lambda_inf, the grid's end)."""
    out: dict[str, AffineNull] = {"no_shift": (1.0, 1.0)}
    out |= {f"halfway_to_{k}": (float(a), 0.5) for k, a in anchors.items() if math.isfinite(a)}
    return out


def clip_nulls(c: float, c_new: float) -> dict[str, AffineNull]:
    """Test (c)'s nulls: no shift, and ``lambda - 1`` proportional to ``log c``:
    ``lambda(c') = 1 + (lambda(c) - 1) log c' / log c``."""
    return {"no_shift": (1.0, 1.0), "log_c": (1.0, math.log(c_new) / math.log(c))}


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
