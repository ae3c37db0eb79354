"""Input validation at the package boundary.

Every public function checks its arguments here, once, and raises a ``ValueError`` that
names the argument, the rule it broke, the offending value (or how many entries are bad and
the first index) and the allowed range.  Nothing is clipped or silently turned into NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_float_array(name: str, value: ArrayLike) -> FloatArray:
    """``value`` as a float64 array, refusing non-numeric input by name."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of reals, got {value!r}") from err
    return arr


def _fail(name: str, arr: FloatArray, bad: NDArray[np.bool_], allowed: str) -> None:
    if arr.ndim == 0:
        raise ValueError(f"{name} must be in {allowed}, got {arr.item()!r}")
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    index = first[0] if len(first) == 1 else first
    raise ValueError(
        f"{name} must be in {allowed}: {int(bad.sum())} of {arr.size} entries are not "
        f"(first at index {index}: {float(arr[first])!r})"
    )


def check_open_unit(name: str, value: ArrayLike) -> FloatArray:
    """A probability strictly inside (0, 1); NaN fails the comparison and is reported."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() > 0.0 and arr.max() < 1.0):
        _fail(name, arr, ~((arr > 0.0) & (arr < 1.0)), "the open interval (0, 1)")
    return arr


def check_cap(name: str, value: ArrayLike) -> FloatArray:
    """An IS clip strength: a finite ratio cap c > 1."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() > 1.0 and arr.max() < np.inf):
        _fail(name, arr, ~((arr > 1.0) & (arr < np.inf)), "(1, inf) (a finite ratio cap > 1)")
    return arr


def check_floor(name: str, value: ArrayLike) -> FloatArray:
    """A lower IS clip c_low in [0, 1); 0 means no lower clip."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() >= 0.0 and arr.max() < 1.0):
        _fail(name, arr, ~((arr >= 0.0) & (arr < 1.0)), "[0, 1) (0 = no lower clip)")
    return arr


def check_nonnegative(name: str, value: ArrayLike) -> FloatArray:
    """A finite value >= 0 (an extrapolation coefficient lambda)."""
    arr = as_float_array(name, value)
    if arr.size and not (arr.min() >= 0.0 and arr.max() < np.inf):
        _fail(name, arr, ~((arr >= 0.0) & (arr < np.inf)), "[0, inf) (finite, >= 0)")
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
