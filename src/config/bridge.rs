//! Bridge sections: `connection NAME` and the options that follow it, read
//! with mosquitto's rules and messages (`conf.c`), checked at the end of the
//! file as `config__check` does.

use super::lexer::{self, Tok};
use super::parser::{empty, lossy, parse_bool, parse_int, parse_string};
use crate::codec::{ProtocolVersion, Qos, TopicFilter, TopicName};

type R<T> = Result<T, String>;

/// Which way a bridge topic's messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Remote to local.
    In,
    /// Local to remote (the default).
    Out,
    Both,
}

impl Direction {
    pub fn inbound(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }

    pub fn outbound(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }
}

/// One `topic` line: the pattern with its prefixes already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    pub direction: Direction,
    pub qos: Qos,
    pub local_prefix: Option<String>,
    pub remote_prefix: Option<String>,
    /// `local_prefix + pattern`: what the bridge subscribes to locally
    /// (`out`) and the filter remote messages are mapped under (`in`).
    pub local_filter: TopicFilter,
    /// `remote_prefix + pattern`: what it subscribes to on the remote (`in`).
    pub remote_filter: TopicFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeAddress {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BridgeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    Automatic,
    Lazy,
    Once,
}

/// Reconnect delay: a constant, or jittered exponential backoff between a
/// base and a cap (mosquitto's default is the backoff from 5 to 30 s). One
/// value is a constant, as since mosquitto 2.0.15 (2.0.11 ignored it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartTimeout {
    Constant(u32),
    Backoff { base: u32, cap: u32 },
}

/// A bridge as configured. Defaults are mosquitto's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub addresses: Vec<BridgeAddress>,
    pub round_robin: bool,
    pub topics: Vec<BridgeTopic>,
    /// Default `<hostname>.<name>`.
    pub remote_clientid: String,
    /// Default `local.<remote_clientid>`.
    pub local_clientid: String,
    pub remote_username: Option<String>,
    pub remote_password: Option<String>,
    pub local_username: Option<String>,
    pub local_password: Option<String>,
    pub clean_session: bool,
    /// Defaults to `clean_session`.
    pub local_clean_session: bool,
    pub protocol_version: ProtocolVersion,
    /// Seconds, at least 5.
    pub keepalive: u16,
    pub try_private: bool,
    pub notifications: bool,
    /// Default `$SYS/broker/connection/<remote_clientid>/state`.
    pub notification_topic: TopicName,
    pub notifications_local_only: bool,
    pub start_type: StartType,
    pub restart_timeout: RestartTimeout,
    pub idle_timeout: u32,
    pub threshold: u32,
    pub attempt_unsubscribe: bool,
    pub outgoing_retain: bool,
    pub max_packet_size: u32,
    pub bind_address: Option<String>,
    /// 2.1, MQTT 5 bridges: CONNECT's session expiry interval.
    pub session_expiry_interval: u32,
    /// MQTT 5 bridges: CONNECT's receive maximum (0 = not sent): 2.1's
    /// `bridge_receive_maximum`, else `max_inflight_messages`.
    pub receive_maximum: u16,
    /// 2.1: TCP keep-alive probes on the bridge's socket.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// 2.1: TCP_USER_TIMEOUT of the bridge's socket, in milliseconds.
    pub tcp_user_timeout: Option<u32>,
    /// TLS to the remote: `Some` exactly when `bridge_cafile`,
    /// `bridge_capath`, `bridge_tls_use_os_certs` or `bridge_psk` is set,
    /// as mosquitto decides (`net__init_ssl_ctx`).
    pub tls: Option<BridgeTls>,
}

/// `bridge_tcp_keepalive idle interval count` (seconds, seconds, probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    pub idle: u32,
    pub interval: u32,
    pub count: u32,
}

/// The lowest TLS version a bridge accepts (`bridge_tls_version`, a minimum
/// since mosquitto 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeTlsVersion {
    /// `tlsv1.1`: TLS 1.1 and later, as far as OpenSSL's security level
    /// allows.
    Tls11,
    /// TLS 1.2 or 1.3: the default and `tlsv1.2`.
    Tls12,
    /// `tlsv1.3`: TLS 1.3 only.
    Tls13,
}

