//! Command line, exit codes and error messages, compared with Debian's
//! mosquitto on the same files where it is installed (scripts/test installs
//! it).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Lines without mosquitto's `<unix seconds>: ` prefix.
fn strip(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.split_once(": ") {
            Some((ts, rest)) if ts.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

fn run(bin: &str, args: &[&str], cwd: &Path) -> (i32, Vec<String>) {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let mut lines = strip(&String::from_utf8_lossy(&out.stdout));
    lines.extend(strip(&String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), lines)
}

/// (name, config text, expected exit code, the error line, the location line)
fn broken_configs() -> Vec<(&'static str, String, i32, &'static str, &'static str)> {
    vec![
        (
            "unknown word",
            "listener 1883\nbogus_option 1\n".into(),
            3,
            "Error: Unknown configuration variable \"bogus_option\".",
            "Error found at bad.conf:2.",
        ),
        (
            "missing argument",
            "listener 1883\nallow_anonymous\n".into(),
            3,
            "Error: Empty allow_anonymous value in configuration.",
            "Error found at bad.conf:2.",
        ),
        (
            "bad boolean",
            "allow_anonymous maybe\n".into(),
            3,
            "Error: Invalid allow_anonymous value (maybe).",
            "Error found at bad.conf:1.",
        ),
        (
            "bad port",
            "listener 70000\n".into(),
            3,
            "Error: Invalid port value (70000).",
            "Error found at bad.conf:1.",
        ),
        (
            "tab instead of space",
            "listener\t1883\n".into(),
            3,
            "Error: Unknown configuration variable \"listener\t1883\".",
            "Error found at bad.conf:1.",
        ),
        (
            "duplicate string",
            "password_file a\npassword_file b\n".into(),
            3,
            "Error: Duplicate password_file value in configuration.",
            "Error found at bad.conf:2.",
        ),
        (
            "bridge option before connection",
            "address 127.0.0.1\n".into(),
            3,
            "Error: Invalid bridge configuration.",
            "Error found at bad.conf:1.",
        ),
        (
            "duplicate bridge name",
            "connection a\naddress 127.0.0.1\ntopic #\nconnection a\n".into(),
            3,
            "Error: Duplicate bridge name \"a\".",
            "Error found at bad.conf:4.",
        ),
        (
            "bad bridge direction",
            "connection a\naddress 127.0.0.1\ntopic # sideways\n".into(),
            3,
            "Error: Invalid bridge topic direction 'sideways'.",
            "Error found at bad.conf:3.",
        ),
        (
            "bad bridge qos",
            "connection a\naddress 127.0.0.1\ntopic # in 3\n".into(),
            3,
            "Error: Invalid bridge QoS level '3'.",
            "Error found at bad.conf:3.",
        ),
        (
            "empty bridge pattern without both prefixes",
            "connection a\naddress 127.0.0.1\ntopic \"\" in 0 a/\n".into(),
            3,
            "Error: Invalid bridge remapping.",
            "Error found at bad.conf:3.",
        ),
        (
            "bridge address given twice",
            "connection a\naddress 127.0.0.1\naddress 127.0.0.1\n".into(),
            3,
            "Error: Invalid bridge configuration.",
            "Error found at bad.conf:3.",
        ),
        (
            "bridge port out of range",
            "connection a\naddress 127.0.0.1:70000\n".into(),
            3,
            "Error: Invalid port value (70000).",
            "Error found at bad.conf:2.",
        ),
        (
            "manual bridge start",
            "connection a\naddress 127.0.0.1\ntopic #\nstart_type manual\n".into(),
            3,
            "Error: Manual start_type not supported.",
            "Error found at bad.conf:4.",
        ),
        (
            "bridge backoff cap below base",
            "connection a\naddress 127.0.0.1\ntopic #\nrestart_timeout 10 5\n".into(),
            3,
            "Error: backoff cap is lower than the base in restart_timeout.",
            "Error found at bad.conf:4.",
        ),
        (
            "bad bridge protocol version",
            "connection a\naddress 127.0.0.1\ntopic #\nbridge_protocol_version mqttv5\n".into(),
            3,
            "Error: Invalid bridge_protocol_version value (mqttv5).",
            "Error found at bad.conf:4.",
        ),
        (
            // Checked after the whole file: mosquitto names no line.
            "bridge without topics",
            "connection a\naddress 127.0.0.1\n".into(),
            3,
            "Error: Invalid bridge configuration: no topics defined.",
            "Error: Invalid bridge configuration: no topics defined.",
        ),
        (
            "bridge without address",
            "connection a\ntopic #\n".into(),
            3,
            "Error: Invalid bridge configuration: no remote addresses defined.",
            "Error: Invalid bridge configuration: no remote addresses defined.",
        ),
        (
            "bridge local client ids clash",
            "connection a\naddress 127.0.0.1\ntopic #\nclientid x\nconnection b\naddress 127.0.0.1\ntopic #\nclientid x\n".into(),
            3,
            "Error: Bridge local_clientid 'local.x' is not unique. Try changing or setting the local_clientid value for one of the bridges.",
            "Error: Bridge local_clientid 'local.x' is not unique. Try changing or setting the local_clientid value for one of the bridges.",
        ),
    ]
}

#[test]
fn broken_configs_exit_3_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, code, error, location) in broken_configs() {
        std::fs::write(dir.path().join("bad.conf"), &text).unwrap();
        let (got_code, lines) = run(BIN, &["-c", "bad.conf"], dir.path());
        assert_eq!(got_code, code, "{name}: {lines:?}");
        assert!(lines.iter().any(|l| l == error), "{name}: {lines:?}");
        assert!(lines.iter().any(|l| l == location), "{name}: {lines:?}");
    }
}

