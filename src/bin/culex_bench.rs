//! culex_bench: the single-threaded, mio-based load generator behind
//! `scripts/bench` (issue 7), and the report that turns its JSON lines into a
//! table of medians.
//!
//!     culex_bench run --port P --scenario fanin_qos0 [--duration 5] [--warmup 1]
//!                     [--broker-pid PID] [--broker-name culex] [--round N]
//!     culex_bench report RUNS.jsonl --out results.json [--meta key=value ...]
//!
//! Every scenario speaks MQTT 3.1.1 to 127.0.0.1 only, uses 64-byte payloads
//! stamped with the send time, publisher and sequence number, bounds every
//! loop in count and time, and prints one JSON line. The generator reports its
//! own CPU use over the measured window (`gen_cpu_pct`): near 100 means the
//! generator, not the broker, was the bottleneck.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use culex::bench::report::{self, Record};
use culex::bench::{self as b, Frame};
use culex::codec::{
    self, Connect, Packet, PacketId, ProtocolVersion, Publish, Qos, Subscribe, SubscriptionOptions,
    TopicFilter, properties::Properties,
};

const V: ProtocolVersion = ProtocolVersion::V311;
/// Messages a publisher appends per write when its window allows.
const BATCH: u64 = 256;
const SCRATCH: usize = 256 * 1024;
const TICK: Token = Token(usize::MAX - 1);

type Res<T> = Result<T, String>;

#[derive(Debug, Clone)]
struct Opts {
    port: u16,
    /// Subscribers connect here instead of `port` (0 = same broker): the
    /// far side of a bridge, for `scripts/bench-bridge`.
    sub_port: u16,
    scenario: String,
    duration: f64,
    warmup: f64,
    broker_pid: u32,
    broker_name: String,
    round: u32,
    /// Deliveries outstanding (sent, not yet seen by a subscriber) across
    /// all publishers, split evenly between them; 0 = unbounded.
    window: u64,
    /// QoS 1: PUBLISHes a publisher may have awaiting PUBACK.
    ack_window: u64,
    publishers: usize,
    subscribers: usize,
    pairs: usize,
    rate: f64,
    clients: usize,
    retained: usize,
    /// Latency: busy-poll instead of sleeping in epoll between ticks, so the
    /// generator's own wake-up is not part of the measured latency.
    spin: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            port: 1883,
            sub_port: 0,
            scenario: String::new(),
            duration: 5.0,
            warmup: 1.0,
            broker_pid: 0,
            broker_name: "unknown".into(),
            round: 0,
            window: 100_000,
            ack_window: 100,
            publishers: 8,
            subscribers: 100,
            pairs: 500,
            rate: 10_000.0,
            clients: 10_000,
            retained: 100_000,
            spin: false,
        }
    }
}

fn usage() -> String {
    "usage: culex_bench run --port P [--sub-port P] --scenario NAME [--duration S] [--warmup S] \
     [--broker-pid PID] [--broker-name NAME] [--round N] [--window N] [--ack-window N] \
     [--publishers N] [--subscribers N] [--pairs N] [--rate MSG_PER_S] [--clients N] \
     [--retained N] [--spin 0|1]\n       culex_bench report RUNS.jsonl --out FILE [--meta key=value ...]\n\
     scenarios: fanin_qos0 fanin_qos1 fanout pairs latency connections retained"
        .into()
}

