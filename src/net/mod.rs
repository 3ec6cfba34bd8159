//! The event loop: one thread, one `mio::Poll`, a slab of connections.
//!
//! It moves bytes and nothing else: reads are decoded into packets and handed
//! to the broker core; the core's actions are encoded into each connection's
//! output buffer, which is written once per loop turn. WRITABLE interest is
//! registered only while a connection has output the kernel did not take.

mod bridge;
pub mod dns;
mod dns_lookup;
pub mod layer;
pub mod listen;
mod outbuf;
pub mod resolve;
pub mod stream;
pub mod tls;
pub mod websocket;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use stream::Stream;

use crate::broker::{Action, Broker, CloseReason, ConnId, Outbound};
use crate::codec::{self, Connack, DecodeError, Packet, ProtocolVersion};
use crate::sys::signals::{Signal, SignalPipe};

pub use bridge::unresolvable_address_warnings;
pub use listen::{BoundListener, ListenError, ListenSpec, TransportLayer};

use layer::{Layer, LayerError};

/// Tokens at the top of the range are listeners and the signal pipe; slab
/// keys (connections) start at 0.
const SIGNAL_TOKEN: Token = Token(usize::MAX);
const LISTENER_BASE: usize = usize::MAX - 1;
/// Bridge `i`'s DNS socket is `DNS_BASE - i`: far below any listener and
/// far above any slab key.
const DNS_BASE: usize = usize::MAX - (1 << 20);

/// Bytes read per `read` call into the shared scratch buffer.
const READ_CHUNK: usize = 64 * 1024;

/// What the event loop asks of the code around it when a signal arrives.
pub trait Control {
    /// SIGHUP: re-read configuration and auth files, apply to `broker`.
    fn reload(&mut self, broker: &mut Broker);
    /// SIGUSR1, and once more at shutdown: save persistent state.
    fn save(&mut self, broker: &Broker);
    /// SIGRTMIN: reopen log files.
    fn reopen_logs(&mut self) {}
    /// SIGTERM/SIGINT, after every client was disconnected: last words and
    /// the final save.
    fn shutdown(&mut self, broker: &Broker) {
        self.save(broker);
    }
    /// When `after_turn` next has work (autosave), if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Runs after every loop turn (cheap checks such as autosave).
    fn after_turn(&mut self, _broker: &Broker, _now: Instant) {}
    /// After `reload`: new transport stacks per broker listener id (TLS
    /// certificates re-read). Existing connections keep theirs.
    fn take_transports(&mut self) -> Option<Vec<(crate::broker::ListenerId, Vec<TransportLayer>)>> {
        None
    }
}

struct Connection {
    stream: Stream,
    /// Input and output bytes in waiting; `None` while there are none and
    /// no output buffer is kept (see `Buffers`).
    buffers: Option<Box<Buffers>>,
    version: Option<ProtocolVersion>,
    /// Close once `out` is flushed; no more input is read.
    closing: bool,
    writable_registered: bool,
    listener_index: u32,
    /// TLS and/or WebSocket layers; `None` for plain MQTT, which then pays
    /// 8 bytes and nothing else for them.
    layered: Option<Box<Layered>>,
    /// Its CONNECT waits for an expensive-login slot; input is buffered.
    connect_deferred: bool,
    /// Tells this connection from a later one with the same slab key.
    serial: u64,
    /// QoS 0 output is being dropped (logged once per episode).
    dropping: bool,
    /// An outgoing bridge socket: the index of its bridge.
    bridge: Option<bridge::BridgeIndex>,
    /// Its buffers' bytes as last added to `EventLoop::io_buffered`.
    accounted: u32,
}

/// A connection's byte buffers. An idle connection has nothing in them, and
/// keeping the three fields inline cost it 48 bytes more than this box's
/// pointer, so they are boxed together: made when bytes first wait, dropped
/// by `release_idle_buffers` when none do and no output buffer is kept.
#[derive(Default)]
struct Buffers {
    /// Bytes of an incomplete packet carried over between reads.
    pending: Vec<u8>,
    /// Bytes for the socket, released as they are written.
    out: outbuf::OutBuf,
    /// Packets encoded into `Layered::staged` since it was last pushed
    /// through the layers (they end in `out` once it is).
    staged_packets: u32,
}

struct Layered {
    /// Nearest the socket first.
    layers: Vec<Box<dyn Layer>>,
    /// Encoded MQTT bytes waiting to go down through `layers`: pushed
    /// through once per loop turn.
    staged: Vec<u8>,
}

impl Connection {
    fn buffers(&mut self) -> &mut Buffers {
        self.buffers.get_or_insert_with(Box::default)
    }

