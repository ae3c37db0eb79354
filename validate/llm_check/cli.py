"""``python -m validate.llm_check``: the extrapolation cliff on a real Qwen3-architecture model.

The command line only parses and dispatches.  Its flags (:data:`FLAGS`) are fields of
:class:`~validate.llm_check.config.Config`: each flag's help is the field's docstring
(:func:`~validate.llm_check.config.field_docs`), its type, choices and default the field's
own (:func:`build_parser`).  Every configuration and warm-start seed is then one unit
(:func:`validate.llm_check.unit.run_unit`), in the folder ``--out`` or, for several units,
in its subfolder ``<config>_w<seed>``.  ``--resume FOLDER`` continues the interrupted units in
``FOLDER`` (:mod:`validate.llm_check.resume`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
import types
import typing
from pathlib import Path
from typing import Any, Literal

import torch

from cliff.internal import write_json
from validate.llm_check import unit
from validate.llm_check.config import Config, field_docs
from validate.llm_check.ladder.run import run_ladder_unit
from validate.llm_check.resume import ResumeRefused

__all__ = ["FLAGS", "build_parser", "parse_args", "main"]

FLAGS: dict[str, str] = {
    "out": "--out", "resume": "--resume", "seed": "--seed", "warm_seeds": "--warm-seeds",
    "n_seeds": "--seeds", "quick": "--quick", "gate_only": "--gate-only", "config": "--config",
    "c": "--c", "c_low": "--c-low", "c_new": "--c-new", "opd_steps": "--opd-steps",
    "opd_lr": "--opd-lr", "optimizer": "--optimizer", "workers": "--workers",
    "schedule": "--schedule", "schedule_margin": "--schedule-margin", "student": "--student",
    "teacher": "--teacher", "data": "--data", "device": "--device", "ladder": "--ladder",
    "ladder_lr": "--ladder-lr", "ladder_checkpoints": "--ladder-checkpoints"}
"""The fields of :class:`Config` the command line sets, each with its flag, in the order
``--help`` lists them; every other field keeps its default."""


def flag_default(name: str) -> Any:
    """The command line's default of field ``name``: the field's, except ``device``, which is
    cuda when torch sees a GPU."""
    if name == "device":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return {f.name: f.default for f in dataclasses.fields(Config)}[name]


def argument(hint: Any, default: Any) -> dict[str, Any]:
    """``argparse`` keywords for a field of type ``hint``: ``bool`` a switch (default False),
    ``X | None`` an optional ``X``, ``tuple[X, ...]`` one or more ``X``, ``Literal[...]`` a
    choice, any other type itself.

    Examples
    --------
    >>> argument(tuple[int, ...], (0,))
    {'type': <class 'int'>, 'nargs': '+', 'default': [0]}
    >>> argument(float | None, None)
    {'type': <class 'float'>, 'default': None}
    """
    if hint is bool:
        if default is not False:
            raise ValueError(f"default: a switch must default to False, got {default!r}")
        return {"action": "store_true"}
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (hint,) = (a for a in args if a is not type(None))
        args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return {"type": args[0], "nargs": "+", "default": list(default)}
    if origin is Literal:
        return {"choices": list(args), "default": default}
    return {"type": hint, "default": default}


def help_text(doc: str, default: Any) -> str:
    """A field's docstring as ``--help`` text, with its default unless None or False."""
    shown = " ".join(map(str, default)) if isinstance(default, tuple | list) else default
    text = doc if default is None or default is False else f"{doc} (default {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def build_parser() -> argparse.ArgumentParser:
    """The parser of :data:`FLAGS`, every argument generated from its :class:`Config` field."""
    docs, hints = field_docs(Config), typing.get_type_hints(Config)
    headline = (__doc__ or "").splitlines()[0]
    ap = argparse.ArgumentParser(prog="python -m validate.llm_check",
                                 description=f"{headline}\n\n{unit.__doc__}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, flag in FLAGS.items():
        default = flag_default(name)
        ap.add_argument(flag, dest=name, help=help_text(docs[name], default),
                        **argument(hints[name], default))
    return ap


def check_flags(cfg: Config) -> None:
    """The rules the flags' values must meet (ValueError naming the flag, rule and value)."""
    if cfg.c <= 1 or not math.isfinite(cfg.c):
        raise ValueError(f"--c must be a finite ratio cap > 1, got {cfg.c!r}")
    if cfg.c_new <= 1 or not math.isfinite(cfg.c_new) or cfg.c_new == cfg.c:
        raise ValueError(f"--c-new must be a finite ratio cap > 1 other than --c, got "
                         f"{cfg.c_new!r}")
    if not 0 <= cfg.schedule_margin <= 1:
        raise ValueError(f"--schedule-margin must be in [0, 1], got {cfg.schedule_margin!r}")
    if cfg.c_low is not None and not 0 <= cfg.c_low < 1:
        raise ValueError(f"--c-low must be in [0, 1), got {cfg.c_low!r}")
    if cfg.resume is not None and cfg.gate_only:
        raise ValueError(f"--resume continues a sweep and --gate-only runs none; got both "
                         f"(--resume {cfg.resume})")
    if not (cfg.opd_lr > 0 and math.isfinite(cfg.opd_lr)):
        raise ValueError(f"--opd-lr must be finite and > 0, got {cfg.opd_lr!r}")
    ladder_names = ("paper", "reachable", "dirty_ids", "dirty_ids_1000", "softening")
    if cfg.ladder and cfg.config not in ladder_names:
        raise ValueError(f"--config must be one of {ladder_names} with --ladder, got "
                         f"{cfg.config!r}")
    if not cfg.ladder and cfg.config in ladder_names[:4]:
        raise ValueError(f"--config {cfg.config} is a configuration of the ladder: it needs "
                         f"--ladder")
    if cfg.ladder and (cfg.student or cfg.teacher or cfg.data or cfg.schedule):
        raise ValueError("--ladder trains its own models on the synthetic task: it takes no "
                         "--student, --teacher, --data or --schedule")
    if not (cfg.ladder_lr > 0 and math.isfinite(cfg.ladder_lr)):
        raise ValueError(f"--ladder-lr must be finite and > 0, got {cfg.ladder_lr!r}")
    if cfg.n_seeds < 1 or cfg.opd_steps < 1 or cfg.workers < 1:
        raise ValueError(f"--seeds, --opd-steps and --workers must be >= 1, got "
                         f"{cfg.n_seeds!r}, {cfg.opd_steps!r}, {cfg.workers!r}")
    if cfg.power_simulations < 1:
        raise ValueError(f"--power-simulations must be >= 1, got {cfg.power_simulations!r}")


def parse_args(argv: list[str] | None) -> Config:
    """The :class:`Config` of the command line ``argv`` (``sys.argv[1:]`` when None),
    checked, and its quick version with ``--quick``."""
    ns = build_parser().parse_args(argv)
    values: dict[str, Any] = {name: tuple(v) if isinstance(v, list) else v  # nargs="+"
                              for name, v in vars(ns).items()}
    cfg = Config(**values)
    check_flags(cfg)
    return cfg.quick_version() if cfg.quick else cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every configuration and warm-start seed; returns the report (one unit) or
    ``{"units": {...}}`` (several, each in its own subfolder ``<config>_w<seed>``)."""
    cfg = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(cfg.threads)  # SFT and measurement: on a shared CPU, more
    # threads than free cores slow the tiny models down several-fold (measured: 2 s/step at 2
    # threads against 0.35 s/step at 1 under a load of 8 on 2 cores)
    t0 = time.time()
    out = Path(cfg.resume or cfg.out)
    shared = unit.shared_inputs(cfg)
    units = [(n, w) for n in shared.configurations for w in cfg.warm_seeds]
    folders = {(n, w): out if len(units) == 1 else out / f"{n}_w{w}" for n, w in units}
    sealed = [f / "prediction.json" for f in folders.values()]
    if cfg.resume and not any(p.exists() for p in sealed):
        raise ResumeRefused(f"--resume {cfg.resume}: no sealed prediction to continue there "
                            f"(looked for {[str(p) for p in sealed]})")
    results = {}
    for name, w in units:
        folder = folders[(name, w)]
        folder.mkdir(parents=True, exist_ok=True)
        run = run_ladder_unit if cfg.ladder else unit.run_unit
        results[f"{name}_w{w}"] = run(cfg, name, w, folder, shared)
    if len(units) == 1:
        return next(iter(results.values()))
    summary = {"units": results, "wall_time_s": time.time() - t0}
    write_json(out / ("gate.json" if cfg.gate_only else "summary.json"),
               {k: {kk: v.get(kk) for kk in ("passed", "gate", "tests", "summary", "attempts")
                    if kk in v} for k, v in results.items()})
    return summary
