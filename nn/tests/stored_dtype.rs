//! Tensors that keep their own dtype in a file: integer buffers
//! (`num_batches_tracked` as int64, whatever the file's float dtype), and
//! reading any tensor of a safetensors file exactly with `SafetensorsFile`.

use std::path::PathBuf;

use autograd::Tensor;
use nn::{
    BatchNorm2d, BatchNormConfig, Dtype, FileDtype, Hooks, Module, NnError, SafetensorsFile,
    StateDict,
};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};

/// A path under the temp dir unique to this process and `tag`, removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(tag: &str) -> TempFile {
    TempFile(std::env::temp_dir().join(format!(
        "nn-stored-dtype-{}-{tag}.safetensors",
        std::process::id()
    )))
}

/// A batch count that f16 and bf16 cannot hold exactly: it survives only
/// if it is stored as an integer.
const COUNT: f32 = 123_457.0;

fn batch_norm_with_count() -> BatchNorm2d {
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    bn.num_batches_tracked
        .set_data(Tensor::scalar(COUNT).array());
    bn.running_mean
        .set_data(Tensor::from_vec(vec![0.5f32, -1.25, 3.0], [3]).array());
    bn
}

#[test]
fn batch_norm_count_is_saved_as_int64_in_every_float_dtype() {
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let file = temp_file(&format!("bn-{dtype:?}"));
        let bn = batch_norm_with_count();
        bn.save(&file.0, dtype).unwrap();

        let bytes = std::fs::read(&file.0).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let nbt = st.tensor("num_batches_tracked").unwrap();
        assert_eq!(nbt.dtype(), StDtype::I64, "{dtype:?}");
        assert_eq!(nbt.shape(), &[] as &[usize]);
        assert_eq!(
            i64::from_le_bytes(nbt.data().try_into().unwrap()),
            COUNT as i64
        );
        let floats = match dtype {
            Dtype::F32 => StDtype::F32,
            Dtype::F16 => StDtype::F16,
            Dtype::BF16 => StDtype::BF16,
        };
        assert_eq!(st.tensor("running_mean").unwrap().dtype(), floats);

        // Loading the int64 entry restores the count exactly.
        let back = BatchNorm2d::new(BatchNormConfig::new(3));
        back.load(&file.0, true).unwrap();
        assert_eq!(back.num_batches_tracked.to_vec(), vec![COUNT], "{dtype:?}");
        assert_eq!(back.running_mean.to_vec(), vec![0.5, -1.25, 3.0]);
    }
}

#[test]
fn a_loaded_integer_entry_stays_integer_when_saved_again() {
    // As when a torchvision file is loaded, edited and saved in f16.
    let first = temp_file("resave-a");
    let second = temp_file("resave-b");
    batch_norm_with_count().save(&first.0, Dtype::F32).unwrap();
    let sd = StateDict::load(&first.0).unwrap();
    assert_eq!(sd.stored_as("num_batches_tracked"), Some(FileDtype::I64));
    assert_eq!(sd.stored_as("running_mean"), None);
    sd.save(&second.0, Dtype::F16).unwrap();
    let file = SafetensorsFile::open(&second.0).unwrap();
    assert_eq!(file.dtype("num_batches_tracked").unwrap(), FileDtype::I64);
    assert_eq!(
        file.get_i64("num_batches_tracked")
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![COUNT as i64]
    );
    assert_eq!(file.dtype("running_mean").unwrap(), FileDtype::F16);

    // A tensor inserted without a dtype follows the file's float dtype,
    // whatever its name.
    let mut plain = StateDict::default();
    plain.insert("num_batches_tracked".into(), Tensor::scalar(3.0));
    assert_eq!(plain.stored_as("num_batches_tracked"), None);
    let st_bytes = plain.to_bytes(Dtype::F32);
    let st = SafeTensors::deserialize(&st_bytes).unwrap();
    assert_eq!(
        st.tensor("num_batches_tracked").unwrap().dtype(),
        StDtype::F32
    );
}

#[derive(Module)]
struct Counter {
    #[param]
    weight: Tensor,
    #[buffer(dtype = "i32")]
    steps: Tensor,
    #[buffer(name = "mask", dtype = "u8")]
    keep: Option<Tensor>,
    hooks: Hooks,
}

impl Module for Counter {
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        x * &self.weight
    }
}

#[test]
fn derive_dtype_attribute_sets_the_stored_dtype() {
    let m = Counter {
        weight: Tensor::from_vec(vec![0.25f32, 2.5], [2]),
        steps: Tensor::scalar(-7.0),
        keep: Some(Tensor::from_vec(vec![1.0f32, 0.0, 255.0], [3])),
        hooks: Hooks::new(),
    };
    let stored: Vec<(String, Option<FileDtype>)> = m
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.stored_as))
        .collect();
    assert_eq!(
        stored,
        [
            ("weight".to_string(), None),
            ("steps".to_string(), Some(FileDtype::I32)),
            ("mask".to_string(), Some(FileDtype::U8)),
        ]
    );
    let file = temp_file("derive");
    m.save(&file.0, Dtype::BF16).unwrap();
    let f = SafetensorsFile::open(&file.0).unwrap();
    assert_eq!(f.dtype("weight").unwrap(), FileDtype::BF16);
    assert_eq!(f.dtype("steps").unwrap(), FileDtype::I32);
    assert_eq!(
        f.get_i64("steps").unwrap().into_raw_vec_and_offset().0,
        [-7]
    );
    assert_eq!(
        f.get_i64("mask").unwrap().into_raw_vec_and_offset().0,
        [1, 0, 255]
    );
}

// ------------------------------------------------- SafetensorsFile

fn le<const N: usize, V: Copy>(values: &[V], bytes: fn(V) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| bytes(v)).collect()
}

