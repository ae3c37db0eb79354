"""The scheduler's cost in training, as a ratio to the training step it rides on.

Figures (from :func:`bench`, printed by ``python -m validate.bench``)
----------------------------------------------------------------
scheduler_update_over_fwd_bwd
    One :meth:`cliff.LambdaScheduler.update` on torch tensors (float32 log-probs of the
    teacher and the reference at 512 contexts, ``[64, 8, V]``, a bool mask of about ten
    valid tokens a context, all on the CPU), reduced where the tensors are, over one
    forward and backward pass of the small model
    (:class:`~validate.llm_check.models.TinyQwen3`) with ``V = 151,936`` output rows on the
    batch the contexts come from: 32 completions of 16 tokens after 16-token prompts, the
    loss the mean log-prob of the completion tokens (logits of the completions only).
scheduler_update_numpy_over_fwd_bwd
    The same update given float64 numpy arrays (the host path: the copy to float64 on the
    host is part of its time, as it is of every update that starts from tensors).
scheduler_max_rel_diff
    Largest relative difference between the two paths' lambda* bounds and window values.

``--quick`` uses 64 contexts (``[8, 8, V]``) and 4 completions.  Each timing is the best of
``repeats`` after a warm-up run, a fresh scheduler each time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import cliff
from cliff.internal import threads
from validate.llm_check.models import TinyQwen3, new_model
from validate.llm_check.vocab import QWEN3_VOCAB_ROWS
from validate.timing import best_time

PROMPT, COMPLETION, GROUPS = 16, 16, 8


def _fwd_bwd(model: Any, ids: torch.Tensor) -> None:
    """One training pass: logits of the completion tokens, mean log-prob, backward."""
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, logits_to_keep=COMPLETION + 1).logits[:, :-1]  # (B, T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = ids[:, -COMPLETION:, None]
    (-logp.gather(-1, target).mean()).backward()


def _window(sched: cliff.LambdaScheduler) -> np.ndarray:
    return np.array([v if v is not None else np.inf
                     for row in sched.state_dict()["contexts"] for v in row])


def bench(*, quick: bool = False, repeats: int = 3) -> dict[str, float]:
    """The update's time over one forward and backward pass, both on the CPU."""
    torch.set_num_threads(2)
    n_completions = 4 if quick else 32
    slots = n_completions * COMPLETION // GROUPS  # S, with P = GROUPS: 512 contexts (64 quick)
    v = QWEN3_VOCAB_ROWS
    gen = torch.Generator().manual_seed(0)
    model = new_model(v, 0, 1, TinyQwen3(), 0).train()
    ids = torch.randint(2, v, (n_completions, PROMPT + COMPLETION), generator=gen)
    t_step = best_time(lambda: _fwd_bwd(model, ids), repeats + 1)

    with torch.no_grad():  # teacher and reference: two models' log-probs at the contexts
        other = new_model(v, 0, 1, TinyQwen3(), 1).eval()
        keep = COMPLETION + 1
        lt = torch.log_softmax(model(input_ids=ids, logits_to_keep=keep).logits[:, :-1], -1)
        lr = torch.log_softmax(other(input_ids=ids, logits_to_keep=keep).logits[:, :-1], -1)
    lt = lt.reshape(slots, GROUPS, v)  # (S, P, V): every completion token a context
    lr = lr.reshape(slots, GROUPS, v)
    valid = torch.zeros(slots, GROUPS, v, dtype=torch.bool)
    cols = torch.randint(0, v, (slots, GROUPS, 10), generator=gen)
    valid.scatter_(-1, cols, True)

    def on_device() -> cliff.LambdaScheduler:
        sched = cliff.LambdaScheduler(1.5, c=5.0, mode="per_position")
        sched.update(lt, lr, valid)
        return sched

    def on_host() -> cliff.LambdaScheduler:
        sched = cliff.LambdaScheduler(1.5, c=5.0, mode="per_position")
        sched.update(lt.double().numpy(), lr.double().numpy(), valid.numpy())
        return sched

    t_device = best_time(on_device, repeats + 1)
    t_host = best_time(on_host, repeats + 1)
    a, b = _window(on_device()), _window(on_host())
    finite = np.isfinite(b)
    assert np.array_equal(np.isfinite(a), finite)
    diff = float(np.max(np.abs(a[finite] - b[finite]) / np.abs(b[finite]), initial=0.0))
    return {"scheduler_update_over_fwd_bwd": t_device / t_step,
            "scheduler_update_numpy_over_fwd_bwd": t_host / t_step,
            "scheduler_update_s": t_device, "scheduler_update_numpy_s": t_host,
            "scheduler_fwd_bwd_s": t_step, "scheduler_contexts": float(slots * GROUPS),
            "scheduler_vocab": float(v), "scheduler_max_rel_diff": diff,
            "scheduler_threads": float(threads())}
