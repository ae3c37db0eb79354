#!/usr/bin/env bash
# The pre-registered ladder units, in the order of validate/preregistered/ladder/PLAN.md
# (as changed there after unit 1's gate failed): python -m validate.llm_check --ladder per unit.
set -u
for unit in "reachable 3" "paper 2" "dirty_ids 3" "paper 0" "softening 0" "paper 1" "paper 4"; do
  set -- $unit
  python -m validate.llm_check --ladder --config "$1" --warm-seeds "$2" \
    --out "runs/ladder/$1_w$2" || echo "unit $1 w$2 failed: $?" >&2
done
