#!/usr/bin/env bash
# Refresh requirements.lock from the environment the drift check just passed in.
#   bash scripts/test.sh --latest && bash scripts/lock.sh [VENV]
# pins exactly what VENV (default .venv-latest) holds (every package, hatchling included) and records the
# sha256 of every file PyPI (or /opt/wheels, for the CPU torch) serves for those versions.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-latest}
[ -x "$venv/bin/python" ] || { echo "lock: no $venv; run bash scripts/test.sh --latest first" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$venv/bin/pip" freeze --exclude-editable > "$tmp/pins.txt"
python3 -m venv "$tmp/uv" && "$tmp/uv/bin/pip" install -q uv
find_links=(); [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
"$tmp/uv/bin/uv" pip compile "$tmp/pins.txt" --quiet --generate-hashes --no-header \
    --python-version 3.11 "${find_links[@]}" --output-file "$tmp/lock.txt"
{ echo "# The versions the test suite passed with; installed by scripts/setup.sh (pip --require-hashes)."
  echo "# Refresh: bash scripts/test.sh --latest && bash scripts/lock.sh (see README)."
  sed "s#$tmp/pins.txt#pins#" "$tmp/lock.txt"; } > requirements.lock.tmp
mv requirements.lock.tmp requirements.lock
echo "lock: requirements.lock now pins $(grep -c '^[a-zA-Z0-9].*==' requirements.lock) packages" >&2
