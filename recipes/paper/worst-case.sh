#!/bin/bash
# The worst-case table of recipes/paper/RESULTS.md from checkpoints: for each checkpoint, the
# paper's attack with certified bounds on the first N noise points, then the attacks worst of
# three adds on the first N3 points, then those the suite adds (APGD, MPGD) on the first NS
# points (recipes/paper/worst_case.lua; a stage with 0 points is skipped, and a stage whose
# file is complete is not run again), then the table (recipes/paper/worst_case_table.lua).
#   recipes/paper/worst-case.sh CKPT.h5 ...      (names: the files' base names)
# Environment: N (1000), N3 (1000), NS (0), BATCH (125), APGD_STEPS (500), APGD_RESTARTS (5),
# MPGD_STEPS (200), CERTIFY (0.3,0.01), THREADS (2), OUT (runs/worst_case), UMBRA, NICE
# (nice -n 19: the runs are long), UMBRA_DATA.
set -euo pipefail
cd "$(dirname "$0")/../.."
UMBRA=${UMBRA:-build/umbra}
N=${N:-1000}; N3=${N3:-1000}; NS=${NS:-0}; BATCH=${BATCH:-125}; THREADS=${THREADS:-2}
OUT=${OUT:-runs/worst_case}; NICE=${NICE:-nice -n 19}; CERTIFY=${CERTIFY:-0.3,0.01}
[ $# -ge 1 ] || { echo "usage: $0 CKPT.h5 ..." >&2; exit 2; }
mkdir -p "$OUT"
stage() {   # stage CKPT NAME ATTACK POINTS CERTIFY
    local file="$OUT/$2.$3.lua"
    [ "$4" -gt 0 ] || return 0
    if [ -f "$file" ] && $UMBRA -e "os.exit(dofile('$file').n >= $4 and 0 or 1)"; then return 0; fi
    local s; s=$(date +%s)
    $NICE $UMBRA recipes/paper/worst_case.lua "$1" --out "$file" --attack "$3" --n "$4" --batch_size "$BATCH" \
        --certify "$5" --threads "$THREADS" --apgd_steps "${APGD_STEPS:-500}" \
        --apgd_restarts "${APGD_RESTARTS:-5}" --mpgd_steps "${MPGD_STEPS:-200}"
    echo "$2 $3: $4 points, wall time $(( $(date +%s) - s )) s"
}
names=()
for ckpt in "$@"; do
    name=$(basename "$ckpt" .h5); names+=("$name")
    stage "$ckpt" "$name" paper "$N" "$CERTIFY"
done
for ckpt in "$@"; do stage "$ckpt" "$(basename "$ckpt" .h5)" worst3_extra "$N3" ""; done
for ckpt in "$@"; do stage "$ckpt" "$(basename "$ckpt" .h5)" suite_extra "$NS" ""; done
$UMBRA recipes/paper/worst_case_table.lua --dir "$OUT" "${names[@]}"
