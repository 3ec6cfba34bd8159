//! The MQTT decoder as the event loop drives it, and encode→decode round
//! trips of everything it accepts.
//!
//! Input: one control byte, then a byte stream.
//! - bits 0-1 of the control byte: the connection's version before the
//!   stream: 0 = none yet (only CONNECT is accepted, then the CONNECT's
//!   version is adopted, as the broker does), 1 = 3.1, 2 = 3.1.1, 3 = 5.0
//!   (every packet type is accepted, server-to-client ones too, as on a
//!   bridge's connection);
//! - bit 2: a small `max_packet_size` (the control byte times 8) instead
//!   of 0 (the protocol's own limit).
//!
//! Packets are decoded one after another from the front of the stream until
//! it needs more bytes or fails, as `net` does. Every decoded packet must
//! re-encode (for the same version) to bytes that decode, in full, to the
//! same packet; each proper prefix of those bytes must ask for more.
#![no_main]

use culex::codec::{Packet, ProtocolVersion, decode, encode};
use libfuzzer_sys::fuzz_target;

fn round_trip(packet: &Packet, version: Option<ProtocolVersion>) {
    // CONNECT is encoded for its own version and decoded as a first packet.
    let (enc_version, dec_version) = match packet {
        Packet::Connect(c) => (c.version, None),
        _ => {
            let v = version.expect("only CONNECT decodes without a version");
            (v, Some(v))
        }
    };
    let mut bytes = Vec::new();
    encode(packet, enc_version, &mut bytes);
    match decode(&bytes, dec_version, 0) {
        Ok(Some((again, used))) => {
            assert_eq!(used, bytes.len(), "re-encoded {packet:?} as {bytes:02x?}");
            assert_eq!(&again, packet, "re-encoded as {bytes:02x?}");
        }
        other => panic!("{packet:?} re-encoded as {bytes:02x?} decodes to {other:?}"),
    }
    // Cut anywhere, the same bytes are "need more", never an error.
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        if cut < bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], dec_version, 0),
                Ok(None),
                "{packet:?} cut at {cut} of {bytes:02x?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut buf)) = data.split_first() else {
        return;
    };
    let mut version = match control & 3 {
        0 => None,
        1 => Some(ProtocolVersion::V31),
        2 => Some(ProtocolVersion::V311),
        _ => Some(ProtocolVersion::V5),
    };
    let max = if control & 4 != 0 {
        u32::from(control) * 8
    } else {
        0
    };
    while let Ok(Some((packet, used))) = decode(buf, version, max) {
        assert!(used > 0 && used <= buf.len());
        round_trip(&packet, version);
        if let (None, Packet::Connect(c)) = (version, &packet) {
            version = Some(c.version);
        }
        buf = &buf[used..];
    }
});
