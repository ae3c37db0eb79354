r"""``cliff.calibrate``: lambda* of a teacher and a warm start, measured on an output contract.

One pass, batch by batch: sample rollouts from the reference (the G-OPD ``pi0``, the warm
start; or another ``policy``), walk each through the contract
(:mod:`cliff._calibration.contract`), score every viable position with the teacher and the
reference (one forward each), and reduce the log-probs at once to the position's masses
(:func:`cliff.estimate`) and by-token lambda*
(:func:`cliff.lambda_star_by_token`), so a 150k-token vocabulary never sits in memory for
more than a chunk of positions.  :class:`cliff.Calibration` pools the positions by label.
torch, transformers and llguidance are imported here, not by ``import cliff``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from cliff._calibration.contract import Contract, Walk
from cliff._calibration.estimate import DEFAULT_NORM_TOL, by_token, measure
from cliff._calibration.result import (
    Calibration,
    CalibrationWarning,
    Measurements,
    entry_warning,
)
from cliff._util import checks

__all__ = ["calibrate"]

_CHUNK_BYTES = 2**26
"""Float64 bytes of log-probs converted at once for the estimate (64 MiB: 55 positions of
a 151,936-token vocabulary, both models)."""


def calibrate(teacher: Any, reference: Any, tokenizer: Any, prompts: Sequence[str],
              contract: Contract | dict[str, Any], *, c: float, c_low: float | None = None,
              rollouts: int = 256, max_new_tokens: int = 64, policy: Any = None,
              stop_ids: Sequence[int] | None = None, batch_size: int = 16,
              temperature: float = 1.0, seed: int = 0, margin: float = 0.05,
              quantile: float = 0.05, chat_template: bool = False,
              progress: bool = True) -> Calibration:
    r"""lambda* per position of an output contract, from rollouts of the warm start.

    Parameters
    ----------
    teacher, reference : transformers causal LM
        The teacher ``piT`` and the G-OPD reference ``pi0`` (the warm start), on any device
        or sharded (``device_map="auto"``); they must share the output vocabulary.
    tokenizer : transformers tokenizer
        The tokenizer of both.
    prompts : sequence of str
        Prompts, tokenised as they are (``add_special_tokens=False``), or through the
        tokenizer's chat template with the generation prompt when ``chat_template``.
        Rollout ``i`` answers prompt ``i % len(prompts)``.
    contract : Contract or dict
        The output contract; a ``dict`` is a JSON schema.
    c, c_low : float
        IS clip cap ``> 1`` and floor in ``[0, 1)`` (default ``1/c``).
    rollouts : int
        Answers sampled, ``>= 1``.
    max_new_tokens : int
        Most tokens per answer; an answer is cut at its first stop token.
    policy : transformers causal LM, optional
        Who samples the rollouts; default ``reference``.
    stop_ids : sequence of int, optional
        Tokens that end an answer; default the tokenizer's EOS and every
        ``generation_config.eos_token_id`` of the two models.
    batch_size : int
        Rollouts per forward pass.
    temperature : float
        Sampling temperature of ``policy``.
    seed : int
        Seed of the sampling generator.
    margin, quantile : float
        Recommendation rule of :class:`cliff.Calibration`.
    chat_template : bool
        Apply the tokenizer's chat template (one user turn, generation prompt added).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Calibration
        Per-label ``n``, ``p``, ``b``, two-class and by-token thresholds, the binding label,
        the predicted parse rate against lambda, and the recommended lambda.

    Raises
    ------
    ValueError
        Arguments out of range, models whose output vocabularies differ, a contract the
        engine refuses, or one that leaves no choice at the first answer position.

    Warns
    -----
    CalibrationWarning
        When few or no rollouts entered the contract (their first token is not valid: check
        the prompt format or ``chat_template``).  The first answer position is measured all
        the same, and the report says how many entered.

    Notes
    -----
    A position is *viable* when the answer before it can still be completed into a document
    of the contract; the first answer position always is, so it is measured in every
    rollout, whether or not its sampled token enters the contract; every viable position of
    every rollout is measured, up to and
    including the one whose token leaves the contract, or the stop token that ends it.
    Positions where every token or none is valid carry no choice and are skipped.

    A label is ``"<where> <kind>"``, the part of the format a position is, so that positions
    with the same role pool together.  For JSON answers ``where`` is the JSONPath of the
    value (``$``, ``$.ranking``, ``$.ranking[3]``) and ``kind`` one of ``value``, ``key``,
    ``colon``, ``string``, ``number``, ``literal``, ``comma``, ``close``, ``comma or close``
    and ``end`` (separators carry the path of their container: ``$.ranking comma``).  Other
    contracts get ``next <chars>``, the bytes the contract allows next (``next [0-9]``,
    ``next <stop>``).
    """
    import torch
    from tqdm import tqdm

    from cliff._calibration.rollout import input_device, left_pad, output_device, sample

    c_, cl_ = check_settings(c=c, c_low=c_low, rollouts=rollouts, max_new_tokens=max_new_tokens,
                             batch_size=batch_size, temperature=temperature, margin=margin,
                             quantile=quantile)
    contract = contract if isinstance(contract, Contract) else Contract.json_schema(contract)
    encoded = encode_prompts(prompts, tokenizer, chat_template)
    vocab = _vocab_rows(teacher, reference, policy)
    stops = list(stop_ids) if stop_ids is not None else _stop_ids(tokenizer, teacher, reference)
    timer = _Timer()
    with timer("contract"):
        walker = contract.compile(tokenizer, vocab, stops)
    roller = reference if policy is None else policy
    generator = torch.Generator(device=output_device(roller)).manual_seed(int(seed))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    parts: list[dict[str, Any]] = []
    walks: list[Walk] = []
    with tqdm(total=rollouts, desc="calibrate", unit="rollout", disable=not progress) as bar:
        for start in range(0, rollouts, batch_size):
            idx = range(start, min(start + batch_size, rollouts))
            ids, mask = left_pad([encoded[i % len(encoded)] for i in idx], pad)
            ids, mask = ids.to(input_device(roller)), mask.to(input_device(roller))
            with timer("sample"):
                gen, live = sample(roller, ids, mask, max_new_tokens, stops, generator,
                                   temperature)
            answers = [row[: int(n)] for row, n in zip(gen.tolist(), live.sum(1).tolist(),
                                                       strict=True)]
            with timer("contract"):
                walk = walker.walk(answers)
            walks.append(walk)
            parts.append(_measure(teacher, reference, ids, mask, gen, walk, vocab, c_, cl_,
                                  start, timer))
            bar.update(len(idx))
    return _result(parts, walks, rollouts, contract, c_, cl_, margin, quantile, timer,
                   {"teacher": _name(teacher), "reference": _name(reference),
                    "policy": _name(roller), "vocab_size": vocab, "stop_ids": stops,
                    "max_new_tokens": max_new_tokens, "temperature": temperature,
                    "seed": seed, "chat_template": chat_template, "prompts": len(encoded),
                    "contract": {"kind": contract.kind, "source": contract.source}})


def check_settings(*, c: float, c_low: float | None, rollouts: int, max_new_tokens: int,
                   batch_size: int, temperature: float, margin: float, quantile: float
                   ) -> tuple[float, float]:
    """Check :func:`calibrate`'s settings (each error names its argument) before any model
    runs; returns ``(c, c_low)`` with the default floor ``1/c`` filled in."""
    c_ = float(checks.check_cap("c", c))
    cl_ = 1.0 / c_ if c_low is None else float(checks.check_floor("c_low", c_low))
    _positive("rollouts", rollouts)
    _positive("max_new_tokens", max_new_tokens)
    _positive("batch_size", batch_size)
    if not (checks.is_real(temperature) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    for name, v in (("margin", margin), ("quantile", quantile)):
        if not (checks.is_real(v) and 0.0 <= v < 1.0):
            raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
    return c_, cl_


def _positive(name: str, value: Any) -> None:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class _Timer:
    """Seconds per phase, summed over every ``with timer(phase)`` block."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0


