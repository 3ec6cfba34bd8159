//! mosquitto.db: reading (format versions 2–6) and writing (version 6) the
//! persistence file of Eclipse Mosquitto 2.0, so culex can start from a
//! mosquitto database and mosquitto can start from ours.
//!
//! Pure functions over bytes plus one file helper:
//! * [`read`] / [`load`] build a [`DbContents`] the way mosquitto's loader
//!   builds its state (same files accepted, same refused, same quirks: chunk
//!   lengths ignored for most known chunks, store ids resolved in file order,
//!   unknown chunks skipped); warnings say what was skipped or dropped.
//! * [`write`] produces the bytes mosquitto 2.0's writer produces for the
//!   same state.
//! * [`save_atomic`] replaces the file via `<file>.new`, fsync and rename.
//!
//! The format is described in the shared spec (persistence-format.md); the
//! points the broker must know when mapping its state are on the model types.

mod atomic;
mod error;
pub mod format;
mod model;
mod props;
mod read;
mod write;

#[cfg(test)]
mod tests;

pub use atomic::{save_atomic, temp_path};
pub use error::DbError;
pub use model::{
    DbContents, Direction, MsgState, SUB_OPT_NO_LOCAL, SUB_OPT_RETAIN_AS_PUBLISHED, StoredClient,
    StoredClientMessage, StoredMessage, StoredSubscription,
};
pub use props::mqtt_utf8_ok;
pub use read::{load, load_at, read, read_at};
pub use write::write;
