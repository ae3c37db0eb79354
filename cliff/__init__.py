"""cliff: the extrapolation cliff of reward-extrapolated on-policy distillation, in closed form.

``cliff.solve(p, b, c)`` returns the clip-safety threshold lambda* past which the
extrapolated G-OPD fixed point leaves the IS-clip-safe region, and lambda_collapse past
which the clipped dynamics have no fixed point at all.  Every formula is a SymPy expression
(:mod:`cliff.symbolic`) lambdified into numpy.  ``cliff.calibrate`` measures lambda* of a
teacher and a warm start on an output contract (needs the ``llm`` extra: torch,
transformers, llguidance; imported only when it runs).  ``cliff.LambdaScheduler`` keeps lambda
below the threshold during training, fed by ``cliff.ContractPositions`` (the structural
positions of a batch of completions); ``cliff.integrations.trl`` puts both in a TRL trainer.
"""

from cliff._calibration.contract import Contract
from cliff._calibration.estimate import Estimate, estimate, lambda_star_by_token
from cliff._calibration.positions import ContractPositions, PositionBatch
from cliff._calibration.result import (
    Calibration,
    CalibrationWarning,
    LabelStats,
    Measurements,
)
from cliff._calibration.run import calibrate
from cliff._schedule.scheduler import LambdaScheduler
from cliff._theory.bernoulli import (
    SolveResult,
    clip_safe_region,
    clipped_fixed_point,
    fixed_point,
    solve,
)
from cliff._theory.budget import (
    BudgetExtension,
    ClipCross,
    MeanFieldPath,
    asymptotic_onset,
    budget_extension,
    clip_cross_prediction,
    finite_budget_onset,
    max_monotone_lr,
    mean_field_path,
)
from cliff._theory.kary import (
    KaryResult,
    Reduction,
    aggregate,
    kary_fixed_point,
    reduction,
    solve_kary,
    solve_kary_log,
)
from cliff._theory.sequence import log_parse_rate, predict_parse_rate, sequence_cliff
from cliff._util.atomic import read_json

__version__ = "0.1.0"

__all__ = [
    "BudgetExtension",
    "Calibration",
    "CalibrationWarning",
    "ClipCross",
    "Contract",
    "ContractPositions",
    "Estimate",
    "KaryResult",
    "LabelStats",
    "LambdaScheduler",
    "MeanFieldPath",
    "Measurements",
    "PositionBatch",
    "Reduction",
    "SolveResult",
    "__version__",
    "aggregate",
    "asymptotic_onset",
    "budget_extension",
    "calibrate",
    "clip_cross_prediction",
    "clip_safe_region",
    "clipped_fixed_point",
    "estimate",
    "finite_budget_onset",
    "fixed_point",
    "kary_fixed_point",
    "lambda_star_by_token",
    "log_parse_rate",
    "max_monotone_lr",
    "mean_field_path",
    "predict_parse_rate",
    "read_json",
    "reduction",
    "sequence_cliff",
    "solve",
    "solve_kary",
    "solve_kary_log",
]
