//! Core behaviour without a network: packets in, actions out.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::codec::{
    Connack, Connect, OutgoingPublish, Publish, Qos, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, Unsubscribe, Will,
};

struct Users(HashMap<&'static str, &'static str>);

impl PasswordCheck for Users {
    fn check(&self, username: &str, password: Option<&[u8]>) -> bool {
        self.0
            .get(username)
            .is_some_and(|p| Some(p.as_bytes()) == password)
    }
}

struct Harness {
    broker: Broker,
    now: Instant,
    out: Vec<Action>,
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

impl Harness {
    fn new() -> Harness {
        Harness::with(BrokerSettings::default(), anonymous())
    }

    fn with(settings: BrokerSettings, listener: ListenerSettings) -> Harness {
        Harness {
            broker: Broker::new(settings, vec![listener], 42),
            now: Instant::now(),
            out: Vec::new(),
        }
    }

    fn open(&mut self, conn: ConnId) {
        self.broker.connection_opened(
            conn,
            0,
            format!("127.0.0.1:{}", 40000 + conn).parse().unwrap(),
            self.now,
        );
    }

    fn packet(&mut self, conn: ConnId, p: Packet) -> Vec<Action> {
        self.out.clear();
        self.broker.handle_packet(conn, p, self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn connect_with(&mut self, conn: ConnId, c: Connect) -> Vec<Action> {
        self.open(conn);
        self.packet(conn, Packet::Connect(Box::new(c)))
    }

    fn connect(&mut self, conn: ConnId, id: &str, clean: bool) -> Vec<Action> {
        self.connect_with(conn, connect(id, ProtocolVersion::V311, clean))
    }

    fn subscribe(&mut self, conn: ConnId, filter: &str, qos: Qos) -> Vec<Action> {
        self.packet(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                filters: vec![(
                    TopicFilter::new(filter).unwrap(),
                    SubscriptionOptions::with_qos(qos),
                )],
                properties: Properties::default(),
            }),
        )
    }

    fn publish(
        &mut self,
        conn: ConnId,
        topic: &str,
        payload: &str,
        qos: Qos,
        retain: bool,
    ) -> Vec<Action> {
        self.packet(conn, Packet::Publish(publish(topic, payload, qos, retain)))
    }

    fn lost(&mut self, conn: ConnId) -> Vec<Action> {
        self.out.clear();
        self.broker
            .connection_lost(conn, CloseReason::ClosedByPeer, self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn advance(&mut self, secs: u64) -> Vec<Action> {
        self.now += Duration::from_secs(secs);
        self.out.clear();
        self.broker.tick(self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }
}

fn anonymous() -> ListenerSettings {
    ListenerSettings {
        security: Security {
            allow_anonymous: true,
            ..Security::default()
        },
        ..ListenerSettings::default()
    }
}

fn connect(id: &str, version: ProtocolVersion, clean: bool) -> Connect {
    Connect {
        version,
        bridge: false,
        clean_start: clean,
        keep_alive: 60,
        client_id: id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn publish(topic: &str, payload: &str, qos: Qos, retain: bool) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: topic.to_string(),
        packet_id: (qos > Qos::AtMostOnce).then(|| pid(7)),
        payload: payload.as_bytes().to_vec(),
        properties: Properties::default(),
    }
}

fn connack_code(actions: &[Action]) -> Option<u8> {
    actions.iter().find_map(|a| match a {
        Action::Send(_, Outbound::Packet(p)) => match &**p {
            Packet::Connack(c) => Some(c.code),
            _ => None,
        },
        _ => None,
    })
}

fn connack(actions: &[Action]) -> Connack {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Send(_, Outbound::Packet(p)) => match &**p {
                Packet::Connack(c) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("no CONNACK")
}

/// (conn, topic, payload, qos, retain, packet id) of every PUBLISH sent.
fn publishes(actions: &[Action]) -> Vec<(ConnId, String, String, u8, bool, Option<u16>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(c, Outbound::Publish(p)) => Some((
                *c,
                p.message.topic.to_string(),
                String::from_utf8_lossy(&p.message.payload).into_owned(),
                p.qos.as_u8(),
                p.retain,
                p.packet_id.map(|i| i.get()),
            )),
            _ => None,
        })
        .collect()
}

fn acks(actions: &[Action]) -> Vec<(AckKind, u16, u8)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, Outbound::Ack(k, id, r)) => Some((*k, id.get(), *r)),
            _ => None,
        })
        .collect()
}

fn closes(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close(c) => Some(*c),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_is_accepted_and_v5_gets_mosquittos_properties() {
    let mut h = Harness::new();
    let c = connack(&h.connect_with(1, connect("", ProtocolVersion::V5, true)));
    assert_eq!(c.code, 0);
    assert!(!c.session_present);
    assert_eq!(c.properties.topic_alias_maximum, Some(10));
    assert_eq!(c.properties.receive_maximum, Some(20));
    let id = c.properties.assigned_client_identifier.unwrap();
    assert!(id.starts_with("auto-") && id.len() == 41, "{id}");
    assert_eq!(id.matches('-').count(), 5);
}

#[test]
fn empty_client_id_rules() {
    let mut h = Harness::new();
    // 3.1.1 with clean session 0 and 3.1 always: identifier rejected.
    assert_eq!(connack_code(&h.connect(1, "", false)), Some(2));
    let a = h.connect_with(2, connect("", ProtocolVersion::V31, true));
    assert_eq!(connack_code(&a), Some(2));
    assert_eq!(closes(&a), vec![2]);
    assert_eq!(connack_code(&h.connect(3, "", true)), Some(0));
}

#[test]
fn authentication_follows_mosquitto() {
    let users = Rc::new(Users(HashMap::from([("alice", "secret")])));
    let listener = ListenerSettings {
        security: Security {
            allow_anonymous: false,
            passwords: Some(users.clone()),
            ..Security::default()
        },
        ..ListenerSettings::default()
    };
    let mut h = Harness::with(BrokerSettings::default(), listener);
    let mut c = connect("a", ProtocolVersion::V311, true);
    assert_eq!(
        connack_code(&h.connect_with(1, c.clone())),
        Some(5),
        "anonymous"
    );
    c.username = Some("alice".into());
    c.password = Some(b"wrong".to_vec());
    assert_eq!(
        connack_code(&h.connect_with(2, c.clone())),
        Some(5),
        "wrong password"
    );
    c.username = Some("mallory".into());
    c.password = Some(b"secret".to_vec());
    assert_eq!(
        connack_code(&h.connect_with(3, c.clone())),
        Some(5),
        "unknown user"
    );
    c.username = Some("alice".into());
    assert_eq!(
        connack_code(&h.connect_with(4, c.clone())),
        Some(0),
        "alice"
    );
    let mut v5 = c.clone();
    v5.version = ProtocolVersion::V5;
    v5.password = None;
    assert_eq!(connack_code(&h.connect_with(5, v5)), Some(0x87));

    // No password file and allow_anonymous false: nobody gets in.
    let mut h = Harness::with(BrokerSettings::default(), ListenerSettings::default());
    assert_eq!(connack_code(&h.connect_with(1, c)), Some(5));
}

#[test]
fn qos0_and_qos1_flow() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.connect(2, "pub", true);
    let a = h.subscribe(1, "a/+", Qos::AtLeastOnce);
    assert!(a.iter().any(|a| matches!(a, Action::Send(1, Outbound::Packet(p)) if matches!(&**p, Packet::Suback(s) if s.codes == vec![1]))));
    let a = h.publish(2, "a/b", "zero", Qos::AtMostOnce, false);
    assert_eq!(
        publishes(&a),
        vec![(1, "a/b".into(), "zero".into(), 0, false, None)]
    );
    let a = h.publish(2, "a/b", "one", Qos::AtLeastOnce, false);
    assert_eq!(
        publishes(&a),
        vec![(1, "a/b".into(), "one".into(), 1, false, Some(1))]
    );
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0)]);
    assert_eq!(h.broker.inflight_ids("sub"), vec![pid(1)]);
    h.packet(1, Packet::Puback(Ack::new(pid(1))));
    assert!(h.broker.inflight_ids("sub").is_empty());
}

