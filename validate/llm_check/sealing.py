r"""Pre-registration: the sealed prediction file and the checks a report must pass against it.

``prediction.json`` is

.. code-block:: json

    {"payload": {"...": "...", "written_at": "2026-05-14T09:30:00.123456+00:00"},
     "sha256": "<hex>"}

with ``sha256`` the digest of the payload's canonical JSON,
``json.dumps(payload, sort_keys=True, separators=(",", ":"))`` (after
:func:`cliff.internal.jsonable`: arrays as lists, non-finite floats as the strings "inf", "-inf",
"nan").  It is written atomically (:func:`cliff.internal.atomic_path`) and flushed to disk
(``fsync`` of the file and of its folder) before the first training step of the sweep, so
the file on disk is the one the sweep was run against.  :func:`verify_prediction` recomputes
the digest and refuses a file whose payload was changed.

The report (``report.json``) must carry ``gate.passed``, ``first_sweep_run_started_at``
(ISO-8601 UTC, after the prediction's ``written_at``) and a ``tests`` block
(:func:`build_tests_block`) with one entry per pre-registered test, each with a ``verdict`` in
HIT, MISS, INCONCLUSIVE, VOID; :func:`check_report` checks all of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cliff.internal import atomic_path, jsonable
from validate.llm_check.verdict_rules import Verdict

__all__ = ["canonical_json", "canonical_sha256", "utc_now", "parse_utc", "seal",
           "write_prediction", "verify_prediction", "read_record", "TamperedPrediction",
           "TEST_NAMES",
           "build_tests_block", "check_report"]

TEST_NAMES = ("cliff_interval", "budget_extension", "clip_cross_prediction")
"""The pre-registered tests, in the order of the plan: (a), (b), (c)."""


class TamperedPrediction(ValueError):
    """The prediction's payload does not match its recorded sha256."""


