//! The HTTP/1.1 side: parsing the request head, the upgrade checks, the
//! `101 Switching Protocols` answer and plain HTTP responses.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: appended to the client's key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Subprotocols we speak, in order of preference.
pub const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(client_key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    STANDARD.encode(h.finalize())
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// `(name, value)`, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Every value of a header (names compare case-insensitively).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a header.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    /// Comma-separated tokens over every value of a header, trimmed, empty
    /// ones dropped.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// Parses a request head (everything before the blank line, which is not
/// included). `None` if it is not well-formed HTTP/1.x.
pub fn parse_request(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let text = text.trim_start_matches("\r\n");
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(is_tchar)
        || target.is_empty()
        || target.bytes().any(|b| b.is_ascii_control())
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
    {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        // No obsolete line folding, no space before the colon.
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return None;
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return None;
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What to do with a request that asked for an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// Answer 101 with this accept key and subprotocol.
    Accept {
        accept: String,
        subprotocol: Option<&'static str>,
    },
    /// Answer with an HTTP error and close.
    Reject { status: u16, reason: String },
    /// Close without any answer (what libwebsockets and mosquitto 2.1 do
    /// when none of the offered subprotocols is supported).
    Drop { reason: String },
}

/// Whether the request asks for a WebSocket upgrade at all.
pub fn wants_upgrade(req: &Request) -> bool {
    req.has_token("Upgrade", "websocket")
}

/// Checks an upgrade request (one where [`wants_upgrade`] is true).
pub fn check_upgrade(req: &Request, allowed_origins: &[String]) -> Upgrade {
    let reject = |status, reason: &str| Upgrade::Reject {
        status,
        reason: reason.to_string(),
    };
    if req.method != "GET" {
        return reject(405, "upgrade request is not a GET");
    }
    if !req.has_token("Connection", "upgrade") {
        return reject(400, "Connection header lacks \"upgrade\"");
    }
    if req.header("Sec-WebSocket-Version") != Some("13") {
        return reject(426, "unsupported Sec-WebSocket-Version");
    }
    let key = match req.header("Sec-WebSocket-Key") {
        Some(k) if !k.is_empty() => k,
        _ => return reject(400, "missing Sec-WebSocket-Key"),
    };
    // mosquitto 2.1 checks Origin only when the client sent one: browsers
    // always do, other clients usually do not.
    if !allowed_origins.is_empty()
        && let Some(origin) = req.header("Origin")
        && !allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return reject(403, &format!("origin \"{origin}\" not allowed"));
    }
    let offered: Vec<&str> = req.tokens("Sec-WebSocket-Protocol").collect();
    let subprotocol = if offered.is_empty() {
        None
    } else {
        match SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
            Some(p) => Some(*p),
            None => {
                return Upgrade::Drop {
                    reason: format!("no supported subprotocol in \"{}\"", offered.join(", ")),
                };
            }
        }
    };
    Upgrade::Accept {
        accept: accept_key(key),
        subprotocol,
    }
}

/// The `101 Switching Protocols` answer.
pub fn switching_protocols(accept: &str, subprotocol: Option<&str>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(format!("Sec-WebSocket-Accept: {accept}\r\n").as_bytes());
    if let Some(p) = subprotocol {
        out.extend_from_slice(format!("Sec-WebSocket-Protocol: {p}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

/// A complete HTTP/1.1 response that ends the connection. With `head_only`
/// the body is left out (HEAD), Content-Length still describing it.
pub fn response(status: u16, content_type: &str, body: &[u8], head_only: bool, out: &mut Vec<u8>) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nServer: culex\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        status_text(status),
        body.len()
    );
    match status {
        405 => head.push_str("Allow: GET, HEAD\r\n"),
        426 => head.push_str("Sec-WebSocket-Version: 13\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// An error response with a one-line text body.
pub fn error_response(status: u16, head_only: bool, out: &mut Vec<u8>) {
    let body = format!("{}\n", status_text(status));
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        head_only,
        out,
    );
}

/// **Test helper.** A browser-like upgrade request for `/mqtt`, offering
/// `protocols` in one `Sec-WebSocket-Protocol` header (none when empty).
pub fn client_handshake_request(key: &str, protocols: &[&str]) -> Vec<u8> {
    let mut req = format!(
        "GET /mqtt HTTP/1.1\r\nHost: localhost:9001\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    req.push_str("\r\n");
    req.into_bytes()
}
