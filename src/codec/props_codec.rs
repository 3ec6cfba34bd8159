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
        if context & (ctx::PUBLISH | ctx::WILL) != 0 {
            props.received_order.push(prop);
        }
        let pr = &mut props;
        p = match prop {
            id::PAYLOAD_FORMAT_INDICATOR => {
                // Any value passes and is forwarded, as in mosquitto 2.0.11
                // (12-prop-subpub-payload-format sends 0xed).
                let (r, v) = byte(r)?;
                once(&mut pr.payload_format_indicator, v)?;
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
                let v = if context == ctx::SUBSCRIBE && v == 0 {
                    // A protocol error by the standard; mosquitto says 0x81.
                    return malformed("subscription identifier 0");
                } else {
                    nonzero(v)?
                };
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

/// Whose order a section is written in. mosquitto writes a packet's
/// properties in the order its code adds them, so byte-identical output
/// needs that order per packet kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Identifier order, user properties among them by their identifier:
    /// packets that carry at most one kind of property from mosquitto.
    Ids,
    /// CONNACK, as mosquitto 2.0 builds it: topic alias maximum, server keep
    /// alive, assigned client identifier and authentication while accepting
    /// the CONNECT, then retain available, maximum packet size, receive
    /// maximum and maximum QoS while sending it.
    Connack,
    /// PUBLISH and will messages: the per-delivery subscription identifiers
    /// and topic alias, the forwarded properties in the order they arrived,
    /// then the message expiry interval.
    Message,
}

/// Every identifier, in identifier order.
const ALL_IDS: [u8; 27] = [
    id::PAYLOAD_FORMAT_INDICATOR,
    id::MESSAGE_EXPIRY_INTERVAL,
    id::CONTENT_TYPE,
    id::RESPONSE_TOPIC,
    id::CORRELATION_DATA,
    id::SUBSCRIPTION_IDENTIFIER,
    id::SESSION_EXPIRY_INTERVAL,
    id::ASSIGNED_CLIENT_IDENTIFIER,
    id::SERVER_KEEP_ALIVE,
    id::AUTHENTICATION_METHOD,
    id::AUTHENTICATION_DATA,
    id::REQUEST_PROBLEM_INFORMATION,
    id::WILL_DELAY_INTERVAL,
    id::REQUEST_RESPONSE_INFORMATION,
    id::RESPONSE_INFORMATION,
    id::SERVER_REFERENCE,
    id::REASON_STRING,
    id::RECEIVE_MAXIMUM,
    id::TOPIC_ALIAS_MAXIMUM,
    id::TOPIC_ALIAS,
    id::MAXIMUM_QOS,
    id::RETAIN_AVAILABLE,
    id::USER_PROPERTY,
    id::MAXIMUM_PACKET_SIZE,
    id::WILDCARD_SUBSCRIPTION_AVAILABLE,
    id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    id::SHARED_SUBSCRIPTION_AVAILABLE,
];

const CONNACK_ORDER: [u8; 9] = [
    id::TOPIC_ALIAS_MAXIMUM,
    id::SERVER_KEEP_ALIVE,
    id::ASSIGNED_CLIENT_IDENTIFIER,
    id::AUTHENTICATION_METHOD,
    id::AUTHENTICATION_DATA,
    id::RETAIN_AVAILABLE,
    id::MAXIMUM_PACKET_SIZE,
    id::RECEIVE_MAXIMUM,
    id::MAXIMUM_QOS,
];

/// Forwarded message properties not placed by their arrival order (a
/// message culex made itself), in identifier order.
const MESSAGE_ORDER: [u8; 5] = [
    id::PAYLOAD_FORMAT_INDICATOR,
    id::CONTENT_TYPE,
    id::RESPONSE_TOPIC,
    id::CORRELATION_DATA,
    id::USER_PROPERTY,
];

/// Writes each property once, whatever order the caller asks for them in:
/// `done` has a bit per identifier already written, `user` counts the user
/// properties written so far.
struct Emitter<'a, 'o, F> {
    p: &'a Properties,
    ov: Option<&'o PublishOverrides>,
    done: u64,
    user: usize,
    f: F,
}

impl<'a, F: FnMut(Prop<'a>)> Emitter<'a, '_, F> {
    /// The next user property only (one entry of the arrival order).
    #[inline]
    fn next_user(&mut self) {
        if let Some((k, v)) = self.p.user_properties.get(self.user) {
            self.user += 1;
            (self.f)(Prop::Pair(k, v));
        }
    }

