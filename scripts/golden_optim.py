#!/usr/bin/env python3
"""Writes optim/tests/fixtures/golden_optim.txt: PyTorch's optimizer
trajectories, gradient clipping and learning-rate sequences. The Rust tests
`optim/tests/golden_optimizers.rs` and `optim/tests/golden_schedulers.rs` redo
the same runs and compare. CI only reads the committed fixture.

Run:  PY=$(bash ../shared/bench/setup.sh); $PY scripts/golden_optim.py
Format: one block per tensor: `name ndim d0 d1 ...` then one line of values.

Optimizers: every configuration below takes 10 steps on the same loss,
    mean((tanh(x @ w + b + f) - y)^2) + 0.05 * sum(w^2) + 0.1 * sum(b^4)
from the same starting values, the gradient computed by PyTorch's autograd
(the Rust test uses ours), in float64 and in float32. `f` requires no grad and
`u` gets no gradient: both must stay unchanged. `*_groups` configurations put
w (with f) and b (with u) in two groups with their own settings.
Schedulers: the lr of two groups (base lrs 0.1 and 0.01) right after
construction and after each of 30 steps; OneCycleLR also records momentum.
"""
import math
import os
import warnings

import torch
from torch import optim
from torch.optim import lr_scheduler as sch

warnings.filterwarnings("ignore")
torch.manual_seed(2024)
OUT = os.path.join(os.path.dirname(__file__), "..", "optim", "tests", "fixtures", "golden_optim.txt")
blocks = []
STEPS = 10


def put(name, t):
    t = torch.as_tensor(t).detach().double()
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.flatten().tolist())
    blocks.append(f"{name} {t.dim()} {dims}\n{vals}\n")


def uniform(*shape, low=-1.0, high=1.0):
    return torch.rand(*shape, dtype=torch.float64) * (high - low) + low


# --- Optimizers --------------------------------------------------------------

X, Y = uniform(6, 4), uniform(6, 3)
W0, B0, F0, U0 = uniform(4, 3), uniform(3), uniform(3, low=-0.2, high=0.2), uniform(2)
for n, t in [("problem.x", X), ("problem.y", Y), ("problem.w", W0), ("problem.b", B0),
             ("problem.f", F0), ("problem.u", U0)]:
    put(n, t)


def loss_fn(x, y, w, b, f):
    return (torch.tanh(x @ w + b + f) - y).square().mean() + (w.square().sum() * 0.05) \
        + (b.square().square().sum() * 0.1)


SINGLE = {
    "sgd": (optim.SGD, dict(lr=0.1)),
    "sgd_wd": (optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    "sgd_momentum": (optim.SGD, dict(lr=0.1, momentum=0.9)),
    "sgd_dampening": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    "sgd_nesterov": (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_maximize": (optim.SGD, dict(lr=0.05, momentum=0.5, maximize=True)),
    "adam": (optim.Adam, dict(lr=0.05)),
    "adam_default": (optim.Adam, dict()),
    "adam_wd": (optim.Adam, dict(lr=0.05, weight_decay=0.1)),
    "adam_amsgrad": (optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), amsgrad=True)),
    "adam_eps": (optim.Adam, dict(lr=0.05, eps=1e-2, betas=(0.6, 0.9))),
    "adam_maximize": (optim.Adam, dict(lr=0.05, maximize=True, weight_decay=0.01)),
    "adamw": (optim.AdamW, dict(lr=0.05)),
    "adamw_amsgrad": (optim.AdamW, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    "adagrad": (optim.Adagrad, dict(lr=0.1)),
    "adagrad_decay": (optim.Adagrad, dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1,
                                          weight_decay=0.01, eps=1e-3)),
    "rmsprop": (optim.RMSprop, dict(lr=0.01)),
    "rmsprop_centered": (optim.RMSprop, dict(lr=0.01, centered=True)),
    "rmsprop_momentum": (optim.RMSprop, dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    "rmsprop_centered_momentum": (optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True,
                                                      momentum=0.5, eps=1e-3)),
    "adadelta": (optim.Adadelta, dict()),
    "adadelta_wd": (optim.Adadelta, dict(lr=0.5, rho=0.95, eps=1e-4, weight_decay=0.01, maximize=False)),
}
# (constructor, defaults, settings of the w group, settings of the b group)
GROUPS = {
    "sgd_groups": (optim.SGD, dict(lr=0.1, momentum=0.9),
                   dict(lr=0.05, weight_decay=0.01), dict(momentum=0.5)),
    "adam_groups": (optim.Adam, dict(lr=0.05),
                    dict(lr=0.01), dict(weight_decay=0.1, betas=(0.5, 0.999))),
    "rmsprop_groups": (optim.RMSprop, dict(lr=0.01, momentum=0.9),
                       dict(lr=0.02, momentum=0.0), dict(weight_decay=0.05)),
}

