"""``cliff.calibrate`` and ``python -m cliff calibrate`` on real tokenizers.

Checkpoints are built here (no downloads): tiny Qwen3 models with a byte-level BPE tokenizer
trained on JSON answers (:mod:`validate.llm_check.checkpoints`), and, where the ``qwen``
extra is installed, a small random Qwen3 with the full Qwen3 vocabulary and output size.
The contract's masks at the first answer position are checked against an independent
derivation: a regular expression of the schema's documents, matched partially against each
token's decoded text.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import regex
import torch

import cliff
from cliff.cli import main
from validate.llm_check import vocab
from validate.llm_check.checkpoints import Recipe, build, json_batches, schema, train_bpe
from validate.llm_check.models import TinyQwen3, new_model, train_sft

WS = r"[ \t\n\r]*"


def documents(k: int) -> str:
    """Regex of the JSON texts valid for ``schema(k)`` (no whitespace before the document:
    the engine's JSON starts at the value)."""
    item = f"[0-{k - 1}]"
    items = item + (f"{WS},{WS}{item}" * (k - 1))
    return (rf'\{{{WS}"ranking"{WS}:{WS}\[{WS}{items}{WS}\]{WS}\}}{WS}')


def document_starts(tokenizer: Any, rows: int, k: int) -> np.ndarray:
    """Tokens whose decoded text can begin a document (a prefix of some match), of ``rows``."""
    pattern = regex.compile(documents(k))
    special = set(tokenizer.all_special_ids)
    out = np.zeros(rows, dtype=bool)
    for t in range(len(tokenizer)):
        text = tokenizer.decode([t])
        out[t] = (t not in special and bool(text)
                  and pattern.fullmatch(text, partial=True) is not None)
    return out


def first_step_logprobs(model: Any, tokenizer: Any, prompt: str) -> torch.Tensor:
    """Log-softmax of the model's next-token logits after the bare prompt, ``(V,)``."""
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=ids).logits[0, -1].double(), dim=-1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("ckpt")
    build(out, Recipe(steps=60, prompts=8))
    return out


def _cli(ckpt: Path, out: Path, *extra: str, teacher: str = "teacher") -> int:
    return main(["calibrate", "--teacher", str(ckpt / teacher), "--reference",
                 str(ckpt / "reference"), "--prompts", str(ckpt / "prompts.jsonl"), "--c", "5",
                 "--rollouts", "24", "--max-new-tokens", "40", "--batch-size", "12",
                 "--out", str(out), *extra])


