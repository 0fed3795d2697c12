//! PyTorch interop: state dicts saved from torch/torchvision models
//! (`scripts/golden_nn.py` writes `tests/fixtures/<name>.safetensors` with
//! PyTorch's own names, `num_batches_tracked` as int64) load STRICTLY into
//! our matching modules, with no renaming, and the modules compute what
//! PyTorch computed on the same input, in eval mode and in train mode, and
//! update the running statistics as PyTorch did.

use std::path::PathBuf;

use autograd::Tensor;
use nn::{
    BasicBlock, BatchNorm2d, BatchNormConfig, BlockConfig, Bottleneck, Conv2d, Conv2dConfig, Dtype,
    Flatten, Inception, InceptionConfig, Linear, LinearConfig, MaxPool2d, Module, PoolConfig, ReLU,
    Sequential, StateDict,
};
use safetensors::tensor::{Dtype as StDtype, SafeTensors};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `|ours - torch| <= 1e-5 * max(|torch|, 1)` element for element (relative, with an absolute floor at 1).
fn assert_close(ours: &Tensor, torch: &Tensor, what: &str) {
    assert_eq!(ours.shape(), torch.shape(), "{what}: shape");
    for (i, (a, b)) in ours.to_vec().iter().zip(torch.to_vec()).enumerate() {
        let tol = 1e-5 * b.abs().max(1.0);
        assert!(
            (a - b).abs() <= tol,
            "{what}: element {i}: ours {a} vs PyTorch {b}"
        );
    }
}

fn check(name: &str, m: &dyn Module) {
    let path = fixture(&format!("{name}.safetensors"));
    // The file is PyTorch's: every key is one of our names, num_batches_tracked is int64.
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for (k, v) in st.tensors() {
        let want = if k.ends_with("num_batches_tracked") {
            StDtype::I64
        } else {
            StDtype::F32
        };
        assert_eq!(v.dtype(), want, "{name}: {k}");
    }

    // Strict: names and shapes match with no remapping.
    let report = m
        .load(&path, true)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(report, nn::LoadReport::default());
    let sd = StateDict::load(&path).unwrap();
    for (n, t) in m.named_tensors() {
        assert_eq!(
            t.tensor.to_vec(),
            sd.get(&n).unwrap().to_vec(),
            "{name}: {n} loaded exactly"
        );
    }
    for (n, b) in m.named_buffers() {
        if n.ends_with("num_batches_tracked") {
            assert_eq!(b.to_vec(), vec![7.0], "{name}: {n} (int64 in the file)");
        }
    }

    let io = StateDict::load(&fixture(&format!("{name}_io.safetensors"))).unwrap();
    let x = io.get("input").unwrap();

    m.eval();
    assert_close(
        &m.forward(x),
        io.get("out_eval").unwrap(),
        &format!("{name} (eval)"),
    );
    // Eval left every buffer as loaded.
    for (n, b) in m.named_buffers() {
        assert_eq!(
            b.to_vec(),
            sd.get(&n).unwrap().to_vec(),
            "{name}: {n} moved in eval"
        );
    }

    m.train();
    assert_close(
        &m.forward(x),
        io.get("out_train").unwrap(),
        &format!("{name} (train)"),
    );
    // One train-mode forward moved the running statistics exactly as in PyTorch.
    let buffers = m.named_buffers();
    assert!(!buffers.is_empty());
    for (n, b) in buffers {
        let after = io
            .get(&format!("after.{n}"))
            .unwrap_or_else(|| panic!("{name}: no after.{n}"));
        assert_close(&b, after, &format!("{name}: {n} after one train step"));
        if n.ends_with("num_batches_tracked") {
            assert_eq!(b.to_vec(), vec![8.0]);
        }
    }

    // Our own save of the loaded module has the same names and values, and loads back in the same way.
    let ours = m.state_dict().to_bytes(Dtype::F32);
    let back = StateDict::from_bytes(&ours, &path).unwrap();
    let mut a: Vec<&String> = back.keys().collect();
    let mut b: Vec<String> = st.names().into_iter().map(String::from).collect();
    a.sort();
    b.sort();
    assert_eq!(
        a.into_iter().cloned().collect::<Vec<_>>(),
        b,
        "{name}: our file has PyTorch's names"
    );
}

#[test]
fn cnn_sequential() {
    let m = Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(3, 8, 3).padding(1)))
        .add(BatchNorm2d::new(BatchNormConfig::new(8)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Flatten::default())
        .add(Linear::new(LinearConfig::new(8 * 4 * 4, 5)));
    check("cnn", &m);
}

#[test]
fn basic_block_identity() {
    check("basic_block", &BasicBlock::new(BlockConfig::new(8, 8)));
}

#[test]
fn basic_block_projection_stride_2() {
    check(
        "basic_block_down",
        &BasicBlock::new(BlockConfig::new(8, 16).stride(2)),
    );
}

#[test]
fn bottleneck_identity() {
    check("bottleneck", &Bottleneck::new(BlockConfig::new(16, 4)));
}

#[test]
fn bottleneck_projection_stride_2() {
    check(
        "bottleneck_down",
        &Bottleneck::new(BlockConfig::new(8, 4).stride(2)),
    );
}

#[test]
fn inception() {
    check(
        "inception",
        &Inception::new(InceptionConfig::new(8, 4, 4, 8, 2, 4, 4)),
    );
}

#[test]
fn sequential_of_basic_blocks() {
    let m = Sequential::new()
        .add(BasicBlock::new(BlockConfig::new(4, 4)))
        .add(BasicBlock::new(BlockConfig::new(4, 8).stride(2)));
    check("resnet_stage", &m);
}

#[test]
fn a_wrong_layout_fails_strictly() {
    // The PyTorch file does not fit a module of another layout: strict load
    // names the problems and changes nothing.
    let m = BasicBlock::new(BlockConfig::new(8, 8));
    let before: Vec<Vec<f32>> = m
        .named_tensors()
        .iter()
        .map(|(_, t)| t.tensor.to_vec())
        .collect();
    let path = fixture("basic_block_down.safetensors");
    let err = m.load(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("downsample.0.weight")
            && err.contains("conv1.weight")
            && err.contains("basic_block_down.safetensors"),
        "{err}"
    );
    let after: Vec<Vec<f32>> = m
        .named_tensors()
        .iter()
        .map(|(_, t)| t.tensor.to_vec())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn fixtures_are_small() {
    let total: u64 = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 256 * 1024, "fixtures take {total} bytes");
}
