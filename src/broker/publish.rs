//! An inbound PUBLISH: limits, topic aliases, the QoS 2 receive state,
//! permission checks, the retained store, routing, and the acknowledgement.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::codec::topic::TopicError;
use crate::codec::{Ack, Message, Packet, Properties, Publish, Qos, TopicName, reason};

use super::connections::{CloseReason, ConnId};
use super::retain_source::RetainSource;
use super::session::AwaitingRelease;
use super::subscriptions::SessionKey;
use super::{Action, Broker};

impl Broker {
    pub(super) fn handle_publish(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        p: Publish,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        // `memory_limit`: a message that would take culex over it is not
        // taken, and its publisher is disconnected (mosquitto's allocation
        // of the payload fails). Stored messages and other clients keep
        // what they have.
        if self.over_memory_limit(Message::size_of(
            p.topic.len(),
            p.payload.len(),
            &Default::default(),
        )) {
            return self.out_of_memory(conn, now, out);
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(listener) = self.listeners.get(c.listener) else {
            return;
        };
        let v5 = c.version.is_some_and(|v| v.is_v5());
        if p.qos > listener.max_qos {
            return self.disconnect_with(
                conn,
                reason::v5::QOS_NOT_SUPPORTED,
                CloseReason::ProtocolError,
                now,
                out,
            );
        }
        if p.retain && !self.settings.retain_available {
            return self.disconnect_with(
                conn,
                reason::v5::RETAIN_NOT_SUPPORTED,
                CloseReason::ProtocolError,
                now,
                out,
            );
        }

        // Topic aliases (5.0): the alias is valid from 1 to our maximum
        // [MQTT-3.3.2-9]; an empty topic needs a known alias [MQTT-3.3.2-8].
        let mut topic = p.topic;
        if let Some(alias) = p.properties.topic_alias {
            let slot = usize::from(alias);
            if !v5 || alias == 0 || slot > usize::from(listener.max_topic_alias) {
                return self.disconnect_with(
                    conn,
                    reason::v5::TOPIC_ALIAS_INVALID,
                    CloseReason::ProtocolError,
                    now,
                    out,
                );
            }
            if topic.is_empty() {
                match c.alias_in(alias) {
                    Some(t) => topic = t.as_str().to_owned(),
                    None => {
                        return self.disconnect_with(
                            conn,
                            reason::v5::PROTOCOL_ERROR,
                            CloseReason::ProtocolError,
                            now,
                            out,
                        );
                    }
                }
            } else if let Ok(t) = TopicName::new(topic.clone()) {
                c.set_alias_in(alias, t);
            }
        }
        // `mount_point` prefixes every topic a client of this listener
        // publishes; it is stripped again on delivery.
        let topic = match &listener.mount_point {
            Some(mp) => format!("{mp}{topic}"),
            None => topic,
        };
        let topic = match TopicName::new(topic) {
            Ok(t) => t,
            // mosquitto's topic check fails the packet as a protocol error.
            Err(TopicError::TooDeep) => {
                return self.disconnect_with(
                    conn,
                    reason::v5::PROTOCOL_ERROR,
                    CloseReason::ProtocolError,
                    now,
                    out,
                );
            }
            Err(_) => {
                return self.disconnect_with(
                    conn,
                    reason::v5::TOPIC_NAME_INVALID,
                    CloseReason::Malformed,
                    now,
                    out,
                );
            }
        };

        self.stats.publish_received += 1;
        self.stats.publish_bytes_received += p.payload.len() as u64;

        // mosquitto 2.1.1 settled on warning, not disconnecting, when a
        // client sends more unacknowledged QoS 2 messages than our Receive
        // Maximum: strict enforcement broke clients in the field.
        let receive_maximum = usize::from(self.settings.max_inflight_messages);
        if v5
            && p.qos == Qos::ExactlyOnce
            && receive_maximum > 0
            && let Some(s) = self.sessions.get(key)
            && s.awaiting_pubrel().len() >= receive_maximum
            && let Some(c) = self.conns.get_mut(&conn)
            && !c.warned_receive_maximum
        {
            c.warned_receive_maximum = true;
            log::warn!(
                "Warning: Client {} has exceeded its receive maximum of {receive_maximum}; serving it anyway.",
                s.client_id
            );
        }
        // A QoS 2 PUBLISH we already acknowledged is a retransmission: answer
        // again, deliver once [MQTT-4.3.3-9].
        if let (Qos::ExactlyOnce, Some(pid)) = (p.qos, p.packet_id)
            && self
                .sessions
                .get(key)
                .is_some_and(|s| s.awaiting_pubrel().iter().any(|a| a.packet_id == pid.get()))
        {
            self.send(out, conn, Packet::Pubrec(Ack::new(pid)));
            return;
        }

        let limit = self.settings.message_size_limit as usize;
        let mut held = None;
        let code = if !self.may_write(key, topic.as_str()) {
            log::debug!(
                "Denied PUBLISH from {} (q{}, '{}')",
                self.client_id_of(key),
                p.qos.as_u8(),
                topic
            );
            reason::v5::NOT_AUTHORIZED
        } else if limit > 0 && p.payload.len() > limit {
            reason::v5::PACKET_TOO_LARGE
        } else if topic.as_str().starts_with("$CONTROL/") {
            // No plugin handles $CONTROL topics here: acknowledged, dropped.
            reason::v5::SUCCESS
        } else {
            let mut properties = p.properties;
            properties.topic_alias = None;
            properties.subscription_identifiers.clear();
            let expires_at = properties
                .message_expiry_interval
                .take()
                .map(|secs| now + Duration::from_secs(u64::from(secs)));
            let message = Rc::new(Message::new(
                topic,
                p.payload,
                p.qos,
                p.retain,
                properties.into(),
                expires_at,
            ));
            if p.qos == Qos::ExactlyOnce {
                // Routed at PUBREL, as mosquitto does: no 0x10 on PUBREC.
                held = Some(message);
                reason::v5::SUCCESS
            } else {
                match (self.publish_message(&message, key, out), p.qos) {
                    (0, Qos::AtLeastOnce) => reason::v5::NO_MATCHING_SUBSCRIBERS,
                    _ => reason::v5::SUCCESS,
                }
            }
        };
        // 3.x clients always get a plain acknowledgement, whatever happened.
        let code = if v5 { code } else { reason::v5::SUCCESS };
        match (p.qos, p.packet_id) {
            (Qos::AtLeastOnce, Some(pid)) => self.send(out, conn, Packet::Puback(ack(pid, code))),
            (Qos::ExactlyOnce, Some(pid)) => {
                if code < 0x80
                    && let Some(s) = self.sessions.get_mut(key)
                {
                    s.flow_mut().awaiting_pubrel.push(AwaitingRelease {
                        packet_id: pid.get(),
                        message: held,
                    });
                    self.stats.changes += 1;
                }
                self.send(out, conn, Packet::Pubrec(ack(pid, code)));
            }
            _ => {}
        }
    }

    /// Stores (or with an empty payload clears) a retained message. With
    /// `check_retain_source` its publisher is kept too; without, nothing is
    /// looked up or copied.
    pub(super) fn set_retained(
        &mut self,
        message: &crate::codec::SharedMessage,
        publisher: Option<SessionKey>,
    ) {
        self.retained.set(message.clone());
        if self.settings.check_retain_source {
            let source = publisher
                .and_then(|k| self.sessions.get(k))
                .map(|s| RetainSource {
                    client_id: s.client_id.clone(),
                    username: s.username.clone(),
                    listener: s.listener,
                });
            self.retain_sources
                .set(message.topic.as_str(), source, message.payload.is_empty());
        }
    }

    /// Stores `message` as retained if it is, and routes it to the
    /// subscribers; returns how many subscriptions matched.
    pub(super) fn publish_message(
        &mut self,
        message: &crate::codec::SharedMessage,
        publisher: SessionKey,
        out: &mut Vec<Action>,
    ) -> usize {
        if message.retain {
            self.set_retained(message, Some(publisher));
            self.stats.changes += 1;
        }
        self.route(message, Some(publisher), out)
    }

    pub(super) fn client_id_of(&self, key: SessionKey) -> String {
        self.sessions
            .get(key)
            .map(|s| s.client_id.to_string())
            .unwrap_or_default()
    }
}

fn ack(packet_id: crate::codec::PacketId, reason: u8) -> Ack {
    Ack {
        packet_id,
        reason,
        properties: Properties::default(),
    }
}
