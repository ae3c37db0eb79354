"""``make_all`` writes every figure, and regenerating gives byte-identical files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cliff import solve
from cliff.figures import FIGURES, make_all


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    a, b = tmp_path_factory.mktemp("figs-a"), tmp_path_factory.mktemp("figs-b")
    return make_all(a), make_all(b)


def test_every_expected_file_exists(two_runs: tuple[list[Path], list[Path]]) -> None:
    first, _ = two_runs
    root = first[0].parent
    expected = {root / f"{n}.{ext}" for n in FIGURES for ext in ("png", "pdf")}
    expected |= {root / "data" / f"{n}.json" for n in FIGURES}
    assert set(first) == expected
    for path in expected:
        assert path.stat().st_size > 0, path
    assert not list(root.rglob(".*")), "temporary files left behind"


@pytest.mark.parametrize("suffix", [".json", ".png", ".pdf"])
def test_regeneration_is_byte_identical(two_runs: tuple[list[Path], list[Path]],
                                        suffix: str) -> None:
    first, second = two_runs
    pairs = [(a, b) for a, b in zip(first, second, strict=True) if a.suffix == suffix]
    assert len(pairs) == len(FIGURES)
    for a, b in pairs:
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), a.name


def test_plotted_thresholds_agree_with_solve(two_runs: tuple[list[Path], list[Path]]) -> None:
    """The fixed-point figure's data marks lambda* where the clipped curve leaves the
    unclipped one (read from the plotted arrays, not from the formula)."""
    first, _ = two_runs
    data = json.loads((first[0].parent / "data" / "fixed_point.json").read_text())
    for panel in data["panels"]:
        lam = np.array(panel["lam"])
        unc, clip = np.array(panel["unclipped"]), np.array(panel["clipped"])
        split = lam[np.argmax(np.abs(unc - clip) > 1e-9 * np.maximum(np.abs(unc), 1e-300))]
        ls = solve(panel["p"], panel["b"], panel["c"]).lambda_star
        step = np.max(np.diff(lam))
        assert ls <= split <= ls + step
