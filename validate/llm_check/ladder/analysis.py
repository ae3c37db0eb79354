r"""The ladder's two sealed stages and its report, from the finished runs (numpy only).

:func:`calibrate_clock` is stage 2: from the lambda = 1 runs alone, per position type, the
mean-field step size (:func:`~validate.llm_check.ladder.clock.calibrate_lr`), the absolute
predictions at every rung on that clock (:func:`~validate.llm_check.ladder.clock.
ladder_prediction`), the no-clip control's, the mean-field T-step onsets of the parse rate
at every budget, and the power of the ladder test at the noise the lambda = 1 runs show
(:func:`~validate.llm_check.ladder.power.power`).  It is sealed before any other run.

:func:`analyse_ladder` scores the finished ladder against both sealed files:

* **the ladder test**, per position type: the ladder onset (the first rung whose trend of
  log losing-class mass over log T falls ``delta`` below lambda = 1's,
  :mod:`~validate.llm_check.ladder.statistic`) with its bootstrap interval over seeds and
  rollouts, against the type's two-class window, its by-token window and the calibrated
  clock's onset, beside the nulls (the first rung, the rungs' midpoint, a constant) and the
  no-clip control's own onset.  A predictor's HIT counts only where no null HITs too
  (:func:`counted`); the nulls include "never" (no onset on the rungs), since the model on
  its own clock can predict exactly that;
* **the parse-rate onset at each budget** (test (b) on the model's own clock): the T-, 2T- and
  4T-step onsets of the parse rate against the clock's absolute predictions, with the same
  nulls;
* **the id predictors** of the parse-rate collapse (:mod:`~validate.llm_check.ladder.
  duplicates`), scored on the same parse-rate onsets;
* **the trajectory**: predicted against measured log losing mass at every rung and budget;
* the mechanism of every evaluation (:func:`validate.llm_check.mechanism.mechanism_block`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

import cliff
from validate.llm_check.ladder.clock import calibrate_lr, ladder_prediction
from validate.llm_check.ladder.configurations import configuration, parse_at_one_criterion
from validate.llm_check.ladder.design import LadderDesign
from validate.llm_check.ladder.duplicates import id_windows
from validate.llm_check.ladder.power import power
from validate.llm_check.ladder.statistic import LadderData, ladder_onset_interval, trend
from validate.llm_check.mechanism import mechanism_block
from validate.llm_check.onset import Sweep
from validate.llm_check.plan import law_threshold
from validate.llm_check.preregistered_tests import OnsetTestConfig, cliff_interval_test
from validate.llm_check.resume import from_json
from validate.llm_check.verdict_rules import (
    COUNTED_RULE,
    Verdict,
    counted,
    null_windows,
    window_verdict,
)

__all__ = ["mass_array", "ladder_data", "parse_sweep", "calibrate_clock",
           "analyse_ladder"]

Run = Mapping[str, Any]

N_BOOT = 2000
"""bootstrap replicates of every interval"""
POWER_SIMULATIONS = 200
"""simulated ladders of the power check"""


# --- the runs as arrays --------------------------------------------------------------------
def _runs_of(runs: Sequence[Run], kind: str, lambdas: Sequence[float],
             seeds: Sequence[int]) -> list[list[Run]] | None:
    by = {(float(r["job"]["lam"]), int(r["job"]["seed"])): r for r in runs
          if r["job"]["kind"] == kind}
    try:
        return [[by[(float(x), int(s))] for x in lambdas] for s in seeds]
    except KeyError:
        return None


def mass_array(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
               budgets: Sequence[int], ty: str, losing: str) -> np.ndarray | None:
    """``(S, L, B, N)`` per-rollout losing-class masses of type ``ty`` (``losing`` = "tail"
    or "valid") of the runs of ``kind``, NaN for a rollout without the type; None when a run
    is missing."""
    grid = _runs_of(runs, kind, lambdas, seeds)
    if grid is None:
        return None
    n = len(grid[0][0]["evals"][int(budgets[0])]["parsed"])

    def cell(r: Run, t: int) -> list[float]:
        got = r["evals"][int(t)].get("rollout_masses", {}).get(ty)
        return [math.nan] * n if got is None else [float(v) for v in got[losing]]

    mass = np.array([[[cell(r, t) for t in budgets] for r in row] for row in grid])
    # the models' log-probs are float32, so a sum of their probabilities can round to just
    # above 1 (by ~1e-7): that, and only that, is cut
    over = mass > 1.0
    if np.any(mass[over] > 1.0 + 1e-5):
        raise ValueError(f"losing-class masses of {ty!r} exceed 1 beyond rounding")
    return np.where(over, 1.0, mass)


def ladder_data(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
                budgets: Sequence[int], ty: str, losing: str) -> LadderData | None:
    """:func:`mass_array` as :class:`LadderData` (two rungs or more)."""
    mass = mass_array(runs, kind, lambdas, seeds, budgets, ty, losing)
    return None if mass is None else LadderData(tuple(lambdas), tuple(int(t) for t in budgets),
                                                mass)


def parse_sweep(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
                budget: int) -> Sweep | None:
    """Parse indicators of the runs of ``kind`` after ``budget`` updates."""
    grid = _runs_of(runs, kind, lambdas, seeds)
    if grid is None:
        return None
    return Sweep(tuple(lambdas), np.array([[r["evals"][int(budget)]["parsed"] for r in row]
                                           for row in grid], dtype=bool))


def _seed_mass(mass: np.ndarray) -> np.ndarray:
    """``(S, ...)`` per-seed mean over the rollouts (last axis) that have a value."""
    with np.errstate(invalid="ignore"):
        return np.nanmean(mass, axis=-1)


def _logit_spread(mass: np.ndarray) -> tuple[float, float]:
    """(sigma_seed, sigma_rollout) of the lambda = 1 masses ``(S, B, N)``: the spread over
    seeds of each seed's log-odds of the losing mass (mean over budgets), and the spread over
    rollouts of the per-rollout log-odds (pooled)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        seed = _seed_mass(mass)
        lo = np.log(seed) - np.log1p(-seed)
        s_seed = float(np.nanmean(np.nanstd(lo, axis=0, ddof=1))) if len(mass) > 1 else 0.0
        m = mass
        roll = np.log(m) - np.log1p(-m)
        s_roll = float(np.nanstd(np.where(np.isfinite(roll), roll, np.nan)))
    return (s_seed if math.isfinite(s_seed) else 0.0), (s_roll if math.isfinite(s_roll) else 0.0)


