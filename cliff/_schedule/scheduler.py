r"""Online lambda* scheduler: a training rule that keeps lambda below the extrapolation cliff.

Each training step the scheduler is fed the teacher's and the G-OPD reference's (the frozen
warm start ``pi0``) log-probs at the structural positions of the batch and returns the
extrapolation coefficient to use,

.. math::

    \lambda_{\rm use} = \min\big(\lambda_{\rm target},\ \max\big(1,\ 1 + (1-\epsilon)\,
    (\underline{\lambda}^* - 1)\big)\big),

per structural position or, in ``global`` mode, the minimum over positions, where
:math:`\underline{\lambda}^*` is a lower confidence bound on the threshold, from one of
two estimators behind one small interface (:class:`_Estimator`):

* ``"per_context"`` (default, :mod:`cliff._schedule.quantile`): lambda* of every sampled
  context, each contract-valid token its own class (:func:`cliff.lambda_star_by_token`),
  kept in a window per position; the bound is a distribution-free lower confidence bound on
  its ``quantile`` (an order statistic);
* ``"pooled"`` (:mod:`cliff._schedule.pooled`): exponential moving averages (EMA) of the valid
  masses ``p`` and ``b``, and the smallest two-class lambda* over their confidence box.

Both are described in ``derivations/notes/scheduler.md``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from cliff._calibration.estimate import DEFAULT_NORM_TOL
from cliff._schedule.batch import Batch, moments, read_batch
from cliff._schedule.pooled import PooledEstimator
from cliff._schedule.quantile import QuantileEstimator
from cliff._util import checks

__all__ = ["LambdaScheduler"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Mode = Literal["global", "per_position"]
MODES = ("global", "per_position")
Estimator = Literal["per_context", "pooled"]
ESTIMATORS = ("per_context", "pooled")


class _Estimator(Protocol):
    """What the rule needs from an estimator of lambda*, per structural position."""

    def update(self, batch: Batch) -> None:
        """Fold one update's contexts in."""

    def bound(self) -> tuple[FloatArray, BoolArray]:
        """The lower confidence bound on lambda* and whether it is ready, each ``(P,)``."""
        ...

    def state(self) -> dict[str, Any]:
        """Inspectable estimates (plain lists)."""
        ...


def safe_lambda(target: float, bound: FloatArray, ready: BoolArray, margin: float
                ) -> FloatArray:
    r"""The rule: ``min(target, max(1, 1 + (1 - margin)(bound - 1)))`` where the bound is
    ready, ``min(target, 1)`` where it is not.

    .. math::

        \lambda = \min\big(\lambda_{\rm target},\ \max\big(1,\ 1 + (1-\epsilon)\,
        (\underline{\lambda}^* - 1)\big)\big)

    The margin ``epsilon`` is a share of the headroom ``bound - 1``: lambda = 1 is plain
    OPD, whose fixed point is the teacher (every IS ratio 1), clip-safe at any bound.

    Examples
    --------
    >>> safe_lambda(3.0, np.array([1.126, 1.03, np.inf, 2.0]),
    ...             np.array([True, True, True, False]), 0.05).round(6).tolist()
    [1.1197, 1.0285, 3.0, 1.0]
    """
    headroom = np.maximum(1.0, 1.0 + (1.0 - margin) * (np.asarray(bound) - 1.0))
    return np.asarray(np.minimum(target, np.where(ready, headroom, 1.0)))