#[test]
fn qos2_both_directions_delivers_once() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.connect(2, "pub", true);
    h.subscribe(1, "t", Qos::ExactlyOnce);
    // Held until PUBREL, as mosquitto does.
    let a = h.publish(2, "t", "x", Qos::ExactlyOnce, false);
    assert!(publishes(&a).is_empty());
    assert_eq!(acks(&a), vec![(AckKind::Pubrec, 7, 0)]);
    // A retransmitted PUBLISH (DUP) before PUBREL is not held twice.
    let a = h.publish(2, "t", "x", Qos::ExactlyOnce, false);
    assert!(publishes(&a).is_empty());
    assert_eq!(acks(&a), vec![(AckKind::Pubrec, 7, 0)]);
    let a = h.packet(2, Packet::Pubrel(Ack::new(pid(7))));
    assert_eq!(publishes(&a).len(), 1);
    assert_eq!(acks(&a), vec![(AckKind::Pubcomp, 7, 0)]);
    // A repeated PUBREL gets a plain PUBCOMP and delivers nothing.
    let a = h.packet(2, Packet::Pubrel(Ack::new(pid(7))));
    assert!(publishes(&a).is_empty());
    assert_eq!(acks(&a), vec![(AckKind::Pubcomp, 7, 0)]);
    // Outbound: PUBREC → PUBREL → PUBCOMP.
    let a = h.packet(1, Packet::Pubrec(Ack::new(pid(1))));
    assert_eq!(acks(&a), vec![(AckKind::Pubrel, 1, 0)]);
    h.packet(1, Packet::Pubcomp(Ack::new(pid(1))));
    assert!(h.broker.inflight_ids("sub").is_empty());
}

#[test]
fn qos_is_downgraded_to_the_subscription() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.connect(2, "pub", true);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.publish(2, "t", "x", Qos::ExactlyOnce, false);
    let a = h.packet(2, Packet::Pubrel(Ack::new(pid(7))));
    assert_eq!(publishes(&a)[0].3, 1);
}

#[test]
fn retained_set_replace_clear_and_sent_on_subscribe() {
    let mut h = Harness::new();
    h.connect(2, "pub", true);
    h.publish(2, "r/1", "old", Qos::AtLeastOnce, true);
    h.publish(2, "r/1", "new", Qos::AtLeastOnce, true);
    h.publish(2, "r/2", "two", Qos::AtMostOnce, true);
    h.publish(2, "r/3", "gone", Qos::AtMostOnce, true);
    h.publish(2, "r/3", "", Qos::AtMostOnce, true);
    h.connect(1, "sub", true);
    let a = h.subscribe(1, "r/#", Qos::ExactlyOnce);
    // SUBACK first, then the retained messages with retain set.
    assert!(matches!(a[0], Action::Send(1, Outbound::Packet(_))));
    let mut got = publishes(&a);
    got.sort();
    assert_eq!(
        got,
        vec![
            (1, "r/1".into(), "new".into(), 1, true, Some(1)),
            (1, "r/2".into(), "two".into(), 0, true, None),
        ]
    );
    // Live forwarding clears the retain flag.
    let a = h.publish(2, "r/1", "live", Qos::AtMostOnce, true);
    assert_eq!(
        publishes(&a),
        vec![(1, "r/1".into(), "live".into(), 0, false, None)]
    );
}

#[test]
fn will_is_published_on_drop_but_not_after_disconnect() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.subscribe(1, "will/#", Qos::AtMostOnce);
    let mut c = connect("w", ProtocolVersion::V311, true);
    c.will = Some(Will {
        topic: TopicName::new("will/w").unwrap(),
        payload: b"gone".to_vec(),
        qos: Qos::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    h.connect_with(2, c.clone());
    let a = h.lost(2);
    assert_eq!(
        publishes(&a),
        vec![(1, "will/w".into(), "gone".into(), 0, false, None)]
    );

    h.connect_with(3, c);
    let a = h.packet(
        3,
        Packet::Disconnect(Disconnect {
            reason: 0,
            properties: Properties::default(),
        }),
    );
    assert!(publishes(&a).is_empty());
    assert_eq!(closes(&a), vec![3]);
}

#[test]
fn persistent_session_gets_what_was_queued() {
    let mut h = Harness::new();
    h.connect(1, "durable", false);
    h.subscribe(1, "q/#", Qos::AtLeastOnce);
    h.lost(1);
    h.connect(2, "pub", true);
    h.publish(2, "q/1", "a", Qos::AtLeastOnce, false);
    h.publish(2, "q/2", "b", Qos::AtMostOnce, false); // QoS 0: not queued
    h.publish(2, "q/3", "c", Qos::ExactlyOnce, false);
    h.packet(2, Packet::Pubrel(Ack::new(pid(7))));
    let a = h.connect(3, "durable", false);
    assert!(connack(&a).session_present);
    assert_eq!(
        publishes(&a),
        vec![
            (3, "q/1".into(), "a".into(), 1, false, Some(1)),
            (3, "q/3".into(), "c".into(), 1, false, Some(2)),
        ]
    );
    // A clean session throws the old one away.
    h.lost(3);
    let a = h.connect(4, "durable", true);
    assert!(!connack(&a).session_present);
    assert!(publishes(&a).is_empty());
}

#[test]
fn unacknowledged_messages_are_resent_with_dup() {
    let mut h = Harness::new();
    h.connect(1, "d", false);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.connect(2, "pub", true);
    h.publish(2, "t", "x", Qos::AtLeastOnce, false);
    h.lost(1);
    let a = h.connect(3, "d", false);
    let resent: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Send(3, Outbound::Publish(p)) => Some((p.dup, p.packet_id)),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![(true, Some(pid(1)))]);
}

#[test]
fn takeover_closes_the_old_connection() {
    let mut h = Harness::new();
    h.connect(1, "dup", false);
    h.subscribe(1, "t", Qos::AtMostOnce);
    let a = h.connect(2, "dup", false);
    assert_eq!(closes(&a), vec![1]);
    assert!(connack(&a).session_present);
    h.connect(3, "pub", true);
    let a = h.publish(3, "t", "x", Qos::AtMostOnce, false);
    assert_eq!(
        publishes(&a),
        vec![(2, "t".into(), "x".into(), 0, false, None)]
    );
}

