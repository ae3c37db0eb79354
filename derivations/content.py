r"""The derivation document: the formulas and numbers that fill its section templates.

The prose lives in ``derivations/sections/<section>.tex``, LaTeX with ``\VAR{name}`` holes
(:mod:`derivations.template`); each function here computes one section's values and renders
it.  Every display formula is printed from an expression object of :mod:`cliff.symbolic` (or
from what a ``derive_*`` function returns) by :meth:`derivations.latex.Document.display`,
every number by :mod:`cliff` itself; the identity residuals are computed here, at build time,
by each module's ``check_identities()``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from scipy.optimize import brentq

import cliff
from cliff import figures, sequence_cliff
from cliff.internal import KERNELS
from cliff.symbolic import bernoulli as B
from cliff.symbolic import budget as U
from cliff.symbolic import kary as K
from derivations.latex import Document, escape, markdown_to_latex
from derivations.template import render

__all__ = ["Build", "build_document", "kernel_registries"]

ROOT = Path(__file__).resolve().parent.parent
NOTES = Path(__file__).resolve().parent / "notes"
MODEL = Path(__file__).resolve().parent / "model.md"

PAPER = ("Li, Jiang, Wang, Zhang and Yuen, \\emph{The Extrapolation Cliff in On-Policy "
         "Distillation of Near-Deterministic Structured Outputs}, arXiv:2605.08737 (2026)")
GOPD = "Yang et al., G-OPD / ExOPD (reward extrapolation in on-policy distillation), " \
       "arXiv:2602.12125 (2026)"


@dataclass
class Build:
    """The built document and what it verified."""

    doc: Document
    residuals: dict[str, dict[str, sp.Expr]] = field(default_factory=dict)

    @property
    def nonzero(self) -> list[str]:
        """``module: identity`` for every residual SymPy did not reduce to 0."""
        return [f"{mod}: {name}" for mod, res in self.residuals.items()
                for name, val in res.items() if sp.simplify(val) != 0]


def kernel_registries() -> dict[str, dict[str, tuple[Any, sp.Expr, Any]]]:
    """``KERNELS`` of every numeric module: module name -> registry."""
    return KERNELS


def _paragraphs(pieces: list[str]) -> str:
    """Generated LaTeX pieces one paragraph each (a blank line between them)."""
    return "\n\n".join(piece.strip("\n") for piece in pieces)


def _residual_table(module: str, residuals: dict[str, sp.Expr]) -> str:
    rows = "\n".join(
        rf"\texttt{{{escape(name)}}} & ${sp.latex(val)}$ \\" for name, val in residuals.items())
    return (r"\begin{center}\begin{tabular}{lc}\toprule"
            rf" identity (\texttt{{{escape(module)}}}) & residual, simplified by SymPy \\"
            r"\midrule" "\n" + rows + "\n" r"\bottomrule\end{tabular}\end{center}")


def _about() -> str:
    return render("about", {"cliff_version": cliff.__version__, "sympy_version": sp.__version__,
                            "paper": PAPER, "gopd": GOPD})


def _model() -> str:
    """The model's definitions, from ``derivations/model.md`` (its title dropped)."""
    body = MODEL.read_text(encoding="utf-8").split("\n", 1)[1]
    return render("model", {"model": markdown_to_latex(body, level=0).strip("\n")})


def _sympy_model(doc: Document) -> str:
    return render("sympy_model", {
        "objective": doc.display("objective", B.OBJECTIVE, "J(m)"),
        "advantage_m": doc.display("advantage M", B.ADVANTAGE_M, "A(M)"),
        "advantage_t": doc.display("advantage T", B.ADVANTAGE_T, "A(T)"),
        "drift": doc.display("drift", B.DRIFT, "g(m)"),
        "drift_unclipped": doc.display("drift unclipped", B.DRIFT_UNCLIPPED, "g_{unclipped}(m)"),
    })


def _fixed_point(doc: Document) -> str:
    fp = B.derive_fixed_point()
    return render("fixed_point", {
        "fixed_point_mass": doc.display("fixed point mass", B.FIXED_POINT_MASS, r"m_\lambda"),
        "fixed_point_argmax": doc.display("fixed point argmax", fp["argmax"],
                                          r"\operatorname*{arg\,max}_m J"),
        "fixed_point_drift_zero": doc.display("fixed point drift zero", fp["drift_zero"], "m_0"),
        "fixed_point_curvature": doc.display("fixed point curvature", fp["curvature"],
                                             r"\frac{\partial^2 J}{\partial m^2}"),
        "logit_fixed_point": doc.display("logit fixed point", B.LOGIT_FIXED_POINT,
                                         r"\operatorname{logit} m_\lambda"),
    })


def _region(doc: Document) -> str:
    names = {"mode_floor": r"m_{M,cap}", "mode_cap": r"m_{M,floor}",
             "tail_cap": r"m_{T,cap}", "tail_floor": r"m_{T,floor}"}
    return render("region", {f"region_{key}": doc.display(f"region {key}", expr, names[key])
                             for key, expr in B.REGION.items()})


def _threshold(doc: Document, ids: dict[str, B.Identity]) -> str:
    thr = B.derive_threshold()
    values = {
        "lambda_star_shrinking_derived": doc.display(
            "lambda star shrinking derived", thr["shrinking"], r"\lambda^*_{shrinking}"),
        "lambda_star_growing_derived": doc.display(
            "lambda star growing derived", thr["growing"], r"\lambda^*_{growing}"),
        "rate": doc.display("rate", B.RATE, "D"),
        "headroom_shrinking": doc.display("headroom shrinking", B.HEADROOM_SHRINKING,
                                          r"\kappa_{shrinking}"),
        "headroom_growing": doc.display("headroom growing", B.HEADROOM_GROWING,
                                        r"\kappa_{growing}"),
        "threshold": doc.display("threshold", B.THRESHOLD, r"\lambda^*"),
        "paper_eq_4": doc.display("paper eq 4", B.LAMBDA_STAR_PAPER_EQ4,
                                  r"\lambda^*_{\mathrm{Eq.\,4}}"),
        "lambda_star_sharpening_tail": doc.display(
            "lambda star sharpening tail", B.lambda_star_expr("sharpening", "tail"),
            r"\lambda^*"),
        "paper_residual": doc.inline("paper residual", ids["paper Eq. 4"].residual()),
    }
    half = B.lambda_star_expr("sharpening", "tail").subs(B.b, sp.Rational(1, 2))
    values["base_neutral"] = doc.display("base neutral", half, r"\lambda^*(p, c)")
    kk = sp.Symbol("K", positive=True, integer=True)
    values["base_neutral_k"] = doc.display(
        "base neutral K", B.lambda_star_expr("sharpening", "tail").subs(B.b, 1 / kk),
        r"\lambda^*(p, c; b = 1/K)")
    val = cliff.solve(0.9993, 0.5, 5.0).lambda_star
    p_122 = brentq(lambda x: cliff.solve(x, 0.5, 5.0).lambda_star - 1.22, 0.99, 0.99999,
                   xtol=1e-14)
    values["lambda_star_at_marker"] = f"{val:.4f}"
    values["p_at_marker"] = f"{p_122:.6f}"
    return render("threshold", values)


def _clipped(doc: Document) -> str:
    cl = B.derive_clipped_fixed_point()
    return render("clipped", {
        "clipped_shrinking_derived": doc.display("clipped shrinking derived", cl["shrinking"],
                                                 "m_G"),
        "clipped_growing_derived": doc.display("clipped growing derived", cl["growing"], "m_G"),
        "clipped_shrinking_growing_mass": doc.display(
            "clipped shrinking growing mass", B.CLIPPED_SHRINKING_GROWING_MASS, "m_G"),
        "clipped_shrinking_shrinking_mass": doc.display(
            "clipped shrinking shrinking mass", B.CLIPPED_SHRINKING_SHRINKING_MASS, "1 - m_G"),
        "clipped_growing_growing_mass": doc.display(
            "clipped growing growing mass", B.CLIPPED_GROWING_GROWING_MASS, "m_G"),
        "clipped_growing_shrinking_mass": doc.display(
            "clipped growing shrinking mass", B.CLIPPED_GROWING_SHRINKING_MASS, "1 - m_G"),
    })


def _collapse(doc: Document) -> str:
    col = B.derive_collapse()
    return render("collapse", {
        "collapse_teacher_derived": doc.display(
            "collapse teacher derived", col["teacher"], r"\lambda_{collapse}\big|_{q \ge c_{low}}"),
        "collapse_floor_derived": doc.display(
            "collapse floor derived", col["floor"], r"\lambda_{collapse}\big|_{q < c_{low}}"),
        "collapse_headroom_teacher": doc.display(
            "collapse headroom teacher", B.COLLAPSE_HEADROOM_TEACHER, r"h_{q \ge c_{low}}"),
        "collapse_headroom_floor": doc.display(
            "collapse headroom floor", B.COLLAPSE_HEADROOM_FLOOR, r"h_{q < c_{low}}"),
    })


def _regimes(doc: Document) -> str:
    window = sp.simplify(sp.expand_log(sp.expand_func(
        B.COLLAPSE_HEADROOM_TEACHER - B.HEADROOM_SHRINKING).rewrite(sp.log), force=True))
    eps = sp.Symbol("epsilon", positive=True)
    lead = sp.simplify(sp.series(window.subs(B.q, 1 - eps), eps, 0, 2).removeO())
    res = cliff.solve(0.9993, 0.5, 5.0)
    return render("regimes", {
        "window": doc.display("window", window, r"D\,(\lambda_{collapse} - \lambda^*)"),
        "window_series": doc.display("window series", lead,
                                     r"D\,(\lambda_{collapse} - \lambda^*)", rel=r"\approx"),
        "window_at_marker": f"{float(res.lambda_collapse - res.lambda_star):.2e}",
    })


def _identities(build: Build) -> str:
    build.residuals["cliff.symbolic.bernoulli"] = B.check_identities()
    return render("identities", {"residuals": _residual_table(
        "cliff.symbolic.bernoulli", build.residuals["cliff.symbolic.bernoulli"])})


def _budget(doc: Document, build: Build) -> str:
    on = U.derive_onsets()
    values = {
        "onset_unclipped_derived": doc.display("onset unclipped derived", on["unclipped"],
                                               r"\lambda_\infty^{unclipped}"),
        "onset_capped_derived": doc.display("onset capped derived", on["shrinking"],
                                            r"\lambda_\infty^{capped}"),
        "onset_floored_derived": doc.display("onset floored derived", on["growing"],
                                             r"\lambda_\infty^{floored}"),
        "onset_unclipped": doc.display("onset unclipped", U.ONSET_UNCLIPPED,
                                       r"\lambda_\infty^{unclipped}"),
        "onset_capped": doc.display("onset capped", U.ONSET_SHRINKING, r"\lambda_\infty^{capped}"),
        "onset_floored": doc.display("onset floored", U.ONSET_GROWING,
                                     r"\lambda_\infty^{floored}"),
    }
    ext = U.derive_extension()
    ratio = r"\frac{\lambda_{2T} - \lambda_\infty}{\lambda_T - \lambda_\infty}"
    values |= {
        "slope_unclipped": doc.inline("slope unclipped", U.SLOPE_UNCLIPPED),
        "slope_capped": doc.inline("slope capped", U.SLOPE_SHRINKING),
        "slope_floored": doc.inline("slope floored", U.SLOPE_GROWING),
        "multiplier_derived": doc.display("multiplier derived", ext["multiplier"], r"\mu"),
        "multiplier": doc.display("multiplier", U.MULTIPLIER, r"\mu"),
        "extension_ratio_derived": doc.display("extension ratio derived", ext["ratio"], ratio),
        "extension_ratio": doc.display("extension ratio", U.EXTENSION_RATIO, ratio),
    }
    run = U.derive_runaway()
    values |= {
        "crossing_integral_derived": doc.display("crossing integral derived", run["integral"],
                                                 "I"),
        "crossing_integral": doc.display("crossing integral", U.CROSSING_INTEGRAL, "I"),
        "runaway_onset": doc.display("runaway onset", U.RUNAWAY_ONSET,
                                     r"\lambda_T - \lambda_{collapse}"),
        "runaway_ratio": doc.inline("runaway ratio", U.RUNAWAY_EXTENSION_RATIO),
    }
    crit = U.derive_critical_clips()
    dlogc = r"\frac{\partial\lambda_\infty}{\partial\log c}"
    values |= {
        "critical_cap": doc.display("critical cap", U.C_CRIT_SHRINKING, r"c_{crit}"),
        "critical_floor": doc.display("critical floor", U.C_LOW_CRIT_GROWING, r"c_{low,crit}"),
        "onset_dlogc_derived": doc.display("onset dlogc derived", crit["dlogc"], dlogc),
        "onset_dlogc": doc.display("onset dlogc", U.ONSET_SHRINKING_DLOGC, dlogc),
    }
    build.residuals["cliff.symbolic.budget"] = U.check_identities()
    values["residuals"] = _residual_table("cliff.symbolic.budget",
                                          build.residuals["cliff.symbolic.budget"])
    return render("budget", values)


def _kary(doc: Document, build: Build) -> str:
    values = {
        "tangent_root": doc.display("tangent root", K.TANGENT_ROOT, "y_{tangent}"),
        "floor_upper_bracket": doc.display("floor upper bracket", K.FLOOR_UPPER_BRACKET,
                                           "y_{floor}^{+}"),
        "spread_collapse": doc.display("spread collapse", K.SPREAD_COLLAPSE, "y_{spread}"),
    }
    lim = K.derive_bernoulli_limit()
    for key, lhs in (("cap", "y_{cap}"), ("floor", "y_{floor}"), ("collapse", "y_{collapse}"),
                     ("spread", "y_{spread}")):
        values[f"kary_k_2_{key}"] = doc.display(f"kary K=2 {key}", lim[key], lhs)
    values["reduction_bound"] = doc.display("reduction bound", K.REDUCTION_BOUND,
                                            r"0 \le \lambda^*_{agg} - \lambda^*_K", rel=r"\le")
    build.residuals["cliff.symbolic.kary"] = K.check_identities()
    values["residuals"] = _residual_table("cliff.symbolic.kary",
                                          build.residuals["cliff.symbolic.kary"])
    return render("kary", values)


def _sequence(doc: Document) -> str:
    i, n_pos = sp.Symbol("i", integer=True, positive=True), sp.Symbol("L", positive=True)
    mi = sp.Function("m_i")(B.lam)
    parse_rate = doc.display("parse rate", sp.Product(mi, (i, 1, n_pos)),
                             r"\mathrm{parse}(\lambda) \approx")
    p, b = figures.SEQUENCE_P, figures.SEQUENCE_B
    res = cliff.solve(p, b, 5.0)
    soft = p < b
    return render("sequence", {
        "parse_rate": parse_rate,
        "positions": str(p.size),
        "softening": str(int(soft.sum())),
        "softening_lambda_star_min": f"{float(np.min(np.asarray(res.lambda_star)[soft])):.3f}",
        "softening_lambda_star_max": f"{float(np.max(np.asarray(res.lambda_star)[soft])):.3f}",
        "lambda_seq": f"{float(sequence_cliff(p, b, 5.0)):.3f}",
        "softening_lambda_collapse_min":
            f"{float(np.min(np.asarray(res.lambda_collapse)[soft])):.3f}",
    })


def _markers() -> str:
    lo = brentq(lambda x: cliff.solve(x, 0.5, 5.0).lambda_star - 1.228, 0.99, 0.99999,
                xtol=1e-14)
    hi = brentq(lambda x: cliff.solve(x, 0.5, 5.0).lambda_star - 1.204, 0.99, 0.99999,
                xtol=1e-14)
    val = cliff.solve(0.9993, 0.5, 5.0)
    return render("markers", {
        "paper": PAPER, "lambda_star": f"{val.lambda_star:.4f}", "binding": str(val.binding),
        "lambda_collapse": f"{val.lambda_collapse:.4f}",
        "p_at_1204": f"{hi:.6f}", "p_at_1228": f"{lo:.6f}",
    })


def _decisions() -> str:
    """The package's decisions, then every note of ``derivations/notes/`` converted."""
    notes = sorted(NOTES.glob("*.md")) if NOTES.is_dir() else []
    pieces = []
    for note in notes:
        pieces.append(rf"\subsection{{Note: \texttt{{{escape(note.name)}}}}}")
        pieces.append(markdown_to_latex(note.read_text(encoding="utf-8"), level=2))
    if not notes:
        pieces.append(r"\textit{No further notes in \texttt{derivations/notes/} in this build.}")
    return render("decisions", {"notes": _paragraphs(pieces)})


FIGURES = (
    ("phase_diagram", r"$\lambda^*(p, b)$ for $c \in \{1.2, 2, 5\}$ on log-odds axes."),
    ("fixed_point", "Unclipped fixed point, clipped fixed point and runaway."),
    ("budget_onset", r"Finite-budget onset $\lambda_T$ against the step budget $T$."),
    ("kary", r"A $K = 8$ position: K-ary and aggregated Bernoulli ratios."),
    ("parse_rate", "Predicted strict parse rate of a 12-position sequence."),
)
"""The figures the document shows, in order, with their captions (LaTeX)."""


def _figures(figures_dir: Path) -> str | None:
    """The figures section, or None when ``figures_dir`` holds none of :data:`FIGURES`."""
    shown = [(n, cap) for n, cap in FIGURES if (figures_dir / f"{n}.pdf").is_file()]
    if not shown:
        return None
    pieces = []
    for name, caption in shown:
        path = (figures_dir / f"{name}.pdf").resolve().as_posix()
        pieces.append(r"\begin{figure}[htbp]\centering"
                      rf"\includegraphics[width=\linewidth]{{{path}}}"
                      rf"\caption{{\texttt{{{escape(name)}}}: {caption}}}\end{{figure}}")
    return render("figures", {"figures": _paragraphs(pieces)})


def _kernels(doc: Document) -> str:
    pieces = []
    for module, reg in kernel_registries().items():
        pieces.append(rf"\subsection{{\texttt{{{escape(module)}.KERNELS}}}}")
        for name, (args, expr, _fn) in reg.items():
            arglist = ", ".join(sp.latex(a) for a in args)
            pieces.append(rf"\texttt{{{escape(name)}}}$({arglist})$:")
            pieces.append(doc.display(f"kernel {module}.{name}", expr, split=False))
    return render("kernels", {"kernels": _paragraphs(pieces)})


def _references() -> str:
    return render("references", {"paper": PAPER, "gopd": GOPD})


@functools.lru_cache(maxsize=4)
def build_document(figures_dir: Path | None = None) -> Build:
    """Assemble the whole derivation document (computes every identity residual; cached
    per process, the SymPy work takes ~15 s)."""
    doc = Document(title=r"\texttt{cliff}: derivations of the extrapolation cliff",
                   author=r"The \texttt{cliff} developers")
    build = Build(doc)
    ids = {i.name: i for i in B.identities()}
    sections = [
        _about(), _model(), _sympy_model(doc), _fixed_point(doc), _region(doc),
        _threshold(doc, ids), _clipped(doc), _collapse(doc), _regimes(doc), _identities(build),
        _budget(doc, build), _kary(doc, build), _sequence(doc), _markers(), _decisions(),
        _figures(figures_dir if figures_dir is not None else ROOT / "figures"), _kernels(doc),
        _references(),
    ]
    for section in sections:
        if section is not None:
            doc.raw(section)
    return build
