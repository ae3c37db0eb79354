"""The contract's cost in calibration, as a ratio to the model forward passes it serves.

Figures (from :func:`run`, printed by ``python -m validate.bench``)
---------------------------------------------------------------
contract_masks_per_s_1k, contract_over_forward_1k
    Positions per second that the walker of :meth:`cliff.Contract.compile` masks (mask, label and
    consume) on JSON answers of the ranking schema in a 1,000-token byte-level BPE, and the
    walk's time over the time of one scoring forward pass of the small model
    (:class:`~validate.llm_check.models.TinyQwen3`, 1,000 output rows) over the same rollouts.
contract_masks_per_s_qwen3, contract_over_forward_qwen3
    The same with the Qwen3 vocabulary and a small Qwen3 of 151,936 output rows (needs the
    ``qwen`` extra; absent without it).
calibrate_s, calibrate_contract_over_forward
    Wall time of :func:`cliff.calibrate` of 256 rollouts (64 with ``--quick``) on the small
    checkpoints
    (:mod:`validate.llm_check.checkpoints`, trained here), and the time it spent in the
    contract (compiling and walking) over the time of the forward passes it needs (sampling,
    teacher and reference scoring), both measured inside that run.

Each timing is the best of ``repeats`` after a warm-up run.
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

import numpy as np
import torch

import cliff
from cliff.internal import left_pad, position_logprobs
from validate.llm_check import vocab
from validate.llm_check.checkpoints import Recipe, answer, build, corpus, schema, train_bpe
from validate.llm_check.models import TinyQwen3, new_model
from validate.llm_check.task import make_prompts, ranking_by
from validate.timing import best_time


def _walk_against_forward(tokenizer: Any, rows: int, n: int, repeats: int
                          ) -> tuple[float, float]:
    """(masks per second, walk time / forward time) on ``n`` rollouts in batches of 16."""
    rng = np.random.default_rng(0)
    prompts = make_prompts(n, 8, 3, rng)
    eos = int(tokenizer.eos_token_id)
    answers = [tokenizer.encode(answer(ranking_by(p.relevance, 1.0, rng)),
                                add_special_tokens=False) + [eos] for p in prompts]
    walker = cliff.Contract.json_schema(schema(8)).compile(tokenizer, rows, [eos])
    batches = [answers[s : s + 16] for s in range(0, n, 16)]
    positions = sum(len(a) for a in answers)
    t_walk = best_time(lambda: [walker.walk(b) for b in batches], repeats + 1)  # + warm-up
    pad = int(tokenizer.pad_token_id)
    model = new_model(rows, pad, eos, TinyQwen3(), 0).eval()
    encoded = [tokenizer.encode(p.text, add_special_tokens=False) for p in prompts]
    inputs = []
    for s in range(0, n, 16):
        ids, mask = left_pad(encoded[s : s + 16], pad)
        chunk = answers[s : s + 16]
        gen = left_pad([a[::-1] for a in chunk], pad)[0].flip(1)  # right-padded answers
        r, t = zip(*[(i, j) for i, a in enumerate(chunk) for j in range(len(a))], strict=True)
        inputs.append((ids, mask, gen, torch.tensor(r), torch.tensor(t)))
    t_fwd = best_time(lambda: [position_logprobs(model, *x) for x in inputs], repeats + 1)
    return positions / t_walk, t_walk / t_fwd


def json_corpus(n: int, rng: np.random.Generator) -> list[str]:
    """JSON records with random words and numbers: enough distinct text for 1,000 merges."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def word() -> str:
        return "".join(rng.choice(letters, int(rng.integers(2, 9))))

    return [json.dumps({"id": int(rng.integers(10**4)), word(): word(),
                        "tags": [word() for _ in range(3)], "score": float(rng.random())})
            for _ in range(n)]


def bench_masks(*, quick: bool = False, repeats: int = 3) -> dict[str, float]:
    """Masks per second and the ratio to one forward pass, at 1k and at Qwen3 size."""
    torch.set_num_threads(2)
    n = 64 if quick else 256
    text = corpus(Recipe(), 500) + json_corpus(4000, np.random.default_rng(1))
    small = train_bpe(text, 1000)
    rate, ratio = _walk_against_forward(small, len(small), n, repeats)
    out = {"contract_masks_per_s_1k": rate, "contract_over_forward_1k": ratio,
           "contract_vocab_1k": float(len(small))}
    if vocab.available():
        rate, ratio = _walk_against_forward(vocab.qwen3_tokenizer(), vocab.QWEN3_VOCAB_ROWS,
                                            n // 4, repeats)
        out.update(contract_masks_per_s_qwen3=rate, contract_over_forward_qwen3=ratio)
    return out


def bench_calibrate(*, quick: bool = False) -> dict[str, float]:
    """End-to-end :func:`cliff.calibrate` of 256 rollouts (64 with ``quick``)."""
    from cliff.internal import load_model, load_tokenizer

    torch.set_num_threads(2)
    n = 64 if quick else 256
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(tmp, Recipe(steps=40 if quick else 150, prompts=64))
        tok = load_tokenizer(paths["teacher"], "--teacher")
        teacher = load_model(paths["teacher"], "--teacher")
        reference = load_model(paths["reference"], "--reference")
        prompts = [p.text for p in make_prompts(64, 8, 3, np.random.default_rng(3))]
        t0 = time.perf_counter()
        cal = cliff.calibrate(teacher, reference, tok, prompts, schema(8), c=5.0, rollouts=n,
                              max_new_tokens=40, progress=False)
        total = time.perf_counter() - t0
    t = cal.timings
    return {"calibrate_s": total, "calibrate_rollouts": float(n),
            "calibrate_contract_over_forward": t["contract"] / t["forward"],
            "calibrate_contract_s": t["contract"], "calibrate_forward_s": t["forward"],
            "calibrate_estimate_s": t.get("estimate", 0.0),
            "calibrate_positions": float(cal.rollouts["positions"])}


def run(*, quick: bool = False) -> dict[str, float]:
    out = bench_masks(quick=quick)
    out.update(bench_calibrate(quick=quick))
    return out