/// A bridge's TLS settings. Paths are kept as written; the files are read
/// once at start-up (`net::tls::bridge_client_context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTls {
    pub cafile: Option<String>,
    pub capath: Option<String>,
    /// 2.1 `bridge_tls_use_os_certs`: trust the system's CA bundle too.
    pub use_os_certs: bool,
    /// Client certificate chain and key; both or neither.
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    /// Skip the host name check only; the chain is still verified.
    pub insecure: bool,
    pub version: BridgeTlsVersion,
    pub alpn: Option<String>,
    /// 2.1's `bridge_ciphers` (TLS 1.2) and `bridge_ciphers_tls1.3`, in
    /// OpenSSL's names as for a listener's `ciphers`.
    pub ciphers: Option<String>,
    pub ciphers_tls13: Option<String>,
    /// TLS-PSK instead of certificates: `bridge_identity` and `bridge_psk`
    /// (hex).
    pub psk: Option<BridgePsk>,
    /// `bridge_require_ocsp`: the remote must staple a good OCSP response.
    pub require_ocsp: bool,
}

/// `bridge_identity` and `bridge_psk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePsk {
    pub identity: String,
    /// As written: hex digits, turned into the key as mosquitto does.
    pub key_hex: String,
}

/// A bridge while its lines are being read; finished by [`finish`].
#[derive(Debug, Clone, Default)]
pub(crate) struct BridgeDraft {
    name: String,
    addresses: Option<Vec<BridgeAddress>>,
    round_robin: bool,
    topics: Vec<BridgeTopic>,
    remote_clientid: Option<String>,
    local_clientid: Option<String>,
    remote_username: Option<String>,
    remote_password: Option<String>,
    local_username: Option<String>,
    local_password: Option<String>,
    clean_session: bool,
    local_clean_session: Option<bool>,
    protocol_version: Option<ProtocolVersion>,
    keepalive: Option<u16>,
    try_private: Option<bool>,
    notifications: Option<bool>,
    notification_topic: Option<String>,
    notifications_local_only: bool,
    start_type: Option<StartType>,
    restart_timeout: Option<RestartTimeout>,
    idle_timeout: Option<u32>,
    threshold: Option<u32>,
    attempt_unsubscribe: Option<bool>,
    outgoing_retain: Option<bool>,
    max_packet_size: u32,
    bind_address: Option<String>,
    session_expiry_interval: u32,
    receive_maximum: u16,
    tcp_keepalive: Option<TcpKeepalive>,
    tcp_user_timeout: Option<u32>,
    tls_cafile: Option<String>,
    tls_capath: Option<String>,
    tls_use_os_certs: bool,
    tls_certfile: Option<String>,
    tls_keyfile: Option<String>,
    tls_insecure: bool,
    tls_version: Option<String>,
    tls_alpn: Option<String>,
    tls_ciphers: Option<String>,
    tls_ciphers_tls13: Option<String>,
    tls_psk_identity: Option<String>,
    tls_psk: Option<String>,
    tls_require_ocsp: bool,
}

impl BridgeDraft {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn has_certificate_options(&self) -> bool {
        self.tls_cafile.is_some()
            || self.tls_capath.is_some()
            || self.tls_certfile.is_some()
            || self.tls_keyfile.is_some()
    }

    /// `bridge_insecure true` was given (mosquitto warns as it parses it).
    pub fn is_insecure(&self) -> bool {
        self.tls_insecure
    }
}

/// `connection NAME`: starts a new bridge.
pub(crate) fn start(bridges: &mut Vec<BridgeDraft>, tok: &mut Tok) -> R<()> {
    let name = tok.word().ok_or_else(|| empty("connection"))?;
    let name = std::str::from_utf8(name)
        .map_err(|_| "Error: Malformed UTF-8 in configuration.".to_string())?;
    if bridges.iter().any(|b| b.name == name) {
        return Err(format!("Error: Duplicate bridge name \"{name}\"."));
    }
    bridges.push(BridgeDraft {
        name: name.to_string(),
        ..BridgeDraft::default()
    });
    Ok(())
}

