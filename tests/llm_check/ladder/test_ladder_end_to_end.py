"""``python -m validate.llm_check --ladder --config paper --quick`` end to end: the files it
writes and their order, every verdict VOID, the report rebuilt from the sealed files, a
resume that trains nothing, and the flags the ladder refuses.  Checks structure and
ordering, never wall-clock time."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from validate.llm_check.cli import main
from validate.llm_check.ladder import report as ladder_report
from validate.llm_check.ladder import warm
from validate.llm_check.sealing import verify_prediction


@pytest.fixture(scope="module")
def quick_unit(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("ladder_quick") / "unit"
    report = main(["--ladder", "--config", "paper", "--quick", "--out", str(out),
                   "--device", "cpu", "--workers", "1"])
    return report, out


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _copy(out: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(out, tmp_path / "copy"))


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_the_unit_writes_its_five_files(quick_unit: tuple[dict, Path]) -> None:
    _, out = quick_unit
    for name in ("prediction.json", "calibration.json", "sweep.json", "report.json",
                 "ladder.png"):
        assert (out / name).stat().st_size > 0, name


def test_the_calibration_belongs_to_the_sealed_prediction(quick_unit: tuple[dict, Path]
                                                           ) -> None:
    _, out = quick_unit
    pred = _json(out / "prediction.json")
    cal = verify_prediction(out / "calibration.json")
    verify_prediction(out / "prediction.json")
    assert cal["prediction_sha256"] == pred["sha256"]
    assert _json(out / "sweep.json")["prediction_sha256"] == pred["sha256"]


def test_the_calibration_is_sealed_before_any_run_past_lambda_one(
        quick_unit: tuple[dict, Path]) -> None:
    _, out = quick_unit
    sealed = _at(_json(out / "prediction.json")["payload"]["written_at"])
    cal = _at(_json(out / "calibration.json")["payload"]["written_at"])
    runs = _json(out / "sweep.json")["runs"]
    first = [r for r in runs if r["job"]["kind"] == "ladder" and r["job"]["lam"] == 1.0]
    rest = [r for r in runs if r not in first]
    assert first and rest
    assert all(sealed < _at(r["started_at"]) < cal for r in first)
    assert all(cal < _at(r["started_at"]) for r in rest)


def test_every_planned_run_ran(quick_unit: tuple[dict, Path]) -> None:
    _, out = quick_unit
    planned = _json(out / "prediction.json")["payload"]["planned_runs"]
    ran = [r["job"] for r in _json(out / "sweep.json")["runs"]]
    key = sorted(json.dumps(j, sort_keys=True) for j in planned)
    assert key == sorted(json.dumps(j, sort_keys=True) for j in ran)


def test_every_quick_verdict_is_void_with_reasons(quick_unit: tuple[dict, Path]) -> None:
    report, out = quick_unit
    on_disk = _json(out / "report.json")
    assert on_disk["tests"] and all(v["verdict"] == "VOID" for v in on_disk["tests"].values())
    assert any("--quick" in why for why in on_disk["void_reasons"])
    assert on_disk["prediction_sha256"] == _json(out / "prediction.json")["sha256"]
    assert {k: v["verdict"] for k, v in report["tests"].items()} == \
        {k: v["verdict"] for k, v in on_disk["tests"].items()}


def test_the_report_command_rebuilds_the_same_tests(quick_unit: tuple[dict, Path],
                                                    tmp_path: Path) -> None:
    _, out = quick_unit
    copy = _copy(out, tmp_path)
    (copy / "report.json").unlink()
    ladder_report.main([str(copy)])
    again = _json(copy / "report.json")
    assert again["tests"] == _json(out / "report.json")["tests"]
    assert again["analysed_with"] and (copy / "ladder.png").stat().st_size > 0


def test_resume_on_a_finished_unit_trains_nothing_and_seals_the_same_prediction(
        quick_unit: tuple[dict, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, out = quick_unit
    copy = _copy(out, tmp_path)
    sha = _json(copy / "prediction.json")["sha256"]

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a checkpoint in the unit's folder was trained again")

    monkeypatch.setattr(warm, "train_models", no_training)
    report = main(["--ladder", "--config", "paper", "--quick", "--resume", str(copy),
                   "--device", "cpu", "--workers", "1"])
    assert report["prediction_sha256"] == sha
    assert _json(copy / "prediction.json")["sha256"] == sha
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == \
        sorted(p.name for p in (out / "checkpoints").iterdir())


def test_the_ladder_refuses_a_configuration_outside_its_four(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--config must be one of .* with --ladder, got "
                                         r"'sharpening'"):
        main(["--ladder", "--config", "sharpening", "--quick", "--out", str(tmp_path)])


def test_a_ladder_configuration_needs_the_ladder_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--config paper is a configuration of the ladder: "
                                         r"it needs --ladder"):
        main(["--config", "paper", "--quick", "--out", str(tmp_path)])
