"""``python -m validate.llm_check.rescore``: tests (b) and (c) of a report sealed before they
were absolute, scored post hoc by today's rules.

Before they were absolute, tests (b) and (c) compared a predicted *shift* with the measured
one. Such a report is scored again here: the law's absolute onsets, its nulls and its power
are computed from the sealed masses and settings with today's plan
(:func:`~validate.llm_check.plan.budget_extension_prediction`,
:func:`~validate.llm_check.plan.clip_cross_prediction`,
:func:`~validate.llm_check.plan.with_power`), and then scored on the report's measured sweeps.
This is an analysis after the outcome was seen, and it is labelled as one. Its verdicts are
not pre-registered.

The compact reports keep per-seed parse rates, not per-rollout indicators. So each seed's
indicators are rebuilt with its exact count of parses, and the bootstrap resamples rollouts
independently at each lambda (``rollouts="independent"``). That needs only the counts, and
its intervals are wider than the paired ones the sealed tests used (see
:func:`~validate.llm_check.onset.resample_rates`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cliff.internal import jsonable
from validate.llm_check.config import Config
from validate.llm_check.measurement import Measurement
from validate.llm_check.onset import Sweep
from validate.llm_check.plan import (
    budget_extension_prediction,
    clip_cross_prediction,
    with_power,
)
from validate.llm_check.preregistered_tests import (
    OnsetTestConfig,
    budget_extension_test,
    clip_cross_test,
)
from validate.llm_check.resume import from_json
from validate.llm_check.sealing import verify_prediction

__all__ = ["sweep_from_rates", "rescore"]


def sweep_from_rates(lambdas: Sequence[float], rates: Sequence[Sequence[float]], n: int
                     ) -> Sweep:
    """A sweep whose seed ``s`` parses ``round(n * rates[s][l])`` of ``n`` rollouts at
    ``lambdas[l]`` (the order of the rollouts carries no information)."""
    r = np.asarray(rates, dtype=np.float64)
    counts = np.rint(r * n).astype(int)
    return Sweep(tuple(float(x) for x in lambdas),
                 np.arange(n)[None, None, :] < counts[:, :, None])


def rescore(pred: Mapping[str, Any], report: Mapping[str, Any], n_boot: int = 2000,
            power_simulations: int = 100) -> dict[str, Any]:
    """The post-hoc absolute tests (b) and (c) of one unit (module docstring)."""
    names = {f.name for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                              for k, v in pred["config"].items() if k in names}
    cfg = dataclasses.replace(Config(**values), power_simulations=power_simulations)
    meas = pred["measurement"]
    names = {f.name for f in dataclasses.fields(Measurement)}
    measurement = Measurement(**{k: v for k, v in meas.items() if k in names})
    p, b, lam = float(meas["p"]), float(meas["b"]), [float(x) for x in pred["lambdas"]]
    star = float(meas["windows"]["two_class"][0])
    budget = budget_extension_prediction(cfg, p, b, lam, star)
    notes: list[str] = []
    clip = clip_cross_prediction(cfg, measurement, budget, lam, notes)
    clip = dataclasses.replace(clip, lambdas=tuple(report["per_seed"]["clip_lambdas"]))
    tc = OnsetTestConfig(fraction=cfg.break_fraction, n_boot=n_boot, rollouts="independent")
    budget, clip = with_power(cfg, budget, clip, lam, tc)
    per = report["per_seed"]
    n = cfg.eval_rollouts
    at_T = sweep_from_rates(per["lambdas"], per["parse_rate"], n)
    at_2T = sweep_from_rates(per["lambdas"], per["parse_rate_2T"], n)
    at_new = sweep_from_rates(per["clip_lambdas"], per["clip_parse_rate"], n)
    rng = np.random.default_rng(cfg.seed + 12345)
    b_test = budget_extension_test(at_T, at_2T, budget.lambda_2T, budget.nulls, rng=rng,
                                   gate_passed=True, config=tc)
    c_test = clip_cross_test(at_T, at_new, clip.lambda_T_new, clip.nulls, rng=rng,
                             gate_passed=True, config=tc)
    return {"post_hoc": True, "prediction_sha256": report["prediction_sha256"],
            "budget_extension": {**b_test.to_dict(), "prediction": budget.to_dict()},
            "clip_cross_prediction": {**c_test.to_dict(), "prediction": clip.to_dict()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check.rescore",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("unit", help="path prefix of a committed unit: <unit>.prediction.json and "
                                 "<unit>.report.json beside each other")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    ap.add_argument("--power-simulations", type=int, default=100,
                    help="simulated sweeps per world of the power check")
    ns = ap.parse_args(argv)
    pred = from_json(verify_prediction(f"{ns.unit}.prediction.json"))
    report = from_json(json.loads(Path(f"{ns.unit}.report.json").read_text()))
    out = rescore(pred, report, ns.n_boot, ns.power_simulations)
    print(json.dumps(jsonable(out), indent=1))
    return out


if __name__ == "__main__":
    main()