#[test]
fn v5_takeover_gets_session_taken_over() {
    let mut h = Harness::new();
    h.connect_with(1, connect("dup", ProtocolVersion::V5, true));
    let a = h.connect_with(2, connect("dup", ProtocolVersion::V5, true));
    let disconnect = a.iter().find_map(|a| match a {
        Action::Send(1, Outbound::Packet(p)) => match &**p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(disconnect, Some(0x8E));
}

#[test]
fn dollar_topics_and_sys_publishing() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.subscribe(1, "#", Qos::AtMostOnce);
    h.connect(2, "pub", true);
    let a = h.publish(2, "$SYS/broker/x", "no", Qos::AtLeastOnce, false);
    assert!(publishes(&a).is_empty());
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0)]);
    let a = h.publish(2, "$other/x", "no", Qos::AtMostOnce, false);
    assert!(publishes(&a).is_empty(), "# must not match $ topics");
}

#[test]
fn overlapping_subscriptions_one_copy_for_v3_one_per_sub_for_v5() {
    let mut h = Harness::new();
    h.connect(1, "v3", true);
    h.subscribe(1, "a/#", Qos::AtMostOnce);
    h.subscribe(1, "a/+", Qos::AtLeastOnce);
    h.connect_with(2, connect("v5", ProtocolVersion::V5, true));
    h.subscribe(2, "a/#", Qos::AtMostOnce);
    h.subscribe(2, "a/+", Qos::AtMostOnce);
    h.subscribe(2, "#", Qos::AtMostOnce);
    h.connect(3, "pub", true);
    let a = h.publish(3, "a/b", "x", Qos::AtLeastOnce, false);
    let p = publishes(&a);
    assert_eq!(
        p.iter()
            .filter(|d| d.0 == 1)
            .map(|d| d.3)
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(p.iter().filter(|d| d.0 == 2).count(), 3);
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    h.packet(
        1,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(2),
            filters: vec![TopicFilter::new("t").unwrap()],
            properties: Properties::default(),
        }),
    );
    h.connect(2, "pub", true);
    assert!(publishes(&h.publish(2, "t", "x", Qos::AtMostOnce, false)).is_empty());
}

#[test]
fn keep_alive_and_connect_timeouts() {
    let mut h = Harness::new();
    let mut c = connect("ka", ProtocolVersion::V311, true);
    c.keep_alive = 2;
    h.connect_with(1, c);
    h.open(2); // never sends CONNECT
    assert!(closes(&h.advance(2)).is_empty());
    assert_eq!(closes(&h.advance(1)), vec![1], "1.5 x 2 s = 3 s");
    assert_eq!(closes(&h.advance(10)), vec![2], "CONNECT timeout");
}

#[test]
fn second_connect_is_a_protocol_error() {
    let mut h = Harness::new();
    h.connect(1, "c", true);
    let a = h.packet(
        1,
        Packet::Connect(Box::new(connect("c", ProtocolVersion::V311, true))),
    );
    assert_eq!(closes(&a), vec![1]);
}

#[test]
fn inflight_window_queues_the_rest_in_order() {
    let settings = BrokerSettings {
        max_inflight_messages: 2,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "sub", true);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.connect(2, "pub", true);
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.extend(publishes(&h.publish(
            2,
            "t",
            &i.to_string(),
            Qos::AtLeastOnce,
            false,
        )));
    }
    assert_eq!(
        sent.iter().map(|p| p.2.as_str()).collect::<Vec<_>>(),
        vec!["0", "1"]
    );
    let a = h.packet(1, Packet::Puback(Ack::new(pid(1))));
    assert_eq!(
        publishes(&a)
            .iter()
            .map(|p| p.2.clone())
            .collect::<Vec<_>>(),
        vec!["2"]
    );
}

#[test]
fn offline_queue_limit_drops_extra_messages() {
    let settings = BrokerSettings {
        max_queued_messages: 2,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "d", false);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.lost(1);
    h.connect(2, "pub", true);
    for i in 0..5 {
        h.publish(2, "t", &i.to_string(), Qos::AtLeastOnce, false);
    }
    assert_eq!(h.broker.stats.publish_dropped, 3);
    let a = h.connect(3, "d", false);
    assert_eq!(
        publishes(&a)
            .iter()
            .map(|p| p.2.clone())
            .collect::<Vec<_>>(),
        vec!["0", "1"]
    );
}

#[test]
fn v5_no_matching_subscribers_and_denied_sys() {
    let mut h = Harness::new();
    h.connect_with(1, connect("p5", ProtocolVersion::V5, true));
    let a = h.publish(1, "nobody", "x", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0x10)]);
    let a = h.publish(1, "$SYS/x", "x", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0x87)]);
}

fn v5_connect(id: &str, clean: bool, expiry: u32) -> Connect {
    let mut c = connect(id, ProtocolVersion::V5, clean);
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn outgoing(actions: &[Action]) -> Vec<OutgoingPublish> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, Outbound::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn message_expiry_counts_down_and_expired_queued_messages_are_dropped() {
    let mut h = Harness::new();
    h.connect_with(1, v5_connect("d", false, 3600));
    h.subscribe(1, "e/#", Qos::AtLeastOnce);
    h.lost(1);
    h.connect(2, "pub", true);
    let mut p = publish("e/short", "short", Qos::AtLeastOnce, false);
    p.properties.message_expiry_interval = Some(5);
    h.packet(2, Packet::Publish(p));
    let mut p = publish("e/long", "long", Qos::AtLeastOnce, false);
    p.properties.message_expiry_interval = Some(100);
    h.packet(2, Packet::Publish(p));
    h.advance(10);
    let a = h.connect_with(3, v5_connect("d", false, 3600));
    let got = outgoing(&a);
    assert_eq!(got.len(), 1, "the expired message is dropped");
    assert_eq!(got[0].message.topic.as_str(), "e/long");
    assert_eq!(got[0].message_expiry, Some(90));
}

#[test]
fn outbound_topic_aliases_are_created_first_come_first_served() {
    let mut settings_listener = anonymous();
    settings_listener.max_topic_alias_broker = 2;
    let mut h = Harness::with(BrokerSettings::default(), settings_listener);
    let mut c = v5_connect("sub", true, 0);
    c.properties.topic_alias_maximum = Some(5);
    h.connect_with(1, c);
    h.subscribe(1, "t/#", Qos::AtMostOnce);
    h.connect(2, "pub", true);
    let mut seen = Vec::new();
    for t in ["t/a", "t/a", "t/b", "t/c", "t/b"] {
        let a = h.publish(2, t, "x", Qos::AtMostOnce, false);
        let p = &outgoing(&a)[0];
        seen.push((
            p.message.topic.to_string(),
            p.topic_alias,
            p.topic_alias_only,
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("t/a".into(), Some(1), false),
            ("t/a".into(), Some(1), true),
            ("t/b".into(), Some(2), false),
            ("t/c".into(), None, false),
            ("t/b".into(), Some(2), true),
        ]
    );
    // A client that announced no Topic Alias Maximum gets none.
    h.connect_with(3, v5_connect("plain", true, 0));
    h.subscribe(3, "u", Qos::AtMostOnce);
    let a = h.publish(2, "u", "x", Qos::AtMostOnce, false);
    assert_eq!(outgoing(&a)[0].topic_alias, None);
}

#[test]
fn will_delay_fires_later_and_is_cancelled_by_a_resume() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "w/#", Qos::AtMostOnce);
    let mut c = v5_connect("dev", false, 3600);
    let props = Properties {
        will_delay_interval: Some(5),
        ..Properties::default()
    };
    c.will = Some(Will {
        topic: TopicName::new("w/dev").unwrap(),
        payload: b"gone".to_vec(),
        qos: Qos::AtMostOnce,
        retain: false,
        properties: props,
    });
    h.connect_with(1, c.clone());
    assert!(publishes(&h.lost(1)).is_empty(), "delayed");
    assert!(publishes(&h.advance(3)).is_empty());
    // Resumed within the delay: cancelled.
    h.connect_with(2, c.clone());
    assert!(publishes(&h.advance(10)).is_empty());
    // Dropped again and left away: sent after 5 s.
    h.lost(2);
    assert!(publishes(&h.advance(4)).is_empty());
    assert_eq!(
        publishes(&h.advance(2)),
        vec![(9, "w/dev".into(), "gone".into(), 0, false, None)]
    );
}

