//! [`TlsLayer`]: a rustls server connection driven sans-IO.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::subject;
use crate::net::layer::{Layer, LayerError, PeerIdentity};

/// TLS record type of a handshake message: the first byte of every
/// ClientHello.
const HANDSHAKE: u8 = 0x16;

/// One client's TLS session. Bytes from the socket go into
/// [`Layer::ingest`]; what must go back (handshake, alerts, encrypted
/// application data) is appended to `down`.
pub struct TlsLayer {
    conn: ServerConnection,
    /// Whether any byte has arrived (the first one decides "is this TLS").
    started: bool,
    /// Set once, when the handshake completes.
    identity: Option<PeerIdentity>,
    established: bool,
}

impl TlsLayer {
    /// A session for a newly accepted connection on a listener whose
    /// configuration [`super::server_config`] built.
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsLayer, LayerError> {
        let mut conn = ServerConnection::new(config).map_err(|e| LayerError::Tls(e.to_string()))?;
        // The event loop owns back-pressure: take everything the broker
        // sends, before and after the handshake.
        conn.set_buffer_limit(None);
        Ok(TlsLayer {
            conn,
            started: false,
            identity: None,
            established: false,
        })
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384`, for a debug log line once the
    /// handshake is done.
    pub fn negotiated(&self) -> Option<String> {
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        };
        let suite = self.conn.negotiated_cipher_suite()?;
        Some(format!(
            "{version} {}",
            suite.suite().as_str().unwrap_or("unknown suite")
        ))
    }

    fn flush(&mut self, down: &mut Vec<u8>) {
        flush_records(&mut self.conn, down);
    }

    /// Processes what `read_tls` buffered and moves plaintext to `up`.
    /// `Ok(true)` when the peer has sent close_notify.
    fn process(&mut self, up: &mut Vec<u8>) -> Result<bool, LayerError> {
        let state = self.conn.process_new_packets().map_err(describe)?;
        take_plaintext(&mut self.conn, state.plaintext_bytes_to_read(), up)?;
        Ok(state.peer_has_closed())
    }

    fn ingest_inner(&mut self, mut input: &[u8], up: &mut Vec<u8>) -> Result<(), LayerError> {
        if !self.started && !input.is_empty() {
            self.started = true;
            if input[0] != HANDSHAKE {
                return Err(not_tls(input));
            }
        }
        let mut closed = false;
        while !input.is_empty() {
            match self.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(LayerError::Tls(format!("reading TLS records: {e}"))),
            }
            closed |= self.process(up)?;
        }
        if !self.established && !self.conn.is_handshaking() {
            self.established = true;
            self.identity = self
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| subject::peer_identity(cert));
        }
        if closed {
            return Err(LayerError::Closed);
        }
        Ok(())
    }
}

impl Layer for TlsLayer {
    /// On `Err`, `up` still holds what was decrypted before the error and
    /// `down` the alert telling the client why: send it, then close.
    fn ingest(
        &mut self,
        from_below: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        let result = self.ingest_inner(from_below, up);
        self.flush(down);
        result
    }

    fn send(&mut self, from_above: &[u8], down: &mut Vec<u8>) -> Result<(), LayerError> {
        encrypt(&mut self.conn, from_above, down)
    }

    fn close(&mut self, down: &mut Vec<u8>) {
        close_notify(&mut self.conn, down);
    }

    fn peer_identity(&self) -> Option<PeerIdentity> {
        self.identity.clone()
    }
}

// Shared by the server layer and the bridges' client layer
// (`client::TlsClientLayer`): rustls' connection types differ only in their
// handshake side.

/// Moves every pending TLS record into `down`.
pub(super) fn flush_records<D>(conn: &mut rustls::ConnectionCommon<D>, down: &mut Vec<u8>) {
    while conn.wants_write() {
        match conn.write_tls(down) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Moves the `n` bytes of plaintext rustls decrypted into `up`.
pub(super) fn take_plaintext<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    n: usize,
    up: &mut Vec<u8>,
) -> Result<(), LayerError> {
    if n == 0 {
        return Ok(());
    }
    let start = up.len();
    up.resize(start + n, 0);
    if let Err(e) = conn.reader().read_exact(&mut up[start..]) {
        up.truncate(start);
        return Err(LayerError::Tls(format!("reading decrypted data: {e}")));
    }
    Ok(())
}

/// Encrypts `from_above` into records in `down`. Before the handshake
/// completes rustls keeps the plaintext and encrypts it once the keys
/// exist; `ingest` then flushes it.
pub(super) fn encrypt<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    from_above: &[u8],
    down: &mut Vec<u8>,
) -> Result<(), LayerError> {
    conn.writer()
        .write_all(from_above)
        .map_err(|e| LayerError::Tls(format!("encrypting: {e}")))?;
    flush_records(conn, down);
    Ok(())
}

/// close_notify, into `down`.
pub(super) fn close_notify<D>(conn: &mut rustls::ConnectionCommon<D>, down: &mut Vec<u8>) {
    conn.send_close_notify();
    flush_records(conn, down);
}

/// The error for a client that did not start with a TLS record.
fn not_tls(first: &[u8]) -> LayerError {
    let b = first[0];
    let guess = match b >> 4 {
        1 => " (an MQTT CONNECT: the client is not using TLS)",
        _ if first.starts_with(b"GET ") => " (an HTTP request)",
        _ => "",
    };
    LayerError::Tls(format!(
        "not TLS: the client sent 0x{b:02X}{guess} instead of a TLS ClientHello"
    ))
}

fn describe(e: rustls::Error) -> LayerError {
    use rustls::Error as E;
    let text = match &e {
        E::NoCertificatesPresented => {
            "the client sent no certificate (require_certificate is true)".to_string()
        }
        E::InvalidCertificate(why) => format!("client certificate rejected: {why:?}"),
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        | E::InvalidMessage(rustls::InvalidMessage::UnknownProtocolVersion) => {
            format!("not TLS: {e}")
        }
        E::PeerIncompatible(why) => format!("no common TLS parameters with the client: {why:?}"),
        E::AlertReceived(alert) => format!("the client sent alert {alert:?}"),
        _ => e.to_string(),
    };
    LayerError::Tls(text)
}
