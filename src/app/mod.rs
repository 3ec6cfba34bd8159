//! Wiring: command line → configuration → security files → listeners →
//! event loop, in mosquitto's start-up order, with mosquitto's exit codes.
//! `main.rs` only calls [`main`].

mod persistence;
mod reload;
mod security;
mod settings;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{AclFileError, AuthFileError};
use crate::broker::Broker;
use crate::cli::{self, CliAction, CliOptions};
use crate::config::{self, Config, ConfigError, MsgLevel};
use crate::logging::sink;
use crate::net::{self, EventLoop, ListenError};
use crate::sys::signals::SignalPipe;

pub use settings::{broker_settings, listen_specs, listener_settings, log_settings};

pub use crate::MOSQUITTO_COMPAT;

/// Why start-up failed; each maps to mosquitto's exit status.
#[derive(Debug)]
pub enum StartupError {
    Config(ConfigError),
    PasswordFile(AuthFileError),
    /// An unreadable `psk_file` (13) or one with a key that is not hex (3).
    PskFile(crate::auth::psk_file::PskFileError),
    AclFile(PathBuf, AclFileError),
    Listen(ListenError),
    /// A configured feature culex cannot honour yet, where ignoring it would
    /// change what clients see or weaken security.
    Unsupported(String),
    Io(String),
    /// The persistence file exists but cannot be used (exit 1, the file is
    /// left untouched).
    Database(String),
    /// Already logged; exit with this status.
    Exit(i32),
    /// A command-line misuse (exit 3).
    Usage(String),
    /// A bridge's TLS files cannot be used (exit 3, as for the
    /// configuration): mosquitto's line, then culex's detail.
    BridgeTls(Vec<String>),
    /// A listener's TLS files or settings cannot be used (exit 1, as
    /// mosquitto fails to open the listener): its line, then OpenSSL's.
    Tls(Vec<String>),
}

impl StartupError {
    pub fn exit_code(&self) -> i32 {
        match self {
            StartupError::Config(e) => e.exit_code(),
            StartupError::PasswordFile(e) => e.exit_code(),
            StartupError::PskFile(e) => e.exit_code(),
            StartupError::AclFile(_, e) => e.exit_code(),
            StartupError::Listen(_)
            | StartupError::Io(_)
            | StartupError::Database(_)
            | StartupError::Tls(_) => 1,
            StartupError::Unsupported(_) | StartupError::Usage(_) | StartupError::BridgeTls(_) => 3,
            StartupError::Exit(code) => *code,
        }
    }

    /// The lines mosquitto prints for this error, in order.
    pub fn lines(&self) -> Vec<String> {
        match self {
            StartupError::Config(e) => e.lines(),
            StartupError::PasswordFile(e) => vec![e.to_string(), e.followup()],
            StartupError::PskFile(e) => vec![e.to_string()],
            StartupError::AclFile(path, e) => {
                vec![e.to_string(), e.followup(&path.display().to_string())]
            }
            StartupError::Listen(e) => vec![e.to_string()],
            StartupError::Unsupported(m) | StartupError::Io(m) | StartupError::Database(m) => {
                vec![m.clone()]
            }
            StartupError::Exit(_) => Vec::new(),
            StartupError::Usage(m) => vec![m.clone()],
            StartupError::BridgeTls(lines) | StartupError::Tls(lines) => lines.clone(),
        }
    }
}

/// Runs culex with the process arguments; returns the exit status.
pub fn main() -> i32 {
    sink::init();
    let options = match cli::from_env() {
        CliAction::Run(o) => o,
        CliAction::Exit {
            stdout,
            stderr,
            code,
        } => {
            print!("{stdout}");
            eprint!("{stderr}");
            return code;
        }
    };
    match run(options) {
        Ok(()) => 0,
        Err(e) => {
            for line in e.lines() {
                log::error!("{line}");
            }
            e.exit_code()
        }
    }
}

/// Reads the configuration named by `-c` (or the local-only default) and
/// logs the parse-time messages as mosquitto prints them.
pub fn read_config(options: &CliOptions) -> Result<Config, StartupError> {
    let mut config = match &options.config_file {
        Some(path) => config::load(path).map_err(|e| {
            log_parse_messages(&e.notices);
            StartupError::Config(e)
        })?,
        None => Config::default_local_only(),
    };
    config::apply_cli_ports(&mut config, &options.ports);
    // mosquitto logs the local-only warnings once logging is set up, after
    // `Config loaded from`; the rest comes out while parsing.
    let (local_only, parse_time): (Vec<_>, Vec<_>) = config
        .messages
        .iter()
        .cloned()
        .partition(|m| config::listeners::LOCAL_ONLY_WARNINGS.contains(&m.text.as_str()));
    log_parse_messages(&parse_time);
    config.messages = local_only;
    for w in &config.warnings {
        log::warn!("{w}");
    }
    for w in crate::net::unresolvable_address_warnings(&config.bridges) {
        log::warn!("{w}");
    }
    settings::check_supported(&config)?;
    Ok(config)
}

fn log_pairs(lines: &[(crate::logging::LogType, String)]) {
    use crate::logging::LogType;
    for (kind, text) in lines {
        match kind {
            LogType::Error => log::error!("{text}"),
            LogType::Warning => log::warn!("{text}"),
            LogType::Notice => crate::notice!("{text}"),
            _ => log::info!("{text}"),
        }
    }
}

fn log_parse_messages(messages: &[config::ParseMessage]) {
    for m in messages {
        match m.level {
            MsgLevel::Error => log::error!("{}", m.text),
            MsgLevel::Warning => log::warn!("{}", m.text),
            MsgLevel::Notice => crate::notice!("{}", m.text),
            MsgLevel::Info => log::info!("{}", m.text),
        }
    }
}

