r"""The figures of ``figures/``, regenerated from the closed forms (``python -m cliff figures``).

Each figure is one function returning a matplotlib ``Figure`` and the numbers it plots;
:func:`make_all` writes ``<name>.png``, ``<name>.pdf`` and ``data/<name>.json`` for every
one of them, atomically.  The inputs are fixed constants (no randomness), the plotted
numbers are rounded to :data:`DIGITS` significant digits *before* plotting (so the JSON is
exactly what is drawn, and byte-identical across runs and platforms with the same libm),
and the PNG/PDF metadata carry no date or version, so regenerating gives identical files.

Figures
-------
``phase_diagram``
    ``lambda*(p, b)`` for ``c`` in {1.2, 2, 5} on log-odds axes, sharpening below the
    diagonal ``p = b``, softening above it.
``fixed_point``
    The modal mass ``m`` against ``lambda``: unclipped fixed point, clipped fixed point
    between ``lambda*`` and ``lambda_collapse``, runaway past it.
``budget_onset``
    The finite-budget onset ``lambda_T`` against the step budget ``T``, its ``T -> inf``
    limit and the doubling prediction ``lambda_2T``.
``kary``
    A K = 8 listwise position: extreme importance ratios at the K-ary fixed point against
    ``lambda``, the K-ary ``lambda*`` and the aggregated Bernoulli one.
``parse_rate``
    The predicted strict parse rate ``prod_i m_i(lambda)`` of a 12-position sequence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit

from cliff._theory import bernoulli as _bernoulli
from cliff._theory import budget as _budget
from cliff._theory import kary as _kary
from cliff._theory import sequence as _sequence
from cliff._util import atomic

__all__ = ["FIGURES", "DIGITS", "SEQUENCE_B", "SEQUENCE_P", "make_all"]

FloatArray = NDArray[np.float64]

DIGITS = 10
"""Significant digits of every plotted number (stored in ``data/<name>.json``)."""

_RC: dict[str, Any] = {
    "svg.hashsalt": "cliff", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 100,
    "axes.grid": True, "grid.alpha": 0.25, "lines.linewidth": 1.6,
}
_PNG_META = {"Software": None}
_PDF_META = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
SEQUENCE_P = np.array([0.9995, 0.999, 0.998, 0.9993, 0.997, 0.9999, 0.995, 0.999, 0.996,
                       0.9998, 0.99, 0.9997])
"""Teacher valid-class masses of the example sequence (12 structural positions of a JSON
record: braces, quotes, colons, commas)."""
SEQUENCE_B = np.array([0.95, 0.9995, 0.9, 0.5, 0.9995, 0.99, 0.999, 0.9, 0.8, 0.99995, 0.998,
                       0.7])
"""Warm-start valid-class masses of the example sequence."""
_PAPER = {"p": 0.9993, "b": 0.5, "c": 5.0, "lambda_star": 1.22}  # Li et al. (2026) marker


def _r(x: ArrayLike) -> FloatArray:
    """Round to :data:`DIGITS` significant digits (inf stays inf)."""
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(np.where(np.isfinite(a) & (a != 0), a, 1.0))))
        scale = 10.0 ** (DIGITS - 1 - mag)
        out = np.where(np.isfinite(a) & (a != 0), np.round(a * scale) / scale, a)
    return np.asarray(out, dtype=np.float64)


def _prob_ticks(ax_set: Callable[..., Any], probs: list[float]) -> None:
    """Ticks at logit(p), labelled with p."""
    ax_set([float(logit(v)) for v in probs], [f"{v:g}" for v in probs])


# --- 1. phase diagram ---------------------------------------------------------------------
def phase_diagram() -> tuple[Figure, dict[str, Any]]:
    """lambda*(p, b) for c in {1.2, 2, 5}; log-odds axes, colour = log10(lambda* - 1)."""
    n = 73
    xs = np.linspace(-3.0, 12.0, n)  # logit p
    ys = np.linspace(-3.0, 12.0, n) + 0.5 * (xs[1] - xs[0])  # logit b, off the diagonal
    gx, gy = np.meshgrid(xs, ys)
    p, b = expit(gx), expit(gy)
    caps = [1.2, 2.0, 5.0]
    levels = np.linspace(-3.0, 1.0, 17)
    fig = Figure(figsize=(10.5, 3.7), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    data: dict[str, Any] = {"logit_p": _r(xs), "logit_b": _r(ys), "c_low": "1/c",
                            "panels": []}
    mappable = None
    for ax, c in zip(axes, caps, strict=True):
        ls = _r(_bernoulli.solve(p, b, c).lambda_star)
        z = np.log10(np.clip(ls - 1.0, 1e-3, 10.0))
        mappable = ax.contourf(xs, ys, z, levels=levels, cmap="viridis", extend="both")
        cs = ax.contour(xs, ys, ls, levels=[1.22, 1.5, 2.0], colors="w", linewidths=0.8)
        ax.clabel(cs, fmt={1.22: "1.22", 1.5: "1.5", 2.0: "2"}, fontsize=7)
        ax.plot([-3, 12], [-3, 12], color="w", lw=1.2, ls="--")
        ax.text(8.0, -1.6, "sharpening\n$p > b$: $m \\to 1$", color="w", ha="center",
                va="center", fontsize=8)
        ax.text(0.5, 8.0, "softening\n$p < b$: $m \\to 0$", color="w", ha="center",
                va="center", fontsize=8)
        if c == _PAPER["c"]:
            ax.plot(logit(_PAPER["p"]), logit(_PAPER["b"]), marker="*", ms=11, color="tab:red",
                    mec="w", ls="none", label="Li et al. (2026): $\\lambda^*=1.22$")
            ax.legend(loc="upper left", framealpha=0.85)
        ax.set_title(f"$c = {c:g}$, $c_{{low}} = 1/c$")
        _prob_ticks(ax.set_xticks, [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999])
        ax.set_xlabel("teacher modal probability $p$ (log-odds axis)")
        ax.tick_params(axis="x", labelrotation=45)
        data["panels"].append({"c": c, "lambda_star": ls})
    _prob_ticks(axes[0].set_yticks, [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999])
    axes[0].set_ylabel("warm-start modal probability $b$ (log-odds axis)")
    assert mappable is not None
    cb = fig.colorbar(mappable, ax=list(axes), shrink=0.95)
    ticks = [1.001, 1.01, 1.1, 2.0, 11.0]
    cb.set_ticks([float(np.log10(t - 1)) for t in ticks], labels=[f"{t:g}" for t in ticks])
    cb.set_label("clip-safety threshold $\\lambda^*$")
    fig.suptitle("Phase diagram of $\\lambda^*(p, b, c)$: the fixed point leaves the "
                 "clip-safe region at $\\lambda^*$; no threshold on the diagonal $p = b$")
    return fig, data


# --- 2. fixed point against lambda -------------------------------------------------------
def fixed_point() -> tuple[Figure, dict[str, Any]]:
    """Unclipped fixed point, clipped fixed point and runaway, one panel per regime."""
    cases: list[dict[str, Any]] = [
        {"p": 0.9, "b": 0.5, "c": 2.0, "regime": "sharpening", "complement": True},
        {"p": 0.9, "b": 0.99, "c": 5.0, "regime": "softening", "complement": False},
    ]
    fig = Figure(figsize=(10.0, 3.9), layout="constrained")
    axes = fig.subplots(1, 2)
    data: dict[str, Any] = {"panels": []}
    for ax, case in zip(axes, cases, strict=True):
        p, b, c, comp = case["p"], case["b"], case["c"], case["complement"]
        res = _bernoulli.solve(p, b, c)
        ls, lc = res.lambda_star, res.lambda_collapse
        lam = np.unique(np.concatenate([np.linspace(1.0, 1.0 + 1.6 * (lc - 1.0), 600),
                                        np.linspace(ls, lc, 200)[:-1]]))
        unc = _r(_bernoulli.fixed_point(p, b, lam, complement=comp))
        clipped = _r(_bernoulli.clipped_fixed_point(p, b, c, lam, complement=comp))
        lo, hi = res.region_low, res.region_high
        band = (1.0 - hi, 1.0 - lo) if comp else (lo, hi)
        ax.axhspan(*band, color="tab:green", alpha=0.12, lw=0,
                   label="clip-safe region $R$")
        ax.plot(lam, unc, color="tab:gray", ls="--", label="unclipped fixed point $m_\\lambda$")
        inside = lam < lc
        ax.plot(lam[inside], clipped[inside], color="tab:blue",
                label="clipped dynamics: fixed point")
        floor = 1e-3 if comp else 0.0  # 1 - m = 0 is drawn on the log axis's floor
        ax.plot(lam[~inside], np.maximum(clipped[~inside], floor), color="tab:red", lw=3.0,
                clip_on=False, label="no fixed point: runaway")
        ax.axvline(ls, color="k", lw=0.9, ls=":")
        ax.axvline(lc, color="tab:red", lw=0.9, ls=":")
        ax.set_xlabel("extrapolation coefficient $\\lambda$")
        if comp:
            ax.set_yscale("log")
            ax.set_ylim(1e-3, 0.6)
            ax.set_ylabel("tail mass $1 - m$ (log scale)")
            ax.annotate("$1-m \\to 0$:\nentropy collapse", xy=(lam[-1], 1.1e-3),
                        xytext=(0.97, 0.3), textcoords="axes fraction", ha="right",
                        arrowprops={"arrowstyle": "->", "color": "tab:red"}, color="tab:red")
        else:
            ax.set_ylim(-0.03, 1.03)
            ax.set_ylabel("modal (contract-valid) mass $m$")
            ax.annotate("$m \\to 0$:\ncontract collapse", xy=(lam[-1], 0.0),
                        xytext=(0.97, 0.35), textcoords="axes fraction", ha="right",
                        arrowprops={"arrowstyle": "->", "color": "tab:red"}, color="tab:red")
        trans = ax.get_xaxis_transform()
        ax.text(ls, 1.01, f"$\\lambda^*={ls:.3f}$ ", transform=trans, ha="right",
                va="bottom", fontsize=8)
        ax.text(lc, 1.01, f" $\\lambda_{{collapse}}={lc:.3f}$", transform=trans, ha="left",
                va="bottom", fontsize=8, color="tab:red")
        ax.set_title(f"{case['regime']}: $p={p:g}$, $b={b:g}$, $c={c:g}$, "
                     f"$c_{{low}}=1/c$ ({res.binding} binds)", pad=16)
        ax.legend(loc="lower left" if not comp else "center left", framealpha=0.9)
        data["panels"].append({**case, "lambda_star": ls, "lambda_collapse": lc,
                               "region": [lo, hi], "lam": _r(lam), "unclipped": unc,
                               "clipped": clipped})
    return fig, data


# --- 3. finite-budget onset -----------------------------------------------------------------
def budget_onset() -> tuple[Figure, dict[str, Any]]:
    """lambda_T against T (exact bisection on the Euler map), lambda_inf and the 2T forecast."""

    p, b, lr, tau = 0.95, 0.995, 0.5, 0.5
    caps = np.array([5.0, 2.0])
    steps = np.unique(np.round(np.geomspace(30, 1500, 13)).astype(int))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    data: dict[str, Any] = {"p": p, "b": b, "lr": lr, "threshold": tau, "steps": steps,
                            "curves": []}
    # exact onsets, both clips in one vectorised bisection per budget: (len(steps), 2)
    onsets = _r([_budget.finite_budget_onset(p, b, caps, int(t), lr, threshold=tau)
                 for t in steps])
    for j, (c, color) in enumerate(zip(caps, ("tab:blue", "tab:orange"), strict=True)):
        onset = onsets[:, j]
        fin = np.isfinite(onset)
        lam_inf = float(_r(_budget.asymptotic_onset(p, b, c, threshold=tau)))
        ext = [_budget.budget_extension(p, b, c, int(t), lr, threshold=tau, lambda_T=v)
               for t, v in zip(steps[fin], onset[fin], strict=True)]
        ok = np.array([bool(e.in_range) for e in ext], dtype=bool)
        pred_t = 2 * steps[fin][ok]
        pred_l = _r([float(e.lambda_2T) for e, keep in zip(ext, ok, strict=True) if keep])
        res = _bernoulli.solve(p, b, c)
        ax.plot(steps[fin], onset[fin], "o-", color=color, ms=4,
                label=f"$\\lambda_T$, $c={c:g}$ (exact, Euler map)")
        ax.plot(pred_t, pred_l, "x", color=color, ms=7,
                label=f"forecast $\\lambda_{{2T}}$ from $\\lambda_T$ (where valid), $c={c:g}$")
        ax.axhline(lam_inf, color=color, ls="--", lw=1.0,
                   label=f"$\\lambda_\\infty = {lam_inf:.3f}$ ($T\\to\\infty$), $c={c:g}$")
        ax.axhline(res.lambda_collapse, color=color, ls=":", lw=1.0)
        data["curves"].append({"c": c, "lambda_T": onset, "lambda_inf": lam_inf,
                               "forecast_steps": pred_t, "forecast_lambda_2T": pred_l,
                               "regime": str(ext[0].regime) if ext else "never",
                               "lambda_star": res.lambda_star,
                               "lambda_collapse": res.lambda_collapse})
    ax.set_xscale("log")
    ax.set_xlabel("step budget $T$ (Euler steps of size $\\eta = 0.5$)")
    ax.set_ylabel("observed onset $\\lambda_T$ (modal mass $m_T \\leq 1/2$)")
    ax.set_title(f"Finite-budget onset, softening $p={p:g}$, $b={b:g}$ "
                 "(dotted: $\\lambda_{collapse}$)")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9)
    return fig, data


# --- 4. K-ary example ---------------------------------------------------------------------
def kary() -> tuple[Figure, dict[str, Any]]:
    """K = 8: the K-ary max/min importance ratio at pi_lambda and the aggregated Bernoulli."""

    t = np.array([0.9993, 3e-4, 1.5e-4, 1e-4, 8e-5, 5e-5, 4e-5, 3e-5])
    r = np.array([0.5, 0.2, 0.1, 0.08, 0.05, 0.035, 0.02, 0.015])
    t, r = t / t.sum(), r / r.sum()
    c = 5.0
    full = _kary.solve_kary(t, r, c)
    red = _kary.reduction(t, r, 0, c)
    lam = np.linspace(1.0, 1.0 + 1.5 * (float(red.lambda_star_aggregated) - 1.0), 400)
    pi = _kary.kary_fixed_point(t, r, lam)  # (n, K)
    ratio = t / pi
    r_max, r_min = _r(ratio.max(axis=-1)), _r(ratio.min(axis=-1))
    m_e = _bernoulli.fixed_point(t[0], r[0], lam)
    tail_e = _bernoulli.fixed_point(t[0], r[0], lam, complement=True)
    agg_tail = _r((1.0 - t[0]) / tail_e)
    agg_mode = _r(t[0] / m_e)
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    ax0, ax1 = fig.subplots(1, 2, width_ratios=[1, 1.6])
    idx = np.arange(t.size)
    ax0.bar(idx - 0.2, t, width=0.4, label="teacher $t_k$")
    ax0.bar(idx + 0.2, r, width=0.4, label="warm start $r_k$")
    ax0.set_yscale("log")
    ax0.set_xticks(idx, ["valid"] + [f"{k}" for k in range(1, t.size)])
    ax0.set_xlabel("class $k$ (0 = contract-valid token)")
    ax0.set_ylabel("probability (log scale)")
    ax0.set_title("K = 8 listwise position")
    ax0.legend()
    ax1.plot(lam, r_max, color="tab:blue", label="K-ary $\\max_k t_k/\\pi_{\\lambda,k}$")
    ax1.plot(lam, agg_tail, color="tab:blue", ls="--",
             label="aggregated: $(1-t_E)/(1-m_\\lambda)$")
    ax1.plot(lam, r_min, color="tab:purple", label="K-ary $\\min_k t_k/\\pi_{\\lambda,k}$")
    ax1.plot(lam, agg_mode, color="tab:purple", ls="--", label="aggregated: $t_E/m_\\lambda$")
    ax1.axhline(c, color="k", lw=0.9, label=f"clip $c={c:g}$, $c_{{low}}=1/c$")
    ax1.axhline(1.0 / c, color="k", lw=0.9)
    ls_k, ls_a = float(red.lambda_star_kary), float(red.lambda_star_aggregated)
    ax1.axvline(ls_k, color="tab:blue", ls=":", lw=1.0)
    ax1.axvline(ls_a, color="tab:blue", ls="-.", lw=1.0)
    trans = ax1.get_xaxis_transform()
    ax1.text(ls_k, 0.5, f"$\\lambda^*_K={ls_k:.4f}$ ", transform=trans, ha="right", fontsize=8)
    ax1.text(ls_a, 0.3, f" $\\lambda^*_{{agg}}={ls_a:.4f}$", transform=trans, ha="left",
             fontsize=8)
    ax1.set_yscale("log")
    ax1.set_xlabel("extrapolation coefficient $\\lambda$")
    ax1.set_ylabel("importance ratio at the fixed point")
    ax1.set_title(f"error {float(red.error):.2g} $\\leq$ bound {float(red.bound):.2g} "
                  f"(calibration gap $\\sigma={float(red.sigma):.2g}$)")
    ax1.legend(fontsize=7, loc="upper left", framealpha=0.9)
    data = {"teacher": _r(t), "reference": _r(r), "c": c, "lam": _r(lam), "max_ratio": r_max,
            "min_ratio": r_min, "aggregated_tail_ratio": agg_tail,
            "aggregated_mode_ratio": agg_mode, "lambda_star_kary": _r(ls_k),
            "lambda_star_aggregated": _r(ls_a), "lambda_collapse_kary":
            _r(full.lambda_collapse), "error": _r(red.error), "bound": _r(red.bound),
            "sigma": _r(red.sigma), "calibrated": bool(red.calibrated)}
    return fig, data


# --- 5. parse rate ------------------------------------------------------------------------
def parse_rate() -> tuple[Figure, dict[str, Any]]:
    """Predicted strict parse rate of a 12-position JSON sequence against lambda."""

    p, b, c = SEQUENCE_P, SEQUENCE_B, 5.0
    res = _bernoulli.solve(p, b, c)
    soft = p < b
    lc_soft = float(np.min(np.asarray(res.lambda_collapse)[soft]))
    lam = np.unique(np.concatenate([np.linspace(1.0, 1.25 * lc_soft, 700),
                                    np.asarray(res.lambda_star)[soft],
                                    np.asarray(res.lambda_collapse)[soft]]))
    lam = lam[lam <= 1.25 * lc_soft]
    rate = _r(_sequence.predict_parse_rate(lam, p, b, c))
    per = _r(_bernoulli.clipped_fixed_point(p, b, c, lam[:, None]))
    cliff_seq = float(_r(_sequence.sequence_cliff(p, b, c)))
    fig = Figure(figsize=(6.6, 4.2), layout="constrained")
    ax = fig.subplots()
    for i in np.flatnonzero(soft):
        ax.plot(lam, per[:, i], color="tab:gray", lw=0.8, alpha=0.8,
                label="softening positions $m_i(\\lambda)$" if i == np.flatnonzero(soft)[0]
                else None)
    ax.plot(lam, rate, color="tab:blue", lw=2.2,
            label=f"predicted parse rate $\\prod_i m_i(\\lambda)$, $L={p.size}$")
    ax.axvline(cliff_seq, color="tab:red", ls="--", lw=1.0,
               label=f"sequence cliff (rate halves): $\\lambda={cliff_seq:.3f}$")
    ax.axvline(lc_soft, color="tab:red", ls=":", lw=1.0,
               label=f"first softening $\\lambda_{{collapse}}={lc_soft:.3f}$")
    for v in np.asarray(res.lambda_star)[soft]:
        ax.plot([v], [1.02], marker="v", color="k", ms=4, clip_on=False)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("extrapolation coefficient $\\lambda$  (triangles: positions' $\\lambda^*$)")
    ax.set_ylabel("strict parse rate / modal mass")
    ax.set_title(f"Sequence calibration: {int(soft.sum())} softening, "
                 f"{int((~soft).sum())} sharpening positions, $c={c:g}$")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.9)
    data = {"p": p, "b": b, "c": c, "lam": _r(lam), "parse_rate": rate,
            "per_position": per.T, "lambda_star": _r(res.lambda_star),
            "lambda_collapse": _r(res.lambda_collapse), "sequence_cliff": cliff_seq}
    return fig, data


FIGURES: dict[str, Callable[[], tuple[Figure, dict[str, Any]]]] = {
    "phase_diagram": phase_diagram,
    "fixed_point": fixed_point,
    "budget_onset": budget_onset,
    "kary": kary,
    "parse_rate": parse_rate,
}
"""name -> function returning ``(figure, plotted numbers)``."""


def make_all(out: str | os.PathLike[str] = "figures") -> list[Path]:
    """Regenerate every figure as ``<out>/<name>.png``, ``<out>/<name>.pdf`` and
    ``<out>/data/<name>.json`` (atomic writes, deterministic bytes).

    Parameters
    ----------
    out : path
        Output folder (created if missing).

    Returns
    -------
    list of Path
        The files written, three per figure, in :data:`FIGURES` order.
    """
    out = Path(out)
    written: list[Path] = []
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        for name, build in FIGURES.items():
            fig, data = build()
            written.append(atomic.save_figure(fig, out / f"{name}.png", dpi=150,
                                           metadata=_PNG_META))
            written.append(atomic.save_figure(fig, out / f"{name}.pdf", metadata=_PDF_META))
            written.append(atomic.write_json(out / "data" / f"{name}.json",
                                          {"figure": name, **data}))
    return written
