//! The `$SYS/broker/...` tree mosquitto publishes: retained messages, sent
//! every `sys_interval` seconds and only when their value changed
//! (broker-behaviour.md §4; culex behaves like 2.0.16+: no message expiry).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::codec::{Message, Qos, TopicName};

use super::{Action, Broker};

/// mosquitto's exponentially averaged per-minute rates over 1, 5 and 15
/// minutes: `new = r + exp(-dt/W)·(old − r)`.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    avg: [f64; 3],
    last_count: u64,
}

impl Load {
    fn update(&mut self, count: u64, dt: f64) -> [f64; 3] {
        let events = count.saturating_sub(self.last_count) as f64;
        self.last_count = count;
        let rate = if dt > 0.0 { events * 60.0 / dt } else { 0.0 };
        for (avg, window) in self.avg.iter_mut().zip([60.0, 300.0, 900.0]) {
            *avg = rate + (-dt / window).exp() * (*avg - rate);
        }
        self.avg
    }
}

#[derive(Debug)]
pub struct SysTree {
    interval: Duration,
    /// Set by `Broker::start`.
    started: Option<Instant>,
    last_update: Option<Instant>,
    /// Last published value per topic: republish only on change.
    published: HashMap<String, String>,
    loads: HashMap<&'static str, Load>,
    heap_maximum: u64,
}

