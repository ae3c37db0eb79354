r"""Online lambda* scheduler: a training rule that keeps lambda below the extrapolation cliff.

Each training step the scheduler is fed the teacher's and the G-OPD reference's (the frozen
warm start ``pi0``) log-probs at the structural positions of the batch and returns the
extrapolation coefficient to use,

.. math::

    \lambda_{\rm use} = \min\big(\lambda_{\rm target},\ \max\big(1,\ 1 + (1-\epsilon)\,
    (\underline{\lambda}^* - 1)\big)\big),

per structural position or, in ``global`` mode, the minimum over positions, where
:math:`\underline{\lambda}^*` is a lower confidence bound on the threshold, from one of
two estimators:

* ``"per_context"`` (default): lambda* of every sampled context, each contract-valid token
  its own class (:func:`cliff.lambda_star_by_token`), kept in a window per position; the
  bound is a distribution-free lower confidence bound on its ``quantile`` (an order
  statistic);
* ``"pooled"``: exponential moving averages (EMA) of the valid masses ``p`` and ``b``, and
  the smallest two-class lambda* over their confidence box.

Both are described in ``derivations/notes/scheduler.md``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_expit, logsumexp, ndtri
from scipy.stats import binom

from cliff import _checks
from cliff._bernoulli import solve
from cliff._estimate import DEFAULT_NORM_TOL, by_token, estimate, measure
from cliff._kary import solve_kary_log

__all__ = ["LambdaScheduler"]

FloatArray = NDArray[np.float64]
Mode = Literal["global", "per_position"]
MODES = ("global", "per_position")
Estimator = Literal["per_context", "pooled"]
ESTIMATORS = ("per_context", "pooled")

_GRID = 5
"""Points of the p-interval (in log-odds, ends included) at which lambda* is evaluated."""

_FINE_LOGIT = 20.0
"""Largest |log-odds| sent to :func:`cliff.solve`, which takes ``p`` and forms ``1 - p``:
tails above 2e-9 keep a relative error below 1e-7; smaller tails go to the log-space solver."""

def _log1mexp(x: FloatArray) -> FloatArray:
    """``log(1 - e^x)`` for ``x <= 0`` without cancellation (``-inf`` at ``x = 0``)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _batch_moments(log_x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log of the mean and relative M2 ``sum_i (x_i / mean - 1)^2`` over axis 0.

    ``log_x`` has shape ``(n, P, 2)``: per sample, position and class (valid, rest).
    """
    n = log_x.shape[0]
    log_mean = logsumexp(log_x, axis=0) - math.log(n)
    rel_m2 = np.sum(np.expm1(log_x - log_mean) ** 2, axis=0)
    return log_mean, rel_m2


def _combine(w_a: FloatArray, lm_a: FloatArray, r_a: FloatArray, w_b: float,
             lm_b: FloatArray, r_b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Chan's parallel update of (weight, mean, M2), in relative units ``M2 / mean^2``.

    ``mean = (w_a mean_a + w_b mean_b) / w``,
    ``M2 = M2_a + M2_b + (mean_b - mean_a)^2 w_a w_b / w``, every term divided by
    ``mean^2`` so that masses of 1e-30 keep their digits.
    """
    w = w_a + w_b
    lw_a = np.log(w_a)[..., None]
    lm = np.logaddexp(lw_a + lm_a, math.log(w_b) + lm_b) - np.log(w)[..., None]
    s_a, s_b = np.exp(lm_a - lm), np.exp(lm_b - lm)  # mean_a / mean, mean_b / mean
    cross = ((s_b - s_a) ** 2) * (w_a * w_b / w)[..., None]
    return lm, r_a * s_a**2 + r_b * s_b**2 + cross


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

    *Per-context estimator.*  Each sample ``i`` at position ``j`` is one context; its
    lambda*_i is :func:`cliff.lambda_star_by_token`: K-ary, each contract-valid token a
    class, the invalid tokens pooled.  The window keeps the last ``window`` values per
    position.  With ``n`` values and ``alpha = quantile``, the ``r``-th smallest is below
    the population ``alpha``-quantile with probability ``P(Bin(n, alpha) >= r)``; ``r`` is
    the largest with that probability ``>= confidence`` (distribution-free, for independent
    contexts).  Why per context and per token: a sequence breaks where its weakest position
    breaks, and lambda* of the pooled means is not the threshold of any context (lambda* is
    not linear in the masses); at a ranking position the teacher and the warm start split the
    valid mass differently, which the two-class reduction cannot see (it overestimates
    lambda*; ``derivations/notes/kary.md``).

    *Pooled estimator.*  Every sample ``i`` at position ``j`` gives exact class masses
    ``x_ij = (p_ij, 1 - p_ij)`` from :func:`cliff.estimate` (log space, no cancellation).
    The EMA gives weight ``decay^(t-s)`` to a sample of step ``s``:
    ``W = sum w``, ``W2 = sum w^2``, mean ``xbar = sum w x / W`` and
    ``M2 = sum w (x - xbar)^2`` are updated by Chan's parallel formula (stored as
    ``log xbar`` and ``M2 / xbar^2``).  With the effective sample size
    ``n_eff = W^2 / W2`` and the reliability-weighted variance
    ``s^2 = M2 / (W - W2 / W)``, the relative standard error of the mean of each class is
    ``rse = s / (xbar sqrt(n_eff))`` and its interval is
    ``log xbar +- z rse`` (delta method in log space, so a tail of 1e-9 never gets a
    negative bound), ``z = Phi^{-1}((1 + confidence)/2)``.  The interval on ``p`` is the
    intersection of the valid-class interval with the complement of the rest-class
    interval.  The same is done for ``b``.

    *Conservative end.*  ``lambda* = 1 + kappa(p)/|logit p - logit b|`` is monotone in
    ``b`` on each side of ``p``, so its minimum over ``I_b`` is at an end; it is evaluated
    at both ends of ``I_b`` and at 5 log-odds-spaced points of ``I_p`` (ends included) and
    the minimum is taken.  Where ``I_p`` or ``I_b`` reaches 0 or 1 the infimum of lambda*
    is 1 and that is used.  lambda* itself is :func:`cliff.solve`, or
    :func:`cliff.solve_kary_log` on the two classes where a tail is below 2e-9 (the same
    threshold computed from log masses, exact where ``p`` rounds to 1).

    *Why the EMA.*  Teacher and reference are frozen, but the contexts of a structural
    position are generated by the student, so their distribution drifts during training;
    the EMA tracks the current contexts, and ``n_eff`` says how much data that leaves.

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
        self.target_lambda = float(_checks.check_nonnegative("target_lambda", target_lambda))
        self.c = float(_checks.check_cap("c", c))
        self.c_low = 1.0 / self.c if c_low is None else float(_checks.check_floor("c_low", c_low))
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
        ms = float(_checks.as_float_array("min_samples", min_samples))
        if not (2.0 <= ms < math.inf):
            raise ValueError(f"min_samples must be a finite number >= 2 (an effective sample "
                             f"size), got {min_samples!r}")
        self.min_samples = ms
        self.n_positions: int | None = None
        self.steps = 0
        self.lambda_: Any = None
        self._stats: dict[str, FloatArray] = {}
        self._student: FloatArray | None = None
        self._contexts: list[list[float]] = []  # per position, oldest first (lambda* - 1)

    # --- config / serialisation ---------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able)."""
        return {"target_lambda": self.target_lambda, "c": self.c, "c_low": self.c_low,
                "margin": self.margin, "mode": self.mode, "estimator": self.estimator,
                "quantile": self.quantile, "window": self.window, "decay": self.decay,
                "confidence": self.confidence, "min_samples": self.min_samples}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: config, EMA statistics and the context windows, as
        plain JSON types.

        ``-inf`` log masses do not occur (:func:`cliff.estimate` refuses empty classes), so
        every float is finite and ``json.dumps`` round-trips it exactly; in ``contexts``
        (``lambda* - 1`` per context, oldest first) ``None`` stands for ``inf``.
        """
        lam = self.lambda_
        return {"config": self.config(), "n_positions": self.n_positions,
                "steps": self.steps,
                "lambda": lam.tolist() if isinstance(lam, np.ndarray) else lam,
                "stats": {k: v.tolist() for k, v in self._stats.items()},
                "contexts": [[v if math.isfinite(v) else None for v in row]
                             for row in self._contexts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (config included), checking every key."""
        missing = {"config", "n_positions", "steps", "lambda", "stats", "contexts"} - set(state)
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}")
        fresh = LambdaScheduler(**state["config"])
        n = state["n_positions"]
        stats = {k: np.asarray(v, dtype=np.float64) for k, v in state["stats"].items()}
        if n is not None:
            want = {"weight": (n,), "weight_sq": (n,), "log_mean_teacher": (n, 2),
                    "rel_m2_teacher": (n, 2), "log_mean_reference": (n, 2),
                    "rel_m2_reference": (n, 2)}
            got = {k: v.shape for k, v in stats.items()}
            if got != want:
                raise ValueError(f"state['stats'] must hold {want} for {n} positions, got {got}")
        elif stats:
            raise ValueError("state['stats'] must be empty when n_positions is None")
        contexts = [[math.inf if v is None else float(v) for v in row]
                    for row in state["contexts"]]
        if (contexts and len(contexts) != n) or any(len(r) > fresh.window for r in contexts):
            raise ValueError(f"state['contexts'] must hold one list of at most "
                             f"{fresh.window} values per position ({n or 0} positions)")
        self.__dict__.update(fresh.__dict__)
        self.n_positions, self.steps, self._stats = n, int(state["steps"]), stats
        self._contexts = contexts
        lam = state["lambda"]
        self.lambda_ = np.asarray(lam, dtype=np.float64) if isinstance(lam, list) else lam

    # --- the update -----------------------------------------------------------------------
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
            Contract-valid columns, as in :func:`cliff.estimate`.
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
        """
        if reference_valid is not None and self.estimator == "per_context":
            raise ValueError("reference_valid is only supported with estimator='pooled' (the "
                             "per-context classes are the valid tokens of one mask)")
        measured = measure(teacher_logprobs, reference_logprobs, valid, reference_valid,
                           complete, norm_tol)
        est = measured[0]
        shape = est.shape
        if len(shape) < 1:
            raise ValueError("teacher_logprobs must have shape [..., P, V] (positions on the "
                             "second-to-last axis), got a single distribution of shape [V]")
        n_pos = shape[-1]
        if self.n_positions is None:
            self.n_positions = n_pos
        elif n_pos != self.n_positions:
            raise ValueError(f"teacher_logprobs has {n_pos} positions on axis -2, but this "
                             f"scheduler tracks {self.n_positions}")
        headroom = (by_token(measured, self.c, self.c_low).reshape(-1, n_pos) - 1.0
                    if self.estimator == "per_context" else None)  # may raise: before any fold
        teacher = np.stack([est.log_p, est.log_p_rest], -1).reshape(-1, n_pos, 2)
        reference = np.stack([est.log_b, est.log_b_rest], -1).reshape(-1, n_pos, 2)
        self._fold(teacher, reference)
        if headroom is not None:
            self._push(headroom)
        if student_logprobs is not None:
            self._student = self._student_mass(teacher_logprobs, student_logprobs, valid,
                                               complete, norm_tol)
        self.steps += 1
        self.lambda_ = self._lambda()
        return self.lambda_

    def _push(self, headroom: FloatArray) -> None:
        """Append one batch's ``lambda* - 1`` ``(n, P)`` to the windows, dropping the oldest."""
        if not self._contexts:
            self._contexts = [[] for _ in range(headroom.shape[1])]
        for row, new in zip(self._contexts, headroom.T, strict=True):
            row.extend(new.tolist())
            del row[: max(0, len(row) - self.window)]

    def _fold(self, teacher: FloatArray, reference: FloatArray) -> None:
        n, n_pos = teacher.shape[0], teacher.shape[1]
        lm_t, r_t = _batch_moments(teacher)
        lm_r, r_r = _batch_moments(reference)
        if not self._stats or self.decay == 0.0:  # first batch, or keep only this batch
            self._stats = {"weight": np.full(n_pos, float(n)),
                           "weight_sq": np.full(n_pos, float(n)),
                           "log_mean_teacher": lm_t, "rel_m2_teacher": r_t,
                           "log_mean_reference": lm_r, "rel_m2_reference": r_r}
            return
        s = self._stats
        w_a = s["weight"] * self.decay
        for who, lm_b, r_b in (("teacher", lm_t, r_t), ("reference", lm_r, r_r)):
            s[f"log_mean_{who}"], s[f"rel_m2_{who}"] = _combine(
                w_a, s[f"log_mean_{who}"], s[f"rel_m2_{who}"] * self.decay, float(n),
                lm_b, r_b)
        s["weight"] = w_a + n
        s["weight_sq"] = s["weight_sq"] * self.decay**2 + n

    def _student_mass(self, teacher_logprobs: Any, student_logprobs: Any, valid: Any,
                      complete: bool, norm_tol: float) -> FloatArray:
        st = estimate(teacher_logprobs, student_logprobs, valid, complete=complete,
                      norm_tol=norm_tol)
        n_pos = st.shape[-1]
        log_m = np.stack([st.log_b, st.log_b_rest], -1).reshape(-1, n_pos, 2)
        return np.asarray(_batch_moments(log_m)[0])

    # --- estimates and bounds ------------------------------------------------------------
    @property
    def n_eff(self) -> FloatArray | None:
        """Effective sample size ``W^2 / W2`` per position (``None`` before any data)."""
        if not self._stats:
            return None
        return np.asarray(self._stats["weight"] ** 2 / self._stats["weight_sq"])

    def _interval(self, who: str) -> tuple[FloatArray, FloatArray]:
        """Log-odds interval ``[lo, hi]`` of the valid-class mass, per position."""
        s = self._stats
        w, w2 = s["weight"], s["weight_sq"]
        n_eff = w**2 / w2
        z = float(ndtri(0.5 + self.confidence / 2.0))
        # one effective sample has no variance estimate: an unbounded interval
        ok = n_eff > 1.0
        denom = np.where(ok, w * (1.0 - 1.0 / n_eff), 1.0)
        var_rel = np.where(ok[:, None], s[f"rel_m2_{who}"] / denom[:, None], np.inf)
        rse = np.sqrt(var_rel / n_eff[:, None])
        lm = s[f"log_mean_{who}"]
        lo_log, hi_log = lm - z * rse, np.minimum(lm + z * rse, 0.0)  # (P, 2) log bounds
        # valid mass in [e^{lo_v}, e^{hi_v}] and in [1 - e^{hi_r}, 1 - e^{lo_r}]
        logit_lo = np.maximum(lo_log[:, 0] - _log1mexp(lo_log[:, 0]),
                              _log1mexp(hi_log[:, 1]) - hi_log[:, 1])
        logit_hi = np.minimum(hi_log[:, 0] - _log1mexp(hi_log[:, 0]),
                              _log1mexp(lo_log[:, 1]) - lo_log[:, 1])
        return logit_lo, logit_hi

    def _lambda_star_bound(self) -> FloatArray:
        """Lower confidence bound of lambda* per position (1 where a box edge is 0 or 1)."""
        p_lo, p_hi = self._interval("teacher")
        b_lo, b_hi = self._interval("reference")
        edge = ~(np.isfinite(p_lo) & np.isfinite(p_hi) & np.isfinite(b_lo) & np.isfinite(b_hi))
        frac = np.linspace(0.0, 1.0, _GRID)
        zp = np.where(edge, 0.0, p_lo)[:, None] + frac * np.where(edge, 0.0, p_hi - p_lo)[:, None]
        zb = np.stack([np.where(edge, 0.0, b_lo), np.where(edge, 0.0, b_hi)], -1)
        zp, zb = np.broadcast_arrays(zp[:, :, None], zb[:, None, :])  # (P, GRID, 2)
        return np.where(edge, 1.0, self._lambda_star(zp, zb).min(axis=(1, 2)))

    def _lambda_star(self, zp: FloatArray, zb: FloatArray) -> FloatArray:
        """lambda* at log-odds ``zp``, ``zb``: :func:`cliff.solve` where both masses and
        their complements are resolved in float64 (``|z| <= 20``, tails above 2e-9),
        :func:`cliff.solve_kary_log` on the two classes elsewhere (exact tails)."""
        out = np.empty(zp.shape)
        fine = (np.abs(zp) <= _FINE_LOGIT) & (np.abs(zb) <= _FINE_LOGIT)
        if fine.any():
            out[fine] = solve(_expit(zp[fine]), _expit(zb[fine]), self.c,
                              c_low=self.c_low).lambda_star
        if not fine.all():
            rest = ~fine
            out[rest] = solve_kary_log(_two_class(zp[rest]), _two_class(zb[rest]), self.c,
                                       c_low=self.c_low).lambda_star
        return out

    def _quantile_bound(self) -> tuple[FloatArray, FloatArray]:
        """Per position: the lower confidence bound on the ``quantile`` of per-context
        lambda* (an order statistic; ``nan`` while too few contexts), and the empirical
        quantile itself."""
        bound, point = np.full(len(self._contexts), np.nan), np.full(len(self._contexts), np.nan)
        for j, row in enumerate(self._contexts):
            n = len(row)
            if n == 0:
                continue
            values = np.sort(np.asarray(row))
            point[j] = 1.0 + np.quantile(values, self.quantile)
            # r = min{k : P(Bin(n, q) <= k) >= 1 - confidence}: P(X_(r) <= xi_q) >= confidence
            r = int(binom.ppf(1.0 - self.confidence, n, self.quantile))
            if r >= 1:
                bound[j] = 1.0 + values[r - 1]
        return bound, point

    def _bound(self) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Per position: the bound of the chosen estimator, and whether there is enough data
        for it (``min_samples``, and for the quantile an order statistic that exists)."""
        if self.estimator == "pooled":
            n_eff = self.n_eff
            assert n_eff is not None
            return np.asarray(self._lambda_star_bound()), np.asarray(n_eff >= self.min_samples)
        bound = self._quantile_bound()[0]
        counts = np.array([len(row) for row in self._contexts], dtype=float)
        return bound, np.asarray((counts >= self.min_samples) & ~np.isnan(bound))

    def _lambda(self) -> Any:
        bound, warm = self._bound()
        safe = np.where(warm, np.maximum(1.0, 1.0 + (1.0 - self.margin) * (bound - 1.0)), 1.0)
        lam = np.minimum(self.target_lambda, safe)
        if self.mode == "global":
            return float(lam.min())
        return lam

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
                               "lambda": self.lambda_.tolist()
                               if isinstance(self.lambda_, np.ndarray) else self.lambda_}
        if not self._stats:
            return out
        s, n_eff = self._stats, self.n_eff
        assert n_eff is not None
        lp, lb = s["log_mean_teacher"], s["log_mean_reference"]
        point = solve_kary_log(lp, lb, self.c, c_low=self.c_low)
        bound, warm = self._bound()
        out.update({
            "p": np.exp(lp[:, 0]).tolist(), "b": np.exp(lb[:, 0]).tolist(),
            "p_interval": np.stack([_expit(v) for v in self._interval("teacher")], -1).tolist(),
            "b_interval": np.stack([_expit(v) for v in self._interval("reference")],
                                   -1).tolist(),
            "lambda_star": np.atleast_1d(point.lambda_star).tolist(),
            "n_eff": n_eff.tolist(), "lambda_star_bound": _nan_to_none(bound),
            "warm": warm.tolist()})
        if self.estimator == "per_context":
            out["lambda_star_quantile"] = _nan_to_none(self._quantile_bound()[1])
            out["contexts"] = [len(row) for row in self._contexts]
        if self._student is not None:
            # R: both classes' teacher/student ratios within [c_low, c] (log space)
            log_ratio = lp - self._student
            with np.errstate(divide="ignore"):
                inside = (log_ratio >= np.log(self.c_low)) & (log_ratio <= np.log(self.c))
            out["student_mass"] = np.exp(self._student[:, 0]).tolist()
            out["student_in_region"] = inside.all(axis=-1).tolist()
        return out

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"LambdaScheduler({cfg}, steps={self.steps}, lambda_={self.lambda_!r})"


def _nan_to_none(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


def _expit(logit: FloatArray) -> FloatArray:
    """``sigmoid`` of a log-odds array (``inf`` -> 1, ``-inf`` -> 0)."""
    return np.exp(log_expit(logit))


def _two_class(logit: FloatArray) -> FloatArray:
    """``[..., 2]`` log masses ``(log sigmoid z, log sigmoid -z)``, normalised exactly."""
    return np.stack([log_expit(logit), log_expit(-logit)], -1)


def _unit_interval(name: str, value: float) -> float:
    v = float(_checks.as_float_array(name, value))
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v
