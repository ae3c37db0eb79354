r"""Clipped G-OPD in TRL, with lambda from :class:`cliff.LambdaScheduler`.

:class:`GOPDTrainer` is TRL's on-policy :class:`~trl.DistillationTrainer` (the student samples
its completions, the teacher scores them) with the loss replaced by the clipped G-OPD
objective of ``derivations/model.md``: per completion token ``y_t``,

.. math::

    A_t = \mathrm{clip}\big(\log\pi_T(y_t) - \log\pi(y_t),\ \log c_{low},\ \log c\big)
          + (\lambda - 1)\big(\log\pi_T(y_t) - \log\pi_0(y_t)\big),
    \qquad
    \mathcal{L} = -\frac{1}{N} \sum_{t} m_t\, \mathrm{sg}(A_t)\, \log\pi_\theta(y_t),

with ``pi`` the student that sampled the completion (the current one: TRL generates once per
optimizer step), ``piT`` the teacher, ``pi0`` the frozen G-OPD reference (by default a copy of
the initial student), ``m_t`` the completion mask, ``sg`` stop-gradient and ``N`` the
completion tokens of the batch.  With ``lambda_schedule="cliff"`` every training micro-batch
is walked through the output contract (:class:`cliff.ContractPositions`) and the teacher's
and the reference's log-probs at its structural positions update the scheduler, reduced on
the trainer's device; lambda is its answer, ``min(target, 1)`` until it has seen enough
contexts.

Logged each step (averaged over ``logging_steps``): ``cliff/lambda``,
``cliff/lambda_star_bound`` (the smallest lower confidence bound on lambda* over the groups
that have one), ``cliff/parse_valid_frac`` and ``cliff/truncated_frac`` (shares of the
completions that complete a document, that are cut by the length limit while still viable),
``cliff/clip_frac_high`` and ``cliff/clip_frac_low`` (shares of the completion tokens whose
teacher/student log-ratio lies above ``log c``, below ``log c_low``).  The scheduler's state
and the groups' order are written to every checkpoint (``cliff_lambda.json``) and restored
by ``train(resume_from_checkpoint=...)``.

This module imports torch and trl; ``import cliff`` imports neither.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import DistillationConfig, DistillationTrainer
from trl.models import prepare_deepspeed
from trl.trainer.utils import create_model_from_path

from cliff._calibration.contract import Contract
from cliff._calibration.positions import ContractPositions, PositionBatch
from cliff._schedule.scheduler import LambdaScheduler
from cliff._util.atomic import atomic_path

__all__ = ["GOPDConfig", "GOPDTrainer", "STATE_NAME", "gopd_advantage", "gopd_loss"]

SCHEDULES = ("fixed", "cliff")
KINDS = ("json_schema", "lark", "regex")
STATE_NAME = "cliff_lambda.json"
"""The file in each checkpoint folder that holds the scheduler's state and the groups."""


