//! The MQTT v5 property blocks of MSG_STORE and CLIENT_MSG chunks.
//!
//! Standard MQTT property encoding, but decoded with exactly the rules of
//! mosquitto's loader (a PUBLISH property list): its own length counter, its
//! UTF-8 rules, and its validity checks. The codec's decoder differs in small
//! ways (it allows several subscription identifiers and topic alias 0, and
//! rejects subscription identifier 0), so the database gets its own.

use crate::codec::Properties;
use crate::codec::properties::id;

use crate::codec::topic::TOPIC_HIERARCHY_LIMIT;

/// mosquitto's UTF-8 rules for MQTT strings: valid UTF-8 without U+0000,
/// control characters (U+0001–U+001F, U+007F–U+009F) or non-characters.
pub fn mqtt_utf8_ok(raw: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(raw) else {
        return false;
    };
    s.chars().all(|ch| {
        let c = ch as u32;
        !(c <= 0x1F
            || (0x7F..=0x9F).contains(&c)
            || (0xFDD0..=0xFDEF).contains(&c)
            || (c & 0xFFFF) >= 0xFFFE)
    })
}

/// A topic mosquitto accepts as a Response Topic (`mosquitto_pub_topic_check`).
fn pub_topic_ok(t: &str) -> bool {
    !t.is_empty()
        && !t.contains(['+', '#'])
        && t.len() <= 65535
        && t.matches('/').count() <= TOPIC_HIERARCHY_LIMIT
}

struct Buf<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Buf<'a> {
    fn take(&mut self, n: usize, pid: u32) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "property 0x{pid:02x} runs past the end of the block"
            ));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Variable byte integer with mosquitto's checks: at most 4 bytes, no
    /// overlong final 0 byte. Returns (value, bytes used).
    fn varint(&mut self) -> Result<(u32, u32), String> {
        let mut value: u32 = 0;
        let mut mult: u32 = 1;
        for n in 1..=4u32 {
            let Some(&b) = self.data.get(self.pos) else {
                return Err("truncated variable byte integer".into());
            };
            self.pos += 1;
            value += u32::from(b & 0x7F) * mult;
            mult = mult.saturating_mul(128);
            if b & 0x80 == 0 {
                if n > 1 && b == 0 {
                    return Err("overlong variable byte integer".into());
                }
                return Ok((value, n));
            }
        }
        Err("variable byte integer longer than 4 bytes".into())
    }
}

fn once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("duplicate property {name}"));
    }
    *slot = Some(v);
    Ok(())
}

