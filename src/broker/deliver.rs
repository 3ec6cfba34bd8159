//! Routing a message to its subscribers and moving it through each session's
//! in-flight window and queue. This is the per-message hot path: it clones
//! `Rc`s and pushes into reused vectors, nothing more.

use std::time::Instant;

use crate::codec::{OutgoingPublish, ProtocolVersion, Qos, SharedMessage, publish_wire_size};

use super::connections::{Conn, ConnId, ConnTable};
use super::session::{Delivery, Inflight, OutState, Session};
use super::settings::Access;
use super::subscriptions::SessionKey;
use super::{Action, Broker, Outbound};

impl Broker {
    /// Sends `message` to every subscription that matches its topic and may
    /// read it. Returns how many subscriptions matched, delivered to or not:
    /// 5.0 answers 0x10 "no matching subscribers" only when none did, as
    /// mosquitto does (a no-local or ACL-denied match still counts).
    pub(super) fn route(
        &mut self,
        message: &SharedMessage,
        publisher: Option<SessionKey>,
        out: &mut Vec<Action>,
    ) -> usize {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        let sources = self.subs.matches(message.topic.as_str(), &mut matches);
        if sources > 1 && !self.settings.allow_duplicate_messages {
            // A 3.x client with overlapping subscriptions gets one copy, at
            // the highest QoS granted; a 5.0 client one per subscription.
            let sessions = &self.sessions;
            matches.sort_unstable_by_key(|m| (m.subscriber.session, m.shared));
            matches.dedup_by(|later, earlier| {
                let same = later.subscriber.session == earlier.subscriber.session
                    && !later.shared
                    && !earlier.shared
                    && sessions
                        .get(later.subscriber.session)
                        .is_some_and(|s| s.version != ProtocolVersion::V5);
                if same && later.subscriber.options.qos > earlier.subscriber.options.qos {
                    earlier.subscriber.options.qos = later.subscriber.options.qos;
                }
                same
            });
        }
        let matched = matches.len();
        for m in &matches {
            let sub = m.subscriber;
            if sub.options.no_local && Some(sub.session) == publisher {
                continue;
            }
            let Some(session) = self.sessions.get(sub.session) else {
                continue;
            };
            if !self.may_read(session, message.topic.as_str()) {
                continue;
            }
            let qos = if self.settings.upgrade_outgoing_qos {
                sub.options.qos
            } else {
                message.qos.min(sub.options.qos)
            };
            let delivery = Delivery {
                message: message.clone(),
                qos,
                retain: sub.options.retain_as_published && message.retain,
                subscription_id: sub.id,
                packet_id: None,
            };
            self.deliver(sub.session, delivery, out);
        }
        self.matches = matches;
        matched
    }

    /// Read access of `session` to `topic` under its listener's ACL (the
    /// bridges' internal listener has none: they read everything).
    pub(super) fn may_read(&self, session: &Session, topic: &str) -> bool {
        may_read(&self.listeners, session, topic)
    }

    fn inflight_limit(&self, s: &Session) -> usize {
        let ours = match self.settings.max_inflight_messages {
            0 => usize::MAX,
            n => usize::from(n),
        };
        ours.min(usize::from(s.receive_maximum))
    }

    /// Sends now if the client is online and its window has room, else
    /// queues (within the queue limits) or drops.
    pub(super) fn deliver(&mut self, key: SessionKey, delivery: Delivery, out: &mut Vec<Action>) {
        let limit = match self.sessions.get(key) {
            Some(s) => self.inflight_limit(s),
            None => return,
        };
        let queue_qos0 = self.settings.queue_qos0_messages;
        let max_bytes = self.settings.max_inflight_bytes;
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        if delivery.message.is_expired(self.now) {
            // An expired message is discarded [MQTT-3.3.2-5].
            return;
        }
        if !fits(s, &delivery) {
            // So is one larger than the client's Maximum Packet Size
            // [MQTT-3.1.2-25]. mosquitto numbers it before it finds out, so
            // its packet id is used up (12-prop-maximum-packet-size-publish-*).
            if delivery.qos != Qos::AtMostOnce {
                s.allocate_packet_id();
            }
            return;
        }
        match s.conn() {
            Some(conn)
                if delivery.qos == Qos::AtMostOnce
                    && !self
                        .conns
                        .get(&conn)
                        .is_some_and(|c| qos0_has_room(&self.settings, s, c)) =>
            {
                // The client is not reading fast enough: QoS 0 is dropped
                // (QoS 1/2 wait in the queue).
                self.stats.publish_dropped += 1;
                log_dropping(s);
            }
            Some(conn)
                if delivery.qos == Qos::AtMostOnce
                    || (s.inflight().len() < limit
                        && s.queue().is_empty()
                        && window_has_bytes(s, max_bytes, &delivery)) =>
            {
                let sent = launch(
                    out,
                    &mut self.conns,
                    &self.listeners,
                    s,
                    conn,
                    delivery,
                    self.now,
                );
                match sent {
                    Ok(()) => {
                        self.stats.publish_sent += 1;
                        let max_msgs = self.settings.max_queued_messages;
                        if let Some(c) = self.conns.get_mut(&conn)
                            && max_msgs > 0
                            && c.out_packets >= max_msgs
                            && !c.pressured
                        {
                            c.pressured = true;
                            self.pressure.push(conn);
                        }
                    }
                    Err(delivery) => self.enqueue(key, delivery),
                }
            }
            Some(_) => self.enqueue(key, delivery),
            None if delivery.qos > Qos::AtMostOnce || queue_qos0 || s.queue_qos0 => {
                self.enqueue(key, delivery)
            }
            None => {}
        }
    }

