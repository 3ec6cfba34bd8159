//! culex's own bridges, sans-IO: what a bridge says to its remote broker,
//! how topics are mapped between the two sides, and when it reconnects.
//! `net::bridge` moves the bytes; `broker::bridge` is its local side.

use std::time::{Duration, Instant};

use crate::codec::{
    Connect, Packet, PacketId, Properties, ProtocolVersion, Qos, RetainHandling, Subscribe,
    SubscriptionOptions, TopicFilter, Unsubscribe, Will,
};
use crate::config::bridge::{Bridge, RestartTimeout};

#[cfg(test)]
mod tests;

/// The CONNECT sent to the remote in `version` (the configured one, or
/// 3.1.1 after a 3.x remote refused 5.0): clean session as configured, the
/// bridge flag (3.x only, while `try_private` holds: a remote may refuse
/// it), and the `0` state as will.
pub fn connect_packet(b: &Bridge, version: ProtocolVersion, try_private: bool) -> Connect {
    let will = (b.notifications && !b.notifications_local_only).then(|| Will {
        topic: b.notification_topic.clone(),
        payload: b"0".to_vec(),
        qos: Qos::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    let mut properties = Properties::default();
    if version.is_v5() {
        if b.session_expiry_interval > 0 {
            properties.session_expiry_interval = Some(b.session_expiry_interval);
        }
        if b.receive_maximum > 0 {
            properties.receive_maximum = Some(b.receive_maximum);
        }
    }
    Connect {
        version,
        bridge: try_private && !version.is_v5(),
        clean_start: b.clean_session,
        keep_alive: b.keepalive,
        client_id: b.remote_clientid.clone(),
        will,
        username: b.remote_username.clone(),
        password: b.remote_password.clone().map(String::into_bytes),
        properties,
    }
}

/// What the bridge sends once the remote accepted it, in configuration
/// order as mosquitto: a SUBSCRIBE per `in`/`both` topic (at most at
/// `max_qos`, the remote's limit) and, with `bridge_attempt_unsubscribe`,
/// an UNSUBSCRIBE per `out` topic (clearing what an earlier configuration
/// subscribed). `version` is the protocol spoken (5.0 asks for no local and
/// retain as published). The packet ids are placeholders: the core numbers
/// the requests from the local session's ids (`Broker::bridge_connected`).
pub fn remote_subscriptions(b: &Bridge, version: ProtocolVersion, max_qos: Qos) -> Vec<Packet> {
    let mut packets = Vec::new();
    for t in &b.topics {
        if t.direction.inbound() {
            let v5 = version.is_v5();
            let options = SubscriptionOptions {
                qos: t.qos.min(max_qos),
                no_local: v5,
                retain_as_published: v5,
                retain_handling: RetainHandling::SendAlways,
            };
            packets.push(Packet::Subscribe(Subscribe {
                packet_id: PacketId::MIN,
                filters: vec![(t.remote_filter.clone(), options)],
                properties: Properties::default(),
            }));
        } else if b.attempt_unsubscribe {
            packets.push(Packet::Unsubscribe(Unsubscribe {
                packet_id: PacketId::MIN,
                filters: vec![t.remote_filter.clone()],
                properties: Properties::default(),
            }));
        }
    }
    packets
}

/// The debug line mosquitto logs for each request it sends the remote.
pub fn request_log_line(local_clientid: &str, packet: &Packet) -> Option<String> {
    match packet {
        Packet::Subscribe(s) => {
            let (f, o) = s.filters.first()?;
            let options = u8::from(o.no_local) << 2 | u8::from(o.retain_as_published) << 3;
            Some(format!(
                "Bridge {local_clientid} sending SUBSCRIBE (Mid: {}, Topic: {f}, QoS: {}, Options: 0x{options:02x})",
                s.packet_id,
                o.qos.as_u8()
            ))
        }
        Packet::Unsubscribe(u) => {
            let f = u.filters.first()?;
            Some(format!(
                "Bridge {local_clientid} sending UNSUBSCRIBE (Mid: {}, Topic: {f})",
                u.packet_id
            ))
        }
        _ => None,
    }
}

/// The local filters the bridge subscribes to: its `out`/`both` topics.
pub fn local_subscriptions(b: &Bridge) -> Vec<(TopicFilter, Qos)> {
    b.topics
        .iter()
        .filter(|t| t.direction.outbound())
        .map(|t| (t.local_filter.clone(), t.qos))
        .collect()
}

/// A local topic as the remote should see it: the first `out`/`both` topic
/// with prefixes whose local filter matches decides; its local prefix is
/// removed and its remote prefix added. `None`: sent unchanged.
pub fn remap_out(b: &Bridge, topic: &str) -> Option<String> {
    let t = b.topics.iter().find(|t| {
        t.direction.outbound()
            && (t.local_prefix.is_some() || t.remote_prefix.is_some())
            && t.local_filter.matches(topic)
    })?;
    Some(swap_prefix(
        topic,
        t.local_prefix.as_deref(),
        t.remote_prefix.as_deref(),
    ))
}

/// A remote topic as local clients should see it (the mirror of
/// [`remap_out`], over the `in`/`both` topics).
pub fn remap_in(b: &Bridge, topic: &str) -> Option<String> {
    let t = b.topics.iter().find(|t| {
        t.direction.inbound()
            && (t.local_prefix.is_some() || t.remote_prefix.is_some())
            && t.remote_filter.matches(topic)
    })?;
    Some(swap_prefix(
        topic,
        t.remote_prefix.as_deref(),
        t.local_prefix.as_deref(),
    ))
}

fn swap_prefix(topic: &str, remove: Option<&str>, add: Option<&str>) -> String {
    let rest = match remove {
        Some(p) => topic.strip_prefix(p).unwrap_or(topic),
        None => topic,
    };
    match add {
        Some(p) => format!("{p}{rest}"),
        None => rest.to_string(),
    }
}

/// When to try again after a failed or lost connection: mosquitto's
/// constant `restart_timeout`, or its "decorrelated jitter" backoff
/// (each wait between the base and three times the last one, capped).
#[derive(Debug, Clone)]
pub struct Backoff {
    timeout: RestartTimeout,
    last: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(timeout: RestartTimeout, seed: u64) -> Backoff {
        let last = match timeout {
            RestartTimeout::Constant(s) => s,
            RestartTimeout::Backoff { base, .. } => base,
        };
        Backoff {
            timeout,
            last,
            rng: seed | 1,
        }
    }

    /// The connection worked: the next wait starts from the base again.
    pub fn reset(&mut self) {
        if let RestartTimeout::Backoff { base, .. } = self.timeout {
            self.last = base;
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let secs = match self.timeout {
            RestartTimeout::Constant(s) => s,
            RestartTimeout::Backoff { base, cap } => {
                let high = self.last.saturating_mul(3).max(base);
                let span = u64::from(high - base) + 1;
                let pick = base + (self.random() % span) as u32;
                self.last = pick.min(cap);
                self.last
            }
        };
        Duration::from_secs(u64::from(secs.max(1)))
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The remote side's keep alive, from the client's point of view: a
/// PINGREQ when nothing was sent for `keepalive` seconds, and the
/// connection given up when a PINGREQ went unanswered that long.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    interval: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
}

/// What the keep alive asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepAliveAction {
    Nothing,
    SendPing,
    GiveUp,
}

impl KeepAlive {
    pub fn new(keepalive_secs: u16, now: Instant) -> KeepAlive {
        KeepAlive {
            interval: Duration::from_secs(u64::from(keepalive_secs.max(1))),
            last_sent: now,
            ping_sent: None,
        }
    }

    pub fn sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// Any packet from the remote shows it is alive.
    pub fn received(&mut self) {
        self.ping_sent = None;
    }

    pub fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(at) => at + self.interval,
            None => self.last_sent + self.interval,
        }
    }

    pub fn poll(&mut self, now: Instant) -> KeepAliveAction {
        if now < self.deadline() {
            return KeepAliveAction::Nothing;
        }
        if self.ping_sent.is_some() {
            return KeepAliveAction::GiveUp;
        }
        self.ping_sent = Some(now);
        self.last_sent = now;
        KeepAliveAction::SendPing
    }
}

/// The protocol version a bridge speaks, as mosquitto logs it.
pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V31 => "mqttv31",
        ProtocolVersion::V311 => "mqttv311",
        ProtocolVersion::V5 => "mqttv50",
    }
}
