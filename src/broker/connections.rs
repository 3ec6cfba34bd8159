//! What the core knows about one network connection (not the socket: that
//! is `net`'s). A connection exists from accept to close; it is bound to a
//! session once its CONNECT is accepted.

use std::collections::HashMap;
use std::time::Instant;

use crate::codec::{ProtocolVersion, TopicName};

use super::ListenerId;
use super::subscriptions::SessionKey;

/// The network layer's identifier for a connection (its slab key).
pub type ConnId = usize;

#[derive(Debug)]
pub struct Conn {
    pub listener: ListenerId,
    /// `ip:port`, as mosquitto prints it.
    pub peer: String,
    pub session: Option<SessionKey>,
    pub version: Option<ProtocolVersion>,
    /// Effective keep alive in seconds (0 = none).
    pub keep_alive: u16,
    pub last_seen: Instant,
    pub opened_at: Instant,
    /// Inbound topic aliases (5.0), index = alias - 1.
    pub aliases_in: Vec<Option<TopicName>>,
    /// Distinguishes this connection from an earlier one with the same id.
    pub serial: u64,
    /// The TLS client certificate's identity, when the listener has one.
    pub identity: Option<crate::net::layer::PeerIdentity>,
    /// Outbound topic aliases (5.0): how many we may create for this client
    /// (min of its Topic Alias Maximum and `max_topic_alias_broker`), and
    /// those created so far.
    pub alias_limit: u16,
    pub aliases_out: HashMap<Box<str>, u16>,
    /// "exceeded its receive maximum" is logged once per connection.
    pub warned_receive_maximum: bool,
}

impl Conn {
    pub fn new(listener: ListenerId, peer: String, now: Instant, serial: u64) -> Conn {
        Conn {
            listener,
            peer,
            session: None,
            version: None,
            keep_alive: 0,
            last_seen: now,
            opened_at: now,
            aliases_in: Vec::new(),
            serial,
            identity: None,
            alias_limit: 0,
            aliases_out: HashMap::new(),
            warned_receive_maximum: false,
        }
    }

    /// The alias to send `topic` with: `(Some(n), true)` for a topic that
    /// already has alias n (sent with an empty topic), `(Some(n), false)`
    /// when alias n is created now, `(None, false)` once they are used up.
    pub fn outbound_alias(&mut self, topic: &str) -> (Option<u16>, bool) {
        if self.alias_limit == 0 {
            return (None, false);
        }
        if let Some(&alias) = self.aliases_out.get(topic) {
            return (Some(alias), true);
        }
        let used = self.aliases_out.len() as u16;
        if used < self.alias_limit {
            self.aliases_out.insert(topic.into(), used + 1);
            return (Some(used + 1), false);
        }
        (None, false)
    }

    /// The address without the port, for `New client connected from …`.
    pub fn peer_ip(&self) -> &str {
        match self.peer.rsplit_once(':') {
            Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']'),
            None => &self.peer,
        }
    }
}

/// Why a connection ended, as the network layer saw it or the core decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the socket without DISCONNECT.
    ClosedByPeer,
    /// A read or write failed.
    Io(String),
    Malformed,
    ProtocolError,
    PacketTooLarge,
    KeepAliveTimeout,
    TakenOver,
    /// A DISCONNECT packet was received.
    Disconnected,
    NotAuthorised,
    ServerShutdown,
    /// The reason was logged where it was decided.
    Quiet,
}
