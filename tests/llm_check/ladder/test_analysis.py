"""The ladder's analysis on synthetic finished runs: the masses read in order and clipped
only at rounding, the counted rule, the clock recovered from lambda = 1 runs the mean field
generated, and a planted ladder onset found inside its interval (VOID when the gate
failed)."""

from __future__ import annotations

import numpy as np
import pytest

import cliff
from validate.llm_check.ladder.analysis import (
    analyse_ladder,
    calibrate_clock,
    counted,
    mass_array,
    parse_sweep,
)
from validate.llm_check.ladder.design import LadderDesign, design_ladder
from validate.llm_check.plan import Job
from validate.llm_check.verdict_rules import Verdict

BUDGETS = (60, 120, 240)
SEEDS = (0, 1, 2)
C, C_LOW = 5.0, 0.2


def _run(kind: str, lam: float, seed: int, budgets: tuple, masses: dict, parsed: dict,
         ty: str = "close") -> dict:
    """A finished run shaped as run_jobs leaves it: per budget, the parse indicators and the
    per-rollout tail and valid masses of ``ty``."""
    job = Job(kind, lam, seed, C if kind == "ladder" else 1e6,
              C_LOW if kind == "ladder" else 1e-6, budgets[-1], tuple(budgets[:-1]))
    evals = {}
    for t in budgets:
        tail = [float(x) for x in masses[t]]
        ok = [bool(x) for x in parsed[t]]
        evals[t] = {"parsed": ok, "parse_rate": float(np.mean(ok)),
                    "rollout_masses": {ty: {"tail": tail, "valid": [1.0 - x for x in tail]}}}
    return {"job": job.to_dict(), "evals": evals}


def _design(window: float = 1.3, n: int = 6) -> LadderDesign:
    return design_ladder({"two_class": (1.0, window)}, n, BUDGETS, SEEDS, c=C, c_low=C_LOW,
                         control_c=1e6, control_rungs=2, lr=0.1, delta=0.5)


def _payload(design: LadderDesign, p: float, b: float, two_class: list, by_token: list | None,
             gate_passed: bool = True, quick: bool = False) -> dict:
    row = {"type": "close", "n": 500, "p": p, "b": b, "regime": "sharpening", "losing": "tail",
           "two_class": two_class, "by_token": by_token, "edge": (1 - p) / C}
    return {"config": {"quick": quick, "eval_rollouts": 512, "null_constant": 3.0},
            "configuration": "paper", "warm_seed": 0,
            "gate": {"passed": gate_passed,
                     "message": "gate passed" if gate_passed else "VOID: warm-start gate failed"},
            "measurement": {"binding_type": "close",
                            "position_types": [{"type": "close", "mean_p": p, "mean_b": b}]},
            "types": [row], "design": design.to_dict()}


# --- reading the runs ------------------------------------------------------------------------
def _coded_runs() -> list[dict]:
    """Runs whose every mass says where it belongs: 0.1 s + 0.01 l + 0.001 t + 0.0001 (n+1)."""
    runs = []
    for s in (0, 1):
        for k, lam in enumerate((1.0, 1.1, 1.2)):
            masses = {t: [0.1 * s + 0.01 * k + 0.001 * j + 0.0001 * (n + 1) for n in range(3)]
                      for j, t in enumerate((60, 120))}
            runs.append(_run("ladder", lam, s, (60, 120), masses,
                             {t: [True] * 3 for t in (60, 120)}))
    return runs[::-1]  # not in the order they are read


def test_masses_are_read_in_seed_lambda_budget_rollout_order() -> None:
    mass = mass_array(_coded_runs(), "ladder", (1.0, 1.1, 1.2), (0, 1), (60, 120), "close",
                      "tail")
    assert mass.shape == (2, 3, 2, 3)
    for (s, k, t, n), v in np.ndenumerate(mass):
        assert v == pytest.approx(0.1 * s + 0.01 * k + 0.001 * t + 0.0001 * (n + 1))


def test_the_valid_class_is_read_when_it_loses() -> None:
    mass = mass_array(_coded_runs(), "ladder", (1.0, 1.1), (1,), (60, 120), "close", "valid")
    assert mass[0, 1, 0, 2] == pytest.approx(1.0 - (0.1 + 0.01 + 0.0003))


def test_a_type_a_run_did_not_see_is_nan_and_a_missing_run_is_none() -> None:
    runs = _coded_runs()
    assert np.isnan(mass_array(runs, "ladder", (1.0,), (0,), (60, 120), "open", "tail")).all()
    assert mass_array(runs, "ladder", (1.0, 1.3), (0,), (60, 120), "close", "tail") is None
    assert mass_array(runs, "ladder_control", (1.0,), (0,), (60, 120), "close", "tail") is None


def _one_run(x: float) -> list[dict]:
    return [_run("ladder", 1.0, 0, (60, 120), {60: [0.5, x], 120: [0.5, 0.5]},
                 {60: [True, True], 120: [True, True]})]


