"""``--resume FOLDER``: an interrupted unit continues its sweep from the runs it finished.

Every finished OPD run is already on disk: the sweep rewrites ``sweep.json`` atomically
(:func:`cliff.internal.write_json`) after each run, with the prediction's sha256 and the
``first_sweep_run_started_at`` stamped before the first run.  A resumed unit keeps those
runs, runs the others (a run's result depends only on the warm start and its job, not on
which runs came before it) and analyses them all, so its report is the one an uninterrupted
sweep would have written, timestamps aside.

That holds only for the same prediction, so a resume is refused (:class:`ResumeRefused`,
naming ``--resume``) unless this command would seal, bit for bit, the prediction in the
folder:

1. before any training (:func:`sealed_prediction`): the folder's prediction verifies, is of
   this configuration and warm-start seed, was made with this command's configuration (every
   field but ``out``: the folder may have moved) and with this code (cliff's version, the git
   commit and whether the tree had uncommitted changes, as recorded);
2. once the warm start is rebuilt and measured (:func:`check_same_prediction`): the
   prediction this command makes, sealed with the folder's ``written_at``, has the folder's
   sha256.

Uncommitted changes cannot be compared: a prediction made from a tree with them is resumed
with a warning, and step 2 still compares everything the code computed before the sweep.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from validate.llm_check.config import Config
from validate.llm_check.sealing import canonical_json, seal, verify_prediction

__all__ = ["ResumeRefused", "Finished", "sealed_prediction", "check_same_prediction",
           "finished_runs", "from_json", "job_key"]


class ResumeRefused(ValueError):
    """``--resume FOLDER`` would not continue the sweep of the prediction in ``FOLDER``."""


@dataclass(frozen=True)
class Finished:
    """What an interrupted sweep left in its folder."""

    started: str | None
    """its ``first_sweep_run_started_at`` (None: the sweep never started)"""
    runs: list[dict[str, Any]]
    """the finished runs, as :func:`validate.llm_check.jobs.run_job` returned them"""


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between ``a`` and ``b`` (as canonical JSON)."""
    return [k for k in sorted(set(a) | set(b))
            if canonical_json(a.get(k)) != canonical_json(b.get(k))]


