"""Sealing the prediction (validate.llm_check.sealing): the sealed file refuses tampering, and
the report is checked against it."""

from __future__ import annotations

import copy
import doctest
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from validate.llm_check import sealing
from validate.llm_check.onset import Sweep
from validate.llm_check.preregistered_tests import OnsetTestConfig, cliff_interval_test
from validate.llm_check.sealing import (
    TEST_NAMES,
    TamperedPrediction,
    build_tests_block,
    canonical_sha256,
    check_report,
    seal,
    verify_prediction,
    write_prediction,
)

WRITTEN = "2026-05-14T09:30:00.000000+00:00"
PAYLOAD: dict[str, Any] = {
    "configurations": {"sharpening": {"window": (1.1916, 1.1916), "lambdas": np.linspace(1, 2, 3),
                                      "lambda_collapse": float("inf")}},
    "gate": {"passed": True}, "bootstrap_seed": 7, "c_prime": 3.0,
}


def test_docstring_examples() -> None:
    result = doctest.testmod(sealing)
    assert result.failed == 0 and result.attempted > 0


def test_digest_is_the_plans_formula() -> None:
    rec = seal(PAYLOAD, written_at=WRITTEN)
    body = rec["payload"]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert rec["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert body["written_at"] == WRITTEN
    assert body["configurations"]["sharpening"]["lambda_collapse"] == "inf"


def test_write_then_verify(tmp_path: Path) -> None:
    path = tmp_path / "run" / "prediction.json"
    rec = write_prediction(path, PAYLOAD, written_at=WRITTEN)
    payload = verify_prediction(path)
    assert payload == rec["payload"]
    assert verify_prediction(path, expected_sha256=rec["sha256"]) == payload
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    # re-indenting or reordering the file does not change what was sealed
    path.write_text(json.dumps(json.loads(path.read_text()), indent=None, sort_keys=True))
    assert verify_prediction(path) == payload


def test_write_flushes_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    write_prediction(tmp_path / "prediction.json", PAYLOAD)
    assert len(synced) == 2  # the file, then its folder (the rename)


def test_write_refuses_to_overwrite_and_to_take_a_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "prediction.json"
    write_prediction(path, PAYLOAD)
    with pytest.raises(FileExistsError, match="pre-registration writes it once"):
        write_prediction(path, PAYLOAD)
    with pytest.raises(ValueError, match="payload must not contain 'written_at'"):
        seal({**PAYLOAD, "written_at": WRITTEN})
    with pytest.raises(ValueError, match="written_at must be in UTC"):
        seal(PAYLOAD, written_at="2026-05-14T09:30:00+02:00")
    with pytest.raises(ValueError, match="written_at must be an ISO-8601 UTC timestamp"):
        seal(PAYLOAD, written_at="yesterday")


@pytest.mark.parametrize("edit", [
    lambda r: r["payload"]["configurations"]["sharpening"]["window"].__setitem__(0, 1.2),
    lambda r: r["payload"].__setitem__("written_at", "2026-05-14T09:29:00+00:00"),
    lambda r: r["payload"].__setitem__("extra", 1),
    lambda r: r["payload"]["gate"].__setitem__("passed", False),
    lambda r: r.__setitem__("sha256", "0" * 64),
])
def test_tampered_prediction_is_refused(tmp_path: Path, edit: Any) -> None:
    path = tmp_path / "prediction.json"
    write_prediction(path, PAYLOAD, written_at=WRITTEN)
    rec = json.loads(path.read_text())
    edit(rec)
    path.write_text(json.dumps(rec))
    with pytest.raises(TamperedPrediction, match="sha256"):
        verify_prediction(path)


def test_rewritten_with_its_own_digest_is_caught_by_the_anchor(tmp_path: Path) -> None:
    path = tmp_path / "prediction.json"
    anchor = write_prediction(path, PAYLOAD, written_at=WRITTEN)["sha256"]
    forged = seal({**PAYLOAD, "c_prime": 2.0}, written_at=WRITTEN)
    path.write_text(json.dumps(forged))
    assert verify_prediction(path)["c_prime"] == 2.0  # self-consistent
    with pytest.raises(TamperedPrediction, match="was recorded when the prediction was written"):
        verify_prediction(path, expected_sha256=anchor)


@pytest.mark.parametrize("record, match", [
    ({"payload": {}, "sha256": "x", "note": 1}, "exactly 'payload' and 'sha256'"),
    ({"payload": [], "sha256": "x"}, "'payload' must be an object"),
    ({"payload": {"a": 1}, "sha256": "x"}, "payload has no 'written_at'"),
    ({"payload": {"written_at": "2026-05-14T09:30:00"}, "sha256": "x"}, "must be in UTC"),
])
def test_malformed_prediction(record: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        verify_prediction(record)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20)


@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k != "written_at"), _json,
                       max_size=5))
