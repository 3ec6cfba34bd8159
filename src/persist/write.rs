//! Writing a version 6 database exactly as mosquitto 2.0 does.
//!
//! Chunk order: CFG; MSG_STORE for every referenced message (in the order
//! given; mosquitto writes newest first); for each session its CLIENT chunk
//! followed by its CLIENT_MSG chunks (in the order given; mosquitto writes
//! incoming in-flight, incoming queued, outgoing in-flight, outgoing queued);
//! all SUB chunks; all RETAIN chunks. Store ids and timestamps little-endian
//! (what mosquitto writes on every host our users run), the rest big-endian,
//! exact chunk lengths, zero padding.

use std::collections::{HashMap, HashSet};

use super::format::*;
use super::model::*;
use super::props;

fn chunk(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    // Bodies are bounded: strings are at most 65535 bytes and payloads at
    // most MAX_PAYLOAD, so the length always fits.
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// Length of an optional string as written: 0 = absent (also for "").
fn opt_len(s: Option<&str>) -> u16 {
    s.map_or(0, |s| s.len() as u16)
}

fn fits(s: &str) -> bool {
    s.len() <= usize::from(u16::MAX)
}

fn is_sys(topic: &str) -> bool {
    topic.starts_with("$SYS")
}

/// Serialises `contents` as a version 6 file mosquitto 2.0 loads.
///
/// Like mosquitto's own writer this leaves out what the loader would drop
/// or cannot represent:
/// * stored messages nothing references (no retained entry, no client
///   message), messages without a topic, and payloads over 268435455 bytes;
/// * `$SYS` messages unless a client message references them (then written
///   with retain 0), and retained `$SYS` entries;
/// * retained entries and client messages whose store id is not written;
/// * sessions, client messages and subscriptions with an empty client id or
///   topic, and any entry whose strings exceed 65535 bytes;
/// * properties mosquitto would refuse on a PUBLISH (see `props::encode`);
///   at most one subscription identifier per client message.
///
/// `version` and `dbid_size` are ignored (always 6 and 8).
pub fn write(contents: &DbContents) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, never used
    out.extend_from_slice(&DB_VERSION.to_be_bytes());

    let mut body = Vec::with_capacity(CFG_LEN);
    body.extend_from_slice(&contents.last_db_id.to_le_bytes());
    body.push(u8::from(contents.shutdown));
    body.push(DBID_SIZE);
    body.extend_from_slice(&[0; 6]);
    chunk(&mut out, CHUNK_CFG, &body);

    // Which messages are referenced, and how.
    let writable_msg = |m: &StoredMessage| {
        !m.topic.is_empty()
            && fits(&m.topic)
            && m.source_id.as_deref().is_none_or(fits)
            && m.source_username.as_deref().is_none_or(fits)
            && m.payload.len() <= MAX_PAYLOAD as usize
    };
    let by_id: HashMap<u64, &StoredMessage> = contents
        .messages
        .iter()
        .filter(|m| writable_msg(m))
        .map(|m| (m.store_id, m))
        .collect();
    let client_msg_ok = |cm: &StoredClientMessage| {
        !cm.client_id.is_empty() && fits(&cm.client_id) && by_id.contains_key(&cm.store_id)
    };
    let queued: HashSet<u64> = contents
        .client_messages
        .iter()
        .filter(|cm| client_msg_ok(cm))
        .map(|cm| cm.store_id)
        .collect();
    let retained: Vec<u64> = contents
        .retained
        .iter()
        .copied()
        .filter(|id| by_id.get(id).is_some_and(|m| !is_sys(&m.topic)))
        .collect();
    let retained_set: HashSet<u64> = retained.iter().copied().collect();

    let mut written: HashSet<u64> = HashSet::new();
    for m in &contents.messages {
        if !writable_msg(m) || !written.insert(m.store_id) {
            continue;
        }
        let sys = is_sys(&m.topic);
        if !(queued.contains(&m.store_id) || (!sys && retained_set.contains(&m.store_id))) {
            continue;
        }
        let source_id = m.source_id.as_deref().filter(|s| !s.is_empty());
        let source_username = m.source_username.as_deref().filter(|s| !s.is_empty());
        let props = props::encode(&m.properties);
        body.clear();
        body.extend_from_slice(&m.store_id.to_le_bytes());
        body.extend_from_slice(&m.expiry_time.to_le_bytes());
        body.extend_from_slice(&(m.payload.len() as u32).to_be_bytes());
        body.extend_from_slice(&m.source_mid.to_be_bytes());
        body.extend_from_slice(&opt_len(source_id).to_be_bytes());
        body.extend_from_slice(&opt_len(source_username).to_be_bytes());
        body.extend_from_slice(&(m.topic.len() as u16).to_be_bytes());
        body.extend_from_slice(&m.source_port.to_be_bytes());
        body.push(m.qos);
        body.push(u8::from(m.retain && !sys));
        body.extend_from_slice(source_id.unwrap_or_default().as_bytes());
        body.extend_from_slice(source_username.unwrap_or_default().as_bytes());
        body.extend_from_slice(m.topic.as_bytes());
        body.extend_from_slice(&m.payload);
        body.extend_from_slice(&props);
        chunk(&mut out, CHUNK_MSG_STORE, &body);
    }

    // Sessions, each followed by its messages.
    let mut per_client: HashMap<&str, Vec<&StoredClientMessage>> = HashMap::new();
    for cm in contents
        .client_messages
        .iter()
        .filter(|cm| client_msg_ok(cm))
    {
        per_client
            .entry(cm.client_id.as_str())
            .or_default()
            .push(cm);
    }
    fn client_msg(out: &mut Vec<u8>, body: &mut Vec<u8>, cm: &StoredClientMessage) {
        let props = props::encode(&cm.properties);
        body.clear();
        body.extend_from_slice(&cm.store_id.to_le_bytes());
        body.extend_from_slice(&cm.mid.to_be_bytes());
        body.extend_from_slice(&(cm.client_id.len() as u16).to_be_bytes());
        body.push(cm.qos);
        body.push(cm.state.to_u8());
        body.push((u8::from(cm.retain) << 4) | u8::from(cm.dup));
        body.push(cm.direction.to_u8());
        body.extend_from_slice(cm.client_id.as_bytes());
        body.extend_from_slice(&props);
        chunk(out, CHUNK_CLIENT_MSG, body);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for c in &contents.clients {
        if c.client_id.is_empty() || !fits(&c.client_id) || !seen.insert(&c.client_id) {
            continue;
        }
        let username = c.username.as_deref().filter(|u| !u.is_empty() && fits(u));
        body.clear();
        body.extend_from_slice(&c.session_expiry_time.to_le_bytes());
        body.extend_from_slice(&c.session_expiry_interval.to_be_bytes());
        body.extend_from_slice(&c.last_mid.to_be_bytes());
        body.extend_from_slice(&(c.client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(&c.listener_port.to_be_bytes());
        body.extend_from_slice(&opt_len(username).to_be_bytes());
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(c.client_id.as_bytes());
        body.extend_from_slice(username.unwrap_or_default().as_bytes());
        chunk(&mut out, CHUNK_CLIENT, &body);
        for cm in per_client.remove(c.client_id.as_str()).unwrap_or_default() {
            client_msg(&mut out, &mut body, cm);
        }
    }
    // Messages of sessions without a CLIENT entry: the loader creates the
    // session implicitly (with expiry 0), as it would for mosquitto's files.
    for cm in contents.client_messages.iter() {
        if per_client.contains_key(cm.client_id.as_str()) && client_msg_ok(cm) {
            client_msg(&mut out, &mut body, cm);
        }
    }

    for s in &contents.subscriptions {
        if s.client_id.is_empty() || s.topic.is_empty() || !fits(&s.client_id) || !fits(&s.topic) {
            continue;
        }
        body.clear();
        body.extend_from_slice(&s.identifier.to_be_bytes());
        body.extend_from_slice(&(s.client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(&(s.topic.len() as u16).to_be_bytes());
        body.push(s.qos);
        body.push(s.options);
        body.extend_from_slice(&[0; 2]);
        body.extend_from_slice(s.client_id.as_bytes());
        body.extend_from_slice(s.topic.as_bytes());
        chunk(&mut out, CHUNK_SUB, &body);
    }

    for id in retained {
        chunk(&mut out, CHUNK_RETAIN, &id.to_le_bytes());
    }
    out
}
