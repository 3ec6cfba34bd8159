//! The `pid_file`: written after the privilege drop and `-d` (so it holds
//! the daemon's pid and belongs to the unprivileged user), removed at clean
//! exit. mosquitto writes `fprintf("%d", getpid())` into a file opened with
//! `fopen(path, "wt")`: decimal, no newline, truncating an existing file,
//! mode 0666 minus the umask.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A written pid file. Dropping it leaves the file in place (as mosquitto
/// does on error exits); call [`PidFile::remove`] at clean shutdown.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// The pid file could not be written: exit status 1.
#[derive(Debug)]
pub struct PidFileError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl PidFileError {
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl fmt::Display for PidFileError {
    /// mosquitto's text; it does not say why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Error: Unable to write pid file.")
    }
}

impl std::error::Error for PidFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl PidFile {
    /// Writes this process's pid to `path`.
    pub fn write(path: &Path) -> Result<PidFile, PidFileError> {
        PidFile::write_pid(path, std::process::id())
    }

    /// Writes `pid` to `path` (decimal, no newline).
    pub fn write_pid(path: &Path, pid: u32) -> Result<PidFile, PidFileError> {
        let err = |source| PidFileError {
            path: path.to_path_buf(),
            source,
        };
        // O_NONBLOCK: a FIFO without a reader fails instead of hanging
        // start-up; it changes nothing for a regular file.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(err)?;
        // mosquitto's fopen wrapper refuses anything but a regular file.
        if !file.metadata().map_err(err)?.is_file() {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        file.write_all(pid.to_string().as_bytes()).map_err(err)?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file; errors are ignored, as mosquitto's `(void)remove()`.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mosquitto.pid");
        let pid = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        assert_eq!(pid.path(), path);
        pid.remove();
        assert!(!path.exists());
    }

    #[test]
    fn truncates_existing_file_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pid");
        std::fs::write(&path, "123456789\n").unwrap();
        let pid = PidFile::write_pid(&path, 42).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"42");
        drop(pid);
        // Dropping does not remove.
        assert!(path.exists());
    }

    #[test]
    fn unwritable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = PidFile::write(&dir.path().join("missing/dir/x.pid")).unwrap_err();
        assert_eq!(err.to_string(), "Error: Unable to write pid file.");
        assert_eq!(err.exit_code(), 1);
        // A directory is not a pid file.
        assert!(PidFile::write(dir.path()).is_err());
        // Nor is a device.
        assert!(PidFile::write(Path::new("/dev/null")).is_err());
    }

    #[test]
    fn remove_of_vanished_file_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.pid");
        let pid = PidFile::write(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        pid.remove();
    }
}
