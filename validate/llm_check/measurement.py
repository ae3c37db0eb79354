"""Step 2 of a unit: p and b at the structural positions of the warm start, and the windows.

:func:`measure` runs :func:`cliff.calibrate` of the teacher against the warm start on the
task's contract, pools the measured positions by position type (:data:`~validate.llm_check.
task.POSITION_TYPES`) at the clip ``c`` and at the second clip ``c'``, and evaluates teacher
and warm start on the shared evaluation prompts.  The result, a :class:`Measurement`, holds
the predicted windows the grid and every test are built on; it is written into the gate's
record and the prediction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from transformers import PreTrainedTokenizerBase

import cliff
from validate.llm_check.config import Config
from validate.llm_check.opd import Models, evaluate
from validate.llm_check.task import POSITION_TYPES, Prompt, contract, position_type
from validate.llm_check.tokenizer import TokenInfo

__all__ = ["Measurement", "measure", "measure_positions", "position_table", "token_table"]


@dataclass(frozen=True)
class Measurement:
    """The measured teacher and warm start of one attempt of the gate (serialisable).

    Rows of the position tables are dicts (they are data, written as measured): see
    :func:`position_table` and :func:`token_table`.
    """

    position_types: list[dict[str, Any]]
    """per position type at c: count, mean p and b, regime, two-class lambda* and lambda_collapse"""
    by_token_types: list[dict[str, Any]]
    """per position type: 5% quantile and median over contexts of the by-token lambda*"""
    position_types_c_new: list[dict[str, Any]]
    """the position table at the second clip c' (lower clip 1/c')"""
    binding_type: str | None
    """the type with the smallest finite two-class lambda* (None: nothing binds)"""
    by_token_binding_type: str | None
    """the type with the smallest by-token median"""
    p: float | None
    """mean teacher valid mass at the binding type"""
    b: float | None
    """mean warm-start valid mass at the binding type"""
    windows: dict[str, list[float]]
    """the predicted windows, by name (:attr:`WINDOW_RULES`)"""
    two_class_c_new: list[float] | None
    """[lambda*, lambda_collapse] at c' of the binding type"""
    teacher: dict[str, Any]
    """the teacher's evaluation: parse rate, NDCG@1, valid mass per type"""
    warm_start: dict[str, Any]
    """the warm start's evaluation, on the same prompts and sampling seed"""

    WINDOW_RULES: ClassVar[dict[str, str]] = {
        "two_class": "[lambda*, lambda_collapse] of cliff.solve(mean p, mean b, c) at the "
                     "position type with the smallest lambda*",
        "by_token": "[5% quantile, median] over contexts of cliff.lambda_star_by_token at "
                    "the type with the smallest median"}
    """how each window is made from the tables, in words (written beside the windows)"""

    def to_dict(self) -> dict[str, Any]:
        return {"position_types": self.position_types, "by_token_types": self.by_token_types,
                "position_types_c_new": self.position_types_c_new,
                "binding_type": self.binding_type,
                "by_token_binding_type": self.by_token_binding_type, "p": self.p, "b": self.b,
                "windows": self.windows, "window_rules": dict(self.WINDOW_RULES),
                "two_class_c_new": self.two_class_c_new, "teacher": self.teacher,
                "warm_start": self.warm_start}


