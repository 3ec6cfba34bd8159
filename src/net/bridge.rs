//! Bridges in the event loop: each configured bridge owns at most one
//! outgoing socket in the slab. Until the remote's CONNACK the loop speaks
//! for it (CONNECT, keep alive); from then on the core sees that socket as
//! the bridge's local client (`broker::bridge`), and the loop only maps
//! topics (`crate::bridge`) and drops what the core answers its synthetic
//! CONNECT and SUBSCRIBE with.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::DNS_BASE;
use super::dns::LookupError;
use super::dns_lookup::{Lookup, Progress};
use super::layer::{Layer, LayerError};
use super::stream::Stream;
use super::tls::{BridgeTlsContext, TlsLayer};
use super::{Connection, EventLoop, Layered, listen};
use crate::bridge::{self as link, Backoff, KeepAlive, KeepAliveAction};
use crate::broker::bridge::BridgeLocal;
use crate::broker::{CloseReason, ConnId, Outbound};
use crate::codec::{self, Message, Packet, TopicName, reason};
use crate::config::bridge::{Bridge, StartType};

/// Which bridge a socket belongs to: 4 bytes, and an `Option` of it too,
/// so plain connections pay nothing for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct BridgeIndex(std::num::NonZeroU32);

impl BridgeIndex {
    fn new(i: usize) -> BridgeIndex {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        BridgeIndex(std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MAX))
    }

    pub fn get(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// One configured bridge and where it stands.
pub(super) struct BridgeRun {
    pub config: Bridge,
    /// Built at start-up when the bridge uses TLS; each attempt starts a
    /// session from it. Never plaintext when this is set.
    tls: Option<BridgeTlsContext>,
    state: State,
    address: usize,
    backoff: Backoff,
    /// The first attempt was made (the initial local `0` is published then).
    started: bool,
    /// Cleared when the remote refused protocol level | 0x80.
    try_private: bool,
    /// The remote takes retained messages (a 5.0 CONNACK may say not).
    remote_retain: bool,
    /// The protocol spoken: `bridge_protocol_version`, until a remote
    /// answers a 5.0 CONNECT as a 3.x broker does.
    version: codec::ProtocolVersion,
    /// `round_robin false` on a later address: a TCP connect to the
    /// primary address (never registered with the loop; checked on the
    /// timer), and when to start or check the next one.
    probe: Option<(mio::net::TcpStream, Instant)>,
    probe_at: Option<Instant>,
}

enum State {
    /// No socket; the next attempt at `at` (`None`: never again, or for a
    /// lazy bridge: once `threshold` messages wait for the remote).
    Waiting { at: Option<Instant> },
    /// The remote's host name is being looked up in DNS.
    Resolving { lookup: Box<Lookup>, port: u16 },
    /// TCP connect in progress, or CONNECT sent; given up at `deadline`.
    Connecting {
        conn: ConnId,
        deadline: Instant,
        connect_sent: bool,
    },
    Up {
        conn: ConnId,
        keepalive: KeepAlive,
        /// The last PUBLISH either way (a lazy bridge's idle timeout).
        last_message: Instant,
    },
}

impl BridgeRun {
    pub fn new(config: Bridge, tls: Option<BridgeTlsContext>, seed: u64) -> BridgeRun {
        let lazy = config.start_type == StartType::Lazy;
        let version = config.protocol_version;
        BridgeRun {
            backoff: Backoff::new(config.restart_timeout, seed),
            tls,
            try_private: config.try_private,
            config,
            // A lazy bridge waits for messages before it connects.
            state: State::Waiting {
                at: (!lazy).then(Instant::now),
            },
            address: 0,
            started: false,
            remote_retain: true,
            version,
            probe: None,
            probe_at: None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let state = self.state_deadline();
        match (state, self.probe_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn state_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting { at } => *at,
            State::Resolving { lookup, .. } => Some(lookup.deadline()),
            State::Connecting { deadline, .. } => Some(*deadline),
            State::Up {
                keepalive,
                last_message,
                ..
            } => Some(match self.idle_timeout() {
                Some(idle) => keepalive.deadline().min(*last_message + idle),
                None => keepalive.deadline(),
            }),
        }
    }

    /// A lazy bridge's `idle_timeout`.
    fn idle_timeout(&self) -> Option<Duration> {
        (self.config.start_type == StartType::Lazy)
            .then(|| Duration::from_secs(u64::from(self.config.idle_timeout)))
    }

    /// The address of the current (or next) attempt.
    fn address(&self) -> &crate::config::bridge::BridgeAddress {
        &self.config.addresses[self.address % self.config.addresses.len()]
    }

    fn local_state_topic(&self) -> Option<TopicName> {
        self.config
            .notifications
            .then(|| self.config.notification_topic.clone())
    }
}

/// The 3.x CONNACK refusals as mosquitto logs them.
fn refusal_text(version: codec::ProtocolVersion, code: u8) -> String {
    if version.is_v5() {
        return match code {
            reason::v5::RETAIN_NOT_SUPPORTED => "retain not available (will retry)".into(),
            reason::v5::QOS_NOT_SUPPORTED => "QoS not supported (will retry)".into(),
            c => format!("reason code {c}"),
        };
    }
    match code {
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "broker unavailable",
        4 => "bad user name or password",
        5 => "not authorised",
        _ => "unknown reason",
    }
    .into()
}

impl EventLoop {
    /// The bridges to run, each with its TLS client configuration if it
    /// uses TLS (`tls::bridge_client_context`); they start on the first loop
    /// turn.
    pub fn set_bridges(&mut self, bridges: Vec<(Bridge, Option<BridgeTlsContext>)>) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let now = Instant::now();
        for (b, _) in &bridges {
            let subscriptions = link::local_subscriptions(b);
            self.broker
                .bridge_prepare(&local_side(b, &subscriptions), now);
        }
        self.bridges = bridges
            .into_iter()
            .enumerate()
            .map(|(i, (b, tls))| BridgeRun::new(b, tls, seed.wrapping_add(i as u64)))
            .collect();
    }

    pub(super) fn bridge_deadline(&self) -> Option<Instant> {
        self.bridges.iter().filter_map(BridgeRun::deadline).min()
    }

    /// Timed bridge work: attempts due, CONNACKs overdue, keep alive.
    pub(super) fn bridge_tick(&mut self, now: Instant) {
        for i in 0..self.bridges.len() {
            if self.bridges[i].probe_at.is_some_and(|at| now >= at) {
                self.bridge_probe_primary(i, now);
            }
            let lazy = self.bridges[i].config.start_type == StartType::Lazy;
            let idle = self.bridges[i].idle_timeout();
            // A lazy bridge's queue: what starts it, and what keeps it up.
            let (wanted, busy) = if lazy {
                let id = &self.bridges[i].config.local_clientid;
                (
                    self.lazy_threshold_reached(i),
                    self.broker.has_messages_for(id),
                )
            } else {
                (true, true)
            };
            let b = &mut self.bridges[i];
            match &mut b.state {
                State::Waiting { at: Some(at) } if now >= *at => {
                    if wanted {
                        self.bridge_attempt(i, now);
                    } else {
                        self.bridges[i].state = State::Waiting { at: None };
                    }
                }
                State::Waiting { at: None } if lazy && wanted => {
                    self.bridge_attempt(i, now);
                }
                State::Up { last_message, .. }
                    if idle.is_some_and(|d| now >= *last_message + d) && busy =>
                {
                    // Messages still in flight or queued count as activity.
                    *last_message = now;
                }
                State::Up {
                    conn, last_message, ..
                } if idle.is_some_and(|d| now >= *last_message + d) => {
                    let conn = *conn;
                    crate::notice!(
                        "Bridge connection {} has exceeded idle timeout, disconnecting.",
                        self.bridges[i].config.local_clientid
                    );
                    self.lost(conn, CloseReason::Quiet, now);
                    // Stopped on purpose: wait for messages again.
                    self.bridges[i].state = State::Waiting { at: None };
                }
                State::Resolving { lookup, .. } if now >= lookup.deadline() => {
                    let progress = lookup.tick(self.poll.registry(), now);
                    self.bridge_resolved(i, progress, now);
                }
                State::Connecting { conn, deadline, .. } if now >= *deadline => {
                    let conn = *conn;
                    let reason = CloseReason::Io("Connection timed out".into());
                    self.lost(conn, reason, now);
                }
                State::Up {
                    conn, keepalive, ..
                } => match keepalive.poll(now) {
                    KeepAliveAction::Nothing => {}
                    KeepAliveAction::SendPing => {
                        let conn = *conn;
                        self.bridge_send(conn, &Packet::Pingreq);
                    }
                    KeepAliveAction::GiveUp => {
                        let conn = *conn;
                        self.lost(conn, CloseReason::KeepAliveTimeout, now);
                    }
                },
                _ => {}
            }
        }
    }

    /// Opens the socket to the current address.
    fn bridge_attempt(&mut self, i: usize, now: Instant) {
        let b = &mut self.bridges[i];
        if !b.started {
            b.started = true;
            if let Some(topic) = b.local_state_topic() {
                self.broker
                    .bridge_state(&topic, false, None, now, &mut self.actions);
            }
        }
        let b = &mut self.bridges[i];
        let address = b.address().clone();
        // mosquitto renews the local subscriptions on every attempt, and
        // Debian's build (asynchronous DNS) connects in two logged steps.
        for (filter, _) in link::local_subscriptions(&b.config) {
            log::debug!(
                "Bridge {} doing local SUBSCRIBE on topic {filter}",
                b.config.local_clientid
            );
        }
        crate::notice!("Connecting bridge (step 1) {} ({address})", b.config.name);
        // Numeric, /etc/hosts or localhost at once; DNS through the loop.
        if let Some(ip) = super::resolve::resolve(&address.host)
            .ok()
            .and_then(|ips| ips.into_iter().next())
        {
            return self.bridge_connect(i, SocketAddr::new(ip, address.port), now);
        }
        let conf = super::dns::ResolvConf::load();
        let token = Token(DNS_BASE - i);
        match Lookup::start(&address.host, conf, self.poll.registry(), token, now) {
            Ok(lookup) => {
                self.bridges[i].state = State::Resolving {
                    lookup: Box::new(lookup),
                    port: address.port,
                };
            }
            Err(e) => {
                log::error!(
                    "Error creating bridge: Unable to resolve bridge address {}: {e}.",
                    address.host
                );
                self.bridge_retry(i, now);
            }
        }
    }

    /// An event on bridge `i`'s DNS socket.
    pub(super) fn bridge_dns_event(&mut self, i: usize, now: Instant) {
        if let Some(State::Resolving { lookup, .. }) = self.bridges.get_mut(i).map(|b| &mut b.state)
        {
            let progress = lookup.readable(self.poll.registry(), now);
            self.bridge_resolved(i, progress, now);
        }
    }

    /// A DNS lookup ended: connect to the first address, or try later.
    fn bridge_resolved(&mut self, i: usize, progress: Progress, now: Instant) {
        let Progress::Done(result) = progress else {
            return;
        };
        let b = &mut self.bridges[i];
        let State::Resolving { lookup, port } = &mut b.state else {
            return;
        };
        lookup.close(self.poll.registry());
        let port = *port;
        let host = &b.address().host;
        match result {
            Ok(ips) if !ips.is_empty() => {
                self.bridge_connect(i, SocketAddr::new(ips[0], port), now)
            }
            Ok(_) => {
                log::error!(
                    "Error creating bridge: Unable to resolve bridge address {host}: host has no address."
                );
                self.bridge_retry(i, now);
            }
            Err(e) => {
                log::error!("Error creating bridge: Unable to resolve bridge address {host}: {e}.");
                self.bridge_retry(i, now);
            }
        }
    }

    /// Opens the socket to `addr`.
    fn bridge_connect(&mut self, i: usize, addr: SocketAddr, now: Instant) {
        let b = &mut self.bridges[i];
        crate::notice!(
            "Connecting bridge (step 2) {} ({})",
            b.config.name,
            b.address()
        );
        // The name the remote's certificate must carry (and SNI).
        let host = b.address().host.clone();
        let stream = match open(addr, &b.config) {
            Ok(s) => s,
            Err(e) => {
                log::error!("Error creating bridge: {e}.");
                self.bridge_retry(i, now);
                return;
            }
        };
        // The TLS session exists before the socket is registered, so no
        // byte can reach the remote outside it.
        let layered = match &b.tls {
            None => None,
            Some(context) => match TlsLayer::client(context, &host) {
                Ok(layer) => {
                    let layers: Vec<Box<dyn Layer>> = vec![Box::new(layer)];
                    Some(Box::new(Layered {
                        layers,
                        staged: Vec::new(),
                    }))
                }
                Err(e) => {
                    log::error!("Error creating bridge: {e}.");
                    self.bridge_retry(i, now);
                    return;
                }
            },
        };
        let b = &self.bridges[i];
        let version = b.version;
        let keepalive = Duration::from_secs(u64::from(b.config.keepalive));
        let entry = self.conns.vacant_entry();
        let id = entry.key();
        let mut conn = Connection {
            stream: Stream::Tcp(stream),
            buffers: None,
            version: Some(version),
            closing: false,
            writable_registered: true,
            listener_index: u32::MAX,
            layered,
            connect_deferred: false,
            dropping: false,
            serial: self.next_serial,
            bridge: Some(BridgeIndex::new(i)),
            accounted: 0,
        };
        self.next_serial += 1;
        if let Err(e) = self.poll.registry().register(
            &mut conn.stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::error!("Error creating bridge: {e}.");
            self.bridge_retry(i, now);
            return;
        }
        entry.insert(conn);
        self.bridges[i].state = State::Connecting {
            conn: id,
            deadline: now + keepalive,
            connect_sent: false,
        };
    }

    /// Schedules the next attempt (or none, for `start_type once`), on the
    /// next address.
    fn bridge_retry(&mut self, i: usize, now: Instant) {
        let b = &mut self.bridges[i];
        // The next address in turn; without round_robin the primary is
        // probed while a later one is in use (`bridge_probe_primary`).
        b.address = (b.address + 1) % b.config.addresses.len().max(1);
        b.probe = None;
        b.probe_at = None;
        let at = match b.config.start_type {
            StartType::Once => None,
            StartType::Automatic | StartType::Lazy => Some(now + b.backoff.next_delay()),
        };
        b.state = State::Waiting { at };
    }

    /// `round_robin false` while connected to a later address: every 5 s a
    /// TCP connect to the primary; once one succeeds, the bridge moves back
    /// to it (as mosquitto's `bridge_check`).
    fn bridge_probe_primary(&mut self, i: usize, now: Instant) {
        const EVERY: Duration = Duration::from_secs(5);
        let b = &mut self.bridges[i];
        let State::Up { conn, .. } = b.state else {
            b.probe = None;
            b.probe_at = None;
            return;
        };
        match b.probe.take() {
            None => {
                let primary = &b.config.addresses[0];
                let ip = super::resolve::resolve(&primary.host)
                    .ok()
                    .and_then(|ips| ips.into_iter().next());
                b.probe = ip
                    .and_then(|ip| open(SocketAddr::new(ip, primary.port), &b.config).ok())
                    .map(|s| (s, now));
                let wait = if b.probe.is_some() {
                    Duration::from_secs(1)
                } else {
                    EVERY
                };
                b.probe_at = Some(now + wait);
            }
            Some((probe, since)) => match probe.take_error() {
                Ok(None) if probe.peer_addr().is_ok() => {
                    log::info!(
                        "Bridge {}: primary address {} is reachable again, reconnecting to it.",
                        b.config.name,
                        b.config.addresses[0]
                    );
                    drop(probe);
                    self.lost(conn, CloseReason::Quiet, now);
                    let b = &mut self.bridges[i];
                    b.address = 0;
                    b.state = State::Waiting { at: Some(now) };
                }
                // Still connecting: look again shortly, for a while.
                Ok(None) if now < since + EVERY => {
                    b.probe = Some((probe, since));
                    b.probe_at = Some(now + Duration::from_secs(1));
                }
                _ => b.probe_at = Some(now + EVERY),
            },
        }
    }

    /// Whether enough messages wait for a lazy bridge's remote.
    fn lazy_threshold_reached(&self, i: usize) -> bool {
        let b = &self.bridges[i];
        self.broker.queued_for(&b.config.local_clientid) >= b.config.threshold as usize
    }

    /// The bridge whose socket `id` is, if it is one.
    pub(super) fn bridge_of(&self, id: ConnId) -> Option<usize> {
        self.conns.get(id)?.bridge.map(BridgeIndex::get)
    }

    /// An event on a bridge socket whose TCP connect was pending: send the
    /// CONNECT once it completed. Returns false when the attempt failed (the
    /// socket is gone).
    pub(super) fn bridge_socket_event(&mut self, id: ConnId, now: Instant) -> bool {
        let Some(i) = self.bridge_of(id) else {
            return true;
        };
        let State::Connecting {
            connect_sent: false,
            ..
        } = self.bridges[i].state
        else {
            return true;
        };
        let Some(conn) = self.conns.get(id) else {
            return true;
        };
        let Stream::Tcp(tcp) = &conn.stream else {
            return true;
        };
        match tcp.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.lost(id, CloseReason::Io(listen::strerror(&e)), now);
                return false;
            }
            Ok(None) => {}
        }
        if tcp.peer_addr().is_err() {
            return true;
        }
        let b = &self.bridges[i];
        let connect = link::connect_packet(&b.config, b.version, b.try_private);
        log::debug!("Bridge {} sending CONNECT", b.config.remote_clientid);
        if let State::Connecting { connect_sent, .. } = &mut self.bridges[i].state {
            *connect_sent = true;
        }
        self.bridge_send(id, &Packet::Connect(Box::new(connect)));
        true
    }

    /// Encodes a packet of the loop's own into a bridge socket's output:
    /// straight into `out` for plain TCP; for TLS into `staged`, which the
    /// flush pushes through the layer (the first push also sends the
    /// ClientHello), as `apply_actions` does for the core's packets.
    fn bridge_send(&mut self, id: ConnId, packet: &Packet) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let version = conn.version.unwrap_or(codec::ProtocolVersion::V311);
        let (target, was_empty) = conn.mqtt_output();
        if was_empty {
            self.dirty.push(id);
        }
        codec::encode(packet, version, target);
        if let Some(i) = conn.bridge
            && let Some(State::Up { keepalive, .. }) =
                self.bridges.get_mut(i.get()).map(|b| &mut b.state)
        {
            keepalive.sent(Instant::now());
        }
    }

    /// A packet from a bridge's remote broker.
    pub(super) fn bridge_packet(&mut self, i: usize, id: ConnId, packet: Packet, now: Instant) {
        match &mut self.bridges[i].state {
            State::Connecting {
                connect_sent: true, ..
            } => match packet {
                Packet::Connack(c) if c.code == 0 => self.bridge_up(i, id, &c, now),
                Packet::Connack(c) => {
                    let b = &mut self.bridges[i];
                    let version = b.version;
                    if !version.is_v5() && c.code == 1 {
                        b.try_private = false;
                    }
                    // A 3.x broker answers a 5.0 CONNECT with return code 1
                    // (no 5.0 reason code is 1): speak 3.1.1 from now on.
                    if version.is_v5() && c.code == 1 {
                        crate::notice!(
                            "Warning: Remote bridge {} does not support MQTT v5.0, reconnecting using MQTT v3.1.1.",
                            b.config.name
                        );
                        b.version = codec::ProtocolVersion::V311;
                        self.lost(id, CloseReason::Quiet, now);
                        return;
                    }
                    log::error!("Connection Refused: {}", refusal_text(version, c.code));
                    self.lost(id, CloseReason::Quiet, now);
                }
                _ => self.lost(id, CloseReason::ProtocolError, now),
            },
            State::Up {
                keepalive,
                last_message,
                ..
            } => {
                keepalive.received();
                if matches!(packet, Packet::Publish(_)) {
                    *last_message = now;
                }
                match packet {
                    Packet::Publish(mut p) => {
                        if let Some(topic) = link::remap_in(&self.bridges[i].config, &p.topic) {
                            p.topic = topic;
                        }
                        self.broker
                            .handle_packet(id, Packet::Publish(p), now, &mut self.actions);
                    }
                    p @ (Packet::Puback(_)
                    | Packet::Pubrec(_)
                    | Packet::Pubrel(_)
                    | Packet::Pubcomp(_)) => {
                        self.broker.handle_packet(id, p, now, &mut self.actions);
                    }
                    Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp => {}
                    // A remote may check the bridge too; mosquitto answers.
                    Packet::Pingreq => self.bridge_send(id, &Packet::Pingresp),
                    Packet::Disconnect(_) => self.lost(id, CloseReason::ClosedByPeer, now),
                    _ => self.lost(id, CloseReason::ProtocolError, now),
                }
            }
            _ => self.lost(id, CloseReason::ProtocolError, now),
        }
    }

    /// The remote accepted the CONNECT: open the local side, then subscribe
    /// on the remote.
    fn bridge_up(&mut self, i: usize, id: ConnId, connack: &codec::Connack, now: Instant) {
        let b = &mut self.bridges[i];
        // A 5.0 remote's limits: no higher QoS than it takes, no retain
        // flag if it has no retained messages (as mosquitto's bridge).
        let limits = &connack.properties;
        let max_qos = limits
            .maximum_qos
            .and_then(codec::Qos::from_u8)
            .unwrap_or(codec::Qos::ExactlyOnce);
        b.remote_retain = limits.retain_available != Some(0);
        log::debug!(
            "Received CONNACK on connection {}.",
            b.config.local_clientid
        );
        b.backoff.reset();
        if !b.config.round_robin && b.address != 0 {
            b.probe_at = Some(now + Duration::from_secs(5));
        }
        // A 5.0 remote may impose its own keep alive (Server Keep Alive).
        let keepalive = limits.server_keep_alive.unwrap_or(b.config.keepalive);
        b.state = State::Up {
            conn: id,
            keepalive: KeepAlive::new(keepalive, now),
            last_message: now,
        };
        let config = &self.bridges[i].config;
        let version = self.bridges[i].version;
        let subscriptions: Vec<_> = link::local_subscriptions(config)
            .into_iter()
            .map(|(f, q)| (f, q.min(max_qos)))
            .collect();
        let peer = self
            .conns
            .get(id)
            .and_then(|c| c.stream.peer_addr().ok())
            .unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
        let mut local = local_side(config, &subscriptions);
        local.version = version;
        local.receive_maximum = limits.receive_maximum;
        // The smaller of the remote's own limit and bridge_max_packet_size
        // (for 3.x remotes, which cannot say): larger messages are dropped.
        local.maximum_packet_size = [
            limits.maximum_packet_size,
            (config.max_packet_size > 0).then_some(config.max_packet_size),
        ]
        .into_iter()
        .flatten()
        .min();
        local.remote_requests = link::remote_subscriptions(config, version, max_qos);
        // The core queues the requests after the remote's state message, so
        // they reach the remote in mosquitto's order.
        let sent = self
            .broker
            .bridge_connected(id, peer, local, now, &mut self.actions);
        for p in &sent {
            if let Some(line) = link::request_log_line(&config.local_clientid, p) {
                log::debug!("{line}");
            }
        }
    }

    /// The log line for a bridge whose TLS layer gave up.
    pub(super) fn bridge_layer_failed(&self, i: usize, error: &LayerError) {
        let Some(b) = self.bridges.get(i) else {
            return;
        };
        match error {
            LayerError::Tls(lines) => {
                let entries: Vec<&str> = lines.lines().collect();
                for line in super::tls::openssl_error_lines(&entries) {
                    log::error!("{line}");
                }
                log::error!(
                    "Bridge {} ({}): the TLS connection failed.",
                    b.config.name,
                    b.address()
                );
            }
            _ => log::error!("Bridge {} ({}): {error}.", b.config.name, b.address()),
        }
    }

    /// A bridge socket went away: schedule the next attempt.
    pub(super) fn bridge_closed(
        &mut self,
        i: usize,
        id: ConnId,
        reason: &CloseReason,
        now: Instant,
    ) {
        let Some(b) = self.bridges.get(i) else {
            return;
        };
        let ours = match &b.state {
            State::Connecting { conn, .. } | State::Up { conn, .. } => *conn == id,
            State::Waiting { .. } | State::Resolving { .. } => false,
        };
        if !ours {
            return;
        }
        if let State::Connecting { .. } = b.state
            && let CloseReason::Io(e) = reason
        {
            log::error!("Error creating bridge: {e}.");
        }
        self.bridge_retry(i, now);
    }
}

