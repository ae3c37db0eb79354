"""Small Qwen3 models: construction, offline loading, SFT and token log-probs.

Sampling and scoring are the library's (:mod:`cliff.internal`), re-exported here.

Shapes: ``B`` batch, ``P`` prompt length (left-padded), ``T`` generated length, ``V`` vocab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm
from transformers import (
    PreTrainedTokenizerBase,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from cliff.internal import answer_logprobs, left_pad, load_model, load_tokenizer, sample

__all__ = ["Batch", "TinyQwen3", "answer_logprobs", "left_pad", "load_checkpoint", "new_model",
           "on_device", "sample", "token_logprobs", "train_sft"]


@dataclass(frozen=True)
class TinyQwen3:
    """Size of the models trained here (about 0.3M parameters with a 40-token vocab)."""

    hidden_size: int = 128
    """width of the residual stream"""
    intermediate_size: int = 256
    """MLP hidden width"""
    num_hidden_layers: int = 2
    """decoder layers"""
    num_attention_heads: int = 4
    """query heads"""
    num_key_value_heads: int = 2
    """key/value heads (grouped-query attention)"""
    head_dim: int = 32
    """per-head width"""
    max_position_embeddings: int = 128
    """longest prompt + answer"""


def new_model(vocab_size: int, pad_id: int, eos_id: int, size: TinyQwen3,
              seed: int) -> Qwen3ForCausalLM:
    """A freshly initialised ``Qwen3ForCausalLM`` (weights drawn under ``manual_seed(seed)``)."""
    cfg = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        head_dim=size.head_dim,
        max_position_embeddings=size.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(cfg)


def load_checkpoint(path: str, argument: str) -> tuple[Qwen3ForCausalLM, PreTrainedTokenizerBase]:
    """Load a Qwen3 checkpoint and its tokenizer from a local folder, never from the network
    (:func:`cliff.internal.load_model`: ``FileNotFoundError`` naming ``argument`` and ``path``
    when the folder or its ``config.json`` is missing, ``local_files_only=True``)."""
    return load_model(path, argument), load_tokenizer(path, argument)


def on_device(model: Qwen3ForCausalLM, device: str) -> Qwen3ForCausalLM:
    """``model`` moved to ``device``, in eval mode."""
    return torch.nn.Module.to(model, torch.device(device)).eval()


def token_logprobs(
    model: Qwen3ForCausalLM, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, gen: torch.Tensor
) -> torch.Tensor:
    """Log-probability ``(B, T)`` of each generated token."""
    lp = answer_logprobs(model, prompt_ids, prompt_mask, gen)
    return lp.gather(-1, gen.unsqueeze(-1)).squeeze(-1)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(prompt_ids, prompt_mask, answer_ids, answer_mask)``; answers right-padded."""


def train_sft(
    model: Qwen3ForCausalLM,
    next_batch: Callable[[np.random.Generator], Batch],
    steps: int,
    lr: float,
    seed: int,
    desc: str,
    position: int = 0,
) -> list[float]:
    """Teacher-forced cross-entropy on answer tokens (AdamW, linear warm-down). Returns losses.
    ``position`` is the progress bar's line (models trained side by side take one each)."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / max(steps, 1))
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc=desc, leave=False, position=position):
        prompt_ids, prompt_mask, ans, ans_mask = next_batch(rng)
        lp = token_logprobs(model, prompt_ids, prompt_mask, ans)  # (B, T)
        loss = -(lp * ans_mask).sum() / ans_mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses
