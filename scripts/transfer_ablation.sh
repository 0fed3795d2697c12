#!/usr/bin/env bash
# The transfer-learning ablation of docs/experiments.md: example 05 with 100
# Fashion-MNIST labels, seeds 0 and 1, one setting per line, against the same
# network trained from scratch. Each line prints the mean test accuracy
# (the last two lines train both, transfer and scratch, at other step counts).
#
#   cargo build --release --example 05_transfer_learning
#   bash scripts/transfer_ablation.sh [OUT]       # OUT: runs/transfer_ablation
#
# About 1 minute a line on one thread of a 2-vCPU AMD EPYC (two lines run at
# once, one per core, with THREADS=1 and two copies of this script split by
# hand, or in sequence with the default).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/transfer_ablation}
BIN=${CARGO_TARGET_DIR:-target}/release/examples/05_transfer_learning
THREADS=${THREADS:-0}
mkdir -p "$OUT"
# The source network: DeepConvNet after 2 epochs on MNIST (trained once, then reused).
PRE="$OUT/pretrained_mnist_2ep.safetensors"
[ -f "$PRE" ] || "$BIN" --threads "$THREADS" --labels 100 --seeds 1 --steps 1 --only transfer \
    --pretrain-epochs 2 --out "$OUT" >/dev/null
run() {
    local name=$1
    shift
    printf '%-16s %s\n' "$name" "$("$BIN" --threads "$THREADS" --labels 100 --seeds 2 \
        --out "$OUT/$name" "$@" | grep 'labels over')"
}
run scratch --only scratch --pretrained "$PRE"
run reuse7_lr1e-4 --only transfer --pretrained "$PRE" --reuse 7 --backbone-lr 1e-4
run reuse7_lr1e-3 --only transfer --pretrained "$PRE" --reuse 7 --backbone-lr 1e-3
run reuse7_frozen6 --only transfer --pretrained "$PRE" --reuse 7 --freeze 6 --backbone-lr 1e-3
run reuse6_lr1e-3 --only transfer --pretrained "$PRE" --reuse 6 --backbone-lr 1e-3
run reuse6_lr3e-4 --only transfer --pretrained "$PRE" --reuse 6 --backbone-lr 3e-4
run reuse6_frozen2 --only transfer --pretrained "$PRE" --reuse 6 --freeze 2 --backbone-lr 1e-3
run reuse5_lr1e-3 --only transfer --pretrained "$PRE" --reuse 5 --backbone-lr 1e-3
run reuse4_lr1e-3 --only transfer --pretrained "$PRE" --reuse 4 --backbone-lr 1e-3
run reuse4_frozen4 --only transfer --pretrained "$PRE" --reuse 4 --freeze 4 --backbone-lr 1e-3
run reuse2_lr1e-3 --only transfer --pretrained "$PRE" --reuse 2 --backbone-lr 1e-3
run reuse2_frozen2 --only transfer --pretrained "$PRE" --reuse 2 --freeze 2 --backbone-lr 1e-3
# How long the source trained: 1 and 5 epochs instead of 2.
run reuse6_pre1 --only transfer --pretrain-epochs 1 --reuse 6 --backbone-lr 1e-3
run reuse6_pre5 --only transfer --pretrain-epochs 5 --reuse 6 --backbone-lr 1e-3
# The number of steps (transfer and scratch both): 100 and 1,000 instead of 300.
run reuse6_steps100 --pretrained "$PRE" --reuse 6 --backbone-lr 1e-3 --steps 100
run reuse6_steps1000 --pretrained "$PRE" --reuse 6 --backbone-lr 1e-3 --steps 1000
