//! Training state that survives what a real run falls into: a checkpoint or
//! weights file that cannot be written is an error naming it with the
//! previous file intact; a process killed (SIGKILL) while saving leaves the
//! old or the new checkpoint, never a torn one; a loss that turns NaN stops
//! training at that step and names the op.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlfs::tools::checkpoint::{Checkpoint, Position};
use dlfs::tools::fit::{Fit, TrainError};
use dlfs::tools::MetricsCsv;
use models::data::{DataLoader, InMemory};
use nn::{Dtype, Flatten, Linear, LinearConfig, Module, Sequential};
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fault_tolerance")
        .join(name);
    // A failed run may have left it read-only.
    restore_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn net(inputs: usize) -> Sequential {
    Sequential::new()
        .add(Flatten::default())
        .add(Linear::new(LinearConfig::new(inputs, 3)))
}

/// A checkpoint of a small network after one Adam step (so the optimizer
/// has buffers), at `position`.
fn checkpoint(inputs: usize, position: Position) -> Checkpoint {
    let model = net(inputs);
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    let loss = model
        .forward(&autograd::Tensor::ones([2, inputs]))
        .cross_entropy(&[0, 1]);
    loss.backward();
    opt.step();
    Checkpoint::capture(position, "test", &model, &opt, None)
}

/// A way to save state into a path, returning the error's message.
type Saver = Box<dyn Fn(&Path) -> String>;

/// Every way this crate saves state, each writing `path`.
fn savers() -> Vec<(&'static str, Saver)> {
    let model = || net(4);
    vec![
        (
            "Checkpoint::save",
            Box::new(|p: &Path| {
                let c = checkpoint(4, Position::start(3));
                c.save(p).unwrap_err().to_string()
            }),
        ),
        (
            "Module::save",
            Box::new(move |p: &Path| model().save(p, Dtype::F32).unwrap_err().to_string()),
        ),
        (
            "Optimizer::save",
            Box::new(|p: &Path| {
                let m = net(4);
                let opt = Sgd::new(m.parameters(), SgdConfig::default());
                opt.save(p).unwrap_err().to_string()
            }),
        ),
        (
            "MetricsCsv::push",
            Box::new(|p: &Path| {
                let mut m = MetricsCsv::new(p, &["epoch"]);
                m.push(&[1.0]).unwrap_err().to_string()
            }),
        ),
    ]
}

/// Whether a file can be created in `dir`.
fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// A directory in which nothing can be created, holding `file` with
/// `contents`; and how it was made so. Permission bits first; root ignores
/// them, so then the immutable attribute (`chattr +i`, on ext4, xfs, btrfs);
/// where neither holds, `/proc` (no file can be created in it, by root
/// either), with one of its files as the "previous file".
fn read_only_dir(name: &str, file: &str, contents: &[u8]) -> (PathBuf, PathBuf, &'static str) {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch(name);
    std::fs::write(dir.join(file), contents).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if !writable(&dir) {
        return (dir.clone(), dir.join(file), "chmod 555");
    }
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if immutable && !writable(&dir) {
        return (dir.clone(), dir.join(file), "chattr +i");
    }
    restore_dir(&dir);
    let proc = PathBuf::from("/proc");
    assert!(!writable(&proc), "no read-only directory can be made here");
    (proc.clone(), proc.join("version"), "/proc")
}

fn restore_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = Command::new("chattr").arg("-i").arg(dir).status();
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

#[test]
fn saving_into_a_read_only_directory_is_an_error_naming_the_path_and_keeps_the_old_file() {
    for (what, save) in savers() {
        let old = b"the previous checkpoint".to_vec();
        let (dir, path, how) = read_only_dir("read_only", "state.safetensors", &old);
        let before = std::fs::read(&path).unwrap();
        let err = save(&path);
        let after = std::fs::read(&path).unwrap();
        if dir != Path::new("/proc") {
            restore_dir(&dir);
        }
        eprintln!("{what} into a directory made read-only by {how}: {err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{what}: the error should name {}: {err}",
            path.display()
        );
        assert_eq!(before, after, "{what}: the previous file changed");
        if how != "/proc" {
            assert_eq!(after, old);
            let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert_eq!(names.len(), 1, "{what}: files left behind: {names:?}");
        }
    }
}

