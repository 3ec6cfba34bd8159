//! The local side of culex's own bridges.
//!
//! A bridge is a client of this core: its connection id is the remote
//! socket's, its CONNECT and SUBSCRIBE are made here rather than decoded,
//! and what the core sends it the network layer forwards to the remote
//! broker. Like mosquitto's bridge contexts it skips authentication and the
//! ACL, never times out, and is never sent back what it published itself
//! (its subscriptions are no-local and retain-as-published).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::codec::{
    Connect, Message, Packet, PacketId, Properties, ProtocolVersion, Qos, RetainHandling,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};

use super::connections::{Conn, ConnId};
use super::session::{Delivery, NEVER, PendingWill, Session};
use super::subscriptions::Subscriber;
use super::{Action, Broker, ListenerId, Outbound};

/// How the local side of a bridge connects.
pub struct BridgeLocal<'a> {
    pub client_id: &'a str,
    pub clean_start: bool,
    /// The protocol spoken to the remote: what the core encodes for it.
    pub version: ProtocolVersion,
    /// The local filters of the `out` and `both` topics, with their QoS.
    pub subscriptions: &'a [(TopicFilter, Qos)],
    /// Sent to the remote first: the retained `1` of the bridge's state
    /// topic (not with `notifications_local_only`).
    pub remote_state: Option<TopicName>,
    /// The state topic published locally: `1` now and, as the local side's
    /// will, `0` whenever the remote connection is lost.
    pub local_state: Option<TopicName>,
    /// `start_type lazy`: the local side queues even QoS 0 messages while
    /// the remote is away, since they are what starts the bridge.
    pub lazy: bool,
    /// The remote's CONNACK limits (5.0): what the core may send the bridge.
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    /// The SUBSCRIBE and UNSUBSCRIBE for the remote, in configuration
    /// order; their packet ids are replaced by the local session's.
    pub remote_requests: Vec<Packet>,
}

impl Broker {
    /// The listener the local side of every bridge uses: no mount point,
    /// no limits, no ACL; `may_write` lets it publish `$SYS` too.
    pub fn bridge_listener(&self) -> ListenerId {
        self.bridge_listener
    }

    /// At start-up, before the first connection: a bridge with a durable
    /// local side (`local_cleansession false`) gets its session and local
    /// subscriptions now, as mosquitto subscribes before connecting, so
    /// messages for the remote queue even while it was never reached. A
    /// session restored from `mosquitto.db` is adopted as the bridge's.
    pub fn bridge_prepare(&mut self, local: &BridgeLocal, now: Instant) {
        self.now = now;
        if let Some(&key) = self.by_client_id.get(local.client_id) {
            if let Some(s) = self.sessions.get_mut(key) {
                s.listener = self.bridge_listener;
                s.queue_qos0 = local.lazy;
            }
            return;
        }
        // A lazy bridge queues whatever its cleansession says: the queue
        // is what starts it (a clean connect then drops it, as mosquitto's).
        if local.clean_start && !local.lazy {
            return;
        }
        let client_id: Rc<str> = local.client_id.into();
        let mut s = Session::new(client_id.clone(), self.bridge_listener, local.version);
        s.expiry_interval = NEVER;
        s.queue_qos0 = local.lazy;
        s.presence = super::session::Presence::Offline(Some(now));
        let key = self.sessions.insert(s);
        self.by_client_id.insert(client_id, key);
        for (filter, qos) in local.subscriptions {
            let options = bridge_options(*qos);
            self.subs.subscribe(
                filter,
                Subscriber {
                    session: key,
                    options,
                    id: None,
                },
            );
            if let Some(s) = self.sessions.get_mut(key) {
                s.subscriptions.insert(filter.clone(), (options, None));
            }
        }
    }

