//! MQTT 5.0 property sections: decoding (with per-packet validity, duplicate
//! and value checks) and allocation-free encoding.

use super::properties::{Properties, id};
use super::wire::{
    In, PResult, binary, byte, four, lp_len, malformed, protocol, put_bytes, put_varint, two, utf8,
    varint, varint_len,
};

/// Where a property section sits: a bit per packet kind.
pub(crate) mod ctx {
    pub const CONNECT: u16 = 1 << 0;
    pub const CONNACK: u16 = 1 << 1;
    pub const PUBLISH: u16 = 1 << 2;
    pub const WILL: u16 = 1 << 3;
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    pub const ACK: u16 = 1 << 4;
    pub const SUBSCRIBE: u16 = 1 << 5;
    pub const SUBACK: u16 = 1 << 6;
    pub const UNSUBSCRIBE: u16 = 1 << 7;
    pub const UNSUBACK: u16 = 1 << 8;
    pub const DISCONNECT: u16 = 1 << 9;
    pub const AUTH: u16 = 1 << 10;
    pub const ALL: u16 = (1 << 11) - 1;
}

/// The packets (contexts) a property may appear in (MQTT 5.0 table 2-4).
fn allowed(prop: u8) -> Option<u16> {
    use ctx::*;
    Some(match prop {
        id::PAYLOAD_FORMAT_INDICATOR
        | id::MESSAGE_EXPIRY_INTERVAL
        | id::CONTENT_TYPE
        | id::RESPONSE_TOPIC
        | id::CORRELATION_DATA => PUBLISH | WILL,
        id::SUBSCRIPTION_IDENTIFIER => PUBLISH | SUBSCRIBE,
        id::SESSION_EXPIRY_INTERVAL => CONNECT | CONNACK | DISCONNECT,
        id::ASSIGNED_CLIENT_IDENTIFIER | id::SERVER_KEEP_ALIVE | id::RESPONSE_INFORMATION => {
            CONNACK
        }
        id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => CONNECT | CONNACK | AUTH,
        id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => CONNECT,
        id::WILL_DELAY_INTERVAL => WILL,
        id::SERVER_REFERENCE => CONNACK | DISCONNECT,
        id::REASON_STRING => CONNACK | ACK | SUBACK | UNSUBACK | DISCONNECT | AUTH,
        id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => {
            CONNECT | CONNACK
        }
        id::TOPIC_ALIAS => PUBLISH,
        id::MAXIMUM_QOS
        | id::RETAIN_AVAILABLE
        | id::WILDCARD_SUBSCRIPTION_AVAILABLE
        | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | id::SHARED_SUBSCRIPTION_AVAILABLE => CONNACK,
        id::USER_PROPERTY => ALL,
        _ => return None,
    })
}

type Check = Result<(), nom::Err<super::wire::PErr>>;

fn once<T>(slot: &mut Option<T>, v: T) -> Check {
    if slot.is_some() {
        return protocol("property appears more than once");
    }
    *slot = Some(v);
    Ok(())
}

fn flag(v: u8) -> Result<u8, nom::Err<super::wire::PErr>> {
    if v > 1 {
        return protocol("property value must be 0 or 1");
    }
    Ok(v)
}

fn nonzero<T: Default + PartialEq>(v: T) -> Result<T, nom::Err<super::wire::PErr>> {
    if v == T::default() {
        return protocol("property value must not be 0");
    }
    Ok(v)
}