class LambdaScheduler:
    r"""Extrapolation coefficient that stays below the clip-safety threshold lambda*.

    .. math::

        \lambda_t = \min\big(\lambda_{\rm target},\ \max\big(1,\ 1 + (1-\epsilon)\,
        (\underline{\lambda}^*_t - 1)\big)\big),

    where :math:`\underline{\lambda}^*_t` is a lower confidence bound on lambda* at each
    structural position: by default on a low quantile of the per-context thresholds with
    every valid token its own class; with ``estimator="pooled"``, the smallest two-class
    ``lambda*(p, b, c)`` over the confidence box :math:`I_p \times I_b` of EMA estimates of
    the teacher mass ``p`` and the reference mass ``b`` on the contract-valid class (Notes).

    Parameters
    ----------
    target_lambda : float
        The extrapolation coefficient the user wants, ``>= 0``; returned unchanged whenever
        it lies below the safe bound.
    c : float
        IS clip strength of the training run: the cap on the teacher/student ratio, > 1.
    c_low : float, optional
        Lower ratio clip in [0, 1); default ``1/c``; 0 means no lower clip.
    margin : float
        Safety margin ``epsilon`` in [0, 1), a share of the headroom: the scheduler never
        returns more than ``1 + (1 - epsilon)(bound - 1)``, where ``bound`` is the lower
        confidence bound of lambda*, so it keeps ``1 - epsilon`` of the extrapolation that
        the bound allows (lambda = 1 is plain OPD, always clip-safe).  Default 0.05.
    mode : {'global', 'per_position'}
        ``'global'``: one lambda, the minimum over structural positions.  ``'per_position'``:
        one lambda per position (shape ``[P]``), for a per-token advantage weight.
    estimator : {'per_context', 'pooled'}
        Which lambda* is bounded (Notes).  Default ``'per_context'``.
    quantile : float
        ``'per_context'``: the level ``alpha`` in (0, 1) of the quantile of per-context
        lambda* that is bounded.  With ``L`` structural positions per answer,
        ``alpha = delta / L`` bounds by ``delta`` the share of answers that contain a
        context past its threshold (union bound).  Default 0.05.
    window : int
        ``'per_context'``: the most recent contexts kept per position, ``>= 1``.
        Default 1024.
    decay : float
        ``'pooled'`` (and the ``p``, ``b`` diagnostics of :meth:`state`): EMA decay per
        :meth:`update` in [0, 1); old observations are down-weighted by ``decay`` each step
        (0 keeps only the latest batch).  Default 0.99.
    confidence : float
        Level in (0, 1): one-sided for the quantile bound, two-sided for each of the ``p``
        and ``b`` intervals of ``'pooled'``.  Default 0.95.
    min_samples : float
        Sample size (per position; effective size for ``'pooled'``) below which the
        scheduler is still warming up and returns ``min(target_lambda, 1)`` (plain OPD,
        whose fixed point is the teacher, always clip-safe).  At least 2.  Default 8.
        ``'per_context'`` also waits until the window holds enough contexts for the order
        statistic to exist: ``n >= log(1 - confidence) / log(1 - quantile)`` (59 at the
        defaults).

    Attributes
    ----------
    lambda_ : float or ndarray or None
        The value returned by the last :meth:`update` (``None`` before the first).
    n_positions : int or None
        Number ``P`` of structural positions, fixed by the first :meth:`update`.

    Notes
    -----
    *What to pass.*  ``p`` is the **teacher's** mass on the contract-valid tokens;
    ``b`` is the mass of the G-OPD **reference** ``pi0`` of the reward
    ``lambda log(piT/pi0)``: the frozen warm-start checkpoint, *not* the current student
    (the student's mass is the moving ``m`` of the dynamics, which lambda* does not
    depend on).  An optional ``student_logprobs`` only feeds the diagnostics.

    *Per-context estimator* (``estimator="per_context"``).  Each sample ``i``
    at position ``j`` is one context; its lambda*_i is
    :func:`cliff.lambda_star_by_token`: K-ary, each contract-valid token a class, the
    invalid tokens pooled.  The window keeps the last ``window`` values per position; with
    ``n`` values and ``alpha = quantile``, the ``r``-th smallest is below the population
    ``alpha``-quantile with probability ``P(Bin(n, alpha) >= r)``, and ``r`` is the largest
    with that probability ``>= confidence``.  Why per context and per token: a sequence
    breaks where its weakest position breaks, and lambda* of the pooled means is not the
    threshold of any context (lambda* is not linear in the masses); at a ranking position
    the teacher and the warm start split the valid mass differently, which the two-class
    reduction cannot see (it overestimates lambda*; ``derivations/notes/kary.md``).

    *Positions that do not occur.*  Batches need not hold every position type: a context
    whose ``valid`` row is all False is absent and contributes nothing, and a position with
    no present context in a batch is left exactly as it was (its window, its EMA statistics
    and weights; its EMA decays only in updates where it occurs).  It keeps its last bound
    and readiness, and until it first occurs it is not warm (``min(target, 1)`` there, and
    so in ``'global'`` mode).  Pad a batch to the largest count of any type rather than
    truncating it to the smallest.

    *Pooled estimator* (``estimator="pooled"``).  EMA weights ``decay^(t-s)`` for a
    sample of step ``s``, with ``n_eff = W^2 / W2``; the mean and
    ``M2`` of each class mass are merged by Chan's parallel formula in log space; each class
    gets the interval ``log xbar +- z rse`` (delta method, so a tail of 1e-9 never gets a
    negative bound); the bound is the smallest two-class lambda* over the box, evaluated at
    both ends of ``I_b`` and 5 log-odds-spaced points of ``I_p``, and 1 where the box
    reaches 0 or 1.  The EMA is kept in both modes: it feeds the ``p``, ``b`` diagnostics.

    Examples
    --------
    >>> import numpy as np
    >>> sched = LambdaScheduler(3.0, c=5.0, margin=0.05)
    >>> teacher = np.log(np.tile([0.99, 0.01], (64, 1, 1)))      # (B=64, P=1, V=2)
    >>> reference = np.log(np.tile([0.999, 0.001], (64, 1, 1)))
    >>> lam = sched.update(teacher, reference, np.array([True, False]))
    >>> import cliff
    >>> lam_star = cliff.solve(0.99, 0.999, 5.0).lambda_star             # 1.714
    >>> bool(abs(lam - (1 + 0.95 * (lam_star - 1))) < 1e-9)             # 1.678
    True
    """

    def __init__(self, target_lambda: float, *, c: float, c_low: float | None = None,
                 margin: float = 0.05, mode: Mode = "global",
                 estimator: Estimator = "per_context", quantile: float = 0.05,
                 window: int = 1024, decay: float = 0.99, confidence: float = 0.95,
                 min_samples: float = 8.0) -> None:
        self.target_lambda = float(checks.check_nonnegative("target_lambda", target_lambda))
        self.c = float(checks.check_cap("c", c))
        self.c_low = 1.0 / self.c if c_low is None else float(checks.check_floor("c_low", c_low))
        self.margin = _unit_interval("margin", margin)
        self.decay = _unit_interval("decay", decay)
        self.confidence = _unit_interval("confidence", confidence)
        if self.confidence == 0.0:
            raise ValueError("confidence must be in (0, 1), got 0.0")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode: Mode = mode
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.estimator: Estimator = estimator
        self.quantile = _unit_interval("quantile", quantile)
        if self.quantile == 0.0:
            raise ValueError("quantile must be in (0, 1), got 0.0")
        if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
            raise ValueError(f"window must be an integer >= 1 (contexts kept per position), "
                             f"got {window!r}")
        self.window = int(window)
        ms = float(checks.as_float_array("min_samples", min_samples))
        if not (2.0 <= ms < math.inf):
            raise ValueError(f"min_samples must be a finite number >= 2 (an effective sample "
                             f"size), got {min_samples!r}")
        self.min_samples = ms
        self.n_positions: int | None = None
        self.steps = 0
        self.lambda_: Any = None
        self._pooled = PooledEstimator(c=self.c, c_low=self.c_low, decay=self.decay,
                                       confidence=self.confidence, min_samples=ms)
        self._quantile = (QuantileEstimator(c=self.c, c_low=self.c_low, quantile=self.quantile,
                                             window=self.window, confidence=self.confidence,
                                             min_samples=ms)
                          if estimator == "per_context" else None)
        self._student: FloatArray | None = None  # (P, 2) log mean of the last batch present

    @property
    def _bounding(self) -> _Estimator:
        """The estimator whose bound the rule uses."""
        return self._pooled if self._quantile is None else self._quantile

    # --- the rule -------------------------------------------------------------------------
    def update(self, teacher_logprobs: Any, reference_logprobs: Any, valid: Any, *,
               student_logprobs: Any = None, reference_valid: Any = None,
               complete: bool = True, norm_tol: float = DEFAULT_NORM_TOL) -> Any:
        r"""Fold one step's log-probs into the estimate; return the lambda to use.

        Parameters
        ----------
        teacher_logprobs : array_like or torch.Tensor, shape ``[..., P, V]``
            Teacher log-probs at the ``P`` structural positions; leading axes are samples
            (batch rows), pooled.  ``[P, V]`` is one sample per position.
        reference_logprobs : array_like or torch.Tensor, shape ``[..., P, V]``
            Log-probs of the G-OPD reference ``pi0`` (the frozen warm start) at the same
            positions: *not* the current student.
        valid : bool mask broadcastable to ``[..., P, V]``, or int ids per row
            Contract-valid columns, as in :func:`cliff.estimate`.  A row with no valid
            column (all False, or an empty list of ids) marks that context absent: a
            position type that did not occur in that sample, or in the whole batch.  Its
            log-probs are not used (pad with zeros, say) and it contributes nothing.
        student_logprobs : optional, shape ``[..., P, V]``
            The current student's log-probs, for diagnostics only (:meth:`state`); they do
            not change the returned lambda.
        reference_valid, complete, norm_tol
            Passed to :func:`cliff.estimate` (``reference_valid`` with ``'pooled'`` only:
            the per-token classes need one valid set).

        Returns
        -------
        float or ndarray of shape ``[P]``
            ``'global'`` mode: a float; ``'per_position'``: one lambda per position.

        Raises
        ------
        ValueError
            As :func:`cliff.estimate`; a number of positions other than the first
            update's; ``reference_valid`` with ``'per_context'``.  Every check runs before
            the state changes.
        """
        if reference_valid is not None and self._quantile is not None:
            raise ValueError("reference_valid is only supported with estimator='pooled' (the "
                             "per-context classes are the valid tokens of one mask)")
        batch = read_batch(teacher_logprobs, reference_logprobs, valid,
                           reference_valid=reference_valid, student_logprobs=student_logprobs,
                           complete=complete, norm_tol=norm_tol)
        n_pos = batch.n_positions
        if self.n_positions is not None and n_pos != self.n_positions:
            raise ValueError(f"teacher_logprobs has {n_pos} positions on axis -2, but this "
                             f"scheduler tracks {self.n_positions}")
        if self._quantile is not None:  # solves the by-token thresholds: may raise, so first
            self._quantile.update(batch)
        self._pooled.update(batch)
        if batch.student is not None:
            count, log_mean, _ = moments(batch.student, batch.present)
            if self._student is None:
                self._student = np.full((n_pos, 2), np.nan)
            self._student[count > 0] = log_mean[count > 0]
        self.n_positions = n_pos
        self.steps += 1
        lam = safe_lambda(self.target_lambda, *self._bounding.bound(), self.margin)
        self.lambda_ = float(lam.min()) if self.mode == "global" else lam
        return self.lambda_

    def grow(self, n_positions: int) -> None:
        """Track ``n_positions`` structural positions: the current ones, then new ones that
        have not occurred yet (for a set of position groups that grows as new kinds of
        position turn up, as :class:`cliff.ContractPositions` finds them).

        Afterwards the estimates are those of a scheduler that tracked all ``n_positions``
        from its first update, with the new ones absent from every batch so far (its
        :meth:`state_dict` is the same but for ``lambda``, the value last returned, which
        ``'per_position'`` mode extends with ``min(target, 1)``).  Before the first update
        there is nothing to grow: the first update sets the number.

        Raises
        ------
        ValueError
            ``n_positions`` is not an integer, or fewer than the positions tracked.
        """
        n = checks.check_int_at_least("n_positions", n_positions, 1)
        if self.n_positions is None or n == self.n_positions:
            return
        if n < self.n_positions:
            raise ValueError(f"n_positions must be at least the {self.n_positions} positions "
                             f"this scheduler tracks, got {n}")
        extra = n - self.n_positions
        self._pooled.grow(n)
        if self._quantile is not None:
            self._quantile.grow(n)
        if self._student is not None:
            self._student = np.concatenate([self._student, np.full((extra, 2), np.nan)])
        if isinstance(self.lambda_, np.ndarray):
            self.lambda_ = np.concatenate([self.lambda_,
                                           np.full(extra, min(self.target_lambda, 1.0))])
        self.n_positions = n

    # --- inspection -----------------------------------------------------------------------
    @property
    def n_eff(self) -> FloatArray | None:
        """Effective sample size ``W^2 / W2`` of the EMA per position (``None`` before any
        data)."""
        return self._pooled.n_eff

    def state(self) -> dict[str, Any]:
        """Inspectable estimates per position (plain lists; ``None`` before any data).

        Keys: ``p``, ``b`` (EMA point estimates), ``p_interval``, ``b_interval`` (the
        confidence intervals, ``[[lo, hi], ...]``), ``lambda_star`` (two-class, at the point
        estimates), ``n_eff``, ``lambda_star_bound`` (the bound in use, ``None`` while too
        few contexts), ``warm``, ``lambda`` (last returned), ``steps``; for
        ``'per_context'`` also ``lambda_star_quantile`` (the empirical quantile of the
        window) and ``contexts`` (values in each window); and with
        ``student_logprobs``: ``student_mass`` (last batch mean) and ``student_in_region``
        (whether it lies in the clip-safe region of the estimated ``p``).
        """
        out: dict[str, Any] = {"steps": self.steps, "mode": self.mode,
                               "estimator": self.estimator,
                               "target_lambda": self.target_lambda,
                               "lambda": _plain(self.lambda_)}
        if self.n_positions is None:
            return out
        bound, warm = self._bounding.bound()
        out.update(self._pooled.state())
        out.update({"lambda_star_bound": _nan_to_none(bound), "warm": warm.tolist()})
        if self._quantile is not None:
            out.update(self._quantile.state())
        if self._student is not None:
            # R: both classes' teacher/student ratios within [c_low, c] (log space)
            log_ratio = self._pooled.log_mean_teacher - self._student
            with np.errstate(divide="ignore"):
                inside = (log_ratio >= np.log(self.c_low)) & (log_ratio <= np.log(self.c))
            seen = ~np.isnan(self._student[:, 0])
            out["student_mass"] = _nan_to_none(np.exp(self._student[:, 0]))
            out["student_in_region"] = [bool(v) if ok else None
                                        for v, ok in zip(inside.all(axis=-1), seen, strict=True)]
        return out

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"LambdaScheduler({cfg}, steps={self.steps}, lambda_={self.lambda_!r})"

    # --- config / serialisation -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able)."""
        return {"target_lambda": self.target_lambda, "c": self.c, "c_low": self.c_low,
                "margin": self.margin, "mode": self.mode, "estimator": self.estimator,
                "quantile": self.quantile, "window": self.window, "decay": self.decay,
                "confidence": self.confidence, "min_samples": self.min_samples}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON types: ``config``, ``n_positions``,
        ``steps``, ``lambda``, ``stats`` (the EMA sums of the pooled masses, kept in both
        estimators for :meth:`state`) and ``contexts`` (the per-context windows; empty with
        ``'pooled'``).  ``json.dumps`` round-trips every value exactly."""
        return {"config": self.config(), "n_positions": self.n_positions,
                "steps": self.steps, "lambda": _plain(self.lambda_),
                "stats": self._pooled.state_dict(),
                "contexts": [] if self._quantile is None else self._quantile.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (config included), checking every key."""
        missing = {"config", "n_positions", "steps", "lambda", "stats", "contexts"} - set(state)
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}")
        fresh = LambdaScheduler(**state["config"])
        n = state["n_positions"]
        fresh._pooled.load_state_dict(state["stats"], n)
        if fresh._quantile is not None:
            fresh._quantile.load_state_dict(state["contexts"], n)
        elif state["contexts"]:
            raise ValueError("state['contexts'] must be empty for estimator='pooled', got "
                             f"{len(state['contexts'])} windows")
        fresh.n_positions, fresh.steps = n, int(state["steps"])
        lam = state["lambda"]
        fresh.lambda_ = np.asarray(lam, dtype=np.float64) if isinstance(lam, list) else lam
        self.__dict__.update(fresh.__dict__)


def _plain(lam: Any) -> Any:
    return lam.tolist() if isinstance(lam, np.ndarray) else lam


def _nan_to_none(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


def _unit_interval(name: str, value: float) -> float:
    v = float(checks.as_float_array(name, value))
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v