def _name(model: Any) -> str:
    return str(getattr(model, "name_or_path", "") or type(model).__name__)


def encode_prompts(prompts: Sequence[str], tokenizer: Any, chat_template: bool) -> list[list[int]]:
    """Token ids of each prompt, encoded without special tokens.

    With ``chat_template`` each prompt is first wrapped as one user turn of the tokenizer's
    chat template, generation prompt added.  An empty sequence, a prompt that is not a
    string, or one that encodes to no tokens raises ``ValueError``.
    """
    if isinstance(prompts, str) or not len(prompts):
        raise ValueError(f"prompts must be a non-empty sequence of strings, got {prompts!r:.80}")
    out = []
    for i, text in enumerate(prompts):
        if not isinstance(text, str):
            raise ValueError(f"prompts[{i}] must be a string, got {type(text).__name__}")
        if chat_template:
            text = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                 tokenize=False, add_generation_prompt=True)
        ids = list(tokenizer.encode(text, add_special_tokens=False))
        if not ids:
            raise ValueError(f"prompts[{i}] encodes to no tokens: {text!r}")
        out.append(ids)
    return out


def _vocab_rows(teacher: Any, reference: Any, policy: Any) -> int:
    """The shared output vocabulary: the lm_head rows of every model."""
    rows = {name: int(m.get_output_embeddings().weight.shape[0])
            for name, m in (("teacher", teacher), ("reference", reference), ("policy", policy))
            if m is not None}
    if len(set(rows.values())) != 1:
        raise ValueError(f"teacher, reference (and policy) must share the output vocabulary, "
                         f"got lm_head rows {rows}")
    return next(iter(rows.values()))