    /// Every not yet written property with identifier `pid`.
    #[inline]
    fn emit(&mut self, pid: u8) {
        let bit = 1u64 << (pid & 63);
        if self.done & bit != 0 {
            return;
        }
        self.done |= bit;
        let p = self.p;
        let f = &mut self.f;
        match pid {
            id::PAYLOAD_FORMAT_INDICATOR => {
                if let Some(v) = p.payload_format_indicator {
                    f(Prop::Byte(pid, v));
                }
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                let v = match self.ov {
                    Some(o) => o.expiry.or(p.message_expiry_interval),
                    None => p.message_expiry_interval,
                };
                if let Some(v) = v {
                    f(Prop::Four(pid, v));
                }
            }
            id::CONTENT_TYPE => str_prop(f, pid, &p.content_type),
            id::RESPONSE_TOPIC => str_prop(f, pid, &p.response_topic),
            id::CORRELATION_DATA => {
                if let Some(v) = &p.correlation_data {
                    f(Prop::Bin(pid, v));
                }
            }
            id::SUBSCRIPTION_IDENTIFIER => match self.ov {
                Some(o) => {
                    if let Some(v) = o.sub_id {
                        f(Prop::Var(pid, v));
                    }
                }
                None => {
                    for &v in &p.subscription_identifiers {
                        f(Prop::Var(pid, v));
                    }
                }
            },
            id::SESSION_EXPIRY_INTERVAL => four_prop(f, pid, p.session_expiry_interval),
            id::ASSIGNED_CLIENT_IDENTIFIER => str_prop(f, pid, &p.assigned_client_identifier),
            id::SERVER_KEEP_ALIVE => two_prop(f, pid, p.server_keep_alive),
            id::AUTHENTICATION_METHOD => str_prop(f, pid, &p.authentication_method),
            id::AUTHENTICATION_DATA => {
                if let Some(v) = &p.authentication_data {
                    f(Prop::Bin(pid, v));
                }
            }
            id::REQUEST_PROBLEM_INFORMATION => byte_prop(f, pid, p.request_problem_information),
            id::WILL_DELAY_INTERVAL => four_prop(f, pid, p.will_delay_interval),
            id::REQUEST_RESPONSE_INFORMATION => byte_prop(f, pid, p.request_response_information),
            id::RESPONSE_INFORMATION => str_prop(f, pid, &p.response_information),
            id::SERVER_REFERENCE => str_prop(f, pid, &p.server_reference),
            id::REASON_STRING => str_prop(f, pid, &p.reason_string),
            id::RECEIVE_MAXIMUM => two_prop(f, pid, p.receive_maximum),
            id::TOPIC_ALIAS_MAXIMUM => two_prop(f, pid, p.topic_alias_maximum),
            id::TOPIC_ALIAS => {
                let v = match self.ov {
                    Some(o) => o.alias,
                    None => p.topic_alias,
                };
                two_prop(f, pid, v);
            }
            id::MAXIMUM_QOS => byte_prop(f, pid, p.maximum_qos),
            id::RETAIN_AVAILABLE => byte_prop(f, pid, p.retain_available),
            id::USER_PROPERTY => {
                while self.user < p.user_properties.len() {
                    self.next_user();
                }
            }
            id::MAXIMUM_PACKET_SIZE => four_prop(f, pid, p.maximum_packet_size),
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                byte_prop(f, pid, p.wildcard_subscription_available)
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                byte_prop(f, pid, p.subscription_identifier_available)
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => byte_prop(f, pid, p.shared_subscription_available),
            _ => {}
        }
    }
}

#[inline]
fn byte_prop<'a>(f: &mut impl FnMut(Prop<'a>), pid: u8, v: Option<u8>) {
    if let Some(v) = v {
        f(Prop::Byte(pid, v));
    }
}

#[inline]
fn two_prop<'a>(f: &mut impl FnMut(Prop<'a>), pid: u8, v: Option<u16>) {
    if let Some(v) = v {
        f(Prop::Two(pid, v));
    }
}

#[inline]
fn four_prop<'a>(f: &mut impl FnMut(Prop<'a>), pid: u8, v: Option<u32>) {
    if let Some(v) = v {
        f(Prop::Four(pid, v));
    }
}

#[inline]
fn str_prop<'a>(f: &mut impl FnMut(Prop<'a>), pid: u8, v: &'a Option<String>) {
    if let Some(v) = v {
        f(Prop::Str(pid, v));
    }
}

/// Calls `f` for every property to write, in mosquitto's order for `order`.
#[inline]
fn visit<'a>(
    p: &'a Properties,
    ov: Option<&PublishOverrides>,
    order: Order,
    f: impl FnMut(Prop<'a>),
) {
    let mut e = Emitter {
        p,
        ov,
        done: 0,
        user: 0,
        f,
    };
    match order {
        Order::Ids => ALL_IDS.iter().for_each(|&pid| e.emit(pid)),
        Order::Connack => {
            CONNACK_ORDER.iter().for_each(|&pid| e.emit(pid));
            ALL_IDS.iter().for_each(|&pid| e.emit(pid));
        }
        // Every delivery goes through here: only the properties a PUBLISH
        // or will may carry (the decoders refuse any other) are visited,
        // not all 27.
        Order::Message => {
            e.emit(id::SUBSCRIPTION_IDENTIFIER);
            e.emit(id::TOPIC_ALIAS);
            for &pid in p.received_order.ids() {
                if pid == id::USER_PROPERTY {
                    e.next_user();
                } else {
                    e.emit(pid);
                }
            }
            MESSAGE_ORDER.iter().for_each(|&pid| e.emit(pid));
            e.emit(id::MESSAGE_EXPIRY_INTERVAL);
            // Only a will in a CONNECT (a bridge's) has one.
            e.emit(id::WILL_DELAY_INTERVAL);
        }
    }
}

/// Length of the properties themselves (without the length prefix).
#[inline]
pub(crate) fn props_len(p: &Properties, ov: Option<&PublishOverrides>, order: Order) -> usize {
    let mut n = 0;
    visit(p, ov, order, |prop| n += prop.len());
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
    order: Order,
    len: usize,
    out: &mut Vec<u8>,
) {
    put_varint(out, len);
    visit(p, ov, order, |prop| prop.write(out));
}
