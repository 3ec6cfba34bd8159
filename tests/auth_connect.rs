//! The seed setup: passwords required, anonymous refused, with real clients
//! of every protocol version.

mod common;

use std::time::Duration;

use common::*;

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");

fn seed_broker() -> Culex {
    Culex::start_with(
        "per_listener_settings false\nlistener {port} 127.0.0.1\nprotocol mqtt\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[("passwd", PASSWD)],
    )
}

fn pub_status(port: u16, version: &str, user: Option<(&str, &str)>) -> (i32, String) {
    let port = port.to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-V",
        version,
        "-t",
        "t",
        "-m",
        "x",
    ];
    if let Some((u, p)) = user {
        args.extend(["-u", u, "-P", p]);
    }
    let out = run_client("mosquitto_pub", &args, Duration::from_secs(10));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn anonymous_and_wrong_passwords_are_refused_in_every_version() {
    let b = seed_broker();
    for version in ["mqttv31", "mqttv311", "mqttv5"] {
        let (code, err) = pub_status(b.port, version, None);
        assert_ne!(code, 0, "{version} anonymous");
        assert!(
            err.contains("not authorised") || err.contains("Not authorized"),
            "{version}: {err}"
        );
        let (code, _) = pub_status(b.port, version, Some(("alice", "wrong")));
        assert_ne!(code, 0, "{version} wrong password");
        let (code, _) = pub_status(b.port, version, Some(("nobody", "secret")));
        assert_ne!(code, 0, "{version} unknown user");
        let (code, err) = pub_status(b.port, version, Some(("alice", "secret")));
        assert_eq!(code, 0, "{version} alice: {err}");
        // Passwords with spaces, colons and UTF-8, and a 1000-iteration hash.
        assert_eq!(
            pub_status(b.port, version, Some(("bob", "p@ss w0rd:with:colons"))).0,
            0
        );
        assert_eq!(
            pub_status(b.port, version, Some(("carol", "pässwörd€"))).0,
            0
        );
        assert_eq!(
            pub_status(b.port, version, Some(("dave", "iterations-1000"))).0,
            0
        );
    }
    b.wait_log("Client <unknown> disconnected, not authorised.");
}

#[test]
fn connack_codes_are_mosquittos() {
    let b = seed_broker();
    // 3.1.1: CONNACK 5 (not 4) for a bad password.
    let mut raw = Raw::connect(b.port);
    raw.send(&connect_packet(
        culex::codec::ProtocolVersion::V311,
        "c1",
        Some(("alice", "bad")),
    ));
    match raw.recv() {
        Some(culex::codec::Packet::Connack(c)) => assert_eq!(c.code, 5),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert!(raw.closed());
    // 5.0: 0x87.
    let mut raw = Raw::connect(b.port);
    raw.version = culex::codec::ProtocolVersion::V5;
    raw.send(&connect_packet(
        culex::codec::ProtocolVersion::V5,
        "c2",
        None,
    ));
    match raw.recv() {
        Some(culex::codec::Packet::Connack(c)) => assert_eq!(c.code, 0x87),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    // Accepted.
    let mut raw = Raw::connect(b.port);
    raw.send(&connect_packet(
        culex::codec::ProtocolVersion::V311,
        "c3",
        Some(("alice", "secret")),
    ));
    match raw.recv() {
        Some(culex::codec::Packet::Connack(c)) => {
            assert_eq!(c.code, 0);
            assert!(!c.session_present);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn password_files_of_both_generations_and_edge_cases() {
    let b = Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[(
            "passwd",
            include_bytes!("../testdata/passwd/edge-cases.passwd"),
        )],
    );
    let ok = |u: &str, p: &str| pub_status(b.port, "mqttv311", Some((u, p))).0 == 0;
    assert!(ok("spaced", "secret"));
    assert!(ok("crlfuser", "secret"));
    // The second alice line wins.
    assert!(ok("alice", "p@ss w0rd:with:colons"));
    assert!(!ok("alice", "secret"));
    assert!(!ok("plainuser", "plaintext"));
    assert!(!ok("emptypw", ""));
    b.wait_log("Error: Invalid password hash type for user plainuser, removing entry.");
}

#[test]
fn argon2id_logins_work_and_a_burst_does_not_stall_other_clients() {
    let b = Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {dir}/passwd\n",
        &[(
            "passwd",
            include_bytes!("../testdata/passwd/mosquitto-2.1.2-argon2id.passwd"),
        )],
    );
    let mut bystander = Raw::connect(b.port);
    bystander.send(&connect_packet(
        culex::codec::ProtocolVersion::V311,
        "bystander",
        None,
    ));
    assert!(matches!(bystander.recv(), Some(culex::codec::Packet::Connack(c)) if c.code == 0));
    // Eight argon2id logins at once (46 MiB and tens of ms each).
    let start = std::time::Instant::now();
    let logins: Vec<_> = (0..8)
        .map(|i| {
            let port = b.port;
            std::thread::spawn(move || {
                let mut raw = Raw::connect(port);
                let (user, pass) = match i % 3 {
                    0 => ("alice-argon2id", "secret"),
                    1 => ("bob-argon2id", "p@ss w0rd:with:colons"),
                    _ => ("carol-argon2id", "pässwörd€"),
                };
                raw.send(&connect_packet(
                    culex::codec::ProtocolVersion::V311,
                    &format!("storm{i}"),
                    Some((user, pass)),
                ));
                let code = match raw.recv() {
                    Some(culex::codec::Packet::Connack(c)) => c.code,
                    other => panic!("{other:?}"),
                };
                (code, start.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    bystander.send(&culex::codec::Packet::Pingreq);
    assert_eq!(bystander.recv(), Some(culex::codec::Packet::Pingresp));
    let ping_answered = start.elapsed();
    let results: Vec<_> = logins.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|(code, _)| *code == 0), "{results:?}");
    let last_login = results.iter().map(|(_, t)| *t).max().unwrap();
    // One expensive check per loop turn: the PING is served between them,
    // not after all eight.
    assert!(
        ping_answered < last_login,
        "ping {ping_answered:?}, last login {last_login:?}"
    );
    // A wrong password is still refused.
    assert_ne!(
        pub_status(b.port, "mqttv311", Some(("alice-argon2id", "wrong"))).0,
        0
    );
}
