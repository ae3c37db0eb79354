"""``python -m validate.llm_check``: the extrapolation cliff on a real Qwen3-architecture model.

Order of work, enforced by the code and recorded in the report:

1. set up each configuration (train teacher and SFT warm-start student, or load checkpoints);
2. measure p (teacher valid mass) and b (warm-start valid mass) at every viable structural
   position of warm-start rollouts with ``cliff.calibrate`` on the task's contract grammar
   (``task.contract``), solve each position type, pick the binding type (smallest lambda*),
   and write ``prediction.json`` (timestamp + sha256 of the canonical JSON) atomically - the
   predicted window is ``[lambda*, lambda_collapse]`` of the binding type, and the lambda
   grid is fixed here too;
3. only then sweep lambda x seeds with clipped G-OPD, each run from a fresh copy of the warm
   start;
4. report the observed onset against the locked window (``report.json``, ``cliff_llm.png``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cliff._io import save_figure, write_json
from validate.llm_check.opd import (
    Config,
    Models,
    evaluate,
    measure_positions,
    position_table,
    run_opd,
    scheduler_lambda_fn,
    token_table,
)
from validate.llm_check.report import compare, figure, onset
from validate.llm_check.task import Prompt, make_prompts


def canonical_sha256(obj: Any) -> str:
    """sha256 of ``json.dumps(obj, sort_keys=True, separators=(",", ":"))``."""
    from cliff._io import jsonable

    text = json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def now() -> dict[str, Any]:
    return {"iso": datetime.now(UTC).isoformat(), "unix_ns": time.time_ns()}


# ---------------------------------------------------------------------------------------------
# setup


def load_data(path: str) -> list[Prompt]:
    """Real prompts from JSONL: ``{"prompt": str, "relevance": [K numbers]}`` per line."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--data: no such file: {str(file)!r}")
    prompts = []
    for n, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        obj = json.loads(line)
        if not isinstance(obj.get("prompt"), str) or not isinstance(obj.get("relevance"), list):
            raise ValueError(f"--data line {n}: needs 'prompt' (str) and 'relevance' (list)")
        prompts.append(Prompt(obj["prompt"], tuple(float(v) for v in obj["relevance"])))
    ks = {len(p.relevance) for p in prompts}
    if len(ks) != 1 or not 1 <= next(iter(ks)) <= 10:
        raise ValueError(f"--data: every line needs the same K in [1, 10] relevances, got {ks}")
    return prompts


def on_device(model: torch.nn.Module, device: str) -> Any:
    """``model`` moved to ``device``, in eval mode."""
    return torch.nn.Module.to(model, torch.device(device)).eval()


Setup = tuple[dict[str, dict[str, Any]], Any, Any, int, list[Prompt], list[Prompt], list[Prompt]]


