//! Replacing the database file without ever leaving a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The temporary file mosquitto uses: `<file>.new` in the same directory.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically, as mosquitto does: remove a stale
/// `<file>.new`, create it with mode 0600, write, fsync, rename over `path`,
/// then fsync the directory so the rename itself is durable.
///
/// On any failure before the rename, `path` is untouched and the temporary
/// file is removed. (A failure of the final directory fsync is reported, but
/// the new file is then already in place.)
pub fn save_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut created = false;
    if let Err(e) = write_and_rename(&tmp, path, bytes, &mut created) {
        // Remove the temporary file only if we created it (create_new: a
        // file that appeared meanwhile is someone else's).
        if created {
            let _ = fs::remove_file(&tmp);
        }
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn write_and_rename(tmp: &Path, path: &Path, bytes: &[u8], created: &mut bool) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    *created = true;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, path)
}
