"""``cliff.internal``: the package's unstable helpers, for ``validate/``, ``derivations/`` and
the tests.

Everything a user needs is in :mod:`cliff` itself.  These names are the pieces that the
project's own checks reuse (atomic writes, the checkpoint loader, the KV-cached sampler, the
lambdified kernel tables); they may change without notice between releases, the way
``equinox.internal`` does.  Nothing outside ``cliff/`` imports a private ``cliff._x`` module:
it imports :mod:`cliff` or this namespace.

The sampler and scorer (``left_pad``, ``sample``, ``answer_logprobs``, ``position_logprobs``,
``stop_mask``, ``input_device``) need torch; they are imported on first use, so that
``import cliff.internal`` stays as light as ``import cliff``.
"""

from __future__ import annotations

import importlib
from typing import Any

from cliff._calibration.contract import token_bytes
from cliff._calibration.labels import JsonCursor
from cliff._calibration.loading import (
    load_model,
    load_tokenizer,
    read_contract,
    read_jsonl,
    read_prompts,
    same_tokenizer,
)
from cliff._calibration.run import encode_prompts
from cliff._schedule.scheduler import safe_lambda
from cliff._theory import bernoulli as _bernoulli
from cliff._theory import budget as _budget
from cliff._theory import kary as _kary
from cliff._util.atomic import atomic_path, jsonable, save_figure, write_json, write_text
from cliff._util.blocks import threads

KERNELS: dict[str, dict[str, tuple[Any, Any, Any]]] = {
    mod.__name__: mod.KERNELS for mod in (_bernoulli, _budget, _kary)
}
"""Every lambdified kernel, by the module that evaluates it: ``name -> (args, expr, fn)``,
with ``expr`` the SymPy expression of :mod:`cliff.symbolic` and ``fn`` its numpy function
(``sympy.lambdify(args, expr, cse=True)``)."""

_TORCH = {name: "cliff._calibration.rollout" for name in (
    "answer_logprobs", "input_device", "left_pad", "output_device", "position_logprobs",
    "sample", "stop_mask")}

__all__ = [
    "KERNELS",
    "JsonCursor",
    "atomic_path",
    "encode_prompts",
    "jsonable",
    "load_model",
    "load_tokenizer",
    "read_contract",
    "read_jsonl",
    "read_prompts",
    "safe_lambda",
    "same_tokenizer",
    "save_figure",
    "threads",
    "token_bytes",
    "write_json",
    "write_text",
    *sorted(_TORCH),
]


def __getattr__(name: str) -> Any:  # PEP 562: the torch-backed names load on first use
    if name in _TORCH:
        return getattr(importlib.import_module(_TORCH[name]), name)
    raise AttributeError(f"module 'cliff.internal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
