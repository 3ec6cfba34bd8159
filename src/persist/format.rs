//! Constants of the mosquitto.db layout: magic, versions, chunk types.
//!
//! See `docs`/the shared spec (persistence-format.md) for the full picture;
//! the short version is in `mod.rs`.

/// `00 B5 00` + `mosquitto db`: the first 15 bytes of every file.
pub const MAGIC: [u8; 15] = *b"\x00\xb5\x00mosquitto db";
/// Magic, CRC placeholder (never checked), format version.
pub const HEADER_LEN: usize = 23;
/// The version mosquitto 1.6.11+ and 2.0.x write, and the one we write.
pub const DB_VERSION: u32 = 6;
/// Oldest version mosquitto 2.0 still reads.
pub const MIN_VERSION: u32 = 2;
/// Size of a store id; a CFG chunk with anything else makes the load fail.
pub const DBID_SIZE: u8 = 8;
/// Largest payload an MQTT packet can carry; a bigger v5/v6 MSG_STORE fails.
pub const MAX_PAYLOAD: u32 = 268_435_455;
/// `session_expiry_interval` of a session that never expires (MQTT 3.x).
pub const SESSION_EXPIRY_NEVER: u32 = u32::MAX;

pub const CHUNK_CFG: u32 = 1;
pub const CHUNK_MSG_STORE: u32 = 2;
pub const CHUNK_CLIENT_MSG: u32 = 3;
pub const CHUNK_RETAIN: u32 = 4;
pub const CHUNK_SUB: u32 = 5;
pub const CHUNK_CLIENT: u32 = 6;

/// Fixed parts of the v5/v6 chunk bodies (C structs, padding included).
pub const CFG_LEN: usize = 16;
pub const MSG_STORE_FIXED: usize = 32;
pub const CLIENT_MSG_FIXED: usize = 16;
pub const RETAIN_LEN: usize = 8;
pub const SUB_FIXED: usize = 12;
pub const CLIENT_FIXED_V6: usize = 24;
pub const CLIENT_FIXED_V5: usize = 16;

/// Name of a chunk type as used in messages (`MSG_STORE`, ...).
pub fn chunk_name(kind: u32) -> &'static str {
    match kind {
        CHUNK_CFG => "CFG",
        CHUNK_MSG_STORE => "MSG_STORE",
        CHUNK_CLIENT_MSG => "CLIENT_MSG",
        CHUNK_RETAIN => "RETAIN",
        CHUNK_SUB => "SUB",
        CHUNK_CLIENT => "CLIENT",
        _ => "unknown",
    }
}
