//! What the core knows about one network connection (not the socket: that
//! is `net`'s). A connection exists from accept to close; it is bound to a
//! session once its CONNECT is accepted.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Instant;

use crate::codec::{ProtocolVersion, TopicName};

use super::ListenerId;
use super::session::Delivery;
use super::subscriptions::SessionKey;

/// The network layer's identifier for a connection (its slab key).
pub type ConnId = usize;

/// The peer's address, for log lines. A `SocketAddr` takes 32 bytes in
/// every connection; an IPv4 peer fits in 8 and an IPv6 one is boxed.
#[derive(Debug)]
enum Peer {
    V4(Ipv4Addr, u16),
    V6(Box<SocketAddrV6>),
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        match addr {
            SocketAddr::V4(a) => Peer::V4(*a.ip(), a.port()),
            SocketAddr::V6(a) => Peer::V6(Box::new(a)),
        }
    }
}

#[derive(Debug)]
pub struct Conn {
    pub listener: ListenerId,
    peer: Peer,
    pub session: Option<SessionKey>,
    /// When the last packet arrived; before the CONNECT is accepted, when
    /// the connection opened (the CONNECT timeout counts from there, see
    /// `Broker::arm_keep_alive`). One field for both saves 16 bytes.
    pub last_seen: Instant,
    /// Distinguishes this connection from an earlier one with the same id.
    pub serial: u64,
    /// Effective keep alive in seconds (0 = none).
    pub keep_alive: u16,
    pub version: Option<ProtocolVersion>,
    /// "exceeded its receive maximum" is logged once per connection.
    pub warned_receive_maximum: bool,
    /// A mosquitto bridge (protocol level bit 0x80) or culex's own bridge:
    /// its subscriptions never echo what it published itself.
    pub is_bridge: bool,
    /// Packets sent to this connection that have not completely left for
    /// its socket, and their bytes: what the network layer last reported
    /// (`Broker::output_pending`) plus the PUBLISHes sent since. The count
    /// is mosquitto's `out_packet_count`, which `max_queued_messages`
    /// limits for QoS 0; the bytes pace a retained catch-up.
    pub out_packets: u32,
    pub out_bytes: u32,
    /// Reported as under output pressure since the last report.
    pub pressured: bool,
    /// What few connections need, allocated on first use so an idle 3.1.1
    /// connection stays small.
    extra: Option<Box<ConnExtra>>,
}

#[derive(Debug, Default)]
struct ConnExtra {
    /// Inbound topic aliases (5.0), index = alias - 1, grown on use.
    aliases_in: Vec<Option<TopicName>>,
    /// Outbound topic aliases (5.0): how many we may create for this client
    /// (min of its Topic Alias Maximum and `max_topic_alias_broker`), and
    /// those created so far.
    alias_limit: u16,
    aliases_out: HashMap<Box<str>, u16>,
    /// The TLS client certificate's identity, when the listener has one.
    identity: Option<PeerIdentity>,
    /// Retained QoS 0 messages of a SUBSCRIBE not sent yet: they go out as
    /// the socket drains (`Broker::continue_retained`), in order.
    retained: VecDeque<Delivery>,
}

impl Conn {
    pub fn new(listener: ListenerId, peer: SocketAddr, now: Instant, serial: u64) -> Conn {
        Conn {
            listener,
            peer: peer.into(),
            session: None,
            last_seen: now,
            serial,
            keep_alive: 0,
            version: None,
            warned_receive_maximum: false,
            is_bridge: false,
            out_packets: 0,
            out_bytes: 0,
            pressured: false,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut ConnExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// `ip:port` as mosquitto prints peers (IPv6 without brackets).
    pub fn peer_text(&self) -> String {
        match &self.peer {
            Peer::V4(ip, port) => format!("{ip}:{port}"),
            Peer::V6(addr) => format!("{}:{}", addr.ip(), addr.port()),
        }
    }

    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.extra.as_ref().and_then(|e| e.identity.as_ref())
    }

    pub fn set_identity(&mut self, identity: PeerIdentity) {
        self.extra().identity = Some(identity);
    }

    /// Retained messages wait to be sent (a catch-up is under way).
    pub fn has_retained(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.retained.is_empty())
    }

    /// Adds a retained message to the catch-up, behind those waiting.
    pub fn push_retained(&mut self, delivery: Delivery) {
        self.extra().retained.push_back(delivery);
    }

