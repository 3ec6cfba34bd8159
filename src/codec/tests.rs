//! Codec tests: round trips, known byte vectors, every rejection, partial
//! input and a deterministic fuzz loop.

use std::num::NonZeroU16;
use std::rc::Rc;

use super::packet::*;
use super::properties::Properties;
use super::topic::{TopicFilter, TopicName};
use super::{DecodeError, decode, encode, encode_publish, publish_wire_size};
use ProtocolVersion::{V5, V31, V311};

const VERSIONS: [ProtocolVersion; 3] = [V31, V311, V5];

fn pid(n: u16) -> PacketId {
    NonZeroU16::new(n).unwrap()
}

fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    encode(p, v, &mut out);
    out
}

fn up(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Properties only for 5.0.
fn only5(v: ProtocolVersion, p: Properties) -> Properties {
    if v.is_v5() { p } else { Properties::default() }
}

fn connect_props() -> Properties {
    Properties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(20),
        maximum_packet_size: Some(65536),
        topic_alias_maximum: Some(10),
        request_response_information: Some(1),
        request_problem_information: Some(0),
        authentication_method: Some("SCRAM-SHA-1".into()),
        authentication_data: Some(vec![1, 2, 3, 0]),
        user_properties: up(&[("a", "1"), ("a", "2"), ("b", "")]),
        ..Properties::default()
    }
}

fn will_props() -> Properties {
    Properties {
        will_delay_interval: Some(30),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(99),
        content_type: Some("text/plain".into()),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(vec![0xde, 0xad]),
        user_properties: up(&[("w", "x")]),
        ..Properties::default()
    }
}

fn connack_props() -> Properties {
    Properties {
        session_expiry_interval: Some(0),
        receive_maximum: Some(65535),
        maximum_qos: Some(1),
        retain_available: Some(0),
        maximum_packet_size: Some(1_000_000),
        assigned_client_identifier: Some("auto-1234".into()),
        topic_alias_maximum: Some(0),
        reason_string: Some("welcome".into()),
        user_properties: up(&[("k", "v")]),
        wildcard_subscription_available: Some(1),
        subscription_identifier_available: Some(0),
        shared_subscription_available: Some(1),
        server_keep_alive: Some(120),
        response_information: Some("resp/".into()),
        server_reference: Some("other:1883".into()),
        authentication_method: Some("m".into()),
        authentication_data: Some(vec![9]),
        ..Properties::default()
    }
}

fn publish_props() -> Properties {
    Properties {
        payload_format_indicator: Some(0),
        message_expiry_interval: Some(60),
        content_type: Some("application/json".into()),
        response_topic: Some("r/t".into()),
        correlation_data: Some(vec![1, 2]),
        subscription_identifiers: vec![1, 268_435_455, 300],
        topic_alias: Some(5),
        user_properties: up(&[("x", "y"), ("x", "z")]),
        ..Properties::default()
    }
}

fn reason_props() -> Properties {
    Properties {
        reason_string: Some("because".into()),
        user_properties: up(&[("u", "v")]),
        ..Properties::default()
    }
}

fn sample_connect(v: ProtocolVersion) -> Connect {
    Connect {
        version: v,
        bridge: false,
        clean_start: true,
        keep_alive: 60,
        client_id: "client-\u{e9}".into(),
        will: Some(Will {
            topic: TopicName::new("will/topic").unwrap(),
            payload: vec![0, 1, 2, 255],
            qos: Qos::AtLeastOnce,
            retain: true,
            properties: only5(v, will_props()),
        }),
        username: Some("user".into()),
        password: Some(vec![0xff, 0, b'p']),
        properties: only5(v, connect_props()),
    }
}

