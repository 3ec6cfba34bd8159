//! The operating-system corner: signals, privilege drop (reading
//! `/etc/passwd` itself: the binary is static, there is no NSS),
//! daemonising, the pid file and sd_notify. This is the only module
//! allowed `unsafe`, each block with a `SAFETY:` note.
//!
//! mosquitto 2.0 sets no umask (`UMASK_SET` is 2.1), so neither does culex.

pub mod daemon;
pub mod heap;
pub mod limits;
pub mod notify;
pub mod openssl_ffi;
pub mod pidfile;
pub mod privileges;
pub mod signals;
pub mod time;
pub mod users;

pub use privileges::is_root;
