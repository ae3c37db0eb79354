"""Clipped G-OPD (reward-extrapolated on-policy distillation) on Qwen3 models, in plain torch.

One readable loop, top to bottom: the three policies (:class:`Models`), the helpers the loop
uses (prompt encoding, the held-out evaluation, the valid mass per position type), then
:func:`run_opd`.  Everything a run depends on is a :class:`~validate.llm_check.config.Config`.

Per-token advantage of a sampled answer token ``y_t`` (derivations/model.md, "The clipped
advantage")::

    A_t = clip(log piT(y_t) - log pi(y_t), log c_low, log c)
          + (lam - 1) (log piT(y_t) - log pi0(y_t))

with ``pi`` the student that sampled the rollout, ``piT`` the teacher and ``pi0`` the frozen
warm-start student (the G-OPD reference).  The update is PPO's clipped surrogate on the
per-token ratio ``pi_new / pi`` (``update_epochs`` passes over the batch, Adam, gradient-norm
clip); with one epoch it is exactly REINFORCE with the advantage above.  ``optimizer = "sgd"``
takes that REINFORCE step with plain SGD instead: one pass, no gradient-norm clip,
``theta <- theta - lr * grad`` (:func:`update`).

Shapes: ``B`` rollouts, ``P`` prompt length, ``T`` generated length, ``V`` vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase, Qwen3ForCausalLM

from cliff.internal import stop_mask
from validate.llm_check.config import Config
from validate.llm_check.mechanism import ClipCount, MechanismTally
from validate.llm_check.models import answer_logprobs, left_pad, sample, token_logprobs
from validate.llm_check.task import POSITION_TYPES, Prompt, ndcg_at_1, parse_strict, position_type
from validate.llm_check.tokenizer import TokenInfo

__all__ = ["Models", "LambdaFn", "encode", "walk_answers", "valid_mass_by_type",
           "masses_by_rollout", "evaluate",
           "make_optimizer", "update", "run_opd"]


# ---------------------------------------------------------------------------------------------
# the policies, the evaluation


@dataclass
class Models:
    """The three policies of one configuration (``reference`` is a frozen copy of pi0)."""

    teacher: Qwen3ForCausalLM
    student: Qwen3ForCausalLM
    reference: Qwen3ForCausalLM


LambdaFn = Callable[[int, Models, torch.Tensor, torch.Tensor, torch.Tensor], float]
"""``(step, models, prompt_ids, prompt_mask, gen) -> lambda`` (a schedule hook)."""


def encode(prompts: Sequence[Prompt], tokenizer: PreTrainedTokenizerBase, info: TokenInfo,
           device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and mask ``(B, P)`` on ``device``."""
    ids, mask = left_pad([tokenizer.encode(p.text, add_special_tokens=False) for p in prompts],
                         info.pad_id)
    return ids.to(device), mask.to(device)


def walk_answers(gen: torch.Tensor, walker: Any, eos_id: int) -> Any:
    """The contract ``walker``'s walk of the rollouts ``gen`` ``(B, T)``, each cut after its
    first stop token."""
    live = stop_mask(gen, [eos_id])
    return walker.walk([row[: int(n)] for row, n in zip(gen.tolist(), live.sum(1).tolist(),
                                                        strict=True)])


def valid_mass_by_type(logprobs: NDArray[np.float64], gen: torch.Tensor, walker: Any,
                       eos_id: int, walk: Any = None) -> dict[str, float]:
    """Mean valid mass ``sum_{v valid} pi(v | context)`` per position type over the viable
    positions of the rollouts ``gen`` ``(B, T)``, from the full log-probs ``(B, T, V)`` of
    the policy that sampled them; types absent from the batch are left out.  ``walk`` is
    :func:`walk_answers`'s, when already made."""
    if walk is None:
        walk = walk_answers(gen, walker, eos_id)
    if len(walk.rows) == 0:
        return {}
    types = np.array([position_type(lab) or "" for lab in walk.labels])
    valid = walk.unpack(logprobs.shape[-1])  # (N, V)
    lp = logprobs[walk.rows, walk.steps]  # (N, V)
    mass = np.where(valid, np.exp(lp), 0.0).sum(axis=1)  # (N,)
    return {ty: float(mass[types == ty].mean()) for ty in POSITION_TYPES if (types == ty).any()}


