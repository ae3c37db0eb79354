"""``python -m validate.llm_check`` end to end: the quick run's sealed prediction and checked
report (its sweep, mechanism and analysis run past the gate its budgets fail), its summary
tables, ``--gate-only``, and refused checkpoint folders.  The run tests check structure and
ordering, never wall-clock time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from validate.llm_check import jobs, summary
from validate.llm_check.cli import main
from validate.llm_check.plan import Job
from validate.llm_check.resume import ResumeRefused, check_same_prediction
from validate.llm_check.sealing import (
    TEST_NAMES,
    check_report,
    verify_prediction,
    write_prediction,
)


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
    # the sweep ran after the seal, past the gate when the quick budgets failed it
    assert on_disk["first_sweep_run_started_at"] > payload["written_at"]
    assert payload["planned_runs"] and len(on_disk["runs"]) == len(payload["planned_runs"])
    if not on_disk["gate"]["passed"]:
        assert on_disk["gate"]["verdict"] == "VOID" and on_disk["gate"]["quick_continued"]
        assert payload["gate"]["quick_continued"] and payload["gate"]["note"]
        assert on_disk["summary"].startswith("VOID")
    assert on_disk["config"] == payload["config"]


def test_quick_run_measures_the_mechanism(quick_report: tuple[dict, Path]) -> None:
    # Every main run's evaluation at T and 2T, pooled over seeds: the masses per type against
    # the clip-safe edges, the clip shares of the training tokens, the first violations of
    # the failed answers by category and item index, the masses at id positions; drawn in
    # mechanism.png and tabled by summary --mechanism.
    report, out = quick_report
    on_disk = json.loads((out / "report.json").read_text())
    mech = on_disk["mechanism"]
    assert set(mech["rules"]) == {"masses", "clip_share", "failures", "id_positions"}
    T = on_disk["config"]["opd_steps"]
    main_rows = [r for r in mech["rows"] if r["kind"] == "main"]
    assert {r["step"] for r in main_rows} == {T, 2 * T}
    assert {r["lam"] for r in main_rows} == set(on_disk["per_seed"]["lambdas"])
    measured = {r["type"] for r in on_disk["measurement"]["position_types"]}
    for r in mech["rows"]:
        f = r["failures"]
        assert f["answers"] == on_disk["config"]["eval_rollouts"]
        assert sum(f["categories"].values()) == f["failed"] == sum(
            sum(v) for v in f["by_item_index"].values())
        assert set(f["categories"]) == set(mech["failure_categories"])
        assert 0 <= r["clip_share"]["cap_share"] <= 1 and r["clip_share"]["tokens"] > 0
        for ty, m in r["masses"].items():
            assert {"valid", "tail", "tail_edge", "tail_over_edge", "region_low"} <= set(m)
            if ty in measured:
                assert m["tail_over_edge"] == pytest.approx(m["tail"] / m["tail_edge"])
        assert set(r["id_positions"]["mass"]) == set(mech["id_mass_categories"])
    assert (out / "mechanism.png").stat().st_size > 0
    header, rule, *rows = summary.main([str(out), "--mechanism"]).splitlines()
    assert len(rows) == len(main_rows) and header.count("|") == len(summary.MECHANISM_COLUMNS) + 1
    cells = [[c.strip() for c in row.split("|")[1:-1]] for row in rows]
    assert sorted((float(c[1]), int(c[2])) for c in cells) == sorted(
        (round(r["lam"], 4), r["step"]) for r in main_rows)


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


class Interrupted(Exception):
    """Stands in for a killed process in the middle of a sweep."""


def _without_timestamps(report: dict) -> dict:
    """A report without what differs between two runs of the same command: the times, the
    prediction's digest (it hashes written_at), --out and --workers."""
    drop = ("prediction_sha256", "prediction_written_at", "first_sweep_run_started_at",
            "wall_time_s")
    out = {k: v for k, v in report.items() if k not in drop}
    out["config"] = {k: v for k, v in report["config"].items() if k not in ("out", "workers")}
    out["runs"] = [{k: v for k, v in r.items() if k not in ("started_at", "finished_at")}
                   for r in report["runs"]]
    return out