    /// The remote broker accepted the bridge's CONNECT on `conn`: open the
    /// local side, send the remote its state, its SUBSCRIBE/UNSUBSCRIBE
    /// requests, then subscribe locally to the outgoing topics (which sends
    /// their retained messages, as mosquitto's `retain__queue` does), and
    /// resume what its session had queued. Returns the requests as sent
    /// (numbered), for the log.
    pub fn bridge_connected(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        mut local: BridgeLocal,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Vec<Packet> {
        self.now = now;
        let serial = self.next_serial();
        // `is_bridge` follows from the CONNECT's bridge flag below.
        self.conns
            .insert(conn, Conn::new(self.bridge_listener, peer, now, serial));
        let mut properties = Properties::default();
        if local.version.is_v5() && !local.clean_start {
            properties.session_expiry_interval = Some(u32::MAX);
        }
        properties.receive_maximum = local.receive_maximum;
        properties.maximum_packet_size = local.maximum_packet_size;
        // What `handle_connect` resends or drains goes after the state
        // message and the requests, as in mosquitto (see below).
        let resumed = out.len();
        let connect = Connect {
            version: local.version,
            bridge: true,
            clean_start: local.clean_start,
            keep_alive: 0,
            client_id: local.client_id.to_string(),
            will: None,
            username: None,
            password: None,
            properties,
        };
        self.handle_connect(conn, connect, now, out);
        let connected = out.len();
        let Some(key) = self.conns.get(&conn).and_then(|c| c.session) else {
            return Vec::new();
        };
        if let Some(s) = self.sessions.get_mut(key) {
            s.queue_qos0 = local.lazy;
        }
        if let Some(topic) = &local.local_state {
            if let Some(s) = self.sessions.get_mut(key) {
                s.will = Some(Box::new(PendingWill {
                    message: Rc::new(state_message(topic.clone(), false)),
                    delay: 0,
                }));
            }
            self.bridge_state(topic, true, Some(conn), now, out);
        }
        if let Some(topic) = local.remote_state {
            let message = Rc::new(state_message(topic, true));
            let delivery = Delivery {
                message,
                qos: Qos::AtLeastOnce,
                retain: true,
                subscription_id: None,
                packet_id: None,
            };
            self.deliver(key, delivery, out);
        }
        let requests = std::mem::take(&mut local.remote_requests);
        let requests = self.bridge_requests(conn, key, requests, out);
        // mosquitto sends the state and the SUBSCRIBEs from its CONNACK
        // handler, then the messages in flight and queued (their ids are
        // older: it numbers messages when it queues them).
        if let Some(first) = out.get_mut(resumed..) {
            first.rotate_left(connected.saturating_sub(resumed));
        }
        if !local.subscriptions.is_empty() {
            let filters = local
                .subscriptions
                .iter()
                .map(|(f, qos)| (f.clone(), bridge_options(*qos)))
                .collect();
            let sub = Subscribe {
                packet_id: std::num::NonZeroU16::MIN,
                filters,
                properties: Properties::default(),
            };
            // Its SUBACK is not sent (`Broker::send`).
            self.handle_subscribe(conn, key, sub, out);
        }
        requests
    }

    /// Numbers the bridge's requests to the remote from its local session's
    /// packet ids and queues them. mosquitto has one counter per bridge, so
    /// its SUBSCRIBE ids start at 1 and continue across reconnects, after
    /// the state message's and before the retained messages'.
    fn bridge_requests(
        &mut self,
        conn: ConnId,
        key: super::subscriptions::SessionKey,
        mut requests: Vec<Packet>,
        out: &mut Vec<Action>,
    ) -> Vec<Packet> {
        for request in &mut requests {
            let id = self
                .sessions
                .get_mut(key)
                .and_then(Session::allocate_packet_id)
                .unwrap_or(PacketId::MIN);
            match request {
                Packet::Subscribe(s) => s.packet_id = id,
                Packet::Unsubscribe(u) => u.packet_id = id,
                _ => {}
            }
            out.push(Action::Send(
                conn,
                Outbound::Packet(Box::new(request.clone())),
            ));
        }
        requests
    }

    /// Messages waiting in a session's queue (a lazy bridge's threshold).
    pub fn queued_for(&self, client_id: &str) -> usize {
        self.by_client_id
            .get(client_id)
            .and_then(|&k| self.sessions.get(k))
            .map_or(0, |s| s.queue().len())
    }

    /// Whether a session has messages queued or in flight (a lazy bridge
    /// is only idle without them).
    pub fn has_messages_for(&self, client_id: &str) -> bool {
        self.by_client_id
            .get(client_id)
            .and_then(|&k| self.sessions.get(k))
            .is_some_and(|s| !s.queue().is_empty() || !s.inflight().is_empty())
    }

    /// Publishes a bridge's state (`1` up, `0` down) locally, retained at
    /// QoS 1, as mosquitto does on `notification_topic`. `from` is the
    /// bridge's connection when it has one: it is not sent its own state.
    pub fn bridge_state(
        &mut self,
        topic: &TopicName,
        up: bool,
        from: Option<ConnId>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        let message = Rc::new(state_message(topic.clone(), up));
        self.set_retained(&message, None);
        self.stats.changes += 1;
        let publisher = from
            .and_then(|c| self.conns.get(&c))
            .and_then(|c| c.session);
        self.route(&message, publisher, out);
    }
}

/// The local side never gets back what it published, and keeps the retain
/// flag of what it forwards.
fn bridge_options(qos: Qos) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::SendAlways,
    }
}

fn state_message(topic: TopicName, up: bool) -> Message {
    Message::new(
        topic,
        vec![if up { b'1' } else { b'0' }],
        Qos::AtLeastOnce,
        true,
        Default::default(),
        None,
    )
}
