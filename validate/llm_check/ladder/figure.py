"""The ladder's figure: at the binding type, the losing-class mass and its trend per rung,
measured and predicted on the calibrated clock, and the parse rate per rung and budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["ladder_figure"]


def ladder_figure(report: Mapping[str, Any]) -> Any:
    """Three panels (module docstring); an empty note where the ladder is incomplete."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    design = report["design"]
    lam = np.asarray(design["lambdas"])
    budgets = design["budgets"]
    bind = next((t for t in report["types"] if t["type"] == report["tests"]["ladder_binding"]
                 ["type"]), None)
    title = f"{report['configuration']} w{report['warm_seed']}"
    if bind is None or "pooled_log_mass" not in bind:
        for ax in axes:
            ax.text(0.5, 0.5, "ladder incomplete or VOID", ha="center", transform=ax.transAxes)
        fig.suptitle(title)
        return fig
    meas = np.asarray(bind["pooled_log_mass"], dtype=float)
    traj = bind.get("trajectory")
    for j, t in enumerate(budgets):
        (line,) = axes[0].plot(lam, meas[:, j] / math.log(10), "o-", label=f"{t} updates")
        if traj:
            axes[0].plot(lam, np.asarray(traj["predicted"], dtype=float)[:, j] / math.log(10),
                         "--", color=line.get_color())
    axes[0].set(xlabel="lambda", ylabel=f"log10 {bind['losing']} mass at {bind['type']}",
                title="measured (o) and calibrated clock (--)")
    axes[0].legend(fontsize=8)
    axes[1].plot(lam, bind["trends"], "o-", label="measured")
    if traj:
        pred = np.asarray(traj["predicted"], dtype=float)
        x = np.log(np.asarray(budgets, dtype=float))
        slope = np.polyfit(x, pred.T, 1)[0]
        axes[1].plot(lam, slope, "--", label="calibrated clock")
    axes[1].axhline(bind["trends"][0] - design["delta"], color="grey", lw=0.8,
                    label="lambda = 1 trend - delta")
    lo, hi = bind["windows"]["two_class"]
    axes[1].axvspan(lo, max(hi, lo + 1e-3), color="C3", alpha=0.3, label="two-class lambda*")
    if math.isfinite(bind["onset"]):
        axes[1].axvline(bind["onset"], color="k", ls=":", label="ladder onset")
    axes[1].set(xlabel="lambda", ylabel="trend of log mass over log T", title="trend per rung")
    axes[1].legend(fontsize=8)
    parse = report["pooled_parse_rate"]
    for t, rates in parse["by_budget"].items():
        axes[2].plot(parse["lambdas"], rates, "o-", label=f"{t} updates")
    axes[2].set(xlabel="lambda", ylabel="pooled strict parse rate", ylim=(0, 1.02),
                title="parse rate")
    axes[2].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
