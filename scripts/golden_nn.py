#!/usr/bin/env python3
"""Writes the PyTorch interop fixtures of the `nn` crate under nn/tests/fixtures/.

For each small model built with torch/torchvision in the SAME layout as ours,
with random (not default) batch-norm weights and running statistics:

  <name>.safetensors     the model's state_dict exactly as PyTorch names it
                         (float32, `num_batches_tracked` as int64), in
                         state_dict order;
  <name>_io.safetensors  `input`, `out_eval` (eval mode, from the saved state),
                         `out_train` (train mode, one forward from the saved
                         state), and `after.<buffer name>`: every buffer after
                         that one train-mode forward.

Also `param_counts.txt`: `name count` lines of parameter counts computed by
torch (Linear 784->100, BasicBlock 64->64, Bottleneck(256, 64), GoogLeNet's
inception3a, ...), and `state_dict_names.txt`: `model name...` lines of the
state_dict names torchvision gives some nested modules.

The Rust test `nn/tests/interop.rs` builds the matching modules, loads the
state dicts STRICTLY and compares. CI only reads the committed fixtures.

Run:  $(cat /tmp/setup_py.txt) scripts/golden_nn.py
(the venv python with torch and torchvision; the safetensors format is written
here directly, so the `safetensors` package is not needed).
"""
import json
import os
import struct

import torch
import torch.nn as nn
import torchvision
from torchvision.models.googlenet import Inception
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

torch.manual_seed(20240607)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nn", "tests", "fixtures")
DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def save_safetensors(path, tensors):
    """The safetensors format: u64 LE header size, JSON header, raw LE data (in the given order)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        code, np_dtype = DTYPES[t.dtype]
        data = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def randomize(model):
    """Random batch-norm affine parameters and running statistics (not the defaults)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return model


def golden(name, model, input_shape):
    randomize(model)
    x = torch.randn(*input_shape)
    sd = [(k, v.clone()) for k, v in model.state_dict().items()]
    save_safetensors(os.path.join(OUT, f"{name}.safetensors"), sd)
    with torch.no_grad():
        model.eval()
        out_eval = model(x)
        model.train()
        out_train = model(x)
    io = [("input", x), ("out_eval", out_eval), ("out_train", out_train)]
    io += [(f"after.{k}", v.clone()) for k, v in model.named_buffers()]
    save_safetensors(os.path.join(OUT, f"{name}_io.safetensors"), io)


def basic_block_down(inplanes, planes, stride):
    down = nn.Sequential(conv1x1(inplanes, planes * BasicBlock.expansion, stride), nn.BatchNorm2d(planes * BasicBlock.expansion))
    return BasicBlock(inplanes, planes, stride=stride, downsample=down)


def bottleneck_down(inplanes, planes, stride):
    down = nn.Sequential(conv1x1(inplanes, planes * Bottleneck.expansion, stride), nn.BatchNorm2d(planes * Bottleneck.expansion))
    return Bottleneck(inplanes, planes, stride=stride, downsample=down)


def count(m):
    return sum(p.numel() for p in m.parameters())


os.makedirs(OUT, exist_ok=True)

# (a) a small CNN: conv, batch norm, ReLU, max-pool, flatten, linear
golden("cnn", nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5),
), (2, 3, 8, 8))
# (b) ResNet basic blocks: identity shortcut, and projection with stride 2
golden("basic_block", BasicBlock(8, 8), (2, 8, 6, 6))
golden("basic_block_down", basic_block_down(8, 16, 2), (2, 8, 6, 6))
# (c) bottlenecks: identity (16 = 4 * 4 channels) and projection with stride 2
golden("bottleneck", Bottleneck(16, 4), (2, 16, 5, 5))
golden("bottleneck_down", bottleneck_down(8, 4, 2), (2, 8, 6, 6))
# (d) GoogLeNet's Inception block with small channel counts
golden("inception", Inception(8, 4, 4, 8, 2, 4, 4), (2, 8, 5, 5))
# (e) a Sequential of BasicBlocks (nested names: `1.downsample.0.weight`)
golden("resnet_stage", nn.Sequential(BasicBlock(4, 4), basic_block_down(4, 8, 2)), (2, 4, 6, 6))

googlenet = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
counts = {
    "linear_784_100": count(nn.Linear(784, 100)),
    "linear_784_100_nobias": count(nn.Linear(784, 100, bias=False)),
    "conv2d_1_16_3": count(nn.Conv2d(1, 16, 3)),
    "conv2d_8_16_3_groups4_nobias": count(nn.Conv2d(8, 16, 3, groups=4, bias=False)),
    "conv_transpose2d_8_4_4": count(nn.ConvTranspose2d(8, 4, 4)),
    "batchnorm2d_64": count(nn.BatchNorm2d(64)),
    "basic_block_64_64": count(BasicBlock(64, 64)),
    "basic_block_64_128_s2": count(basic_block_down(64, 128, 2)),
    "bottleneck_256_64": count(Bottleneck(256, 64)),
    "bottleneck_64_64_proj": count(bottleneck_down(64, 64, 1)),
    "inception3a": count(googlenet.inception3a),
    "inception_8_4_4_8_2_4_4": count(Inception(8, 4, 4, 8, 2, 4, 4)),
}
with open(os.path.join(OUT, "param_counts.txt"), "w") as f:
    for k, v in counts.items():
        f.write(f"{k} {v}\n")

names = {
    "resnet_stage": nn.Sequential(BasicBlock(4, 4), basic_block_down(4, 8, 2)),
    "bottleneck_down": bottleneck_down(8, 4, 2),
    "inception": Inception(8, 4, 4, 8, 2, 4, 4),
}
with open(os.path.join(OUT, "state_dict_names.txt"), "w") as f:
    for k, m in names.items():
        f.write(k + " " + " ".join(m.state_dict().keys()) + "\n")

total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print("wrote", os.path.relpath(OUT), sorted(os.listdir(OUT)), total, "bytes")