# --- stage 2 -------------------------------------------------------------------------------
def _clock_of_type(row: Mapping[str, Any], design: LadderDesign, runs: Sequence[Run],
                   n_rollouts: int, rng: np.random.Generator) -> dict[str, Any]:
    ty, losing, p, b = row["type"], row["losing"], float(row["p"]), float(row["b"])
    out: dict[str, Any] = {"type": ty, "losing": losing, "p": p, "b": b}
    mass = mass_array(runs, "ladder", (1.0,), design.seeds, design.budgets, ty, losing)
    if p == b or mass is None:
        return {**out, "fitted": False, "why": "neutral type" if p == b else "runs missing"}
    mass = mass[:, 0]  # (S, B, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.log(_seed_mass(mass).mean(axis=0))  # (B,) as LadderData pools
    if not np.all(np.isfinite(measured)):
        return {**out, "fitted": False, "why": "the losing mass at lambda = 1 is undefined or "
                                               "0 at some budget",
                "measured_log_mass_at_1": measured.tolist()}
    fit = calibrate_lr(p, b, design.c, design.c_low, design.budgets, measured, losing=losing)
    lam = design.lambdas
    pred = ladder_prediction(p, b, design.c, design.c_low, (1.0, *lam[1:]), design.budgets,
                             fit.eta, design.delta)
    ctrl = ladder_prediction(p, b, design.control_c, 1.0 / design.control_c,
                             design.control_lambdas, design.budgets, fit.eta, design.delta)
    s_seed, s_roll = _logit_spread(mass)
    try:
        pw = {"defined": True, **_plain(power(
            p, b, design.c, design.c_low, lam, design.budgets, fit.eta, design.delta,
            len(design.seeds), n_rollouts, s_seed, s_roll, 2.0 * design.step,
            POWER_SIMULATIONS, 200, rng))}
    except ValueError as err:  # the model's own ladder has no onset: nothing to cover
        pw = {"defined": False, "why": str(err)}
    return {**out, "fitted": True, "clock": asdict(fit),
            "measured_log_mass_at_1": measured.tolist(),
            "predicted_log_mass": pred.log_mass.tolist(), "predicted_trends":
            pred.trends.tolist(), "predicted_onset": pred.fine_onset,
            "predicted_onset_on_rungs": pred.onset, "lambda_star": pred.lambda_star,
            "lambda_collapse": pred.lambda_collapse,
            "control_predicted_onset": ctrl.fine_onset,
            "noise": {"sigma_seed_logit": s_seed, "sigma_rollout_logit": s_roll},
            "power": {"wrong_shift": 2.0 * design.step, **pw}}