@dataclass
class GOPDConfig(DistillationConfig):
    r"""TRL's :class:`~trl.DistillationConfig` with the clipped G-OPD objective's settings.

    ``beta`` (the JSD interpolation of the distillation loss) is not used: the loss is the
    clipped G-OPD policy gradient (module docstring).  ``temperature`` is the sampling
    temperature, and all three models' log-probs are taken at it.  Activation checkpointing
    is off unless ``activation_checkpointing=True`` (TRL's configs turn it on through the name
    transformers now deprecates, with a warning at every construction).

    Examples
    --------
    >>> cfg = GOPDConfig(output_dir="out", target_lambda=1.5, c=5.0, c_low=0.2, bf16=False,
    ...                  contract={"type": "array", "items": {"type": "integer"}})
    >>> cfg.lambda_schedule, cfg.output_contract().kind
    ('cliff', 'json_schema')
    """

    target_lambda: float = field(default=1.25, metadata={"help": (
        "The extrapolation coefficient lambda to train at (>= 0; 1 is plain on-policy "
        "distillation; G-OPD's README uses 1.25). With lambda_schedule='cliff' it is the most "
        "the scheduler returns.")})
    c: float | None = field(default=5.0, metadata={"help": (
        "Cap of the clip of the teacher/student ratio piT/pi (> 1; None: no upper clip).")})
    c_low: float | None = field(default=0.2, metadata={"help": (
        "Floor of that clip, in (0, 1) (None or 0: no lower clip). The model's default is 1/c "
        "(0.2 at c = 5).")})
    lambda_schedule: str = field(default="cliff", metadata={"help": (
        "'fixed': lambda = target_lambda every step. 'cliff': lambda from "
        "cliff.LambdaScheduler, kept below the clip-safety threshold lambda* (needs c and a "
        "contract).")})
    lambda_margin: float = field(default=0.05, metadata={"help": (
        "The scheduler's margin, a share of the headroom lambda* - 1, in [0, 1).")})
    lambda_scheduler_kwargs: dict[str, Any] | str | None = field(default=None, metadata={
        "help": ("Other arguments of cliff.LambdaScheduler (estimator, quantile, window, "
                 "decay, confidence, min_samples).")})
    reference_model_name_or_path: str | None = field(default=None, metadata={"help": (
        "The frozen G-OPD reference pi0 (the warm start). None: a frozen copy of the student "
        "as the trainer receives it.")})
    reference_model_init_kwargs: dict[str, Any] | str | None = field(default=None, metadata={
        "help": "Keyword arguments of from_pretrained for reference_model_name_or_path."})
    contract: dict[str, Any] | str | None = field(default=None, metadata={"help": (
        "The output contract: a JSON schema (dict or JSON text), or with contract_kind 'lark' "
        "or 'regex' a grammar or pattern; a cliff.Contract is accepted too.")})
    contract_kind: str = field(default="json_schema", metadata={
        "help": "'json_schema', 'lark' or 'regex'."})
    contract_json_labels: bool = field(default=False, metadata={
        "help": "For 'lark' and 'regex': the texts are JSON, label positions by JSONPath."})
    gradient_checkpointing: bool | None = field(  # type: ignore[assignment]
        default=None, metadata={"help": (
            "Deprecated by transformers for activation_checkpointing, which decides when this "
            "is None (off unless set; TRL's own configs default to on).")})

    _VALID_DICT_FIELDS = DistillationConfig._VALID_DICT_FIELDS + [
        "lambda_scheduler_kwargs", "reference_model_init_kwargs"]

    def __post_init__(self) -> None:
        if isinstance(self.contract, Contract):
            self.contract_kind = self.contract.kind
            self.contract_json_labels = self.contract.json_labels
            self.contract = self.contract.source
        super().__post_init__()
        lam = float(self.target_lambda)
        if not (math.isfinite(lam) and lam >= 0.0):
            raise ValueError(f"target_lambda must be a finite number >= 0, got "
                             f"{self.target_lambda!r}")
        if self.c is not None and not (math.isfinite(self.c) and self.c > 1.0):
            raise ValueError(f"c must be a finite ratio cap > 1 or None (no upper clip), got "
                             f"{self.c!r}")
        if self.c_low == 0.0:
            self.c_low = None
        if self.c_low is not None and not (0.0 < self.c_low < 1.0):
            raise ValueError(f"c_low must be in (0, 1), or None or 0 (no lower clip), got "
                             f"{self.c_low!r}")
        if self.lambda_schedule not in SCHEDULES:
            raise ValueError(f"lambda_schedule must be one of {SCHEDULES}, got "
                             f"{self.lambda_schedule!r}")
        if not 0.0 <= self.lambda_margin < 1.0:
            raise ValueError(f"lambda_margin must be in [0, 1), got {self.lambda_margin!r}")
        if self.contract_kind not in KINDS:
            raise ValueError(f"contract_kind must be one of {KINDS}, got {self.contract_kind!r}")
        for name in ("lambda_scheduler_kwargs", "reference_model_init_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict or its JSON text, got {value!r}")
        if self.lambda_schedule == "cliff" and (self.c is None or self.contract is None):
            raise ValueError("lambda_schedule='cliff' needs a clip c (without one there is no "
                             "clip-safety threshold) and a contract (where the structural "
                             f"positions are); got c={self.c!r}, contract={self.contract!r}; "
                             "set them, or lambda_schedule='fixed'")

    def output_contract(self) -> Contract | None:
        """The :class:`cliff.Contract` of ``contract`` and ``contract_kind`` (``None``
        without one)."""
        if self.contract is None:
            return None
        if self.contract_kind == "json_schema":
            return Contract.json_schema(self.contract)
        if not isinstance(self.contract, str):
            raise ValueError(f"contract must be the {self.contract_kind} as a string, got "
                             f"{type(self.contract).__name__}")
        make = Contract.lark if self.contract_kind == "lark" else Contract.regex
        return make(self.contract, json_labels=self.contract_json_labels)


