r"""Estimate ``p`` and ``b`` at structural positions from real teacher/reference log-probs.

At each structural position (an opening brace, a key's quote, a comma between list items)
the vocabulary splits into two equivalence classes: the tokens that keep the output
contract-valid (``valid``) and the rest.  The teacher's mass on the valid class is ``p``,
the reference's (warm start's) is ``b``; :meth:`Estimate.solve` passes them to
:func:`cliff.solve`.  Both masses *and their complements* are computed in log space with
``logsumexp`` over the tokens of each class, so a tail mass of ``1e-30`` is kept exactly
even where ``p`` itself rounds to ``1.0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cliff._calibration.reduce import Masses, Tokens, checked, mask_like, reduce
from cliff._theory.bernoulli import SolveResult, solve
from cliff._theory.kary import KaryResult, solve_kary_log
from cliff._theory.sequence import predict_parse_rate

__all__ = ["Estimate", "estimate", "lambda_star_by_token", "DEFAULT_NORM_TOL"]

FloatArray = NDArray[np.float64]

DEFAULT_NORM_TOL = 1e-3
"""Largest accepted ``|log sum_v exp(logprob_v)|`` (about 0.1% of mass) before an error."""


def _normalised(name: str, masses: Masses, complete: bool, tol: float
                ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(log valid mass, log rest mass, log normaliser) per position, from the row sums."""
    log_total, log_valid, log_rest = masses.log_total, masses.log_valid, masses.log_rest
    if complete:
        off = np.abs(log_total) > tol
        if off.any():
            i = _first(off)
            raise ValueError(
                f"{name} must be normalised log-probs over the full vocabulary: |log sum exp| "
                f"must be <= {tol:g}, but at position {i} it is {float(log_total[i]):.3g} "
                f"(total mass {float(np.exp(log_total[i])):.6g}); pass complete=False for "
                "gathered top-k columns, or norm_tol= to accept it")
        return log_valid - log_total, log_rest - log_total, log_total
    over = log_total > tol
    if over.any():
        i = _first(over)
        raise ValueError(f"{name}: gathered columns must hold total mass <= 1 (within "
                         f"norm_tol={tol:g} in log), but position {i} holds "
                         f"{float(np.exp(log_total[i])):.6g}")
    # Mass outside the gathered columns belongs to the rest class; within the tolerance a
    # total of exactly 1 means nothing is missing.
    with np.errstate(divide="ignore"):
        log_missing = np.where(log_total < 0.0, np.log(-np.expm1(np.minimum(log_total, 0.0))),
                               -np.inf)
    return log_valid, np.logaddexp(log_rest, log_missing), np.zeros_like(log_total)


def _first(bad: NDArray[np.bool_]) -> Any:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return idx if len(idx) != 1 else idx[0]


def _check_both_classes(name: str, log_valid: FloatArray, log_rest: FloatArray) -> None:
    for label, arr in (("contract-valid", log_valid), ("rest", log_rest)):
        dead = ~np.isfinite(arr) | (np.exp(arr) == 0.0)
        if dead.any():
            i = _first(dead)
            raise ValueError(
                f"{name} puts no representable mass on the {label} class at position {i} "
                f"(log mass {float(arr[i])!r}); lambda* needs both classes to have mass in "
                "(0, 1): drop that position or check the valid mask")


