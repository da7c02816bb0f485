#!/bin/bash
# The post-hoc OOD scores (MSP, MaxLogit, Energy, ODIN, Mahalanobis) of one or more models,
# clean and under an attack on each score itself (docs/good-and-scores.md), then one table per
# score and model. Each argument is an umbra checkpoint (.h5), or the prefix of one of the
# authors' TensorFlow checkpoints (PREFIX.index beside it), imported first.
#   recipes/paper/scores.sh CKPT...
# Settings from the environment: N_TEST (1000 test images), HOLDOUT (500: test images held
# out to fit Mahalanobis where the data set has no training split), ATTACK (paper | worst3 |
# suite), ATTACK_N (64 noise points attacked per score), EPS (0.3: the attacks' l-inf radius),
# DATASET (default: the checkpoint's),
# OUT (runs/scores), THREADS (2), NAMES (comma-separated names for the tables).
set -euo pipefail
cd "$(dirname "$0")/../.."
UMBRA=${UMBRA:-build/umbra}
N_TEST=${N_TEST:-1000}; HOLDOUT=${HOLDOUT:-500}; ATTACK=${ATTACK:-paper}; ATTACK_N=${ATTACK_N:-64}
OUT=${OUT:-runs/scores}; THREADS=${THREADS:-2}; EPS=${EPS:-0.3}
if [ $# -eq 0 ]; then
    echo "usage: recipes/paper/scores.sh CKPT... (umbra .h5 checkpoints or TensorFlow checkpoint prefixes)" >&2
    exit 2
fi
dirs=()
for c in "$@"; do
    if [ -f "$c.index" ]; then               # the authors' TensorFlow checkpoint: import it
        name=$(basename "$(dirname "$c")")
        mkdir -p "$OUT/$name"
        UMBRA=$UMBRA scripts/import-tf-checkpoint "$c" "$OUT/$name/checkpoint.h5"
        ckpt="$OUT/$name/checkpoint.h5"
    elif [ -f "$c" ]; then
        name=$(basename "$(dirname "$c")")
        ckpt=$c
    else
        echo "scores.sh: $c is neither a checkpoint file nor a TensorFlow prefix ($c.index)" >&2
        exit 1
    fi
    mkdir -p "$OUT/$name"
    $UMBRA recipes/evaluate.lua "$ckpt" ${DATASET:+--dataset "$DATASET"} --n_test "$N_TEST" --holdout "$HOLDOUT" \
        --no_adv_noise --no_adv_samples --worst_n "$ATTACK_N" --attack "$ATTACK" --eps "$EPS" \
        --scores msp,maxlogit,energy,odin,mahalanobis --threads "$THREADS" --out "$OUT/$name"
    dirs+=("$OUT/$name")
done
$UMBRA recipes/analyze.lua "${dirs[@]}" --no_csv ${NAMES:+--names "$NAMES"}
