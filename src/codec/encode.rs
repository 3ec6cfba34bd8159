//! Packet encoding. Every encoder computes the remaining length first, then
//! writes straight into the output buffer after a single `reserve`.

use super::packet::{
    Ack, Connect, OutgoingPublish, Packet, ProtocolVersion, Publish, Qos, RetainHandling,
    SubscriptionOptions,
};
use super::properties::Properties;
use super::props_codec::{Order, PublishOverrides, props_len, section_len, write_props};
use super::wire::{lp_len, put_bytes, put_varint, varint_len};

#[inline]
fn header(out: &mut Vec<u8>, first: u8, remaining: usize) {
    out.reserve(1 + varint_len(remaining) + remaining);
    out.push(first);
    put_varint(out, remaining);
}

/// The properties length for 5.0, `None` for 3.x.
#[inline]
fn props_for(p: &Properties, version: ProtocolVersion, order: Order) -> Option<usize> {
    version.is_v5().then(|| props_len(p, None, order))
}

#[inline]
fn section(pl: Option<usize>) -> usize {
    pl.map_or(0, section_len)
}

#[inline]
fn put_props(p: &Properties, order: Order, pl: Option<usize>, out: &mut Vec<u8>) {
    if let Some(pl) = pl {
        write_props(p, None, order, pl, out);
    }
}

/// Appends `packet` encoded for a connection speaking `version`. For 3.x,
/// properties and 5.0-only reason codes are left out; AUTH writes nothing.
/// CONNECT is written for its own `Connect::version`.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut Vec<u8>) {
    let v5 = version.is_v5();
    match packet {
        Packet::Connect(c) => encode_connect(c, out),
        Packet::Connack(c) => {
            let pl = props_for(&c.properties, version, Order::Connack);
            header(out, 0x20, 2 + section(pl));
            let session_present = version != ProtocolVersion::V31 && c.session_present;
            out.push(u8::from(session_present));
            out.push(c.code);
            put_props(&c.properties, Order::Connack, pl, out);
        }
        Packet::Publish(p) => encode_publish_packet(p, version, out),
        Packet::Puback(a) => encode_ack(0x40, a, v5, out),
        Packet::Pubrec(a) => encode_ack(0x50, a, v5, out),
        Packet::Pubrel(a) => encode_ack(0x62, a, v5, out),
        Packet::Pubcomp(a) => encode_ack(0x70, a, v5, out),
        Packet::Subscribe(s) => {
            let pl = props_for(&s.properties, version, Order::Ids);
            let filters: usize = s
                .filters
                .iter()
                .map(|(f, _)| lp_len(f.as_str().as_bytes()) + 1)
                .sum();
            header(out, 0x82, 2 + section(pl) + filters);
            out.extend_from_slice(&s.packet_id.get().to_be_bytes());
            put_props(&s.properties, Order::Ids, pl, out);
            for (f, o) in &s.filters {
                put_bytes(out, f.as_str().as_bytes());
                out.push(options_byte(o, v5));
            }
        }
        Packet::Suback(s) => {
            let pl = props_for(&s.properties, version, Order::Ids);
            header(out, 0x90, 2 + section(pl) + s.codes.len());
            out.extend_from_slice(&s.packet_id.get().to_be_bytes());
            put_props(&s.properties, Order::Ids, pl, out);
            out.extend_from_slice(&s.codes);
        }
        Packet::Unsubscribe(u) => {
            let pl = props_for(&u.properties, version, Order::Ids);
            let filters: usize = u
                .filters
                .iter()
                .map(|f| lp_len(f.as_str().as_bytes()))
                .sum();
            header(out, 0xA2, 2 + section(pl) + filters);
            out.extend_from_slice(&u.packet_id.get().to_be_bytes());
            put_props(&u.properties, Order::Ids, pl, out);
            for f in &u.filters {
                put_bytes(out, f.as_str().as_bytes());
            }
        }
        Packet::Unsuback(u) => {
            let pl = props_for(&u.properties, version, Order::Ids);
            let codes = if v5 { u.codes.len() } else { 0 };
            header(out, 0xB0, 2 + section(pl) + codes);
            out.extend_from_slice(&u.packet_id.get().to_be_bytes());
            put_props(&u.properties, Order::Ids, pl, out);
            if v5 {
                out.extend_from_slice(&u.codes);
            }
        }
        Packet::Pingreq => out.extend_from_slice(&[0xC0, 0]),
        Packet::Pingresp => out.extend_from_slice(&[0xD0, 0]),
        Packet::Disconnect(d) => {
            if v5 {
                encode_reason_props(0xE0, d.reason, &d.properties, out);
            } else {
                out.extend_from_slice(&[0xE0, 0]);
            }
        }
        Packet::Auth(a) => {
            if v5 {
                encode_reason_props(0xF0, a.reason, &a.properties, out);
            }
        }
    }
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    let mut b = o.qos.as_u8();
    if v5 {
        b |= u8::from(o.no_local) << 2;
        b |= u8::from(o.retain_as_published) << 3;
        let rh = match o.retain_handling {
            RetainHandling::SendAlways => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        };
        b |= rh << 4;
    }
    b
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP; 5.0 uses the short forms when it can.
fn encode_ack(first: u8, a: &Ack, v5: bool, out: &mut Vec<u8>) {
    let id = a.packet_id.get().to_be_bytes();
    if !v5 || (a.reason == 0 && a.properties.is_empty()) {
        out.extend_from_slice(&[first, 2, id[0], id[1]]);
    } else if a.properties.is_empty() {
        out.extend_from_slice(&[first, 3, id[0], id[1], a.reason]);
    } else {
        let pl = props_len(&a.properties, None, Order::Ids);
        header(out, first, 3 + section_len(pl));
        out.extend_from_slice(&[id[0], id[1], a.reason]);
        write_props(&a.properties, None, Order::Ids, pl, out);
    }
}

