"""``python -m validate.llm_check.ladder.report FOLDER...``: the report of a ladder unit again,
from its sealed ``prediction.json`` and ``calibration.json`` and its ``sweep.json``.

Both sealed files are verified (sha256) and the analysis is the code's own
(:func:`validate.llm_check.ladder.analysis.analyse_ladder`, seeded, so the same code gives the
same numbers); ``report.json`` and ``ladder.png`` are rewritten, with the code that wrote them
(``analysed_with``) beside the code that ran the unit (``prediction.json``'s ``code``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cliff.internal import save_figure, write_json
from validate.llm_check.ladder.analysis import analyse_ladder
from validate.llm_check.ladder.figure import ladder_figure
from validate.llm_check.resume import from_json
from validate.llm_check.sealing import read_record
from validate.llm_check.unit import code_version

__all__ = ["report_of", "main"]


def report_of(folder: Path) -> dict[str, Any]:
    """The report of the ladder unit in ``folder`` (module docstring), written there."""
    pred = read_record(folder / "prediction.json")
    cal = read_record(folder / "calibration.json")
    sweep = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    if sweep["prediction_sha256"] != pred["sha256"]:
        raise ValueError(f"{folder}/sweep.json belongs to prediction "
                         f"{sweep['prediction_sha256']!r}, not {pred['sha256']!r}")
    runs = [from_json(r) for r in sweep["runs"]]
    old = folder / "report.json"
    report = analyse_ladder(pred["payload"], pred["sha256"], cal, runs)
    if old.exists():
        report["wall_time_s"] = json.loads(old.read_text(encoding="utf-8")).get("wall_time_s")
    report["analysed_with"] = code_version()
    write_json(folder / "report.json", report)
    save_figure(ladder_figure(report), folder / "ladder.png", dpi=120)
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.ladder.report",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="ladder unit folders")
    for folder in ap.parse_args(argv).folders:
        report = report_of(folder)
        print(folder, {k: str(v["verdict"]) for k, v in report["tests"].items()})


if __name__ == "__main__":
    main()
