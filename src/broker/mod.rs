//! The sans-IO broker core.
//!
//! `Broker` takes decoded packets, connection events and the current time,
//! and appends `Action`s (packets to send, connections to close) to a vector
//! the caller owns. It never touches a socket, a file or the clock, so every
//! MQTT behaviour is unit-tested here without a network.

pub mod bridge;
mod child_map;
mod connect;
pub mod connections;
mod debug_log;
mod deliver;
mod persistence;
mod publish;
pub mod retain_source;
pub mod retained;
pub mod session;
pub mod settings;
pub mod stats;
mod subscribe;
pub mod subscriptions;
pub mod sys_tree;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::codec::{
    Ack, Disconnect, OutgoingPublish, Packet, PacketId, Properties, ProtocolVersion, Qos, reason,
};
use crate::notice;

pub use connections::{CloseReason, ConnId};
use connections::{Conn, ConnTable};
use retained::RetainedStore;
use session::{OutState, Presence, Session};
pub use settings::{Access, AclCheck, BrokerSettings, ListenerSettings, PasswordCheck, Security};
use stats::Stats;
use subscriptions::{Match, SessionKey, SubscriptionTree};

/// Index into the broker's listener list (the order of `Config::listeners`).
pub type ListenerId = usize;

/// Something the network layer must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(ConnId, Outbound),
    /// Flush what was queued for the connection, then close it. The core has
    /// already forgotten the connection: `connection_lost` is not needed.
    Close(ConnId),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Publish(OutgoingPublish),
    /// PUBACK/PUBREC/PUBREL/PUBCOMP without properties: one per QoS 1/2
    /// message, so kept small and allocation-free.
    Ack(AckKind, PacketId, u8),
    /// Every other packet (rare enough to box).
    Packet(Box<Packet>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
}

impl Outbound {
    /// The packet to encode, for everything but PUBLISH.
    pub fn to_packet(&self) -> Option<std::borrow::Cow<'_, Packet>> {
        use std::borrow::Cow;
        match self {
            Outbound::Publish(_) => None,
            Outbound::Packet(p) => Some(Cow::Borrowed(p)),
            Outbound::Ack(kind, id, reason) => {
                let ack = Ack::with_reason(*id, *reason);
                Some(Cow::Owned(match kind {
                    AckKind::Puback => Packet::Puback(ack),
                    AckKind::Pubrec => Packet::Pubrec(ack),
                    AckKind::Pubrel => Packet::Pubrel(ack),
                    AckKind::Pubcomp => Packet::Pubcomp(ack),
                }))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Keep alive or CONNECT timeout of a connection.
    Conn(ConnId, u64),
    /// Session expiry or delayed will of an offline session.
    Session(SessionKey, u64),
}

pub struct Broker {
    settings: BrokerSettings,
    listeners: Vec<ListenerSettings>,
    conns: ConnTable,
    sessions: Slab<Session>,
    by_client_id: HashMap<Rc<str>, SessionKey, foldhash::fast::RandomState>,
    subs: SubscriptionTree,
    retained: RetainedStore,
    /// Publishers of retained messages, kept with `check_retain_source`.
    retain_sources: retain_source::RetainSources,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Scratch space reused by every routed message.
    matches: Vec<Match>,
    /// Connections whose unwritten packets reached `max_queued_messages`
    /// since the network layer last reported on them: it should write them
    /// before more input is handled (`take_output_pressure`).
    pressure: Vec<ConnId>,
    /// The time of the call being handled (like mosquitto's cached "now"):
    /// set at every entry point so delivery code needs no clock argument.
    now: Instant,
    /// The client id of the CONNECT being handled, for the log line of a
    /// refusal (2.0.13+ names the client; 2.0.11 printed `<unknown>`).
    connecting_id: Option<String>,
    sys: sys_tree::SysTree,
    serial: u64,
    rng: u64,
    /// The last listener: the local side of bridges (see `bridge.rs`).
    bridge_listener: ListenerId,
    /// The network layer's input and output buffers, as it last reported
    /// them (`set_io_buffered`), for `memory_limit`.
    io_buffered: u64,
    pub stats: Stats,
}

impl Broker {
    /// `seed` feeds generated client ids; pass something random.
    pub fn new(settings: BrokerSettings, listeners: Vec<ListenerSettings>, seed: u64) -> Broker {
        let mut listeners = listeners;
        let bridge_listener = listeners.len();
        listeners.push(ListenerSettings {
            port: 0,
            max_topic_alias: 0,
            max_topic_alias_broker: 0,
            security: Security {
                allow_anonymous: true,
                ..Security::default()
            },
            ..ListenerSettings::default()
        });
        Broker {
            bridge_listener,
            now: Instant::now(),
            connecting_id: None,
            sys: sys_tree::SysTree::new(settings.sys_interval),
            settings,
            listeners,
            conns: ConnTable::default(),
            sessions: Slab::new(),
            by_client_id: HashMap::default(),
            subs: SubscriptionTree::new(),
            retained: RetainedStore::new(),
            retain_sources: Default::default(),
            timers: BinaryHeap::new(),
            matches: Vec::new(),
            pressure: Vec::new(),
            serial: 0,
            rng: seed | 1,
            io_buffered: 0,
            stats: Stats::default(),
        }
    }

    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    /// A configured listener (never the internal one of bridges).
    pub fn listener(&self, id: ListenerId) -> Option<&ListenerSettings> {
        self.listeners
            .get(id)
            .filter(|_| id != self.bridge_listener)
    }

    /// Replaces the security of every listener (SIGHUP reload). Sessions keep
    /// their listener, so the next delivery is judged by the new rules.
    pub fn set_security(&mut self, security: Vec<Security>) {
        for (l, s) in self.listeners.iter_mut().zip(security) {
            l.security = s;
        }
    }

    pub fn retained(&self) -> &RetainedStore {
        &self.retained
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.count()
    }

    /// Records the TLS client certificate identity of a connection (before
    /// its CONNECT is handled), for `use_identity_as_username`.
    pub fn set_peer_identity(&mut self, conn: ConnId, identity: connections::PeerIdentity) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.set_identity(identity);
        }
    }

