//! MQTT wire format: decoding (nom) and encoding for 3.1, 3.1.1 and 5.0.
//!
//! `decode` reads one whole packet from the front of a byte buffer (or says
//! it needs more bytes); `encode`/`encode_publish` append one packet to a
//! reused output buffer. Both are pure: no sockets, no broker state.

pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;

mod decode;
mod encode;
mod props_codec;
#[cfg(test)]
mod tests;
mod wire;

pub use decode::{DecodeError, decode, packet_size};
pub use encode::{encode, encode_publish, publish_wire_size};
pub use packet::*;
pub use properties::{MessageProperties, Properties};
pub use topic::{TopicError, TopicFilter, TopicName};
pub(crate) use wire::validate_utf8;