/// One of every packet that exists in `v`, with every property in 5.0.
fn sample_packets(v: ProtocolVersion) -> Vec<Packet> {
    let v5 = v.is_v5();
    let mut out = vec![
        Packet::Connect(Box::new(sample_connect(v))),
        Packet::Connect(Box::new(Connect {
            version: v,
            bridge: !v5,
            clean_start: false,
            keep_alive: 0,
            client_id: String::new(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        })),
        Packet::Connack(Connack {
            session_present: v != V31,
            code: if v5 { 0x87 } else { 5 },
            properties: only5(v, connack_props()),
        }),
        Packet::Connack(Connack {
            session_present: false,
            code: 0,
            properties: Properties::default(),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: Qos::ExactlyOnce,
            retain: true,
            topic: "a/b/c".into(),
            packet_id: Some(pid(65535)),
            payload: b"payload".to_vec(),
            properties: only5(v, publish_props()),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: Qos::AtMostOnce,
            retain: false,
            topic: "/".into(),
            packet_id: None,
            payload: Vec::new(),
            properties: Properties::default(),
        }),
    ];
    for (reason, props) in [(0, Properties::default()), (0x10, Properties::default())]
        .into_iter()
        .chain(v5.then(|| (0x80, reason_props())))
    {
        let reason = if v5 { reason } else { 0 };
        let a = Ack {
            packet_id: pid(7),
            reason,
            properties: props,
        };
        out.push(Packet::Puback(a.clone()));
        out.push(Packet::Pubrec(a.clone()));
        out.push(Packet::Pubrel(a.clone()));
        out.push(Packet::Pubcomp(a));
    }
    let mut opts = SubscriptionOptions::with_qos(Qos::ExactlyOnce);
    if v5 {
        opts.retain_as_published = true;
        opts.retain_handling = RetainHandling::DoNotSend;
    }
    let mut nl = SubscriptionOptions::with_qos(Qos::AtMostOnce);
    nl.no_local = v5;
    nl.retain_handling = if v5 {
        RetainHandling::SendIfNew
    } else {
        RetainHandling::SendAlways
    };
    out.push(Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![
            (TopicFilter::new("a/+/c").unwrap(), opts),
            (TopicFilter::new("#").unwrap(), nl),
            (
                TopicFilter::new("$share/g/x").unwrap(),
                SubscriptionOptions::with_qos(Qos::AtLeastOnce),
            ),
        ],
        properties: only5(
            v,
            Properties {
                subscription_identifiers: vec![7],
                user_properties: up(&[("s", "t")]),
                ..Properties::default()
            },
        ),
    }));
    out.push(Packet::Suback(Suback {
        packet_id: pid(1),
        codes: vec![0, 1, 2, 0x80],
        properties: only5(v, reason_props()),
    }));
    out.push(Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(2),
        filters: vec![
            TopicFilter::new("a/#").unwrap(),
            TopicFilter::new("b").unwrap(),
        ],
        properties: only5(
            v,
            Properties {
                user_properties: up(&[("q", "r")]),
                ..Properties::default()
            },
        ),
    }));
    out.push(Packet::Unsuback(Unsuback {
        packet_id: pid(2),
        codes: if v5 { vec![0, 0x11] } else { Vec::new() },
        properties: only5(v, reason_props()),
    }));
    out.push(Packet::Pingreq);
    out.push(Packet::Pingresp);
    out.push(Packet::Disconnect(Disconnect {
        reason: 0,
        properties: Properties::default(),
    }));
    if v5 {
        out.push(Packet::Disconnect(Disconnect {
            reason: 0x8e,
            properties: Properties::default(),
        }));
        out.push(Packet::Disconnect(Disconnect {
            reason: 0x04,
            properties: Properties {
                session_expiry_interval: Some(10),
                server_reference: Some("elsewhere".into()),
                ..reason_props()
            },
        }));
        out.push(Packet::Publish(Publish {
            dup: false,
            qos: Qos::AtLeastOnce,
            retain: false,
            topic: String::new(),
            packet_id: Some(pid(3)),
            payload: b"x".to_vec(),
            properties: Properties {
                topic_alias: Some(1),
                ..Properties::default()
            },
        }));
        out.push(Packet::Auth(Auth {
            reason: 0,
            properties: Properties::default(),
        }));
        out.push(Packet::Auth(Auth {
            reason: 0x18,
            properties: Properties {
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(vec![1, 2, 3]),
                ..reason_props()
            },
        }));
    }
    out
}

/// Encodes, decodes back, and checks every strict prefix asks for more.
fn check_round_trip(p: &Packet, v: ProtocolVersion) {
    let bytes = enc(p, v);
    let got = decode(&bytes, Some(v), 0);
    assert_eq!(
        got,
        Ok(Some((p.clone(), bytes.len()))),
        "{v:?} {bytes:02x?}"
    );
    if let Packet::Connect(_) = p {
        assert_eq!(decode(&bytes, None, 0), got, "{v:?} first CONNECT");
    }
    for k in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..k], Some(v), 0),
            Ok(None),
            "{v:?} prefix {k}"
        );
    }
    // A following packet is left alone.
    let mut two = bytes.clone();
    two.extend_from_slice(&[0xC0, 0x00]);
    assert_eq!(decode(&two, Some(v), 0), got);
    // The exact size passes a limit, one byte less does not.
    assert_eq!(decode(&bytes, Some(v), bytes.len() as u32), got);
    assert_eq!(
        decode(&bytes, Some(v), bytes.len() as u32 - 1),
        Err(DecodeError::PacketTooLarge {
            size: bytes.len(),
            max: bytes.len() as u32 - 1
        })
    );
}

#[test]
fn codec_round_trip_every_packet_every_version() {
    let mut n = 0;
    for v in VERSIONS {
        for p in sample_packets(v) {
            check_round_trip(&p, v);
            n += 1;
        }
    }
    assert!(n > 60);
}

#[test]
fn codec_3x_drops_properties_and_reason_codes() {
    for v in [V31, V311] {
        let a = Ack {
            packet_id: pid(9),
            reason: 0x80,
            properties: reason_props(),
        };
        assert_eq!(enc(&Packet::Puback(a.clone()), v), [0x40, 2, 0, 9]);
        assert_eq!(enc(&Packet::Pubrel(a), v), [0x62, 2, 0, 9]);
        let u = Unsuback {
            packet_id: pid(5),
            codes: vec![0],
            properties: reason_props(),
        };
        assert_eq!(enc(&Packet::Unsuback(u), v), [0xB0, 2, 0, 5]);
        let d = Disconnect {
            reason: 0x8e,
            properties: reason_props(),
        };
        assert_eq!(enc(&Packet::Disconnect(d), v), [0xE0, 0]);
        let au = Auth {
            reason: 0,
            properties: Properties::default(),
        };
        assert_eq!(enc(&Packet::Auth(au), v), Vec::<u8>::new());
    }
}

