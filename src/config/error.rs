//! Errors and parse-time messages of the mosquitto.conf parser.
//!
//! mosquitto prints a parse error as one `Error: ...` line followed by one
//! `Error found at <file>:<line>.` line per file on the include stack (the
//! included file first, then the `include_dir` line of the main file).
//! [`ConfigError`]'s `Display` reproduces those lines exactly, without the
//! timestamp prefix (the logger adds it).

use std::fmt;

/// Severity of a message produced while parsing (before logging is set up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgLevel {
    Error,
    Warning,
    Notice,
    Info,
}

/// A line mosquitto would log while reading the configuration: deprecation
/// notices, `Loading config file ...`, non-fatal errors, local-only warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMessage {
    pub level: MsgLevel,
    pub text: String,
}

impl ParseMessage {
    pub(crate) fn new(level: MsgLevel, text: impl Into<String>) -> Self {
        ParseMessage {
            level,
            text: text.into(),
        }
    }
}

/// What kind of failure a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A directive or value was rejected (including culex's `Refuse`
    /// directives and a missing `include_dir`).
    Parse,
    /// The configuration file itself could not be opened or is a directory.
    Open,
}

/// `file:line` of an error (file as given, line 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

/// A fatal configuration error. mosquitto exits with status 3 for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    /// The `Error: ...` line, exactly as mosquitto words it.
    pub message: String,
    /// Innermost first; each renders as `Error found at <file>:<line>.`
    pub locations: Vec<Location>,
    /// Messages emitted before the error (deprecation notices, `Loading
    /// config file`...), which mosquitto prints before the error lines.
    pub notices: Vec<ParseMessage>,
}

impl ConfigError {
    pub(crate) fn parse(message: impl Into<String>) -> Self {
        ConfigError {
            kind: ConfigErrorKind::Parse,
            message: message.into(),
            locations: Vec::new(),
            notices: Vec::new(),
        }
    }

    pub(crate) fn open(message: impl Into<String>) -> Self {
        ConfigError {
            kind: ConfigErrorKind::Open,
            message: message.into(),
            locations: Vec::new(),
            notices: Vec::new(),
        }
    }

    pub(crate) fn at(mut self, file: &str, line: usize) -> Self {
        self.locations.push(Location {
            file: file.to_string(),
            line,
        });
        self
    }

    /// Process exit status: 3 for every configuration error, like mosquitto.
    pub fn exit_code(&self) -> i32 {
        3
    }

    /// The error lines in print order (message, then the locations).
    pub fn lines(&self) -> Vec<String> {
        let mut v = vec![self.message.clone()];
        for l in &self.locations {
            v.push(format!("Error found at {}:{}.", l.file, l.line));
        }
        v
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for ConfigError {}
