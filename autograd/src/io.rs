//! File output shared by the crates that save state (model weights, optimizer
//! and scheduler state, checkpoint markers).

use std::fs::File;
use std::io::{Error, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` so that `path` holds either its old contents or
/// all of the new ones, never a part: a crash or a full disk mid-save leaves
/// the previous file in place.
///
/// The bytes go to a temporary file in the same directory (a rename is
/// atomic only within one file system), which is synced to disk and then
/// renamed over `path`; on Unix the directory is synced too, so that the
/// rename itself survives a power loss. On failure the temporary file is
/// removed. The error keeps the kind of the underlying one and its message
/// names the step and the file that failed (the temporary, or the directory).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("write-atomic-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("epoch.txt");
/// autograd::io::write_atomic(&path, b"3").unwrap();
/// autograd::io::write_atomic(&path, b"4").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"4");
/// assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary left behind");
/// let err = autograd::io::write_atomic(&dir.join("missing").join("x"), b"").unwrap_err();
/// assert!(err.to_string().contains("missing"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    // The process id and a counter: concurrent saves to one path (threads,
    // processes) never share, and clobber, one temporary file.
    let n = SAVES.fetch_add(1, Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| named(e, "cannot create", &tmp))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| named(e, "cannot write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(|e| named(e, "cannot rename into place", &tmp))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Syncs the directory entry of a rename (Unix; elsewhere a no-op).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let synced = File::open(dir).and_then(|d| d.sync_all());
        match synced {
            // Some file systems cannot sync a directory; the rename is done regardless.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(e) => Err(named(e, "cannot sync the directory", dir)),
            Ok(()) => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The error `e`, its message prefixed with what failed on which file.
fn named(e: Error, what: &str, path: &Path) -> Error {
    Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}
