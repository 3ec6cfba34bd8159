//! Several listeners, `per_listener_settings`, and the 2.1 listener options.

mod common;

use common::*;
use culex::codec::{Packet, ProtocolVersion};

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");
const SHA512: &[u8] = include_bytes!("../testdata/passwd/sha512.passwd");

fn code(port: u16, version: ProtocolVersion, user: Option<(&str, &str)>) -> u8 {
    let mut raw = Raw::connect(port);
    raw.version = version;
    raw.send(&connect_packet(version, "probe", user));
    match raw.recv() {
        Some(Packet::Connack(c)) => c.code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn per_listener_settings_true_each_listener_enforces_its_own_rules() {
    let second = free_port();
    let third = free_port();
    let config = format!(
        "per_listener_settings true\n\
         listener {{port}} 127.0.0.1\nallow_anonymous true\n\
         listener {second} 127.0.0.1\nallow_anonymous false\npassword_file {{dir}}/pbkdf2\n\
         listener {third} 127.0.0.1\npassword_file {{dir}}/sha512\nacl_file {{dir}}/acl\n"
    );
    let b = Culex::start_with(
        &config,
        &[
            ("pbkdf2", PASSWD),
            ("sha512", SHA512),
            ("acl", b"user bob\ntopic read only/bob\n"),
        ],
    );
    let v = ProtocolVersion::V311;
    // First: anonymous welcome, no password file (any credentials pass).
    assert_eq!(code(b.port, v, None), 0);
    assert_eq!(code(b.port, v, Some(("alice", "whatever"))), 0);
    // Second: passwords from the $7$ file only.
    assert_eq!(code(second, v, None), 5);
    assert_eq!(code(second, v, Some(("alice", "secret"))), 0);
    assert_eq!(code(second, v, Some(("alice", "wrong"))), 5);
    // Third: allow_anonymous defaults to false per listener; its own file.
    assert_eq!(code(third, v, None), 5);
    assert_eq!(code(third, v, Some(("bob", "p@ss w0rd:with:colons"))), 0);
    // ... and its own ACL: bob reads only/bob there.
    let mut bob = Raw::login(third, v, "bob3", Some(("bob", "p@ss w0rd:with:colons")));
    bob.subscribe(&[("#", 0)]);
    let mut anon = Raw::login(b.port, v, "anon1", None);
    anon.publish("only/bob", b"for bob", 0, false);
    anon.publish("other", b"not for bob", 0, false);
    assert_eq!(
        bob.collect(std::time::Duration::from_millis(400)),
        vec![("only/bob".into(), "for bob".into(), false)]
    );
}

#[test]
fn per_listener_settings_false_one_set_for_all() {
    let second = free_port();
    let config = format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\n\
         listener {second} 127.0.0.1\npassword_file {{dir}}/pbkdf2\n"
    );
    let b = Culex::start_with(&config, &[("pbkdf2", PASSWD)]);
    let v = ProtocolVersion::V311;
    for port in [b.port, second] {
        assert_eq!(code(port, v, None), 0, "anonymous on {port}");
        assert_eq!(code(port, v, Some(("alice", "secret"))), 0);
        assert_eq!(code(port, v, Some(("alice", "bad"))), 5);
    }
}

#[test]
fn listener_allow_anonymous_and_accept_protocol_versions() {
    let second = free_port();
    let config = format!(
        "allow_anonymous false\n\
         listener {{port}} 127.0.0.1\nlistener_allow_anonymous true\naccept_protocol_versions 5\n\
         listener {second} 127.0.0.1\n"
    );
    let b = Culex::start(&config);
    assert_eq!(code(b.port, ProtocolVersion::V5, None), 0);
    assert_eq!(code(b.port, ProtocolVersion::V311, None), 1);
    assert_eq!(code(second, ProtocolVersion::V311, None), 5);
}

#[test]
fn mount_point_prefixes_topics_and_strips_them_on_delivery() {
    let plain = free_port();
    let b = Culex::start(&format!(
        "listener {{port}} 127.0.0.1\nmount_point tenant1/\nallow_anonymous true\nlistener {plain} 127.0.0.1\n"
    ));
    let v = ProtocolVersion::V311;
    let mut inside = Raw::login(b.port, v, "inside", None);
    inside.subscribe(&[("#", 0)]);
    let mut outside = Raw::login(plain, v, "outside", None);
    outside.subscribe(&[("tenant1/#", 0)]);
    inside.publish("x", b"from inside", 0, false);
    outside.publish("tenant1/y", b"for tenant1", 0, false);
    outside.publish("z", b"not for tenant1", 0, false);
    let d = std::time::Duration::from_millis(400);
    assert_eq!(
        inside.collect(d),
        vec![
            ("x".into(), "from inside".into(), false),
            ("y".into(), "for tenant1".into(), false)
        ]
    );
    assert_eq!(
        outside.collect(d),
        vec![
            ("tenant1/x".into(), "from inside".into(), false),
            ("tenant1/y".into(), "for tenant1".into(), false)
        ]
    );
}

#[test]
fn global_max_clients_and_connections() {
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\nglobal_max_clients 2\n");
    let v = ProtocolVersion::V5;
    let a = Raw::login(b.port, v, "a", None);
    let _b2 = Raw::login(b.port, v, "b", None);
    assert_eq!(
        code(b.port, v, None),
        0x89,
        "a third session is refused: server busy"
    );
    // A session that ends frees its place.
    a.shutdown();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(code(b.port, ProtocolVersion::V311, None), 0);

    let c =
        Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\nglobal_max_connections 1\n");
    // Let the harness's readiness probe connection close first.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _only = Raw::login(c.port, ProtocolVersion::V311, "only", None);
    let mut extra = Raw::connect(c.port);
    extra.send(&connect_packet(ProtocolVersion::V311, "extra", None));
    assert!(extra.recv().is_none(), "closed without CONNACK");
}

#[test]
fn unix_socket_listener_serves_and_is_removed_at_exit() {
    let mut b = Culex::start(
        "listener {port} 127.0.0.1\nallow_anonymous true\nlistener 0 {dir}/mqtt.sock\n",
    );
    let sock = b.path("mqtt.sock");
    b.wait_log(&format!(
        "Opening unix listen socket on path {}.",
        sock.display()
    ));
    let sock_arg = sock.display().to_string();
    let port = b.port.to_string();
    let sub = Sub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "u/#",
        "-C",
        "1",
        "-W",
        "8",
        "-v",
    ]);
    let out = run_client(
        "mosquitto_pub",
        &[
            "--unix",
            &sock_arg,
            "-t",
            "u/x",
            "-m",
            "over a unix socket",
            "-q",
            "1",
        ],
        std::time::Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sub.output(std::time::Duration::from_secs(10)).0,
        "u/x over a unix socket\n"
    );
    assert_eq!(b.stop().code(), Some(0));
    assert!(!sock.exists(), "the socket file is removed at exit");
}
