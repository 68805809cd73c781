#!/usr/bin/env bash
# The hardware matrix's final step, kept in a script so tests/test_hardware_matrix.py runs the
# very same steps locally: compare every store in STORES (sorted by name; the first is the
# reference), write the report to OUT, append it to $GITHUB_STEP_SUMMARY when set, and exit
# with accelbench compare's verdict (0 no regression, 1 regression, 2 bad input).
# With $FLEET_DSN set (a fleet database), STORES holds one NAME.machine file per job with the
# machine id that job wrote under, and each source is that machine's latest session in the
# database (env:FLEET_DSN?machine=ID: the URL, and its password, stay off the command line).
#   usage: compare-stores.sh STORES OUT [GATE]     (ACCELBENCH overrides the command)
set -uo pipefail
stores_dir=$1 out=$2 gate=${3:-}
accelbench=${ACCELBENCH:-.venv/bin/accelbench}
sources=()
if [ -n "${FLEET_DSN:-}" ]; then
  for f in "$stores_dir"/*.machine; do
    [ -e "$f" ] && sources+=("env:FLEET_DSN?machine=$(tr -d '[:space:]' < "$f")")
  done
else
  for f in "$stores_dir"/*.sqlite; do
    [ -e "$f" ] && sources+=("$f")
  done
fi
if [ "${#sources[@]}" -eq 0 ]; then
  echo "no stores in $stores_dir" >&2
  exit 2
fi
args=("${sources[@]}" --out "$out")
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
