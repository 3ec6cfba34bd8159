//! mosquitto.db: swap in (mosquitto's file loads), restart, swap back
//! (mosquitto loads culex's file), and bad files.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use culex::codec::{self, Packet, ProtocolVersion};

const SAMPLE: &[u8] = include_bytes!("../testdata/mosquitto-db/sample-2.0.11.db");
const QUIET: Duration = Duration::from_millis(500);
const CONF: &str = "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\n";

/// A session-resuming CONNECT (clean session/start 0).
fn resume(raw: &mut Raw, id: &str, version: ProtocolVersion, user: Option<(&str, &str)>) -> bool {
    raw.version = version;
    let Packet::Connect(mut c) = connect_packet(version, id, user) else {
        unreachable!()
    };
    c.clean_start = false;
    if version == ProtocolVersion::V5 {
        c.properties.session_expiry_interval = Some(3600);
    }
    raw.send(&Packet::Connect(c));
    match raw.recv() {
        Some(Packet::Connack(a)) if a.code == 0 => a.session_present,
        other => panic!("{id}: {other:?}"),
    }
}

/// (topic, payload, qos, retain, subscription ids, user properties)
type Seen = (String, String, u8, bool, Vec<u32>, Vec<(String, String)>);

fn drain(raw: &mut Raw) -> Vec<Seen> {
    let _ = raw.stream.set_read_timeout(Some(QUIET));
    let mut got = Vec::new();
    while let Some(p) = raw.recv() {
        match p {
            Packet::Publish(m) => {
                match (m.qos, m.packet_id) {
                    (codec::Qos::AtLeastOnce, Some(id)) => {
                        raw.send(&Packet::Puback(codec::Ack::new(id)))
                    }
                    (codec::Qos::ExactlyOnce, Some(id)) => {
                        raw.send(&Packet::Pubrec(codec::Ack::new(id)))
                    }
                    _ => {}
                }
                got.push((
                    m.topic,
                    String::from_utf8_lossy(&m.payload).into_owned(),
                    m.qos.as_u8(),
                    m.retain,
                    m.properties.subscription_identifiers.clone(),
                    m.properties.user_properties.clone(),
                ));
            }
            Packet::Pubrel(a) => raw.send(&Packet::Pubcomp(codec::Ack::new(a.packet_id))),
            _ => {}
        }
    }
    got
}

fn seen(topic: &str, payload: &str, qos: u8, retain: bool) -> Seen {
    (topic.into(), payload.into(), qos, retain, vec![], vec![])
}

fn retained_snapshot(port: u16) -> Vec<(String, String)> {
    let mut r = Raw::login(port, ProtocolVersion::V311, "snapshot", None);
    r.subscribe(&[("#", 0)]);
    let mut v: Vec<_> = r
        .collect(QUIET)
        .into_iter()
        .map(|(t, p, retain)| {
            assert!(retain, "{t} must come flagged retained");
            (t, p)
        })
        .collect();
    v.sort();
    v
}

fn sample_retained() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("sensors/temp", "21.5"),
        ("sensors/humidity", "45"),
        ("home/status", "online"),
        ("v5/props", "with-props"),
        ("bin/blob", "\u{0}\u{1}\u{2}\u{fffd}\u{7f}"),
        ("a/retained", "retained-and-queued"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    v.sort();
    v
}

#[test]
fn mosquittos_sample_db_is_all_there() {
    let b = Culex::start_with(CONF, &[("mosquitto.db", SAMPLE)]);
    assert_eq!(retained_snapshot(b.port), sample_retained());

    let mut keep1 = Raw::connect(b.port);
    assert!(resume(
        &mut keep1,
        "keep1",
        ProtocolVersion::V311,
        Some(("keepuser", "x"))
    ));
    assert_eq!(
        drain(&mut keep1),
        vec![
            seen("a/retained", "retained-and-queued", 1, false),
            seen("a/one", "first", 1, false),
            seen("a/two", "second", 1, false),
        ]
    );
    // The subscription came back too: a new message arrives without SUBSCRIBE.
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    p.publish("a/new", b"live", 1, false);
    assert_eq!(drain(&mut keep1), vec![seen("a/new", "live", 1, false)]);

    let mut keep5 = Raw::connect(b.port);
    assert!(resume(&mut keep5, "keep5", ProtocolVersion::V5, None));
    assert_eq!(
        drain(&mut keep5),
        vec![
            (
                "b/x/c".into(),
                "for-keep5".into(),
                2,
                false,
                vec![42],
                vec![("k".into(), "v".into())]
            ),
            (
                "b/y/c".into(),
                "second-for-keep5".into(),
                1,
                false,
                vec![42],
                vec![]
            ),
            seen("s/shared", "to-shared-group", 1, false),
        ]
    );
}

