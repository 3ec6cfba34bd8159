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

type SubscriptionEntry = (TopicFilter, (SubscriptionOptions, Option<u32>));

/// A session's own list of its subscriptions (the trie is the index used
/// for routing). Most sessions hold a handful and many none: up to
/// `SMALL_LIST` entries are a plain vector behind one box (a session with
/// none pays 8 bytes), beyond that a hash map, so a client with 100,000
/// subscriptions does not make each (un)subscribe a linear search. Only
/// (un)subscribing and persistence read it, never routing.
#[derive(Debug, Default)]
pub struct SubscriptionList(Option<Box<Entries>>);

type SubscriptionValue = (SubscriptionOptions, Option<u32>);

#[derive(Debug)]
enum Entries {
    Small(Vec<SubscriptionEntry>),
    Large(std::collections::HashMap<TopicFilter, SubscriptionValue, foldhash::fast::RandomState>),
}

/// Entries kept in a vector before the list becomes a hash map.
const SMALL_LIST: usize = 16;

impl SubscriptionList {
    /// Adds or replaces the subscription to `filter`.
    pub fn insert(&mut self, filter: TopicFilter, value: SubscriptionValue) {
        let entries = self
            .0
            .get_or_insert_with(|| Box::new(Entries::Small(Vec::new())));
        match &mut **entries {
            Entries::Small(list) => {
                if let Some(entry) = list.iter_mut().find(|(f, _)| *f == filter) {
                    entry.1 = value;
                } else if list.len() < SMALL_LIST {
                    list.push((filter, value));
                } else {
                    let mut map: std::collections::HashMap<_, _, _> =
                        std::mem::take(list).into_iter().collect();
                    map.insert(filter, value);
                    **entries = Entries::Large(map);
                }
            }
            Entries::Large(map) => {
                map.insert(filter, value);
            }
        }
    }

    pub fn remove(&mut self, filter: &TopicFilter) -> bool {
        let Some(entries) = self.0.as_mut() else {
            return false;
        };
        let removed = match &mut **entries {
            Entries::Small(list) => match list.iter().position(|(f, _)| f == filter) {
                Some(i) => {
                    list.swap_remove(i);
                    true
                }
                None => false,
            },
            Entries::Large(map) => map.remove(filter).is_some(),
        };
        if self.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn keys(&self) -> impl Iterator<Item = &TopicFilter> {
        self.iter().map(|(f, _)| f)
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&TopicFilter, &SubscriptionValue)> + '_> {
        match self.0.as_deref() {
            None => Box::new(std::iter::empty()),
            Some(Entries::Small(list)) => Box::new(list.iter().map(|(f, v)| (f, v))),
            Some(Entries::Large(map)) => Box::new(map.iter()),
        }
    }

    pub fn len(&self) -> usize {
        match self.0.as_deref() {
            None => 0,
            Some(Entries::Small(list)) => list.len(),
            Some(Entries::Large(map)) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// Given when a QoS 1/2 message is queued: mosquitto numbers messages
    /// when it queues them, so ids go out (and are saved) as it numbers them.
    pub packet_id: Option<PacketId>,
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

/// The message flow of a session. An idle or QoS 0-only client never has
/// any of it, and keeping these containers inline cost about 100 bytes per
/// session (issue: memory per idle connection), so they live behind one box
/// made on the first in-flight or queued message or QoS 2 id and dropped
/// when all three are empty again (`Session::release_idle_flow`).
#[derive(Debug, Default)]
pub struct Flow {
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Delivery>,
    /// Payload bytes in `queue`.
    pub queued_bytes: u64,
    /// QoS 2 messages received and acknowledged with PUBREC, awaiting PUBREL.
    pub awaiting_pubrel: Vec<AwaitingRelease>,
}

/// An incoming QoS 2 message between PUBREC and PUBREL. mosquitto routes
/// it (and stores it as retained) only at PUBREL, so subscribers see it
/// after the publisher has released it; culex does the same.
#[derive(Debug, Clone)]
pub struct AwaitingRelease {
    pub packet_id: u16,
    /// `None` when there is nothing to route (a 3.x publish the ACL denied,
    /// acknowledged as if delivered).
    pub message: Option<SharedMessage>,
}

impl Flow {
    fn is_empty(&self) -> bool {
        self.inflight.is_empty() && self.queue.is_empty() && self.awaiting_pubrel.is_empty()
    }
}

/// Where a session's client is. One field for what were two (the connection
/// and the time of the disconnect, 32 bytes), which never both hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Online(ConnId),
    /// Away since then (`None` for a session never connected, or in the
    /// middle of a take-over).
    Offline(Option<Instant>),
}

/// What the accessors of a session without a `Flow` lend out.
const NO_INFLIGHT: &VecDeque<Inflight> = &VecDeque::new();
const NO_QUEUE: &VecDeque<Delivery> = &VecDeque::new();

#[derive(Debug)]
pub struct Session {
    pub client_id: Rc<str>,
    pub username: Option<Box<str>>,
    /// The listener the client last connected through: its security rules
    /// judge this session's deliveries.
    pub listener: ListenerId,
    pub version: ProtocolVersion,
    /// Connected, or away since when.
    pub presence: Presence,
    pub expiry_interval: u32,
    pub subscriptions: SubscriptionList,
    /// In-flight window, queue and QoS 2 ids: `None` while all are empty,
    /// which is most of the time for most clients (see `Flow`).
    flow: Option<Box<Flow>>,
    next_packet_id: u16,
    /// Boxed: most sessions have no will, and an empty box costs 8 bytes.
    pub will: Option<Box<PendingWill>>,
    /// The client's Receive Maximum (5.0), else 65535.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size (5.0), 0 = none.
    pub max_packet_size: u32,
    /// "Outgoing messages are being dropped" is logged once per connection,
    /// as mosquitto logs it (cleared when the client connects).
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
            presence: Presence::Offline(None),
            expiry_interval: 0,
            subscriptions: SubscriptionList::default(),
            flow: None,
            next_packet_id: 0,
            will: None,
            receive_maximum: u16::MAX,
            max_packet_size: 0,
            dropping: false,
            serial: 0,
            queue_qos0: false,
            ids_in_order: true,
        }
    }

