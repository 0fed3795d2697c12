#!/usr/bin/env python3
"""Our benchmarks and PyTorch's (../shared/bench/torch_reference.py), side by side.

The development machine's speed drifts by 20-30% over minutes (shared vCPUs), so
a single run of each, one after the other, can flip a ratio. This script
alternates them, ROUNDS times per case, and reports the median of each figure
over the rounds with the ratio (ours / PyTorch for rates, PyTorch / ours for
times: above 1 means we are faster).

Run from the repository root, with nothing else running:

    cargo build --release --benches
    PY=$(bash ../shared/bench/setup.sh)
    python3 scripts/bench_vs_torch.py --torch-python $PY --rounds 3 --case mlp conv models optim

`--conv fastest` runs ours with `AUTOGRAD_CONV=fastest` (Winograd where it
measured faster; `auto`, the default, keeps the direct kernels everywhere).

Before and after each run the script measures where the machine has put
the two threads (our `placement` bench: the core-to-core round trip; it
means something with `--threads 2` on two free CPUs). On the development
machine they sit sometimes on cores that share an L3 (57-122 ns) and
sometimes not (225-300 ns), and both sides run slower in the second
placement (DeepConvNet training: ours by about a third, PyTorch's by up to
a third): a pair of runs that straddles a move can flip a ratio. The
`near` and `far` columns give the median ratio over only the rounds whose
two runs were both in one placement before and after.

`--case latency` compares batch-1 inference (our `latency` bench against
scripts/latency_torch.py, PyTorch eager): the median and the 99th percentile.

Only the standard library is used here; torch runs in its own interpreter.
"""

import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

# Our figure names -> the torch script's figure names, per case.
CONV_NAMES = {
    "conv1": "conv1 ", "conv2": "conv2 ", "conv3": "conv3 ", "conv4": "conv4 ",
    "conv5": "conv5 ", "conv6": "conv6 ", "resnet18": "resnet18 ", "1x1": "1x1 ", "max_pool2d": "max_pool2d",
}


@functools.lru_cache(maxsize=None)
def newest_bench(name):
    """The bench target's binary, as cargo reports it (the newest file named
    `name-*` may be a crate's test binary: `models` and `optim` are crates too)."""
    out = subprocess.run(["cargo", "build", "--release", "--bench", name, "--message-format=json"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        target = msg.get("target", {})
        if msg.get("reason") == "compiler-artifact" and "bench" in target.get("kind", []) \
                and target.get("name") == name and msg.get("executable"):
            return msg["executable"]
    sys.exit(f"no benchmark binary for {name}: run `cargo build --release --benches`")


def run_ours(case, threads, conv):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), AUTOGRAD_CONV=conv)
    out = subprocess.run([newest_bench(case)], env=env, capture_output=True, text=True, check=True).stdout
    rows = {}
    if case == "mlp":
        m = re.search(r"median ([\d.]+) steps/s", out)
        rows["mlp train step (steps/s)"] = float(m.group(1))
    elif case == "conv":
        for line in out.splitlines():
            key = line.split(" ")[0]
            if key in CONV_NAMES:
                rows[f"{key} fwd+bwd (ms)"] = float(line.split()[-4])
    elif case == "models":
        for line in out.splitlines():
            m = re.match(r"(\S+ (?:train|inference)) .*?\s([\d.]+)\s+[\d.]+\s+[\d.]+ img/s", line)
            if m:
                rows[f"{m.group(1)} (img/s)"] = float(m.group(2))
    elif case == "latency":
        for line in out.splitlines():
            m = re.match(r"(.+?)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+ ms$", line)
            if m:
                rows[f"{m.group(1)} batch-1 median (ms)"] = float(m.group(2))
                rows[f"{m.group(1)} batch-1 p99 (ms)"] = float(m.group(3))
    elif case == "optim":
        for line in out.splitlines():
            m = re.match(r"(Adam|SGD)\b.*?\s([\d.]+)\s+[\d.]+\s+[\d.]+$", line)
            if m:
                rows[f"{m.group(1)} step (ms)"] = float(m.group(2))
    return rows