#[test]
fn saving_onto_a_directory_is_an_error_naming_the_path_and_keeps_it() {
    for (what, save) in savers() {
        let dir = scratch("dir_as_path");
        let path = dir.join("checkpoint.safetensors");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"kept").unwrap();
        let err = save(&path);
        assert!(
            err.contains(&path.display().to_string()),
            "{what}: the error should name {}: {err}",
            path.display()
        );
        assert!(path.is_dir(), "{what}: the directory was replaced");
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"kept");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{what}: a temporary file was left: {left:?}");
    }
}

/// The child of [`a_checkpoint_killed_mid_write_is_the_old_or_the_new_one`]:
/// saves two different checkpoints in turn, forever, into the directory
/// named by `DLFS_SAVE_LOOP`. Does nothing in a normal test run.
/// Inputs of the network saved by [`save_loop_child`].
const INPUTS: usize = 100_000;

#[test]
#[ignore = "run as a child process by the SIGKILL test"]
fn save_loop_child() {
    let Some(dir) = std::env::var_os("DLFS_SAVE_LOOP") else {
        return;
    };
    let dir = PathBuf::from(dir);
    // Large enough (about 4 MB with the optimizer's moments) that a kill
    // often lands inside a write.
    let states = [
        checkpoint(INPUTS, Position::start(1)),
        checkpoint(INPUTS, Position::start(2)),
    ];
    let path = dir.join("checkpoint.safetensors");
    states[0].save(&path).unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    for i in 0.. {
        states[i % 2].save(&path).unwrap();
    }
}

#[test]
fn a_checkpoint_killed_mid_write_is_the_old_or_the_new_one() {
    let exe = std::env::current_exe().unwrap();
    let mut epochs_seen = [0usize; 3];
    for round in 0..12u64 {
        let dir = scratch(&format!("sigkill_{round}"));
        let mut child = Command::new(&exe)
            .args(["--exact", "save_loop_child", "--ignored", "--nocapture"])
            .env("DLFS_SAVE_LOOP", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !dir.join("ready").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the child never saved"
            );
            assert!(child.try_wait().unwrap().is_none(), "the child exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A different moment in the save loop each round.
        std::thread::sleep(Duration::from_millis(20 + round * 37 % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let path = dir.join("checkpoint.safetensors");
        let c = Checkpoint::load(&path).unwrap_or_else(|e| {
            let len = std::fs::metadata(&path).map(|m| m.len());
            panic!("round {round}: a torn checkpoint ({len:?} bytes): {e}")
        });
        epochs_seen[c.position.epoch] += 1;
        let model = net(INPUTS);
        let mut opt = Adam::new(model.parameters(), AdamConfig::default());
        c.restore(&model, &mut opt, None).unwrap();
    }
    eprintln!("checkpoints found after SIGKILL, by epoch: {epochs_seen:?}");
}

/// Four 1x2x2 images whose values grow without bound under plain SGD with
/// a step far too large: the loss overflows within a few steps.
fn diverging() -> (Sequential, DataLoader) {
    let values: Vec<f32> = (0..16).map(|i| (i % 5) as f32 + 1.0).collect();
    let data = Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 1, 2, 0]).unwrap());
    (net(4), DataLoader::new(data, 1))
}

#[test]
fn a_diverging_learning_rate_stops_at_the_step_and_names_the_op() {
    let (model, loader) = diverging();
    let mut opt = Sgd::new(
        model.parameters(),
        SgdConfig {
            lr: 1e37,
            ..Default::default()
        },
    );
    let mut fit = Fit::new(&model, &mut opt, &loader, 5).seed(1);
    let mut failure = None;
    for epoch in 1..=5 {
        match fit.try_epoch(&Position::start(epoch)) {
            Ok(_) => continue,
            Err(e) => {
                failure = Some((epoch, e));
                break;
            }
        }
    }
    let (epoch, err) = failure.expect("a learning rate of 1e37 never gave a NaN loss");
    let TrainError::NonFinite {
        epoch: e,
        step,
        ref cause,
        ..
    } = err
    else {
        panic!("not a non-finite loss: {err}");
    };
    let text = err.to_string();
    eprintln!("{text}");
    assert_eq!(e, epoch);
    assert!((1..=4).contains(&step), "{text}");
    assert!(
        text.contains(&format!("epoch {epoch}, step {step} of 4")),
        "{text}"
    );
    assert!(
        cause.contains("anomaly") && cause.contains('\''),
        "the cause should name the op: {cause}"
    );
}
