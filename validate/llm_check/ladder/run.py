"""One ladder unit - a configuration and a warm-start seed - end to end.

Order of work, each step's output written before the next starts:

1. the teacher and warm start of the configuration (:mod:`.warm`: loaded from the checkpoint
   folder when saved there, else trained and saved), their sha256 recorded;
2. p and b at every structural position (``measurement.measure``), each type's predictions
   (:func:`type_predictions`), the rungs (:mod:`.design`) and the gate (the regime's gate and
   the configuration's bands, :mod:`.configurations`);
3. ``prediction.json`` sealed (sha256, flushed) - the design, the gate, every predicted
   window and the nulls - before any OPD step; a failed gate stops here (every verdict VOID);
4. the lambda = 1 runs, then ``calibration.json`` sealed: the clock fitted on them alone
   (:mod:`.clock`), the absolute predictions at every rung on that clock, the power of the
   ladder test at the measured noise (:mod:`.power`) and the configuration's parse-rate floor
   at lambda = 1 - before any other run;
5. the other rungs and the no-clip control, each run saved (atomically) in ``sweep.json`` as
   it finishes, so ``--resume`` continues;
6. ``report.json`` (:mod:`.analysis`) and ``ladder.png``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cliff.internal import save_figure, write_json
from validate.llm_check.config import Config
from validate.llm_check.gate import Criterion, WarmStartStats, check_gate
from validate.llm_check.grid import finite_windows
from validate.llm_check.jobs import Context, run_jobs
from validate.llm_check.ladder.analysis import analyse_ladder, calibrate_clock
from validate.llm_check.ladder.configurations import (
    Configuration,
    configuration,
    extra_criteria,
)
from validate.llm_check.ladder.design import LadderDesign, design_ladder
from validate.llm_check.ladder.figure import ladder_figure
from validate.llm_check.ladder.warm import ladder_warm_start
from validate.llm_check.measurement import Measurement, measure
from validate.llm_check.opd import Models
from validate.llm_check.prompts import prompt_sets
from validate.llm_check.resume import (
    ResumeRefused,
    check_same_prediction,
    finished_runs,
    sealed_prediction,
)
from validate.llm_check.sealing import read_record, utc_now, write_prediction
from validate.llm_check.unit import SharedInputs, code_version
from validate.llm_check.warmstart import FORMAT_TYPE

__all__ = ["type_predictions", "ladder_gate", "run_ladder_unit"]


def type_predictions(meas: Measurement, c: float) -> list[dict[str, Any]]:
    """Per position type: its regime, the class that loses mass under extrapolation (the tail
    when sharpening, the valid mass when softening), the two-class window and the by-token
    window of that type, and the clip-safe edge of the losing class."""
    tokens = {r["type"]: r for r in meas.by_token_types}
    rows = []
    for r in meas.position_types:
        p, b = float(r["mean_p"]), float(r["mean_b"])
        losing = "tail" if p > b else "valid"
        tok = tokens.get(r["type"])
        rows.append({"type": r["type"], "n": r["n"], "p": p, "b": b, "regime": r["regime"],
                     "losing": losing, "two_class": [r["lambda_star"], r["lambda_collapse"]],
                     "by_token": [tok["quantile_05"], tok["median"]] if tok else None,
                     "edge": (1.0 - p) / c if losing == "tail" else p / c})
    return rows


def ladder_gate(conf: Configuration, meas: Measurement, design_step: float,
                eval_rollouts: int) -> tuple[bool, list[Criterion], str]:
    """The regime's gate (:func:`validate.llm_check.gate.check_gate`, one attempt) with the
    configuration's bands; returns (passed, every criterion, message)."""
    stats = WarmStartStats.from_position_table(
        conf.regime, meas.position_types, teacher_parse_rate=meas.teacher["parse_rate"],
        warm_start_parse_rate=meas.warm_start["parse_rate"], format_type=FORMAT_TYPE)
    gate = check_gate(stats, conf.thresholds(eval_rollouts), design_step)
    ids = next((r for r in meas.position_types if r["type"] == "id"), None)
    rows = [*gate.criteria, *extra_criteria(conf, stats.format_p,
                                            float(ids["mean_b"]) if ids else math.nan)]
    failed = [c.describe() for c in rows if not c.passed]
    passed = not failed
    msg = "gate passed" if passed else "VOID: warm-start gate failed: " + "; ".join(failed)
    return passed, rows, msg


def _seal(path: Path, payload: dict[str, Any], resume: bool) -> dict[str, Any]:
    """Seal ``payload`` at ``path``, or with ``resume`` check that the sealed one there is
    the same prediction."""
    if resume and path.exists():
        record = read_record(path)
        check_same_prediction(path.parent, record, payload)
        return record
    return write_prediction(path, payload)


def _gate_void(cfg: Config, pred: dict[str, Any], sha: str, t0: float) -> dict[str, Any]:
    return {"prediction_sha256": sha, "configuration": pred["payload"]["configuration"],
            "warm_seed": pred["payload"]["warm_seed"], "gate": pred["payload"]["gate"],
            "verdict": "VOID", "wall_time_s": time.time() - t0}


