r"""The mechanism of a collapse, measured at every evaluation of an OPD run.

The two-class model names one event: at the binding position type the student's mass leaves
the clip-safe region ``R = [region_low, region_high]`` of :func:`cliff.solve` (sharpening:
its tail falls below ``(1-p)/c``), the ratio clip binds, and the answers break there.  Four
instruments say what happens instead, each from the rollouts and log-probs the evaluation
(:func:`validate.llm_check.opd.evaluate`) already has:

1. per position type (:data:`~validate.llm_check.task.POSITION_TYPES`), the student's mean
   valid and tail mass, set against the edges of ``R`` at that type's teacher mass ``p`` and
   the run's clip (:func:`region_edges`);
2. the clip share: of the sampled training tokens, the fraction whose teacher/student ratio
   was clipped at the cap ``c`` and at the floor ``c_low`` (counted in the OPD loss,
   :func:`validate.llm_check.opd.run_opd`, into a :class:`ClipCount`);
3. for every answer that fails to parse, its first violating token (:func:`first_violation`):
   the category (:data:`FAILURE_CATEGORIES`) and the item index (how many ids were written
   before it);
4. at every id position (an id is due), the student's mass on each category of next token
   (:data:`ID_MASS_CATEGORIES`).

An evaluation holds a :class:`MechanismTally`'s :meth:`~MechanismTally.to_dict`; the report
pools them over OPD seeds (:func:`pool`) and sets the masses against the edges
(:func:`mechanism_rows`).  Only numpy and :mod:`cliff`: a saved sweep can be re-analysed
without torch.

The answer format (:mod:`validate.llm_check.task`): ``[``, the ``K`` single-digit ids
``0..K-1`` in any order, each once, separated by ``,``, then ``]``; JSON whitespace is
allowed between symbols.  A token is read character by character, so the categories hold for
any tokenizer; at id positions a token is classed by its first non-whitespace character
(the synthetic tokenizer's tokens are single symbols).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cliff
from validate.llm_check.task import POSITION_TYPES, position_type

__all__ = ["FAILURE_CATEGORIES", "ID_MASS_CATEGORIES", "RULES", "Violation", "AnswerCursor",
           "first_violation", "ClipCount", "MechanismTally", "pool", "region_edges",
           "mechanism_rows", "mechanism_block"]

FAILURE_CATEGORIES: tuple[str, ...] = ("duplicate_id", "premature_close", "separator_for_id",
                                       "early_end", "other")
"""The first violation of a failed answer: an id already written; ``]`` before the ``K``-th
id; ``,`` where an id is due; the answer ends (stop token, or the token budget runs out)
before its ``]``; anything else (an id ``>= K``, a second digit, a ``,`` after the ``K``-th
id, text after ``]``, a character outside the format)."""

ID_MASS_CATEGORIES: tuple[str, ...] = ("fresh_id", "duplicate_id", "close", "separator", "end",
                                       "other")
"""The next token at an id position: an id not yet written, one already written, ``]``,
``,``, the stop token, anything else (ids ``>= K``, whitespace-only tokens, other text)."""

RULES: dict[str, str] = {
    "masses": "per position type, the mean over the evaluation rollouts' viable positions of "
              "the student's contract-valid mass and of its tail (1 - valid, summed in log "
              "space), and the tail's geometric mean; against cliff.solve(p, b, c, c_low)'s "
              "clip-safe region [region_low, region_high] at the type's measured teacher mass "
              "p and the run's clip: tail_edge = 1 - region_high ((1-p)/c when p is near 1)",
    "clip_share": "of the sampled training tokens up to the evaluated step, the fraction "
                  "whose teacher/student log-ratio exceeded log c (clipped at the cap) or fell "
                  "below log c_low (clipped at the floor) in the OPD advantage",
    "failures": "every evaluated answer that fails to parse, by the category of its first "
                "violating token and its item index (ids written before it)",
    "id_positions": "at every position of an evaluated answer where an id is due, the "
                    "student's mass on each next-token category, by the first "
                    "non-whitespace character of each token; mean over positions, and by "
                    "item index",
}
"""How each instrument is computed, in words (written beside the numbers in the report)."""

_WHITESPACE = " \t\n\r"  # JSON's
_BLOCK = 256  # positions per (n, V) array: a real vocabulary has 151,936 rows
_DIGITS = "0123456789"


# ---------------------------------------------------------------------------------------------
# reading an answer


@dataclass(frozen=True)
class Violation:
    """The first token of an answer that leaves the format."""

    category: str
    """one of :data:`FAILURE_CATEGORIES`"""
    item_index: int
    """ids written before it (``0..K``)"""
    token_index: int
    """index of the token in the answer (the answer's length for an early end)"""


class AnswerCursor:
    """Reads an answer character by character against the format (module docstring).

    ``state`` is what is due next: ``"open"`` (``[``), ``"id"`` (an unused id),
    ``"after_id"`` (``,`` or, after the ``K``-th id, ``]``), ``"done"`` (only whitespace) or
    ``"broken"`` (a violation was read); ``used`` holds the ids written, in order.

    Examples
    --------
    >>> cur = AnswerCursor(3)
    >>> [cur.feed(s) for s in ("[", "2", ",", "0", ",", "0")]
    [None, None, None, None, None, 'duplicate_id']
    >>> cur.state, cur.used
    ('broken', [2, 0])
    """

    def __init__(self, k: int) -> None:
        if not 1 <= k <= 10:
            raise ValueError(f"k must be an integer in [1, 10] (single-digit ids), got {k!r}")
        self.k = k
        self.state = "open"
        self.used: list[int] = []

    def feed(self, text: str) -> str | None:
        """Read ``text`` (one token); the category of its first violating character, or None
        when the answer is still in the format.  After a violation the cursor stays broken
        (and returns None)."""
        for ch in text:
            if self.state == "broken":
                return None
            if ch in _WHITESPACE:
                continue
            category = self._step(ch)
            if category is not None:
                self.state = "broken"
                return category
        return None

    def _step(self, ch: str) -> str | None:
        if self.state == "open":
            if ch == "[":
                self.state = "id"
                return None
            return "other"
        if self.state == "id":
            if ch in _DIGITS:
                d = int(ch)
                if d >= self.k:
                    return "other"
                if d in self.used:
                    return "duplicate_id"
                self.used.append(d)
                self.state = "after_id"
                return None
            return {"]": "premature_close", ",": "separator_for_id"}.get(ch, "other")
        if self.state == "after_id":
            full = len(self.used) == self.k
            if ch == "," and not full:
                self.state = "id"
                return None
            if ch == "]":
                if full:
                    self.state = "done"
                    return None
                return "premature_close"
            return "other"
        return "other"  # text after the closing ]

    @property
    def complete(self) -> bool:
        """Whether the answer read so far is a whole valid answer."""
        return self.state == "done"


def first_violation(tokens: Sequence[str], k: int) -> Violation | None:
    """The first violating token of an answer, or None when it is a valid answer.

    Parameters
    ----------
    tokens : sequence of str
        The texts of the answer's tokens, up to (not including) the stop token; an answer
        that stopped, or ran out of tokens, before its ``]`` is an ``early_end``.
    k : int
        Items per prompt, ``1 <= k <= 10``.

    Returns
    -------
    Violation or None
        None exactly when :func:`~validate.llm_check.task.parse_strict` accepts
        ``"".join(tokens)``, but for JSON's ``-0``, which it reads as the id 0.

    Examples
    --------
    >>> first_violation(list("[1,0,1"), 3)
    Violation(category='duplicate_id', item_index=2, token_index=5)
    >>> first_violation(list("[1,0]"), 3)
    Violation(category='premature_close', item_index=2, token_index=4)
    >>> first_violation(list("[1,0,2"), 3)
    Violation(category='early_end', item_index=3, token_index=6)
    >>> first_violation(["[", "1", ",", "0", ",", "2", "]"], 3) is None
    True
    """
    cur = AnswerCursor(k)
    for t, text in enumerate(tokens):
        category = cur.feed(text)
        if category is not None:  # a token holding several ids counts the ids it wrote
            return Violation(category, len(cur.used), t)
    if cur.complete:
        return None
    return Violation("early_end", len(cur.used), len(tokens))


# ---------------------------------------------------------------------------------------------
# the tallies of one evaluation


@dataclass
class ClipCount:
    """Sampled training tokens and how many had their teacher/student ratio clipped."""

    tokens: int = 0
    """live (counted) sampled tokens"""
    cap: int = 0
    """of them, clipped at the cap c (log ratio > log c)"""
    floor: int = 0
    """clipped at the floor c_low (log ratio < log c_low)"""

    def add(self, tokens: int, cap: int, floor: int) -> None:
        self.tokens += int(tokens)
        self.cap += int(cap)
        self.floor += int(floor)

    def to_dict(self) -> dict[str, Any]:
        n = self.tokens
        return {"tokens": n, "cap": self.cap, "floor": self.floor,
                "cap_share": self.cap / n if n else math.nan,
                "floor_share": self.floor / n if n else math.nan}


def _logsumexp(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log sum exp`` over the last axis; ``-inf`` for rows that are all ``-inf``."""
    m = np.max(x, axis=-1, keepdims=True)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - safe).sum(axis=-1)) + safe[..., 0]  # type: ignore[no-any-return]


@dataclass
class MechanismTally:
    """Sums of one evaluation, batch by batch (:meth:`add_walk`, :meth:`add_answers`);
    :meth:`to_dict` is the evaluation's ``mechanism`` record.

    Parameters
    ----------
    k : int
        Items per prompt.
    texts : sequence of str
        Every token's text (``texts[t]`` of token ``t``, at least the vocabulary's rows).
    stop_id : int
        The stop token (EOS).
    """

    k: int
    texts: Sequence[str]
    stop_id: int
    _types: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _failures: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _answers: int = 0
    _id_sums: NDArray[np.float64] = field(init=False, repr=False)
    _classes: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(
        default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        AnswerCursor(self.k)  # checks k
        self._failures = {c: [0] * (self.k + 1) for c in FAILURE_CATEGORIES}
        # per item index: positions, then the mass of each ID_MASS_CATEGORIES entry
        self._id_sums = np.zeros((self.k, 1 + len(ID_MASS_CATEGORIES)))

    # --- 1: masses per position type
    def add_walk(self, logprobs: NDArray[np.float64], walk: Any) -> None:
        """Add the viable positions of a contract walk (:meth:`cliff.internal`'s ``Walker.
        walk``: ``rows``, ``steps``, ``labels``, ``unpack``) of rollouts whose full
        log-probs are ``logprobs`` ``(B, T, V)``."""
        types = np.array([position_type(lab) or "" for lab in walk.labels])
        for lo in range(0, len(walk.rows), _BLOCK):  # (n, V) arrays, a block at a time
            block = slice(lo, lo + _BLOCK)
            valid = walk.unpack(logprobs.shape[-1], block)  # (n, V)
            lp = logprobs[walk.rows[block], walk.steps[block]]  # (n, V)
            log_valid = _logsumexp(np.where(valid, lp, -np.inf))  # (n,)
            log_tail = _logsumexp(np.where(valid, -np.inf, lp))  # (n,)
            for ty in POSITION_TYPES:
                sel = types[block] == ty
                if sel.any():
                    s = self._types.setdefault(ty, [0.0, 0.0, 0.0, 0.0])
                    s[0] += float(sel.sum())
                    s[1] += float(np.exp(log_valid[sel]).sum())
                    s[2] += float(np.exp(log_tail[sel]).sum())
                    s[3] += float(log_tail[sel].sum())

    # --- 3 and 4: the answers
    def add_answers(self, logprobs: NDArray[np.float64], gen: Sequence[Sequence[int]],
                    parsed: Sequence[bool]) -> None:
        """Add rollouts ``gen`` (token ids ``(B, T)``, each cut at its first stop token), their
        parse indicators and their full log-probs ``(B, T, V)``."""
        positions: list[tuple[int, int, int]] = []  # (row, step, used-id bit mask)
        for b, (row, ok) in enumerate(zip(gen, parsed, strict=True)):
            self._answers += 1
            answer, stopped = _cut(row, self.stop_id)
            cur = AnswerCursor(self.k)
            violation = None
            for t in range(len(answer) + stopped):
                if cur.state == "id":
                    positions.append((b, t, sum(1 << d for d in cur.used)))
                if t == len(answer):
                    break
                category = cur.feed(self.texts[answer[t]])
                if category is not None:
                    violation = Violation(category, len(cur.used), t)
                    break
            if ok:
                continue
            if violation is None:  # ended before its ] (complete answers parse, but for -0)
                violation = Violation("other" if cur.complete else "early_end",
                                      len(cur.used), len(answer))
            self._failures[violation.category][violation.item_index] += 1
        if positions:
            self._add_id_positions(logprobs, positions)

    def _add_id_positions(self, logprobs: NDArray[np.float64],
                          positions: list[tuple[int, int, int]]) -> None:
        digit, fixed = self._token_classes(logprobs.shape[-1])
        for lo in range(0, len(positions), _BLOCK):  # (n, V) arrays, a block at a time
            rows, steps, used = (np.array(x, dtype=np.int64)
                                 for x in zip(*positions[lo : lo + _BLOCK], strict=True))
            probs = np.exp(logprobs[rows, steps])  # (n, V)
            by_digit = probs @ digit  # (n, k): mass on each id
            rest = probs @ fixed  # (n, 3): close, separator, end
            is_used = (used[:, None] >> np.arange(self.k)) & 1 == 1  # (n, k)
            fresh = np.where(is_used, 0.0, by_digit).sum(axis=1)
            dup = np.where(is_used, by_digit, 0.0).sum(axis=1)
            other = np.clip(probs.sum(axis=1) - fresh - dup - rest.sum(axis=1), 0.0, None)
            mass = np.column_stack([fresh, dup, rest, other])  # (n, 6)
            n_used = is_used.sum(axis=1)
            for i in np.unique(n_used):
                sel = n_used == i
                self._id_sums[i, 0] += sel.sum()
                self._id_sums[i, 1:] += mass[sel].sum(axis=0)

    def _token_classes(self, vocab: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(V, k)`` one-hot of the tokens that lead with each id, and ``(V, 3)`` of those
        that lead with ``]``, ``,`` or are the stop token (cached per vocabulary size)."""
        if vocab not in self._classes:
            if len(self.texts) < vocab:
                raise ValueError(f"texts must cover the {vocab} vocabulary rows, got "
                                 f"{len(self.texts)}")
            digit = np.zeros((vocab, self.k))
            fixed = np.zeros((vocab, 3))
            for t in range(vocab):
                if t == self.stop_id:
                    fixed[t, 2] = 1.0
                    continue
                lead = self.texts[t].lstrip(_WHITESPACE)[:1]
                if lead in _DIGITS and lead and int(lead) < self.k:
                    digit[t, int(lead)] = 1.0
                elif lead in ("]", ","):
                    fixed[t, 0 if lead == "]" else 1] = 1.0
            self._classes[vocab] = (digit, fixed)
        return self._classes[vocab]

    def to_dict(self) -> dict[str, Any]:
        """The evaluation's record: ``masses`` (per type: ``n``, mean ``valid``, mean
        ``tail``, ``tail_geo``), ``failures`` (``answers``, ``failed``, ``categories``,
        ``by_item_index``: counts at item index ``0..K``) and ``id_positions`` (``n``,
        ``mass`` per category, ``by_item_index``: ``n`` and ``mass`` at ``0..K-1``)."""
        masses = {ty: _type_record(*s) for ty, s in self._types.items()}
        failed = sum(sum(v) for v in self._failures.values())
        return {"masses": masses,
                "failures": {"answers": self._answers, "failed": failed,
                             "categories": {c: sum(v) for c, v in self._failures.items()},
                             "by_item_index": {c: list(v) for c, v in self._failures.items()}},
                "id_positions": _id_record(self._id_sums)}


def _cut(row: Sequence[int], stop_id: int) -> tuple[list[int], bool]:
    """The tokens of ``row`` before its first stop token, and whether it had one."""
    row = [int(t) for t in row]
    if stop_id in row:
        return row[: row.index(stop_id)], True
    return row, False


def _type_record(n: float, valid: float, tail: float, log_tail: float) -> dict[str, Any]:
    if n <= 0:
        return {"n": 0, "valid": math.nan, "tail": math.nan, "tail_geo": math.nan}
    return {"n": int(n), "valid": valid / n, "tail": tail / n, "tail_geo": math.exp(log_tail / n)}


def _id_record(sums: NDArray[np.float64]) -> dict[str, Any]:
    """``id_positions`` of per-item-index sums ``(K, 1 + categories)``."""

    def mean(row: NDArray[np.float64]) -> dict[str, float]:
        n = row[0]
        return {c: float(row[1 + j] / n) if n else math.nan
                for j, c in enumerate(ID_MASS_CATEGORIES)}

    return {"n": int(sums[:, 0].sum()), "mass": mean(sums.sum(axis=0)),
            "by_item_index": [{"n": int(r[0]), "mass": mean(r)} for r in sums]}


# ---------------------------------------------------------------------------------------------
# pooling evaluations, and the report's block


def _num(x: Any) -> float:
    """A number of a record, read back from JSON too (non-finite floats are strings there)."""
    return float(x)


def pool(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The records of several evaluations (:meth:`MechanismTally.to_dict`, with the
    ``clip_share`` of :meth:`ClipCount.to_dict` where present) as one: counts summed, means
    weighted by their counts.

    Examples
    --------
    >>> a = {"masses": {"close": {"n": 1, "valid": 0.5, "tail": 0.5, "tail_geo": 0.5}},
    ...      "failures": {"answers": 2, "failed": 1, "categories": {"other": 1},
    ...                   "by_item_index": {"other": [1, 0]}},
    ...      "id_positions": {"n": 0, "mass": {}, "by_item_index": []}}
    >>> b = {**a, "masses": {"close": {"n": 3, "valid": 0.9, "tail": 0.1, "tail_geo": 0.1}}}
    >>> p = pool([a, b])
    >>> round(p["masses"]["close"]["valid"], 6), p["failures"]["categories"]["other"]
    (0.8, 2)
    """
    if not records:
        raise ValueError("records must hold at least one evaluation's record, got none")
    masses: dict[str, list[float]] = {}
    for r in records:
        for ty, m in r["masses"].items():
            n = _num(m["n"])
            if n > 0:
                s = masses.setdefault(ty, [0.0, 0.0, 0.0, 0.0])
                s[0] += n
                s[1] += n * _num(m["valid"])
                s[2] += n * _num(m["tail"])
                tg = _num(m["tail_geo"])
                s[3] += n * (math.log(tg) if tg > 0 else -math.inf)
    f = [r["failures"] for r in records]
    cats = list(dict.fromkeys(c for x in f for c in x["categories"]))
    width = max((len(v) for x in f for v in x["by_item_index"].values()), default=0)
    by_index = {c: [sum(int(x["by_item_index"].get(c, [0] * width)[i]) for x in f)
                    for i in range(width)] for c in cats}
    out: dict[str, Any] = {
        "masses": {ty: _type_record(*s) for ty, s in masses.items()},
        "failures": {"answers": sum(int(x["answers"]) for x in f),
                     "failed": sum(int(x["failed"]) for x in f),
                     "categories": {c: sum(int(x["categories"].get(c, 0)) for x in f)
                                    for c in cats},
                     "by_item_index": by_index},
        "id_positions": _pool_id([r["id_positions"] for r in records])}
    clips = [r["clip_share"] for r in records if "clip_share" in r]
    if clips:
        count = ClipCount()
        for c in clips:
            count.add(int(c["tokens"]), int(c["cap"]), int(c["floor"]))
        out["clip_share"] = count.to_dict()
    return out


def _pool_id(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    width = max(len(r["by_item_index"]) for r in records)
    sums = np.zeros((width, 1 + len(ID_MASS_CATEGORIES)))
    for r in records:
        for i, entry in enumerate(r["by_item_index"]):
            n = _num(entry["n"])
            if n > 0:
                sums[i, 0] += n
                sums[i, 1:] += [n * _num(entry["mass"][c]) for c in ID_MASS_CATEGORIES]
    return _id_record(sums)


def region_edges(p: float, b: float, c: float, c_low: float) -> dict[str, float]:
    """The clip-safe region of :func:`cliff.solve` at teacher mass ``p`` (``b`` does not move
    it) and clip ``(c, c_low)``: ``region_low``, ``region_high`` in valid mass and
    ``tail_edge = 1 - region_high``; NaN where ``p`` or ``b`` is not in (0, 1).

    Examples
    --------
    >>> e = region_edges(0.99979, 0.5118, 5.0, 0.2)
    >>> round(e["tail_edge"], 7)  # (1 - p) / c
    4.2e-05
    """
    try:
        r = cliff.solve(p, b, c, c_low=c_low)
        lo, hi = float(r.region_low), float(r.region_high)
    except ValueError:
        lo = hi = math.nan
    return {"region_low": lo, "region_high": hi, "tail_edge": 1.0 - hi}


Run = Mapping[str, Any]
"""One finished OPD run (:mod:`validate.llm_check.analysis`)."""

KINDS: tuple[str, ...] = ("main", "clip", "control", "schedule", "ladder", "ladder_control")
"""The order of the run kinds in :func:`mechanism_rows`."""


def mechanism_rows(runs: Iterable[Run], position_types: Sequence[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """One row per run kind, lambda and evaluated step, pooled over the OPD seeds.

    ``position_types`` are the measurement's rows (``type``, ``mean_p``, ``mean_b``): each
    type's masses are set against :func:`region_edges` at its ``p`` and the runs' clip, with
    ``tail_over_edge = tail / tail_edge`` and ``valid_inside`` (the mean valid mass in the
    region); NaN and None for a type the measurement did not see.  Runs whose evaluations
    carry no ``mechanism`` record are left out.
    """
    groups: dict[tuple[str, float, int], list[tuple[Run, Mapping[str, Any]]]] = {}
    for r in runs:
        job = r["job"]
        for step, ev in r["evals"].items():
            if "mechanism" in ev:
                groups.setdefault((job["kind"], float(job["lam"]), int(step)), []).append(
                    (r, ev))
    p_of = {row["type"]: (float(row["mean_p"]), float(row["mean_b"])) for row in position_types}

    def order(key: tuple[str, float, int]) -> tuple[int, float, int]:
        kind, lam, step = key
        return (KINDS.index(kind) if kind in KINDS else len(KINDS), lam, step)

    out = []
    for (kind, lam, step), members in sorted(groups.items(), key=lambda kv: order(kv[0])):
        job = members[0][0]["job"]
        c, c_low = float(job["c"]), float(job["c_low"])
        pooled = pool([ev["mechanism"] for _, ev in members])
        for ty, m in pooled["masses"].items():
            p, b = p_of.get(ty, (math.nan, math.nan))
            edges = region_edges(p, b, c, c_low)
            inside = edges["region_low"] <= m["valid"] <= edges["region_high"]
            m.update(p=p, **edges,
                     tail_over_edge=(m["tail"] / edges["tail_edge"]
                                     if edges["tail_edge"] > 0 else math.nan),
                     valid_inside=bool(inside) if math.isfinite(edges["tail_edge"]) else None)
        out.append({"kind": kind, "lam": lam, "step": step, "c": c, "c_low": c_low,
                    "seeds": sorted(int(rr["job"]["seed"]) for rr, _ in members),
                    "parse_rate": float(np.mean([_num(ev["parse_rate"]) for _, ev in members])),
                    **pooled})
    return out


def mechanism_block(runs: Iterable[Run], position_types: Sequence[Mapping[str, Any]]
                    ) -> dict[str, Any]:
    """The report's ``mechanism``: the :data:`RULES` and the :func:`mechanism_rows`."""
    return {"rules": dict(RULES), "failure_categories": list(FAILURE_CATEGORIES),
            "id_mass_categories": list(ID_MASS_CATEGORIES),
            "rows": mechanism_rows(runs, position_types)}

