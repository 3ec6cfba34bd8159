//! Malformed input closes that one connection and nothing else.

mod common;

use common::*;
use culex::codec::{self, Packet, ProtocolVersion, Qos, SubscriptionOptions, TopicFilter};

fn broker() -> Culex {
    Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 1000\n")
}

fn connected(port: u16, id: &str, version: ProtocolVersion) -> Raw {
    let mut raw = Raw::connect(port);
    raw.version = version;
    raw.send(&connect_packet(version, id, None));
    match raw.recv() {
        Some(Packet::Connack(c)) => assert_eq!(c.code, 0),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    raw
}

/// A subscriber that must keep working while others misbehave.
fn bystander(port: u16) -> Raw {
    let mut raw = connected(port, "bystander", ProtocolVersion::V311);
    raw.send(&Packet::Subscribe(codec::Subscribe {
        packet_id: codec::PacketId::new(1).unwrap(),
        filters: vec![(
            TopicFilter::new("ok/#").unwrap(),
            SubscriptionOptions::with_qos(Qos::AtMostOnce),
        )],
        properties: Default::default(),
    }));
    assert!(matches!(raw.recv(), Some(Packet::Suback(_))));
    raw
}

fn bystander_still_served(port: u16, bystander: &mut Raw, tag: &str) {
    let mut p = connected(port, "publisher", ProtocolVersion::V311);
    p.send(&Packet::Publish(codec::Publish {
        dup: false,
        qos: Qos::AtMostOnce,
        retain: false,
        topic: format!("ok/{tag}"),
        packet_id: None,
        payload: tag.as_bytes().to_vec(),
        properties: Default::default(),
    }));
    match bystander.recv() {
        Some(Packet::Publish(m)) => {
            assert_eq!(m.topic, format!("ok/{tag}"));
            assert_eq!(m.payload, tag.as_bytes());
        }
        other => panic!("bystander got {other:?} after {tag}"),
    }
}

#[test]
fn each_malformed_packet_closes_only_its_connection() {
    let b = broker();
    let mut by = bystander(b.port);
    let connect311 = {
        let mut v = Vec::new();
        codec::encode(
            &connect_packet(ProtocolVersion::V311, "bad", None),
            ProtocolVersion::V311,
            &mut v,
        );
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Remaining length with a fifth continuation byte.
        (
            "bad-remaining-length",
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        // SUBSCRIBE with reserved flags 0000 instead of 0010.
        (
            "subscribe-reserved-flags",
            vec![0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
        ),
        // PUBLISH to a wildcard topic.
        (
            "publish-wildcard",
            vec![0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#'],
        ),
        // PUBLISH QoS 3.
        (
            "publish-qos3",
            vec![0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01],
        ),
        // A second CONNECT.
        ("second-connect", connect311.clone()),
        // Larger than max_packet_size 1000.
        ("too-large", {
            let mut v = vec![0x30, 0xE9, 0x07, 0x00, 0x01, b'a'];
            v.extend(std::iter::repeat_n(b'x', 1000));
            v
        }),
    ];
    for (name, bytes) in cases {
        let mut raw = connected(b.port, name, ProtocolVersion::V311);
        raw.send_raw(&bytes);
        assert!(raw.closed(), "{name}: connection must be closed");
        bystander_still_served(b.port, &mut by, name);
    }
}

#[test]
fn garbage_before_connect_is_refused() {
    let b = broker();
    let mut by = bystander(b.port);
    // Not a CONNECT first.
    let mut raw = Raw::connect(b.port);
    raw.send(&Packet::Pingreq);
    assert!(raw.closed());
    // Unknown protocol name: closed without CONNACK.
    let mut raw = Raw::connect(b.port);
    raw.send_raw(&[
        0x10, 0x0C, 0x00, 0x04, b'H', b'T', b'T', b'P', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ]);
    assert!(raw.recv().is_none());
    // Unknown protocol level: CONNACK 1, then closed.
    let mut raw = Raw::connect(b.port);
    raw.send_raw(&[
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, b'x',
    ]);
    match raw.recv() {
        Some(Packet::Connack(c)) => assert_eq!(c.code, 1),
        other => panic!("expected CONNACK 1, got {other:?}"),
    }
    assert!(raw.closed());
    // Random bytes.
    let mut raw = Raw::connect(b.port);
    raw.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(raw.closed());
    bystander_still_served(b.port, &mut by, "after-garbage");
}

#[test]
fn v5_gets_the_disconnect_reason_the_standard_requires() {
    let b = broker();
    let cases: Vec<(&str, Vec<u8>, u8)> = vec![
        // Topic alias 0 [MQTT-3.3.2-8].
        (
            "alias-zero",
            vec![0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00, b'x'],
            0x94,
        ),
        // Topic alias above the maximum (10).
        (
            "alias-11",
            vec![0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x0B, b'x'],
            0x94,
        ),
        // Duplicated property (two payload format indicators).
        (
            "dup-property",
            vec![
                0x30, 0x09, 0x00, 0x01, b'a', 0x04, 0x01, 0x00, 0x01, 0x00, b'x',
            ],
            0x82,
        ),
        // A property not allowed on PUBLISH (session expiry interval).
        (
            "wrong-property",
            vec![0x30, 0x0A, 0x00, 0x01, b'a', 0x05, 0x11, 0, 0, 0, 1, b'x'],
            0x81,
        ),
        // Bad UTF-8 in the topic.
        (
            "bad-utf8",
            vec![0x30, 0x06, 0x00, 0x02, 0xC3, 0x28, 0x00, b'x'],
            0x81,
        ),
        // Above max_packet_size.
        (
            "too-large",
            {
                let mut v = vec![0x30, 0xEA, 0x07, 0x00, 0x01, b'a', 0x00];
                v.extend(std::iter::repeat_n(b'x', 1000));
                v
            },
            0x95,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut raw = connected(b.port, name, ProtocolVersion::V5);
        raw.send_raw(&bytes);
        match raw.recv() {
            Some(Packet::Disconnect(d)) => assert_eq!(d.reason, code, "{name}"),
            other => panic!("{name}: expected DISCONNECT 0x{code:02X}, got {other:?}"),
        }
        assert!(raw.closed(), "{name}");
    }
}