fn lp(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    super::wire::put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A property section from raw property bytes.
fn props(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    super::wire::put_varint(&mut out, raw.len());
    out.extend_from_slice(raw);
    out
}

#[test]
fn codec_known_connect_vectors() {
    // mosquitto_pub -V mqttv311 -i test -t a -m b
    let b = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b't',
        b'e', b's', b't',
    ];
    let expect = Connect {
        version: V311,
        bridge: false,
        clean_start: true,
        keep_alive: 60,
        client_id: "test".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    let p = Packet::Connect(Box::new(expect.clone()));
    assert_eq!(decode(&b, None, 0), Ok(Some((p.clone(), b.len()))));
    assert_eq!(enc(&p, V311), b);

    // mosquitto_pub -V mqttv31
    let b31 = [
        0x10, 0x12, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3c, 0x00,
        0x04, b't', b'e', b's', b't',
    ];
    let p31 = Packet::Connect(Box::new(Connect {
        version: V31,
        ..expect.clone()
    }));
    assert_eq!(decode(&b31, None, 0), Ok(Some((p31.clone(), b31.len()))));
    assert_eq!(enc(&p31, V31), b31);

    // 5.0 with session expiry 120, receive maximum 20 and a user property.
    let raw_props = [
        0x11, 0, 0, 0, 120, 0x21, 0, 20, 0x26, 0, 1, b'k', 0, 1, b'v',
    ];
    let b5 = pkt(
        0x10,
        &cat(&[
            &lp(b"MQTT"),
            &[5, 0x02, 0, 60],
            &props(&raw_props),
            &lp(b"test"),
        ]),
    );
    let p5 = Packet::Connect(Box::new(Connect {
        version: V5,
        properties: Properties {
            session_expiry_interval: Some(120),
            receive_maximum: Some(20),
            user_properties: up(&[("k", "v")]),
            ..Properties::default()
        },
        ..expect.clone()
    }));
    assert_eq!(decode(&b5, None, 0), Ok(Some((p5.clone(), b5.len()))));
    assert_eq!(enc(&p5, V5), b5);

    // Bridges set bit 0x80 of the level.
    let mut bridge = b.to_vec();
    bridge[8] = 0x84;
    let Ok(Some((Packet::Connect(c), _))) = decode(&bridge, None, 0) else {
        panic!("bridge connect");
    };
    assert!(c.bridge);
    assert_eq!(c.version, V311);

    // 3.1 tolerates a username flag without a username.
    let mut lax = b31.to_vec();
    lax[11] |= 0x80;
    let Ok(Some((Packet::Connect(c), _))) = decode(&lax, None, 0) else {
        panic!("3.1 lax username");
    };
    assert_eq!(c.username, None);
}

#[test]
fn codec_known_encodings() {
    let connack = |sp, code, properties| {
        Packet::Connack(Connack {
            session_present: sp,
            code,
            properties,
        })
    };
    assert_eq!(
        enc(&connack(false, 0, Properties::default()), V311),
        [0x20, 2, 0, 0]
    );
    assert_eq!(
        enc(&connack(true, 0, Properties::default()), V311),
        [0x20, 2, 1, 0]
    );
    assert_eq!(
        enc(&connack(true, 0, Properties::default()), V31),
        [0x20, 2, 0, 0]
    );
    assert_eq!(
        enc(&connack(false, 0x84, Properties::default()), V5),
        [0x20, 3, 0, 0x84, 0]
    );
    let rm = Properties {
        receive_maximum: Some(10),
        ..Properties::default()
    };
    assert_eq!(
        enc(&connack(false, 0, rm), V5),
        [0x20, 6, 0, 0, 3, 0x21, 0, 10]
    );

    let suback = Packet::Suback(Suback {
        packet_id: pid(1),
        codes: vec![0, 1, 2, 0x80],
        properties: Properties::default(),
    });
    assert_eq!(enc(&suback, V311), [0x90, 6, 0, 1, 0, 1, 2, 0x80]);
    assert_eq!(enc(&suback, V5), [0x90, 7, 0, 1, 0, 0, 1, 2, 0x80]);

    let puback = |reason, properties| {
        Packet::Puback(Ack {
            packet_id: pid(7),
            reason,
            properties,
        })
    };
    assert_eq!(
        enc(&puback(0, Properties::default()), V311),
        [0x40, 2, 0, 7]
    );
    assert_eq!(enc(&puback(0, Properties::default()), V5), [0x40, 2, 0, 7]);
    assert_eq!(
        enc(&puback(0x10, Properties::default()), V5),
        [0x40, 3, 0, 7, 0x10]
    );
    let rs = Properties {
        reason_string: Some("x".into()),
        ..Properties::default()
    };
    assert_eq!(
        enc(&puback(0x10, rs), V5),
        [0x40, 8, 0, 7, 0x10, 4, 0x1f, 0, 1, b'x']
    );
    let unsuback = Packet::Unsuback(Unsuback {
        packet_id: pid(5),
        codes: vec![0x11],
        properties: Properties::default(),
    });
    assert_eq!(enc(&unsuback, V311), [0xB0, 2, 0, 5]);
    assert_eq!(enc(&unsuback, V5), [0xB0, 4, 0, 5, 0, 0x11]);
    let disc = |reason| {
        Packet::Disconnect(Disconnect {
            reason,
            properties: Properties::default(),
        })
    };
    assert_eq!(enc(&disc(0), V5), [0xE0, 0]);
    assert_eq!(enc(&disc(0x8e), V5), [0xE0, 1, 0x8e]);
    assert_eq!(enc(&Packet::Pingreq, V311), [0xC0, 0]);
    assert_eq!(enc(&Packet::Pingresp, V5), [0xD0, 0]);
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec![TopicFilter::new("a").unwrap()],
        properties: Properties::default(),
    });
    assert_eq!(enc(&unsub, V311), [0xA2, 5, 0, 3, 0, 1, b'a']);
    let sub = Packet::Subscribe(Subscribe {
        packet_id: pid(3),
        filters: vec![(
            TopicFilter::new("a").unwrap(),
            SubscriptionOptions {
                qos: Qos::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        )],
        properties: Properties::default(),
    });
    assert_eq!(enc(&sub, V311), [0x82, 6, 0, 3, 0, 1, b'a', 0x01]);
    assert_eq!(enc(&sub, V5), [0x82, 7, 0, 3, 0, 0, 1, b'a', 0x2d]);
}

