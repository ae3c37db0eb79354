"""The figure of one unit's report (``cliff_llm.png``): parse rate and NDCG@1 of the parsed
answers against lambda, one marker per OPD seed, with the predicted windows and the onset
interval of test (a) (:mod:`validate.llm_check.preregistered_tests`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["figure"]


def figure(report: Mapping[str, Any]) -> Figure:
    """Two panels (parse rate, NDCG@1) against lambda at T steps; a VOID report gets one panel
    that says why."""
    title = f"{report['configuration']} (warm seed {report['warm_seed']})"
    if "per_seed" not in report:
        fig = Figure(figsize=(6, 2))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.0, 0.5, f"{title}\n{report.get('summary', 'VOID')}"[:400], wrap=True,
                fontsize=8, va="center")
        return fig
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