/// A file with f64, i64, i32, u8, bool and u64 tensors, written with the
/// safetensors crate.
fn mixed_file(tag: &str) -> TempFile {
    let f64s = [0.1f64, -1e-300, 1.0 + f64::EPSILON, f64::MAX, 3.5, -0.0];
    let i64s = [(1i64 << 60) + 1, -5, i64::MIN, i64::MAX];
    let i32s = [i32::MIN, 7];
    let u8s = [0u8, 200, 255];
    let bools = [1u8, 0];
    let u64s = [u64::MAX];
    let data = [
        (
            "stats",
            StDtype::F64,
            vec![2, 3],
            le(&f64s, f64::to_le_bytes),
        ),
        ("ids", StDtype::I64, vec![4], le(&i64s, i64::to_le_bytes)),
        (
            "small",
            StDtype::I32,
            vec![2, 1],
            le(&i32s, i32::to_le_bytes),
        ),
        ("pixels", StDtype::U8, vec![3], u8s.to_vec()),
        ("mask", StDtype::BOOL, vec![2], bools.to_vec()),
        ("big", StDtype::U64, vec![1], le(&u64s, u64::to_le_bytes)),
    ];
    let views: Vec<(&str, TensorView<'_>)> = data
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let file = temp_file(tag);
    std::fs::write(&file.0, safetensors::serialize(views, None).unwrap()).unwrap();
    file
}

#[test]
fn reads_f64_and_integer_tensors_exactly() {
    let file = mixed_file("mixed");
    let f = SafetensorsFile::open(&file.0).unwrap();
    // The writer orders the data (by alignment, then name); `names` follows it.
    let mut names = f.names().to_vec();
    names.sort();
    assert_eq!(names, ["big", "ids", "mask", "pixels", "small", "stats"]);
    assert_eq!(f.dtype("stats").unwrap(), FileDtype::F64);
    assert_eq!(f.shape("stats").unwrap(), [2, 3]);
    let stats = f.get_f64("stats").unwrap();
    assert_eq!(stats.shape(), [2, 3]);
    let want = [0.1f64, -1e-300, 1.0 + f64::EPSILON, f64::MAX, 3.5, -0.0];
    let got = stats.into_raw_vec_and_offset().0;
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "f64 values bit for bit"
    );

    assert_eq!(f.dtype("ids").unwrap(), FileDtype::I64);
    assert_eq!(
        f.get_i64("ids").unwrap().into_raw_vec_and_offset().0,
        [(1i64 << 60) + 1, -5, i64::MIN, i64::MAX]
    );
    let small = f.get_i64("small").unwrap();
    assert_eq!(small.shape(), [2, 1]);
    assert_eq!(small.into_raw_vec_and_offset().0, [i32::MIN as i64, 7]);
    assert_eq!(
        f.get_i64("pixels").unwrap().into_raw_vec_and_offset().0,
        [0, 200, 255]
    );
    assert_eq!(
        f.get_f64("pixels").unwrap().into_raw_vec_and_offset().0,
        [0.0, 200.0, 255.0]
    );
    assert_eq!(f.dtype("mask").unwrap(), FileDtype::Bool);
    assert_eq!(
        f.get_i64("mask").unwrap().into_raw_vec_and_offset().0,
        [1, 0]
    );
    assert_eq!(
        f.get_f32("stats").unwrap().into_raw_vec_and_offset().0[0],
        0.1f32
    );
}

#[test]
fn errors_name_the_file_and_the_tensor() {
    let file = mixed_file("errors");
    let shown = file.0.display().to_string();
    let f = SafetensorsFile::open(&file.0).unwrap();
    let check = |err: NnError, tensor: &str| {
        let msg = err.to_string();
        assert!(msg.contains(&shown), "no file in: {msg}");
        assert!(msg.contains(&format!("'{tensor}'")), "no tensor in: {msg}");
    };

    let err = f.get_f64("nope").unwrap_err();
    assert!(matches!(err, NnError::NoSuchTensor { .. }));
    check(err, "nope");
    let err = f.shape("nope").unwrap_err();
    check(err, "nope");

    // u64 is not read (its values do not all fit an i64); the error says so.
    let err = f.get_i64("big").unwrap_err();
    assert!(matches!(err, NnError::Dtype { .. }), "{err}");
    assert!(err.to_string().contains("U64"), "{err}");
    check(err, "big");
    check(f.dtype("big").unwrap_err(), "big");
    // The shape of a tensor of an unread dtype is still known.
    assert_eq!(f.shape("big").unwrap(), [1]);

    // Floats are not silently truncated to integers.
    let err = f.get_i64("stats").unwrap_err();
    assert!(matches!(err, NnError::NotInteger { .. }), "{err}");
    check(err, "stats");

    // A bool tensor is readable here but is no weight for a state dict.
    assert!(matches!(
        StateDict::load(&file.0),
        Err(NnError::Dtype { .. })
    ));
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let file = mixed_file("damaged");
    let good = std::fs::read(&file.0).unwrap();
    let path = file.0.clone();
    // Every truncation and a flipped byte at every header position.
    for len in 0..good.len() {
        let r = SafetensorsFile::from_bytes(good[..len].to_vec(), &path);
        let err = r.expect_err("a truncated file");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize + 8;
    for i in 0..header_len {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        // Either an error or a file whose every tensor reads without panicking.
        if let Ok(f) = SafetensorsFile::from_bytes(bad, &path) {
            for name in f.names() {
                let _ = f.get_f64(name);
                let _ = f.get_i64(name);
            }
        }
    }
    let err =
        SafetensorsFile::open(&std::env::temp_dir().join("no-such-file.safetensors")).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }));
}