fn message(properties: Properties) -> SharedMessage {
    Rc::new(Message::new(
        TopicName::new("a/b").unwrap(),
        b"hi".to_vec(),
        Qos::ExactlyOnce,
        false,
        properties.into(),
        None,
    ))
}

fn outgoing(msg: SharedMessage) -> OutgoingPublish {
    OutgoingPublish {
        message: msg,
        qos: Qos::AtMostOnce,
        retain: false,
        dup: false,
        packet_id: None,
        subscription_id: None,
        message_expiry: None,
        topic_alias: None,
        topic_alias_only: false,
        topic_skip: 0,
    }
}

fn enc_pub(p: &OutgoingPublish, v: ProtocolVersion) -> Vec<u8> {
    let mut out = vec![0xAA]; // appends after what is there
    encode_publish(p, v, &mut out);
    assert_eq!(out[0], 0xAA);
    out.remove(0);
    assert_eq!(out.len(), publish_wire_size(p, v), "{v:?}");
    out
}

#[test]
fn codec_encode_publish_exact_bytes() {
    let stored = Properties {
        message_expiry_interval: Some(100),
        topic_alias: Some(9),
        subscription_identifiers: vec![3],
        user_properties: up(&[("k", "v")]),
        ..Properties::default()
    };
    let mut p = outgoing(message(stored));
    p.qos = Qos::AtLeastOnce;
    p.packet_id = Some(pid(10));
    p.subscription_id = Some(5);
    p.topic_alias = Some(2);
    p.message_expiry = Some(40);
    // 3.1.1: no properties at all.
    assert_eq!(
        enc_pub(&p, V311),
        [0x32, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i']
    );
    p.qos = Qos::AtMostOnce;
    p.packet_id = None;
    p.retain = true;
    let b5 = enc_pub(&p, V5);
    assert_eq!(
        b5,
        [
            0x31, 0x19, 0, 3, b'a', b'/', b'b', 0x11, // header, topic, props length
            0x0b, 5, // subscription identifier
            0x23, 0, 2, // topic alias
            0x26, 0, 1, b'k', 0, 1, b'v', // user property
            0x02, 0, 0, 0, 40, // expiry replaced, last as in mosquitto
            b'h', b'i'
        ]
    );
    let Ok(Some((Packet::Publish(d), n))) = decode(&b5, Some(V5), 0) else {
        panic!("decode own publish");
    };
    assert_eq!(n, b5.len());
    assert_eq!(d.topic, "a/b");
    assert_eq!(d.properties.subscription_identifiers, vec![5]);
    assert_eq!(d.properties.topic_alias, Some(2));
    assert_eq!(d.properties.message_expiry_interval, Some(40));

    // Alias only: empty topic; the stored expiry is kept without an override.
    p.topic_alias_only = true;
    p.message_expiry = None;
    p.subscription_id = None;
    p.dup = true;
    p.qos = Qos::ExactlyOnce;
    p.packet_id = Some(pid(258));
    let b = enc_pub(&p, V5);
    assert_eq!(
        b,
        [
            0x3d, 0x16, 0, 0, 1, 2, 0x0f, 0x23, 0, 2, 0x26, 0, 1, b'k', 0, 1, b'v', 0x02, 0, 0, 0,
            100, b'h', b'i'
        ]
    );
    let Ok(Some((Packet::Publish(d), _))) = decode(&b, Some(V5), 0) else {
        panic!("decode alias-only publish");
    };
    assert_eq!(d.topic, "");
    assert_eq!(d.packet_id, Some(pid(258)));
    // 3.x always writes the topic.
    let b3 = enc_pub(&p, V31);
    assert_eq!(&b3[..7], &[0x3d, 9, 0, 3, b'a', b'/', b'b']);

    // One exact reservation: a buffer sized by publish_wire_size never grows.
    for v in VERSIONS {
        let size = publish_wire_size(&p, v);
        let mut out = Vec::with_capacity(size);
        let cap = out.capacity();
        encode_publish(&p, v, &mut out);
        assert_eq!((out.len(), out.capacity()), (size, cap));
    }

    // Large payloads need a multi-byte remaining length.
    let small = message(Properties::default());
    let big = Rc::new(Message::new(
        small.topic.clone(),
        vec![7; 200_000],
        small.qos,
        small.retain,
        small.properties.clone(),
        small.expires_at,
    ));
    let bp = outgoing(big);
    for v in VERSIONS {
        let b = enc_pub(&bp, v);
        assert!(matches!(decode(&b, Some(v), 0), Ok(Some((_, n))) if n == b.len()));
    }
}

fn kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Malformed { .. } => "malformed",
        DecodeError::ProtocolError { .. } => "protocol",
        DecodeError::PacketTooLarge { .. } => "too large",
        DecodeError::UnsupportedProtocolVersion { .. } => "version",
        DecodeError::InvalidProtocolName(_) => "name",
    }
}

#[track_caller]
fn expect(b: &[u8], v: Option<ProtocolVersion>, want: &str) {
    match decode(b, v, 0) {
        Err(e) => {
            assert_eq!(kind(&e), want, "{v:?} {b:02x?}: {e}");
            assert!(!e.to_string().is_empty());
        }
        other => panic!("{v:?} {b:02x?}: expected {want}, got {other:?}"),
    }
}

#[track_caller]
fn expect_ok(b: &[u8], v: Option<ProtocolVersion>) -> Packet {
    match decode(b, v, 0) {
        Ok(Some((p, n))) if n == b.len() => p,
        other => panic!("{v:?} {b:02x?}: expected a packet, got {other:?}"),
    }
}

const MAL: &str = "malformed";
const PROTO: &str = "protocol";

