"""Small Qwen3 models: construction, offline loading, SFT, KV-cached sampling, log-probs.

Shapes: ``B`` batch, ``P`` prompt length (left-padded), ``T`` generated length, ``V`` vocab.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from transformers.cache_utils import DynamicCache


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
    """Load a Qwen3 checkpoint and its tokenizer from a local folder, never from the network.

    Raises ``FileNotFoundError`` naming ``argument`` and ``path`` when the folder or its
    ``config.json`` is missing; the check runs before any ``from_pretrained`` call, which is
    made with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: no such checkpoint folder: {str(folder)!r}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{argument}: {str(folder)!r} has no config.json (expected a save_pretrained folder)"
        )
    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = Qwen3ForCausalLM.from_pretrained(str(folder), local_files_only=True)
    return model, tokenizer


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists to ``(B, P)`` ids and a ``(B, P)`` attention mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s) :] = 1
    return ids, mask


@functools.cache
def _cache_argument(model_class: type) -> str:
    """The name ``forward`` takes the KV cache under: ``cache`` in transformers >= 5.24,
    ``past_key_values`` before (and deprecated since)."""
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)


@torch.no_grad()
def sample(
    model: Qwen3ForCausalLM,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new: int,
    eos_id: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ancestral sampling with a KV cache.

    Returns ``gen`` ``(B, T)`` token ids and ``live`` ``(B, T)`` bool, true up to and
    including each row's first EOS (the tokens that count).  ``T <= max_new``.
    """
    model.eval()
    kv = {_cache_argument(type(model)): DynamicCache()}
    mask = prompt_mask
    pos = _positions(mask)
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=pos, use_cache=True, **kv)
    last_pos = pos[:, -1:]
    toks, lives = [], []
    alive = torch.ones(prompt_ids.shape[0], dtype=torch.bool)
    for _ in range(max_new):
        probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1)  # (B, V)
        nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        toks.append(nxt)
        lives.append(alive.clone())
        alive = alive & (nxt[:, 0] != eos_id)
        if not alive.any():
            break
        mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
        last_pos = last_pos + 1
        out = model(input_ids=nxt, attention_mask=mask, position_ids=last_pos, use_cache=True,
                    **kv)
    return torch.cat(toks, dim=1), torch.stack(lives, dim=1)


def answer_logprobs(
    model: Qwen3ForCausalLM, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, gen: torch.Tensor
) -> torch.Tensor:
    """Log-probabilities ``(B, T, V)`` of every vocabulary token at each answer position."""
    ids = torch.cat([prompt_ids, gen], dim=1)  # (B, P+T)
    mask = torch.cat([prompt_mask, torch.ones_like(gen)], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                   use_cache=False).logits
    p = prompt_ids.shape[1]
    return torch.log_softmax(logits[:, p - 1 : -1].float(), dim=-1)  # (B, T, V)


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
) -> list[float]:
    """Teacher-forced cross-entropy on answer tokens (AdamW, linear warm-down). Returns losses."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / max(steps, 1))
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc=desc, leave=False):
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
