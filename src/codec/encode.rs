//! Packet encoding. (placeholder: being written)
use super::packet::{OutgoingPublish, Packet, ProtocolVersion};

pub fn encode(_packet: &Packet, _version: ProtocolVersion, _out: &mut Vec<u8>) {}

pub fn encode_publish(_p: &OutgoingPublish, _version: ProtocolVersion, _out: &mut Vec<u8>) {}

pub fn publish_wire_size(_p: &OutgoingPublish, _version: ProtocolVersion) -> usize {
    0
}
