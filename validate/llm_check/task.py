"""A synthetic K-item listwise ranking task with a strict JSON output contract.

Each prompt lists ``K`` items ``i0 .. i{K-1}``, each with two categorical features
``x in {0..L-1}`` and ``y in {0..L-1}``.  The hidden scoring rule is ``score = x`` (``y``
is a distractor); the graded relevance of an item is its score, and the ideal ranking sorts
by score, ties broken by the smaller id.  The answer is a JSON list of the ``K`` item ids,
each exactly once, best first, e.g. ``[3,1,0,2,7,5,4,6]``.

Strictness is decided by two independent routines that must agree (a test checks it):

* :func:`parse_strict` - ``json.loads`` plus the contract (a list of exactly ``K`` distinct
  ints in ``0..K-1``);
* :func:`scan` - a character-level prefix automaton that says whether a prefix can still be
  completed into a valid answer, and which structural position comes next.  The contract-valid
  token set at a position is every token whose text keeps the prefix viable
  (:func:`valid_token_mask`).

Item ids are single digits, so ``K <= 10``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: structural position types, in the order they first appear in an answer
POSITION_TYPES: tuple[str, ...] = ("open", "id", "sep", "close", "end")

_WHITESPACE = " \t\n\r"
_CONTRACT_CHARS = set("[],0123456789" + _WHITESPACE)


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
# prefix automaton


@dataclass(frozen=True)
class ScanState:
    """Where a viable prefix stands: the next expected structure and the ids used so far."""

    expect: str  # one of POSITION_TYPES
    used: tuple[int, ...]


def scan(text: str, k: int) -> ScanState | None:
    """Run the contract automaton over ``text``; ``None`` if no completion is valid.

    States: ``open`` (expects ``[``), ``id`` (expects an unused id), ``sep`` (after an id,
    fewer than ``k`` used: expects ``,``), ``close`` (after the ``k``-th id: expects ``]``),
    ``end`` (after ``]``: only whitespace, then end of answer).  Whitespace is allowed
    between symbols, as JSON allows.
    """
    if not 1 <= k <= 10:
        raise ValueError(f"k must be an integer in [1, 10] (single-digit ids), got {k!r}")
    expect = "open"
    used: list[int] = []
    for ch in text:
        if ch in _WHITESPACE:
            continue
        if expect == "open" and ch == "[":
            expect = "id"
        elif expect == "id" and ch.isdigit() and ch.isascii():
            v = int(ch)
            if v >= k or v in used:
                return None
            used.append(v)
            expect = "close" if len(used) == k else "sep"
        elif expect == "sep" and ch == ",":
            expect = "id"
        elif expect == "close" and ch == "]":
            expect = "end"
        else:
            return None
    return ScanState(expect, tuple(used))


def is_contract_text(token_text: str) -> bool:
    """Whether a token's text uses only contract characters (brackets, comma, digits, space)."""
    return bool(token_text) and set(token_text) <= _CONTRACT_CHARS


def valid_token_mask(
    prefix: str, k: int, token_texts: Sequence[str], candidates: NDArray[np.int64], eos_id: int
) -> NDArray[np.bool_] | None:
    """Boolean mask ``(V,)`` of the tokens the strict parser accepts next after ``prefix``.

    A token is valid if appending its text keeps the answer viable (:func:`scan`), and the
    end-of-sequence token is valid exactly when ``prefix`` is already a complete, strictly
    valid answer.  Only ``candidates`` (tokens made of contract characters) are tried; every
    other token is invalid.  Returns ``None`` when ``prefix`` itself is not viable (no valid
    set exists: the answer is already broken).
    """
    state = scan(prefix, k)
    if state is None:
        return None
    mask = np.zeros(len(token_texts), dtype=bool)
    for t in candidates.tolist():
        mask[t] = scan(prefix + token_texts[t], k) is not None
    mask[eos_id] = state.expect == "end"
    return mask
