//! Shared helpers for integration tests: start the real `culex` binary on a
//! free loopback port with a config file, drive it with real clients, stop
//! it when the test ends.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use culex::codec::{self, Packet, ProtocolVersion};

pub const BIN: &str = env!("CARGO_BIN_EXE_culex");

/// Debian's mosquitto 2.0.11, the behavioural reference of the
/// compatibility tests (`tests/compat_*.rs`, `tests/mqttjs.rs`).
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A running broker. Killed (SIGKILL if SIGTERM is not enough) on drop.
pub struct Culex {
    pub child: Option<Child>,
    pub port: u16,
    /// Two more free ports, substituted for `{port2}` and `{port3}` in the
    /// config (extra listeners).
    pub port2: u16,
    pub port3: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Culex {
    /// Writes `config` (with `{port}` and `{dir}` substituted) to a temp dir
    /// and starts culex on it, waiting until the port accepts connections.
    pub fn start(config: &str) -> Culex {
        Culex::start_with(config, &[])
    }

    /// Like `start`, for a config that listens on `::1` only.
    pub fn start_ipv6(config: &str) -> Culex {
        Culex::launch(BIN, config, &[], "::1")
    }

    pub fn start_with(config: &str, files: &[(&str, &[u8])]) -> Culex {
        Culex::launch(BIN, config, files, "127.0.0.1")
    }

    /// Like `start_with`, for another broker binary with the same command
    /// line (`MOSQUITTO`): the same config runs on both for comparisons.
    pub fn start_program(program: &str, config: &str, files: &[(&str, &[u8])]) -> Culex {
        Culex::launch(program, config, files, "127.0.0.1")
    }

    fn launch(program: &str, config: &str, files: &[(&str, &[u8])], host: &str) -> Culex {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let (port2, port3) = (free_port(), free_port());
        for (name, data) in files {
            std::fs::write(dir.path().join(name), data).expect("write file");
        }
        // Started as root (CI, the Docker image), culex drops to user
        // `mosquitto` before reading its files, as mosquitto does: let that
        // user in.
        world_readable(dir.path());
        let text = config
            .replace("{port}", &port.to_string())
            .replace("{port2}", &port2.to_string())
            .replace("{port3}", &port3.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        let conf = dir.path().join("culex.conf");
        std::fs::write(&conf, text).expect("write config");
        let log = dir.path().join("stderr.log");
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let mut c = Culex {
            child: Some(child),
            port,
            port2,
            port3,
            dir,
            log,
        };
        c.wait_ready(host);
        c
    }

    fn wait_ready(&mut self, host: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect((host, self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("culex exited early with {status}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("culex did not open port {}: {}", self.port, self.log_text());
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM and wait (bounded) for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("culex did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle` (bounded).
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never contained {needle:?}:\n{}", self.log_text());
    }
}

impl Drop for Culex {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Opens `dir` (and the files in it) to every user, for a broker that has
/// dropped root.
pub fn world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644));
        }
    }
}

/// Runs culex with arguments to completion (bounded), for CLI/config tests.
pub fn run_culex(args: &[&str], cwd: &Path) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn culex");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("culex {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Panics with a clear message if a client tool is missing: tests never
/// skip silently. `scripts/test` installs them.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/test, which installs it"
    );
}

/// Runs a client command with a time limit; returns its output.
pub fn run_client(cmd: &str, args: &[&str], timeout: Duration) -> Output {
    require(cmd);
    let mut child = Command::new(cmd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A background `mosquitto_sub` whose output is read after it exits.
pub struct Sub {
    child: Child,
}

impl Sub {
    /// Starts `mosquitto_sub` with `args` and waits until it has subscribed
    /// (it prints nothing until then, so we wait for the broker's SUBACK by
    /// polling the broker log when `-v`-style logging is off: a short sleep
    /// bounded by the connection appearing).
    pub fn start(args: &[&str]) -> Sub {
        require("mosquitto_sub");
        let child = Command::new("mosquitto_sub")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        // mosquitto_sub connects and subscribes within a few ms on loopback.
        std::thread::sleep(Duration::from_millis(300));
        Sub { child }
    }

    /// Waits (bounded) for it to exit (use `-C N` or `-W S`), returns stdout.
    pub fn output(mut self, timeout: Duration) -> (String, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        let _ = self.child.wait();
        (out, err)
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw MQTT client over a plain socket, using culex's own codec to build
/// and read packets (malformed input is written as raw bytes).
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub version: ProtocolVersion,
}

impl Raw {
    /// Like `connect`, giving up after `timeout` instead of panicking.
    pub fn try_connect(port: u16, timeout: Duration) -> std::io::Result<Raw> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Raw {
            stream,
            buf: Vec::new(),
            version: ProtocolVersion::V311,
        })
    }

    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Raw {
            stream,
            buf: Vec::new(),
            version: ProtocolVersion::V311,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    pub fn send(&mut self, packet: &Packet) {
        let mut out = Vec::new();
        codec::encode(packet, self.version, &mut out);
        self.send_raw(&out);
    }

    /// The next packet, or `None` if the broker closed the connection (or
    /// nothing came within the read timeout).
    pub fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Ok(Some((p, n))) = codec::decode(&self.buf, Some(self.version), 0) {
                self.buf.drain(..n);
                return Some(p);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True if the broker closed the socket (EOF) within the timeout.
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 256];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    );
                }
            }
        }
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A 3.1.1/5.0 CONNECT packet.
pub fn connect_packet(version: ProtocolVersion, id: &str, user: Option<(&str, &str)>) -> Packet {
    Packet::Connect(Box::new(codec::Connect {
        version,
        bridge: false,
        clean_start: true,
        keep_alive: 60,
        client_id: id.to_string(),
        will: None,
        username: user.map(|u| u.0.to_string()),
        password: user.map(|u| u.1.as_bytes().to_vec()),
        properties: codec::Properties::default(),
    }))
}