def masses_by_rollout(logprobs: NDArray[np.float64], walk: Any, n_rollouts: int
                      ) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Per rollout and position type, the mean over that rollout's viable positions of the
    type of the valid mass ``sum_{v valid} pi(v | context)`` and of the tail mass (the rest,
    summed over the invalid tokens themselves, so a tail of 1e-9 keeps its digits); NaN for
    a rollout with no position of the type.  ``logprobs`` ``(B, T, V)`` are the full log-probs
    of the policy that sampled the ``B = n_rollouts`` rollouts that ``walk``
    (:func:`walk_answers`) walked; types absent from the batch are left out."""
    if len(walk.rows) == 0:
        return {}
    types = np.array([position_type(lab) or "" for lab in walk.labels])
    valid = walk.unpack(logprobs.shape[-1])  # (N, V)
    prob = np.exp(logprobs[walk.rows, walk.steps])  # (N, V)
    masses = {"valid": np.where(valid, prob, 0.0).sum(axis=1),
              "tail": np.where(valid, 0.0, prob).sum(axis=1)}  # (N,) each
    rows = np.asarray(walk.rows)
    out: dict[str, dict[str, NDArray[np.float64]]] = {}
    for ty in POSITION_TYPES:
        sel = types == ty
        if not sel.any():
            continue
        count = np.bincount(rows[sel], minlength=n_rollouts).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[ty] = {name: np.where(count > 0, np.bincount(rows[sel], weights=m[sel],
                                                             minlength=n_rollouts) / count,
                                      np.nan) for name, m in masses.items()}
    return out


def evaluate(model: Qwen3ForCausalLM, prompts: Sequence[Prompt], tokenizer: PreTrainedTokenizerBase,
             info: TokenInfo, cfg: Config, k: int, seed: int, walker: Any = None,
             mechanism: bool = False, per_rollout: bool = False) -> dict[str, Any]:
    """Strict parse rate over rollouts (one per prompt, in prompt order) and NDCG@1 over the
    parsed ones; ``parsed`` holds the per-rollout indicators (rollout ``n`` answers prompt
    ``n``), and with a contract ``walker`` ``valid_mass`` the mean valid mass per position
    type.  ``ndcg_at_1_all`` scores unparseable answers as 0 (the product of both effects).
    With ``mechanism`` (and a ``walker``) ``mechanism`` holds the evaluation's
    :class:`~validate.llm_check.mechanism.MechanismTally` record, from the same rollouts and
    log-probs.  With ``per_rollout`` (and a ``walker``) ``rollout_masses`` holds, per position
    type, the per-rollout valid and tail masses of :func:`masses_by_rollout` (lists in prompt
    order, NaN where a rollout has no such position): the ladder's bootstrap resamples them.
    """
    gen_ = torch.Generator(device=cfg.device).manual_seed(seed)
    parsed: list[bool] = []
    scores = []
    mass: dict[str, list[float]] = {}
    by_rollout: dict[str, dict[str, list[float]]] = {}
    tally = MechanismTally(k, info.texts, info.eos_id) if mechanism and walker else None
    for s in range(0, len(prompts), 128):
        chunk = prompts[s : s + 128]
        ids, mask = encode(chunk, tokenizer, info, cfg.device)
        gen, _ = sample(model, ids, mask, cfg.max_new, [info.eos_id], gen_)
        rows = gen.tolist()
        for row, p in zip(rows, chunk, strict=True):
            ranking = parse_strict(info.answer_text(row), k)
            parsed.append(ranking is not None)
            if ranking is not None:
                scores.append(ndcg_at_1(ranking, p.relevance))
        if walker is not None:
            with torch.no_grad():
                lp = answer_logprobs(model, ids, mask, gen).double().cpu().numpy()
            walk = walk_answers(gen, walker, info.eos_id)
            for ty, v in valid_mass_by_type(lp, gen, walker, info.eos_id, walk).items():
                mass.setdefault(ty, []).append(v)
            if per_rollout:
                found = masses_by_rollout(lp, walk, len(chunk))
                for ty in POSITION_TYPES:
                    for name in ("valid", "tail"):
                        got = found[ty][name] if ty in found else np.full(len(chunk), np.nan)
                        by_rollout.setdefault(ty, {}).setdefault(name, []).extend(got.tolist())
            if tally is not None:
                tally.add_walk(lp, walk)
                tally.add_answers(lp, rows, parsed[s : s + len(chunk)])
    n = len(prompts)
    out: dict[str, Any] = {
        "parse_rate": sum(parsed) / n,
        "ndcg_at_1": float(np.mean(scores)) if scores else float("nan"),
        "ndcg_at_1_all": float(np.sum(scores)) / n,
        "n": n,
        "parsed": parsed,
    }
    if walker is not None:
        out["valid_mass"] = {ty: float(np.mean(v)) for ty, v in mass.items()}
    if tally is not None:
        out["mechanism"] = tally.to_dict()
    if walker is not None and per_rollout:
        out["rollout_masses"] = {ty: v for ty, v in by_rollout.items()
                                 if not np.all(np.isnan(v["valid"]))}
    return out


# ---------------------------------------------------------------------------------------------
# the update


def make_optimizer(student: Qwen3ForCausalLM, cfg: Config) -> torch.optim.Optimizer:
    """``cfg.optimizer``'s optimizer of the student at ``cfg.opd_lr``: Adam (eps 1e-8) or
    plain SGD (no momentum, no weight decay)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(student.parameters(), lr=cfg.opd_lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(student.parameters(), lr=cfg.opd_lr, eps=1e-8)
    raise ValueError(f"cfg.optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")


def update(student: Qwen3ForCausalLM, optimizer: torch.optim.Optimizer, cfg: Config,
           ids: torch.Tensor, mask: torch.Tensor, gen: torch.Tensor, b_logprobs: torch.Tensor,
           b_advantages: torch.Tensor, b_mask: torch.Tensor,
           first_logprobs: torch.Tensor | None = None) -> None:
    """One OPD update of ``student`` on a batch of rollouts ``gen`` ``(B, T)`` with behaviour
    log-probs, advantages and mask ``(B, T)`` (module docstring).

    ``adam``: ``cfg.update_epochs`` passes of PPO's clipped surrogate, each clipped to
    gradient norm ``cfg.max_grad_norm``.  ``sgd``: one step on the REINFORCE loss
    ``-sum(A_t log pi(y_t)) / sum(mask)``, unclipped: ``theta - lr * grad``.

    ``first_logprobs``, when given, are the student's log-probs of ``gen`` ``(B, T)`` at the
    current weights with their autograd graph (the behaviour pass of :func:`run_opd`): the
    first pass differentiates them instead of running a forward of its own.  The weights
    have not moved since, and a model without dropout computes the same in eval and train
    mode, so the values, the ratio (exactly 1) and the gradient are those of a fresh
    forward, bit for bit; one forward per update is saved.
    """
    student.train()
    if cfg.optimizer == "sgd":
        newlogprob = (token_logprobs(student, ids, mask, gen) if first_logprobs is None
                      else first_logprobs)  # (B, T)
        pg_loss = -(b_advantages * newlogprob * b_mask).sum() / b_mask.sum()
        optimizer.zero_grad()
        pg_loss.backward()
        optimizer.step()
        student.eval()
        return
    for epoch in range(cfg.update_epochs):
        newlogprob = (first_logprobs if epoch == 0 and first_logprobs is not None
                      else token_logprobs(student, ids, mask, gen))  # (B, T)
        ratio = torch.exp(newlogprob - b_logprobs)
        pg_loss1 = -b_advantages * ratio
        pg_loss2 = -b_advantages * torch.clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
        pg_loss = (torch.max(pg_loss1, pg_loss2) * b_mask).sum() / b_mask.sum()
        optimizer.zero_grad()
        pg_loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.max_grad_norm)
        optimizer.step()
    student.eval()