    /// Queues a message for later, within `max_queued_messages` and
    /// `max_queued_bytes` counted as mosquitto 2.0.11 counts them
    /// (`db__ready_for_queue`): in-flight and queued messages together,
    /// less the in-flight window (`max_inflight_messages` or the client's
    /// Receive Maximum, and `max_inflight_bytes`) while the client is
    /// connected; everything while it is away. A message is taken while the
    /// count (bytes) is below the limit, so the last one may cross it.
    fn enqueue(&mut self, key: SessionKey, mut delivery: Delivery) {
        let max_msgs = self.settings.max_queued_messages as usize;
        let max_bytes = self.settings.max_queued_bytes;
        let (window, window_bytes) = match self.sessions.get(key) {
            Some(s) if s.conn().is_some() => {
                (self.inflight_limit(s), self.settings.max_inflight_bytes)
            }
            Some(_) => (0, 0),
            None => return,
        };
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let size = delivery.message.payload.len() as u64;
        let count = s.inflight().len() + s.queue().len();
        let full = (max_msgs > 0 && count.saturating_sub(window) >= max_msgs)
            || (max_bytes > 0 && session_bytes(s).saturating_sub(window_bytes) >= max_bytes);
        if full {
            log_dropping(s);
            self.stats.publish_dropped += 1;
            return;
        }
        self.stats.changes += 1;
        if delivery.qos != Qos::AtMostOnce && delivery.packet_id.is_none() {
            delivery.packet_id = s.allocate_packet_id();
        }
        let flow = s.flow_mut();
        flow.queued_bytes += size;
        flow.queue.push_back(delivery);
    }

    /// Moves queued messages into the in-flight window while it has room.
    pub(super) fn drain_queue(&mut self, key: SessionKey, out: &mut Vec<Action>) {
        let limit = match self.sessions.get(key) {
            Some(s) => self.inflight_limit(s),
            None => return,
        };
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(conn) = s.conn() else {
            return;
        };
        let max_bytes = self.settings.max_inflight_bytes;
        while s.inflight().len() < limit {
            match s.queue().front() {
                Some(next)
                    if next.qos != Qos::AtMostOnce && !window_has_bytes(s, max_bytes, next) =>
                {
                    break;
                }
                Some(_) => {}
                None => break,
            }
            let Some(flow) = s.existing_flow_mut() else {
                break;
            };
            let Some(delivery) = flow.queue.pop_front() else {
                break;
            };
            flow.queued_bytes = flow
                .queued_bytes
                .saturating_sub(delivery.message.payload.len() as u64);
            // The ACL is checked again as a queued message leaves: a reload
            // may have revoked it meanwhile (mosquitto, 09-acl-change).
            if delivery.message.is_expired(self.now)
                || !may_read(&self.listeners, s, delivery.message.topic.as_str())
            {
                continue;
            }
            match launch(
                out,
                &mut self.conns,
                &self.listeners,
                s,
                conn,
                delivery,
                self.now,
            ) {
                Ok(()) => self.stats.publish_sent += 1,
                Err(delivery) => {
                    s.flow_mut().queue.push_front(delivery);
                    break;
                }
            }
        }
        // Every acknowledgement ends here: the session may be idle again.
        s.release_idle_flow();
    }

