"""``python -m validate.llm_check.summary``: the reports of several units as one Markdown table,
and compact copies of them for the repository.

``python -m validate.llm_check.summary runs/registered`` prints, for every ``report.json``
(or archived ``*.report.json``) under the folder, the gate, the sealed prediction's sha256,
the predicted windows and every test's measured interval and verdict, null predictors and
direction included.  With ``--archive DIR`` it also writes ``<config>_w<seed>.report.json``
into ``DIR``: the report without the per-update training histories (the evaluations at T
and 2T, the tests and the per-seed curves stay).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cliff.internal import write_json

__all__ = ["compact", "row", "table"]

COLUMNS = ("configuration, warm seed", "gate", "prediction sha256", "two-class window",
           "by-token window", "(a) onset interval",
           "(a) verdicts: two-class, by-token; nulls",
           "(b) shift: predicted, measured [90%]", "(b)",
           "(c) shift: predicted, measured [90%]", "(c)",
           "no-clip control", "direction as predicted", "wall time")


def compact(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without the runs' per-update histories and final states (the last of
    ``evals`` holds the same evaluation)."""
    runs = [{k: v for k, v in r.items() if k not in ("history", "final")}
            for r in report.get("runs", [])]
    return {**report, "runs": runs} if "runs" in report else dict(report)


def _num(x: Any, digits: int = 4) -> str:
    x = float(x)
    return "none" if math.isinf(x) and x > 0 else ("-" if math.isnan(x) else f"{x:.{digits}f}")


def _pair(v: Any) -> str:
    return f"[{_num(v[0])}, {_num(v[1])}]" if v else "-"


def _shift(test: dict[str, Any]) -> str:
    if "shift_interval" not in test:
        return "-"
    return f"{_num(test['predicted'], 3)}, {_num(test['shift'], 3)} {_pair(test['shift_interval'])}"


def row(report: dict[str, Any]) -> list[str]:
    """The table's cells for one report (see ``COLUMNS``)."""
    meas, tests = report.get("measurement") or {}, report["tests"]
    wins = meas.get("windows", {})
    a = tests["cliff_interval"]
    gate = report["gate"]
    gate_cell = ("passed" if gate["passed"] else "failed") + f" (attempt {gate['attempts']})"
    if gate["passed"]:
        verdicts = ", ".join(a["verdicts"].get(k, "-") for k in ("two_class", "by_token"))
        nulls = ", ".join(f"{k} {v}" for k, v in a["null_verdicts"].items())
        a_cells = [_pair(a["interval"]), f"{verdicts}; {nulls}"]
        ctrl = report["control"]
        control = "no onset" if ctrl["cliff_disappeared"] else f"onset {_num(ctrl['onset'])}"
        direction = str(report["direction"].get("happened"))
    else:
        a_cells, control, direction = ["-", "VOID"], "-", "-"
    unit = f"{report['configuration']} {report['warm_seed']}"
    return [unit, gate_cell, report["prediction_sha256"][:12],
            _pair(wins.get("two_class")), _pair(wins.get("by_token")), *a_cells,
            _shift(tests["budget_extension"]), tests["budget_extension"]["verdict"],
            _shift(tests["clip_cross_prediction"]), tests["clip_cross_prediction"]["verdict"],
            control, direction, f"{report.get('wall_time_s', math.nan) / 60:.1f} min"]


def table(reports: Iterable[dict[str, Any]]) -> str:
    """A Markdown table, one row per report."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in reports]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.summary",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+",
                    help="folders searched for report.json (and archived *.report.json)")
    ap.add_argument("--archive", help="write compact copies of the reports here")
    ns = ap.parse_args(argv)
    paths = sorted(p for f in ns.folders for p in Path(f).rglob("*report.json"))
    if not paths:
        raise FileNotFoundError(f"no report.json under {ns.folders}")
    reports = [json.loads(p.read_text()) for p in paths]
    if ns.archive:
        for r in reports:
            write_json(Path(ns.archive) / f"{r['configuration']}_w{r['warm_seed']}.report.json",
                       compact(r))
    text = table(reports)
    print(text)
    return text


if __name__ == "__main__":
    main()
