//! TLS on rustls: listeners with `certfile` and `keyfile`, and bridges to their remote broker.
//!
//! * [`server_config`] turns a listener's [`TlsSettings`] into a shared
//!   `rustls::ServerConfig` (one per listener, rebuilt on SIGHUP);
//! * [`TlsLayer`] is one client's session as a sans-IO [`Layer`]: socket
//!   bytes in, MQTT bytes up, handshake and records down;
//! * [`bridge_client_config`] and [`TlsClientLayer`] are the other way
//!   round: a bridge's outgoing session to its remote broker;
//! * [`looks_like_tls`] tells a plain listener that a client spoke TLS to it.
//!
//! rustls rather than OpenSSL keeps the binary free of a system TLS library;
//! its *ring* provider builds with a C compiler only. What that changes from
//! mosquitto (all in `docs/` as deviations): TLS 1.2 and 1.3 only, ECDHE
//! suites only (no DHE, so `dhparamfile` is read and ignored), no TLS-PSK
//! (`psk_hint` is refused), and OpenSSL cipher keywords keep rustls'
//! defaults.
//!
//! [`TlsSettings`]: crate::config::model::TlsSettings
//! [`Layer`]: crate::net::layer::Layer

mod ciphers;
mod client;
mod config;
mod layer;
mod subject;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod tests;

pub use client::{BridgeTlsError, OS_CA_BUNDLE, TlsClientLayer, bridge_client_config};
pub use config::{TlsConfigError, server_config, tls_configured};
pub use layer::TlsLayer;
pub use subject::subject_rfc2253;

/// Whether the first bytes from a client look like a TLS ClientHello (a
/// handshake record, 0x16, of TLS major version 3). An MQTT packet never
/// starts with 0x16, so one byte is enough to say no.
pub fn looks_like_tls(first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [0x16] | [0x16, 0x03, ..])
}