def test_any_payload_round_trips_through_the_file_text(payload: dict[str, Any]) -> None:
    rec = seal(payload, written_at=WRITTEN)
    loaded = json.loads(json.dumps(rec, indent=2))
    assert verify_prediction(loaded) == rec["payload"]
    assert canonical_sha256(loaded["payload"]) == rec["sha256"]


# --- the report --------------------------------------------------------------------------------
def _report(passed: bool = True, started: str | None = "2026-05-14T09:31:00+00:00",
            verdicts: tuple[str, str, str] = ("HIT", "INCONCLUSIVE", "MISS")) -> dict[str, Any]:
    return {"gate": {"passed": passed}, "first_sweep_run_started_at": started,
            "tests": build_tests_block(*({"verdict": v} for v in verdicts))}


def test_a_good_report_passes() -> None:
    rec = seal(PAYLOAD, written_at=WRITTEN)
    check_report(_report(), rec)
    check_report({**_report(), "prediction_sha256": rec["sha256"]}, rec["payload"])
    check_report(_report(False, None, ("VOID",) * 3), rec)  # gate failed, nothing ran
    assert list(_report()["tests"]) == list(TEST_NAMES)


@pytest.mark.parametrize("report, match", [
    (_report(started="2026-05-14T09:29:59+00:00"), "is not after the prediction's written_at"),
    (_report(started=WRITTEN), "is not after"),
    (_report(started=None), "first_sweep_run_started_at must be an ISO-8601"),
    (_report(started="2026-05-14T11:31:00+02:00"), "must be in UTC"),
    (_report(False, None, ("VOID", "HIT", "VOID")), r"every verdict must be VOID; not VOID: "
                                                    r"\['budget_extension'\]"),
    (_report(False, "2026-05-14T09:31:00+00:00", ("VOID",) * 3), "no sweep may have started"),
    ({**_report(), "gate": {}}, "gate.passed must be true or false"),
    ({**_report(), "prediction_sha256": "abc"}, "is not the prediction's sha256"),
])
def test_report_rules(report: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_report(report, seal(PAYLOAD, written_at=WRITTEN))


def test_a_quick_run_past_its_failed_gate_ran_its_sweep_and_stays_void() -> None:
    # Only a --quick prediction that records going on past its failed gate lets a failed gate
    # have a sweep; every verdict stays VOID, and the sweep started after the seal.
    quick = seal({**PAYLOAD, "config": {"quick": True},
                  "gate": {"passed": False, "quick_continued": True}}, written_at=WRITTEN)
    ran = "2026-05-14T09:31:00+00:00"
    check_report(_report(False, ran, ("VOID",) * 3), quick)
    with pytest.raises(ValueError, match="every verdict must be VOID"):
        check_report(_report(False, ran, ("VOID", "HIT", "VOID")), quick)
    with pytest.raises(ValueError, match="first_sweep_run_started_at must be an ISO-8601"):
        check_report(_report(False, None, ("VOID",) * 3), quick)
    with pytest.raises(ValueError, match="is not after"):
        check_report(_report(False, WRITTEN, ("VOID",) * 3), quick)
    full = seal({**PAYLOAD, "config": {"quick": False},
                 "gate": {"passed": False, "quick_continued": True}}, written_at=WRITTEN)
    with pytest.raises(ValueError, match="no sweep may have started"):
        check_report(_report(False, ran, ("VOID",) * 3), full)


def test_tests_block_rules() -> None:
    with pytest.raises(ValueError, match=r"tests.clip_cross_prediction.verdict must be one of"):
        build_tests_block({"verdict": "HIT"}, {"verdict": "MISS"}, {"verdict": "PASS"})
    report = _report()
    del report["tests"]["budget_extension"]
    with pytest.raises(ValueError, match="must have exactly the keys"):
        check_report(report, seal(PAYLOAD, written_at=WRITTEN))


def test_report_against_a_tampered_prediction() -> None:
    rec = seal(PAYLOAD, written_at=WRITTEN)
    bad = copy.deepcopy(rec)
    bad["payload"]["c_prime"] = 2.0
    with pytest.raises(TamperedPrediction):
        check_report(_report(), bad)


def test_results_fill_the_block() -> None:
    # the to_dict() of the pre-registered tests' results goes in as is
    rng = np.random.default_rng(0)
    lam = np.r_[1.0, np.linspace(1.05, 1.40, 8)]
    x = rng.random((3, 9, 512)) < np.where(lam < 1.2, 0.8, 0.1)[None, :, None]
    r = cliff_interval_test(Sweep(tuple(lam), x), {"by_token": (1.15, 1.2)}, primary="by_token",
                            nulls={}, rng=rng, gate_passed=False,
                            config=OnsetTestConfig(n_boot=100))
    block = build_tests_block(r.to_dict(), {"verdict": "VOID"}, {"verdict": "VOID"})
    assert block["cliff_interval"]["verdict"] == "VOID"
    json.dumps(block, allow_nan=False)  # plain JSON
