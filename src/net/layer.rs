//! A byte transform between the socket and the MQTT codec: TLS, WebSocket
//! framing, or both stacked (WebSockets over TLS). Layers are sans-IO: they
//! turn buffers into buffers and never touch the socket, so the event loop
//! stays the only place that reads and writes.
//!
//! A plain TCP connection has no layer at all; the hot path pays nothing.

use std::fmt;

/// Why a layer gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerError {
    /// The TLS handshake or record layer failed (bad certificate, plain MQTT
    /// sent to a TLS listener, ...). The text is for the log line.
    Tls(String),
    /// The HTTP upgrade or a WebSocket frame was invalid.
    WebSocket(String),
    /// The peer closed the layer cleanly (TLS close_notify, WebSocket close).
    Closed,
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Tls(e) => write!(f, "TLS error: {e}"),
            LayerError::WebSocket(e) => write!(f, "WebSocket error: {e}"),
            LayerError::Closed => f.write_str("connection closed by peer"),
        }
    }
}

impl std::error::Error for LayerError {}

pub trait Layer {
    /// Bytes read from below (the socket, or the layer under this one).
    /// Application bytes go to `up`; anything the layer must answer on its
    /// own (handshake messages, pongs, close frames) goes to `down`.
    fn ingest(
        &mut self,
        from_below: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError>;

    /// Application bytes to send: append their encoding to `down`.
    /// Before the layer is established (handshake in progress) it buffers
    /// them and emits them once it can.
    fn send(&mut self, from_above: &[u8], down: &mut Vec<u8>) -> Result<(), LayerError>;

    /// Called once when the connection is being closed by us: append a
    /// graceful close (TLS close_notify, WebSocket close frame) to `down`.
    fn close(&mut self, down: &mut Vec<u8>);

    /// The client's identity, where the layer knows one (TLS client
    /// certificate): used by `use_identity_as_username` /
    /// `use_subject_as_username`.
    fn peer_identity(&self) -> Option<PeerIdentity> {
        None
    }
}

pub use crate::broker::connections::PeerIdentity;
