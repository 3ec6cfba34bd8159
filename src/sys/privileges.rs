//! Dropping root privileges the way mosquitto 2.0 does (`drop_privileges`
//! in its `src/mosquitto.c`), with the user looked up in `/etc/passwd`
//! directly (see `sys::users`).
//!
//! Rules, in mosquitto's order:
//! 1. `SNAP_NAME=mosquitto` in the environment: do nothing.
//! 2. Effective uid not 0: do nothing.
//! 3. `user root`: stay root.
//! 4. User not found: for the default `mosquitto`, log
//!    `Warning: Unable to drop privileges to 'mosquitto' because this user
//!    does not exist. Trying 'nobody' instead.` (at *error* level, as
//!    mosquitto does) and use `nobody`; no `nobody` either →
//!    `Error: Unable to drop privileges to 'nobody'.`. Any other missing
//!    user → `Error: Unable to drop privileges to '<u>' because this user
//!    does not exist.`. All failures exit 1.
//! 5. `initgroups(<configured name>, gid)` — note mosquitto passes the
//!    *configured* name even after falling back to `nobody` — then `setgid`,
//!    then `setuid`. culex builds the group list itself and calls
//!    `setgroups`.
//! 6. If the effective uid or gid is still 0: `Warning: Mosquitto should not
//!    be run as root/administrator.`
//!
//! culex adds a check mosquitto lacks: after the switch the real and
//! effective ids must be the target ones and `setuid(0)` must fail.
//!
//! The privileged part is split into a pure decision ([`plan`]) and the
//! system calls ([`apply`]), so the rules are unit-tested without touching
//! the test process's credentials.
#![allow(unsafe_code)]

use std::fmt;
use std::path::Path;

use crate::logging::LogType;
use crate::sys::users::UserDb;

/// mosquitto's default for `user`.
pub const DEFAULT_USER: &str = "mosquitto";

/// Text of the warning mosquitto prints when it keeps (effective) root.
pub const ROOT_WARNING: &str = "Warning: Mosquitto should not be run as root/administrator.";

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `strerror(errno)` text without Rust's "(os error N)" suffix, as
/// mosquitto prints it.
pub(crate) fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is a local array whose length is passed along; the libc
    // crate binds the XSI-compliant strerror_r (returns int, fills buf).
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The identity to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name of the account whose uid/gid are used (`nobody` after a
    /// fall-back).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The full group list for `setgroups`: primary gid first, then the
    /// groups listing the *configured* user name (what `initgroups` gives).
    pub groups: Vec<u32>,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Running as a snap named mosquitto: nothing to do.
    Snap,
    /// Not started as (effective) root: nothing to do.
    NotRoot,
    /// `user root`: stay root.
    KeepRoot,
    /// Switch to `target`.
    Switch {
        target: Target,
        fell_back_to_nobody: bool,
    },
}

/// Why dropping privileges failed. Every case exits with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivErrorKind {
    /// A configured user other than `mosquitto` is not in the passwd file.
    NoSuchUser(String),
    /// `mosquitto` and `nobody` are both missing.
    NoNobody,
    /// setgroups failed (errno).
    SetGroups(i32),
    /// setgid failed (errno).
    SetGid(i32),
    /// setuid failed (errno).
    SetUid(i32),
    /// The calls returned success but the process still has (or can
    /// regain) other ids than the target's. culex-only check.
    NotDropped(String),
}

/// A failed privilege drop. `Display` gives the final error line;
/// [`PrivError::log_lines`] gives every line to log, in order (the
/// `nobody` fall-back warning can precede the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivError {
    pub kind: PrivErrorKind,
    pub fell_back_to_nobody: bool,
}

impl PrivError {
    /// mosquitto 2.0 returns 1 from main for every failure here.
    pub fn exit_code(&self) -> i32 {
        1
    }

    /// Lines to log (to stderr: logging is not initialised yet), in order.
    pub fn log_lines(&self) -> Vec<(LogType, String)> {
        let mut lines = Vec::new();
        if self.fell_back_to_nobody {
            lines.push((LogType::Error, fallback_warning()));
        }
        lines.push((LogType::Error, self.to_string()));
        lines
    }
}

impl fmt::Display for PrivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PrivErrorKind::NoSuchUser(u) => write!(
                f,
                "Error: Unable to drop privileges to '{u}' because this user does not exist."
            ),
            PrivErrorKind::NoNobody => write!(f, "Error: Unable to drop privileges to 'nobody'."),
            PrivErrorKind::SetGroups(e) => write!(
                f,
                "Error setting groups whilst dropping privileges: {}.",
                strerror(*e)
            ),
            PrivErrorKind::SetGid(e) => write!(
                f,
                "Error setting gid whilst dropping privileges: {}.",
                strerror(*e)
            ),
            PrivErrorKind::SetUid(e) => write!(
                f,
                "Error setting uid whilst dropping privileges: {}.",
                strerror(*e)
            ),
            PrivErrorKind::NotDropped(why) => {
                write!(f, "Error: Unable to drop privileges: {why}.")
            }
        }
    }
}

