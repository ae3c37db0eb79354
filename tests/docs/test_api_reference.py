"""The API reference builds with warnings as errors, and documents every public name.

The build is the documented one (``python -m sphinx -W --keep-going -b html docs OUT``), run
in a subprocess into a temporary folder, one process, html only.  It needs the ``docs``
extra (sphinx, numpydoc, pydata-sphinx-theme, myst-parser); without it the test is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cliff

for _module in ("sphinx", "numpydoc", "pydata_sphinx_theme", "myst_parser"):
    pytest.importorskip(_module, reason="the docs extra is not installed")

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRIVATE = re.compile(r"cliff\._[a-z]")  # a private module path, such as cliff._theory


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-j", "1", "-b", "html",
         str(DOCS), str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"sphinx failed:\n{run.stdout}\n{run.stderr}"
    return out


def test_pages_of_the_main_entry_points_exist(site: Path) -> None:
    for name in ("solve", "LambdaScheduler", "calibrate"):
        page = site / "generated" / f"cliff.{name}.html"
        assert page.is_file(), page
        assert f'id="cliff.{name}"' in page.read_text(encoding="utf-8")


def test_every_public_name_is_documented_from_its_public_path(site: Path) -> None:
    missing = [name for name in cliff.__all__ if name != "__version__"
               and not (site / "generated" / f"cliff.{name}.html").is_file()]
    assert not missing, f"no page for cliff.{missing}"
    assert 'id="cliff.__version__"' in (site / "index.html").read_text(encoding="utf-8")


def test_no_page_but_the_unstable_one_names_a_private_module(site: Path) -> None:
    naming = sorted(str(page.relative_to(site)) for page in site.rglob("*.html")
                    if PRIVATE.search(page.read_text(encoding="utf-8")))
    assert naming in ([], ["api/internal.html"]), naming


def test_the_cli_page_holds_every_command_help(site: Path) -> None:
    text = (site / "cli.html").read_text(encoding="utf-8")
    for command in ("solve", "figures", "calibrate"):
        assert f"usage: python -m cliff {command}" in text, command


def test_the_model_statement_is_a_page(site: Path) -> None:
    text = (site / "model.html").read_text(encoding="utf-8")
    assert "The clipped advantage" in text