#[test]
fn codec_rejects_bad_fixed_headers() {
    let s311 = Some(V311);
    let s5 = Some(V5);
    expect(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f], s311, MAL);
    expect(&[0x00, 0x00], s311, MAL);
    expect(&[0x00, 0x00], None, MAL);
    expect(&[0xF0, 0x00], s311, PROTO);
    expect(&[0xF0, 0x00], Some(V31), PROTO);
    expect_ok(&[0xF0, 0x00], s5);
    expect(&[0xC0, 0x00], None, PROTO);
    expect(&[0x30], None, PROTO);
    expect(&[0x11, 0x00], None, MAL); // checked once the body is there
    assert_eq!(decode(&[0x11], None, 0), Ok(None));
    for v in [s311, s5] {
        expect(&[0x60, 2, 0, 1], v, MAL);
        expect(&[0x80, 6, 0, 1, 0, 1, b'a', 0], v, MAL);
        expect(&[0xA0, 5, 0, 1, 0, 1, b'a'], v, MAL);
        expect(&[0xC1, 0], v, MAL);
        expect(&[0x41, 2, 0, 1], v, MAL);
        expect(&[0xE2, 0], v, MAL);
        expect(&[0x36, 5, 0, 1, b'a', 0, 1], v, MAL); // QoS 3
        expect(&[0x38, 3, 0, 1, b'a'], v, MAL); // DUP on QoS 0
        expect(&[0xC0, 1, 0], v, MAL); // trailing byte
        expect(&[0xD0, 1, 0], v, MAL);
        expect(&[0x40, 1, 0], v, MAL); // short
        expect(&[0x62, 2, 0, 0], v, PROTO); // packet id 0
    }
    expect(&[0x40, 3, 0, 1, 0], s311, MAL);
    expect(&[0xE0, 1, 0], s311, MAL);
    // mosquitto does not check these flags for 3.1 clients.
    expect_ok(&[0x60, 2, 0, 1], Some(V31));
    // Too large as soon as the header is readable.
    assert_eq!(
        decode(&[0x30, 0x80, 0x01], Some(V311), 100),
        Err(DecodeError::PacketTooLarge {
            size: 131,
            max: 100
        })
    );
    assert_eq!(decode(&[0x30, 0x80], Some(V311), 100), Ok(None));
    assert_eq!(decode(&[0x30, 0x80, 0x01], Some(V311), 131), Ok(None));
    assert_eq!(decode(&[], None, 0), Ok(None));
}

fn connect_body(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    pkt(0x10, &cat(&[&lp(name), &[level, flags, 0, 10], rest]))
}

#[test]
fn codec_rejects_bad_connects() {
    let id = lp(b"c");
    expect_ok(&connect_body(b"MQTT", 4, 0x02, &id), None);
    match decode(&connect_body(b"MQTX", 4, 0x02, &id), None, 0) {
        Err(DecodeError::InvalidProtocolName(n)) => assert_eq!(n, "MQTX"),
        other => panic!("{other:?}"),
    }
    expect(&connect_body(b"", 4, 0x02, &id), None, "name");
    for (name, level) in [
        (&b"MQTT"[..], 3u8),
        (b"MQTT", 6),
        (b"MQTT", 0x85),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
    ] {
        assert_eq!(
            decode(&connect_body(name, level, 0x02, &id), None, 0),
            Err(DecodeError::UnsupportedProtocolVersion { level })
        );
    }
    assert_eq!(
        DecodeError::UnsupportedProtocolVersion { level: 3 }.reason_code(),
        0x84
    );
    expect(&connect_body(b"MQTT", 4, 0x03, &id), None, MAL); // reserved bit
    let mut flagged = connect_body(b"MQTT", 5, 0x02, &cat(&[&[0], &id[..]]));
    expect_ok(&flagged, None);
    flagged[0] = 0x12;
    expect(&flagged, None, MAL);
    // MQTT 3.1 is not held to the reserved bits (as mosquitto).
    let mut old = connect_body(b"MQIsdp", 3, 0x03 | 0x08 | 0x20, &id);
    old[0] = 0x1f;
    let Packet::Connect(c) = expect_ok(&old, None) else {
        panic!()
    };
    assert!(c.will.is_none() && c.clean_start);
    expect(&connect_body(b"MQTT", 4, 0x08, &id), None, MAL); // will QoS, no will
    expect(&connect_body(b"MQTT", 4, 0x20, &id), None, MAL); // will retain, no will
    let will = cat(&[&id, &lp(b"w"), &lp(b"p")]);
    expect_ok(&connect_body(b"MQTT", 4, 0x2c, &will), None);
    expect(&connect_body(b"MQTT", 4, 0x1c, &will), None, MAL); // will QoS 3
    let bad_will = cat(&[&id, &lp(b"w/+"), &lp(b"p")]);
    expect(&connect_body(b"MQTT", 4, 0x04, &bad_will), None, MAL);
    let pw = cat(&[&id, &lp(b"pw")]);
    expect(&connect_body(b"MQTT", 4, 0x42, &pw), None, PROTO);
    expect(&connect_body(b"MQIsdp", 3, 0x42, &pw), None, PROTO);
    // 5.0 allows a password without a username.
    let pw5 = cat(&[&[0], &id[..], &lp(b"pw")]);
    let Packet::Connect(c) = expect_ok(&connect_body(b"MQTT", 5, 0x42, &pw5), None) else {
        panic!()
    };
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
    assert_eq!(c.username, None);
    // Bad UTF-8 in the client id / username; trailing bytes.
    expect(&connect_body(b"MQTT", 4, 0x02, &lp(b"a\x01")), None, MAL);
    expect(&connect_body(b"MQTT", 4, 0x02, &lp(b"\xff")), None, MAL);
    expect(
        &connect_body(b"MQTT", 4, 0x82, &cat(&[&id, &lp(b"\xc0\x80")])),
        None,
        MAL,
    );
    expect(
        &connect_body(b"MQTT", 4, 0x02, &cat(&[&id, &[0]])),
        None,
        MAL,
    );
    expect(&connect_body(b"MQTT", 4, 0x82, &id), None, MAL); // username missing
    // Truncated before the level.
    expect(&pkt(0x10, &lp(b"MQTT")), None, MAL);
}