    /// Bytes in the socket output buffer not yet written.
    fn unwritten(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.out.len())
    }

    /// Packets produced for this connection and not completely written.
    fn unsent_packets(&self) -> u32 {
        self.buffers
            .as_ref()
            .map_or(0, |b| b.out.packets().saturating_add(b.staged_packets))
    }

    /// One more packet was encoded where `mqtt_output` pointed.
    fn packet_encoded(&mut self) {
        if self.layered.is_some() {
            self.buffers().staged_packets += 1;
        } else {
            self.buffers().out.end_packets(1);
        }
    }

    /// The carried-over input, leaving none behind.
    fn take_pending(&mut self) -> Vec<u8> {
        self.buffers
            .as_mut()
            .map(|b| std::mem::take(&mut b.pending))
            .unwrap_or_default()
    }

    /// Keeps `input` for the next read (nothing is kept if it is empty).
    fn set_pending(&mut self, input: Vec<u8>) {
        if !input.is_empty() || self.buffers.is_some() {
            self.buffers().pending = input;
        }
    }

    /// Drops the buffers once no bytes wait and no output buffer is kept.
    fn release_idle_buffers(&mut self) {
        if self.buffers.as_ref().is_some_and(|b| {
            b.pending.capacity() == 0 && b.out.capacity() == 0 && b.staged_packets == 0
        }) {
            self.buffers = None;
        }
    }

    /// What its buffers hold, for `memory_limit`: the input and output
    /// buffers' capacity, and the staged bytes.
    fn buffered(&self) -> usize {
        let staged = self.layered.as_ref().map_or(0, |l| l.staged.capacity());
        let own = self
            .buffers
            .as_ref()
            .map_or(0, |b| b.pending.capacity() + b.out.capacity());
        own + staged
    }

    /// Brings its share of `total` up to date: a few loads and stores,
    /// done wherever its buffers change.
    fn reaccount(&mut self, total: &mut u64) {
        let now = u32::try_from(self.buffered()).unwrap_or(u32::MAX);
        *total = total.saturating_sub(u64::from(self.accounted)) + u64::from(now);
        self.accounted = now;
    }

    /// Bytes produced for this connection and not yet written.
    fn unsent(&self) -> usize {
        let staged = self.layered.as_ref().map_or(0, |l| l.staged.len());
        self.unwritten() + staged
    }

    /// Where encoded MQTT goes: the socket buffer, or the layers' staging
    /// area. `true` when it was empty, so the connection needs a flush.
    fn mqtt_output(&mut self) -> (&mut Vec<u8>, bool) {
        match self.layered.as_mut() {
            None => {
                let buffers = self.buffers.get_or_insert_with(Box::default);
                let was_empty = buffers.out.is_empty();
                (buffers.out.bytes_mut(), was_empty)
            }
            Some(layered) => {
                let was_empty = layered.staged.is_empty();
                (&mut layered.staged, was_empty)
            }
        }
    }

    fn peer_identity(&self) -> Option<layer::PeerIdentity> {
        self.layered
            .as_ref()?
            .layers
            .iter()
            .find_map(|l| l.peer_identity())
    }

    /// Runs socket bytes up through the layers. Bytes a layer answers on its
    /// own (handshakes, pongs) go down through the layers below it into `out`.
    /// A layer that fails still hands up what it decoded before the failure
    /// (a client's last PUBLISH and DISCONNECT often arrive in the same read
    /// as its TLS close_notify): those bytes come back with the error.
    fn ingest(&mut self, data: &[u8]) -> (Vec<u8>, Result<(), LayerError>) {
        let mut input = data.to_vec();
        let Some(layered) = self.layered.as_mut() else {
            return (input, Ok(()));
        };
        let layers = &mut layered.layers;
        for i in 0..layers.len() {
            let mut up = Vec::new();
            let mut down = Vec::new();
            let result = layers[i].ingest(&input, &mut up, &mut down);
            if !down.is_empty() {
                match send_down(&mut layers[..i], down) {
                    Ok(below) => self
                        .buffers
                        .get_or_insert_with(Box::default)
                        .out
                        .bytes_mut()
                        .extend_from_slice(&below),
                    Err(e) => return (Vec::new(), Err(e)),
                }
            }
            if let Err(e) = result {
                // Only the top layer's output is MQTT; a lower layer's last
                // bytes still go through the layers above it.
                let mut plain = up;
                for layer in &mut layers[i + 1..] {
                    let mut next = Vec::new();
                    let mut down = Vec::new();
                    let _ = layer.ingest(&plain, &mut next, &mut down);
                    plain = next;
                }
                return (plain, Err(e));
            }
            input = up;
        }
        (input, Ok(()))
    }

    /// Pushes staged MQTT bytes down through every layer into `out`.
    fn push_staged(&mut self) -> Result<(), LayerError> {
        let Some(layered) = self.layered.as_mut() else {
            return Ok(());
        };
        if layered.staged.is_empty() {
            return Ok(());
        }
        let plain = std::mem::take(&mut layered.staged);
        let bytes = send_down(&mut layered.layers, plain)?;
        let buffers = self.buffers();
        buffers.out.bytes_mut().extend_from_slice(&bytes);
        let packets = std::mem::take(&mut buffers.staged_packets);
        buffers.out.end_packets(packets);
        Ok(())
    }

    /// Graceful close of every layer, top first (WebSocket close frame,
    /// then TLS close_notify).
    fn close_layers(&mut self) {
        let Some(layered) = self.layered.as_mut() else {
            return;
        };
        let layers = &mut layered.layers;
        for i in (0..layers.len()).rev() {
            let mut down = Vec::new();
            layers[i].close(&mut down);
            if let Ok(bytes) = send_down(&mut layers[..i], down) {
                self.buffers
                    .get_or_insert_with(Box::default)
                    .out
                    .bytes_mut()
                    .extend_from_slice(&bytes);
            }
        }
    }
}