fn restart(b: &mut Culex) -> Culex {
    let conf = std::fs::read_to_string(b.path("culex.conf")).unwrap();
    let status = b.stop();
    assert_eq!(status.code(), Some(0));
    let db_after = std::fs::read(b.path("mosquitto.db")).unwrap();
    assert!(!db_after.is_empty());
    // A new broker on the same directory: reuse the file.
    let template = conf
        .replace(&b.port.to_string(), "{port}")
        .replace(&b.dir.path().display().to_string(), "{dir}");
    Culex::start_with(&template, &[("mosquitto.db", &db_after)])
}

#[test]
fn retained_sessions_and_queues_survive_a_restart() {
    let mut b = Culex::start(CONF);
    let mut d = Raw::connect(b.port);
    resume(&mut d, "durable", ProtocolVersion::V311, None);
    assert_eq!(d.subscribe(&[("q/#", 2)]), vec![2]);
    d.shutdown();
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    p.publish("keep/me", b"retained", 1, true);
    p.publish("q/1", b"queued-1", 1, false);
    p.publish("q/2", b"queued-2", 2, false);
    drop(p);
    let b2 = restart(&mut b);
    assert_eq!(
        retained_snapshot(b2.port),
        vec![("keep/me".into(), "retained".into())]
    );
    let mut d = Raw::connect(b2.port);
    assert!(resume(&mut d, "durable", ProtocolVersion::V311, None));
    assert_eq!(
        drain(&mut d),
        vec![
            seen("q/1", "queued-1", 1, false),
            seen("q/2", "queued-2", 2, false)
        ]
    );
}

#[test]
fn sigusr1_save_survives_kill_9() {
    let b = Culex::start(CONF);
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    p.publish("saved/by/usr1", b"yes", 1, true);
    b.signal("USR1");
    b.wait_log("Saving in-memory database to");
    std::thread::sleep(Duration::from_millis(200));
    b.signal("KILL");
    std::thread::sleep(Duration::from_millis(200));
    let db = std::fs::read(b.path("mosquitto.db")).expect("saved");
    let b2 = Culex::start_with(CONF, &[("mosquitto.db", &db)]);
    assert_eq!(
        retained_snapshot(b2.port),
        vec![("saved/by/usr1".into(), "yes".into())]
    );
}

#[test]
fn a_corrupt_or_truncated_db_stops_start_up_and_is_left_alone() {
    let mut flipped = SAMPLE.to_vec();
    flipped[0] ^= 0xFF;
    for (name, bytes, needle) in [
        (
            "truncated",
            SAMPLE[..SAMPLE.len() - 7].to_vec(),
            "truncated",
        ),
        ("bad magic", flipped, ""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mosquitto.db"), &bytes).unwrap();
        std::fs::write(
            dir.path().join("c.conf"),
            format!(
                "listener {} 127.0.0.1\npersistence true\npersistence_location {}/\n",
                free_port(),
                dir.path().display()
            ),
        )
        .unwrap();
        world_readable(dir.path());
        let out = run_culex(&["-c", "c.conf"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("Error: Couldn't open database"),
            "{name}: {err}"
        );
        assert!(
            err.contains("mosquitto.db") && err.contains(needle),
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("mosquitto.db")).unwrap(),
            bytes,
            "{name}: file changed"
        );
    }
}

#[test]
fn a_failing_save_is_logged_and_the_broker_keeps_running() {
    let b = Culex::start_with(CONF, &[("mosquitto.db", SAMPLE)]);
    // culex runs as user `mosquitto` (dropped from root): a root-owned,
    // read-only directory makes the save fail.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    b.signal("USR1");
    b.wait_log("Error saving in-memory database");
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(std::fs::read(b.path("mosquitto.db")).unwrap(), SAMPLE);
    assert_eq!(retained_snapshot(b.port), sample_retained());
}

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(dir: &Path) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "mosquitto is not installed: run scripts/test"
        );
        let port = free_port();
        std::fs::write(
            dir.join("m.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n", dir.display()),
        )
        .unwrap();
        world_readable(dir);
        let child = Command::new(MOSQUITTO)
            .args(["-c", "m.conf"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, port }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn swap_back_mosquitto_loads_what_culex_saved_and_the_other_way_round() {
    // culex builds state and saves it.
    let mut b = Culex::start(CONF);
    let mut d = Raw::connect(b.port);
    resume(&mut d, "device", ProtocolVersion::V311, None);
    d.subscribe(&[("cmd/#", 1)]);
    d.shutdown();
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    p.publish("zigbee2mqtt/lamp", b"{\"state\":\"ON\"}", 1, true);
    p.publish("cmd/reboot", b"now", 1, false);
    drop(p);
    assert_eq!(b.stop().code(), Some(0));

    // mosquitto 2.0.11 on culex's file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(b.path("mosquitto.db"), dir.path().join("mosquitto.db")).unwrap();
    let m = Mosquitto::start(dir.path());
    assert_eq!(
        retained_snapshot(m.port),
        vec![("zigbee2mqtt/lamp".into(), "{\"state\":\"ON\"}".into())]
    );
    let mut d = Raw::connect(m.port);
    assert!(
        resume(&mut d, "device", ProtocolVersion::V311, None),
        "mosquitto lost the session"
    );
    assert_eq!(drain(&mut d), vec![seen("cmd/reboot", "now", 1, false)]);
    d.shutdown();
    // mosquitto queues another one and saves on SIGTERM.
    let mut p = Raw::login(m.port, ProtocolVersion::V311, "pub2", None);
    p.publish("cmd/update", b"later", 1, false);
    drop(p);
    std::thread::sleep(Duration::from_millis(100));
    m.stop();

    // And culex again on mosquitto's file.
    let db = std::fs::read(dir.path().join("mosquitto.db")).unwrap();
    let c = Culex::start_with(CONF, &[("mosquitto.db", &db)]);
    assert_eq!(
        retained_snapshot(c.port),
        vec![("zigbee2mqtt/lamp".into(), "{\"state\":\"ON\"}".into())]
    );
    let mut d = Raw::connect(c.port);
    assert!(resume(&mut d, "device", ProtocolVersion::V311, None));
    assert_eq!(drain(&mut d), vec![seen("cmd/update", "later", 1, false)]);
}

/// Mounts a tiny tmpfs on `dir` for the disk-full test; unmounted on drop.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(dir: &Path, size: &str) -> TinyFs {
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        TinyFs(dir.to_path_buf())
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_keeps_the_old_file_and_the_broker_running() {
    let data = tempfile::tempdir().unwrap();
    let _fs = TinyFs::mount(data.path(), "16k");
    std::fs::write(data.path().join("mosquitto.db"), SAMPLE).unwrap();
    world_readable(data.path());
    let conf = format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
        data.path().display()
    );
    let b = Culex::start(&conf);
    // Fill the disk with retained messages bigger than what is left.
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "filler", None);
    let big = vec![b'x'; 6000];
    for i in 0..3 {
        p.publish(&format!("big/{i}"), &big, 1, true);
    }
    b.signal("USR1");
    b.wait_log("Error saving in-memory database");
    assert_eq!(
        std::fs::read(data.path().join("mosquitto.db")).unwrap(),
        SAMPLE,
        "the old file must stay"
    );
    assert!(
        !data.path().join("mosquitto.db.new").exists(),
        "the partial file is removed"
    );
    // Still serving, with everything in memory.
    let got = retained_snapshot(b.port);
    assert_eq!(got.len(), sample_retained().len() + 3);
}

