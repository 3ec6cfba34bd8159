//! SIGHUP: password and ACL files are re-read without dropping anyone; a
//! broken new file keeps the old rules.

mod common;

use std::time::Duration;

use common::*;
use culex::codec::{Packet, ProtocolVersion};

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");
const SHA512: &[u8] = include_bytes!("../testdata/passwd/sha512.passwd");

fn try_login(port: u16, user: &str, pass: &str) -> u8 {
    let mut raw = Raw::connect(port);
    raw.send(&connect_packet(
        ProtocolVersion::V311,
        &format!("try-{user}"),
        Some((user, pass)),
    ));
    match raw.recv() {
        Some(Packet::Connack(c)) => c.code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn sighup_adds_a_user_keeps_clients_and_refuses_a_garbage_file() {
    let b = Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[("passwd", PASSWD)],
    );
    let mut alice = Raw::login(
        b.port,
        ProtocolVersion::V311,
        "alice-1",
        Some(("alice", "secret")),
    );
    alice.subscribe(&[("t", 0)]);
    // carol-sha512 from the $6$ file is not known yet.
    let extra = String::from_utf8_lossy(SHA512).replace("carol:", "zoe:");
    assert_eq!(try_login(b.port, "zoe", "pässwörd€"), 5);

    let mut text = String::from_utf8_lossy(PASSWD).into_owned();
    text.push_str(extra.lines().find(|l| l.starts_with("zoe:")).unwrap());
    text.push('\n');
    std::fs::write(b.path("passwd"), &text).unwrap();
    b.signal("HUP");
    b.wait_log("Reloading config.");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while try_login(b.port, "zoe", "pässwörd€") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "zoe never accepted: {}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A garbage file: logged, the previous users stay valid.
    std::fs::write(b.path("passwd"), "alice:not-a-hash\n\u{0}\u{1}garbage\n").unwrap();
    b.signal("HUP");
    b.wait_log("keeping the previous one");
    assert_eq!(try_login(b.port, "alice", "secret"), 0);
    assert_eq!(try_login(b.port, "zoe", "pässwörd€"), 0);

    // The first client was never disconnected.
    let mut p = Raw::login(
        b.port,
        ProtocolVersion::V311,
        "pub",
        Some(("alice", "secret")),
    );
    p.publish("t", b"still here", 0, false);
    assert_eq!(
        alice.collect(Duration::from_millis(500)),
        vec![("t".into(), "still here".into(), false)]
    );
}

#[test]
fn sighup_revokes_read_access_at_once() {
    let b = Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {dir}/acl\n",
        &[("acl", b"topic readwrite news/#\n")],
    );
    let mut reader = Raw::login(b.port, ProtocolVersion::V311, "reader", None);
    reader.subscribe(&[("news/#", 0)]);
    let mut writer = Raw::login(b.port, ProtocolVersion::V311, "writer", None);
    writer.publish("news/1", b"before", 0, false);
    assert_eq!(reader.collect(Duration::from_millis(300)).len(), 1);
    std::fs::write(b.path("acl"), "topic write news/#\n").unwrap();
    b.signal("HUP");
    b.wait_log("Reloading config.");
    std::thread::sleep(Duration::from_millis(200));
    writer.publish("news/2", b"after", 0, false);
    assert_eq!(reader.collect(Duration::from_millis(500)), vec![]);
}
