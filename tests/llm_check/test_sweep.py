"""The sweep on tiny models: the planned runs in spawned worker processes (validate.llm_check.
jobs) analysed into a checked report (validate.llm_check.analysis), and runs that do not
depend on the worker count, nor does the warm start trained in two processes.  The worker
processes unpickle the Config and the models."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from validate.llm_check.analysis import analyse
from validate.llm_check.config import Config
from validate.llm_check.figure import figure, mechanism_figure
from validate.llm_check.grid import design_grid
from validate.llm_check.jobs import Context, run_jobs
from validate.llm_check.measurement import Measurement
from validate.llm_check.models import TinyQwen3, new_model, train_sft
from validate.llm_check.plan import make_plan, planned_runs
from validate.llm_check.sealing import check_report, utc_now, write_prediction
from validate.llm_check.task import make_prompts
from validate.llm_check.tokenizer import build_tokenizer, token_info
from validate.llm_check.warmstart import Recipe, sft_batches, train_warm_start


def _tiny_unit(tmp_path: Path, workers: int) -> tuple[Any, ...]:
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    models = []
    for seed, noise in ((2, 0.0), (1, 0.5)):
        m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), seed)
        train_sft(m, sft_batches(tok, 8, 3, 16, Recipe(0.0, noise)), 3, 3e-3, seed, "sft")
        models.append(m.eval())
    cfg = Config(out=str(tmp_path), opd_steps=1, rollouts=4, eval_rollouts=8, n_seeds=1,
                 workers=workers, n_boot=200, mass_every=1, schedule=True)
    meas = Measurement(position_types=[], by_token_types=[], position_types_c_new=[],
                       binding_type="close", by_token_binding_type="close", p=0.999, b=0.5,
                       windows={"two_class": [1.2, 1.21], "by_token": [1.1, 1.15]},
                       two_class_c_new=[1.3, 1.31], teacher={}, warm_start={})
    grid = design_grid({k: (v[0], v[1]) for k, v in meas.windows.items()}, cfg.n_grid)
    plan = make_plan(cfg, meas, grid)
    return cfg, tok, info, models, meas, plan.to_dict(), planned_runs(cfg, plan, [0])


def test_planned_runs_in_worker_processes_give_a_checked_report(tmp_path: Path) -> None:
    # The sweep path of a passed gate, on tiny models: the planned runs (main at T and 2T,
    # c', control, scheduled) in two spawned workers, analysed into a report that passes
    # check_report; the design minimums are not met, so the tests are VOID with reasons.
    cfg, tok, info, (teacher, student), meas, pred, jobs = _tiny_unit(tmp_path, workers=2)
    kinds = {j.kind for j in jobs}
    assert kinds == {"main", "clip", "control", "schedule"}
    assert all(j.steps == 2 and j.eval_at == (1,) for j in jobs if j.kind == "main")
    payload = {"config": dataclasses.asdict(cfg), "configuration": "sharpening", "warm_seed": 0,
               "gate": {"passed": True, "message": "gate passed"}, "gate_attempts": [{}],
               "measurement": meas.to_dict(), "seeds": [0], **pred}
    record = write_prediction(tmp_path / "prediction.json", payload)
    started = utc_now()
    prompts = make_prompts(32, 8, 3, np.random.default_rng(0))
    ctx = Context(cfg, teacher, student, tok, info, 8, prompts, prompts[:8])
    runs = run_jobs(ctx, jobs, "tiny")
    assert [r["job"] for r in runs] == [j.to_dict() for j in jobs]  # the order of the plan
    main_run = next(r for r in runs if r["job"]["kind"] == "main")
    assert set(main_run["evals"]) == {1, 2} and len(main_run["evals"][1]["parsed"]) == 8
    assert all("valid_mass" in h for h in main_run["history"])
    report = analyse(cfg, record["payload"], record["sha256"], runs, started, True)
    check_report(report, record)
    assert len(figure(report).axes) == 2
    assert {v["verdict"] for v in report["tests"].values()} == {"VOID"}
    assert report["tests"]["cliff_interval"]["reasons"]
    assert {"cliff_disappeared", "onset"} <= set(report["control"])
    assert "mass_change" in report["attribution"]
    # the mechanism of every run kind at every evaluated step, pooled over the seeds
    rows = report["mechanism"]["rows"]
    assert {(r["kind"], r["step"]) for r in rows} == {("main", 1), ("main", 2), ("clip", 1),
                                                      ("control", 1), ("schedule", 1)}
    for r in rows:
        assert r["failures"]["answers"] == 8 and r["clip_share"]["tokens"] > 0
        assert set(r["masses"]) and all("tail_edge" in m for m in r["masses"].values())
        assert r["id_positions"]["n"] == sum(e["n"] for e in r["id_positions"]["by_item_index"])
    assert len(mechanism_figure(report).axes) == 4
    sched = report["schedule"]
    assert sched["passes"] == (sched["mean_parse_rate"] >= sched["best_sub_threshold_parse_rate"]
                               - sched["margin"] and sched["mean_lambda"]
                               >= 1.0 + sched["min_gain"])


def test_runs_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    # A job's result depends only on the context and the job: in-process and in a spawned
    # worker it parses the same rollouts.
    cfg, tok, info, (teacher, student), _, _, jobs = _tiny_unit(tmp_path, workers=1)
    prompts = make_prompts(32, 8, 3, np.random.default_rng(0))
    pick = [j for j in jobs if j.kind == "main"][:2]
    one = run_jobs(Context(cfg, teacher, student, tok, info, 8, prompts, prompts[:8]), pick, "a")
    cfg2 = dataclasses.replace(cfg, workers=2)
    two = run_jobs(Context(cfg2, teacher, student, tok, info, 8, prompts, prompts[:8]), pick, "b")
    for x, y in zip(one, two, strict=True):
        assert x["evals"][2]["parsed"] == y["evals"][2]["parsed"]


def test_the_warm_start_does_not_depend_on_the_worker_count() -> None:
    # With two workers the teacher and the warm start train side by side in spawned
    # processes; their weights must be those of training one after the other here.
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    made = [train_warm_start(Config(workers=w, sft_batch=8), "sharpening", 0, tok, info, 3, 4)
            for w in (1, 2)]
    for role in ("teacher", "student"):
        one, two = (getattr(m, role).state_dict() for m in made)
        assert one.keys() == two.keys()
        assert all(torch.equal(one[k], two[k]) for k in one), role
    assert made[0].recipe == made[1].recipe
    # and the two roles are different models (a swapped result would fail above, not here)
    assert not torch.equal(made[0].teacher.lm_head.weight, made[0].student.lm_head.weight)
