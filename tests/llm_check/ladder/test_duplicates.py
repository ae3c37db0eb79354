"""The id predictors: the id type's two-class and by-token windows from its row, "never"
where the row has no collapse, and the id clock's onset per budget against a brute-force
crossing of the mean-field path."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cliff
from validate.llm_check.ladder.design import design_ladder
from validate.llm_check.ladder.duplicates import id_windows

P, B, ETA = 0.6, 0.9, 0.05  # ids soften: the teacher repeats ids more than the warm start
DESIGN = design_ladder({"two_class": (1.1, 1.3)}, 6, (60, 120, 240), (0, 1, 2), c=5.0,
                       c_low=0.2, control_c=1e6, control_rungs=2, lr=0.1, delta=0.5)
CLOCKS = [{"type": "id", "fitted": True, "clock": {"eta": ETA}}]


def _row(**kw: object) -> dict:
    return {"type": "id", "n": 200, "p": P, "b": B, "regime": "softening", "losing": "valid",
            "two_class": [2.3, 2.4], "by_token": [1.7, 2.1], "edge": P / 5.0, **kw}


def _brute_onset(t: int, tau: float) -> float:
    """The least lambda whose modal mass after t steps is at or below tau: a scan, then
    bisection between the scan's last miss and first hit."""
    def modal(lam: float | np.ndarray) -> np.ndarray:
        path = cliff.mean_field_path(P, B, 5.0, lam, [t], ETA, c_low=0.2)
        return np.exp(path.log_modal[..., -1])

    grid = np.linspace(1.0, 6.0, 5001)
    hit = np.nonzero(modal(grid) <= tau)[0]
    assert hit.size and hit[0] > 0
    lo, hi = grid[hit[0] - 1], grid[hit[0]]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if modal(mid) <= tau else (mid, hi)
    return float(hi)


def test_the_row_gives_the_two_class_and_by_token_windows_at_every_budget() -> None:
    out = id_windows([_row()], CLOCKS, DESIGN)
    assert out["defined"] and out["regime"] == "softening" and (out["p"], out["b"]) == (P, B)
    assert set(out["budgets"]) == {"60", "120", "240"}
    for wins in out["budgets"].values():
        assert wins["id_two_class"] == (2.3, 2.4) and wins["id_by_token"] == (1.7, 2.1)


def test_no_collapse_in_the_row_is_never() -> None:
    row = _row(p=0.95, regime="sharpening", two_class=[math.inf, math.inf], by_token=None)
    out = id_windows([row], [], DESIGN)
    for wins in out["budgets"].values():
        assert wins == {"id_two_class": (math.inf, math.inf)}


@pytest.mark.parametrize("t", [60, 120, 240])
def test_the_id_clock_onset_is_where_the_mean_field_crosses_half_the_warm_start(t: int) -> None:
    got = id_windows([_row()], CLOCKS, DESIGN)["budgets"][str(t)]["id_clock"]
    want = _brute_onset(t, 0.45)  # softening: half the warm start's valid mass 0.9
    assert got[0] == got[1] == pytest.approx(want, rel=1e-6)


def test_the_id_clock_onset_comes_earlier_with_more_steps() -> None:
    out = id_windows([_row()], CLOCKS, DESIGN)["budgets"]
    onsets = [out[str(t)]["id_clock"][0] for t in (60, 120, 240)]
    assert onsets[0] > onsets[1] > onsets[2] > 1.0


def test_an_unfitted_id_clock_gives_no_clock_predictor() -> None:
    out = id_windows([_row()], [{"type": "id", "fitted": False}], DESIGN)
    assert all("id_clock" not in w for w in out["budgets"].values())


def test_a_step_size_past_the_monotone_bound_says_why_there_is_no_clock() -> None:
    out = id_windows([_row()], [{"type": "id", "fitted": True, "clock": {"eta": 50.0}}], DESIGN)
    assert "lr must be <=" in out["why_no_clock"]
    assert all("id_clock" not in w for w in out["budgets"].values())


def test_no_id_row_is_not_defined() -> None:
    out = id_windows([{**_row(), "type": "close"}], CLOCKS, DESIGN)
    assert out == {"defined": False, "why": "no id position was measured"}
