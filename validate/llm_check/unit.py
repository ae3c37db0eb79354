"""One unit of the check - a configuration and a warm-start seed - end to end.

Order of work, enforced by ``run_unit`` and recorded in the report:

1. build the teacher and the SFT warm start (``warmstart.train_warm_start``), or take the
   loaded checkpoints;
2. measure p (teacher valid mass) and b (warm-start valid mass) at every viable structural
   position of warm-start rollouts with ``cliff.calibrate`` on the task's contract
   (``measurement.measure``); solve each position type; the predicted windows are the
   two-class ``[lambda*, lambda_collapse]`` at the binding type and the by-token
   ``[q05, median]``;
3. design the main grid around the windows (``grid.design_grid``) and evaluate the
   warm-start gate (``gate.check_gate``; one retry with a longer SFT of teacher and warm
   start);
4. plan the tests (``plan.make_plan``: the grid at the second clip c', the no-clip control,
   the shift predictions, the direction, the planned runs) and write ``prediction.json``
   (``sealing.write_prediction``: sealed, flushed to disk, its sha256 printed) -
   measurement, gate, plan;
5. only when the gate passed: stamp ``first_sweep_run_started_at`` and run every planned OPD
   run (``jobs.run_jobs``: parallel workers, one torch thread each), each from a fresh copy
   of the warm start, evaluated on the same prompts; the main runs at T and 2T steps; the
   finished runs are saved in ``sweep.json`` (atomically, after each), from which
   ``--resume`` continues an interrupted sweep (:mod:`validate.llm_check.resume`);
6. the three pre-registered tests, the control, the direction and the attribution
   (``analysis.analyse``); ``report.json`` is checked against the verified prediction
   (``sealing.check_report``) and written with ``cliff_llm.png`` and ``mechanism.png``.

``--gate-only`` stops after step 3 and writes ``gate.json``.  A failed gate stops after step 4
(every verdict VOID), except under ``--quick``, whose budgets fail the gate by design: it goes
on through steps 5 and 6 past the failed gate, marked VOID in the prediction and the report
(:data:`QUICK_CONTINUES`), so that the whole path runs (:func:`plan_inputs`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

import cliff
from cliff.internal import same_tokenizer, save_figure, write_json
from validate.llm_check.analysis import analyse
from validate.llm_check.config import Config
from validate.llm_check.figure import figure, mechanism_figure
from validate.llm_check.gate import GateResult, GateThresholds, WarmStartStats, check_gate
from validate.llm_check.grid import GridDesign, design_grid, finite_windows
from validate.llm_check.jobs import Context, run_jobs
from validate.llm_check.measurement import Measurement, measure
from validate.llm_check.models import load_checkpoint, on_device
from validate.llm_check.opd import Models
from validate.llm_check.plan import make_plan, planned_runs
from validate.llm_check.prompts import prompt_sets
from validate.llm_check.resume import (
    Finished,
    check_same_prediction,
    finished_runs,
    sealed_prediction,
)
from validate.llm_check.sealing import check_report, utc_now, verify_prediction, write_prediction
from validate.llm_check.tokenizer import TokenInfo, build_tokenizer, token_info
from validate.llm_check.warmstart import FORMAT_TYPE, WarmStart, train_warm_start

__all__ = ["SharedInputs", "shared_inputs", "thresholds_for", "GateAttempt", "gate_for",
           "QUICK_CONTINUES", "QUICK_STAND_IN", "plan_inputs", "code_version", "run_unit"]


# --- what the units share ----------------------------------------------------------------------
@dataclass(frozen=True)
class SharedInputs:
    """What every unit of one command shares."""

    tokenizer: PreTrainedTokenizerBase
    info: TokenInfo
    configurations: tuple[str, ...]
    """the configurations to run, each with every warm-start seed"""
    checkpoints: WarmStart | None = None
    """the loaded ``--teacher`` / ``--student`` (None: each unit trains its own)"""


def shared_inputs(cfg: Config) -> SharedInputs:
    """The synthetic task's tokenizer, or the checkpoints of ``cfg.student`` and
    ``cfg.teacher`` (loaded offline, on ``cfg.device``) with theirs, which must agree; with
    checkpoints one configuration runs (``both`` counts as ``sharpening``)."""
    if cfg.student or cfg.teacher:
        if not (cfg.student and cfg.teacher):
            raise ValueError("--student and --teacher must be given together")
        student, tokenizer = load_checkpoint(cfg.student, "--student")
        teacher, t_tok = load_checkpoint(cfg.teacher, "--teacher")
        same_tokenizer(tokenizer, t_tok, ("--student", "--teacher"))
        loaded = WarmStart(on_device(teacher, cfg.device), on_device(student, cfg.device),
                           {"student": cfg.student, "teacher": cfg.teacher})
        return SharedInputs(tokenizer, token_info(tokenizer, student.config.vocab_size),
                            ("sharpening" if cfg.config == "both" else cfg.config,), loaded)
    tokenizer = build_tokenizer(cfg.k, cfg.levels)
    return SharedInputs(tokenizer, token_info(tokenizer, len(tokenizer)),
                        ("softening", "sharpening") if cfg.config == "both" else (cfg.config,))


# --- the gate ----------------------------------------------------------------------------------
def thresholds_for(cfg: Config) -> GateThresholds:
    """The gate's pre-registered thresholds: the code defaults with this run's evaluation
    rollouts and retry budget, and the format token as the binding type.  ``--quick`` relaxes
    every threshold but the regime (its verdicts are VOID by the tests' design minimums)."""
    th = GateThresholds(eval_rollouts=cfg.eval_rollouts, binding_type=FORMAT_TYPE,
                        retry_student_steps=cfg.retry_student_steps)
    if cfg.quick:
        th = replace(th, teacher_parse_min=0.0, halving_z=1.0, binding_type=None,
                     min_binding_contexts=1, min_gap_steps=0.0, sharpening_p_min=0.0,
                     sharpening_b_low=0.0, sharpening_b_high=1.0, softening_gap_min=0.0)
    return th


@dataclass(frozen=True)
class GateAttempt:
    """One attempt of the gate, as written into the prediction and ``gate.json``."""

    configuration: str
    warm_seed: int
    attempt: int
    """1 = first, 2 = after the retry's longer SFT"""
    gate: GateResult | None
    """None when the measurement could not even be gated (:attr:`notes` say why)"""
    notes: list[str]
    """windows left out of the grid, and why the gate could not be evaluated"""
    measurement: Measurement

    @property
    def passed(self) -> bool:
        return bool(self.gate is not None and self.gate.passed)

    @property
    def message(self) -> str:
        return self.gate.message if self.gate else "VOID: " + "; ".join(self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {"configuration": self.configuration, "warm_seed": self.warm_seed,
                "attempt": self.attempt, "passed": self.passed, "message": self.message,
                "criteria": self.gate.to_dict()["criteria"] if self.gate else [],
                "notes": self.notes, "measurement": self.measurement.to_dict()}


def gate_for(cfg: Config, name: str, meas: Measurement, attempt: int
             ) -> tuple[GateResult | None, GridDesign | None, list[str]]:
    """Design the main grid and evaluate the gate; ``(None, ...)`` with the reasons when the
    measurement cannot even be gated (nothing binds, no window to place a grid around)."""
    wins, why = finite_windows(meas.windows, cfg.grid_upper)
    if not wins:
        return None, None, why or ["no predicted window"]
    try:
        grid = design_grid(wins, cfg.n_grid, upper=cfg.grid_upper, min_step=cfg.grid_min_step,
                           beyond=cfg.n_beyond)
    except ValueError as err:
        return None, None, [*why, f"grid: {err}"]
    try:
        stats = WarmStartStats.from_position_table(
            name, meas.position_types, teacher_parse_rate=meas.teacher["parse_rate"],
            warm_start_parse_rate=meas.warm_start["parse_rate"], format_type=FORMAT_TYPE)
    except ValueError as err:
        return None, grid, [*why, f"gate: {err}"]
    return check_gate(stats, thresholds_for(cfg), grid.step, attempt=attempt), grid, why


QUICK_CONTINUES = ("the gate failed and is VOID; --quick runs the sweep, the mechanism and the "
                   "analysis past it to check the whole path, and every verdict stays VOID")
"""What the prediction and the report say when ``--quick`` goes on past a failed gate."""

QUICK_STAND_IN: dict[str, Any] = {"binding_type": FORMAT_TYPE, "p": 0.999, "b": 0.5,
                                  "windows": {"two_class": [1.2, 1.21]}}
"""The stand-in a quick run plans on when its measurement names no binding type or no grid
can be placed around its windows (written into the prediction when used)."""


def plan_inputs(cfg: Config, meas: Measurement, grid: GridDesign | None
                ) -> tuple[Measurement, GridDesign, dict[str, Any] | None]:
    """The measurement and main grid a quick run past a failed gate plans on: its own when
    they make a plan, else :data:`QUICK_STAND_IN` (returned third, None when not used)."""
    if grid is not None and meas.binding_type is not None and meas.p is not None \
            and meas.b is not None and finite_windows(meas.windows, cfg.grid_upper)[0]:
        return meas, grid, None
    s = QUICK_STAND_IN
    wins = {k: (float(v[0]), float(v[1])) for k, v in s["windows"].items()}
    stand_in = replace(meas, binding_type=str(s["binding_type"]), p=float(s["p"]),
                       b=float(s["b"]), windows={k: list(v) for k, v in wins.items()})
    return stand_in, design_grid(wins, cfg.n_grid, upper=cfg.grid_upper,
                                 min_step=cfg.grid_min_step, beyond=cfg.n_beyond), s


# --- one unit ----------------------------------------------------------------------------------
def code_version() -> dict[str, Any]:
    """The code a prediction was made with: cliff's version and, in a git checkout, the commit
    and whether the working tree differed from it (``None`` outside one)."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=Path(__file__).parent, check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"cliff": cliff.__version__, "commit": commit,
            "dirty": None if status is None else bool(status)}


def run_unit(cfg: Config, name: str, warm_seed: int, out: Path, shared: SharedInputs
             ) -> dict[str, Any]:
    """Steps 1-6 of the module docstring for configuration ``name`` and warm-start seed
    ``warm_seed``, written into the folder ``out``; returns the report (``gate.json``'s
    record with ``cfg.gate_only``)."""
    t0 = time.time()
    tag = f"[{name} w{warm_seed}]"
    sealed = None  # with --resume: the folder's prediction, checked before any training
    if cfg.resume:
        sealed = sealed_prediction(out, cfg, name, warm_seed, code_version())
        if sealed is not None:
            cfg = replace(cfg, out=sealed["payload"]["config"]["out"])  # as it was sealed
            if (out / "report.json").exists():
                done = json.loads((out / "report.json").read_text(encoding="utf-8"))
                if done.get("prediction_sha256") == sealed["sha256"]:
                    print(f"{tag} finished already: {out / 'report.json'} kept", file=sys.stderr)
                    return dict(done)
    elif (out / "prediction.json").exists() and not cfg.gate_only:
        raise FileExistsError(f"--out {str(out)!r} holds a sealed prediction already; "
                              f"pre-registration writes it once (--resume {out} continues its "
                              f"sweep)")
    tokenizer, info = shared.tokenizer, shared.info
    k, train, est, ev = prompt_sets(cfg, warm_seed)
    # 1-3: the warm start, its measurement, the grid and the gate (one retry)
    warm = shared.checkpoints or train_warm_start(cfg, name, warm_seed, tokenizer, info,
                                                  cfg.student_steps, cfg.teacher_steps)
    th = thresholds_for(cfg)
    attempts: list[GateAttempt] = []
    for attempt in range(1, th.max_attempts + 1):
        reference = warm.student
        for prm in reference.parameters():
            prm.requires_grad_(False)
        models = Models(warm.teacher, reference, reference)
        meas = measure(models, tokenizer, info, cfg, k, est, ev, cfg.seed + warm_seed)
        gate, grid, why = gate_for(cfg, name, meas, attempt)
        attempts.append(GateAttempt(name, warm_seed, attempt, gate, why, meas))
        print(f"{tag} gate attempt {attempt}: {attempts[-1].message}", file=sys.stderr)
        retry = gate.retry_allowed if gate is not None else attempt < th.max_attempts
        if attempts[-1].passed or not retry or shared.checkpoints is not None:
            break
        warm = train_warm_start(cfg, name, warm_seed, tokenizer, info, cfg.retry_student_steps,
                                cfg.retry_teacher_steps)  # the retry: both models, longer
    passed = attempts[-1].passed
    continues = cfg.quick and not passed  # the quick run goes on past its failed gate (VOID)
    if cfg.gate_only:
        rec = {"configuration": name, "warm_seed": warm_seed, "passed": passed,
               "thresholds": th.to_dict(), "attempts": [a.to_dict() for a in attempts],
               "wall_time_s": time.time() - t0}
        write_json(out / "gate.json", rec)
        return rec
    # 4: the plan, sealed before any run
    seeds = [cfg.seed + s for s in range(cfg.n_seeds)]
    gate_record: dict[str, Any] = {"passed": passed, "message": attempts[-1].message}
    plan = make_plan(cfg, meas, grid) if passed and grid is not None else None
    if continues:
        planned_on, main_grid, stand_in = plan_inputs(cfg, meas, grid)
        plan = make_plan(cfg, planned_on, main_grid)
        gate_record |= {"quick_continued": True, "note": QUICK_CONTINUES,
                        **({"quick_stand_in": stand_in} if stand_in else {})}
        print(f"{tag} {QUICK_CONTINUES}", file=sys.stderr)
    jobs = planned_runs(cfg, plan, seeds) if plan is not None else []
    payload = {"config": cfg.recorded(), "configuration": name, "warm_seed": warm_seed,
               "recipe": warm.recipe, "gate_thresholds": th.to_dict(),
               "gate_attempts": [a.to_dict() for a in attempts],
               "gate": gate_record,
               "measurement": meas.to_dict(), "seeds": seeds,
               **(plan.to_dict() if plan is not None else {}),
               "planned_runs": [j.to_dict() for j in jobs], "code": code_version()}
    if sealed is not None:
        check_same_prediction(out, sealed, payload)  # the prediction is the folder's
        record = sealed
        print(f"{tag} resuming the sweep of prediction.json sha256 {record['sha256']}",
              file=sys.stderr)
    else:
        record = write_prediction(out / "prediction.json", payload)
        print(f"{tag} prediction.json sha256 {record['sha256']}", file=sys.stderr)
    sha = record["sha256"]
    # 5: the sweep, each finished run saved (atomically) as it finishes
    started = None
    runs: list[dict[str, Any]] = []
    if passed or continues:
        before = (finished_runs(out, sha, [j.to_dict() for j in jobs]) if sealed is not None
                  else Finished(None, []))
        started = before.started or utc_now()

        def save(done: list[dict[str, Any]]) -> None:
            write_json(out / "sweep.json", {"prediction_sha256": sha,
                                            "first_sweep_run_started_at": started,
                                            "runs": done})

        save(before.runs)  # the stamp, before the first run
        ctx = Context(cfg, warm.teacher, warm.student, tokenizer, info, k, train, ev)
        runs = run_jobs(ctx, jobs, f"{name} w{warm_seed} OPD runs", save, before.runs)
    # 6: the report, against the sealed prediction
    report = analyse(cfg, record["payload"], sha, runs, started, passed)
    report["wall_time_s"] = time.time() - t0
    check_report(report, verify_prediction(out / "prediction.json", expected_sha256=sha))
    write_json(out / "report.json", report)
    save_figure(figure(report), out / "cliff_llm.png", dpi=120)
    save_figure(mechanism_figure(report), out / "mechanism.png", dpi=120)
    for test, entry in report["tests"].items():
        print(f"{tag} {test}: {entry['verdict']}", file=sys.stderr)
    return report