/// Issue 16, point 8: with `autosave_on_changes true` and
/// `autosave_interval 1`, every QoS 1 message the publisher saw acknowledged
/// before a `kill -9` is delivered after the restart (culex used to save at
/// the end of the turn, after the PUBACKs had left).
#[test]
fn autosave_on_changes_saves_before_the_pubacks_leave() {
    let conf =
        format!("{CONF}autosave_on_changes true\nautosave_interval 1\nmax_queued_messages 5000\n");
    let b = Culex::start(&conf);
    let mut d = Raw::connect(b.port);
    resume(&mut d, "durable", ProtocolVersion::V311, None);
    assert_eq!(d.subscribe(&[("q/#", 1)]), vec![1]);
    d.shutdown();
    // 100 in flight at a time; kill -9 once 500 are acknowledged.
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    let publish = |p: &mut Raw, n: u16| {
        p.send(&Packet::Publish(codec::Publish {
            dup: false,
            qos: codec::Qos::AtLeastOnce,
            retain: false,
            topic: format!("q/{n}"),
            packet_id: codec::PacketId::new(n),
            payload: format!("m{n}").into_bytes(),
            properties: Default::default(),
        }));
    };
    let mut acked = std::collections::BTreeSet::new();
    let mut next = 1u16;
    while next <= 100 {
        publish(&mut p, next);
        next += 1;
    }
    while acked.len() < 500 {
        match p.recv() {
            Some(Packet::Puback(a)) => {
                acked.insert(a.packet_id.get());
                if next <= 1000 {
                    publish(&mut p, next);
                    next += 1;
                }
            }
            Some(_) => {}
            None => panic!("no PUBACK after {} acknowledged", acked.len()),
        }
    }
    b.signal("KILL");
    // PUBACKs already in the socket were acknowledged too.
    let _ = p.stream.set_read_timeout(Some(Duration::from_millis(300)));
    while let Some(pk) = p.recv() {
        if let Packet::Puback(a) = pk {
            acked.insert(a.packet_id.get());
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let db = std::fs::read(b.path("mosquitto.db")).expect("saved");
    let b2 = Culex::start_with(&conf, &[("mosquitto.db", &db)]);
    let mut d = Raw::connect(b2.port);
    assert!(resume(&mut d, "durable", ProtocolVersion::V311, None));
    let delivered: std::collections::BTreeSet<u16> = drain(&mut d)
        .iter()
        .filter_map(|(topic, ..)| topic.strip_prefix("q/")?.parse().ok())
        .collect();
    let lost: Vec<u16> = acked.difference(&delivered).copied().collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(20)]
    );
}