#[test]
fn disconnect_with_will_message_publishes_it() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "w/#", Qos::AtMostOnce);
    let mut c = v5_connect("dev", true, 0);
    c.will = Some(Will {
        topic: TopicName::new("w/dev").unwrap(),
        payload: b"bye".to_vec(),
        qos: Qos::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    h.connect_with(1, c);
    let a = h.packet(
        1,
        Packet::Disconnect(Disconnect {
            reason: 0x04,
            properties: Properties::default(),
        }),
    );
    assert_eq!(
        publishes(&a),
        vec![(9, "w/dev".into(), "bye".into(), 0, false, None)]
    );
}

#[test]
fn receive_maximum_of_the_client_bounds_what_is_in_flight() {
    let mut h = Harness::new();
    let mut c = v5_connect("slow", true, 0);
    c.properties.receive_maximum = Some(2);
    h.connect_with(1, c);
    h.subscribe(1, "r", Qos::AtLeastOnce);
    h.connect(2, "pub", true);
    let mut sent = 0;
    for _ in 0..5 {
        sent += outgoing(&h.publish(2, "r", "x", Qos::AtLeastOnce, false)).len();
    }
    assert_eq!(sent, 2);
    assert_eq!(h.broker.inflight_ids("slow").len(), 2);
}

/// Random packet sequences from several connections never panic the core and
/// never leave a connection that the core forgot while it still sends to it.
#[test]
fn random_traffic_never_panics() {
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let topics = ["a", "a/b", "a/b/c", "$SYS/x", "b", "c/d"];
    let filters = ["#", "a/#", "a/+", "+/b", "$share/g/a/#", "c/d", "$SYS/#"];
    for round in 0..40 {
        let settings = BrokerSettings {
            max_inflight_messages: (round % 4) as u16,
            max_queued_messages: (round % 3) as u32 * 5,
            ..BrokerSettings::default()
        };
        let mut h = Harness::with(settings, anonymous());
        for _ in 0..400 {
            let conn = next(6) as usize;
            let pid = pid(next(5) as u16 + 1);
            let qos = Qos::from_u8(next(3) as u8).unwrap();
            let version = match next(3) {
                0 => ProtocolVersion::V31,
                1 => ProtocolVersion::V311,
                _ => ProtocolVersion::V5,
            };
            match next(12) {
                0 => {
                    let mut c = connect(&format!("c{}", next(4)), version, next(2) == 0);
                    c.properties.session_expiry_interval = Some(next(3) as u32);
                    c.properties.receive_maximum = Some(next(3) as u16 + 1);
                    c.properties.topic_alias_maximum = Some(next(3) as u16);
                    c.keep_alive = next(3) as u16;
                    if next(2) == 0 {
                        c.will = Some(Will {
                            topic: TopicName::new(topics[next(6) as usize]).unwrap(),
                            payload: b"w".to_vec(),
                            qos,
                            retain: next(2) == 0,
                            properties: Properties {
                                will_delay_interval: Some(next(3) as u32),
                                message_expiry_interval: Some(next(3) as u32),
                                ..Properties::default()
                            },
                        });
                    }
                    h.connect_with(conn, c);
                }
                1..=3 => {
                    let mut p = publish(topics[next(6) as usize], "p", qos, next(4) == 0);
                    p.packet_id = (qos > Qos::AtMostOnce).then_some(pid);
                    p.properties.message_expiry_interval = (next(2) == 0).then(|| next(3) as u32);
                    if next(5) == 0 {
                        p.properties.topic_alias = Some(next(4) as u16);
                    }
                    h.packet(conn, Packet::Publish(p));
                }
                4 => {
                    let f = TopicFilter::new(filters[next(7) as usize]).unwrap();
                    h.packet(
                        conn,
                        Packet::Subscribe(Subscribe {
                            packet_id: pid,
                            filters: vec![(f, SubscriptionOptions::with_qos(qos))],
                            properties: Properties::default(),
                        }),
                    );
                }
                5 => {
                    let f = TopicFilter::new(filters[next(7) as usize]).unwrap();
                    h.packet(
                        conn,
                        Packet::Unsubscribe(Unsubscribe {
                            packet_id: pid,
                            filters: vec![f],
                            properties: Properties::default(),
                        }),
                    );
                }
                6 => {
                    h.packet(conn, Packet::Puback(Ack::new(pid)));
                }
                7 => {
                    h.packet(conn, Packet::Pubrec(Ack::new(pid)));
                    h.packet(conn, Packet::Pubcomp(Ack::new(pid)));
                }
                8 => {
                    h.packet(conn, Packet::Pubrel(Ack::new(pid)));
                }
                9 => {
                    h.packet(
                        conn,
                        Packet::Disconnect(Disconnect {
                            reason: if next(2) == 0 { 0 } else { 0x04 },
                            properties: Properties::default(),
                        }),
                    );
                }
                10 => {
                    h.lost(conn);
                }
                _ => {
                    h.advance(next(4));
                }
            }
        }
        let mut out = Vec::new();
        h.broker.shutdown(h.now, &mut out);
        let db = h.broker.snapshot(h.now, 1_800_000_000);
        let bytes = crate::persist::write(&db);
        let (read, _) = crate::persist::read(&bytes).expect("what we write reads back");
        let mut fresh = Broker::new(BrokerSettings::default(), vec![anonymous()], 7);
        fresh.restore(read, h.now, 1_800_000_000);
    }
}

#[test]
fn max_inflight_bytes_bounds_the_window_by_payload_size() {
    let settings = BrokerSettings {
        max_inflight_bytes: 10,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "sub", true);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.connect(2, "pub", true);
    let mut sent = Vec::new();
    for p in ["aaaa", "bbbb", "cccc", "dddddddddddddddd"] {
        sent.extend(publishes(&h.publish(2, "t", p, Qos::AtLeastOnce, false)));
    }
    // 4 + 4 bytes fit in 10; the third waits.
    assert_eq!(
        sent.iter().map(|p| p.2.as_str()).collect::<Vec<_>>(),
        vec!["aaaa", "bbbb"]
    );
    let a = h.packet(1, Packet::Puback(Ack::new(pid(1))));
    assert_eq!(
        publishes(&a)
            .iter()
            .map(|p| p.2.clone())
            .collect::<Vec<_>>(),
        vec!["cccc"]
    );
    // A message larger than the limit still goes once the window is empty.
    h.packet(1, Packet::Puback(Ack::new(pid(2))));
    let a = h.packet(1, Packet::Puback(Ack::new(pid(3))));
    assert_eq!(
        publishes(&a)
            .iter()
            .map(|p| p.2.clone())
            .collect::<Vec<_>>(),
        vec!["dddddddddddddddd"]
    );
}

fn bridge_local<'a>(
    subs: &'a [(TopicFilter, Qos)],
    state: Option<&str>,
) -> super::bridge::BridgeLocal<'a> {
    super::bridge::BridgeLocal {
        client_id: "local.c1",
        clean_start: false,
        version: ProtocolVersion::V311,
        subscriptions: subs,
        remote_state: state.map(|t| crate::codec::TopicName::new(t).unwrap()),
        local_state: state.map(|t| crate::codec::TopicName::new(t).unwrap()),
        lazy: false,
        receive_maximum: None,
        maximum_packet_size: None,
        remote_requests: Vec::new(),
    }
}