fn parse_opts(args: &[String]) -> Res<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let num = |v: &str| -> Res<f64> { v.parse().map_err(|_| format!("bad {flag}: {v}")) };
        match flag.as_str() {
            "--port" => o.port = num(val)? as u16,
            "--sub-port" => o.sub_port = num(val)? as u16,
            "--scenario" => o.scenario = val.clone(),
            "--duration" => o.duration = num(val)?,
            "--warmup" => o.warmup = num(val)?,
            "--broker-pid" => o.broker_pid = num(val)? as u32,
            "--broker-name" => o.broker_name = val.clone(),
            "--round" => o.round = num(val)? as u32,
            "--window" => o.window = num(val)? as u64,
            "--ack-window" => o.ack_window = (num(val)? as u64).clamp(1, 65_535),
            "--publishers" => o.publishers = num(val)? as usize,
            "--subscribers" => o.subscribers = num(val)? as usize,
            "--pairs" => o.pairs = num(val)? as usize,
            "--rate" => o.rate = num(val)?,
            "--clients" => o.clients = num(val)? as usize,
            "--retained" => o.retained = num(val)? as usize,
            "--spin" => o.spin = num(val)? != 0.0,
            _ => return Err(format!("unknown option {flag}\n{}", usage())),
        }
    }
    if !(0.1..=3600.0).contains(&o.duration) || !(0.0..=600.0).contains(&o.warmup) {
        return Err("--duration must be 0.1..3600 s and --warmup 0..600 s".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => parse_opts(&args[1..]).and_then(|o| run(&o)),
        Some("report") => report_cmd(&args[1..]),
        Some("gen-db") => gen_db_cmd(&args[1..]),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("culex_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `gen-db --retained N --sessions M --out FILE`
fn gen_db_cmd(args: &[String]) -> Res<()> {
    let mut retained = 1_000_000;
    let mut sessions = 100_000;
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--retained" => retained = v.parse().map_err(|_| format!("bad --retained {v}"))?,
            "--sessions" => sessions = v.parse().map_err(|_| format!("bad --sessions {v}"))?,
            "--out" => out = Some(v.clone()),
            _ => return Err(format!("gen-db: unknown option {a}")),
        }
    }
    let out = out.ok_or("gen-db needs --out FILE")?;
    let db = culex::bench::gen_db::generate(retained, sessions);
    std::fs::write(&out, culex::persist::write(&db)).map_err(|e| format!("{out}: {e}"))?;
    Ok(())
}

fn report_cmd(args: &[String]) -> Res<()> {
    let mut input = None;
    let mut out = None;
    let mut meta = Record::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().cloned(),
            "--meta" => {
                let kv = it.next().ok_or("--meta needs key=value")?;
                let (k, v) = kv.split_once('=').ok_or("--meta needs key=value")?;
                meta.str(k, v);
            }
            _ => input = Some(a.clone()),
        }
    }
    let input = input.ok_or_else(usage)?;
    let text = std::fs::read_to_string(&input).map_err(|e| format!("{input}: {e}"))?;
    let records: Vec<Record> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(Record::parse)
        .collect();
    let summary = report::summarise(&records);
    print!("{}", report::table(&summary));
    if let Some(out) = out {
        std::fs::write(&out, report::results_json(&records, &summary, &meta))
            .map_err(|e| format!("{out}: {e}"))?;
    }
    Ok(())
}

fn run(o: &Opts) -> Res<()> {
    let mut rec = Record::default();
    rec.str("scenario", &o.scenario)
        .str("broker", &o.broker_name)
        .num("round", o.round as f64);
    match o.scenario.as_str() {
        "fanin_qos0" | "fanin_qos1" => {
            let qos = if o.scenario == "fanin_qos1" { 1 } else { 0 };
            let flow = Flow {
                pubs: (0..o.publishers)
                    .map(|i| (format!("bench/fanin/{i}"), vec![0]))
                    .collect(),
                subs: vec!["bench/fanin/#".into()],
                qos,
                rate: None,
            };
            run_flow(o, &flow, &mut rec)?;
        }
        "fanout" => {
            let flow = Flow {
                pubs: vec![("bench/fanout".into(), (0..o.subscribers).collect())],
                subs: vec!["bench/fanout".into(); o.subscribers],
                qos: 0,
                rate: None,
            };
            run_flow(o, &flow, &mut rec)?;
        }
        "pairs" => {
            let flow = Flow {
                pubs: (0..o.pairs)
                    .map(|i| (format!("bench/pair/{i}"), vec![i]))
                    .collect(),
                subs: (0..o.pairs).map(|i| format!("bench/pair/{i}")).collect(),
                qos: 0,
                rate: None,
            };
            run_flow(o, &flow, &mut rec)?;
        }
        "latency" => {
            let flow = Flow {
                pubs: vec![("bench/latency".into(), vec![0])],
                subs: vec!["bench/latency".into()],
                qos: 0,
                rate: Some(o.rate),
            };
            run_flow(o, &flow, &mut rec)?;
        }
        "connections" => run_connections(o, &mut rec)?,
        "retained" => run_retained(o, &mut rec)?,
        other => return Err(format!("unknown scenario {other:?}\n{}", usage())),
    }
    println!("{}", rec.to_json());
    Ok(())
}

// ---------------------------------------------------------------------------
// Connections and the event loop plumbing.

struct Conn {
    stream: TcpStream,
    /// Bytes of a packet not yet complete.
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    writable: bool,
    connacked: bool,
    subacked: bool,
    pinged: bool,
}

#[derive(Default)]
struct Turn {
    connacks: usize,
    subacks: usize,
}

struct Net {
    addr: SocketAddr,
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
}