def run_ladder_unit(cfg: Config, name: str, warm_seed: int, out: Path, shared: SharedInputs
                    ) -> dict[str, Any]:
    """Steps 1-6 of the module docstring for configuration ``name`` at warm-start seed
    ``warm_seed``, in the folder ``out``; returns the report (the gate's record with
    ``--gate-only``)."""
    t0, tag = time.time(), f"[ladder {name} w{warm_seed}]"
    conf = configuration(name)
    if cfg.quick:  # the whole path on tiny budgets, every verdict VOID by design
        conf = replace(conf, teacher_steps=40, student_steps=30)
    sealed = sealed_prediction(out, cfg, name, warm_seed, code_version()) if cfg.resume else None
    if sealed is not None:  # --resume leaves --out at its default: rebuild it as it was sealed
        cfg = replace(cfg, out=sealed["payload"]["config"]["out"])
    if sealed is None and (out / "prediction.json").exists() and not cfg.gate_only:
        raise FileExistsError(f"--out {str(out)!r} holds a sealed prediction already (--resume "
                              f"{out} continues it)")
    tok, info = shared.tokenizer, shared.info
    k, train, est, ev = prompt_sets(cfg, warm_seed)
    folder = out / "checkpoints" if cfg.quick else Path(cfg.ladder_checkpoints)
    warm = ladder_warm_start(cfg, conf, warm_seed, tok, info, folder)
    for prm in warm.student.parameters():
        prm.requires_grad_(False)
    meas = measure(Models(warm.teacher, warm.student, warm.student), tok, info, cfg, k, est, ev,
                   cfg.seed + warm_seed)
    wins, why = finite_windows(meas.windows, cfg.grid_upper)
    design = design_ladder(wins or {"stand_in": (1.0, 1.2)}, cfg.ladder_rungs,
                           cfg.ladder_budgets, [cfg.seed + s for s in range(cfg.n_seeds)],
                           c=cfg.c, c_low=cfg.c_low_value, control_c=cfg.control_c,
                           control_rungs=cfg.ladder_control_rungs, lr=cfg.ladder_lr,
                           delta=cfg.ladder_delta)
    try:
        passed, rows, msg = ladder_gate(conf, meas, design.step, cfg.eval_rollouts)
    except ValueError as err:  # nothing binds: the gate cannot even be evaluated
        passed, rows, msg = False, [], f"VOID: {err}"
    if not wins:
        passed, msg = False, f"VOID: no finite predicted window ({'; '.join(why)})"
    print(f"{tag} {msg}", file=sys.stderr)
    gate = {"passed": passed, "message": msg, "criteria": [c.__dict__ for c in rows]}
    if cfg.gate_only:
        rec = {"configuration": name, "warm_seed": warm_seed, "gate": gate,
               "checkpoints": warm.recipe, "measurement": meas.to_dict(),
               "wall_time_s": time.time() - t0}
        write_json(out / "gate.json", rec)
        return rec
    go = passed or cfg.quick
    payload = {"config": cfg.recorded(), "configuration": name, "warm_seed": warm_seed,
               "ladder_configuration": conf.to_dict(), "checkpoints": warm.recipe,
               "gate": {**gate, **({"quick_continued": True} if cfg.quick and not passed
                                   else {})},
               "measurement": meas.to_dict(), "types": type_predictions(meas, cfg.c),
               "design": design.to_dict(),
               "planned_runs": [j.to_dict() for st in ("calibration", "sweep")
                                for j in design.jobs(st)] if go else [],
               "code": code_version()}
    pred = _seal(out / "prediction.json", payload, sealed is not None)
    sha = pred["sha256"]
    print(f"{tag} prediction.json sha256 {sha}", file=sys.stderr)
    if not go:
        report = _gate_void(cfg, pred, sha, t0)
        write_json(out / "report.json", report)
        return report
    opd_cfg = replace(cfg, optimizer="sgd", opd_lr=design.lr)
    ctx = Context(opd_cfg, warm.teacher, warm.student, tok, info, k, train, ev)
    runs = _sweep(ctx, out, sha, design, tag, pred, cfg.resume is not None)
    report = analyse_ladder(pred["payload"], sha, read_record(out / "calibration.json"), runs)
    report["wall_time_s"] = time.time() - t0
    write_json(out / "report.json", report)
    save_figure(ladder_figure(report), out / "ladder.png", dpi=120)
    for test, entry in report["tests"].items():
        print(f"{tag} {test}: {entry['verdict']}", file=sys.stderr)
    return report


def _sweep(ctx: Context, out: Path, sha: str, design: LadderDesign, tag: str,
           pred: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """Steps 4 and 5: the lambda = 1 runs, the sealed calibration, the other runs."""
    planned = [j.to_dict() for st in ("calibration", "sweep") for j in design.jobs(st)]
    before = finished_runs(out, sha, planned) if resume else None
    started = (before.started if before else None) or utc_now()
    done = list(before.runs) if before else []

    def save(runs: list[dict[str, Any]]) -> None:
        write_json(out / "sweep.json", {"prediction_sha256": sha,
                                        "first_sweep_run_started_at": started, "runs": runs})

    save(done)
    first = run_jobs(ctx, design.jobs("calibration"), f"{tag} lambda = 1 runs", save, done)
    cal = calibrate_clock(pred["payload"], sha, first)
    if resume and (out / "calibration.json").exists():
        record = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
        try:
            check_same_prediction(out, record, cal)
        except ResumeRefused as err:
            raise ResumeRefused(f"calibration.json: {err}") from err
    else:
        record = write_prediction(out / "calibration.json", cal)
    print(f"{tag} calibration.json sha256 {record['sha256']}", file=sys.stderr)
    if not record["payload"]["parse_at_one"]["passed"]:
        print(f"{tag} VOID: {record['payload']['parse_at_one']['message']}", file=sys.stderr)
        if not ctx.cfg.quick:
            return first
    rest = [r for r in done if r["job"]["kind"] != "ladder" or r["job"]["lam"] != 1.0]

    def save_all(runs: list[dict[str, Any]]) -> None:
        save([*first, *runs])

    return [*first, *run_jobs(ctx, design.jobs("sweep"), f"{tag} ladder runs", save_all, rest)]
