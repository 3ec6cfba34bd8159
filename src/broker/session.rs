//! Per-client session state: what survives a reconnect when the client asks
//! for it (subscriptions, in-flight and queued messages, QoS 2 ids awaiting
//! PUBREL), plus the will that is pending while the client is away.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::codec::{
    PacketId, ProtocolVersion, Qos, SharedMessage, SubscriptionOptions, TopicFilter,
};

use super::ListenerId;
use super::connections::ConnId;

/// A session's own list of its subscriptions (the trie is the index used
/// for routing). A plain vector: most sessions hold a handful, and an empty
/// one costs 24 bytes instead of a hash map's 48.
#[derive(Debug, Default)]
pub struct SubscriptionList(Vec<(TopicFilter, (SubscriptionOptions, Option<u32>))>);

impl SubscriptionList {
    /// Adds or replaces the subscription to `filter`.
    pub fn insert(&mut self, filter: TopicFilter, value: (SubscriptionOptions, Option<u32>)) {
        match self.0.iter_mut().find(|(f, _)| *f == filter) {
            Some(entry) => entry.1 = value,
            None => self.0.push((filter, value)),
        }
    }

    pub fn remove(&mut self, filter: &TopicFilter) -> bool {
        match self.0.iter().position(|(f, _)| f == filter) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &TopicFilter> {
        self.0.iter().map(|(f, _)| f)
    }

    pub fn iter(
        &self,
    ) -> impl Iterator<Item = (&TopicFilter, &(SubscriptionOptions, Option<u32>))> {
        self.0.iter().map(|(f, v)| (f, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Session expiry as seconds; `NEVER` is MQTT 5's 0xFFFFFFFF and a 3.x
/// clean-session-0 session.
pub const NEVER: u32 = u32::MAX;

/// One message on its way to a client, with the header fields chosen when it
/// matched (QoS after downgrade, retain flag, subscription identifier).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: SharedMessage,
    pub qos: Qos,
    pub retain: bool,
    pub subscription_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitPuback,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitPubrec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubcomp,
}

#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: PacketId,
    pub delivery: Delivery,
    pub state: OutState,
}

#[derive(Debug, Clone)]
pub struct PendingWill {
    pub message: SharedMessage,
    /// 5.0 will delay interval in seconds (0 for 3.x).
    pub delay: u32,
}

#[derive(Debug)]
pub struct Session {
    pub client_id: Rc<str>,
    pub username: Option<String>,
    /// The listener the client last connected through: its security rules
    /// judge this session's deliveries.
    pub listener: ListenerId,
    pub version: ProtocolVersion,
    pub conn: Option<ConnId>,
    pub expiry_interval: u32,
    pub subscriptions: SubscriptionList,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Delivery>,
    pub queued_bytes: u64,
    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting PUBREL.
    pub awaiting_pubrel: Vec<u16>,
    next_packet_id: u16,
    pub disconnected_at: Option<Instant>,
    /// Boxed: most sessions have no will, and an empty box costs 8 bytes.
    pub will: Option<Box<PendingWill>>,
    /// The client's Receive Maximum (5.0), else 65535.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size (5.0), 0 = none.
    pub max_packet_size: u32,
    /// "Outgoing messages are being dropped" is logged once per episode.
    pub dropping: bool,
    /// Bumped on every (re)connect so stale timers are recognised.
    pub serial: u64,
    /// Queue QoS 0 messages while offline whatever `queue_qos0_messages`
    /// says: a lazy bridge's local side.
    pub queue_qos0: bool,
    /// In-flight ids were all handed out here, in order (false after a
    /// restore from a file until the in-flight list empties): lets
    /// `allocate_packet_id` skip its scan.
    pub ids_in_order: bool,
}

impl Session {
    pub fn new(client_id: Rc<str>, listener: ListenerId, version: ProtocolVersion) -> Session {
        Session {
            client_id,
            username: None,
            listener,
            version,
            conn: None,
            expiry_interval: 0,
            subscriptions: SubscriptionList::default(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            awaiting_pubrel: Vec::new(),
            next_packet_id: 0,
            disconnected_at: None,
            will: None,
            receive_maximum: u16::MAX,
            max_packet_size: 0,
            dropping: false,
            serial: 0,
            queue_qos0: false,
            ids_in_order: true,
        }
    }

    /// The next packet id not in flight. `None` only if all 65535 are used.
    pub fn allocate_packet_id(&mut self) -> Option<PacketId> {
        // Ids are handed out in sequence and the in-flight list is in send
        // order, so the next id can only be taken if the window from the
        // oldest in-flight id has wrapped all the way round. Checking that
        // is O(1); the scan below is for restored sessions and wrap-around.
        if self.inflight.is_empty() {
            self.ids_in_order = true;
        }
        if !self.ids_in_order {
            // fall through to the scan
        } else if let (Some(oldest), Some(newest)) = (self.inflight.front(), self.inflight.back()) {
            let (oldest, newest) = (oldest.packet_id.get(), newest.packet_id.get());
            let candidate = self.next_packet_id.wrapping_add(1).max(1);
            let window = newest.wrapping_sub(oldest);
            let span = candidate.wrapping_sub(oldest);
            if newest == self.next_packet_id && span > window && window < u16::MAX / 2 {
                self.next_packet_id = candidate;
                return PacketId::new(candidate);
            }
        } else {
            let candidate = self.next_packet_id.wrapping_add(1).max(1);
            self.next_packet_id = candidate;
            return PacketId::new(candidate);
        }
        for _ in 0..u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            let Some(id) = PacketId::new(self.next_packet_id) else {
                continue;
            };
            if !self.inflight.iter().any(|i| i.packet_id == id) {
                return Some(id);
            }
        }
        None
    }

    /// The packet id most recently handed out (mosquitto's `last_mid`).
    pub fn last_packet_id(&self) -> u16 {
        self.next_packet_id
    }

    /// The packet ids the queue would get next, in order, skipping those in
    /// flight (for saving queued messages as mosquitto numbers them).
    pub fn packet_ids_after_inflight(&self) -> impl Iterator<Item = u16> + '_ {
        let mut next = self.next_packet_id;
        std::iter::from_fn(move || {
            for _ in 0..u16::MAX {
                next = next.wrapping_add(1);
                if next != 0 && !self.inflight.iter().any(|i| i.packet_id.get() == next) {
                    return Some(next);
                }
            }
            None
        })
    }

    /// Continues numbering after a restored `last_mid`.
    pub fn set_last_packet_id(&mut self, id: u16) {
        self.next_packet_id = id;
    }

    pub fn inflight_position(&self, id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|i| i.packet_id == id)
    }

    pub fn is_durable(&self) -> bool {
        self.expiry_interval > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Message, TopicName};

    fn inflight(id: u16) -> Inflight {
        Inflight {
            packet_id: PacketId::new(id).unwrap(),
            delivery: Delivery {
                message: Rc::new(Message {
                    topic: TopicName::new("t").unwrap(),
                    payload: Vec::new(),
                    qos: Qos::AtLeastOnce,
                    retain: false,
                    properties: Default::default(),
                    expires_at: None,
                }),
                qos: Qos::AtLeastOnce,
                retain: false,
                subscription_id: None,
            },
            state: OutState::AwaitPuback,
        }
    }

    #[test]
    fn packet_ids_never_collide_with_those_in_flight() {
        let mut s = Session::new("c".into(), 0, ProtocolVersion::V311);
        // Sequential, with acknowledgements out of order, across the wrap.
        s.set_last_packet_id(65530);
        for round in 0..200_000u32 {
            let id = s.allocate_packet_id().unwrap();
            assert!(
                !s.inflight.iter().any(|i| i.packet_id == id),
                "round {round}: {id}"
            );
            s.inflight.push_back(inflight(id.get()));
            if s.inflight.len() > 50 {
                // Ack the second oldest first now and then.
                let i = if round % 7 == 0 { 1 } else { 0 };
                s.inflight.remove(i);
            }
        }
        // A restored session with arbitrary ids falls back to the scan.
        let mut s = Session::new("r".into(), 0, ProtocolVersion::V311);
        for id in [5, 12, 9] {
            s.inflight.push_back(inflight(id));
        }
        s.ids_in_order = false;
        s.set_last_packet_id(9);
        let mut got = Vec::new();
        for _ in 0..3 {
            let id = s.allocate_packet_id().unwrap();
            s.inflight.push_back(inflight(id.get()));
            got.push(id.get());
        }
        assert_eq!(got, vec![10, 11, 13]);
    }
}