@dataclass(frozen=True)
class Estimate:
    r"""Teacher and reference masses on the contract-valid class, per structural position.

    The properties ``p``, ``b``, ``p_rest`` and ``b_rest`` are the probabilities (the
    ``exp`` of the log masses).

    Attributes
    ----------
    log_p, log_p_rest : ndarray, shape ``batch``
        ``log p`` and ``log(1 - p)``: teacher log mass on the valid class and on the rest,
        each a ``logsumexp`` over its own tokens (``1 - p`` is never formed by subtraction).
    log_b, log_b_rest : ndarray, shape ``batch``
        The same for the reference (warm start, the G-OPD ``pi0``).
    teacher_log_norm, reference_log_norm : ndarray, shape ``batch``
        ``log sum_v exp(logprob_v)`` removed by renormalisation (zeros for gathered columns).
    """

    log_p: FloatArray
    log_p_rest: FloatArray
    log_b: FloatArray
    log_b_rest: FloatArray
    teacher_log_norm: FloatArray
    reference_log_norm: FloatArray

    @property
    def p(self) -> FloatArray:
        return np.exp(self.log_p)

    @property
    def b(self) -> FloatArray:
        return np.exp(self.log_b)

    @property
    def p_rest(self) -> FloatArray:
        return np.exp(self.log_p_rest)

    @property
    def b_rest(self) -> FloatArray:
        return np.exp(self.log_b_rest)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.log_p))

    def solve(self, c: ArrayLike, *, c_low: ArrayLike | None = None) -> SolveResult:
        """:func:`cliff.solve` at every position (``binding`` names the class that clips).

        Raises ``ValueError`` where ``p`` or ``b`` rounds to 0 or 1 in float64 (a class mass
        below 1.1e-16); :meth:`solve_kary` keeps both masses and handles those positions.
        """

        for name, mass, rest in (("p", self.log_p, self.log_p_rest),
                                 ("b", self.log_b, self.log_b_rest)):
            flat = (np.exp(mass) >= 1.0) | (np.exp(rest) >= 1.0)
            if flat.any():
                i = _first(flat)
                raise ValueError(
                    f"{name} rounds to {0.0 if np.exp(mass[i]) < 1.0 else 1.0} in float64 at "
                    f"position {i} (log valid mass {float(mass[i]):.6g}, log rest mass "
                    f"{float(rest[i]):.6g}); use Estimate.solve_kary, which keeps both masses")
        return solve(self.p, self.b, c, c_low=c_low)

    def log_classes(self) -> tuple[FloatArray, FloatArray]:
        """Two-class view in log space: teacher and reference ``[..., 2]`` log masses
        ``(valid, rest)``."""
        return (np.stack([self.log_p, self.log_p_rest], axis=-1),
                np.stack([self.log_b, self.log_b_rest], axis=-1))

    def kary(self) -> tuple[FloatArray, FloatArray]:
        """Two-class view: teacher and reference ``[..., 2]`` masses ``(valid, rest)``."""
        teacher, reference = self.log_classes()
        return np.exp(teacher), np.exp(reference)

    def solve_kary(self, c: ArrayLike, *, c_low: ArrayLike | None = None) -> KaryResult:
        """:func:`cliff.solve_kary` on the two-class view, in log space (exact tails).

        Equals :meth:`solve` wherever that is defined (K = 2 is the Bernoulli model) and
        also works where ``p`` rounds to 1.  Class 0 is the valid class, class 1 the rest.
        """

        return solve_kary_log(*self.log_classes(), c, c_low=c_low)

    def predict_parse_rate(self, lambdas: ArrayLike, c: ArrayLike, *,
                           c_low: ArrayLike | None = None) -> FloatArray:
        """:func:`cliff.predict_parse_rate` with positions on the last axis of the batch."""

        return predict_parse_rate(lambdas, self.p, self.b, c, c_low=c_low)  # type: ignore[no-any-return]


