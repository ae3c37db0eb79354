"""Rollouts and log-probs of causal language models: KV-cached sampling and scoring.

The one sampler of the project (the real-model check in ``validate/`` uses it too).  Any
``transformers`` causal LM works, on one device or sharded with ``device_map="auto"``:
inputs go to the device of the input embeddings, sampling happens where the logits come out.

Shapes: ``B`` batch, ``P`` prompt length (left-padded), ``T`` generated length, ``V`` the
model's output vocabulary (its lm_head rows), ``N`` gathered positions.  torch is imported
here, so this module is only imported by code that runs models.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import DynamicCache

__all__ = ["answer_logprobs", "input_device", "left_pad", "output_device", "position_logprobs",
           "sample", "stop_mask"]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists to ``(B, P)`` ids and a ``(B, P)`` attention mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
        mask[i, width - len(s) :] = 1
    return ids, mask


def input_device(model: Any) -> torch.device:
    """Where the model takes its input ids: the device of its input embeddings."""
    return torch.device(model.get_input_embeddings().weight.device)


def output_device(model: Any) -> torch.device:
    """Where the model's logits come out: the device of its output embeddings (lm_head)."""
    return torch.device(model.get_output_embeddings().weight.device)


@functools.cache
def _cache_argument(model_class: Any) -> str:
    """The name ``forward`` takes the KV cache under: ``cache`` in transformers >= 5.24,
    ``past_key_values`` before (and deprecated since)."""
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@functools.cache
def _keeps_logits(model_class: Any) -> bool:
    """Whether ``forward`` takes ``logits_to_keep`` (computes only the last positions' logits)."""
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)


def stop_mask(gen: torch.Tensor, stop_ids: Sequence[int]) -> torch.Tensor:
    """``(B, T)`` bool: true up to and including each row's first stop token."""
    is_stop = torch.isin(gen, torch.tensor(list(stop_ids), dtype=gen.dtype, device=gen.device))
    stopped_before = (is_stop.long().cumsum(-1) - is_stop.long()) > 0
    return ~stopped_before


@torch.no_grad()
def sample(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, max_new: int,
           stop_ids: Sequence[int], generator: torch.Generator, temperature: float = 1.0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ancestral sampling with a KV cache until every row has emitted a stop token.

    Parameters
    ----------
    model : transformers causal LM
    prompt_ids, prompt_mask : torch.Tensor, shape ``(B, P)``
        Left-padded prompts (:func:`left_pad`).
    max_new : int
        Most tokens generated per row.
    stop_ids : sequence of int
        Tokens that end a rollout (EOS and any other stop token).
    generator : torch.Generator
        On the device the logits come out on (:func:`output_device`).
    temperature : float
        Softmax temperature, ``> 0``.

    Returns
    -------
    gen : torch.Tensor, shape ``(B, T)``, on the logits' device
        Token ids, ``T <= max_new``.
    live : torch.Tensor of bool, shape ``(B, T)``
        True up to and including each row's first stop token (the tokens that count).
    """
    model.eval()
    kv = {_cache_argument(model.__class__): DynamicCache()}
    mask = prompt_mask
    pos = _positions(mask)
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=pos, use_cache=True, **kv)
    last_pos = pos[:, -1:]
    stops = torch.tensor(list(stop_ids), dtype=torch.long)
    toks, lives = [], []
    alive = torch.ones(prompt_ids.shape[0], dtype=torch.bool)
    for _ in range(max_new):
        probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1)  # (B, V)
        nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        toks.append(nxt)
        lives.append(alive.clone())
        alive = alive & ~torch.isin(nxt[:, 0].cpu(), stops)
        if not alive.any():
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        last_pos = last_pos + 1
        out = model(input_ids=nxt.to(prompt_ids.device), attention_mask=mask,
                    position_ids=last_pos, use_cache=True, **kv)
    return torch.cat(toks, dim=1), torch.stack(lives, dim=1)


def answer_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                    gen: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``(B, T, V)`` of every vocabulary token at each answer position."""
    ids = torch.cat([prompt_ids, gen.to(prompt_ids.device)], dim=1)  # (B, P+T)
    mask = torch.cat([prompt_mask, torch.ones_like(ids[:, prompt_ids.shape[1]:])], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                   use_cache=False).logits
    p = prompt_ids.shape[1]
    return torch.log_softmax(logits[:, p - 1 : -1].float(), dim=-1)  # (B, T, V)


@torch.no_grad()
def position_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                      gen: torch.Tensor, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``(N, V)`` (float32, on the logits' device) of every vocabulary token
    at the answer positions ``(rows[n], steps[n])``: the distribution of the token generated at
    step ``steps[n]`` of rollout ``rows[n]``, given the prompt and the tokens before it.

    One forward pass over prompt + answer; only the answer's logits are computed where the
    model supports ``logits_to_keep``, and only the ``N`` gathered rows are normalised.
    """
    model.eval()
    device = prompt_ids.device
    gen = gen.to(device)
    ids = torch.cat([prompt_ids, gen], dim=1)  # (B, P+T)
    mask = torch.cat([prompt_mask, torch.ones_like(gen)], dim=1)
    n_keep = gen.shape[1] + 1  # logits at positions P-1 .. P+T-1; the last predicts nothing
    extra = {"logits_to_keep": n_keep} if _keeps_logits(model.__class__) else {}
    logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                   use_cache=False, **extra).logits
    logits = logits[:, -n_keep:-1]  # (B, T, V)
    picked = logits[rows.to(logits.device), steps.to(logits.device)]  # (N, V)
    return torch.log_softmax(picked.float(), dim=-1)
