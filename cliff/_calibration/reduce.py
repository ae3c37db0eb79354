r"""Log-probs at a batch of positions, reduced where they live to what lambda* needs.

Per model and per position (a row ``[V]`` of log-probs) lambda* needs three log masses,

.. math::

    \log Z = \operatorname{logsumexp}_v \ell_v, \qquad
    \log M = \operatorname{logsumexp}_{v \in E} \ell_v, \qquad
    \log R = \operatorname{logsumexp}_{v \notin E} \ell_v,

with ``E`` the contract-valid columns, and, for the by-token threshold
(:func:`cliff.lambda_star_by_token`), the log-probs ``ell_v`` of the valid columns
themselves.  A row of a 151,936-token vocabulary thus shrinks to three numbers and its
``|E|`` valid entries.

* numpy input is reduced with scipy's ``logsumexp``, the reference computation;
* a torch tensor is reduced on its own device, in float64 there, a chunk of rows at a time:
  ``log R`` over the row with its valid entries set to ``-inf`` (one ``exp`` per entry),
  ``log M`` on the host from the gathered valid entries, ``log Z = logaddexp(log M, log R)``.  Only
  ``O(rows x |E|)`` numbers cross to the host; the results agree with the numpy ones to a few
  ulps (``tests/test_reduce.py``).

torch is never imported here unless the input already is a tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from cliff._util import checks

__all__ = ["Masses", "Tokens", "any_valid", "checked", "is_tensor", "mask_like", "reduce"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_CHUNK_BYTES = {"cpu": 2**24, "other": 2**28}
"""float64 bytes of rows reduced at once on a device: 16 MiB on the CPU, 256 MiB on an
accelerator."""

_SHIFT_BELOW = 1e-290
"""Unshifted rest sums below this are summed again with their largest entry taken out."""


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (told without importing torch)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


@dataclass(frozen=True)
class Masses:
    """One model's log masses per position (arrays of the batch shape ``[...]``): the whole
    row ``log_total``, the contract-valid class ``log_valid`` and the rest ``log_rest``."""

    log_total: FloatArray
    log_valid: FloatArray
    log_rest: FloatArray


@dataclass(frozen=True)
class Tokens:
    """The contract-valid entries of every position, in row-major order: the position's
    flat (C-order) index ``rows``, the column ``columns`` and the raw log-prob ``values``
    (float64, not renormalised), each of shape ``(nnz,)``.  ``where`` keeps a tensor
    reduction's entries chunk by chunk, on the device, for another model with the same
    mask (:func:`reduce`'s ``same_mask``)."""

    rows: IntArray
    columns: IntArray
    values: FloatArray
    where: Any = field(default=None, repr=False, compare=False)


def checked(name: str, value: Any) -> Any:
    """``value`` as checked log-probs of shape ``[..., V]``: a float64 numpy array
    (:func:`cliff._util.checks.logprob_array`), or a torch tensor, detached and left on its
    device and in its dtype, checked there with the same rules and messages."""
    if not is_tensor(value):
        return checks.logprob_array(name, value)
    x = value.detach()
    if not x.is_floating_point():  # solve's rule: complex, boolean, integer input refused
        kind = "complex" if x.is_complex() else "boolean" if str(x.dtype) == "torch.bool" \
            else str(x.dtype).removeprefix("torch.")
        raise ValueError(f"{name} must be real numbers, got {kind} input of shape "
                         f"{tuple(x.shape)}")
    if x.ndim < 1 or x.shape[-1] < 2:
        raise ValueError(f"{name} must have shape [..., V] with V >= 2 columns, got shape "
                         f"{tuple(x.shape)}")
    if x.numel():
        _check_entries(name, x)
    return x


def _check_entries(name: str, x: Any) -> None:
    """NaN and ``+inf`` refused: a row sum is NaN or ``+inf`` only if the row holds one (or
    overflows, which the exact look at the flagged rows then clears)."""
    import torch

    flat = x.reshape(-1, x.shape[-1])
    sums = flat.sum(dim=-1)
    flagged = torch.nonzero(torch.isnan(sums) | (sums == math.inf)).flatten()
    if not flagged.numel():
        return
    rows = flat[flagged]
    bad = torch.nonzero(torch.isnan(rows) | (rows == math.inf))
    if not bad.numel():
        return
    r, v = (int(i) for i in bad[0].tolist())
    row = int(flagged[r])
    index = tuple(int(i) for i in np.unravel_index(row, tuple(x.shape[:-1]))) + (v,)
    entry = np.float64(float(flat[row, v]))
    raise ValueError(f"{name} must be log-probabilities in [-inf, 0]; entry {index} is "
                     f"{entry!r}")


def mask_like(valid: Any, like: Any) -> Any:
    """``valid`` as a boolean mask of ``like``'s shape ``[..., V]``, of ``like``'s kind: a
    numpy view (:func:`cliff._util.checks.valid_mask`), or, for a tensor, a torch bool
    tensor on its device (a broadcast view where ``valid`` broadcasts; only ``valid`` itself
    is sent to the device)."""
    shape = tuple(like.shape)
    if not is_tensor(like):
        return checks.valid_mask(valid, shape)
    import torch

    if is_tensor(valid) and valid.dtype == torch.bool:
        base = valid.detach().to(like.device)
    else:
        host = None if is_tensor(valid) or checks.is_ragged(valid) else np.asarray(valid)
        if host is None or host.dtype != np.bool_:  # ids per row: expanded on the host
            full = np.ascontiguousarray(checks.valid_mask(valid, shape))
            return torch.from_numpy(full).to(like.device)
        base = torch.from_numpy(np.ascontiguousarray(host)).to(like.device)
    try:
        return torch.broadcast_to(base, shape)
    except RuntimeError:
        raise ValueError(f"valid: a boolean mask of shape {tuple(base.shape)} does not "
                         f"broadcast to the log-probs' shape {shape}") from None


def any_valid(mask: Any) -> BoolArray:
    """Whether each position (row of ``mask``) has a valid column, as a numpy bool array of
    the batch shape."""
    if is_tensor(mask):
        return np.asarray(mask.any(dim=-1).cpu().numpy(), dtype=bool)
    return np.asarray(np.asarray(mask).any(axis=-1))


def reduce(x: Any, mask: Any, present: BoolArray | None = None,
           same_mask: Tokens | None = None) -> tuple[Masses, Tokens]:
    """The log masses of every position of ``x`` and its valid entries (module docstring).

    ``x`` and ``mask`` come from :func:`checked` and :func:`mask_like` (both numpy or both
    torch).  Where ``present`` (batch shape) is False the row is not read: it stands for the
    uniform distribution with column 0 alone valid, as :mod:`cliff._schedule.batch`
    documents for absent contexts.  ``same_mask``: the :class:`Tokens` of a reduction with
    the same mask, shape and ``present``, whose valid entries a tensor reduction reuses
    instead of finding them again.
    """
    if is_tensor(x):
        return _reduce_tensor(x, mask, present, same_mask)
    if present is not None and not present.all():
        x = np.where(present[..., None], x, -math.log(x.shape[-1]))
        mask = np.where(present[..., None], mask, np.arange(x.shape[-1]) == 0)
    with np.errstate(divide="ignore"):
        log_total = logsumexp(x, axis=-1)
        log_valid = logsumexp(np.where(mask, x, -np.inf), axis=-1)
        log_rest = logsumexp(np.where(mask, -np.inf, x), axis=-1)
    n_col = x.shape[-1]
    rows, cols = np.nonzero(np.reshape(mask, (-1, n_col)))
    values = np.reshape(x, (-1, n_col))[rows, cols]
    return (Masses(np.asarray(log_total), np.asarray(log_valid), np.asarray(log_rest)),
            Tokens(rows.astype(np.int64), cols.astype(np.int64), values))


def _reduce_tensor(x: Any, mask: Any, present: BoolArray | None,
                   same_mask: Tokens | None) -> tuple[Masses, Tokens]:
    """:func:`reduce` on the tensor's device, a chunk of present rows at a time.

    The rest class is summed without a shift, ``sum exp(l_v)``: for log-probs every term is
    at most 1, and a sum of at least ``_SHIFT_BELOW`` keeps full relative precision (its
    subnormal terms add at most ``V`` times 5e-324).  Rows whose sum is smaller, or
    overflows (log-probs far from normalised), are summed again with the row's largest
    entry taken out first, as scipy does.
    """
    import torch

    batch, n_col = tuple(x.shape[:-1]), int(x.shape[-1])
    n_rows = math.prod(batch)
    want = (np.arange(n_rows) if present is None
            else np.flatnonzero(np.asarray(present, dtype=bool).reshape(-1)))
    budget = _CHUNK_BYTES["cpu" if x.device.type == "cpu" else "other"]
    step = max(1, budget // (8 * n_col))
    known = None if same_mask is None else same_mask.where
    sums, tok_rows, tok_cols, tok_vals, where = [], [], [], [], []
    buffer = torch.empty((min(step, len(want)), n_col), dtype=torch.float64, device=x.device)
    for k, s in enumerate(range(0, len(want), step)):
        rows = want[s : s + step]
        xc = _take_rows(x, rows, batch)  # (c, V), the input's dtype
        if known is None:
            r, v = torch.nonzero(_take_rows(mask, rows, batch), as_tuple=True)
        else:
            r, v = (t.to(x.device) for t in known[k])
        where.append((r, v))
        tok_rows.append(torch.as_tensor(rows, device=x.device)[r])
        tok_cols.append(v)
        rest = buffer[: len(rows)].copy_(xc)  # float64, in a buffer reused by every chunk
        tok_vals.append(rest[r, v])
        rest[r, v] = -math.inf
        sums.append(rest.exp_().sum(dim=-1))
    log_rest = np.empty(n_rows)
    if sums:  # one transfer of everything reduced
        total = torch.cat(sums)
        redo = torch.nonzero(~(total >= _SHIFT_BELOW) | torch.isinf(total)).flatten()
        log_rest[want] = total.log().cpu().numpy()
        if redo.numel():
            again = want[redo.cpu().numpy()]
            log_rest[again] = _shifted_rest(x, mask, again, batch)
        rows_np = torch.cat(tok_rows).cpu().numpy().astype(np.int64)
        cols_np = torch.cat(tok_cols).cpu().numpy().astype(np.int64)
        vals_np = torch.cat(tok_vals).cpu().numpy()
    else:
        rows_np = cols_np = np.zeros(0, np.int64)
        vals_np = np.zeros(0)
    if len(want) < n_rows:  # absent rows: the uniform placeholder, column 0 valid
        absent = np.setdiff1d(np.arange(n_rows), want)
        log_rest[absent] = _uniform_rest(n_col)
        order = np.argsort(np.concatenate([rows_np, absent]), kind="stable")
        rows_np = np.concatenate([rows_np, absent])[order]
        cols_np = np.concatenate([cols_np, np.zeros(len(absent), np.int64)])[order]
        vals_np = np.concatenate([vals_np, np.full(len(absent), -math.log(n_col))])[order]
    log_valid = _segment_logsumexp(vals_np, rows_np, n_rows)
    log_total = np.logaddexp(log_valid, log_rest)
    return (Masses(log_total.reshape(batch), log_valid.reshape(batch), log_rest.reshape(batch)),
            Tokens(rows_np, cols_np, vals_np, where))


def _take_rows(t: Any, rows: IntArray, batch: tuple[int, ...]) -> Any:
    """The flat rows ``rows`` (sorted) of a ``batch + (V,)`` tensor, ``(len(rows), V)``: a
    view where they are consecutive and the tensor is contiguous, else gathered."""
    if len(rows) and t.is_contiguous() and rows[-1] - rows[0] + 1 == len(rows):
        return t.reshape(-1, t.shape[-1])[int(rows[0]) : int(rows[-1]) + 1]
    return t[_index(rows, batch, t.device)]


def _index(rows: IntArray, batch: tuple[int, ...], device: Any) -> tuple[Any, ...]:
    """Index tensors selecting the flat rows ``rows`` of a ``batch + (V,)`` tensor (works on
    broadcast views: nothing is materialised)."""
    import torch

    return tuple(torch.as_tensor(i, device=device) for i in np.unravel_index(rows, batch))


def _shifted_rest(x: Any, mask: Any, rows: IntArray, batch: tuple[int, ...]) -> FloatArray:
    """``log R`` of the flat rows ``rows``, with each row's largest rest entry taken out."""
    import torch

    rest = _take_rows(x, rows, batch).double().masked_fill(_take_rows(mask, rows, batch),
                                                           -math.inf)
    return np.asarray(torch.logsumexp(rest, dim=-1).cpu().numpy())


def _uniform_rest(n_col: int) -> float:
    """``log R`` of the placeholder row: uniform over ``n_col`` columns, column 0 valid."""
    return float(logsumexp(np.full(n_col - 1, -math.log(n_col))))


def _segment_logsumexp(values: FloatArray, rows: IntArray, n_rows: int) -> FloatArray:
    """``logsumexp`` of ``values`` per row (``rows`` sorted), ``-inf`` for rows with none."""
    out = np.full(n_rows, -np.inf)
    if not values.size:
        return out
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    peak = np.maximum.reduceat(values, starts)
    shift = np.where(np.isfinite(peak), peak, 0.0)  # a row of -inf only: exp(-inf) = 0
    total = np.add.reduceat(np.exp(values - np.repeat(shift, np.diff(np.r_[starts, len(values)]))),
                            starts)
    with np.errstate(divide="ignore"):
        out[rows[starts]] = np.log(total) + shift
    return out
