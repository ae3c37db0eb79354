r"""One scheduler update's contexts, checked once and reduced to the class masses.

:class:`cliff.LambdaScheduler` hands every estimator the same :class:`Batch`: the output of
:func:`cliff._estimate.measure` (the checked float64 log-probs, for the by-token thresholds)
and the log masses of the two classes, contract-valid and rest, of every context,

.. math::

    \log x_{ij} = \big(\log p_{ij},\ \log(1 - p_{ij})\big), \qquad
    i = 1..N \text{ (samples)},\ j = 1..P \text{ (structural positions)},

for the teacher (``p``), the reference (``b``) and, when given, the student.
:func:`moments` pools them over the samples of each position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from cliff._estimate import Measured, estimate, measure

__all__ = ["Batch", "moments", "read_batch"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Batch:
    """The contexts of one update, ``N`` samples at ``P`` structural positions.

    Attributes
    ----------
    measured : tuple
        :func:`cliff._estimate.measure` of the batch: the :class:`cliff.Estimate` of shape
        ``[..., P]``, the float64 teacher and reference log-probs and the valid mask.
    teacher, reference : ndarray of shape ``(N, P, 2)``
        Log masses (valid, rest) of each context under the teacher and the reference.
    student : ndarray of shape ``(N, P, 2)`` or None
        The same under the current student, when given (diagnostics only).
    """

    measured: Measured
    teacher: FloatArray
    reference: FloatArray
    student: FloatArray | None

    @property
    def n_positions(self) -> int:
        """``P``, the number of structural positions."""
        return int(self.teacher.shape[1])


def read_batch(teacher_logprobs: Any, reference_logprobs: Any, valid: Any, *,
               reference_valid: Any, student_logprobs: Any, complete: bool,
               norm_tol: float) -> Batch:
    """Check one update's log-probs (shape ``[..., P, V]``) and reduce them to a :class:`Batch`.

    Every check runs here, before any estimator changes its state: the errors are those of
    :func:`cliff.estimate`, and a single distribution of shape ``[V]`` is refused.
    """
    measured = measure(teacher_logprobs, reference_logprobs, valid, reference_valid,
                       complete, norm_tol)
    est = measured[0]
    if len(est.shape) < 1:
        raise ValueError("teacher_logprobs must have shape [..., P, V] (positions on the "
                         "second-to-last axis), got a single distribution of shape [V]")
    n_pos = est.shape[-1]
    student = None
    if student_logprobs is not None:
        st = estimate(teacher_logprobs, student_logprobs, valid, complete=complete,
                      norm_tol=norm_tol)
        student = np.stack([st.log_b, st.log_b_rest], -1).reshape(-1, n_pos, 2)
    return Batch(measured,
                 np.stack([est.log_p, est.log_p_rest], -1).reshape(-1, n_pos, 2),
                 np.stack([est.log_b, est.log_b_rest], -1).reshape(-1, n_pos, 2),
                 student)


def moments(log_x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log of the mean and relative M2 ``sum_i (x_i / mean - 1)^2`` over axis 0.

    ``log_x`` has shape ``(N, P, 2)``: per sample, position and class (valid, rest); both
    results have shape ``(P, 2)``.
    """
    n = log_x.shape[0]
    log_mean = logsumexp(log_x, axis=0) - math.log(n)
    rel_m2 = np.sum(np.expm1(log_x - log_mean) ** 2, axis=0)
    return log_mean, rel_m2