fn publish_pkt(first: u8, topic: &[u8], rest: &[u8]) -> Vec<u8> {
    pkt(first, &cat(&[&lp(topic), rest]))
}

#[test]
fn codec_rejects_bad_publishes() {
    for v in [Some(V31), Some(V311), Some(V5)] {
        let pr: &[u8] = if v == Some(V5) { &[0] } else { &[] };
        expect_ok(&publish_pkt(0x30, b"a/b", pr), v);
        // mosquitto fails a PUBLISH to a wildcard topic as a protocol error.
        expect(&publish_pkt(0x30, b"a/+", pr), v, PROTO);
        expect(&publish_pkt(0x30, b"a/#", pr), v, PROTO);
        expect(&publish_pkt(0x30, b"a\x00", pr), v, MAL);
        expect(&publish_pkt(0x30, b"a\x1f", pr), v, MAL);
        expect(&publish_pkt(0x30, "\u{FFFF}".as_bytes(), pr), v, MAL);
        expect(&publish_pkt(0x32, b"a", &cat(&[&[0, 0], pr])), v, PROTO);
        expect(&publish_pkt(0x32, b"a", &[0]), v, MAL); // truncated id
    }
    expect(&publish_pkt(0x30, b"", &[]), Some(V311), MAL);
    expect(&publish_pkt(0x30, b"", &[0]), Some(V5), PROTO);
    let Packet::Publish(p) = expect_ok(&publish_pkt(0x30, b"", &[3, 0x23, 0, 4]), Some(V5)) else {
        panic!()
    };
    assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(4)));
    // Topic alias values are not range checked here.
    expect_ok(&publish_pkt(0x30, b"a", &[3, 0x23, 0, 0]), Some(V5));
    // Subscription identifiers may repeat on PUBLISH.
    let Packet::Publish(p) = expect_ok(&publish_pkt(0x30, b"a", &[4, 0x0b, 1, 0x0b, 2]), Some(V5))
    else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);
}

fn sub_pkt(v5: bool, entries: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if v5 {
        body.push(0);
    }
    for (f, o) in entries {
        body.extend_from_slice(&lp(f));
        body.push(*o);
    }
    pkt(0x82, &body)
}

#[test]
fn codec_rejects_bad_subscribes() {
    for v in VERSIONS {
        let v5 = v.is_v5();
        let s = Some(v);
        expect_ok(&sub_pkt(v5, &[(b"a/#", 2)]), s);
        expect(&sub_pkt(v5, &[]), s, MAL);
        expect(&sub_pkt(v5, &[(b"a/#/b", 0)]), s, MAL);
        expect(&sub_pkt(v5, &[(b"", 0)]), s, MAL);
        expect(&sub_pkt(v5, &[(b"a", 3)]), s, MAL);
        expect(&sub_pkt(v5, &[(b"a", 0xC0)]), s, MAL);
        expect(&sub_pkt(v5, &[(b"a", 0x40)]), s, MAL);
        expect(&pkt(0x82, &cat(&[&[0, 0], &lp(b"a"), &[0]])), s, MAL); // id 0
        // Filter with no options byte.
        let mut short = sub_pkt(v5, &[(b"a", 0)]);
        short.pop();
        short[1] -= 1;
        expect(&short, s, MAL);
        expect(&pkt(0xA2, if v5 { &[0, 1, 0] } else { &[0, 1] }), s, MAL);
        let unsub = if v5 { vec![0, 1, 0] } else { vec![0, 1] };
        expect(&pkt(0xA2, &cat(&[&unsub, &lp(b"a+")])), s, MAL);
        expect_ok(&pkt(0xA2, &cat(&[&unsub, &lp(b"a/+")])), s);
    }
    let s3 = Some(V311);
    expect(&sub_pkt(false, &[(b"a", 0x04)]), s3, MAL);
    expect(&sub_pkt(false, &[(b"a", 0x10)]), s3, MAL);
    let s5 = Some(V5);
    expect(&sub_pkt(true, &[(b"a", 0x30)]), s5, MAL); // retain handling 3, as mosquitto
    expect(&sub_pkt(true, &[(b"$share/g/a", 0x04)]), s5, PROTO);
    let Packet::Subscribe(sub) = expect_ok(&sub_pkt(true, &[(b"a", 0x2e)]), s5) else {
        panic!()
    };
    assert_eq!(
        sub.filters[0].1,
        SubscriptionOptions {
            qos: Qos::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        }
    );
}

/// A 5.0 DISCONNECT carrying the given raw properties.
fn disc_with(raw: &[u8]) -> Vec<u8> {
    pkt(0xE0, &cat(&[&[0], &props(raw)]))
}

fn connack_with(raw: &[u8]) -> Vec<u8> {
    pkt(0x20, &cat(&[&[0, 0], &props(raw)]))
}