/// One option line of the current bridge (`b` is `None` before any
/// `connection`, which mosquitto refuses).
pub(crate) fn option(
    b: Option<&mut BridgeDraft>,
    name: &str,
    tok: &mut Tok,
    notices: &mut Vec<String>,
) -> R<()> {
    let Some(b) = b else {
        return Err("Error: Invalid bridge configuration.".into());
    };
    match name {
        "address" | "addresses" => {
            if b.addresses.is_some() {
                return Err("Error: Invalid bridge configuration.".into());
            }
            b.addresses = Some(addresses(tok)?);
        }
        "topic" => b.topics.push(topic(tok)?),
        "remote_username" | "username" => {
            b.remote_username = Some(parse_string(tok, name, &b.remote_username)?)
        }
        "remote_password" | "password" => {
            b.remote_password = Some(parse_string(tok, name, &b.remote_password)?)
        }
        "remote_clientid" | "clientid" => {
            b.remote_clientid = Some(parse_string(tok, name, &b.remote_clientid)?)
        }
        "local_clientid" => b.local_clientid = Some(parse_string(tok, name, &b.local_clientid)?),
        "local_username" => b.local_username = Some(parse_string(tok, name, &b.local_username)?),
        "local_password" => b.local_password = Some(parse_string(tok, name, &b.local_password)?),
        "cleansession" => b.clean_session = parse_bool(tok, name)?,
        "local_cleansession" => b.local_clean_session = Some(parse_bool(tok, name)?),
        "bridge_protocol_version" => {
            let w = tok.word().ok_or_else(|| empty(name))?;
            b.protocol_version = Some(match w {
                b"mqttv31" => ProtocolVersion::V31,
                b"mqttv311" => ProtocolVersion::V311,
                b"mqttv50" => ProtocolVersion::V5,
                _ => {
                    return Err(format!(
                        "Error: Invalid bridge_protocol_version value ({}).",
                        lossy(w)
                    ));
                }
            });
        }
        "keepalive_interval" => {
            let v = parse_int(tok, name)?;
            if v > i32::from(u16::MAX) {
                return Err("Error: Bridge keepalive value too high.".into());
            }
            b.keepalive = Some(if v < 5 {
                notices.push("keepalive interval too low, using 5 seconds.".into());
                5
            } else {
                v as u16
            });
        }
        "try_private" => b.try_private = Some(parse_bool(tok, name)?),
        "notifications" => b.notifications = Some(parse_bool(tok, name)?),
        "notifications_local_only" => b.notifications_local_only = parse_bool(tok, name)?,
        "notification_topic" => {
            let v = parse_string(tok, name, &b.notification_topic)?;
            b.notification_topic = Some(v);
        }
        "start_type" => {
            let w = tok.word().ok_or_else(|| empty(name))?;
            b.start_type = Some(match w {
                b"automatic" => StartType::Automatic,
                b"lazy" => StartType::Lazy,
                b"once" => StartType::Once,
                b"manual" => return Err("Error: Manual start_type not supported.".into()),
                _ => {
                    return Err(format!(
                        "Error: Invalid start_type value in configuration ({}).",
                        lossy(w)
                    ));
                }
            });
        }
        "restart_timeout" => {
            let mut first = parse_int(tok, name)?;
            if first < 1 {
                notices.push("restart_timeout interval too low, using 1 second.".into());
                first = 1;
            }
            b.restart_timeout = Some(match tok.word() {
                Some(w) if w.first() != Some(&b'#') => {
                    let cap = lexer::atoi(w);
                    if cap < first {
                        return Err(
                            "Error: backoff cap is lower than the base in restart_timeout.".into(),
                        );
                    }
                    RestartTimeout::Backoff {
                        base: first as u32,
                        cap: cap as u32,
                    }
                }
                _ => RestartTimeout::Constant(first as u32),
            });
        }
        "idle_timeout" => {
            let v = parse_int(tok, name)?;
            b.idle_timeout = Some(if v < 1 {
                notices.push("idle_timeout interval too low, using 1 second.".into());
                1
            } else {
                v as u32
            });
        }
        "threshold" => {
            let v = parse_int(tok, name)?;
            b.threshold = Some(if v < 1 {
                notices.push("threshold too low, using 1 message.".into());
                1
            } else {
                v as u32
            });
        }
        "round_robin" => b.round_robin = parse_bool(tok, name)?,
        "bridge_attempt_unsubscribe" => b.attempt_unsubscribe = Some(parse_bool(tok, name)?),
        "bridge_outgoing_retain" => b.outgoing_retain = Some(parse_bool(tok, name)?),
        "bridge_max_packet_size" => b.max_packet_size = parse_int(tok, name)?.max(0) as u32,
        "bridge_bind_address" => b.bind_address = Some(parse_string(tok, name, &b.bind_address)?),
        "bridge_session_expiry_interval" => {
            let v = parse_int(tok, name)?;
            if v < 0 {
                return Err("Error: bridge_session_expiry_interval must not be negative.".into());
            }
            b.session_expiry_interval = v as u32;
        }
        "bridge_tcp_keepalive" => {
            // 2.1: idle, interval and count, each above zero.
            let mut v = [0u32; 3];
            for (slot, (part, what)) in v.iter_mut().zip([
                ("bridge_tcp_keepalive_idle", "idle"),
                ("bridge_tcp_keepalive_interval", "interval"),
                ("bridge_tcp_keepalive_counter", "counter"),
            ]) {
                let n = parse_int(tok, part)?;
                if n <= 0 {
                    return Err(format!("Error: invalid TCP keepalive {what} value."));
                }
                *slot = n as u32;
            }
            b.tcp_keepalive = Some(TcpKeepalive {
                idle: v[0],
                interval: v[1],
                count: v[2],
            });
        }
        "bridge_tcp_user_timeout" => {
            let v = parse_int(tok, name)?;
            if v < 0 {
                return Err("Error: invalid TCP user timeout value.".into());
            }
            b.tcp_user_timeout = Some(v as u32);
        }
        "bridge_receive_maximum" => {
            let v = parse_int(tok, name)?;
            b.receive_maximum =
                u16::try_from(v).map_err(|_| format!("Error: Invalid {name} value ({v})."))?;
        }
        // mosquitto checks the mix of certificates and PSK line by line,
        // against what came before.
        "bridge_cafile" | "bridge_capath" | "bridge_certfile" | "bridge_keyfile"
            if b.tls_psk_identity.is_some() || b.tls_psk.is_some() =>
        {
            return Err(
                "Error: Cannot use both certificate and psk encryption in a single bridge.".into(),
            );
        }
        "bridge_identity" | "bridge_psk" if b.has_certificate_options() => {
            let kind = if name == "bridge_identity" {
                "identity"
            } else {
                "psk"
            };
            return Err(format!(
                "Error: Cannot use both certificate and {kind} encryption in a single bridge."
            ));
        }
        "bridge_cafile" => b.tls_cafile = Some(parse_string(tok, name, &b.tls_cafile)?),
        "bridge_capath" => b.tls_capath = Some(parse_string(tok, name, &b.tls_capath)?),
        "bridge_certfile" => b.tls_certfile = Some(parse_string(tok, name, &b.tls_certfile)?),
        "bridge_keyfile" => b.tls_keyfile = Some(parse_string(tok, name, &b.tls_keyfile)?),
        "bridge_insecure" => b.tls_insecure = parse_bool(tok, name)?,
        "bridge_tls_use_os_certs" => b.tls_use_os_certs = parse_bool(tok, name)?,
        "bridge_identity" => {
            b.tls_psk_identity = Some(parse_string(tok, name, &b.tls_psk_identity)?)
        }
        "bridge_psk" => b.tls_psk = Some(parse_string(tok, name, &b.tls_psk)?),
        "bridge_require_ocsp" => b.tls_require_ocsp = parse_bool(tok, name)?,
        "bridge_alpn" => b.tls_alpn = Some(parse_string(tok, name, &b.tls_alpn)?),
        "bridge_ciphers" => b.tls_ciphers = Some(parse_string(tok, name, &b.tls_ciphers)?),
        "bridge_ciphers_tls1.3" | "bridge_ciphers_tls" => {
            b.tls_ciphers_tls13 = Some(parse_string(tok, name, &b.tls_ciphers_tls13)?)
        }
        "bridge_tls_version" => {
            let v = parse_string(tok, name, &b.tls_version)?;
            // mosquitto checks the value only when it connects; culex checks
            // it here, with mosquitto's text, so the error names the line.
            if !matches!(v.as_str(), "tlsv1.3" | "tlsv1.2" | "tlsv1.1") {
                return Err(format!("Error: Protocol {v} not supported."));
            }
            b.tls_version = Some(v);
        }
        // Parsed for their arguments only; the directive table says what
        // culex does with them (a warning at start-up, or a refusal).
        _ => {
            if tok.rest().is_none() {
                return Err(empty(name));
            }
        }
    }
    Ok(())
}

