r"""Per-context estimator: a lower confidence bound on a low quantile of lambda*_i.

Each sample ``i`` at structural position ``j`` is one context with its own teacher and
reference distributions, and so its own threshold ``lambda*_i``
(:func:`cliff.lambda_star_by_token`: every contract-valid token its own class, the invalid
tokens pooled).  The last ``window`` values per position are kept; with ``n`` of them, sorted
``x_(1) <= ... <= x_(n)``, and ``alpha = quantile``,

.. math::

    P\big(x_{(r)} \le \xi_\alpha\big) = P\big(\mathrm{Bin}(n, \alpha) \ge r\big),
    \qquad r = \min\{k : P(\mathrm{Bin}(n, \alpha) \le k) \ge 1 - \text{confidence}\},

so ``x_(r)`` is a distribution-free lower confidence bound on the population
``alpha``-quantile ``xi_alpha`` for independent contexts (``derivations/notes/scheduler.md``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from cliff._calibration.estimate import by_token
from cliff._schedule.batch import Batch

__all__ = ["QuantileEstimator"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class QuantileEstimator:
    r"""Order-statistic lower bound on the ``quantile`` of per-context lambda*, per position.

    Parameters
    ----------
    c, c_low : float
        IS clip cap ``> 1`` and floor in ``[0, 1)``.
    quantile : float
        ``alpha`` in (0, 1), the level of the bounded quantile.
    window : int
        Most recent contexts kept per position, ``>= 1``.
    confidence : float
        One-sided level of the bound, in (0, 1).
    min_samples : float
        Contexts per position below which the bound is not ready.

    Notes
    -----
    The bound at a position is ready once it holds ``min_samples`` contexts and the order
    statistic exists: ``r >= 1`` needs ``n >= log(1 - confidence) / log(1 - alpha)``
    (59 at 5% and 95%).  Values are stored as the headroom ``lambda*_i - 1`` (``inf`` where
    no extrapolation leaves the region).

    Examples
    --------
    >>> est = QuantileEstimator(c=5.0, c_low=0.2, quantile=0.05, window=1024,
    ...                         confidence=0.95, min_samples=8.0)
    >>> est.load_state_dict([[0.5] * 58 + [0.1]], n_positions=1)   # 59 contexts
    >>> bound, ready = est.bound()                                  # r = 1: the smallest
    >>> float(bound[0]), bool(ready[0])
    (1.1, True)
    """

    def __init__(self, *, c: float, c_low: float, quantile: float, window: int,
                 confidence: float, min_samples: float) -> None:
        self.c, self.c_low = c, c_low
        self.quantile, self.window = quantile, window
        self.confidence, self.min_samples = confidence, min_samples
        self.contexts: list[list[float]] = []  # per position, oldest first (lambda* - 1)

    def update(self, batch: Batch) -> None:
        """Append the batch's per-context ``lambda* - 1``, dropping the oldest past ``window``.

        Only present contexts are appended, in batch order; a position absent from the batch
        keeps its window.  The thresholds are solved before any window changes, so an error
        leaves them as they were.
        """
        n_pos = batch.n_positions
        headroom = by_token(batch.measured, self.c, self.c_low).reshape(-1, n_pos) - 1.0
        if not self.contexts:
            self.contexts = [[] for _ in range(n_pos)]
        for row, new, present in zip(self.contexts, headroom.T, batch.present.T, strict=True):
            row.extend(new[present].tolist())
            del row[: max(0, len(row) - self.window)]

    def grow(self, n_positions: int) -> None:
        """Append empty windows, up to ``n_positions``."""
        if self.contexts:
            self.contexts += [[] for _ in range(n_positions - len(self.contexts))]

    def bound(self) -> tuple[FloatArray, BoolArray]:
        """Per position: the lower confidence bound on the quantile of lambda* (``nan``
        while no order statistic exists), and whether it is ready."""
        bound = np.full(len(self.contexts), np.nan)
        for j, row in enumerate(self.contexts):
            if row:
                # r = min{k : P(Bin(n, q) <= k) >= 1 - confidence}: P(X_(r) <= xi_q) >= conf.
                r = int(binom.ppf(1.0 - self.confidence, len(row), self.quantile))
                if r >= 1:
                    bound[j] = 1.0 + np.sort(np.asarray(row))[r - 1]
        counts = np.array([len(row) for row in self.contexts], dtype=float)
        return bound, np.asarray((counts >= self.min_samples) & ~np.isnan(bound))

    def state(self) -> dict[str, Any]:
        """``lambda_star_quantile`` (the window's empirical quantile, ``None`` where empty)
        and ``contexts`` (values held per position)."""
        point = [1.0 + _quantile(np.asarray(row), self.quantile) if row else None
                 for row in self.contexts]
        return {"lambda_star_quantile": point, "contexts": [len(r) for r in self.contexts]}

    def state_dict(self) -> list[list[float | None]]:
        """The windows, ``lambda* - 1`` per context, oldest first; ``None`` stands for
        ``inf`` so that ``json.dumps`` round-trips every value exactly."""
        return [[v if math.isfinite(v) else None for v in row] for row in self.contexts]

    def load_state_dict(self, state: list[list[float | None]], n_positions: int | None) -> None:
        """Restore :meth:`state_dict` output for a scheduler of ``n_positions`` positions."""
        contexts = [[math.inf if v is None else float(v) for v in row] for row in state]
        if (contexts and len(contexts) != n_positions) or any(len(r) > self.window
                                                              for r in contexts):
            raise ValueError(f"state['contexts'] must hold one list of at most {self.window} "
                             f"values per position ({n_positions or 0} positions)")
        self.contexts = contexts


def _quantile(values: FloatArray, q: float) -> float:
    """``np.quantile`` (linear interpolation) that is ``inf`` between two infinite values
    (where the interpolation would compute ``inf - inf``)."""
    with np.errstate(invalid="ignore"):
        x = float(np.quantile(values, q))
    return math.inf if math.isnan(x) else x
