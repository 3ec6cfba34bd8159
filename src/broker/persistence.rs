//! Mapping the broker's state to and from `persist::DbContents`, the plain
//! model of a `mosquitto.db`. The file format itself lives in `persist`;
//! this is only which of our structures become which chunks.
//!
//! What is kept, as mosquitto keeps it: retained messages (never `$SYS`),
//! durable sessions (client id, username, expiry, listener port), their
//! subscriptions (never shared ones), queued and in-flight outgoing messages
//! with their packet ids and states. Not kept (mosquitto does not either):
//! wills, clean sessions, topic aliases.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::codec::{
    Message, PacketId, Properties, ProtocolVersion, Qos, RetainHandling, SharedMessage,
    SubscriptionOptions, TopicFilter, TopicName,
};
use crate::persist::{
    DbContents, Direction, MsgState, SUB_OPT_NO_LOCAL, SUB_OPT_RETAIN_AS_PUBLISHED, StoredClient,
    StoredClientMessage, StoredMessage, StoredSubscription,
};

use super::retain_source::RetainSource;
use super::session::{AwaitingRelease, Delivery, Inflight, NEVER, OutState, Presence, Session};
use super::subscriptions::Subscriber;
use super::{Broker, Timer};
use std::cmp::Reverse;

/// Assigns store ids to shared messages by identity, so a message that is
/// both retained and queued is stored once and referenced twice.
#[derive(Default)]
struct StoreIds {
    ids: HashMap<*const Message, u64, foldhash::fast::RandomState>,
    messages: Vec<StoredMessage>,
}

impl StoreIds {
    fn id(&mut self, m: &SharedMessage, now: Instant, now_unix: i64) -> u64 {
        let key = Rc::as_ptr(m);
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.messages.len() as u64 + 1;
        self.ids.insert(key, id);
        // The file keeps expiry as an absolute time, not as a property.
        let mut properties = m.properties.to_properties();
        properties.message_expiry_interval = None;
        let expiry_time = m
            .remaining_expiry(now)
            .map(|secs| now_unix + i64::from(secs))
            .unwrap_or(0);
        self.messages.push(StoredMessage {
            store_id: id,
            expiry_time,
            source_id: None,
            source_username: None,
            source_port: 0,
            source_mid: 0,
            topic: m.topic.as_str().to_owned(),
            payload: m.payload.clone(),
            qos: m.qos.as_u8(),
            retain: m.retain,
            properties: properties.into(),
        });
        id
    }
}

fn state_of(s: OutState) -> MsgState {
    match s {
        OutState::AwaitPuback => MsgState::WaitForPuback,
        OutState::AwaitPubrec => MsgState::WaitForPubrec,
        OutState::AwaitPubcomp => MsgState::WaitForPubcomp,
    }
}

impl Broker {
    /// Everything worth saving, as mosquitto would save it. `now_unix` is
    /// the wall clock (for absolute session expiry times).
    pub fn snapshot(&self, now: Instant, now_unix: i64) -> DbContents {
        let mut store = StoreIds::default();
        let mut db = DbContents::default();
        for m in self.retained.iter() {
            if m.topic.as_str().starts_with("$SYS") {
                continue;
            }
            let id = store.id(m, now, now_unix);
            db.retained.push(id);
            // The publisher, as mosquitto keeps it for check_retain_source.
            if let (Some(src), Some(stored)) = (
                self.retain_sources.get(m.topic.as_str()),
                store.messages.get_mut(id as usize - 1),
            ) {
                stored.source_id = Some(src.client_id.to_string());
                stored.source_username = src.username.as_deref().map(String::from);
                stored.source_port = self.listeners.get(src.listener).map_or(0, |l| l.port);
            }
        }
        for (_, s) in self.sessions.iter() {
            if !s.is_durable() {
                continue;
            }
            let client_id = s.client_id.to_string();
            let expiry_time = match (s.disconnected_at(), s.expiry_interval) {
                (Some(t), interval) if interval != NEVER => {
                    let offline = now.saturating_duration_since(t).as_secs() as i64;
                    now_unix - offline + i64::from(interval)
                }
                _ => 0,
            };
            let port = self.listeners.get(s.listener).map(|l| l.port).unwrap_or(0);
            db.clients.push(StoredClient {
                client_id: client_id.clone(),
                username: s.username.as_deref().map(String::from),
                session_expiry_time: expiry_time,
                session_expiry_interval: s.expiry_interval,
                last_mid: s.last_packet_id(),
                listener_port: port,
                disconnect_time: None,
            });
            for i in s.inflight() {
                db.client_messages.push(StoredClientMessage {
                    client_id: client_id.clone(),
                    store_id: store.id(&i.delivery.message, now, now_unix),
                    mid: i.packet_id.get(),
                    qos: i.delivery.qos.as_u8(),
                    state: state_of(i.state),
                    retain: i.delivery.retain,
                    dup: false,
                    direction: Direction::Out,
                    properties: sub_id_properties(i.delivery.subscription_id),
                });
            }
            for a in s.awaiting_pubrel() {
                let Some(message) = &a.message else {
                    continue;
                };
                db.client_messages.push(StoredClientMessage {
                    client_id: client_id.clone(),
                    store_id: store.id(message, now, now_unix),
                    mid: a.packet_id,
                    qos: Qos::ExactlyOnce.as_u8(),
                    state: MsgState::WaitForPubrel,
                    retain: message.retain,
                    dup: false,
                    direction: Direction::In,
                    properties: Properties::default(),
                });
            }
            // Queued QoS 1/2 messages carry the ids they were given when
            // queued, as mosquitto's do: it sends those ids on reconnect.
            for d in s.queue() {
                let mid = d.packet_id.map_or(0, |p| p.get());
                db.client_messages.push(StoredClientMessage {
                    client_id: client_id.clone(),
                    store_id: store.id(&d.message, now, now_unix),
                    mid,
                    qos: d.qos.as_u8(),
                    state: MsgState::Queued,
                    retain: d.retain,
                    dup: false,
                    direction: Direction::Out,
                    properties: sub_id_properties(d.subscription_id),
                });
            }
            let mut subs: Vec<_> = s
                .subscriptions
                .iter()
                .filter(|(f, _)| f.shared().is_none())
                .collect();
            subs.sort_by(|a, b| a.0.cmp(b.0));
            for (filter, (opts, id)) in subs {
                let mut options = 0;
                if opts.no_local {
                    options |= SUB_OPT_NO_LOCAL;
                }
                if opts.retain_as_published {
                    options |= SUB_OPT_RETAIN_AS_PUBLISHED;
                }
                db.subscriptions.push(StoredSubscription {
                    client_id: client_id.clone(),
                    topic: filter.as_str().to_owned(),
                    qos: opts.qos.as_u8(),
                    options,
                    identifier: id.unwrap_or(0),
                });
            }
        }
        db.last_db_id = store.messages.len() as u64;
        db.messages = store.messages;
        db.shutdown = true;
        db
    }