#[test]
fn bridge_local_side_is_trusted_and_never_echoed() {
    let mut h = Harness::new();
    let subs = [(TopicFilter::new("out/#").unwrap(), Qos::AtLeastOnce)];
    let state = "$SYS/broker/connection/c1/state";
    let peer = "127.0.0.1:1883".parse().unwrap();
    let mut out = Vec::new();
    h.broker
        .bridge_connected(9, peer, bridge_local(&subs, Some(state)), h.now, &mut out);
    // No CONNACK or SUBACK for the synthetic packets; the remote gets the
    // `1` state first, retained.
    assert_eq!(connack_code(&out), None);
    assert!(!out.iter().any(
        |a| matches!(a, Action::Send(_, Outbound::Packet(p)) if matches!(**p, Packet::Suback(_)))
    ));
    assert_eq!(
        publishes(&out),
        vec![(9, state.to_string(), "1".to_string(), 1, true, Some(1))]
    );
    // It may publish `$SYS` (what a remote forwards), and does not get its
    // own messages back; local subscribers do.
    h.connect_with(2, connect("watcher", ProtocolVersion::V311, true));
    let _ = h.packet(
        2,
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            filters: vec![(
                TopicFilter::new("#").unwrap(),
                SubscriptionOptions::with_qos(Qos::AtMostOnce),
            )],
            properties: Properties::default(),
        }),
    );
    let a = h.packet(
        9,
        Packet::Publish(publish("out/x", "from-remote", Qos::AtLeastOnce, false)),
    );
    assert_eq!(
        publishes(&a),
        vec![(
            2,
            "out/x".to_string(),
            "from-remote".to_string(),
            0,
            false,
            None
        )]
    );
    h.subscribe(2, "$SYS/remote/#", Qos::AtMostOnce);
    let a = h.packet(
        9,
        Packet::Publish(publish("$SYS/remote/up", "1", Qos::AtMostOnce, false)),
    );
    assert_eq!(
        publishes(&a),
        vec![(
            2,
            "$SYS/remote/up".to_string(),
            "1".to_string(),
            0,
            false,
            None
        )]
    );
    // A local publish goes to the bridge with its retain flag kept.
    h.connect_with(3, connect("pub", ProtocolVersion::V311, true));
    let a = h.publish(3, "out/y", "to-remote", Qos::AtLeastOnce, true);
    assert!(publishes(&a).contains(&(
        9,
        "out/y".to_string(),
        "to-remote".to_string(),
        1,
        true,
        Some(2)
    )));
    // Losing the remote publishes the local `0` (the local side's will).
    h.subscribe(2, "$SYS/broker/connection/#", Qos::AtMostOnce);
    let a = h.lost(9);
    assert_eq!(
        publishes(&a),
        vec![(2, state.to_string(), "0".to_string(), 0, false, None)]
    );
}

#[test]
fn bridge_prepare_queues_for_a_remote_never_reached() {
    let mut h = Harness::new();
    let subs = [(TopicFilter::new("out/#").unwrap(), Qos::AtLeastOnce)];
    h.broker.bridge_prepare(&bridge_local(&subs, None), h.now);
    h.connect(3, "pub", true);
    assert!(publishes(&h.publish(3, "out/q", "queued", Qos::AtLeastOnce, false)).is_empty());
    let peer = "127.0.0.1:1883".parse().unwrap();
    let mut out = Vec::new();
    h.broker
        .bridge_connected(9, peer, bridge_local(&subs, None), h.now, &mut out);
    assert_eq!(
        publishes(&out),
        vec![(
            9,
            "out/q".to_string(),
            "queued".to_string(),
            1,
            false,
            Some(1)
        )]
    );
}

/// What the core sends connection `conn`, as (packet kind, packet id).
fn sent_to(actions: &[Action], conn: ConnId) -> Vec<(&'static str, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(c, o) if *c == conn => Some(o),
            _ => None,
        })
        .filter_map(|o| match o {
            Outbound::Publish(p) => Some(("publish", p.packet_id.map_or(0, |i| i.get()))),
            Outbound::Packet(p) => match &**p {
                Packet::Subscribe(s) => Some(("subscribe", s.packet_id.get())),
                Packet::Unsubscribe(u) => Some(("unsubscribe", u.packet_id.get())),
                _ => None,
            },
            Outbound::Ack(..) => None,
        })
        .collect()
}

fn bridge_requests() -> Vec<Packet> {
    let options = SubscriptionOptions::with_qos(Qos::AtLeastOnce);
    vec![
        Packet::Subscribe(Subscribe {
            packet_id: PacketId::MIN,
            filters: vec![(TopicFilter::new("in/#").unwrap(), options)],
            properties: Properties::default(),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: PacketId::MIN,
            filters: vec![TopicFilter::new("out/#").unwrap()],
            properties: Properties::default(),
        }),
    ]
}

#[test]
fn bridge_requests_are_numbered_after_the_state_and_sent_before_resends() {
    let mut h = Harness::new();
    let subs = [(TopicFilter::new("out/#").unwrap(), Qos::AtLeastOnce)];
    let state = "$SYS/broker/connection/c1/state";
    let peer = "127.0.0.1:1883".parse().unwrap();
    let mut local = bridge_local(&subs, Some(state));
    local.remote_requests = bridge_requests();
    let mut out = Vec::new();
    let sent = h.broker.bridge_connected(9, peer, local, h.now, &mut out);
    // mosquitto's one counter per bridge: state 1, SUBSCRIBE 2, UNSUBSCRIBE 3.
    assert_eq!(
        sent_to(&out, 9),
        vec![("publish", 1), ("subscribe", 2), ("unsubscribe", 3)]
    );
    assert!(matches!(&sent[1], Packet::Unsubscribe(u) if u.packet_id.get() == 3));
    // Messages left unacknowledged (the state, then this one) are resent
    // after the next requests, whose ids continue the count.
    h.connect(3, "pub", true);
    let a = h.publish(3, "out/y", "to-remote", Qos::AtLeastOnce, false);
    assert_eq!(sent_to(&a, 9), vec![("publish", 4)]);
    h.lost(9);
    let mut local = bridge_local(&subs, Some(state));
    local.remote_requests = bridge_requests();
    let mut out = Vec::new();
    h.broker.bridge_connected(10, peer, local, h.now, &mut out);
    assert_eq!(
        sent_to(&out, 10),
        vec![
            ("publish", 5),
            ("subscribe", 6),
            ("unsubscribe", 7),
            ("publish", 1),
            ("publish", 4)
        ]
    );
}