/// `address host[:port] [host[:port] ...]`: the last `:` separates the
/// port, so an IPv6 address needs one.
fn addresses(tok: &mut Tok) -> R<Vec<BridgeAddress>> {
    let mut v = Vec::new();
    while let Some(w) = tok.word() {
        if w.first() == Some(&b'#') {
            break;
        }
        let (host, port) = match w.iter().rposition(|&c| c == b':') {
            Some(i) => {
                let port = lexer::atoi(&w[i + 1..]);
                if !(1..=65535).contains(&port) {
                    return Err(format!("Error: Invalid port value ({port})."));
                }
                (&w[..i], port as u16)
            }
            None => (w, 1883),
        };
        let host = std::str::from_utf8(host)
            .map_err(|_| "Error: Malformed UTF-8 in configuration.".to_string())?;
        v.push(BridgeAddress {
            host: host.to_string(),
            port,
        });
    }
    if v.is_empty() {
        return Err(empty("address"));
    }
    Ok(v)
}

/// `""` on a topic line means "none".
fn quoted_empty(w: &[u8]) -> bool {
    w == b"\"\""
}

fn utf8(w: &[u8]) -> R<String> {
    std::str::from_utf8(w)
        .map(str::to_string)
        .map_err(|_| "Error: Malformed UTF-8 in configuration.".to_string())
}