def estimate(teacher_logprobs: Any, reference_logprobs: Any, valid: Any, *,
             reference_valid: Any = None, complete: bool = True,
             norm_tol: float = DEFAULT_NORM_TOL) -> Estimate:
    r"""Teacher mass ``p`` and reference mass ``b`` on the contract-valid class, per position.

    .. math::

        \log p = \operatorname{logsumexp}_{v \in E} \log\pi_T(v) - \log Z_T, \qquad
        \log(1-p) = \operatorname{logsumexp}_{v \notin E} \log\pi_T(v) - \log Z_T,

    and likewise ``b`` from the reference ``pi0``, with ``E`` the contract-valid tokens at the
    position and ``log Z = logsumexp_v log pi(v)`` the (near-zero) normaliser.

    Parameters
    ----------
    teacher_logprobs, reference_logprobs : array_like or torch.Tensor, shape ``[..., V]``
        Log-probabilities at the structural positions of a batch: the full vocabulary
        (``complete=True``), or gathered columns such as the teacher's top-k
        (``complete=False``).  Torch tensors are accepted on any device and dtype and reduced
        there, in float64, so that only a few numbers per position reach the host (torch is
        not imported for numpy input).  ``-inf`` entries (masked tokens) are allowed.
    valid : array_like of bool, shape broadcastable to ``[..., V]``, or sequence of int arrays
        Which columns are contract-valid: a boolean mask, or one array of valid column ids
        per position (positions in C order over the batch shape).
    reference_valid : optional
        The valid mask for ``reference_logprobs`` if its columns differ from the teacher's;
        default ``valid``.
    complete : bool
        ``True``: the columns are the whole vocabulary and are renormalised (``log Z``
        removed) after checking ``|log Z| <= norm_tol``.  ``False``: the columns are a
        subset; their total must be at most ``1`` (within ``norm_tol``) and the missing
        mass ``1 - sum`` is counted in the *rest* class.
    norm_tol : float
        Tolerance on ``|log Z|`` (default ``1e-3``: bf16 log-softmax can be off by ~1e-3;
        float32 is off by ~1e-6).

    Returns
    -------
    Estimate
        ``log_p``, ``log_p_rest``, ``log_b``, ``log_b_rest`` of the batch shape, with
        ``.solve(c)`` (Bernoulli thresholds) and ``.solve_kary(c)``.

    Raises
    ------
    ValueError
        Shapes that do not match, NaN or ``+inf`` entries, totals beyond ``norm_tol``, ids
        out of range, or a position where either model puts no representable mass on the
        valid class or on the rest.

    Notes
    -----
    *Equivalence classes.*  The vocabulary is grouped into two classes, contract-valid
    against the rest, and the model's clip is applied to the aggregated ratio
    ``p / m`` of each class.  A per-token (K = V) treatment would let one stray tail token
    (say reference ``1e-8``, teacher ``1e-20``: log ratio -27) bind ``lambda*`` at about
    ``1 + log(c)/27``, independently of the contract.  That token is never sampled in a
    batch, so its clip never fires in training, and its mass cannot move the contract mass
    ``pi(E)``: the clip on a token moves the aggregated drift only in proportion to its
    probability.  The parse-relevant threshold is the one of the aggregated classes; the
    per-token ``lambda*`` over the full vocabulary is a lower bound of it on the cap side
    (``derivations/notes/kary.md``), not a prediction.

    *Tail masses.*  ``1 - p`` is a ``logsumexp`` over the rest class, never ``1 - p``, so
    near-deterministic positions keep all their digits; where ``p`` rounds to ``1.0``
    :meth:`Estimate.solve` refuses (``cliff.solve`` takes ``p``) and
    :meth:`Estimate.solve_kary` works from the log masses.  Nothing is clipped or floored.

    *Gathered columns.*  With ``complete=False`` the mass outside the columns is assigned to
    the rest class, which is exact when every valid token is among the columns.  The rest
    mass is then only resolved down to the float precision of the columns' total.

    Examples
    --------
    >>> import numpy as np
    >>> lt = np.log([[0.90, 0.09, 0.01]])
    >>> lr = np.log([[0.50, 0.30, 0.20]])
    >>> e = estimate(lt, lr, np.array([True, True, False]))
    >>> np.allclose([e.p[0], e.b[0], e.p_rest[0]], [0.99, 0.8, 0.01])
    True
    """
    return measure(teacher_logprobs, reference_logprobs, valid, reference_valid, complete,
                   norm_tol).estimate


