#!/bin/bash
# The MNIST block of Table 1 and the alpha-scaling rows on a 2-core CPU (the settings of
# recipes/paper/train-all.sh except the number of epochs: EPOCHS_PLAIN, EPOCHS_CEDA and
# EPOCHS_ACET, and evaluation on the first N_TEST test images with WORST_N points for the
# three-attack worst case). Writes runs/mnist_cpu/{plain,ceda,acet}/... and prints the
# tables. Usage: recipes/paper/mnist-cpu.sh   (needs MNIST under $UMBRA_DATA or data/)
set -euo pipefail
cd "$(dirname "$0")/../.."
UMBRA=${UMBRA:-build/umbra}
EPOCHS_PLAIN=${EPOCHS_PLAIN:-2}; EPOCHS_CEDA=${EPOCHS_CEDA:-2}; EPOCHS_ACET=${EPOCHS_ACET:-1}
N_TEST=${N_TEST:-1000}; WORST_N=${WORST_N:-128}; ALPHA_N=${ALPHA_N:-2000}; THREADS=${THREADS:-2}
RUNS=${RUNS:-runs/mnist_cpu}
common="--dataset mnist --model lenet --opt adam --lr 0.001 --batch_size 128 --lmbd 0.0005 --frac_perm 0.5 --threads $THREADS --runs_dir $RUNS"
t0=$(date +%s)
$UMBRA recipes/train.lua $common --n_epochs "$EPOCHS_PLAIN" --at_frac 0 --pgd_niter 0 --pgd_eps 0.3 --exp_name plain
t1=$(date +%s)
$UMBRA recipes/train.lua $common --n_epochs "$EPOCHS_CEDA" --at_frac 1 --pgd_niter 0 --pgd_eps 0.3 --loss max_conf --exp_name ceda
t2=$(date +%s)
$UMBRA recipes/train.lua $common --n_epochs "$EPOCHS_ACET" --at_frac 1 --pgd_niter 40 --pgd_eps 0.3 --loss max_conf --exp_name acet
t3=$(date +%s)
echo "training wall time: plain $((t1 - t0)) s, ceda $((t2 - t1)) s, acet $((t3 - t2)) s"
dirs=()
for m in plain ceda acet; do
    d=$(ls -d "$RUNS/$m"/*/ | tail -1); d=${d%/}
    dirs+=("$d")
    s=$(date +%s)
    $UMBRA recipes/evaluate.lua "$d/checkpoint.h5" --n_test "$N_TEST" --worst_n "$WORST_N" --threads "$THREADS"
    echo "evaluation wall time $m: $(( $(date +%s) - s )) s"
done
$UMBRA recipes/analyze.lua "${dirs[@]}" --names Plain,CEDA,ACET --csv "$RUNS/evals.csv" --plots
$UMBRA recipes/alpha_scaling.lua "${dirs[0]}/checkpoint.h5" "${dirs[1]}/checkpoint.h5" "${dirs[2]}/checkpoint.h5" \
    --names Plain,CEDA,ACET --n "$ALPHA_N"
