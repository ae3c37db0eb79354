"""Onset analysis and the figure: parse rate and NDCG@1 against lambda, predicted window shaded.

Definition used throughout: a lambda *breaks* when its strict parse rate (mean over seeds)
falls below ``break_fraction`` (default 1/2) times the parse rate at lambda = 1.  The observed
onset interval is ``(last lambda below the first break that keeps, first lambda that breaks]``.
It is *consistent* with the locked window ``[lambda*, lambda_collapse]`` when the two
intervals intersect, and *resolved inside* it when the onset interval lies within the window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def onset(lambdas: list[float], parse_rates: list[float], break_fraction: float) -> dict[str, Any]:
    """Observed onset interval from parse rates in increasing lambda (``lambdas[0] = 1``)."""
    ref = parse_rates[0]
    threshold = break_fraction * ref
    breaks = [r < threshold for r in parse_rates]
    first = next((i for i, b in enumerate(breaks) if b), None)
    out: dict[str, Any] = {"reference_parse_rate": ref, "threshold": threshold, "breaks": breaks}
    if first is None:
        out.update(last_keep=lambdas[-1], first_break=math.inf, found=False)
    elif first == 0:
        out.update(last_keep=math.nan, first_break=lambdas[0], found=False)
    else:
        out.update(last_keep=lambdas[first - 1], first_break=lambdas[first], found=True)
    out["monotone"] = all(breaks[first:]) if first is not None else True
    return out


def compare(interval: dict[str, Any], window: tuple[float, float]) -> dict[str, Any]:
    """Does the onset interval meet / lie inside the predicted window?"""
    lo, hi = interval["last_keep"], interval["first_break"]
    if not interval["found"]:
        return {"consistent": False, "resolved_inside": False,
                "reason": "no break inside the sweep" if math.isinf(hi) else "breaks at lambda=1"}
    w_lo, w_hi = window
    return {"consistent": bool(lo <= w_hi and hi >= w_lo),
            "resolved_inside": bool(lo >= w_lo and hi <= w_hi)}


def figure(report: dict[str, Any]) -> Any:
    """Parse rate and NDCG@1 vs lambda, one column per configuration, window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(report["configurations"])
    fig, axes = plt.subplots(2, len(configs), figsize=(5 * len(configs), 6.5), squeeze=False)
    for j, name in enumerate(configs):
        res = report["configurations"][name]
        lams = np.array(res["lambdas"])
        w = res["prediction"]["window"]
        for i, (key, label) in enumerate([("parse_rate", "strict parse rate"),
                                          ("ndcg_at_1", "NDCG@1 (parsed)")]):
            ax = axes[i, j]
            per_seed = np.array(res["per_seed"][key], dtype=float)  # (S, L)
            for s, row in enumerate(per_seed):
                ax.plot(lams, row, "o", alpha=0.5, ms=4, label=f"seed {res['seeds'][s]}")
            finite = np.isfinite(per_seed)
            counts = finite.sum(axis=0)
            sums = np.where(finite, per_seed, 0.0).sum(axis=0)
            mean = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
            ax.plot(lams, mean, "k-", lw=1.5, label="mean over seeds")
            if np.isfinite(w[0]):
                hi = w[1] if np.isfinite(w[1]) else lams.max()
                ax.axvspan(w[0], max(hi, w[0] + 1e-3), color="tab:red", alpha=0.2,
                           label=f"two-class window [{w[0]:.3f}, {w[1]:.3f}]")
            tok = res["prediction"].get("by_token", {}).get("window")
            if tok and np.isfinite(tok[1]):
                ax.axvline(tok[1], color="tab:green", ls="--", lw=1,
                           label=f"by-token median {tok[1]:.3f}")
            sched = res.get("schedule")
            if i == 0 and sched:
                ax.axhline(sched["mean_parse_rate"], color="tab:purple", ls=":", lw=1.2,
                           label=f"scheduled, target {sched['target_lambda']:.2f}")
            on = res["onset"]
            if on["found"]:
                ax.axvspan(on["last_keep"], on["first_break"], color="tab:blue", alpha=0.1,
                           hatch="//", label="observed onset")
            ax.set_xlabel("lambda")
            ax.set_ylabel(label)
            ax.set_ylim(-0.03, 1.03)
            if i == 0:
                ax.set_title(name)
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