    /// Publishes and forgets the session's will, if it has one and may write
    /// its topic.
    pub(super) fn publish_will(&mut self, key: SessionKey, _now: Instant, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(will) = s.will.take() else {
            return;
        };
        let will = *will;
        // A will's expiry counts from when it is published.
        let mut will = will;
        if let Some(secs) = will.message.properties.message_expiry_interval {
            let mut properties = will.message.properties.to_properties();
            properties.message_expiry_interval = None;
            will.message = std::rc::Rc::new(crate::codec::Message::new(
                will.message.topic.clone(),
                will.message.payload.clone(),
                will.message.qos,
                will.message.retain,
                properties.into(),
                Some(self.now + std::time::Duration::from_secs(u64::from(secs))),
            ));
        }
        let topic = will.message.topic.as_str();
        let allowed = self.may_write(key, topic);
        if !allowed {
            return;
        }
        if will.message.retain {
            self.set_retained(&will.message, Some(key));
        }
        self.route(&will.message, Some(key), out);
    }

    /// Write access for a session: never to `$SYS` or `$share`, then the ACL.
    pub(super) fn may_write(&self, key: SessionKey, topic: &str) -> bool {
        let Some(s) = self.sessions.get(key) else {
            return false;
        };
        // culex's own bridges bypass security, as mosquitto's do.
        if s.listener == self.bridge_listener {
            return true;
        }
        // Never `$SYS` (but a bridge's state topic) or `$share`, whatever the ACL says.
        if !crate::auth::publish_allowed_always(topic) {
            return false;
        }
        match self
            .listeners
            .get(s.listener)
            .and_then(|l| l.security.acl.as_ref())
        {
            Some(acl) => acl.check(&s.client_id, s.username.as_deref(), topic, Access::Write),
            None => true,
        }
    }
}

/// "Outgoing messages are being dropped", once per connection as mosquitto
/// logs it (the flag is cleared when the client connects): a slow reader
/// that loses a message now and then must not log a line for each.
fn log_dropping(s: &mut Session) {
    if !s.dropping {
        s.dropping = true;
        crate::notice!(
            "Outgoing messages are being dropped for client {}.",
            s.client_id
        );
    }
}

/// Payload bytes in flight and queued for a session (mosquitto's
/// `msg_bytes`).
fn session_bytes(s: &Session) -> u64 {
    let in_flight: u64 = s
        .inflight()
        .iter()
        .map(|i| i.delivery.message.payload.len() as u64)
        .sum();
    in_flight + s.queued_bytes()
}

/// Whether a QoS 0 message may go out to a connected client now, decided as
/// mosquitto 2.0.11 decides it (`db__ready_for_flight` for QoS 0): not while
/// `max_queued_messages` packets already wait for the client's socket (its
/// `out_packet_count`), nor, when `max_queued_bytes` is set too, while the
/// session's in-flight and queued payloads exceed `max_inflight_bytes` by
/// `max_queued_bytes`. Without any window limit (`max_inflight_messages 0`,
/// no Receive Maximum, `max_inflight_bytes 0`), and with
/// `max_queued_messages 0` and `max_inflight_bytes 0`, nothing is refused:
/// the network layer's output cap is then all that bounds a stuck reader.
/// (2.0.11 also refused everything with `max_queued_messages 0`,
/// `max_queued_bytes 0` and `max_inflight_bytes` set; 2.0.22 fixed that,
/// and culex follows the fix.)
fn qos0_has_room(settings: &super::BrokerSettings, s: &Session, c: &Conn) -> bool {
    let max_msgs = settings.max_queued_messages;
    let max_bytes = settings.max_queued_bytes;
    let window_bytes = settings.max_inflight_bytes;
    let no_window = settings.max_inflight_messages == 0 && s.receive_maximum == u16::MAX;
    if window_bytes == 0 && (no_window || max_msgs == 0) {
        return true;
    }
    let count_ok = max_msgs == 0 || c.out_packets < max_msgs;
    count_ok && (max_bytes == 0 || session_bytes(s).saturating_sub(window_bytes) < max_bytes)
}

/// `max_inflight_bytes`: whether `d` may join the in-flight window without
/// its payloads exceeding the limit (0 = none). An empty window always takes
/// one message, or a large one could never be sent.
fn window_has_bytes(s: &Session, max_bytes: u64, d: &Delivery) -> bool {
    if max_bytes == 0 || s.inflight().is_empty() {
        return true;
    }
    let in_flight: u64 = s
        .inflight()
        .iter()
        .map(|i| i.delivery.message.payload.len() as u64)
        .sum();
    in_flight + d.message.payload.len() as u64 <= max_bytes
}

