"""Atomic writes, and the one JSON convention of every file the package writes.

An interrupted run never leaves a half-written result behind: each file is written to a
temporary file beside it and renamed onto its path.

JSON has no infinite numbers, so every file cliff writes (``python -m cliff solve --json``,
``calibration.json``, ``figures/data/*.json``, the real-model check's predictions and reports)
writes a non-finite float as one of the strings ``"inf"``, ``"-inf"``, ``"nan"``
(:func:`jsonable`), and :func:`read_json` reads them back as floats.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; non-finite floats become strings."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (through :func:`atomic_path`); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """``fig.savefig`` through a temporary file (format taken from ``path``'s suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)
    return path


def jsonable(obj: Any) -> Any:
    """Plain JSON types for ``obj``: arrays as lists, numpy scalars as Python numbers, and
    non-finite floats as the strings "inf", "-inf", "nan"."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else ("inf" if f > 0 else "-inf" if f < 0 else "nan")
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
"""The strings that stand for non-finite floats in cliff's JSON files."""


def from_jsonable(obj: Any) -> Any:
    """Inverse of :func:`jsonable` on parsed JSON: the strings ``"inf"``, ``"-inf"``,
    ``"nan"`` become floats again, everything else is returned as it is."""
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    if isinstance(obj, str) and obj in NON_FINITE:
        return NON_FINITE[obj]
    return obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file written by cliff, with non-finite numbers as floats.

    Examples
    --------
    >>> import math, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = write_json(path, {"lambda_star": math.inf, "p": 0.5})
    >>> path.read_text().split()
    ['{', '"lambda_star":', '"inf",', '"p":', '0.5', '}']
    >>> read_json(path)
    {'lambda_star': inf, 'p': 0.5}
    """
    return from_jsonable(json.loads(Path(path).read_text()))
