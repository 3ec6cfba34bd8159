//! Packet decoding: the fixed header by hand (so "need more bytes" and
//! "too large" are known as early as possible), the body with nom parsers.
//!
//! Every check follows the MQTT 3.1.1 / 5.0 standards, choosing as mosquitto
//! 2.0 does where they leave room. The decoder never panics on any input.

use std::fmt;
use std::num::NonZeroU16;

use super::packet::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, Qos,
    RetainHandling, Suback, Subscribe, SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
use super::properties::Properties;
use super::props_codec::{ctx, properties};
use super::reason::v5;
use super::topic::{TopicFilter, TopicName};
use super::wire::{
    In, PErr, PResult, Varint, binary, byte, malformed, protocol, read_varint, two, utf8,
};

/// Why a packet could not be decoded. The connection is closed after any of
/// these; `reason_code` gives the MQTT 5.0 DISCONNECT / CONNACK reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes do not form a valid packet.
    Malformed {
        packet: &'static str,
        reason: &'static str,
    },
    /// Well formed, but against the protocol's rules.
    ProtocolError {
        packet: &'static str,
        reason: &'static str,
    },
    /// The whole packet (fixed header included) is larger than allowed.
    PacketTooLarge { size: usize, max: u32 },
    /// CONNECT with a known protocol name but a level this broker does not
    /// speak: answer CONNACK 1 (3.x) / 0x84 (5.0), then close.
    UnsupportedProtocolVersion { level: u8 },
    /// CONNECT with an unknown protocol name: close without a CONNACK.
    InvalidProtocolName(String),
}

impl DecodeError {
    /// The MQTT 5.0 reason code for a DISCONNECT or CONNACK reporting this.
    /// An invalid protocol name counts as a protocol error (mosquitto's
    /// classification; no CONNACK is sent for it anyway).
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed { .. } => v5::MALFORMED_PACKET,
            DecodeError::ProtocolError { .. } => v5::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => v5::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion { .. } => v5::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::InvalidProtocolName(_) => v5::PROTOCOL_ERROR,
        }
    }

    /// Whether a 5.0 peer is told why with a DISCONNECT before the close.
    /// mosquitto closes at once, without one, on a CONNACK from a client.
    pub fn sends_disconnect(&self) -> bool {
        !matches!(
            self,
            DecodeError::Malformed {
                packet: "CONNACK",
                ..
            } | DecodeError::ProtocolError {
                packet: "CONNACK",
                ..
            }
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed { packet, reason } => {
                write!(f, "malformed {packet} packet: {reason}")
            }
            DecodeError::ProtocolError { packet, reason } => {
                write!(f, "protocol error in {packet} packet: {reason}")
            }
            DecodeError::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the maximum of {max}")
            }
            DecodeError::UnsupportedProtocolVersion { level } => {
                write!(f, "unsupported protocol version {level}")
            }
            DecodeError::InvalidProtocolName(name) => {
                write!(f, "invalid protocol name {name:?}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl PErr {
    fn into_decode(self, packet: &'static str) -> DecodeError {
        match self {
            PErr::Malformed(reason) => DecodeError::Malformed { packet, reason },
            PErr::Protocol(reason) => DecodeError::ProtocolError { packet, reason },
            PErr::Full(e) => e,
        }
    }
}

fn type_name(ptype: u8) -> &'static str {
    match ptype {
        1 => "CONNECT",
        2 => "CONNACK",
        3 => "PUBLISH",
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        8 => "SUBSCRIBE",
        9 => "SUBACK",
        10 => "UNSUBSCRIBE",
        11 => "UNSUBACK",
        12 => "PINGREQ",
        13 => "PINGRESP",
        14 => "DISCONNECT",
        15 => "AUTH",
        _ => "reserved",
    }
}

/// Checks the first byte alone: packet type against the connection state and
/// version, and the fixed-header flags.
fn check_first_byte(
    ptype: u8,
    flags: u8,
    version: Option<ProtocolVersion>,
) -> Result<(), DecodeError> {
    let packet = type_name(ptype);
    let malformed = |reason| Err(DecodeError::Malformed { packet, reason });
    let protocol = |reason| Err(DecodeError::ProtocolError { packet, reason });
    if ptype == 0 {
        return malformed("reserved packet type 0");
    }
    let Some(v) = version else {
        if ptype != 1 {
            return protocol("the first packet must be CONNECT");
        }
        // CONNECT's flags are checked once its protocol version is known.
        return Ok(());
    };
    match ptype {
        15 if v != ProtocolVersion::V5 => protocol("AUTH exists only in MQTT 5.0"),
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                malformed("QoS 3")
            } else if qos == 0 && flags & 0x08 != 0 {
                malformed("DUP set on a QoS 0 message")
            } else {
                Ok(())
            }
        }
        1 => Ok(()),
        // mosquitto checks the remaining reserved flags only for 3.1.1 and 5.0.
        _ if v == ProtocolVersion::V31 => Ok(()),
        6 | 8 | 10 if flags != 0b0010 => malformed("fixed header flags must be 0010"),
        6 | 8 | 10 => Ok(()),
        _ if flags != 0 => malformed("reserved fixed header flags set"),
        _ => Ok(()),
    }
}