@dataclass(frozen=True)
class Measured:
    """:func:`estimate` of a batch and the valid entries the by-token threshold needs.

    Attributes
    ----------
    estimate : Estimate
    teacher_tokens : Tokens
        The teacher's contract-valid entries, row-major (raw float64 log-probs).
    reference_tokens : ndarray or None
        The reference's log-probs at the same entries; ``None`` where the two models'
        columns differ (``complete=False`` with other widths) or their valid masks do.
    shapes : tuple
        The ``[..., V]`` shapes of the teacher's and the reference's log-probs.
    """

    estimate: Estimate
    teacher_tokens: Tokens
    reference_tokens: FloatArray | None
    shapes: tuple[tuple[int, ...], tuple[int, ...]]


def measure(teacher_logprobs: Any, reference_logprobs: Any, valid: Any, reference_valid: Any,
            complete: bool, norm_tol: float, present: Any = None) -> Measured:
    """:func:`estimate` together with the valid entries of both models.

    Torch tensors are reduced on their devices (:mod:`cliff._calibration.reduce`).  Where
    ``present`` (bool, the batch shape) is False the context is absent: its log-probs are
    not read (only checked for NaN and ``+inf``) and it stands for the uniform distribution
    with column 0 alone valid.
    """
    lt = checked("teacher_logprobs", teacher_logprobs)
    lr = checked("reference_logprobs", reference_logprobs)
    return measure_checked(lt, lr, valid, reference_valid, complete, norm_tol, present)


def measure_checked(lt: Any, lr: Any, valid: Any, reference_valid: Any, complete: bool,
                    norm_tol: float, present: Any = None) -> Measured:
    """:func:`measure` of log-probs already passed through
    :func:`cliff._calibration.reduce.checked`."""
    shape_t, shape_r = tuple(lt.shape), tuple(lr.shape)
    if complete and shape_t != shape_r:
        raise ValueError(f"teacher_logprobs and reference_logprobs must have the same shape "
                         f"[..., V], got {shape_t} and {shape_r}")
    if shape_t[:-1] != shape_r[:-1]:
        raise ValueError(f"teacher_logprobs and reference_logprobs must share the batch shape, "
                         f"got {shape_t[:-1]} and {shape_r[:-1]}")
    if not (np.isfinite(norm_tol) and norm_tol >= 0):
        raise ValueError(f"norm_tol must be a finite number >= 0, got {norm_tol!r}")
    mask_t = mask_like(valid, lt)
    mask_r = mask_like(valid if reference_valid is None else reference_valid, lr)
    same = shape_t == shape_r and reference_valid is None  # one mask: its entries found once
    masses_t, tokens_t = reduce(lt, mask_t, present)
    masses_r, tokens_r = reduce(lr, mask_r, present, tokens_t if same else None)
    tp, tr, tz = _normalised("teacher_logprobs", masses_t, complete, norm_tol)
    bp, br, bz = _normalised("reference_logprobs", masses_r, complete, norm_tol)
    _check_both_classes("teacher_logprobs", tp, tr)
    _check_both_classes("reference_logprobs", bp, br)
    return Measured(Estimate(tp, tr, bp, br, tz, bz), tokens_t,
                    tokens_r.values if same else None, (shape_t, shape_r))


