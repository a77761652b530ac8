//! Files written whole or not at all: a write goes to a temporary file in the same directory,
//! is flushed to disk, then renamed over the target, so a crash or a full disk mid-write
//! leaves the previous file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically (same-directory temporary, fsync, rename, fsync of
/// the directory). On error the temporary is removed and `path` is untouched.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_beside(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable once the directory entry is; not every filesystem lets a
    // directory be opened for that, and the data itself is already safe, so this is best effort.
    if let Ok(dir) = std::fs::File::open(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// `.<name>.<pid>.tmp` beside `path`: hidden, and one per process so concurrent savers in
/// different processes never write the same temporary.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
