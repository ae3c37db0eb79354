r"""The result of :func:`cliff.calibrate`: per-label thresholds, the binding label, the
predicted parse rate, a recommended lambda, and their JSON, Markdown and PNG forms.

Pooling.  A label's ``p`` is the mean over its positions of the teacher's valid mass,
``log p = logsumexp_i log p_i - log n`` with the complement ``log(1 - p)`` pooled the same
way from the positions' rest masses (no cancellation), and likewise ``b``.  Its two-class
thresholds are :func:`cliff.solve_kary_log` of ``(p, 1 - p)`` against ``(b, 1 - b)``
(:func:`cliff.solve` where both are representable, exact where ``p`` rounds to 1).  Its
by-token thresholds are order statistics (numpy ``method="lower"``) of
:func:`cliff.lambda_star_by_token` over its positions.

Binding and recommendation.  Each label's threshold is the ``quantile`` (default 5%) of its
by-token lambda*, the estimator that matched the real-model check (README) and the one
:class:`cliff.LambdaScheduler` bounds; the *binding* label has the smallest, and the
recommended lambda is ``1 + (1 - margin)(threshold - 1)``, the scheduler's rule
(``cliff._schedule.scheduler.safe_lambda``: the margin is a share of the headroom).

Parse rate.  ``prod_l m_l(lambda)^{k_l}``: ``m_l`` is :func:`cliff.predict_parse_rate` of
label ``l`` alone and ``k_l`` its positions per complete answer (per rollout where no
rollout completed).  Labels whose ``p`` or ``b`` rounds to 0 or 1 in float64 are left out
(``m = 1`` for them) and listed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from cliff._schedule.scheduler import safe_lambda
from cliff._theory.kary import solve_kary_log
from cliff._theory.sequence import log_parse_rate
from cliff._util.atomic import jsonable, save_figure, write_json, write_text

__all__ = ["Calibration", "CalibrationWarning", "LabelStats", "Measurements"]

FloatArray = NDArray[np.float64]

_REGIMES = ("softening", "neutral", "sharpening")
_SIDES = {0: "mode", 1: "tail", -1: "none"}


FEW_ENTERED = 0.1
"""Share of rollouts under which a calibration warns that few entered the contract."""


class CalibrationWarning(UserWarning):
    """A calibration that ran, but on evidence the user should know is thin (few or no
    rollouts entered the contract)."""


def entry_warning(n: int, entered: int, kind: str) -> str | None:
    """The warning a calibration of ``n`` rollouts, ``entered`` of them inside the contract
    at their first token, carries; ``None`` when enough entered."""
    if entered >= max(1, FEW_ENTERED * n):
        return None
    return (f"only {entered} of {n} rollouts entered the contract (their first token is valid "
            f"for this {kind}); lambda* rests on the first answer position alone for the "
            f"others: check the prompt format (a chat model may need chat_template / "
            f"--chat-template) or the contract")


@dataclass(frozen=True)
class Measurements:
    """Every measured position, shape ``(N,)`` each, in the order they were measured.

    ``log_p``, ``log_p_rest`` (teacher) and ``log_b``, ``log_b_rest`` (reference) are the
    log masses of the contract-valid class and of the rest (:func:`cliff.estimate`);
    ``by_token`` is :func:`cliff.lambda_star_by_token`; ``rollout`` and ``step`` say where
    the position is; ``complete`` is whether its rollout ended a complete document.
    """

    labels: NDArray[np.str_]
    rollout: NDArray[np.int64]
    step: NDArray[np.int64]
    log_p: FloatArray
    log_p_rest: FloatArray
    log_b: FloatArray
    log_b_rest: FloatArray
    by_token: FloatArray
    complete: NDArray[np.bool_]


@dataclass(frozen=True)
class LabelStats:
    """One label's pooled masses and thresholds (module docstring)."""

    label: str
    n: int
    per_answer: float
    log_p: float
    log_p_rest: float
    log_b: float
    log_b_rest: float
    lambda_star: float
    lambda_collapse: float
    regime: str
    binding: str
    by_token_q05: float
    by_token_median: float
    by_token_min: float

    @property
    def p(self) -> float:
        return math.exp(self.log_p)

    @property
    def b(self) -> float:
        return math.exp(self.log_b)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "n": self.n, "per_answer": self.per_answer,
                "p": self.p, "b": self.b, "p_rest": math.exp(self.log_p_rest),
                "b_rest": math.exp(self.log_b_rest), "lambda_star": self.lambda_star,
                "lambda_collapse": self.lambda_collapse, "regime": self.regime,
                "binding": self.binding, "by_token_q05": self.by_token_q05,
                "by_token_median": self.by_token_median, "by_token_min": self.by_token_min}


