//! mosquitto's `-v` lines (log type debug): one per packet received or sent.
//! Only built when debug logging is on (`log::log_enabled!`), so the hot
//! path pays one branch.

use crate::codec::{OutgoingPublish, Packet, Publish};

/// `Received PUBLISH from c1 (d0, q1, r0, m1, 'a/b', ... (5 bytes))` and the
/// like.
pub fn received(client: &str, packet: &Packet) -> String {
    match packet {
        Packet::Publish(p) => format!("Received PUBLISH from {client} {}", publish_details(p)),
        Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
            format!(
                "Received {} from {client} (Mid: {}, RC:{})",
                packet.name(),
                a.packet_id,
                a.reason
            )
        }
        other => format!("Received {} from {client}", other.name()),
    }
}

fn publish_details(p: &Publish) -> String {
    format!(
        "(d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
        u8::from(p.dup),
        p.qos.as_u8(),
        u8::from(p.retain),
        p.packet_id.map(|m| m.get()).unwrap_or(0),
        p.topic,
        p.payload.len()
    )
}

/// `Sending CONNACK to c1 (0, 0)`, `Sending PUBACK to c1 (m1, rc0)`, ...
pub fn sending(client: &str, packet: &Packet) -> String {
    match packet {
        Packet::Connack(c) => format!(
            "Sending CONNACK to {client} ({}, {})",
            u8::from(c.session_present),
            c.code
        ),
        Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => format!(
            "Sending {} to {client} (m{}, rc{})",
            packet.name(),
            a.packet_id,
            a.reason
        ),
        other => format!("Sending {} to {client}", other.name()),
    }
}

/// `Sending PUBLISH to c1 (d0, q0, r0, m0, 'a/b', ... (5 bytes))`.
pub fn sending_publish(client: &str, p: &OutgoingPublish) -> String {
    format!(
        "Sending PUBLISH to {client} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
        u8::from(p.dup),
        p.qos.as_u8(),
        u8::from(p.retain),
        p.packet_id.map(|m| m.get()).unwrap_or(0),
        p.message.topic,
        p.message.payload.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Ack, PacketId, Qos};

    #[test]
    fn lines_have_mosquittos_shape() {
        let p = Packet::Publish(Publish {
            dup: false,
            qos: Qos::AtLeastOnce,
            retain: false,
            topic: "a/b".into(),
            packet_id: PacketId::new(1),
            payload: b"hello".to_vec(),
            properties: Default::default(),
        });
        assert_eq!(
            received("c1", &p),
            "Received PUBLISH from c1 (d0, q1, r0, m1, 'a/b', ... (5 bytes))"
        );
        let ack = Packet::Puback(Ack::new(PacketId::new(1).unwrap()));
        assert_eq!(sending("c1", &ack), "Sending PUBACK to c1 (m1, rc0)");
        assert_eq!(received("c1", &Packet::Pingreq), "Received PINGREQ from c1");
    }
}