fn io_err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Net {
    fn new(port: u16) -> Res<Net> {
        Ok(Net {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            poll: Poll::new().map_err(io_err("poll"))?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            scratch: vec![0; SCRATCH],
        })
    }

    /// Connects `n` clients (CONNECT, clean session, then CONNACK), at most
    /// `concurrency` handshakes at a time. Returns their indices and the time
    /// from the first connect() to the last CONNACK.
    fn open(
        &mut self,
        n: usize,
        keep_alive: u16,
        prefix: &str,
        concurrency: usize,
        limit: Duration,
    ) -> Res<(Vec<usize>, Duration)> {
        let start = Instant::now();
        let first = self.conns.len();
        let mut done = 0;
        let mut in_flight = 0;
        while done < n {
            while in_flight < concurrency && self.conns.len() - first < n {
                let i = self.conns.len();
                let mut stream = TcpStream::connect(self.addr).map_err(io_err("connect"))?;
                let _ = stream.set_nodelay(true);
                self.poll
                    .registry()
                    .register(
                        &mut stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(io_err("register"))?;
                let mut out = Vec::new();
                let connect = Connect {
                    version: V,
                    bridge: false,
                    clean_start: true,
                    keep_alive,
                    client_id: format!("{prefix}-{}", i - first),
                    will: None,
                    username: None,
                    password: None,
                    properties: Properties::default(),
                };
                codec::encode(&Packet::Connect(Box::new(connect)), V, &mut out);
                self.conns.push(Conn {
                    stream,
                    pending: Vec::new(),
                    out,
                    out_pos: 0,
                    writable: true,
                    connacked: false,
                    subacked: false,
                    pinged: false,
                });
                // Usually still connecting: the write then waits for WRITABLE.
                flush(&mut self.conns[i])?;
                in_flight += 1;
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "only {done} of {n} clients connected within {limit:?}"
                ));
            }
            let got = self.turn(Duration::from_millis(10))?.connacks;
            in_flight -= got;
            done += got;
        }
        Ok(((first..first + n).collect(), start.elapsed()))
    }

    /// One poll for the control phases: flush what is pending, read control
    /// packets (CONNACK, SUBACK, PINGRESP), ignore anything else.
    fn turn(&mut self, timeout: Duration) -> Res<Turn> {
        let mut t = Turn::default();
        self.poll
            .poll(&mut self.events, Some(timeout))
            .map_err(io_err("poll"))?;
        for ev in self.events.iter() {
            let c = &mut self.conns[ev.token().0];
            if ev.is_writable() {
                c.writable = true;
                if c.out_pos < c.out.len() {
                    flush(c)?;
                }
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let (mut connack, mut suback, mut pong) = (None, false, false);
                let eof = read_frames(c, &mut self.scratch, |f, _| {
                    if let Frame::Other(bytes) = f {
                        match codec::decode(bytes, Some(V), 0) {
                            Ok(Some((Packet::Connack(ca), _))) => connack = Some(ca.code),
                            Ok(Some((Packet::Suback(sa), _))) => {
                                suback = sa.codes.iter().all(|&x| x < 0x80)
                            }
                            Ok(Some((Packet::Pingresp, _))) => pong = true,
                            _ => {}
                        }
                    }
                })?;
                match connack {
                    Some(0) => {
                        c.connacked = true;
                        t.connacks += 1;
                    }
                    Some(code) => return Err(format!("CONNACK refused with code {code}")),
                    None => {}
                }
                c.subacked |= suback;
                t.subacks += suback as usize;
                c.pinged |= pong;
                if eof {
                    return Err("the broker closed a connection".into());
                }
            }
        }
        Ok(t)
    }

    fn subscribe(&mut self, subs: &[(usize, String)], qos: u8, limit: Duration) -> Res<()> {
        let start = Instant::now();
        for (k, (i, filter)) in subs.iter().enumerate() {
            let s = Subscribe {
                packet_id: PacketId::new(1 + (k % 60_000) as u16).unwrap_or(PacketId::MIN),
                filters: vec![(
                    TopicFilter::new(filter.as_str()).map_err(|e| format!("{filter}: {e:?}"))?,
                    SubscriptionOptions::with_qos(Qos::from_u8(qos).unwrap_or(Qos::AtMostOnce)),
                )],
                properties: Properties::default(),
            };
            codec::encode(&Packet::Subscribe(s), V, &mut self.conns[*i].out);
            flush(&mut self.conns[*i])?;
        }
        let mut acks = 0;
        while acks < subs.len() {
            if start.elapsed() > limit {
                return Err("SUBACKs did not all arrive".into());
            }
            acks += self.turn(Duration::from_millis(10))?.subacks;
        }
        Ok(())
    }

    /// PINGREQ on `i` and wait for PINGRESP: the broker has handled every
    /// packet sent before it.
    fn barrier(&mut self, i: usize, limit: Duration) -> Res<()> {
        let start = Instant::now();
        self.conns[i].pinged = false;
        codec::encode(&Packet::Pingreq, V, &mut self.conns[i].out);
        flush(&mut self.conns[i])?;
        while !self.conns[i].pinged {
            if start.elapsed() > limit {
                return Err(format!("no PINGRESP within {limit:?}"));
            }
            self.turn(Duration::from_millis(10))?;
        }
        Ok(())
    }
}

