"""A synthetic K-item listwise ranking task with a strict JSON output contract.

Each prompt lists ``K`` items ``i0 .. i{K-1}``, each with two categorical features
``x in {0..L-1}`` and ``y in {0..L-1}``.  The hidden scoring rule is ``score = x`` (``y``
is a distractor); the graded relevance of an item is its score, and the ideal ranking sorts
by score, ties broken by the smaller id.  The answer is a JSON list of the ``K`` item ids,
each exactly once, best first, e.g. ``[3,1,0,2,7,5,4,6]``.

Strictness is decided by two independent routines that must agree (tests check it):

* :func:`parse_strict` - ``json.loads`` plus the contract (a list of exactly ``K`` distinct
  ints in ``0..K-1``);
* :func:`contract_grammar` - the same contract as a Lark grammar, one rule per set of ids
  used so far (``2^K - 1`` rules), which the contract engine of :func:`cliff.calibrate` walks
  token by token: the contract-valid token set at a position is every token that keeps the
  answer completable.  :func:`position_type` names a position from its label.

Item ids are single digits, so ``K <= 10``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

import cliff

#: structural position types, in the order they first appear in an answer
POSITION_TYPES: tuple[str, ...] = ("open", "id", "sep", "close", "end")



@dataclass(frozen=True)
class Prompt:
    """One ranking prompt: its text and the graded relevance of each of its ``K`` items."""

    text: str
    relevance: tuple[float, ...]


# ---------------------------------------------------------------------------------------------
# synthetic prompts


def sample_features(n: int, k: int, levels: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Features ``(n, k, 2)`` uniform over ``{0..levels-1}``: column 0 is ``x``, 1 is ``y``."""
    return rng.integers(0, levels, size=(n, k, 2))


def scores(features: NDArray[np.int64], levels: int) -> NDArray[np.int64]:
    """The hidden rule ``score = x`` (``y`` is a distractor), shape ``(n, k)``."""
    del levels
    return features[..., 0]


def prompt_text(features_one: NDArray[np.int64]) -> str:
    """``"i0 x3 y1 i1 x0 y2 ... =>"`` for one prompt's ``(k, 2)`` features."""
    words = [f"i{i} x{x} y{y}" for i, (x, y) in enumerate(features_one.tolist())]
    return " ".join(words) + " =>"


def make_prompts(n: int, k: int, levels: int, rng: np.random.Generator) -> list[Prompt]:
    """``n`` synthetic prompts with relevance = hidden score."""
    feats = sample_features(n, k, levels, rng)
    sc = scores(feats, levels)
    return [Prompt(prompt_text(f), tuple(float(s) for s in row))
            for f, row in zip(feats, sc, strict=True)]


def ranking_by(score_row: Sequence[float], noise: float, rng: np.random.Generator) -> list[int]:
    """Item ids sorted by ``score + noise * Gumbel`` (descending; ties by id).

    ``noise = 0`` gives the ideal ranking; larger ``noise`` gives a worse ranker's targets.
    """
    s = np.asarray(score_row, dtype=np.float64)
    if noise > 0:
        s = s + noise * rng.gumbel(size=s.shape)
    return [int(i) for i in np.lexsort((np.arange(s.size), -s))]


def answer_tokens(ranking: Sequence[int], *, drop_close: bool = False) -> list[str]:
    """Contract symbols of an answer: ``[``, ids separated by ``,``, ``]``.

    ``drop_close=True`` omits the closing ``]``: the *format noise* injected into training
    targets (a truncated, unparseable answer).  The noise sits at one structural position
    type (``close``) so that position's valid mass is set by the noise rate.
    """
    out = ["["]
    for j, item in enumerate(ranking):
        if j:
            out.append(",")
        out.append(str(item))
    if not drop_close:
        out.append("]")
    return out


# ---------------------------------------------------------------------------------------------
# strict parsing and the metric


def parse_strict(text: str, k: int) -> list[int] | None:
    """The ranking in ``text`` if it is a strictly valid answer, else ``None``.

    Valid: ``json.loads(text)`` is a list of exactly ``k`` ints (not bools), each in
    ``0..k-1``, all distinct.  Surrounding whitespace is allowed, nothing else.
    """
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, list) or len(obj) != k:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < k for v in obj):
        return None
    if len(set(obj)) != k:
        return None
    return [int(v) for v in obj]


def ndcg_at_1(ranking: Sequence[int], relevance: Sequence[float]) -> float:
    """NDCG@1 ``= (2^rel(top) - 1) / (2^max rel - 1)``; 1 when every relevance is 0."""
    best = max(relevance)
    if best <= 0:
        return 1.0
    return float((2.0 ** relevance[ranking[0]] - 1.0) / (2.0**best - 1.0))


# ---------------------------------------------------------------------------------------------
# the contract as a grammar


def contract_grammar(k: int) -> str:
    """Lark grammar of the answers: ``[``, the ``k`` ids in any order separated by ``,``, ``]``.

    Rule ``u<S>`` expects an id not in the set ``S`` (a bit mask) of ids used so far, then a
    ``,`` and ``u<S + id>``, or ``]`` after the ``k``-th id; whitespace is allowed between
    symbols, as JSON allows.  A permutation is not expressible in JSON Schema
    (``uniqueItems`` is not implemented by the engine); the grammar enforces it exactly.
    """
    if not 1 <= k <= 10:
        raise ValueError(f"k must be an integer in [1, 10] (single-digit ids), got {k!r}")
    full = (1 << k) - 1
    lines = ['start: "[" u0', "%ignore /[ \\t\\n\\r]+/"]
    for used in range(full):
        alts = [f'"{i}" "]"' if used | 1 << i == full else f'"{i}" "," u{used | 1 << i}'
                for i in range(k) if not used >> i & 1]
        lines.append(f"u{used}: " + " | ".join(alts))
    return "\n".join(lines) + "\n"


def contract(k: int) -> cliff.Contract:
    """The answer contract of :func:`contract_grammar`, for :func:`cliff.calibrate`."""
    return cliff.Contract.lark(contract_grammar(k), json_labels=True)


_TYPES = {"$ value": "open", "$ comma": "sep", "$ close": "close", "$ end": "end"}


def position_type(label: str) -> str | None:
    """The position type (:data:`POSITION_TYPES`) of a :func:`cliff.calibrate` label:
    ``$ value`` is ``open``, ``$[i] value`` an ``id``, ``$ comma`` a ``sep``, ``$ close`` and
    ``$ end`` themselves; ``None`` for any other label."""
    if label.startswith("$[") and label.endswith("] value"):
        return "id"
    return _TYPES.get(label)
