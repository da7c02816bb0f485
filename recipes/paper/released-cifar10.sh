#!/bin/bash
# Evaluate the authors' released CIFAR-10 models (Plain, CEDA, ACET; docs/method.md §10) in umbra:
# import each TensorFlow checkpoint, run recipes/evaluate.lua on the first N_TEST CIFAR-10
# test images (OOD sets: whichever of SVHN, CIFAR-100, LSUN classroom, ImageNet- are
# present), then print the side-by-side table. Needs $UMBRA_PAPER_MODELS (default
# ../shared/paper-models) and CIFAR-10 test under $UMBRA_DATA.
set -euo pipefail
cd "$(dirname "$0")/../.."
UMBRA=${UMBRA:-build/umbra}
MODELS=${UMBRA_PAPER_MODELS:-../shared/paper-models}
N_TEST=${N_TEST:-1000}; WORST_N=${WORST_N:-128}; THREADS=${THREADS:-2}
OUT=${OUT:-runs/released}
dirs=()
for m in plain ceda acet; do
    prefix=$(ls "$MODELS/cifar10_$m/"*.index); prefix=${prefix%.index}
    mkdir -p "$OUT/cifar10_$m"
    UMBRA=$UMBRA scripts/import-tf-checkpoint "$prefix" "$OUT/cifar10_$m/checkpoint.h5"
    s=$(date +%s)
    $UMBRA recipes/evaluate.lua "$OUT/cifar10_$m/checkpoint.h5" --dataset cifar10 --n_test "$N_TEST" \
        --worst_n "$WORST_N" --threads "$THREADS"
    echo "evaluation wall time cifar10_$m: $(( $(date +%s) - s )) s"
    dirs+=("$OUT/cifar10_$m")
done
$UMBRA recipes/analyze.lua "${dirs[@]}" --names Plain,CEDA,ACET --csv "$OUT/evals.csv" --plots
