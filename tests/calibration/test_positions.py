"""``cliff.ContractPositions``: completions to the scheduler's ``[S, P, V]`` layout.

The statuses are checked against an independent reading of the decoded completions
(``json.loads`` and ``jsonschema``), the layout against the walk it is built from, and the
growing set of groups against a scheduler that knew every group from the start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cliff
from validate.llm_check.checkpoints import answer, schema, train_bpe

torch = pytest.importorskip("torch")

K = 4


@pytest.fixture(scope="module")
def tok() -> Any:
    rng = np.random.default_rng(0)
    return train_bpe([answer([int(i) for i in rng.permutation(K)]) for _ in range(200)], 300)


def completions(tok: Any, texts: list[str], stop: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids ``(B, T)`` and mask of ``texts``, each followed by EOS if ``stop``."""
    eos = tok.eos_token_id
    rows = [tok.encode(t) + ([eos] if s else []) for t, s in zip(texts, stop, strict=True)]
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), tok.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask


def independent_status(tok: Any, ids: np.ndarray, mask: np.ndarray) -> list[bool]:
    """A completion parses iff it ends with EOS and its text is a document of the schema."""
    jsonschema = pytest.importorskip("jsonschema")
    eos = tok.eos_token_id
    out = []
    for row, m in zip(ids, mask, strict=True):
        toks = row[m.astype(bool)].tolist()
        if not toks or toks[-1] != eos or eos in toks[:-1]:
            out.append(False)
            continue
        text = tok.decode(toks[:-1])
        try:
            jsonschema.validate(json.loads(text), schema(K))
            out.append(True)
        except (json.JSONDecodeError, jsonschema.ValidationError):
            out.append(False)
    return out


TEXTS = [answer([3, 1, 0, 2]), answer([3, 1, 0, 2]), '{"ranking": [3, 1]}',
         '{"ranking": [3, 1, 0, 9]}', '{"ranking": [3, 1, 0', answer([0, 1, 2, 3])[:-1],
         answer([2, 0, 3, 1]) + " x"]
STOP = [True, False, True, True, False, True, True]


def test_status_matches_json_and_jsonschema(tok: Any) -> None:
    ids, mask = completions(tok, TEXTS, STOP)
    batch = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id]).find(
        torch.tensor(ids), torch.tensor(mask))
    assert [s == "complete" for s in batch.status] == independent_status(tok, ids, mask)
    assert batch.status == ("complete", "truncated", "left", "left", "truncated", "left",
                            "left")
    assert batch.parse_valid_frac == pytest.approx(1 / 7)
    assert batch.truncated_frac == pytest.approx(2 / 7)
    lengths = mask.sum(1)
    for i, s in enumerate(batch.status):  # where a completion left, no position follows
        assert (batch.left_at[i] >= 0) == (s == "left")
        mine = batch.rows[batch.present] == i
        if mine.any():
            assert batch.steps[batch.present][mine].max() <= (
                batch.left_at[i] if s == "left" else lengths[i] - 1)


def test_layout_is_the_walk_grouped_and_padded(tok: Any) -> None:
    ids, mask = completions(tok, TEXTS, STOP)
    finder = cliff.ContractPositions(schema(K), tok, len(tok) + 5, [tok.eos_token_id])
    batch = finder.find(ids, mask)
    walk = finder.walker.walk([r[: int(n)].tolist() for r, n in zip(ids, mask.sum(1),
                                                                   strict=True)])
    masks = walk.unpack(len(tok) + 5)
    keep = (masks.sum(1) > 0) & (masks.sum(1) < len(tok) + 5)
    assert batch.present.sum() == keep.sum()
    assert list(batch.groups) == list(dict.fromkeys(np.array(walk.labels)[keep].tolist()))
    valid = batch.valid()
    assert valid.shape == (batch.n_slots, len(batch.groups), len(tok) + 5)
    assert not valid[~batch.present].any()
    seen = set()
    for i, j in zip(*np.nonzero(batch.present), strict=True):
        at = (walk.rows == batch.rows[i, j]) & (walk.steps == batch.steps[i, j])
        n = int(np.flatnonzero(at)[0])
        assert walk.labels[n] == batch.labels[i, j] == batch.groups[j]
        np.testing.assert_array_equal(valid[i, j], masks[n])
        seen.add(n)
    assert len(seen) == keep.sum()
    lp = np.random.default_rng(0).normal(size=(*ids.shape, len(tok) + 5))
    taken = batch.take(lp)
    np.testing.assert_array_equal(taken, lp[batch.rows, batch.steps])
    assert torch.equal(batch.take(torch.tensor(lp)), torch.tensor(taken))
    assert torch.equal(batch.valid("cpu"), torch.tensor(valid))


