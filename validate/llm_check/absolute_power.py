r"""A test that can fail: the power of tests (b) and (c) on simulated sweeps, before any run.

Each test compares a sealed absolute prediction ``(lambda_1, lambda_2)`` (the onsets at the
first and second sweep: ``T`` and ``2T`` steps, or clip ``c`` and ``c'``) with the measured
onsets.  Here the two sweeps are simulated at the design's grids, seeds and rollouts, in
worlds where the prediction is right and where its asymptote ``lambda_inf`` is off by
``+-delta``, and the real test (:func:`~validate.llm_check.preregistered_tests.
budget_extension_test`, :func:`~validate.llm_check.preregistered_tests.clip_cross_test`)
scores each simulation.  Reported per world: the share of each counted verdict.  The power
is the MISS share in the wrong worlds; the share of counted HITs in the right world says
whether the test can award a HIT at all (where the nulls predict the same, it cannot).

The worlds are stated assumptions, not measurements.  A wrong asymptote moves every finite
predicted onset by ``delta``; where the law predicts no onset within the budget (``inf``),
the wrong world is one whose clock is fast enough to reach its asymptote,
``lambda_inf +- delta`` (at ``c'`` for the second sweep of test (c)); a wrong world's onset
is never placed before its grid's first point above 1.  In every world the parse rate of
seed ``s`` is

.. math:: r_s(\lambda) = r_1 - (1 - q)\,r_1\,
          \operatorname{clip}\Big(\frac{\lambda - o_s + 2h}{3h}, 0, 1\Big),
          \qquad o_s = o + \epsilon_s,\ \epsilon_s \sim N(0, \sigma^2),

a ramp from ``r_1`` to ``q r_1`` that crosses ``r_1/2`` at the seed's onset ``o_s`` (``q =
1/4``; ``h`` the grid's widest step, so that interpolating between grid points finds the
crossing; at ``lambda = 1``, plain distillation, the rate is ``r_1`` in every world), and
rollout ``n`` of seed ``s`` parses when ``u_{s,n} < r_s(\lambda)``, one
uniform per (seed, prompt) shared by every lambda and both sweeps (prompts stay paired, as
in the real evaluation).  The two sweeps of test (b) are the same runs and share
``epsilon_s``; those of test (c) are different runs and draw their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from validate.llm_check.onset import Sweep, check_grid
from validate.llm_check.preregistered_tests import (
    AffineNull,
    OnsetTestConfig,
    budget_extension_test,
    clip_cross_test,
)
from validate.llm_check.verdict_rules import Verdict

__all__ = ["PowerDesign", "AbsoluteTestPower", "absolute_test_power", "parse_curves"]

FloatArray = NDArray[np.float64]
Kind = Literal["budget", "clip"]


@dataclass(frozen=True)
class PowerDesign:
    """The simulated worlds' assumptions and the simulation's size (sealed in the
    prediction)."""

    delta: float = 0.1
    """how far the wrong worlds' asymptote lies from the prediction's"""
    r1: float = 0.9
    """parse rate below the onset"""
    q: float = 0.25
    """parse rate past the ramp, as a share of r1"""
    seed_sd: float = 0.02
    """standard deviation of a seed's onset around the world's"""
    n_sim: int = 100
    """simulations per world"""
    n_boot: int = 200
    """bootstrap replicates per simulation (the real test uses more)"""

    def __post_init__(self) -> None:
        for name in ("delta", "seed_sd"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if not 0.0 < self.r1 <= 1.0 or not 0.0 <= self.q < 1.0:
            raise ValueError(f"r1 must be in (0, 1] and q in [0, 1), got r1 = {self.r1!r}, "
                             f"q = {self.q!r}")
        if self.n_sim < 1:
            raise ValueError(f"n_sim must be >= 1, got {self.n_sim!r}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be >= 100 (the interval's tails need replicates), "
                             f"got {self.n_boot!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AbsoluteTestPower:
    """Operating characteristics of test (b) or (c) (:func:`absolute_test_power`).

    Attributes
    ----------
    worlds : the true onsets ``(first, second)`` of each world: ``"as_predicted"``,
        ``"lambda_inf_minus_delta"``, ``"lambda_inf_plus_delta"``.
    shares : per world, the share of simulations with each counted verdict.
    own_hit_share : per world, the share where the real predictor HITs on its own (before
        the nulls are counted).
    power : the MISS share in each wrong world, and their minimum (``"min"``).
    design : the assumptions (:class:`PowerDesign`).
    """


    worlds: dict[str, tuple[float, float]]
    shares: dict[str, dict[str, float]]
    own_hit_share: dict[str, float]
    power: dict[str, float]
    design: PowerDesign

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_curves(lambdas: Sequence[float], onsets: FloatArray, r1: float, q: float
                 ) -> FloatArray:
    """Parse rates ``(S, L)`` of the module's ramp at each seed's onset (``inf``: no fall)."""
    lam = check_grid("lambdas", lambdas)
    h = float(np.max(np.diff(lam)))
    o = np.asarray(onsets, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore"):
        frac = np.clip((lam[None, :] - o + 2.0 * h) / (3.0 * h), 0.0, 1.0)
    frac = np.where(np.isinf(o), 0.0, frac)
    frac[:, 0] = 0.0  # lambda = 1 is plain distillation: no cliff there in any world
    return np.asarray(r1 - (1.0 - q) * r1 * frac, dtype=np.float64)


def _worlds(predicted: tuple[float, float], lambda_inf: tuple[float, float], delta: float,
            grids: tuple[Sequence[float], Sequence[float]]) -> dict[str, tuple[float, float]]:
    def moved(i: int, d: float) -> float:
        x = predicted[i] + d if math.isfinite(predicted[i]) else lambda_inf[i] + d
        return max(x, float(grids[i][1]))  # no cliff before the grid's first lambda > 1

    out = {"as_predicted": predicted}
    for name, d in (("lambda_inf_minus_delta", -delta), ("lambda_inf_plus_delta", delta)):
        out[name] = (moved(0, d), moved(1, d))
    return out


def _simulate(kind: Kind, grids: tuple[Sequence[float], Sequence[float]],
              truth: tuple[float, float], n_seeds: int, n_rollouts: int, d: PowerDesign,
              gen: np.random.Generator) -> tuple[Sweep, Sweep]:
    u = gen.random((n_seeds, 1, n_rollouts))
    eps1 = gen.normal(0.0, d.seed_sd, n_seeds)
    eps2 = eps1 if kind == "budget" else gen.normal(0.0, d.seed_sd, n_seeds)
    out = []
    for lam, o, eps in ((grids[0], truth[0], eps1), (grids[1], truth[1], eps2)):
        rates = parse_curves(lam, np.full(n_seeds, o) + eps, d.r1, d.q)
        out.append(Sweep(tuple(float(x) for x in lam), u < rates[:, :, None]))
    return out[0], out[1]


def absolute_test_power(kind: Kind, grids: tuple[Sequence[float], Sequence[float]],
               predicted: tuple[float, float], lambda_inf: tuple[float, float],
               nulls: Mapping[str, AffineNull], n_seeds: int, n_rollouts: int,
               test_config: OnsetTestConfig, design: PowerDesign,
               rng: np.random.Generator | int) -> AbsoluteTestPower:
    """Simulate test (b) (``kind="budget"``) or (c) (``"clip"``) in the module's worlds.

    Parameters
    ----------
    kind : {"budget", "clip"}
    grids : (first grid, second grid)
        For (b) the main grid twice; for (c) the main grid and the ``c'`` grid.
    predicted : (lambda_1, lambda_2)
        The sealed absolute onsets (``inf``: none within the budget); the test scores
        ``lambda_2``.
    lambda_inf : (float, float)
        The asymptotes at the first and second sweep (finite; equal for test (b)): where a
        wrong world lands when the prediction is ``inf``.
    nulls : mapping
        The test's nulls, as sealed.
    n_seeds, n_rollouts : int
        The design.
    test_config : OnsetTestConfig
        The real test's settings; its ``n_boot`` is replaced by ``design.n_boot``.
    design : PowerDesign
    rng : numpy.random.Generator or int

    Returns
    -------
    AbsoluteTestPower
    """
    if kind not in ("budget", "clip"):
        raise ValueError(f"kind must be 'budget' or 'clip', got {kind!r}")
    if not all(math.isfinite(x) for x in lambda_inf):
        raise ValueError(f"lambda_inf must be finite, got {lambda_inf!r}")
    if n_seeds < 1 or n_rollouts < 1:
        raise ValueError(f"n_seeds and n_rollouts must be >= 1, got {n_seeds!r}, "
                         f"{n_rollouts!r}")
    gen = np.random.default_rng(rng)
    cfg = replace(test_config, n_boot=design.n_boot)
    test = budget_extension_test if kind == "budget" else clip_cross_test
    worlds = _worlds(predicted, lambda_inf, design.delta, grids)
    shares: dict[str, dict[str, float]] = {}
    own_hit: dict[str, float] = {}
    for name, truth in worlds.items():
        counts = dict.fromkeys([v.value for v in Verdict], 0)
        hits = 0
        for _ in range(design.n_sim):
            first, second = _simulate(kind, grids, truth, n_seeds, n_rollouts, design, gen)
            res = test(first, second, predicted[1], nulls, rng=gen, gate_passed=True,
                       config=cfg)
            counts[res.verdict.value] += 1
            hits += res.own_verdict is Verdict.HIT
        shares[name] = {k: v / design.n_sim for k, v in counts.items()}
        own_hit[name] = hits / design.n_sim
    wrong = {k: shares[k][Verdict.MISS.value] for k in worlds if k != "as_predicted"}
    return AbsoluteTestPower(worlds=worlds, shares=shares, own_hit_share=own_hit,
                     power={**wrong, "min": min(wrong.values())}, design=design)
