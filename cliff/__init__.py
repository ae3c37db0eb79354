"""cliff: the extrapolation cliff of reward-extrapolated on-policy distillation, in closed form.

``cliff.solve(p, b, c)`` returns the clip-safety threshold lambda* past which the
extrapolated G-OPD fixed point leaves the IS-clip-safe region, and lambda_collapse past
which the clipped dynamics have no fixed point at all.  Every formula is a SymPy expression
(:mod:`cliff.symbolic`) lambdified into numpy.
"""

from cliff._bernoulli import (
    SolveResult,
    clip_safe_region,
    clipped_fixed_point,
    fixed_point,
    solve,
)

__version__ = "0.1.0"

__all__ = [
    "SolveResult",
    "__version__",
    "clip_safe_region",
    "clipped_fixed_point",
    "fixed_point",
    "solve",
]
