#!/usr/bin/env bash
# The main job: install, then solve an example, regenerate figures/ and the derivation PDFs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m cliff solve --p 0.999 --b 0.99 --c 5
.venv/bin/python -m cliff figures
.venv/bin/python -m derivations
