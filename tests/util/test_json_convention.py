"""One JSON convention for non-finite numbers in every file cliff writes: the strings
``"inf"``, ``"-inf"``, ``"nan"``, read back as floats by ``cliff.read_json``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import cliff
from cliff.cli import main


def test_solve_json_writes_inf_as_a_string(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "--p", "0.7", "--b", "0.7", "--c", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lambda_star"] == "inf" and out["lambda_collapse"] == "inf"


def _neutral_calibration() -> cliff.Calibration:
    """Teacher = reference at two labels: every threshold is infinite."""
    n = 6
    lp = np.log(np.full(n, 0.9))
    lpr = np.log1p(-np.full(n, 0.9))
    m = cliff.Measurements(np.array(["$ open", "$ close"] * 3), np.arange(n, dtype=np.int64),
                           np.zeros(n, dtype=np.int64), lp, lpr, lp, lpr, np.full(n, np.inf),
                           np.ones(n, dtype=bool))
    return cliff.Calibration.from_measurements(
        m, c=5.0, c_low=0.2, margin=0.05, quantile=0.05,
        rollouts={"n": n, "entered": n, "complete": n, "left": 0, "open": 0, "positions": n})


def test_calibration_json_writes_inf_as_a_string_and_reads_it_back(tmp_path: Path) -> None:
    cal = _neutral_calibration()
    cal.save(tmp_path)
    raw = json.loads((tmp_path / "calibration.json").read_text())
    assert raw["recommended_lambda"] == "inf"
    assert {r["lambda_star"] for r in raw["positions"]} == {"inf"}
    assert "null" not in (tmp_path / "calibration.json").read_text().replace(
        '"binding": null', "")  # None stays null: the binding label is absent, not infinite
    back = cliff.read_json(tmp_path / "calibration.json")
    assert back["recommended_lambda"] == math.inf
    assert all(r["lambda_star"] == math.inf for r in back["positions"])
    assert back["binding"] is None


def test_read_json_reads_every_non_finite_string(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": "inf", "b": ["-inf", "nan", 1.5], "c": "infinity", "d": null}')
    got = cliff.read_json(path)
    assert got["a"] == math.inf and got["b"][0] == -math.inf and math.isnan(got["b"][1])
    assert got["b"][2] == 1.5 and got["c"] == "infinity" and got["d"] is None
