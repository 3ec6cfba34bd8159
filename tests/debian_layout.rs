//! Debian's stock layout (`/etc/mosquitto/mosquitto.conf` with `pid_file`,
//! `persistence`, `log_dest file` and `include_dir conf.d`) moved into a
//! temporary root: culex starts on it as mosquitto does, with an empty
//! `conf.d` (local-only mode) and with a `conf.d` file adding a listener.
//! The same layout is run with Debian's mosquitto 2.0.11 to check the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use culex::codec::ProtocolVersion;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A Debian layout under a temp root.
struct Layout {
    root: tempfile::TempDir,
}

impl Layout {
    /// Creates the tree; `conf_d` holds (name, text) files for conf.d.
    fn new(conf_d: &[(&str, &str)]) -> Layout {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // The broker drops root to `mosquitto`: it must reach the tree.
        std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in [
            "etc/mosquitto/conf.d",
            "run/mosquitto",
            "var/lib/mosquitto",
            "var/log/mosquitto",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for d in [
            "etc",
            "etc/mosquitto",
            "etc/mosquitto/conf.d",
            "run",
            "var",
            "var/lib",
            "var/log",
        ] {
            std::fs::set_permissions(r.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // What Debian's package and unit set up: the broker user owns its
        // run, state and log directories.
        let uid = mosquitto_id("-u");
        let gid = mosquitto_id("-g");
        for d in ["run/mosquitto", "var/lib/mosquitto", "var/log/mosquitto"] {
            let p = r.join(d);
            if std::os::unix::fs::chown(&p, Some(uid), Some(gid)).is_err() {
                // Not root: nothing is dropped; just let everyone write.
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
        }
        let conf = format!(
            "# Place your local configuration in /etc/mosquitto/conf.d/\n\
             #\n\
             # A full description of the configuration file is at\n\
             # /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\
             \n\
             pid_file {r}/run/mosquitto/mosquitto.pid\n\
             \n\
             persistence true\n\
             persistence_location {r}/var/lib/mosquitto/\n\
             \n\
             log_dest file {r}/var/log/mosquitto/mosquitto.log\n\
             \n\
             include_dir {r}/etc/mosquitto/conf.d\n",
            r = r.display()
        );
        std::fs::write(r.join("etc/mosquitto/mosquitto.conf"), conf).unwrap();
        std::fs::write(
            r.join("etc/mosquitto/conf.d/README"),
            "Any files placed in this directory that have a .conf ending will be loaded as\n\
             config files by the broker. Use this to make local changes to the broker.\n",
        )
        .unwrap();
        for (name, text) in conf_d {
            std::fs::write(r.join("etc/mosquitto/conf.d").join(name), text).unwrap();
        }
        for f in [
            "etc/mosquitto/mosquitto.conf",
            "etc/mosquitto/conf.d/README",
        ] {
            std::fs::set_permissions(r.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Layout { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn conf(&self) -> PathBuf {
        self.path("etc/mosquitto/mosquitto.conf")
    }

    fn pid_file(&self) -> PathBuf {
        self.path("run/mosquitto/mosquitto.pid")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("var/log/mosquitto/mosquitto.log")).unwrap_or_default()
    }
}

fn mosquitto_id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "mosquitto"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "no `mosquitto` user: scripts/test installs Debian's mosquitto, which creates it"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Lines without the `<unix seconds>: ` prefix.
fn strip(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.split_once(": ") {
            Some((ts, rest)) if ts.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

struct Running {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `bin -c <root>/etc/mosquitto/mosquitto.conf [args]` from `/`
/// (as systemd does) and waits for `port` to accept connections.
fn start(bin: &str, layout: &Layout, args: &[&str], port: u16) -> Running {
    let stderr = layout.path(&format!("stderr-{}.txt", bin.replace('/', "_")));
    let child = Command::new(bin)
        .arg("-c")
        .arg(layout.conf())
        .args(args)
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let mut r = Running {
        child: Some(child),
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(Ok(Some(s))) = r.child.as_mut().map(|c| c.try_wait()) {
            panic!(
                "{bin} exited with {s}: {}\n{}",
                std::fs::read_to_string(&r.stderr).unwrap_or_default(),
                layout.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: no listener on 127.0.0.1:{port}: {}",
            layout.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    r
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn stop(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "no exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// What every run must show; returns the log lines (prefix stripped).
fn check_run(bin: &str, layout: &Layout, args: &[&str], port: u16) -> Vec<String> {
    let mut b = start(bin, layout, args, port);
    // The pid file holds the pid: decimal, no newline.
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(layout.pid_file())
            && !p.is_empty()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "{bin}: no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pid, b.pid().to_string(), "{bin}");
    // Written by the unprivileged user.
    if culex::sys::is_root() {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(layout.pid_file()).unwrap();
        assert_eq!(meta.uid(), mosquitto_id("-u"), "{bin}: pid file owner");
    }
    // Clients connect and exchange a message.
    let mut sub = Raw::login(port, ProtocolVersion::V311, "debian-sub", None);
    assert_eq!(sub.subscribe(&[("debian/#", 1)]), vec![1]);
    let mut publ = Raw::login(port, ProtocolVersion::V311, "debian-pub", None);
    assert_eq!(publ.publish("debian/t", b"hello", 1, false), Some(0));
    let got = sub.collect(Duration::from_millis(500));
    assert_eq!(
        got,
        vec![("debian/t".to_string(), "hello".to_string(), false)],
        "{bin}"
    );
    drop(sub);
    drop(publ);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.stop(), 0, "{bin}: {}", b.stderr());
    assert!(!layout.pid_file().exists(), "{bin}: pid file left behind");
    // persistence true: the database was written at exit.
    assert!(
        layout.path("var/lib/mosquitto/mosquitto.db").exists(),
        "{bin}: no mosquitto.db"
    );
    strip(&layout.log())
}

/// The log with the broker's version line replaced, for comparing.
fn versionless(lines: &[String]) -> Vec<String> {
    let culex_v = culex::cli::version_line();
    lines
        .iter()
        .map(|l| {
            l.replace(&culex_v, "VERSION")
                .replace("mosquitto version 2.0.11", "VERSION")
        })
        .collect()
}

fn assert_start_lines(bin: &str, layout: &Layout, lines: &[String]) {
    let v = versionless(lines);
    assert_eq!(
        v.first().map(String::as_str),
        Some("VERSION starting"),
        "{bin}: {lines:?}"
    );
    assert_eq!(
        v[1],
        format!("Config loaded from {}.", layout.conf().display()),
        "{bin}"
    );
    assert!(
        v.contains(&"VERSION running".to_string()),
        "{bin}: {lines:?}"
    );
    // mosquitto logs `terminating` and then saves; culex saves first (a
    // known culex difference, see not_yet_* below): accept either order.
    let tail: Vec<&str> = v.iter().rev().take(2).map(String::as_str).collect();
    assert!(tail.contains(&"VERSION terminating"), "{bin}: {lines:?}");
    assert!(
        tail.iter()
            .any(|l| l.starts_with("Saving in-memory database to ")),
        "{bin}: {lines:?}"
    );
    assert!(
        v.iter()
            .any(|l| l.starts_with("New client connected from 127.0.0.1:")
                && l.contains(" as debian-pub (p2, c1, k60).")),
        "{bin}: {lines:?}"
    );
}

#[test]
fn empty_conf_d_is_local_only_mode() {
    assert!(Path::new(MOSQUITTO).exists(), "mosquitto is not installed");
    for bin in [BIN, MOSQUITTO] {
        let layout = Layout::new(&[]);
        let port = free_port();
        let lines = check_run(bin, &layout, &["-p", &port.to_string()], port);
        assert_start_lines(bin, &layout, &lines);
        assert!(
            lines.contains(&format!("Opening ipv4 listen socket on port {port}.")),
            "{bin}: {lines:?}"
        );
        if bin == MOSQUITTO {
            assert_eq!(
                local_only_warnings(&lines),
                LOCAL_ONLY.to_vec(),
                "{lines:?}"
            );
        }
    }
}

const LOCAL_ONLY: [&str; 3] = [
    "Starting in local only mode. Connections will only be possible from clients running on this machine.",
    "Create a configuration file which defines a listener to allow remote access.",
    "For more details see https://mosquitto.org/documentation/authentication-methods/",
];

fn local_only_warnings(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| LOCAL_ONLY.contains(l))
        .collect()
}

#[test]
fn local_only_warnings_go_to_the_log_file() {
    let layout = Layout::new(&[]);
    let port = free_port();
    let lines = check_run(BIN, &layout, &["-p", &port.to_string()], port);
    assert_eq!(
        local_only_warnings(&lines),
        LOCAL_ONLY.to_vec(),
        "{lines:?}"
    );
    assert_eq!(lines[2], LOCAL_ONLY[0], "{lines:?}");
}

#[test]
fn terminating_is_logged_before_the_final_save() {
    let port = free_port();
    let local = format!("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let layout = Layout::new(&[("local.conf", &local)]);
    let lines = check_run(BIN, &layout, &[], port);
    let n = lines.len();
    assert!(lines[n - 2].ends_with(" terminating"), "{lines:?}");
    assert!(
        lines[n - 1].starts_with("Saving in-memory database to "),
        "{lines:?}"
    );
}

#[test]
fn conf_d_listener_is_used() {
    assert!(Path::new(MOSQUITTO).exists(), "mosquitto is not installed");
    let mut logs = Vec::new();
    for bin in [BIN, MOSQUITTO] {
        let port = free_port();
        let local = format!("listener {port} 127.0.0.1\nallow_anonymous true\n");
        let layout = Layout::new(&[("local.conf", &local)]);
        std::fs::set_permissions(
            layout.path("etc/mosquitto/conf.d/local.conf"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let lines = check_run(bin, &layout, &[], port);
        assert_start_lines(bin, &layout, &lines);
        assert!(
            lines.contains(&format!("Opening ipv4 listen socket on port {port}.")),
            "{bin}: {lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("local only mode")),
            "{bin}: {lines:?}"
        );
        let shape: Vec<String> = versionless(&lines)
            .into_iter()
            .map(|l| {
                l.replace(&port.to_string(), "LPORT")
                    .replace(&layout.root.path().display().to_string(), "ROOT")
            })
            .filter(|l| !l.starts_with("New connection from") && !l.starts_with("New client"))
            .filter(|l| !l.starts_with("Client "))
            // Order differs at exit (see assert_start_lines).
            .filter(|l| !l.starts_with("Saving in-memory database"))
            .collect();
        logs.push(shape);
    }
    // Same start-up and shutdown lines as Debian's mosquitto.
    assert_eq!(logs[0], logs[1], "culex vs mosquitto");
}
