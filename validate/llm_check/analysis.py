"""Step 6 of a unit: from the finished runs and the sealed prediction to the report.

:func:`analyse` reads the plan back from the verified prediction payload
(:meth:`~validate.llm_check.plan.Plan.from_dict`), so the report is computed against what was
sealed, and assembles ``report.json``: the three pre-registered tests
(:mod:`validate.llm_check.preregistered_tests`), the no-clip control, the direction past the
cliff, the attribution to a position type, the per-seed curves, the mechanism
(:mod:`validate.llm_check.mechanism`, per run kind, lambda and step) and, with a schedule,
its verdict.  A failed gate gives a report whose every test is VOID with the gate's message; a
``--quick`` run that went on past its failed gate (``quick_continued`` in the prediction's
gate) gets the whole analysis, with the gate and every verdict VOID.

Runs are the results of :func:`validate.llm_check.jobs.run_jobs`: ``{"job": Job.to_dict(),
"evals": {step: evaluation}, "final": ..., "history": ..., "mean_lambda": ...}``.  Only
numpy: a saved sweep can be re-analysed without torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from validate.llm_check.config import Config
from validate.llm_check.mechanism import mechanism_block
from validate.llm_check.onset import Sweep, onset
from validate.llm_check.plan import Plan
from validate.llm_check.preregistered_tests import (
    budget_extension_test,
    cliff_interval_test,
    clip_cross_test,
)
from validate.llm_check.sealing import build_tests_block
from validate.llm_check.task import POSITION_TYPES
from validate.llm_check.verdict_rules import Verdict, direction_check

__all__ = ["analyse", "attribution", "schedule_verdict", "on_grid", "sweep_of", "per_seed",
           "mass_of"]

Run = Mapping[str, Any]
"""One finished OPD run (module docstring)."""


# --- runs on a grid ----------------------------------------------------------------------------
def on_grid(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
            value: Callable[[Run], Any]) -> list[list[Any]]:
    """``value(run)`` of the runs of ``kind``, per seed (rows) and grid point (columns)."""
    by = {(r["job"]["lam"], r["job"]["seed"]): r for r in runs if r["job"]["kind"] == kind}
    return [[value(by[(lam, s)]) for lam in lambdas] for s in seeds]


def sweep_of(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
             step: int) -> Sweep:
    """Parse indicators ``(S, L, N)`` of the runs of ``kind`` evaluated after ``step``."""
    x = on_grid(runs, kind, lambdas, seeds, lambda r: r["evals"][step]["parsed"])
    return Sweep(tuple(lambdas), np.array(x, dtype=bool))


def per_seed(runs: Sequence[Run], kind: str, lambdas: Sequence[float], seeds: Sequence[int],
             step: int, key: str) -> list[list[float]]:
    """The evaluation's ``key`` (e.g. ``"parse_rate"``) after ``step``, per seed and point."""
    return on_grid(runs, kind, lambdas, seeds, lambda r: float(r["evals"][step][key]))


def mass_of(runs: Sequence[Run], lambdas: Sequence[float], seeds: Sequence[int], step: int,
            ty: str) -> list[list[float]]:
    """Mean valid mass at ``ty`` per seed and grid point (NaN where the type never occurred)."""
    return on_grid(runs, "main", lambdas, seeds, lambda r: float(
        r["evals"][step].get("valid_mass", {}).get(ty, math.nan)))


def void(reason: str) -> dict[str, Any]:
    """A test entry that is VOID for ``reason``."""
    return {"verdict": Verdict.VOID.value, "reasons": [reason]}