impl std::error::Error for PrivError {}

fn fallback_warning() -> String {
    format!(
        "Warning: Unable to drop privileges to '{DEFAULT_USER}' because this user does not exist. Trying 'nobody' instead."
    )
}

/// What happened; the caller logs [`PrivilegeOutcome::log_lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeOutcome {
    /// The identity switched to, if any.
    pub switched_to: Option<Target>,
    /// `mosquitto` was missing and `nobody` was used.
    pub fell_back_to_nobody: bool,
    /// Started as root and the effective uid or gid is still 0 (`user
    /// root`, or a target account with uid/gid 0).
    pub still_root: bool,
}

impl PrivilegeOutcome {
    /// Lines to log, in mosquitto's order and at its levels.
    pub fn log_lines(&self) -> Vec<(LogType, String)> {
        let mut lines = Vec::new();
        if self.fell_back_to_nobody {
            lines.push((LogType::Error, fallback_warning()));
        }
        if self.still_root {
            lines.push((LogType::Warning, ROOT_WARNING.to_string()));
        }
        lines
    }
}

/// Decides what to do, without side effects. `snap` is whether
/// `SNAP_NAME` equals `mosquitto`.
pub fn plan(user: &str, db: &UserDb, euid: u32, snap: bool) -> Result<Plan, PrivError> {
    if snap {
        return Ok(Plan::Snap);
    }
    if euid != 0 {
        return Ok(Plan::NotRoot);
    }
    if user == "root" {
        return Ok(Plan::KeepRoot);
    }
    let (pw, fell_back_to_nobody) = match db.user(user) {
        Some(pw) => (pw, false),
        None if user == DEFAULT_USER => match db.user("nobody") {
            Some(pw) => (pw, true),
            None => {
                return Err(PrivError {
                    kind: PrivErrorKind::NoNobody,
                    fell_back_to_nobody: true,
                });
            }
        },
        None => {
            return Err(PrivError {
                kind: PrivErrorKind::NoSuchUser(user.to_string()),
                fell_back_to_nobody: false,
            });
        }
    };
    Ok(Plan::Switch {
        target: Target {
            name: pw.name.clone(),
            uid: pw.uid,
            gid: pw.gid,
            // initgroups(config->user, pw_gid): the configured name.
            groups: db.initgroups_list(user, pw.gid),
        },
        fell_back_to_nobody,
    })
}

/// Performs the switch: setgroups, setgid, setuid, then verifies it.
/// Irreversible on success. Must run before any thread that relies on its
/// own credentials is started (libc propagates set*id to all threads).
pub fn apply(target: &Target) -> Result<(), PrivErrorKind> {
    let groups: Vec<libc::gid_t> = target.groups.iter().map(|&g| g as libc::gid_t).collect();
    // SAFETY: the pointer and length describe a live Vec of gid_t.
    if unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) } == -1 {
        return Err(PrivErrorKind::SetGroups(last_errno()));
    }
    // SAFETY: setgid takes a plain integer; failure is reported via -1.
    if unsafe { libc::setgid(target.gid as libc::gid_t) } == -1 {
        return Err(PrivErrorKind::SetGid(last_errno()));
    }
    // SAFETY: setuid takes a plain integer; failure is reported via -1.
    if unsafe { libc::setuid(target.uid as libc::uid_t) } == -1 {
        return Err(PrivErrorKind::SetUid(last_errno()));
    }
    verify(target)
}

/// Checks the real and effective ids, and that root cannot be regained.
fn verify(target: &Target) -> Result<(), PrivErrorKind> {
    // SAFETY: the get*id calls have no preconditions and cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if uid != target.uid || euid != target.uid {
        return Err(PrivErrorKind::NotDropped(format!(
            "uid is {uid}/{euid}, expected {}",
            target.uid
        )));
    }
    if gid != target.gid || egid != target.gid {
        return Err(PrivErrorKind::NotDropped(format!(
            "gid is {gid}/{egid}, expected {}",
            target.gid
        )));
    }
    if target.uid != 0 {
        // SAFETY: setuid takes a plain integer; it must fail here.
        if unsafe { libc::setuid(0) } != -1 {
            return Err(PrivErrorKind::NotDropped("root could be regained".into()));
        }
    }
    Ok(())
}

