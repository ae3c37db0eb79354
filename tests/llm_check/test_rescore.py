"""The post-hoc re-scoring of a report sealed before tests (b) and (c) were absolute
(validate.llm_check.rescore): its sweeps are the report's rates, its predictions are the
law's own at the sealed masses, and its verdicts follow from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cliff
from validate.llm_check.onset import onset
from validate.llm_check.plan import law_threshold
from validate.llm_check.rescore import rescore, sweep_from_rates
from validate.llm_check.resume import from_json

UNIT = Path(__file__).parents[2] / "validate" / "preregistered" / "followup" / "sharpening_w0"


def test_a_sweep_from_rates_has_exactly_those_rates() -> None:
    rates = [[0.5, 0.25, 0.0], [1.0, 0.75, 0.125]]
    sw = sweep_from_rates([1.0, 1.1, 1.2], rates, 8)
    np.testing.assert_array_equal(sw.rates, rates)
    assert sw.indicators.shape == (2, 3, 8)


def test_the_followup_rescored_by_the_absolute_rules() -> None:
    pred = from_json(json.loads(UNIT.with_suffix(".prediction.json").read_text()))["payload"]
    report = from_json(json.loads(UNIT.with_suffix(".report.json").read_text()))
    out = rescore(pred, report, n_boot=200, power_simulations=5)
    assert out["post_hoc"] is True
    cfg, meas = pred["config"], pred["measurement"]
    tau = law_threshold(meas["p"], meas["b"], cfg["c"])
    e = cliff.budget_extension(meas["p"], meas["b"], cfg["c"], cfg["opd_steps"],
                               cfg["mean_field_lr"], threshold=tau)
    b, c = out["budget_extension"], out["clip_cross_prediction"]
    assert b["predicted"] == e.lambda_2T
    per = report["per_seed"]
    measured_2T = onset(np.asarray(per["lambdas"]), np.mean(per["parse_rate_2T"], axis=0), 0.5)
    assert b["onsets"][1] == pytest.approx(float(measured_2T))
    assert b["config"]["rollouts"] == "independent"
    for t in (b, c):  # a finite onset measured where none is predicted cannot be a HIT
        if np.isinf(t["predicted"]) and np.isfinite(t["second_interval"][1]):
            assert t["verdict"] == "MISS"
