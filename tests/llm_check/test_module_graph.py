"""The module graph of validate.llm_check: imports at the top of modules, and the modules
that read results (the plan, the analysis, the statistics, the report tools) stay free of
torch, so a sealed prediction or a saved sweep can be read without it."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import validate.llm_check

PACKAGE = Path(validate.llm_check.__file__).parent
_TOP = list(pkgutil.iter_modules([str(PACKAGE)]))
MODULES = sorted([m.name for m in _TOP if not m.ispkg]
                 + [f"{pkg.name}.{m.name}" for pkg in _TOP if pkg.ispkg
                    for m in pkgutil.iter_modules([str(PACKAGE / pkg.name)])])
"""Modules of the package and of its subpackages (dotted, relative to the package)."""
LIGHT = ("config", "plan", "analysis", "sealing", "onset", "preregistered_tests",
         "verdict_rules", "grid", "gate", "figure", "summary", "prompts", "task", "mechanism",
         "resume", "absolute_power", "ladder.statistic", "ladder.clock", "ladder.power")
"""Modules that must import without torch or transformers."""


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [a.name for a in node.names]


@pytest.mark.parametrize("name", MODULES)
def test_no_import_of_cliff_or_validate_inside_a_function(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name.replace('.', '/')}.py").read_text(encoding="utf-8"))
    inside = [(f.name, mod) for f in ast.walk(tree)
              if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              for node in ast.walk(f) if isinstance(node, ast.Import | ast.ImportFrom)
              for mod in _imported(node) if mod.split(".")[0] in ("cliff", "validate")]
    assert inside == []


def test_the_reading_modules_import_without_torch() -> None:
    code = ("import sys\n"
            + "".join(f"import validate.llm_check.{m}\n" for m in LIGHT)
            + "heavy = sorted({'torch', 'transformers'} & set(sys.modules))\n"
            + "assert not heavy, heavy\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parents[1])
    assert run.returncode == 0, run.stderr