def test_a_mass_a_rounding_above_one_is_read_as_one() -> None:
    mass = mass_array(_one_run(1.0 + 1e-7), "ladder", (1.0,), (0,), (60, 120), "close", "tail")
    assert mass[0, 0, 0, 1] == 1.0 and mass[0, 0, 0, 0] == 0.5


def test_a_mass_beyond_rounding_above_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"masses of 'close' exceed 1 beyond rounding"):
        mass_array(_one_run(1.0 + 1e-4), "ladder", (1.0,), (0,), (60, 120), "close", "tail")


def test_parse_indicators_are_read_per_seed_and_rung() -> None:
    runs = [_run("ladder", lam, s, (60, 120), {t: [0.1, 0.1] for t in (60, 120)},
                 {60: [True, lam > 1.0], 120: [s == 1, False]})
            for s in (0, 1) for lam in (1.0, 1.1)]
    sweep = parse_sweep(runs, "ladder", (1.0, 1.1), (0, 1), 60)
    assert sweep.indicators.tolist() == [[[True, False], [True, True]],
                                     [[True, False], [True, True]]]
    assert parse_sweep(runs, "ladder", (1.0, 1.1), (0, 1), 120).indicators[:, :, 0].tolist() == \
        [[False, False], [True, True]]


# --- the counted rule ------------------------------------------------------------------------
def test_a_hit_a_null_shares_is_inconclusive() -> None:
    nulls = {"first_grid_point": Verdict.MISS, "never": Verdict.HIT}
    assert counted(Verdict.HIT, nulls) == Verdict.INCONCLUSIVE


def test_a_hit_no_null_shares_counts() -> None:
    assert counted(Verdict.HIT, {"a": Verdict.MISS, "b": Verdict.INCONCLUSIVE}) == Verdict.HIT


@pytest.mark.parametrize("verdict", [Verdict.MISS, Verdict.INCONCLUSIVE, Verdict.VOID])
def test_anything_but_a_hit_is_left_alone(verdict: Verdict) -> None:
    assert counted(verdict, {"a": Verdict.HIT}) == verdict


# --- the clock -------------------------------------------------------------------------------
P_MF, B_MF, ETA = 0.9, 0.5, 0.02


def _mean_field_runs(design: LadderDesign, eta: float) -> list[dict]:
    """lambda = 1 runs whose every rollout sits on the mean-field tail after T steps."""
    tail = np.exp(cliff.mean_field_path(P_MF, B_MF, C, 1.0, BUDGETS, eta, c_low=C_LOW).log_tail)
    masses = {t: [float(tail[j])] * 6 for j, t in enumerate(BUDGETS)}
    return [_run("ladder", 1.0, s, BUDGETS, masses, {t: [True] * 6 for t in BUDGETS})
            for s in design.seeds]


def test_the_clock_recovers_the_step_size_of_mean_field_runs() -> None:
    design = _design()
    pred = _payload(design, P_MF, B_MF, [1.77, 1.78], None)
    garbage = _run("ladder", design.lambdas[1], 0, BUDGETS, {t: [0.4] * 6 for t in BUDGETS},
                   {t: [False] * 6 for t in BUDGETS})
    cal = calibrate_clock(pred, "abc", [*_mean_field_runs(design, ETA), garbage])
    (row,) = cal["types"]
    assert row["fitted"] and row["clock"]["eta"] == pytest.approx(ETA, rel=1e-4)
    assert row["clock"]["rms"] < 1e-6 and not row["clock"]["at_bound"]
    assert cal["prediction_sha256"] == "abc" and cal["binding_type"] == "close"
    assert cal["parse_at_one"]["passed"] and cal["parse_at_one"]["pooled_parse_rate"] == 1.0


def test_a_parse_rate_below_the_floor_at_lambda_one_fails_the_calibration() -> None:
    design = _design()
    runs = _mean_field_runs(design, ETA)
    for r in runs:
        r["evals"][60]["parse_rate"] = 0.5
    cal = calibrate_clock(_payload(design, P_MF, B_MF, [1.77, 1.78], None), "abc", runs)
    assert not cal["parse_at_one"]["passed"]
    assert "parse_at_lambda_1" in cal["parse_at_one"]["message"]


# --- the report on a planted ladder ----------------------------------------------------------
# Rungs 1.0, 1.1, ..., 1.6.  Below 1.3 the tail stays at 1e-2 at every budget (trend 0); from
# 1.3 on it falls as (T/60)^-2 (trend -2).  The trend first falls delta = 0.5 below lambda =
# 1's between 1.2 (D = 0) and 1.3 (D = -2): at 1.2 + 0.1 * 0.5 / 2 = 1.225.
PLANTED = 1.225


def _planted_runs(design: LadderDesign, seed: int = 5) -> list[dict]:
    rng = np.random.default_rng(seed)
    runs = []

    def one(kind: str, lam: float, s: int) -> dict:
        slope = -2.0 if lam >= 1.3 - 1e-9 else 0.0
        masses = {t: 1e-2 * (t / 60) ** slope * np.exp(0.05 * rng.standard_normal(8))
                  for t in BUDGETS}
        return _run(kind, lam, s, BUDGETS, masses, {t: [lam < 1.3] * 8 for t in BUDGETS})

    runs = [one("ladder", x, s) for x in design.lambdas for s in design.seeds]
    runs += [one("ladder_control", x, design.seeds[0]) for x in design.control_lambdas]
    return runs


