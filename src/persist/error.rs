//! Why a database could not be loaded.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A database mosquitto 2.0 would refuse to load (the broker must not start),
/// or a file that could not be read. Offsets are byte offsets in the file;
/// for chunk errors they point at the chunk header.
#[derive(Debug)]
pub enum DbError {
    /// The file exists but could not be read.
    Io { path: PathBuf, source: io::Error },
    /// 1–14 bytes: not even the magic fits.
    TooShort { len: usize },
    /// The first 15 bytes are not the mosquitto magic.
    BadMagic,
    /// A format version other than 2–6.
    UnsupportedVersion { version: u32 },
    /// The file ends inside the header or inside a known chunk.
    Truncated { what: &'static str, offset: usize },
    /// A CFG chunk whose dbid size is not 8.
    DbidSize { size: u8, offset: usize },
    /// A v5/v6 MSG_STORE with a payload larger than MQTT allows.
    PayloadTooLarge { len: u32, offset: usize },
    /// A chunk length smaller than its fixed part and strings (v5/v6
    /// MSG_STORE and CLIENT_MSG, where the length sizes the property block).
    LengthTooSmall {
        chunk: &'static str,
        offset: usize,
        length: u32,
    },
    /// A property block mosquitto rejects (malformed, not allowed on PUBLISH, ...).
    Properties {
        chunk: &'static str,
        offset: usize,
        reason: String,
    },
    /// A RETAIN chunk referring to a stored message without a topic.
    RetainedWithoutTopic { store_id: u64, offset: usize },
    /// A version 2–4 CLIENT chunk without a client id.
    EmptyClientId { offset: usize },
    /// Any of the above, in a named file.
    InFile { path: PathBuf, error: Box<DbError> },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            DbError::TooShort { len } => write!(
                f,
                "file is {len} byte(s) long, too short for the 15-byte mosquitto.db magic"
            ),
            DbError::BadMagic => {
                f.write_str("Unable to restore persistent database. Unrecognised file format.")
            }
            DbError::UnsupportedVersion { version } => write!(
                f,
                "Unsupported persistent database format version {} (need version 6).",
                *version as i32
            ),
            DbError::Truncated { what, offset } => {
                write!(f, "truncated {what} at offset {offset}")
            }
            DbError::DbidSize { size, offset } => write!(
                f,
                "Incompatible database configuration (dbid size is {size} bytes, expected 8) in CFG chunk at offset {offset}"
            ),
            DbError::PayloadTooLarge { len, offset } => write!(
                f,
                "MSG_STORE chunk at offset {offset}: payload length {len} exceeds the MQTT maximum of 268435455"
            ),
            DbError::LengthTooSmall {
                chunk,
                offset,
                length,
            } => write!(
                f,
                "{chunk} chunk at offset {offset}: length {length} is smaller than its fixed part and strings"
            ),
            DbError::Properties {
                chunk,
                offset,
                reason,
            } => write!(
                f,
                "{chunk} chunk at offset {offset}: invalid property block: {reason}"
            ),
            DbError::RetainedWithoutTopic { store_id, offset } => write!(
                f,
                "RETAIN chunk at offset {offset}: retained message {store_id} has no topic"
            ),
            DbError::EmptyClientId { offset } => write!(
                f,
                "CLIENT chunk at offset {offset} has an empty client id (fatal in format versions 2-4)"
            ),
            DbError::InFile { path, error } => write!(f, "{}: {}", path.display(), error),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Io { source, .. } => Some(source),
            DbError::InFile { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}