#[test]
fn a_no_local_subscription_of_the_publisher_is_a_matching_subscriber() {
    let mut h = Harness::new();
    h.connect_with(1, connect("self", ProtocolVersion::V5, true));
    let mut options = SubscriptionOptions::with_qos(Qos::AtLeastOnce);
    options.no_local = true;
    let _ = h.packet(
        1,
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            filters: vec![(TopicFilter::new("t").unwrap(), options)],
            properties: Properties::default(),
        }),
    );
    // mosquitto answers 0, not 0x10 "no matching subscribers".
    let a = h.publish(1, "t", "x", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0)]);
    assert!(publishes(&a).is_empty());
}

#[test]
fn unknown_pubrec_and_pubrel_get_plain_answers_as_from_mosquitto() {
    let mut h = Harness::new();
    h.connect_with(1, connect("v5", ProtocolVersion::V5, true));
    let a = h.packet(1, Packet::Pubrec(Ack::new(pid(2001))));
    assert_eq!(acks(&a), vec![(AckKind::Pubrel, 2001, 0)]);
    let a = h.packet(1, Packet::Pubrel(Ack::new(pid(2002))));
    assert_eq!(acks(&a), vec![(AckKind::Pubcomp, 2002, 0)]);
}

#[test]
fn a_v3_mosquitto_bridge_is_not_sent_its_own_messages() {
    let mut h = Harness::new();
    let mut c = connect("remote-bridge", ProtocolVersion::V311, false);
    c.bridge = true;
    h.connect_with(1, c);
    h.subscribe(1, "t/#", Qos::AtLeastOnce);
    let a = h.publish(1, "t/x", "mine", Qos::AtLeastOnce, true);
    assert!(publishes(&a).is_empty());
    // Others' messages arrive with their retain flag (retain as published).
    h.connect(2, "other", true);
    let a = h.publish(2, "t/y", "theirs", Qos::AtLeastOnce, true);
    assert_eq!(
        publishes(&a),
        vec![(1, "t/y".to_string(), "theirs".to_string(), 1, true, Some(1))]
    );
}

#[test]
fn the_bridge_listener_is_not_a_configured_one() {
    // SIGHUP compares the configured listeners with the core's.
    let h = Harness::new();
    assert!(h.broker.listener(0).is_some());
    assert!(h.broker.listener(1).is_none());
    assert_eq!(h.broker.bridge_listener(), 1);
}

/// An ACL whose write permission a test can take away.
struct WriteSwitch(Rc<std::cell::Cell<bool>>);

impl AclCheck for WriteSwitch {
    fn check(&self, _: &str, _: Option<&str>, _: &str, access: Access) -> bool {
        access == Access::Read || self.0.get()
    }
}

#[test]
fn check_retain_source_follows_the_publishers_write_access() {
    let may_write = Rc::new(std::cell::Cell::new(true));
    let mut listener = anonymous();
    listener.security.acl = Some(Rc::new(WriteSwitch(may_write.clone())));
    let settings = BrokerSettings {
        check_retain_source: true,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings.clone(), listener.clone());
    h.connect(1, "publisher", true);
    h.publish(1, "r/t", "kept", Qos::AtMostOnce, true);
    h.connect(2, "early", true);
    let a = h.subscribe(2, "r/#", Qos::AtMostOnce);
    assert_eq!(
        publishes(&a).len(),
        1,
        "delivered while the publisher may write"
    );
    may_write.set(false);
    h.connect(3, "late", true);
    let a = h.subscribe(3, "r/#", Qos::AtMostOnce);
    assert!(publishes(&a).is_empty(), "the publisher lost write access");

    // The publisher survives a save and restore, as in mosquitto.db.
    let db = h.broker.snapshot(h.now, 1_800_000_000);
    assert_eq!(db.messages[0].source_id.as_deref(), Some("publisher"));
    let mut h2 = Harness::with(settings, listener);
    h2.broker.restore(db, h2.now, 1_800_000_000);
    h2.connect(4, "after", true);
    assert!(publishes(&h2.subscribe(4, "r/#", Qos::AtMostOnce)).is_empty());
    may_write.set(true);
    h2.connect(5, "again", true);
    assert_eq!(publishes(&h2.subscribe(5, "r/#", Qos::AtMostOnce)).len(), 1);
}

/// Subscribing and unsubscribing cost the same per filter however many a
/// client already has (they were a linear search each: 100,000 filters took
/// 28 s of CPU). Counted in this thread's CPU time: 10x the filters may cost
/// at most 25x the time (linear is 10x, the old quadratic cost was ~100x).
#[test]
fn many_subscriptions_from_one_client_cost_linear_time() {
    fn cost(n: usize) -> Duration {
        let mut h = Harness::new();
        h.connect(1, "many", true);
        let filters: Vec<TopicFilter> = (0..n)
            .map(|i| TopicFilter::new(format!("dev/{i}/+/state")).unwrap())
            .collect();
        let start = crate::sys::time::thread_cpu_time();
        for (i, chunk) in filters.chunks(100).enumerate() {
            h.packet(
                1,
                Packet::Subscribe(Subscribe {
                    packet_id: pid(i as u16 % 60000 + 1),
                    filters: chunk
                        .iter()
                        .map(|f| (f.clone(), SubscriptionOptions::with_qos(Qos::AtMostOnce)))
                        .collect(),
                    properties: Properties::default(),
                }),
            );
        }
        for (i, chunk) in filters.chunks(100).enumerate() {
            h.packet(
                1,
                Packet::Unsubscribe(Unsubscribe {
                    packet_id: pid(i as u16 % 60000 + 1),
                    filters: chunk.to_vec(),
                    properties: Properties::default(),
                }),
            );
        }
        crate::sys::time::thread_cpu_time() - start
    }
    cost(2_000); // warm up the allocator
    let small = cost(4_000);
    let large = cost(40_000);
    assert!(
        large < small * 25,
        "40,000 subscriptions cost {large:?}, 4,000 cost {small:?}"
    );
}

/// The payloads of the PUBLISHes in `actions`, in order.
fn payloads(actions: &[Action]) -> Vec<String> {
    publishes(actions).into_iter().map(|p| p.2).collect()
}