/// What the core sends bridge `i`, as its remote must see it (topic mapped,
/// retain flag as configured); also counts as traffic for the keep alive.
pub(super) fn outbound(
    bridges: &mut [BridgeRun],
    i: usize,
    outbound: Outbound,
    now: Instant,
) -> Outbound {
    let Some(b) = bridges.get_mut(i) else {
        return outbound;
    };
    if let State::Up {
        keepalive,
        last_message,
        ..
    } = &mut b.state
    {
        keepalive.sent(now);
        if matches!(outbound, Outbound::Publish(_)) {
            *last_message = now;
        }
    }
    let config = &b.config;
    match outbound {
        Outbound::Publish(mut p) => {
            if let Some(topic) = link::remap_out(config, p.message.topic.as_str())
                && let Ok(topic) = TopicName::new(topic)
            {
                let m = &p.message;
                p.message = Rc::new(Message::new(
                    topic,
                    m.payload.clone(),
                    m.qos,
                    m.retain,
                    m.properties.clone(),
                    m.expires_at,
                ));
                p.topic_skip = 0;
            }
            if !config.outgoing_retain || !b.remote_retain {
                p.retain = false;
            }
            Outbound::Publish(p)
        }
        other => other,
    }
}

/// How the core should see a bridge's local side.
fn local_side<'a>(
    config: &'a Bridge,
    subscriptions: &'a [(codec::TopicFilter, codec::Qos)],
) -> BridgeLocal<'a> {
    BridgeLocal {
        client_id: &config.local_clientid,
        clean_start: config.local_clean_session,
        version: config.protocol_version,
        subscriptions,
        remote_state: (config.notifications && !config.notifications_local_only)
            .then(|| config.notification_topic.clone()),
        local_state: config
            .notifications
            .then(|| config.notification_topic.clone()),
        lazy: config.start_type == StartType::Lazy,
        receive_maximum: None,
        maximum_packet_size: None,
        remote_requests: Vec::new(),
    }
}

