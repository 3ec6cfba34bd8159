//! ACL files with real clients: the sample mosquitto 2.0.11 was checked
//! against (testdata/acl/README.md), deny precedence, retained messages,
//! wills, and v5 reason codes.

mod common;

use std::time::Duration;

use common::*;
use culex::codec::{self, Packet, ProtocolVersion, Qos};

const ACL: &[u8] = include_bytes!("../testdata/acl/sample.acl");
const USERS: &[u8] = include_bytes!("../testdata/acl/users.passwd");
const QUIET: Duration = Duration::from_millis(500);

fn broker() -> Culex {
    Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {dir}/users.passwd\nacl_file {dir}/sample.acl\n",
        &[("sample.acl", ACL), ("users.passwd", USERS)],
    )
}

fn sorted(mut v: Vec<(String, String, bool)>) -> Vec<(String, String)> {
    v.sort();
    v.into_iter().map(|(t, p, _)| (t, p)).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn sample_acl_gives_mosquittos_outcomes() {
    let b = broker();
    let v = ProtocolVersion::V311;
    let mut alice = Raw::login(b.port, v, "a1", Some(("alice", "secret")));
    assert_eq!(
        alice.subscribe(&[("home/#", 0), ("$SYS/#", 0), ("public/#", 0)]),
        vec![0, 0, 0]
    );
    let mut a2 = Raw::login(b.port, v, "a2", None);
    assert_eq!(
        a2.subscribe(&[
            ("public/#", 0),
            ("home/#", 0),
            ("anon/rw", 0),
            ("clients/a2/x", 0),
            ("infix/#", 0)
        ]),
        vec![0, 0, 0, 0, 0]
    );
    let mut xyz = Raw::login(b.port, v, "xyz", None);
    assert_eq!(xyz.subscribe(&[("infix/#", 0)]), vec![0]);
    let mut nouser = Raw::login(b.port, v, "nu", Some(("nouser", "npass")));
    assert_eq!(
        nouser.subscribe(&[("users/nouser/inbox", 0), ("public/#", 0), ("#", 0)]),
        vec![0, 0, 0]
    );
    // alice (not in the anonymous block) still drains her $SYS subscription.
    alice.collect(QUIET);

    let mut writer = Raw::login(b.port, v, "w", Some(("writer", "wpass")));
    for t in [
        "home/living",
        "home/secret",
        "public/news",
        "anon/rw",
        "clients/a2/x",
        "users/nouser/inbox",
        "infix/id-xyz",
        "$SYS/foo",
    ] {
        writer.publish(t, t.as_bytes(), 0, false);
    }
    let mut anon = Raw::login(b.port, v, "anonpub", None);
    anon.publish("public/x", b"anon-public", 0, false);
    anon.publish("anon/rw", b"anon-rw", 0, false);

    let alice_got: Vec<_> = sorted(alice.collect(QUIET))
        .into_iter()
        .filter(|(t, _)| !t.starts_with("$SYS"))
        .collect();
    assert_eq!(alice_got, pairs(&[("home/living", "home/living")]));
    assert_eq!(
        sorted(a2.collect(QUIET)),
        pairs(&[
            ("public/news", "public/news"),
            ("anon/rw", "anon/rw"),
            ("clients/a2/x", "clients/a2/x"),
            ("anon/rw", "anon-rw"),
        ])
    );
    assert_eq!(
        sorted(xyz.collect(QUIET)),
        pairs(&[("infix/id-xyz", "infix/id-xyz")])
    );
    assert_eq!(
        sorted(nouser.collect(QUIET)),
        pairs(&[("users/nouser/inbox", "users/nouser/inbox")])
    );
}

#[test]
fn denied_publish_is_acknowledged_in_3_1_1_and_refused_with_0x87_in_5() {
    let b = broker();
    let mut v3 = Raw::login(
        b.port,
        ProtocolVersion::V311,
        "d3",
        Some(("alice", "secret")),
    );
    assert_eq!(v3.publish("public/x", b"no", 1, false), Some(0));
    assert_eq!(v3.publish("public/x", b"no", 2, false), Some(0));
    let mut v5 = Raw::login(b.port, ProtocolVersion::V5, "d5", Some(("alice", "secret")));
    assert_eq!(v5.publish("public/x", b"no", 1, false), Some(0x87));
    assert_eq!(v5.publish("public/x", b"no", 2, false), Some(0x87));
    assert_eq!(v5.publish("$SYS/anything", b"no", 1, false), Some(0x87));
    // Allowed, but nobody listens: 0x10.
    assert_eq!(v5.publish("home/kitchen", b"ok", 1, false), Some(0x10));
}

#[test]
fn retained_messages_a_user_may_not_read_are_not_sent() {
    let b = broker();
    let mut writer = Raw::login(
        b.port,
        ProtocolVersion::V311,
        "w",
        Some(("writer", "wpass")),
    );
    writer.publish("home/living", b"lamp on", 1, true);
    writer.publish("home/secret", b"hidden", 1, true);
    let mut alice = Raw::login(
        b.port,
        ProtocolVersion::V311,
        "a1",
        Some(("alice", "secret")),
    );
    assert_eq!(alice.subscribe(&[("home/#", 1)]), vec![1]);
    let got = alice.collect(QUIET);
    assert_eq!(
        got,
        vec![("home/living".to_string(), "lamp on".to_string(), true)]
    );
}

#[test]
fn a_will_to_a_topic_the_client_may_not_write_is_dropped() {
    let b = broker();
    let mut a2 = Raw::login(b.port, ProtocolVersion::V311, "a2", None);
    a2.subscribe(&[("public/#", 0), ("anon/#", 0)]);
    for (id, topic) in [("w1", "public/will"), ("w2", "anon/rw")] {
        let mut raw = Raw::connect(b.port);
        let Packet::Connect(mut c) = connect_packet(ProtocolVersion::V311, id, None) else {
            unreachable!()
        };
        c.will = Some(codec::Will {
            topic: codec::TopicName::new(topic).unwrap(),
            payload: format!("will of {id}").into_bytes(),
            qos: Qos::AtMostOnce,
            retain: false,
            properties: Default::default(),
        });
        raw.send(&Packet::Connect(c));
        assert!(matches!(raw.recv(), Some(Packet::Connack(a)) if a.code == 0));
        raw.shutdown();
    }
    // Anonymous clients may only read public/#: w1's will is refused, w2's
    // (anon/rw is readwrite) goes out.
    assert_eq!(
        a2.collect(QUIET),
        vec![("anon/rw".to_string(), "will of w2".to_string(), false)]
    );
}
