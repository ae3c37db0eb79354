"""Training recipes for the teachers and SFT warm-start students of the two configurations.

Both configurations use the same synthetic task; they differ only in the targets each model is
trained on (fresh prompts every step, so nothing is memorised):

============  ========================================  =========================================
config        teacher targets                           student (SFT warm start) targets
============  ========================================  =========================================
softening     ideal ranking; ``]`` dropped with          noisy ranking; always well-formed
              probability ``teacher_format_noise``
sharpening    ideal ranking; always well-formed          noisy ranking; ``]`` dropped with
                                                        probability ``student_format_noise``
============  ========================================  =========================================

"Noisy ranking" sorts items by ``score + student_rank_noise * Gumbel``: the student learns a
worse ranker, so in both configurations the teacher ranks better.  Format noise sits at one
structural position type (``close``), so there the softening student is more format-certain
than its teacher (``p < b``) and the sharpening student less (``p > b``).  Whether the trained
models really have these properties is measured, never assumed
(:func:`validate.llm_check.measurement.measure`, then the gate).

:func:`train_warm_start` trains both models of one configuration and warm-start seed.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, Qwen3ForCausalLM

from validate.llm_check.config import Config
from validate.llm_check.models import Batch, TinyQwen3, left_pad, new_model, on_device, train_sft
from validate.llm_check.task import answer_tokens, make_prompts, ranking_by
from validate.llm_check.tokenizer import TokenInfo

__all__ = ["FORMAT_TYPE", "Recipe", "recipes", "sft_batches", "WarmStart", "sft_one",
           "train_models", "train_warm_start"]

FORMAT_TYPE = "close"
"""the format token's position type (``]``), where the recipes put their format noise"""


@dataclass(frozen=True)
class Recipe:
    """Targets of one model: ranking noise (Gumbel scale) and format-noise rate at ``close``."""

    rank_noise: float
    format_noise: float


def recipes(config: str, teacher_format_noise: float, student_format_noise: float,
            student_rank_noise: float) -> tuple[Recipe, Recipe]:
    """``(teacher, student)`` recipes of configuration ``config``."""
    if config == "softening":
        return Recipe(0.0, teacher_format_noise), Recipe(student_rank_noise, 0.0)
    if config == "sharpening":
        return Recipe(0.0, 0.0), Recipe(student_rank_noise, student_format_noise)
    raise ValueError(f"config must be 'softening' or 'sharpening', got {config!r}")


def sft_batches(
    tokenizer: PreTrainedTokenizerBase, k: int, levels: int, batch_size: int, recipe: Recipe
) -> Callable[[np.random.Generator], Batch]:
    """A function ``rng -> Batch`` drawing fresh prompts and recipe targets (answer + EOS)."""
    vocab = tokenizer.get_vocab()
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id)

    def next_batch(rng: np.random.Generator) -> Batch:
        prompts = make_prompts(batch_size, k, levels, rng)
        enc = [tokenizer.encode(p.text, add_special_tokens=False) for p in prompts]
        prompt_ids, prompt_mask = left_pad(enc, pad)
        answers = []
        for p in prompts:
            ranking = ranking_by(p.relevance, recipe.rank_noise, rng)
            drop = bool(rng.random() < recipe.format_noise)
            answers.append([vocab[s] for s in answer_tokens(ranking, drop_close=drop)] + [eos])
        width = max(len(a) for a in answers)
        ans = torch.full((batch_size, width), pad, dtype=torch.long)
        ans_mask = torch.zeros((batch_size, width))
        for i, a in enumerate(answers):
            ans[i, : len(a)] = torch.tensor(a)
            ans_mask[i, : len(a)] = 1.0
        return prompt_ids, prompt_mask, ans, ans_mask

    return next_batch


@dataclass
class WarmStart:
    """A configuration's teacher and SFT warm start, on the run's device, and how they were
    made."""

    teacher: Qwen3ForCausalLM
    student: Qwen3ForCausalLM
    recipe: dict[str, Any]
    """the prediction's ``recipe``: both :class:`Recipe` and SFT step counts, or the
    checkpoint folders"""


def sft_one(cfg: Config, tokenizer: PreTrainedTokenizerBase, info: TokenInfo, recipe: Recipe,
            steps: int, seed: int, desc: str, position: int = 0) -> Qwen3ForCausalLM:
    """A fresh :class:`~validate.llm_check.models.TinyQwen3` (weights drawn under ``seed``)
    after ``steps`` SFT steps on ``recipe``'s targets (batches drawn from ``seed`` too), on
    the CPU, in ``cfg.threads`` torch threads; ``position`` is its progress bar's line."""
    torch.set_num_threads(cfg.threads)
    m = new_model(len(tokenizer), info.pad_id, info.eos_id, TinyQwen3(), seed)
    train_sft(m, sft_batches(tokenizer, cfg.k, cfg.levels, cfg.sft_batch, recipe), steps,
              cfg.sft_lr, seed, desc, position)
    return m


def train_models(cfg: Config, tokenizer: PreTrainedTokenizerBase, info: TokenInfo,
                 asked: Sequence[tuple[Recipe, int, int, str]]) -> list[Qwen3ForCausalLM]:
    """The models ``asked`` for, each ``(recipe, steps, seed, desc)``, trained by
    :func:`sft_one` (on the CPU, in eval mode).

    Models share nothing while they train, so on the CPU with ``cfg.workers >= 2`` they train
    side by side in up to ``cfg.workers`` spawned processes, each in ``cfg.threads`` threads:
    the same weights, bit for bit, as one after the other in this process (a torch CPU run is
    deterministic at a fixed thread count), in a fraction of the time.
    """
    if cfg.device == "cpu" and cfg.workers >= 2 and len(asked) >= 2:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(cfg.workers, len(asked)),
                                 mp_context=spawn) as pool:
            futures = [pool.submit(sft_one, cfg, tokenizer, info, *a, i)
                       for i, a in enumerate(asked)]
            return [f.result() for f in futures]
    here = replace(cfg, threads=torch.get_num_threads())  # this process keeps its threads
    return [sft_one(here, tokenizer, info, *a) for a in asked]


def train_warm_start(cfg: Config, name: str, warm_seed: int, tokenizer: PreTrainedTokenizerBase,
                     info: TokenInfo, student_steps: int, teacher_steps: int) -> WarmStart:
    """SFT teacher and warm start of configuration ``name``, each a fresh
    :class:`~validate.llm_check.models.TinyQwen3` seeded from ``warm_seed`` (teacher
    ``100 warm_seed + 10 j``, student one more, ``j`` the configuration's index), side by
    side where :func:`train_models` can."""
    j = ("softening", "sharpening").index(name)
    t_rec, s_rec = recipes(name, cfg.teacher_format_noise, cfg.student_format_noise,
                           cfg.student_rank_noise)
    teacher, student = train_models(cfg, tokenizer, info, [
        (rec, steps, warm_seed * 100 + 10 * j + off, f"{name} w{warm_seed} {role} SFT")
        for role, rec, steps, off in (("teacher", t_rec, teacher_steps, 0),
                                      ("student", s_rec, student_steps, 1))])
    return WarmStart(on_device(teacher, cfg.device), on_device(student, cfg.device),
                     {"teacher": asdict(t_rec), "student": asdict(s_rec),
                      "teacher_steps": teacher_steps, "student_steps": student_steps})
