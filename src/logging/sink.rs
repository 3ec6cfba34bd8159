//! The `log::Log` implementation: mosquitto's line format (`<time>: text`)
//! written to the configured destinations (`log_dest`): stdout, stderr, a
//! file, the local syslog socket, and `$SYS/broker/log/...` (buffered here
//! for the event loop, see [`take_topic_lines`]).

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::LogType;
use super::syslog::{self, SyslogSocket};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    Stderr,
    File(PathBuf),
    /// The local syslog socket (`/dev/log`), see `logging::syslog`.
    Syslog,
    /// `$SYS/broker/log/...`: lines are buffered for the event loop.
    Topic,
    /// GENIVI DLT: not supported; a warning is logged once.
    Dlt,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub destinations: Vec<Destination>,
    pub types: HashSet<LogType>,
    pub timestamp: bool,
    pub timestamp_format: Option<String>,
    /// `log_facility` (0–7 = local0–local7); `None` = daemon.
    pub facility: Option<u8>,
}

impl LogSettings {
    /// Before the config is read: stderr, mosquitto's default types.
    pub fn startup() -> LogSettings {
        LogSettings {
            destinations: vec![Destination::Stderr],
            types: default_types(),
            timestamp: true,
            timestamp_format: None,
            facility: None,
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

/// How many lines `log_dest topic` keeps for the event loop; older ones are
/// dropped first.
pub const TOPIC_BUFFER_LINES: usize = 1000;

/// mosquitto's log line buffer is 1000 bytes including the NUL.
pub const MAX_LINE_BYTES: usize = 999;

/// The warning for `log_dest dlt` (logged once per process).
pub const DLT_WARNING: &str = "Warning: log_dest dlt (GENIVI DLT) is not supported by culex; the other log destinations are used.";

struct State {
    /// `None` until `configure`.
    settings: Option<LogSettings>,
    file: Option<File>,
    syslog: Option<SyslogSocket>,
    /// `None` = `/dev/log`; tests point it elsewhere.
    syslog_path: Option<PathBuf>,
    topic: VecDeque<(LogType, String)>,
    dlt_warned: bool,
}

/// The logger: settings plus open outputs behind one lock.
pub struct Sink {
    state: Mutex<State>,
}

impl Default for Sink {
    fn default() -> Self {
        Sink::new()
    }
}

static SINK: Sink = Sink::new();

impl Sink {
    pub const fn new() -> Sink {
        Sink {
            state: Mutex::new(State {
                settings: None,
                file: None,
                syslog: None,
                syslog_path: None,
                topic: VecDeque::new(),
                dlt_warned: false,
            }),
        }
    }

    /// A sink whose syslog destination is `path` instead of `/dev/log`.
    pub fn with_syslog_path(path: &Path) -> Sink {
        let sink = Sink::new();
        if let Ok(mut s) = sink.state.lock() {
            s.syslog_path = Some(path.to_path_buf());
        }
        sink
    }

    /// Switches to new settings (config loaded, SIGHUP). A log file that
    /// cannot be opened replaces every destination with stderr, errors
    /// only, as mosquitto does.
    pub fn configure(&self, settings: LogSettings) {
        let mut file = None;
        let mut settings = settings;
        let mut open_error = None;
        if let Some(Destination::File(path)) = settings
            .destinations
            .iter()
            .find(|d| matches!(d, Destination::File(_)))
        {
            match OpenOptions::new().create(true).append(true).open(path) {
                Ok(f) => file = Some(f),
                Err(_) => {
                    open_error = Some(format!(
                        "Error: Unable to open log file {} for writing.",
                        path.display()
                    ));
                    settings = LogSettings {
                        destinations: vec![Destination::Stderr],
                        types: [LogType::Error].into_iter().collect(),
                        ..settings
                    };
                }
            }
        }
        let mut warn_dlt = false;
        if let Ok(mut state) = self.state.lock() {
            let path = state
                .syslog_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(syslog::DEV_LOG));
            // mosquitto's log__init calls openlog again: a fresh connection.
            state.syslog = settings
                .destinations
                .contains(&Destination::Syslog)
                .then(|| SyslogSocket::new(&path));
            if settings.destinations.contains(&Destination::Dlt) && !state.dlt_warned {
                state.dlt_warned = true;
                warn_dlt = true;
            }
            state.settings = Some(settings);
            state.file = file;
        }
        if let Some(msg) = open_error {
            self.emit(LogType::Error, &msg);
        }
        if warn_dlt {
            self.emit(LogType::Warning, DLT_WARNING);
        }
    }

    /// Reopens the log file (SIGHUP, SIGRTMIN) so rotation works.
    pub fn reopen(&self) {
        let settings = match self.state.lock() {
            Ok(s) => s.settings.clone(),
            Err(_) => return,
        };
        if let Some(settings) = settings {
            self.configure(settings);
        }
    }

    /// Writes one line of type `kind` to every destination, if `log_type`
    /// lets it through.
    pub fn emit(&self, kind: LogType, text: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(settings) = &state.settings else {
            return;
        };
        if !settings.types.contains(&kind) {
            return;
        }
        let secs = now_secs();
        let line = format_line(settings, secs, text);
        let facility = syslog::facility(settings.facility);
        let dests = settings.destinations.clone();
        for d in &dests {
            match d {
                Destination::Stdout => {
                    // Line-buffered, as 2.0.16+ (Docker logs do not lag).
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                }
                Destination::Stderr => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(format!("{line}\n").as_bytes());
                }
                Destination::File(_) => {
                    if let Some(f) = state.file.as_mut() {
                        // One write per line: the file is never behind.
                        let _ = f.write_all(format!("{line}\n").as_bytes());
                    }
                }
                Destination::Syslog => {
                    if let Some(s) = state.syslog.as_mut() {
                        let packet =
                            syslog::format_packet(facility, kind, secs, std::process::id(), &line);
                        s.send(packet.as_bytes());
                    }
                }
                Destination::Topic => {
                    if kind.sys_topic().is_some() {
                        if state.topic.len() >= TOPIC_BUFFER_LINES {
                            state.topic.pop_front();
                        }
                        state.topic.push_back((kind, line.clone()));
                    }
                }
                Destination::Dlt => {}
            }
        }
    }

    /// The lines waiting for `$SYS/broker/log/...`, oldest first.
    pub fn take_topic_lines(&self) -> Vec<(LogType, String)> {
        match self.state.lock() {
            Ok(mut s) => s.topic.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// True if `take_topic_lines` would return something.
    pub fn topic_lines_pending(&self) -> bool {
        self.state
            .lock()
            .map(|s| !s.topic.is_empty())
            .unwrap_or(false)
    }
}

/// Installs the logger with start-up settings (stderr). Safe to call twice.
pub fn init() {
    let _ = log::set_logger(&SINK);
    log::set_max_level(log::LevelFilter::Trace);
    configure(LogSettings::startup());
}

/// Switches the process logger to new settings (config loaded, SIGHUP).
pub fn configure(settings: LogSettings) {
    // Debug lines (`-v`: one per packet) are formatted only when they can
    // be printed: the `log` macros check this before building the message.
    let level = if settings.types.contains(&LogType::Debug) {
        log::LevelFilter::Trace
    } else {
        log::LevelFilter::Info
    };
    SINK.configure(settings);
    log::set_max_level(level);
}

/// Reopens the process logger's file (SIGHUP, SIGRTMIN).
pub fn reopen() {
    SINK.reopen();
}

/// `log_dest topic`: the lines logged since the last call, oldest first,
/// each with its type (its topic is [`LogType::sys_topic`]) and its full
/// text, timestamp prefix included. At most [`TOPIC_BUFFER_LINES`] are kept;
/// debug and internal lines are never buffered. The event loop publishes
/// them (QoS 2, not retained, message expiry 20 s, as mosquitto does).
pub fn take_topic_lines() -> Vec<(LogType, String)> {
    SINK.take_topic_lines()
}

/// True if the event loop has `$SYS/broker/log` lines to publish.
pub fn topic_lines_pending() -> bool {
    SINK.topic_lines_pending()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The timestamp prefix (`log_timestamp`, `log_timestamp_format`) and the
/// text, cut at 999 bytes as mosquitto's 1000-byte buffer does.
pub fn format_line(settings: &LogSettings, unix_secs: i64, text: &str) -> String {
    let mut line = if !settings.timestamp {
        text.to_string()
    } else {
        match &settings.timestamp_format {
            None => format!("{unix_secs}: {text}"),
            Some(fmt) => match crate::sys::time::strftime_local(fmt, unix_secs) {
                Some(t) => format!("{t}: {text}"),
                None => format!("Time error: {text}"),
            },
        }
    };
    if line.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
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
        self.emit(kind, &record.args().to_string());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn settings(dests: Vec<Destination>) -> LogSettings {
        LogSettings {
            destinations: dests,
            ..LogSettings::startup()
        }
    }

    #[test]
    fn default_prefix_is_unix_seconds() {
        let s = settings(vec![]);
        assert_eq!(format_line(&s, 1_700_000_000, "hi"), "1700000000: hi");
    }

    #[test]
    fn no_timestamp_means_no_prefix() {
        let s = LogSettings {
            timestamp: false,
            timestamp_format: Some("%Y".into()),
            ..settings(vec![])
        };
        assert_eq!(format_line(&s, 1_700_000_000, "hi"), "hi");
    }

    #[test]
    fn timestamp_format_is_strftime_and_empty_is_time_error() {
        let s = LogSettings {
            timestamp_format: Some("%Y".into()),
            ..settings(vec![])
        };
        assert_eq!(format_line(&s, 1_700_000_000, "hi"), "2023: hi");
        let s = LogSettings {
            timestamp_format: Some("%Y-%m-%dT%H:%M:%S".into()),
            ..s
        };
        let line = format_line(&s, 1_700_000_000, "hi");
        assert_eq!(line.len(), "2023-11-14T22:13:20: hi".len(), "{line}");
        assert!(line.starts_with("2023-11-1"), "{line}");
        // strftime yields nothing for an empty format (or `%p` in some
        // locales): mosquitto prints `Time error`.
        let s = LogSettings {
            timestamp_format: Some(String::new()),
            ..s
        };
        assert_eq!(format_line(&s, 1_700_000_000, "hi"), "Time error: hi");
    }

    #[test]
    fn lines_are_cut_at_999_bytes() {
        let s = settings(vec![]);
        let long = "x".repeat(2000);
        let line = format_line(&s, 1_700_000_000, &long);
        assert_eq!(line.len(), 999);
        assert!(line.starts_with("1700000000: xxx"));
        // Never inside a UTF-8 sequence.
        let wide = "é".repeat(1000);
        let s = LogSettings {
            timestamp: false,
            ..s
        };
        let line = format_line(&s, 0, &wide);
        assert_eq!(line.len(), 998);
        assert_eq!(format_line(&s, 0, &"y".repeat(999)).len(), 999);
    }

    fn file_sink(types: HashSet<LogType>) -> (tempfile::TempDir, PathBuf, Sink) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let sink = Sink::new();
        sink.configure(LogSettings {
            types,
            timestamp: false,
            ..settings(vec![Destination::File(path.clone())])
        });
        (dir, path, sink)
    }

    #[test]
    fn log_type_filters_and_file_is_written_per_line() {
        let (_d, path, sink) = file_sink([LogType::Error, LogType::Subscribe].into());
        sink.emit(LogType::Error, "e");
        // Read before anything else is written: nothing is held back.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "e\n");
        sink.emit(LogType::Notice, "n");
        sink.emit(LogType::Debug, "d");
        sink.emit(LogType::Subscribe, "c 0 t");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "e\nc 0 t\n");
    }

    #[test]
    fn no_types_means_silence() {
        let (_d, path, sink) = file_sink(HashSet::new());
        for t in all_types() {
            sink.emit(t, "x");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn file_is_appended_and_reopened() {
        let (_d, path, sink) = file_sink(default_types());
        sink.emit(LogType::Information, "one");
        // logrotate moves the file away; after reopen a new one is created.
        let rotated = path.with_extension("1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.emit(LogType::Information, "two");
        sink.reopen();
        sink.emit(LogType::Information, "three");
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        // A second sink on the same file appends.
        let other = Sink::new();
        other.configure(LogSettings {
            timestamp: false,
            ..settings(vec![Destination::File(path.clone())])
        });
        other.emit(LogType::Information, "four");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\nfour\n");
    }

    #[test]
    fn topic_lines_are_buffered_bounded_and_skip_debug_and_internal() {
        let sink = Sink::new();
        sink.configure(LogSettings {
            types: all_types(),
            timestamp: false,
            ..settings(vec![Destination::Topic])
        });
        assert!(!sink.topic_lines_pending());
        sink.emit(LogType::Notice, "n");
        sink.emit(LogType::Debug, "d");
        sink.emit(LogType::Internal, "i");
        sink.emit(LogType::Subscribe, "c 1 a/b");
        assert!(sink.topic_lines_pending());
        assert_eq!(
            sink.take_topic_lines(),
            vec![
                (LogType::Notice, "n".to_string()),
                (LogType::Subscribe, "c 1 a/b".to_string())
            ]
        );
        assert!(sink.take_topic_lines().is_empty());
        for i in 0..TOPIC_BUFFER_LINES + 5 {
            sink.emit(LogType::Information, &i.to_string());
        }
        let lines = sink.take_topic_lines();
        assert_eq!(lines.len(), TOPIC_BUFFER_LINES);
        assert_eq!(lines[0].1, "5");
        assert_eq!(
            lines.last().unwrap().1,
            (TOPIC_BUFFER_LINES + 4).to_string()
        );
    }

    #[test]
    fn topic_lines_carry_the_prefix_and_respect_log_type() {
        let sink = Sink::new();
        sink.configure(settings(vec![Destination::Topic]));
        sink.emit(LogType::Subscribe, "not in the default types");
        sink.emit(LogType::Warning, "w");
        let lines = sink.take_topic_lines();
        assert_eq!(lines.len(), 1);
        let (kind, text) = &lines[0];
        assert_eq!(*kind, LogType::Warning);
        let (stamp, rest) = text.split_once(": ").unwrap();
        assert!(stamp.chars().all(|c| c.is_ascii_digit()), "{text}");
        assert_eq!(rest, "w");
    }

    #[test]
    fn no_topic_destination_buffers_nothing() {
        let (_d, _p, sink) = file_sink(default_types());
        sink.emit(LogType::Error, "e");
        assert!(sink.take_topic_lines().is_empty());
    }

    #[test]
    fn syslog_destination_sends_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let sink = Sink::with_syslog_path(&path);
        sink.configure(LogSettings {
            timestamp: false,
            facility: Some(2),
            ..settings(vec![Destination::Syslog])
        });
        sink.emit(LogType::Debug, "filtered out");
        sink.emit(LogType::Notice, "Client c1 disconnected.");
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        // local2 = 18 << 3 = 144, notice = 5.
        assert!(got.starts_with("<149>"), "{got}");
        assert!(
            got.ends_with(&format!(
                " mosquitto[{}]: Client c1 disconnected.",
                std::process::id()
            )),
            "{got}"
        );
    }

    #[test]
    fn syslog_without_a_daemon_keeps_the_other_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("m.log");
        let sink = Sink::with_syslog_path(&dir.path().join("absent"));
        sink.configure(LogSettings {
            timestamp: false,
            ..settings(vec![Destination::Syslog, Destination::File(log.clone())])
        });
        sink.emit(LogType::Information, "still here");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "still here\n");
    }

    #[test]
    fn dlt_warns_once_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("m.log");
        let sink = Sink::new();
        let s = LogSettings {
            timestamp: false,
            ..settings(vec![Destination::Dlt, Destination::File(log.clone())])
        };
        sink.configure(s.clone());
        sink.configure(s);
        sink.emit(LogType::Information, "i");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("{DLT_WARNING}\ni\n")
        );
    }

    #[test]
    fn unopenable_file_falls_back_to_stderr_errors_only() {
        let sink = Sink::new();
        sink.configure(settings(vec![
            Destination::File("/nonexistent/dir/m.log".into()),
            Destination::Topic,
        ]));
        let state = sink.state.lock().unwrap();
        let s = state.settings.as_ref().unwrap();
        assert_eq!(s.destinations, vec![Destination::Stderr]);
        assert_eq!(s.types, [LogType::Error].into());
    }

    #[test]
    fn category_targets_map_to_types() {
        use log::Level;
        assert_eq!(LogType::of(Level::Info, "notice"), LogType::Notice);
        assert_eq!(LogType::of(Level::Info, "subscribe"), LogType::Subscribe);
        assert_eq!(LogType::of(Level::Info, "culex::x"), LogType::Information);
        assert_eq!(LogType::of(Level::Warn, "culex::x"), LogType::Warning);
        assert_eq!(LogType::of(Level::Error, "culex::x"), LogType::Error);
        assert_eq!(LogType::of(Level::Debug, "culex::x"), LogType::Debug);
        assert_eq!(LogType::of(Level::Trace, "culex::x"), LogType::Debug);
    }
}