@pytest.fixture(scope="module")
def planted() -> tuple:
    design = _design()
    assert design.lambdas == pytest.approx([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
    runs = _planted_runs(design)
    pred = _payload(design, 0.999, 0.5, [1.2, 1.25], [2.0, 2.1])
    cal = {"payload": calibrate_clock(pred, "sha", runs), "sha256": "cal"}
    return design, runs, pred, cal


def test_the_planted_onset_is_found_inside_its_interval(planted: tuple) -> None:
    _, runs, pred, cal = planted
    report = analyse_ladder(pred, "sha", cal, runs)
    (bind,) = report["types"]
    lo, hi = bind["interval"]
    assert bind["onset"] == pytest.approx(PLANTED, abs=5e-3)
    assert lo <= PLANTED <= hi and hi - lo < 0.05
    assert report["complete"] and report["void_reasons"] == []


def test_a_window_around_the_planted_onset_hits_and_the_nulls_miss(planted: tuple) -> None:
    _, runs, pred, cal = planted
    report = analyse_ladder(pred, "sha", cal, runs)
    (bind,) = report["types"]
    assert set(bind["null_verdicts"].values()) == {Verdict.MISS}
    assert bind["verdicts"]["by_token"] == Verdict.MISS
    assert report["tests"]["ladder_binding"] == {"verdict": Verdict.HIT, "type": "close"}


def test_a_null_constant_at_the_planted_onset_makes_the_hit_inconclusive(planted: tuple
                                                                        ) -> None:
    _, runs, pred, cal = planted
    lucky = {**pred, "config": {**pred["config"], "null_constant": PLANTED}}
    report = analyse_ladder(lucky, "sha", cal, runs)
    (bind,) = report["types"]
    assert bind["verdicts"]["two_class"] == Verdict.HIT
    assert bind["null_verdicts"]["constant"] == Verdict.HIT
    assert bind["verdict"] == bind["counted"]["two_class"] == Verdict.INCONCLUSIVE
    assert report["tests"]["ladder_binding"]["verdict"] == Verdict.INCONCLUSIVE


def test_a_failed_gate_makes_every_verdict_void_with_its_reason(planted: tuple) -> None:
    design, runs, pred, cal = planted
    report = analyse_ladder({**pred, "gate": {"passed": False, "message": "VOID"}}, "sha", cal,
                            runs)
    assert "the warm-start gate failed" in report["void_reasons"]
    assert report["tests"] and all(v["verdict"] == Verdict.VOID
                                   for v in report["tests"].values())
    (bind,) = report["types"]
    assert "the warm-start gate failed" in bind["reasons"]
    assert set(bind["verdicts"].values()) == {Verdict.VOID}
    assert bind["interval"][0] <= PLANTED <= bind["interval"][1]  # measured all the same


@pytest.mark.parametrize(("config", "reason"), [
    ({"quick": True}, "--quick"), ({"eval_rollouts": 64}, "fewer than 3 seeds or 512")])
def test_below_the_design_minimums_is_void(planted: tuple, config: dict, reason: str) -> None:
    _, runs, pred, cal = planted
    report = analyse_ladder({**pred, "config": {**pred["config"], **config}}, "sha", cal, runs)
    assert any(reason in why for why in report["void_reasons"])
    assert report["tests"]["ladder_binding"]["verdict"] == Verdict.VOID


def test_a_missing_rung_leaves_the_ladder_incomplete_and_void(planted: tuple) -> None:
    design, runs, pred, cal = planted
    top = design.lambdas[-1]
    report = analyse_ladder(pred, "sha", cal, [r for r in runs if r["job"]["lam"] != top])
    assert not report["complete"] and report["types"] == []
    assert report["tests"]["ladder_binding"]["verdict"] == Verdict.VOID


def test_a_calibration_of_another_prediction_is_refused(planted: tuple) -> None:
    _, runs, pred, cal = planted
    with pytest.raises(ValueError, match=r"calibration.json belongs to prediction 'sha'"):
        analyse_ladder(pred, "other", cal, runs)


def test_the_parse_rate_is_pooled_per_rung_and_budget(planted: tuple) -> None:
    design, runs, pred, cal = planted
    parse = analyse_ladder(pred, "sha", cal, runs)["pooled_parse_rate"]
    assert parse["lambdas"] == list(design.lambdas)
    want = [1.0 if x < 1.3 else 0.0 for x in design.lambdas]
    assert all(parse["by_budget"][str(t)] == want for t in BUDGETS)


def test_evaluations_without_a_mechanism_record_are_left_out(planted: tuple) -> None:
    _, runs, pred, cal = planted
    assert analyse_ladder(pred, "sha", cal, runs)["mechanism"]["rows"] == []
