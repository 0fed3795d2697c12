//! Saving and loading state dicts as safetensors: round trips in f32 (exact),
//! f16 and bf16 (half the file, values rounded through half precision),
//! strict and non-strict loads, damaged files (an error naming the file,
//! never a panic), and writes through a temporary file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use autograd::{manual_seed, Tensor};
use nn::{
    BasicBlock, BatchNorm2d, BatchNormConfig, BlockConfig, Conv2d, Conv2dConfig, Dtype, Flatten,
    Linear, LinearConfig, Module, NnError, ReLU, Sequential, StateDict,
};
use safetensors::tensor::{Dtype as StDtype, SafeTensors};

/// A fresh, empty directory under the system temp dir, unique to this test
/// run and call, removed when dropped (also when the test fails).
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "nn-state-dict-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn model() -> Sequential {
    Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(3, 8, 3).padding(1)))
        .add(BatchNorm2d::new(BatchNormConfig::new(8)))
        .add(ReLU)
        .add(Flatten::default())
        .add(Linear::new(LinearConfig::new(8 * 4 * 4, 10)))
}

/// A model whose batch norm has moved: non-default running statistics and a batch count.
fn trained_model(seed: u64) -> Sequential {
    manual_seed(seed);
    let m = model();
    for _ in 0..3 {
        m.forward(&(Tensor::randn([4, 3, 4, 4]) * 2.0 + 0.5));
    }
    m
}

fn values(m: &dyn Module) -> Vec<(String, Vec<f32>)> {
    m.named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.tensor.to_vec()))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------- round trips

