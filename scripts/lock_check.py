"""Exit 1 (naming each difference) unless this interpreter's packages are exactly the lock's.

Usage: ``python scripts/lock_check.py requirements.lock``.  Compares name and version of every
installed distribution with the ``name==version`` lines of the lock, as ``pip freeze`` would
list them with ``--all`` (pip itself and cliff are left out).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions

IGNORED = {"pip", "cliff"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: str) -> dict[str, str]:
    pins = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if m:
            pins[normalise(m[1])] = m[2]
    return pins


def installed() -> dict[str, str]:
    found = {normalise(d.metadata["Name"]): d.version for d in distributions()}
    return {k: v for k, v in found.items() if k not in IGNORED}


def main(path: str) -> int:
    want, have = locked(path), installed()
    diff = sorted(f"{k}: locked {want.get(k, '-')}, installed {have.get(k, '-')}"
                  for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    for line in diff:
        print(f"lock_check: {line}", file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