def _stop_ids(tokenizer: Any, *models: Any) -> list[int]:
    ids = [tokenizer.eos_token_id]
    for m in models:
        eos = getattr(getattr(m, "generation_config", None), "eos_token_id", None)
        ids += eos if isinstance(eos, (list, tuple)) else [eos]
    out = list(dict.fromkeys(int(t) for t in ids if t is not None))
    if not out:
        raise ValueError("stop_ids: the tokenizer has no eos_token and the models' "
                         "generation_config names none; pass stop_ids")
    return out


def _measure(teacher: Any, reference: Any, ids: Any, mask: Any, gen: Any, walk: Walk,
             vocab: int, c: float, c_low: float, offset: int, timer: _Timer
             ) -> dict[str, Any]:
    """Masses and by-token lambda* of the walk's positions that carry a choice."""
    import torch

    from cliff._calibration.rollout import position_logprobs

    chunk = max(1, _CHUNK_BYTES // (16 * vocab))  # positions per float64 conversion
    count = np.concatenate([walk.unpack(vocab, slice(s, s + chunk)).sum(axis=1)
                            for s in range(0, len(walk.rows), chunk)] or [np.zeros(0, int)])
    keep = np.flatnonzero((count > 0) & (count < vocab))
    rows = torch.as_tensor(walk.rows[keep])
    steps = torch.as_tensor(walk.steps[keep])
    with timer("score"):
        lt = position_logprobs(teacher, ids, mask, gen, rows, steps)  # (N, V)
        lr = position_logprobs(reference, ids, mask, gen, rows, steps)
    out: dict[str, list[Any]] = {k: [] for k in ("lp", "lpr", "lb", "lbr", "tok")}
    with timer("estimate"):
        for s in range(0, len(keep), chunk):
            t_np = lt[s : s + chunk].double().cpu().numpy()
            r_np = lr[s : s + chunk].double().cpu().numpy()
            valid = walk.unpack(vocab, keep[s : s + chunk])
            got = measure(t_np, r_np, valid, None, True, DEFAULT_NORM_TOL)
            est = got.estimate
            for key, val in (("lp", est.log_p), ("lpr", est.log_p_rest), ("lb", est.log_b),
                             ("lbr", est.log_b_rest), ("tok", by_token(got, c, c_low))):
                out[key].append(val)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    complete = np.array([walk.status[r] == "complete" for r in walk.rows[keep]], dtype=bool)
    return {**cat, "labels": [walk.labels[i] for i in keep], "rollout": walk.rows[keep] + offset,
            "step": walk.steps[keep], "complete": complete}


def _result(parts: list[dict[str, Any]], walks: list[Walk], n: int, contract: Contract,
            c: float, c_low: float, margin: float, quantile: float, timer: _Timer,
            info: dict[str, Any]) -> Calibration:
    status = [s for w in walks for s in w.status]
    entered = int(sum(int(w.entered.sum()) for w in walks))
    kind = contract.kind.replace("_", " ")
    if not sum(len(p["labels"]) for p in parts):
        raise ValueError(
            f"contract: no position of the {n} rollouts carries a choice (at the first answer "
            f"position this {kind} allows every token or none; labels seen: "
            f"{sorted({lab for w in walks for lab in w.labels})[:3]}); check the contract")
    warning = entry_warning(n, entered, kind)
    if warning:
        warnings.warn(warning, CalibrationWarning, stacklevel=3)
    cat = {k: np.concatenate([np.asarray(p[k]) for p in parts])
           for k in ("lp", "lpr", "lb", "lbr", "tok", "rollout", "step", "complete")}
    labels = np.array([lab for p in parts for lab in p["labels"]], dtype=str)
    m = Measurements(labels, cat["rollout"].astype(np.int64), cat["step"].astype(np.int64),
                     cat["lp"], cat["lpr"], cat["lb"], cat["lbr"], cat["tok"],
                     cat["complete"].astype(bool))
    counts = {"n": n, "entered": entered, "complete": status.count("complete"),
              "left": status.count("left"), "open": status.count("open"),
              "positions": len(labels)}
    timings = dict(timer.seconds)
    timings["forward"] = timings.get("sample", 0.0) + timings.get("score", 0.0)
    timings["contract_over_forward"] = (timings.get("contract", 0.0) / timings["forward"]
                                        if timings["forward"] > 0 else math.nan)
    return Calibration.from_measurements(m, c=c, c_low=c_low, margin=margin, quantile=quantile,
                                         rollouts=counts, timings=timings, info=info)