# --- the report --------------------------------------------------------------------------------
def analyse(cfg: Config, pred: Mapping[str, Any], sha: str, runs: Sequence[Run],
            started: str | None, passed: bool) -> dict[str, Any]:
    """The report of one unit: tests (a)-(c), control, direction, attribution, schedule.

    Parameters
    ----------
    cfg : Config
    pred : mapping
        The verified prediction payload (:func:`~validate.llm_check.sealing.verify_prediction`).
    sha : str
        Its sha256.
    runs : sequence of runs
        The finished planned runs (empty when the gate failed).
    started : str or None
        ``first_sweep_run_started_at`` (None: no sweep ran).
    passed : bool
        The gate's outcome.
    """
    report: dict[str, Any] = {
        "config": cfg.recorded(), "configuration": pred["configuration"],
        "warm_seed": pred["warm_seed"], "prediction_sha256": sha,
        "prediction_written_at": pred["written_at"], "first_sweep_run_started_at": started,
        "gate": {"passed": passed, "message": pred["gate"]["message"],
                 "attempts": len(pred["gate_attempts"])},
        "measurement": pred["measurement"]}
    continued = bool(pred["gate"].get("quick_continued")) and not passed
    if continued:  # --quick past its failed gate: the whole analysis, every verdict VOID
        report["gate"] |= {"verdict": Verdict.VOID.value, "quick_continued": True,
                           "note": pred["gate"]["note"]}
    elif not passed:
        why = pred["gate"]["message"]
        report["tests"] = build_tests_block(void(why), void(why), void(why))
        report["summary"] = why if why.startswith("VOID") else f"VOID: {why}"
        return report
    plan = Plan.from_dict(pred)
    lam, seeds, T = list(plan.lambdas), list(pred["seeds"]), cfg.opd_steps
    wins = plan.grid.windows
    rng = np.random.default_rng(cfg.seed + 12345)
    at_T = sweep_of(runs, "main", lam, seeds, T)
    at_2T = sweep_of(runs, "main", lam, seeds, 2 * T)
    lam_new = list(plan.clip_cross.lambdas)
    at_new = sweep_of(runs, "clip", lam_new, seeds, T)
    # (a) the cliff interval
    primary = plan.primary_window if plan.primary_window in wins else next(iter(wins))
    a = cliff_interval_test(at_T, wins, primary=primary, nulls=plan.nulls, rng=rng,
                            gate_passed=True, config=plan.test_config)
    # (b) the budget extension, (c) the second clip: absolute predictions beside nulls
    be, cc = plan.budget_extension, plan.clip_cross
    if be.defined:
        b_res = budget_extension_test(at_T, at_2T, be.lambda_2T, be.nulls, rng=rng,
                                      gate_passed=True, config=plan.test_config).to_dict()
    else:
        b_res = void(be.undefined or "; ".join(plan.notes) or "no budget prediction")
        with np.errstate(invalid="ignore"):  # measured, beside the VOID verdict
            b_res["measured_onsets"] = [float(onset(lam, at_T.pooled_rates, cfg.break_fraction)),
                                        float(onset(lam, at_2T.pooled_rates, cfg.break_fraction))]
    c_res = (clip_cross_test(at_T, at_new, cc.lambda_T_new, cc.nulls, rng=rng,
                             gate_passed=True, config=plan.test_config).to_dict()
             if not math.isnan(cc.lambda_T_new) else void("clip prediction undefined"))
    b_res["power"], c_res["power"] = be.power, cc.power
    tests = [a.to_dict(), b_res, c_res]
    if continued:
        why = pred["gate"]["message"]
        why = why if why.startswith("VOID") else f"VOID: {why}"
        tests = [{**t, "verdict": Verdict.VOID.value,
                  "reasons": [f"{why} ({pred['gate']['note']})", *t.get("reasons", [])]}
                 for t in tests]
    report["tests"] = build_tests_block(*tests)
    # control: the cliff should disappear without a clip
    lam_c = list(plan.control.lambdas)
    ctrl_rates = np.mean(per_seed(runs, "control", lam_c, seeds, T, "parse_rate"), axis=0)
    ctrl_on = float(onset(lam_c, ctrl_rates, cfg.break_fraction)) if ctrl_rates[0] > 0 else math.nan
    report["control"] = {**plan.control.to_dict(), "mean_parse_rate": ctrl_rates.tolist(),
                         "onset": ctrl_on, "cliff_disappeared": bool(math.isinf(ctrl_on)),
                         "main_onset": a.onset}
    # direction and attribution
    parse = per_seed(runs, "main", lam, seeds, T, "parse_rate")
    mass = np.array(mass_of(runs, lam, seeds, T, plan.direction.position_type))
    report["direction"] = (direction_check(plan.direction, lam, np.nan_to_num(mass),
                                           parse).to_dict()
                           if np.isfinite(mass).all() else
                           {"happened": None, "reason": "the type was absent in some run"})
    report["attribution"] = attribution(runs, lam, seeds, T, parse, cfg.break_fraction)
    report["per_seed"] = {"lambdas": lam, "seeds": seeds,
                          "parse_rate": parse,
                          "ndcg_at_1": per_seed(runs, "main", lam, seeds, T, "ndcg_at_1"),
                          "parse_rate_2T": per_seed(runs, "main", lam, seeds, 2 * T,
                                                    "parse_rate"),
                          "clip_lambdas": lam_new,
                          "clip_parse_rate": per_seed(runs, "clip", lam_new, seeds, T,
                                                      "parse_rate")}
    report["windows"] = {k: list(v) for k, v in wins.items()}
    if plan.schedule is not None:
        report["schedule"] = schedule_verdict(plan, runs, lam, parse)
    report["mechanism"] = mechanism_block(runs, pred["measurement"]["position_types"])
    report["runs"] = [{kk: vv for kk, vv in r.items() if kk != "evals"}
                      | {"evals": {st: {kk: vv for kk, vv in e.items() if kk != "parsed"}
                                   for st, e in r["evals"].items()}} for r in runs]
    report["summary"] = "; ".join(f"{k}: {v['verdict']}" for k, v in report["tests"].items())
    if continued:
        report["summary"] = f"VOID: the gate failed (--quick went on past it); " \
                            f"{report['summary']}"
    return report


