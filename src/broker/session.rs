//! Per-client session state: what survives a reconnect when the client asks
//! for it (subscriptions, in-flight and queued messages, QoS 2 ids awaiting
//! PUBREL), plus the will that is pending while the client is away.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use crate::codec::{
    PacketId, ProtocolVersion, Qos, SharedMessage, SubscriptionOptions, TopicFilter,
};

use super::ListenerId;
use super::connections::ConnId;

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
    pub subscriptions: HashMap<TopicFilter, (SubscriptionOptions, Option<u32>)>,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Delivery>,
    pub queued_bytes: u64,
    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting PUBREL.
    pub awaiting_pubrel: Vec<u16>,
    next_packet_id: u16,
    pub disconnected_at: Option<Instant>,
    pub will: Option<PendingWill>,
    /// The client's Receive Maximum (5.0), else 65535.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size (5.0), 0 = none.
    pub max_packet_size: u32,
    /// "Outgoing messages are being dropped" is logged once per episode.
    pub dropping: bool,
    /// Bumped on every (re)connect so stale timers are recognised.
    pub serial: u64,
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
            subscriptions: HashMap::new(),
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
        }
    }

    /// The next packet id not in flight. `None` only if all 65535 are used.
    pub fn allocate_packet_id(&mut self) -> Option<PacketId> {
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
