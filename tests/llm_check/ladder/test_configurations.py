"""The five ladder configurations: their gate bands are the ones their table states, a name
outside them is refused, and the added criteria pass and fail at the edges of their bands."""

from __future__ import annotations

from dataclasses import replace

import pytest

from validate.llm_check.config import Config
from validate.llm_check.gate import GateThresholds
from validate.llm_check.ladder.configurations import (
    CONFIGURATIONS,
    configuration,
    extra_criteria,
    parse_at_one_criterion,
)


def test_there_are_exactly_the_five_named_configurations() -> None:
    assert set(CONFIGURATIONS) == {"paper", "reachable", "dirty_ids", "dirty_ids_1000",
                                   "softening"}
    assert all(CONFIGURATIONS[n].name == n for n in CONFIGURATIONS)


def test_paper_asks_a_certain_teacher_a_neutral_warm_start_and_clean_ids() -> None:
    conf = configuration("paper")
    th = conf.thresholds(512)
    assert conf.regime == "sharpening"
    assert th.sharpening_p_min == 0.995
    assert (th.sharpening_b_low, th.sharpening_b_high) == (0.3, 0.6)
    assert conf.id_b == (0.99, 1.0) and conf.parse_at_one_min == 0.9


def test_reachable_bands_the_teacher_between_97_and_99_percent() -> None:
    conf = configuration("reachable")
    th = conf.thresholds(512)
    assert conf.format_p == (0.97, 0.99) and th.sharpening_p_min == 0.97
    assert (th.sharpening_b_low, th.sharpening_b_high) == (0.3, 0.6)
    assert conf.id_b == (0.99, 1.0) and conf.parse_at_one_min == 0.9


def test_reachable_puts_the_clip_safe_edge_between_2e3_and_6e3() -> None:
    lo, hi = configuration("reachable").format_p
    c = Config().c
    assert (1 - hi) / c == pytest.approx(2e-3) and (1 - lo) / c == pytest.approx(6e-3)


def test_dirty_ids_keeps_the_paper_teacher_and_asks_repeating_ids() -> None:
    dirty, paper = configuration("dirty_ids"), configuration("paper")
    th = dirty.thresholds(512)
    assert th.sharpening_p_min == 0.995
    assert (th.sharpening_b_low, th.sharpening_b_high) == (0.3, 0.6)
    assert dirty.id_b[1] == 0.97 and dirty.parse_at_one_min is None
    assert (dirty.teacher, dirty.teacher_steps, dirty.seed_index) == (
        paper.teacher, paper.teacher_steps, paper.seed_index)
    assert dirty.student_steps * 4 == paper.student_steps


def test_dirty_ids_1000_is_dirty_ids_with_a_warm_start_twice_as_long() -> None:
    long, dirty = configuration("dirty_ids_1000"), configuration("dirty_ids")
    assert long.student_steps == 2 * dirty.student_steps == 1000
    assert replace(long, name="dirty_ids", student_steps=500) == dirty


def test_softening_is_the_plain_softening_gate() -> None:
    conf = configuration("softening")
    th = conf.thresholds(256)
    plain = GateThresholds(eval_rollouts=256, binding_type="close", max_attempts=1)
    assert conf.regime == "softening" and th == plain
    assert th.softening_gap_min == 0.1
    assert extra_criteria(conf, 0.5, 0.5) == []
    assert conf.teacher.format_noise == 0.2 and conf.student.format_noise == 0.0


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_every_gate_is_one_attempt_at_the_format_token(name: str) -> None:
    th = configuration(name).thresholds(128)
    assert th.max_attempts == 1 and th.binding_type == "close" and th.eval_rollouts == 128


def test_an_unknown_configuration_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"configuration must be one of .*'sharpening'"):
        configuration("sharpening")


@pytest.mark.parametrize(("format_p", "passed"), [(0.97, True), (0.99, True), (0.98, True),
                                                  (0.9699, False), (0.9901, False)])
def test_the_teacher_band_of_reachable_holds_at_its_edges(format_p: float, passed: bool) -> None:
    rows = {r.name: r for r in extra_criteria(configuration("reachable"), format_p, 0.995)}
    assert rows["format_p_band"].passed is passed
    assert rows["id_b"].passed


def test_paper_adds_no_upper_teacher_band() -> None:
    rows = extra_criteria(configuration("paper"), 0.9999, 0.995)
    assert [r.name for r in rows] == ["id_b"]


@pytest.mark.parametrize(("name", "id_b", "passed"), [
    ("paper", 0.99, True), ("paper", 1.0, True), ("paper", 0.9899, False),
    ("dirty_ids", 0.97, True), ("dirty_ids", 0.5, True), ("dirty_ids", 0.9701, False)])
def test_the_id_band_holds_at_its_edges(name: str, id_b: float, passed: bool) -> None:
    rows = {r.name: r for r in extra_criteria(configuration(name), 0.999, id_b)}
    assert rows["id_b"].passed is passed and rows["id_b"].measured == id_b


@pytest.mark.parametrize(("rate", "passed"), [(0.9, True), (1.0, True), (0.8999, False)])
def test_the_parse_floor_holds_at_point_nine(rate: float, passed: bool) -> None:
    crit = parse_at_one_criterion(configuration("paper"), rate)
    assert crit is not None and crit.passed is passed and crit.threshold == 0.9


@pytest.mark.parametrize("name", ["dirty_ids", "softening"])
def test_no_parse_floor_gives_no_criterion(name: str) -> None:
    assert parse_at_one_criterion(configuration(name), 0.0) is None


def test_reachable_differs_from_paper_in_the_teacher_alone() -> None:
    reach, paper = configuration("reachable"), configuration("paper")
    assert (reach.student, reach.student_steps, reach.student_seed_index) == (
        paper.student, paper.student_steps, paper.student_seed_index)
    assert reach.teacher != paper.teacher and reach.seed_index != paper.seed_index
