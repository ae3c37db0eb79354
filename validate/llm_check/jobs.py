"""Step 5 of a unit, the sweep: the planned OPD runs in spawned worker processes, one torch
thread each.

A :class:`~validate.llm_check.plan.Job` is one OPD run from a fresh copy of the warm start:
its lambda (or a ``cliff.LambdaScheduler`` target), seed, clip and step budget, and the step
counts at which it is evaluated.  Every worker holds the same :class:`Context` (teacher and
warm-start weights, tokenizer, prompts, the :class:`~validate.llm_check.config.Config`),
built once per worker from a pickled copy; the job's result depends only on the context and
the job, not on which worker ran it or in what order.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from validate.llm_check.config import Config
from validate.llm_check.opd import Models, run_opd
from validate.llm_check.plan import Job
from validate.llm_check.resume import job_key
from validate.llm_check.scheduled_lambda import scheduler_lambda_fn
from validate.llm_check.sealing import utc_now
from validate.llm_check.task import Prompt, contract

__all__ = ["Context", "run_jobs", "run_job"]


@dataclass
class Context:
    """What every job of one configuration needs (pickled once into each worker)."""

    cfg: Config
    teacher: Any
    reference: Any
    tokenizer: Any
    info: Any
    k: int
    train: list[Prompt]
    eval_prompts: list[Prompt]


_CTX: dict[str, Any] = {}


def _init(ctx: Context, threads: int) -> None:
    """Worker initialiser: one torch thread, the context, the contract walker."""
    torch.set_num_threads(threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    for m in (ctx.teacher, ctx.reference):
        for p in m.parameters():
            p.requires_grad_(False)
    _CTX["ctx"] = ctx
    vocab = int(ctx.teacher.get_output_embeddings().weight.shape[0])
    _CTX["walker"] = contract(ctx.k).compile(ctx.tokenizer, vocab, [ctx.info.eos_id])


def run_job(job: Job) -> dict[str, Any]:
    """Run ``job`` in this process's context (:func:`_init` must have run)."""
    ctx: Context = _CTX["ctx"]
    cfg = ctx.cfg
    student = copy.deepcopy(ctx.reference)
    for p in student.parameters():
        p.requires_grad_(True)
    models = Models(ctx.teacher, student, ctx.reference)
    lam_fn = None
    if job.scheduled:
        vocab = int(ctx.teacher.get_output_embeddings().weight.shape[0])
        lam_fn = scheduler_lambda_fn(cfg, ctx.info, ctx.k, job.lam, ctx.tokenizer, vocab)
    started = utc_now()
    r = run_opd(models, ctx.train, ctx.eval_prompts, ctx.tokenizer, ctx.info, cfg, ctx.k,
                job.lam, job.seed, lam_fn, c=job.c, c_low=job.c_low, steps=job.steps,
                eval_at=job.eval_at, walker=_CTX["walker"], progress=False,
                per_rollout=job.kind.startswith("ladder"))
    return {"job": job.to_dict(), "started_at": started, "finished_at": utc_now(), **r}


def run_jobs(ctx: Context, jobs: Sequence[Job], desc: str,
             on_result: Callable[[list[dict[str, Any]]], object] | None = None,
             done: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Run ``jobs`` (``ctx.cfg.workers`` spawned processes, or in this process when 1) and
    return their results in the order of ``jobs``; ``on_result`` sees the finished ones
    after each (for saving progress).  Jobs whose result is in ``done`` (the finished runs
    of an interrupted sweep) are not run again; the progress bar counts them as done."""
    cfg = ctx.cfg
    kept = {job_key(r["job"]): r for r in done}
    results: list[dict[str, Any] | None] = [kept.get(job_key(j.to_dict())) for j in jobs]
    todo = [i for i, r in enumerate(results) if r is None]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc)

    def finish(i: int, r: dict[str, Any]) -> None:
        results[i] = r
        bar.update(1)
        if on_result is not None:
            on_result([x for x in results if x is not None])

    if todo and (cfg.workers <= 1 or cfg.device != "cpu"):
        threads = torch.get_num_threads()
        _init(ctx, threads)
        for i in todo:
            finish(i, run_job(jobs[i]))
    elif todo:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=spawn, initializer=_init,
                                 initargs=(ctx, cfg.threads)) as pool:
            futures = {pool.submit(run_job, jobs[i]): i for i in todo}
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
    bar.close()
    return [r for r in results if r is not None]
