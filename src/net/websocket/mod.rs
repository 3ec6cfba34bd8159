//! MQTT over WebSockets (`protocol websockets`): the HTTP upgrade, then
//! RFC 6455 frames carrying MQTT bytes. Sans-IO like every [`Layer`].
//!
//! Behaviour follows mosquitto (2.0 with libwebsockets, 2.1 built-in):
//! - any request path may be upgraded;
//! - subprotocol `mqtt` (preferred) or `mqttv3.1` is echoed; a client that
//!   offers only other subprotocols is dropped without an answer, like
//!   libwebsockets and 2.1 do; a client that offers none is accepted without
//!   a `Sec-WebSocket-Protocol` header;
//! - `websockets_origin` (2.1): when set, an upgrade whose `Origin` header
//!   matches none of them gets `403`; requests without `Origin` pass;
//! - text frames close the connection with 1003, as 2.1 does (MQTT must be
//!   in binary frames);
//! - a plain GET is answered from `http_dir` when set, otherwise `404`.
//!
//! Contract with the caller: whenever `ingest` returns an error, write out
//! what it put in `down` (an HTTP response or a close frame), then close the
//! socket. [`LayerError::Closed`] means a normal end (the peer's close frame,
//! or a plain HTTP request that has been answered); [`LayerError::WebSocket`]
//! is a protocol failure worth a log line.

pub mod frame;
pub mod handshake;
pub mod http_files;

use std::path::PathBuf;

use super::layer::{Layer, LayerError};
use frame::{FrameHeader, HeaderParse, HeaderReader, close_code, opcode};

pub use frame::{ServerFrame, client_frame, decode_server_frame, decode_server_frames};
pub use handshake::{accept_key, client_handshake_request};

/// Longest request head accepted (request line and headers); longer ones get
/// `431`.
pub const MAX_HEADER: usize = 8 * 1024;

/// Default message size limit: the largest MQTT packet (a remaining length
/// of 268,435,455 plus five bytes of fixed header).
pub const DEFAULT_MAX_FRAME: usize = 268_435_460;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOptions {
    /// `http_dir`: where plain GET requests are served from.
    pub http_dir: Option<PathBuf>,
    /// `websockets_origin` (2.1): allowed `Origin` values; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Largest WebSocket message (all fragments together) accepted; bigger
    /// ones close the connection with 1009. `0` means no limit.
    pub max_frame: usize,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            http_dir: None,
            allowed_origins: Vec::new(),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the HTTP request head.
    Http,
    /// Upgraded: frames both ways.
    Open,
    /// Finished: nothing more is read or sent.
    Closed,
}

/// The frame currently being received.
#[derive(Debug, Clone, Copy)]
struct Current {
    header: FrameHeader,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes seen so far (for the mask offset).
    seen: u64,
}

pub struct WsLayer {
    opts: WsOptions,
    state: State,
    /// Request head bytes so far (HTTP phase only).
    http_buf: Vec<u8>,
    /// Application bytes sent before the upgrade completed.
    pending_send: Vec<u8>,
    header: HeaderReader,
    current: Option<Current>,
    /// A fragmented binary message is in progress (continuations expected).
    in_message: bool,
    /// Bytes of the message in progress, for `max_frame`.
    message_len: u64,
    /// Payload of the control frame in progress (at most 125 bytes).
    control: Vec<u8>,
    close_sent: bool,
    subprotocol: Option<&'static str>,
    path: Option<String>,
}

impl WsLayer {
    pub fn new(opts: WsOptions) -> WsLayer {
        WsLayer {
            opts,
            state: State::Http,
            http_buf: Vec::new(),
            pending_send: Vec::new(),
            header: HeaderReader::default(),
            current: None,
            in_message: false,
            message_len: 0,
            control: Vec::new(),
            close_sent: false,
            subprotocol: None,
            path: None,
        }
    }

