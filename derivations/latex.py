r"""A small LaTeX document builder that records every formula it prints.

:class:`Document` accumulates LaTeX; :meth:`Document.display` (a numbered display) and
:meth:`Document.inline` print ``sympy.latex(expr)`` of an expression *object* (never a typed
string) and record ``(label, expr, latex)`` in :attr:`Document.printed`, so a test can check
that each expression the numeric code evaluates appears verbatim in the ``.tex``.
:func:`markdown_to_latex` converts the simple markdown of ``derivations/notes/*.md``
(headings, paragraphs, lists, code, ``$math$``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.function import _coeff_isneg
from sympy.printing.latex import LatexPrinter

__all__ = ["Document", "Printed", "SPLIT_CHARS", "escape", "markdown_to_latex"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}"}
_UNICODE = {"λ": r"$\lambda$", "≤": r"$\le$", "≥": r"$\ge$", "→": r"$\to$", "∝": r"$\propto$",
            "≈": r"$\approx$", "−": "-", "–": "--", "—": "---", "×": r"$\times$",
            "∞": r"$\infty$", "θ": r"$\theta$", "π": r"$\pi$", "κ": r"$\kappa$", "σ": r"$\sigma$",
            "β": r"$\beta$", "τ": r"$\tau$", "η": r"$\eta$", "μ": r"$\mu$", "δ": r"$\delta$",
            "ε": r"$\varepsilon$", "·": r"$\cdot$", "∈": r"$\in$", "…": r"\ldots{}",
            "‖": r"$\|$", "’": "'", "“": "``", "”": "''", "<": r"$<$", ">": r"$>$",
            "|": r"$|$"}

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2.3cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{xcolor}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.55em}
\allowdisplaybreaks
% Print a display formula at its natural size, shrunk to the line when it is wider.
\newsavebox{\fitbox}
\newcommand{\fitmath}[1]{\sbox{\fitbox}{$\displaystyle #1$}%
  \ifdim\wd\fitbox>0.92\linewidth\resizebox{0.92\linewidth}{!}{\usebox{\fitbox}}%
  \else\usebox{\fitbox}\fi}
"""


def escape(text: str) -> str:
    """Escape LaTeX specials and map common Unicode symbols (plain prose only)."""
    out = "".join(_SPECIAL.get(ch, ch) for ch in text)
    return "".join(_UNICODE.get(ch, ch) for ch in out)


@dataclass(frozen=True)
class Printed:
    """One formula printed in the document."""

    label: str
    expr: sp.Basic
    latex: str


@dataclass
class Document:
    """LaTeX body under construction; :meth:`tex` wraps it in the preamble."""

    title: str
    author: str
    parts: list[str] = field(default_factory=list)
    printed: list[Printed] = field(default_factory=list)

    def raw(self, tex: str) -> None:
        """Append LaTeX as is (prose with inline math written by the document's author)."""
        self.parts.append(tex.strip("\n") + "\n")

    def section(self, title: str, label: str | None = None) -> None:
        self.raw(rf"\section{{{title}}}" + (rf"\label{{sec:{label}}}" if label else ""))

    def subsection(self, title: str) -> None:
        self.raw(rf"\subsection{{{title}}}")

    def display(self, label: str, expr: sp.Basic, lhs: str | None = None,
                rel: str = "=", split: bool = True) -> str:
        """``lhs rel sympy.latex(expr)`` as a numbered display, recorded; returns the display.

        A sum longer than :data:`SPLIT_CHARS` is broken at its terms when ``split``;
        otherwise (and for long non-sums) it is printed whole, shrunk to the line width.
        """
        body = sp.latex(expr)
        self.printed.append(Printed(label, expr, body))
        tag = re.sub(r"[^A-Za-z0-9:.-]+", "-", label)
        lines = _split_add(expr) if split and len(body) > SPLIT_CHARS else None
        if lines:
            first = lines[0] if lhs is None else f"{lhs} {rel} {lines[0]}"
            rows = [first] + [rf"\quad {ln}" for ln in lines[1:]]
            return (rf"\begin{{multline}}\label{{eq:{tag}}}" + " \\\\\n".join(rows)
                    + r"\end{multline}")
        shown = body if lhs is None else f"{lhs} {rel} {body}"
        return rf"\begin{{equation}}\label{{eq:{tag}}}\fitmath{{{shown}}}\end{{equation}}"

    def eq(self, label: str, expr: sp.Basic, lhs: str | None = None,
           rel: str = "=", split: bool = True) -> str:
        """Append :meth:`display` of ``expr`` to the document; returns ``sympy.latex(expr)``."""
        self.raw(self.display(label, expr, lhs, rel, split))
        return self.printed[-1].latex

    def inline(self, label: str, expr: sp.Basic) -> str:
        """``$sympy.latex(expr)$`` for use inside prose (recorded like :meth:`display`)."""
        body = sp.latex(expr)
        self.printed.append(Printed(label, expr, body))
        return f"${body}$"

    def tex(self) -> str:
        head = (PREAMBLE + "\\title{" + self.title + "}\n\\author{" + self.author + "}\n"
                "\\date{}\n\\begin{document}\n\\maketitle\n\\tableofcontents\n")
        return head + "\n".join(self.parts) + "\n\\end{document}\n"