#[test]
fn broken_configs_fail_like_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "mosquitto is not installed: run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, text, _, _, _) in broken_configs() {
        std::fs::write(dir.path().join("bad.conf"), &text).unwrap();
        let (ours, our_lines) = run(BIN, &["-c", "bad.conf"], dir.path());
        let (theirs, their_lines) = run(MOSQUITTO, &["-c", "bad.conf"], dir.path());
        assert_eq!(
            ours, theirs,
            "{name}: exit codes differ\nculex: {our_lines:?}\nmosquitto: {their_lines:?}"
        );
        let errors = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.starts_with("Error"))
                .cloned()
                .collect()
        };
        assert_eq!(errors(&our_lines), errors(&their_lines), "{name}");
    }
}

#[test]
fn unreadable_password_file_exits_13() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.conf"),
        "listener 1\npassword_file /nonexistent/passwd\n",
    )
    .unwrap();
    let (code, lines) = run(BIN, &["-c", "c.conf"], dir.path());
    assert_eq!(code, 13, "{lines:?}");
    assert!(
        lines.contains(&"Error: Unable to open pwfile \"/nonexistent/passwd\".".to_string()),
        "{lines:?}"
    );
}

#[test]
fn port_in_use_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.conf"),
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let (code, lines) = run(BIN, &["-c", "c.conf"], dir.path());
    assert_eq!(code, 1, "{lines:?}");
    assert!(
        lines.contains(&"Error: Address already in use".to_string()),
        "{lines:?}"
    );
}

#[test]
fn help_and_unknown_options_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines) = run(BIN, &["-h"], dir.path());
    assert_eq!(code, 3);
    assert!(lines.iter().any(|l| l.starts_with("Usage: ")), "{lines:?}");
    let (code, lines) = run(BIN, &["--bogus"], dir.path());
    assert_eq!(code, 3);
    assert!(
        lines.contains(&"Error: Unknown option '--bogus'.".to_string()),
        "{lines:?}"
    );
    let (code, lines) = run(BIN, &["-c"], dir.path());
    assert_eq!(code, 3);
    assert!(
        lines.contains(&"Error: -c argument given, but no config file specified.".to_string()),
        "{lines:?}"
    );
}

#[test]
fn sigterm_exits_0_after_closing_listeners() {
    let mut b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let port = b.port;
    let status = b.stop();
    assert_eq!(status.code(), Some(0));
    let log = strip(&b.log_text());
    assert!(log.iter().any(|l| l.ends_with(" terminating")), "{log:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn no_listener_means_localhost_only_with_anonymous_allowed() {
    // Local-only mode on a -p port; the config names no listener.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.conf"), "# nothing but a comment\n").unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["-c", "c.conf", "-p", &port.to_string()])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "no listener on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "t",
            "-m",
            "anon",
        ],
        Duration::from_secs(5),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "anonymous must be allowed in local-only mode"
    );
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("Starting in local only mode."), "{err}");
}
