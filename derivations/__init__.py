"""Derivation PDF of :mod:`cliff`: ``python -m derivations`` writes ``derivations/build/``.

The document is generated from the SymPy expressions of :mod:`cliff.symbolic` (the same
objects the numeric code lambdifies) by :mod:`derivations.content`, with
:mod:`derivations.latex` recording every printed formula.
"""

from derivations.latex import Document, markdown_to_latex
from derivations.pdf import BuildResult, build

__all__ = ["BuildResult", "Document", "build", "markdown_to_latex"]