def attribution(runs: Sequence[Run], lam: Sequence[float], seeds: Sequence[int], T: int,
                parse: list[list[float]], fraction: float) -> dict[str, Any]:
    """Per position type, the change of the student's valid mass from lambda = 1 at the
    (seed, lambda) runs that lost parses (rate below ``fraction`` x its lambda = 1 rate); the
    type whose mass fell most is named."""
    rates = np.array(parse)  # (S, L)
    lost = rates < fraction * rates[:, :1]
    lost[:, 0] = False
    change: dict[str, float] = {}
    for ty in POSITION_TYPES:
        mass = np.array(mass_of(runs, lam, seeds, T, ty))  # (S, L)
        delta = (mass - mass[:, :1])[lost]
        delta = delta[np.isfinite(delta)]
        if delta.size:
            change[ty] = float(delta.mean())
    if not change:
        return {"runs_with_lost_parses": int(lost.sum()), "mass_change": {},
                "type": None, "reason": "no run lost parses"}
    return {"runs_with_lost_parses": int(lost.sum()), "mass_change": change,
            "type": min(change, key=lambda t: change[t]),
            "rule": "the type whose mean valid mass fell most from lambda = 1 in the runs that "
                    "lost parses"}


def schedule_verdict(plan: Plan, runs: Sequence[Run], lam: Sequence[float],
                     parse: list[list[float]]) -> dict[str, Any]:
    """The scheduled runs against the pre-registered pass mark (both conditions of
    :attr:`~validate.llm_check.plan.SchedulePlan.PASS_MARK`)."""
    s = plan.schedule
    if s is None:
        raise ValueError("plan: has no schedule (planned without --schedule)")
    sched = [r for r in runs if r["job"]["kind"] == "schedule"]
    mean_parse = np.mean(parse, axis=0)
    lam_star = plan.grid.windows.get("two_class", (math.inf, math.inf))[0]
    below = [r for x, r in zip(lam, mean_parse, strict=True) if x < lam_star]
    best = float(max(below)) if below else math.nan
    rate = float(np.mean([r["final"]["parse_rate"] for r in sched]))
    mean_lam = float(np.mean([r["mean_lambda"] for r in sched]))
    return {"target_lambda": s.target, "mean_parse_rate": rate, "mean_lambda": mean_lam,
            "best_sub_threshold_parse_rate": best, "margin": s.margin,
            "min_gain": s.min_gain, "left_lambda_one": mean_lam >= 1.0 + s.min_gain,
            "passes": bool(rate >= best - s.margin and mean_lam >= 1.0 + s.min_gain)}