/// Sends `bytes` down through `layers` (the last one first).
fn send_down(layers: &mut [Box<dyn Layer>], mut bytes: Vec<u8>) -> Result<Vec<u8>, LayerError> {
    for layer in layers.iter_mut().rev() {
        let mut down = Vec::new();
        layer.send(&bytes, &mut down)?;
        bytes = down;
    }
    Ok(bytes)
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<BoundListener>,
    conns: Slab<Connection>,
    broker: Broker,
    signals: SignalPipe,
    actions: Vec<Action>,
    /// Connections with output produced this turn.
    dirty: Vec<ConnId>,
    /// What the core sent when told a connection's socket had room, for the
    /// end of the flush (see `flush_dirty`).
    resumed: Vec<Action>,
    scratch: Vec<u8>,
    /// Open connections per listener, for `max_connections`.
    per_listener: Vec<u32>,
    nodelay: bool,
    /// 2.1's `global_max_connections`: connections across all listeners.
    global_max_connections: Option<u32>,
    /// Expensive logins (argon2id) left this turn, and the CONNECTs waiting
    /// for a later turn: one costly check per turn keeps a reconnect storm
    /// from stalling every other client.
    login_budget: u32,
    deferred: std::collections::VecDeque<(ConnId, u64, Packet)>,
    next_serial: u64,
    bridges: Vec<bridge::BridgeRun>,
    /// The sum of every connection's `accounted` bytes: what the core is
    /// told its buffers hold (`Broker::set_io_buffered`).
    io_buffered: u64,
    /// Set while accept() fails for want of file descriptors. epoll reports
    /// a listener once per new connection, and a full accept queue admits
    /// none, so without retrying the listener would stay deaf for good.
    accept_retry_at: Option<Instant>,
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: accept() can succeed again later.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The largest CONNECT accepted: its strings and will payload are at most
/// 64 KiB each, so 1 MiB leaves room for any real client's properties.
const MAX_CONNECT_SIZE: u32 = 1 << 20;

/// How often a listener is retried while accept() lacks descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Output a connection may have waiting before its QoS 0 messages are
/// dropped: far above what a reading client ever has pending (a busy
/// subscriber gets a few MiB per write), small enough to protect a
/// Raspberry Pi from one stuck client.
const MAX_UNSENT_OUTPUT: usize = 64 << 20;

/// A flushed output buffer is kept for the next turn if its capacity is in
/// this range (see `flush`).
const KEEP_OUTPUT_MIN: usize = 4096;
const KEEP_OUTPUT_MAX: usize = 1024 * 1024;

/// Expensive password checks per loop turn.
const EXPENSIVE_LOGINS_PER_TURN: u32 = 1;

impl EventLoop {
    pub fn new(
        broker: Broker,
        listeners: Vec<BoundListener>,
        mut signals: SignalPipe,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut listeners = listeners;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(
                &mut l.socket,
                Token(LISTENER_BASE - i),
                Interest::READABLE,
            )?;
        }
        poll.registry()
            .register(signals.source(), SIGNAL_TOKEN, Interest::READABLE)?;
        let per_listener = vec![0; listeners.len()];
        Ok(EventLoop {
            poll,
            listeners,
            conns: Slab::new(),
            broker,
            signals,
            actions: Vec::new(),
            dirty: Vec::new(),
            resumed: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            per_listener,
            accept_retry_at: None,
            nodelay: true,
            global_max_connections: None,
            login_budget: EXPENSIVE_LOGINS_PER_TURN,
            deferred: std::collections::VecDeque::new(),
            next_serial: 0,
            bridges: Vec::new(),
            io_buffered: 0,
        })
    }

    /// 2.1's `global_max_connections` (None = unlimited).
    pub fn set_global_max_connections(&mut self, max: Option<u32>) {
        self.global_max_connections = max;
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Starts the broker's clocks (`$SYS` uptime, version) at loop start.
    fn start(&mut self) {
        self.broker.start(Instant::now(), &mut self.actions);
        self.apply_actions();
        self.flush_dirty();
    }

    /// Runs until SIGTERM/SIGINT. On the way out every client is
    /// disconnected (wills published) and `control.save` runs once.
    pub fn run(&mut self, control: &mut dyn Control) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        self.start();
        loop {
            let now = Instant::now();
            let deadline = [
                self.broker.next_deadline(),
                control.deadline(),
                self.bridge_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let mut timeout =
                deadline.map(|d| d.saturating_duration_since(now) + Duration::from_millis(1));
            if !self.deferred.is_empty() || !self.dirty.is_empty() {
                // Waiting logins, or output made after the last flush (a
                // retained catch-up continuing): next turn at once.
                timeout = Some(Duration::ZERO);
            }
            if let Some(at) = self.accept_retry_at {
                timeout = Some(
                    timeout
                        .unwrap_or(Duration::MAX)
                        .min(at.saturating_duration_since(now)),
                );
            }
            if crate::logging::sink::topic_lines_pending() {
                timeout = Some(
                    timeout
                        .unwrap_or(Duration::MAX)
                        .min(Duration::from_millis(100)),
                );
            }
            self.login_budget = EXPENSIVE_LOGINS_PER_TURN;
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let mut stop = false;
            for event in events.iter() {
                match event.token() {
                    SIGNAL_TOKEN => {
                        for signal in self.signals.drain() {
                            match signal {
                                Signal::Terminate => stop = true,
                                Signal::Reload => {
                                    log::info!("Reloading config.");
                                    control.reload(&mut self.broker);
                                    if let Some(updates) = control.take_transports() {
                                        for (id, transport) in updates {
                                            for l in self
                                                .listeners
                                                .iter_mut()
                                                .filter(|l| l.listener == id)
                                            {
                                                l.transport = transport.clone();
                                            }
                                        }
                                    }
                                }
                                Signal::Save => control.save(&self.broker),
                                Signal::ReopenLogs => control.reopen_logs(),
                                Signal::DebugDump => {}
                            }
                        }
                    }
                    Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                        self.accept(LISTENER_BASE - t, now);
                    }
                    Token(t) if t > DNS_BASE - self.bridges.len() && t <= DNS_BASE => {
                        self.bridge_dns_event(DNS_BASE - t, now);
                    }
                    Token(conn) => {
                        if !self.bridge_socket_event(conn, now) {
                            self.apply_actions();
                            continue;
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            let closing = event.is_read_closed() || event.is_error();
                            self.read(conn, now, closing);
                        }
                        if event.is_writable() {
                            self.dirty.push(conn);
                        }
                    }
                }
                self.apply_actions();
            }
            if self.accept_retry_at.is_some_and(|at| at <= now) {
                self.accept_retry_at = None;
                for i in 0..self.listeners.len() {
                    self.accept(i, now);
                }
            }
            self.run_deferred_logins(now);
            self.bridge_tick(now);
            self.apply_actions();
            self.broker.tick(now, &mut self.actions);
            // `log_dest topic`: the sink cannot reach the core, so the loop
            // publishes what it buffered.
            for (kind, line) in crate::logging::sink::take_topic_lines() {
                self.broker.publish_log(kind, &line, &mut self.actions);
            }
            self.apply_actions();
            // A save that is due (autosave_on_changes counts this turn's
            // changes) happens before the turn's PUBACKs, PUBRECs and
            // SUBACKs leave: what a client was told is stored is on disk
            // if the process dies right after.
            control.after_turn(&self.broker, now);
            self.flush_dirty();
            if stop {
                self.broker.shutdown(Instant::now(), &mut self.actions);
                self.apply_actions();
                self.flush_dirty();
                control.shutdown(&self.broker);
                return Ok(());
            }
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (stream, peer) = match listener.socket.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_descriptors(&e) => {
                    if self.accept_retry_at.is_none() {
                        log::error!(
                            "Error: Unable to accept new connection: {}",
                            listen::strerror(&e)
                        );
                    }
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    log::error!(
                        "Error: Unable to accept new connection: {}",
                        listen::strerror(&e)
                    );
                    return;
                }
            };
            let over_global = self
                .global_max_connections
                .is_some_and(|max| self.conns.len() >= max as usize);
            if over_global
                || listener
                    .max_connections
                    .is_some_and(|max| self.per_listener[index] >= max)
            {
                crate::notice!(
                    "Client connection from {} denied: max_connections exceeded.",
                    peer.ip()
                );
                drop(stream);
                continue;
            }
            let broker_listener = listener.listener;
            let layers: Vec<Box<dyn Layer>> =
                match listener.transport.iter().map(|t| t.build()).collect() {
                    Ok(l) => l,
                    Err(e) => {
                        log::error!(
                            "Error: Unable to set up connection from {}: {e}.",
                            peer.ip()
                        );
                        continue;
                    }
                };
            // Nagle off: the loop batches writes itself, one per turn.
            if self.nodelay {
                stream.set_nodelay();
            }
            let entry = self.conns.vacant_entry();
            let id = entry.key();
            let mut conn = Connection {
                stream,
                buffers: None,
                version: None,
                closing: false,
                writable_registered: false,
                listener_index: index as u32,
                layered: (!layers.is_empty()).then(|| {
                    Box::new(Layered {
                        layers,
                        staged: Vec::new(),
                    })
                }),
                connect_deferred: false,
                dropping: false,
                serial: self.next_serial,
                bridge: None,
                accounted: 0,
            };
            self.next_serial += 1;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut conn.stream, Token(id), Interest::READABLE)
            {
                log::error!("Error: Unable to register connection: {e}");
                continue;
            }
            entry.insert(conn);
            self.per_listener[index] += 1;
            self.broker
                .connection_opened(id, broker_listener, peer, now);
        }
    }

    /// Reads everything available (mio is edge-triggered), decoding and
    /// handling packets as they complete.
    /// `peer_closed`: the event said the peer shut its side, so read on to
    /// the end-of-file even after a short read.
    fn read(&mut self, id: ConnId, now: Instant, peer_closed: bool) {
        let max_packet = self.broker.settings().max_packet_size;
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            if conn.closing {
                return;
            }
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.lost(id, CloseReason::ClosedByPeer, now);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = match e.kind() {
                        io::ErrorKind::ConnectionReset => CloseReason::ClosedByPeer,
                        _ => CloseReason::Io(listen::strerror(&e)),
                    };
                    self.lost(id, reason, now);
                    return;
                }
            };
            self.broker.stats.bytes_received += n as u64;
            // Decode from the scratch buffer directly unless a partial packet
            // is waiting or layers transform the bytes; keep only the
            // incomplete tail.
            // (Still counted while decoded: a large PUBLISH exists twice
            // while it is handled, as the packet read and as the message
            // made of it, as in mosquitto.)
            let mut input = conn.take_pending();
            let carried_over = !input.is_empty();
            let mut from_scratch = input.is_empty();
            let mut layer_error = None;
            if conn.layered.is_some() {
                let had_output = conn.unwritten() > 0;
                let (plain, result) = conn.ingest(&self.scratch[..n]);
                if !had_output && conn.unwritten() > 0 {
                    self.dirty.push(id);
                }
                input.extend_from_slice(&plain);
                layer_error = result.err();
                from_scratch = false;
            } else if !from_scratch {
                input.extend_from_slice(&self.scratch[..n]);
            } else if conn.version.is_none() && tls::looks_like_tls(&self.scratch[..n]) {
                // As mosquitto 2.1 logs it, rather than "malformed packet".
                let ip = conn
                    .stream
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                crate::notice!(
                    "Client {ip} sent a TLS handshake to a listener without TLS; closing."
                );
                self.lost(id, CloseReason::ProtocolError, now);
                return;
            }
            let data: &[u8] = if from_scratch {
                &self.scratch[..n]
            } else {
                &input
            };
            if conn.connect_deferred {
                // Nothing may be decoded before the waiting CONNECT.
                if from_scratch {
                    input.extend_from_slice(&self.scratch[..n]);
                }
                conn.set_pending(input);
                if n < self.scratch.len() && !peer_closed {
                    return;
                }
                continue;
            }
            let mut to_bridge = Vec::new();
            let mut data = data;
            let (consumed, len) = loop {
                let mut ctx = DecodeCtx {
                    broker: &mut self.broker,
                    actions: &mut self.actions,
                    conns: &mut self.conns,
                    login_budget: &mut self.login_budget,
                    deferred: &mut self.deferred,
                    to_bridge: &mut to_bridge,
                    max_packet,
                    now,
                    stop_for_pressure: true,
                };
                let len = data.len();
                let consumed = ctx.decode_all(id, data);
                if consumed == len
                    || !self.broker.has_output_pressure()
                    || self.conns.get(id).is_none_or(|c| c.closing)
                {
                    break (consumed, len);
                }
                // A subscriber's output is full (see `relieve_pressure`):
                // write it, then decode the rest, which moves out of the
                // scratch buffer the write needs the loop for.
                if from_scratch {
                    input = self.scratch[consumed..n].to_vec();
                    from_scratch = false;
                } else {
                    input.drain(..consumed);
                }
                self.relieve_pressure(now);
                data = &input;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            if consumed < len && !conn.closing {
                // Keep only the unread tail. A partial packet already in
                // `input` stays where it is: copying it on every read made a
                // large packet cost the square of its size.
                let tail = if from_scratch {
                    self.scratch[consumed..n].to_vec()
                } else {
                    input.drain(..consumed);
                    input
                };
                // `memory_limit`: a packet begun in this read must fit, or
                // its sender goes now, before the rest of it is buffered
                // (mosquitto allocates the packet from its fixed header).
                if (consumed > 0 || !carried_over)
                    && let Some(size) = codec::packet_size(&tail)
                    && !self
                        .broker
                        .packet_arriving(id, size, now, &mut self.actions)
                {
                    // The core said close: `apply_actions` does.
                    self.apply_actions();
                    return;
                }
                conn.set_pending(tail);
            } else {
                conn.release_idle_buffers();
            }
            conn.reaccount(&mut self.io_buffered);
            if let Some(i) = conn.bridge {
                for packet in to_bridge {
                    if !self.conns.contains(id) {
                        break;
                    }
                    self.bridge_packet(i.get(), id, packet, now);
                }
            }
            self.apply_actions();
            if let Some(e) = layer_error {
                self.layer_failed(id, e, now);
                return;
            }
            if n < self.scratch.len() && !peer_closed {
                // A short read drained the socket: another read would only
                // return WouldBlock, one wasted system call per event. Data
                // arriving after this read raises a new edge (as nginx relies
                // on with EPOLLET), so stopping here loses nothing.
                return;
            }
        }
    }

    /// A TLS or WebSocket layer gave up: what it wanted to say (alert,
    /// close frame, HTTP response) is flushed, then the socket closes.
    fn layer_failed(&mut self, id: ConnId, error: LayerError, now: Instant) {
        match (&error, self.bridge_of(id)) {
            (LayerError::Closed, _) => {}
            (e, Some(i)) => self.bridge_layer_failed(i, e),
            // mosquitto's net__print_ssl_error: OpenSSL's queue, at error level.
            (LayerError::Tls(lines), None) => {
                let entries: Vec<&str> = lines.lines().collect();
                for line in tls::openssl_error_lines(&entries) {
                    log::error!("{line}");
                }
            }
            (e, None) => crate::notice!("Client connection from {} closed: {e}.", self.peer_of(id)),
        }
        let reason = match error {
            LayerError::Closed => CloseReason::ClosedByPeer,
            LayerError::Tls(_) => CloseReason::TlsFailed,
            LayerError::WebSocket(e) => CloseReason::Io(e),
        };
        self.broker
            .connection_lost(id, reason, now, &mut self.actions);
        if let Some(conn) = self.conns.get_mut(id) {
            conn.closing = true;
            self.dirty.push(id);
        }
        self.apply_actions();
    }

    fn peer_of(&self, id: ConnId) -> String {
        self.conns
            .get(id)
            .and_then(|c| c.stream.peer_addr().ok())
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    /// Handles CONNECTs that waited for an expensive-login slot, then the
    /// input their connections buffered meanwhile.
    fn run_deferred_logins(&mut self, now: Instant) {
        while self.login_budget > 0 {
            let Some((id, serial, packet)) = self.deferred.pop_front() else {
                return;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if conn.serial != serial || conn.closing {
                continue;
            }
            self.login_budget -= 1;
            conn.connect_deferred = false;
            if let Packet::Connect(c) = &packet {
                conn.version = Some(c.version);
                if let Some(identity) = conn.peer_identity() {
                    self.broker.set_peer_identity(id, identity);
                }
            }
            let pending = conn.take_pending();
            self.broker
                .handle_packet(id, packet, now, &mut self.actions);
            if self.broker.has_connection(id) && !pending.is_empty() {
                let max_packet = self.broker.settings().max_packet_size;
                let mut to_bridge = Vec::new();
                let mut ctx = DecodeCtx {
                    broker: &mut self.broker,
                    actions: &mut self.actions,
                    conns: &mut self.conns,
                    login_budget: &mut self.login_budget,
                    deferred: &mut self.deferred,
                    to_bridge: &mut to_bridge,
                    max_packet,
                    now,
                    stop_for_pressure: false,
                };
                let consumed = ctx.decode_all(id, &pending);
                if let Some(conn) = self.conns.get_mut(id)
                    && consumed < pending.len()
                    && !conn.closing
                {
                    conn.set_pending(pending[consumed..].to_vec());
                }
            }
            self.apply_actions();
        }
    }

    fn lost(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        if let Some(i) = self.bridge_of(id) {
            self.bridge_closed(i, id, &reason, now);
        }
        self.broker
            .connection_lost(id, reason, now, &mut self.actions);
        self.remove(id);
        self.apply_actions();
    }

    fn remove(&mut self, id: ConnId) {
        if let Some(mut conn) = self.conns.try_remove(id) {
            self.io_buffered = self.io_buffered.saturating_sub(u64::from(conn.accounted));
            self.broker.set_io_buffered(self.io_buffered);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if let Some(count) = self.per_listener.get_mut(conn.listener_index as usize) {
                *count = count.saturating_sub(1);
            }
            if let Some(i) = conn.bridge {
                self.bridge_closed(i.get(), id, &CloseReason::Quiet, Instant::now());
            }
        }
    }

    /// Encodes the core's actions into output buffers.
    fn apply_actions(&mut self) {
        let mut turn_now = None;
        for action in self.actions.drain(..) {
            match action {
                Action::Send(id, outbound) => {
                    let Some(conn) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if conn.closing {
                        continue;
                    }
                    let outbound = match conn.bridge {
                        None => outbound,
                        Some(i) => {
                            // One clock read per batch of actions, not per message.
                            let now = *turn_now.get_or_insert_with(Instant::now);
                            bridge::outbound(&mut self.bridges, i.get(), outbound, now)
                        }
                    };
                    // A client that stops reading must not make culex hold
                    // unbounded output: QoS 0 messages beyond the cap are
                    // dropped (QoS 1/2 are bounded by the in-flight window and
                    // the queue limits), as mosquitto drops what its queue
                    // limit refuses.
                    if let Outbound::Publish(p) = &outbound
                        && p.qos == codec::Qos::AtMostOnce
                        && conn.unsent() > MAX_UNSENT_OUTPUT
                    {
                        self.broker.stats.publish_dropped += 1;
                        if !conn.dropping {
                            conn.dropping = true;
                            crate::notice!(
                                "Outgoing messages are being dropped for a connection from {} that is not reading ({} MiB unsent).",
                                conn.stream
                                    .peer_addr()
                                    .map(|a| a.ip().to_string())
                                    .unwrap_or_default(),
                                conn.unsent() >> 20
                            );
                        }
                        continue;
                    }
                    let version = conn.version.unwrap_or(ProtocolVersion::V311);
                    let (target, was_empty) = conn.mqtt_output();
                    if was_empty {
                        self.dirty.push(id);
                    }
                    let before = target.len();
                    self.broker.stats.messages_sent += 1;
                    match &outbound {
                        Outbound::Publish(p) => {
                            self.broker.stats.publish_bytes_sent += p.message.payload.len() as u64;
                            codec::encode_publish(p, version, target)
                        }
                        other => {
                            if let Some(packet) = other.to_packet() {
                                codec::encode(&packet, version, target);
                            }
                        }
                    }
                    self.broker.stats.bytes_sent += (target.len() - before) as u64;
                    conn.packet_encoded();
                    conn.reaccount(&mut self.io_buffered);
                }
                Action::Close(id) => {
                    if let Some(conn) = self.conns.get_mut(id) {
                        if !conn.closing && conn.layered.is_some() {
                            let _ = conn.push_staged();
                            conn.close_layers();
                        }
                        conn.closing = true;
                        conn.reaccount(&mut self.io_buffered);
                        self.dirty.push(id);
                    }
                }
            }
        }
        self.broker.set_io_buffered(self.io_buffered);
    }

    /// One write per connection with output, then close those that asked.
    /// Closing can publish wills, which dirties more connections: repeat
    /// until nothing is left.
    ///
    /// After its write each connection tells the core what still waits for
    /// its socket; the core may then continue work that waited for room
    /// (a retained catch-up). That output is encoded now and written next
    /// turn, so a connection still gets one write per turn.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            self.flush_dirty_once();
        }
        // Every connection written has been reported on: no pressure is left.
        while self.broker.take_output_pressure().is_some() {}
        if !self.resumed.is_empty() {
            self.actions.append(&mut self.resumed);
            self.apply_actions();
        }
    }

    /// Writes what `id` has waiting (pushed through its layers first),
    /// keeps WRITABLE registered while some is left, and tells the core
    /// what still waits.
    fn write_conn(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Err(e) = conn.push_staged() {
            if let Some(l) = conn.layered.as_mut() {
                l.staged.clear();
            }
            if let Some(b) = conn.buffers.as_mut() {
                b.staged_packets = 0;
            }
            self.layer_failed(id, e, now);
            return;
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let result = flush(conn);
        conn.reaccount(&mut self.io_buffered);
        self.broker.set_io_buffered(self.io_buffered);
        match result {
            Ok(true) if conn.closing => self.remove(id),
            Ok(done) => {
                if !conn.closing {
                    self.broker.output_pending(
                        id,
                        conn.unsent_packets(),
                        conn.unsent(),
                        now,
                        &mut self.resumed,
                    );
                }
                let want = !done;
                if want != conn.writable_registered {
                    let interest = if want {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    let _ = self
                        .poll
                        .registry()
                        .reregister(&mut conn.stream, Token(id), interest);
                    conn.writable_registered = want;
                }
            }
            Err(e) => {
                if conn.closing {
                    self.remove(id);
                } else {
                    let reason = CloseReason::Io(listen::strerror(&e));
                    self.lost(id, reason, now);
                }
            }
        }
    }

    /// Connections whose unwritten packets reached `max_queued_messages`
    /// while input was being handled get their write now rather than at the
    /// end of the turn: what the kernel takes then no longer counts against
    /// the limit, as with mosquitto, which writes every packet at once. A
    /// fast reader thus loses no QoS 0 message to a burst larger than the
    /// limit; a stuck one costs one failed write.
    fn relieve_pressure(&mut self, now: Instant) {
        self.apply_actions();
        while let Some(id) = self.broker.take_output_pressure() {
            self.write_conn(id, now);
        }
        self.apply_actions();
    }

    fn flush_dirty_once(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let now = Instant::now();
        for id in dirty.drain(..) {
            self.write_conn(id, now);
        }
        // Keep the drained vector's capacity; keep what closing added.
        let added = std::mem::replace(&mut self.dirty, dirty);
        self.dirty.extend(added);
        self.apply_actions();
    }
}

/// Writes as much of `out` as the socket takes. `Ok(true)` when all of it.
/// What was written is released from the buffer as it goes (see `OutBuf`),
/// so a reader that never catches up holds only its backlog.
fn flush(conn: &mut Connection) -> io::Result<bool> {
    let Some(buffers) = conn.buffers.as_mut() else {
        conn.dropping = false;
        return Ok(true);
    };
    let out = &mut buffers.out;
    while !out.is_empty() {
        match conn.stream.write(out.pending()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => out.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.compact();
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.dropping = false;
    // A busy connection keeps its buffer, so the next turn's output neither
    // regrows it nor faults in fresh pages. An idle one should not keep a
    // burst's buffer, nor the few bytes of its CONNACK or PINGRESP: with
    // thousands of idle clients those small buffers add up, and regrowing
    // one is a single small allocation.
    let capacity = out.capacity();
    if !(KEEP_OUTPUT_MIN..=KEEP_OUTPUT_MAX).contains(&capacity) {
        out.release();
        conn.release_idle_buffers();
    }
    Ok(true)
}

/// What decoding a connection's input touches.
struct DecodeCtx<'a> {
    broker: &'a mut Broker,
    actions: &'a mut Vec<Action>,
    conns: &'a mut Slab<Connection>,
    login_budget: &'a mut u32,
    deferred: &'a mut std::collections::VecDeque<(ConnId, u64, Packet)>,
    /// Packets from a bridge's remote broker, for the loop's bridge code.
    to_bridge: &'a mut Vec<Packet>,
    max_packet: u32,
    now: Instant,
    /// Return after a packet that filled a subscriber's output (the caller
    /// writes it, then decodes on: `EventLoop::relieve_pressure`).
    stop_for_pressure: bool,
}

impl DecodeCtx<'_> {
    /// Decodes and handles every complete packet in `data`; returns the
    /// bytes consumed. Stops at the first error (the connection is then
    /// closing) and after a CONNECT deferred for lack of login budget.
    fn decode_all(&mut self, id: ConnId, data: &[u8]) -> usize {
        let DecodeCtx {
            broker,
            actions,
            conns,
            max_packet,
            now,
            ..
        } = self;
        let (max_packet, now) = (*max_packet, *now);
        let mut pos = 0;
        while pos < data.len() {
            let Some(conn) = conns.get_mut(id) else {
                return pos;
            };
            if conn.closing {
                return data.len();
            }
            // Until its CONNECT is read, a peer is a stranger: no packet may
            // be larger than a CONNECT sensibly is, whatever max_packet_size
            // allows, so nobody can make the broker buffer 256 MiB unasked.
            let limit = match conn.version {
                None if max_packet == 0 || max_packet > MAX_CONNECT_SIZE => MAX_CONNECT_SIZE,
                _ => max_packet,
            };
            match codec::decode(&data[pos..], conn.version, limit) {
                Ok(None) => break,
                Ok(Some((packet, used))) => {
                    pos += used;
                    if conn.bridge.is_some() {
                        self.to_bridge.push(packet);
                        continue;
                    }
                    if let Packet::Connect(c) = &packet
                        && conn.version.is_none()
                    {
                        if broker.connect_is_expensive(id, c) {
                            if *self.login_budget == 0 {
                                conn.connect_deferred = true;
                                self.deferred.push_back((id, conn.serial, packet));
                                return pos;
                            }
                            *self.login_budget -= 1;
                        }
                        conn.version = Some(c.version);
                        if let Some(identity) = conn.peer_identity() {
                            broker.set_peer_identity(id, identity);
                        }
                    }
                    broker.handle_packet(id, packet, now, actions);
                    // Once the core has let go of the connection nothing more it
                    // sent counts; its queued replies still go out first.
                    if !broker.has_connection(id) {
                        return data.len();
                    }
                    if self.stop_for_pressure && broker.has_output_pressure() {
                        return pos;
                    }
                }
                Err(DecodeError::UnsupportedProtocolVersion { .. }) => {
                    // mosquitto answers with a 3.x CONNACK 1 whatever the level.
                    let connack = Packet::Connack(Connack {
                        session_present: false,
                        code: codec::reason::v3::UNACCEPTABLE_PROTOCOL_VERSION,
                        properties: Default::default(),
                    });
                    actions.push(Action::Send(id, Outbound::Packet(Box::new(connack))));
                    broker.connection_lost(id, CloseReason::ProtocolError, now, actions);
                    actions.push(Action::Close(id));
                    return data.len();
                }
                Err(DecodeError::InvalidProtocolName(name)) => {
                    let peer = conns.get(id).and_then(|c| c.stream.peer_addr().ok());
                    let ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
                    log::info!("Invalid protocol \"{name}\" in CONNECT from {ip}.");
                    broker.connection_lost(id, CloseReason::ProtocolError, now, actions);
                    actions.push(Action::Close(id));
                    return data.len();
                }
                // A 3.x broker answers a bridge's 5.0 CONNECT with a 3.x
                // CONNACK (no properties): the bridge code falls back to 3.1.1.
                Err(_)
                    if conn.bridge.is_some()
                        && conn.version == Some(ProtocolVersion::V5)
                        && let Ok(Some((p @ Packet::Connack(_), used))) = codec::decode(
                            &data[pos..],
                            Some(ProtocolVersion::V311),
                            max_packet,
                        ) =>
                {
                    pos += used;
                    self.to_bridge.push(p);
                }
                Err(e) => {
                    log::debug!("Bad packet from connection {id}: {e}");
                    broker.decode_failed(id, &e, now, actions);
                    actions.push(Action::Close(id));
                    return data.len();
                }
            }
        }
        pos
    }
}
