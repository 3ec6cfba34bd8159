//! The swap both ways for password files: a file written by culex_passwd
//! logs users into Debian's mosquitto 2.0.11, and a file written by
//! mosquitto_passwd logs them into culex, for both hash types.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CULEX_PASSWD: &str = env!("CARGO_BIN_EXE_culex_passwd");
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn login(port: u16, user: &str, pass: &str) -> bool {
    let port = port.to_string();
    run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            user,
            "-P",
            pass,
            "-t",
            "t",
            "-m",
            "x",
        ],
        Duration::from_secs(10),
    )
    .status
    .success()
}

fn make_with(tool: &str, file: &Path) {
    let f = file.display().to_string();
    for (args, user, pass) in [
        (vec!["-c", "-b"], "pbkdf2user", "secret one"),
        (vec!["-b", "-H", "sha512"], "sha512user", "s3cr:et"),
        (vec!["-b"], "utf8user", "pässwörd€"),
    ] {
        let mut a = args.clone();
        a.extend([f.as_str(), user, pass]);
        let out = Command::new(tool)
            .args(&a)
            .output()
            .expect("run password tool");
        assert!(
            out.status.success(),
            "{tool} {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn check_logins(port: u16) {
    assert!(login(port, "pbkdf2user", "secret one"));
    assert!(login(port, "sha512user", "s3cr:et"));
    assert!(login(port, "utf8user", "pässwörd€"));
    assert!(!login(port, "pbkdf2user", "wrong"));
}

#[test]
fn culex_passwd_files_work_in_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "mosquitto is not installed: run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    make_with(CULEX_PASSWD, &dir.path().join("passwd"));
    let port = free_port();
    std::fs::write(
        dir.path().join("m.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}/passwd\n",
            dir.path().display()
        ),
    )
    .unwrap();
    world_readable(dir.path());
    let mut child = Command::new(MOSQUITTO)
        .args(["-c", "m.conf"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    check_logins(port);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn mosquitto_passwd_files_work_in_culex() {
    require("mosquitto_passwd");
    let dir = tempfile::tempdir().unwrap();
    make_with("mosquitto_passwd", &dir.path().join("passwd"));
    let passwd = std::fs::read(dir.path().join("passwd")).unwrap();
    let b = Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[("passwd", &passwd)],
    );
    check_logins(b.port);
}
