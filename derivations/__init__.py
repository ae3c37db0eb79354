r"""Derivation PDF of :mod:`cliff`: ``python -m derivations`` writes ``derivations/build/``.

The prose is LaTeX in ``derivations/sections/*.tex`` with ``\VAR{name}`` holes
(:mod:`derivations.template`); :mod:`derivations.content` fills them with the SymPy
expressions of :mod:`cliff.symbolic` (the same objects the numeric code lambdifies) and the
numbers :mod:`cliff` computes, with :mod:`derivations.latex` recording every printed formula.
"""

from derivations.latex import Document, markdown_to_latex
from derivations.pdf import BuildResult, build

__all__ = ["BuildResult", "Document", "build", "markdown_to_latex"]
