#!/usr/bin/env bash
# The whole test suite: install, then lint (ruff), type-check (mypy) and run pytest
# (warnings are errors).  CLIFF_THOROUGH=1 adds the heavy runs and the larger hypothesis profile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
