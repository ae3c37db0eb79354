"""The fuzz run of the public surface (:mod:`tests.fuzz.harness`): 10^5 draws in the default
profile, 10^6 with ``CLIFF_THOROUGH=1``; no failure of any kind is allowed."""

from __future__ import annotations

import pytest

from tests.conftest import THOROUGH
from tests.fuzz.harness import TARGETS, run

DRAWS = 1_000_000 if THOROUGH else 100_000


@pytest.fixture(scope="module")
def tallies() -> dict[str, object]:
    return run(DRAWS, seed=0)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_no_silent_wrong_answer_nan_coercion_or_traceback(tallies: dict, target: str) -> None:
    t = tallies[target]
    assert not t.failures, "\n".join(t.failures)
    assert t.refused > 0 and t.answered > 0 and t.checked > 0  # each outcome was exercised
    assert t.tried == t.refused + t.answered
