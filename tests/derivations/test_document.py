"""The derivation document builds, and prints the very expressions the code evaluates.

One build (module fixture, ~25 s) into a temporary folder; the checks read its ``.tex``,
``formulas.json`` and PDF.  Independent of the builder's own bookkeeping, the kernel check
re-imports each numeric module's ``KERNELS`` registry and looks for ``sympy.latex`` of the
expression object the lambdified function was generated from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp

from derivations.content import kernel_registries
from derivations.latex import Document, markdown_to_latex
from derivations.pdf import STEM, build

HAVE_LATEX = shutil.which("pdflatex") is not None and shutil.which("pdfinfo") is not None


@pytest.fixture(scope="module")
def no_figures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no-figures")  # keep the test independent of figures/


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, no_figures: Path):
    return build(tmp_path_factory.mktemp("derivations"), tex_only=not HAVE_LATEX,
                 figures_dir=no_figures)


@pytest.fixture(scope="module")
def tex(built) -> str:
    return built.tex.read_text()


def test_every_identity_residual_is_zero(built) -> None:
    assert built.nonzero == []


@pytest.mark.skipif(not HAVE_LATEX, reason="pdflatex/pdfinfo not installed (apt-get install "
                    "-y texlive-latex-base texlive-latex-recommended poppler-utils)")
def test_pdf_builds_with_pages(built) -> None:
    assert built.pdf is not None and built.pdf.name == f"{STEM}.pdf"
    info = subprocess.run(["pdfinfo", str(built.pdf)], capture_output=True, text=True,
                          check=True).stdout
    pages = int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")))
    assert pages > 0


def test_every_numeric_kernel_is_printed_verbatim(tex: str) -> None:
    registries = kernel_registries()
    assert "cliff._theory.bernoulli" in registries
    missing = [f"{mod}.{name}" for mod, reg in registries.items()
               for name, (_args, expr, _fn) in reg.items() if sp.latex(expr) not in tex]
    assert missing == []


def test_recorded_formulas_are_sympy_latex_of_their_expressions(built, tex: str) -> None:
    recorded = json.loads(built.formulas.read_text())
    assert len(recorded) > 50
    labels = [r["label"] for r in recorded]
    for needed in ("paper eq 4", "lambda star sharpening tail", "threshold", "rate",
                   "collapse headroom teacher", "window series"):
        assert needed in labels
    # short formulas are printed whole; long sums are broken at their terms (multline)
    for r in recorded:
        if len(r["latex"]) <= 170:
            assert r["latex"] in tex, r["label"]


def test_paper_equation_is_derived_not_typed(tex: str) -> None:
    from cliff.symbolic import bernoulli as B

    assert sp.latex(B.LAMBDA_STAR_PAPER_EQ4) in tex
    assert sp.latex(B.lambda_star_expr("sharpening", "tail")) in tex
    for marker in ("2605.08737", "2602.12125", "1.204, 1.228", "33.5", "94.8", "1.7B"):
        assert marker in tex


def test_document_records_what_it_prints() -> None:
    x = sp.Symbol("x")
    doc = Document("t", "a")
    long_sum = sum(sp.log(x + k) for k in range(1, 40))
    doc.eq("short", sp.log(1 + x), "y")
    doc.eq("long", long_sum, "z")
    tex = doc.tex()
    assert sp.latex(sp.log(1 + x)) in tex and "multline" in tex
    assert [p.label for p in doc.printed] == ["short", "long"]


def test_markdown_conversion() -> None:
    md = "# Title\n\nText with `code_x` and $a < b$ and p < b.\n\n- one\n- two\n"
    out = markdown_to_latex(md, level=2)
    assert r"\subsubsection{Title}" in out
    assert r"\begin{itemize}" in out and r"\item one" in out and r"\end{itemize}" in out
    assert "$a < b$" in out and r"p $<$ b" in out and r"\texttt{code\_" in out


def test_missing_latex_still_writes_tex(tmp_path: Path, no_figures: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import derivations.pdf as pdf

    monkeypatch.setattr(pdf.shutil, "which", lambda _name: None)
    res = build(tmp_path, figures_dir=no_figures)  # same document as the fixture: cached
    assert res.pdf is None and res.tex.exists() and not (tmp_path / f"{STEM}.pdf").exists()
    assert pdf.INSTALL_HINT in pdf.summary(res)
    assert pdf.INSTALL_HINT == ("apt-get install -y texlive-latex-base "
                                "texlive-latex-recommended poppler-utils")
