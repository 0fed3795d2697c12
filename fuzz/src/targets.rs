//! One target per file reader: each parses arbitrary bytes as its format
//! and, when they parse, uses the result as a program would (every tensor
//! read with every accessor, state loaded into a module or an optimizer).
//! A target returns whether the reader accepted the input; an error is a
//! correct answer, a panic is a finding.

use std::io::Write;
use std::path::Path;

use dlfs::tools::checkpoint::{Checkpoint, Position};
use models::data::cifar::parse_cifar10_batch;
use models::data::idx::{IdxArray, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use models::data::io::decompress;
use nn::{
    BatchNorm1d, BatchNormConfig, Dtype, Linear, LinearConfig, Module, SafetensorsFile, StateDict,
};
use optim::lr_scheduler::LrScheduler;
use optim::{
    Adam, AdamConfig, AveragedConfig, AveragedParams, Optimizer, OptimizerState, SchedulerState,
    Sgd, SgdConfig, StepLr, StepLrConfig,
};

/// A reader under test.
pub struct Target {
    /// Its name (the corpus folder under `fuzz/corpus/`).
    pub name: &'static str,
    /// Runs the reader on one input; whether it accepted it.
    pub run: fn(&[u8]) -> bool,
    /// The inputs the committed corpus is made from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "idx",
            run: idx,
            seeds: idx_seeds,
        },
        Target {
            name: "idx_gzip",
            run: idx_gzip,
            seeds: idx_gzip_seeds,
        },
        Target {
            name: "cifar10",
            run: cifar10,
            seeds: cifar10_seeds,
        },
        Target {
            name: "safetensors",
            run: safetensors,
            seeds: safetensors_seeds,
        },
        Target {
            name: "optim_state",
            run: optim_state,
            seeds: optim_state_seeds,
        },
        Target {
            name: "checkpoint",
            run: checkpoint,
            seeds: checkpoint_seeds,
        },
    ]
}

fn path() -> &'static Path {
    Path::new("fuzz-input")
}

fn idx_parse(bytes: Vec<u8>) -> bool {
    let mut ok = false;
    for magic in [IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC] {
        if let Ok(a) = IdxArray::parse(bytes.clone(), path(), magic) {
            let n: usize = a.dims().iter().product();
            assert_eq!(n, a.data().len(), "dims and data disagree");
            ok = true;
        }
    }
    ok
}

fn idx(data: &[u8]) -> bool {
    idx_parse(data.to_vec())
}

fn idx_gzip(data: &[u8]) -> bool {
    match decompress(data.to_vec(), Path::new("fuzz-input.gz")) {
        Ok(raw) => idx_parse(raw),
        Err(_) => false,
    }
}

fn cifar10(data: &[u8]) -> bool {
    match parse_cifar10_batch(data, path()) {
        Ok((pixels, labels)) => {
            assert_eq!(pixels.len(), labels.len() * 3072);
            true
        }
        Err(_) => false,
    }
}

fn safetensors(data: &[u8]) -> bool {
    let Ok(file) = SafetensorsFile::from_bytes(data.to_vec(), path()) else {
        return false;
    };
    for name in file.names() {
        let _ = file.dtype(name);
        let _ = file.shape(name);
        let _ = file.get_f32(name);
        let _ = file.get_f64(name);
        let _ = file.get_i64(name);
    }
    if let Ok(sd) = StateDict::from_file(&file) {
        let _ = Linear::new(LinearConfig::new(2, 3)).load_state_dict(&sd, false);
        let _ = BatchNorm1d::new(BatchNormConfig::new(3)).load_state_dict(&sd, false);
        let _ = sd.to_bytes(Dtype::F16);
    }
    true
}

