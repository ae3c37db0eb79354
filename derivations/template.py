r"""LaTeX templates with named holes: ``\VAR{name}`` markers filled from a mapping.

The prose of the derivation document lives in ``derivations/sections/<section>.tex``, one
file per section, as plain LaTeX; :mod:`derivations.content` computes the formulas and
numbers and :func:`render` puts them where the prose names them.  A marker is ``\VAR{``, a
Python identifier and ``}``; nothing else in a template is read, so braces, ``$`` and
``%`` keep their LaTeX meaning.  Filling is strict: a marker without a value, a value
without a marker and a malformed marker are all errors, so prose and computation cannot
drift apart silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["MARKER", "SECTIONS", "fill", "render"]

SECTIONS = Path(__file__).resolve().parent / "sections"
"""The folder of the section templates, ``<section>.tex``."""

MARKER = re.compile(r"\\VAR\{([A-Za-z_][A-Za-z0-9_]*)\}")
r"""A hole in a template: ``\VAR{name}``, ``name`` a Python identifier."""


def fill(template: str, values: Mapping[str, str], *, source: str = "template") -> str:
    r"""``template`` with every ``\VAR{name}`` replaced by ``values[name]``, verbatim.

    Parameters
    ----------
    template : str
        LaTeX with ``\VAR{name}`` markers; a name may occur more than once.
    values : Mapping[str, str]
        LaTeX for every name the template uses, and for no other name.
    source : str
        What to call the template in an error message (its file name).

    Returns
    -------
    str
        The filled LaTeX (values are inserted as they are: no escaping, no formatting).

    Raises
    ------
    ValueError
        If a ``\VAR`` is not followed by ``{identifier}``, if a marker's name is not in
        ``values``, or if a name in ``values`` has no marker; the message names each.

    Examples
    --------
    >>> fill(r"$m = \VAR{m}$, so $\VAR{m} < 1$", {"m": r"\frac{1}{2}"})
    '$m = \\frac{1}{2}$, so $\\frac{1}{2} < 1$'
    >>> fill(r"\VAR{m}", {"m": "1", "n": "2"}, source="x.tex")
    Traceback (most recent call last):
    ...
    ValueError: values of x.tex must each fill a \VAR{name} marker; unused: n
    """
    used = set(MARKER.findall(template))
    if template.count(r"\VAR") != len(MARKER.findall(template)):
        bad = [m.group(0) for m in re.finditer(r"\\VAR(?!\{[A-Za-z_][A-Za-z0-9_]*\}).{0,20}",
                                              template)]
        raise ValueError(rf"markers of {source} must be \VAR{{identifier}}; got {bad}")
    missing = sorted(used - values.keys())
    if missing:
        raise ValueError(rf"markers of {source} must each have a value; missing: "
                         + ", ".join(missing))
    unused = sorted(values.keys() - used)
    if unused:
        raise ValueError(rf"values of {source} must each fill a \VAR{{name}} marker; unused: "
                         + ", ".join(unused))
    return MARKER.sub(lambda m: values[m.group(1)], template)


def render(section: str, values: Mapping[str, str]) -> str:
    """The template ``derivations/sections/<section>.tex`` filled with ``values`` (see
    :func:`fill`)."""
    path = SECTIONS / f"{section}.tex"
    return fill(path.read_text(encoding="utf-8"), values, source=f"sections/{path.name}")