def test_cli_writes_the_calibration(ckpt: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(ckpt, tmp_path, "--schema", str(ckpt / "schema.json")) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["c"] == 5.0 and data["c_low"] == pytest.approx(0.2)
    rows = data["positions"]
    keys = {"label", "n", "p", "b", "lambda_star", "lambda_collapse", "regime", "binding",
            "by_token_q05", "by_token_median"}
    assert rows and all(keys <= set(r) for r in rows)
    assert data["binding"] == rows[0]["label"]
    assert data["recommended_lambda"] < rows[0]["by_token_q05"]
    assert {"$ value", "$ key", "$.ranking[0] value", "$.ranking comma"} <= {
        r["label"] for r in rows}
    assert sum(r["n"] for r in rows) == data["rollouts"]["positions"]
    table = (tmp_path / "calibration.md").read_text()
    first_row = next(line for line in table.splitlines() if line.startswith("| **`"))
    assert data["binding"] in first_row and first_row in printed
    assert (tmp_path / "calibration.png").stat().st_size > 0
    assert len(data["parse_rate"]["lambdas"]) == len(data["parse_rate"]["predicted"])


def test_teacher_equal_to_reference_has_no_threshold(ckpt: Path, tmp_path: Path) -> None:
    assert _cli(ckpt, tmp_path, "--schema", str(ckpt / "schema.json"),
                teacher="reference") == 0
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["binding"] is None and data["recommended_lambda"] == "inf"
    for r in data["positions"]:
        assert r["regime"] == "neutral"
        assert "inf" == r["lambda_star"] == r["lambda_collapse"] == r["by_token_q05"]
        assert r["by_token_median"] == "inf"
    assert cliff.read_json(tmp_path / "calibration.json")["recommended_lambda"] == math.inf
    assert np.allclose(data["parse_rate"]["predicted"], data["parse_rate"]["predicted"][0])


def test_first_position_is_the_mass_on_document_starts(ckpt: Path) -> None:
    # p and b at the first answer position are the models' softmax mass on the tokens whose
    # text can begin a document of the schema, and the mask there is exactly that set.
    tok = cliff.internal.load_tokenizer(ckpt / "teacher", "--teacher")
    teacher = cliff.internal.load_model(ckpt / "teacher", "--teacher")
    reference = cliff.internal.load_model(ckpt / "reference", "--reference")
    prompts = [json.loads(line)["prompt"] for line in
               (ckpt / "prompts.jsonl").read_text().splitlines()]
    contract = cliff.Contract.json_schema(schema(8))
    cal = cliff.calibrate(teacher, reference, tok, prompts, contract, c=5.0,
                          rollouts=len(prompts), max_new_tokens=30, progress=False)
    starts = document_starts(tok, len(tok), 8)
    walker = contract.compile(tok, len(tok), [tok.eos_token_id])
    first = walker.walk([[tok.eos_token_id]])
    assert np.array_equal(first.unpack(len(tok))[0], starts)
    m = cal.measurements
    sel = m.step == 0
    assert set(m.labels[sel].tolist()) == {"$ value"} and sel.sum() == len(prompts)
    for i, r in enumerate(m.rollout[sel]):
        for model, got in ((teacher, m.log_p[sel][i]), (reference, m.log_b[sel][i])):
            lp = first_step_logprobs(model, tok, prompts[int(r) % len(prompts)])
            want = float(torch.logsumexp(lp[torch.from_numpy(starts)], 0))
            assert got == pytest.approx(want, abs=1e-5)


def test_calibration_pools_labels_from_its_positions(ckpt: Path) -> None:
    # One label's pooled p is the mean of its positions' p; the binding label has the
    # smallest by-token quantile; the parse rate at lambda = 1 is the product of the labels'
    # teacher masses raised to their counts per complete answer.
    tok = cliff.internal.load_tokenizer(ckpt / "teacher", "--teacher")
    teacher = cliff.internal.load_model(ckpt / "teacher", "--teacher")
    reference = cliff.internal.load_model(ckpt / "reference", "--reference")
    prompts = [json.loads(line)["prompt"] for line in
               (ckpt / "prompts.jsonl").read_text().splitlines()][:3]
    cal = cliff.calibrate(teacher, reference, tok, prompts, schema(8), c=5.0, rollouts=12,
                          batch_size=5, max_new_tokens=30, progress=False)
    m = cal.measurements
    for row in cal.positions:
        sel = m.labels == row.label
        assert row.n == sel.sum()
        assert row.p == pytest.approx(np.exp(m.log_p[sel]).mean(), rel=1e-12)
        assert row.by_token_q05 <= row.by_token_median
    qs = [r.by_token_q05 for r in cal.positions]
    assert qs == sorted(qs) and cal.binding in (cal.positions[0].label, None)
    used = [r for r in cal.positions if r.label not in cal.parse_rate_left_out
            and r.per_answer > 0]
    assert cal.parse_rate[0] == pytest.approx(math.prod(r.p ** r.per_answer for r in used),
                                              rel=1e-9)
    assert cal.rollouts["n"] == 12 == sum(cal.rollouts[k] for k in ("complete", "left", "open"))


def test_bad_input_is_named(ckpt: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    schema_file = str(ckpt / "schema.json")
    assert _cli(ckpt, tmp_path, "--schema", schema_file, teacher="missing") == 2
    assert "--teacher: no such checkpoint folder" in capsys.readouterr().err

    other = tmp_path / "other"
    shutil.copytree(ckpt / "teacher", other)
    train_bpe(["{\"a\": 1}"] * 10, 280).save_pretrained(other)
    assert _cli(ckpt, tmp_path, "--schema", schema_file, teacher=str(other)) == 2
    assert "must share one tokenizer" in capsys.readouterr().err

    unique = tmp_path / "unique.json"
    unique.write_text(json.dumps({"type": "array", "uniqueItems": True}))
    assert _cli(ckpt, tmp_path, "--schema", str(unique)) == 2
    err = capsys.readouterr().err
    assert "uniqueItems" in err and "--schema" in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\nnot json\n')
    assert main(["calibrate", "--teacher", str(ckpt / "teacher"), "--reference",
                 str(ckpt / "reference"), "--prompts", str(bad), "--schema", schema_file,
                 "--c", "5", "--out", str(tmp_path)]) == 2
    assert "--prompts: line 2 is not JSON" in capsys.readouterr().err



def test_no_rollout_entering_still_measures_the_first_position(
        ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A warm start that has not learned the format: no sampled first token is valid, yet
    the first answer position is a context where the answer can still be completed, so
    p and b are measured there, with a warning and the prompt-format hint in the report."""
    with pytest.warns(cliff.CalibrationWarning, match="only 0 of 24 rollouts entered.*"
                      "chat-template"):
        assert _cli(ckpt, tmp_path, "--regex", r"\x01+") == 0
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["rollouts"]["entered"] == 0 and data["rollouts"]["left"] == 24
    assert [r["n"] for r in data["positions"]] == [24]  # the first position of each rollout
    assert "**Warning**: only 0 of 24 rollouts entered" in (tmp_path / "calibration.md"
                                                            ).read_text()
    first = data["positions"][0]
    assert 0 < first["b"] < 1 and 0 < first["p"] < 1 and first["b_rest"] > 0.5


def test_prompts_as_they_are_or_through_the_chat_template(ckpt: Path) -> None:
    from cliff.internal import encode_prompts as _encode

    tok = cliff.internal.load_tokenizer(ckpt / "teacher", "--teacher")
    tok.chat_template = ("{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}"
                         "{% if add_generation_prompt %} =>{% endif %}")
    plain, chat = _encode(["i0 x1"], tok, False), _encode(["i0 x1"], tok, True)
    assert tok.decode(plain[0]) == "i0 x1" and tok.decode(chat[0]) == "<<i0 x1>> =>"
    with pytest.raises(ValueError, match=r"prompts\[1\] must be a string"):
        _encode(["a", 3], tok, False)  # type: ignore[list-item]


def test_device_map_auto_loads_and_calibrates(ckpt: Path, tmp_path: Path) -> None:
    # accelerate places the models itself (here on the CPU, the one device there is).
    teacher = cliff.internal.load_model(ckpt / "teacher", "--teacher", device_map="auto")
    assert {p.device.type for p in teacher.parameters()} == {"cpu"}
    assert _cli(ckpt, tmp_path, "--schema", str(ckpt / "schema.json"), "--device-map", "auto",
                teacher="reference") == 0
    assert json.loads((tmp_path / "calibration.json").read_text())["binding"] is None


@pytest.mark.skipif(not vocab.available(), reason="the qwen extra is not installed")
def test_qwen3_vocabulary_and_output_size() -> None:
    # The full Qwen3 vocabulary (151,851 tokens) on a random Qwen3 whose lm_head has all
    # 151,936 rows; a few SFT steps teach it to start JSON answers.
    torch.set_num_threads(2)
    tok = vocab.qwen3_tokenizer()
    rows, k = vocab.QWEN3_VOCAB_ROWS, 3
    texts = ['{"ranking": [2, 0, 1]}', "naïve café 東京 🙂 \t\n", "i0 x1 y2 =>"]
    table = cliff.internal.token_bytes(tok, rows)
    for text in texts:
        assert b"".join(table[t] for t in tok.encode(text)) == text.encode()
    assert table[tok.eos_token_id].startswith(b"\xff") and table[rows - 1] == b""

    recipe = Recipe(k=k, batch=8)
    size = TinyQwen3(hidden_size=32, intermediate_size=64, num_hidden_layers=1, head_dim=16)
    reference = new_model(rows, tok.pad_token_id, tok.eos_token_id, size, 0)
    train_sft(reference, json_batches(tok, recipe, 1.0, 0.3), 30, 3e-2, 0, "sft")
    teacher = copy.deepcopy(reference)
    train_sft(teacher, json_batches(tok, recipe, 0.0, 0.0), 6, 1e-2, 1, "sft")
    prompts = ["i0 x1 y2 i1 x0 y0 i2 x2 y1 =>", "i0 x0 y0 i1 x2 y1 i2 x1 y2 =>"]
    cal = cliff.calibrate(teacher, reference, tok, prompts, schema(k), c=5.0, rollouts=8,
                          max_new_tokens=12, batch_size=8, progress=False)
    starts = document_starts(tok, rows, k)
    assert 0 < starts.sum() < 50
    m = cal.measurements
    sel = m.step == 0
    for i, r in enumerate(m.rollout[sel]):
        lp = first_step_logprobs(teacher, tok, prompts[int(r) % len(prompts)])
        want = float(torch.logsumexp(lp[torch.from_numpy(starts)], 0))
        assert m.log_p[sel][i] == pytest.approx(want, abs=1e-4)
    assert cal.rollouts["entered"] >= 1 and cal.info["vocab_size"] == rows
