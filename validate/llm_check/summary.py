"""``python -m validate.llm_check.summary``: the reports of several units as one Markdown table,
and compact copies of them for the repository.

``python -m validate.llm_check.summary runs/registered`` prints, for every ``report.json``
(or archived ``*.report.json``) under the folder, the gate, the sealed prediction's sha256,
the predicted windows and every test's measured interval and verdict, null predictors and
direction included.  With ``--archive DIR`` it also writes ``<config>_w<seed>.report.json``
into ``DIR``: the report without the per-update training histories (the evaluations at T
and 2T, the tests and the per-seed curves stay).  With ``--mechanism`` it prints instead the
mechanism of every report (:mod:`validate.llm_check.mechanism`), one row per main-grid lambda
and evaluated step, pooled over the OPD seeds: the tail mass per position type over the
clip-safe edge, the share of training tokens clipped at the cap and the floor, the first
violations of the failed answers by category and item index, and the mass at id positions
(``-`` for reports made before the mechanism was measured).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cliff.internal import write_json

__all__ = ["compact", "row", "table", "MECHANISM_COLUMNS", "mechanism_rows", "mechanism_table"]

COLUMNS = ("configuration, warm seed", "gate", "prediction sha256", "two-class window",
           "by-token window", "(a) onset interval",
           "(a) verdicts: two-class, by-token; nulls",
           "(b) onset at 2T (shift, if sealed before the test was absolute): predicted, "
           "measured [90%]", "(b) counted (own; nulls)",
           "(c) onset at c' (or shift): predicted, measured [90%]", "(c) counted (own; nulls)",
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


def _prediction(test: dict[str, Any]) -> str:
    """Test (b) or (c): the predicted and measured second onset (absolute tests), or the
    predicted and measured shift (reports sealed before the tests were absolute)."""
    if "second_interval" in test:
        return (f"onset {_num(test['predicted'], 3)}, {_num(test['onsets'][1], 3)} "
                f"{_pair(test['second_interval'])}")
    if "shift_interval" not in test:
        return "-"
    return (f"shift {_num(test['predicted'], 3)}, {_num(test['shift'], 3)} "
            f"{_pair(test['shift_interval'])}")


def _verdict(test: dict[str, Any]) -> str:
    """The counted verdict, with the predictor's own and its nulls' where they differ."""
    nulls = test.get("null_verdicts")
    if not isinstance(nulls, dict) or not nulls:
        return str(test["verdict"])
    listed = ", ".join(f"{k} {v}" for k, v in nulls.items())
    return f"{test['verdict']} (own {test['own_verdict']}; {listed})"


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
            _prediction(tests["budget_extension"]), _verdict(tests["budget_extension"]),
            _prediction(tests["clip_cross_prediction"]), _verdict(tests["clip_cross_prediction"]),
            control, direction, f"{report.get('wall_time_s', math.nan) / 60:.1f} min"]


def table(reports: Iterable[dict[str, Any]]) -> str:
    """A Markdown table, one row per report."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in reports]
    return "\n".join(lines)


MECHANISM_COLUMNS = ("configuration, warm seed", "lambda", "step", "parse rate",
                     "tail / clip-safe edge, by type", "clipped at cap, floor",
                     "first violation: duplicate id, premature ], separator for id, "
                     "early end, other", "failures by item index",
                     "id-position mass: fresh, duplicate, ], separator, end, other")


def _share(x: Any) -> str:
    x = float(x)
    return "-" if math.isnan(x) else f"{100 * x:.2f}%"


def _ratio(x: Any) -> str:
    x = float(x)
    return "-" if math.isnan(x) else f"{x:.3g}"


def mechanism_rows(report: dict[str, Any]) -> list[list[str]]:
    """The mechanism table's rows of one report (see ``MECHANISM_COLUMNS``): the main runs,
    one row per lambda and evaluated step; one row of ``-`` when the report has none."""
    unit = f"{report['configuration']} {report['warm_seed']}"
    rows = [r for r in (report.get("mechanism") or {}).get("rows", []) if r["kind"] == "main"]
    if not rows:
        return [[unit] + ["-"] * (len(MECHANISM_COLUMNS) - 1)]
    out = []
    for r in rows:
        masses = r["masses"]
        tails = ", ".join(f"{ty} {_ratio(m.get('tail_over_edge', math.nan))}"
                          for ty, m in masses.items())
        clip = r.get("clip_share")
        clipped = f"{_share(clip['cap_share'])}, {_share(clip['floor_share'])}" if clip else "-"
        f = r["failures"]
        cats = ", ".join(str(f["categories"].get(c, 0)) for c in
                         ("duplicate_id", "premature_close", "separator_for_id", "early_end",
                          "other"))
        by_index = [sum(v[i] for v in f["by_item_index"].values())
                    for i in range(max((len(v) for v in f["by_item_index"].values()),
                                       default=0))]
        index_cell = " ".join(f"{i}:{n}" for i, n in enumerate(by_index) if n) or "none"
        mass = r["id_positions"]["mass"]
        id_cell = ", ".join(_num(mass.get(c, math.nan), 3) for c in
                            ("fresh_id", "duplicate_id", "close", "separator", "end", "other"))
        out.append([unit, _num(r["lam"]), str(r["step"]), _num(r["parse_rate"], 3), tails,
                    clipped, f"{cats} (of {f['failed']} failed)", index_cell, id_cell])
    return out


def mechanism_table(reports: Iterable[dict[str, Any]]) -> str:
    """A Markdown table of the reports' mechanisms (``MECHANISM_COLUMNS``)."""
    lines = ["| " + " | ".join(MECHANISM_COLUMNS) + " |", "|" + "---|" * len(MECHANISM_COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for r in reports for cells in mechanism_rows(r)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.summary",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+",
                    help="folders searched for report.json (and archived *.report.json)")
    ap.add_argument("--archive", help="write compact copies of the reports here")
    ap.add_argument("--mechanism", action="store_true",
                    help="print the mechanism table instead (one row per main-grid lambda "
                         "and step)")
    ns = ap.parse_args(argv)
    paths = sorted(p for f in ns.folders for p in Path(f).rglob("*report.json"))
    if not paths:
        raise FileNotFoundError(f"no report.json under {ns.folders}")
    reports = [r for r in (json.loads(p.read_text()) for p in paths)
               if "cliff_interval" in r.get("tests", {})]  # ladder reports: ladder.summary
    if not reports:
        raise FileNotFoundError(f"no report of the main check under {ns.folders} (ladder "
                                f"reports are tabled by validate.llm_check.ladder.summary)")
    if ns.archive:
        for r in reports:
            write_json(Path(ns.archive) / f"{r['configuration']}_w{r['warm_seed']}.report.json",
                       compact(r))
    text = mechanism_table(reports) if ns.mechanism else table(reports)
    print(text)
    return text


if __name__ == "__main__":
    main()
