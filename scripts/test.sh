#!/usr/bin/env bash
# The whole test suite: install, then lint (ruff), type-check (mypy) and run pytest
# (warnings are errors).  CLIFF_THOROUGH=1 adds the heavy runs and the larger hypothesis profile.
#   bash scripts/test.sh [PYTEST ARGS]            in .venv, the locked versions (what CI runs)
#   bash scripts/test.sh --latest [PYTEST ARGS]   in .venv-latest, the newest allowed versions:
#                                                 a drift check to run on purpose, not in CI
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ "${1:-}" = --latest ]; then
    shift
    venv=.venv-latest
    bash scripts/setup.sh --latest
    "$venv/bin/pip" freeze --exclude-editable | sed 's/^/latest: /' >&2
else
    bash scripts/setup.sh
fi
"$venv/bin/ruff" check .
"$venv/bin/mypy"
"$venv/bin/python" -m pytest "$@"
