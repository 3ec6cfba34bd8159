//! SUBSCRIBE and UNSUBSCRIBE, including the retained messages a new
//! subscription receives.

use crate::codec::{
    Packet, Qos, RetainHandling, SharedMessage, Suback, Subscribe, TopicFilter, Unsuback,
    Unsubscribe, reason,
};
use crate::{log_subscribe, log_unsubscribe};

use super::connections::ConnId;
use super::session::Delivery;
use super::subscriptions::{SessionKey, Subscriber};
use super::{Action, Broker};

/// Bytes a retained catch-up lets wait for a connection's socket before it
/// waits for the socket to drain: enough to keep a fast reader busy between
/// two loop turns, little enough that thousands of subscribers catching up
/// at once stay affordable (and far below the output cap that drops QoS 0).
const RETAINED_CATCH_UP_BYTES: u32 = 1 << 20;

impl Broker {
    pub(super) fn handle_subscribe(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        sub: Subscribe,
        out: &mut Vec<Action>,
    ) {
        let Some(listener) = self
            .listeners
            .get(self.sessions.get(key).map(|s| s.listener).unwrap_or(0))
        else {
            return;
        };
        let max_qos = listener.max_qos;
        // A 3.x mosquitto bridge is never sent back what it published, and
        // keeps the retain flag of what it is sent (mosquitto's
        // handle_subscribe does the same for `is_bridge` clients).
        let v3_bridge = self.conns.get(&conn).is_some_and(|c| c.is_bridge)
            && self
                .sessions
                .get(key)
                .is_some_and(|s| s.version != crate::codec::ProtocolVersion::V5);
        let sub_id = sub.properties.subscription_identifiers.first().copied();
        let client_id = self.client_id_of(key);
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut retained: Vec<(SharedMessage, Qos, Option<u32>)> = Vec::new();
        let mut found = Vec::new();
        let mount_point = listener.mount_point.clone();
        for (filter, mut options) in sub.filters {
            let filter = mounted(filter, mount_point.as_deref());
            // The ACL file never refuses a subscription: reads are checked
            // per message (auth-files.md §6 row 1).
            options.qos = options.qos.min(max_qos);
            if v3_bridge {
                options.no_local = true;
                options.retain_as_published = true;
            }
            let existed = self.subs.subscribe(
                &filter,
                Subscriber {
                    session: key,
                    options,
                    id: sub_id,
                },
            );
            if let Some(s) = self.sessions.get_mut(key) {
                s.subscriptions.insert(filter.clone(), (options, sub_id));
            }
            self.stats.changes += 1;
            log_subscribe!("{client_id} {} {filter}", options.qos.as_u8());
            codes.push(options.qos.as_u8());
            // Shared subscriptions never get retained messages; 5.0 retain
            // handling may say not to send them [MQTT-3.3.1-9..11].
            let send_retained = filter.shared().is_none()
                && match options.retain_handling {
                    RetainHandling::SendAlways => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                found.clear();
                self.retained.matching(filter.as_str(), &mut found);
                // Expired retained messages are dropped here, where they
                // would otherwise be sent [MQTT-3.3.2-5].
                let now = self.now;
                for m in found.iter().filter(|m| m.is_expired(now)) {
                    if self
                        .retained
                        .get(m.topic.as_str())
                        .is_some_and(|r| std::rc::Rc::ptr_eq(r, m))
                    {
                        self.retained.remove(m.topic.as_str());
                    }
                }
                found.retain(|m| !m.is_expired(now));
                retained.extend(found.drain(..).map(|m| (m, options.qos, sub_id)));
            }
        }
        self.send(
            out,
            conn,
            Packet::Suback(Suback {
                packet_id: sub.packet_id,
                codes,
                properties: Default::default(),
            }),
        );
        for (message, granted, subscription_id) in retained {
            let qos = if self.settings.upgrade_outgoing_qos {
                granted
            } else {
                message.qos.min(granted)
            };
            let delivery = Delivery {
                qos,
                message,
                retain: true,
                subscription_id,
                packet_id: None,
            };
            if qos == Qos::AtMostOnce {
                // QoS 0 goes out as the socket drains, so a catch-up larger
                // than the output limits loses nothing.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.push_retained(delivery);
                }
            } else if self.retained_deliverable(key, &delivery.message) {
                // QoS 1/2 go through the in-flight window and the queue,
                // within the queue limits, as mosquitto sends them.
                self.deliver(key, delivery, out);
            }
        }
        self.continue_retained(conn, out);
    }

    /// Whether a retained message may go to a subscriber: it may read the
    /// topic, and with `check_retain_source` its publisher may still write it.
    fn retained_deliverable(&self, key: SessionKey, message: &SharedMessage) -> bool {
        let readable = self
            .sessions
            .get(key)
            .is_some_and(|s| self.may_read(s, message.topic.as_str()));
        readable
            && (!self.settings.check_retain_source
                || self
                    .retain_sources
                    .may_deliver(&self.listeners, message.topic.as_str()))
    }

    /// Sends the waiting retained QoS 0 messages of a connection while its
    /// output has room: fewer than `max_queued_messages` packets (when set)
    /// and under `RETAINED_CATCH_UP_BYTES` waiting for the socket. The
    /// network layer calls back (`output_pending`) as the socket drains, so
    /// the rest follows as the client reads. A message whose topic has been
    /// cleared or given a new retained message meanwhile is skipped: the
    /// client has been sent the new one, and must not get the old one after
    /// it.
    pub(super) fn continue_retained(&mut self, conn: ConnId, out: &mut Vec<Action>) {
        let max_msgs = self.settings.max_queued_messages;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Some(key) = c.session else {
                return;
            };
            let room = c.out_bytes < RETAINED_CATCH_UP_BYTES
                && (max_msgs == 0 || c.out_packets < max_msgs);
            if !room {
                return;
            }
            let Some(delivery) = c.pop_retained() else {
                return;
            };
            let m = &delivery.message;
            let current = self
                .retained
                .get(m.topic.as_str())
                .is_some_and(|r| std::rc::Rc::ptr_eq(r, m));
            if current && !m.is_expired(self.now) && self.retained_deliverable(key, m) {
                self.deliver(key, delivery, out);
            }
        }
    }

    pub(super) fn handle_unsubscribe(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        unsub: Unsubscribe,
        out: &mut Vec<Action>,
    ) {
        let client_id = self.client_id_of(key);
        let mut codes = Vec::with_capacity(unsub.filters.len());
        let mount_point = self
            .sessions
            .get(key)
            .and_then(|s| self.listeners.get(s.listener))
            .and_then(|l| l.mount_point.clone());
        for filter in unsub.filters {
            let filter = mounted(filter, mount_point.as_deref());
            let existed = self.subs.unsubscribe(&filter, key);
            if let Some(s) = self.sessions.get_mut(key) {
                s.subscriptions.remove(&filter);
            }
            self.stats.changes += 1;
            log_unsubscribe!("{client_id} {filter}");
            codes.push(if existed {
                reason::v5::SUCCESS
            } else {
                reason::v5::NO_SUBSCRIPTION_EXISTED
            });
        }
        let v5 = self.version_of(conn).is_some_and(|v| v.is_v5());
        self.send(
            out,
            conn,
            Packet::Unsuback(Unsuback {
                packet_id: unsub.packet_id,
                codes: if v5 { codes } else { Vec::new() },
                properties: Default::default(),
            }),
        );
    }
}

/// A filter as the broker stores it for a client of a `mount_point`
/// listener: the mount point goes in front (after `$share/GROUP/` for a
/// shared subscription).
fn mounted(filter: TopicFilter, mount_point: Option<&str>) -> TopicFilter {
    let Some(mp) = mount_point else {
        return filter;
    };
    let text = match filter.shared() {
        Some((group, inner)) => format!("$share/{group}/{mp}{inner}"),
        None => format!("{mp}{filter}"),
    };
    TopicFilter::new(text).unwrap_or(filter)
}
