#!/usr/bin/env python3
"""Writes autograd/tests/fixtures/golden_cnn.txt: inputs, upstream gradients,
outputs and all gradients of the CNN ops (conv2d, conv_transpose2d,
max/avg/adaptive pooling with their argmax indices, max_unpool2d,
batch_norm, per-pixel cross_entropy) computed by PyTorch in float64. The
Rust test `autograd/tests/golden_cnn.rs` reads every case from the fixture
(its options included) and compares in f64 and in f32. CI only reads the
committed fixture.

Run:  PY=$(bash ../shared/bench/setup.sh); $PY scripts/golden_cnn.py
Format (as golden_autograd.txt): one block per tensor: `name ndim d0 d1 ...`
then one line of values. A case `op.case` has `op.case.opts` (the options as
numbers, layout below), its inputs (`x`, `w`, `b`, ...), the upstream
gradient `gy` (random, so every gradient is checked against a full
vector-Jacobian product), the output `out` and the gradients `gx`, `gw`, `gb`.

Options layouts:
  conv2d, conv_transpose2d: sh sw ph pw dh dw groups oph opw has_bias
  max_pool2d, avg_pool2d:   kh kw sh sw ph pw dh dw ceil_mode count_include_pad
  adaptive_*_pool2d:        oh ow
  batch_norm:               training has_weight has_bias has_running momentum eps
  max_unpool2d:             kh kw sh sw ph pw oh ow H W  (oh ow: output_size, 0 0 for
                            the default; H W: the pooled plane the indices point into)
  cross_entropy:            reduction(0 mean, 1 sum, 2 none) label_smoothing
                            ignore_index(-1: none) has_weight

Max pools also write their indices `idx` (return_indices=True); max_unpool2d
takes its indices `idx` from a max pool of another random tensor;
cross_entropy's labels are `t` (class indices as numbers) and its class
weights `w`.
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(2024)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "autograd", "tests", "fixtures", "golden_cnn.txt")
blocks = []


def put(name, t):
    t = t.detach()
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.flatten().tolist())
    blocks.append(f"{name} {t.dim()} {dims}\n{vals}\n")


def opts(name, *values):
    put(name + ".opts", torch.tensor([float(v) for v in values]))


def rnd(*shape, scale=1.0, shift=0.0):
    # Rounded to 4 decimals: short exact-enough text, the same double in Rust.
    return torch.round(torch.randn(shape) * scale + shift, decimals=4)


def leaf(name, t):
    put(name, t)
    return t.clone().requires_grad_()


def finish(prefix, out, inputs, names):
    gy = rnd(*out.shape)
    put(prefix + ".gy", gy)
    put(prefix + ".out", out)
    gs = torch.autograd.grad(out, inputs, grad_outputs=gy)
    for n, g in zip(names, gs):
        put(f"{prefix}.g{n}", g)


# ---------------------------------------------------------------------------
# conv2d / conv_transpose2d
# ---------------------------------------------------------------------------

def conv(case, xs, ws, bias=True, stride=1, padding=0, dilation=1, groups=1, transpose=False, output_padding=0,
         xscale=1.0):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    stride, padding, dilation, output_padding = map(pair, (stride, padding, dilation, output_padding))
    op = "conv_transpose2d" if transpose else "conv2d"
    p = f"{op}.{case}"
    opts(p, *stride, *padding, *dilation, groups, *output_padding, int(bias))
    x = leaf(p + ".x", rnd(*xs, scale=xscale))
    fan_in = ws[1] * ws[2] * ws[3]
    w = leaf(p + ".w", rnd(*ws, scale=fan_in ** -0.5))
    inputs, names = [x, w], ["x", "w"]
    b = None
    if bias:
        cout = ws[1] * groups if transpose else ws[0]
        b = leaf(p + ".b", rnd(cout))
        inputs.append(b)
        names.append("b")
    if transpose:
        y = F.conv_transpose2d(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                               groups=groups, dilation=dilation)
    else:
        y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    finish(p, y, inputs, names)


# DeepConvNet's conv4 (32 -> 32 channels, 3x3, pad 2), on a small plane.
conv("deep4", [1, 32, 5, 5], [32, 32, 3, 3], padding=2)
conv("stride2", [2, 3, 7, 6], [4, 3, 3, 3], stride=2, padding=1)
conv("dilation2", [2, 2, 7, 7], [3, 2, 3, 2], dilation=2, padding=(2, 1))
conv("groups2", [2, 4, 5, 5], [6, 2, 3, 3], groups=2, padding=1, stride=(1, 2))
conv("depthwise", [2, 3, 6, 6], [6, 1, 3, 3], groups=3, padding=1)
conv("pointwise", [2, 4, 3, 3], [5, 4, 1, 1])
conv("asym_nobias", [1, 2, 8, 7], [2, 2, 2, 3], bias=False, stride=(3, 2), padding=(2, 0))
conv("bigpad", [1, 1, 3, 4], [2, 1, 2, 2], stride=2, padding=(3, 2), dilation=(1, 2))

conv("s2p1op1", [2, 3, 4, 4], [3, 2, 3, 3], transpose=True, stride=2, padding=1, output_padding=1)
conv("groups2", [2, 4, 3, 3], [4, 3, 3, 3], transpose=True, stride=2, groups=2)
conv("depthwise", [1, 3, 3, 4], [3, 1, 2, 2], transpose=True, stride=(2, 1), padding=(0, 1), groups=3)
conv("dilation2", [1, 2, 4, 3], [2, 3, 2, 3], transpose=True, stride=(2, 3), padding=(1, 0), dilation=2,
     output_padding=(1, 2), bias=False)
# output_padding may reach max(stride, dilation) - 1: here it is >= the stride.
conv("op_below_dilation", [1, 2, 3, 3], [2, 2, 3, 2], transpose=True, stride=1, dilation=(2, 3),
     output_padding=(1, 2), padding=(1, 0))

# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

def pool(kind, case, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=True):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    stride = kernel if stride is None else stride
    kernel, stride, padding, dilation = map(pair, (kernel, stride, padding, dilation))
    p = f"{kind}.{case}"
    opts(p, *kernel, *stride, *padding, *dilation, int(ceil_mode), int(count_include_pad))
    x = leaf(p + ".x", x)
    if kind == "max_pool2d":
        y, idx = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
        put(p + ".idx", idx.double())
    else:
        y = F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    finish(p, y, [x], ["x"])


def adaptive(kind, case, x, out):
    p = f"{kind}.{case}"
    opts(p, *out)
    x = leaf(p + ".x", x)
    if kind == "adaptive_avg_pool2d":
        y = F.adaptive_avg_pool2d(x, out)
    else:
        y, idx = F.adaptive_max_pool2d(x, out, return_indices=True)
        put(p + ".idx", idx.double())
    finish(p, y, [x], ["x"])


def ties(*shape):
    # Small integers (many equal values in a window) plus a constant block.
    t = torch.randint(0, 3, shape).double()
    t[..., 1:4, 2:5] = 1.0
    return t


pool("max_pool2d", "k2", rnd(2, 2, 7, 7), 2)
pool("max_pool2d", "k3s2p1", rnd(2, 2, 7, 7), 3, 2, 1)
pool("max_pool2d", "ceil", rnd(1, 2, 7, 6), 2, 2, ceil_mode=True)
pool("max_pool2d", "ceil_k3s2p1", rnd(1, 2, 6, 6), 3, 2, 1, ceil_mode=True)
pool("max_pool2d", "dilation2", rnd(1, 2, 7, 7), 2, 1, 1, dilation=2)
pool("max_pool2d", "asym", rnd(2, 1, 6, 8), (2, 3), (1, 2), (1, 0), dilation=(1, 2))
pool("max_pool2d", "ties_k3s1p1", ties(2, 2, 6, 6), 3, 1, 1)
pool("max_pool2d", "ties_k2", ties(1, 2, 6, 6), 2)
pool("max_pool2d", "ties_ceil_dil", ties(1, 2, 7, 7), 3, 2, 1, dilation=2, ceil_mode=True)
pool("max_pool2d", "ties_negative", -ties(1, 1, 6, 6), 3, 2, 1)

for cip in (True, False):
    tag = "incl" if cip else "excl"
    pool("avg_pool2d", f"k3s2p1_{tag}", rnd(2, 2, 7, 7), 3, 2, 1, count_include_pad=cip)
    pool("avg_pool2d", f"ceil_{tag}", rnd(1, 2, 6, 6), 3, 2, 1, ceil_mode=True, count_include_pad=cip)
    pool("avg_pool2d", f"asym_{tag}", rnd(1, 2, 5, 8), (2, 3), (1, 2), (1, 1), ceil_mode=True,
         count_include_pad=cip)
pool("avg_pool2d", "k2", rnd(2, 3, 5, 5), 2)

adaptive("adaptive_avg_pool2d", "7to3", rnd(2, 2, 7, 7), (3, 3))
adaptive("adaptive_avg_pool2d", "5to2", rnd(2, 2, 5, 5), (2, 2))
adaptive("adaptive_avg_pool2d", "6to3", rnd(1, 3, 6, 6), (3, 3))
adaptive("adaptive_avg_pool2d", "5x7to2x3", rnd(1, 2, 5, 7), (2, 3))
adaptive("adaptive_avg_pool2d", "global", rnd(2, 3, 4, 5), (1, 1))
adaptive("adaptive_max_pool2d", "7to3", rnd(2, 2, 7, 7), (3, 3))
adaptive("adaptive_max_pool2d", "5to2", rnd(2, 2, 5, 5), (2, 2))
adaptive("adaptive_max_pool2d", "6x4to3x2", rnd(1, 3, 6, 4), (3, 2))
adaptive("adaptive_max_pool2d", "ties_7to3", ties(1, 2, 7, 7), (3, 3))

# ---------------------------------------------------------------------------
# batch_norm
# ---------------------------------------------------------------------------

def bn(case, shape, training, weight=True, bias=True, running=True, momentum=0.1, eps=1e-5):
    p = f"batch_norm.{case}"
    c = shape[1]
    opts(p, int(training), int(weight), int(bias), int(running), momentum, eps)
    # Per-channel offsets and scales, so the statistics differ between channels.
    bshape = [1, c] + [1] * (len(shape) - 2)
    x = leaf(p + ".x", torch.round(torch.randn(*shape) * (0.5 + torch.rand(*bshape) * 2)
                                   + torch.randn(*bshape), decimals=4))
    inputs, names = [x], ["x"]
    w = b = rm = rv = None
    if weight:
        w = leaf(p + ".w", rnd(c, scale=0.5, shift=1.0))
        inputs.append(w)
        names.append("w")
    if bias:
        b = leaf(p + ".b", rnd(c))
        inputs.append(b)
        names.append("b")
    if running:
        rm = rnd(c, scale=0.3)
        rv = torch.round(torch.rand(c) + 0.5, decimals=4)
        put(p + ".rm", rm)
        put(p + ".rv", rv)
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)
    if running:
        put(p + ".rm_after", rm)
        put(p + ".rv_after", rv)
    finish(p, y, inputs, names)


bn("train4d", [4, 3, 3, 3], True)
bn("train2d", [6, 4], True)
bn("train3d_noaffine", [3, 2, 5], True, weight=False, bias=False, running=False)
bn("train4d_weight_only", [2, 3, 2, 2], True, bias=False, momentum=0.3, eps=1e-3)
bn("train2d_min_batch", [2, 3], True)
bn("eval4d", [2, 3, 2, 3], False)
bn("eval2d_noweight", [5, 3], False, weight=False)

# ---------------------------------------------------------------------------
# max_unpool2d (after the cases above, so that their random values stay put)
# ---------------------------------------------------------------------------

def unpool(case, pooled, kernel, stride=None, padding=0, output_size=None, adaptive=None):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    stride = kernel if stride is None else stride
    kernel, stride, padding = map(pair, (kernel, stride, padding))
    p = f"max_unpool2d.{case}"
    if adaptive is None:
        _, idx = F.max_pool2d(pooled, kernel, stride, padding, return_indices=True)
    else:
        _, idx = F.adaptive_max_pool2d(pooled, adaptive, return_indices=True)
    opts(p, *kernel, *stride, *padding, *(output_size or (0, 0)), *pooled.shape[-2:])
    put(p + ".idx", idx.double())
    x = leaf(p + ".x", rnd(*idx.shape))
    y = F.max_unpool2d(x, idx, kernel, stride, padding, output_size=output_size)
    finish(p, y, [x], ["x"])


unpool("k2", rnd(2, 2, 6, 6), 2)
unpool("k2_odd_output_size", rnd(1, 2, 7, 5), 2, output_size=(7, 5))
# Overlapping windows on tied values: one index can appear twice; the later
# value is kept and the gradient (a gather) reaches both.
unpool("k3s2p1_overlap", ties(2, 1, 7, 7), 3, 2, 1)
unpool("k3s2p1_overlap_random", rnd(1, 2, 7, 7), 3, 2, 1)
unpool("unbatched_k2", rnd(3, 4, 4), 2)
unpool("adaptive_5x7to2x3", rnd(1, 2, 5, 7), 3, 2, output_size=(5, 7), adaptive=(2, 3))

# ---------------------------------------------------------------------------
# cross_entropy on [N, C, d1, ...] logits: ignore_index, class weights,
# label smoothing, reductions
# ---------------------------------------------------------------------------

def xent(case, shape, reduction="mean", label_smoothing=0.0, ignore_index=None, weight=False):
    p = f"cross_entropy.{case}"
    c = shape[1]
    red = {"mean": 0, "sum": 1, "none": 2}[reduction]
    opts(p, red, label_smoothing, -1 if ignore_index is None else ignore_index, int(weight))
    x = leaf(p + ".x", rnd(*shape, scale=2.0))
    t = torch.randint(0, c, [shape[0]] + list(shape[2:]))
    if ignore_index is not None:
        t[torch.rand(t.shape) < 0.3] = ignore_index
    put(p + ".t", t.double())
    w = None
    if weight:
        w = torch.round(torch.rand(c) * 2 + 0.1, decimals=4)
        put(p + ".w", w)
    y = F.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=label_smoothing,
                        ignore_index=-100 if ignore_index is None else ignore_index)
    finish(p, y, [x], ["x"])


xent("spatial_mean", [2, 4, 3, 3])
xent("spatial_ignore_weight_mean", [2, 5, 3, 4], ignore_index=255, weight=True)
xent("spatial_ignore_mean", [2, 3, 4, 4], ignore_index=255)
xent("spatial_weight_smooth_mean", [2, 4, 3, 3], label_smoothing=0.1, ignore_index=255, weight=True)
xent("spatial_weight_smooth_sum", [2, 3, 2, 3], reduction="sum", label_smoothing=0.2, ignore_index=1, weight=True)
xent("volume_weight_smooth_none", [1, 4, 2, 2, 3], reduction="none", label_smoothing=0.2, ignore_index=255,
     weight=True)
xent("rows_weight_smooth_mean", [6, 4], label_smoothing=0.3, ignore_index=255, weight=True)
xent("rows_weight_none", [5, 3], reduction="none", weight=True)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as fh:
    fh.write("# generated by scripts/golden_cnn.py with torch %s (float64)\n" % torch.__version__)
    fh.writelines(blocks)
print("wrote", os.path.relpath(OUT), len(blocks), "tensors", os.path.getsize(OUT), "bytes")
