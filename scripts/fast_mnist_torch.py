#!/usr/bin/env python3
"""The book's DeepConvNet trained on MNIST with example 02's `--recipe fast`,
in PyTorch: the same network, initialisation, optimizer, schedule, batch
size, dropout and epochs, for a side-by-side time to 99.3% test accuracy.

    PY=$(bash ../shared/bench/setup.sh)
    $PY scripts/fast_mnist_torch.py --seeds 0 1 2            # 2 threads, as ours
    cargo run --release --example 02_deep_convnet_mnist -- --recipe fast --seed 0
    $PY scripts/fast_mnist_torch.py --epochs 24 --augment --weight-decay 0.05 --ema 0.999 --target 99.6 --seeds 0 1 2
    cargo run --release --example 02_deep_convnet_mnist -- --recipe fast10 --seed 0

Per epoch it prints the training time, the test accuracy and the wall time
since training began (evaluations included, data loading not: as example 02
counts it); at the end, per seed, the first wall time at which the test
accuracy reached --target (99.3%) and the final accuracy.

Recipe (keep in step with examples/02_deep_convnet_mnist.rs, `Recipe::FAST`, `FAST10`):
Adam (AdamW with --weight-decay), OneCycleLR peaking at --max-lr (cosine,
30% warm-up, PyTorch's defaults), batch --batch, --epochs epochs, dropout
--dropout on fc1's output and on the logits, cross-entropy with
--label-smoothing (0.1), MNIST scaled to [0, 1]; with --augment (the fast10
recipe) each training batch under random rotations of +-10 degrees, shifts of
up to 10% (whole pixels) and zooms of 0.9-1.1, bilinear, zero fill, as example
02's RandomAffine, drawn per image and applied to the batch at once
(affine_grid + grid_sample); with --ema D the test accuracy is that of the
weights' exponential moving average (AveragedModel with get_ema_multi_avg_fn,
updated after every step), as example 02's --ema.
"""

import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "examples", "data", "mnist")


class DeepConvNet(nn.Module):
    """ch08/deep_convnet.py: six 3x3 convolutions (conv4 padded by 2), 2x2 max
    pools after every second, fc 1024->50, dropout, fc 50->10, dropout; He
    normal initialisation, zero biases (as examples/02_deep_convnet_mnist.rs)."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, 32, 3, padding=2)
        self.conv5 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv6 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, 50)
        self.fc2 = nn.Linear(50, 10)
        for layer in self.children():
            nn.init.normal_(layer.weight, std=math.sqrt(2.0 / layer.weight[0].numel()))
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv6(F.relu(self.conv5(x)))), 2)
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), self.p, self.training)
        return F.dropout(self.fc2(x), self.p, self.training)


def load_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    if struct.unpack(">I", data[:4])[0] != magic or len(data) != 4 + 4 * ndim + math.prod(dims):
        sys.exit(f"{path}: not the expected IDX file")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(prefix):
    x = load_idx(os.path.join(MNIST, f"{prefix}-images-idx3-ubyte.gz"), 0x803)
    y = load_idx(os.path.join(MNIST, f"{prefix}-labels-idx1-ubyte.gz"), 0x801)
    return (torch.from_numpy(x.copy()).unsqueeze(1).float().div_(255.0),
            torch.from_numpy(y.copy()).long())


def augment(x, gen):
    """Random affine transforms of a batch [N, 1, H, W], one per image."""
    n, _, h, w = x.shape
    assert h == w, "rotations in affine_grid's normalised coordinates need square images"
    u = lambda: torch.rand(n, generator=gen) * 2.0 - 1.0
    angle = u() * math.radians(10.0)
    scale = 0.9 + (u() + 1.0) * 0.1
    # Shifts in whole pixels (torchvision rounds them), as fractions of the
    # half-size in affine_grid's [-1, 1] coordinates.
    tx = torch.round(u() * 0.1 * w) * 2.0 / w
    ty = torch.round(u() * 0.1 * h) * 2.0 / h
    # affine_grid maps output to input coordinates: the inverse of
    # "scale, rotate by the angle as RandomAffine does, then shift".
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin, -(cos * tx - sin * ty)], 1),
        torch.stack([sin, cos, -(sin * tx + cos * ty)], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def accuracy(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return 100.0 * correct / len(x)


def run(seed, args, data):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = DeepConvNet(args.dropout)
    if args.weight_decay > 0:   # example 02's --weight-decay: AdamW
        opt = torch.optim.AdamW(model.parameters(), lr=args.max_lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.max_lr)
    steps = len(xtr) // args.batch  # whole batches only, as example 02 (drop_last)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.max_lr,
                                                total_steps=args.epochs * steps)
    # Example 02's --ema: the moving average of the weights is what is evaluated.
    ema = None
    if args.ema > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema))
    gen = torch.Generator().manual_seed(seed)
    t_start = time.perf_counter()
    reached, acc = None, 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(steps):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            opt.zero_grad(set_to_none=True)
            xb = augment(xtr[idx], gen) if args.augment else xtr[idx]
            F.cross_entropy(model(xb), ytr[idx],
                            label_smoothing=args.label_smoothing).backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
        train_s = time.perf_counter() - t0
        acc = accuracy(ema.module if ema is not None else model, xte, yte)
        wall = time.perf_counter() - t_start
        if reached is None and acc >= args.target:
            reached = wall
        print(f"seed {seed} epoch {epoch}/{args.epochs}: {train_s:.1f} s training "
              f"({len(xtr) / train_s:.0f} img/s), test accuracy {acc:.2f}%, wall {wall:.1f} s",
              flush=True)
    return reached, acc, time.perf_counter() - t_start


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--max-lr", type=float, default=6e-3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="AdamW's decoupled weight decay (0: Adam)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="evaluate the weights' moving average with this decay (0: off)")
    p.add_argument("--augment", action="store_true")
    p.add_argument("--target", type=float, default=99.3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = (*load_split("train"), *load_split("t10k"))
    optimizer = f"AdamW (weight decay {args.weight_decay})" if args.weight_decay > 0 else "Adam"
    print(f"PyTorch {torch.__version__}, {args.threads} threads: DeepConvNet, {optimizer} + OneCycleLR "
          f"max {args.max_lr}, batch {args.batch}, dropout {args.dropout}, "
          f"label smoothing {args.label_smoothing}, {args.epochs} epochs"
          f"{', augmented' if args.augment else ''}"
          f"{f', evaluated with the weights EMA (decay {args.ema})' if args.ema > 0 else ''}")
    results = []
    for seed in args.seeds:
        reached, acc, total = run(seed, args, data)
        results.append((seed, reached, acc, total))
    for seed, reached, acc, total in results:
        at = f"{reached:.1f} s" if reached is not None else "not reached"
        print(f"seed {seed}: {args.target}% at {at}; final {acc:.2f}% after {total:.1f} s")


if __name__ == "__main__":
    main()