impl Harness {
    /// The network layer's report that `packets` packets (`bytes` bytes)
    /// still wait for `conn`'s socket.
    fn output_pending(&mut self, conn: ConnId, packets: u32, bytes: usize) -> Vec<Action> {
        self.out.clear();
        self.broker
            .output_pending(conn, packets, bytes, self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }
}

/// mosquitto 2.0.11 refuses a QoS 0 message to a connected client while
/// `max_queued_messages` packets wait for its socket (`out_packet_count`),
/// and counts the drop. culex counts what it sent since the network layer's
/// last report, which resets the count to what the socket has not taken.
#[test]
fn qos0_to_a_connected_client_stops_at_max_queued_messages_unwritten_packets() {
    let settings = BrokerSettings {
        max_queued_messages: 3,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "slow", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    // CONNACK and SUBACK have gone out.
    h.output_pending(1, 0, 0);
    h.connect(2, "pub", true);
    let mut got = Vec::new();
    for i in 0..5 {
        got.extend(payloads(&h.publish(
            2,
            "t",
            &i.to_string(),
            Qos::AtMostOnce,
            false,
        )));
    }
    assert_eq!(got, vec!["0", "1", "2"]);
    assert_eq!(h.broker.stats.publish_dropped, 2);
    // The third one filled the output: the loop is asked to write now.
    assert!(h.broker.has_output_pressure());
    assert_eq!(h.broker.take_output_pressure(), Some(1));
    assert_eq!(h.broker.take_output_pressure(), None);
    // The socket took two of the three: one more may go.
    h.output_pending(1, 1, 70);
    let mut got = Vec::new();
    for i in 5..8 {
        got.extend(payloads(&h.publish(
            2,
            "t",
            &i.to_string(),
            Qos::AtMostOnce,
            false,
        )));
    }
    assert_eq!(got, vec!["5", "6"]);
    assert_eq!(h.broker.stats.publish_dropped, 3);
    // QoS 1 is never dropped for it: the window takes it.
    h.subscribe(1, "q", Qos::AtLeastOnce);
    assert_eq!(
        payloads(&h.publish(2, "q", "one", Qos::AtLeastOnce, false)),
        vec!["one"]
    );
    // It was logged once for the connection, not per message.
    h.output_pending(1, 0, 0);
    assert_eq!(
        payloads(&h.publish(2, "t", "8", Qos::AtMostOnce, false)),
        vec!["8"]
    );
}

#[test]
fn qos0_limits_follow_mosquittos_exceptions() {
    // max_queued_messages 0: unlimited (the network layer's cap remains).
    let settings = BrokerSettings {
        max_queued_messages: 0,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "s", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    h.connect(2, "p", true);
    for i in 0..2000 {
        h.publish(2, "t", &i.to_string(), Qos::AtMostOnce, false);
    }
    assert_eq!(h.broker.stats.publish_dropped, 0);
    assert!(!h.broker.has_output_pressure());

    // No window at all (max_inflight_messages 0, no Receive Maximum,
    // max_inflight_bytes 0): mosquitto's db__ready_for_flight lets every
    // QoS 0 message through.
    let settings = BrokerSettings {
        max_queued_messages: 2,
        max_inflight_messages: 0,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "s", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    h.connect(2, "p", true);
    for i in 0..10 {
        h.publish(2, "t", &i.to_string(), Qos::AtMostOnce, false);
    }
    assert_eq!(h.broker.stats.publish_dropped, 0);

    // max_queued_bytes counts the session's QoS 1/2 payloads (in flight and
    // queued) beyond max_inflight_bytes, never the QoS 0 output itself.
    let settings = BrokerSettings {
        max_queued_messages: 100,
        max_queued_bytes: 10,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "s", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    h.subscribe(1, "q", Qos::AtLeastOnce);
    h.connect(2, "p", true);
    for i in 0..50 {
        h.publish(2, "t", &format!("{i:>20}"), Qos::AtMostOnce, false);
        h.output_pending(1, 0, 0);
    }
    assert_eq!(h.broker.stats.publish_dropped, 0);
    // 12 bytes of QoS 1 in flight, unacknowledged: QoS 0 is refused now.
    h.publish(2, "q", "twelve bytes", Qos::AtLeastOnce, false);
    assert!(h.publish(2, "t", "x", Qos::AtMostOnce, false).is_empty());
    assert_eq!(h.broker.stats.publish_dropped, 1);
    h.packet(1, Packet::Puback(Ack::new(pid(1))));
    assert_eq!(
        payloads(&h.publish(2, "t", "y", Qos::AtMostOnce, false)),
        vec!["y"]
    );
}

/// QoS 1/2 queue limits count as mosquitto 2.0.11's db__ready_for_queue:
/// in flight plus queued, less the window while connected; everything
/// (in flight included) while offline.
#[test]
fn queued_messages_count_in_flight_ones_as_mosquitto_does() {
    let settings = BrokerSettings {
        max_inflight_messages: 2,
        max_queued_messages: 3,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "d", false);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.connect(2, "p", true);
    for i in 0..8 {
        h.publish(2, "t", &i.to_string(), Qos::AtLeastOnce, false);
    }
    // 2 in flight + 3 queued; 3 dropped.
    assert_eq!(h.broker.stats.publish_dropped, 3);
    let mut got = Vec::new();
    for id in 1..=5 {
        got.extend(payloads(&h.packet(1, Packet::Puback(Ack::new(pid(id))))));
    }
    assert_eq!(got, vec!["2", "3", "4"]);
    // Offline with 1 in flight: 2 more fit (1 + 2 = 3).
    h.publish(2, "t", "a", Qos::AtLeastOnce, false);
    h.lost(1);
    for m in ["b", "c", "d"] {
        h.publish(2, "t", m, Qos::AtLeastOnce, false);
    }
    assert_eq!(h.broker.stats.publish_dropped, 4);
    // Back: "a" again, "b" fills the window of 2, "c" follows an ack.
    let a = h.connect(3, "d", false);
    assert_eq!(payloads(&a), vec!["a", "b"]);
    let a = h.packet(3, Packet::Puback(Ack::new(pid(6))));
    assert_eq!(payloads(&a), vec!["c"]);

    // max_queued_bytes: taken while the bytes in flight and queued (less
    // max_inflight_bytes) are under the limit, so the last may cross it.
    let settings = BrokerSettings {
        max_inflight_messages: 1,
        max_queued_messages: 0,
        max_queued_bytes: 5,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(1, "s", true);
    h.subscribe(1, "t", Qos::AtLeastOnce);
    h.connect(2, "p", true);
    for m in ["1111", "22", "333", "4"] {
        h.publish(2, "t", m, Qos::AtLeastOnce, false);
    }
    // "1111" in flight (4 bytes); "22" queued (6 > 5); the rest dropped.
    assert_eq!(h.broker.stats.publish_dropped, 2);
    let a = h.packet(1, Packet::Puback(Ack::new(pid(1))));
    assert_eq!(payloads(&a), vec!["22"]);
}

/// Retained QoS 0 messages of a SUBSCRIBE go out as the socket drains:
/// never more than max_queued_messages packets or about 1 MiB waiting, and
/// none dropped, however many there are.
#[test]
fn retained_catch_up_follows_the_socket_and_loses_nothing() {
    let settings = BrokerSettings {
        max_queued_messages: 10,
        ..BrokerSettings::default()
    };
    let mut h = Harness::with(settings, anonymous());
    h.connect(2, "p", true);
    for i in 0..45 {
        h.publish(
            2,
            &format!("rc/{i:02}"),
            &format!("v{i}"),
            Qos::AtMostOnce,
            true,
        );
    }
    h.connect(1, "s", true);
    h.output_pending(1, 0, 0);
    let mut got = payloads(&h.subscribe(1, "rc/#", Qos::AtMostOnce));
    // 10 PUBLISHes (the SUBACK counts from the network layer's next report).
    assert_eq!(got.len(), 10);
    // Two topics not sent yet (the retained store's walk order is not the
    // publish order): one is replaced, the other cleared before its turn.
    // The new value goes out at once (live), the old one and the cleared
    // one never.
    let mut waiting = (0..45).filter(|i| !got.contains(&format!("v{i}")));
    let (replaced, cleared) = (waiting.next().unwrap(), waiting.next().unwrap());
    let live = payloads(&h.publish(
        2,
        &format!("rc/{replaced:02}"),
        "new",
        Qos::AtMostOnce,
        true,
    ));
    h.publish(2, &format!("rc/{cleared:02}"), "", Qos::AtMostOnce, true);
    // Not in the catch-up's room: the output is full, the live copy waits
    // for the socket as every QoS 0 message does.
    assert!(live.is_empty());
    let mut rounds = 0;
    loop {
        let more = payloads(&h.output_pending(1, 0, 0));
        if more.is_empty() {
            break;
        }
        assert!(more.len() <= 10);
        got.extend(more);
        rounds += 1;
        assert!(rounds < 20);
    }
    let mut want: Vec<String> = (0..45)
        .filter(|i| *i != replaced && *i != cleared)
        .map(|i| format!("v{i}"))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        h.broker.stats.publish_dropped, 2,
        "only the live replacement and the clearing"
    );
    // Live messages flow as usual once the catch-up is done.
    assert_eq!(
        payloads(&h.publish(
            2,
            &format!("rc/{replaced:02}"),
            "newer",
            Qos::AtMostOnce,
            true
        )),
        vec!["newer"]
    );
}

#[test]
fn retained_catch_up_is_paced_by_bytes_and_ends_with_the_connection() {
    let mut h = Harness::new();
    h.connect(2, "p", true);
    let big = "x".repeat(300 << 10);
    for i in 0..10 {
        h.publish(2, &format!("big/{i}"), &big, Qos::AtLeastOnce, true);
    }
    h.connect(1, "s", true);
    h.output_pending(1, 0, 0);
    // 0, 300, 600 and 900 KiB waiting are under 1 MiB: four go at once.
    let first = publishes(&h.subscribe(1, "big/#", Qos::AtMostOnce));
    assert_eq!(first.len(), 4);
    // The socket took half of it: 600 and 900 KiB waiting, two more.
    assert_eq!(publishes(&h.output_pending(1, 2, 600 << 10)).len(), 2);
    assert!(publishes(&h.output_pending(1, 6, 1 << 20)).is_empty());
    // A QoS 1 subscriber of the same messages gets them through its window
    // and queue at once (mosquitto's limits), not paced.
    h.connect(3, "q", true);
    let q = publishes(&h.subscribe(3, "big/#", Qos::AtLeastOnce));
    assert_eq!(q.len(), 10);
    // The connection goes: the rest of its catch-up goes with it.
    h.lost(1);
    assert!(h.output_pending(1, 0, 0).is_empty());
}

/// A harness whose `memory_limit` leaves `room` bytes above what this
/// thread's messages hold now.
fn with_memory_room(room: u64) -> Harness {
    Harness::with(
        BrokerSettings {
            memory_limit: crate::memory::message_bytes() + room,
            ..BrokerSettings::default()
        },
        anonymous(),
    )
}

fn disconnect_reason(actions: &[Action]) -> Option<u8> {
    actions.iter().find_map(|a| match a {
        Action::Send(_, Outbound::Packet(p)) => match &**p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        },
        _ => None,
    })
}

#[test]
fn memory_limit_refuses_the_message_and_disconnects_only_its_publisher() {
    let mut h = with_memory_room(8_000);
    h.connect(1, "sub", true);
    h.subscribe(1, "r/#", Qos::AtMostOnce);
    let mut c = connect("pub", ProtocolVersion::V5, true);
    c.will = Some(Will {
        topic: TopicName::new("r/will").unwrap(),
        payload: b"gone".to_vec(),
        qos: Qos::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    h.connect_with(2, c);
    let big = "x".repeat(3_000);
    let a = h.publish(2, "r/1", &big, Qos::AtLeastOnce, true);
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0)]);
    assert_eq!(publishes(&a).len(), 1);
    // The second would take culex over the limit: not taken, not
    // acknowledged, not delivered; the 5.0 publisher is told 0x80 and
    // closed, as mosquitto does, and its will goes out.
    let a = h.publish(2, "r/2", &big, Qos::AtLeastOnce, true);
    assert!(acks(&a).is_empty());
    assert_eq!(disconnect_reason(&a), Some(0x80));
    assert_eq!(closes(&a), vec![2]);
    assert_eq!(
        publishes(&a),
        vec![(1, "r/will".into(), "gone".into(), 0, false, None)]
    );
    assert!(!h.broker.has_connection(2));
    // The subscriber stays, and the stored message is kept.
    assert!(h.broker.has_connection(1));
    assert!(h.broker.retained().get("r/1").is_some());
    assert!(h.broker.retained().get("r/2").is_none());
    // A message that fits is still taken from another client.
    h.connect(3, "small", true);
    let a = h.publish(3, "r/3", "hi", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a), vec![(AckKind::Puback, 7, 0)]);
}

#[test]
fn memory_limit_counts_the_network_buffers_and_packets_arriving() {
    let mut h = with_memory_room(100_000);
    h.connect(1, "pub", true);
    h.connect(2, "other", true);
    // A partial packet that fits may be buffered; one that does not closes
    // its connection from the fixed header.
    let mut out = Vec::new();
    assert!(h.broker.packet_arriving(1, 50_000, h.now, &mut out));
    assert!(out.is_empty());
    h.broker
        .connection_lost(1, CloseReason::ClosedByPeer, h.now, &mut out);
    let mut c = connect("v5", ProtocolVersion::V5, true);
    c.keep_alive = 0;
    h.connect_with(1, c);
    assert!(!h.broker.packet_arriving(1, 200_000, h.now, &mut out));
    // Refused from the header: no DISCONNECT, even to 5.0 (mosquitto's
    // read of the packet fails).
    assert_eq!(disconnect_reason(&out), None);
    assert_eq!(closes(&out), vec![1]);
    // Output the network layer holds counts too.
    h.broker.set_io_buffered(100_000);
    let a = h.publish(2, "t", "hi", Qos::AtMostOnce, false);
    assert_eq!(closes(&a), vec![2]);
    h.broker.set_io_buffered(0);
    h.connect(3, "later", true);
    let a = h.publish(3, "t", "hi", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a).len(), 1);
    assert!(closes(&a).is_empty());
}

#[test]
fn memory_limit_0_is_no_limit() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    let mut out = Vec::new();
    assert!(h.broker.packet_arriving(1, usize::MAX / 2, h.now, &mut out));
    h.broker.set_io_buffered(u64::MAX / 4);
    let a = h.publish(1, "t", "hi", Qos::AtLeastOnce, false);
    assert_eq!(acks(&a).len(), 1);
    assert!(closes(&a).is_empty());
}