def _plain(obj: Any) -> dict[str, Any]:
    d = asdict(obj) if hasattr(obj, "__dataclass_fields__") else dict(obj)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def _parse_onsets(bind: Mapping[str, Any] | None, design: LadderDesign) -> dict[str, Any]:
    """The clock's T-step onsets of the binding type at every budget (finite-budget law,
    threshold of :func:`validate.llm_check.plan.law_threshold`)."""
    if bind is None or not bind.get("fitted"):
        return {"defined": False, "why": "the binding type's clock is not fitted"}
    p, b, eta = bind["p"], bind["b"], bind["clock"]["eta"]
    tau = law_threshold(p, b, design.c)
    onsets = {}
    for t in design.budgets:
        try:
            onsets[str(t)] = float(cliff.finite_budget_onset(p, b, design.c, t, eta,
                                                             c_low=design.c_low, threshold=tau))
        except ValueError as err:
            return {"defined": False, "why": f"finite_budget_onset: {err}"}
    return {"defined": True, "threshold": tau, "onsets": onsets}


def calibrate_clock(pred: Mapping[str, Any], sha: str, runs: Sequence[Run]) -> dict[str, Any]:
    """Stage 2's payload (module docstring), from the lambda = 1 ``runs`` alone."""
    pred = from_json(pred)  # the sealed JSON's "inf" strings are floats again
    design = LadderDesign.from_dict(pred["design"])
    rng = np.random.default_rng(int(pred["warm_seed"]) + 17)
    at_one = [r for r in runs if r["job"]["kind"] == "ladder" and r["job"]["lam"] == 1.0]
    n = len(at_one[0]["evals"][design.budgets[0]]["parsed"]) if at_one else 0
    types = [_clock_of_type(row, design, at_one, n, rng) for row in pred["types"]]
    bind_name = pred["measurement"]["binding_type"]
    bind = next((t for t in types if t["type"] == bind_name), None)
    rate = (float(np.mean([r["evals"][design.budgets[0]]["parse_rate"] for r in at_one]))
            if at_one else math.nan)
    crit = parse_at_one_criterion(configuration(pred["configuration"]), rate)
    parse_at_one = ({"passed": True, "message": "no floor", "pooled_parse_rate": rate}
                    if crit is None else
                    {"passed": crit.passed, "message": crit.describe(),
                     "pooled_parse_rate": rate})
    return {"prediction_sha256": sha, "clock_rule": types[0]["clock"]["rule"]
            if types and types[0].get("fitted") else None,
            "counted_rule": COUNTED_RULE, "binding_type": bind_name, "types": types,
            "parse_onsets": _parse_onsets(bind, design), "parse_at_one": parse_at_one}


