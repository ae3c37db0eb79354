"""Write the ``.tex`` (always) and the PDF (when ``pdflatex`` is installed), atomically."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cliff.internal import atomic_path, write_json, write_text
from derivations.content import build_document

__all__ = ["BuildResult", "build", "INSTALL_HINT", "STEM"]

STEM = "cliff-derivations"
INSTALL_HINT = "apt-get install -y texlive-latex-base texlive-latex-recommended poppler-utils"
DEFAULT_OUT = Path(__file__).resolve().parent / "build"
_EPOCH = "1795219200"  # 2026-11-21T00:00:00Z: fixed PDF dates, so rebuilds are identical


@dataclass
class BuildResult:
    """Paths written and what the build checked."""

    tex: Path
    formulas: Path
    pdf: Path | None = None
    warnings: list[str] = field(default_factory=list)
    nonzero: list[str] = field(default_factory=list)


def _pdflatex(tex: Path, workdir: Path) -> Path:
    """Run pdflatex twice (table of contents and references) in ``workdir``."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": _EPOCH, "FORCE_SOURCE_DATE": "1"}
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
           tex.name]
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              errors="replace", check=False)
        if proc.returncode != 0:
            log = (workdir / f"{tex.stem}.log")
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else proc.stdout
            raise RuntimeError(f"pdflatex failed on {tex.name}:\n{tail}")
    return workdir / f"{tex.stem}.pdf"


def build(out: str | os.PathLike[str] | None = None, *, tex_only: bool = False,
          figures_dir: str | os.PathLike[str] | None = None) -> BuildResult:
    """Generate ``<out>/cliff-derivations.tex``, ``formulas.json`` and (unless ``tex_only``
    or LaTeX is missing) ``<out>/cliff-derivations.pdf``.

    ``formulas.json`` lists every printed formula as ``{"label", "latex"}``; each ``latex``
    is ``sympy.latex`` of the expression object that was printed.
    """
    out_dir = Path(out) if out is not None else DEFAULT_OUT
    built = build_document(Path(figures_dir) if figures_dir is not None else None)
    tex_text = built.doc.tex()
    res = BuildResult(tex=write_text(out_dir / f"{STEM}.tex", tex_text),
                      formulas=write_json(out_dir / "formulas.json", [
                          {"label": f.label, "latex": f.latex} for f in built.doc.printed]),
                      nonzero=built.nonzero)
    if tex_only:
        return res
    if shutil.which("pdflatex") is None:
        res.warnings.append(f"pdflatex not found: wrote {res.tex} only. To build the PDF "
                            f"install LaTeX: {INSTALL_HINT}")
        return res
    with tempfile.TemporaryDirectory(prefix="cliff-tex-") as tmp:
        work = Path(tmp)
        (work / f"{STEM}.tex").write_text(tex_text)
        pdf = _pdflatex(work / f"{STEM}.tex", work)
        with atomic_path(out_dir / f"{STEM}.pdf") as dst:
            shutil.copyfile(pdf, dst)
    res.pdf = out_dir / f"{STEM}.pdf"
    return res


def summary(res: BuildResult) -> str:
    """Human-readable lines for the command line."""
    lines = [str(p) for p in (res.tex, res.formulas, res.pdf) if p is not None]
    lines += [f"warning: {w}" for w in res.warnings]
    lines += [f"error: identity residual is not 0: {n}" for n in res.nonzero]
    return "\n".join(lines)


