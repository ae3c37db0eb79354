"""The configuration of the real-model check: one dataclass, saved with every result.

Every field carries its meaning in the string literal right below it (an attribute
docstring).  Those docstrings are the only description of the fields: the command line
(:mod:`validate.llm_check.cli`) builds its ``--help`` from them with :func:`field_docs`, and
the prediction and report store ``asdict(config)`` beside them.

The module imports nothing heavy: the spawned OPD workers unpickle a :class:`Config`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Config", "field_docs"]


@dataclass
class Config:
    """Everything a run depends on; saved with every result (and in the prediction)."""

    out: str = "runs/llm_check"
    """output folder; must hold no prediction yet, since pre-registration writes it once
    (--resume continues one that does)"""
    resume: str | None = None
    """folder of an interrupted run to continue (instead of --out): its finished OPD runs are
    kept and the others run; refused unless this command would seal the prediction there
    (the same flags but --out, the same code, the same sha256)"""
    config: Literal["softening", "sharpening", "both", "paper", "reachable", "dirty_ids",
                    "dirty_ids_1000"] = "sharpening"
    """warm-start configuration(s) to run; with --student/--teacher the configuration the
    gate checks the checkpoints against ('both' counts as 'sharpening'); with --ladder one of
    paper, reachable, dirty_ids, dirty_ids_1000, softening
    (validate.llm_check.ladder.configurations)"""
    seed: int = 0
    """base OPD seed; the seeds per lambda are seed, seed+1, ..."""
    warm_seeds: tuple[int, ...] = (0,)
    """warm-start seeds, each a separate run: it trains its own teacher and warm start and
    runs everything"""
    n_seeds: int = 3
    """OPD seeds per lambda, >= 1; the tests' design minimum is 3"""
    quick: bool = False
    """tiny budgets: checks the pipeline end to end in a few minutes (fewer steps, rollouts,
    seeds; every verdict VOID by design); a failed gate does not stop it: the sweep, the
    mechanism and the analysis run past it, the gate marked VOID"""
    gate_only: bool = False
    """build the warm start, measure it, evaluate the gate, write gate.json and stop (no
    prediction, no sweep)"""
    device: str = "cpu"
    """torch device, 'cpu' or 'cuda'; the command line's default is cuda whenever torch sees a
    GPU"""
    threads: int = 1
    """torch CPU threads per OPD worker process"""
    workers: int = 2
    """OPD worker processes, spawned, one torch thread each; 1 = in this process (always so
    on cuda)"""
    # --- task
    k: int = 8
    """items per prompt (single-digit ids, K <= 10)"""
    levels: int = 3
    """feature levels; relevance = x in {0..levels-1}"""
    max_new: int = 20
    """generation cap in tokens (a full answer is 2K+1 symbols plus EOS)"""
    # --- warm start (synthetic configurations only)
    teacher_steps: int = 600
    """SFT steps for each teacher"""
    student_steps: int = 500
    """SFT steps for each warm-start student"""
    retry_student_steps: int = 2000
    """SFT steps of the warm start on the gate's one pre-registered retry"""
    retry_teacher_steps: int = 1200
    """SFT steps of the teacher on that retry (its format mass at the warm start's contexts
    is part of the gate)"""
    sft_batch: int = 64
    """SFT batch size"""
    sft_lr: float = 3e-3
    """SFT AdamW learning rate (linear warm-down)"""
    teacher_format_noise: float = 0.2
    """softening: rate at which teacher targets drop the closing ']'"""
    student_format_noise: float = 0.5
    """sharpening: rate at which student targets drop the closing ']'"""
    student_rank_noise: float = 1.0
    """Gumbel scale added to scores before sorting the student's targets"""
    # --- pre-registration
    c: float = 5.0
    """IS clip strength, a ratio cap in (1, inf); the paper uses 5"""
    c_low: float | None = None
    """lower IS ratio clip in [0, 1); unset (None) means 1/c, and 0 no lower clip"""
    c_new: float = 2.0
    """test (c): the second clip c', a ratio cap > 1 other than c, fixed in the prediction"""
    control_c: float = 1e6
    """no-clip control: c effectively infinite (lower clip 1/control_c)"""
    estimate_rollouts: int = 256
    """warm-start rollouts whose structural positions measure p and b"""
    n_grid: int = 8
    """grid points besides lambda = 1 (validate.llm_check.grid.design_grid, >= 8)"""
    n_beyond: int = 3
    """grid points past the windows, up to twice the grid's distance from 1 (the T-step onset
    lies above the asymptotic windows; validate.llm_check.grid)"""
    grid_min_step: float = 0.01
    """the grid's resolution floor h_min"""
    grid_upper: float = 6.0
    """the largest lambda on any grid"""
    mean_field_lr: float = 0.05
    """mean-field step size eta of cliff.budget_extension / clip_cross_prediction (logit
    change per unit drift per update); a fixed guess, not calibrated, locked in the
    prediction"""
    null_constant: float = 1.5
    """the constant null predictor of test (a), fixed before any measurement"""
    n_boot: int = 2000
    """bootstrap replicates of the three tests"""
    power_simulations: int = 100
    """simulated sweeps per world of the power check of tests (b) and (c), run before the
    sweep and sealed in the prediction"""
    # --- OPD
    opd_steps: int = 60
    """T: OPD updates per run at which tests (a) and (c) evaluate; the main sweep's runs go
    on to 2T for test (b)"""
    rollouts: int = 32
    """student rollouts per update"""
    opd_lr: float = 1e-3
    """learning rate of the OPD update (Adam's, or SGD's with --optimizer sgd)"""
    optimizer: Literal["adam", "sgd"] = "adam"
    """OPD optimizer: 'adam' (Adam, update_epochs PPO epochs per batch, gradient-norm clip
    max_grad_norm) or 'sgd' (plain SGD on the REINFORCE step: one epoch, no gradient-norm
    clip)"""
    update_epochs: int = 2
    """PPO epochs per batch (adam; sgd takes one)"""
    clip_coef: float = 0.2
    """PPO ratio clip epsilon (pi_new / pi_old in [1-eps, 1+eps]; adam)"""
    max_grad_norm: float = 1.0
    """gradient-norm clip (adam; sgd has none)"""
    eval_rollouts: int = 512
    """held-out rollouts for parse rate and NDCG@1 (one per prompt, shared by every run)"""
    mass_every: int = 5
    """log the student's valid mass per position type every this many OPD steps"""
    break_fraction: float = 0.5
    """a lambda 'breaks' when its mean parse rate < break_fraction * the lambda=1 rate"""
    schedule: bool = False
    """also run the main grid's highest lambda under cliff.LambdaScheduler"""
    schedule_margin: float = 0.10
    """pass mark of the scheduled run, in [0, 1]: its mean strict parse rate may fall at most
    this below the best sub-threshold main run's (grid lambda below the predicted lambda*),
    and its mean lambda must exceed 1 by schedule_min_gain"""
    schedule_min_gain: float = 0.02
    """pass mark of the scheduled run: its mean lambda over the run must exceed 1 by at least
    this"""
    # --- the budget ladder (--ladder)
    ladder: bool = False
    """run the budget ladder (validate.llm_check.ladder) instead of the main sweep: one SGD
    run per (lambda, seed) evaluated at each of --ladder-budgets; a heavy run"""
    ladder_budgets: tuple[int, ...] = (60, 120, 240)
    """the ladder's evaluation budgets T, 2T, 4T (updates)"""
    ladder_rungs: int = 8
    """rungs above lambda = 1, reaching three rungs past the largest predicted window"""
    ladder_lr: float = 0.1
    """the ladder's constant SGD step size (chosen on a lambda = 1 pilot of a warm start
    outside every pre-registered unit)"""
    ladder_delta: float = 0.5
    """the ladder onset's margin: the first rung whose trend of log losing-class mass over
    log T falls this far below lambda = 1's"""
    ladder_control_rungs: int = 3
    """top rungs (besides lambda = 1) at which the no-clip control runs, one seed each"""
    ladder_checkpoints: str = "runs/ladder_checkpoints"
    """folder of the ladder's teacher and warm-start checkpoints: a model saved there is
    loaded, one missing is trained and saved (validate.llm_check.ladder.warm)"""
    # --- real checkpoints
    student: str | None = None
    """folder of a local Qwen3 checkpoint of the student and its tokenizer (loaded
    offline)"""
    teacher: str | None = None
    """folder of a local Qwen3 checkpoint of the teacher, with the student's tokenizer
    (loaded offline)"""
    data: str | None = None
    """JSONL file of real prompts, {"prompt": str, "relevance": [K numbers]} per line; unset
    (None): the synthetic task"""

    def recorded(self) -> dict[str, Any]:
        """``asdict(self)`` as the prediction and the report record it: without ``resume``,
        which says how a command continues a run, not what the run is."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "resume"}

    @property
    def c_low_value(self) -> float:
        """The lower clip in effect: ``c_low``, or ``1/c`` when it is None."""
        return 1.0 / self.c if self.c_low is None else self.c_low

    def quick_version(self) -> Config:
        """The ``--quick`` run: same code path, tiny budgets (below every test's minimums,
        so every verdict is VOID by design)."""
        return dataclasses.replace(
            self, teacher_steps=40, student_steps=30, retry_student_steps=40,
            retry_teacher_steps=50, sft_batch=32, estimate_rollouts=64, n_seeds=1, opd_steps=4,
            rollouts=16, eval_rollouts=64, n_boot=200, power_simulations=5, mass_every=2,
            ladder_budgets=(2, 4), ladder_rungs=4, ladder_control_rungs=1, quick=True)


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of the dataclass ``cls``, by field name.

    An attribute docstring is the string literal right below an annotated field in the class
    body; it is read from the class's source with :mod:`ast` (Python keeps no such strings
    at run time).  Whitespace is collapsed to single spaces.

    Raises
    ------
    ValueError
        When a field of ``cls`` has no docstring.

    Examples
    --------
    >>> docs = field_docs(Config)
    >>> docs["n_seeds"]
    "OPD seeds per lambda, >= 1; the tests' design minimum is 3"
    >>> set(docs) == {f.name for f in dataclasses.fields(Config)}
    True
    """
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    if not isinstance(node, ast.ClassDef):
        raise TypeError(f"cls must be a class, got {cls!r}")
    docs = {}
    for stmt, after in zip(node.body, node.body[1:], strict=False):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[stmt.target.id] = " ".join(after.value.value.split())
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in docs]
    if missing:
        raise ValueError(f"cls: every field of {cls.__name__} needs a docstring (a string "
                         f"literal right below it); none for {missing}")
    return docs