    /// Loads a database into an empty broker. Returns warnings for entries
    /// that could not be used (each logged by the caller, none fatal).
    pub fn restore(&mut self, mut db: DbContents, now: Instant, now_unix: i64) -> Vec<String> {
        self.now = now;
        let mut warnings = Vec::new();
        let mut messages: HashMap<u64, SharedMessage, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(db.messages.len(), Default::default());
        // Publishers of stored messages, for check_retain_source only.
        let keep_sources = self.settings.check_retain_source;
        let mut sources: HashMap<u64, (String, Option<String>, u16)> = HashMap::new();
        // Moved, not copied: a big file holds gigabytes of payload.
        for m in std::mem::take(&mut db.messages) {
            if m.expiry_time != 0 && m.expiry_time <= now_unix {
                continue;
            }
            let store_id = m.store_id;
            if keep_sources && let Some(id) = m.source_id.clone() {
                sources.insert(store_id, (id, m.source_username.clone(), m.source_port));
            }
            let Ok(topic) = TopicName::new(m.topic) else {
                warnings.push(format!(
                    "Warning: stored message {store_id} has an invalid topic; skipped."
                ));
                continue;
            };
            let mut properties = m.properties.to_properties();
            properties.message_expiry_interval = None;
            let expires_at = (m.expiry_time != 0)
                .then(|| now + Duration::from_secs((m.expiry_time - now_unix).max(0) as u64));
            messages.insert(
                store_id,
                Rc::new(Message::new(
                    topic,
                    m.payload,
                    Qos::from_u8(m.qos.min(2)).unwrap_or(Qos::AtMostOnce),
                    m.retain,
                    properties.into(),
                    expires_at,
                )),
            );
        }
        for id in &db.retained {
            if let Some(m) = messages.get(id) {
                self.retained.set(m.clone());
                if let Some((client_id, username, port)) = sources.remove(id) {
                    let listener = self
                        .listeners
                        .iter()
                        .position(|l| l.port == port && port != 0)
                        .unwrap_or(0);
                    let source = RetainSource {
                        client_id: client_id.as_str().into(),
                        username: username.as_deref().map(Box::from),
                        listener,
                    };
                    self.retain_sources
                        .set(m.topic.as_str(), Some(source), false);
                }
            }
        }
        let mut keys: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
        for c in &db.clients {
            let listener = self
                .listeners
                .iter()
                .position(|l| l.port == c.listener_port && c.listener_port != 0)
                .unwrap_or(0);
            let client_id: Rc<str> = c.client_id.as_str().into();
            let mut s = Session::new(client_id.clone(), listener, ProtocolVersion::V311);
            s.username = c.username.as_deref().map(Box::from);
            // Files from formats 2–4 carry no interval: treat those sessions
            // as 3.x durable sessions, which never expire.
            s.expiry_interval = match c.session_expiry_interval {
                0 => NEVER,
                n => n,
            };
            if s.expiry_interval != NEVER {
                // v5 sessions remember their level; expiry > 0 shows it was
                // durable, the CONNECT that resumes it sets the real version.
                s.version = ProtocolVersion::V5;
            }
            s.set_last_packet_id(c.last_mid);
            s.ids_in_order = false;
            let offline_for = if c.session_expiry_time > 0 && s.expiry_interval != NEVER {
                let remaining = (c.session_expiry_time - now_unix).max(0) as u64;
                Duration::from_secs(u64::from(s.expiry_interval))
                    .saturating_sub(Duration::from_secs(remaining))
            } else {
                Duration::ZERO
            };
            s.presence = Presence::Offline(Some(now.checked_sub(offline_for).unwrap_or(now)));
            let key = self.sessions.insert(s);
            self.by_client_id.insert(client_id, key);
            keys.insert(c.client_id.as_str(), key);
            self.stats.clients_maximum = self.stats.clients_maximum.max(self.sessions.len());
        }
        for sub in &db.subscriptions {
            let Some(&key) = keys.get(sub.client_id.as_str()) else {
                continue;
            };
            let Ok(filter) = TopicFilter::new(sub.topic.clone()) else {
                warnings.push(format!(
                    "Warning: stored subscription {:?} of client {} is invalid; skipped.",
                    sub.topic, sub.client_id
                ));
                continue;
            };
            let options = SubscriptionOptions {
                qos: Qos::from_u8(sub.qos.min(2)).unwrap_or(Qos::AtMostOnce),
                no_local: sub.no_local(),
                retain_as_published: sub.retain_as_published(),
                retain_handling: RetainHandling::SendAlways,
            };
            let id = (sub.identifier != 0).then_some(sub.identifier);
            self.subs.subscribe(
                &filter,
                Subscriber {
                    session: key,
                    options,
                    id,
                },
            );
            if let Some(s) = self.sessions.get_mut(key) {
                s.subscriptions.insert(filter, (options, id));
            }
        }
        let queued = db.queued_on_load(self.settings.max_inflight_messages.max(1));
        let mut incoming = Vec::new();
        for (cm, to_queue) in db.client_messages.iter().zip(queued) {
            let (Some(&key), Some(message)) =
                (keys.get(cm.client_id.as_str()), messages.get(&cm.store_id))
            else {
                continue;
            };
            let qos = Qos::from_u8(cm.qos.min(2)).unwrap_or(Qos::AtMostOnce);
            let delivery = Delivery {
                message: message.clone(),
                qos,
                retain: cm.retain,
                subscription_id: cm.properties.subscription_identifiers.first().copied(),
                // A queued message keeps the id mosquitto (or culex) gave it.
                packet_id: PacketId::new(cm.mid).filter(|_| qos != Qos::AtMostOnce),
            };
            if cm.direction == Direction::In {
                // An incoming QoS 2 message between PUBREC and PUBREL: it is
                // routed when the client releases it.
                incoming.push((key, cm.mid, message.clone()));
                continue;
            }
            let Some(s) = self.sessions.get_mut(key) else {
                continue;
            };
            let state = match cm.state {
                MsgState::WaitForPubcomp | MsgState::ResendPubrel => Some(OutState::AwaitPubcomp),
                MsgState::WaitForPubrec | MsgState::PublishQos2 => Some(OutState::AwaitPubrec),
                MsgState::WaitForPuback | MsgState::PublishQos1 => Some(OutState::AwaitPuback),
                _ => None,
            };
            match (to_queue, state, PacketId::new(cm.mid)) {
                (false, Some(state), Some(pid))
                    if !s.inflight().iter().any(|i| i.packet_id == pid) =>
                {
                    s.flow_mut().inflight.push_back(Inflight {
                        packet_id: pid,
                        delivery,
                        state,
                    });
                }
                _ if qos == Qos::AtMostOnce && !self.settings.queue_qos0_messages => {}
                _ => {
                    let flow = s.flow_mut();
                    flow.queued_bytes += delivery.message.payload.len() as u64;
                    flow.queue.push_back(delivery);
                }
            }
        }
        for (key, mid, message) in incoming {
            if let Some(s) = self.sessions.get_mut(key) {
                s.flow_mut().awaiting_pubrel.push(AwaitingRelease {
                    packet_id: mid,
                    message: Some(message),
                });
            }
        }
        // Offline sessions start their expiry clocks now.
        let keys: Vec<usize> = self.sessions.iter().map(|(k, _)| k).collect();
        for key in keys {
            let serial = self.next_serial();
            if let Some(s) = self.sessions.get_mut(key) {
                s.serial = serial;
            }
            if let (Some(limit), Some(s)) = (self.session_lifetime(key), self.sessions.get(key)) {
                let since = s
                    .disconnected_at()
                    .map(|t| now.saturating_duration_since(t))
                    .unwrap_or_default();
                let when = now + limit.saturating_sub(since);
                self.timers
                    .push(Reverse((when, Timer::Session(key, serial))));
            }
        }
        warnings
    }
}

fn sub_id_properties(id: Option<u32>) -> crate::codec::Properties {
    crate::codec::Properties {
        subscription_identifiers: id.into_iter().collect(),
        ..Default::default()
    }
}