/// Parses a property section (length then properties) valid for `context`.
pub(crate) fn properties(i: In<'_>, context: u16) -> PResult<'_, Properties> {
    let (i, len) = varint(i)?;
    let len = len as usize;
    if len > i.len() {
        return malformed("property length exceeds packet");
    }
    let (mut p, rest) = i.split_at(len);
    let mut props = Properties::default();
    while !p.is_empty() {
        let (r, prop) = byte(p)?;
        let Some(mask) = allowed(prop) else {
            return malformed("unknown property identifier");
        };
        if mask & context == 0 {
            return malformed("property not allowed in this packet");
        }
        let pr = &mut props;
        p = match prop {
            id::PAYLOAD_FORMAT_INDICATOR => {
                let (r, v) = byte(r)?;
                once(&mut pr.payload_format_indicator, flag(v)?)?;
                r
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                let (r, v) = four(r)?;
                once(&mut pr.message_expiry_interval, v)?;
                r
            }
            id::CONTENT_TYPE => {
                let (r, v) = utf8(r)?;
                once(&mut pr.content_type, v.to_owned())?;
                r
            }
            id::RESPONSE_TOPIC => {
                let (r, v) = utf8(r)?;
                once(&mut pr.response_topic, v.to_owned())?;
                r
            }
            id::CORRELATION_DATA => {
                let (r, v) = binary(r)?;
                once(&mut pr.correlation_data, v.to_vec())?;
                r
            }
            id::SUBSCRIPTION_IDENTIFIER => {
                let (r, v) = varint(r)?;
                let v = nonzero(v)?;
                if context != ctx::PUBLISH && !pr.subscription_identifiers.is_empty() {
                    return protocol("property appears more than once");
                }
                pr.subscription_identifiers.push(v);
                r
            }
            id::SESSION_EXPIRY_INTERVAL => {
                let (r, v) = four(r)?;
                once(&mut pr.session_expiry_interval, v)?;
                r
            }
            id::ASSIGNED_CLIENT_IDENTIFIER => {
                let (r, v) = utf8(r)?;
                once(&mut pr.assigned_client_identifier, v.to_owned())?;
                r
            }
            id::SERVER_KEEP_ALIVE => {
                let (r, v) = two(r)?;
                once(&mut pr.server_keep_alive, v)?;
                r
            }
            id::AUTHENTICATION_METHOD => {
                let (r, v) = utf8(r)?;
                once(&mut pr.authentication_method, v.to_owned())?;
                r
            }
            id::AUTHENTICATION_DATA => {
                let (r, v) = binary(r)?;
                once(&mut pr.authentication_data, v.to_vec())?;
                r
            }
            id::REQUEST_PROBLEM_INFORMATION => {
                let (r, v) = byte(r)?;
                once(&mut pr.request_problem_information, flag(v)?)?;
                r
            }
            id::WILL_DELAY_INTERVAL => {
                let (r, v) = four(r)?;
                once(&mut pr.will_delay_interval, v)?;
                r
            }
            id::REQUEST_RESPONSE_INFORMATION => {
                let (r, v) = byte(r)?;
                once(&mut pr.request_response_information, flag(v)?)?;
                r
            }
            id::RESPONSE_INFORMATION => {
                let (r, v) = utf8(r)?;
                once(&mut pr.response_information, v.to_owned())?;
                r
            }
            id::SERVER_REFERENCE => {
                let (r, v) = utf8(r)?;
                once(&mut pr.server_reference, v.to_owned())?;
                r
            }
            id::REASON_STRING => {
                let (r, v) = utf8(r)?;
                once(&mut pr.reason_string, v.to_owned())?;
                r
            }
            id::RECEIVE_MAXIMUM => {
                let (r, v) = two(r)?;
                once(&mut pr.receive_maximum, nonzero(v)?)?;
                r
            }
            id::TOPIC_ALIAS_MAXIMUM => {
                let (r, v) = two(r)?;
                once(&mut pr.topic_alias_maximum, v)?;
                r
            }
            id::TOPIC_ALIAS => {
                let (r, v) = two(r)?;
                once(&mut pr.topic_alias, v)?;
                r
            }
            id::MAXIMUM_QOS => {
                let (r, v) = byte(r)?;
                once(&mut pr.maximum_qos, flag(v)?)?;
                r
            }
            id::RETAIN_AVAILABLE => {
                let (r, v) = byte(r)?;
                once(&mut pr.retain_available, flag(v)?)?;
                r
            }
            id::USER_PROPERTY => {
                let (r, k) = utf8(r)?;
                let (r, v) = utf8(r)?;
                pr.user_properties.push((k.to_owned(), v.to_owned()));
                r
            }
            id::MAXIMUM_PACKET_SIZE => {
                let (r, v) = four(r)?;
                once(&mut pr.maximum_packet_size, nonzero(v)?)?;
                r
            }
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let (r, v) = byte(r)?;
                once(&mut pr.wildcard_subscription_available, flag(v)?)?;
                r
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let (r, v) = byte(r)?;
                once(&mut pr.subscription_identifier_available, flag(v)?)?;
                r
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => {
                let (r, v) = byte(r)?;
                once(&mut pr.shared_subscription_available, flag(v)?)?;
                r
            }
            _ => return malformed("unknown property identifier"),
        };
    }
    Ok((rest, props))
}

/// One property to write.
enum Prop<'a> {
    Byte(u8, u8),
    Two(u8, u16),
    Four(u8, u32),
    Var(u8, u32),
    Str(u8, &'a str),
    Bin(u8, &'a [u8]),
    Pair(&'a str, &'a str),
}

impl Prop<'_> {
    #[inline]
    fn len(&self) -> usize {
        1 + match self {
            Prop::Byte(..) => 1,
            Prop::Two(..) => 2,
            Prop::Four(..) => 4,
            Prop::Var(_, v) => varint_len(*v as usize),
            Prop::Str(_, s) => lp_len(s.as_bytes()),
            Prop::Bin(_, b) => lp_len(b),
            Prop::Pair(k, v) => lp_len(k.as_bytes()) + lp_len(v.as_bytes()),
        }
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Prop::Byte(i, v) => out.extend_from_slice(&[i, v]),
            Prop::Two(i, v) => {
                out.push(i);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Prop::Four(i, v) => {
                out.push(i);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Prop::Var(i, v) => {
                out.push(i);
                put_varint(out, v as usize);
            }
            Prop::Str(i, s) => {
                out.push(i);
                put_bytes(out, s.as_bytes());
            }
            Prop::Bin(i, b) => {
                out.push(i);
                put_bytes(out, b);
            }
            Prop::Pair(k, v) => {
                out.push(id::USER_PROPERTY);
                put_bytes(out, k.as_bytes());
                put_bytes(out, v.as_bytes());
            }
        }
    }
}

/// Per-delivery replacements used by `encode_publish`: the stored topic alias
/// and subscription identifiers are dropped and these written instead.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PublishOverrides {
    pub expiry: Option<u32>,
    pub sub_id: Option<u32>,
    pub alias: Option<u16>,
}

/// Calls `f` for every property to write, in identifier order (user
/// properties in their own order).
#[inline]
fn visit<'a>(p: &'a Properties, ov: Option<&PublishOverrides>, mut f: impl FnMut(Prop<'a>)) {
    if let Some(v) = p.payload_format_indicator {
        f(Prop::Byte(id::PAYLOAD_FORMAT_INDICATOR, v));
    }
    let expiry = match ov {
        Some(o) => o.expiry.or(p.message_expiry_interval),
        None => p.message_expiry_interval,
    };
    if let Some(v) = expiry {
        f(Prop::Four(id::MESSAGE_EXPIRY_INTERVAL, v));
    }
    if let Some(v) = &p.content_type {
        f(Prop::Str(id::CONTENT_TYPE, v));
    }
    if let Some(v) = &p.response_topic {
        f(Prop::Str(id::RESPONSE_TOPIC, v));
    }
    if let Some(v) = &p.correlation_data {
        f(Prop::Bin(id::CORRELATION_DATA, v));
    }
    match ov {
        Some(o) => {
            if let Some(v) = o.sub_id {
                f(Prop::Var(id::SUBSCRIPTION_IDENTIFIER, v));
            }
        }
        None => {
            for &v in &p.subscription_identifiers {
                f(Prop::Var(id::SUBSCRIPTION_IDENTIFIER, v));
            }
        }
    }
    if let Some(v) = p.session_expiry_interval {
        f(Prop::Four(id::SESSION_EXPIRY_INTERVAL, v));
    }
    if let Some(v) = &p.assigned_client_identifier {
        f(Prop::Str(id::ASSIGNED_CLIENT_IDENTIFIER, v));
    }
    if let Some(v) = p.server_keep_alive {
        f(Prop::Two(id::SERVER_KEEP_ALIVE, v));
    }
    if let Some(v) = &p.authentication_method {
        f(Prop::Str(id::AUTHENTICATION_METHOD, v));
    }
    if let Some(v) = &p.authentication_data {
        f(Prop::Bin(id::AUTHENTICATION_DATA, v));
    }
    if let Some(v) = p.request_problem_information {
        f(Prop::Byte(id::REQUEST_PROBLEM_INFORMATION, v));
    }
    if let Some(v) = p.will_delay_interval {
        f(Prop::Four(id::WILL_DELAY_INTERVAL, v));
    }
    if let Some(v) = p.request_response_information {
        f(Prop::Byte(id::REQUEST_RESPONSE_INFORMATION, v));
    }
    if let Some(v) = &p.response_information {
        f(Prop::Str(id::RESPONSE_INFORMATION, v));
    }
    if let Some(v) = &p.server_reference {
        f(Prop::Str(id::SERVER_REFERENCE, v));
    }
    if let Some(v) = &p.reason_string {
        f(Prop::Str(id::REASON_STRING, v));
    }
    if let Some(v) = p.receive_maximum {
        f(Prop::Two(id::RECEIVE_MAXIMUM, v));
    }
    if let Some(v) = p.topic_alias_maximum {
        f(Prop::Two(id::TOPIC_ALIAS_MAXIMUM, v));
    }
    let alias = match ov {
        Some(o) => o.alias,
        None => p.topic_alias,
    };
    if let Some(v) = alias {
        f(Prop::Two(id::TOPIC_ALIAS, v));
    }
    if let Some(v) = p.maximum_qos {
        f(Prop::Byte(id::MAXIMUM_QOS, v));
    }
    if let Some(v) = p.retain_available {
        f(Prop::Byte(id::RETAIN_AVAILABLE, v));
    }
    for (k, v) in &p.user_properties {
        f(Prop::Pair(k, v));
    }
    if let Some(v) = p.maximum_packet_size {
        f(Prop::Four(id::MAXIMUM_PACKET_SIZE, v));
    }
    if let Some(v) = p.wildcard_subscription_available {
        f(Prop::Byte(id::WILDCARD_SUBSCRIPTION_AVAILABLE, v));
    }
    if let Some(v) = p.subscription_identifier_available {
        f(Prop::Byte(id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, v));
    }
    if let Some(v) = p.shared_subscription_available {
        f(Prop::Byte(id::SHARED_SUBSCRIPTION_AVAILABLE, v));
    }
}

/// Length of the properties themselves (without the length prefix).
#[inline]
pub(crate) fn props_len(p: &Properties, ov: Option<&PublishOverrides>) -> usize {
    let mut n = 0;
    visit(p, ov, |prop| n += prop.len());
    n
}

/// Length of a whole property section: length prefix plus properties.
#[inline]
pub(crate) fn section_len(props_len: usize) -> usize {
    varint_len(props_len) + props_len
}

/// Writes a property section whose properties length `len` was computed by
/// `props_len` with the same arguments.
#[inline]
pub(crate) fn write_props(
    p: &Properties,
    ov: Option<&PublishOverrides>,
    len: usize,
    out: &mut Vec<u8>,
) {
    put_varint(out, len);
    visit(p, ov, |prop| prop.write(out));
}
