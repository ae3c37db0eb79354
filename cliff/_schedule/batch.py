r"""One scheduler update's contexts, checked once and reduced to the class masses.

:class:`cliff.LambdaScheduler` hands every estimator the same :class:`Batch`: the output of
:func:`cliff._calibration.estimate.measure` (the valid tokens' log-probs, for the by-token
thresholds) and the log masses of the two classes, contract-valid and rest, of every context,

.. math::

    \log x_{ij} = \big(\log p_{ij},\ \log(1 - p_{ij})\big), \qquad
    i = 1..N \text{ (samples)},\ j = 1..P \text{ (structural positions)},

for the teacher (``p``), the reference (``b``) and, when given, the student.
:func:`moments` pools them over the samples of each position.

*Absent positions.*  A context whose ``valid`` row is all False (no contract-valid column,
or an empty list of ids) is absent: a position type that did not occur in that sample, or
in the whole batch.  Its log-probs are not used (any finite padding will do; NaN is still
refused, as everywhere); it is marked in :attr:`Batch.present`, and the estimators leave a
position with no present context exactly as it was.

*Where the reduction runs.*  Torch log-probs are reduced on their own device
(:mod:`cliff._calibration.reduce`): a ``[S, P, V]`` batch crosses to the host as ``O(S P)``
class masses and the ``O(S P k)`` log-probs of its ``k`` valid tokens per context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from cliff._calibration.estimate import Measured, measure_checked
from cliff._calibration.reduce import any_valid, checked, mask_like

__all__ = ["NO_DATA_LOG_MASS", "Batch", "moments", "read_batch"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

NO_DATA_LOG_MASS = -math.log(2.0)
"""Log mass of both classes at a position with no data: a finite placeholder (JSON-able),
never read while the position's weight is 0."""


@dataclass(frozen=True)
class Batch:
    """The contexts of one update, ``N`` samples at ``P`` structural positions.

    Attributes
    ----------
    measured : Measured
        :func:`cliff._calibration.estimate.measure` of the batch: the :class:`cliff.Estimate`
        of shape ``[..., P]`` and the valid entries of both models.
    teacher, reference : ndarray of shape ``(N, P, 2)``
        Log masses (valid, rest) of each context under the teacher and the reference.
    student : ndarray of shape ``(N, P, 2)`` or None
        The same under the current student, when given (diagnostics only).
    present : bool ndarray of shape ``(N, P)``
        Whether the context occurs (its ``valid`` row has a True); the other entries of
        ``measured``, ``teacher``, ``reference`` and ``student`` are placeholders.
    """

    measured: Measured
    teacher: FloatArray
    reference: FloatArray
    student: FloatArray | None
    present: BoolArray

    @property
    def n_positions(self) -> int:
        """``P``, the number of structural positions."""
        return int(self.teacher.shape[1])


def read_batch(teacher_logprobs: Any, reference_logprobs: Any, valid: Any, *,
               reference_valid: Any, student_logprobs: Any, complete: bool,
               norm_tol: float) -> Batch:
    """Check one update's log-probs (shape ``[..., P, V]``) and reduce them to a :class:`Batch`.

    Every check runs here, before any estimator changes its state: the errors are those of
    :func:`cliff.estimate` (at the contexts that are present), and a single distribution of
    shape ``[V]`` is refused.  Absent contexts (an all-False ``valid`` row) stand for a
    placeholder, the uniform distribution with column 0 valid, so that every check and
    error index refers to the caller's array; their log-probs are not read.  Torch tensors
    are reduced on their device (:func:`cliff._calibration.estimate.measure`).
    """
    lt = checked("teacher_logprobs", teacher_logprobs)
    lr = checked("reference_logprobs", reference_logprobs)
    if lt.ndim < 2:
        raise ValueError("teacher_logprobs must have shape [..., P, V] (positions on the "
                         "second-to-last axis), got a single distribution of shape [V]")
    mask = mask_like(valid, lt)
    present = any_valid(mask)
    student = None if student_logprobs is None else checked("student_logprobs",
                                                            student_logprobs)
    measured = measure_checked(lt, lr, mask, reference_valid, complete, norm_tol, present)
    est = measured.estimate
    n_pos = est.shape[-1]
    student_masses = None
    if student is not None:
        st = measure_checked(lt, student, mask, None, complete, norm_tol, present).estimate
        student_masses = st.log_classes()[1].reshape(-1, n_pos, 2)  # its "reference" side
    teacher, reference = est.log_classes()
    return Batch(measured, teacher.reshape(-1, n_pos, 2), reference.reshape(-1, n_pos, 2),
                 student_masses, present.reshape(-1, n_pos))


def moments(log_x: FloatArray, present: BoolArray
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Count, log of the mean and relative M2 ``sum_i (x_i / mean - 1)^2`` over the present
    samples (axis 0) of each position.

    ``log_x`` has shape ``(N, P, 2)``: per sample, position and class (valid, rest);
    ``present`` is ``(N, P)``.  The count has shape ``(P,)``, the others ``(P, 2)``; a
    position with no present sample gets count 0, log mean ``log(1/2)`` and M2 0.
    """
    count = present.sum(axis=0).astype(np.float64)
    seen = count > 0
    log_mean = np.full(log_x.shape[1:], NO_DATA_LOG_MASS)
    rel_m2 = np.zeros(log_x.shape[1:])
    keep = present[:, seen, None]
    x = np.where(keep, log_x[:, seen], -np.inf)
    log_mean[seen] = logsumexp(x, axis=0) - np.log(count[seen])[:, None]
    rel_m2[seen] = np.sum(np.where(keep, np.expm1(x - log_mean[seen]) ** 2, 0.0), axis=0)
    return count, log_mean, rel_m2