    /// Whether handling this CONNECT would run an expensive password check
    /// (argon2id not yet cached), so the network layer can spread such
    /// logins over loop turns.
    pub fn connect_is_expensive(&self, conn: ConnId, connect: &crate::codec::Connect) -> bool {
        let Some(listener) = self
            .conns
            .get(&conn)
            .and_then(|c| self.listeners.get(c.listener))
        else {
            return false;
        };
        match (&connect.username, &listener.security.passwords) {
            (Some(user), Some(p)) => p.is_expensive(user, connect.password.as_deref()),
            _ => false,
        }
    }

    /// Whether the core still considers `conn` open.
    pub fn has_connection(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The protocol version of a connection whose CONNECT was accepted.
    pub fn version_of(&self, conn: ConnId) -> Option<ProtocolVersion> {
        self.conns.get(&conn).and_then(|c| c.version)
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn random_u64(&mut self) -> u64 {
        // xorshift64*: client ids need to be unique, not unpredictable.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A new socket was accepted on `listener` from `peer` (`ip:port`).
    pub fn connection_opened(
        &mut self,
        conn: ConnId,
        listener: ListenerId,
        peer: std::net::SocketAddr,
        now: Instant,
    ) {
        self.now = now;
        let serial = self.next_serial();
        let port = self.listeners.get(listener).map(|l| l.port).unwrap_or(0);
        if self.settings.connection_messages {
            notice!(
                "New connection from {}:{} on port {port}.",
                peer.ip(),
                peer.port()
            );
        }
        self.conns
            .insert(conn, Conn::new(listener, peer, now, serial));
        self.timers.push(Reverse((
            now + self.settings.connect_timeout,
            Timer::Conn(conn, serial),
        )));
        self.stats.sockets_opened += 1;
    }

    /// The network layer lost the connection (peer closed, I/O error, or a
    /// packet it could not decode). Publishes the will where one is due.
    pub fn connection_lost(
        &mut self,
        conn: ConnId,
        reason: CloseReason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        self.drop_connection(conn, reason, now, out);
    }

    /// The network layer's report after writing to `conn`: `packets`
    /// packets (`bytes` bytes) it was given still wait for the socket. The
    /// count is what `max_queued_messages` limits for QoS 0 (mosquitto's
    /// `out_packet_count`); a retained catch-up waiting for room continues
    /// here, its messages appended to `out`.
    pub fn output_pending(
        &mut self,
        conn: ConnId,
        packets: u32,
        bytes: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.out_packets = packets;
        c.out_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        c.pressured = false;
        if c.has_retained() {
            self.continue_retained(conn, out);
        }
    }

    /// The network layer's report of the bytes its connections' buffers
    /// hold (partial input packets, output not yet written), once it has
    /// encoded every action it was given.
    pub fn set_io_buffered(&mut self, bytes: u64) {
        self.io_buffered = bytes;
        self.conns.unapplied_output = 0;
    }

    /// What `memory_limit` is compared with: the messages alive, the
    /// network layer's buffers, and the PUBLISHes it has not encoded yet.
    pub fn memory_held(&self) -> u64 {
        crate::memory::message_bytes() + self.io_buffered + self.conns.unapplied_output
    }

    /// Whether taking `more` bytes would go over `memory_limit`.
    fn over_memory_limit(&self, more: usize) -> bool {
        let limit = self.settings.memory_limit;
        limit > 0 && self.memory_held().saturating_add(more as u64) > limit
    }

    /// The network layer is about to buffer a packet of `size` bytes (its
    /// fixed header has arrived, the rest has not). Over `memory_limit` the
    /// connection is closed at once, as mosquitto refuses the allocation
    /// from the header, and `false` is returned.
    pub fn packet_arriving(
        &mut self,
        conn: ConnId,
        size: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        self.now = now;
        if !self.over_memory_limit(size) || !self.conns.contains_key(&conn) {
            return true;
        }
        // mosquitto's read of the packet fails: no DISCONNECT, 5.0 or not.
        self.close_silently(conn, CloseReason::OutOfMemory, now, out);
        false
    }

    /// mosquitto's answer to a message it cannot store: "Client X
    /// disconnected due to out of memory.", a 5.0 client told 0x80
    /// (unspecified error) first, the will published.
    fn out_of_memory(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Action>) {
        self.disconnect_with(
            conn,
            reason::v5::UNSPECIFIED_ERROR,
            CloseReason::OutOfMemory,
            now,
            out,
        );
    }

    /// Whether some connection's output reached `max_queued_messages`
    /// unwritten packets: the network layer should write it (and report
    /// with `output_pending`) before handling more input, or QoS 0 messages
    /// the socket would take at once get dropped.
    pub fn has_output_pressure(&self) -> bool {
        !self.pressure.is_empty()
    }

    /// The next connection to write because of output pressure.
    pub fn take_output_pressure(&mut self) -> Option<ConnId> {
        self.pressure.pop()
    }

    /// One decoded packet from `conn`.
    pub fn handle_packet(
        &mut self,
        conn: ConnId,
        packet: Packet,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let session = c.session;
        if session.is_some() {
            // (Before the CONNECT is accepted `last_seen` keeps the time
            // the connection opened: `arm_keep_alive` sets it.)
            c.last_seen = now;
        }
        self.stats.messages_received += 1;
        // mosquitto 2.0 logs no "Received CONNECT" line: the connection
        // line, the will and "Sending CONNACK" follow from the CONNECT.
        if log::log_enabled!(log::Level::Debug) && !matches!(packet, Packet::Connect(_)) {
            let client = session.map(|k| self.client_id_of(k)).unwrap_or_default();
            log::debug!("{}", debug_log::received(&client, &packet));
        }
        match (packet, session) {
            (Packet::Connect(connect), None) => {
                self.connecting_id = Some(connect.client_id.clone());
                self.handle_connect(conn, *connect, now, out);
                self.connecting_id = None;
            }
            (Packet::Connect(_), Some(key)) => {
                // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
                log::info!(
                    "Bad client {} sending multiple CONNECT messages.",
                    self.client_id_of(key)
                );
                // mosquitto closes without a DISCONNECT.
                self.close_silently(conn, CloseReason::ProtocolError, now, out);
            }
            (_, None) => self.protocol_error(conn, reason::v5::PROTOCOL_ERROR, now, out),
            (Packet::Publish(p), Some(s)) => self.handle_publish(conn, s, p, now, out),
            (Packet::Puback(a), Some(s)) => self.handle_puback(conn, s, a, now, out),
            (Packet::Pubrec(a), Some(s)) => self.handle_pubrec(conn, s, a, now, out),
            (Packet::Pubrel(a), Some(s)) => self.handle_pubrel(conn, s, a, out),
            (Packet::Pubcomp(a), Some(s)) => self.handle_pubcomp(conn, s, a, now, out),
            (Packet::Subscribe(sub), Some(s)) => self.handle_subscribe(conn, s, sub, out),
            (Packet::Unsubscribe(u), Some(s)) => self.handle_unsubscribe(conn, s, u, out),
            (Packet::Pingreq, Some(_)) => self.send(out, conn, Packet::Pingresp),
            (Packet::Disconnect(d), Some(s)) => self.handle_disconnect(conn, s, d, now, out),
            (Packet::Auth(_), Some(_)) => {
                // Without an authentication method in CONNECT, AUTH is a
                // protocol error [MQTT-4.12.0-1]; culex has no auth plugins.
                self.protocol_error(conn, reason::v5::PROTOCOL_ERROR, now, out);
            }
            // Packets only a server sends: mosquitto 2.0.11 closes on a
            // CONNACK and ignores the others.
            (Packet::Connack(_), Some(_)) => {
                self.close_silently(conn, CloseReason::ProtocolError, now, out);
            }
            (Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp, Some(_)) => {}
        }
    }

    /// The network layer could not decode what `conn` sent. v5 clients get a
    /// DISCONNECT with the reason first, as the standard asks.
    pub fn decode_failed(
        &mut self,
        conn: ConnId,
        error: &crate::codec::DecodeError,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        let reason_code = error.reason_code();
        let reason = match reason_code {
            reason::v5::PACKET_TOO_LARGE => CloseReason::PacketTooLarge,
            reason::v5::MALFORMED_PACKET => CloseReason::Malformed,
            _ => CloseReason::ProtocolError,
        };
        if error.sends_disconnect() {
            self.disconnect_with(conn, reason_code, reason, now, out);
        } else {
            self.close_silently(conn, reason, now, out);
        }
    }

    /// Closes without a DISCONNECT, where mosquitto does.
    fn close_silently(
        &mut self,
        conn: ConnId,
        reason: CloseReason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.drop_connection(conn, reason, now, out) {
            out.push(Action::Close(conn));
        }
    }

    /// Advances timers: keep alive, CONNECT timeout, session expiry, delayed
    /// wills. Call at least at `next_deadline()`.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.now = now;
        while let Some(Reverse((when, timer))) = self.timers.peek().copied() {
            if when > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(id, serial) => self.check_conn_timer(id, serial, now, out),
                Timer::Session(key, serial) => self.check_session_timer(key, serial, now, out),
            }
        }
        if self.sys_due(now) {
            self.update_sys(now, out);
        }
    }

    /// When `tick` next has work, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((when, _))| *when);
        match (timer, self.sys.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Server shutdown: every client that still has a will gets it
    /// published (as mosquitto does on SIGTERM), v5 clients are told 0x8B.
    pub fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.now = now;
        let conns: Vec<ConnId> = self.conns.ids().collect();
        for conn in conns {
            self.disconnect_with(
                conn,
                reason::v5::SERVER_SHUTTING_DOWN,
                CloseReason::ServerShutdown,
                now,
                out,
            );
        }
        let pending: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.will.is_some())
            .map(|(k, _)| k)
            .collect();
        for key in pending {
            self.publish_will(key, now, out);
        }
    }

