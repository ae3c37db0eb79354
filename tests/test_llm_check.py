"""Tests of the Qwen3 cliff check: the contract, the engine's masks, the pre-registered run
and the checkpoint path.

The contract has three independent forms: the strict parser (``json.loads`` + rules), the
grammar the contract engine walks (``task.contract_grammar``), and the character-level
prefix automaton below, a test oracle.  The automaton is checked against the parser on every
short string and against brute-force completion search; the engine's masks are checked
against the automaton at every position of 1200 rollouts.  The run tests check structure
and ordering, never wall-clock time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from validate.llm_check.models import left_pad
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
    from transformers import PreTrainedTokenizerFast

    tok = build_tokenizer(8, 3)
    tok.save_pretrained(tmp_path)
    back = PreTrainedTokenizerFast.from_pretrained(str(tmp_path), local_files_only=True)
    text = "i0 x2 y1 i1 x0 y0 =>"
    assert back.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    info = token_info(back, len(back))
    ids = [back.convert_tokens_to_ids(s) for s in "[1,0]"] + [info.eos_id]
    assert info.answer_text(ids) == "[1,0]"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    from validate.llm_check.__main__ import main

    out = tmp_path_factory.mktemp("llm_quick")
    report = main(["--quick", "--out", str(out), "--device", "cpu"])
    return report, out


def test_quick_run_report_structure(quick_report: tuple[dict, Path]) -> None:
    # The quick run is below every test's design minimums (1 seed, 64 rollouts), so every
    # verdict is VOID, with a reason; the report passes check_report against the sealed file.
    from validate.llm_check.prereg import TEST_NAMES, check_report, verify_prediction

    report, out = quick_report
    on_disk = json.loads((out / "report.json").read_text())
    assert (out / "cliff_llm.png").stat().st_size > 0
    payload = verify_prediction(out / "prediction.json")
    check_report(on_disk, payload)
    assert isinstance(on_disk["gate"]["passed"], bool)
    assert set(on_disk["tests"]) == set(TEST_NAMES)
    for name in TEST_NAMES:
        entry = on_disk["tests"][name]
        assert entry["verdict"] == "VOID" and entry["reasons"], name
    assert "no break inside the sweep" not in json.dumps(on_disk)
    assert payload["gate"]["passed"] == on_disk["gate"]["passed"]
    assert payload["gate_attempts"] and payload["gate_attempts"][0]["measurement"]
    assert payload["code"]["cliff"] and len(payload["code"]["commit"] or "0" * 40) == 40
    if on_disk["gate"]["passed"]:
        assert on_disk["first_sweep_run_started_at"] > payload["written_at"]
    else:
        assert on_disk["first_sweep_run_started_at"] is None
        assert on_disk["summary"].startswith("VOID")
    assert on_disk["config"] == payload["config"]


def test_summary_tables_the_report_on_disk(quick_report: tuple[dict, Path],
                                           tmp_path: Path) -> None:
    # One row per report.json, the sealed sha256 in it, and an archived copy that keeps every
    # test while dropping the training histories.
    from validate.llm_check.summary import COLUMNS, main

    report, out = quick_report
    text = main([str(out), "--archive", str(tmp_path)])
    header, rule, *rows = text.splitlines()
    assert len(rows) == 1 and rows[0].count("|") == header.count("|") == len(COLUMNS) + 1
    assert report["prediction_sha256"][:12] in rows[0] and "VOID" in rows[0]
    archived = json.loads((tmp_path / f"sharpening_w{report['warm_seed']}.report.json")
                          .read_text())
    assert archived["tests"] == json.loads((out / "report.json").read_text())["tests"]
    assert all("history" not in r and "final" not in r for r in archived.get("runs", []))


def test_gate_only_writes_the_gate_and_nothing_else(tmp_path: Path) -> None:
    # --gate-only stops after the gate: gate.json with every attempt and its measurement, no
    # sealed prediction, no sweep, no report.
    from validate.llm_check.__main__ import main

    rec = main(["--quick", "--gate-only", "--out", str(tmp_path), "--device", "cpu"])
    on_disk = json.loads((tmp_path / "gate.json").read_text())
    assert on_disk["passed"] == rec["passed"] and isinstance(rec["passed"], bool)
    assert on_disk["attempts"] and on_disk["attempts"][0]["measurement"]["warm_start"]
    assert on_disk["thresholds"]["eval_rollouts"] == rec["thresholds"]["eval_rollouts"]
    if not on_disk["passed"]:
        assert on_disk["attempts"][-1]["message"].startswith("VOID")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.json"]


@pytest.mark.parametrize("p, b", [(0.99979, 0.512), (0.9994, 0.503), (0.999, 0.35)])
def test_sharpening_threshold_puts_the_law_onset_in_the_cliff_window(p: float, b: float) -> None:
    # At the sharpening gate's masses the finite-budget law with the check's threshold is not
    # degenerate, and its asymptotic onset lies in cliff.solve's [lambda*, lambda_collapse]
    # (two separate derivations: the branch solution of "fixed point = tau" and the edge of
    # the clip-safe region).
    import cliff
    from validate.llm_check.__main__ import law_threshold

    tau = law_threshold(p, b, 5.0)
    s = cliff.solve(p, b, 5.0)
    e = cliff.budget_extension(p, b, 5.0, 60, 0.05, threshold=tau, lambda_T=s.lambda_star + 0.04)
    assert e.regime not in ("start", "teacher", "never")
    assert s.lambda_star - 1e-12 <= e.lambda_inf <= s.lambda_collapse + 1e-12


def test_sharpening_budget_shift_matches_the_simulated_mean_field() -> None:
    # Where the law claims validity (in_range), its predicted shift lambda_T - lambda_2T is
    # within 15% of the one the simulated mean-field flow (validate.monte_carlo, sgd clock)
    # shows on a 1e-4 lambda grid. Measured: law 0.0196, simulated 0.0214.
    import cliff
    from validate.llm_check.__main__ import law_threshold
    from validate.monte_carlo import mean_field

    p, b, steps, lr = 0.99979, 0.512, 100_000, 1.0
    tau = law_threshold(p, b, 5.0)
    lam = np.linspace(1.19, 1.26, 701)
    theta_T = mean_field(p, b, 5.0, lam, steps=steps, lr=lr, clock="sgd")
    theta_2T = mean_field(p, b, 5.0, lam, steps=steps, lr=lr, clock="sgd", theta0=theta_T)
    target = np.log(tau) - np.log1p(-tau)
    onset_T, onset_2T = (lam[np.argmax(th >= target)] for th in (theta_T, theta_2T))
    assert lam[0] < onset_2T < onset_T < lam[-1]
    e = cliff.budget_extension(p, b, 5.0, steps, lr, threshold=tau, lambda_T=onset_T)
    assert e.in_range
    assert e.shift == pytest.approx(onset_T - onset_2T, rel=0.15)


def test_softening_threshold_is_the_halving_of_the_warm_start_mass() -> None:
    # Softening: the Euler map run to the law's asymptotic onset settles at b/2.
    import cliff
    from validate.llm_check.__main__ import law_threshold

    p, b = 0.7, 0.9
    tau = law_threshold(p, b, 5.0)
    assert tau == 0.45
    lam = cliff.asymptotic_onset(p, b, 5.0, threshold=tau)
    assert 1.0 < lam < cliff.solve(p, b, 5.0).lambda_collapse
    onset_long = cliff.finite_budget_onset(p, b, 5.0, 20000, 0.5, threshold=tau)
    assert onset_long == pytest.approx(lam, abs=1e-3)


def _tiny_unit(tmp_path: Path, workers: int) -> tuple[Any, ...]:
    from validate.llm_check.__main__ import plan
    from validate.llm_check.grid import design_grid
    from validate.llm_check.models import TinyQwen3, new_model, train_sft
    from validate.llm_check.opd import Config
    from validate.llm_check.warmstart import Recipe, sft_batches

    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    models = []
    for seed, noise in ((2, 0.0), (1, 0.5)):
        m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), seed)
        train_sft(m, sft_batches(tok, 8, 3, 16, Recipe(0.0, noise)), 3, 3e-3, seed, "sft")
        models.append(m.eval())
    cfg = Config(out=str(tmp_path), opd_steps=1, rollouts=4, eval_rollouts=8, n_seeds=1,
                 workers=workers, n_boot=200, mass_every=1, schedule=True)
    meas = {"p": 0.999, "b": 0.5, "binding_type": "close",
            "windows": {"two_class": [1.2, 1.21], "by_token": [1.1, 1.15]},
            "two_class_c_new": [1.3, 1.31]}
    grid = design_grid({k: tuple(v) for k, v in meas["windows"].items()}, cfg.n_grid)
    pred, jobs = plan(cfg, "sharpening", meas, grid, [0])
    return cfg, tok, info, models, meas, pred, jobs


def test_planned_runs_in_worker_processes_give_a_checked_report(tmp_path: Path) -> None:
    # The sweep path of a passed gate, on tiny models: the planned runs (main at T and 2T,
    # c', control, scheduled) in two spawned workers, analysed into a report that passes
    # check_report; the design minimums are not met, so the tests are VOID with reasons.
    from validate.llm_check.__main__ import analyse
    from validate.llm_check.jobs import Context, run_jobs
    from validate.llm_check.prereg import check_report, utc_now, write_prediction
    from validate.llm_check.report import figure

    cfg, tok, info, (teacher, student), meas, pred, jobs = _tiny_unit(tmp_path, workers=2)
    kinds = {j.kind for j in jobs}
    assert kinds == {"main", "clip", "control", "schedule"}
    assert all(j.steps == 2 and j.eval_at == (1,) for j in jobs if j.kind == "main")
    payload = {"config": dataclasses.asdict(cfg), "configuration": "sharpening", "warm_seed": 0,
               "gate": {"passed": True, "message": "gate passed"}, "gate_attempts": [{}],
               "measurement": meas, "seeds": [0], **pred}
    record = write_prediction(tmp_path / "prediction.json", payload)
    started = utc_now()
    prompts = make_prompts(32, 8, 3, np.random.default_rng(0))
    ctx = Context(cfg, teacher, student, tok, info, 8, prompts, prompts[:8])
    runs = run_jobs(ctx, jobs, "tiny")
    assert [r["job"] for r in runs] == [j.to_dict() for j in jobs]  # the order of the plan
    main_run = next(r for r in runs if r["job"]["kind"] == "main")
    assert set(main_run["evals"]) == {1, 2} and len(main_run["evals"][1]["parsed"]) == 8
    assert all("valid_mass" in h for h in main_run["history"])
    report = analyse(cfg, record["payload"], record["sha256"], runs, started, True)
    check_report(report, record)
    assert len(figure(report).axes) == 2
    assert {v["verdict"] for v in report["tests"].values()} == {"VOID"}
    assert report["tests"]["cliff_interval"]["reasons"]
    assert {"cliff_disappeared", "onset"} <= set(report["control"])
    assert "mass_change" in report["attribution"]
    sched = report["schedule"]
    assert sched["passes"] == (sched["mean_parse_rate"] >= sched["best_sub_threshold_parse_rate"]
                               - sched["margin"] and sched["mean_lambda"]
                               >= 1.0 + sched["min_gain"])


def test_runs_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    # A job's result depends only on the context and the job: in-process and in a spawned
    # worker it parses the same rollouts.
    from validate.llm_check.jobs import Context, run_jobs

    cfg, tok, info, (teacher, student), _, _, jobs = _tiny_unit(tmp_path, workers=1)
    prompts = make_prompts(32, 8, 3, np.random.default_rng(0))
    pick = [j for j in jobs if j.kind == "main"][:2]
    one = run_jobs(Context(cfg, teacher, student, tok, info, 8, prompts, prompts[:8]), pick, "a")
    cfg2 = dataclasses.replace(cfg, workers=2)
    two = run_jobs(Context(cfg2, teacher, student, tok, info, 8, prompts, prompts[:8]), pick, "b")
    for x, y in zip(one, two, strict=True):
        assert x["evals"][2]["parsed"] == y["evals"][2]["parsed"]


def test_scheduler_feeds_every_context_with_absent_slots_masked() -> None:
    # Every viable position of the batch reaches the scheduler: S = the largest type count,
    # and the padded slots have all-False valid rows.
    from validate.llm_check.models import TinyQwen3, new_model
    from validate.llm_check.opd import Config, Models, scheduler_lambda_fn

    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 0).eval()
    seen = []

    class Spy:
        def __init__(self, *a: Any, **kw: Any) -> None:
            pass

        def update(self, t: np.ndarray, r: np.ndarray, valid: np.ndarray) -> float:
            seen.append((t.shape, valid.copy()))
            return 1.0

    import cliff

    vocab = {s: tok.convert_tokens_to_ids(s) for s in "[],0123456789"}
    rows = [[vocab[c] for c in "[0,1,2,3,4,5,6,7]"] + [info.eos_id],
            [vocab[c] for c in "[3,1"] + [info.eos_id] * 14]
    gen = torch.tensor([r + [info.pad_id] * (18 - len(r)) for r in rows])
    ids, mask = left_pad([[vocab["["]]] * 2, info.pad_id)
    original = cliff.LambdaScheduler
    try:
        cliff.LambdaScheduler = Spy  # type: ignore[misc,assignment]
        fn = scheduler_lambda_fn(Config(), info, 8, 1.5, tok, len(tok))
    finally:
        cliff.LambdaScheduler = original  # type: ignore[misc]
    fn(0, Models(m, m, m), ids, mask, gen)
    (shape, valid), = seen
    present = valid.any(axis=-1)  # (S, P)
    counts = dict(zip(POSITION_TYPES, present.sum(axis=0).tolist(), strict=True))
    # full row: open, 8 ids, 7 seps, close, end; cut row "[3,1" + EOS: open, 2 ids, the
    # separator after "3" and the EOS where a separator was due (a viable prefix: visited)
    assert shape[:2] == (10, len(POSITION_TYPES))
    assert counts == {"open": 2, "id": 10, "sep": 9, "close": 1, "end": 1}


def test_missing_checkpoint_names_argument(tmp_path: Path) -> None:
    from validate.llm_check.__main__ import main

    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="--student.*nope"):
        main(["--student", str(missing), "--teacher", str(missing), "--out", str(tmp_path)])


def test_saved_checkpoints_reload_and_take_an_opd_step(tmp_path: Path) -> None:
    from validate.llm_check.models import TinyQwen3, load_checkpoint, new_model, train_sft
    from validate.llm_check.opd import Config, Models, run_opd
    from validate.llm_check.warmstart import Recipe, sft_batches

    torch.set_num_threads(2)
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    for name, seed in (("student", 1), ("teacher", 2)):
        m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), seed)
        train_sft(m, sft_batches(tok, 8, 3, 16, Recipe(0.0, 0.0)), 5, 3e-3, seed, "sft")
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    student, s_tok = load_checkpoint(str(tmp_path / "student"), "--student")
    teacher, _ = load_checkpoint(str(tmp_path / "teacher"), "--teacher")
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    reference = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 1)
    reference.load_state_dict(student.state_dict())
    before = {k: v.clone() for k, v in student.state_dict().items()}
    cfg = Config(opd_steps=1, rollouts=8, eval_rollouts=8)
    prompts = make_prompts(16, 8, 3, np.random.default_rng(0))
    info2 = token_info(s_tok, student.config.vocab_size)
    r = run_opd(Models(teacher, student, reference), prompts, prompts[:8], s_tok, info2, cfg, 8,
                1.5, seed=0)
    assert len(r["history"]) == 1 and 0.0 <= r["final"]["parse_rate"] <= 1.0
    changed = any(not torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert changed


@pytest.mark.heavy
@pytest.mark.skipif(os.environ.get("CLIFF_THOROUGH") != "1", reason="set CLIFF_THOROUGH=1")
def test_full_default_run(tmp_path: Path) -> None:
    from validate.llm_check.__main__ import main

    report = main(["--out", str(tmp_path)])
    if report["gate"]["passed"]:
        assert len(report["per_seed"]["lambdas"]) >= 9 and len(report["per_seed"]["seeds"]) >= 3
