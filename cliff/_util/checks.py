"""Input validation at the package boundary.

Every public function checks its arguments here, once, and raises a ``ValueError`` that
names the argument, the rule it broke, the offending value as the caller passed it (or how
many entries are bad and the first index) and the allowed range.  Nothing is clipped,
coerced or silently turned into NaN: complex numbers, strings, booleans, ``None`` and masked
entries are refused; torch tensors are detached and read as they are.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _as_numpy(name: str, value: Any) -> NDArray[Any]:
    """``value`` as a numpy array of its own dtype: a torch tensor detached and copied to
    the host (without importing torch), a masked array without masked entries as its data."""
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16; float32 is exact
            tensor = tensor.float()
        value = tensor.numpy()
    if np.ma.isMaskedArray(value):
        masked = int(np.ma.count_masked(value))
        if masked:
            raise ValueError(
                f"{name} is a masked array with {masked} masked entries, which would be "
                f"computed as if valid: pass {name}.compressed() (the unmasked entries) or "
                f"{name}.filled(...) (a value of your choice in their place)")
        value = np.ma.getdata(value)
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a real number or array of reals, got {value!r}")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:  # e.g. ragged nesting
        raise ValueError(f"{name} must be a real number or array of reals, got {value!r}"
                         ) from err


def is_real(v: Any) -> bool:
    """A real number (numpy's too), not a boolean."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def as_float_array(name: str, value: ArrayLike) -> FloatArray:
    """``value`` as a float64 array, refusing by name anything that is not real numbers:
    complex (even with a zero imaginary part), strings, booleans, ``None``, masked entries."""
    arr = _as_numpy(name, value)
    kind = arr.dtype.kind
    if kind == "O":
        bad = [v for v in arr.flat if not is_real(v)][:1]
        if bad:
            raise ValueError(f"{name} must be a real number or array of reals; it holds "
                             f"{_short(bad[0])} ({type(bad[0]).__name__})")
    elif kind not in "iuf":
        what = {"c": "complex", "b": "boolean", "U": "string", "S": "bytes"}.get(
            kind, arr.dtype.name)
        raise ValueError(f"{name} must be real numbers, got {what} input {_shown(value, arr)}")
    try:
        with np.errstate(over="ignore"):  # a longdouble past 1.8e308 becomes inf, reported
            return arr.astype(np.float64)
    except (OverflowError, TypeError, ValueError) as err:  # an int past the float range
        raise ValueError(f"{name} must be a real number or array of reals within the float64 "
                         f"range, got {_short(value)}") from err


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _shown(value: Any, arr: NDArray[Any], index: tuple[int, ...] | None = None) -> str:
    """The entry as the caller passed it (its own precision and dtype), with its float64
    value where that differs."""
    entry = arr[index] if index is not None else (arr.item() if arr.ndim == 0 else None)
    if entry is None:
        return np.array2string(arr, threshold=6)
    if type(value) in (int, float) and index is None:
        return _short(value)
    if isinstance(entry, np.generic):
        text = f"{entry!s}" if entry.dtype == np.float64 else f"{entry!s} ({entry.dtype.name})"
    else:
        text = repr(entry)
    try:
        as_float = float(entry)
    except (OverflowError, TypeError, ValueError):
        return text
    same = as_float == entry or (as_float != as_float and entry != entry)
    return text if same or isinstance(entry, bool) else f"{text}, {as_float!r} in float64"


def _fail(name: str, value: Any, arr: FloatArray, bad: NDArray[np.bool_], allowed: str) -> None:
    orig = _as_numpy(name, value)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be in {allowed}, got {_shown(value, orig)}")
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    index = first[0] if len(first) == 1 else first
    shown = _shown(value, np.broadcast_to(orig, arr.shape), first)
    raise ValueError(
        f"{name} must be in {allowed}: {int(bad.sum())} of {arr.size} entries are not "
        f"(first at index {index}: {shown})"
    )


def check_open_unit(name: str, value: ArrayLike) -> FloatArray:
    """A probability strictly inside (0, 1); NaN fails the comparison and is reported."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() > 0.0 and arr.max() < 1.0):
        _fail(name, value, arr, ~((arr > 0.0) & (arr < 1.0)), "the open interval (0, 1)")
    return arr


def check_cap(name: str, value: ArrayLike) -> FloatArray:
    """An IS clip strength: a finite ratio cap c > 1."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() > 1.0 and arr.max() < np.inf):
        _fail(name, value, arr, ~((arr > 1.0) & (arr < np.inf)),
              "(1, inf) (a finite ratio cap > 1)")
    return arr


def check_floor(name: str, value: ArrayLike) -> FloatArray:
    """A lower IS clip c_low in [0, 1); 0 means no lower clip."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() >= 0.0 and arr.max() < 1.0):
        _fail(name, value, arr, ~((arr >= 0.0) & (arr < 1.0)), "[0, 1) (0 = no lower clip)")
    return arr


def check_nonnegative(name: str, value: ArrayLike) -> FloatArray:
    """A finite value >= 0 (an extrapolation coefficient lambda)."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() >= 0.0 and arr.max() < np.inf):
        _fail(name, value, arr, ~((arr >= 0.0) & (arr < np.inf)), "[0, inf) (finite, >= 0)")
    return arr


def check_positive(name: str, value: ArrayLike) -> FloatArray:
    """A finite value > 0 (a step size eta)."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() > 0.0 and arr.max() < np.inf):
        _fail(name, value, arr, ~((arr > 0.0) & (arr < np.inf)), "(0, inf) (finite, > 0)")
    return arr


def broadcast(**arrays: FloatArray) -> tuple[FloatArray, ...]:
    """Broadcast named arrays together, naming every shape when they do not fit."""
    try:
        return tuple(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise ValueError(f"shapes do not broadcast together: {shapes}") from None


def check_int_at_least(name: str, value: Any, low: int) -> int:
    """An integer >= ``low`` (a class count K, a step count T, ...)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_step_counts(name: str, value: Any) -> tuple[int, ...]:
    """A non-empty, strictly increasing 1-D sequence of integers >= 0 (step counts)."""
    items = list(value) if isinstance(value, (list, tuple)) else None
    if items is None:
        arr = _as_numpy(name, value)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got "
                             f"{_short(value)}")
        items = list(arr)
    if not items:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got "
                         f"{_short(value)}")
    out = tuple(check_int_at_least(f"{name}[{i}]", v, 0) for i, v in enumerate(items))
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise ValueError(f"{name} must be strictly increasing: {name}[{i}] = {out[i]} <= "
                             f"{name}[{i - 1}] = {out[i - 1]}")
    return out


