//! TLS errors as mosquitto logs them: its own line naming the directive and
//! file, then OpenSSL's error queue, one `OpenSSL Error[n]: ...` line per
//! entry (`net__print_ssl_error`).

use std::fmt;

use openssl::error::ErrorStack;

/// `ERR_LIB_SYS`: errors whose reason is an errno.
const ERR_LIB_SYS: i32 = 2;

/// A TLS directive OpenSSL could not use. `lines()` are the log lines, in
/// mosquitto's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError {
    /// mosquitto's line, e.g. `Error: Unable to load server key file "k". Check keyfile.`
    pub message: String,
    /// `error:0A080002:SSL routines::system lib`, as `ERR_error_string` prints them.
    pub openssl: Vec<String>,
}

impl TlsConfigError {
    pub fn new(message: impl Into<String>) -> TlsConfigError {
        TlsConfigError {
            message: message.into(),
            openssl: Vec::new(),
        }
    }

    pub fn with_openssl(message: impl Into<String>, e: &ErrorStack) -> TlsConfigError {
        TlsConfigError::new(message).and_openssl(e)
    }

    pub fn and_openssl(mut self, e: &ErrorStack) -> TlsConfigError {
        self.openssl.extend(openssl_lines(e));
        self
    }

    /// `certfile` without `keyfile` or the other way round.
    pub fn incomplete(missing: &str) -> TlsConfigError {
        TlsConfigError::new(format!(
            "Error: Both certfile and keyfile must be provided to enable TLS on a listener; {missing} is missing."
        ))
    }

    /// The log lines: mosquitto's message, then `OpenSSL Error[n]: ...`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.message.clone()];
        lines.extend(numbered(&self.openssl));
        lines
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for TlsConfigError {}

/// OpenSSL's entries as mosquitto logs them: `OpenSSL Error[n]: ...`.
pub fn numbered<S: AsRef<str>>(entries: &[S]) -> impl Iterator<Item = String> + '_ {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| format!("OpenSSL Error[{i}]: {}", e.as_ref()))
}

/// Each entry of an OpenSSL error stack as `ERR_error_string` formats it in
/// OpenSSL 3: `error:<code>:<library>::<reason>` (the function field is
/// always empty there).
pub fn openssl_lines(e: &ErrorStack) -> Vec<String> {
    e.errors()
        .iter()
        .map(|e| {
            let library = e
                .library()
                .map(str::to_string)
                .unwrap_or_else(|| format!("lib({})", e.library_code()));
            // OpenSSL 3 keeps errno in system library errors and prints
            // strerror() for them.
            let reason = match e.reason() {
                Some(r) => r.to_string(),
                None if e.library_code() == ERR_LIB_SYS => crate::net::listen::strerror(
                    &std::io::Error::from_raw_os_error(e.reason_code()),
                ),
                None => format!("reason({})", e.reason_code()),
            };
            format!("error:{:08X}:{library}::{reason}", e.code())
        })
        .collect()
}

/// OpenSSL takes file names as C strings: one with a NUL byte in it cannot
/// be passed (and the `openssl` crate would panic on it).
pub fn check_path(path: &str) -> Result<(), TlsConfigError> {
    if path.contains('\0') {
        return Err(TlsConfigError::new(format!(
            "Error: Invalid file name \"{}\": it contains a NUL byte.",
            path.escape_default()
        )));
    }
    Ok(())
}
