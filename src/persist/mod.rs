//! mosquitto.db: reading (format versions 2–6) and writing (version 6) the
//! persistence file of Eclipse Mosquitto 2.0, so culex can start from a
//! mosquitto database and mosquitto can start from ours.
//!
//! Pure functions over bytes plus one file helper:
//! * [`read`] / [`load`] build a [`DbContents`] the way mosquitto's loader
//!   builds its state (same files accepted, same refused, same quirks: chunk
//!   lengths ignored for most known chunks, store ids resolved in file order,
//!   unknown chunks skipped); warnings say what was skipped or dropped.
//!   [`read_at`] / [`load_at`] also drop expired messages as mosquitto does.
//! * [`write()`] produces the bytes mosquitto 2.0's writer produces for the
//!   same state.
//! * [`save_atomic`] replaces the file via `<file>.new`, fsync and rename.
//!
//! The format is described in the shared spec (persistence-format.md).
//!
//! # Mapping broker state (what the broker must know)
//! * Messages are shared by store id: a RETAIN chunk and any number of
//!   CLIENT_MSG chunks refer to one MSG_STORE (the sample's id 58 is both
//!   retained and queued). The retained topic is the message's topic; an
//!   empty retained payload clears the topic. `last_db_id` is the highest
//!   id handed out; new ids continue after it.
//! * Only referenced messages are written (by a retained entry or a client
//!   message). Retained `$SYS` messages are not saved; `$SYS` messages in a
//!   queue are, with retain 0. The writer applies these rules itself.
//! * A client message's `state` says where it is: `Queued` (11) = waiting in
//!   the queue; any other state = in flight (e.g. `WaitForPuback`,
//!   `WaitForPubrec`/`WaitForPubcomp`/`ResendPubrel` outgoing,
//!   `WaitForPubrel` incoming QoS 2). On load mosquitto also queues an
//!   in-flight QoS>0 message when the session's `max_inflight_messages`
//!   slots are used up ([`DbContents::queued_on_load`]). mosquitto writes
//!   per session: incoming in-flight, incoming queued, outgoing in-flight,
//!   outgoing queued, each in delivery order; the writer keeps the order it
//!   is given. `qos`, `retain` (flag to send) and `mid` are per client; the
//!   properties hold at most one subscription identifier (mosquitto refuses
//!   two, so a delivery matching several subscriptions must be one client
//!   message per subscription, as mosquitto does it).
//! * Sessions: one CLIENT chunk per durable session (clean session /
//!   clean start 0, connected or not). MQTT 3.x sessions have
//!   `session_expiry_interval` `0xFFFFFFFF`; `session_expiry_time` is the
//!   absolute expiry (2.0.11 writes 0 for a v5 session still connected at
//!   save time, and does not schedule the expiry of restored sessions).
//!   `last_mid` continues packet ids; `listener_port` re-binds the session
//!   under `per_listener_settings`; `username` re-attaches ACLs. Sessions
//!   from format 2–4 files have interval 0 (mosquitto 2.0.22 then expires
//!   them about a second after start unless the client reconnects).
//! * A SUB or CLIENT_MSG for a client without CLIENT chunk creates the
//!   session implicitly (expiry 0, no username); the reader lists it in
//!   `clients` like mosquitto's state.
//! * Subscriptions keep QoS, No Local (0x04), Retain As Published (0x08) and
//!   the identifier; not Retain Handling. mosquitto 2.0 never writes shared
//!   (`$share/...`) subscriptions; the writer writes whatever it is given,
//!   so the broker decides (mosquitto's loader would add them back).
//! * Not in the file: Wills, keepalive, protocol version, topic aliases,
//!   receive maximum, clean sessions.
//!
//! # Deviations from mosquitto, on purpose
//! * Property order: `Properties` keeps only user-property order, so the
//!   writer emits properties in identifier order (mosquitto keeps the
//!   publisher's order). Same meaning, different bytes: rewriting the
//!   2.0.11 sample changes only the property block of store id 56.
//! * Native-order fields (store ids, timestamps) are read and written
//!   little-endian; files from big-endian hosts are not detected.
//! * Strings are cut at an embedded NUL (as mosquitto's C strings are) and
//!   invalid UTF-8 is replaced, each with a warning; mosquitto 2.0.11's
//!   stale-username bug therefore yields the previous client's username, as
//!   in mosquitto.
//! * The writer leaves out what mosquitto's loader would refuse or drop
//!   instead of writing a file mosquitto cannot start from (see [`write()`]).

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
