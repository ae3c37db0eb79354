#!/usr/bin/env bash
# Install everything cliff needs: Debian's LaTeX (for the derivation PDFs) and a virtualenv.
#
#   bash scripts/setup.sh            ./.venv holding exactly requirements.lock (the versions the
#                                    suite last passed with), checked by hash; a .venv that has
#                                    drifted from the lock is rebuilt from scratch.
#   bash scripts/setup.sh --latest   ./.venv-latest, always rebuilt, with the newest releases
#                                    pyproject.toml allows (torch stays at the locked CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pdflatex >/dev/null || ! command -v pdfinfo >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing Debian LaTeX and poppler-utils" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        texlive-latex-base texlive-latex-recommended poppler-utils >/dev/null
fi

PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
EXTRAS="llm,dev,qwen,docs,trl"

if [ "${1:-}" = --latest ]; then
    # Newer torch releases on PyPI are multi-GB CUDA builds; the drift check keeps the CPU one.
    torch_pin=$(sed -n 's/^torch==\([0-9.]*\).*/\1/p' requirements.lock)
    rm -rf .venv-latest
    "$PYTHON" -m venv .venv-latest
    .venv-latest/bin/pip install -q "torch==$torch_pin" hatchling editables  # the build backend
    .venv-latest/bin/pip install -q --no-build-isolation -e ".[$EXTRAS]"
    exit 0
fi

if ! { [ -x .venv/bin/python ] && .venv/bin/python scripts/lock_check.py requirements.lock; }; then
    echo "setup: building .venv from requirements.lock" >&2
    rm -rf .venv
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --require-hashes --no-deps -r requirements.lock
    .venv/bin/python scripts/lock_check.py requirements.lock
fi
.venv/bin/pip install -q --no-deps --no-build-isolation -e .