# --- the report ----------------------------------------------------------------------------
def _verdict(interval: tuple[float, float], window: Sequence[float], widen: float,
             last: float) -> Verdict:
    """A window's verdict on an onset interval measured on rungs up to ``last``.

    An interval whose low end is ``inf`` says "no onset up to the last rung": it is read as
    ``[last, inf]``, so a window past the rungs is INCONCLUSIVE (the rungs cannot test it),
    not MISS.  A window ``(inf, inf)`` predicts no onset on the rungs: it HITs such an
    interval, MISSes one with a finite high end, and is INCONCLUSIVE otherwise.  Any other
    window is :func:`~validate.llm_check.verdict_rules.window_verdict`'s.
    """
    lo, hi = interval
    if math.isinf(float(window[0])):
        if math.isinf(lo):
            return Verdict.HIT
        return Verdict.MISS if math.isfinite(hi) else Verdict.INCONCLUSIVE
    return window_verdict((last if math.isinf(lo) else lo, hi),
                          (float(window[0]), float(window[1])), widen)


def _ladder_test(row: Mapping[str, Any], clock: Mapping[str, Any], design: LadderDesign,
                 runs: Sequence[Run], constant: float, void: list[str],
                 rng: np.random.Generator) -> dict[str, Any]:
    ty, losing = row["type"], row["losing"]
    data = ladder_data(runs, "ladder", design.lambdas, design.seeds, design.budgets, ty, losing)
    if data is None:
        return {"type": ty, "verdict": Verdict.VOID, "reasons": ["runs missing"]}
    est = ladder_onset_interval(data, design.delta, N_BOOT, rng)
    interval = (est.low, est.high)
    level = 0.9
    if (math.isnan(est.point) or math.isnan(est.low) or math.isnan(est.high)
            or est.n_undefined > (1.0 - level) / 2.0 * N_BOOT):
        # the rule of the check's other tests (OnsetTestConfig.max_undefined): an interval
        # formed from the replicates that happen to be defined would be biased
        void = [*void, f"the ladder onset is undefined in the data or in more than "
                       f"{(1.0 - level) / 2.0:.0%} of the replicates ({est.n_undefined} of "
                       f"{N_BOOT}): at some rung a seed's rollouts never reach the type, or "
                       f"its losing mass is 0"]
        interval = (math.inf, math.inf)  # a placeholder: every verdict below is VOID
    widen = 0.5 * design.step
    windows = {"two_class": tuple(row["two_class"])}
    if row["by_token"] is not None:
        windows["by_token"] = tuple(row["by_token"])
    last = design.lambdas[-1]
    verdicts = {name: _verdict(interval, w, widen, last) for name, w in windows.items()}
    if clock.get("fitted"):
        x = clock["predicted_onset"]
        verdicts["calibrated_clock"] = _verdict(interval, (x, x), widen, last)
    nulls = {k: _verdict(interval, w, widen, last)
             for k, w in null_windows(design.lambdas, constant).items()}
    nulls["never"] = _verdict(interval, (math.inf, math.inf), widen, last)
    if void:
        verdicts = dict.fromkeys(verdicts, Verdict.VOID)
        nulls = dict.fromkeys(nulls, Verdict.VOID)
    ctrl = ladder_data(runs, "ladder_control", design.control_lambdas, design.seeds[:1],
                       design.budgets, ty, losing)
    ctrl_est = ladder_onset_interval(ctrl, design.delta, N_BOOT, rng) \
        if ctrl is not None and len(design.control_lambdas) > 1 else None
    return {"type": ty, "losing": losing, "regime": row["regime"],
            "verdict": counted(verdicts["two_class"], nulls), "reasons": void,
            "onset": est.point, "interval": [est.low, est.high],
            "verdicts": verdicts, "counted": {k: counted(v, nulls) for k, v in verdicts.items()},
            "null_verdicts": nulls, "windows": {k: list(v) for k, v in windows.items()},
            "predicted_onset_calibrated": clock.get("predicted_onset"),
            "pooled_log_mass": data.pooled_log_mass.tolist(),
            "trends": np.asarray(trend(data.pooled_log_mass, design.budgets)).tolist(),
            "control": None if ctrl is None or ctrl_est is None else {
                "lambdas": list(design.control_lambdas), "onset": ctrl_est.point,
                "interval": [ctrl_est.low, ctrl_est.high],
                "predicted_onset_calibrated": clock.get("control_predicted_onset"),
                "pooled_log_mass": ctrl.pooled_log_mass.tolist()},
            "trajectory": _trajectory(data, clock)}


