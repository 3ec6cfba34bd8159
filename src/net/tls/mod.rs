//! TLS through OpenSSL, configured as mosquitto configures it, so users'
//! certificates, keys, cipher strings, CRLs and PSK files behave exactly as
//! they do there.
//!
//! * [`server_context`] turns a listener's [`TlsSettings`] into an
//!   `SSL_CTX` (one per listener, rebuilt on SIGHUP);
//! * [`bridge_client_context`] does the same for a bridge's `bridge_*`
//!   directives, with mosquitto's host name check;
//! * [`TlsLayer`] is one session as a sans-IO [`Layer`] over in-memory
//!   buffers: socket bytes in, MQTT bytes up, records down;
//! * [`looks_like_tls`] tells a plain listener that a client spoke TLS to it.
//!
//! Errors keep mosquitto's own line and add OpenSSL's error queue, as
//! `OpenSSL Error[n]: ...` lines.
//!
//! [`TlsSettings`]: crate::config::model::TlsSettings
//! [`Layer`]: crate::net::layer::Layer

mod client;
mod error;
mod identity;
mod layer;
mod server;

#[cfg(test)]
mod tests;

pub use client::{
    BridgeTlsContext, BridgeTlsError, OS_CA_BUNDLES, bridge_client_context,
    certificate_matches_host,
};
pub use error::{TlsConfigError, numbered as openssl_error_lines};
pub use layer::TlsLayer;
pub use server::{ServerContext, server_context, tls_configured};

/// Whether the first bytes from a client look like a TLS ClientHello (a
/// handshake record, 0x16, of TLS major version 3). An MQTT packet never
/// starts with 0x16, so one byte is enough to say no.
pub fn looks_like_tls(first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [0x16] | [0x16, 0x03, ..])
}

impl TlsLayer {
    /// A session for a client newly accepted on a listener.
    pub fn server(context: &ServerContext) -> Result<TlsLayer, crate::net::layer::LayerError> {
        let ssl = openssl::ssl::Ssl::new(&context.ctx)
            .map_err(|e| crate::net::layer::LayerError::Tls(error::openssl_lines(&e).join("\n")))?;
        TlsLayer::new(ssl, layer::Side::Server)
    }
}