/// A non-blocking TCP connect to `addr`, from `bridge_bind_address` if
/// given, with 2.1's TCP keep-alive and user timeout if set.
fn open(addr: SocketAddr, config: &Bridge) -> io::Result<mio::net::TcpStream> {
    let bind = config.bind_address.as_deref();
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(k) = config.tcp_keepalive {
        let probes = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(u64::from(k.idle)))
            .with_interval(Duration::from_secs(u64::from(k.interval)))
            .with_retries(k.count);
        socket.set_tcp_keepalive(&probes)?;
    }
    if let Some(ms) = config.tcp_user_timeout {
        socket.set_tcp_user_timeout(Some(Duration::from_millis(u64::from(ms))))?;
    }
    if let Some(bind) = bind {
        let ip: IpAddr = super::resolve::resolve(bind)
            .ok()
            .and_then(|ips| ips.into_iter().find(|i| i.is_ipv4() == addr.is_ipv4()))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("Unable to resolve bridge_bind_address {bind}"),
                )
            })?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// EINPROGRESS on Linux: a non-blocking connect has started.
const fn libc_einprogress() -> i32 {
    115
}

/// mosquitto resolves each bridge address while it reads the configuration
/// and warns about one that does not resolve (the bridge still starts and
/// keeps trying). The same check, blocking as mosquitto's is, before any
/// client is served; numeric, `/etc/hosts` and `localhost` need no DNS.
pub fn unresolvable_address_warnings(bridges: &[Bridge]) -> Vec<String> {
    bridges
        .iter()
        .flat_map(|b| b.addresses.iter())
        .filter_map(|a| resolve_now(&a.host).err())
        .map(|e| format!("Warning: Error resolving bridge address: {}.", gai_text(&e)))
        .collect()
}

