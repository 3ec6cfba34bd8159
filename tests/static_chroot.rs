//! The swap into the `eclipse-mosquitto:2` image, without Docker: the static
//! binary from `scripts/build-static` alone in an otherwise empty root (no
//! libc, no NSS, no /etc/hosts), laid out as the image lays it out, started
//! as root the way the image's CMD starts mosquitto:
//!
//!     chroot <root> /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
//!
//! It must drop to `mosquitto` (uid/gid 1883, from the root's own
//! /etc/passwd), read its password file, serve an authenticated client,
//! refuse an anonymous one and write `/mosquitto/data/mosquitto.db` as 1883.
//!
//! Needs root (chroot, chown): `scripts/test` runs as root in CI and builds
//! the static binary before `cargo test`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, run_client};

const UID: u32 = 1883;
const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");
const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// Where `scripts/build-static` puts the broker.
fn static_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("x86_64-unknown-linux-gnu/release/culex");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/build-static first (scripts/test does)",
        bin.display()
    );
    bin
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test starts the broker as root inside a chroot, as the Docker \
         image does: run it as root (scripts/test in CI)"
    );
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

fn mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// An empty root with the image's layout: only the binary, passwd/group,
/// config, password file and data folder. `listener` is the config's
/// `listener` line.
fn image_root(listener: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    // uid 1883 must be able to walk "/" once it is the root.
    mode(r, 0o755);
    for d in [
        "usr/sbin",
        "etc",
        "mosquitto/config",
        "mosquitto/data",
        "mosquitto/log",
    ] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    for d in ["usr", "usr/sbin", "etc"] {
        mode(&r.join(d), 0o755);
    }
    let bin = r.join("usr/sbin/mosquitto");
    std::fs::copy(static_binary(), &bin).expect("copy static binary");
    mode(&bin, 0o755);
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/ash\n\
         mosquitto:x:1883:1883:mosquitto:/var/empty:/sbin/nologin\n",
    )
    .expect("passwd");
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:root\nmosquitto:x:1883:mosquitto\n",
    )
    .expect("group");
    mode(&r.join("etc/passwd"), 0o644);
    mode(&r.join("etc/group"), 0o644);
    std::fs::write(
        r.join("mosquitto/config/mosquitto.conf"),
        format!(
            "{listener}\n\
             persistence true\n\
             persistence_location /mosquitto/data/\n\
             password_file /mosquitto/config/passwd\n\
             allow_anonymous false\n"
        ),
    )
    .expect("config");
    std::fs::write(r.join("mosquitto/config/passwd"), PASSWD).expect("password file");
    // What the image's entrypoint does as root: chown -R mosquitto /mosquitto.
    // The password file is then readable by 1883 only (and root).
    for p in [
        "mosquitto",
        "mosquitto/config",
        "mosquitto/config/mosquitto.conf",
        "mosquitto/config/passwd",
        "mosquitto/data",
        "mosquitto/log",
    ] {
        chown(&r.join(p), UID);
    }
    mode(&r.join("mosquitto/config/passwd"), 0o600);
    mode(&r.join("mosquitto/data"), 0o700);
    root
}

