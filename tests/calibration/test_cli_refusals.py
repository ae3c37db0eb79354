"""``python -m cliff calibrate`` refuses bad arguments before it loads a model.

The checkpoint folders named here do not exist: an argument error that is reported instead
of the missing checkpoint was found before any loading started.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliff.cli import main


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "rank: "}\n')
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}},
                                  "required": ["a"]}))
    return {"prompts": prompts, "schema": schema, "missing": tmp_path / "no-such-checkpoint"}


def _run(files: dict[str, Path], out: Path, *extra: str, prompts: Path | None = None) -> int:
    return main(["calibrate", "--teacher", str(files["missing"]), "--reference",
                 str(files["missing"]), "--prompts", str(prompts or files["prompts"]),
                 "--schema", str(files["schema"]), "--out", str(out), *extra])


@pytest.mark.parametrize(("flags", "named"), [
    (["--c", "0.5"], "--c"),
    (["--c", "nan"], "--c"),
    (["--c", "5", "--c-low", "1.5"], "--c-low"),
    (["--c", "5", "--rollouts", "0"], "--rollouts"),
    (["--c", "5", "--max-new-tokens", "-3"], "--max-new-tokens"),
    (["--c", "5", "--batch-size", "0"], "--batch-size"),
    (["--c", "5", "--margin", "1.0"], "--margin"),
])
def test_settings_are_refused_before_loading(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             flags: list[str], named: str) -> None:
    assert _run(files, tmp_path / "out", *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {named}:"), err
    assert "no-such-checkpoint" not in err


def test_an_out_that_is_a_file_is_refused_before_loading(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    assert _run(files, taken, "--c", "5") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out:") and "is a file" in err
    assert taken.read_text() == "a file, not a folder"


def test_an_out_whose_result_name_is_a_folder_is_refused(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out" / "calibration.json").mkdir(parents=True)
    assert _run(files, tmp_path / "out", "--c", "5") == 2
    assert capsys.readouterr().err.startswith("error: --out:")


def test_prompts_that_are_not_utf8_are_named(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    assert _run(files, tmp_path / "out", "--c", "5", prompts=latin) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prompts:") and "not UTF-8" in err and "line 1" in err


def test_a_schema_that_is_not_utf8_is_named(files: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    files["schema"].write_bytes(b'{"type": "string", "description": "\xff"}')
    assert _run(files, tmp_path / "out", "--c", "5") == 2
    assert capsys.readouterr().err.startswith("error: --schema:")


def test_valid_arguments_reach_the_checkpoint_loader(files: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The control: with every argument valid, the first error is the missing checkpoint."""
    assert _run(files, tmp_path / "out", "--c", "5") == 2
    assert "no-such-checkpoint" in capsys.readouterr().err
