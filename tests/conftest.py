"""Test configuration: hypothesis profiles and the heavy-run switch.

``CLIFF_THOROUGH=1`` selects the ``thorough`` profile (more examples, random seeds) and runs
tests marked ``heavy``; the default profile is derandomised, so CI is reproducible.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

THOROUGH = os.environ.get("CLIFF_THOROUGH", "") not in ("", "0")

settings.register_profile(  # no shrinking: a batch counter-example is reported as drawn
    "default", deadline=None, derandomize=True, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", deadline=None, max_examples=500, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("thorough" if THOROUGH else "default")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if THOROUGH:
        return
    skip = pytest.mark.skip(reason="heavy run: set CLIFF_THOROUGH=1")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)