fn optim_state(data: &[u8]) -> bool {
    let mut ok = false;
    if let Ok(state) = OptimizerState::<f32>::from_bytes(data, path()) {
        let model = Linear::new(LinearConfig::new(2, 3));
        let mut adam = Adam::new(model.parameters(), AdamConfig::default());
        if adam.load_state_dict(&state).is_ok() {
            // A loaded state must step.
            model.weight.set_grad(Some(autograd::Tensor::ones([3, 2])));
            let _ = adam.try_step();
        }
        ok = true;
    }
    if let Ok(state) = SchedulerState::from_bytes(data, path()) {
        let model = Linear::new(LinearConfig::new(2, 3));
        let mut opt = Sgd::new(model.parameters(), SgdConfig::default());
        let mut s = StepLr::new(&mut opt, StepLrConfig::new(2));
        if s.load_state_dict(&state).is_ok() {
            let _ = s.try_step(&mut opt);
        }
        ok = true;
    }
    ok
}

fn checkpoint(data: &[u8]) -> bool {
    let Ok(c) = Checkpoint::from_bytes(data, path()) else {
        return false;
    };
    let model = Linear::new(LinearConfig::new(2, 3));
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    let _ = c.restore(&model, &mut opt, None);
    let mut avg = AveragedParams::new(model.parameters(), AveragedConfig::ema(0.9));
    let _ = c.restore_averages(&model, &mut avg);
    let _ = c.to_bytes();
    true
}

// ---- the corpus: small valid files of each format ----

fn idx_file(magic: u32, dims: &[u32], fill: u8) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    let n: u32 = dims.iter().product();
    b.extend((0..n).map(|i| (i as u8).wrapping_mul(fill)));
    b
}

fn idx_seeds() -> Vec<Vec<u8>> {
    vec![
        idx_file(IDX_IMAGES_MAGIC, &[2, 3, 3], 7),
        idx_file(IDX_IMAGES_MAGIC, &[0, 28, 28], 1),
        idx_file(IDX_LABELS_MAGIC, &[5], 3),
    ]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn idx_gzip_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = idx_seeds().iter().map(|b| gzip(b)).collect();
    // Two members, as pigz writes.
    let labels = idx_file(IDX_LABELS_MAGIC, &[4], 1);
    let mut two = gzip(&labels[..6]);
    two.extend(gzip(&labels[6..]));
    seeds.push(two);
    seeds
}

fn cifar10_seeds() -> Vec<Vec<u8>> {
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3072u32).map(|i| (i * 31 % 251) as u8));
        r
    };
    vec![record(3), [record(0), record(9)].concat()]
}

fn trained_linear() -> (Linear, Adam) {
    autograd::manual_seed(1);
    let model = Linear::new(LinearConfig::new(2, 3));
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    let loss = model
        .forward(&autograd::Tensor::ones([2, 2]))
        .cross_entropy(&[0, 2]);
    loss.backward();
    opt.step();
    (model, opt)
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    let (model, _) = trained_linear();
    let bn = BatchNorm1d::new(BatchNormConfig::new(3));
    vec![
        model.state_dict().to_bytes(Dtype::F32),
        model.state_dict().to_bytes(Dtype::F16),
        bn.state_dict().to_bytes(Dtype::BF16),
    ]
}

fn optim_state_seeds() -> Vec<Vec<u8>> {
    let (model, adam) = trained_linear();
    let mut sgd = Sgd::new(
        model.parameters(),
        SgdConfig {
            momentum: 0.9,
            ..Default::default()
        },
    );
    sgd.step();
    let mut s = StepLr::new(&mut sgd, StepLrConfig::new(2));
    s.step(&mut sgd);
    vec![
        adam.state_dict().to_bytes(),
        sgd.state_dict().to_bytes(),
        s.state_dict().to_bytes(),
    ]
}

fn checkpoint_seeds() -> Vec<Vec<u8>> {
    let (model, adam) = trained_linear();
    let at = Position {
        epoch: 2,
        step: 3,
        loss_sum: 1.25,
        correct: 4,
        images: 6,
    };
    let mut avg = AveragedParams::new(model.parameters(), AveragedConfig::ema(0.9));
    avg.update();
    vec![
        Checkpoint::capture(at.clone(), "seed=0", &model, &adam, None).to_bytes(),
        Checkpoint::capture(at, "seed=0 ema=0.9", &model, &adam, None)
            .with_averages(&model, &avg)
            .to_bytes(),
    ]
}
