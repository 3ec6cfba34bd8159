//! The `log::Log` implementation: mosquitto's line format (`<time>: text`)
//! written to the configured destinations.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::LogType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub destinations: Vec<Destination>,
    pub types: HashSet<LogType>,
    pub timestamp: bool,
    pub timestamp_format: Option<String>,
}

impl LogSettings {
    /// Before the config is read: stderr, mosquitto's default types.
    pub fn startup() -> LogSettings {
        LogSettings {
            destinations: vec![Destination::Stderr],
            types: default_types(),
            timestamp: true,
            timestamp_format: None,
        }
    }
}

pub fn default_types() -> HashSet<LogType> {
    [
        LogType::Error,
        LogType::Warning,
        LogType::Notice,
        LogType::Information,
    ]
    .into_iter()
    .collect()
}

pub fn all_types() -> HashSet<LogType> {
    [
        LogType::Error,
        LogType::Warning,
        LogType::Notice,
        LogType::Information,
        LogType::Debug,
        LogType::Subscribe,
        LogType::Unsubscribe,
        LogType::Websockets,
        LogType::Internal,
    ]
    .into_iter()
    .collect()
}

struct State {
    /// `None` until `init`.
    settings: Option<LogSettings>,
    file: Option<File>,
}

pub struct Sink {
    state: Mutex<State>,
}

static SINK: Sink = Sink {
    state: Mutex::new(State {
        settings: None,
        file: None,
    }),
};

/// Installs the logger with start-up settings (stderr). Safe to call twice.
pub fn init() {
    let _ = log::set_logger(&SINK);
    log::set_max_level(log::LevelFilter::Trace);
    configure(LogSettings::startup());
}

/// Switches to new settings (config loaded, SIGHUP). A log file that cannot
/// be opened falls back to stderr, errors only, as mosquitto does.
pub fn configure(settings: LogSettings) {
    let mut file = None;
    let mut settings = settings;
    if let Some(Destination::File(path)) = settings
        .destinations
        .iter()
        .find(|d| matches!(d, Destination::File(_)))
    {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => file = Some(f),
            Err(_) => {
                let msg = format!(
                    "Error: Unable to open log file {} for writing.",
                    path.display()
                );
                settings = LogSettings {
                    destinations: vec![Destination::Stderr],
                    types: [LogType::Error].into_iter().collect(),
                    ..settings
                };
                eprintln!("{}", prefix_line(&settings, &msg));
            }
        }
    }
    if let Ok(mut state) = SINK.state.lock() {
        state.settings = Some(settings);
        state.file = file;
    }
}

/// Reopens the log file (SIGHUP, SIGRTMIN) so rotation works.
pub fn reopen() {
    let settings = match SINK.state.lock() {
        Ok(s) => s.settings.clone(),
        Err(_) => return,
    };
    if let Some(settings) = settings {
        configure(settings);
    }
}

fn prefix_line(settings: &LogSettings, text: &str) -> String {
    if !settings.timestamp {
        return text.to_string();
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match &settings.timestamp_format {
        None => format!("{secs}: {text}"),
        Some(fmt) => match crate::sys::time::strftime_local(fmt, secs) {
            Some(t) => format!("{t}: {text}"),
            None => format!("Time error: {text}"),
        },
    }
}

impl log::Log for Sink {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        // Other crates' debug chatter is not mosquitto's.
        let target = record.target();
        if !(target.starts_with("culex")
            || matches!(
                target,
                "notice" | "subscribe" | "unsubscribe" | "websockets" | "internal"
            ))
        {
            return;
        }
        let kind = LogType::of(record.level(), target);
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(settings) = &state.settings else {
            return;
        };
        if !settings.types.contains(&kind) {
            return;
        }
        let mut line = prefix_line(settings, &record.args().to_string());
        // mosquitto cuts lines at 999 bytes.
        if line.len() > 999 {
            let mut cut = 999;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        line.push('\n');
        let dests = settings.destinations.clone();
        for d in &dests {
            match d {
                Destination::Stdout => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
                Destination::Stderr => {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
                Destination::File(_) => {
                    if let Some(f) = state.file.as_mut() {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
        }
    }

    fn flush(&self) {}
}