for dtype, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
    x, y = X.to(dtype), Y.to(dtype)
    for name, spec in list(SINGLE.items()) + list(GROUPS.items()):
        w = W0.to(dtype).clone().requires_grad_()
        b = B0.to(dtype).clone().requires_grad_()
        f = F0.to(dtype).clone()
        u = U0.to(dtype).clone().requires_grad_()
        if name in GROUPS:
            cls, defaults, gw, gb = spec
            opt = cls([dict(params=[w, f], **gw), dict(params=[b, u], **gb)], **defaults)
        else:
            cls, kw = spec
            opt = cls([w, b, f, u], **kw)
        for _ in range(STEPS):
            opt.zero_grad(set_to_none=True)
            loss_fn(x, y, w, b, f).backward()
            opt.step()
        assert torch.equal(f, F0.to(dtype)) and torch.equal(u.detach(), U0.to(dtype)), name
        put(f"{name}.{tag}.w", w)
        put(f"{name}.{tag}.b", b)

# --- Gradient clipping -------------------------------------------------------

G = [uniform(3, 4), uniform(5) * 3.0, uniform(2, 2, 2) * 0.1]
for i, g in enumerate(G):
    put(f"clip.g{i}", g)
CLIPS = [("l2", 1.0, 2.0), ("l1", 0.5, 1.0), ("inf", 0.3, math.inf), ("l3", 0.7, 3.0),
         ("none", 100.0, 2.0)]
for dtype, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
    for name, max_norm, norm_type in CLIPS:
        ps = [torch.zeros(g.shape, dtype=dtype, requires_grad=True) for g in G]
        for p, g in zip(ps, G):
            p.grad = g.to(dtype).clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        put(f"clip.{name}.{tag}.total", total.reshape(1))
        for i, p in enumerate(ps):
            put(f"clip.{name}.{tag}.g{i}", p.grad)
    ps = [torch.zeros(g.shape, dtype=dtype, requires_grad=True) for g in G]
    for p, g in zip(ps, G):
        p.grad = g.to(dtype).clone()
    torch.nn.utils.clip_grad_value_(ps, 0.4)
    for i, p in enumerate(ps):
        put(f"clip.value.{tag}.g{i}", p.grad)

# --- Schedulers --------------------------------------------------------------

SCHED_STEPS = 30
METRICS = [1.0, 0.9, 0.85, 0.86, 0.84, 0.84, 0.845, 0.83, 0.83, 0.83, 0.83, 0.7, 0.71, 0.72,
           0.69, 0.69, 0.7, 0.71, 0.72, 0.73, 0.5, 0.5, 0.5, 0.5, 0.49, 0.495, 0.5, 0.5, 0.5, 0.5]
assert len(METRICS) == SCHED_STEPS
put("sched.plateau.metrics", torch.tensor(METRICS))


def two_groups(cls=optim.SGD, **kw):
    p1, p2 = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    return cls([dict(params=[p1], lr=0.1), dict(params=[p2], lr=0.01)], **kw)