/// `topic pattern [in|out|both [qos [local-prefix [remote-prefix]]]]`.
fn topic(tok: &mut Tok) -> R<BridgeTopic> {
    let pattern = tok.word().ok_or_else(|| empty("topic"))?;
    let pattern = if quoted_empty(pattern) {
        None
    } else {
        Some(utf8(pattern)?)
    };
    let mut direction = Direction::Out;
    let mut qos = Qos::AtMostOnce;
    let mut local_prefix = None;
    let mut remote_prefix = None;
    let mut words = std::iter::from_fn(|| tok.word().filter(|w| w.first() != Some(&b'#')));
    if let Some(w) = words.next() {
        direction = match w.to_ascii_lowercase().as_slice() {
            b"out" => Direction::Out,
            b"in" => Direction::In,
            b"both" => Direction::Both,
            _ => {
                return Err(format!(
                    "Error: Invalid bridge topic direction '{}'.",
                    lossy(w)
                ));
            }
        };
        if let Some(w) = words.next() {
            qos = match lexer::atoi(w) {
                0 => Qos::AtMostOnce,
                1 => Qos::AtLeastOnce,
                2 => Qos::ExactlyOnce,
                _ => return Err(format!("Error: Invalid bridge QoS level '{}'.", lossy(w))),
            };
            if let Some(w) = words.next() {
                if !quoted_empty(w) {
                    let p = utf8(w)?;
                    if TopicName::new(p.clone()).is_err() {
                        return Err(format!("Error: Invalid bridge topic local prefix '{p}'."));
                    }
                    local_prefix = Some(p);
                }
                if let Some(w) = words.next()
                    && !quoted_empty(w)
                {
                    let p = utf8(w)?;
                    if TopicName::new(p.clone()).is_err() {
                        return Err(format!("Error: Invalid bridge topic remote prefix '{p}'."));
                    }
                    remote_prefix = Some(p);
                }
            }
        }
    }
    let join = |prefix: &Option<String>| -> R<TopicFilter> {
        let text = match (prefix, &pattern) {
            (Some(p), Some(t)) => format!("{p}{t}"),
            (Some(p), None) => p.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => return Err("Error: Invalid bridge remapping.".into()),
        };
        // mosquitto says "local" for either side here.
        TopicFilter::new(text.clone()).map_err(|_| {
            format!("Error: Invalid bridge topic local prefix and pattern combination '{text}'.")
        })
    };
    if pattern.is_none() && (local_prefix.is_none() || remote_prefix.is_none()) {
        return Err("Error: Invalid bridge remapping.".into());
    }
    Ok(BridgeTopic {
        direction,
        qos,
        local_filter: join(&local_prefix)?,
        remote_filter: join(&remote_prefix)?,
        local_prefix,
        remote_prefix,
    })
}