    /// True once the `101` has been sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The negotiated subprotocol (`mqtt` or `mqttv3.1`), if any.
    pub fn subprotocol(&self) -> Option<&'static str> {
        self.subprotocol
    }

    /// The request target of the upgrade (or of the plain HTTP request).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Sends a close frame with `code` (once) and ends the layer.
    fn fail(&mut self, code: u16, reason: String, down: &mut Vec<u8>) -> LayerError {
        if self.state == State::Open && !self.close_sent {
            frame::encode_close(code, down);
            self.close_sent = true;
        }
        self.state = State::Closed;
        LayerError::WebSocket(reason)
    }

    fn ingest_http(
        &mut self,
        input: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        // Only the last 3 bytes already held can start the terminator.
        let search_from = self.http_buf.len().saturating_sub(3);
        self.http_buf.extend_from_slice(input);
        let end = self.http_buf[search_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| search_from + p);
        let Some(end) = end else {
            if self.http_buf.len() > MAX_HEADER {
                return Err(self.http_error(431, false, "request header too large", down));
            }
            return Ok(());
        };
        if end + 4 > MAX_HEADER {
            return Err(self.http_error(431, false, "request header too large", down));
        }
        let buf = std::mem::take(&mut self.http_buf);
        let (head, rest) = buf.split_at(end + 4);
        let Some(req) = handshake::parse_request(&head[..end]) else {
            return Err(self.http_error(400, false, "malformed HTTP request", down));
        };
        self.path = Some(req.target.clone());
        let head_only = req.method == "HEAD";
        if !handshake::wants_upgrade(&req) {
            return Err(self.plain_http(&req, head_only, down));
        }
        match handshake::check_upgrade(&req, &self.opts.allowed_origins) {
            handshake::Upgrade::Accept {
                accept,
                subprotocol,
            } => {
                handshake::switching_protocols(&accept, subprotocol, down);
                self.subprotocol = subprotocol;
                self.state = State::Open;
                let pending = std::mem::take(&mut self.pending_send);
                if !pending.is_empty() {
                    frame::encode_server_frame(opcode::BINARY, &pending, down);
                }
                self.ingest_frames(rest, up, down)
            }
            handshake::Upgrade::Reject { status, reason } => {
                Err(self.http_error(status, head_only, &reason, down))
            }
            handshake::Upgrade::Drop { reason } => {
                self.state = State::Closed;
                Err(LayerError::WebSocket(reason))
            }
        }
    }

    fn http_error(
        &mut self,
        status: u16,
        head_only: bool,
        reason: &str,
        down: &mut Vec<u8>,
    ) -> LayerError {
        handshake::error_response(status, head_only, down);
        self.state = State::Closed;
        self.http_buf = Vec::new();
        LayerError::WebSocket(format!("HTTP {status}: {reason}"))
    }

    /// A request without an upgrade: a file from `http_dir`, or an error.
    fn plain_http(
        &mut self,
        req: &handshake::Request,
        head_only: bool,
        down: &mut Vec<u8>,
    ) -> LayerError {
        self.state = State::Closed;
        if req.method != "GET" && req.method != "HEAD" {
            handshake::error_response(405, head_only, down);
            return LayerError::Closed;
        }
        let Some(dir) = &self.opts.http_dir else {
            handshake::error_response(404, head_only, down);
            return LayerError::Closed;
        };
        let file = http_files::serve(dir, &req.target);
        if file.status == 200 {
            handshake::response(200, file.content_type, &file.body, head_only, down);
        } else {
            handshake::error_response(file.status, head_only, down);
        }
        LayerError::Closed
    }

    fn ingest_frames(
        &mut self,
        mut input: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        loop {
            let Some(mut cur) = self.current else {
                if input.is_empty() {
                    return Ok(());
                }
                match self.header.feed(input) {
                    HeaderParse::Incomplete => return Ok(()),
                    HeaderParse::Invalid => {
                        return Err(self.fail(
                            close_code::PROTOCOL_ERROR,
                            "frame length has its top bit set".into(),
                            down,
                        ));
                    }
                    HeaderParse::Done(header, used) => {
                        input = &input[used..];
                        self.start_frame(header, down)?;
                        // A frame may have an empty payload: finish it now.
                        continue;
                    }
                }
            };
            let take = usize::try_from(cur.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (chunk, rest) = input.split_at(take);
            input = rest;
            if take > 0 {
                let target = if cur.header.opcode & 0x08 != 0 {
                    &mut self.control
                } else {
                    &mut *up
                };
                let start = target.len();
                target.extend_from_slice(chunk);
                frame::apply_mask(&mut target[start..], cur.header.mask, cur.seen);
                cur.remaining -= take as u64;
                cur.seen += take as u64;
            }
            if cur.remaining > 0 {
                self.current = Some(cur);
                return Ok(());
            }
            self.current = None;
            self.finish_frame(cur.header, down)?;
        }
    }

    /// Validates a frame header and makes it the current frame.
    fn start_frame(&mut self, h: FrameHeader, down: &mut Vec<u8>) -> Result<(), LayerError> {
        let protocol_error = |this: &mut Self, why: &str, down: &mut Vec<u8>| {
            Err(this.fail(close_code::PROTOCOL_ERROR, why.to_string(), down))
        };
        if h.rsv != 0 {
            return protocol_error(self, "reserved bits set", down);
        }
        if !h.masked {
            return protocol_error(self, "unmasked client frame", down);
        }
        match h.opcode {
            opcode::BINARY | opcode::CONTINUATION => {
                if h.opcode == opcode::BINARY && self.in_message {
                    return protocol_error(self, "new message inside a fragmented one", down);
                }
                if h.opcode == opcode::CONTINUATION && !self.in_message {
                    return protocol_error(self, "continuation without a message", down);
                }
                if h.opcode == opcode::BINARY {
                    self.message_len = 0;
                }
                self.message_len = self.message_len.saturating_add(h.len);
                let max = self.opts.max_frame as u64;
                if max != 0 && self.message_len > max {
                    return Err(self.fail(
                        close_code::MESSAGE_TOO_BIG,
                        format!("message of {} bytes exceeds {max}", self.message_len),
                        down,
                    ));
                }
                self.in_message = !h.fin;
            }
            opcode::TEXT => {
                return Err(self.fail(
                    close_code::UNSUPPORTED_DATA,
                    "text frame (MQTT needs binary frames)".into(),
                    down,
                ));
            }
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !h.fin {
                    return protocol_error(self, "fragmented control frame", down);
                }
                if h.len > 125 {
                    return protocol_error(self, "control frame longer than 125 bytes", down);
                }
                self.control.clear();
            }
            op => {
                return protocol_error(self, &format!("unknown opcode {op:#x}"), down);
            }
        }
        self.current = Some(Current {
            header: h,
            remaining: h.len,
            seen: 0,
        });
        Ok(())
    }

    fn finish_frame(&mut self, h: FrameHeader, down: &mut Vec<u8>) -> Result<(), LayerError> {
        match h.opcode {
            opcode::PING => {
                frame::encode_server_frame(opcode::PONG, &self.control, down);
            }
            opcode::CLOSE => {
                let payload = std::mem::take(&mut self.control);
                let code = match payload.len() {
                    0 => None,
                    1 => {
                        return Err(self.fail(
                            close_code::PROTOCOL_ERROR,
                            "close frame with a 1-byte payload".into(),
                            down,
                        ));
                    }
                    _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                };
                if let Some(code) = code
                    && !valid_close_code(code)
                {
                    return Err(self.fail(
                        close_code::PROTOCOL_ERROR,
                        format!("invalid close code {code}"),
                        down,
                    ));
                }
                if std::str::from_utf8(payload.get(2..).unwrap_or_default()).is_err() {
                    return Err(self.fail(
                        close_code::INVALID_PAYLOAD,
                        "close reason is not UTF-8".into(),
                        down,
                    ));
                }
                if !self.close_sent {
                    match code {
                        Some(c) => frame::encode_close(c, down),
                        None => frame::encode_server_frame(opcode::CLOSE, &[], down),
                    }
                    self.close_sent = true;
                }
                self.state = State::Closed;
                return Err(LayerError::Closed);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Close codes a peer may send (RFC 6455 §7.4).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Layer for WsLayer {
    fn ingest(
        &mut self,
        from_below: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        match self.state {
            State::Http => self.ingest_http(from_below, up, down),
            State::Open => self.ingest_frames(from_below, up, down),
            State::Closed => Err(LayerError::Closed),
        }
    }

    fn send(&mut self, from_above: &[u8], down: &mut Vec<u8>) -> Result<(), LayerError> {
        match self.state {
            State::Http => {
                self.pending_send.extend_from_slice(from_above);
                Ok(())
            }
            State::Open => {
                if !from_above.is_empty() {
                    frame::encode_server_frame(opcode::BINARY, from_above, down);
                }
                Ok(())
            }
            State::Closed => Err(LayerError::Closed),
        }
    }

    fn close(&mut self, down: &mut Vec<u8>) {
        if self.state == State::Open && !self.close_sent {
            frame::encode_close(close_code::NORMAL, down);
            self.close_sent = true;
        }
        self.state = State::Closed;
    }
}

#[cfg(test)]
mod tests;
