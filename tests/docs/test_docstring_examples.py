"""Every example in the docstrings of the package and the Monte Carlo runs as written."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cliff

MODULES = sorted({m.name for m in pkgutil.walk_packages(cliff.__path__, "cliff.")}
                 | {"validate.monte_carlo", "validate.monte_carlo_kary"})

NEEDS = {"cliff.integrations.trl": "trl"}
"""Modules that need an optional extra, and the package it installs."""


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
