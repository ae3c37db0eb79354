"""``GOPDTrainer.train()`` on the project's small checkpoints, offline, on the CPU.

The checkpoints are built here (:mod:`validate.llm_check.checkpoints`, a few SFT steps: a
teacher that writes the ranking as JSON and a warm start that often drops the closing
brace).  What is checked against what:

* the logged lambda against the scheduler's rule applied to its own state after each step
  (``min(target, 1)`` while some group has too few contexts);
* with the teacher as the reference (lambda* infinite everywhere), that it reaches the target;
* ``cliff/parse_valid_frac`` against ``json.loads`` and ``jsonschema`` on the decoded
  completions the trainer walked, ``cliff/truncated_frac`` against a regular expression of
  the schema's documents matched partially;
* the scheduler's state after a resume against the one saved in the checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
jsonschema = pytest.importorskip("jsonschema")
regex = pytest.importorskip("regex")

from datasets import Dataset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from cliff.integrations.trl import STATE_NAME, GOPDConfig, GOPDTrainer  # noqa: E402
from cliff.internal import load_model, load_tokenizer, read_prompts, safe_lambda  # noqa: E402
from validate.llm_check.checkpoints import Recipe, build, schema  # noqa: E402

K = 8
WS = r"[ \t\n\r]*"
ITEM = f"[0-{K - 1}]"
DOCUMENT = regex.compile(rf'\{{{WS}"ranking"{WS}:{WS}\[{WS}{ITEM}(?:{WS},{WS}{ITEM}){{{K - 1}}}'
                         rf'{WS}\]{WS}\}}{WS}')


def kind(label: str) -> str:
    """Two groups: the item ids, and every other position (the format)."""
    return "value" if label.startswith("$.ranking[") else "format"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no telemetry, no downloads


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    return build(tmp_path_factory.mktemp("ckpt"), Recipe(steps=60, prompts=32))


class Recorder(TrainerCallback):
    """The scheduler's state when training begins (after a resume has loaded the
    checkpoint) and after every optimizer step."""

    def __init__(self, trainer: GOPDTrainer) -> None:
        self.trainer, self.states = trainer, []  # type: list[dict[str, Any]]
        self.begin: str | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        sched = self.trainer.lambda_scheduler
        self.begin = None if sched is None else json.dumps(sched.state_dict())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        sched = self.trainer.lambda_scheduler
        self.states.append({} if sched is None else sched.state())


def trainer(ckpt: dict[str, Path], out: Path, *, teacher: str = "teacher",
            group: Any = kind, **overrides: Any) -> tuple[GOPDTrainer, Recorder,
                                                          list[tuple[np.ndarray, np.ndarray]]]:
    tok = load_tokenizer(ckpt["teacher"], "teacher")
    tok.padding_side = "left"
    prompts = Dataset.from_list([{"prompt": p} for p in read_prompts(ckpt["prompts"])])
    kw: dict[str, Any] = {"output_dir": str(out), "target_lambda": 1.5, "c": 5.0,
                          "c_low": 0.2, "contract": schema(K), "bf16": False, "use_cpu": True,
                          "max_steps": 3, "per_device_train_batch_size": 8,
                          "max_completion_length": 24, "learning_rate": 1e-4,
                          "logging_steps": 1, "report_to": [], "save_strategy": "no",
                          "seed": 0, **overrides}
    gopd = GOPDTrainer(load_model(ckpt["reference"], "reference"),
                       load_model(ckpt[teacher], "teacher"), GOPDConfig(**kw),
                       train_dataset=prompts, processing_class=tok, position_group=group)
    recorder = Recorder(gopd)
    gopd.add_callback(recorder)
    walked: list[tuple[np.ndarray, np.ndarray]] = []
    find = gopd.positions.find  # type: ignore[union-attr]

    def spy(ids: Any, mask: Any = None) -> Any:
        walked.append((ids.cpu().numpy(), mask.cpu().numpy()))
        return find(ids, mask)

    gopd.positions.find = spy  # type: ignore[union-attr, method-assign]
    return gopd, recorder, walked


def logged(gopd: GOPDTrainer, key: str) -> list[float]:
    return [h[key] for h in gopd.state.log_history if key in h]


def check_rule(gopd: GOPDTrainer, recorder: Recorder, target: float) -> bool:
    """Every logged lambda is the rule applied to the scheduler's state after that step;
    return whether every group was warm at some step."""
    lams = logged(gopd, "cliff/lambda")
    assert len(lams) == len(recorder.states) == gopd.state.global_step
    warmed = False
    for lam, state in zip(lams, recorder.states, strict=True):
        bound = np.array([math.nan if b is None else b for b in state["lambda_star_bound"]])
        rule = float(safe_lambda(target, bound, np.array(state["warm"]), 0.05).min())
        assert lam == pytest.approx(rule, rel=1e-12) and lam <= target
        if not all(state["warm"]):
            assert lam == min(target, 1.0)  # too few contexts at some group
        warmed |= all(state["warm"])
    return warmed


def check_fractions(gopd: GOPDTrainer, ckpt: dict[str, Path],
                    walked: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """The logged shares against the decoded completions of each step; returns the parsed
    shares."""
    tok = load_tokenizer(ckpt["teacher"], "teacher")
    eos = int(tok.eos_token_id)
    parsed, cut = [], []
    for ids, mask in walked:
        ok, short = [], []
        for row, m in zip(ids, mask, strict=True):
            toks = row[m.astype(bool)].tolist()
            stopped = bool(toks) and toks[-1] == eos
            text = tok.decode(toks[:-1] if stopped else toks)
            try:
                jsonschema.validate(json.loads(text), schema(K))
                ok.append(stopped)
            except (json.JSONDecodeError, jsonschema.ValidationError):
                ok.append(False)
            short.append(not stopped and DOCUMENT.fullmatch(text, partial=True) is not None)
        parsed.append(float(np.mean(ok)))
        cut.append(float(np.mean(short)))
    assert logged(gopd, "cliff/parse_valid_frac") == pytest.approx(parsed, abs=1e-12)
    assert logged(gopd, "cliff/truncated_frac") == pytest.approx(cut, abs=1e-12)
    for key in ("cliff/lambda_star_bound", "cliff/clip_frac_high", "cliff/clip_frac_low"):
        assert len(logged(gopd, key)) == len(walked), key
    return parsed


def test_lambda_follows_the_rule_and_the_fractions_are_the_decoded_ones(
        ckpt: dict[str, Path], tmp_path: Path) -> None:
    gopd, recorder, walked = trainer(ckpt, tmp_path, max_steps=4)
    start = {k: v.clone() for k, v in gopd.model.state_dict().items()}
    gopd.train()
    frozen = gopd.accelerator.unwrap_model(gopd.reference_model).state_dict()
    assert all(torch.equal(frozen[k], start[k]) for k in start)  # pi0 stays the warm start
    assert not all(torch.equal(v, start[k]) for k, v in gopd.model.state_dict().items())
    assert check_rule(gopd, recorder, 1.5)
    assert not all(recorder.states[0]["warm"])  # a warm-up, then the rule
    assert gopd.positions is not None and gopd.positions.groups == ["format", "value"]
    parsed = check_fractions(gopd, ckpt, walked)
    assert 0.0 < np.mean(parsed) < 1.0  # the warm start parses sometimes: a real check


@pytest.mark.heavy
def test_by_label_on_the_default_checkpoints(tmp_path: Path) -> None:
    """Every label its own group, the default checkpoints (300 SFT steps), 30 steps."""
    ckpt = build(tmp_path / "ckpt", Recipe())
    gopd, recorder, walked = trainer(ckpt, tmp_path / "out", group=None, target_lambda=1.25,
                                     max_steps=30, per_device_train_batch_size=16)
    gopd.train()
    check_rule(gopd, recorder, 1.25)
    check_fractions(gopd, ckpt, walked)
    assert gopd.positions is not None and "$.ranking close" in gopd.positions.groups


def test_with_the_teacher_as_reference_lambda_reaches_the_target(
        ckpt: dict[str, Path], tmp_path: Path) -> None:
    """piT = pi0: no extrapolation ever leaves the clip-safe region (lambda* = inf)."""
    gopd, recorder, _ = trainer(ckpt, tmp_path, teacher="reference",
                                group=lambda label: "all", per_device_train_batch_size=2)
    start = {k: v.clone() for k, v in gopd.model.state_dict().items()}
    gopd.train()
    reference = gopd.accelerator.unwrap_model(gopd.reference_model)
    assert not any(p.requires_grad for p in reference.parameters())
    frozen, trained = reference.state_dict(), gopd.model.state_dict()
    assert all(torch.equal(frozen[k], start[k]) for k in start)  # pi0: the initial student
    # the student is its teacher and its reference: every advantage is 0, it does not move
    assert all(torch.equal(trained[k], start[k]) for k in start)
    lams = logged(gopd, "cliff/lambda")
    contexts = [s["contexts"][0] for s in recorder.states]
    assert contexts[0] < 59 and lams[0] == 1.0
    assert contexts[-1] >= 59 and lams[-1] == 1.5
    assert logged(gopd, "cliff/lambda_star_bound")[-1] == math.inf


def test_fixed_lambda_is_the_target_and_the_bound_is_still_reported(
        ckpt: dict[str, Path], tmp_path: Path) -> None:
    gopd, _, _ = trainer(ckpt, tmp_path, lambda_schedule="fixed", target_lambda=3.0,
                         max_steps=2)
    gopd.train()
    assert logged(gopd, "cliff/lambda") == [3.0, 3.0]
    assert gopd.lambda_scheduler is not None and gopd.lambda_scheduler.steps == 2


def test_resume_restores_the_scheduler(ckpt: dict[str, Path], tmp_path: Path) -> None:
    first, _, _ = trainer(ckpt, tmp_path / "a", max_steps=4, save_strategy="steps",
                          save_steps=2)
    first.train()
    saved = json.loads((tmp_path / "a" / "checkpoint-2" / STATE_NAME).read_text())
    end = json.loads((tmp_path / "a" / "checkpoint-4" / STATE_NAME).read_text())
    assert json.dumps(end["scheduler"]) == json.dumps(first.lambda_scheduler.state_dict())  # type: ignore[union-attr]

    again, recorder, _ = trainer(ckpt, tmp_path / "b", max_steps=4)
    again.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    assert recorder.begin == json.dumps(saved["scheduler"])  # restored as saved
    assert again.positions is not None and again.positions.groups == saved["positions"]["groups"]
    assert len(recorder.states) == 2  # steps 3 and 4: the same state as without the stop
    assert json.dumps(again.lambda_scheduler.state_dict()) == json.dumps(end["scheduler"])  # type: ignore[union-attr]

    (tmp_path / "c").mkdir()
    bare = tmp_path / "c" / "checkpoint-2"
    bare.mkdir()
    for f in (tmp_path / "a" / "checkpoint-2").iterdir():
        if f.name != STATE_NAME:
            (bare / f.name).write_bytes(f.read_bytes())
    other, _, _ = trainer(ckpt, tmp_path / "c", max_steps=2)
    with pytest.raises(ValueError, match=f"has no {STATE_NAME}"):
        other.train(resume_from_checkpoint=str(bare))


def test_the_readme_script_runs(ckpt: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from validate import train_with_trl

    out = train_with_trl.main(["--checkpoints", str(ckpt["teacher"].parent), "--out",
                               str(tmp_path), "--steps", "3", "--batch", "4"])
    printed = capsys.readouterr().out
    assert "lambda: 1.000 at step 1" in printed and "binding group" in printed
    saved = json.loads((tmp_path / "train_with_trl.json").read_text())
    assert saved["args"]["steps"] == 3 and len(saved["log"]) == 3 == len(out["log"])
    assert saved["scheduler"]["steps"] == 3
