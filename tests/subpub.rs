//! Publish/subscribe at QoS 0, 1 and 2 with mosquitto_pub/mosquitto_sub in
//! every protocol version, retained messages, wills, persistent sessions and
//! take-over.

mod common;

use std::time::Duration;

use common::*;
use culex::codec::{self, Packet, ProtocolVersion, Qos};

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");
const T: Duration = Duration::from_secs(10);

fn broker() -> Culex {
    Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[("passwd", PASSWD)],
    )
}

fn auth_args(port: &str) -> Vec<String> {
    ["-h", "127.0.0.1", "-p", port, "-u", "alice", "-P", "secret"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn publish(port: u16, version: &str, topic: &str, payload: &str, qos: u8, retain: bool) {
    let port = port.to_string();
    let mut args = auth_args(&port);
    let qos = qos.to_string();
    args.extend(["-V", version, "-t", topic, "-m", payload, "-q", &qos].map(String::from));
    if retain {
        args.push("-r".into());
    }
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_client("mosquitto_pub", &refs, T);
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn subscriber(port: u16, version: &str, topic: &str, qos: u8, count: usize, extra: &[&str]) -> Sub {
    let port = port.to_string();
    let mut args = auth_args(&port);
    let qos = qos.to_string();
    let count = count.to_string();
    args.extend(
        [
            "-V", version, "-t", topic, "-q", &qos, "-C", &count, "-W", "8", "-v",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    Sub::start(&refs)
}

#[test]
fn qos_0_1_2_in_every_version() {
    let b = broker();
    for version in ["mqttv31", "mqttv311", "mqttv5"] {
        for qos in 0..=2u8 {
            let topic = format!("test/{version}/{qos}");
            let sub = subscriber(b.port, version, "test/#", qos, 1, &[]);
            publish(
                b.port,
                version,
                &topic,
                &format!("payload-{qos}"),
                qos,
                false,
            );
            let (out, err) = sub.output(T);
            assert_eq!(
                out,
                format!("{topic} payload-{qos}\n"),
                "{version} qos {qos}: {err}"
            );
        }
    }
}

#[test]
fn mixed_versions_interoperate() {
    let b = broker();
    let sub3 = subscriber(b.port, "mqttv311", "mix/#", 2, 1, &[]);
    let sub5 = subscriber(b.port, "mqttv5", "mix/#", 2, 1, &[]);
    publish(b.port, "mqttv5", "mix/a", "from5", 2, false);
    assert_eq!(sub3.output(T).0, "mix/a from5\n");
    assert_eq!(sub5.output(T).0, "mix/a from5\n");
}

#[test]
fn retained_message_reaches_a_later_subscriber_and_can_be_cleared() {
    let b = broker();
    publish(b.port, "mqttv311", "ret/a", "kept", 1, true);
    publish(b.port, "mqttv311", "ret/b", "gone", 0, true);
    publish(b.port, "mqttv311", "ret/b", "", 0, true);
    // -R would drop retained; here we want exactly the retained one.
    let sub = subscriber(b.port, "mqttv311", "ret/#", 1, 1, &["-F", "%t %p %r"]);
    let (out, _) = sub.output(T);
    assert_eq!(out, "ret/a kept 1\n");
    // Only one retained message remains: a second reader gets nothing more.
    let sub = subscriber(b.port, "mqttv5", "ret/#", 1, 2, &["-W", "2"]);
    let (out, _) = sub.output(T);
    assert_eq!(out, "ret/a kept\n");
}

#[test]
fn will_is_sent_when_a_client_drops_without_disconnect() {
    let b = broker();
    let sub = subscriber(b.port, "mqttv311", "wills/#", 1, 1, &[]);
    let mut raw = Raw::connect(b.port);
    let Packet::Connect(mut c) =
        connect_packet(ProtocolVersion::V311, "dying", Some(("alice", "secret")))
    else {
        unreachable!()
    };
    c.will = Some(codec::Will {
        topic: codec::TopicName::new("wills/dying").unwrap(),
        payload: b"offline".to_vec(),
        qos: Qos::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    raw.send(&Packet::Connect(c));
    assert!(matches!(raw.recv(), Some(Packet::Connack(a)) if a.code == 0));
    raw.shutdown();
    assert_eq!(sub.output(T).0, "wills/dying offline\n");
}

#[test]
fn persistent_session_receives_what_was_queued_while_offline() {
    let b = broker();
    let port = b.port.to_string();
    // Subscribe with a persistent session, then leave.
    let mut args = auth_args(&port);
    args.extend(
        [
            "-V", "mqttv311", "-c", "-i", "durable", "-t", "q/#", "-q", "1", "-E",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_client("mosquitto_sub", &refs, T);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    publish(b.port, "mqttv311", "q/one", "first", 1, false);
    publish(b.port, "mqttv311", "q/two", "second", 2, false);
    publish(b.port, "mqttv311", "q/zero", "not-queued", 0, false);
    let mut args = auth_args(&port);
    args.extend(
        [
            "-V", "mqttv311", "-c", "-i", "durable", "-t", "q/#", "-q", "1", "-C", "2", "-W", "5",
            "-v",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_client("mosquitto_sub", &refs, T);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "q/one first\nq/two second\n"
    );
}

#[test]
fn takeover_disconnects_the_old_connection() {
    let b = broker();
    let mut first = Raw::connect(b.port);
    first.send(&connect_packet(
        ProtocolVersion::V311,
        "same-id",
        Some(("alice", "secret")),
    ));
    assert!(matches!(first.recv(), Some(Packet::Connack(a)) if a.code == 0));
    let mut second = Raw::connect(b.port);
    second.send(&connect_packet(
        ProtocolVersion::V311,
        "same-id",
        Some(("alice", "secret")),
    ));
    assert!(matches!(second.recv(), Some(Packet::Connack(a)) if a.code == 0));
    assert!(first.closed(), "the old connection must be closed");
    b.wait_log("Client same-id already connected, closing old connection.");
    // The new one still works.
    second.send(&Packet::Pingreq);
    assert_eq!(second.recv(), Some(Packet::Pingresp));
}

#[test]
fn one_subscribe_with_500_filters() {
    let b = broker();
    let mut raw = Raw::connect(b.port);
    raw.send(&connect_packet(
        ProtocolVersion::V311,
        "ha",
        Some(("alice", "secret")),
    ));
    assert!(matches!(raw.recv(), Some(Packet::Connack(a)) if a.code == 0));
    let filters = (0..500)
        .map(|i| {
            let qos = Qos::from_u8((i % 3) as u8).unwrap();
            (
                codec::TopicFilter::new(format!("homeassistant/sensor/{i}/+")).unwrap(),
                codec::SubscriptionOptions::with_qos(qos),
            )
        })
        .collect();
    raw.send(&Packet::Subscribe(codec::Subscribe {
        packet_id: codec::PacketId::new(9).unwrap(),
        filters,
        properties: Default::default(),
    }));
    match raw.recv() {
        Some(Packet::Suback(s)) => {
            assert_eq!(s.packet_id.get(), 9);
            assert_eq!(s.codes, (0..500).map(|i| (i % 3) as u8).collect::<Vec<_>>());
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
    publish(
        b.port,
        "mqttv311",
        "homeassistant/sensor/499/config",
        "last",
        1,
        false,
    );
    match raw.recv() {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.topic, "homeassistant/sensor/499/config");
            assert_eq!(p.payload, b"last");
            assert_eq!(p.qos, Qos::AtLeastOnce);
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[test]
fn silent_client_is_dropped_after_one_and_a_half_keep_alives_and_its_will_sent() {
    let b = broker();
    let sub = subscriber(b.port, "mqttv311", "ka/#", 0, 1, &[]);
    let mut raw = Raw::connect(b.port);
    let Packet::Connect(mut c) =
        connect_packet(ProtocolVersion::V311, "sleepy", Some(("alice", "secret")))
    else {
        unreachable!()
    };
    c.keep_alive = 1;
    c.will = Some(codec::Will {
        topic: codec::TopicName::new("ka/sleepy").unwrap(),
        payload: b"timed out".to_vec(),
        qos: Qos::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    raw.send(&Packet::Connect(c));
    assert!(matches!(raw.recv(), Some(Packet::Connack(a)) if a.code == 0));
    let start = std::time::Instant::now();
    assert!(raw.closed());
    let waited = start.elapsed();
    // 1.5 × keep alive [MQTT-3.1.2-22].
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(sub.output(T).0, "ka/sleepy timed out\n");
    b.wait_log("Client sleepy has exceeded timeout, disconnecting.");
}

#[test]
fn a_subscriber_that_stops_reading_does_not_grow_the_broker_without_bound() {
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let mut stuck = Raw::connect(b.port);
    stuck.send(&connect_packet(ProtocolVersion::V311, "stuck", None));
    assert!(matches!(stuck.recv(), Some(Packet::Connack(_))));
    stuck.subscribe(&[("flood/#", 0)]);
    // `stuck` never reads again. 160 MiB of QoS 0 messages for it:
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "flooder", None);
    let payload = vec![b'f'; 1 << 20];
    for i in 0..160 {
        p.publish(&format!("flood/{i}"), &payload, 0, false);
    }
    // The broker is still responsive and serves others...
    let mut other = Raw::login(b.port, ProtocolVersion::V311, "other", None);
    other.subscribe(&[("ok", 0)]);
    p.publish("ok", b"still here", 0, false);
    assert_eq!(
        other.collect(Duration::from_millis(500)),
        vec![("ok".into(), "still here".into(), false)]
    );
    b.wait_log("Outgoing messages are being dropped for a connection");
    // ...and holds far less than the 160 MiB it was asked to send.
    let status = std::fs::read_to_string(format!("/proc/{}/status", b.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 120 * 1024, "broker RSS {rss_kb} kB");
}