def measure(models: Models, tokenizer: PreTrainedTokenizerBase, info: TokenInfo, cfg: Config,
            k: int, est: Sequence[Prompt], ev: Sequence[Prompt], seed: int) -> Measurement:
    """Position tables at c and c', the windows, and the evaluations of teacher and warm
    start (parse rate, NDCG@1, valid mass per type) on the shared evaluation prompts."""
    cal = measure_positions(models, est, tokenizer, info, cfg, k, seed + 7)
    table = position_table(cal)
    tokens = token_table(cal)
    cal_new = cliff.Calibration.from_measurements(
        cal.measurements, c=cfg.c_new, c_low=1.0 / cfg.c_new, margin=cal.margin,
        quantile=cal.quantile, rollouts=cal.rollouts)
    table_new = position_table(cal_new)
    vocab = int(models.teacher.get_output_embeddings().weight.shape[0])
    walker = contract(k).compile(tokenizer, vocab, [info.eos_id])
    t_eval = evaluate(models.teacher, ev, tokenizer, info, cfg, k, seed + 11, walker)
    w_eval = evaluate(models.reference, ev, tokenizer, info, cfg, k, seed + 11, walker)
    solved = [r for r in table if math.isfinite(r["lambda_star"])]
    bind = min(solved, key=lambda r: r["lambda_star"]) if solved else None
    tok_bind = min(tokens, key=lambda r: r["median"]) if tokens else None
    windows: dict[str, list[float]] = {}
    if bind is not None:
        windows["two_class"] = [bind["lambda_star"], bind["lambda_collapse"]]
    if tok_bind is not None:
        windows["by_token"] = [tok_bind["quantile_05"], tok_bind["median"]]
    row_new = next((r for r in table_new if bind is not None and r["type"] == bind["type"]),
                   None)
    return Measurement(
        position_types=table, by_token_types=tokens, position_types_c_new=table_new,
        binding_type=bind["type"] if bind else None,
        by_token_binding_type=tok_bind["type"] if tok_bind else None,
        p=bind["mean_p"] if bind else None, b=bind["mean_b"] if bind else None,
        windows=windows,
        two_class_c_new=[row_new["lambda_star"], row_new["lambda_collapse"]] if row_new else None,
        teacher={k_: v for k_, v in t_eval.items() if k_ != "parsed"},
        warm_start={k_: v for k_, v in w_eval.items() if k_ != "parsed"})


def measure_positions(models: Models, prompts: Sequence[Prompt],
                      tokenizer: PreTrainedTokenizerBase, info: TokenInfo, cfg: Config, k: int,
                      seed: int) -> cliff.Calibration:
    """:func:`cliff.calibrate` of the teacher against the warm start on the task's contract
    (:func:`~validate.llm_check.task.contract`), one rollout per prompt, in batches of 64."""
    return cliff.calibrate(models.teacher, models.reference, tokenizer, [p.text for p in prompts],
                           contract(k), c=cfg.c, c_low=cfg.c_low_value, rollouts=len(prompts),
                           max_new_tokens=cfg.max_new, stop_ids=[info.eos_id], batch_size=64,
                           seed=seed, progress=False)


def by_type(cal: cliff.Calibration) -> tuple[Any, NDArray[np.str_]]:
    """The calibration's positions with their labels replaced by position types
    (:func:`~validate.llm_check.task.position_type`), and those types; positions of any other
    label are dropped."""
    m = cal.measurements
    types = np.array([position_type(lab) or "" for lab in m.labels.tolist()])
    keep = types != ""
    fields = {f.name: getattr(m, f.name)[keep] for f in dataclasses.fields(m)}
    return dataclasses.replace(m, **{**fields, "labels": types[keep]}), types[keep]


def position_table(cal: cliff.Calibration) -> list[dict[str, Any]]:
    """Per position type: count, mean p, mean b (pooled in log space, so near-1 masses keep
    their digits) and the two-class thresholds of those means, all from
    :class:`cliff.Calibration` pooled by type instead of by label."""
    m, _ = by_type(cal)
    pooled = cliff.Calibration.from_measurements(m, c=cal.c, c_low=cal.c_low, margin=cal.margin,
                                                 quantile=cal.quantile, rollouts=cal.rollouts)
    rows = []
    for ty in POSITION_TYPES:
        if ty not in set(m.labels.tolist()):
            continue
        r = pooled.row(ty)
        tail_p, tail_b = math.exp(r.log_p_rest), math.exp(r.log_b_rest)
        rows.append({"type": ty, "n": r.n, "mean_p": r.p, "mean_b": r.b, "mean_tail_p": tail_p,
                     "mean_tail_b": tail_b, "regime": r.regime, "binding": r.binding,
                     "lambda_star": r.lambda_star, "lambda_collapse": r.lambda_collapse})
    return rows


def token_table(cal: cliff.Calibration) -> list[dict[str, Any]]:
    """Per position type: 5% quantile and median over contexts of
    ``cliff.lambda_star_by_token`` (each valid token its own class, the rest pooled), as
    measured by :func:`cliff.calibrate`."""
    m, types = by_type(cal)
    rows = []
    for ty in POSITION_TYPES:
        sel = types == ty
        if sel.any():
            rows.append({"type": ty, "n": int(sel.sum()),
                         "quantile_05": float(np.quantile(m.by_token[sel], 0.05)),
                         "median": float(np.median(m.by_token[sel]))})
    return rows