def test_groups_by_function_fixed_and_grown(tok: Any) -> None:
    ids, mask = completions(tok, TEXTS, STOP)
    kind = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id],
                                   group=lambda label: label.split()[-1]
                                   if label.startswith("$.ranking") else None)
    batch = kind.find(ids, mask)
    assert set(batch.groups) == {"value", "comma", "close"}
    fixed = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id],
                                    groups=["$.ranking close", "$ end"])
    batch = fixed.find(ids, mask)
    # "]" is reached by the completions 0, 1, 5, 6; the end of the document, with a token
    # after it, by 0 (EOS) and 6 (" x")
    assert batch.groups == ("$.ranking close", "$ end") and batch.counts.tolist() == [4, 2]
    grown = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id])
    first = grown.find(ids[2:3], mask[2:3])  # stops early: fewer groups
    second = grown.find(ids, mask)
    assert second.groups[: len(first.groups)] == first.groups
    assert len(second.groups) > len(first.groups)
    again = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id])
    again.load_state_dict(json.loads(json.dumps(grown.state_dict())))
    assert again.find(ids, mask).groups == second.groups


def test_errors(tok: Any) -> None:
    ids, mask = completions(tok, TEXTS[:2], STOP[:2])
    finder = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id])
    holes = mask.copy()
    holes[0, 1] = 0
    with pytest.raises(ValueError, match="completion_mask must mark a prefix.*row 0"):
        finder.find(ids, holes)
    with pytest.raises(ValueError, match="completion_mask must have the shape"):
        finder.find(ids, mask[:, :-1])
    with pytest.raises(ValueError, match="completion_ids must be integer"):
        finder.find(ids.astype(float), mask)
    with pytest.raises(ValueError, match="vocab_size"):
        cliff.ContractPositions(schema(K), tok, 1, [tok.eos_token_id])
    with pytest.raises(ValueError, match="distinct"):
        cliff.ContractPositions(schema(K), tok, len(tok), [0], groups=["a", "a"])


def test_a_grown_scheduler_is_one_that_knew_every_group() -> None:
    """Position 2 first occurs in the third update: growing the scheduler then gives the
    state of a scheduler that tracked it from the start, absent until then."""
    rng = np.random.default_rng(1)
    valid = np.array([True, True, False, False])

    def batch(n: int, positions: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.log(rng.dirichlet(np.ones(4) * 0.5, size=(n, positions)))
        r = np.log(rng.dirichlet(np.ones(4) * 2.0, size=(n, positions)))
        return t, r

    for estimator in ("per_context", "pooled"):
        kw = {"c": 5.0, "mode": "per_position", "estimator": estimator, "window": 64}
        grown = cliff.LambdaScheduler(1.5, **kw)
        whole = cliff.LambdaScheduler(1.5, **kw)
        for step in range(4):
            t, r = batch(30, 3)
            mask = np.broadcast_to(valid, t.shape).copy()
            if step < 2:
                mask[:, 2] = False
                grown.update(t[:, :2], r[:, :2], valid, student_logprobs=r[:, :2])
            else:
                grown.grow(3)
                grown.update(t, r, mask, student_logprobs=r)
            whole.update(t, r, mask, student_logprobs=r)
            if step == 1:
                grown.grow(3)
                a, b = grown.state_dict(), whole.state_dict()
                assert a["lambda"][:2] == b["lambda"][:2] and a["lambda"][2] == 1.0
                assert {**a, "lambda": None} == {**b, "lambda": None}
        assert grown.state_dict() == whole.state_dict()
        assert grown.state() == whole.state()
        with pytest.raises(ValueError, match="at least the 3 positions"):
            grown.grow(2)


def test_an_empty_batch_keeps_the_last_lambda(tok: Any) -> None:
    finder = cliff.ContractPositions(schema(K), tok, len(tok), [tok.eos_token_id],
                                     groups=["$ end"])
    ids, mask = completions(tok, ['{"ranking": [3'], [False])
    batch = finder.find(ids, mask)
    assert batch.n_slots == 0 and batch.valid().shape == (0, 1, len(tok))
    lp = np.zeros((*ids.shape, len(tok)))
    sched = cliff.LambdaScheduler(1.5, c=5.0)
    assert batch.update(sched, lp, lp) == 1.0 and sched.steps == 0


def readme_block(heading: str) -> str:
    """The first ``python`` code block after ``heading`` in README.md."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("```python\n", text.index(heading)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_training_loop_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The README's own loop, as written, on small checkpoints built here as ``demo/``."""
    from validate.llm_check.checkpoints import Recipe, build

    torch.set_num_threads(1)
    build(tmp_path / "demo", Recipe(steps=20, prompts=48))
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(readme_block("### Your own training loop"), "README.md", "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[-3:]] == [["0", "lambda"], ["1", "lambda"],
                                                        ["2", "lambda"]]
    assert json.loads(scope["state"])["steps"] == 3
