//! `-d`: run in the background, as mosquitto's `mosquitto__daemonise`:
//! fork, the parent exits 0, the child starts a new session and points
//! stdin/stdout/stderr at `/dev/null`. No chdir, no second fork, no umask
//! change. Called after the privilege drop and before the pid file is
//! written, so the pid file holds the daemon's pid.
#![allow(unsafe_code)]

use std::fmt;
use std::io::Write;
use std::os::fd::AsRawFd;

use crate::sys::privileges::strerror;

/// Why daemonising failed; mosquitto logs the text and exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonError {
    /// fork failed (errno).
    Fork(i32),
    /// setsid failed in the child (errno).
    Setsid(i32),
    /// Redirecting the named stream to /dev/null failed (errno).
    Redirect(&'static str, i32),
}

impl DaemonError {
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Fork(e) => write!(f, "Error in fork: {}", strerror(*e)),
            DaemonError::Setsid(e) => write!(f, "Error in setsid: {}", strerror(*e)),
            DaemonError::Redirect(stream, e) => {
                write!(f, "Error whilst daemonising ({stream}): {}", strerror(*e))
            }
        }
    }
}

impl std::error::Error for DaemonError {}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Forks into the background. Returns only in the child (the daemon); the
/// parent exits with status 0. On error the caller logs it and exits with
/// [`DaemonError::exit_code`] — in the child that is what mosquitto does
/// too (the parent has already exited 0).
///
/// Must be called while the process is single-threaded: only the calling
/// thread survives `fork`.
pub fn daemonise() -> Result<(), DaemonError> {
    // Buffered output must not be written twice (parent and child).
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork has no memory-safety preconditions; the documented
    // requirement that the process be single-threaded at this point makes
    // the child's later allocations safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(DaemonError::Fork(last_errno()));
    }
    if pid > 0 {
        std::process::exit(0);
    }
    // SAFETY: setsid has no preconditions; failure is reported via -1.
    if unsafe { libc::setsid() } < 0 {
        return Err(DaemonError::Setsid(last_errno()));
    }
    redirect_std_to_dev_null()
}

/// Points fds 0, 1 and 2 at `/dev/null` (stdin read-only, the others
/// write-only, like the three `freopen` calls).
fn redirect_std_to_dev_null() -> Result<(), DaemonError> {
    let streams: [(&'static str, libc::c_int, bool); 3] = [
        ("stdin", libc::STDIN_FILENO, false),
        ("stdout", libc::STDOUT_FILENO, true),
        ("stderr", libc::STDERR_FILENO, true),
    ];
    for (name, fd, write) in streams {
        let null = std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map_err(|e| DaemonError::Redirect(name, e.raw_os_error().unwrap_or(0)))?;
        // SAFETY: both are valid descriptors; dup2 atomically replaces fd,
        // which std's stdin/stdout/stderr keep using by number. `null` is
        // closed on drop, leaving the duplicate.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(DaemonError::Redirect(name, last_errno()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "CULEX_TEST_DAEMON_CHILD";

    #[test]
    fn error_texts() {
        assert_eq!(
            DaemonError::Fork(libc::EAGAIN).to_string(),
            "Error in fork: Resource temporarily unavailable"
        );
        assert_eq!(
            DaemonError::Setsid(libc::EPERM).to_string(),
            "Error in setsid: Operation not permitted"
        );
        assert_eq!(DaemonError::Redirect("stdin", libc::ENOENT).exit_code(), 1);
    }

    /// Child half of `daemonise_in_child`; a no-op in a normal run. The
    /// daemon writes `<pid> <sid> <fd0> <fd1> <fd2> <cwd>` to a file.
    #[test]
    fn daemon_child_helper() {
        let Some(out) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let cwd_before = std::env::current_dir().unwrap();
        if daemonise().is_err() {
            // SAFETY: _exit ends the process at once; nothing to clean up.
            unsafe { libc::_exit(9) };
        }
        // SAFETY: getpid/getsid have no preconditions.
        let (pid, sid) = unsafe { (libc::getpid(), libc::getsid(0)) };
        let link = |fd: i32| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let cwd_same = std::env::current_dir().unwrap() == cwd_before;
        let report = format!("{pid} {sid} {} {} {} {cwd_same}", link(0), link(1), link(2));
        let tmp = Path::new(&out).with_extension("tmp");
        std::fs::write(&tmp, report).unwrap();
        std::fs::rename(&tmp, &out).unwrap();
        // SAFETY: _exit skips the test harness's output in the daemon.
        unsafe { libc::_exit(0) };
    }

    #[test]
    fn daemonise_in_child() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([
                "sys::daemon::tests::daemon_child_helper",
                "--exact",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, &out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let parent_pid = child.id().to_string();
        let child = child.wait_with_output().unwrap();
        // The parent exits 0 at once; output() returning at all shows the
        // daemon let go of the pipes (stdout/stderr now /dev/null).
        assert_eq!(child.status.code(), Some(0));
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = loop {
            if let Ok(r) = std::fs::read_to_string(&out) {
                break r;
            }
            assert!(Instant::now() < deadline, "daemon wrote no report");
            std::thread::sleep(Duration::from_millis(20));
        };
        let f: Vec<&str> = report.split(' ').collect();
        assert_eq!(f.len(), 6, "{report}");
        assert_eq!(f[0], f[1], "daemon leads its own session");
        assert_ne!(f[0], parent_pid, "the daemon is a forked child");
        assert_eq!(&f[2..5], ["/dev/null", "/dev/null", "/dev/null"]);
        assert_eq!(f[5], "true", "no chdir");
    }
}
