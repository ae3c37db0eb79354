"""The figures of one unit's report: ``cliff_llm.png`` (:func:`figure`), parse rate and NDCG@1
of the parsed answers against lambda, one marker per OPD seed, with the predicted windows and
the onset interval of test (a) (:mod:`validate.llm_check.preregistered_tests`); and
``mechanism.png`` (:func:`mechanism_figure`), the mechanism of the main runs at T steps
(:mod:`validate.llm_check.mechanism`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["figure", "mechanism_figure"]


def _void(title: str, text: str) -> Figure:
    """One panel that says why there is nothing to draw."""
    fig = Figure(figsize=(6, 2))
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.0, 0.5, f"{title}\n{text}"[:400], wrap=True, fontsize=8, va="center")
    return fig


def figure(report: Mapping[str, Any]) -> Figure:
    """Two panels (parse rate, NDCG@1) against lambda at T steps; a VOID report gets one panel
    that says why."""
    title = f"{report['configuration']} (warm seed {report['warm_seed']})"
    if "per_seed" not in report:
        return _void(title, report.get("summary", "VOID"))
    ps = report["per_seed"]
    lams = np.array(ps["lambdas"], dtype=float)
    test_a = report["tests"]["cliff_interval"]
    colors = {"two_class": "tab:red", "by_token": "tab:green"}
    fig = Figure(figsize=(11, 4), layout="tight")
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "parse_rate", "strict parse rate"),
                           (axes[1], "ndcg_at_1", "NDCG@1 (parsed)")):
        rows = np.array(ps[key], dtype=float)  # (S, L)
        for s, row in zip(ps["seeds"], rows, strict=True):
            ax.plot(lams, row, "o-", alpha=0.5, ms=4, lw=0.8, label=f"seed {s}")
        for name, (lo, hi) in report["windows"].items():
            ax.axvspan(lo, max(hi, lo + 1e-3), color=colors.get(name, "tab:gray"), alpha=0.2,
                       label=f"{name} window [{lo:.3f}, {hi:.3f}]")
        lo, hi = (float(v) for v in test_a["interval"])
        if math.isfinite(lo):
            ax.axvspan(lo, min(hi, lams.max()), color="tab:blue", alpha=0.08, hatch="//",
                       label=f"onset interval (verdict {test_a['verdict']})")
        ax.set_xlabel("lambda")
        ax.set_ylabel(label)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    return fig


FAILURE_LABELS = {"duplicate_id": "duplicate id", "premature_close": "premature ]",
                  "separator_for_id": "separator for id", "early_end": "early end",
                  "other": "other"}
ID_MASS_LABELS = {"fresh_id": "fresh id", "duplicate_id": "duplicate id", "close": "]",
                  "separator": "separator", "end": "end", "other": "other"}


def mechanism_figure(report: Mapping[str, Any]) -> Figure:
    """Four panels against lambda, main runs at T steps pooled over seeds: the tail mass per
    position type over its clip-safe edge (log scale, 1 = the edge), the shares of training
    tokens clipped at the cap and the floor, the failed answers' first violations (share of
    all answers) and the mass at id positions by category; a report without a mechanism gets
    one panel that says why."""
    title = f"{report['configuration']} (warm seed {report['warm_seed']})"
    T = report.get("config", {}).get("opd_steps")
    rows = [r for r in (report.get("mechanism") or {}).get("rows", [])
            if r["kind"] == "main" and r["step"] == T]
    if not rows:
        return _void(title, "no mechanism measured: " + str(report.get("summary", "VOID")))
    lams = np.array([r["lam"] for r in rows], dtype=float)
    fig = Figure(figsize=(13, 8), layout="tight")
    (ax_t, ax_c), (ax_f, ax_i) = fig.subplots(2, 2)
    types = list(dict.fromkeys(ty for r in rows for ty in r["masses"]))
    for ty in types:
        y = [float(r["masses"].get(ty, {}).get("tail_over_edge", math.nan)) for r in rows]
        ax_t.plot(lams, y, "o-", ms=4, lw=1, label=ty)
    ax_t.axhline(1.0, color="k", lw=0.8, ls="--", label="clip-safe edge")
    ax_t.set_yscale("log")
    ax_t.set_ylabel("tail mass / (1 - region_high)")
    for key, label in (("cap_share", "clipped at the cap c"),
                       ("floor_share", "clipped at the floor c_low")):
        y = [100 * float(r.get("clip_share", {}).get(key, math.nan)) for r in rows]
        ax_c.plot(lams, y, "o-", ms=4, lw=1, label=label)
    ax_c.set_ylabel("training tokens clipped (%)")
    width = 0.8 * (float(np.min(np.diff(lams))) if lams.size > 1 else 0.1)
    for ax, labels, shares in (
            (ax_f, FAILURE_LABELS,
             [{c: r["failures"]["categories"].get(c, 0) / max(1, r["failures"]["answers"])
               for c in FAILURE_LABELS} for r in rows]),
            (ax_i, ID_MASS_LABELS,
             [{c: float(r["id_positions"]["mass"].get(c, math.nan)) for c in ID_MASS_LABELS}
              for r in rows])):
        bottom = np.zeros(lams.size)
        for c, label in labels.items():
            h = np.nan_to_num(np.array([sh[c] for sh in shares], dtype=float))
            ax.bar(lams, h, width, bottom=bottom, label=label)
            bottom += h
    ax_f.set_ylabel("answers, by first violation")
    ax_i.set_ylabel("mass at id positions")
    for ax in (ax_t, ax_c, ax_f, ax_i):
        ax.set_xlabel("lambda")
        ax.set_title(f"{title}, {T} steps", fontsize=9)
        ax.legend(fontsize=7)
    return fig