    /// The connection of a connected client.
    pub fn conn(&self) -> Option<ConnId> {
        match self.presence {
            Presence::Online(conn) => Some(conn),
            Presence::Offline(_) => None,
        }
    }

    /// When the client of an offline session went away, if known.
    pub fn disconnected_at(&self) -> Option<Instant> {
        match self.presence {
            Presence::Online(_) => None,
            Presence::Offline(at) => at,
        }
    }

    /// The messages sent and not yet acknowledged, oldest first.
    pub fn inflight(&self) -> &VecDeque<Inflight> {
        self.flow.as_ref().map_or(NO_INFLIGHT, |f| &f.inflight)
    }

    /// The messages waiting for room in the in-flight window (or for the
    /// client to come back), oldest first.
    pub fn queue(&self) -> &VecDeque<Delivery> {
        self.flow.as_ref().map_or(NO_QUEUE, |f| &f.queue)
    }

    /// Payload bytes of `queue()`.
    pub fn queued_bytes(&self) -> u64 {
        self.flow.as_ref().map_or(0, |f| f.queued_bytes)
    }

    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting
    /// PUBREL.
    pub fn awaiting_pubrel(&self) -> &[AwaitingRelease] {
        self.flow.as_ref().map_or(&[], |f| &f.awaiting_pubrel)
    }

    /// The flow state, made now if the session had none.
    pub fn flow_mut(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(Box::default)
    }

    /// The flow state if the session has any (for removals, which never
    /// need to make one).
    pub fn existing_flow_mut(&mut self) -> Option<&mut Flow> {
        self.flow.as_deref_mut()
    }

    /// Frees the flow state once nothing is in flight, queued or awaiting
    /// PUBREL. Called where messages leave it (acknowledgements, draining
    /// the queue), so an idle session goes back to its small size.
    pub fn release_idle_flow(&mut self) {
        if self.flow.as_ref().is_some_and(|f| f.is_empty()) {
            self.flow = None;
        }
    }

    /// The next packet id not in flight. `None` only if all 65535 are used.
    pub fn allocate_packet_id(&mut self) -> Option<PacketId> {
        // Ids are handed out in sequence and the in-flight list is in send
        // order, so the next id can only be taken if the window from the
        // oldest in-flight id has wrapped all the way round. Checking that
        // is O(1); the scan below is for restored sessions and wrap-around.
        let inflight = self.flow.as_ref().map_or(NO_INFLIGHT, |f| &f.inflight);
        if inflight.is_empty() {
            self.ids_in_order = true;
        }
        if !self.ids_in_order {
            // fall through to the scan
        } else if let (Some(oldest), Some(newest)) = (inflight.front(), inflight.back()) {
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
            if !inflight.iter().any(|i| i.packet_id == id) {
                return Some(id);
            }
        }
        None
    }

    /// The packet id most recently handed out (mosquitto's `last_mid`).
    pub fn last_packet_id(&self) -> u16 {
        self.next_packet_id
    }

    /// Continues numbering after a restored `last_mid`.
    pub fn set_last_packet_id(&mut self, id: u16) {
        self.next_packet_id = id;
    }

    pub fn inflight_position(&self, id: PacketId) -> Option<usize> {
        self.inflight().iter().position(|i| i.packet_id == id)
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
                message: Rc::new(Message::new(
                    TopicName::new("t").unwrap(),
                    Vec::new(),
                    Qos::AtLeastOnce,
                    false,
                    Default::default(),
                    None,
                )),
                qos: Qos::AtLeastOnce,
                retain: false,
                subscription_id: None,
                packet_id: None,
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
                !s.inflight().iter().any(|i| i.packet_id == id),
                "round {round}: {id}"
            );
            s.flow_mut().inflight.push_back(inflight(id.get()));
            if s.inflight().len() > 50 {
                // Ack the second oldest first now and then.
                let i = if round % 7 == 0 { 1 } else { 0 };
                s.flow_mut().inflight.remove(i);
            }
        }
        // A restored session with arbitrary ids falls back to the scan.
        let mut s = Session::new("r".into(), 0, ProtocolVersion::V311);
        for id in [5, 12, 9] {
            s.flow_mut().inflight.push_back(inflight(id));
        }
        s.ids_in_order = false;
        s.set_last_packet_id(9);
        let mut got = Vec::new();
        for _ in 0..3 {
            let id = s.allocate_packet_id().unwrap();
            s.flow_mut().inflight.push_back(inflight(id.get()));
            got.push(id.get());
        }
        assert_eq!(got, vec![10, 11, 13]);
    }
}