/// The whole size of the packet starting at the front of `buf`, once its
/// fixed header is there (`None` before, or if the length is malformed:
/// `decode` reports that).
pub fn packet_size(buf: &[u8]) -> Option<usize> {
    match read_varint(buf.get(1..)?) {
        Varint::Value(v, n) => Some(1 + n + v as usize),
        Varint::Incomplete | Varint::Malformed => None,
    }
}

/// Decodes one packet from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed. `version`: `None` until the
/// connection's CONNECT was accepted (then only CONNECT is accepted).
/// `max_packet_size`: limit on the whole packet, 0 for the protocol's own.
pub fn decode(
    buf: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let ptype = first >> 4;
    let flags = first & 0x0F;
    let packet = type_name(ptype);
    check_first_byte(ptype, flags, version)?;
    let (remaining, len_bytes) = match read_varint(buf.get(1..).unwrap_or_default()) {
        Varint::Value(v, n) => (v as usize, n),
        Varint::Incomplete => return Ok(None),
        Varint::Malformed => {
            return Err(DecodeError::Malformed {
                packet,
                reason: "remaining length longer than 4 bytes",
            });
        }
    };
    let total = 1 + len_bytes + remaining;
    if max_packet_size != 0 && total > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    let Some(body) = buf.get(1 + len_bytes..total) else {
        return Ok(None);
    };
    // The type was checked above: without a version only CONNECT gets here.
    let v = version.unwrap_or(ProtocolVersion::V311);
    let parsed = match ptype {
        1 => connect(body, flags),
        2 => connack(body, v),
        3 => publish(body, flags, v),
        4 => ack(body, v).map(|(i, a)| (i, Packet::Puback(a))),
        5 => ack(body, v).map(|(i, a)| (i, Packet::Pubrec(a))),
        6 => ack(body, v).map(|(i, a)| (i, Packet::Pubrel(a))),
        7 => ack(body, v).map(|(i, a)| (i, Packet::Pubcomp(a))),
        8 => subscribe(body, v),
        9 => suback(body, v),
        10 => unsubscribe(body, v),
        11 => unsuback(body, v),
        12 => Ok((body, Packet::Pingreq)),
        13 => Ok((body, Packet::Pingresp)),
        14 => disconnect(body, v),
        15 => auth(body),
        _ => malformed("reserved packet type"),
    };
    match parsed {
        Ok(([], pkt)) => Ok(Some((pkt, total))),
        Ok(_) => Err(DecodeError::Malformed {
            packet,
            reason: "bytes left over after the packet's fields",
        }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_decode(packet)),
        Err(nom::Err::Incomplete(_)) => Err(DecodeError::Malformed {
            packet,
            reason: "packet shorter than its fields",
        }),
    }
}

fn fail<T>(e: DecodeError) -> Result<T, nom::Err<PErr>> {
    Err(nom::Err::Failure(PErr::Full(e)))
}