/// Writes what `c.out` holds until done or the socket is full.
fn flush(c: &mut Conn) -> Res<()> {
    while c.out_pos < c.out.len() {
        match c.stream.write(&c.out[c.out_pos..]) {
            Ok(0) => return Err("write returned 0".into()),
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.writable = false;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                c.writable = false;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    c.out.clear();
    c.out_pos = 0;
    Ok(())
}

/// Reads everything available and hands each complete frame to `f` with the
/// connection's output buffer (for acknowledgements). Returns true at EOF.
fn read_frames(
    c: &mut Conn,
    scratch: &mut [u8],
    mut f: impl FnMut(Frame, &mut Vec<u8>),
) -> Res<bool> {
    loop {
        let n = match c.stream.read(scratch) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(format!("read: {e}")),
        };
        if c.pending.is_empty() {
            let used = split_all(&scratch[..n], &mut f, &mut c.out)?;
            c.pending.extend_from_slice(&scratch[used..n]);
        } else {
            c.pending.extend_from_slice(&scratch[..n]);
            let used = split_all(&c.pending, &mut f, &mut c.out)?;
            c.pending.drain(..used);
        }
        // A short read emptied the socket; epoll reports new data as a new
        // edge, so skip the extra read() that would only say EAGAIN.
        if n < scratch.len() {
            return Ok(false);
        }
    }
}

fn split_all(
    mut buf: &[u8],
    f: &mut impl FnMut(Frame, &mut Vec<u8>),
    out: &mut Vec<u8>,
) -> Res<usize> {
    let mut used = 0;
    while let Some((frame, n)) = b::split_frame(buf).map_err(|e| e.to_string())? {
        f(frame, out);
        used += n;
        buf = &buf[n..];
    }
    Ok(used)
}

// ---------------------------------------------------------------------------
// Throughput and latency: publishers pipelining into subscribers.

struct Flow {
    /// Each publisher's topic and the subscribers that receive it.
    pubs: Vec<(String, Vec<usize>)>,
    /// Each subscriber's filter.
    subs: Vec<String>,
    qos: u8,
    /// Fixed publish rate (messages/s, all publishers together), or as fast
    /// as the windows allow.
    rate: Option<f64>,
}

struct Pubr {
    conn: usize,
    /// One encoded PUBLISH, copied and stamped per message.
    template: Vec<u8>,
    payload_at: usize,
    sent: u64,
    acked: u64,
    /// Deliveries seen by subscribers, plus deliveries given up as lost.
    delivered: u64,
    fan: u64,
    next_id: u16,
    /// In the ready list (socket writable as far as we know, and maybe room
    /// in the windows).
    ready: bool,
    /// `delivered` at the last stall check, and when it last moved.
    seen: u64,
    moved: Instant,
}

struct Subr {
    /// (publisher, next expected sequence number)
    next: Vec<(u32, u32)>,
    dups: u64,
    gaps: u64,
}

#[derive(Clone, Copy)]
struct Snap {
    at: Instant,
    received: u64,
    sent: u64,
    acked: u64,
    gen_ticks: u64,
    broker_ticks: u64,
    broker_wait_ns: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Pub(usize),
    Sub(usize),
}

fn publish_template(topic: &str, qos: u8) -> Res<(Vec<u8>, usize)> {
    let p = Publish {
        dup: false,
        qos: Qos::from_u8(qos).ok_or("bad qos")?,
        retain: false,
        topic: topic.into(),
        packet_id: (qos > 0).then_some(PacketId::MIN),
        payload: b::payload_template(),
        properties: Properties::default(),
    };
    let mut out = Vec::new();
    codec::encode(&Packet::Publish(p), V, &mut out);
    let at = out.len() - b::PAYLOAD_LEN;
    Ok((out, at))
}

/// The per-publisher limits of a flow, in messages.
struct Limits {
    /// Messages a publisher may have undelivered (sent, not yet seen by all
    /// of its subscribers).
    window: u64,
    /// Refill only when at least this much room opened (fewer, larger writes).
    window_min: u64,
    ack_window: u64,
    ack_min: u64,
    rate: Option<f64>,
    qos: u8,
}

/// Appends as many PUBLISHes as the windows (or the fixed rate) allow and
/// writes them. Returns true if the publisher should be tried again next
/// turn without waiting for an event.
fn publish_some(
    k: usize,
    p: &mut Pubr,
    c: &mut Conn,
    l: &Limits,
    t0: Instant,
    now: Instant,
) -> Res<bool> {
    if !c.writable {
        return Ok(false);
    }
    if c.out_pos < c.out.len() {
        flush(c)?;
        if c.out_pos < c.out.len() {
            return Ok(false);
        }
    }
    let outstanding = (p.sent * p.fan).saturating_sub(p.delivered);
    let room = (l.window * p.fan).saturating_sub(outstanding) / p.fan.max(1);
    let ack_room = if l.qos > 0 {
        l.ack_window.saturating_sub(p.sent - p.acked)
    } else {
        u64::MAX
    };
    let mut allowed = BATCH.min(room).min(ack_room);
    if let Some(rate) = l.rate {
        let due = (now.duration_since(t0).as_secs_f64() * rate) as u64;
        allowed = allowed.min(due.saturating_sub(p.sent));
    } else if room < l.window_min.min(BATCH) || ack_room < l.ack_min {
        return Ok(false);
    }
    let ts = now.duration_since(t0).as_nanos() as u64;
    for _ in 0..allowed {
        let start = c.out.len();
        c.out.extend_from_slice(&p.template);
        let at = start + p.payload_at;
        b::write_stamp(&mut c.out[at..], ts, k as u32, p.sent as u32);
        if l.qos > 0 {
            c.out[at - 2..at].copy_from_slice(&p.next_id.to_be_bytes());
            p.next_id = p.next_id.checked_add(1).unwrap_or(1);
        }
        p.sent += 1;
    }
    if allowed > 0 {
        flush(c)?;
    }
    Ok(allowed == BATCH && c.writable && c.out_pos == c.out.len())
}

fn run_flow(o: &Opts, flow: &Flow, rec: &mut Record) -> Res<()> {
    let mut net = Net::new(o.port)?;
    let limit = Duration::from_secs(60);
    let (pub_conns, _) = net.open(flow.pubs.len(), 60, "bench-pub", 64, limit)?;
    if o.sub_port != 0 {
        net.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, o.sub_port));
    }
    let (sub_conns, _) = net.open(flow.subs.len(), 60, "bench-sub", 64, limit)?;
    let subs_req: Vec<(usize, String)> = sub_conns
        .iter()
        .copied()
        .zip(flow.subs.iter().cloned())
        .collect();
    net.subscribe(&subs_req, flow.qos, limit)?;

    let t0 = Instant::now();
    let mut roles = vec![Role::Pub(0); net.conns.len()];
    let mut pubs = Vec::new();
    for (k, ((topic, receivers), &conn)) in flow.pubs.iter().zip(&pub_conns).enumerate() {
        let (template, payload_at) = publish_template(topic, flow.qos)?;
        roles[conn] = Role::Pub(k);
        pubs.push(Pubr {
            conn,
            template,
            payload_at,
            sent: 0,
            acked: 0,
            delivered: 0,
            fan: receivers.len() as u64,
            next_id: 1,
            ready: true,
            seen: 0,
            moved: t0,
        });
    }
    let mut subs: Vec<Subr> = Vec::new();
    for (k, &conn) in sub_conns.iter().enumerate() {
        roles[conn] = Role::Sub(k);
        subs.push(Subr {
            next: Vec::new(),
            dups: 0,
            gaps: 0,
        });
    }
    let deliveries_per_msg: u64 = pubs.iter().map(|p| p.fan).sum::<u64>().max(1);
    let window = if o.window == 0 {
        u64::MAX / 1024
    } else {
        (o.window / deliveries_per_msg).max(4)
    };
    let lim = Limits {
        window,
        window_min: (window / 4).max(1),
        ack_window: o.ack_window,
        ack_min: (o.ack_window / 4).max(1),
        rate: flow.rate.map(|r| r / pubs.len().max(1) as f64),
        qos: flow.qos,
    };
    // A fixed rate needs wake-ups finer than epoll_wait's milliseconds: a
    // timerfd ticking once per message interval.
    let ticker = match flow.rate {
        Some(rate) if rate > 0.0 => {
            let t = ticker::Ticker::new(Duration::from_secs_f64(1.0 / rate))
                .map_err(io_err("timerfd"))?;
            net.poll
                .registry()
                .register(&mut mio::unix::SourceFd(&t.fd()), TICK, Interest::READABLE)
                .map_err(io_err("register timerfd"))?;
            Some(t)
        }
        _ => None,
    };
    let mut ready: Vec<usize> = (0..pubs.len()).collect();
    let mut again: Vec<usize> = Vec::with_capacity(pubs.len());

    let measure_at = t0 + Duration::from_secs_f64(o.warmup);
    let stop_at = measure_at + Duration::from_secs_f64(o.duration);
    let drain_limit = stop_at + Duration::from_secs(15);
    let stall = Duration::from_secs(1);
    let mut next_stall_check = t0 + stall;
    let mut received: u64 = 0;
    let mut retained_seen: u64 = 0;
    let mut stalls: u64 = 0;
    let mut latencies: Vec<u64> = Vec::new();
    if let Some(rate) = flow.rate {
        latencies.reserve((rate * (o.duration + 1.0)) as usize);
    }
    let snap = |pubs: &[Pubr], received: u64| Snap {
        at: Instant::now(),
        received,
        sent: pubs.iter().map(|p| p.sent).sum(),
        acked: pubs.iter().map(|p| p.acked).sum(),
        gen_ticks: b::cpu_ticks(0).unwrap_or(0),
        broker_ticks: if o.broker_pid != 0 {
            b::cpu_ticks(o.broker_pid).unwrap_or(0)
        } else {
            0
        },
        broker_wait_ns: b::run_delay_ns(o.broker_pid).unwrap_or(0),
    };
    let mut start_snap: Option<Snap> = None;
    let mut stop_snap: Option<Snap> = None;
    let mut drained = false;

    loop {
        let now = Instant::now();
        if start_snap.is_none() && now >= measure_at {
            start_snap = Some(snap(&pubs, received));
        }
        if stop_snap.is_none() && now >= stop_at {
            stop_snap = Some(snap(&pubs, received));
        }
        let sending = now < stop_at;
        if !sending {
            let done = pubs
                .iter()
                .all(|p| p.delivered >= p.sent * p.fan && (flow.qos == 0 || p.acked >= p.sent));
            if done {
                drained = true;
                break;
            }
            if now >= drain_limit {
                break;
            }
        }
        // Lost QoS 0 messages would close a window for good: after a second
        // without any delivery, count what is outstanding as lost and go on.
        if now >= next_stall_check {
            next_stall_check = now + stall / 4;
            for (k, p) in pubs.iter_mut().enumerate() {
                if p.delivered != p.seen {
                    p.seen = p.delivered;
                    p.moved = now;
                } else if flow.qos == 0 && sending && now - p.moved > stall && p.sent > 0 {
                    if p.delivered < p.sent * p.fan {
                        p.delivered = p.sent * p.fan;
                        stalls += 1;
                    }
                    p.moved = now;
                    if !p.ready {
                        p.ready = true;
                        ready.push(k);
                    }
                }
            }
        }

        // Publish.
        let mut timeout = Duration::from_millis(5);
        if sending {
            if lim.rate.is_some() {
                for (k, p) in pubs.iter_mut().enumerate() {
                    if !p.ready {
                        p.ready = true;
                        ready.push(k);
                    }
                }
            }
            for &k in &ready {
                let p = &mut pubs[k];
                p.ready = false;
                if publish_some(k, p, &mut net.conns[p.conn], &lim, t0, now)? {
                    p.ready = true;
                    again.push(k);
                }
            }
            ready.clear();
            std::mem::swap(&mut ready, &mut again);
            if !ready.is_empty() || (o.spin && lim.rate.is_some()) {
                timeout = Duration::ZERO;
            }
        }

        net.poll
            .poll(&mut net.events, Some(timeout))
            .map_err(io_err("poll"))?;
        let now = Instant::now();
        let now_ns = now.duration_since(t0).as_nanos() as u64;
        let measuring = now >= measure_at && now < stop_at;
        for ev in net.events.iter() {
            if ev.token() == TICK {
                if let Some(t) = &ticker {
                    t.drain();
                }
                continue;
            }
            let i = ev.token().0;
            let c = &mut net.conns[i];
            if ev.is_writable() {
                c.writable = true;
                match roles[i] {
                    Role::Pub(k) => {
                        if !pubs[k].ready {
                            pubs[k].ready = true;
                            ready.push(k);
                        }
                    }
                    Role::Sub(_) => {
                        if c.out_pos < c.out.len() {
                            flush(c)?;
                        }
                    }
                }
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let eof = match roles[i] {
                Role::Pub(k) => {
                    let p = &mut pubs[k];
                    let eof = read_frames(c, &mut net.scratch, |f, _| {
                        if let Frame::Puback(_) = f {
                            p.acked += 1;
                        }
                    })?;
                    if !p.ready {
                        p.ready = true;
                        ready.push(k);
                    }
                    eof
                }
                Role::Sub(s) => {
                    let sub = &mut subs[s];
                    let eof = read_frames(c, &mut net.scratch, |f, out| {
                        let Frame::Publish {
                            qos,
                            retain,
                            packet_id,
                            payload,
                            ..
                        } = f
                        else {
                            return;
                        };
                        if qos > 0 {
                            let id = packet_id.to_be_bytes();
                            out.extend_from_slice(&[0x40, 2, id[0], id[1]]);
                        }
                        received += 1;
                        retained_seen += retain as u64;
                        let Some((ts, pk, seq)) = b::read_stamp(payload) else {
                            return;
                        };
                        if let Some(p) = pubs.get_mut(pk as usize) {
                            p.delivered += 1;
                            if !p.ready {
                                p.ready = true;
                                ready.push(pk as usize);
                            }
                        }
                        match sub.next.iter_mut().find(|(q, _)| *q == pk) {
                            Some((_, next)) => {
                                if seq == *next {
                                    *next += 1;
                                } else if seq < *next {
                                    sub.dups += 1;
                                } else {
                                    sub.gaps += (seq - *next) as u64;
                                    *next = seq + 1;
                                }
                            }
                            None => {
                                sub.gaps += seq as u64;
                                sub.next.push((pk, seq + 1));
                            }
                        }
                        if measuring && flow.rate.is_some() {
                            latencies.push(now_ns.saturating_sub(ts));
                        }
                    })?;
                    // PUBACKs go out once per turn, below.
                    eof
                }
            };
            if eof {
                return Err(format!(
                    "the broker closed connection {i} ({received} received so far)"
                ));
            }
        }
        // Subscribers' PUBACKs, one write per subscriber per turn.
        if flow.qos > 0 {
            for &i in &sub_conns {
                let c = &mut net.conns[i];
                if c.writable && c.out_pos < c.out.len() {
                    flush(c)?;
                }
            }
        }
    }
    let end = snap(&pubs, received);
    let a = start_snap.ok_or("no measurement window")?;
    let z = stop_snap.unwrap_or(end);
    let secs = (z.at - a.at).as_secs_f64();
    let sent: u64 = pubs.iter().map(|p| p.sent).sum();
    let expected: u64 = pubs.iter().map(|p| p.sent * p.fan).sum();
    let acked: u64 = pubs.iter().map(|p| p.acked).sum();
    let gaps: u64 = subs.iter().map(|s| s.gaps).sum();
    let dups: u64 = subs.iter().map(|s| s.dups).sum();
    // Messages never seen by a subscriber (sequence gaps plus a missing tail).
    let tail: u64 = expected.saturating_sub(received);
    rec.num("msgs_per_s", (z.received - a.received) as f64 / secs)
        .num("published_per_s", (z.sent - a.sent) as f64 / secs)
        .num("acked_per_s", (z.acked - a.acked) as f64 / secs)
        .num("seconds", secs)
        .num("publishers", pubs.len() as f64)
        .num("subscribers", subs.len() as f64)
        .num("qos", flow.qos as f64)
        .num("window_msgs", window as f64)
        .num("sent", sent as f64)
        .num("expected", expected as f64)
        .num("received", received as f64)
        .num("pubacks", acked as f64)
        .num("lost", gaps.max(tail) as f64)
        .num("duplicates", dups as f64)
        .num("stalls", stalls as f64)
        .num("drained", drained as u8 as f64)
        .num("retained_flagged", retained_seen as f64);
    cpu_fields(rec, &a, &z, o);
    if flow.rate.is_some() {
        latencies.sort_unstable();
        let us = |q: f64| b::quantile(&latencies, q) as f64 / 1000.0;
        rec.num("rate", flow.rate.unwrap_or(0.0))
            .num("samples", latencies.len() as f64)
            .num("p50_us", us(0.5))
            .num("p99_us", us(0.99))
            .num("p999_us", us(0.999))
            .num("max_us", us(1.0));
    }
    broker_mem(rec, o);
    if flow.qos > 0 && (!drained || acked != sent || gaps > 0) {
        rec.str(
            "error",
            &format!("QoS 1 loss: sent {sent}, PUBACKs {acked}, received {received}, gaps {gaps}"),
        );
    }
    Ok(())
}

