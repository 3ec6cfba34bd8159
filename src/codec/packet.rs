//! The MQTT packet model shared by the codec and the broker core.
//!
//! One set of types serves MQTT 3.1, 3.1.1 and 5.0: fields that only exist in
//! 5.0 (properties, reason codes) are simply empty/default for 3.x, and the
//! encoder leaves them out when the connection's version has no room for them.
//! Everything here has been validated by the decoder: a `TopicName` never
//! holds a wildcard, a `PacketId` is never zero, a `Qos` is never 3.

use std::num::NonZeroU16;
use std::rc::Rc;
use std::time::Instant;

use super::properties::{MessageProperties, Properties};
use super::topic::{TopicFilter, TopicName};

/// The protocol level from CONNECT. Decides how every later packet on the
/// connection is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte as sent in CONNECT (3, 4 or 5).
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qos {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl Qos {
    pub fn from_u8(v: u8) -> Option<Qos> {
        match v {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A non-zero packet identifier [MQTT-2.2.1-3].
pub type PacketId = NonZeroU16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: TopicName,
    pub payload: Vec<u8>,
    pub qos: Qos,
    pub retain: bool,
    /// Will properties (5.0 only), including the will delay interval.
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: ProtocolVersion,
    /// Bit 0x80 of the protocol level: a mosquitto bridge (3.1/3.1.1 only).
    pub bridge: bool,
    /// Clean session (3.x) / clean start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    /// May be empty; the broker decides whether to assign one.
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    /// Raw bytes: mosquitto hashes the password exactly as sent.
    pub password: Option<Vec<u8>>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connack {
    pub session_present: bool,
    /// 3.x return code (0-5) or 5.0 reason code; see `codec::reason`.
    pub code: u8,
    pub properties: Properties,
}

/// A PUBLISH as decoded from a client. The broker turns its topic, payload and
/// properties into a shared `Message` without copying the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: Qos,
    pub retain: bool,
    /// Empty only for a 5.0 PUBLISH that carries a topic alias instead.
    pub topic: String,
    /// Present iff qos > 0.
    pub packet_id: Option<PacketId>,
    pub payload: Vec<u8>,
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: PacketId,
    /// 5.0 reason code; 0 (success) for 3.x.
    pub reason: u8,
    pub properties: Properties,
}

impl Ack {
    pub fn new(packet_id: PacketId) -> Ack {
        Ack {
            packet_id,
            reason: 0,
            properties: Properties::default(),
        }
    }
    pub fn with_reason(packet_id: PacketId, reason: u8) -> Ack {
        Ack {
            packet_id,
            reason,
            properties: Properties::default(),
        }
    }
}

/// 5.0 retain handling option of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainHandling {
    /// Send retained messages at subscribe time.
    SendAlways = 0,
    /// Send only if the subscription did not exist before.
    SendIfNew = 1,
    /// Never send retained messages for this subscription.
    DoNotSend = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    pub qos: Qos,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    pub fn with_qos(qos: Qos) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAlways,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// 5.0: subscription identifier and user properties.
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suback {
    pub packet_id: PacketId,
    /// Granted QoS or failure (0x80) per filter; 5.0 reason codes.
    pub codes: Vec<u8>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    pub filters: Vec<TopicFilter>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsuback {
    pub packet_id: PacketId,
    /// 5.0 only: one reason code per filter. Empty for 3.x.
    pub codes: Vec<u8>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// 5.0 reason code; 0 for 3.x.
    pub reason: u8,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub reason: u8,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    Connack(Connack),
    Publish(Publish),
    Puback(Ack),
    Pubrec(Ack),
    Pubrel(Ack),
    Pubcomp(Ack),
    Subscribe(Subscribe),
    Suback(Suback),
    Unsubscribe(Unsubscribe),
    Unsuback(Unsuback),
    Pingreq,
    Pingresp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    /// The packet's name as mosquitto prints it in debug log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::Connack(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::Puback(_) => "PUBACK",
            Packet::Pubrec(_) => "PUBREC",
            Packet::Pubrel(_) => "PUBREL",
            Packet::Pubcomp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::Suback(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::Unsuback(_) => "UNSUBACK",
            Packet::Pingreq => "PINGREQ",
            Packet::Pingresp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// An application message as the broker stores and shares it: one allocation
/// per published message, referenced by every queue, in-flight slot and the
/// retained store. Deliveries copy only the `Rc`.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Vec<u8>,
    /// The QoS it was published with.
    pub qos: Qos,
    pub retain: bool,
    /// Properties forwarded to subscribers (payload format, content type,
    /// response topic, correlation data, user properties). Never a topic
    /// alias, subscription identifier or message expiry interval: the first
    /// two are per connection, the expiry is `expires_at`.
    pub properties: MessageProperties,
    /// 5.0 message expiry: when the message stops being delivered. Each
    /// delivery carries the remaining seconds [MQTT-3.3.2-6].
    pub expires_at: Option<Instant>,
    /// Its bytes in `memory_limit`'s running total while it lives.
    held: crate::memory::Held,
}

impl Message {
    /// A message, counted in `crate::memory` until it is dropped.
    pub fn new(
        topic: TopicName,
        payload: Vec<u8>,
        qos: Qos,
        retain: bool,
        properties: MessageProperties,
        expires_at: Option<Instant>,
    ) -> Message {
        let bytes = Message::size_of(topic.as_str().len(), payload.len(), &properties);
        Message {
            topic,
            payload,
            qos,
            retain,
            properties,
            expires_at,
            held: crate::memory::Held::new(bytes),
        }
    }

    /// What a message of this topic, payload and properties holds: the
    /// bytes themselves plus the structure and its `Rc`.
    pub fn size_of(topic: usize, payload: usize, properties: &MessageProperties) -> usize {
        std::mem::size_of::<Message>() + 16 + topic + payload + properties.heap_size()
    }

    /// The bytes it counts in `memory_limit`'s total.
    pub fn held_bytes(&self) -> usize {
        self.held.bytes() as usize
    }

    /// Seconds left before expiry, rounded up; `Some(0)` means expired.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let at = self.expires_at?;
        let left = at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

pub type SharedMessage = Rc<Message>;

/// An outgoing PUBLISH: a shared message plus the per-delivery header fields.
/// Encoding it copies the payload into the connection's output buffer once;
/// nothing is allocated per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPublish {
    pub message: SharedMessage,
    pub qos: Qos,
    pub retain: bool,
    pub dup: bool,
    pub packet_id: Option<PacketId>,
    /// 5.0: the identifier of the subscription that matched, if it had one.
    pub subscription_id: Option<u32>,
    /// 5.0: remaining message expiry to send instead of the stored one.
    pub message_expiry: Option<u32>,
    /// 5.0: outbound topic alias; `topic_alias_only` means the topic is sent empty.
    pub topic_alias: Option<u16>,
    pub topic_alias_only: bool,
    /// Leading bytes of the topic not sent: the subscriber's listener
    /// `mount_point`, stripped on delivery without copying the topic.
    pub topic_skip: u16,
}