# ---------------------------------------------------------------------------------------------
# the loop


def run_opd(models: Models, train_prompts: Sequence[Prompt], eval_prompts: Sequence[Prompt],
            tokenizer: PreTrainedTokenizerBase, info: TokenInfo, cfg: Config, k: int, lam: float,
            seed: int, lam_fn: LambdaFn | None = None, desc: str = "opd", *,
            c: float | None = None, c_low: float | None = None, steps: int | None = None,
            eval_at: Sequence[int] = (), walker: Any = None, progress: bool = True,
            per_rollout: bool = False) -> dict[str, Any]:
    """Train ``models.student`` in place with clipped G-OPD at ``lam``; return metrics.

    ``c`` / ``c_low`` override the clip (default ``cfg.c`` / ``cfg.c_low_value``), ``steps``
    the budget (default ``cfg.opd_steps``).  The student is evaluated on ``eval_prompts``
    (the same seed, so the same sampling stream, at every point) after each step count in
    ``eval_at`` and after the last step.  Returns ``final`` (the last evaluation), ``evals``
    (step -> evaluation) and a short ``history`` (mean advantage, approximate reverse KL to
    the teacher, lambda used, the batch's shares of tokens clipped at the cap and the floor,
    and with a contract ``walker`` the valid mass per position type of the batch's own
    rollouts every ``cfg.mass_every`` steps).  With a ``walker`` each evaluation carries its
    ``mechanism`` record (:mod:`validate.llm_check.mechanism`) with the ``clip_share`` of
    the training tokens sampled up to that step, and with ``per_rollout`` its per-rollout
    masses (:func:`evaluate`).
    """
    c = cfg.c if c is None else c
    if c_low is None:
        c_low = cfg.c_low_value if c == cfg.c else 1.0 / c
    steps = cfg.opd_steps if steps is None else steps
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen_ = torch.Generator(device=cfg.device).manual_seed(seed)
    student, teacher, reference = models.student, models.teacher, models.reference
    optimizer = make_optimizer(student, cfg)
    log_c, log_c_low = math.log(c), (math.log(c_low) if c_low > 0 else -math.inf)
    history: list[dict[str, Any]] = []
    evals: dict[int, dict[str, Any]] = {}
    lams: list[float] = []
    clips = ClipCount()
    reuse = getattr(student.config, "attention_dropout", 0.0) == 0.0  # Qwen3's only dropout

    def evaluate_with_clips(done: int) -> dict[str, Any]:
        ev = evaluate(student, eval_prompts, tokenizer, info, cfg, k, seed + 10_000, walker,
                      mechanism=True, per_rollout=per_rollout)
        if "mechanism" in ev:
            ev["mechanism"]["clip_share"] = {"steps": done, **clips.to_dict()}
        return ev

    for step in tqdm(range(steps), desc=desc, leave=False, disable=not progress):
        # --- rollouts
        idx = rng.integers(0, len(train_prompts), size=cfg.rollouts)
        ids, mask = encode([train_prompts[i] for i in idx], tokenizer, info, cfg.device)
        gen, live = sample(student, ids, mask, cfg.max_new, [info.eos_id], gen_)  # (B, T)
        b_mask = live.to(gen.device).float()  # sample returns live on the CPU
        # without dropout the behaviour pass keeps its graph for the update's first pass
        with torch.set_grad_enabled(reuse):
            full = answer_logprobs(student, ids, mask, gen)  # (B, T, V) log pi
        first_logprobs = full.gather(-1, gen.unsqueeze(-1)).squeeze(-1)  # (B, T)
        b_full, b_logprobs = full.detach(), first_logprobs.detach()  # (behaviour)
        with torch.no_grad():
            b_teacher = token_logprobs(teacher, ids, mask, gen)  # log piT
            b_reference = token_logprobs(reference, ids, mask, gen)  # log pi0
        lam_t = lam if lam_fn is None else lam_fn(step, models, ids, mask, gen)
        lams.append(float(lam_t))
        # --- clipped G-OPD advantage, per token
        log_ratio = b_teacher - b_logprobs  # (B, T) log piT / pi
        is_term = torch.clamp(log_ratio, min=log_c_low, max=log_c)
        b_advantages = is_term + (lam_t - 1.0) * (b_teacher - b_reference)  # (B, T)
        counted = live.to(log_ratio.device)
        n_live = int(counted.sum())
        n_cap = int(((log_ratio > log_c) & counted).sum())  # where the clip binds
        n_floor = int(((log_ratio < log_c_low) & counted).sum())
        clips.add(n_live, n_cap, n_floor)
        # --- the update: PPO-style (adam) or one REINFORCE step (sgd)
        update(student, optimizer, cfg, ids, mask, gen, b_logprobs, b_advantages, b_mask,
               first_logprobs if reuse else None)
        row: dict[str, Any] = {
            "step": step, "lambda": float(lam_t),
            "mean_advantage": float((b_advantages * b_mask).sum() / b_mask.sum()),
            "reverse_kl": float(((b_logprobs - b_teacher) * b_mask).sum() / cfg.rollouts),
            "clipped_at_cap": n_cap / max(1, n_live),
            "clipped_at_floor": n_floor / max(1, n_live),
        }
        if walker is not None and (step % cfg.mass_every == 0 or step == steps - 1):
            row["valid_mass"] = valid_mass_by_type(b_full.double().cpu().numpy(), gen, walker,
                                                   info.eos_id)
        history.append(row)
        if step + 1 in eval_at and step + 1 != steps:
            evals[step + 1] = evaluate_with_clips(step + 1)
    final = evaluate_with_clips(steps)
    evals[steps] = final
    keep = [h for h in history if "valid_mass" in h] or history[:: max(1, len(history) // 20)]
    return {"final": final, "evals": evals, "history": keep,
            "mean_lambda": float(np.mean(lams)) if lams else 1.0}
