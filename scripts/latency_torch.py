#!/usr/bin/env python3
"""Batch-1 inference latency in PyTorch eager, the counterpart of `cargo bench --bench latency`.

One image at a time through each network in eval mode under torch.no_grad(), as a served
model answers one request: `--warmup` untimed calls (50), then `--iters` timed calls
(1,000); per network the median, the 99th percentile and the minimum, in milliseconds,
printed in the same layout as our bench:

- DeepConvNet, 1x1x28x28 (the book's network, as ../shared/bench/torch_reference.py builds it)
- ResNet-18 (torchvision, ImageNet stem, 10 classes), 1x3x32x32
- GoogLeNet (torchvision, no auxiliary heads, 10 classes), 1x3x64x64

    PY=$(bash ../shared/bench/setup.sh)
    $PY scripts/latency_torch.py --threads 2 [--only resnet18] [--json out.json]

`scripts/bench_vs_torch.py --case latency` runs this and ours in alternation.
"""

import argparse
import importlib.util
import json
import os
import time

import torch


def reference_module():
    """../shared/bench/torch_reference.py, for its DeepConvNet."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "shared", "bench", "torch_reference.py")
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def networks():
    import torchvision

    yield "deepconvnet", "DeepConvNet 1x28x28", lambda: reference_module().DeepConvNet(), (1, 1, 28, 28)

    yield "resnet18", "ResNet-18 3x32x32", lambda: torchvision.models.resnet18(num_classes=10), (1, 3, 32, 32)

    def googlenet():
        return torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True)

    yield "googlenet", "GoogLeNet 3x64x64", googlenet, (1, 3, 64, 64)


def latency(model, shape, warmup, iters):
    model.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        ms = []
        for _ in range(iters):
            t = time.perf_counter()
            model(x)
            ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    at = lambda q: ms[round((len(ms) - 1) * q)]
    return at(0.5), at(0.99), ms[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    args.iters = max(args.iters, 1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads {args.threads}, {args.iters} calls per case, torch {torch.__version__}")
    print(f"{'case (batch 1)':<36} {'median':>9} {'p99':>9} {'min':>9}")
    results = []
    for key, name, build, shape in networks():
        if args.only and args.only != key:
            continue
        med, p99, low = latency(build(), shape, args.warmup, args.iters)
        print(f"{name:<36} {med:>9.3f} {p99:>9.3f} {low:>9.3f} ms", flush=True)
        results.append({"figure": name, "median": med, "p99": p99, "min": low, "unit": "ms"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "iters": args.iters, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
