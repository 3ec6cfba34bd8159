//! `log_dest syslog`: datagrams to the local syslog socket, written as
//! glibc's `syslog()` writes them after mosquitto's
//! `openlog("mosquitto", LOG_PID|LOG_CONS, facility)`:
//!
//! ```text
//! <PRI>Mmm dd hh:mm:ss mosquitto[PID]: TEXT
//! ```
//!
//! (RFC 3164; the timestamp is local time in the C locale, `%h %e %T`, the
//! day space-padded; no trailing newline.) `TEXT` is mosquitto's whole log
//! line, timestamp prefix included. The socket is connected lazily, like
//! glibc does, and re-connected once when a send fails (syslogd restarted).
//! If there is no socket (a container without `/dev/log`) lines are dropped
//! silently: mosquitto's `LOG_CONS` would write them to `/dev/console`, which
//! culex does not do. The socket is non-blocking: when the syslog daemon's
//! queue is full a line is dropped rather than stalling the event loop.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::LogType;

/// Where glibc's `syslog()` writes.
pub const DEV_LOG: &str = "/dev/log";

/// The ident mosquitto passes to `openlog`.
pub const IDENT: &str = "mosquitto";

/// `LOG_DAEMON`, mosquitto's default facility.
pub const LOG_DAEMON: u8 = 3 << 3;

/// The facility code for `log_facility` (`None` = daemon, 0–7 = local0–7).
pub fn facility(log_facility: Option<u8>) -> u8 {
    match log_facility {
        Some(n) if n <= 7 => (16 + n) << 3,
        _ => LOG_DAEMON,
    }
}

/// mosquitto's mapping of its log types to syslog severities
/// (`log__vprintf`): websockets is debug, anything unmapped (internal) err.
pub fn severity(kind: LogType) -> u8 {
    const LOG_ERR: u8 = 3;
    const LOG_WARNING: u8 = 4;
    const LOG_NOTICE: u8 = 5;
    const LOG_INFO: u8 = 6;
    const LOG_DEBUG: u8 = 7;
    match kind {
        LogType::Error | LogType::Internal => LOG_ERR,
        LogType::Warning => LOG_WARNING,
        LogType::Notice | LogType::Subscribe | LogType::Unsubscribe => LOG_NOTICE,
        LogType::Information => LOG_INFO,
        LogType::Debug | LogType::Websockets => LOG_DEBUG,
    }
}

/// One datagram as glibc formats it: `<PRI>Mmm dd hh:mm:ss ident[pid]: text`.
pub fn format_packet(facility: u8, kind: LogType, unix_secs: i64, pid: u32, text: &str) -> String {
    let pri = u32::from(facility) | u32::from(severity(kind));
    // glibc: strftime "%h %e %T " in the C locale, local time.
    let stamp = crate::sys::time::strftime_local("%b %e %H:%M:%S", unix_secs)
        .unwrap_or_else(|| "Jan  1 00:00:00".to_string());
    format!("<{pri}>{stamp} {IDENT}[{pid}]: {text}")
}

/// A lazily connected datagram socket to the syslog daemon.
#[derive(Debug)]
pub struct SyslogSocket {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

impl SyslogSocket {
    pub fn new(path: &Path) -> SyslogSocket {
        SyslogSocket {
            path: path.to_path_buf(),
            sock: None,
        }
    }

    fn connect(&mut self) -> bool {
        if self.sock.is_none() {
            let Ok(s) = UnixDatagram::unbound() else {
                return false;
            };
            if s.connect(&self.path).is_err() {
                return false;
            }
            let _ = s.set_nonblocking(true);
            self.sock = Some(s);
        }
        true
    }

    /// Sends one datagram; silently drops it if there is no syslog daemon.
    pub fn send(&mut self, packet: &[u8]) {
        for _ in 0..2 {
            if !self.connect() {
                return;
            }
            let Some(s) = &self.sock else { return };
            match s.send(packet) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // The daemon went away (restart): reconnect once, as glibc.
                Err(_) => self.sock = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility(None), 24);
        assert_eq!(facility(Some(0)), 128);
        assert_eq!(facility(Some(7)), 184);
    }

    #[test]
    fn severities_follow_mosquitto() {
        assert_eq!(severity(LogType::Error), 3);
        assert_eq!(severity(LogType::Warning), 4);
        assert_eq!(severity(LogType::Notice), 5);
        assert_eq!(severity(LogType::Subscribe), 5);
        assert_eq!(severity(LogType::Unsubscribe), 5);
        assert_eq!(severity(LogType::Information), 6);
        assert_eq!(severity(LogType::Debug), 7);
        assert_eq!(severity(LogType::Websockets), 7);
        assert_eq!(severity(LogType::Internal), 3);
    }

    /// Checks the shape without depending on the machine's time zone.
    fn check_shape(packet: &str, pri: u32, pid: u32, text: &str) {
        let head = format!("<{pri}>");
        assert!(packet.starts_with(&head), "{packet}");
        let rest = &packet[head.len()..];
        // "Mmm dd hh:mm:ss " = 16 bytes.
        let (stamp, tail) = rest.split_at(16);
        let b = stamp.as_bytes();
        assert!(b[..3].iter().all(u8::is_ascii_alphabetic), "{stamp:?}");
        assert_eq!(b[3], b' ');
        assert!(b[4] == b' ' || b[4].is_ascii_digit(), "{stamp:?}");
        assert!(b[5].is_ascii_digit(), "{stamp:?}");
        assert_eq!(&stamp[6..7], " ");
        assert_eq!(&stamp[9..10], ":");
        assert_eq!(&stamp[12..13], ":");
        assert_eq!(&stamp[15..16], " ");
        assert_eq!(tail, format!("mosquitto[{pid}]: {text}"));
    }

    #[test]
    fn packet_is_glibc_shaped() {
        let p = format_packet(
            facility(None),
            LogType::Notice,
            1_700_000_000,
            4242,
            "1700000000: New connection from 127.0.0.1:5 on port 1883.",
        );
        check_shape(
            &p,
            29,
            4242,
            "1700000000: New connection from 127.0.0.1:5 on port 1883.",
        );
        let p = format_packet(facility(Some(3)), LogType::Error, 1_700_000_000, 1, "x");
        check_shape(&p, 155, 1, "x");
    }

    #[test]
    fn day_is_space_padded_in_utc() {
        // 2023-11-05 03:04:05 UTC; only meaningful when TZ is UTC, which
        // the check below detects from the hour.
        let p = format_packet(facility(None), LogType::Information, 1_699_153_445, 7, "t");
        if crate::sys::time::strftime_local("%z", 0).as_deref() == Some("+0000") {
            assert_eq!(p, "<30>Nov  5 03:04:05 mosquitto[7]: t");
        }
    }

    #[test]
    fn sends_to_a_stand_in_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut s = SyslogSocket::new(&path);
        let packet = format_packet(facility(Some(1)), LogType::Warning, 0, 9, "0: w");
        s.send(packet.as_bytes());
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], packet.as_bytes());
        check_shape(std::str::from_utf8(&buf[..n]).unwrap(), 140, 9, "0: w");

        // The daemon restarts: the socket file is replaced; the next line
        // reconnects and arrives.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.send(b"again");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"again");
    }

    #[test]
    fn missing_socket_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SyslogSocket::new(&dir.path().join("absent"));
        s.send(b"nobody listens");
        assert!(s.sock.is_none());
    }
}
