//! Authentication files: mosquitto's password file and ACL file.
//!
//! Plain data in, typed values out: nothing here touches a socket or the
//! clock. File reading happens only in the `load` functions.
//!
//! * [`password_file`]: the `password_file` as the 2.0 broker reads it
//!   (`$6$`, `$7$`) plus 2.1's shapes (64-byte salts, `$argon2id$`).
//!   [`PasswordFile::parse`] never fails: bad entries are dropped and reported
//!   as [`LogLine`]s with mosquitto's text followed by ` (file:line)`.
//! * [`hash`]: parsing, verifying and writing the hash field; shared with the
//!   `culex_passwd` tool.
//! * [`acl_file`]: the `acl_file` reader ([`AclFile::parse`], errors are
//!   fatal as in mosquitto) and evaluator ([`AclFile::check`]), plus the rules
//!   the broker applies whatever the ACL file says
//!   ([`publish_allowed_always`], [`delivery_allowed_always`]).
//!
//! * [`passwd_edit`]: pure line edits behind `culex_passwd`.
//!
//! Deliberate differences from mosquitto are listed in each module's docs.
//!
//! How the broker is expected to use it:
//!
//! ```
//! use culex::auth::{Access, AclFile, PasswordFile, VerifyCache, publish_allowed_always};
//!
//! let (pw, logs) = PasswordFile::parse(b"alice:$6$pef+jXZ3jZyYUk7u$FFUnUIRwvfQ7ll33/VyUxIlr1sM9bxtAtrkm9phikeCEN6bcYE7d2iyyY7jb69crDdZZmnuApS1Ff7Pf07fRvg==\n", "passwd");
//! assert!(logs.is_empty());
//! let mut cache = VerifyCache::default(); // clear() it when the file is reloaded
//! // CONNECT with a username: accepted only for a known user + right password
//! assert!(pw.authenticate_cached(&mut cache, "alice", Some(b"secret")));
//! assert!(!pw.authenticate_cached(&mut cache, "bob", Some(b"secret")));
//!
//! let (acl, _warnings) = AclFile::parse(b"user alice\ntopic readwrite home/#\n", "acl").unwrap();
//! // incoming PUBLISH: the built-in rules, then the ACL file
//! let topic = "home/kitchen";
//! assert!(publish_allowed_always(topic) && acl.check("client-1", Some("alice"), topic, Access::Write));
//! // each delivery
//! assert!(!acl.check("client-2", None, topic, Access::Read));
//! ```

pub mod acl_file;
pub mod error;
pub mod hash;
pub mod passwd_edit;
pub mod password_file;
pub mod psk_file;

pub use acl_file::{Access, AclDecision, AclFile, delivery_allowed_always, publish_allowed_always};
pub use error::{AclFileError, AuthFileError};
pub use hash::{HashKind, PasswordHash};
pub use password_file::{PasswordFile, VerifyCache};

use std::fmt;

/// Severity of a [`LogLine`], mapped by the caller onto the broker's log
/// levels (mosquitto logs these at `MOSQ_LOG_ERR`, `_WARNING`, `_NOTICE`,
/// `_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
}

/// A message produced while reading a file, to be logged by the caller.
///
/// `text` starts with mosquitto's exact message and ends with
/// ` (<file>:<line>)` when it refers to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

impl LogLine {
    pub(crate) fn at(level: Level, message: &str, file: &str, line: usize) -> LogLine {
        LogLine {
            level,
            text: format!("{message} ({file}:{line})"),
        }
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// C `isspace` in the "C" locale (Rust's `is_ascii_whitespace` lacks `\v`).
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// mosquitto's `misc__trimblanks`: strip C whitespace on both sides.
pub(crate) fn trim_c_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_c_space(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_c_space(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Split `data` into lines the way `fgets` does: each line keeps its `\n`;
/// a last line without `\n` is returned too.
pub(crate) fn fgets_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

/// The part of a C string before the first NUL byte.
pub(crate) fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}