#[test]
fn a_message_queued_for_many_sessions_counts_once() {
    let mut h = Harness::new();
    for i in 0..50 {
        h.connect(i, &format!("s{i}"), false);
        h.subscribe(i, "q", Qos::AtLeastOnce);
        h.lost(i);
    }
    h.connect(100, "pub", true);
    let before = h.broker.memory_held();
    h.publish(100, "q", &"x".repeat(10_000), Qos::AtLeastOnce, false);
    let added = h.broker.memory_held() - before;
    // 50 queues share one 10 kB message.
    assert!((10_000..20_000).contains(&added), "{added}");
}

#[test]
fn outgoing_publishes_count_until_the_network_layer_reports() {
    let mut h = Harness::new();
    h.connect(1, "sub", true);
    h.subscribe(1, "t", Qos::AtMostOnce);
    h.connect(2, "pub", true);
    let before = h.broker.memory_held();
    let a = h.publish(2, "t", &"x".repeat(10_000), Qos::AtMostOnce, false);
    assert_eq!(publishes(&a).len(), 1);
    // The message (still referenced by the action) and its PUBLISH to come.
    assert!(h.broker.memory_held() >= before + 20_000);
    drop(a);
    h.broker.set_io_buffered(0);
    assert!(h.broker.memory_held() < before + 1_000);
}