def canonical_json(obj: Any) -> str:
    """``json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))``: one text per
    value, whatever the key order or container types (tuples and arrays become lists).

    Examples
    --------
    >>> canonical_json({"b": (1, 2.5), "a": float("inf")})
    '{"a":"inf","b":[1,2.5]}'
    """
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_sha256(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json` (UTF-8).

    Examples
    --------
    >>> canonical_sha256({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
    True
    """
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def utc_now() -> str:
    """The current time, ISO-8601 in UTC with microseconds (``...+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_utc(name: str, value: Any) -> datetime:
    """An ISO-8601 timestamp in UTC (offset ``+00:00`` or ``Z``), as an aware datetime.

    Examples
    --------
    >>> parse_utc("t", "2026-05-14T09:30:00Z").isoformat()
    '2026-05-14T09:30:00+00:00'
    """
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO-8601 UTC timestamp string, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{name} must be an ISO-8601 UTC timestamp, got {value!r}") from err
    if t.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be in UTC (offset +00:00 or Z), got {value!r}")
    return t


def seal(payload: Mapping[str, Any], *, written_at: str | None = None) -> dict[str, Any]:
    """``{"payload": {**payload, "written_at": ...}, "sha256": ...}`` (canonical JSON types).

    Parameters
    ----------
    payload : mapping
        The prediction, JSON-able through :func:`cliff.internal.jsonable`; must not hold
        ``written_at`` (the seal sets it).
    written_at : str, optional
        ISO-8601 UTC timestamp; default now.

    Examples
    --------
    >>> rec = seal({"window": (1.1, 1.2)}, written_at="2026-05-14T09:30:00+00:00")
    >>> rec["payload"]["window"], rec["sha256"] == canonical_sha256(rec["payload"])
    ([1.1, 1.2], True)
    """
    if "written_at" in payload:
        raise ValueError("payload must not contain 'written_at' (seal sets it), got "
                         f"{payload['written_at']!r}")
    stamp = utc_now() if written_at is None else written_at
    parse_utc("written_at", stamp)
    body = jsonable({**payload, "written_at": stamp})
    json.loads(canonical_json(body))  # refuses what JSON cannot hold (allow_nan=False)
    return {"payload": body, "sha256": canonical_sha256(body)}


def write_prediction(path: str | os.PathLike[str], payload: Mapping[str, Any], *,
                     written_at: str | None = None) -> dict[str, Any]:
    """Seal ``payload`` (:func:`seal`) and write it to ``path`` atomically, flushed to disk.

    Call before the first training step of the sweep.  Refuses to overwrite an existing
    prediction (a second prediction for the same run would undo the pre-registration).

    Returns
    -------
    dict
        The record written, ``{"payload": ..., "sha256": ...}``.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"path: a prediction already exists at {str(path)!r}; "
                              f"pre-registration writes it once")
    record = seal(payload, written_at=written_at)
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)
    return record


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole sealed record at ``path`` (``{"payload": ..., "sha256": ...}``), after
    :func:`verify_prediction` has checked its digest."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    verify_prediction(record)
    return dict(record)


def verify_prediction(source: str | os.PathLike[str] | Mapping[str, Any], *,
                      expected_sha256: str | None = None) -> dict[str, Any]:
    """The payload of a sealed prediction, after checking its digest.

    Parameters
    ----------
    source : path or mapping
        ``prediction.json``, or its already-loaded record.
    expected_sha256 : str, optional
        The digest as recorded outside the run folder when the prediction was written (a
        commit, a log line); a file rewritten together with its own digest is caught only
        this way.

    Returns
    -------
    dict
        The payload (with ``written_at``).

    Raises
    ------
    TamperedPrediction
        When the recomputed sha256 differs from the recorded one, or from
        ``expected_sha256``.
    ValueError
        When the record is malformed (keys other than ``payload`` and ``sha256``, no
        ``written_at``, or a ``written_at`` that is not ISO-8601 UTC).
    """
    where = "prediction"
    if isinstance(source, Mapping):
        record: Any = source
    else:
        where = str(source)
        record = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(record, Mapping) or set(record) != {"payload", "sha256"}:
        keys = sorted(record) if isinstance(record, Mapping) else type(record).__name__
        raise ValueError(f"{where}: must hold exactly 'payload' and 'sha256', got {keys}")
    payload = record["payload"]
    if not isinstance(payload, Mapping):
        raise ValueError(f"{where}: 'payload' must be an object, got {type(payload).__name__}")
    if "written_at" not in payload:
        raise ValueError(f"{where}: payload has no 'written_at'")
    parse_utc(f"{where}: payload.written_at", payload["written_at"])
    digest = canonical_sha256(payload)
    if digest != record["sha256"]:
        raise TamperedPrediction(f"{where}: sha256 of the payload is {digest}, the file records "
                                 f"{record['sha256']!r}: the payload changed after it was "
                                 f"sealed")
    if expected_sha256 is not None and digest != expected_sha256:
        raise TamperedPrediction(f"{where}: sha256 is {digest}, but {expected_sha256!r} was "
                                 f"recorded when the prediction was written")
    return dict(payload)


# --- the report's pre-registered part ----------------------------------------------------------
def build_tests_block(cliff_interval: Mapping[str, Any], budget_extension: Mapping[str, Any],
                clip_cross_prediction: Mapping[str, Any]) -> dict[str, Any]:
    """The report's ``tests`` block: one entry per pre-registered test, each with a
    ``verdict`` (e.g. the ``to_dict()`` of the results of
    :mod:`validate.llm_check.preregistered_tests`).

    Examples
    --------
    >>> b = build_tests_block({"verdict": "HIT"}, {"verdict": "VOID"}, {"verdict": "MISS"})
    >>> [b[k]["verdict"] for k in TEST_NAMES]
    ['HIT', 'VOID', 'MISS']
    """
    block = {"cliff_interval": dict(cliff_interval), "budget_extension": dict(budget_extension),
             "clip_cross_prediction": dict(clip_cross_prediction)}
    problems = _tests_problems(block)
    if problems:
        raise ValueError("tests block: " + "; ".join(problems))
    return jsonable(block)  # type: ignore[no-any-return]


def _tests_problems(tests: Any) -> list[str]:
    if not isinstance(tests, Mapping):
        return [f"'tests' must be an object, got {type(tests).__name__}"]
    out = []
    if set(tests) != set(TEST_NAMES):
        out.append(f"'tests' must have exactly the keys {list(TEST_NAMES)}, got "
                   f"{sorted(tests)}")
    allowed = [v.value for v in Verdict]
    for name in TEST_NAMES:
        entry = tests.get(name)
        if entry is None:
            continue
        verdict = entry.get("verdict") if isinstance(entry, Mapping) else None
        if verdict not in allowed:
            out.append(f"tests.{name}.verdict must be one of {allowed}, got {verdict!r}")
    return out


def check_report(report: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
    """Check a report's pre-registered fields against the (verified) prediction payload.

    Rules: ``gate.passed`` is a bool; ``tests`` has exactly the three entries, each with a
    verdict in HIT, MISS, INCONCLUSIVE, VOID; a failed gate leaves every verdict VOID and
    ``first_sweep_run_started_at`` null (no sweep ran); a passed gate needs
    ``first_sweep_run_started_at``, ISO-8601 UTC and strictly after the prediction's
    ``written_at``; when the report carries ``prediction_sha256`` it is the prediction's.
    A ``--quick`` run whose prediction records that it went on past its failed gate
    (``gate.quick_continued`` of a prediction whose ``config.quick`` is true) keeps every
    verdict VOID and needs ``first_sweep_run_started_at`` as a passed gate does.

    Parameters
    ----------
    report : mapping
        The report (``report.json`` loaded).
    prediction : mapping
        The payload returned by :func:`verify_prediction`, or its whole record (verified
        here).

    Raises
    ------
    ValueError
        Naming every rule the report breaks, with the offending values.
    """
    payload = verify_prediction(prediction) if "sha256" in prediction else dict(prediction)
    written = parse_utc("prediction written_at", payload.get("written_at"))
    problems = []
    gate = report.get("gate")
    passed = gate.get("passed") if isinstance(gate, Mapping) else None
    if not isinstance(passed, bool):
        problems.append(f"gate.passed must be true or false, got {passed!r}")
    tests = report.get("tests")
    problems += _tests_problems(tests)
    started = report.get("first_sweep_run_started_at")
    pred_gate, pred_config = payload.get("gate"), payload.get("config")
    continued = (isinstance(pred_gate, Mapping) and pred_gate.get("quick_continued") is True
                 and isinstance(pred_config, Mapping) and pred_config.get("quick") is True)
    if passed is False:
        if isinstance(tests, Mapping):
            not_void = [k for k in TEST_NAMES if isinstance(tests.get(k), Mapping)
                        and tests[k].get("verdict") != Verdict.VOID.value]
            if not_void:
                problems.append(f"the gate failed, so every verdict must be VOID; not VOID: "
                                f"{not_void}")
        if started is not None and not continued:
            problems.append(f"the gate failed, so no sweep may have started; "
                            f"first_sweep_run_started_at = {started!r}")
    if passed is True or (passed is False and continued):
        try:
            t = parse_utc("first_sweep_run_started_at", started)
        except ValueError as err:
            problems.append(str(err))
        else:
            if not t > written:
                problems.append(f"first_sweep_run_started_at = {started!r} is not after the "
                                f"prediction's written_at = {payload['written_at']!r}")
    if "prediction_sha256" in report:
        digest = canonical_sha256(payload)
        if report["prediction_sha256"] != digest:
            problems.append(f"prediction_sha256 = {report['prediction_sha256']!r} is not the "
                            f"prediction's sha256 {digest!r}")
    if problems:
        raise ValueError("report: " + "; ".join(problems))