#[test]
fn f32_round_trip_is_exact() {
    let dir = temp_dir("f32");
    let path = dir.join("model.safetensors");
    let a = trained_model(1);
    a.save(&path, Dtype::F32).unwrap();
    assert_eq!(
        files_in(&dir),
        ["model.safetensors"],
        "no temporary file left behind"
    );

    manual_seed(2);
    let b = model();
    assert_ne!(values(&a), values(&b));
    let report = b.load(&path, true).unwrap();
    assert_eq!(report, nn::LoadReport::default());
    assert_eq!(values(&a), values(&b), "f32 round trip is exact");
    assert_eq!(
        b.state_dict().keys().collect::<Vec<_>>(),
        a.state_dict().keys().collect::<Vec<_>>()
    );
    let nbt = b
        .named_buffers()
        .into_iter()
        .find(|(n, _)| n == "1.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!(nbt.to_vec(), vec![3.0]);

    // The same network computes the same thing.
    a.eval();
    b.eval();
    let x = Tensor::randn([2, 3, 4, 4]);
    assert_eq!(a.forward(&x).to_vec(), b.forward(&x).to_vec());

    // In-memory: from_bytes(to_bytes) keeps names, order and values.
    let sd = a.state_dict();
    let back = StateDict::from_bytes(&sd.to_bytes(Dtype::F32), Path::new("memory")).unwrap();
    // (The file's order is safetensors' own: by dtype, then name.)
    let sorted = |d: &StateDict| {
        let mut k: Vec<String> = d.keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(sorted(&back), sorted(&sd));
    for k in sd.keys() {
        assert_eq!(
            back.get(k).unwrap().to_vec(),
            sd.get(k).unwrap().to_vec(),
            "{k}"
        );
        assert_eq!(
            back.get(k).unwrap().shape(),
            sd.get(k).unwrap().shape(),
            "{k}"
        );
    }
}

#[test]
fn f64_modules_save_and_load_too() {
    let dir = temp_dir("f64");
    let path = dir.join("m.safetensors");
    manual_seed(3);
    let a = Linear::<f64>::build(LinearConfig::new(5, 4));
    a.save(&path, Dtype::F32).unwrap();
    let b = Linear::<f64>::build(LinearConfig::new(5, 4));
    b.load(&path, true).unwrap();
    let want: Vec<f64> = a.weight.to_vec().iter().map(|&v| v as f32 as f64).collect();
    assert_eq!(b.weight.to_vec(), want, "f64 values stored as f32");
}

fn half_round_trip(dtype: Dtype, round: fn(f32) -> f32, st: StDtype) {
    let dir = temp_dir("half");
    let (p32, p16) = (dir.join("f32.safetensors"), dir.join("half.safetensors"));
    manual_seed(4);
    let a = Sequential::new()
        .add(Linear::new(LinearConfig::new(64, 64)))
        .add(BatchNorm2d::new(BatchNormConfig::new(4)))
        .add(Linear::new(LinearConfig::new(64, 32)));
    // Large and small values, to exercise the range (bf16) and the mantissa (f16).
    a.named_parameters()[1]
        .1
        .set_data((Tensor::randn([64]) * 1000.0).array());
    a.named_parameters()[2]
        .1
        .set_data((Tensor::randn([4]) * 1e-3).array());
    let nbt = a
        .named_buffers()
        .into_iter()
        .find(|(n, _)| n.ends_with("num_batches_tracked"))
        .unwrap()
        .1;
    nbt.set_data(Tensor::scalar(123_457.0f32).array());
    a.save(&p32, Dtype::F32).unwrap();
    a.save(&p16, dtype).unwrap();
    let (s32, s16) = (
        std::fs::metadata(&p32).unwrap().len() as f64,
        std::fs::metadata(&p16).unwrap().len() as f64,
    );
    assert!(
        s16 < 0.55 * s32 && s16 > 0.45 * s32,
        "{dtype:?} file is {s16} bytes, f32 {s32}: not about half"
    );

    // The file stores half-precision values (and the batch count as int64, exactly).
    let bytes = std::fs::read(&p16).unwrap();
    let st_file = SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in st_file.tensors() {
        let want = if name.ends_with("num_batches_tracked") {
            StDtype::I64
        } else {
            st
        };
        assert_eq!(view.dtype(), want, "{name}");
    }

    manual_seed(5);
    let b = Sequential::new()
        .add(Linear::new(LinearConfig::new(64, 64)))
        .add(BatchNorm2d::new(BatchNormConfig::new(4)))
        .add(Linear::new(LinearConfig::new(64, 32)));
    b.load(&p16, true).unwrap();
    for ((name, va), (_, vb)) in values(&a).into_iter().zip(values(&b)) {
        let want: Vec<f32> = if name.ends_with("num_batches_tracked") {
            va.clone()
        } else {
            va.iter().map(|&v| round(v)).collect()
        };
        assert_eq!(
            vb, want,
            "{name}: loaded values are the f32 values rounded through {dtype:?}"
        );
        if ["0.weight", "0.bias", "1.weight", "2.weight"].contains(&name.as_str()) {
            assert_ne!(vb, va, "{name}: {dtype:?} should lose precision");
        }
    }
    // Loaded back as f32 tensors of the module's shapes.
    assert_eq!(b.named_parameters()[0].1.shape(), vec![64, 64]);
    // The state dict itself reads as f32.
    let sd = StateDict::load(&p16).unwrap();
    assert_eq!(
        sd.get("0.weight").unwrap().to_vec(),
        b.named_parameters()[0].1.to_vec()
    );
}

#[test]
fn f16_round_trip() {
    half_round_trip(
        Dtype::F16,
        |v| half::f16::from_f32(v).to_f32(),
        StDtype::F16,
    );
}

#[test]
fn bf16_round_trip() {
    half_round_trip(
        Dtype::BF16,
        |v| half::bf16::from_f32(v).to_f32(),
        StDtype::BF16,
    );
}

#[test]
fn f32_file_layout() {
    // F32 storage; num_batches_tracked as int64 with an empty shape, as PyTorch writes it.
    let m = trained_model(6);
    let bytes = m.state_dict().to_bytes(Dtype::F32);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let nbt = st.tensor("1.num_batches_tracked").unwrap();
    assert_eq!(nbt.dtype(), StDtype::I64);
    assert_eq!(nbt.shape(), &[] as &[usize]);
    assert_eq!(i64::from_le_bytes(nbt.data().try_into().unwrap()), 3);
    let w = st.tensor("0.weight").unwrap();
    assert_eq!(
        (w.dtype(), w.shape()),
        (StDtype::F32, &[8usize, 3, 3, 3][..])
    );
    assert_eq!(st.names().len(), m.named_tensors().len());
}

// ------------------------------------------------------- strict / not

fn small() -> Sequential {
    Sequential::new()
        .add(Linear::new(LinearConfig::new(4, 3)))
        .add(ReLU)
        .add(Linear::new(LinearConfig::new(3, 2)))
}

/// A state dict with every kind of problem: `0.bias` missing, `extra.weight`
/// unexpected, `2.weight` and `2.bias` the wrong shape.
fn mismatched_dict() -> StateDict {
    manual_seed(7);
    let other = Sequential::new()
        .add(Linear::new(LinearConfig::new(4, 3)))
        .add(ReLU)
        .add(Linear::new(LinearConfig::new(3, 5)));
    let mut sd = other.state_dict();
    sd.remove("0.bias").unwrap();
    sd.insert("extra.weight".into(), Tensor::ones([2]));
    sd
}

#[test]
fn strict_load_reports_every_problem_at_once_and_changes_nothing() {
    manual_seed(8);
    let m = small();
    let before = values(&m);
    let sd = mismatched_dict();
    let err = m.load_state_dict(&sd, true).unwrap_err();
    match &err {
        NnError::Mismatch {
            path,
            missing,
            unexpected,
            mismatched,
        } => {
            assert!(path.is_none());
            assert_eq!(missing, &["0.bias"]);
            assert_eq!(unexpected, &["extra.weight"]);
            assert_eq!(
                mismatched,
                &[
                    ("2.weight".to_string(), vec![2, 3], vec![5, 3]),
                    ("2.bias".to_string(), vec![2], vec![5])
                ]
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let msg = err.to_string();
    for part in [
        "0.bias",
        "extra.weight",
        "2.weight",
        "[2, 3]",
        "[5, 3]",
        "2.bias",
        "missing",
        "unexpected",
    ] {
        assert!(msg.contains(part), "message lacks {part}: {msg}");
    }
    assert_eq!(
        values(&m),
        before,
        "a failed strict load changes nothing (not even 0.weight, which fits)"
    );

    // From a file: the error names the file too.
    let dir = temp_dir("strict");
    let path = dir.join("other.safetensors");
    sd.save(&path, Dtype::F32).unwrap();
    let err = m.load(&path, true).unwrap_err();
    assert!(matches!(err, NnError::Mismatch { path: Some(ref p), .. } if p == &path));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(values(&m), before);
}

#[test]
fn non_strict_load_loads_what_fits_and_reports_the_rest() {
    manual_seed(9);
    let m = small();
    let before = values(&m);
    let sd = mismatched_dict();
    let report = m.load_state_dict(&sd, false).unwrap();
    assert_eq!(report.missing, ["0.bias"]);
    assert_eq!(report.unexpected, ["extra.weight"]);
    assert_eq!(report.mismatched.len(), 2);
    let after = values(&m);
    assert_eq!(
        after[0].1,
        sd.get("0.weight").unwrap().to_vec(),
        "0.weight loaded"
    );
    assert_eq!(after[1], before[1], "0.bias (missing) kept");
    assert_eq!(after[2], before[2], "2.weight (mismatched) kept");
    assert_eq!(after[3], before[3], "2.bias (mismatched) kept");
    // Loaded values are copies: changing the dict afterwards does not touch the module.
    sd.get("0.weight")
        .unwrap()
        .set_data(Tensor::zeros([3, 4]).array());
    assert_ne!(m.named_parameters()[0].1.to_vec(), vec![0.0; 12]);
}

#[test]
fn fine_tuning_a_new_head() {
    // A removed head: strict fails, non-strict loads the backbone.
    manual_seed(10);
    let trained = small();
    let mut sd = trained.state_dict();
    sd.remove("2.weight");
    sd.remove("2.bias");
    let fresh = small();
    assert!(fresh.load_state_dict(&sd, true).is_err());
    let r = fresh.load_state_dict(&sd, false).unwrap();
    assert_eq!(r.missing, ["2.weight", "2.bias"]);
    assert!(r.unexpected.is_empty() && r.mismatched.is_empty());
    assert_eq!(values(&fresh)[..2], values(&trained)[..2]);
}

#[test]
fn strict_load_of_a_nested_module_names_the_nested_keys() {
    let block = BasicBlock::new(BlockConfig::new(4, 8).stride(2));
    let identity = BasicBlock::new(BlockConfig::new(8, 8));
    let err = identity
        .load_state_dict(&block.state_dict(), true)
        .unwrap_err()
        .to_string();
    for k in [
        "downsample.0.weight",
        "downsample.1.running_mean",
        "downsample.1.num_batches_tracked",
        "'conv1.weight' is [8, 8, 3, 3]",
    ] {
        assert!(err.contains(k), "{k} not in {err}");
    }
}

// --------------------------------------------------------- damaged files

fn assert_load_error(path: &Path, what: &str) {
    let shown = path.display().to_string();
    let err = StateDict::load(path).expect_err(what);
    assert!(
        err.to_string().contains(&shown),
        "{what}: error does not name the file: {err}"
    );
    let err = small().load(path, true).expect_err(what);
    assert!(
        err.to_string().contains(&shown),
        "{what}: error does not name the file: {err}"
    );
    let err = small().load(path, false).expect_err(what);
    assert!(
        err.to_string().contains(&shown),
        "{what}: error does not name the file: {err}"
    );
}

#[test]
fn damaged_files_give_errors_naming_the_file() {
    let dir = temp_dir("damaged");
    let good = small().state_dict().to_bytes(Dtype::F32);
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // Truncated at many points: inside the length, inside the header, inside the data.
    for cut in [0, 3, 8, 20, good.len() / 2, good.len() - 1] {
        let p = write(&format!("truncated-{cut}.safetensors"), &good[..cut]);
        assert_load_error(&p, &format!("truncated at {cut}"));
        assert!(matches!(StateDict::load(&p), Err(NnError::Format { .. })));
    }

    // Corrupt header: same length, not JSON.
    let mut corrupt = good.clone();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for b in &mut corrupt[8..8 + n] {
        *b = b'#';
    }
    assert_load_error(
        &write("corrupt-header.safetensors", &corrupt),
        "corrupt header",
    );

    // A header claiming more bytes than the file has, and an absurd one.
    let mut long = good.clone();
    long[..8].copy_from_slice(&(good.len() as u64 * 2).to_le_bytes());
    assert_load_error(
        &write("long-header.safetensors", &long),
        "header longer than the file",
    );
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_load_error(
        &write("huge-header.safetensors", &huge),
        "header length u64::MAX",
    );

    // Valid JSON, wrong offsets.
    let bad_offsets = fake_file(
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
        &[0u8; 12],
    );
    assert_load_error(
        &write("bad-offsets.safetensors", &bad_offsets),
        "offsets that do not fit the shape",
    );
    // An unsupported dtype.
    let boolean = fake_file(
        r#"{"w":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#,
        &[1u8; 4],
    );
    let p = write("bool.safetensors", &boolean);
    assert_load_error(&p, "a bool tensor");
    assert!(matches!(StateDict::load(&p), Err(NnError::Dtype { .. })));

    // Random bytes, of several lengths.
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in [1usize, 7, 64, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert_load_error(
            &write(&format!("random-{len}.bin"), &bytes),
            &format!("{len} random bytes"),
        );
    }

    // A missing file.
    let missing = dir.join("does-not-exist.safetensors");
    assert_load_error(&missing, "missing file");
    assert!(matches!(StateDict::load(&missing), Err(NnError::Io { .. })));
    // A directory where a file should be.
    assert_load_error(&dir, "a directory");

    // A good file still loads (the helpers are right).
    let p = write("good.safetensors", &good);
    small().load(&p, true).unwrap();
}

/// A safetensors file from a header and data.
fn fake_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

// ----------------------------------------------------- atomic writes

#[test]
fn save_writes_through_a_temporary_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("model.safetensors");
    let a = trained_model(11);
    a.save(&path, Dtype::F32).unwrap();
    a.save(&path, Dtype::F16).unwrap(); // overwrite in place
    assert_eq!(
        files_in(&dir),
        ["model.safetensors"],
        "no leftover temporary file"
    );
    let good = std::fs::read(&path).unwrap();

    // Into a directory that does not exist: an error naming the path, nothing created.
    let nowhere = dir.join("no-such-dir").join("model.safetensors");
    let err = a.save(&nowhere, Dtype::F32).unwrap_err();
    assert!(
        err.to_string().contains(&nowhere.display().to_string()),
        "{err}"
    );
    assert!(!dir.join("no-such-dir").exists());
    assert_eq!(files_in(&dir), ["model.safetensors"]);

    // A failed save leaves the existing file untouched. A 250-byte name is a
    // valid file, but its sibling temporary file's longer name is not (the
    // 255-byte limit): the save fails before the rename.
    let long = dir.join("m".repeat(250));
    a.save(&long, Dtype::F32)
        .expect_err("the temporary name is too long");
    std::fs::write(&long, b"precious").unwrap();
    let b = trained_model(12);
    let err = b.save(&long, Dtype::F32).unwrap_err();
    assert!(
        err.to_string().contains(&long.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&long).unwrap(),
        b"precious",
        "the existing file is untouched"
    );
    std::fs::remove_file(&long).unwrap();
    assert_eq!(files_in(&dir), ["model.safetensors"], "nothing left behind");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "other files are untouched too"
    );

    // The rename fails (the target is a non-empty directory): the error names
    // it, the directory is untouched and the temporary file is removed.
    let target = dir.join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"keep me").unwrap();
    let err = a.save(&target, Dtype::F32).unwrap_err();
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"keep me");
    assert_eq!(
        files_in(&dir),
        ["model.safetensors", "target"],
        "the temporary file is cleaned up"
    );

    // The good file is still loadable and still the first model (rounded through f16).
    let c = model();
    c.load(&path, true).unwrap();
    assert_eq!(
        c.named_parameters()[0].1.to_vec(),
        a.named_parameters()[0]
            .1
            .to_vec()
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect::<Vec<_>>()
    );
}

#[test]
fn concurrent_saves_to_one_path_never_leave_a_broken_file() {
    // Several threads of one process save different models to the same path:
    // every save succeeds and the file is always one complete model.
    let dir = temp_dir("concurrent");
    let path = dir.join("shared.safetensors");
    let dicts: Vec<StateDict> = (0..4)
        .map(|i| {
            manual_seed(100 + i);
            Linear::new(LinearConfig::new(256, 64)).state_dict()
        })
        .collect();
    std::thread::scope(|s| {
        for sd in &dicts {
            let path = &path;
            s.spawn(move || {
                for _ in 0..10 {
                    sd.save(path, Dtype::F32).unwrap();
                }
            });
        }
    });
    let loaded = StateDict::load(&path).unwrap();
    let w = loaded.get("weight").unwrap().to_vec();
    assert!(
        dicts
            .iter()
            .any(|sd| sd.get("weight").unwrap().to_vec() == w),
        "the file is one of the models"
    );
    assert_eq!(files_in(&dir), ["shared.safetensors"]);
}
