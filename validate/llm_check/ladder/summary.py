"""``python -m validate.llm_check.ladder.summary FOLDER...``: the ladder units' reports as
markdown tables (the README's), one row per unit, read from each ``report.json`` and its
sealed ``calibration.json`` (or, in a folder of committed units such as
``validate/preregistered/ladder``, from each ``<unit>.report.json`` and
``<unit>.calibration.json``).

Tables: the ladder test at the binding type (:func:`ladder_rows`), the parse-rate onset at
each budget against the calibrated clock and the id predictors (:func:`onset_rows`), and the
mechanism at the last budget (:func:`mechanism_rows`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from validate.llm_check.resume import from_json

__all__ = ["load", "ladder_rows", "onset_rows", "mechanism_rows", "table", "main"]


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    x = float(x)
    if math.isinf(x):
        return "none" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def _interval(v: Sequence[Any]) -> str:
    return f"[{_f(v[0])}, {_f(v[1])}]"


def _unit(r: Mapping[str, Any]) -> str:
    return f"{r['configuration']} w{r['warm_seed']}"


def _read(report: Path, calibration: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    rep = from_json(json.loads(report.read_text(encoding="utf-8")))
    cal = (from_json(json.loads(calibration.read_text(encoding="utf-8")))["payload"]
           if calibration.exists() else {})
    return rep, cal


def load(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (report, calibration payload) pairs at ``path``: a unit's folder (``report.json``
    and ``calibration.json``), or a folder of committed units (``<unit>.report.json`` and
    ``<unit>.calibration.json``, in name order)."""
    if (path / "report.json").exists():
        return [_read(path / "report.json", path / "calibration.json")]
    reports = sorted(path.glob("*.report.json"))
    if not reports:
        raise FileNotFoundError(f"folders: {str(path)!r} holds no report.json and no "
                                f"<unit>.report.json")
    return [_read(r, r.with_name(r.name.replace(".report.", ".calibration."))) for r in reports]


def ladder_rows(units: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[list[str]]:
    """Per unit: gate, sha256s, binding type and its masses, lambda*, the by-token window,
    the clock (eta, rms, at a bound), its predicted onset, the measured ladder onset and
    interval, the verdicts (counted) and nulls, the control, the power."""
    rows = []
    for report, cal in units:
        bound = report.get("tests", {}).get("ladder_binding", {}).get("type")
        bind = next((t for t in report.get("types", []) if t["type"] == bound), None)
        clock: dict[str, Any] = next((t for t in cal.get("types", [])
                                      if bind and t["type"] == bind["type"]), {})
        fit = clock.get("clock", {})
        pw = clock.get("power", {})
        power = (f"cover {_f(pw.get('coverage'), 2)}, excl. -/+ {_f(pw.get('excludes_below'), 2)}"
                 f"/{_f(pw.get('excludes_above'), 2)}" if pw.get("defined") else
                 "undefined" if pw else "-")
        gate = "passed" if report["gate"]["passed"] else "failed"
        if bind is None:
            rows.append([_unit(report), gate, report["prediction_sha256"][:12], "-", "-", "-",
                         "-", "-", "-", "VOID", "-", "-", "-"])
            continue
        ctrl = bind.get("control") or {}
        rows.append([
            _unit(report), gate, report["prediction_sha256"][:12],
            f"{bind['type']} ({bind['losing']}; p {clock.get('p', float('nan')):.5f}, "
            f"b {clock.get('b', float('nan')):.4f})",
            _interval(bind["windows"]["two_class"]),
            _interval(bind["windows"]["by_token"]) if "by_token" in bind["windows"] else "-",
            f"{_f(fit.get('eta'), 3)} (rms {_f(fit.get('rms'), 2)}"
            f"{', at bound' if fit.get('at_bound') else ''})" if fit else "-",
            _f(bind.get("predicted_onset_calibrated")),
            "undefined (VOID)" if str(bind["verdict"]) == "VOID"
            else f"{_f(bind['onset'])} {_interval(bind['interval'])}",
            ", ".join(f"{k} {v}" for k, v in bind["counted"].items()),
            ", ".join(f"{k} {v}" for k, v in bind["null_verdicts"].items()),
            f"{_f(ctrl.get('onset'))} (pred. {_f(ctrl.get('predicted_onset_calibrated'))})"
            if ctrl else "-", power])
    return rows


LADDER_HEADER = ["unit", "gate", "prediction sha256", "binding type (losing class; masses)",
                 "two-class window", "by-token window", "clock eta (fit)",
                 "clock's ladder onset", "ladder onset [90%]", "verdicts (counted)", "nulls",
                 "no-clip control onset", "power"]


def onset_rows(units: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[list[str]]:
    """Per unit and budget: the clock's predicted parse-rate onset, the measured one with its
    interval, the counted verdict, and the id predictors' windows and counted verdicts."""
    rows = []
    for report, _ in units:
        for t, e in report.get("parse_onsets", {}).items():
            ids = e.get("id_predictors", {})
            idv = ", ".join(f"{k} {_interval(ids['windows'][k])} {v}"
                            for k, v in ids.get("counted", {}).items())
            rows.append([_unit(report), t, _f(e.get("predicted_onset")),
                         f"{_f(e.get('onset'))} {_interval(e['interval'])}"
                         if "interval" in e else "-",
                         str(e.get("counted", e.get("verdict"))),
                         ", ".join(f"{k} {v}" for k, v in e.get("null_verdicts", {}).items()),
                         idv or "-"])
    return rows


ONSET_HEADER = ["unit", "budget", "clock's parse onset", "measured parse onset [90%]",
                "verdict (counted)", "nulls", "id predictors (counted)"]


def mechanism_rows(units: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[list[str]]:
    """Per unit, at lambda = 1 and the top rung at the last budget: parse rate, the first
    violations by category, and the id positions' duplicate mass."""
    rows = []
    for report, _ in units:
        mrows = [m for m in report.get("mechanism", {}).get("rows", []) if m["kind"] == "ladder"]
        if not mrows:
            continue
        last = max(m["step"] for m in mrows)
        lams = sorted({m["lam"] for m in mrows if m["step"] == last})
        for lam in (lams[0], lams[-1]):
            m = next(x for x in mrows if x["lam"] == lam and x["step"] == last)
            fails = m.get("failures", {}).get("categories", {})
            dup = m.get("id_positions", {}).get("mass", {}).get("duplicate_id")
            clip = m.get("clip_share", {})
            bind = m.get("masses", {}).get(report["tests"]["ladder_binding"]["type"], {})
            rows.append([_unit(report), _f(lam), str(last), _f(m["parse_rate"], 3),
                         ", ".join(f"{k} {v}" for k, v in fails.items() if v) or "-",
                         _f(dup, 4), _f(bind.get("tail_over_edge"), 1),
                         f"{_f(clip.get('cap_share'), 4)} / {_f(clip.get('floor_share'), 4)}"])
    return rows


MECHANISM_HEADER = ["unit", "lambda", "updates", "parse rate", "first violations",
                    "duplicate-id mass at ids", "binding tail / clip-safe edge",
                    "tokens clipped at cap / floor"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.ladder.summary",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path,
                    help="ladder unit folders, or folders of committed units")
    units = [u for f in ap.parse_args(argv).folders for u in load(f)]
    for header, rows in ((LADDER_HEADER, ladder_rows(units)), (ONSET_HEADER, onset_rows(units)),
                         (MECHANISM_HEADER, mechanism_rows(units))):
        print(table(header, rows), end="\n\n")


if __name__ == "__main__":
    main()
