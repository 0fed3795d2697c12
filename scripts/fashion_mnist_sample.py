#!/usr/bin/env python3
"""Cuts the Fashion-MNIST sample committed under examples/data/fashion-mnist-sample/.

The sample is the first 200 training and the first 200 test images of
Fashion-MNIST (with their labels), in the dataset's own IDX format: the
header's image count is rewritten, the bytes after it are the full files'
first records unchanged. 200 training images hold at least 16 of each class
(enough for `05_transfer_learning --quick`, which takes 10 per class) and the
quick runs test on at most 200 images.

Source: Debian's `dataset-fashion-mnist` package (upstream's `data/fashion`),
installed with `apt-get install dataset-fashion-mnist` into
/usr/share/datasets/fashion-mnist/. The full files are checked against the
SHA-256 the Rust loader verifies (models/src/data/mnist.rs) before cutting.

Output: gzipped files (level 9, no name, time 0, so reruns give the same
bytes) under the original names, and the SHA-256 of each uncompressed sample
file, which go into models/src/data/mnist.rs and the sample's README.md.

Run:  python3 scripts/fashion_mnist_sample.py [SOURCE_DIR] [OUT_DIR]
(standard library only).
"""
import gzip
import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(ROOT, "examples", "data", "fashion-mnist-sample")
COUNTS = {"train": 200, "t10k": 200}

# SHA-256 of the full uncompressed files (as in models/src/data/mnist.rs).
FULL_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def read(source, name):
    """The raw bytes of `name` or `name.gz` in `source`, checksum verified."""
    path = os.path.join(source, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    else:
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    found = hashlib.sha256(data).hexdigest()
    if found != FULL_SHA256[name]:
        sys.exit(f"{path}: SHA-256 {found}, expected {FULL_SHA256[name]}")
    return data


def cut(data, n):
    """The first `n` records of an IDX file, with the count in its header set to `n`."""
    magic, count = struct.unpack(">II", data[:8])
    dims = magic & 0xFF
    header = 4 + 4 * dims
    shape = struct.unpack(">" + "I" * (dims - 1), data[8:header])
    record = 1
    for d in shape:
        record *= d
    assert n <= count, (n, count)
    return data[:4] + struct.pack(">I", n) + data[8:header] + data[header:header + n * record]


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else SOURCE
    out = sys.argv[2] if len(sys.argv) > 2 else OUT
    os.makedirs(out, exist_ok=True)
    for split, n in COUNTS.items():
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{split}-{kind}"
            sample = cut(read(source, name), n)
            with open(os.path.join(out, name + ".gz"), "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
                    f.write(sample)
            print(f"{name}: {n} records, SHA-256 {hashlib.sha256(sample).hexdigest()}")


if __name__ == "__main__":
    main()