/// One lookup of `host`, waited for.
fn resolve_now(host: &str) -> Result<(), LookupError> {
    if super::resolve::resolve(host).is_ok_and(|ips| !ips.is_empty()) {
        return Ok(());
    }
    let io = |e: io::Error| LookupError::Io(e.kind());
    let mut poll = mio::Poll::new().map_err(io)?;
    let mut events = mio::Events::with_capacity(4);
    let conf = super::dns::ResolvConf::load();
    let mut now = Instant::now();
    let mut lookup = Lookup::start(host, conf, poll.registry(), Token(0), now)?;
    let result = loop {
        let wait = lookup.deadline().saturating_duration_since(now);
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(io(e)),
        }
        now = Instant::now();
        let progress = if events.is_empty() {
            lookup.tick(poll.registry(), now)
        } else {
            lookup.readable(poll.registry(), now)
        };
        if let Progress::Done(result) = progress {
            break result.and_then(|ips| {
                if ips.is_empty() {
                    Err(LookupError::NoAddress)
                } else {
                    Ok(())
                }
            });
        }
    };
    lookup.close(poll.registry());
    result
}

/// glibc's `gai_strerror` text for why a lookup failed, as mosquitto
/// prints it.
fn gai_text(e: &LookupError) -> &'static str {
    match e {
        LookupError::InvalidName(_) | LookupError::NotFound => "Name or service not known",
        LookupError::NoAddress => "No address associated with hostname",
        _ => "Temporary failure in name resolution",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridges(address: &str) -> Vec<Bridge> {
        let text = format!("connection b\naddress {address}\ntopic # out\n");
        crate::config::parse_str(&text, "t.conf")
            .expect("valid bridge config")
            .bridges
    }

    #[test]
    fn addresses_that_resolve_without_dns_are_not_warned_about() {
        for address in ["127.0.0.1:1883", "localhost:1884"] {
            assert!(unresolvable_address_warnings(&bridges(address)).is_empty());
        }
    }

    #[test]
    fn an_unresolvable_address_is_warned_about_as_mosquitto_does() {
        // An empty label fails before any name server is asked.
        assert_eq!(
            unresolvable_address_warnings(&bridges("bad..name:1883")),
            vec!["Warning: Error resolving bridge address: Name or service not known."]
        );
    }
}
