//! mosquitto.conf: reading, validating and typing the configuration.
//!
//! Public entry points:
//! * [`load`] — read a file given with `-c` (errors exit 3);
//! * [`parse_str`] — parse text (tests, `--test-config`);
//! * [`Config::default_local_only`] — no `-c`: local-only mode;
//! * [`apply_cli_ports`] — `-p` ports, used only in local-only mode;
//! * [`directive_table_markdown`] — the directive table for the docs.
//!
//! Layout: `lexer` (lines, words, atoi, include_dir order), `directives`
//! (THE table: scope, value kind, Implemented/Warn/Refuse), `parser`
//! (mosquitto's rules and messages), `listeners` (default listener,
//! local-only mode, per_listener_settings), `model` (typed config),
//! `error` (exact error text). Relative paths are kept as written: they
//! are relative to the process working directory, like mosquitto.

pub mod bridge;
pub mod directives;
pub mod error;
pub mod lexer;
pub mod listeners;
pub mod model;
mod parser;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use directives::{Directive, Scope, Status, ValueKind, directive_table_markdown};
pub use error::{ConfigError, ConfigErrorKind, Location, MsgLevel, ParseMessage};
pub use model::{
    Config, Limits, Listener, LogDest, LogTypes, Logging, Persistence, Protocol, Security,
    SocketDomain, TlsSettings,
};

/// Parse `text` as the main configuration file named `file_name` (used in
/// `Error found at <file_name>:<line>.`). `include_dir` is honoured.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_bytes(text.as_bytes(), file_name)
}

/// Parse raw bytes (config files need not be UTF-8 outside string values).
pub fn parse_bytes(data: &[u8], file_name: &str) -> Result<Config, ConfigError> {
    let mut p = parser::Parser::new();
    match p.parse_bytes(data, file_name, 0) {
        Ok(()) => {
            let drafts = std::mem::take(&mut p.bridges);
            let bridges = bridge::finish_all(drafts).map_err(|m| {
                let mut e = ConfigError::parse(m);
                e.notices = p.messages.clone();
                e
            })?;
            let mut config = listeners::build(p);
            config.bridges = bridges;
            let max_inflight = config.limits.max_inflight_messages;
            bridge::inherit_receive_maximum(&mut config.bridges, max_inflight);
            Ok(config)
        }
        Err(mut e) => {
            e.notices = p.messages;
            Err(e)
        }
    }
}

/// Read and parse the file given with `-c`. The path is shown as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let data = parser::read_config(path, &shown)?;
    parse_bytes(&data, &shown)
}

/// In local-only mode, replace the loopback listeners' port 1883 by the
/// `-p` ports (each on 127.0.0.1 and ::1). Otherwise `-p` is ignored, as in
/// mosquitto. Unlike 2.0.x, every given port gets its listeners.
pub fn apply_cli_ports(config: &mut Config, ports: &[u16]) {
    if !config.local_only || ports.is_empty() {
        return;
    }
    if let Some(t) = config.listeners.first().cloned() {
        config.listeners = listeners::local_listeners(&t, ports);
    }
}

impl Config {
    /// The configuration used without `-c`: local-only mode on 1883 with
    /// anonymous access (the three warnings are in `messages`).
    pub fn default_local_only() -> Config {
        listeners::build(parser::Parser::new())
    }
}