/// The host name as `gethostname` returns it, for the default remote
/// client id (read from the kernel: the static binary has no NSS).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The end-of-configuration checks and defaults of one bridge.
pub(crate) fn finish(d: BridgeDraft) -> R<Bridge> {
    let tls = tls(&d)?;
    let Some(addresses) = d.addresses else {
        return Err("Error: Invalid bridge configuration: no remote addresses defined.".into());
    };
    if d.topics.is_empty() {
        return Err("Error: Invalid bridge configuration: no topics defined.".into());
    }
    let remote_clientid = d
        .remote_clientid
        .unwrap_or_else(|| format!("{}.{}", hostname(), d.name));
    let local_clientid = d
        .local_clientid
        .unwrap_or_else(|| format!("local.{remote_clientid}"));
    let notification_topic = match d.notification_topic {
        Some(t) => TopicName::new(t.clone())
            .map_err(|_| format!("Error: Invalid bridge notification_topic '{t}'."))?,
        None => TopicName::new(format!("$SYS/broker/connection/{remote_clientid}/state"))
            .map_err(|_| format!("Error: Invalid bridge remote_clientid '{remote_clientid}'."))?,
    };
    Ok(Bridge {
        name: d.name,
        addresses,
        round_robin: d.round_robin,
        topics: d.topics,
        remote_clientid,
        local_clientid,
        remote_username: d.remote_username,
        remote_password: d.remote_password,
        local_username: d.local_username,
        local_password: d.local_password,
        clean_session: d.clean_session,
        local_clean_session: d.local_clean_session.unwrap_or(d.clean_session),
        protocol_version: d.protocol_version.unwrap_or(ProtocolVersion::V311),
        keepalive: d.keepalive.unwrap_or(60),
        try_private: d.try_private.unwrap_or(true),
        notifications: d.notifications.unwrap_or(true),
        notification_topic,
        notifications_local_only: d.notifications_local_only,
        start_type: d.start_type.unwrap_or(StartType::Automatic),
        restart_timeout: d
            .restart_timeout
            .unwrap_or(RestartTimeout::Backoff { base: 5, cap: 30 }),
        idle_timeout: d.idle_timeout.unwrap_or(60),
        threshold: d.threshold.unwrap_or(10),
        attempt_unsubscribe: d.attempt_unsubscribe.unwrap_or(true),
        outgoing_retain: d.outgoing_retain.unwrap_or(true),
        max_packet_size: d.max_packet_size,
        bind_address: d.bind_address,
        session_expiry_interval: d.session_expiry_interval,
        receive_maximum: d.receive_maximum,
        tcp_keepalive: d.tcp_keepalive,
        tcp_user_timeout: d.tcp_user_timeout,
        tls,
    })
}

