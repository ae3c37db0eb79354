"""The benchmark runs end to end, and the agreement checks inside it hold.

Speed is printed by ``python -m validate.bench``, never asserted here; what is asserted is
that each timed pair computes the same thing (the vectorised code against the root search,
brentq and the plain loop), which the benchmark itself checks while it times them, and that
the contract's figures come with their sizes.
"""

from __future__ import annotations

import json
import math

import pytest

from validate import bench


def test_quick_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("solve_points_per_s", "solve_over_log_pass", "solve_over_log_pass_all_arrays",
                "solve_speedup_vs_root_search", "mc_speedup_vs_loop", "mc_steps_per_s",
                "mc_draw_ceiling", "kary_speedup_vs_brentq", "contract_masks_per_s_1k",
                "contract_over_forward_1k", "calibrate_s", "calibrate_contract_over_forward",
                "scheduler_update_over_fwd_bwd", "scheduler_update_numpy_over_fwd_bwd"):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["root_search_max_rel_diff"] < 1e-9
    assert figures["kary_max_rel_diff_vs_brentq"] < 1e-9
    assert figures["contract_vocab_1k"] == 1000 and figures["calibrate_rollouts"] == 64
    assert figures["scheduler_max_rel_diff"] < 1e-12
    assert figures["scheduler_vocab"] == 151_936 and figures["scheduler_contexts"] == 64