impl SysTree {
    pub fn new(interval_secs: u32) -> SysTree {
        SysTree {
            interval: Duration::from_secs(u64::from(interval_secs)),
            started: None,
            last_update: None,
            published: HashMap::new(),
            loads: HashMap::new(),
            heap_maximum: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    pub fn next_due(&self) -> Option<Instant> {
        if !self.enabled() {
            return None;
        }
        match self.last_update {
            None => self.started,
            Some(t) => Some(t + self.interval),
        }
    }
}

/// The text of `$SYS/broker/version`: mosquitto's shape, so tools that read
/// "mosquitto version X" keep working, naming culex too.
pub fn version_text() -> String {
    format!(
        "mosquitto version {} (culex {})",
        crate::MOSQUITTO_COMPAT,
        env!("CARGO_PKG_VERSION")
    )
}

impl Broker {
    /// Starts the clock for `uptime` and publishes `$SYS/broker/version`
    /// once (when `$SYS` is on).
    pub fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.now = now;
        self.sys.started = Some(now);
        if self.sys.enabled() {
            self.publish_sys("$SYS/broker/version", version_text(), out);
        }
    }

    pub(super) fn sys_due(&self, now: Instant) -> bool {
        self.sys.next_due().is_some_and(|d| d <= now)
    }

    /// Recomputes every `$SYS` value and publishes those that changed.
    pub(super) fn update_sys(&mut self, now: Instant, out: &mut Vec<Action>) {
        let dt = match self.sys.last_update {
            Some(t) => now.saturating_duration_since(t).as_secs_f64(),
            None => 0.0,
        };
        let first = self.sys.last_update.is_none();
        self.sys.last_update = Some(now);
        let connected = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn().is_some())
            .count();
        let total = self.sessions.len();
        let queued: usize = self
            .sessions
            .iter()
            .map(|(_, s)| s.queue().len() + s.inflight().len())
            .sum();
        let queued_bytes: u64 = self.sessions.iter().map(|(_, s)| s.queued_bytes()).sum();
        let stored = self.retained.len() + queued;
        let st = self.stats.clone();
        let started = self.sys.started.unwrap_or(now);
        let uptime = now.saturating_duration_since(started).as_secs();
        let mut values: Vec<(String, String)> = vec![
            ("uptime".into(), format!("{uptime} seconds")),
            ("clients/total".into(), total.to_string()),
            ("clients/connected".into(), connected.to_string()),
            ("clients/active".into(), connected.to_string()),
            (
                "clients/disconnected".into(),
                (total - connected).to_string(),
            ),
            ("clients/inactive".into(), (total - connected).to_string()),
            ("clients/maximum".into(), st.clients_maximum.to_string()),
            ("clients/expired".into(), st.clients_expired.to_string()),
            ("messages/stored".into(), stored.to_string()),
            ("store/messages/count".into(), stored.to_string()),
            (
                "store/messages/bytes".into(),
                (self.retained.payload_bytes() as u64 + queued_bytes).to_string(),
            ),
            ("messages/received".into(), st.messages_received.to_string()),
            ("messages/sent".into(), st.messages_sent.to_string()),
            (
                "publish/messages/received".into(),
                st.publish_received.to_string(),
            ),
            ("publish/messages/sent".into(), st.publish_sent.to_string()),
            (
                "publish/messages/dropped".into(),
                st.publish_dropped.to_string(),
            ),
            (
                "publish/bytes/received".into(),
                st.publish_bytes_received.to_string(),
            ),
            (
                "publish/bytes/sent".into(),
                st.publish_bytes_sent.to_string(),
            ),
            ("bytes/received".into(), st.bytes_received.to_string()),
            ("bytes/sent".into(), st.bytes_sent.to_string()),
            ("subscriptions/count".into(), self.subs.count().to_string()),
            (
                "shared_subscriptions/count".into(),
                self.subs.shared_count().to_string(),
            ),
            (
                "retained messages/count".into(),
                self.retained.len().to_string(),
            ),
        ];
        if let Some(heap) = self.settings.heap_probe.and_then(|probe| probe()) {
            self.sys.heap_maximum = self.sys.heap_maximum.max(heap);
            values.push(("heap/current".into(), heap.to_string()));
            values.push(("heap/maximum".into(), self.sys.heap_maximum.to_string()));
        }
        let loads: [(&'static str, u64); 9] = [
            ("messages/received", st.messages_received),
            ("messages/sent", st.messages_sent),
            ("publish/received", st.publish_received),
            ("publish/sent", st.publish_sent),
            ("publish/dropped", st.publish_dropped),
            ("bytes/received", st.bytes_received),
            ("bytes/sent", st.bytes_sent),
            ("sockets", st.sockets_opened),
            ("connections", st.connects),
        ];
        for (name, count) in loads {
            let load = self.sys.loads.entry(name).or_default();
            let avg = if first {
                load.last_count = count;
                [0.0; 3]
            } else {
                load.update(count, dt)
            };
            for (suffix, v) in ["1min", "5min", "15min"].iter().zip(avg) {
                values.push((format!("load/{name}/{suffix}"), format!("{v:.2}")));
            }
        }
        for (topic, value) in values {
            let topic = format!("$SYS/broker/{topic}");
            if self.sys.published.get(&topic) == Some(&value) {
                continue;
            }
            self.sys.published.insert(topic.clone(), value.clone());
            self.publish_sys(&topic, value, out);
        }
    }

    /// `log_dest topic`: a log line as a non-retained QoS 2 message on
    /// `$SYS/broker/log/<type>` with mosquitto's 20 s expiry.
    pub fn publish_log(
        &mut self,
        kind: crate::logging::LogType,
        line: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(topic) = kind.sys_topic() else {
            return;
        };
        let Ok(topic) = TopicName::new(topic) else {
            return;
        };
        let message = Rc::new(Message::new(
            topic,
            line.as_bytes().to_vec(),
            Qos::ExactlyOnce,
            false,
            Default::default(),
            Some(self.now + std::time::Duration::from_secs(20)),
        ));
        self.route(&message, None, out);
    }

    fn publish_sys(&mut self, topic: &str, value: String, out: &mut Vec<Action>) {
        let Ok(topic) = TopicName::new(topic) else {
            return;
        };
        let message = Rc::new(Message::new(
            topic,
            value.into_bytes(),
            Qos::ExactlyOnce,
            true,
            Default::default(),
            None,
        ));
        self.retained.set(message.clone());
        self.route(&message, None, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_average_converges_to_the_rate() {
        let mut l = Load::default();
        let mut count = 0;
        let mut avg = [0.0; 3];
        for _ in 0..600 {
            count += 10; // 10 events per 10 s = 60 per minute
            avg = l.update(count, 10.0);
        }
        assert!((avg[0] - 60.0).abs() < 0.01, "{avg:?}");
        assert!((avg[2] - 60.0).abs() < 1.0, "{avg:?}");
    }
}