#[test]
fn codec_rejects_bad_properties() {
    let s5 = Some(V5);
    expect_ok(&disc_with(&[0x11, 0, 0, 0, 1]), s5);
    // Not valid on this packet, unknown id.
    expect(&disc_with(&[0x23, 0, 1]), s5, MAL);
    expect(&disc_with(&[0x12, 0, 1, b'a']), s5, MAL);
    expect(&disc_with(&[0x7f, 0]), s5, MAL);
    expect(&disc_with(&[0x00]), s5, MAL);
    expect(&disc_with(&[0x80, 0x01]), s5, MAL);
    // Duplicates.
    expect(&disc_with(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]), s5, PROTO);
    expect(&disc_with(&[0x1f, 0, 0, 0x1f, 0, 0]), s5, PROTO);
    let Packet::Disconnect(d) = expect_ok(
        &disc_with(&[0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 1, b'b']),
        s5,
    ) else {
        panic!()
    };
    assert_eq!(d.properties.user_properties, up(&[("a", ""), ("a", "b")]));
    // Subscription identifiers: once on SUBSCRIBE, never 0.
    let sub = |raw: &[u8]| pkt(0x82, &cat(&[&[0, 1], &props(raw), &lp(b"a"), &[0]]));
    expect_ok(&sub(&[0x0b, 0x80, 0x01]), s5);
    expect(&sub(&[0x0b, 1, 0x0b, 2]), s5, PROTO);
    expect(&sub(&[0x0b, 0]), s5, MAL); // as mosquitto
    expect(&sub(&[0x0b, 0x80, 0x80, 0x80, 0x80, 0x01]), s5, MAL);
    expect(&sub(&[0x01, 1]), s5, MAL); // payload format not on SUBSCRIBE
    // Values.
    let publ = |raw: &[u8]| pkt(0x30, &cat(&[&lp(b"t"), &props(raw)]));
    expect_ok(&publ(&[0x01, 1]), s5);
    expect_ok(&publ(&[0x01, 2]), s5); // mosquitto forwards any payload format
    expect(&publ(&[0x0b, 0]), s5, PROTO);
    expect(&publ(&[0x03, 0, 1, 0x01]), s5, MAL); // bad UTF-8 in content type
    expect_ok(&publ(&[0x09, 0, 2, 0, 0xff]), s5); // binary is not UTF-8 checked
    let conn = |raw: &[u8]| connect_body(b"MQTT", 5, 0x02, &cat(&[&props(raw), &lp(b"c")]));
    expect_ok(
        &conn(&[0x17, 1, 0x19, 0, 0x21, 0, 1, 0x27, 0, 0, 0, 1]),
        None,
    );
    expect(&conn(&[0x17, 2]), None, PROTO);
    expect(&conn(&[0x19, 2]), None, PROTO);
    expect(&conn(&[0x21, 0, 0]), None, PROTO);
    expect(&conn(&[0x27, 0, 0, 0, 0]), None, PROTO);
    expect(&conn(&[0x24, 0]), None, MAL); // maximum QoS is CONNACK only
    expect(&conn(&[0x18, 0, 0, 0, 0]), None, MAL); // will delay only in will
    for id in [0x24u8, 0x25, 0x28, 0x29, 0x2a] {
        expect_ok(&connack_with(&[id, 1]), s5);
        expect(&connack_with(&[id, 2]), s5, PROTO);
    }
    // Property length beyond the packet; a property cut short.
    expect(&pkt(0xE0, &[0, 5, 0x11, 0, 0, 0]), s5, MAL);
    expect(&pkt(0xE0, &[0, 3, 0x11, 0, 0]), s5, MAL);
    expect(&pkt(0xE0, &[0, 2, 0x26, 0]), s5, MAL);
    // Will properties are checked against the will's table.
    let will = |raw: &[u8]| {
        connect_body(
            b"MQTT",
            5,
            0x06,
            &cat(&[&[0], &lp(b"c"), &props(raw), &lp(b"w"), &lp(b"")]),
        )
    };
    expect_ok(&will(&[0x18, 0, 0, 0, 5]), None);
    expect(&will(&[0x11, 0, 0, 0, 5]), None, MAL);
    // Reason codes.
    assert_eq!(
        DecodeError::Malformed {
            packet: "X",
            reason: "y"
        }
        .reason_code(),
        0x81
    );
    assert_eq!(
        DecodeError::ProtocolError {
            packet: "X",
            reason: "y"
        }
        .reason_code(),
        0x82
    );
    assert_eq!(
        DecodeError::PacketTooLarge { size: 9, max: 8 }.reason_code(),
        0x95
    );
}

