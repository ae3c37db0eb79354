"""The ladder's teachers and warm starts, trained once and kept as safetensors checkpoints.

Each model is a ``save_pretrained`` folder (``config.json``, ``model.safetensors``) under the
checkpoint folder, named by what it is (:func:`model_name`), with ``recipe.json`` beside the
weights.  A model whose folder exists is loaded, not trained again, after its recipe is
checked against the one asked for: so configurations that share a model (paper and
dirty_ids share the teacher) share its weights, and a sweep re-run on committed checkpoints
(``--ladder-checkpoints``) trains nothing.  Tiny-model training is not bit-reproducible
across CPUs; the checkpoints are, and the prediction records each one's sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase, Qwen3ForCausalLM

from cliff.internal import write_json
from validate.llm_check.config import Config
from validate.llm_check.ladder.configurations import Configuration
from validate.llm_check.models import on_device
from validate.llm_check.tokenizer import TokenInfo
from validate.llm_check.warmstart import Recipe, WarmStart, train_models

__all__ = ["model_name", "file_sha256", "sft_model", "ladder_warm_start"]


def model_name(role: str, recipe: Recipe, steps: int, seed: int) -> str:
    """The folder name of a model: role, recipe, SFT steps and init seed, e.g.
    ``teacher_rank0_fmt0_steps1200_seed110``."""
    return (f"{role}_rank{recipe.rank_noise:g}_fmt{recipe.format_noise:g}_steps{steps}"
            f"_seed{seed}")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sft_model(cfg: Config, role: str, recipe: Recipe, steps: int, seed: int,
              tokenizer: PreTrainedTokenizerBase, info: TokenInfo, folder: Path,
              trained: Qwen3ForCausalLM | None = None
              ) -> tuple[Qwen3ForCausalLM, dict[str, Any]]:
    """The SFT model of ``(role, recipe, steps, seed)``: loaded from ``folder /
    model_name(...)`` when saved there, else ``trained`` (or, when None, trained here) and
    saved; with its record (name, recipe, sha256 of ``model.safetensors``)."""
    path = folder / model_name(role, recipe, steps, seed)
    want = {"role": role, "rank_noise": recipe.rank_noise, "format_noise": recipe.format_noise,
            "steps": steps, "seed": seed, "sft_batch": cfg.sft_batch, "sft_lr": cfg.sft_lr,
            "k": cfg.k, "levels": cfg.levels}
    if (path / "model.safetensors").exists():
        have = json.loads((path / "recipe.json").read_text(encoding="utf-8"))
        if have != want:
            raise ValueError(f"checkpoint {str(path)!r} was trained with {have}, not {want}")
        model = Qwen3ForCausalLM.from_pretrained(str(path), local_files_only=True)
    else:
        model = trained if trained is not None else train_models(
            cfg, tokenizer, info, [(recipe, steps, seed, f"{path.name} SFT")])[0]
        tmp = path.with_name(path.name + ".partial")
        model.save_pretrained(str(tmp), safe_serialization=True)
        write_json(tmp / "recipe.json", want)
        tmp.rename(path)  # the folder appears whole or not at all
    record = {"name": path.name, **want,
              "sha256": file_sha256(path / "model.safetensors")}
    return on_device(model, cfg.device), record


def ladder_warm_start(cfg: Config, conf: Configuration, warm_seed: int,
                      tokenizer: PreTrainedTokenizerBase, info: TokenInfo, folder: Path
                      ) -> WarmStart:
    """Teacher and warm start of configuration ``conf`` at warm-start seed ``warm_seed``
    (seeds ``100 w + 10 j`` with ``j = conf.seed_index``, and ``100 w + 10 j' + 1`` with
    ``j' = conf.student_seed_index``), from or into ``folder``; the ones not saved there yet
    train side by side where :func:`~validate.llm_check.warmstart.train_models` can."""
    asked = [("teacher", conf.teacher, conf.teacher_steps,
              100 * warm_seed + 10 * conf.seed_index),
             ("student", conf.student, conf.student_steps,
              100 * warm_seed + 10 * conf.student_seed_index + 1)]
    missing = [a for a in asked
               if not (folder / model_name(*a) / "model.safetensors").exists()]
    torch.set_grad_enabled(True)
    trained = {}
    if missing:
        models = train_models(cfg, tokenizer, info, [
            (rec, steps, seed, f"{model_name(role, rec, steps, seed)} SFT")
            for role, rec, steps, seed in missing])
        trained = {role: m for (role, *_), m in zip(missing, models, strict=True)}
    (teacher, t_rec), (student, s_rec) = (
        sft_model(cfg, *a, tokenizer, info, folder, trained.get(a[0])) for a in asked)
    return WarmStart(teacher, student, {"configuration": conf.name, "teacher": t_rec,
                                        "student": s_rec})
