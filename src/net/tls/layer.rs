//! [`TlsLayer`]: one OpenSSL session (`SSL`) driven sans-IO. OpenSSL reads
//! and writes an in-memory buffer ([`MemIo`]); the event loop moves the
//! bytes, so the loop keeps its shape and OpenSSL never sees a socket.
//! The same type serves a listener's clients and a bridge's connection to
//! its remote broker; only the handshake side differs.

use std::io::{self, Read, Write};

use openssl::ssl::{ErrorCode, ShutdownResult, Ssl, SslStream};

use super::error::openssl_lines;
use crate::net::layer::{Layer, LayerError, PeerIdentity};

/// Plaintext is read out of OpenSSL in chunks of one TLS record.
const READ_CHUNK: usize = 16 * 1024;

/// The "socket" OpenSSL's BIO reads from and writes to: bytes that arrived
/// and bytes waiting to leave. An empty input is `WouldBlock`, which
/// OpenSSL reports as `SSL_ERROR_WANT_READ`.
#[derive(Debug, Default)]
pub(super) struct MemIo {
    incoming: Vec<u8>,
    read_at: usize,
    pub(super) outgoing: Vec<u8>,
}

impl Read for MemIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = &self.incoming[self.read_at..];
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_at += n;
        if self.read_at == self.incoming.len() {
            self.incoming.clear();
            self.read_at = 0;
        }
        Ok(n)
    }
}

impl Write for MemIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MemIo {
    fn push(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
    }
}

/// Which end of the handshake this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// A client connected to one of our listeners.
    Server,
    /// A bridge connecting to its remote broker.
    Client,
}

/// One TLS session. Bytes from the socket go into [`Layer::ingest`]; what
/// must go back (handshake, alerts, encrypted data) is appended to `down`.
pub struct TlsLayer {
    stream: SslStream<MemIo>,
    established: bool,
    /// Plaintext sent before the handshake completed.
    pending: Vec<u8>,
    identity: Option<PeerIdentity>,
}

impl TlsLayer {
    pub(super) fn new(ssl: Ssl, side: Side) -> Result<TlsLayer, LayerError> {
        let mut ssl = ssl;
        match side {
            Side::Server => ssl.set_accept_state(),
            Side::Client => ssl.set_connect_state(),
        }
        let stream = SslStream::new(ssl, MemIo::default())
            .map_err(|e| LayerError::Tls(openssl_lines(&e).join("; ")))?;
        let mut layer = TlsLayer {
            stream,
            established: false,
            pending: Vec::new(),
            identity: None,
        };
        if side == Side::Client {
            // The ClientHello: it waits in `outgoing` for the first send.
            layer.handshake()?;
        }
        Ok(layer)
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        !self.established
    }

    /// `TLSv1.3 TLS_AES_256_GCM_SHA384`, for a log line once the handshake
    /// is done.
    pub fn negotiated(&self) -> Option<String> {
        if !self.established {
            return None;
        }
        let ssl = self.stream.ssl();
        let cipher = ssl.current_cipher()?;
        Some(format!("{} {}", ssl.version_str(), cipher.name()))
    }

    /// Whether the session was resumed from a ticket or the session cache.
    pub fn session_reused(&self) -> bool {
        self.stream.ssl().session_reused()
    }

    /// Continues the handshake. `Ok(true)` once it has completed.
    fn handshake(&mut self) -> Result<bool, LayerError> {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.established = true;
                self.identity = super::identity::of_session(self.stream.ssl());
                if !self.pending.is_empty() {
                    let pending = std::mem::take(&mut self.pending);
                    self.write_all(&pending)?;
                }
                Ok(true)
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// OpenSSL's error queue as log lines (`error:0A000086:SSL
    /// routines::certificate verify failed`), one per line.
    fn error(&self, e: openssl::ssl::Error) -> LayerError {
        let mut lines = Vec::new();
        match e.ssl_error() {
            Some(stack) if !stack.errors().is_empty() => lines.extend(openssl_lines(stack)),
            _ => match e.io_error() {
                Some(io) => lines.push(io.to_string()),
                None if e.code() == ErrorCode::SYSCALL => {
                    lines.push("unexpected end of the TLS stream".to_string())
                }
                None => lines.push(format!("TLS error (OpenSSL code {})", e.code().as_raw())),
            },
        }
        LayerError::Tls(lines.join("\n"))
    }

    fn write_all(&mut self, mut data: &[u8]) -> Result<(), LayerError> {
        while !data.is_empty() {
            match self.stream.ssl_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(())
    }

    /// Decrypts everything OpenSSL can out of what has arrived. `Ok(true)`
    /// when the peer has sent close_notify.
    fn read_plaintext(&mut self, up: &mut Vec<u8>) -> Result<bool, LayerError> {
        loop {
            let start = up.len();
            up.resize(start + READ_CHUNK, 0);
            let result = self.stream.ssl_read(&mut up[start..]);
            match result {
                Ok(n) => up.truncate(start + n),
                Err(e) => {
                    up.truncate(start);
                    return match e.code() {
                        ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => Ok(false),
                        ErrorCode::ZERO_RETURN => Ok(true),
                        _ => Err(self.error(e)),
                    };
                }
            }
        }
    }

    fn flush(&mut self, down: &mut Vec<u8>) {
        let out = &mut self.stream.get_mut().outgoing;
        if down.is_empty() {
            std::mem::swap(down, out);
        } else {
            down.append(out);
        }
    }

    fn ingest_inner(&mut self, input: &[u8], up: &mut Vec<u8>) -> Result<(), LayerError> {
        self.stream.get_mut().push(input);
        if !self.established && !self.handshake()? {
            return Ok(());
        }
        if self.read_plaintext(up)? {
            return Err(LayerError::Closed);
        }
        Ok(())
    }
}

impl Layer for TlsLayer {
    /// On `Err`, `up` still holds what was decrypted before the error and
    /// `down` the alert telling the peer why: send it, then close.
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
        let result = if self.established {
            self.write_all(from_above)
        } else {
            self.pending.extend_from_slice(from_above);
            Ok(())
        };
        // Also the ClientHello a bridge's session made when it was created.
        self.flush(down);
        result
    }

    fn close(&mut self, down: &mut Vec<u8>) {
        if self.established {
            let _: Result<ShutdownResult, _> = self.stream.shutdown();
        }
        self.flush(down);
    }

    fn peer_identity(&self) -> Option<PeerIdentity> {
        self.identity.clone()
    }
}
