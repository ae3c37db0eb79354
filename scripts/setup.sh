#!/usr/bin/env bash
# Install everything cliff needs into ./.venv: Debian's LaTeX (for the derivation PDFs),
# the CPU build of torch, and the package with its LLM and test extras.  Idempotent.
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
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[llm,dev]"
