//! What a mosquitto.db holds, as plain data, independent of the broker.
//!
//! The reader fills this the way mosquitto's loader builds its state (store
//! ids resolved in file order, dangling references dropped, sessions created
//! implicitly by SUB/CLIENT_MSG chunks); the writer turns it back into a
//! version 6 file. The broker maps its own state to and from it.

use super::format::{DB_VERSION, DBID_SIZE};
use crate::codec::Properties;

/// Everything a database file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbContents {
    /// Format version of the file read (2–6; 0 for an empty file). Ignored by
    /// the writer, which always writes 6.
    pub version: u32,
    /// Highest store id handed out; numbering continues after it.
    pub last_db_id: u64,
    /// Written at a clean shutdown (informational only).
    pub shutdown: bool,
    /// Always 8 in a file that loads; the writer always writes 8.
    pub dbid_size: u8,
    /// Stored messages in file order (mosquitto writes newest first). Store
    /// ids are unique (a repeated id in a file replaces the earlier message).
    pub messages: Vec<StoredMessage>,
    /// Store ids of the retained messages, one per topic, each present in
    /// `messages` (whose topic says which topic it is retained on).
    pub retained: Vec<u64>,
    /// Durable sessions, in order of first appearance.
    pub clients: Vec<StoredClient>,
    /// Queued and in-flight messages of the sessions, in file order (per
    /// client that is delivery order). Each refers to `messages` by store id.
    pub client_messages: Vec<StoredClientMessage>,
    /// Subscriptions of the sessions (never shared subscriptions).
    pub subscriptions: Vec<StoredSubscription>,
}

impl Default for DbContents {
    fn default() -> Self {
        DbContents {
            version: DB_VERSION,
            last_db_id: 0,
            shutdown: false,
            dbid_size: DBID_SIZE,
            messages: Vec::new(),
            retained: Vec::new(),
            clients: Vec::new(),
            client_messages: Vec::new(),
            subscriptions: Vec::new(),
        }
    }
}

impl DbContents {
    /// The stored message with this store id.
    pub fn message(&self, store_id: u64) -> Option<&StoredMessage> {
        self.messages.iter().find(|m| m.store_id == store_id)
    }

    /// Where mosquitto puts each entry of `client_messages` when it loads
    /// the file: `true` = queue, `false` = in-flight list. Each session
    /// starts with `max_inflight` slots per direction (mosquitto's
    /// `max_inflight_messages`, default 20; pass the effective limit); a
    /// message in state `Queued`, or with QoS > 0 when no slot is left, is
    /// queued, any other takes the in-flight list (and a slot if QoS > 0).
    pub fn queued_on_load(&self, max_inflight: u16) -> Vec<bool> {
        let mut quota: std::collections::HashMap<(&str, Direction), u16> =
            std::collections::HashMap::new();
        self.client_messages
            .iter()
            .map(|cm| {
                let q = quota
                    .entry((cm.client_id.as_str(), cm.direction))
                    .or_insert(max_inflight);
                if cm.state == MsgState::Queued || (cm.qos > 0 && *q == 0) {
                    true
                } else {
                    if cm.qos > 0 {
                        *q -= 1;
                    }
                    false
                }
            })
            .collect()
    }

    /// The session with this client id.
    pub fn client(&self, client_id: &str) -> Option<&StoredClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// One MSG_STORE chunk: a message shared by the retained store and queues.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMessage {
    pub store_id: u64,
    /// Absolute Unix seconds at which the message expires; 0 = never.
    pub expiry_time: i64,
    /// Client id of the original publisher (`None` = broker generated).
    pub source_id: Option<String>,
    pub source_username: Option<String>,
    /// Port of the listener the publisher used (0 = none/unknown).
    pub source_port: u16,
    /// Packet id the publisher used (0 for QoS 0).
    pub source_mid: u16,
    /// Empty = no topic (only possible in a hand-made file).
    pub topic: String,
    pub payload: Vec<u8>,
    /// QoS the message was published with.
    pub qos: u8,
    /// Published as retained.
    pub retain: bool,
    /// PUBLISH properties that travel with the message (payload format,
    /// content type, response topic, correlation data, user properties).
    /// Message expiry is `expiry_time`, not a property.
    pub properties: crate::codec::MessageProperties,
}

