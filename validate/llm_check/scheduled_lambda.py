"""The lambda of a scheduled run: ``cliff.LambdaScheduler`` fed by the batch's structural positions.

:func:`scheduler_lambda_fn` is a :data:`~validate.llm_check.opd.LambdaFn`, the hook through
which :func:`~validate.llm_check.opd.run_opd` asks for each step's lambda; the planned
``schedule`` runs (``--schedule``) use it instead of a fixed lambda.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

import cliff
from cliff.internal import stop_mask
from validate.llm_check.config import Config
from validate.llm_check.models import answer_logprobs
from validate.llm_check.opd import LambdaFn, Models
from validate.llm_check.task import POSITION_TYPES, contract, position_type
from validate.llm_check.tokenizer import TokenInfo

__all__ = ["scheduler_lambda_fn"]


def scheduler_lambda_fn(cfg: Config, info: TokenInfo, k: int, target: float,
                        tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> LambdaFn:
    """A :data:`LambdaFn` driven by ``cliff.LambdaScheduler(target, c=cfg.c)``.

    Each step walks the batch's rollouts through the task's contract and passes the teacher
    and reference log-probs at every viable structural position, as ``[S, P, V]`` with ``P``
    = the position types and ``S`` the largest count of any type in the batch: type ``j``'s
    ``i``-th position sits in slot ``i``, and a slot past that type's count is padded with a
    real position's log-probs and marked absent (its ``valid`` row all False, which the
    scheduler skips).  A batch with no viable position keeps the previous lambda (1 before
    the first update).
    """
    sched = cliff.LambdaScheduler(target, c=cfg.c, c_low=cfg.c_low_value)
    walker = contract(k).compile(tokenizer, vocab_size, [info.eos_id])
    last = [1.0]

    @torch.no_grad()
    def fn(step: int, models: Models, ids: torch.Tensor, mask: torch.Tensor,
           gen: torch.Tensor) -> float:
        live = stop_mask(gen, [info.eos_id])
        walk = walker.walk([row[: int(n)] for row, n in zip(gen.tolist(), live.sum(1).tolist(),
                                                            strict=True)])
        types = np.array([position_type(lab) or "" for lab in walk.labels])
        picks = [np.flatnonzero(types == ty) for ty in POSITION_TYPES]
        n = max(len(v) for v in picks)
        if n == 0:
            return last[0]
        t_lp = answer_logprobs(models.teacher, ids, mask, gen).double().cpu().numpy()
        r_lp = answer_logprobs(models.reference, ids, mask, gen).double().cpu().numpy()
        filler = next(int(v[0]) for v in picks if len(v))
        pick = np.full((n, len(picks)), filler, dtype=np.int64)  # (S, P) positions of the walk
        present = np.zeros((n, len(picks)), dtype=bool)  # (S, P)
        for j, v in enumerate(picks):
            pick[: len(v), j] = v
            present[: len(v), j] = True
        rows, steps = walk.rows[pick], walk.steps[pick]
        valid = walk.unpack(t_lp.shape[-1], pick.ravel()).reshape(*pick.shape, -1)
        valid &= present[..., None]  # absent slots: all False
        last[0] = float(sched.update(t_lp[rows, steps], r_lp[rows, steps], valid))
        return last[0]

    return fn