SPLIT_CHARS = 170
"""A sum whose LaTeX is longer than this is broken over lines at its terms (``multline``)."""
_LINE_CHARS = 110


def _split_add(expr: sp.Basic) -> list[str] | None:
    """The terms of a long sum as LaTeX lines, joined with the signs ``sympy.latex`` uses."""
    if not isinstance(expr, sp.Add):
        return None
    pr = LatexPrinter()
    lines, cur = [], ""
    for i, term in enumerate(pr._as_ordered_terms(expr, order=None)):
        sign = ""
        if i > 0:
            if _coeff_isneg(term):
                sign, term = "- ", -term
            else:
                sign = "+ "
        tex = pr._print(term)
        if pr._needs_add_brackets(term):
            tex = rf"\left({tex}\right)"
        piece = sign + tex
        if cur and len(cur) + len(piece) > _LINE_CHARS:
            lines.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}".strip()
    lines.append(cur)
    return lines if len(lines) > 1 else None


# --- markdown ------------------------------------------------------------------------------
_INLINE = re.compile(r"(\$\$.+?\$\$|\$[^$]+?\$|`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)")


def _breakable(tex: str) -> str:
    """Allow line breaks inside inline code after separators."""
    for sep in ("/", ",", "(", "=", r"\_", "."):
        tex = tex.replace(sep, sep + r"\allowbreak{}")
    return tex


def _inline(text: str) -> str:
    out = []
    for piece in _INLINE.split(text):
        if not piece:
            continue
        if piece.startswith("$"):
            out.append(piece)  # math passes through
        elif piece.startswith("`"):
            out.append(r"\texttt{" + _breakable(escape(piece[1:-1])) + "}")
        elif piece.startswith("**"):
            out.append(r"\textbf{" + escape(piece[2:-2]) + "}")
        elif piece.startswith("*") and len(piece) > 2:
            out.append(r"\emph{" + escape(piece[1:-1]) + "}")
        else:
            out.append(re.sub(r'"([^"]*)"', r"``\1''", escape(piece)))  # typographic quotes
    return "".join(out)


def markdown_to_latex(md: str, level: int = 2) -> str:
    """Convert simple markdown to LaTeX.

    ``#`` headings become sectioning level ``level`` (0 section, 1 subsection, 2
    subsubsection, 3 paragraph), ``##`` one deeper, and so on; ``-``/``*``
    and ``1.`` lists become itemize/enumerate, fenced blocks become verbatim, ``$...$``
    passes through, inline code becomes ``\\texttt``.
    """
    heads = ["section", "subsection", "subsubsection", "paragraph", "paragraph"]
    lines = md.splitlines()
    out: list[str] = []
    env: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            if env:
                out.append(rf"\end{{{env}}}")
                env = None
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append("\\begin{verbatim}\n" + "\n".join(block) + "\n\\end{verbatim}")
            i += 1
            continue
        bullet = re.match(r"^\s*([-*]|\d+\.)\s+(.*)$", line)
        heading = re.match(r"^(#{1,5})\s+(.*)$", stripped)
        if bullet:
            want = "enumerate" if bullet.group(1)[0].isdigit() else "itemize"
            if env != want:
                if env:
                    out.append(rf"\end{{{env}}}")
                out.append(rf"\begin{{{want}}}")
                env = want
            item = bullet.group(2)
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip() \
                    and not re.match(r"^\s*([-*]|\d+\.)\s+", lines[i + 1]):
                i += 1
                item += " " + lines[i].strip()
            out.append(r"\item " + _inline(item))
        else:
            if env and (stripped or heading):
                out.append(rf"\end{{{env}}}")
                env = None
            if heading:
                depth = min(level - 1 + len(heading.group(1)), len(heads) - 1)
                out.append(rf"\{heads[depth]}{{{_inline(heading.group(2))}}}")
            elif stripped.startswith("$$") and stripped.endswith("$$") and len(stripped) > 4:
                out.append(r"\[" + stripped[2:-2] + r"\]")
            else:
                out.append(_inline(line) if stripped else "")
        i += 1
    if env:
        out.append(rf"\end{{{env}}}")
    return "\n".join(out) + "\n"