SCHEDULERS = {
    "step": lambda o: sch.StepLR(o, step_size=7, gamma=0.5),
    "step_default": lambda o: sch.StepLR(o, step_size=4),
    "multistep": lambda o: sch.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3),
    "exponential": lambda o: sch.ExponentialLR(o, gamma=0.9),
    "constant": lambda o: sch.ConstantLR(o, factor=0.5, total_iters=4),
    "linear": lambda o: sch.LinearLR(o),
    "linear_custom": lambda o: sch.LinearLR(o, start_factor=0.1, end_factor=0.5, total_iters=12),
    "cosine": lambda o: sch.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "cosine_long": lambda o: sch.CosineAnnealingLR(o, T_max=30),
    "cawr": lambda o: sch.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
    "cawr_mult1": lambda o: sch.CosineAnnealingWarmRestarts(o, T_0=7),
    "sequential": lambda o: sch.SequentialLR(
        o, [sch.LinearLR(o, start_factor=0.1, total_iters=5), sch.CosineAnnealingLR(o, T_max=25)],
        milestones=[5]),
    "sequential3": lambda o: sch.SequentialLR(
        o, [sch.ConstantLR(o, factor=0.2, total_iters=3), sch.ExponentialLR(o, gamma=0.9),
            sch.StepLR(o, step_size=4, gamma=0.5)], milestones=[4, 12]),
    "chained": lambda o: sch.ChainedScheduler(
        [sch.LinearLR(o, start_factor=0.25, total_iters=6), sch.ExponentialLR(o, gamma=0.95)]),
    "plateau": lambda o: sch.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1, threshold=0.01),
    "plateau_max_abs": lambda o: sch.ReduceLROnPlateau(o, mode="max", threshold_mode="abs",
                                                       patience=1, threshold=0.005, factor=0.3,
                                                       min_lr=[0.02, 0.001]),
    "onecycle": lambda o: sch.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=SCHED_STEPS),
    "onecycle_linear3": lambda o: sch.OneCycleLR(o, max_lr=0.5, total_steps=SCHED_STEPS,
                                                 anneal_strategy="linear", three_phase=True,
                                                 pct_start=0.25, div_factor=10.0,
                                                 final_div_factor=100.0, base_momentum=0.8,
                                                 max_momentum=0.9),
    "onecycle_nomomentum": lambda o: sch.OneCycleLR(o, max_lr=0.3, total_steps=SCHED_STEPS,
                                                    cycle_momentum=False, pct_start=0.4),
}
# The optimizer each scheduler drives (momentum where OneCycleLR cycles it).
OPTS = {"onecycle": lambda: two_groups(momentum=0.9),
        "onecycle_linear3": lambda: two_groups(optim.Adam)}


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


for name, make in SCHEDULERS.items():
    opt = OPTS.get(name, two_groups)()
    s = make(opt)
    lrs, moms = [], []
    for k in range(SCHED_STEPS + 1):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([momentum_of(g) for g in opt.param_groups])
        if k == SCHED_STEPS:
            break
        opt.step()
        if isinstance(s, sch.ReduceLROnPlateau):
            s.step(METRICS[k])
        else:
            s.step()
    put(f"sched.{name}.lr", torch.tensor(lrs, dtype=torch.float64))
    if name.startswith("onecycle"):
        put(f"sched.{name}.momentum", torch.tensor(moms, dtype=torch.float64))

# CosineAnnealingWarmRestarts stepped per batch with fractional epochs (4 batches an epoch).
opt = two_groups()
s = sch.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.002)
lrs = [[g["lr"] for g in opt.param_groups]]
for k in range(1, SCHED_STEPS + 1):
    opt.step()
    s.step(k / 4)
    lrs.append([g["lr"] for g in opt.param_groups])
put("sched.cawr_fractional.lr", torch.tensor(lrs, dtype=torch.float64))

with open(OUT, "w") as fh:
    fh.write(f"# generated by scripts/golden_optim.py with torch {torch.__version__}\n")
    fh.writelines(blocks)
print(f"wrote {len(blocks)} tensors to {os.path.normpath(OUT)}")
