"""The lambda of a scheduled run: ``cliff.LambdaScheduler`` fed by the batch's structural positions.

:func:`scheduler_lambda_fn` is a :data:`~validate.llm_check.opd.LambdaFn`, the hook through
which :func:`~validate.llm_check.opd.run_opd` asks for each step's lambda; the planned
``schedule`` runs (``--schedule``) use it instead of a fixed lambda.  The positions come from
the library's :class:`cliff.ContractPositions`, the glue a trainer uses.
"""

from __future__ import annotations

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

    Each step walks the batch's rollouts through the task's contract
    (:class:`cliff.ContractPositions`, grouped by position type, one scheduler slot per type
    of :data:`POSITION_TYPES`) and folds the teacher's and the reference's log-probs at every
    structural position into the scheduler.  A batch with no such position keeps the previous
    lambda (``min(target, 1)`` before the first update; :meth:`cliff.PositionBatch.update`).
    """
    sched = cliff.LambdaScheduler(target, c=cfg.c, c_low=cfg.c_low_value)
    finder = cliff.ContractPositions(contract(k), tokenizer, vocab_size, [info.eos_id],
                                     group=position_type, groups=POSITION_TYPES)

    @torch.no_grad()
    def fn(step: int, models: Models, ids: torch.Tensor, mask: torch.Tensor,
           gen: torch.Tensor) -> float:
        batch = finder.find(gen, stop_mask(gen, [info.eos_id]))  # (B, T): up to the stop
        t_lp = answer_logprobs(models.teacher, ids, mask, gen).double()  # (B, T, V)
        r_lp = answer_logprobs(models.reference, ids, mask, gen).double()
        return float(batch.update(sched, t_lp, r_lp))

    return fn
