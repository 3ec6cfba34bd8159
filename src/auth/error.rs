//! Fatal errors of the authentication files. Non-fatal problems are
//! [`LogLine`](super::LogLine)s instead.

use std::fmt;
use std::path::PathBuf;

/// A password file that cannot be used at all.
///
/// Display gives mosquitto's first log line; mosquitto then also logs
/// `Error opening password file "<p>".` ([`AuthFileError::followup`]).
#[derive(Debug)]
pub enum AuthFileError {
    /// The file could not be opened or read.
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AuthFileError {
    /// Process exit status mosquitto uses at start-up (13, `MOSQ_ERR_UNKNOWN`).
    pub fn exit_code(&self) -> i32 {
        match self {
            AuthFileError::Open { .. } => 13,
        }
    }

    /// The second line mosquitto logs for this error.
    pub fn followup(&self) -> String {
        match self {
            AuthFileError::Open { path, .. } => {
                format!("Error opening password file \"{}\".", path.display())
            }
        }
    }
}

impl fmt::Display for AuthFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFileError::Open { path, .. } => {
                write!(f, "Error: Unable to open pwfile \"{}\".", path.display())
            }
        }
    }
}

impl std::error::Error for AuthFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthFileError::Open { source, .. } => Some(source),
        }
    }
}

/// An ACL file the broker refuses (mosquitto exits at start-up; on reload
/// culex keeps the previous rules).
#[derive(Debug)]
pub enum AclFileError {
    /// The file could not be opened or read: `Error: Unable to open acl_file "<p>".`
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error. `message` is mosquitto's exact text; Display appends
    /// ` (<file>:<line>)`.
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}

impl AclFileError {
    /// Process exit status: 13 when the file cannot be opened, 3
    /// (`MOSQ_ERR_INVAL`) for a syntax error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AclFileError::Open { .. } => 13,
            AclFileError::Syntax { .. } => 3,
        }
    }

    /// mosquitto's message without the location suffix.
    pub fn message(&self) -> String {
        match self {
            AclFileError::Open { path, .. } => {
                format!("Error: Unable to open acl_file \"{}\".", path.display())
            }
            AclFileError::Syntax { message, .. } => message.clone(),
        }
    }

    /// 1-based line number of a syntax error.
    pub fn line(&self) -> Option<usize> {
        match self {
            AclFileError::Open { .. } => None,
            AclFileError::Syntax { line, .. } => Some(*line),
        }
    }

    /// The second line mosquitto logs for this error.
    pub fn followup(&self, path: &str) -> String {
        format!("Error opening acl file \"{path}\".")
    }
}

impl fmt::Display for AclFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclFileError::Open { .. } => f.write_str(&self.message()),
            AclFileError::Syntax {
                file,
                line,
                message,
            } => write!(f, "{message} ({file}:{line})"),
        }
    }
}

impl std::error::Error for AclFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AclFileError::Open { source, .. } => Some(source),
            AclFileError::Syntax { .. } => None,
        }
    }
}
