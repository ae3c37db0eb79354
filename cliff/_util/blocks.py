"""Blockwise, multi-threaded evaluation of elementwise kernels.

A chain of numpy ufuncs over a long array is memory-bound: every intermediate is written to
and read back from RAM.  Evaluating the same chain on cache-sized blocks keeps the
intermediates in cache, and numpy releases the GIL inside ufuncs, so blocks run in parallel
on a thread pool.  Results are identical to the whole-array evaluation (the same ufuncs on
the same elements).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

BLOCK = 1 << 14  # elements per block: ~10 float64 intermediates stay inside L2


def threads() -> int:
    """Worker threads: ``CLIFF_NUM_THREADS`` if set, else the usable CPU count."""
    env = os.environ.get("CLIFF_NUM_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


@functools.cache
def _executor(n: int) -> ThreadPoolExecutor:
    """One long-lived pool per worker count."""
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="cliff")


def run(kernel: Callable[..., None], inputs: Sequence[np.ndarray],
        outputs: Sequence[np.ndarray]) -> None:
    """Call ``kernel(*input_slices, output_slices)`` over blocks of the 1-d ``inputs``.

    ``outputs`` are preallocated 1-d arrays of the same length, written in place.
    """
    n = len(outputs[0])
    starts = range(0, n, BLOCK)

    def one(start: int) -> None:
        sl = slice(start, start + BLOCK)
        kernel(*(a[sl] if len(a) > 1 else a for a in inputs), tuple(o[sl] for o in outputs))

    workers = threads()
    if n <= BLOCK or workers == 1:
        for s in starts:
            one(s)
        return
    chunks = np.array_split(np.arange(len(starts)), workers)

    def many(idx: Any) -> None:
        for i in idx:
            one(starts[int(i)])

    for f in [_executor(workers).submit(many, idx) for idx in chunks]:
        f.result()
