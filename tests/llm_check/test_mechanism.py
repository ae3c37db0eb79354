"""The mechanism instruments (validate.llm_check.mechanism): the first violation of a failed
answer against hand-written token sequences and against the strict parser on every short
string, the masses at id positions on hand-made log-probs, and every mass of an evaluation
of a tiny model against a direct computation."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
import torch

from validate.llm_check import mechanism
from validate.llm_check.config import Config
from validate.llm_check.mechanism import (
    FAILURE_CATEGORIES,
    ID_MASS_CATEGORIES,
    MechanismTally,
    Violation,
    first_violation,
    mechanism_rows,
    pool,
    region_edges,
)
from validate.llm_check.models import TinyQwen3, answer_logprobs, new_model, sample, train_sft
from validate.llm_check.opd import encode, evaluate
from validate.llm_check.task import contract, make_prompts, parse_strict
from validate.llm_check.tokenizer import build_tokenizer, token_info
from validate.llm_check.warmstart import Recipe, sft_batches


def test_docstring_examples() -> None:
    result = doctest.testmod(mechanism, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(("tokens", "k", "want"), [
    # duplicate id: after one id, after two, inside a token holding several symbols
    (["[", "3", ",", "3"], 8, ("duplicate_id", 1, 3)),
    (["[", "3", ",", "1", ",", "1", ",", "0"], 8, ("duplicate_id", 2, 5)),
    (["[0,", "1,0"], 3, ("duplicate_id", 2, 1)),
    # ] before the K-th id: right after [, after an id, where an id is due
    (["[", "]"], 8, ("premature_close", 0, 1)),
    (["[", "3", ",", "1", "]"], 8, ("premature_close", 2, 4)),
    (["[", "3", ",", "]"], 8, ("premature_close", 1, 3)),
    # a separator where an id is due
    (["[", ","], 8, ("separator_for_id", 0, 1)),
    (["[", "2", ",", ","], 8, ("separator_for_id", 1, 3)),
    # the answer ends (stop token or budget) before its ]
    ([], 8, ("early_end", 0, 0)),
    (["[", "2"], 8, ("early_end", 1, 2)),
    (["[", "2", ","], 8, ("early_end", 1, 3)),
    (list("[0,1,2"), 3, ("early_end", 3, 6)),
    # anything else: not a [, an id >= K, a second digit, a , after the K-th id, text after ]
    (["x"], 8, ("other", 0, 0)),
    (["[", "9"], 8, ("other", 0, 1)),
    (["[", "0", "1"], 8, ("other", 1, 2)),
    (list("[0,1,"), 2, ("other", 2, 4)),
    (list("[0,1]]"), 2, ("other", 2, 5)),
    (["[", "0", "\x00"], 8, ("other", 1, 2)),
])
def test_first_violation_of_hand_written_answers(tokens: list[str], k: int,
                                                 want: tuple[str, int, int]) -> None:
    assert first_violation(tokens, k) == Violation(*want)
    assert parse_strict("".join(tokens), k) is None


def test_valid_answers_have_no_violation() -> None:
    assert first_violation([" [", " 0 ", ",\n", "1", "] "], 2) is None
    assert first_violation(list("[3,1,0,2,7,5,4,6]"), 8) is None
    assert first_violation(["[3,1,0,2", ",7,5,4,6]"], 8) is None


def test_every_category_is_named() -> None:
    seen = {first_violation(list(s), 2).category  # type: ignore[union-attr]
            for s in ("[0,0", "[0]", "[,", "[0", "[0,1,")}
    assert seen == set(FAILURE_CATEGORIES)


def test_first_violation_agrees_with_the_parser_on_every_short_string() -> None:
    # Exhaustive over strings of length <= 6 on 8 symbols, K = 2: no violation exactly when
    # the strict parser accepts; a violating token is the first one no completion survives
    # (the answers of K = 2 are "[0,1]" and "[1,0]", whitespace aside), and an early end is a
    # prefix that can still be completed; the item index counts the digits before it.
    answers = ("[0,1]", "[1,0]")

    def completable(s: str) -> bool:
        bare = "".join(ch for ch in s if ch not in " \t\n\r")
        return any(a.startswith(bare) for a in answers)

    for n in range(7):
        for chars in itertools.product(["[", "]", ",", "0", "1", " ", "2", "x"], repeat=n):
            text = "".join(chars)
            v = first_violation(chars, 2)
            assert (v is None) == (parse_strict(text, 2) is not None), text
            if v is None:
                continue
            if v.category == "early_end":
                assert v.token_index == n and completable(text), text
            else:
                assert completable(text[: v.token_index]), text
                assert not completable(text[: v.token_index + 1]), text
            assert v.item_index == sum(ch in "01" for ch in text[: v.token_index]), text


def _vocab() -> tuple[list[str], dict[str, int], int]:
    texts = ["\x00", "\x00", "[", "]", ",", " ", "x"] + [str(d) for d in range(10)]
    return texts, {s: i for i, s in enumerate(texts)}, 1  # token 1 is the stop token


def test_id_position_masses_on_hand_made_logprobs() -> None:
    # "[3,1," then an id is due with 3 and 1 written: the masses of the six categories are
    # read off the next-token distribution at that position, by item index.
    texts, ids, stop = _vocab()
    k, V = 4, len(texts)
    row = [ids[s] for s in "[3,1,"] + [ids["0"], ids["]"], stop]  # "[3,1,0]": premature close
    lp = np.full((1, len(row), V), math.log(1e-30))
    dist = {"0": 0.1, "2": 0.05, "3": 0.3, "1": 0.15, "]": 0.12, ",": 0.08, "x": 0.07, "7": 0.03,
            " ": 0.02}
    probs = np.full(V, 0.0)
    for s, q in dist.items():
        probs[ids[s]] = q
    probs[stop] = 1.0 - probs.sum()  # 0.08
    lp[0, 5] = np.log(np.maximum(probs, 1e-300))  # the position after "[3,1,"
    tally = MechanismTally(k, texts, stop)
    tally.add_answers(lp, [row], [False])
    rec = tally.to_dict()
    at2 = rec["id_positions"]["by_item_index"][2]
    assert at2["n"] == 1
    want = {"fresh_id": 0.15, "duplicate_id": 0.45, "close": 0.12, "separator": 0.08,
            "end": 0.08, "other": 0.12}
    assert at2["mass"] == pytest.approx(want, abs=1e-12)
    # the other id positions: after "[" (item 0) and after "[3," (item 1)
    assert [e["n"] for e in rec["id_positions"]["by_item_index"]] == [1, 1, 1, 0]
    assert rec["id_positions"]["n"] == 3
    fail = rec["failures"]
    assert fail["answers"] == 1 and fail["failed"] == 1
    assert fail["categories"]["premature_close"] == 1
    assert fail["by_item_index"]["premature_close"] == [0, 0, 0, 1, 0]


def test_stopping_where_an_id_is_due_is_an_early_end_at_an_id_position() -> None:
    texts, ids, stop = _vocab()
    tally = MechanismTally(3, texts, stop)
    lp = np.log(np.full((2, 4, len(texts)), 1.0 / len(texts)))
    rows = [[ids["["], ids["2"], ids[","], stop], [ids["["], ids["2"], ids[","], ids["2"]]]
    tally.add_answers(lp, rows, [False, False])
    rec = tally.to_dict()
    assert rec["failures"]["by_item_index"]["early_end"] == [0, 1, 0, 0]
    assert rec["failures"]["by_item_index"]["duplicate_id"] == [0, 1, 0, 0]
    # id positions: after "[" twice, after "[2," twice (the stop token's own position too)
    assert [e["n"] for e in rec["id_positions"]["by_item_index"]] == [2, 2, 0]
    assert rec["id_positions"]["by_item_index"][1]["mass"]["end"] == pytest.approx(
        1.0 / len(texts))


def test_evaluation_masses_on_a_tiny_model() -> None:
    # On a briefly trained tiny model: per type, valid + tail = 1 and valid is the
    # evaluation's own valid_mass; at every id position the six categories sum to 1 and
    # equal a direct sum over the next-token distribution; every failed answer is counted
    # once.
    torch.manual_seed(0)
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    model = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 3)
    train_sft(model, sft_batches(tok, 8, 3, 16, Recipe(1.0, 0.5)), 25, 3e-3, 3, "sft")
    model.eval()
    cfg = Config(eval_rollouts=48, max_new=20)
    prompts = make_prompts(48, 8, 3, np.random.default_rng(5))
    walker = contract(8).compile(tok, len(tok), [info.eos_id])
    ev = evaluate(model, prompts, tok, info, cfg, 8, seed=11, walker=walker, mechanism=True)
    rec = ev["mechanism"]
    for ty, m in rec["masses"].items():  # the model's log-probs are float32: 1e-6
        assert m["valid"] + m["tail"] == pytest.approx(1.0, abs=1e-6), ty
        assert m["valid"] == pytest.approx(ev["valid_mass"][ty], abs=1e-12), ty
        assert 0.0 < m["tail_geo"] <= m["tail"] + 1e-15
    fail = rec["failures"]
    assert fail["answers"] == 48 and fail["failed"] == 48 - sum(ev["parsed"])
    assert sum(sum(v) for v in fail["by_item_index"].values()) == fail["failed"]
    # direct: the same rollouts again (same seed), the distribution summed token by token at
    # every viable prefix that ends with "[" or ","
    ids, mask = encode(prompts, tok, info, "cpu")
    gen, _ = sample(model, ids, mask, cfg.max_new, [info.eos_id], torch.Generator().manual_seed(11))
    with torch.no_grad():
        lp = answer_logprobs(model, ids, mask, gen).double().numpy()
    sums = np.zeros((8, 1 + len(ID_MASS_CATEGORIES)))
    for b, row in enumerate(gen.tolist()):
        for t in range(len(row)):
            prefix = [info.texts[x] for x in row[:t]]
            if info.eos_id in row[:t]:
                break
            v = first_violation(prefix, 8)
            if v is not None and v.category != "early_end":
                break
            if not prefix or prefix[-1] not in ("[", ","):
                continue
            used = [int(x) for x in prefix if x.isdigit()]
            by = dict.fromkeys(ID_MASS_CATEGORIES, 0.0)
            for token, q in enumerate(np.exp(lp[b, t])):
                s = info.texts[token]
                cat = ("end" if token == info.eos_id else
                       ("duplicate_id" if int(s) in used else "fresh_id")
                       if s.isdigit() and int(s) < 8 else
                       "close" if s == "]" else "separator" if s == "," else "other")
                by[cat] += q
            sums[len(used), 0] += 1
            sums[len(used), 1:] += [by[c] for c in ID_MASS_CATEGORIES]
    got = rec["id_positions"]["by_item_index"]
    assert [e["n"] for e in got] == sums[:, 0].astype(int).tolist()
    assert rec["id_positions"]["n"] > 48
    for i, e in enumerate(got):
        if e["n"]:
            assert sum(e["mass"].values()) == pytest.approx(1.0, abs=1e-6)
            want = dict(zip(ID_MASS_CATEGORIES, sums[i, 1:] / sums[i, 0], strict=True))
            assert e["mass"] == pytest.approx(want, abs=1e-9), i


def test_pooling_and_rows_against_the_edges() -> None:
    # Two seeds' evaluations pool into one row per (kind, lambda, step); the tail is set
    # against (1-p)/c at the type's measured p, and the clip counts add up.
    def record(n: int, tail: float, cap: int) -> dict:
        return {"masses": {"close": {"n": n, "valid": 1 - tail, "tail": tail, "tail_geo": tail}},
                "failures": {"answers": 4, "failed": 1,
                             "categories": {c: int(c == "duplicate_id") for c in
                                            FAILURE_CATEGORIES},
                             "by_item_index": {c: [0, 0, int(c == "duplicate_id")]
                                               for c in FAILURE_CATEGORIES}},
                "id_positions": {"n": 0, "mass": {}, "by_item_index": []},
                "clip_share": {"steps": 2, "tokens": 10, "cap": cap, "floor": 1}}

    runs = [{"job": {"kind": "main", "lam": 1.2, "seed": s, "c": 5.0, "c_low": 0.2},
             "evals": {"2": {"parse_rate": 0.5 + 0.25 * s,
                             "mechanism": record(10 * (s + 1), 1e-3 * (s + 1), s)}}}
            for s in (0, 1)]
    (row,) = mechanism_rows(runs, [{"type": "close", "mean_p": 0.99979, "mean_b": 0.5118}])
    assert (row["kind"], row["lam"], row["step"], row["seeds"]) == ("main", 1.2, 2, [0, 1])
    assert row["parse_rate"] == pytest.approx(0.625)
    m = row["masses"]["close"]
    assert m["n"] == 30 and m["tail"] == pytest.approx((10 * 1e-3 + 20 * 2e-3) / 30)
    assert m["tail_edge"] == pytest.approx((1 - 0.99979) / 5.0)
    assert m["tail_over_edge"] == pytest.approx(m["tail"] / m["tail_edge"])
    assert m["valid_inside"] is False  # the tail is far above the edge
    assert row["failures"]["by_item_index"]["duplicate_id"] == [0, 0, 2]
    assert row["clip_share"]["tokens"] == 20 and row["clip_share"]["cap_share"] == 0.05
    assert pool([runs[0]["evals"]["2"]["mechanism"]])["masses"]["close"]["n"] == 10
    assert math.isnan(region_edges(1.0, 0.5, 5.0, 0.2)["tail_edge"])
