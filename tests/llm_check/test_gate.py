"""The warm-start gate: each criterion fails on purpose, the halving threshold is derived."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from validate.llm_check import gate
from validate.llm_check.gate import (
    GateThresholds,
    WarmStartStats,
    check_gate,
    halving_parse_min,
)

STEP = 0.0128  # the grid step of the seed-0 sharpening windows (test_grid)

SHARP = WarmStartStats(configuration="sharpening", teacher_parse_rate=0.99,
                       warm_start_parse_rate=0.5, binding_type="close",
                       binding_regime="sharpening", binding_contexts=256,
                       binding_lambda_star=1.19, next_lambda_star=1.6, format_p=0.999,
                       format_b=0.5)
SOFT = WarmStartStats(configuration="softening", teacher_parse_rate=0.78,
                      warm_start_parse_rate=0.95, binding_type="close",
                      binding_regime="softening", binding_contexts=256,
                      binding_lambda_star=1.5, next_lambda_star=1.9, format_p=0.8,
                      format_b=0.99)


def test_docstring_examples() -> None:
    result = doctest.testmod(gate)
    assert result.failed == 0 and result.attempted > 0


# --- the halving threshold ----------------------------------------------------------------------
@given(st.integers(36, 100_000), st.floats(0.5, 6.0))
def test_halving_threshold_solves_its_inequality(n: int, z: float) -> None:
    # brute force: the smallest r on a fine grid with r/2 >= z * two-sample SE at (r, r/2)
    r_min = halving_parse_min(n, z)
    assert 0 < r_min <= 1

    def ok(r: np.ndarray) -> np.ndarray:
        return r / 2 >= z * np.sqrt((r * (1 - r) + r / 2 * (1 - r / 2)) / n)

    r = np.linspace(1e-6, 1.0, 200_001)
    first = r[np.argmax(ok(r))]
    assert abs(first - r_min) <= 1e-5 + 1e-9
    assert np.all(ok(r[r >= r_min * (1 + 1e-9)]))  # every larger rate qualifies


def test_halving_threshold_values() -> None:
    assert halving_parse_min(512) == pytest.approx(216 / 692)
    assert halving_parse_min(256) == pytest.approx(216 / 436)
    assert halving_parse_min(35) == math.inf  # n < z^2: no rate can be resolved
    # against the one-sample error (lambda = 1 rate taken as known): a lower threshold
    one_sample = 4 * 36 / (512 + 4 * 36)
    assert one_sample == pytest.approx(0.2195, abs=1e-4)
    assert one_sample < halving_parse_min(512)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        halving_parse_min(0)
    with pytest.raises(ValueError, match="z must be finite and > 0"):
        halving_parse_min(512, -1.0)


def test_halving_threshold_holds_in_simulation() -> None:
    # At r = r_min the halving is 6 SE: rates of 2 x 2000 simulated runs at n = 512 (rate r
    # and r/2) have a difference whose spread is r/2 / 6 to within 5%.
    rng = np.random.default_rng(0)
    n, r = 512, halving_parse_min(512)
    diff = rng.binomial(n, r, 20_000) / n - rng.binomial(n, r / 2, 20_000) / n
    assert diff.std() == pytest.approx(r / 2 / 6, rel=0.05)


# --- the criteria -------------------------------------------------------------------------------
def test_passing_configurations() -> None:
    for stats in (SHARP, SOFT):
        r = check_gate(stats, GateThresholds(binding_type="close"), STEP)
        assert r.passed and r.failed == () and r.message.startswith("gate passed")
        assert not r.retry_allowed


FAILURES = [
    # (configuration, field changes, criterion that fails, text in its description)
    (SHARP, {"teacher_parse_rate": 0.3}, "teacher_parse_rate", "0.3 (needs >= 0.5)"),
    (SHARP, {"warm_start_parse_rate": 0.008}, "warm_start_parse_rate", "(needs >= 0.312139)"),
    (SHARP, {"binding_regime": "softening"}, "binding_regime", "'softening' (needs == "
                                                               "'sharpening')"),
    (SHARP, {"binding_type": "id"}, "binding_type", "'id' (needs == 'close')"),
    (SHARP, {"binding_contexts": 40}, "binding_contexts", "40 (needs >= 100)"),
    (SHARP, {"next_lambda_star": 1.2}, "next_type_gap_steps", "(needs >= 2 grid steps"),
    (SHARP, {"format_p": 0.99}, "format_p", "0.99 (needs >= 0.995)"),
    (SHARP, {"format_b": 0.8}, "format_b", "0.8 (needs in [0.35, 0.65])"),
    (SHARP, {"format_b": 0.2}, "format_b", "0.2 (needs in [0.35, 0.65])"),
    (SOFT, {"format_p": 0.95}, "format_gap", "(needs b - p >= 0.1)"),
    (SOFT, {"teacher_parse_rate": 0.96}, "student_parses_more_often",
     "(needs warm_start_parse_rate - teacher_parse_rate > 0)"),
    (SOFT, {"binding_regime": "neutral"}, "binding_regime", "'neutral' (needs == "
                                                            "'softening')"),
]


@pytest.mark.parametrize("stats, change, name, text", FAILURES)
def test_each_criterion_fails_alone(stats: WarmStartStats, change: dict[str, object], name: str,
                                    text: str) -> None:
    bad = dataclasses.replace(stats, **change)  # type: ignore[arg-type]
    r = check_gate(bad, GateThresholds(binding_type="close"), STEP)
    assert not r.passed
    assert [c.name for c in r.failed] == [name]
    assert r.message.startswith("VOID: warm-start gate failed (attempt 1 of 2, retry allowed)")
    assert name in r.message and text in r.message, r.message
    row = r.failed[0]
    assert row.measured is not None and row.threshold is not None


def test_several_failures_are_all_named() -> None:
    bad = dataclasses.replace(SHARP, warm_start_parse_rate=0.008, format_b=0.9,
                              binding_contexts=3)
    r = check_gate(bad, GateThresholds(), STEP, attempt=2)
    assert {c.name for c in r.failed} == {"warm_start_parse_rate", "format_b",
                                          "binding_contexts"}
    assert "no retry left" in r.message and not r.retry_allowed


def test_gap_in_grid_steps() -> None:
    # 1.19 -> 1.2156 is exactly 2 steps of 0.0128: passes; a hair less fails
    ok = dataclasses.replace(SHARP, next_lambda_star=1.19 + 2 * STEP + 1e-12)
    assert check_gate(ok, GateThresholds(), STEP).passed
    short = dataclasses.replace(SHARP, next_lambda_star=1.19 + 1.9 * STEP)
    r = check_gate(short, GateThresholds(), STEP)
    assert [c.name for c in r.failed] == ["next_type_gap_steps"]
    assert r.failed[0].measured == pytest.approx(1.9)
    alone = dataclasses.replace(SHARP, next_lambda_star=math.inf)  # no other type solved
    assert check_gate(alone, GateThresholds(), STEP).passed


def test_thresholds_follow_the_evaluation_size() -> None:
    stats = dataclasses.replace(SHARP, warm_start_parse_rate=0.4)
    assert check_gate(stats, GateThresholds(eval_rollouts=512), STEP).passed
    r = check_gate(stats, GateThresholds(eval_rollouts=256), STEP)  # threshold 0.495
    assert [c.name for c in r.failed] == ["warm_start_parse_rate"]


def test_thresholds_serialise_into_the_prediction() -> None:
    th = GateThresholds(binding_type="close", retry_student_steps=1000)
    d = json.loads(json.dumps(th.to_dict()))
    assert d["warm_start_parse_min"] == pytest.approx(0.3121, abs=1e-4)
    assert GateThresholds.from_dict(d) == th
    with pytest.raises(ValueError, match="does not follow from"):
        GateThresholds.from_dict({**d, "warm_start_parse_min": 0.1})
    with pytest.raises(ValueError, match="unknown fields"):
        GateThresholds.from_dict({**d, "colour": "red"})
    r = check_gate(SHARP, th, STEP)
    assert json.loads(json.dumps(r.to_dict()))["criteria"][0]["name"] == "teacher_parse_rate"


@pytest.mark.parametrize("kwargs, match", [
    ({"teacher_parse_min": 1.5}, r"teacher_parse_min must be in \[0, 1\], got 1.5"),
    ({"sharpening_b_low": 0.7}, "sharpening_b_low must be <= sharpening_b_high"),
    ({"eval_rollouts": 0}, "eval_rollouts must be an integer >= 1, got 0"),
    ({"halving_z": 0.0}, "halving_z must be finite and > 0"),
    ({"retry_student_steps": 0}, "retry_student_steps must be >= 1 or None"),
])
def test_thresholds_refuse_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GateThresholds(**kwargs)  # type: ignore[arg-type]


def test_bad_calls() -> None:
    with pytest.raises(ValueError, match="grid_step must be finite and > 0"):
        check_gate(SHARP, GateThresholds(), 0.0)
    with pytest.raises(ValueError, match=r"attempt must be an integer in \[1, max_attempts"):
        check_gate(SHARP, GateThresholds(), STEP, attempt=3)
    with pytest.raises(ValueError, match="configuration must be one of"):
        dataclasses.replace(SHARP, configuration="both")


def test_stats_from_a_position_table() -> None:
    rows = [
        {"type": "open", "n": 256, "mean_p": 0.9999, "mean_b": 0.9998, "regime": "sharpening",
         "lambda_star": math.inf},
        {"type": "id", "n": 2048, "mean_p": 0.97, "mean_b": 0.95, "regime": "sharpening",
         "lambda_star": 1.41},
        {"type": "close", "n": 256, "mean_p": 0.999, "mean_b": 0.51, "regime": "sharpening",
         "lambda_star": 1.19},
    ]
    s = WarmStartStats.from_position_table("sharpening", rows, teacher_parse_rate=0.99,
                                           warm_start_parse_rate=0.5)
    assert (s.binding_type, s.binding_contexts, s.next_lambda_star) == ("close", 256, 1.41)
    assert (s.format_p, s.format_b) == (0.999, 0.51)
    with pytest.raises(ValueError, match=r"rows\[0\] lacks \['regime'\]"):
        WarmStartStats.from_position_table("sharpening", [{k: v for k, v in rows[0].items()
                                                           if k != "regime"}],
                                           teacher_parse_rate=0.9, warm_start_parse_rate=0.5)
    with pytest.raises(ValueError, match="format_type 'close' is not among"):
        WarmStartStats.from_position_table("sharpening", rows[:2], teacher_parse_rate=0.9,
                                           warm_start_parse_rate=0.5)