/// One line per listener: where it listens and the security it enforces.
pub fn effective_listener_settings(config: &Config) -> Vec<String> {
    let mut lines = vec![format!(
        "per_listener_settings {}: {}",
        config.per_listener_settings,
        if config.per_listener_settings {
            "each listener has its own security settings"
        } else {
            "one set of security settings for all listeners"
        }
    )];
    for l in &config.listeners {
        let place = match (&l.unix_path, &l.bind_address) {
            (Some(p), _) => format!("unix socket {}", p.display()),
            (None, Some(a)) => format!("{a}:{}", l.port),
            (None, None) => format!("port {} (all addresses)", l.port),
        };
        let protocol = match l.protocol {
            config::Protocol::Mqtt => "mqtt",
            config::Protocol::Websockets => "websockets",
            config::Protocol::HttpApi => "http_api",
        };
        let tls = if crate::net::tls::tls_configured(&l.tls) {
            ", TLS"
        } else {
            ""
        };
        let file = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        };
        lines.push(format!(
            "Listener {place} ({protocol}{tls}): allow_anonymous {}, password_file {}, acl_file {}",
            l.security.allow_anonymous,
            file(&l.security.password_file),
            file(&l.security.acl_file),
        ));
    }
    for b in &config.bridges {
        let addresses: Vec<String> = b.addresses.iter().map(ToString::to_string).collect();
        lines.push(format!(
            "Bridge {} to {} ({}) as {}, locally {}: {}",
            b.name,
            addresses.join(" "),
            crate::bridge::version_name(b.protocol_version),
            b.remote_clientid,
            b.local_clientid,
            b.topics
                .iter()
                .map(|t| {
                    let dir = match t.direction {
                        config::bridge::Direction::In => "<-",
                        config::bridge::Direction::Out => "->",
                        config::bridge::Direction::Both => "<->",
                    };
                    format!(
                        "{} {dir} {} (QoS {})",
                        t.local_filter,
                        t.remote_filter,
                        t.qos.as_u8()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines
}

fn run(options: CliOptions) -> Result<(), StartupError> {
    if options.test_config && options.config_file.is_none() {
        return Err(StartupError::Usage(
            "Please provide a configuration file to test.".into(),
        ));
    }
    let config = read_config(&options)?;
    if options.test_config {
        log::info!("Configuration file is OK.");
        // What users get wrong most with per_listener_settings: which
        // listener ends up with which security files.
        for line in effective_listener_settings(&config) {
            log::info!("{line}");
        }
        log::info!("{} terminating", cli::version_line());
        return Ok(());
    }
    // More clients before EMFILE (sys/limits.rs); mosquitto does not.
    if let Some(n) = crate::sys::limits::raise_open_files_limit() {
        log::debug!("Open file limit: {n}.");
    }
    // mosquitto's order (broker-behaviour.md §1): drop privileges, then
    // daemonise, write the pid file, open files and sockets as that user.
    let outcome = crate::sys::privileges::drop_privileges(&config.user, std::path::Path::new("/"));
    match outcome {
        Ok(o) => log_pairs(&o.log_lines()),
        Err(e) => {
            log_pairs(&e.log_lines());
            return Err(StartupError::Exit(e.exit_code()));
        }
    }
    if options.daemon {
        crate::sys::daemon::daemonise().map_err(|e| StartupError::Io(e.to_string()))?;
    }
    let pid_file = match &config.pid_file {
        Some(path) => Some(
            crate::sys::pidfile::PidFile::write(path)
                .map_err(|e| StartupError::Io(e.to_string()))?,
        ),
        None => None,
    };
    sink::configure(log_settings(
        &config.logging,
        options.verbose,
        options.quiet,
    ));
    log::info!("{} starting", cli::version_line());
    match &options.config_file {
        Some(path) => log::info!("Config loaded from {}.", path.display()),
        None => log::info!("Using default config."),
    }
    log_parse_messages(&config.messages);
    let security = security::load(&config, security::Strictness::DropBadLines)?;
    let listeners = listener_settings(&config, security);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id()) << 32;
    let mut broker = Broker::new(broker_settings(&config), listeners, seed);
    let mut saver = persistence::Saver::new(config.persistence.clone(), std::time::Instant::now());
    saver.restore(&mut broker)?;

    // Read as the user mosquitto would read them with (after dropping
    // privileges), but once, before any socket opens.
    let bridges = settings::bridges_with_tls(&config)?;
    let mut bound = Vec::new();
    for spec in listen_specs(&config)? {
        bound.extend(net::listen::open(&spec).map_err(StartupError::Listen)?);
    }
    if bound.is_empty() {
        return Err(StartupError::Io(
            "Error: Unable to start any listening sockets, exiting.".to_string(),
        ));
    }
    let signals = SignalPipe::install().map_err(|e| StartupError::Io(format!("Error: {e}")))?;
    let mut event_loop = EventLoop::new(broker, bound, signals)
        .map_err(|e| StartupError::Io(format!("Error: {e}")))?;
    event_loop.set_global_max_connections(config.limits.global_max_connections);
    event_loop.set_bridges(bridges);
    log::info!("{} running", cli::version_line());
    // systemd Type=notify (Debian's unit) waits for this.
    let _ = crate::sys::notify::ready();
    let mut control = reload::Reloader::new(options.clone(), config, saver);
    let result = event_loop.run(&mut control);
    if let Some(p) = pid_file {
        p.remove();
    }
    result.map_err(|e| StartupError::Io(format!("Error: {e}")))
}