/// Decodes a property block (length + properties) as mosquitto's loader
/// does. Bytes after the declared length are ignored, as mosquitto does.
pub fn decode(block: &[u8]) -> Result<Properties, String> {
    let mut b = Buf {
        data: block,
        pos: 0,
    };
    let (mut left, _) = b.varint()?;
    let mut p = Properties::default();
    // mosquitto counts 1 byte per identifier and subtracts from an unsigned
    // 32-bit counter until it is exactly 0 (or the data runs out).
    while left > 0 {
        let (pid, _) = b.varint()?;
        left = left.wrapping_sub(1);
        let pid8 = u8::try_from(pid).unwrap_or(0);
        p.received_order.push(pid8);
        let string = |b: &mut Buf<'_>, left: &mut u32| -> Result<Vec<u8>, String> {
            let l = b.take(2, pid)?;
            let n = usize::from(u16::from_be_bytes([l[0], l[1]]));
            let s = b.take(n, pid)?;
            *left = left.wrapping_sub(2 + n as u32);
            Ok(s.to_vec())
        };
        let text = |raw: Vec<u8>| -> Result<String, String> {
            if !raw.is_empty() && !mqtt_utf8_ok(&raw) {
                return Err(format!("malformed UTF-8 in property 0x{pid:02x}"));
            }
            String::from_utf8(raw).map_err(|_| format!("malformed UTF-8 in property 0x{pid:02x}"))
        };
        match pid8 {
            id::PAYLOAD_FORMAT_INDICATOR => {
                let v = b.take(1, pid)?[0];
                left = left.wrapping_sub(1);
                if v > 1 {
                    return Err(format!("payload format indicator {v} > 1"));
                }
                once(
                    &mut p.payload_format_indicator,
                    v,
                    "payload format indicator",
                )?;
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                let s = b.take(4, pid)?;
                left = left.wrapping_sub(4);
                let v = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                once(&mut p.message_expiry_interval, v, "message expiry interval")?;
            }
            id::CONTENT_TYPE => {
                let v = text(string(&mut b, &mut left)?)?;
                once(&mut p.content_type, v, "content type")?;
            }
            id::RESPONSE_TOPIC => {
                let v = text(string(&mut b, &mut left)?)?;
                if !pub_topic_ok(&v) {
                    return Err(format!("response topic {v:?} is not a valid topic name"));
                }
                once(&mut p.response_topic, v, "response topic")?;
            }
            id::CORRELATION_DATA => {
                let v = string(&mut b, &mut left)?;
                once(&mut p.correlation_data, v, "correlation data")?;
            }
            id::SUBSCRIPTION_IDENTIFIER => {
                let (v, n) = b.varint()?;
                left = left.wrapping_sub(n);
                if !p.subscription_identifiers.is_empty() {
                    return Err("duplicate property subscription identifier".into());
                }
                p.subscription_identifiers.push(v);
            }
            id::TOPIC_ALIAS => {
                let s = b.take(2, pid)?;
                left = left.wrapping_sub(2);
                let v = u16::from_be_bytes([s[0], s[1]]);
                if v == 0 {
                    return Err("topic alias 0".into());
                }
                once(&mut p.topic_alias, v, "topic alias")?;
            }
            id::USER_PROPERTY => {
                let k = text(string(&mut b, &mut left)?)?;
                let v = text(string(&mut b, &mut left)?)?;
                p.user_properties.push((k, v));
            }
            _ => {
                return Err(format!(
                    "property 0x{pid:02x} is unknown or not allowed on a PUBLISH"
                ));
            }
        }
    }
    Ok(p)
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let mut b = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            b |= 0x80;
        }
        out.push(b);
        if v == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Callers only pass strings of at most 65535 bytes.
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A string property mosquitto will accept back.
fn writable_str(s: &str) -> bool {
    s.len() <= 65535 && (s.is_empty() || mqtt_utf8_ok(s.as_bytes()))
}

/// Encodes the properties mosquitto's loader accepts on a stored PUBLISH,
/// as one block (length + properties); empty when there is nothing to write.
///
/// Written: payload format indicator (0/1), message expiry interval, content
/// type, response topic, correlation data, the first subscription identifier
/// (mosquitto refuses a second), topic alias (non-zero), user properties in
/// order. Everything else in `Properties` cannot appear on a PUBLISH and
/// would make mosquitto refuse the file, so it is left out, as are values
/// mosquitto would reject.
pub fn encode(p: &Properties) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(v) = p.payload_format_indicator.filter(|&v| v <= 1) {
        body.extend_from_slice(&[id::PAYLOAD_FORMAT_INDICATOR, v]);
    }
    if let Some(v) = p.message_expiry_interval {
        body.push(id::MESSAGE_EXPIRY_INTERVAL);
        body.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = p.content_type.as_deref().filter(|s| writable_str(s)) {
        body.push(id::CONTENT_TYPE);
        put_str(&mut body, v.as_bytes());
    }
    if let Some(v) = p
        .response_topic
        .as_deref()
        .filter(|s| writable_str(s) && pub_topic_ok(s))
    {
        body.push(id::RESPONSE_TOPIC);
        put_str(&mut body, v.as_bytes());
    }
    if let Some(v) = p.correlation_data.as_deref().filter(|d| d.len() <= 65535) {
        body.push(id::CORRELATION_DATA);
        put_str(&mut body, v);
    }
    if let Some(&v) = p.subscription_identifiers.first().filter(|&&v| v < 1 << 28) {
        body.push(id::SUBSCRIPTION_IDENTIFIER);
        put_varint(&mut body, v);
    }
    if let Some(v) = p.topic_alias.filter(|&v| v != 0) {
        body.push(id::TOPIC_ALIAS);
        body.extend_from_slice(&v.to_be_bytes());
    }
    for (k, v) in &p.user_properties {
        if writable_str(k) && writable_str(v) {
            body.push(id::USER_PROPERTY);
            put_str(&mut body, k.as_bytes());
            put_str(&mut body, v.as_bytes());
        }
    }
    if body.is_empty() {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    put_varint(&mut out, body.len() as u32);
    out.extend_from_slice(&body);
    out
}