impl Raw {
    /// Connects with the given id/credentials (3.1.1 unless `version` is
    /// changed first) and expects CONNACK 0.
    pub fn login(port: u16, version: ProtocolVersion, id: &str, user: Option<(&str, &str)>) -> Raw {
        let mut raw = Raw::connect(port);
        raw.version = version;
        raw.send(&connect_packet(version, id, user));
        match raw.recv() {
            Some(Packet::Connack(c)) if c.code == 0 => raw,
            other => panic!("{id}: expected CONNACK 0, got {other:?}"),
        }
    }

    /// Subscribes to each filter at QoS 0..2 and returns the SUBACK codes.
    pub fn subscribe(&mut self, filters: &[(&str, u8)]) -> Vec<u8> {
        let filters = filters
            .iter()
            .map(|(f, q)| {
                (
                    codec::TopicFilter::new(*f).expect("filter"),
                    codec::SubscriptionOptions::with_qos(codec::Qos::from_u8(*q).expect("qos")),
                )
            })
            .collect();
        self.send(&Packet::Subscribe(codec::Subscribe {
            packet_id: codec::PacketId::new(1).expect("id"),
            filters,
            properties: Default::default(),
        }));
        loop {
            match self.recv() {
                Some(Packet::Suback(s)) => return s.codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Publishes and returns the acknowledgement's reason code (QoS 1/2), or
    /// None for QoS 0.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> Option<u8> {
        let qos = codec::Qos::from_u8(qos).expect("qos");
        self.send(&Packet::Publish(codec::Publish {
            dup: false,
            qos,
            retain,
            topic: topic.to_string(),
            packet_id: (qos != codec::Qos::AtMostOnce)
                .then(|| codec::PacketId::new(77).expect("id")),
            payload: payload.to_vec(),
            properties: Default::default(),
        }));
        match qos {
            codec::Qos::AtMostOnce => None,
            _ => loop {
                match self.recv() {
                    Some(Packet::Puback(a)) | Some(Packet::Pubrec(a)) => {
                        if qos == codec::Qos::ExactlyOnce {
                            self.send(&Packet::Pubrel(codec::Ack::new(a.packet_id)));
                            while !matches!(self.recv(), Some(Packet::Pubcomp(_)) | None) {}
                        }
                        return Some(a.reason);
                    }
                    Some(_) => continue,
                    None => panic!("no acknowledgement"),
                }
            },
        }
    }

    /// Every PUBLISH that arrives within `quiet` of the previous packet:
    /// (topic, payload, retain), acknowledging QoS 1.
    pub fn collect(&mut self, quiet: Duration) -> Vec<(String, String, bool)> {
        self.collect_until(quiet, Duration::from_secs(10))
    }

    /// Like `collect`, but stops after `total` even if messages keep coming.
    pub fn collect_until(
        &mut self,
        quiet: Duration,
        total: Duration,
    ) -> Vec<(String, String, bool)> {
        let _ = self.stream.set_read_timeout(Some(quiet));
        let deadline = Instant::now() + total;
        let mut got = Vec::new();
        while Instant::now() < deadline
            && let Some(p) = self.recv()
        {
            if let Packet::Publish(m) = p {
                if let Some(id) = m.packet_id {
                    self.send(&Packet::Puback(codec::Ack::new(id)));
                }
                got.push((
                    m.topic,
                    String::from_utf8_lossy(&m.payload).into_owned(),
                    m.retain,
                ));
            }
        }
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
        got
    }
}

/// culex and mosquitto 2.0.11 started on the same config (each on its own
/// free port and temp dir), for compatibility tests that run one scenario
/// against both and compare what the clients observe.
pub struct Pair {
    pub culex: Culex,
    pub mosquitto: Culex,
}

impl Pair {
    pub fn start(config: &str, files: &[(&str, &[u8])]) -> Pair {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is not installed: run scripts/test, which installs it"
        );
        Pair {
            culex: Culex::start_with(config, files),
            mosquitto: Culex::start_program(MOSQUITTO, config, files),
        }
    }

    /// Runs `scenario` against culex, then mosquitto: (culex, mosquitto).
    pub fn run(&self, scenario: impl Fn(&Culex) -> String) -> (String, String) {
        (scenario(&self.culex), scenario(&self.mosquitto))
    }
}

/// A python3 that has paho-mqtt: `CULEX_PYTHON`, else Debian's (which
/// python3-paho-mqtt installs into), else the one on PATH.
pub fn python_with_paho() -> String {
    if let Ok(p) = std::env::var("CULEX_PYTHON") {
        return p;
    }
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return candidate.to_string();
        }
    }
    panic!("no python3 with paho-mqtt: run scripts/test, which installs python3-paho-mqtt");
}

/// Runs a client scenario script to completion (bounded), asserts it
/// succeeded and returns what it printed.
pub fn run_scenario(mut cmd: Command, what: &str, timeout: Duration) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
