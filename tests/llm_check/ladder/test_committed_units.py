"""The committed ladder units: each sealed file verifies, each report belongs to its
prediction, and each committed checkpoint has the sha256 its prediction recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from validate.llm_check.sealing import verify_prediction

FOLDER = Path(__file__).parents[3] / "validate" / "preregistered" / "ladder"
PREDICTIONS = sorted(FOLDER.glob("*.prediction.json"))


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_committed_units() -> None:
    assert PREDICTIONS, f"no ladder prediction under {FOLDER}"


@pytest.mark.parametrize("path", PREDICTIONS, ids=lambda p: p.name.split(".")[0])
def test_each_unit_verifies_and_its_files_belong_to_it(path: Path) -> None:
    record = _json(path)
    payload = verify_prediction(record)
    unit = path.name.split(".")[0]
    for role in ("teacher", "student"):
        model = payload["checkpoints"][role]
        weights = FOLDER / "checkpoints" / model["name"] / "model.safetensors"
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == model["sha256"], weights
    if not path.with_name(f"{unit}.report.json").exists():
        pytest.skip(f"{unit}: sealed, its report not committed yet (the unit is running)")
    report = _json(path.with_name(f"{unit}.report.json"))
    assert report["prediction_sha256"] == record["sha256"]
    calibration = path.with_name(f"{unit}.calibration.json")
    if calibration.exists():
        cal = _json(calibration)
        assert verify_prediction(cal)["prediction_sha256"] == record["sha256"]
        assert report["calibration_sha256"] == cal["sha256"]


def test_the_summary_reads_the_committed_units(capsys: pytest.CaptureFixture[str]) -> None:
    from validate.llm_check.ladder.summary import main

    main([str(FOLDER)])
    out = capsys.readouterr().out
    reported = {p.name.split(".")[0] for p in FOLDER.glob("*.report.json")}
    for unit in reported:  # every committed unit has its row in the first table
        name, seed = unit.rsplit("_w", 1)
        assert f"| {name} w{seed} |" in out