def test_an_interrupted_sweep_resumes_to_the_same_report(
        quick_report: tuple[dict, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The quick run killed after 3 of its OPD runs: sweep.json holds them (each written as
    # it finished) and no report; --resume rebuilds the warm start, finds the same prediction,
    # runs only the others, and writes the report the uninterrupted quick run wrote (in two
    # worker processes there, in this one here), timestamps aside.
    uninterrupted, out_a = quick_report
    out = tmp_path / "interrupted"
    real, ran = jobs.run_job, []

    def killed_after_three(job: Job) -> dict:
        if len(ran) == 3:
            raise Interrupted
        ran.append(job)
        return real(job)

    monkeypatch.setattr(jobs, "run_job", killed_after_three)
    with pytest.raises(Interrupted):
        main(["--quick", "--out", str(out), "--device", "cpu", "--workers", "1"])
    sweep = json.loads((out / "sweep.json").read_text())
    assert len(sweep["runs"]) == 3 and not (out / "report.json").exists()
    planned = verify_prediction(out / "prediction.json")["planned_runs"]
    assert [r["job"] for r in sweep["runs"]] == planned[:3]
    ran.clear()
    monkeypatch.setattr(jobs, "run_job", lambda job: ran.append(job) or real(job))
    main(["--quick", "--resume", str(out), "--device", "cpu", "--workers", "1"])
    assert [j.to_dict() for j in ran] == [{**p, "eval_at": tuple(p["eval_at"])}
                                          for p in planned[3:]]
    resumed = json.loads((out / "report.json").read_text())
    assert resumed["first_sweep_run_started_at"] == sweep["first_sweep_run_started_at"]
    check_report(resumed, verify_prediction(out / "prediction.json"))
    assert _without_timestamps(resumed) == _without_timestamps(
        json.loads((out_a / "report.json").read_text()))
    # resuming a finished unit keeps its report and runs nothing
    ran.clear()
    again = main(["--quick", "--resume", str(out), "--device", "cpu", "--workers", "1"])
    assert ran == [] and again == resumed


def _sealed_copy(out_a: Path, folder: Path, edit: dict | None = None) -> Path:
    """``folder`` with the quick run's prediction, re-sealed with ``edit`` applied."""
    payload = verify_prediction(out_a / "prediction.json")
    del payload["written_at"]
    for key, value in (edit or {}).items():
        payload[key] = {**payload[key], **value}
    write_prediction(folder / "prediction.json", payload)
    return folder


def test_resume_refuses_another_prediction(quick_report: tuple[dict, Path],
                                           tmp_path: Path) -> None:
    # Before any training: another configuration, other code, a changed prediction file, an
    # empty folder; each refusal names --resume and what differs.
    _, out_a = quick_report
    quick = ["--quick", "--device", "cpu"]
    folder = _sealed_copy(out_a, tmp_path / "a")
    with pytest.raises(ResumeRefused, match=r"--resume .*another configuration \(c: sealed "
                                            r"5\.0, now 4\.0\)"):
        main([*quick, "--resume", str(folder), "--c", "4"])
    other = _sealed_copy(out_a, tmp_path / "b", {"code": {"commit": "0" * 40}})
    with pytest.raises(ResumeRefused, match=r"--resume .*other code \(commit: sealed '0{40}'"):
        main([*quick, "--resume", str(other)])
    bumped = _sealed_copy(out_a, tmp_path / "c", {"code": {"cliff": "0.0.0"}})
    with pytest.raises(ResumeRefused, match=r"other code \(cliff: sealed '0\.0\.0'"):
        main([*quick, "--resume", str(bumped)])
    text = (folder / "prediction.json").read_text().replace('"c": 5.0', '"c": 4.0')
    (folder / "prediction.json").write_text(text)
    with pytest.raises(ResumeRefused, match=r"--resume .*does not verify.*sha256"):
        main([*quick, "--resume", str(folder), "--c", "4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResumeRefused, match=r"--resume .*empty: no sealed prediction"):
        main([*quick, "--resume", str(tmp_path / "empty")])
    with pytest.raises(FileExistsError, match=r"holds a sealed prediction already.*--resume"):
        main([*quick, "--out", str(bumped)])
    # after the rebuild: the prediction this command makes must have the folder's sha256
    sealed = json.loads((out_a / "prediction.json").read_text())
    mine = {k: v for k, v in sealed["payload"].items() if k != "written_at"}
    check_same_prediction(out_a, sealed, mine)
    with pytest.raises(ResumeRefused, match=r"--resume .*another prediction.*\['measurement'\]"):
        check_same_prediction(out_a, sealed, {**mine, "measurement": {}})


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