/// One CLIENT chunk: a durable session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredClient {
    pub client_id: String,
    pub username: Option<String>,
    /// Absolute Unix seconds when the offline session expires; 0 = not scheduled.
    pub session_expiry_time: i64,
    /// Seconds; `SESSION_EXPIRY_NEVER` (0xFFFFFFFF) = never. 0 for sessions
    /// from format 2–4 files (mosquitto leaves it at 0 there).
    pub session_expiry_interval: u32,
    /// Last packet id used towards this client.
    pub last_mid: u16,
    /// Port of the listener last used (0 = unknown; not in formats 2–5).
    pub listener_port: u16,
    /// Disconnect time from format 3/4 files (read and discarded by
    /// mosquitto, not written in version 6).
    pub disconnect_time: Option<i64>,
}

/// Direction of a client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// From the client: a QoS 2 PUBLISH waiting for PUBREL. Byte 0 (mosquitto
    /// reads anything but 1 as incoming).
    In,
    /// To the client. Byte 1.
    #[default]
    Out,
}

impl Direction {
    pub fn from_u8(v: u8) -> Direction {
        if v == 1 {
            Direction::Out
        } else {
            Direction::In
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// Delivery state of a client message (mosquitto's `mosquitto_msg_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MsgState {
    Invalid,
    PublishQos0,
    PublishQos1,
    WaitForPuback,
    PublishQos2,
    WaitForPubrec,
    ResendPubrel,
    WaitForPubrel,
    ResendPubcomp,
    WaitForPubcomp,
    SendPubrec,
    /// Waiting in the queue, not yet in flight.
    #[default]
    Queued,
    /// A value mosquitto does not define, kept as read.
    Other(u8),
}

impl MsgState {
    pub fn from_u8(v: u8) -> MsgState {
        use MsgState::*;
        match v {
            0 => Invalid,
            1 => PublishQos0,
            2 => PublishQos1,
            3 => WaitForPuback,
            4 => PublishQos2,
            5 => WaitForPubrec,
            6 => ResendPubrel,
            7 => WaitForPubrel,
            8 => ResendPubcomp,
            9 => WaitForPubcomp,
            10 => SendPubrec,
            11 => Queued,
            v => Other(v),
        }
    }

    pub fn to_u8(self) -> u8 {
        use MsgState::*;
        match self {
            Invalid => 0,
            PublishQos0 => 1,
            PublishQos1 => 2,
            WaitForPuback => 3,
            PublishQos2 => 4,
            WaitForPubrec => 5,
            ResendPubrel => 6,
            WaitForPubrel => 7,
            ResendPubcomp => 8,
            WaitForPubcomp => 9,
            SendPubrec => 10,
            Queued => 11,
            Other(v) => v,
        }
    }
}

/// One CLIENT_MSG chunk: a message queued or in flight for a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredClientMessage {
    pub client_id: String,
    /// The MSG_STORE it refers to.
    pub store_id: u64,
    /// Packet id for this client.
    pub mid: u16,
    /// QoS for this client (may be lower than the stored message's).
    pub qos: u8,
    pub state: MsgState,
    /// Retain flag to send.
    pub retain: bool,
    pub dup: bool,
    pub direction: Direction,
    /// Per-delivery properties: in practice the subscription identifier of
    /// the matching subscription (at most one: mosquitto refuses duplicates).
    pub properties: Properties,
}

/// No Local bit of `StoredSubscription::options`.
pub const SUB_OPT_NO_LOCAL: u8 = 0x04;
/// Retain As Published bit of `StoredSubscription::options`.
pub const SUB_OPT_RETAIN_AS_PUBLISHED: u8 = 0x08;

/// One SUB chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredSubscription {
    pub client_id: String,
    /// Topic filter (never `$share/...`: mosquitto does not save those).
    pub topic: String,
    /// Granted QoS.
    pub qos: u8,
    /// 0x04 No Local, 0x08 Retain As Published; Retain Handling is not kept.
    pub options: u8,
    /// Subscription identifier, 0 = none.
    pub identifier: u32,
}

impl StoredSubscription {
    pub fn no_local(&self) -> bool {
        self.options & SUB_OPT_NO_LOCAL != 0
    }
    pub fn retain_as_published(&self) -> bool {
        self.options & SUB_OPT_RETAIN_AS_PUBLISHED != 0
    }
}
