"""Small checkpoints to calibrate: ``python -m validate.llm_check.checkpoints --out DIR``.

Writes what ``python -m cliff calibrate`` takes, built here from nothing (no downloads):

* ``DIR/teacher``, ``DIR/reference``: tiny Qwen3 models (``save_pretrained`` folders with
  their tokenizer), fine-tuned on the ranking task (:mod:`validate.llm_check.task`) with
  answers written as JSON objects, ``{"ranking": [3, 1, 0, 2, 7, 5, 4, 6]}``.  The teacher
  learns the ideal ranking, always well-formed; the warm start (the reference) a noisy
  ranking, and drops the closing ``}`` at rate ``format_noise``;
* the tokenizer: byte-level BPE trained on the task's prompts and answers, so answers are
  written in merged tokens (``{"``, ``":``, `` [``, ``]}``) as real tokenizers write them;
* ``DIR/prompts.jsonl`` (``{"prompt": ...}`` per line) and ``DIR/schema.json`` (the answer's
  JSON schema).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from cliff.internal import left_pad, write_json, write_text
from validate.llm_check.models import Batch, TinyQwen3, new_model, train_sft
from validate.llm_check.task import make_prompts, ranking_by

SPECIALS = ("<|endoftext|>", "<|pad|>")


@dataclass(frozen=True)
class Recipe:
    """Everything the checkpoints depend on (saved as ``DIR/recipe.json``)."""

    k: int = 8
    """items per prompt"""
    levels: int = 3
    """feature levels of the task"""
    vocab_size: int = 320
    """BPE vocabulary (256 bytes, the specials and the merges)"""
    steps: int = 300
    """SFT steps per model"""
    batch: int = 32
    """SFT batch size"""
    lr: float = 3e-3
    """SFT learning rate"""
    rank_noise: float = 1.0
    """Gumbel scale of the warm start's ranking targets"""
    format_noise: float = 0.3
    """rate at which the warm start's targets drop the closing brace"""
    prompts: int = 64
    """lines of prompts.jsonl"""
    seed: int = 0
    """seed of the prompts, the tokenizer's corpus and the weights"""


def schema(k: int) -> dict[str, Any]:
    """The answer's contract: an object with a ``ranking`` of ``k`` ids in ``0..k-1``."""
    ids = {"type": "integer", "minimum": 0, "maximum": k - 1}
    return {"type": "object",
            "properties": {"ranking": {"type": "array", "items": ids, "minItems": k,
                                       "maxItems": k}},
            "required": ["ranking"], "additionalProperties": False}


def answer(ranking: list[int], *, drop_close: bool = False) -> str:
    """``{"ranking": [3, 1, ...]}``, without the final ``}`` when ``drop_close``."""
    text = json.dumps({"ranking": ranking})
    return text[:-1] if drop_close else text


def train_bpe(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (GPT-2 byte alphabet, no prefix
    space); ``<|endoftext|>`` is its EOS, ``<|pad|>`` its padding."""
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=SPECIALS[0],
                                   pad_token=SPECIALS[1], clean_up_tokenization_spaces=False)


def corpus(recipe: Recipe, n: int = 2000) -> list[str]:
    """Prompts and answers of the task, the tokenizer's training text."""
    rng = np.random.default_rng(recipe.seed + 1)
    out = []
    for p in make_prompts(n, recipe.k, recipe.levels, rng):
        out += [p.text, answer(ranking_by(p.relevance, 1.0, rng))]
    return out


def json_batches(tokenizer: PreTrainedTokenizerBase, recipe: Recipe, rank_noise: float,
                 format_noise: float) -> Callable[[np.random.Generator], Batch]:
    """``rng -> Batch``: fresh prompts, JSON answers + EOS as SFT targets."""
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id)

    def next_batch(rng: np.random.Generator) -> Batch:
        prompts = make_prompts(recipe.batch, recipe.k, recipe.levels, rng)
        ids, mask = left_pad([tokenizer.encode(p.text, add_special_tokens=False)
                              for p in prompts], pad)
        answers = [tokenizer.encode(answer(ranking_by(p.relevance, rank_noise, rng),
                                           drop_close=bool(rng.random() < format_noise)),
                                    add_special_tokens=False) + [eos] for p in prompts]
        width = max(len(a) for a in answers)
        ans = torch.full((len(answers), width), pad, dtype=torch.long)
        ans_mask = torch.zeros((len(answers), width))
        for i, a in enumerate(answers):
            ans[i, : len(a)] = torch.tensor(a)
            ans_mask[i, : len(a)] = 1.0
        return ids, mask, ans, ans_mask

    return next_batch


def build(out: str | Path, recipe: Recipe = Recipe()) -> dict[str, Path]:
    """Train and save the tokenizer, teacher, reference, prompts and schema under ``out``."""
    folder = Path(out)
    tokenizer = train_bpe(corpus(recipe), recipe.vocab_size)
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id)
    paths = {}
    for j, (role, noise, fmt) in enumerate((("teacher", 0.0, 0.0),
                                            ("reference", recipe.rank_noise,
                                             recipe.format_noise))):
        seed = 100 * recipe.seed + j
        model = new_model(len(tokenizer), pad, eos, TinyQwen3(), seed)
        train_sft(model, json_batches(tokenizer, recipe, noise, fmt), recipe.steps, recipe.lr,
                  seed, f"{role} SFT")
        model.generation_config.eos_token_id = eos
        model.generation_config.pad_token_id = pad
        model.save_pretrained(folder / role)
        tokenizer.save_pretrained(folder / role)
        paths[role] = folder / role
    rng = np.random.default_rng(recipe.seed + 2)
    lines = [json.dumps({"prompt": p.text})
             for p in make_prompts(recipe.prompts, recipe.k, recipe.levels, rng)]
    paths["prompts"] = write_text(folder / "prompts.jsonl", "\n".join(lines) + "\n")
    paths["schema"] = write_json(folder / "schema.json", schema(recipe.k))
    paths["recipe"] = write_json(folder / "recipe.json", asdict(recipe))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.checkpoints",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--steps", type=int, default=Recipe.steps,
                    help=f"SFT steps per model (default {Recipe.steps})")
    ap.add_argument("--seed", type=int, default=Recipe.seed, help="seed (default 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    for name, path in build(args.out, Recipe(steps=args.steps, seed=args.seed)).items():
        print(f"{name:<10} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
