"""The task's answer contract, three ways, and the task's tokenizer.

The contract has three independent forms: the strict parser (``json.loads`` + rules), the
grammar the contract engine walks (``task.contract_grammar``), and the character-level
prefix automaton below, a test oracle.  The automaton is checked against the parser on every
short string and against brute-force completion search; the engine's masks are checked
against the automaton at every position of 1200 rollouts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from transformers import PreTrainedTokenizerFast

from validate.llm_check.task import (
    POSITION_TYPES,
    answer_tokens,
    contract,
    make_prompts,
    ndcg_at_1,
    parse_strict,
    position_type,
    ranking_by,
)
from validate.llm_check.tokenizer import build_tokenizer, token_info

SYMBOLS = ["[", "]", ",", "0", "1", " ", "2", "x"]
WHITESPACE = " \t\n\r"


def scan(text: str, k: int) -> tuple[str, tuple[int, ...]] | None:
    """The contract as a prefix automaton: ``(next expected position type, ids used)`` after
    ``text``, or ``None`` when no completion of ``text`` is a valid answer.

    States: ``open`` (expects ``[``), ``id`` (an unused id), ``sep`` (``,`` after an id, fewer
    than ``k`` used), ``close`` (``]`` after the ``k``-th id), ``end`` (after ``]``).
    Whitespace is allowed between symbols, as JSON allows.
    """
    expect, used = "open", []
    for ch in text:
        if ch in WHITESPACE:
            continue
        if expect == "open" and ch == "[":
            expect = "id"
        elif expect == "id" and ch.isdigit() and ch.isascii():
            if int(ch) >= k or int(ch) in used:
                return None
            used.append(int(ch))
            expect = "close" if len(used) == k else "sep"
        elif expect == "sep" and ch == ",":
            expect = "id"
        elif expect == "close" and ch == "]":
            expect = "end"
        else:
            return None
    return expect, tuple(used)


def reference_mask(prefix: str, k: int, texts: Sequence[str], eos: int) -> np.ndarray | None:
    """Tokens the automaton accepts after ``prefix`` (EOS once the answer is complete);
    ``None`` when ``prefix`` is not viable."""
    state = scan(prefix, k)
    if state is None:
        return None
    mask = np.array([t != eos and scan(prefix + s, k) is not None for t, s in enumerate(texts)])
    mask[eos] = state[0] == "end"
    return mask


def test_scanner_agrees_with_json_parser_on_all_short_strings() -> None:
    # Exhaustive over every string of length <= 6 on 8 symbols (299,593 strings), K = 2.
    for n in range(7):
        for chars in itertools.product(SYMBOLS, repeat=n):
            text = "".join(chars)
            state = scan(text, 2)
            assert (parse_strict(text, 2) is not None) == (state is not None and
                                                           state[0] == "end"), text


def _completable(s: str, k: int, alphabet: list[str]) -> bool:
    return any(parse_strict(s + "".join(t), k) is not None
               for n in range(0, 5 - len(s) + 1) for t in itertools.product(alphabet, repeat=n))


def test_reference_mask_equals_brute_force_completion() -> None:
    # A token is valid iff SOME completion (brute force over the contract alphabet, up to the
    # longest valid answer) of prefix + token parses strictly.
    k, alphabet = 2, ["[", "]", ",", "0", "1"]
    texts = tuple(alphabet) + ("\x00",)
    eos = len(alphabet)
    for n in range(5):
        for chars in itertools.product(alphabet, repeat=n):
            prefix = "".join(chars)
            mask = reference_mask(prefix, k, texts, eos)
            if not _completable(prefix, k, alphabet):
                assert mask is None, prefix
                continue
            assert mask is not None
            for t, s in enumerate(alphabet):
                assert mask[t] == _completable(prefix + s, k, alphabet), (prefix, s)
            assert mask[eos] == (parse_strict(prefix, k) is not None)


def _rollouts(n: int, k: int, texts: Sequence[str], eos: int, rng: np.random.Generator
              ) -> list[list[int]]:
    """Rollouts that go deep into the contract and leave it at every kind of position: each
    step a uniformly random valid token with probability 0.9, else any token; one in four is
    cut short (still open when its tokens run out)."""
    out = []
    for _ in range(n):
        prefix, row = "", []
        for _ in range(2 * k + 4 if rng.random() < 0.75 else int(rng.integers(1, 2 * k))):
            mask = reference_mask(prefix, k, texts, eos)
            pool = np.flatnonzero(mask) if mask is not None and rng.random() < 0.9 else None
            tok = int(rng.choice(pool) if pool is not None and pool.size else
                      rng.integers(len(texts)))
            row.append(tok)
            if tok == eos:
                break
            prefix += texts[tok]
        out.append(row)
    return out


@pytest.mark.parametrize("k", [8, 3])
def test_engine_masks_equal_the_automaton_at_every_position(k: int) -> None:
    # The walk cuts each rollout at its first stop token and visits exactly the positions whose
    # prefix is viable; at each the engine's mask is the automaton's, and the label names the
    # position type the automaton expects.
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    texts = [t if i not in (0, 1, 2) else "\x00" for i, t in enumerate(info.texts)]
    rolls = _rollouts(1200 if k == 8 else 200, k, texts, info.eos_id, np.random.default_rng(k))
    walk = contract(k).compile(tok, len(tok), [info.eos_id]).walk(rolls)
    masks = walk.unpack(len(tok))
    seen, kinds = 0, set()
    for i, row in enumerate(rolls):
        prefix = ""
        for t, token in enumerate(row):
            want = reference_mask(prefix, k, texts, info.eos_id)
            if want is None:
                break
            j = seen
            assert (walk.rows[j], walk.steps[j]) == (i, t)
            assert np.array_equal(masks[j], want), (i, t, prefix)
            assert position_type(walk.labels[j]) == scan(prefix, k)[0], walk.labels[j]
            kinds.add(walk.labels[j])
            seen += 1
            prefix += texts[token]
    assert seen == len(walk.rows) >= 4 * len(rolls)
    assert {position_type(lab) for lab in kinds} == set(POSITION_TYPES)
    assert set(walk.status) == {"complete", "left", "open"}


def test_answers_and_metric() -> None:
    rng = np.random.default_rng(0)
    for p in make_prompts(50, 8, 3, rng):
        ideal = ranking_by(p.relevance, 0.0, rng)
        assert parse_strict("".join(answer_tokens(ideal)), 8) == ideal
        assert parse_strict("".join(answer_tokens(ideal, drop_close=True)), 8) is None
        assert ndcg_at_1(ideal, p.relevance) == 1.0
    # NDCG@1 from its definition: gains 2^rel - 1 over the best gain.
    assert ndcg_at_1([2, 0, 1], [0.0, 2.0, 1.0]) == pytest.approx(1.0 / 3.0, rel=1e-15)
    assert parse_strict("[0,0]", 2) is None and parse_strict("[true,0]", 2) is None


def test_tokenizer_round_trip(tmp_path: Path) -> None:
    tok = build_tokenizer(8, 3)
    tok.save_pretrained(tmp_path)
    back = PreTrainedTokenizerFast.from_pretrained(str(tmp_path), local_files_only=True)
    text = "i0 x2 y1 i1 x0 y0 =>"
    assert back.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    info = token_info(back, len(back))
    ids = [back.convert_tokens_to_ids(s) for s in "[1,0]"] + [info.eos_id]
    assert info.answer_text(ids) == "[1,0]"
