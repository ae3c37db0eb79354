r"""The section templates and the strict ``\VAR{name}`` fill of :mod:`derivations.template`."""

from __future__ import annotations

import doctest

import pytest

from derivations import template
from derivations.template import MARKER, SECTIONS, fill


def test_docstring_examples() -> None:
    assert doctest.testmod(template, optionflags=doctest.ELLIPSIS).failed == 0


def test_values_are_inserted_verbatim_and_latex_is_left_alone() -> None:
    assert fill(r"$x^{\VAR{n}}$ {\bf 50\%} \VAR{n}", {"n": r"\frac{1}{2}"}) == (
        r"$x^{\frac{1}{2}}$ {\bf 50\%} \frac{1}{2}")


@pytest.mark.parametrize(("text", "values", "match"), [
    (r"\VAR{a} \VAR{b}", {"a": "1"}, r"markers of t.tex must each have a value; missing: b"),
    (r"\VAR{a}", {"a": "1", "c": "3", "b": "2"},
     r"values of t.tex must each fill a \\VAR\{name\} marker; unused: b, c"),
    (r"\VAR{1a}", {}, r"markers of t.tex must be \\VAR\{identifier\}"),
    (r"\VAR{a b}", {}, r"markers of t.tex must be \\VAR\{identifier\}"),
    (r"\VARIANT \VAR{a}", {"a": "1"}, r"markers of t.tex must be \\VAR\{identifier\}"),
])
def test_missing_unused_and_malformed_names_are_refused(text: str, values: dict[str, str],
                                                        match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fill(text, values, source="t.tex")


def test_every_section_template_has_well_formed_markers() -> None:
    """Each ``sections/*.tex`` uses only ``\\VAR{identifier}`` markers (fill's first check)."""
    paths = sorted(SECTIONS.glob("*.tex"))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.count(r"\VAR") == len(MARKER.findall(text)), path.name
