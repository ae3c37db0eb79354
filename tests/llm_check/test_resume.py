"""What --resume reads back (validate.llm_check.resume): the finished runs of sweep.json as the
sweep returned them, and the refusals of a sweep.json that is not the prediction's."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

from cliff.internal import write_json
from validate.llm_check import resume
from validate.llm_check.plan import Job
from validate.llm_check.resume import ResumeRefused, finished_runs, job_key

JOB = Job("main", 1.2, 0, 5.0, 0.2, 8, (4,))


def test_docstring_examples() -> None:
    result = doctest.testmod(resume, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def _run(job: Job) -> dict:
    return {"job": job.to_dict(), "started_at": "t0", "finished_at": "t1",
            "evals": {4: {"parse_rate": 0.5, "ndcg_at_1": math.nan},
                      8: {"parse_rate": 0.0, "ndcg_at_1": math.nan,
                          "mechanism": {"clip_share": {"cap_share": math.inf}}}},
            "history": [{"step": 0, "lambda": 1.2}], "mean_lambda": 1.2}


def test_finished_runs_read_back_as_the_sweep_returned_them(tmp_path: Path) -> None:
    # JSON turns the evaluations' step keys into strings and non-finite floats into "nan" /
    # "inf"; read back, they are ints and floats again, and the job is the same job.
    write_json(tmp_path / "sweep.json", {"prediction_sha256": "abc",
                                         "first_sweep_run_started_at": "2026-05-14T09:31:00Z",
                                         "runs": [_run(JOB)]})
    got = finished_runs(tmp_path, "abc", [JOB.to_dict()])
    assert got.started == "2026-05-14T09:31:00Z"
    (run,) = got.runs
    assert set(run["evals"]) == {4, 8} and math.isnan(run["evals"][4]["ndcg_at_1"])
    assert run["evals"][8]["mechanism"]["clip_share"]["cap_share"] == math.inf
    assert job_key(run["job"]) == job_key(JOB.to_dict()) and run["started_at"] == "t0"
    assert finished_runs(tmp_path / "none", "abc", []).runs == []


def test_a_sweep_of_another_prediction_is_refused(tmp_path: Path) -> None:
    write_json(tmp_path / "sweep.json", {"prediction_sha256": "abc",
                                         "first_sweep_run_started_at": None,
                                         "runs": [_run(JOB)]})
    with pytest.raises(ResumeRefused, match=r"--resume .*belongs to the prediction 'abc'"):
        finished_runs(tmp_path, "def", [JOB.to_dict()])
    other = Job("main", 1.3, 0, 5.0, 0.2, 8, (4,))
    with pytest.raises(ResumeRefused, match=r"--resume .*runs the prediction does not plan"):
        finished_runs(tmp_path, "abc", [other.to_dict()])