def gopd_advantage(logp_student: torch.Tensor, logp_teacher: torch.Tensor,
                   logp_reference: torch.Tensor, lam: float | torch.Tensor, *,
                   c: float | None, c_low: float | None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The clipped G-OPD advantage of each sampled token, and where the ratio is clipped.

    .. math::

        A = \mathrm{clip}(\ell_T - \ell, \log c_{low}, \log c) + (\lambda - 1)(\ell_T - \ell_0)

    Parameters
    ----------
    logp_student, logp_teacher, logp_reference : torch.Tensor, shape ``(B, T)``
        ``log pi(y_t)`` of the student that sampled the tokens, ``log piT(y_t)`` and
        ``log pi0(y_t)``; the student's is detached here.
    lam : float or torch.Tensor
        lambda; a tensor broadcastable to ``(B, T)`` gives per-token values.
    c, c_low : float or None
        Ratio cap ``> 1`` and floor in ``(0, 1)``; ``None`` leaves that side unclipped.

    Returns
    -------
    advantage : torch.Tensor, shape ``(B, T)`` (no gradient)
    high, low : torch.Tensor of bool, shape ``(B, T)``
        Where the log-ratio lies above ``log c``, below ``log c_low``.

    Examples
    --------
    >>> s, t, r = torch.log(torch.tensor([[0.5, 0.01]])), torch.zeros(1, 2), torch.zeros(1, 2)
    >>> a, high, low = gopd_advantage(s, t - 0.1, r, 1.5, c=5.0, c_low=0.2)
    >>> [round(v, 4) for v in a[0].tolist()], high.tolist()    # log 5 caps log(0.905/0.01)
    ([0.5431, 1.5594], [[False, True]])
    """
    log_ratio = (logp_teacher - logp_student).detach()
    hi = math.inf if c is None else math.log(c)
    lo = -math.inf if c_low is None else math.log(c_low)
    clipped = log_ratio.clamp(min=lo, max=hi)
    advantage = clipped + (lam - 1.0) * (logp_teacher - logp_reference).detach()
    return advantage.detach(), log_ratio > hi, log_ratio < lo


def gopd_loss(logp: torch.Tensor, logp_teacher: torch.Tensor, logp_reference: torch.Tensor,
              mask: torch.Tensor, lam: float | torch.Tensor, *, c: float | None,
              c_low: float | None, num_items: float | torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The clipped G-OPD policy-gradient loss ``-sum_t m_t sg(A_t) log pi_theta(y_t) / N``.

    Parameters
    ----------
    logp : torch.Tensor, shape ``(B, T)``
        ``log pi_theta(y_t)`` of the student being trained, with its gradient; its detached
        value is the sampling student's ``log pi`` of :func:`gopd_advantage` (on-policy).
    logp_teacher, logp_reference : torch.Tensor, shape ``(B, T)``
    mask : torch.Tensor, shape ``(B, T)``
        1 on the completion tokens that count.
    lam, c, c_low
        As in :func:`gopd_advantage`.
    num_items : optional
        ``N``; default the mask's sum (at least 1).  TRL passes the batch's token count
        across gradient-accumulation steps and processes.

    Returns
    -------
    loss : torch.Tensor, scalar
    stats : dict of torch.Tensor
        ``advantage`` ``(B, T)`` and the counts ``tokens``, ``clipped_high``,
        ``clipped_low`` over the masked tokens.
    """
    m = mask.to(logp.dtype)
    advantage, high, low = gopd_advantage(logp, logp_teacher, logp_reference, lam, c=c,
                                          c_low=c_low)
    total = -(advantage * logp * m).sum()
    n = m.sum().clamp(min=1.0) if num_items is None else num_items
    on = m > 0
    stats = {"advantage": advantage, "tokens": on.sum(), "clipped_high": (high & on).sum(),
             "clipped_low": (low & on).sum()}
    return total / n, stats


def _kwargs(value: dict[str, Any] | str | None) -> dict[str, Any]:
    """A config's keyword-argument field as a dict (``GOPDConfig`` has parsed JSON text)."""
    return {} if value is None else dict(value) if isinstance(value, dict) else json.loads(value)


class GOPDTrainer(DistillationTrainer):
    r"""On-policy distillation with the clipped G-OPD objective and a scheduled lambda.

    Parameters
    ----------
    model, teacher_model
        As in :class:`~trl.DistillationTrainer` (a model or a path).
    args : GOPDConfig
    reference_model : PreTrainedModel or str, optional
        The frozen G-OPD reference ``pi0``; default ``args.reference_model_name_or_path``,
        else a frozen copy of ``model`` as given (the initial student).
    train_dataset, eval_dataset, processing_class, callbacks, optimizers, peft_config
        As in :class:`~trl.DistillationTrainer`; prompts are a ``"prompt"`` column.
    position_group : callable, optional
        ``label -> group or None`` for :class:`cliff.ContractPositions` (default: by label).

    Attributes
    ----------
    lambda_scheduler : cliff.LambdaScheduler or None
        Fed every training micro-batch when there is a contract and a clip (also with
        ``lambda_schedule='fixed'``, where it only reports ``cliff/lambda_star_bound``).
    positions : cliff.ContractPositions or None
    reference_model
        The prepared frozen reference.

    Notes
    -----
    *Where lambda comes from.*  Each training micro-batch, before its loss: its completions
    are walked through the contract, and the teacher's and the reference's log-probs at the
    structural positions (``[S, P, V]``, grouped by label) update the scheduler, reduced on
    the trainer's device.  With several processes each keeps its own scheduler over its
    own completions and the smallest of their lambdas is used by all; the checkpoint holds
    the main process's, which every process restores.

    *What is logged and saved*: module docstring.  Completions are cut by TRL at the first
    stop token; a completion that reaches ``max_completion_length`` still viable counts as
    truncated.
    """

    _tag_names = ["trl", "distillation", "g-opd", "cliff"]
    _name = "G-OPD"

    def __init__(self, model: Any, teacher_model: Any = None, args: GOPDConfig | None = None,
                 reference_model: Any = None, train_dataset: Any = None,
                 eval_dataset: Any = None, processing_class: Any = None,
                 callbacks: Any = None, optimizers: Any = (None, None),
                 peft_config: Any = None,
                 position_group: Callable[[str], str | None] | None = None) -> None:
        if not isinstance(args, GOPDConfig):
            raise ValueError(f"args must be a GOPDConfig (the clip, lambda and the contract), "
                             f"got {type(args).__name__}")
        if reference_model is None and args.reference_model_name_or_path is None:
            if isinstance(model, str):
                reference_model = model  # loaded again below: the initial student, frozen
            else:
                reference_model = copy.deepcopy(model)
        super().__init__(model=model, teacher_model=teacher_model, args=args,
                         train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, callbacks=callbacks,
                         optimizers=optimizers, peft_config=peft_config)
        self.reference_model = self._prepare_reference(reference_model, args)
        self.c, self.c_low = args.c, args.c_low
        self.lambda_schedule = args.lambda_schedule
        self.target_lambda = float(args.target_lambda)
        contract = args.output_contract()
        vocab = int(self.accelerator.unwrap_model(self.model).get_output_embeddings()
                    .weight.shape[0])
        self.positions: ContractPositions | None = None
        if contract is not None:
            self.positions = ContractPositions(contract, self._tokenizer, vocab,
                                               self.eos_token_ids, group=position_group)
        self.lambda_scheduler: LambdaScheduler | None = None
        if self.positions is not None and args.c is not None:
            self.lambda_scheduler = LambdaScheduler(
                self.target_lambda, c=args.c, c_low=0.0 if args.c_low is None else args.c_low,
                margin=args.lambda_margin, mode="global", **_kwargs(args.lambda_scheduler_kwargs))

    def _prepare_reference(self, reference: Any, args: GOPDConfig) -> Any:
        """Load (from a path), freeze and prepare the reference like the teacher."""
        if reference is None:
            reference = args.reference_model_name_or_path
        if isinstance(reference, str):
            kwargs = _kwargs(args.reference_model_init_kwargs or args.model_init_kwargs)
            reference = create_model_from_path(reference, **kwargs)
        reference.eval()
        reference.requires_grad_(False)
        rows = reference.config.get_text_config().vocab_size
        student_rows = self.accelerator.unwrap_model(self.model).config.get_text_config().vocab_size
        if rows != student_rows:
            raise ValueError(f"The reference model has vocab_size {rows} but the student has "
                             f"{student_rows}: the G-OPD reward log(piT/pi0) needs one "
                             "vocabulary")
        if self.is_deepspeed_enabled:
            return prepare_deepspeed(reference, self.accelerator)
        return self.accelerator.prepare_model(reference, evaluation_mode=True)

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        # TRL 1.16 reads `model.is_gradient_checkpointing`, which transformers 5.24 deprecates
        # with a FutureWarning at every generation; nothing a user can change, so hidden here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            return super()._generate_single_turn(*args, **kwargs)

    # --- the loss ---------------------------------------------------------------------------
    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """The clipped G-OPD loss of one micro-batch (module docstring); in training it
        first updates the scheduler with the micro-batch's structural positions."""
        training = bool(model.training)
        mode = "train" if training else "eval"
        if training and inputs.get("num_items_in_batch") is not None:
            num_items_in_batch = (inputs["num_items_in_batch"].clamp(min=1.0)
                                  / self.accelerator.num_processes)
        completion_ids, mask = inputs["completion_ids"], inputs["completion_mask"]
        logp_all = self._completion_logprobs(model, inputs)  # (B, T, V), with gradient
        with torch.no_grad():
            teacher_all = self._completion_logprobs(self.teacher_model, inputs)
            reference_all = self._completion_logprobs(self.reference_model, inputs)
        tokens = completion_ids.unsqueeze(-1)  # (B, T, 1)
        logp = logp_all.gather(-1, tokens).squeeze(-1)  # (B, T)
        logp_teacher = teacher_all.gather(-1, tokens).squeeze(-1)
        logp_reference = reference_all.gather(-1, tokens).squeeze(-1)
        batch = None if self.positions is None else self.positions.find(completion_ids, mask)
        lam = self._lambda(batch, teacher_all, reference_all, update=mode == "train")
        del teacher_all, reference_all
        loss, stats = gopd_loss(logp, logp_teacher, logp_reference, mask, lam, c=self.c,
                                c_low=self.c_low, num_items=num_items_in_batch)
        self._log_step(mode, lam, batch, stats)
        return (loss, None) if return_outputs else loss

    def _completion_logprobs(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """Log-probs ``(B, T, V)`` at the sampling temperature of every completion token."""
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        n = inputs["completion_ids"].shape[1]
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding, as in generation
        logits = model(input_ids=ids, attention_mask=attention, position_ids=positions,
                       logits_to_keep=n + 1, use_cache=False).logits[:, -n - 1 : -1]
        return torch.log_softmax(logits.float() / self.temperature, dim=-1)

    def _lambda(self, batch: PositionBatch | None, teacher: torch.Tensor,
                reference: torch.Tensor, *, update: bool) -> float:
        """lambda for this micro-batch: the target (``'fixed'``) or the scheduler's, after
        folding the batch in when ``update``; the smallest over processes."""
        sched = self.lambda_scheduler
        if sched is not None and batch is not None and update:
            scheduled = float(batch.update(sched, teacher, reference))
        elif sched is not None and sched.lambda_ is not None:
            scheduled = float(sched.lambda_)
        else:
            scheduled = min(self.target_lambda, 1.0)
        lam = self.target_lambda if self.lambda_schedule == "fixed" else scheduled
        if self.accelerator.num_processes > 1:
            lam = float(self.accelerator.gather(
                torch.tensor([lam], device=self.accelerator.device)).min())
        return lam

    def _log_step(self, mode: str, lam: float, batch: PositionBatch | None,
                  stats: dict[str, torch.Tensor]) -> None:
        metrics = self._metrics[mode]
        metrics["cliff/lambda"].append(lam)
        counts = torch.stack([stats["tokens"], stats["clipped_high"], stats["clipped_low"]])
        tokens, high, low = self.accelerator.gather(counts.reshape(1, 3)).sum(0).tolist()
        metrics["cliff/clip_frac_high"].append(high / tokens if tokens else math.nan)
        metrics["cliff/clip_frac_low"].append(low / tokens if tokens else math.nan)
        if self.lambda_scheduler is not None:
            bounds = self.lambda_scheduler.state().get("lambda_star_bound") or []
            known = [b for b in bounds if b is not None]
            metrics["cliff/lambda_star_bound"].append(min(known) if known else math.nan)
        if batch is not None:
            shares = torch.tensor([[batch.status.count("complete"),
                                    batch.status.count("truncated"), len(batch.status)]],
                                  dtype=torch.float64, device=self.accelerator.device)
            done, cut, n = self.accelerator.gather(shares).sum(0).tolist()
            metrics["cliff/parse_valid_frac"].append(done / n)
            metrics["cliff/truncated_frac"].append(cut / n)

    # --- checkpoints ------------------------------------------------------------------------
    def lambda_state(self) -> dict[str, Any]:
        """What a checkpoint holds (plain JSON): the scheduler's ``state_dict`` and the
        groups' order (``None`` where there is none)."""
        return {"scheduler": None if self.lambda_scheduler is None
                else self.lambda_scheduler.state_dict(),
                "positions": None if self.positions is None else self.positions.state_dict()}

    def load_lambda_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`lambda_state` output."""
        if (state.get("scheduler") is None) != (self.lambda_scheduler is None):
            raise ValueError("the checkpoint's lambda scheduler state does not match this "
                             "trainer (one has a contract and a clip, the other not)")
        if self.lambda_scheduler is not None:
            self.lambda_scheduler.load_state_dict(state["scheduler"])
        if self.positions is not None and state.get("positions") is not None:
            self.positions.load_state_dict(state["positions"])

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial),
                                  f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            with atomic_path(os.path.join(folder, STATE_NAME)) as tmp:
                tmp.write_text(json.dumps(self.lambda_state()) + "\n")

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, STATE_NAME)
        if not os.path.isfile(path):
            raise ValueError(f"resume_from_checkpoint: {checkpoint} has no {STATE_NAME} (the "
                             "lambda scheduler's state); it was not written by GOPDTrainer")
        with open(path) as f:
            self.load_lambda_state(json.load(f))