def placement_now():
    """`near` or `far`: where the machine has the two threads now, as our
    `placement` bench judges it (its core-to-core round trip)."""
    out = subprocess.run([newest_bench("placement")], capture_output=True, text=True, check=True).stdout
    return re.search(r"^placement\s+(near|far)", out, re.M).group(1)


def placement(before, after):
    """Where a run had its threads, from the placements around it."""
    return before if before == after else "mixed"


def run_torch(python, case, threads):
    script = "scripts/latency_torch.py" if case == "latency" else "../shared/bench/torch_reference.py"
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([python, script] + ([] if case == "latency" else ["--case", case]) +
                       ["--threads", str(threads), "--json", f.name],
                       capture_output=True, text=True, check=True)
        data = json.load(open(f.name))
    rows = {}
    if case == "latency":
        for r in data["results"]:
            rows[f"{r['figure']} batch-1 median (ms)"] = r["median"]
            rows[f"{r['figure']} batch-1 p99 (ms)"] = r["p99"]
        return rows
    for r in data["results"]:
        fig, med = r["figure"], r["median"]
        if case == "mlp":
            rows["mlp train step (steps/s)"] = med
        elif case == "conv":
            for key, prefix in CONV_NAMES.items():
                if fig.startswith(prefix) and r.get("unit", "ms") == "ms":
                    rows[f"{key} fwd+bwd (ms)"] = med
        elif case == "models":
            name = fig.split(" ")[0] + (" train" if " train" in fig else " inference")
            rows[f"{name} (img/s)"] = med
        elif case == "optim":
            # The torch script's "reference" row is its fastest variant.
            if "reference" in fig:
                rows[f"{fig.split(' ')[0]} step (ms)"] = med
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", nargs="+", default=["mlp", "conv", "models", "optim"])
    ap.add_argument("--conv", choices=["auto", "fastest"], default="auto",
                    help="our convolution kernels (AUTOGRAD_CONV)")
    args = ap.parse_args()
    # Per figure and side: {(case, round): value}; per (case, round): both runs' placements.
    ours, theirs, where = {}, {}, {}
    for case in args.case:
        for rnd in range(args.rounds):
            print(f"[{case} round {rnd + 1}/{args.rounds}]", file=sys.stderr, flush=True)
            runs = []
            for side, run in ((theirs, lambda: run_torch(args.torch_python, case, args.threads)),
                              (ours, lambda: run_ours(case, args.threads, args.conv))):
                before = placement_now()
                rows = run()
                runs.append(placement(before, placement_now()))
                for k, v in rows.items():
                    side.setdefault(k, {})[case, rnd] = v
            where[case, rnd] = tuple(runs)
    print(f"| figure | ours | PyTorch | ratio | near | far |  ({args.rounds} alternating rounds, "
          f"{args.threads} threads, ours with AUTOGRAD_CONV={args.conv}; ratio of the medians; "
          "near / far: median of the rounds' own ratios)")
    print("|---|---:|---:|---:|---:|---:|")
    for k in ours:
        if k not in theirs:
            continue
        faster = (lambda a, b: b / a) if "(ms)" in k else (lambda a, b: a / b)
        a, b = statistics.median(ours[k].values()), statistics.median(theirs[k].values())
        cells = []
        for place in ("near", "far"):
            pairs = [faster(ours[k][r], theirs[k][r]) for r in ours[k]
                     if r in theirs[k] and where[r] == (place, place)]
            cells.append(f"{statistics.median(pairs):.2f}x ({len(pairs)})" if pairs else "-")
        print(f"| {k} | {a:.4g} | {b:.4g} | {faster(a, b):.2f}x | {cells[0]} | {cells[1]} |")
    for case in args.case:
        runs = ", ".join(f"{t}/{o}" for (c, _), (t, o) in where.items() if c == case)
        print(f"{case}: placement per round (PyTorch/ours): {runs}")
    print("near / far: over the rounds whose two runs were both near (the threads on cores "
          "sharing an L3 before and after each run, as benches/placement.rs judges it) or both "
          "far, with the count of such rounds; mixed: a run saw both")


if __name__ == "__main__":
    main()