#[test]
fn codec_decodes_short_forms() {
    let s5 = Some(V5);
    assert_eq!(
        expect_ok(&[0x40, 2, 0, 1], s5),
        Packet::Puback(Ack::new(pid(1)))
    );
    assert_eq!(
        expect_ok(&[0x50, 3, 0, 1, 0x10], s5),
        Packet::Pubrec(Ack::with_reason(pid(1), 0x10))
    );
    assert_eq!(
        expect_ok(&[0x70, 4, 0, 1, 0x92, 0], s5),
        Packet::Pubcomp(Ack::with_reason(pid(1), 0x92))
    );
    assert_eq!(
        expect_ok(&[0xE0, 0], s5),
        Packet::Disconnect(Disconnect {
            reason: 0,
            properties: Properties::default()
        })
    );
    assert_eq!(
        expect_ok(&[0xE0, 1, 0x04], s5),
        Packet::Disconnect(Disconnect {
            reason: 4,
            properties: Properties::default()
        })
    );
    // Non-minimal remaining length is accepted, as mosquitto does.
    assert_eq!(expect_ok(&[0xC0, 0x80, 0x00], s5), Packet::Pingreq);
    expect(&[0x90, 3, 0, 1, 3], Some(V311), MAL); // bad 3.x SUBACK code
    expect(&[0x90, 2, 0, 1], Some(V311), PROTO);
    expect(&[0x20, 2, 2, 0], Some(V311), MAL); // reserved CONNACK flags
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn codec_never_panics_on_random_input() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut valid: Vec<(ProtocolVersion, Vec<u8>)> = Vec::new();
    for v in VERSIONS {
        for p in sample_packets(v) {
            valid.push((v, enc(&p, v)));
        }
    }
    let versions = [None, Some(V31), Some(V311), Some(V5)];
    let mut decoded = 0usize;
    let mut buf = Vec::new();
    for round in 0..200_000 {
        buf.clear();
        if round % 2 == 0 {
            // Random bytes behind a plausible first byte and length.
            let len = rng.below(48);
            buf.push(
                (rng.below(16) << 4) as u8
                    | if rng.below(4) == 0 {
                        rng.below(16) as u8
                    } else {
                        0
                    },
            );
            if rng.below(8) != 0 {
                buf.push(len as u8);
            }
            for _ in 0..len {
                buf.push(rng.next() as u8);
            }
        } else {
            let (_, bytes) = &valid[rng.below(valid.len())];
            buf.extend_from_slice(bytes);
            for _ in 0..1 + rng.below(3) {
                match rng.below(4) {
                    0 | 1 => {
                        let i = rng.below(buf.len());
                        buf[i] = rng.next() as u8;
                    }
                    2 => {
                        let i = rng.below(buf.len());
                        buf[i] ^= 1 << rng.below(8);
                    }
                    _ => {
                        let n = rng.below(buf.len() + 1);
                        buf.truncate(n.max(1));
                    }
                }
            }
        }
        for v in versions {
            let max = if rng.below(4) == 0 {
                rng.below(64) as u32
            } else {
                0
            };
            if let Ok(Some((p, n))) = decode(&buf, v, max) {
                assert!(n <= buf.len());
                decoded += 1;
                // Whatever decodes re-encodes to something that decodes the same.
                let ev = v.unwrap_or(V311);
                let again = enc(&p, ev);
                assert_eq!(
                    decode(&again, Some(ev), 0),
                    Ok(Some((p.clone(), again.len()))),
                    "{buf:02x?}"
                );
            }
        }
    }
    assert!(decoded > 1000, "{decoded}");
}

/// mosquitto 2.0.11 writes CONNACK properties in the order its code adds
/// them; these bytes are what Debian's mosquitto sent with max_keepalive 30,
/// retain_available false, max_packet_size 1000, max_inflight_messages 7 and
/// max_qos 1 to a client with an empty id and keep alive 100.
#[test]
fn codec_connack_properties_in_mosquittos_order() {
    let props = Properties {
        topic_alias_maximum: Some(10),
        server_keep_alive: Some(30),
        assigned_client_identifier: Some("auto-X".into()),
        retain_available: Some(0),
        maximum_packet_size: Some(1000),
        receive_maximum: Some(7),
        maximum_qos: Some(1),
        ..Properties::default()
    };
    let mut out = Vec::new();
    encode(
        &Packet::Connack(Connack {
            session_present: false,
            code: 0,
            properties: props,
        }),
        V5,
        &mut out,
    );
    assert_eq!(
        out,
        [
            0x20, 30, 0, 0, 27, // header, flags, code, props length
            0x22, 0, 10, // topic alias maximum
            0x13, 0, 30, // server keep alive
            0x12, 0, 6, b'a', b'u', b't', b'o', b'-', b'X', // assigned id
            0x25, 0, // retain available
            0x27, 0, 0, 3, 0xe8, // maximum packet size
            0x21, 0, 7, // receive maximum
            0x24, 1, // maximum QoS
        ]
    );
}

/// A forwarded message keeps its properties in the order they arrived,
/// after the delivery's subscription identifier and before its expiry, as
/// mosquitto 2.0.11 forwarded this very PUBLISH.
#[test]
fn codec_forwarded_properties_keep_their_arrival_order() {
    let mut props = vec![0x26, 0, 2, b'k', b'1', 0, 2, b'v', b'1'];
    props.extend([0x02, 0, 0, 0, 100]);
    props.extend([0x03, 0, 2, b'c', b't']);
    props.extend([0x01, 1]);
    props.extend([0x26, 0, 2, b'k', b'2', 0, 2, b'v', b'2']);
    props.extend([0x08, 0, 2, b'r', b't']);
    props.extend([0x09, 0, 2, b'c', b'd']);
    let mut body = vec![0, 3, b't', b'/', b'a', 0, 7, props.len() as u8];
    body.extend(&props);
    body.extend(b"pay");
    let mut wire = vec![0x32, body.len() as u8];
    wire.extend(&body);
    let Ok(Some((Packet::Publish(d), _))) = decode(&wire, Some(V5), 0) else {
        panic!("decode publish");
    };
    let mut p = outgoing(message(d.properties));
    p.qos = Qos::AtLeastOnce;
    p.packet_id = Some(pid(1));
    p.subscription_id = Some(5);
    let mut expected = vec![0x0b, 5];
    expected.extend([0x26, 0, 2, b'k', b'1', 0, 2, b'v', b'1']);
    expected.extend([0x03, 0, 2, b'c', b't', 0x01, 1]);
    expected.extend([0x26, 0, 2, b'k', b'2', 0, 2, b'v', b'2']);
    expected.extend([0x08, 0, 2, b'r', b't', 0x09, 0, 2, b'c', b'd']);
    expected.extend([0x02, 0, 0, 0, 100]);
    let out = enc_pub(&p, V5);
    assert_eq!(&out[9..10], &[expected.len() as u8]);
    assert_eq!(&out[10..10 + expected.len()], &expected[..]);
}