/// mosquitto's `drop_privileges`: when running as root, switch to `user`
/// as found in `<root>/etc/passwd` (+ `<root>/etc/group`). Pass
/// `Path::new("/")` in production.
pub fn drop_privileges(user: &str, root: &Path) -> Result<PrivilegeOutcome, PrivError> {
    let snap = std::env::var_os("SNAP_NAME").is_some_and(|s| s == "mosquitto");
    if snap || !is_root() {
        // Nothing to look up: skip reading the passwd file.
        return Ok(PrivilegeOutcome {
            switched_to: None,
            fell_back_to_nobody: false,
            still_root: false,
        });
    }
    let db = UserDb::load(root);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let (switched_to, fell_back_to_nobody) = match plan(user, &db, euid, snap)? {
        Plan::Snap | Plan::NotRoot | Plan::KeepRoot => (None, false),
        Plan::Switch {
            target,
            fell_back_to_nobody,
        } => {
            apply(&target).map_err(|kind| PrivError {
                kind,
                fell_back_to_nobody,
            })?;
            (Some(target), fell_back_to_nobody)
        }
    };
    // SAFETY: the get*id calls have no preconditions and cannot fail.
    let still_root = unsafe { libc::geteuid() == 0 || libc::getegid() == 0 };
    Ok(PrivilegeOutcome {
        switched_to,
        fell_back_to_nobody,
        still_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::process::Command;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        culextest:x:1883:1883:test:/var/empty:/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/:/sbin/nologin\n\
        rootgid:x:1900:0::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nculextest:x:1883:\nextra:x:2001:culextest,other\n\
        more:x:2002:mosquitto\n";

    fn db() -> UserDb {
        UserDb::from_text(PASSWD, GROUP)
    }

    #[test]
    fn plan_not_root_or_snap_does_nothing() {
        assert_eq!(
            plan("culextest", &db(), 1000, false).unwrap(),
            Plan::NotRoot
        );
        assert_eq!(plan("missing", &db(), 1000, false).unwrap(), Plan::NotRoot);
        assert_eq!(plan("missing", &db(), 0, true).unwrap(), Plan::Snap);
    }

    #[test]
    fn plan_root_keeps_root() {
        assert_eq!(plan("root", &db(), 0, false).unwrap(), Plan::KeepRoot);
        // Even with no passwd file at all.
        assert_eq!(
            plan("root", &UserDb::default(), 0, false).unwrap(),
            Plan::KeepRoot
        );
    }

    #[test]
    fn plan_switch_with_groups() {
        let Plan::Switch {
            target,
            fell_back_to_nobody,
        } = plan("culextest", &db(), 0, false).unwrap()
        else {
            panic!("expected a switch");
        };
        assert!(!fell_back_to_nobody);
        assert_eq!(
            target,
            Target {
                name: "culextest".into(),
                uid: 1883,
                gid: 1883,
                groups: vec![1883, 2001],
            }
        );
    }

    #[test]
    fn plan_mosquitto_falls_back_to_nobody() {
        let Plan::Switch {
            target,
            fell_back_to_nobody,
        } = plan("mosquitto", &db(), 0, false).unwrap()
        else {
            panic!("expected a switch");
        };
        assert!(fell_back_to_nobody);
        assert_eq!((target.uid, target.gid), (65534, 65534));
        assert_eq!(target.name, "nobody");
        // initgroups is called with the configured name, "mosquitto".
        assert_eq!(target.groups, [65534, 2002]);
    }

    #[test]
    fn plan_missing_users() {
        let err = plan("alice", &db(), 0, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error: Unable to drop privileges to 'alice' because this user does not exist."
        );
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.log_lines().len(), 1);

        let no_nobody = UserDb::from_text("root:x:0:0::/:/bin/sh\n", "");
        let err = plan("mosquitto", &no_nobody, 0, false).unwrap_err();
        assert_eq!(err.kind, PrivErrorKind::NoNobody);
        let lines: Vec<String> = err.log_lines().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            [
                "Warning: Unable to drop privileges to 'mosquitto' because this user does not exist. Trying 'nobody' instead.",
                "Error: Unable to drop privileges to 'nobody'."
            ]
        );
        // "nobody" itself is not special when configured explicitly.
        let err = plan("nobody", &no_nobody, 0, false).unwrap_err();
        assert_eq!(err.kind, PrivErrorKind::NoSuchUser("nobody".into()));
    }

    #[test]
    fn error_texts() {
        let e = |kind| PrivError {
            kind,
            fell_back_to_nobody: false,
        };
        assert_eq!(
            e(PrivErrorKind::SetGroups(libc::EPERM)).to_string(),
            "Error setting groups whilst dropping privileges: Operation not permitted."
        );
        assert_eq!(
            e(PrivErrorKind::SetGid(libc::EPERM)).to_string(),
            "Error setting gid whilst dropping privileges: Operation not permitted."
        );
        assert_eq!(
            e(PrivErrorKind::SetUid(libc::EAGAIN)).to_string(),
            "Error setting uid whilst dropping privileges: Resource temporarily unavailable."
        );
    }

    #[test]
    fn outcome_log_lines() {
        let o = PrivilegeOutcome {
            switched_to: None,
            fell_back_to_nobody: false,
            still_root: true,
        };
        assert_eq!(
            o.log_lines(),
            [(LogType::Warning, ROOT_WARNING.to_string())]
        );
        let o = PrivilegeOutcome {
            switched_to: None,
            fell_back_to_nobody: true,
            still_root: false,
        };
        assert_eq!(o.log_lines()[0].0, LogType::Error);
        assert_eq!(o.log_lines().len(), 1);
    }

    #[test]
    fn drop_privileges_as_non_root_or_missing_user_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Missing user as root: an error before any set*id call, so safe to
        // run in the test process. As non-root: nothing to do.
        let r = drop_privileges("alice", dir.path());
        if is_root() {
            assert_eq!(r.unwrap_err().exit_code(), 1);
        } else {
            assert_eq!(r.unwrap().switched_to, None);
        }
        // SAFETY: geteuid cannot fail.
        assert_eq!(is_root(), unsafe { libc::geteuid() } == 0);
    }

    /// Env var naming the temp root for the child half of the real drop test.
    const CHILD_ENV: &str = "CULEX_TEST_PRIV_CHILD";
    const CHILD_USER_ENV: &str = "CULEX_TEST_PRIV_USER";

    /// Child half of `drop_privileges_in_child`: does nothing in a normal
    /// run. When re-executed with `CHILD_ENV` set (in its own process, the
    /// only test selected), drops to the user and reports by exit status.
    #[test]
    fn privileges_child_helper() {
        let Some(root) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let user = std::env::var(CHILD_USER_ENV).unwrap_or_default();
        let root = Path::new(&root);
        let code = match drop_privileges(&user, root) {
            Err(_) => 10,
            Ok(outcome) => child_checks(root, &outcome),
        };
        std::process::exit(code);
    }

    fn child_checks(root: &Path, outcome: &PrivilegeOutcome) -> i32 {
        let Some(target) = &outcome.switched_to else {
            return 11;
        };
        // SAFETY: the get*id calls cannot fail.
        let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
        if uid != target.uid || euid != target.uid || gid != target.gid {
            return 12;
        }
        if outcome.still_root {
            return 13;
        }
        // Supplementary groups must be exactly the planned ones.
        let mut groups = [0 as libc::gid_t; 64];
        // SAFETY: the pointer and length describe a local array.
        let n = unsafe { libc::getgroups(groups.len() as _, groups.as_mut_ptr()) };
        if n < 0 {
            return 14;
        }
        let mut got: Vec<u32> = groups[..n as usize].to_vec();
        let mut want = target.groups.clone();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            return 15;
        }
        // A root-owned 0600 file must not be writable (nor readable).
        let secret = root.join("secret");
        if std::fs::OpenOptions::new()
            .write(true)
            .open(&secret)
            .is_ok()
        {
            return 16;
        }
        // SAFETY: setuid takes a plain integer; it must fail now.
        if unsafe { libc::setuid(0) } != -1 {
            return 17;
        }
        // Distinct non-zero codes: an exit 0 could also mean the helper
        // was never selected.
        if outcome.fell_back_to_nobody { 41 } else { 40 }
    }

    fn run_child(root: &Path, user: &str) -> Option<i32> {
        let exe = std::env::current_exe().unwrap();
        let status = Command::new(exe)
            .args([
                "sys::privileges::tests::privileges_child_helper",
                "--exact",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, root)
            .env(CHILD_USER_ENV, user)
            .env_remove("SNAP_NAME")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        status.code()
    }

    fn temp_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        // Let the dropped child traverse the dir, so the secret file's own
        // mode is what denies access.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join("secret"))
            .unwrap();
        dir
    }

    #[test]
    fn drop_privileges_in_child() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = temp_root();
        assert_eq!(run_child(dir.path(), "culextest"), Some(40));
        // The default user is missing from this passwd: nobody is used.
        assert_eq!(run_child(dir.path(), "mosquitto"), Some(41));
        // Unknown user: error, exit code path 10.
        assert_eq!(run_child(dir.path(), "alice"), Some(10));
        // A target whose primary group is 0 still gets the root warning.
        assert_eq!(run_child(dir.path(), "rootgid"), Some(13));
        // The test process itself is still root.
        assert!(is_root());
    }
}