/// Whether a delivery fits the receiver's Maximum Packet Size: a 5.0
/// client's, or a bridge's `bridge_max_packet_size` whatever its version.
fn fits(s: &Session, d: &Delivery) -> bool {
    if s.max_packet_size == 0 {
        return true;
    }
    let probe = OutgoingPublish {
        message: d.message.clone(),
        qos: d.qos,
        retain: d.retain,
        dup: false,
        packet_id: (d.qos > Qos::AtMostOnce).then_some(crate::codec::PacketId::MIN),
        subscription_id: d.subscription_id,
        message_expiry: None,
        topic_alias: None,
        topic_alias_only: false,
        topic_skip: 0,
    };
    // mosquitto 2.0.11 compares the packet without its first byte (remaining
    // length and its varint) with the limit; culex does the same, so a client
    // gets exactly the messages it got from mosquitto (docs/config-choices.md).
    publish_wire_size(&probe, s.version) - 1 <= s.max_packet_size as usize
}

fn initial_state(qos: Qos) -> OutState {
    match qos {
        Qos::ExactlyOnce => OutState::AwaitPubrec,
        _ => OutState::AwaitPuback,
    }
}

/// Read access of `session` to `topic` under its listener's ACL.
fn may_read(listeners: &[super::ListenerSettings], session: &Session, topic: &str) -> bool {
    super::settings::acl_allows(
        listeners,
        session.listener,
        &session.client_id,
        session.username.as_deref(),
        topic,
        Access::Read,
    )
}

/// Sends a delivery to a connected client: QoS 0 straight out, QoS 1/2 with
/// the next packet id into the in-flight window. Gives the delivery back if
/// no packet id is free.
fn launch(
    out: &mut Vec<Action>,
    conns: &mut ConnTable,
    listeners: &[super::ListenerSettings],
    s: &mut Session,
    conn: ConnId,
    delivery: Delivery,
    now: Instant,
) -> Result<(), Delivery> {
    let packet_id = if delivery.qos == Qos::AtMostOnce {
        None
    } else {
        // The id given when it was queued, unless (after a restore) it is
        // already in flight.
        let queued = delivery
            .packet_id
            .filter(|&p| !s.inflight().iter().any(|i| i.packet_id == p));
        let Some(pid) = queued.or_else(|| s.allocate_packet_id()) else {
            return Err(delivery);
        };
        s.flow_mut().inflight.push_back(Inflight {
            packet_id: pid,
            delivery: delivery.clone(),
            state: initial_state(delivery.qos),
        });
        Some(pid)
    };
    let to = Recipient::new(&s.client_id, listeners, s.listener);
    send_publish(out, conns, to, conn, delivery, packet_id, now);
    Ok(())
}

/// Who a delivery goes to: for the debug log line, and the listener's
/// `mount_point` to strip from the topic.
struct Recipient<'a> {
    client: &'a str,
    mount_point: Option<&'a str>,
}

impl<'a> Recipient<'a> {
    fn new(
        client: &'a str,
        listeners: &'a [super::ListenerSettings],
        listener: usize,
    ) -> Recipient<'a> {
        Recipient {
            client,
            mount_point: listeners
                .get(listener)
                .and_then(|l| l.mount_point.as_deref()),
        }
    }
}

/// Builds the PUBLISH for one delivery: the remaining message expiry, and an
/// outbound topic alias where the client accepts them (2.1 behaviour: first
/// come first served, never reassigned).
#[allow(clippy::too_many_arguments)]
fn send_publish(
    out: &mut Vec<Action>,
    conns: &mut ConnTable,
    to: Recipient<'_>,
    conn: ConnId,
    d: Delivery,
    packet_id: Option<crate::codec::PacketId>,
    now: Instant,
) {
    let client = to.client;
    // Subscriptions on a mount-point listener are prefixed with it, so the
    // topics they match start with it; the client sees them without.
    let topic_skip = match to.mount_point {
        Some(mp) if d.message.topic.as_str().starts_with(mp) => {
            u16::try_from(mp.len()).unwrap_or(0)
        }
        _ => 0,
    };
    let (topic_alias, topic_alias_only) = match conns.get_mut(&conn) {
        Some(c) => {
            c.sent_publish(d.message.topic.as_str().len(), d.message.payload.len());
            c.outbound_alias(d.message.topic.as_str())
        }
        None => (None, false),
    };
    conns.unapplied_output += (d.message.topic.as_str().len() + d.message.payload.len() + 8) as u64;
    let publish = OutgoingPublish {
        message_expiry: d.message.remaining_expiry(now),
        message: d.message,
        qos: d.qos,
        retain: d.retain,
        dup: false,
        packet_id,
        subscription_id: d.subscription_id,
        topic_alias,
        topic_alias_only,
        topic_skip,
    };
    if log::log_enabled!(log::Level::Debug) {
        log::debug!("{}", super::debug_log::sending_publish(client, &publish));
    }
    out.push(Action::Send(conn, Outbound::Publish(publish)));
}
