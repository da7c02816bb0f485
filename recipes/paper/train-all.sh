#!/bin/bash
# The paper's twelve training runs (docs/method.md §2.1): Plain, CEDA and ACET on MNIST, SVHN,
# CIFAR-10 and CIFAR-100, with the authors' settings (100 epochs, batch 128, lr x0.1 after
# epochs 50/75/90, weight decay 5e-4, frac_perm 0.5; ACET: 40 PGD steps, eps 0.3).
# Usage: recipes/paper/train-all.sh [DATASET...]   (default: all four; extra flags via $FLAGS)
set -euo pipefail
cd "$(dirname "$0")/../.."
UMBRA=${UMBRA:-build/umbra}
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(mnist svhn cifar10 cifar100)
for d in "${sets[@]}"; do
    case $d in
        mnist) base="--dataset mnist --model lenet --opt adam --lr 0.001" ;;
        svhn|cifar10|cifar100) base="--dataset $d --model resnet_small --opt momentum --lr 0.1" ;;
        *) echo "unknown data set $d (mnist, svhn, cifar10, cifar100)" >&2; exit 2 ;;
    esac
    common="$base --n_epochs 100 --batch_size 128 --lmbd 0.0005 --frac_perm 0.5 ${FLAGS:-}"
    # plain: the authors' loss flag is irrelevant without noise points
    $UMBRA recipes/train.lua $common --at_frac 0 --pgd_niter 0 --pgd_eps 0.1 --loss max_conf --exp_name "${d}_plain"
    $UMBRA recipes/train.lua $common --at_frac 1 --pgd_niter 0 --pgd_eps 0.1 --loss max_conf --exp_name "${d}_ceda"
    $UMBRA recipes/train.lua $common --at_frac 1 --pgd_niter 40 --pgd_eps 0.3 --loss max_conf --exp_name "${d}_acet"
done