def lambda_star_by_token(teacher_logprobs: Any, reference_logprobs: Any, valid: Any,
                         c: float, *, c_low: float | None = None, complete: bool = True,
                         norm_tol: float = DEFAULT_NORM_TOL) -> FloatArray:
    r"""lambda* per position with every contract-valid token its own class, the rest pooled.

    The classes at a position are ``{v}`` for each valid token ``v`` and the rest ``E^c``
    (one class, as in :func:`estimate`), so ``K = |E| + 1`` varies by position; lambda* is
    :func:`cliff.solve_kary_log` of those masses.  Where teacher and reference split the
    valid mass alike this equals the two-class lambda* of :meth:`Estimate.solve_kary`; where
    they do not (a ranking position: the teacher puts its valid mass on one id, the
    reference spreads it) it is usually smaller: never larger in
    ``tests/calibration/test_estimate.py`` without a lower clip (``c_low = 0``); with the
    floor ``1/c`` larger in about 6% of random 3-8 token cases, by up to 1.8x in
    ``lambda - 1``.  The invalid tokens stay pooled: one stray, never-sampled tail token
    would otherwise bind (:func:`estimate`).

    Parameters
    ----------
    teacher_logprobs, reference_logprobs, valid, complete, norm_tol
        As in :func:`estimate` (same shape ``[..., V]``, same checks).
    c, c_low : float
        IS clip cap ``> 1`` and floor in ``[0, 1)`` (default ``1/c``).

    Returns
    -------
    ndarray of shape ``[...]``
        lambda* per position (``inf`` where no extrapolation leaves the region).

    Raises
    ------
    ValueError
        As :func:`estimate`, and where a valid token has ``-inf`` log-prob under exactly one
        of the two models (an infinite log ratio; tokens at ``-inf`` under both are dropped).

    Examples
    --------
    >>> import numpy as np
    >>> lt = np.log([[0.98, 0.01, 0.01]])  # teacher: one valid id, the other barely
    >>> lr = np.log([[0.50, 0.49, 0.01]])  # reference: both valid ids alike
    >>> valid = np.array([True, True, False])
    >>> pooled = estimate(lt, lr, valid).solve_kary(5.0).lambda_star
    >>> bool(lambda_star_by_token(lt, lr, valid, 5.0)[0] < pooled[0])
    True
    """
    return by_token(measure(teacher_logprobs, reference_logprobs, valid, None, complete,
                            norm_tol), c, c_low)


def by_token(measured: Measured, c: float, c_low: float | None) -> FloatArray:
    """:func:`lambda_star_by_token` from :func:`measure`: each position's valid tokens, then
    its pooled rest, solved in groups of equal ``K``."""

    est, tokens, lr = measured.estimate, measured.teacher_tokens, measured.reference_tokens
    if lr is None:
        raise ValueError(f"lambda_star_by_token needs teacher_logprobs and reference_logprobs "
                         f"over the same columns with one valid mask, got shapes "
                         f"{measured.shapes[0]} and {measured.shapes[1]}")
    n_pos = int(np.prod(est.shape, dtype=np.int64))
    rows = tokens.rows
    lt = tokens.values - est.teacher_log_norm.reshape(-1)[rows]
    lr = lr - est.reference_log_norm.reshape(-1)[rows]
    one_sided = np.isinf(lt) != np.isinf(lr)
    if one_sided.any():
        k = int(np.flatnonzero(one_sided)[0])
        raise ValueError(f"valid token {int(tokens.columns[k])} at position {int(rows[k])} has "
                         "log-prob -inf under one model only: its log ratio is infinite and "
                         "lambda* is undefined")
    keep = np.isfinite(lt)  # tokens at -inf under both models are dropped
    rows, lt, lr = rows[keep], lt[keep], lr[keep]
    counts = np.bincount(rows, minlength=n_pos)
    starts = np.cumsum(counts) - counts  # row-major: each row's tokens are contiguous
    rest_t, rest_r = est.log_p_rest.reshape(-1, 1), est.log_b_rest.reshape(-1, 1)
    out = np.empty(n_pos)
    for n in np.unique(counts):
        group = np.flatnonzero(counts == n)
        take = starts[group, None] + np.arange(n)  # (rows, n)
        t = np.concatenate([lt[take], rest_t[group]], axis=1)
        r = np.concatenate([lr[take], rest_r[group]], axis=1)
        out[group] = solve_kary_log(t, r, c, c_low=c_low).lambda_star
    return out.reshape(est.shape)