@dataclass(frozen=True)
class Calibration:
    """lambda* of a teacher and a warm start on an output contract, per position label.

    Attributes
    ----------
    c, c_low : float
        The IS clip the thresholds are for.
    margin, quantile : float
        Recommendation rule (module docstring).
    positions : list of LabelStats
        One per label, the binding label first, then by increasing threshold.
    binding : str or None
        The label with the smallest by-token ``quantile`` (``None``: no finite threshold).
    recommended_lambda : float
        ``1 + (1 - margin)(threshold - 1)`` at the binding label; ``inf`` when none.
    lambdas, parse_rate : ndarray, shape ``(G,)``
        Predicted strict parse rate against lambda; ``parse_rate_left_out`` the labels left
        out of it.
    measurements : Measurements
        Every position measured.
    rollouts : dict
        ``n``, ``entered``, ``complete``, ``left`` and ``open`` counts.
    timings : dict
        Seconds spent sampling, scoring (teacher and reference forwards), in the contract
        and in the estimate.
    info : dict
        What was calibrated (contract, models, settings), written with the result.
    """

    c: float
    c_low: float
    margin: float
    quantile: float
    positions: list[LabelStats]
    binding: str | None
    recommended_lambda: float
    lambdas: FloatArray
    parse_rate: FloatArray
    parse_rate_left_out: list[str]
    measurements: Measurements
    rollouts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_measurements(cls, m: Measurements, *, c: float, c_low: float, margin: float,
                          quantile: float, rollouts: dict[str, int],
                          timings: dict[str, float] | None = None,
                          info: dict[str, Any] | None = None) -> Calibration:
        """Pool ``m`` by label and apply the rules of the module docstring."""

        n_complete = int(rollouts.get("complete", 0))
        rows = [_pool(lab, m, c, c_low, quantile, n_complete, int(rollouts["n"]))
                for lab in dict.fromkeys(m.labels.tolist())]
        rows.sort(key=lambda r: (r.by_token_q05, r.lambda_star))
        finite = [r for r in rows if math.isfinite(r.by_token_q05)]
        binding = finite[0].label if finite else None
        rec = (float(safe_lambda(math.inf, np.array(finite[0].by_token_q05), np.array(True),
                                 margin)) if finite else math.inf)
        lambdas = _grid(rows)
        rate, left_out = _parse_rate(rows, lambdas, c, c_low)
        return cls(c, c_low, margin, quantile, rows, binding, rec, lambdas, rate, left_out,
                   m, dict(rollouts), dict(timings or {}), dict(info or {}))

    def row(self, label: str) -> LabelStats:
        """The statistics of one label."""
        for r in self.positions:
            if r.label == label:
                return r
        raise KeyError(f"label: no position is labelled {label!r}; labels are "
                       f"{[r.label for r in self.positions]}")

    # -----------------------------------------------------------------------------------------
    # renderings

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types; written with non-finite thresholds as ``"inf"`` (the
        package's JSON convention, :func:`cliff.read_json`)."""
        return jsonable({
            "c": self.c, "c_low": self.c_low, "margin": self.margin, "quantile": self.quantile,
            "binding": self.binding, "recommended_lambda": self.recommended_lambda,
            "positions": [r.to_dict() for r in self.positions],
            "parse_rate": {"lambdas": self.lambdas.tolist(),
                           "predicted": self.parse_rate.tolist(),
                           "left_out": list(self.parse_rate_left_out)},
            "rollouts": dict(self.rollouts), "timings_s": dict(self.timings),
            "rules": {
                "p, b": "mean over the label's positions of the valid-class mass "
                        "(cliff.estimate, log space)",
                "lambda_star, lambda_collapse": "cliff.solve_kary_log of (p, 1-p) vs (b, 1-b)",
                "by_token_*": "order statistics of cliff.lambda_star_by_token over the "
                              "label's positions",
                "binding": f"the label with the smallest by_token {self.quantile:g} quantile",
                "recommended_lambda": f"1 + (1 - {self.margin:g}) x (that quantile - 1)",
                "parse_rate": "prod over labels of m_label(lambda)^(positions per complete "
                              "answer), m from cliff.predict_parse_rate",
            },
            "info": self.info,
        })

    def markdown(self) -> str:
        """The table a person reads first: the binding label on top."""
        lines = [f"# lambda* calibration (c = {self.c:g}, c_low = {self.c_low:g})", ""]
        if self.binding is None:
            lines.append("No finite threshold: no lambda leaves the clip-safe region "
                         "(teacher and reference agree at every position).")
        else:
            lines.append(f"**Recommended lambda: {self.recommended_lambda:.4g}**: "
                         f"{self.margin:.0%} of the headroom below the by-token "
                         f"{self.quantile:.0%} quantile of lambda* at the binding position "
                         f"`{self.binding}`.")
        r = self.rollouts
        warning = entry_warning(r["n"], r["entered"], self.info.get("contract", {}).get(
            "kind", "contract").replace("_", " "))
        if warning:
            lines += ["", f"> **Warning**: {warning}."]
        lines += ["", f"{r['n']} rollouts: {r['entered']} entered the contract, "
                      f"{r['complete']} completed a document, {r['left']} left it, "
                      f"{r['open']} were cut by the token limit.", "",
                  "| position | n | p (teacher) | b (reference) | regime | lambda* | "
                  "lambda_collapse | by-token q05 | by-token median |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in self.positions:
            name = f"**`{s.label}`**" if s.label == self.binding else f"`{s.label}`"
            lines.append(
                f"| {name} | {s.n} | {_mass(s.log_p, s.log_p_rest)} | "
                f"{_mass(s.log_b, s.log_b_rest)} | {s.regime} ({s.binding}) | "
                f"{_lam(s.lambda_star)} | {_lam(s.lambda_collapse)} | {_lam(s.by_token_q05)} | "
                f"{_lam(s.by_token_median)} |")
        lines += ["", "p, b: mean valid-class mass at the position; lambda*, lambda_collapse: "
                      "two-class thresholds of those means; by-token: lambda* of each context "
                      "with every valid token its own class; `none`: no threshold."]
        return "\n".join(lines) + "\n"

    def figure(self) -> Any:
        """lambda* per label (two-class and by-token) and the predicted parse rate."""
        from matplotlib.figure import Figure

        shown = self.positions[:30]
        fig = Figure(figsize=(11, max(3.5, 0.28 * len(shown) + 1.5)))
        ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
        y = np.arange(len(shown))[::-1]
        top = float(self.lambdas[-1])
        for yi, s in zip(y, shown, strict=True):
            q, med = (min(v, top) for v in (s.by_token_q05, s.by_token_median))
            ax.plot([q, med], [yi, yi], color="tab:green", lw=2.5, alpha=0.6)
            ax.plot([q], [yi], "o", color="tab:green", ms=4)
            if math.isfinite(s.lambda_star):
                ax.plot([min(s.lambda_star, top)], [yi], "x", color="tab:red", ms=6)
        ax.plot([], [], "x", color="tab:red", label="two-class lambda*")
        ax.plot([], [], "-o", color="tab:green", label="by-token q05 .. median")
        if math.isfinite(self.recommended_lambda):
            for a in (ax, ax2):
                a.axvline(self.recommended_lambda, color="k", ls="--", lw=1)
        ax.set_yticks(y, [s.label for s in shown], fontsize=7)
        ax.set_xlim(1.0, top)
        ax.set_xlabel(f"lambda (right edge: {top:.3g} or more)")
        ax.set_title("lambda* per position")
        ax.legend(fontsize=7, loc="lower right")
        ax2.plot(self.lambdas, self.parse_rate, color="tab:blue")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_xlabel("lambda")
        ax2.set_ylabel("predicted strict parse rate")
        ax2.set_title("predicted parse rate (dashed: recommended)")
        for a in (ax, ax2):
            a.grid(alpha=0.25)
        fig.tight_layout()
        return fig

    def save(self, out: str | os.PathLike[str]) -> list[Path]:
        """Write ``calibration.json``, ``calibration.md`` and ``calibration.png`` into
        ``out``, each atomically."""

        folder = Path(out)
        return [write_json(folder / "calibration.json", self.to_dict()),
                write_text(folder / "calibration.md", self.markdown()),
                save_figure(self.figure(), folder / "calibration.png", dpi=110)]


# ---------------------------------------------------------------------------------------------
# pooling


def _pool(lab: str, m: Measurements, c: float, c_low: float, quantile: float, n_complete: int,
          n_rollouts: int) -> LabelStats:

    sel = m.labels == lab
    n = int(sel.sum())
    log_n = math.log(n)
    lp, lpr, lb, lbr = (float(logsumexp(x[sel]) - log_n)
                        for x in (m.log_p, m.log_p_rest, m.log_b, m.log_b_rest))
    res = solve_kary_log(np.array([lp, lpr]), np.array([lb, lbr]), c, c_low=c_low)
    odds = np.sign((lp - lpr) - (lb - lbr))
    regime = _REGIMES[int(odds) + 1]
    tok = np.sort(m.by_token[sel])
    per_answer = (int((sel & m.complete).sum()) / n_complete if n_complete
                  else n / max(n_rollouts, 1))
    return LabelStats(lab, n, per_answer, lp, lpr, lb, lbr, float(res.lambda_star),
                      float(res.lambda_collapse), regime, _SIDES[int(res.binding)],
                      float(np.quantile(tok, quantile, method="lower")),
                      float(np.quantile(tok, 0.5, method="lower")), float(tok[0]))


def _grid(rows: Sequence[LabelStats], points: int = 121) -> FloatArray:
    """``1 .. lam_max``, ``lam_max = clip(1 + 1.2 (largest finite by-token median - 1), 1.5,
    6)`` (2 when there is none): every label's by-token window in view."""
    finite = [r.by_token_median for r in rows if math.isfinite(r.by_token_median)]
    top = float(np.clip(1.0 + 1.2 * (max(finite) - 1.0), 1.5, 6.0)) if finite else 2.0
    return np.linspace(1.0, top, points)


def _parse_rate(rows: Sequence[LabelStats], lambdas: FloatArray, c: float, c_low: float
                ) -> tuple[FloatArray, list[str]]:

    used = [r for r in rows if r.per_answer > 0 and 0.0 < r.p < 1.0 and 0.0 < r.b < 1.0]
    left_out = [r.label for r in rows if r.per_answer > 0 and r not in used]
    if not used:
        return np.ones_like(lambdas), left_out
    p = np.array([[r.p] for r in used])
    b = np.array([[r.b] for r in used])
    log_m = log_parse_rate(lambdas, p, b, c, c_low=c_low)  # (G, L): one position each
    k = np.array([r.per_answer for r in used])
    return np.exp((log_m * k).sum(axis=-1)), left_out  # k > 0: -inf stays -inf


# ---------------------------------------------------------------------------------------------
# formatting


def _mass(log_x: float, log_rest: float) -> str:
    """``0.8731``; near 1 ``1 - 3.2e-05`` (the complement keeps the digits); near 0
    ``4.1e-07``."""
    if log_x > math.log(0.99):
        return f"1 - {math.exp(log_rest):.2g}"
    return f"{math.exp(log_x):.4f}" if log_x > math.log(0.01) else f"{math.exp(log_x):.2g}"


def _lam(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "none"