def logprob_array(name: str, value: Any) -> FloatArray:
    """Log-probabilities ``[..., V]`` (``V >= 2``) as float64, under the rules of
    :func:`as_float_array` (a torch tensor on any device is read as it is; complex, boolean,
    string and masked input is refused, not cast); entries must lie in ``[-inf, 0]`` up to
    the normalisation the caller checks (NaN and ``+inf`` are refused)."""
    arr = as_float_array(name, value)
    if arr.ndim < 1 or arr.shape[-1] < 2:
        raise ValueError(f"{name} must have shape [..., V] with V >= 2 columns, got shape "
                         f"{arr.shape}")
    if np.isnan(arr).any() or (arr == np.inf).any():
        bad = np.argwhere(np.isnan(arr) | (arr == np.inf))[0]
        raise ValueError(f"{name} must be log-probabilities in [-inf, 0]; entry "
                         f"{tuple(int(i) for i in bad)} is {arr[tuple(bad)]!r}")
    return arr


def valid_mask(valid: Any, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """``valid`` as a boolean mask of ``shape``: a mask broadcastable to it, or one sequence
    of valid column ids per position (positions in C order over ``shape[:-1]``)."""
    if hasattr(valid, "detach") and hasattr(valid, "cpu"):
        valid = valid.detach().cpu().numpy()
    arr = np.asarray(valid, dtype=object) if is_ragged(valid) else np.asarray(valid)
    if isinstance(valid, np.ndarray) and arr.dtype.kind in "iu" and arr.shape == tuple(shape):
        # an integer array shaped like the log-probs: a 0/1 mask or ids? (a sequence of id
        # arrays per position is the id form, whatever its lengths)
        raise ValueError(f"valid: an integer array of the log-probs' shape {tuple(shape)} is "
                         f"ambiguous (a 0/1 mask, or {shape[-1]} column ids per position); "
                         f"pass a boolean mask (e.g. valid.astype(bool) for a 0/1 mask) or "
                         f"one sequence of valid column ids per position")
    if arr.dtype == np.bool_:
        try:
            return np.broadcast_to(arr, shape)
        except ValueError:
            raise ValueError(f"valid: a boolean mask of shape {arr.shape} does not broadcast "
                             f"to the log-probs' shape {shape}") from None
    n_pos, n_col = int(np.prod(shape[:-1])), shape[-1]
    ids: Sequence[Any] = list(valid)
    if len(ids) != n_pos:
        raise ValueError(f"valid: expected one array of valid column ids per position "
                         f"({n_pos} positions for log-probs of shape {shape}), got {len(ids)}")
    out = np.zeros((n_pos, n_col), dtype=bool)
    for i, row in enumerate(ids):
        idx = np.asarray(row)
        if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n_col):
            raise ValueError(f"valid[{i}] must hold integer column ids in [0, {n_col}), got "
                             f"{row!r}")
        out[i, idx.astype(np.int64)] = True
    return out.reshape(shape)


def is_ragged(valid: Any) -> bool:
    """Whether ``valid`` is a ragged sequence (id arrays of unequal lengths)."""
    if isinstance(valid, np.ndarray):
        return False
    try:
        np.asarray(valid)
    except ValueError:
        return True
    return False