/// 5.0 DISCONNECT / AUTH: empty body for success without properties.
fn encode_reason_props(first: u8, reason: u8, props: &Properties, out: &mut Vec<u8>) {
    if props.is_empty() {
        if reason == 0 {
            out.extend_from_slice(&[first, 0]);
        } else {
            out.extend_from_slice(&[first, 1, reason]);
        }
    } else {
        let pl = props_len(props, None, Order::Ids);
        header(out, first, 1 + section_len(pl));
        out.push(reason);
        write_props(props, None, Order::Ids, pl, out);
    }
}

fn encode_connect(c: &Connect, out: &mut Vec<u8>) {
    let version = c.version;
    let v5 = version.is_v5();
    let name: &[u8] = if version == ProtocolVersion::V31 {
        b"MQIsdp"
    } else {
        b"MQTT"
    };
    let pl = props_for(&c.properties, version, Order::Ids);
    let mut rl = lp_len(name) + 1 + 1 + 2 + section(pl) + lp_len(c.client_id.as_bytes());
    let mut wpl = None;
    if let Some(w) = &c.will {
        wpl = props_for(&w.properties, version, Order::Message);
        rl += section(wpl) + lp_len(w.topic.as_str().as_bytes()) + lp_len(&w.payload);
    }
    if let Some(u) = &c.username {
        rl += lp_len(u.as_bytes());
    }
    if let Some(p) = &c.password {
        rl += lp_len(p);
    }
    header(out, 0x10, rl);
    put_bytes(out, name);
    let bridge = if c.bridge && !v5 { 0x80 } else { 0 };
    out.push(version.level() | bridge);
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos.as_u8() << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    out.push(flags);
    out.extend_from_slice(&c.keep_alive.to_be_bytes());
    put_props(&c.properties, Order::Ids, pl, out);
    put_bytes(out, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        put_props(&w.properties, Order::Message, wpl, out);
        put_bytes(out, w.topic.as_str().as_bytes());
        put_bytes(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_bytes(out, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_bytes(out, p);
    }
}

#[inline]
fn publish_first_byte(dup: bool, qos: Qos, retain: bool) -> u8 {
    0x30 | (u8::from(dup) << 3) | (qos.as_u8() << 1) | u8::from(retain)
}

fn encode_publish_packet(p: &Publish, version: ProtocolVersion, out: &mut Vec<u8>) {
    let pl = props_for(&p.properties, version, Order::Message);
    let with_id = p.qos != Qos::AtMostOnce;
    let rl =
        lp_len(p.topic.as_bytes()) + if with_id { 2 } else { 0 } + section(pl) + p.payload.len();
    header(out, publish_first_byte(p.dup, p.qos, p.retain), rl);
    put_bytes(out, p.topic.as_bytes());
    if with_id {
        let id = p.packet_id.map_or(0, |id| id.get());
        out.extend_from_slice(&id.to_be_bytes());
    }
    put_props(&p.properties, Order::Message, pl, out);
    out.extend_from_slice(&p.payload);
}

#[inline]
fn outgoing_overrides(p: &OutgoingPublish) -> PublishOverrides {
    PublishOverrides {
        expiry: p.message_expiry,
        sub_id: p.subscription_id,
        alias: p.topic_alias,
    }
}

#[inline]
fn outgoing_topic(p: &OutgoingPublish, version: ProtocolVersion) -> &[u8] {
    if version.is_v5() && p.topic_alias_only {
        b""
    } else {
        let topic = p.message.topic.as_str().as_bytes();
        topic.get(usize::from(p.topic_skip)..).unwrap_or(topic)
    }
}

/// `(remaining length, properties length for 5.0)`.
#[inline]
fn outgoing_lengths(p: &OutgoingPublish, version: ProtocolVersion) -> (usize, Option<usize>) {
    let pl = version.is_v5().then(|| {
        props_len(
            &p.message.properties,
            Some(&outgoing_overrides(p)),
            Order::Message,
        )
    });
    let with_id = p.qos != Qos::AtMostOnce;
    let rl = lp_len(outgoing_topic(p, version))
        + if with_id { 2 } else { 0 }
        + section(pl)
        + p.message.payload.len();
    (rl, pl)
}

/// Exact number of bytes `encode_publish` writes for `p`.
pub fn publish_wire_size(p: &OutgoingPublish, version: ProtocolVersion) -> usize {
    let (rl, _) = outgoing_lengths(p, version);
    1 + varint_len(rl) + rl
}

/// Appends an outgoing PUBLISH without allocating beyond one `reserve` of
/// `out`. For 5.0 the stored properties are written except topic alias and
/// subscription identifiers, with the per-delivery expiry, subscription
/// identifier and topic alias.
pub fn encode_publish(p: &OutgoingPublish, version: ProtocolVersion, out: &mut Vec<u8>) {
    let (rl, pl) = outgoing_lengths(p, version);
    header(out, publish_first_byte(p.dup, p.qos, p.retain), rl);
    put_bytes(out, outgoing_topic(p, version));
    if p.qos != Qos::AtMostOnce {
        let id = p.packet_id.map_or(0, |id| id.get());
        out.extend_from_slice(&id.to_be_bytes());
    }
    if let Some(pl) = pl {
        write_props(
            &p.message.properties,
            Some(&outgoing_overrides(p)),
            Order::Message,
            pl,
            out,
        );
    }
    out.extend_from_slice(&p.message.payload);
}
