#!/usr/bin/env bash
# The hardware matrix's final step, kept in a script so tests/test_hardware_matrix.py runs the
# very same steps locally: compare every store in STORES (sorted by name; the first is the
# reference), write the report to OUT, append it to $GITHUB_STEP_SUMMARY when set, and exit
# with accelbench compare's verdict (0 no regression, 1 regression, 2 bad input).
#   usage: compare-stores.sh STORES OUT [GATE]     (ACCELBENCH overrides the command)
set -uo pipefail
stores_dir=$1 out=$2 gate=${3:-}
accelbench=${ACCELBENCH:-.venv/bin/accelbench}
stores=("$stores_dir"/*.sqlite)
if [ ! -e "${stores[0]}" ]; then
  echo "no stores in $stores_dir" >&2
  exit 2
fi
args=("${stores[@]}" --out "$out")
if [ -n "$gate" ]; then args+=(--fail-on-regression "$gate"); fi
mkdir -p "$out"
# shellcheck disable=SC2086  # ACCELBENCH may be a command with arguments
$accelbench compare "${args[@]}" > "$out/stdout.md" 2> "$out/stderr.txt"
rc=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$out/compare.md" ]; then
  cat "$out/compare.md" >> "$GITHUB_STEP_SUMMARY"
fi
cat "$out/stderr.txt" >&2
exit "$rc"
