r"""The ladder statistic: the trend of the log losing mass over the log budget, its onset in
lambda, and the onset's two-level bootstrap interval.

Data (:class:`LadderData`): ``mass[s, l, t, n]``, the losing-class mass of evaluation
rollout ``n`` of seed ``s`` trained at ``lambdas[l]`` and evaluated after ``budgets[t]``
steps (NaN where the rollout has no position of the type).  The pooled log mass of a rung
and budget is the log of the mean over seeds of the per-seed means over rollouts,

.. math:: y_{l,t} = \log \frac1S \sum_s \bar x_{s,l,t},

its *trend* is the least-squares slope of ``y_{l, .}`` against ``log T``, and the *ladder
onset* is the first rung whose trend falls more than ``delta`` below the lambda = 1 trend
(interpolated between rungs the way :func:`validate.llm_check.onset.onset` interpolates).
Its interval comes from the two-level bootstrap of :mod:`validate.llm_check.onset`: seeds
with replacement, then rollouts with replacement, one rollout draw per seed slot shared by
every rung and budget (rollout ``n`` is the same prompt everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from validate.llm_check.onset import check_grid, percentile_interval

__all__ = ["LadderData", "OnsetInterval", "check_budgets", "check_delta", "trend",
           "ladder_onset", "resample_pooled_log_mass", "ladder_onset_interval"]

FloatArray = NDArray[np.float64]


def check_budgets(name: str, budgets: Any) -> tuple[int, ...]:
    """Evaluation budgets: at least 2 integers >= 1, strictly increasing."""
    items = list(budgets) if np.ndim(budgets) == 1 else None
    if items is None or len(items) < 2:
        raise ValueError(f"{name} must be a 1-D sequence of at least 2 step counts, got "
                         f"{budgets!r}")
    for i, v in enumerate(items):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}[{i}] must be an integer >= 1, got {v!r}")
    out = tuple(int(v) for v in items)
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"{name} must be strictly increasing, got {list(out)}")
    return out


def check_delta(delta: float) -> float:
    """The margin ``delta``: finite and > 0."""
    d = float(delta)
    if not (d > 0.0 and np.isfinite(d)):
        raise ValueError(f"delta must be finite and > 0, got {delta!r}")
    return d


def _real_array(name: str, value: ArrayLike) -> FloatArray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


@dataclass(frozen=True, eq=False)
class LadderData:
    """Losing-class masses of one position type on the ladder.

    Attributes
    ----------
    lambdas : tuple of float, length L
        The rungs; ``lambdas[0] = 1``, strictly increasing.
    budgets : tuple of int, length B
        Evaluation budgets in steps, strictly increasing, >= 1 (at least 2).
    mass : ndarray, shape (S, L, B, N)
        ``mass[s, l, t, n]`` in [0, 1]: the mean losing-class mass over the positions of
        the type in rollout ``n``; NaN when the rollout has none.
    """

    lambdas: tuple[float, ...]
    budgets: tuple[int, ...]
    mass: FloatArray

    def __post_init__(self) -> None:
        lam = check_grid("lambdas", self.lambdas)
        budgets = check_budgets("budgets", self.budgets)
        x = _real_array("mass", self.mass)
        want = (lam.size, len(budgets))
        if x.ndim != 4 or x.shape[1:3] != want or x.shape[0] < 1 or x.shape[3] < 1:
            raise ValueError(f"mass must have shape (seeds >= 1, {want[0]} lambdas, {want[1]} "
                             f"budgets, rollouts >= 1), got {x.shape}")
        bad = ~np.isnan(x) & ~((x >= 0.0) & (x <= 1.0))
        if bad.any():
            raise ValueError(f"mass must be in [0, 1] or NaN: {int(bad.sum())} entries are "
                             f"not (first: {float(x[bad][0])!r})")
        object.__setattr__(self, "lambdas", tuple(float(v) for v in lam))
        object.__setattr__(self, "budgets", budgets)
        object.__setattr__(self, "mass", x)

    @property
    def n_seeds(self) -> int:
        return int(self.mass.shape[0])

    @property
    def n_rollouts(self) -> int:
        return int(self.mass.shape[3])

    @property
    def empty_cells(self) -> NDArray[np.bool_]:
        """(S, L, B): cells with no rollout holding a position of the type."""
        return np.asarray(np.isnan(self.mass).all(axis=3))

    @property
    def seed_mass(self) -> FloatArray:
        """(S, L, B): per-seed mean over the rollouts that have a value; NaN in empty cells."""
        have = ~np.isnan(self.mass)
        count = have.sum(axis=3)
        total = np.where(have, self.mass, 0.0).sum(axis=3)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    @property
    def pooled_log_mass(self) -> FloatArray:
        """(L, B): log of the mean over seeds of :attr:`seed_mass`.

        NaN at a (lambda, budget) where any seed's cell is empty: the mean over seeds is
        then undefined, and averaging the other seeds alone would change what is pooled.
        ``-inf`` where the pooled mass is 0.
        """
        with np.errstate(divide="ignore"):
            return np.asarray(np.log(self.seed_mass.mean(axis=0)), dtype=np.float64)


def trend(log_mass: ArrayLike, budgets: Any) -> Any:
    r"""Least-squares slope of the log mass against the log budget, along the last axis.

    .. math:: \hat\beta = \frac{\sum_t (x_t - \bar x)(y_t - \bar y)}{\sum_t (x_t - \bar x)^2},
              \qquad x_t = \log T_t.

    Parameters
    ----------
    log_mass : array_like, shape (..., B)
        Log masses (<= 0); NaN and ``-inf`` are allowed and give a NaN trend.
    budgets : sequence of int, length B
        The budgets.

    Returns
    -------
    float or ndarray, shape (...)
        ``d log mass / d log T``: ``-0.5`` means the mass halves from ``T`` to ``4T``.

    Examples
    --------
    >>> round(trend([-1.0, -1.5, -2.0], [60, 120, 240]), 6)  # -1 over log 4
    -0.721348
    """
    t = check_budgets("budgets", budgets)
    y = _real_array("log_mass", log_mass)
    if y.ndim < 1 or y.shape[-1] != len(t):
        raise ValueError(f"log_mass must have last axis of length len(budgets) = {len(t)}, "
                         f"got shape {y.shape}")
    if (y > 0.0).any():
        raise ValueError("log_mass must be <= 0 (the log of a mass), got a positive entry")
    x = np.log(np.asarray(t, dtype=np.float64))
    x = x - x.mean()
    with np.errstate(invalid="ignore"):  # -inf - (-inf): the trend is undefined
        out = ((y - y.mean(axis=-1, keepdims=True)) * x).sum(axis=-1) / (x * x).sum()
    return float(out) if np.ndim(out) == 0 else out


def ladder_onset(lambdas: ArrayLike, trends: ArrayLike, delta: float = 0.5) -> Any:
    r"""First rung at which the trend falls more than ``delta`` below the lambda = 1 trend.

    .. math::

        D_l = \beta_l - \beta_0,\qquad i = \min\{l \ge 1 : D_l < -\delta\},\qquad
        \hat\lambda = \lambda_{i-1} + \frac{D_{i-1} + \delta}{D_{i-1} - D_i}\,
                      (\lambda_i - \lambda_{i-1}).

    Parameters
    ----------
    lambdas : array_like, shape (L,)
        The rungs (``lambdas[0] = 1``, strictly increasing).
    trends : array_like, shape (..., L)
        Trends per rung (:func:`trend`); NaN where undefined.
    delta : float
        The margin, > 0, fixed before the data.  With budgets ``T .. 4T`` a trend lower by
        ``0.5`` means the losing mass falls from ``T`` to ``4T`` by a further factor
        ``4^0.5 = 2`` beyond what it does at lambda = 1 (``sqrt 2`` per doubling).

    Returns
    -------
    float or ndarray, shape (...)
        The onset in ``[lambdas[0], lambdas[-1])``; ``inf`` when no rung crosses; NaN when
        a trend at or before the first crossing (anywhere, if none) is NaN.

    Examples
    --------
    >>> ladder_onset([1.0, 1.2, 1.4], [0.0, -0.25, -1.25])  # D = -0.5 halfway to 1.4
    1.25
    """
    lam = check_grid("lambdas", lambdas)
    d_margin = check_delta(delta)
    t = _real_array("trends", trends)
    if t.ndim < 1 or t.shape[-1] != lam.size:
        raise ValueError(f"trends must have last axis of length len(lambdas) = {lam.size}, "
                         f"got shape {t.shape}")
    if np.isinf(t).any():
        raise ValueError("trends must be finite or NaN, got an infinite entry")
    d = t - t[..., :1]
    below = d[..., 1:] < -d_margin
    crossed = below.any(axis=-1)
    i = np.argmax(below, axis=-1) + 1
    d_prev = np.take_along_axis(d, (i - 1)[..., None], axis=-1)[..., 0]
    d_at = np.take_along_axis(d, i[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(crossed, (d_prev + d_margin) / (d_prev - d_at), 0.0)
    out = np.where(crossed, lam[i - 1] + frac * (lam[i] - lam[i - 1]), np.inf)
    last = np.where(crossed, i, lam.size - 1)[..., None]
    undefined = (np.isnan(d) & (np.arange(lam.size) <= last)).any(axis=-1)
    out = np.where(undefined, np.nan, out)
    return float(out) if out.ndim == 0 else out


def _check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, (int, np.integer)) \
            or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    return int(n_boot)


def resample_pooled_log_mass(data: LadderData, n_boot: int,
                             rng: np.random.Generator | int) -> FloatArray:
    r"""Pooled log masses of ``n_boot`` two-level bootstrap replicates.

    .. math:: y^*_{l,t} = \log \frac1S \sum_{j=1}^S
              \frac{\sum_n w_{jn}\, x_{s^*_j,l,t,n}}
                   {\sum_n w_{jn}\, [x_{s^*_j,l,t,n} \ne \mathrm{NaN}]},

    with ``s*`` drawn uniformly with replacement and ``w_j`` the counts of ``N`` rollouts
    drawn with replacement for seed slot ``j``: one draw per slot, shared by every rung and
    budget (paired, as in :func:`validate.llm_check.onset.resample_rates`).

    Returns
    -------
    ndarray, shape (n_boot, L, B)
        NaN where a drawn seed slot has no rollout with a value in the cell.
    """
    b = _check_n_boot(n_boot)
    gen = np.random.default_rng(rng)
    s, n = data.n_seeds, data.n_rollouts
    seed_idx = gen.integers(0, s, size=(b, s))
    weights = gen.multinomial(n, np.full(n, 1.0 / n), size=(b, s)).astype(np.float64)
    shape = data.mass.shape[1:3]
    total = np.zeros((b, shape[0] * shape[1]))
    for seed in range(s):
        bs, js = np.nonzero(seed_idx == seed)
        if bs.size == 0:
            continue
        x = data.mass[seed].reshape(-1, n)  # (L*B, N)
        have = ~np.isnan(x)
        w = weights[bs, js]  # (m, N)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (w @ np.where(have, x, 0.0).T) / (w @ have.T.astype(np.float64))
        np.add.at(total, bs, mean)
    with np.errstate(divide="ignore"):
        return np.log(total / s).reshape(b, *shape)


@dataclass(frozen=True)
class OnsetInterval:
    """The ladder onset with its bootstrap interval (:func:`ladder_onset_interval`).

    Attributes
    ----------
    point : onset of the data (``inf``: none on the rungs; NaN: undefined).
    low, high : equal-tailed percentile interval of the replicates (``high = inf`` when more
        than ``(1 - level)/2`` of them find no onset).
    n_undefined : replicates whose onset is NaN (left out of the interval).
    level : the interval's nominal coverage.
    replicates : the replicates' onsets, shape (n_boot,).
    """

    point: float
    low: float
    high: float
    n_undefined: int
    level: float
    replicates: FloatArray


def ladder_onset_interval(data: LadderData, delta: float, n_boot: int,
                          rng: np.random.Generator | int, level: float = 0.9) -> OnsetInterval:
    """Point estimate and two-level bootstrap percentile interval of the ladder onset.

    The point is :func:`ladder_onset` of the trends of :attr:`LadderData.pooled_log_mass`;
    each replicate applies the same statistic to :func:`resample_pooled_log_mass`, and
    the interval is :func:`validate.llm_check.onset.percentile_interval` of them (no
    interpolation between order statistics, so replicates beyond the rungs give an
    infinite end rather than NaN).
    """
    d = check_delta(delta)
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in the open interval (0, 1), got {level!r}")
    point = ladder_onset(data.lambdas, trend(data.pooled_log_mass, data.budgets), d)
    reps = resample_pooled_log_mass(data, n_boot, rng)
    onsets = np.asarray(ladder_onset(data.lambdas, trend(reps, data.budgets), d)).reshape(-1)
    low, high, undefined = percentile_interval(onsets, level)
    return OnsetInterval(float(point), low, high, undefined, float(level), onsets)