/// The broker in its chroot; killed on drop if the test fails.
struct Jail {
    child: Option<Child>,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Jail {
    fn start(root: &Path) -> Jail {
        require_root();
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("stderr.log");
        let child = Command::new("chroot")
            .arg(root)
            .args([
                "/usr/sbin/mosquitto",
                "-c",
                "/mosquitto/config/mosquitto.conf",
            ])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn chroot (coreutils)");
        Jail {
            child: Some(child),
            log,
            _logdir: logdir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `chroot` execs the broker, so this is the broker's pid.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn wait_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().expect("running").try_wait() {
                panic!("broker exited early with {status}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("broker did not open port {port}:\n{}", self.log_text());
    }

    /// Waits (bounded) for the process to exit by itself.
    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker did not exit:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM");
        self.wait_exit()
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `Uid:`/`Gid:` lines of /proc/<pid>/status: real, effective, saved,
/// filesystem ids.
fn proc_ids(pid: u32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    line[key.len()..]
        .split_whitespace()
        .map(|v| v.parse().expect("id"))
        .collect()
}

fn publish(port: u16, user: Option<(&str, &str)>, topic: &str, msg: &str) -> (bool, String) {
    let port = port.to_string();
    let mut args = vec!["-h", "127.0.0.1", "-p", &port, "-q", "1", "-r"];
    if let Some((u, p)) = user {
        args.extend(["-u", u, "-P", p]);
    }
    args.extend(["-t", topic, "-m", msg]);
    let out = run_client("mosquitto_pub", &args, CLIENT_WAIT);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The retained message on `topic`, read with an authenticated client.
fn retained(port: u16, topic: &str) -> String {
    let port = port.to_string();
    let out = run_client(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            "alice",
            "-P",
            "secret",
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "5",
        ],
        CLIENT_WAIT,
    );
    assert!(
        out.status.success(),
        "mosquitto_sub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn static_binary_runs_alone_in_the_image_layout_as_uid_1883() {
    require_root();
    let port = free_port();
    let root = image_root(&format!("listener {port} 127.0.0.1"));
    let r = root.path();

    let mut broker = Jail::start(r);
    broker.wait_port(port);
    let pid = broker.pid();
    assert_eq!(proc_ids(pid, "Uid:"), [UID; 4], "{}", broker.log_text());
    assert_eq!(proc_ids(pid, "Gid:"), [UID; 4], "{}", broker.log_text());

    // Authenticated: alice/secret from the password file (readable by 1883
    // only) publishes a retained message and reads it back.
    let (ok, err) = publish(port, Some(("alice", "secret")), "image/swap", "static");
    assert!(ok, "alice refused: {err}\n{}", broker.log_text());
    assert_eq!(retained(port, "image/swap"), "static");
    // Anonymous and a wrong password are refused.
    let (ok, err) = publish(port, None, "image/anon", "x");
    assert!(!ok, "anonymous publish accepted");
    assert!(err.contains("not authorised"), "{err}");
    let (ok, _) = publish(port, Some(("alice", "wrong")), "image/anon", "x");
    assert!(!ok, "wrong password accepted");

    // SIGTERM: exit 0, db written by uid 1883.
    let status = broker.terminate();
    let log = broker.log_text();
    assert_eq!(status.code(), Some(0), "{log}");
    let db = r.join("mosquitto/data/mosquitto.db");
    let meta = std::fs::metadata(&db).unwrap_or_else(|e| panic!("{}: {e}\n{log}", db.display()));
    assert_eq!((meta.uid(), meta.gid()), (UID, UID), "db owner");
    assert!(
        !log.contains("should not be run as root"),
        "still root after the drop:\n{log}"
    );

    // Started again, it reads its db back (as 1883): the retained message
    // is still there.
    let mut again = Jail::start(r);
    again.wait_port(port);
    assert_eq!(
        retained(port, "image/swap"),
        "static",
        "{}",
        again.log_text()
    );
    assert_eq!(again.terminate().code(), Some(0), "{}", again.log_text());
}

#[test]
fn host_name_bind_address_comes_from_etc_hosts_or_fails_clearly() {
    require_root();
    // No /etc/hosts in the root and no NSS: an unknown name is a clear error
    // (exit 1), never a DNS query or a crash.
    let port = free_port();
    let root = image_root(&format!("listener {port} broker.example"));
    let mut broker = Jail::start(root.path());
    let status = broker.wait_exit();
    let log = broker.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(
            "Error: Unable to resolve bind address broker.example: not found in /etc/hosts."
        ),
        "{log}"
    );

    // The same name listed in the root's /etc/hosts binds.
    std::fs::write(
        root.path().join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 broker.example broker\n",
    )
    .expect("hosts");
    mode(&root.path().join("etc/hosts"), 0o644);
    let mut broker = Jail::start(root.path());
    broker.wait_port(port);
    let (ok, err) = publish(port, Some(("alice", "secret")), "image/hosts", "ok");
    assert!(ok, "{err}\n{}", broker.log_text());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log_text());
}

/// OpenSSL is linked into the static binary: in the image layout (no
/// /usr/lib/ssl, no openssl.cnf, no libssl) it serves TLS with the man
/// page's v1 certificate and TLS-PSK, as the image's mosquitto would.
#[test]
fn static_binary_serves_tls_and_psk_with_its_own_openssl() {
    require_root();
    common::require("openssl");
    let (tls_port, psk_port) = (free_port(), free_port());
    let root = image_root(&format!(
        "listener {tls_port} 127.0.0.1\n\
         certfile /mosquitto/config/certs/server.crt\n\
         keyfile /mosquitto/config/certs/server.key\n\
         listener {psk_port} 127.0.0.1\n\
         psk_hint culex\n\
         use_identity_as_username true\n\
         psk_file /mosquitto/config/psk"
    ));
    let r = root.path();
    let certs = r.join("mosquitto/config/certs");
    std::fs::create_dir_all(&certs).expect("mkdir certs");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    // mosquitto-tls(7), non-interactive; the server certificate is X.509 v1.
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-days",
        "365",
        "-extensions",
        "v3_ca",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=image CA",
    ]);
    openssl(&["genrsa", "-out", "server.key", "2048"]);
    openssl(&[
        "req",
        "-out",
        "server.csr",
        "-key",
        "server.key",
        "-new",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "365",
    ]);
    std::fs::write(r.join("mosquitto/config/psk"), "sensor1:c0ffee42\n").expect("psk file");
    for p in ["mosquitto/config/certs", "mosquitto/config/psk"] {
        chown(&r.join(p), UID);
    }
    for f in std::fs::read_dir(&certs).expect("certs") {
        chown(&f.expect("entry").path(), UID);
    }
    let ca = certs.join("ca.crt").display().to_string();

    let mut broker = Jail::start(r);
    broker.wait_port(tls_port);
    broker.wait_port(psk_port);
    let tls = tls_port.to_string();
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tls,
            "--cafile",
            &ca,
            "-u",
            "alice",
            "-P",
            "secret",
            "-q",
            "1",
            "-t",
            "image/tls",
            "-m",
            "over tls",
        ],
        CLIENT_WAIT,
    );
    assert!(
        out.status.success(),
        "TLS publish: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log_text()
    );
    let psk = psk_port.to_string();
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &psk,
            "--psk",
            "c0ffee42",
            "--psk-identity",
            "sensor1",
            "-q",
            "1",
            "-t",
            "image/psk",
            "-m",
            "over psk",
        ],
        CLIENT_WAIT,
    );
    assert!(
        out.status.success(),
        "PSK publish: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log_text()
    );
    let log = broker.log_text();
    assert!(log.contains(" as "), "{log}");
    assert_eq!(broker.terminate().code(), Some(0), "{log}");
}