/// Properties for 5.0, nothing for 3.x.
fn props_if(i: In<'_>, v: ProtocolVersion, context: u16) -> PResult<'_, Properties> {
    if v.is_v5() {
        properties(i, context)
    } else {
        Ok((i, Properties::default()))
    }
}

/// A packet identifier; zero is a protocol error or malformed (per packet,
/// as mosquitto chooses).
fn packet_id(i: In<'_>, zero_is_malformed: bool) -> PResult<'_, PacketId> {
    let (i, id) = two(i)?;
    match NonZeroU16::new(id) {
        Some(id) => Ok((i, id)),
        None if zero_is_malformed => malformed("packet identifier 0"),
        None => protocol("packet identifier 0"),
    }
}

fn connect(i: In<'_>, header_flags: u8) -> PResult<'_, Packet> {
    let (i, name) = binary(i)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return fail(DecodeError::InvalidProtocolName(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let (i, level) = byte(i)?;
    let bridge = level & 0x80 != 0;
    let version = match (name, level & 0x7F, bridge) {
        (b"MQIsdp", 3, _) => ProtocolVersion::V31,
        (b"MQTT", 4, _) => ProtocolVersion::V311,
        (b"MQTT", 5, false) => ProtocolVersion::V5,
        _ => return fail(DecodeError::UnsupportedProtocolVersion { level }),
    };
    let v5 = version.is_v5();
    // Like mosquitto, MQTT 3.1 (which predates these rules) is not held to
    // the reserved-bit checks.
    let strict = version != ProtocolVersion::V31;
    if strict && header_flags != 0 {
        return malformed("reserved fixed header flags set");
    }
    let (i, f) = byte(i)?;
    if strict && f & 0x01 != 0 {
        return malformed("reserved connect flag set");
    }
    let clean_start = f & 0x02 != 0;
    let will_flag = f & 0x04 != 0;
    let will_qos = (f >> 3) & 0x03;
    let will_retain = f & 0x20 != 0;
    let password_flag = f & 0x40 != 0;
    let username_flag = f & 0x80 != 0;
    if strict && !will_flag && (will_qos != 0 || will_retain) {
        return malformed("will QoS or retain set without a will");
    }
    let Some(will_qos) = Qos::from_u8(will_qos) else {
        return malformed("will QoS 3");
    };
    if !v5 && password_flag && !username_flag {
        return protocol("password flag without username flag");
    }
    let (i, keep_alive) = two(i)?;
    let (i, props) = props_if(i, version, ctx::CONNECT)?;
    let (i, client_id) = utf8(i)?;
    let (i, will) = if will_flag {
        let (i, will_props) = props_if(i, version, ctx::WILL)?;
        let (i, topic) = utf8(i)?;
        let Ok(topic) = TopicName::new(topic) else {
            return malformed("invalid will topic");
        };
        let (i, payload) = binary(i)?;
        let will = Will {
            topic,
            payload: payload.to_vec(),
            qos: will_qos,
            retain: will_retain,
            properties: will_props,
        };
        (i, Some(will))
    } else {
        (i, None)
    };
    // MQTT 3.1: mosquitto ignores a username/password flag with no field.
    let lenient = version == ProtocolVersion::V31;
    let (i, username) = if username_flag && !(lenient && i.is_empty()) {
        let (i, u) = utf8(i)?;
        (i, Some(u.to_owned()))
    } else {
        (i, None)
    };
    let (i, password) = if password_flag && !(lenient && i.is_empty()) {
        let (i, p) = binary(i)?;
        (i, Some(p.to_vec()))
    } else {
        (i, None)
    };
    let connect = Connect {
        version,
        bridge,
        clean_start,
        keep_alive,
        client_id: client_id.to_owned(),
        will,
        username,
        password,
        properties: props,
    };
    Ok((i, Packet::Connect(Box::new(connect))))
}

fn connack(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    let (i, flags) = byte(i)?;
    if v != ProtocolVersion::V31 && flags & 0xFE != 0 {
        return malformed("reserved CONNACK flags set");
    }
    let (i, code) = byte(i)?;
    let (i, properties) = props_if(i, v, ctx::CONNACK)?;
    let connack = Connack {
        session_present: v != ProtocolVersion::V31 && flags & 0x01 != 0,
        code,
        properties,
    };
    Ok((i, Packet::Connack(connack)))
}

fn publish(i: In<'_>, flags: u8, v: ProtocolVersion) -> PResult<'_, Packet> {
    let Some(qos) = Qos::from_u8((flags >> 1) & 0x03) else {
        return malformed("QoS 3");
    };
    let (i, topic) = utf8(i)?;
    let (i, packet_id) = if qos != Qos::AtMostOnce {
        let (i, id) = packet_id(i, false)?;
        (i, Some(id))
    } else {
        (i, None)
    };
    let (i, properties) = props_if(i, v, ctx::PUBLISH)?;
    if topic.is_empty() {
        if !v.is_v5() {
            return malformed("empty topic");
        }
        if properties.topic_alias.is_none() {
            return protocol("empty topic without a topic alias");
        }
    } else if TopicName::new(topic).is_err() {
        // mosquitto's topic check fails a PUBLISH as a protocol error (0x82).
        return protocol("invalid topic name");
    }
    let publish = Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 0x01 != 0,
        topic: topic.to_owned(),
        packet_id,
        payload: i.to_vec(),
        properties,
    };
    Ok((&[], Packet::Publish(publish)))
}

fn ack(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Ack> {
    let (i, id) = packet_id(i, false)?;
    if !v.is_v5() || i.is_empty() {
        return Ok((i, Ack::new(id)));
    }
    let (i, reason) = byte(i)?;
    let (i, properties) = if i.is_empty() {
        (i, Properties::default())
    } else {
        properties(i, ctx::ACK)?
    };
    let ack = Ack {
        packet_id: id,
        reason,
        properties,
    };
    Ok((i, ack))
}

fn subscription_options(o: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, nom::Err<PErr>> {
    let Some(qos) = Qos::from_u8(o & 0x03) else {
        return malformed("subscription QoS 3");
    };
    if !v.is_v5() {
        if o & 0xFC != 0 {
            return malformed("reserved subscription option bits set");
        }
        return Ok(SubscriptionOptions::with_qos(qos));
    }
    if o & 0xC0 != 0 {
        return malformed("reserved subscription option bits set");
    }
    let retain_handling = match (o >> 4) & 0x03 {
        0 => RetainHandling::SendAlways,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        // A protocol error by the standard; mosquitto answers 0x81.
        _ => return malformed("retain handling 3"),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: o & 0x04 != 0,
        retain_as_published: o & 0x08 != 0,
        retain_handling,
    })
}

fn filter(i: In<'_>) -> PResult<'_, TopicFilter> {
    let (i, s) = utf8(i)?;
    match TopicFilter::new(s) {
        Ok(f) => Ok((i, f)),
        Err(_) => malformed("invalid topic filter"),
    }
}

fn subscribe(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    let (i, packet_id) = packet_id(i, true)?;
    let (mut i, properties) = props_if(i, v, ctx::SUBSCRIBE)?;
    let mut filters = Vec::new();
    while !i.is_empty() {
        let (r, f) = filter(i)?;
        let (r, o) = byte(r)?;
        let opts = subscription_options(o, v)?;
        if opts.no_local && f.shared().is_some() {
            return protocol("no local on a shared subscription");
        }
        filters.push((f, opts));
        i = r;
    }
    if filters.is_empty() {
        return malformed("SUBSCRIBE without topic filters");
    }
    let sub = Subscribe {
        packet_id,
        filters,
        properties,
    };
    Ok((i, Packet::Subscribe(sub)))
}

fn suback(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    let (i, packet_id) = packet_id(i, false)?;
    let (i, properties) = props_if(i, v, ctx::SUBACK)?;
    if i.is_empty() {
        return protocol("SUBACK without return codes");
    }
    if !v.is_v5() && i.iter().any(|c| !matches!(c, 0 | 1 | 2 | 0x80)) {
        return malformed("invalid SUBACK return code");
    }
    let suback = Suback {
        packet_id,
        codes: i.to_vec(),
        properties,
    };
    Ok((&[], Packet::Suback(suback)))
}

fn unsubscribe(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    let (i, packet_id) = packet_id(i, true)?;
    let (mut i, properties) = props_if(i, v, ctx::UNSUBSCRIBE)?;
    let mut filters = Vec::new();
    while !i.is_empty() {
        let (r, f) = filter(i)?;
        filters.push(f);
        i = r;
    }
    if filters.is_empty() {
        return malformed("UNSUBSCRIBE without topic filters");
    }
    let unsub = Unsubscribe {
        packet_id,
        filters,
        properties,
    };
    Ok((i, Packet::Unsubscribe(unsub)))
}

fn unsuback(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    let (i, packet_id) = packet_id(i, false)?;
    if !v.is_v5() {
        let unsuback = Unsuback {
            packet_id,
            codes: Vec::new(),
            properties: Properties::default(),
        };
        return Ok((i, Packet::Unsuback(unsuback)));
    }
    let (i, properties) = properties(i, ctx::UNSUBACK)?;
    if i.is_empty() {
        return protocol("UNSUBACK without reason codes");
    }
    let unsuback = Unsuback {
        packet_id,
        codes: i.to_vec(),
        properties,
    };
    Ok((&[], Packet::Unsuback(unsuback)))
}

/// 5.0 DISCONNECT / AUTH body: optional reason code, optional properties.
fn reason_and_props(i: In<'_>, context: u16) -> PResult<'_, (u8, Properties)> {
    if i.is_empty() {
        return Ok((i, (0, Properties::default())));
    }
    let (i, reason) = byte(i)?;
    if i.is_empty() {
        return Ok((i, (reason, Properties::default())));
    }
    let (i, props) = properties(i, context)?;
    Ok((i, (reason, props)))
}

fn disconnect(i: In<'_>, v: ProtocolVersion) -> PResult<'_, Packet> {
    if !v.is_v5() {
        let d = Disconnect {
            reason: 0,
            properties: Properties::default(),
        };
        return Ok((i, Packet::Disconnect(d)));
    }
    let (i, (reason, properties)) = reason_and_props(i, ctx::DISCONNECT)?;
    Ok((i, Packet::Disconnect(Disconnect { reason, properties })))
}

fn auth(i: In<'_>) -> PResult<'_, Packet> {
    let (i, (reason, properties)) = reason_and_props(i, ctx::AUTH)?;
    Ok((i, Packet::Auth(Auth { reason, properties })))
}