def _trajectory(data: LadderData, clock: Mapping[str, Any]) -> dict[str, Any] | None:
    """Predicted against measured log losing mass at every rung and budget."""
    if not clock.get("fitted"):
        return None
    pred = np.asarray(clock["predicted_log_mass"], dtype=float)
    meas = data.pooled_log_mass
    err = pred - meas
    ok = np.isfinite(err)
    return {"predicted": pred.tolist(), "measured": meas.tolist(),
            "rms_log_error": float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else math.nan,
            "mean_log_error": float(np.mean(err[ok])) if ok.any() else math.nan}


def _scored(interval: tuple[float, float], windows: Mapping[str, Sequence[float]],
            nulls: Mapping[str, Verdict], widen: float, void: bool, last: float
            ) -> dict[str, Any]:
    """Verdicts (:func:`_verdict`) of ``windows`` on ``interval``, and the counted ones
    (:func:`counted`)."""
    verdicts = {name: Verdict.VOID if void else _verdict(interval, w, widen, last)
                for name, w in windows.items()}
    return {"windows": {k: list(v) for k, v in windows.items()}, "verdicts": verdicts,
            "counted": {k: counted(v, nulls) for k, v in verdicts.items()}}


def _budget_tests(design: LadderDesign, cal: Mapping[str, Any], runs: Sequence[Run],
                  bind: Mapping[str, Any] | None, constant: float, void: list[str],
                  seed: int, ids: Mapping[str, Any]) -> dict[str, Any]:
    """The parse-rate onset at each budget against the clock's absolute prediction and the
    id predictors (:func:`validate.llm_check.ladder.duplicates.id_windows`)."""
    onsets = cal["parse_onsets"]
    out: dict[str, Any] = {}
    for t in design.budgets:
        sweep = parse_sweep(runs, "ladder", design.lambdas, design.seeds, t)
        if sweep is None:
            out[str(t)] = {"verdict": Verdict.VOID, "reasons": ["runs missing"]}
            continue
        wins: dict[str, tuple[float, float]] = {}
        if bind is not None:
            wins["two_class"] = tuple(bind["two_class"])
        res = cliff_interval_test(sweep, wins, primary="two_class",
                                  nulls=null_windows(design.lambdas, constant), rng=seed + t,
                                  gate_passed=not void, config=OnsetTestConfig(n_boot=N_BOOT))
        d = res.to_dict()
        widen, off, last = 0.5 * design.step, bool(res.reasons), design.lambdas[-1]
        nulls = {k: Verdict.VOID if off else _verdict(res.interval, w, widen, last)
                 for k, w in {**null_windows(design.lambdas, constant),
                              "never": (math.inf, math.inf)}.items()}
        # the clock's absolute onset, inf where it predicts none on the rungs, is the primary
        pred_t = onsets["onsets"][str(t)] if onsets.get("defined") else None
        clock = (_scored(res.interval, {"calibrated_clock": (pred_t, pred_t)}, nulls, widen, off,
                         last) if pred_t is not None else None)
        two = _scored(res.interval, wins, nulls, widen, off, last)
        verdict = (clock or two)["verdicts"]["calibrated_clock" if clock else "two_class"] \
            if (clock or wins) else res.verdict
        out[str(t)] = {**d, "predicted_onset": pred_t, "reasons": [*void, *d["reasons"]],
                       "primary": "calibrated_clock" if clock else "two_class",
                       "verdict": verdict, "null_verdicts": nulls,
                       "counted": counted(verdict, nulls),
                       "clock": clock, "windows_scored": two,
                       "id_predictors": _scored(res.interval, ids["budgets"][str(t)], nulls,
                                                widen, off, last)
                       if ids.get("defined") else ids}
    return out


