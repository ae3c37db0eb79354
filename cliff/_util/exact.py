"""Error-free floating-point transformations: a product carried exactly where a difference
cancels."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def product_minus(a: FloatArray, x: FloatArray, y: FloatArray | float) -> FloatArray:
    """``a * x - y`` with the product carried exactly (Dekker's two-product on the
    mantissas, so it neither overflows nor underflows): one rounding where the difference
    cancels.  ``a * x`` must be a finite float."""
    ma, ea = np.frexp(a)
    mx, ex = np.frexp(x)
    hi = ma * mx

    def split(v: FloatArray) -> tuple[FloatArray, FloatArray]:  # Veltkamp: 26 + 27 bits
        t = v * 134217729.0
        h = t - (t - v)
        return h, v - h

    (ah, al), (xh, xl) = split(ma), split(mx)
    lo = ((ah * xh - hi) + ah * xl + al * xh) + al * xl  # hi + lo = ma * mx exactly
    e = ea + ex
    return (np.ldexp(hi, e) - y) + np.ldexp(lo, e)