    /// The next retained message of the catch-up; its memory goes with the
    /// last one.
    pub fn pop_retained(&mut self) -> Option<Delivery> {
        let e = self.extra.as_mut()?;
        let next = e.retained.pop_front();
        if e.retained.is_empty() && e.retained.capacity() > 0 {
            e.retained = VecDeque::new();
        }
        next
    }

    /// A message of `payload` bytes on `topic` was sent (the size is an
    /// estimate: the network layer's next report has the exact figure).
    pub fn sent_publish(&mut self, topic: usize, payload: usize) {
        self.out_packets = self.out_packets.saturating_add(1);
        let size = u32::try_from(payload + topic + 8).unwrap_or(u32::MAX);
        self.out_bytes = self.out_bytes.saturating_add(size);
    }

    pub fn set_alias_limit(&mut self, limit: u16) {
        if limit > 0 || self.extra.is_some() {
            self.extra().alias_limit = limit;
        }
    }

    /// The topic an inbound alias stands for.
    pub fn alias_in(&self, alias: u16) -> Option<&TopicName> {
        let e = self.extra.as_ref()?;
        e.aliases_in
            .get(usize::from(alias).checked_sub(1)?)?
            .as_ref()
    }

    pub fn set_alias_in(&mut self, alias: u16, topic: TopicName) {
        let Some(slot) = usize::from(alias).checked_sub(1) else {
            return;
        };
        let e = self.extra();
        if e.aliases_in.len() <= slot {
            e.aliases_in.resize(slot + 1, None);
        }
        e.aliases_in[slot] = Some(topic);
    }

    /// The alias to send `topic` with: `(Some(n), true)` for a topic that
    /// already has alias n (sent with an empty topic), `(Some(n), false)`
    /// when alias n is created now, `(None, false)` once they are used up.
    pub fn outbound_alias(&mut self, topic: &str) -> (Option<u16>, bool) {
        let Some(e) = self.extra.as_mut() else {
            return (None, false);
        };
        if e.alias_limit == 0 {
            return (None, false);
        }
        if let Some(&alias) = e.aliases_out.get(topic) {
            return (Some(alias), true);
        }
        let used = e.aliases_out.len() as u16;
        if used < e.alias_limit {
            e.aliases_out.insert(topic.into(), used + 1);
            return (Some(used + 1), false);
        }
        (None, false)
    }
}

/// Why a connection ended, as the network layer saw it or the core decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the socket without DISCONNECT.
    ClosedByPeer,
    /// A read or write failed.
    Io(String),
    /// The TLS layer failed (handshake, certificate, record); OpenSSL's
    /// reasons were logged by the network layer.
    TlsFailed,
    Malformed,
    ProtocolError,
    PacketTooLarge,
    KeepAliveTimeout,
    /// Over `memory_limit`: its packet was refused.
    OutOfMemory,
    TakenOver,
    /// A DISCONNECT packet was received.
    Disconnected,
    NotAuthorised,
    ServerShutdown,
    /// The reason was logged where it was decided.
    Quiet,
}

/// The core's connections, indexed by the network layer's slab keys (dense
/// and reused), so a connection costs one slot, not a hash map entry.
#[derive(Debug, Default)]
pub struct ConnTable {
    slots: Vec<Option<Conn>>,
    len: usize,
    /// Bytes of the PUBLISHes handed to the network layer since it last
    /// reported its buffers (`Broker::set_io_buffered`): about what they
    /// add to its output once encoded, for `memory_limit`.
    pub unapplied_output: u64,
}

impl ConnTable {
    pub fn get(&self, id: &ConnId) -> Option<&Conn> {
        self.slots.get(*id)?.as_ref()
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        self.slots.get_mut(*id)?.as_mut()
    }

    pub fn contains_key(&self, id: &ConnId) -> bool {
        self.get(id).is_some()
    }

    pub fn insert(&mut self, id: ConnId, conn: Conn) {
        if self.slots.len() <= id {
            self.slots.resize_with(id + 1, || None);
        }
        if self.slots[id].replace(conn).is_none() {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        let removed = self.slots.get_mut(*id)?.take();
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| i)
    }
}

/// Who the TLS layer says the client is (the network layer reads it; the
/// core decides what it means for the username).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// The client's certificate.
    Certificate {
        /// The subject's first Common Name, when it is usable as a username
        /// (UTF-8 by mosquitto's rules, no NUL).
        common_name: Option<String>,
        /// The whole subject as OpenSSL's `X509_NAME_print_ex(...,
        /// XN_FLAG_RFC2253)` prints it, e.g. `CN=dev1,O=Home`.
        subject: Option<String>,
    },
    /// The identity a TLS-PSK client presented (its key matched).
    Psk { identity: String },
}
