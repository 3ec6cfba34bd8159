//! Packet decoding. (placeholder: being written)
use super::packet::{Packet, ProtocolVersion};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Malformed { packet: &'static str, reason: &'static str },
    ProtocolError { packet: &'static str, reason: &'static str },
    PacketTooLarge { size: usize, max: u32 },
    UnsupportedProtocolVersion { level: u8 },
    InvalidProtocolName(String),
}

impl DecodeError {
    pub fn reason_code(&self) -> u8 {
        0x81
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

pub fn decode(
    _buf: &[u8],
    _version: Option<ProtocolVersion>,
    _max_packet_size: u32,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    Err(DecodeError::Malformed { packet: "?", reason: "not implemented" })
}
