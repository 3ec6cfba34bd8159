//! systemd `Type=notify` (Debian's mosquitto.service): a stand-in for
//! systemd listens on `$NOTIFY_SOCKET` and must see `READY=1` once culex
//! serves clients, and `STOPPING=1` after SIGTERM.
//!
//! Started as root, culex drops to `mosquitto` (or `nobody`) before it
//! sends `READY=1` (broker-behaviour.md §1 steps 3 and 11), so the socket
//! and its folder are opened to every user here; systemd's own socket is
//! world-writable for the same reason.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, free_port};

struct Broker {
    child: Child,
    log: std::path::PathBuf,
}

impl Broker {
    fn start(dir: &Path, notify_socket: &std::ffi::OsStr, port: u16) -> Broker {
        let conf = dir.join("culex.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .expect("config");
        let log = dir.join("stderr.log");
        let child = Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .env("NOTIFY_SOCKET", notify_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn culex");
        Broker { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "culex did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next datagram, or a panic with the broker's log after 10 s.
fn next_state(sock: &UnixDatagram, broker: &Broker) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    match sock.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => panic!(
            "no notification on NOTIFY_SOCKET ({e}):\n{}",
            broker.log_text()
        ),
    }
}

fn ready_then_stopping(sock: &UnixDatagram, notify_socket: &std::ffi::OsStr, dir: &Path) {
    let port = free_port();
    let mut broker = Broker::start(dir, notify_socket, port);
    assert_eq!(next_state(sock, &broker), "READY=1");
    // READY=1 means clients are served: the listener is open now.
    std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("READY=1 before the listener: {e}\n{}", broker.log_text()));
    assert!(
        broker.log_text().contains(" running"),
        "{}",
        broker.log_text()
    );

    let status = broker.terminate();
    assert_eq!(next_state(sock, &broker), "STOPPING=1");
    assert_eq!(status.code(), Some(0), "{}", broker.log_text());
}

#[test]
fn path_socket_gets_ready_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    ready_then_stopping(&sock, path.as_os_str(), dir.path());
}

#[test]
fn abstract_socket_gets_ready_and_stopping() {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("culex-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    ready_then_stopping(&sock, std::ffi::OsStr::new(&format!("@{name}")), dir.path());
}

#[test]
fn unreachable_notify_socket_is_ignored() {
    // Nobody listens on the socket: culex starts and stops as usual, as
    // mosquitto ignores sd_notify errors.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let missing = dir.path().join("nobody-listens");
    let mut broker = Broker::start(dir.path(), missing.as_os_str(), port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{}", broker.log_text());
        if let Ok(Some(s)) = broker.child.try_wait() {
            panic!("exited with {s}:\n{}", broker.log_text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log_text());
}
