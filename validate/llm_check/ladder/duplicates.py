r"""The collapse the binding-type model does not describe: repeated item ids.

On the sharpening check the answers that stopped parsing broke first at an item id, by
repeating one already used.  The id positions have their own two-class model: the valid
class is every id not yet used, the tail every other token (a repeated id almost always).
Where the teacher's id tail is larger than the warm start's (``p_id < b_id``: a teacher with
fewer SFT steps than the warm start repeats ids more often), extrapolation *softens* the ids:
it grows the tail there, and past the id type's own ``lambda_collapse`` the id contract itself
collapses.  Three predictors of the parse-rate onset follow from it, all from closed forms and
the lambda = 1 runs alone, registered before any ladder run past lambda = 1:

* ``id_two_class``: the id type's ``[lambda*, lambda_collapse]`` (:func:`cliff.solve` of the
  pooled id masses), the asymptotic onset;
* ``id_by_token``: the id type's by-token window ``[q05, median]``;
* ``id_clock``: the mean-field ``t``-step onset at the id type on the id type's own calibrated
  clock (:func:`cliff.finite_budget_onset` at the id masses with the id clock's step size and
  the threshold of :func:`validate.llm_check.plan.law_threshold`), one per budget ``t``.

Each is scored against the parse-rate onset interval at every budget with the ladder's nulls
(:func:`id_predictions`); a HIT shared by a null counts as INCONCLUSIVE.  Where ``p_id >
b_id`` (ids sharpen), the model predicts no id collapse, and the predictors are "never".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cliff
from validate.llm_check.ladder.design import LadderDesign
from validate.llm_check.plan import law_threshold

__all__ = ["ID_TYPE", "id_windows"]

ID_TYPE = "id"
"""the item-id position type"""


def id_windows(types: Sequence[Mapping[str, Any]], clocks: Sequence[Mapping[str, Any]],
               design: LadderDesign) -> dict[str, Any]:
    """The three id predictors (module docstring) of the parse-rate onset at each budget:
    ``{"regime": ..., "budgets": {t: {name: (lo, hi)}}, "why": ...}``, from the prediction's
    per-type rows ``types`` and the calibration's per-type ``clocks``."""
    row = next((r for r in types if r["type"] == ID_TYPE), None)
    if row is None:
        return {"defined": False, "why": "no id position was measured"}
    clock = next((c for c in clocks if c["type"] == ID_TYPE), {})
    p, b = float(row["p"]), float(row["b"])
    fixed: dict[str, tuple[float, float]] = {}
    lo, hi = (float(x) for x in row["two_class"])
    fixed["id_two_class"] = (lo, hi)
    if row["by_token"] is not None:
        fixed["id_by_token"] = (float(row["by_token"][0]), float(row["by_token"][1]))
    out: dict[str, Any] = {"defined": True, "p": p, "b": b, "regime": row["regime"],
                           "budgets": {}}
    for t in design.budgets:
        wins = dict(fixed)
        if clock.get("fitted"):
            try:
                x = float(cliff.finite_budget_onset(
                    p, b, design.c, t, float(clock["clock"]["eta"]), c_low=design.c_low,
                    threshold=law_threshold(p, b, design.c)))
                wins["id_clock"] = (x, x)
            except ValueError as err:  # the step size breaks the law's monotone bracket
                out["why_no_clock"] = str(err)
        out["budgets"][str(t)] = wins  # (inf, inf): the predictor says no onset
    return out
