"""Clipped G-OPD in TRL with lambda kept below the cliff: ``python -m validate.train_with_trl``.

Reads what ``python -m validate.llm_check.checkpoints --out DIR`` writes (a teacher, a warm
start that often drops the closing brace, ``prompts.jsonl``, ``schema.json``), trains the warm
start with :class:`cliff.integrations.trl.GOPDTrainer` (TRL's on-policy distillation trainer
with the clipped G-OPD loss; lambda from :class:`cliff.LambdaScheduler`, fed every step's
structural positions), and prints, step by step, the lambda used, the scheduler's bound on
lambda*, the share of completions that parse and the share of clipped ratios; then where
lambda went and which group of positions bounds it.  ``OUT/train_with_trl.json`` holds the
arguments, every logged step and the scheduler's final state.

    python -m validate.llm_check.checkpoints --out demo
    python -m validate.train_with_trl --checkpoints demo --out demo/gopd

The run is one TRL ``train()``: no downloads (the models are local folders), CPU by default.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import PrinterCallback

from cliff.integrations.trl import GOPDConfig, GOPDTrainer
from cliff.internal import load_model, load_tokenizer, read_contract, read_prompts, write_json


@dataclass(frozen=True)
class Args:
    """The run's settings (each field's ``help`` is its CLI help); saved with the result."""

    checkpoints: str = field(default="demo", metadata={
        "help": "folder written by python -m validate.llm_check.checkpoints"})
    out: str = field(default="demo/gopd", metadata={"help": "output folder"})
    target_lambda: float = field(default=1.5, metadata={
        "help": "the lambda asked for; the scheduler returns at most this"})
    c: float = field(default=5.0, metadata={"help": "clip of the teacher/student ratio, > 1"})
    c_low: float = field(default=0.2, metadata={"help": "lower clip, in [0, 1) (0: none)"})
    schedule: str = field(default="cliff", metadata={
        "help": "'cliff' (the scheduler's lambda) or 'fixed' (always the target)"})
    group: str = field(default="label", metadata={
        "help": "positions pooled by 'label' ($.ranking close, ...) or by 'kind' (close, ...)"})
    steps: int = field(default=40, metadata={"help": "optimizer steps"})
    batch: int = field(default=16, metadata={"help": "completions per step"})
    lr: float = field(default=1e-4, metadata={"help": "learning rate"})
    max_new_tokens: int = field(default=24, metadata={"help": "completion length limit"})
    seed: int = field(default=0, metadata={"help": "seed of TRL's sampling and shuffling"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: list[str] | None) -> Args:
    ap = argparse.ArgumentParser(prog="python -m validate.train_with_trl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        ap.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default),
                        default=f.default, help=f"{f.metadata['help']} (default {f.default})")
    args = Args(**vars(ap.parse_args(argv)))
    if args.group not in ("label", "kind"):
        raise ValueError(f"--group must be 'label' or 'kind', got {args.group!r}")
    if args.steps < 1 or args.batch < 1 or args.threads < 1:
        raise ValueError(f"--steps, --batch and --threads must be >= 1, got {args.steps}, "
                         f"{args.batch}, {args.threads}")
    return args


def kind(label: str) -> str:
    """``'$.ranking[3] value'`` -> ``'value'``: a position's kind, whatever its path."""
    return label.rsplit(" ", 1)[-1]


def build(args: Args) -> GOPDTrainer:
    """The trainer: the warm start as the student (and, frozen, as the G-OPD reference)."""
    folder = Path(args.checkpoints)
    tokenizer = load_tokenizer(folder / "teacher", "--checkpoints")
    tokenizer.padding_side = "left"  # TRL left-pads prompts for generation
    prompts = Dataset.from_list([{"prompt": p} for p in read_prompts(folder / "prompts.jsonl")])
    config = GOPDConfig(
        output_dir=args.out, target_lambda=args.target_lambda, c=args.c,
        c_low=args.c_low or None, lambda_schedule=args.schedule,
        contract=read_contract(schema=str(folder / "schema.json")).source, max_steps=args.steps,
        per_device_train_batch_size=args.batch, max_completion_length=args.max_new_tokens,
        learning_rate=args.lr, logging_steps=1, save_strategy="no", report_to=[],
        bf16=False, use_cpu=True, seed=args.seed, disable_tqdm=True)
    trainer = GOPDTrainer(load_model(folder / "reference", "--checkpoints"),
                          load_model(folder / "teacher", "--checkpoints"), config,
                          train_dataset=prompts, processing_class=tokenizer,
                          position_group=kind if args.group == "kind" else None)
    trainer.remove_callback(PrinterCallback)  # the table below replaces TRL's log lines
    return trainer


def report(trainer: GOPDTrainer, args: Args) -> dict[str, Any]:
    """Print the per-step table and where lambda went; return what is saved."""
    rows = [h for h in trainer.state.log_history if "cliff/lambda" in h]
    print(f"{'step':>4}  {'lambda':>6}  {'bound':>6}  {'parses':>6}  {'truncated':>9}  "
          f"{'clip>c':>6}  {'clip<c_low':>10}")
    for h in rows:
        bound = h.get("cliff/lambda_star_bound")
        print(f"{h['step']:>4}  {h['cliff/lambda']:>6.3f}  "
              f"{'-' if bound is None else f'{bound:.3f}':>6}  "
              f"{h['cliff/parse_valid_frac']:>6.2f}  {h['cliff/truncated_frac']:>9.2f}  "
              f"{h['cliff/clip_frac_high']:>6.3f}  {h['cliff/clip_frac_low']:>10.3f}")
    lams = np.array([h["cliff/lambda"] for h in rows])
    sched = trainer.lambda_scheduler
    state = sched.state() if sched is not None else {}
    warm_up = int(np.argmax(lams > min(args.target_lambda, 1.0))) if (lams > 1.0).any() else None
    print(f"\nlambda: {lams[0]:.3f} at step 1, {lams[-1]:.3f} at step {len(lams)}; "
          f"largest {lams.max():.3f}, target {args.target_lambda}")
    if sched is not None and state.get("lambda_star_bound"):
        bounds = [math.inf if b is None else b for b in state["lambda_star_bound"]]
        j = int(np.argmin(bounds))
        groups = trainer.positions.groups if trainer.positions is not None else []
        unwarm = [g for g, w in zip(groups, state["warm"], strict=True) if not w]
        if warm_up is not None:
            print(f"the scheduler held lambda = min(target, 1) for the first {warm_up} steps, "
                  "until every group had enough contexts for its bound")
        elif unwarm:
            more = ", ..." if len(unwarm) > 3 else ""
            print(f"still warming up: {len(unwarm)} of {len(groups)} groups have too few "
                  f"contexts for a bound ({', '.join(unwarm[:3])}{more})")
        print(f"binding group: {groups[j]!r}, lower bound on lambda* {bounds[j]:.4f} "
              f"(empirical {sched.quantile:g} quantile {state['lambda_star_quantile'][j]:.4f}, "
              f"{state['contexts'][j]} contexts)")
    return {"args": asdict(args), "log": rows,
            "scheduler": None if sched is None else sched.state_dict(),
            "groups": None if trainer.positions is None else trainer.positions.groups}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    trainer = build(args)
    trainer.train()
    result = report(trainer, args)
    result["wall_s"] = time.perf_counter() - t0
    path = write_json(Path(args.out) / "train_with_trl.json", result)
    print(f"{result['wall_s']:.0f} s; wrote {path}")
    return result


if __name__ == "__main__":
    main()
