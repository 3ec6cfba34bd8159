//! The operating-system corner: signals now; privilege drop, daemonising,
//! the pid file and sd_notify belong here too. This is the only module
//! allowed `unsafe`, each block with a `SAFETY:` note.

pub mod signals;
pub mod time;