def sealed_prediction(folder: Path, cfg: Config, configuration: str, warm_seed: int,
                      code: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verified record of ``folder/prediction.json``, after rule 1 of the module
    docstring; None when the folder holds no prediction (the unit never sealed one, and
    starts afresh).

    Parameters
    ----------
    folder : Path
        The unit's folder.
    cfg : Config
        This command's configuration.
    configuration, warm_seed : str, int
        The unit.
    code : mapping
        This code's version (:func:`validate.llm_check.unit.code_version`).

    Raises
    ------
    ResumeRefused
        Naming ``--resume``, the folder and what differs.
    """
    path = folder / "prediction.json"
    if not path.exists():
        return None
    where = f"--resume {folder}"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        payload = verify_prediction(record)
    except ValueError as err:  # TamperedPrediction, malformed JSON or record
        raise ResumeRefused(f"{where}: its prediction does not verify: {err}") from err
    unit = (payload.get("configuration"), payload.get("warm_seed"))
    if unit != (configuration, warm_seed):
        raise ResumeRefused(f"{where}: its prediction is of configuration {unit[0]!r}, warm "
                            f"seed {unit[1]!r}, not {configuration!r}, warm seed {warm_seed}")
    sealed = {k: v for k, v in payload.get("config", {}).items() if k != "out"}
    mine = {k: v for k, v in cfg.recorded().items() if k != "out"}
    diffs = _differences(sealed, mine)
    if diffs:
        shown = "; ".join(f"{k}: sealed {sealed.get(k)!r}, now {mine.get(k)!r}" for k in diffs)
        raise ResumeRefused(f"{where}: its prediction was sealed with another configuration "
                            f"({shown}); resume with the flags it was sealed with")
    was = payload.get("code", {})
    diffs = _differences({k: was.get(k) for k in ("cliff", "commit", "dirty")},
                         {k: code.get(k) for k in ("cliff", "commit", "dirty")})
    if diffs:
        shown = "; ".join(f"{k}: sealed {was.get(k)!r}, now {code.get(k)!r}" for k in diffs)
        raise ResumeRefused(f"{where}: its prediction was sealed with other code ({shown}); "
                            f"resume with the code it was sealed with")
    if was.get("dirty"):
        print(f"{where}: the prediction was sealed from a tree with uncommitted changes, "
              f"which cannot be compared; the rebuilt prediction still must match it",
              file=sys.stderr)
    return dict(record)


def check_same_prediction(folder: Path, record: Mapping[str, Any],
                          payload: Mapping[str, Any]) -> None:
    """Rule 2 of the module docstring: ``payload`` (this command's prediction, unsealed)
    sealed with the ``written_at`` of the folder's ``record`` must have its sha256.

    Raises
    ------
    ResumeRefused
        Naming ``--resume``, both digests and the top-level keys that differ.

    Examples
    --------
    >>> rec = seal({"a": 1}, written_at="2026-05-14T09:30:00+00:00")
    >>> check_same_prediction(Path("run"), rec, {"a": 1})
    >>> try:
    ...     check_same_prediction(Path("run"), rec, {"a": 2})
    ... except ResumeRefused as err:
    ...     print(str(err)[:48])
    --resume run: this command would seal another pr
    """
    old = record["payload"]
    again = seal(payload, written_at=old["written_at"])
    if again["sha256"] != record["sha256"]:
        raise ResumeRefused(
            f"--resume {folder}: this command would seal another prediction (sha256 "
            f"{again['sha256']}, the folder's is {record['sha256']}; they differ in "
            f"{_differences(again['payload'], old)}); resume with the inputs it was sealed "
            f"with")


def from_json(obj: Any) -> Any:
    """A run read back from JSON: the strings "nan", "inf" and "-inf" that
    :func:`cliff.internal.jsonable` wrote for non-finite floats are floats again, and the
    step keys of ``evals`` are ints.

    Examples
    --------
    >>> from_json({"evals": {"4": {"ndcg_at_1": "nan"}}, "job": {"kind": "main"}})
    {'evals': {4: {'ndcg_at_1': nan}}, 'job': {'kind': 'main'}}
    """
    if isinstance(obj, dict):
        return {k: ({int(s): from_json(e) for s, e in v.items()} if k == "evals"
                    else from_json(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    if obj in ("nan", "inf", "-inf"):
        return float(obj)
    return obj


def job_key(job: Mapping[str, Any]) -> str:
    """A job's identity: its canonical JSON (tuples and lists alike)."""
    return canonical_json(dict(job))


def finished_runs(folder: Path, sha256: str, jobs: Sequence[Mapping[str, Any]]) -> Finished:
    """The runs ``folder/sweep.json`` holds for the prediction ``sha256``, each one of
    ``jobs`` (the planned runs, as dicts); nothing when there is no ``sweep.json``.

    Raises
    ------
    ResumeRefused
        When ``sweep.json`` belongs to another prediction or holds a run that was not
        planned.
    """
    path = folder / "sweep.json"
    if not path.exists():
        return Finished(None, [])
    sweep = json.loads(path.read_text(encoding="utf-8"))
    if sweep.get("prediction_sha256") != sha256:
        raise ResumeRefused(f"--resume {folder}: sweep.json belongs to the prediction "
                            f"{sweep.get('prediction_sha256')!r}, not {sha256!r}")
    planned = {job_key(j) for j in jobs}
    runs = [from_json(r) for r in sweep.get("runs", [])]
    stray = [r["job"] for r in runs if job_key(r["job"]) not in planned]
    if stray:
        raise ResumeRefused(f"--resume {folder}: sweep.json holds runs the prediction does not "
                            f"plan: {stray[:3]}")
    return Finished(sweep.get("first_sweep_run_started_at"), runs)