    fn check_conn_timer(&mut self, id: ConnId, serial: u64, now: Instant, out: &mut Vec<Action>) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        if c.serial != serial {
            return;
        }
        if c.session.is_none() {
            // Never sent CONNECT in time.
            self.drop_connection(id, CloseReason::ProtocolError, now, out);
            out.push(Action::Close(id));
            return;
        }
        if c.keep_alive == 0 {
            return;
        }
        // One and a half keep alive periods [MQTT-3.1.2-22], to the
        // millisecond (mosquitto rounds down to whole seconds but checks only
        // every few seconds, so it never drops a client this early).
        let grace = keep_alive_grace(c.keep_alive);
        let deadline = c.last_seen + grace;
        if deadline <= now {
            self.disconnect_with(
                id,
                reason::v5::KEEP_ALIVE_TIMEOUT,
                CloseReason::KeepAliveTimeout,
                now,
                out,
            );
        } else {
            self.timers
                .push(Reverse((deadline, Timer::Conn(id, serial))));
        }
    }

    /// Starts the keep alive of a connection whose CONNECT was accepted
    /// (once per connection).
    fn arm_keep_alive(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // Until now `last_seen` held the time the connection opened.
        let opened_at = std::mem::replace(&mut c.last_seen, now);
        if c.keep_alive > 0 {
            let grace = keep_alive_grace(c.keep_alive);
            // The CONNECT-timeout entry of this connection is still queued
            // and re-arms the keep alive check when it fires; a second entry
            // is only needed if the keep alive runs out before it does.
            // (One heap entry per connection instead of two.)
            let connect_deadline = opened_at + self.settings.connect_timeout;
            if now + grace < connect_deadline {
                self.timers
                    .push(Reverse((now + grace, Timer::Conn(conn, c.serial))));
            }
        }
    }

    fn send(&self, out: &mut Vec<Action>, conn: ConnId, packet: Packet) {
        // The CONNACK and SUBACK of culex's own bridge answer packets the
        // core made itself (`bridge.rs`): there is nobody to send them to.
        if matches!(packet, Packet::Connack(_) | Packet::Suback(_))
            && self
                .conns
                .get(&conn)
                .is_some_and(|c| c.listener == self.bridge_listener)
        {
            return;
        }
        if log::log_enabled!(log::Level::Debug) {
            let client = self
                .conns
                .get(&conn)
                .and_then(|c| c.session)
                .map(|k| self.client_id_of(k))
                .or_else(|| self.connecting_id.clone())
                .unwrap_or_default();
            log::debug!("{}", debug_log::sending(&client, &packet));
        }
        let small = match &packet {
            Packet::Puback(a) if a.properties.is_empty() => Some((AckKind::Puback, a)),
            Packet::Pubrec(a) if a.properties.is_empty() => Some((AckKind::Pubrec, a)),
            Packet::Pubrel(a) if a.properties.is_empty() => Some((AckKind::Pubrel, a)),
            Packet::Pubcomp(a) if a.properties.is_empty() => Some((AckKind::Pubcomp, a)),
            _ => None,
        };
        let outbound = match small {
            Some((kind, a)) => Outbound::Ack(kind, a.packet_id, a.reason),
            None => Outbound::Packet(Box::new(packet)),
        };
        out.push(Action::Send(conn, outbound));
    }

    /// Sends a v5 DISCONNECT with `code` (3.x clients just lose the socket),
    /// then closes.
    fn disconnect_with(
        &mut self,
        conn: ConnId,
        code: u8,
        reason: CloseReason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.version_of(conn) == Some(ProtocolVersion::V5) {
            self.send(
                out,
                conn,
                Packet::Disconnect(Disconnect {
                    reason: code,
                    properties: Properties::default(),
                }),
            );
        }
        if self.drop_connection(conn, reason, now, out) {
            out.push(Action::Close(conn));
        }
    }

    fn protocol_error(&mut self, conn: ConnId, code: u8, now: Instant, out: &mut Vec<Action>) {
        self.disconnect_with(conn, code, CloseReason::ProtocolError, now, out);
    }

    /// Forgets a connection, logs why, and detaches its session (publishing
    /// the will, or destroying a non-durable session). Returns `false` if the
    /// connection was already gone.
    fn drop_connection(
        &mut self,
        conn: ConnId,
        reason: CloseReason,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(c) = self.conns.remove(&conn) else {
            return false;
        };
        let client = c
            .session
            .and_then(|k| self.sessions.get(k))
            .map(|s| s.client_id.to_string())
            .or_else(|| self.connecting_id.clone().filter(|id| !id.is_empty()))
            .unwrap_or_else(|| "<unknown>".to_string());
        self.log_close(&client, &reason);
        let Some(key) = c.session else {
            return true;
        };
        let Some(session) = self.sessions.get_mut(key) else {
            return true;
        };
        if session.conn() != Some(conn) {
            return true;
        }
        session.presence = Presence::Offline(Some(now));
        session.serial = self.serial + 1;
        self.serial += 1;
        let serial = session.serial;
        let expiry = session.expiry_interval;
        let will_delay = session.will.as_ref().map(|w| w.delay);
        // A will is due unless the client said DISCONNECT (0x04 keeps it:
        // handled before we get here by leaving `will` set).
        match will_delay {
            Some(0) => self.publish_will(key, now, out),
            // mosquitto 2.0.11 waits out the will delay even when the session
            // ends at once (expiry 0); the session goes with the will then
            // (07-will-delay).
            Some(delay) => {
                let wait = if expiry == 0 {
                    delay
                } else {
                    delay.min(expiry)
                };
                let when = now + Duration::from_secs(u64::from(wait));
                self.timers
                    .push(Reverse((when, Timer::Session(key, serial))));
                if expiry == 0 {
                    return true;
                }
            }
            None => {}
        }
        if expiry == 0 {
            self.destroy_session(key, now, out);
        } else if let Some(limit) = self.session_lifetime(key) {
            self.timers
                .push(Reverse((now + limit, Timer::Session(key, serial))));
        }
        true
    }

    /// How long an offline session lives: its expiry interval, capped by
    /// `persistent_client_expiration`. `None` = forever.
    fn session_lifetime(&self, key: SessionKey) -> Option<Duration> {
        let s = self.sessions.get(key)?;
        let own = (s.expiry_interval != session::NEVER)
            .then(|| Duration::from_secs(u64::from(s.expiry_interval)));
        match (own, self.settings.persistent_client_expiration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn check_session_timer(
        &mut self,
        key: SessionKey,
        serial: u64,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get(key) else {
            return;
        };
        if s.serial != serial || s.conn().is_some() {
            return;
        }
        let since = s
            .disconnected_at()
            .map(|t| now.saturating_duration_since(t));
        if let (Some(w), Some(since)) = (&s.will, since)
            && since >= Duration::from_secs(u64::from(w.delay))
        {
            self.publish_will(key, now, out);
        }
        if let (Some(limit), Some(since)) = (self.session_lifetime(key), since)
            && since >= limit
        {
            if self
                .settings
                .persistent_client_expiration
                .is_some_and(|p| p <= limit)
            {
                let id = self
                    .sessions
                    .get(key)
                    .map(|s| s.client_id.to_string())
                    .unwrap_or_default();
                notice!("Expiring client {id} due to timeout.");
            }
            self.publish_will(key, now, out);
            self.stats.clients_expired += 1;
            self.destroy_session(key, now, out);
        }
    }

    fn destroy_session(&mut self, key: SessionKey, _now: Instant, _out: &mut Vec<Action>) {
        if !self.sessions.contains(key) {
            return;
        }
        let session = self.sessions.remove(key);
        for filter in session.subscriptions.keys() {
            self.subs.unsubscribe(filter, key);
        }
        if self.by_client_id.get(&session.client_id) == Some(&key) {
            self.by_client_id.remove(&session.client_id);
        }
    }

    fn log_close(&self, client: &str, reason: &CloseReason) {
        if !self.settings.connection_messages {
            return;
        }
        match reason {
            CloseReason::ClosedByPeer => notice!("Client {client} closed its connection."),
            CloseReason::Io(e) => notice!("Bad socket read/write on client {client}: {e}"),
            // mosquitto's read fails with EPROTO.
            CloseReason::TlsFailed => notice!("Client {client} disconnected: Protocol error."),
            CloseReason::Malformed => {
                notice!("Client {client} disconnected due to malformed packet.")
            }
            CloseReason::ProtocolError => {
                notice!("Client {client} disconnected due to protocol error.")
            }
            CloseReason::PacketTooLarge => {
                notice!("Client {client} disconnected due to oversize packet.")
            }
            CloseReason::OutOfMemory => {
                notice!("Client {client} disconnected due to out of memory.")
            }
            CloseReason::KeepAliveTimeout => {
                notice!("Client {client} has exceeded timeout, disconnecting.")
            }
            CloseReason::Disconnected => notice!("Client {client} disconnected."),
            CloseReason::NotAuthorised => notice!("Client {client} disconnected, not authorised."),
            // Logged by the takeover itself (at error level, as mosquitto),
            // or already explained by the caller.
            CloseReason::TakenOver | CloseReason::ServerShutdown | CloseReason::Quiet => {}
        }
    }

    fn handle_disconnect(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        d: Disconnect,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if let Some(s) = self.sessions.get_mut(key) {
            // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; 0x04
            // asks for it to be published.
            if d.reason != reason::v5::DISCONNECT_WITH_WILL {
                s.will = None;
            }
            if let Some(new_expiry) = d.properties.session_expiry_interval {
                if s.expiry_interval == 0 && new_expiry != 0 {
                    // [MQTT-3.14.2-2]
                    self.protocol_error(conn, reason::v5::PROTOCOL_ERROR, now, out);
                    return;
                }
                s.expiry_interval = new_expiry;
            }
        }
        if self.drop_connection(conn, CloseReason::Disconnected, now, out) {
            out.push(Action::Close(conn));
        }
    }

    /// An acknowledgement that names an in-flight message of another QoS,
    /// or a PUBCOMP before its PUBREC, is a protocol error: mosquitto closes
    /// the connection without a DISCONNECT. One naming no message is ignored.
    fn ack_mismatch(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Action>) {
        self.close_silently(conn, CloseReason::ProtocolError, now, out);
    }

    fn handle_puback(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        ack: Ack,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(i) = s.inflight_position(ack.packet_id) else {
            return;
        };
        if s.inflight()[i].delivery.qos != Qos::AtLeastOnce {
            return self.ack_mismatch(conn, now, out);
        }
        self.outbound_done(key, i, out);
    }

    /// The in-flight message at `i` is acknowledged: it leaves the window,
    /// which the queue fills again.
    fn outbound_done(&mut self, key: SessionKey, i: usize, out: &mut Vec<Action>) {
        if let Some(flow) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.existing_flow_mut())
        {
            flow.inflight.remove(i);
            self.stats.changes += 1;
            self.drain_queue(key, out);
        }
    }

    fn handle_pubrec(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        ack: Ack,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let position = s.inflight_position(ack.packet_id);
        if let Some(i) = position
            && s.inflight()[i].delivery.qos != Qos::ExactlyOnce
        {
            return self.ack_mismatch(conn, now, out);
        }
        match (position, s.existing_flow_mut()) {
            (Some(i), Some(flow)) => {
                if ack.reason >= 0x80 {
                    // The client refused the message: the flow ends here.
                    flow.inflight.remove(i);
                    self.drain_queue(key, out);
                    return;
                }
                // A first or repeated PUBREC: (re)send the PUBREL.
                flow.inflight[i].state = OutState::AwaitPubcomp;
                self.send(out, conn, Packet::Pubrel(Ack::new(ack.packet_id)));
            }
            _ => {
                // mosquitto warns and releases it anyway.
                log::warn!(
                    "Warning: Received PUBREC from {} for an unknown packet identifier {}.",
                    s.client_id,
                    ack.packet_id.get()
                );
                self.send(out, conn, Packet::Pubrel(Ack::new(ack.packet_id)));
            }
        }
    }

    fn handle_pubrel(&mut self, conn: ConnId, key: SessionKey, ack: Ack, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let id = ack.packet_id.get();
        let position = s.awaiting_pubrel().iter().position(|a| a.packet_id == id);
        let mut released = None;
        if let (Some(i), Some(flow)) = (position, s.existing_flow_mut()) {
            released = flow.awaiting_pubrel.swap_remove(i).message;
            s.release_idle_flow();
            self.stats.changes += 1;
        }
        if let Some(message) = released {
            self.publish_message(&message, key, out);
        }
        // mosquitto answers an unknown PUBREL with a plain PUBCOMP too: it
        // is most likely a repeat after a reconnect (03-publish-c2b-disconnect-qos2).
        self.send(out, conn, Packet::Pubcomp(Ack::new(ack.packet_id)));
    }

    fn handle_pubcomp(
        &mut self,
        conn: ConnId,
        key: SessionKey,
        ack: Ack,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(i) = s.inflight_position(ack.packet_id) else {
            return;
        };
        let inflight = &s.inflight()[i];
        if inflight.delivery.qos != Qos::ExactlyOnce || inflight.state != OutState::AwaitPubcomp {
            return self.ack_mismatch(conn, now, out);
        }
        self.outbound_done(key, i, out);
    }

    /// Packet ids in use towards a session, for tests and persistence.
    pub fn inflight_ids(&self, client_id: &str) -> Vec<PacketId> {
        self.by_client_id
            .get(client_id)
            .and_then(|&k| self.sessions.get(k))
            .map(|s| s.inflight().iter().map(|i| i.packet_id).collect())
            .unwrap_or_default()
    }
}

/// How long a client may stay silent: 1.5 × its keep alive.
fn keep_alive_grace(keep_alive: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive) * 1500)
}

#[cfg(test)]
mod tests;