/// The TLS settings of a finished bridge. mosquitto turns TLS on only when
/// a CA source is set and silently connects in plaintext otherwise, client
/// certificate and all; culex refuses such a configuration instead, since
/// whoever wrote `bridge_certfile` expected TLS.
fn tls(d: &BridgeDraft) -> R<Option<BridgeTls>> {
    let psk = match (&d.tls_psk_identity, &d.tls_psk) {
        (Some(identity), Some(key_hex)) => Some(BridgePsk {
            identity: identity.clone(),
            key_hex: key_hex.clone(),
        }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err("Error: Invalid bridge configuration: missing bridge_identity.".into());
        }
        (Some(_), None) => {
            return Err("Error: Invalid bridge configuration: missing bridge_psk.".into());
        }
    };
    let certificates = d.tls_cafile.is_some() || d.tls_capath.is_some() || d.tls_use_os_certs;
    if certificates && psk.is_some() {
        return Err(
            "Error: Invalid bridge configuration: Cannot use both certificate and psk encryption in a single bridge."
                .into(),
        );
    }
    if let Some(p) = &psk
        && !p.key_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!(
            "Error: Invalid bridge configuration: bridge_psk of bridge {} contains non-hexadecimal characters.",
            d.name
        ));
    }
    let enabled = certificates || psk.is_some();
    if !enabled {
        let set = [
            ("bridge_certfile", d.tls_certfile.is_some()),
            ("bridge_keyfile", d.tls_keyfile.is_some()),
            ("bridge_insecure", d.tls_insecure),
            ("bridge_tls_version", d.tls_version.is_some()),
            ("bridge_alpn", d.tls_alpn.is_some()),
            ("bridge_ciphers", d.tls_ciphers.is_some()),
            ("bridge_ciphers_tls1.3", d.tls_ciphers_tls13.is_some()),
            ("bridge_require_ocsp", d.tls_require_ocsp),
        ];
        if let Some((directive, _)) = set.iter().find(|(_, on)| *on) {
            return Err(format!(
                "Error: Invalid bridge configuration: {directive} is set but neither bridge_cafile nor bridge_capath is, so bridge {} would not use TLS.",
                d.name
            ));
        }
        return Ok(None);
    }
    if d.tls_certfile.is_some() != d.tls_keyfile.is_some() {
        return Err(
            "Error: Invalid bridge configuration: both bridge_certfile and bridge_keyfile must be provided if one of them is set."
                .into(),
        );
    }
    if let Some(alpn) = &d.tls_alpn
        && alpn.len() > 255
    {
        return Err(
            "Error: Invalid bridge configuration: bridge_alpn is longer than 255 bytes.".into(),
        );
    }
    Ok(Some(BridgeTls {
        cafile: d.tls_cafile.clone(),
        capath: d.tls_capath.clone(),
        use_os_certs: d.tls_use_os_certs,
        certfile: d.tls_certfile.clone(),
        keyfile: d.tls_keyfile.clone(),
        insecure: d.tls_insecure,
        version: match d.tls_version.as_deref() {
            Some("tlsv1.3") => BridgeTlsVersion::Tls13,
            Some("tlsv1.1") => BridgeTlsVersion::Tls11,
            _ => BridgeTlsVersion::Tls12,
        },
        alpn: d.tls_alpn.clone(),
        ciphers: d.tls_ciphers.clone(),
        ciphers_tls13: d.tls_ciphers_tls13.clone(),
        psk,
        require_ocsp: d.tls_require_ocsp,
    }))
}

/// mosquitto announces the broker's `max_inflight_messages` (default 20)
/// as a 5.0 bridge's Receive Maximum; 2.1's `bridge_receive_maximum`
/// overrides it. Unlimited (0) leaves the property out, which means 65535:
/// mosquitto sends the invalid value 0, which a remote may refuse.
pub(crate) fn inherit_receive_maximum(bridges: &mut [Bridge], max_inflight_messages: u16) {
    for b in bridges.iter_mut().filter(|b| b.receive_maximum == 0) {
        b.receive_maximum = max_inflight_messages;
    }
}

/// Finishes every bridge and checks what must be unique across them.
pub(crate) fn finish_all(drafts: Vec<BridgeDraft>) -> R<Vec<Bridge>> {
    let bridges = drafts.into_iter().map(finish).collect::<R<Vec<_>>>()?;
    for (i, a) in bridges.iter().enumerate() {
        if bridges[i + 1..]
            .iter()
            .any(|b| b.local_clientid == a.local_clientid)
        {
            return Err(format!(
                "Error: Bridge local_clientid '{}' is not unique. Try changing or setting the local_clientid value for one of the bridges.",
                a.local_clientid
            ));
        }
    }
    Ok(bridges)
}