def setup(cfg: Config) -> Setup:
    """Models per configuration, tokenizer, token info, K and the three prompt sets."""
    from validate.llm_check.models import TinyQwen3, load_checkpoint, new_model, train_sft
    from validate.llm_check.tokenizer import build_tokenizer, token_info
    from validate.llm_check.warmstart import recipes, sft_batches

    rng = np.random.default_rng(cfg.seed)
    if cfg.student or cfg.teacher:
        if not (cfg.student and cfg.teacher):
            raise ValueError("--student and --teacher must be given together")
        student, tokenizer = load_checkpoint(cfg.student, "--student")
        teacher, t_tok = load_checkpoint(cfg.teacher, "--teacher")
        if t_tok.get_vocab() != tokenizer.get_vocab():
            raise ValueError("--teacher: its tokenizer's vocabulary differs from --student's")
        info = token_info(tokenizer, student.config.vocab_size)
        configs = {"checkpoints": {"teacher": on_device(teacher, cfg.device),
                                   "student": on_device(student, cfg.device),
                                   "recipe": {"student": cfg.student, "teacher": cfg.teacher}}}
    else:
        tokenizer = build_tokenizer(cfg.k, cfg.levels)
        info = token_info(tokenizer, len(tokenizer))
        names = ["softening", "sharpening"] if cfg.config == "both" else [cfg.config]
        configs = {}
        for j, name in enumerate(names):
            t_rec, s_rec = recipes(name, cfg.teacher_format_noise, cfg.student_format_noise,
                                   cfg.student_rank_noise)
            models = {}
            for role, rec, steps, off in (("teacher", t_rec, cfg.teacher_steps, 0),
                                          ("student", s_rec, cfg.student_steps, 1)):
                seed = cfg.seed * 100 + 10 * j + off
                m = new_model(len(tokenizer), info.pad_id, info.eos_id, TinyQwen3(), seed)
                train_sft(m, sft_batches(tokenizer, cfg.k, cfg.levels, cfg.sft_batch, rec), steps,
                          cfg.sft_lr, seed, f"{name} {role} SFT")
                models[role] = on_device(m, cfg.device)
            configs[name] = {**models, "recipe": {"teacher": asdict(t_rec),
                                                  "student": asdict(s_rec)}}
    if cfg.data:
        prompts = load_data(cfg.data)
        k = len(prompts[0].relevance)
        order = rng.permutation(len(prompts))
        third = max(1, len(prompts) // 3)
        est = [prompts[i] for i in order[:third]]
        ev = [prompts[i] for i in order[third : 2 * third]] or est
        train = [prompts[i] for i in order[2 * third :]] or est
    else:
        k = cfg.k
        train = make_prompts(4096, k, cfg.levels, rng)
        est = make_prompts(cfg.estimate_rollouts, k, cfg.levels, rng)
        ev = make_prompts(cfg.eval_rollouts, k, cfg.levels, rng)
    return configs, tokenizer, info, k, train, est, ev


# ---------------------------------------------------------------------------------------------
# pre-registration


def predict(name: str, models: Models, tokenizer: Any, info: Any, cfg: Config, k: int,
            est_prompts: list[Prompt], eval_prompts: list[Prompt]) -> dict[str, Any]:
    """Measure the warm start and teacher; lock the window and the lambda grid."""
    import cliff

    cal = measure_positions(models, est_prompts, tokenizer, info, cfg, k, cfg.seed + 7)
    table = position_table(cal)
    solved = [r for r in table if math.isfinite(r["lambda_star"])]
    if solved:
        bind = min(solved, key=lambda r: r["lambda_star"])
        window = (bind["lambda_star"], bind["lambda_collapse"])
    else:
        bind, window = None, (math.inf, math.inf)
    tokens = token_table(cal)
    tok_bind = min(tokens, key=lambda r: r["median"])
    lc = window[1] if math.isfinite(window[1]) else (window[0] if math.isfinite(window[0]) else 2.0)
    lam_max = float(np.clip(1.0 + cfg.grid_span * (lc - 1.0), 1.5, 6.0))
    grid = [float(x) for x in np.linspace(1.0, lam_max, cfg.n_lambdas)]
    teacher_eval = evaluate(models.teacher, eval_prompts, tokenizer, info, cfg, k, cfg.seed + 11)
    student_eval = evaluate(models.reference, eval_prompts, tokenizer, info, cfg, k, cfg.seed + 11)
    pred: dict[str, Any] = {
        "position_types": table,
        "binding_type": bind["type"] if bind else None,
        "p": bind["mean_p"] if bind else None,
        "b": bind["mean_b"] if bind else None,
        "c": cfg.c,
        "c_low": cfg.c_low_value,
        "window": list(window),
        "window_rule": ("[lambda*, lambda_collapse] of cliff.solve(mean p, mean b, c) at the "
                        "position type with the smallest lambda*"),
        "by_token": {
            "position_types": tokens, "binding_type": tok_bind["type"],
            "window": [tok_bind["quantile_05"], tok_bind["median"]],
            "window_rule": ("[5% quantile, median] over contexts of cliff.lambda_star_by_token "
                            "(each valid token its own class) at the type with the smallest "
                            "median"),
        },
        "lambdas": grid,
        "grid_rule": f"linspace(1, clip(1 + {cfg.grid_span} (lambda_collapse - 1), 1.5, 6), "
                     f"{cfg.n_lambdas})",
        "teacher": teacher_eval,
        "warm_start": student_eval,
        "properties": {  # measured, not assumed
            "teacher_ranks_better": teacher_eval["ndcg_at_1"] > student_eval["ndcg_at_1"],
            "student_parses_more_often": student_eval["parse_rate"] > teacher_eval["parse_rate"],
            "binding_regime": bind.get("regime") if bind else None,
        },
    }
    if all(math.isfinite(r["lambda_star"]) for r in table):
        # one answer's positions: open, K ids, K-1 separators, close, end (type means)
        count = {"open": 1, "id": k, "sep": k - 1, "close": 1, "end": 1}
        seq = [r for r in table for _ in range(count[r["type"]])]
        values = cliff.predict_parse_rate(grid, [r["mean_p"] for r in seq],
                                          [r["mean_b"] for r in seq], cfg.c, c_low=cfg.c_low_value)
        pred["predicted_parse_rate"] = {
            "rule": "cliff.predict_parse_rate over one answer's 2K+2 positions (type means)",
            "lambdas": grid, "values": np.asarray(values, dtype=float).tolist()}
    return pred


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> Config:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=Config.out,
                    help=f"output folder (default {Config.out})")
    ap.add_argument("--seed", type=int, default=Config.seed,
                    help="base random seed; sweep seeds are seed, seed+1, ...")
    ap.add_argument("--seeds", type=int, default=Config.n_seeds, dest="n_seeds",
                    help=f"seeds per lambda, >= 1 (default {Config.n_seeds})")
    ap.add_argument("--quick", action="store_true",
                    help="tiny budgets: checks the pipeline end to end in a few minutes")
    ap.add_argument("--config", choices=["softening", "sharpening", "both"], default="both",
                    help="warm-start configuration(s) to run (default both)")
    ap.add_argument("--c", type=float, default=Config.c,
                    help=f"IS clip strength, a ratio cap in (1, inf) (default {Config.c})")
    ap.add_argument("--c-low", type=float, default=None, dest="c_low",
                    help="lower ratio clip in [0, 1); default 1/c; 0 = none")
    ap.add_argument("--lambdas", type=int, default=Config.n_lambdas, dest="n_lambdas",
                    help=f"lambda grid size, >= 2 (default {Config.n_lambdas})")
    ap.add_argument("--opd-steps", type=int, default=Config.opd_steps, dest="opd_steps",
                    help=f"OPD updates per run, >= 1 (default {Config.opd_steps})")
    ap.add_argument("--schedule", action="store_true",
                    help="also run the grid's highest lambda under cliff.LambdaScheduler")
    ap.add_argument("--schedule-margin", type=float, default=Config.schedule_margin,
                    dest="schedule_margin",
                    help="pass mark of the scheduled run: its parse rate may fall at most this "
                         f"below the best sub-threshold run's, in [0, 1] "
                         f"(default {Config.schedule_margin})")
    ap.add_argument("--student",
                    help="folder of a Qwen3 checkpoint + tokenizer (loaded offline)")
    ap.add_argument("--teacher",
                    help="folder of a Qwen3 teacher checkpoint + tokenizer (loaded offline)")
    ap.add_argument("--data", help="JSONL file of prompts (default: the synthetic task)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="torch device (default cuda when available, else cpu)")
    ns = ap.parse_args(argv)
    cfg = Config(**{f.name: getattr(ns, f.name) for f in fields(Config) if hasattr(ns, f.name)})
    if cfg.c <= 1 or not math.isfinite(cfg.c):
        raise ValueError(f"--c must be a finite ratio cap > 1, got {cfg.c!r}")
    if not 0 <= cfg.schedule_margin <= 1:
        raise ValueError(f"--schedule-margin must be in [0, 1], got {cfg.schedule_margin!r}")
    if cfg.c_low is not None and not 0 <= cfg.c_low < 1:
        raise ValueError(f"--c-low must be in [0, 1), got {cfg.c_low!r}")
    if cfg.quick:
        cfg = cfg.quick_version()
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    out = Path(cfg.out)
    configs, tokenizer, info, k, train, est, ev = setup(cfg)

    # --- 2. pre-registration, before any sweep result exists
    predictions = {}
    for name, m in configs.items():
        models = Models(m["teacher"], m["student"], copy.deepcopy(m["student"]).eval())
        for p in models.reference.parameters():
            p.requires_grad_(False)
        m["models"] = models
        predictions[name] = {**predict(name, models, tokenizer, info, cfg, k, est, ev),
                             "recipe": m["recipe"]}
    payload = {"config": asdict(cfg), "configurations": predictions, "written_at": now()}
    sha = canonical_sha256(payload)
    write_json(out / "prediction.json", {"payload": payload, "sha256": sha})
    for name, pr in predictions.items():
        print(f"[{name}] binding={pr['binding_type']} p={pr['p']} b={pr['b']} c={cfg.c} "
              f"window={pr['window']}", file=sys.stderr)

    # --- 3. the sweep
    seeds = [cfg.seed + s for s in range(cfg.n_seeds)]
    results: dict[str, Any] = {}
    for name, m in configs.items():
        grid = predictions[name]["lambdas"]
        runs = []
        for lam in grid:
            for seed in seeds:
                started = now()
                models = m["models"]
                run_models = Models(models.teacher, copy.deepcopy(models.reference),
                                    models.reference)
                for p in run_models.student.parameters():
                    p.requires_grad_(True)
                r = run_opd(run_models, train, ev, tokenizer, info, cfg, k, lam, seed,
                            desc=f"{name} lam={lam:.3f} seed={seed}")
                runs.append({"lambda": lam, "seed": seed, "started_at": started,
                             "finished_at": now(), **r})
                write_json(out / "sweep.json", {"config": asdict(cfg), "prediction_sha256": sha,
                                                "runs": {**results, name: runs}})
        results[name] = runs
    if cfg.schedule:
        results["schedule"] = {name: schedule_run(cfg, m["models"], train, ev, tokenizer, info, k,
                                                  predictions[name]["lambdas"][-1], seeds)
                               for name, m in configs.items()}

    # --- 4. report
    report = build_report(cfg, predictions, results, seeds, sha, payload["written_at"], t0)
    write_json(out / "report.json", report)
    save_figure(figure(report), out / "cliff_llm.png", dpi=120)
    return report


def schedule_run(cfg: Config, models: Models, train: list[Prompt], ev: list[Prompt],
                 tokenizer: Any, info: Any, k: int, target: float, seeds: list[int]
                 ) -> dict[str, Any]:
    """The sweep's highest lambda again, with ``cliff.LambdaScheduler`` choosing each step's
    lambda (target = that lambda)."""
    runs = []
    for seed in seeds:
        run_models = Models(models.teacher, copy.deepcopy(models.reference), models.reference)
        for p in run_models.student.parameters():
            p.requires_grad_(True)
        r = run_opd(run_models, train, ev, tokenizer, info, cfg, k, target, seed,
                    lam_fn=scheduler_lambda_fn(
                        cfg, info, k, target, tokenizer,
                        int(models.teacher.get_output_embeddings().weight.shape[0])),
                    desc=f"scheduled target={target:.3f} seed={seed}")
        runs.append({"target_lambda": target, "seed": seed, **r})
    return {"runs": runs}


def build_report(cfg: Config, predictions: dict[str, Any], results: dict[str, Any],
                 seeds: list[int], sha: str, written_at: dict[str, Any], t0: float
                 ) -> dict[str, Any]:
    configurations = {}
    for name, pred in predictions.items():
        runs = results[name]
        grid = pred["lambdas"]
        per_seed = {key: [[next(r["final"][key] for r in runs
                                if r["lambda"] == lam and r["seed"] == s) for lam in grid]
                           for s in seeds] for key in ("parse_rate", "ndcg_at_1", "ndcg_at_1_all")}
        mean_parse = np.mean(np.array(per_seed["parse_rate"]), axis=0).tolist()
        on = onset(grid, mean_parse, cfg.break_fraction)
        on_seed = [onset(grid, row, cfg.break_fraction) for row in per_seed["parse_rate"]]
        window = tuple(pred["window"])
        tok = pred["by_token"]["window"]
        configurations[name] = {
            "prediction": pred, "lambdas": grid, "seeds": seeds, "per_seed": per_seed,
            "mean_parse_rate": mean_parse, "onset": on, "onset_per_seed": on_seed,
            "verdict": compare(on, (float(window[0]), float(window[1]))),
            "verdict_by_token": compare(on, (float(tok[0]), float(tok[1]))),
            "schedule": schedule_verdict(cfg, pred, mean_parse, on,
                                         (results.get("schedule") or {}).get(name)),
            "runs": runs,
        }
    first_start = min(r["started_at"]["unix_ns"] for n in predictions for r in results[n])
    return {
        "config": asdict(cfg),
        "prediction_sha256": sha,
        "prediction_written_at": written_at,
        "first_sweep_run_started_at_unix_ns": first_start,
        "prediction_before_sweep": written_at["unix_ns"] < first_start,
        "break_rule": f"parse rate (mean over seeds) < {cfg.break_fraction} x the lambda=1 rate",
        "configurations": configurations,
        "schedule": results.get("schedule"),
        "wall_time_s": time.time() - t0,
    }


def schedule_verdict(cfg: Config, pred: dict[str, Any], mean_parse: list[float],
                     on: dict[str, Any], sched: dict[str, Any] | None) -> dict[str, Any] | None:
    """The scheduled run against the best sub-threshold run (grid lambda < predicted lambda*):
    it passes when its mean strict parse rate is at least that minus ``cfg.schedule_margin``."""
    if not sched:
        return None
    below = [r for lam, r in zip(pred["lambdas"], mean_parse, strict=True)
             if lam < pred["window"][0]]
    best = max(below) if below else math.nan
    rates = [r["final"]["parse_rate"] for r in sched["runs"]]
    late = [h["lambda"] for r in sched["runs"] for h in r["history"][len(r["history"]) // 2 :]]
    target = sched["runs"][0]["target_lambda"]
    return {"target_lambda": target,
            "target_above_observed_onset": bool(target >= on["first_break"]),
            "mean_parse_rate": float(np.mean(rates)), "per_seed_parse_rate": rates,
            "best_sub_threshold_parse_rate": best, "margin": cfg.schedule_margin,
            "passes": bool(np.mean(rates) >= best - cfg.schedule_margin),
            "lambda_used_second_half": [float(min(late)), float(max(late))]}


if __name__ == "__main__":
    main()
