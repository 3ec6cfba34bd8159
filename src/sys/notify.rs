//! systemd readiness notification (`sd_notify`) without libsystemd.
//!
//! With `Type=notify` systemd sets `$NOTIFY_SOCKET` to a unix datagram
//! socket: a path, or an abstract-namespace name written with a leading
//! `@`. A state such as `READY=1` is one datagram. Without the variable
//! every call is a no-op. mosquitto (built `WITH_SYSTEMD`) sends `READY=1`
//! once it is running and ignores failures; callers here may do the same.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sent once listeners are open: `mosquitto version X running`.
pub const READY: &str = "READY=1";
/// Sent when a clean shutdown begins.
pub const STOPPING: &str = "STOPPING=1";
/// Sent when a SIGHUP reload begins (follow with `READY=1` when done).
pub const RELOADING: &str = "RELOADING=1";

/// Sends `state` to `$NOTIFY_SOCKET`. `Ok(false)` when the variable is not
/// set (nothing sent), `Ok(true)` when the datagram went out.
pub fn notify(state: &str) -> io::Result<bool> {
    notify_to(std::env::var_os("NOTIFY_SOCKET").as_deref(), state)
}

/// `notify(READY)`.
pub fn ready() -> io::Result<bool> {
    notify(READY)
}

/// Sends `state` to the socket named by `socket` (the value of
/// `$NOTIFY_SOCKET`); `None` or empty → `Ok(false)`.
pub fn notify_to(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    let Some(socket) = socket.filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to NOTIFY_SOCKET",
        ));
    }
    Ok(true)
}

/// `/path` → filesystem socket; `@name` → abstract socket (Linux only).
/// Anything else is rejected, as sd_notify does.
fn socket_addr(socket: &OsStr) -> io::Result<SocketAddr> {
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(socket),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(b'@') => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn unset_is_a_no_op() {
        assert!(!notify_to(None, READY).unwrap());
        assert!(!notify_to(Some(OsStr::new("")), READY).unwrap());
    }

    #[test]
    fn path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(Some(path.as_os_str()), READY).unwrap());
        assert_eq!(recv(&server), "READY=1");
        assert!(notify_to(Some(path.as_os_str()), STOPPING).unwrap());
        assert_eq!(recv(&server), "STOPPING=1");
        assert!(notify_to(Some(path.as_os_str()), RELOADING).unwrap());
        assert_eq!(recv(&server), "RELOADING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("culex-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let env = format!("@{name}");
        assert!(notify_to(Some(OsStr::new(&env)), READY).unwrap());
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(notify_to(Some(OsStr::new("relative/path")), READY).is_err());
        let dir = tempfile::tempdir().unwrap();
        let nobody_listens = dir.path().join("none");
        assert!(notify_to(Some(nobody_listens.as_os_str()), READY).is_err());
    }
}