fn cpu_fields(rec: &mut Record, a: &Snap, z: &Snap, o: &Opts) {
    let secs = (z.at - a.at).as_secs_f64().max(1e-9);
    let pct = |t: u64| t as f64 / b::TICKS_PER_SEC / secs * 100.0;
    rec.num("gen_cpu_pct", pct(z.gen_ticks - a.gen_ticks));
    if o.broker_pid != 0 {
        rec.num("broker_cpu_pct", pct(z.broker_ticks - a.broker_ticks))
            // Time the broker was runnable but another process had its CPU:
            // anything above a few percent means the run was disturbed.
            .num(
                "broker_wait_pct",
                (z.broker_wait_ns - a.broker_wait_ns) as f64 / 1e9 / secs * 100.0,
            );
    }
}

fn broker_mem(rec: &mut Record, o: &Opts) {
    if o.broker_pid != 0 {
        rec.num(
            "broker_rss_kb",
            b::vm_rss_kb(o.broker_pid).map_or(f64::NAN, |v| v as f64),
        )
        .num(
            "broker_hwm_kb",
            b::vm_hwm_kb(o.broker_pid).map_or(f64::NAN, |v| v as f64),
        );
    }
}

fn snap_now(o: &Opts) -> Snap {
    Snap {
        at: Instant::now(),
        received: 0,
        sent: 0,
        acked: 0,
        gen_ticks: b::cpu_ticks(0).unwrap_or(0),
        broker_ticks: if o.broker_pid != 0 {
            b::cpu_ticks(o.broker_pid).unwrap_or(0)
        } else {
            0
        },
        broker_wait_ns: b::run_delay_ns(o.broker_pid).unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------
// Idle connections and retained catch-up.

fn run_connections(o: &Opts, rec: &mut Record) -> Res<()> {
    let mut net = Net::new(o.port)?;
    // One client first so both brokers have allocated what the first
    // connection costs, then the baseline.
    net.open(1, 60, "bench-idle-probe", 1, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = b::vm_rss_kb(o.broker_pid);
    let a = snap_now(o);
    let (_, took) = net.open(o.clients, 60, "bench-idle", 64, Duration::from_secs(120))?;
    let z = snap_now(o);
    // Let the broker settle, then read its memory.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(1) {
        net.turn(Duration::from_millis(50))?;
    }
    let rss1 = b::vm_rss_kb(o.broker_pid);
    rec.num("clients", o.clients as f64)
        .num("connect_s", took.as_secs_f64())
        .num("connects_per_s", o.clients as f64 / took.as_secs_f64());
    cpu_fields(rec, &a, &z, o);
    if let (Some(r0), Some(r1)) = (rss0, rss1) {
        rec.num("rss_before_kb", r0 as f64)
            .num("rss_after_kb", r1 as f64)
            .num(
                "rss_bytes_per_conn",
                (r1 as f64 - r0 as f64) * 1024.0 / o.clients as f64,
            );
    }
    Ok(())
}

fn run_retained(o: &Opts, rec: &mut Record) -> Res<()> {
    let mut net = Net::new(o.port)?;
    let limit = Duration::from_secs(120);
    let (ids, _) = net.open(2, 60, "bench-retained", 2, limit)?;
    let (publ, sub) = (ids[0], ids[1]);
    let mut payload = b::payload_template();
    let store_start = Instant::now();
    let mut i = 0;
    while i < o.retained {
        // Encode in chunks so the output buffer stays small.
        let c = &mut net.conns[publ];
        if c.out.is_empty() {
            for _ in 0..1000.min(o.retained - i) {
                b::write_stamp(&mut payload, 0, 0, i as u32);
                let p = Publish {
                    dup: false,
                    qos: Qos::AtMostOnce,
                    retain: true,
                    topic: format!("site/{}/dev/{}/state", i / 1000, i % 1000),
                    packet_id: None,
                    payload: payload.clone(),
                    properties: Properties::default(),
                };
                codec::encode(&Packet::Publish(p), V, &mut c.out);
                i += 1;
            }
        }
        if c.writable {
            flush(c)?;
        }
        if store_start.elapsed() > limit {
            return Err("storing retained messages took too long".into());
        }
        if !net.conns[publ].out.is_empty() {
            net.turn(Duration::from_millis(10))?;
        }
    }
    net.barrier(publ, limit)?;
    let store_s = store_start.elapsed().as_secs_f64();

    let filter = TopicFilter::new("#").map_err(|e| format!("{e:?}"))?;
    let s = Subscribe {
        packet_id: PacketId::MIN,
        filters: vec![(filter, SubscriptionOptions::with_qos(Qos::AtMostOnce))],
        properties: Properties::default(),
    };
    codec::encode(&Packet::Subscribe(s), V, &mut net.conns[sub].out);
    let a = snap_now(o);
    let t0 = Instant::now();
    flush(&mut net.conns[sub])?;
    let (mut got, mut flagged) = (0usize, 0usize);
    while got < o.retained {
        if t0.elapsed() > limit {
            break;
        }
        net.poll
            .poll(&mut net.events, Some(Duration::from_millis(10)))
            .map_err(io_err("poll"))?;
        for ev in net.events.iter() {
            let i = ev.token().0;
            let c = &mut net.conns[i];
            if ev.is_writable() {
                c.writable = true;
                if c.out_pos < c.out.len() {
                    flush(c)?;
                }
            }
            if i != sub || !(ev.is_readable() || ev.is_read_closed()) {
                continue;
            }
            let eof = read_frames(c, &mut net.scratch, |f, _| {
                if let Frame::Publish { retain, .. } = f {
                    got += 1;
                    flagged += retain as usize;
                }
            })?;
            if eof {
                return Err("the broker closed the subscriber".into());
            }
        }
    }
    let took = t0.elapsed();
    let z = snap_now(o);
    rec.num("retained", o.retained as f64)
        .num("store_s", store_s)
        .num("received", got as f64)
        .num("retained_flagged", flagged as f64)
        .num("catchup_ms", took.as_secs_f64() * 1000.0);
    cpu_fields(rec, &a, &z, o);
    broker_mem(rec, o);
    if got < o.retained || flagged < got {
        rec.str(
            "error",
            &format!(
                "{got} of {} retained messages arrived, {flagged} flagged retained",
                o.retained
            ),
        );
    }
    Ok(())
}

/// A periodic timerfd, the one place the generator needs `unsafe` (libc has
/// no safe wrapper; the broker's own code keeps its `unsafe` in `sys`).
#[allow(unsafe_code)]
mod ticker {
    use std::fs::File;
    use std::io::{self, Read};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    pub struct Ticker(File);

    impl Ticker {
        pub fn new(interval: Duration) -> io::Result<Ticker> {
            // SAFETY: plain system call with constant flags.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just created and is owned by nobody else.
            let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let ts = libc::timespec {
                tv_sec: interval.as_secs() as libc::time_t,
                tv_nsec: interval.subsec_nanos().max(1) as libc::c_long,
            };
            let spec = libc::itimerspec {
                it_interval: ts,
                it_value: ts,
            };
            // SAFETY: `spec` outlives the call; a null old value is allowed.
            let rc =
                unsafe { libc::timerfd_settime(file.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Ticker(file))
        }

        pub fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        /// Clears the expiry count so the next tick wakes epoll again.
        pub fn drain(&self) {
            let mut buf = [0u8; 8];
            let _ = (&self.0).read(&mut buf);
        }
    }
}