def analyse_ladder(pred: Mapping[str, Any], sha: str, cal_record: Mapping[str, Any],
                   runs: Sequence[Run]) -> dict[str, Any]:
    """The ladder's report (module docstring) from the verified prediction payload ``pred``
    (sha256 ``sha``), the verified calibration record and the finished runs."""
    pred, cal = from_json(pred), from_json(cal_record["payload"])
    design = LadderDesign.from_dict(pred["design"])
    if cal["prediction_sha256"] != sha:
        raise ValueError(f"calibration.json belongs to prediction {cal['prediction_sha256']!r}, "
                         f"not {sha!r}")
    cfg = pred["config"]
    void = []
    if not pred["gate"]["passed"]:
        void.append("the warm-start gate failed")
    if not cal["parse_at_one"]["passed"]:
        void.append(f"the parse-rate floor at lambda = 1: {cal['parse_at_one']['message']}")
    if cfg["quick"]:
        void.append("--quick: budgets below the design's minimums")
    if len(design.seeds) < 3 or cfg["eval_rollouts"] < 512:
        void.append("fewer than 3 seeds or 512 evaluation rollouts")
    rng = np.random.default_rng(int(pred["warm_seed"]) + 29)
    clocks = {t["type"]: t for t in cal["types"]}
    have = {r["job"]["lam"] for r in runs if r["job"]["kind"] == "ladder"}
    done = set(design.lambdas) <= have
    types = [_ladder_test(row, clocks.get(row["type"], {}), design, runs, cfg["null_constant"],
                          void, rng) for row in pred["types"]] if done else []
    bind_name = pred["measurement"]["binding_type"]
    bind_row = next((r for r in pred["types"] if r["type"] == bind_name), None)
    bind = next((t for t in types if t["type"] == bind_name), None)
    tests = {"ladder_binding": {"verdict": bind["verdict"] if bind else Verdict.VOID,
                                "type": bind_name}}
    ids = id_windows(pred["types"], cal["types"], design)
    budgets = _budget_tests(design, cal, runs, bind_row, cfg["null_constant"], void,
                            int(pred["warm_seed"]), ids) if done else {}
    for t, entry in budgets.items():
        tests[f"parse_onset_{t}"] = {"verdict": entry.get("counted", entry["verdict"])}
        if isinstance(entry.get("id_predictors"), dict) and "counted" in entry["id_predictors"]:
            for name, v in entry["id_predictors"]["counted"].items():
                tests[f"{name}_{t}"] = {"verdict": v}
    parse = {str(t): [float(np.mean([r["evals"][t]["parse_rate"] for r in runs
                                     if r["job"]["kind"] == "ladder" and r["job"]["lam"] == x]))
                      for x in design.lambdas if x in have] for t in design.budgets}
    return {"prediction_sha256": sha, "calibration_sha256": cal_record["sha256"],
            "configuration": pred["configuration"], "warm_seed": pred["warm_seed"],
            "gate": pred["gate"], "design": pred["design"], "void_reasons": void,
            "complete": done, "tests": tests, "types": types, "parse_onsets": budgets,
            "pooled_parse_rate": {"lambdas": [x for x in design.lambdas if x in have],
                                  "by_budget": parse},
            "mechanism": mechanism_block(runs, pred["measurement"]["position_types"])}
