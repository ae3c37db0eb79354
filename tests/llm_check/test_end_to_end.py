"""``python -m validate.llm_check`` end to end: the quick run's sealed prediction and checked
report, its summary table, ``--gate-only``, and refused checkpoint folders.  The run tests
check structure and ordering, never wall-clock time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from validate.llm_check import summary
from validate.llm_check.cli import main
from validate.llm_check.sealing import TEST_NAMES, check_report, verify_prediction


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("llm_quick")
    report = main(["--quick", "--out", str(out), "--device", "cpu"])
    return report, out


def test_quick_run_report_structure(quick_report: tuple[dict, Path]) -> None:
    # The quick run is below every test's design minimums (1 seed, 64 rollouts), so every
    # verdict is VOID, with a reason; the report passes check_report against the sealed file.
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
    report, out = quick_report
    text = summary.main([str(out), "--archive", str(tmp_path)])
    header, rule, *rows = text.splitlines()
    assert len(rows) == 1 and rows[0].count("|") == header.count("|") == len(summary.COLUMNS) + 1
    assert report["prediction_sha256"][:12] in rows[0] and "VOID" in rows[0]
    archived = json.loads((tmp_path / f"sharpening_w{report['warm_seed']}.report.json")
                          .read_text())
    assert archived["tests"] == json.loads((out / "report.json").read_text())["tests"]
    assert all("history" not in r and "final" not in r for r in archived.get("runs", []))


def test_gate_only_writes_the_gate_and_nothing_else(tmp_path: Path) -> None:
    # --gate-only stops after the gate: gate.json with every attempt and its measurement, no
    # sealed prediction, no sweep, no report.
    rec = main(["--quick", "--gate-only", "--out", str(tmp_path), "--device", "cpu"])
    on_disk = json.loads((tmp_path / "gate.json").read_text())
    assert on_disk["passed"] == rec["passed"] and isinstance(rec["passed"], bool)
    assert on_disk["attempts"] and on_disk["attempts"][0]["measurement"]["warm_start"]
    assert on_disk["thresholds"]["eval_rollouts"] == rec["thresholds"]["eval_rollouts"]
    if not on_disk["passed"]:
        assert on_disk["attempts"][-1]["message"].startswith("VOID")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.json"]


def test_missing_checkpoint_names_argument(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="--student.*nope"):
        main(["--student", str(missing), "--teacher", str(missing), "--out", str(tmp_path)])


@pytest.mark.heavy
@pytest.mark.skipif(os.environ.get("CLIFF_THOROUGH") != "1", reason="set CLIFF_THOROUGH=1")
def test_full_default_run(tmp_path: Path) -> None:
    report = main(["--out", str(tmp_path)])
    if report["gate"]["passed"]:
        assert len(report["per_seed"]["lambdas"]) >= 9 and len(report["per_seed"]["seeds"]) >= 3
