use super::*;
use crate::net::layer::{Layer, LayerError};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// MQTT 3.1.1 CONNECT, client id "c1", keep-alive 60.
const CONNECT: &[u8] = &[
    0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, b'c', b'1',
];
const PINGREQ: &[u8] = &[0xC0, 0x00];

fn layer() -> WsLayer {
    WsLayer::new(WsOptions::default())
}

/// Feeds `bytes`, returning (result, up, down).
fn feed(l: &mut WsLayer, bytes: &[u8]) -> (Result<(), LayerError>, Vec<u8>, Vec<u8>) {
    let mut up = Vec::new();
    let mut down = Vec::new();
    let r = l.ingest(bytes, &mut up, &mut down);
    (r, up, down)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A layer past a successful `mqtt` handshake.
fn open() -> WsLayer {
    let mut l = layer();
    let (r, up, down) = feed(&mut l, &client_handshake_request(KEY, &["mqtt"]));
    assert_eq!(r, Ok(()));
    assert!(up.is_empty());
    assert!(text(&down).starts_with("HTTP/1.1 101 "));
    assert!(l.is_open());
    l
}

fn status_of(down: &[u8]) -> u16 {
    text(down)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn close_code_of(down: &[u8]) -> Option<u16> {
    let frames = decode_server_frames(down);
    let f = frames.iter().find(|f| f.opcode == opcode::CLOSE)?;
    Some(u16::from_be_bytes([
        *f.payload.first()?,
        *f.payload.get(1)?,
    ]))
}

#[test]
fn rfc6455_example_accept_key() {
    assert_eq!(accept_key(KEY), ACCEPT);
}

#[test]
fn handshake_response_has_accept_and_subprotocol() {
    let mut l = layer();
    let (r, _, down) = feed(&mut l, &client_handshake_request(KEY, &["mqtt"]));
    assert_eq!(r, Ok(()));
    let resp = text(&down);
    assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(resp.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")));
    assert!(resp.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    assert!(resp.ends_with("\r\n\r\n"));
    assert_eq!(l.subprotocol(), Some("mqtt"));
    assert_eq!(l.path(), Some("/mqtt"));
}

fn negotiate(protocols: &[&str]) -> (Result<(), LayerError>, Vec<u8>, Option<&'static str>) {
    let mut l = layer();
    let (r, _, down) = feed(&mut l, &client_handshake_request(KEY, protocols));
    (r, down, l.subprotocol())
}

#[test]
fn subprotocol_negotiation() {
    // mqtt preferred whatever the client's order.
    let (r, down, p) = negotiate(&["mqttv3.1", "mqtt"]);
    assert_eq!(r, Ok(()));
    assert_eq!(p, Some("mqtt"));
    assert!(text(&down).contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    // Only the old name.
    let (r, down, p) = negotiate(&["mqttv3.1"]);
    assert_eq!(r, Ok(()));
    assert_eq!(p, Some("mqttv3.1"));
    assert!(text(&down).contains("Sec-WebSocket-Protocol: mqttv3.1\r\n"));
    // Ours among others.
    let (r, _, p) = negotiate(&["wamp", "mqtt"]);
    assert_eq!(r, Ok(()));
    assert_eq!(p, Some("mqtt"));
    // No header: accepted without one.
    let (r, down, p) = negotiate(&[]);
    assert_eq!(r, Ok(()));
    assert_eq!(p, None);
    assert!(status_of(&down) == 101);
    assert!(!text(&down).contains("Sec-WebSocket-Protocol"));
    // Only others: dropped without an answer (libwebsockets, mosquitto 2.1).
    let (r, down, _) = negotiate(&["wamp", "MQTT"]);
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert!(down.is_empty());
}

#[test]
fn subprotocol_in_repeated_headers() {
    let req = format!(
        "GET / HTTP/1.1\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n\
         sec-websocket-key: {KEY}\r\nsec-websocket-version: 13\r\n\
         Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: mqttv3.1\r\n\r\n"
    );
    let mut l = layer();
    let (r, _, down) = feed(&mut l, req.as_bytes());
    assert_eq!(r, Ok(()));
    assert_eq!(status_of(&down), 101);
    assert_eq!(l.subprotocol(), Some("mqttv3.1"));
}

#[test]
fn bad_upgrades_are_answered() {
    let base = |extra: &str, version: &str, key: bool| {
        let mut s = format!(
            "GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\n{extra}Sec-WebSocket-Version: {version}\r\n"
        );
        if key {
            s.push_str(&format!("Sec-WebSocket-Key: {KEY}\r\n"));
        }
        s.push_str("\r\n");
        s
    };
    let cases = [
        (base("", "13", true), 400),                         // no Connection
        (base("Connection: Upgrade\r\n", "8", true), 426),   // old version
        (base("Connection: Upgrade\r\n", "13", false), 400), // no key
    ];
    for (req, status) in cases {
        let mut l = layer();
        let (r, _, down) = feed(&mut l, req.as_bytes());
        assert!(matches!(r, Err(LayerError::WebSocket(_))), "{req}");
        assert_eq!(status_of(&down), status, "{req}");
        if status == 426 {
            assert!(text(&down).contains("Sec-WebSocket-Version: 13\r\n"));
        }
        // Nothing more is accepted afterwards.
        assert_eq!(feed(&mut l, b"x").0, Err(LayerError::Closed));
    }
    let mut l = layer();
    let (r, _, down) = feed(&mut l, b"GET / HTTP/1.1\r\nHost\r\n\r\n");
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert_eq!(status_of(&down), 400);
}

#[test]
fn oversized_request_head_gets_431() {
    let mut l = layer();
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'a', MAX_HEADER));
    let (r, _, down) = feed(&mut l, &req);
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert_eq!(status_of(&down), 431);
}

#[test]
fn connect_split_over_three_frames() {
    let mut l = open();
    let mut input = client_frame(opcode::BINARY, &CONNECT[..3], false, MASK);
    input.extend(client_frame(
        opcode::CONTINUATION,
        &CONNECT[3..9],
        false,
        MASK,
    ));
    // A ping between fragments is allowed.
    input.extend(client_frame(opcode::PING, b"hi", true, MASK));
    input.extend(client_frame(
        opcode::CONTINUATION,
        &CONNECT[9..],
        true,
        MASK,
    ));
    let (r, up, down) = feed(&mut l, &input);
    assert_eq!(r, Ok(()));
    assert_eq!(up, CONNECT);
    let frames = decode_server_frames(&down);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, opcode::PONG);
    assert_eq!(frames[0].payload, b"hi");
}

#[test]
fn two_packets_in_one_frame() {
    let mut l = open();
    let mut both = CONNECT.to_vec();
    both.extend_from_slice(PINGREQ);
    let (r, up, down) = feed(&mut l, &client_frame(opcode::BINARY, &both, true, MASK));
    assert_eq!(r, Ok(()));
    assert_eq!(up, both);
    assert!(down.is_empty());
}

#[test]
fn handshake_and_frames_byte_by_byte() {
    let mut l = layer();
    let mut input = client_handshake_request(KEY, &["mqtt"]);
    input.extend(client_frame(opcode::BINARY, &CONNECT[..5], false, MASK));
    input.extend(client_frame(
        opcode::CONTINUATION,
        &CONNECT[5..],
        true,
        MASK,
    ));
    input.extend(client_frame(opcode::PING, b"p", true, MASK));
    input.extend(client_frame(opcode::BINARY, PINGREQ, true, MASK));
    let mut up = Vec::new();
    let mut down = Vec::new();
    for b in &input {
        assert_eq!(
            l.ingest(std::slice::from_ref(b), &mut up, &mut down),
            Ok(())
        );
    }
    let mut expected = CONNECT.to_vec();
    expected.extend_from_slice(PINGREQ);
    assert_eq!(up, expected);
    let resp = text(&down);
    let end = resp.find("\r\n\r\n").unwrap() + 4;
    assert!(resp.starts_with("HTTP/1.1 101 "));
    let frames = decode_server_frames(&down[end..]);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, frames[0].payload.as_slice()),
        (opcode::PONG, &b"p"[..])
    );
}

#[test]
fn frames_in_the_same_read_as_the_handshake() {
    let mut l = layer();
    let mut input = client_handshake_request(KEY, &["mqtt"]);
    input.extend(client_frame(opcode::BINARY, CONNECT, true, MASK));
    let (r, up, _) = feed(&mut l, &input);
    assert_eq!(r, Ok(()));
    assert_eq!(up, CONNECT);
}

#[test]
fn ping_pong() {
    let mut l = open();
    let (r, up, down) = feed(&mut l, &client_frame(opcode::PING, b"abc", true, MASK));
    assert_eq!(r, Ok(()));
    assert!(up.is_empty());
    let f = decode_server_frame(&down).unwrap();
    assert_eq!(
        (f.fin, f.opcode, f.payload.as_slice()),
        (true, opcode::PONG, &b"abc"[..])
    );
    assert_eq!(f.len, down.len());
    // Empty ping, and a pong from the client is ignored.
    let (r, _, down) = feed(&mut l, &client_frame(opcode::PING, b"", true, MASK));
    assert_eq!(r, Ok(()));
    assert_eq!(down, [0x8A, 0x00]);
    let (r, up, down) = feed(&mut l, &client_frame(opcode::PONG, b"x", true, MASK));
    assert_eq!(r, Ok(()));
    assert!(up.is_empty() && down.is_empty());
}

#[test]
fn client_close_is_echoed() {
    let mut l = open();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let (r, _, down) = feed(&mut l, &client_frame(opcode::CLOSE, &payload, true, MASK));
    assert_eq!(r, Err(LayerError::Closed));
    assert_eq!(close_code_of(&down), Some(1000));
    // No second close from close(), nothing more accepted.
    let mut more = Vec::new();
    l.close(&mut more);
    assert!(more.is_empty());
    assert_eq!(feed(&mut l, b"\x82").0, Err(LayerError::Closed));
    let mut d = Vec::new();
    assert_eq!(l.send(b"x", &mut d), Err(LayerError::Closed));

    // Empty close frame is echoed empty.
    let mut l = open();
    let (r, _, down) = feed(&mut l, &client_frame(opcode::CLOSE, b"", true, MASK));
    assert_eq!(r, Err(LayerError::Closed));
    assert_eq!(down, [0x88, 0x00]);
}

#[test]
fn bad_close_frames() {
    for (payload, code) in [
        (vec![0x03], 1002),
        (1005u16.to_be_bytes().to_vec(), 1002),
        (vec![0x03, 0xE8, 0xFF], 1007),
    ] {
        let mut l = open();
        let (r, _, down) = feed(&mut l, &client_frame(opcode::CLOSE, &payload, true, MASK));
        assert!(matches!(r, Err(LayerError::WebSocket(_))));
        assert_eq!(close_code_of(&down), Some(code));
    }
}

#[test]
fn our_close() {
    let mut l = open();
    let mut down = Vec::new();
    l.close(&mut down);
    assert_eq!(down, [0x88, 0x02, 0x03, 0xE8]);
    l.close(&mut down);
    assert_eq!(down.len(), 4);
    // Before the upgrade there is no WebSocket to close.
    let mut l = layer();
    let mut down = Vec::new();
    l.close(&mut down);
    assert!(down.is_empty());
}

#[test]
fn unmasked_client_frame_rejected() {
    let mut l = open();
    let (r, up, down) = feed(&mut l, &client_frame(opcode::BINARY, CONNECT, true, None));
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert!(up.is_empty());
    assert_eq!(close_code_of(&down), Some(1002));
}

#[test]
fn protocol_errors_close_with_1002() {
    let mut rsv = client_frame(opcode::BINARY, b"x", true, MASK);
    rsv[0] |= 0x40;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved bit", rsv),
        ("opcode 3", client_frame(0x3, b"x", true, MASK)),
        ("opcode 0xB", client_frame(0xB, b"x", true, MASK)),
        (
            "long ping",
            client_frame(opcode::PING, &[0; 126], true, MASK),
        ),
        (
            "fragmented ping",
            client_frame(opcode::PING, b"x", false, MASK),
        ),
        (
            "stray continuation",
            client_frame(opcode::CONTINUATION, b"x", true, MASK),
        ),
        ("binary inside fragmented", {
            let mut v = client_frame(opcode::BINARY, b"x", false, MASK);
            v.extend(client_frame(opcode::BINARY, b"y", true, MASK));
            v
        }),
        ("64-bit length top bit", {
            let mut v = vec![0x82, 0xFF];
            v.extend_from_slice(&(1u64 << 63).to_be_bytes());
            v.extend_from_slice(&[0; 4]);
            v
        }),
    ];
    for (name, input) in cases {
        let mut l = open();
        let (r, _, down) = feed(&mut l, &input);
        assert!(matches!(r, Err(LayerError::WebSocket(_))), "{name}");
        assert_eq!(close_code_of(&down), Some(1002), "{name}");
    }
}

#[test]
fn text_frame_closes_with_1003() {
    let mut l = open();
    let (r, up, down) = feed(&mut l, &client_frame(opcode::TEXT, CONNECT, true, MASK));
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert!(up.is_empty());
    assert_eq!(close_code_of(&down), Some(1003));
}

#[test]
fn lengths_7_16_64_bits_both_ways() {
    for (len, header) in [
        (125usize, 2usize),
        (126, 4),
        (65535, 4),
        (65536, 10),
        (70000, 10),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        // Client to server.
        let mut l = open();
        let input = client_frame(opcode::BINARY, &payload, true, MASK);
        assert_eq!(input.len(), header + 4 + len);
        let (r, up, _) = feed(&mut l, &input);
        assert_eq!(r, Ok(()));
        assert_eq!(up, payload, "len {len}");
        // Server to client.
        let mut down = Vec::new();
        l.send(&payload, &mut down).unwrap();
        assert_eq!(down.len(), header + len, "len {len}");
        assert_eq!(down[0], 0x82);
        assert_eq!(down[1] & 0x80, 0, "server frames are unmasked");
        let f = decode_server_frame(&down).unwrap();
        assert_eq!(f.payload, payload);
    }
}

#[test]
fn send_before_upgrade_is_flushed_after_101() {
    let mut l = layer();
    let mut down = Vec::new();
    l.send(b"early", &mut down).unwrap();
    assert!(down.is_empty());
    let (r, _, down) = feed(&mut l, &client_handshake_request(KEY, &[]));
    assert_eq!(r, Ok(()));
    let resp = text(&down);
    let end = resp.find("\r\n\r\n").unwrap() + 4;
    let f = decode_server_frame(&down[end..]).unwrap();
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (opcode::BINARY, &b"early"[..])
    );
    let mut down = Vec::new();
    l.send(b"", &mut down).unwrap();
    assert!(down.is_empty());
}

#[test]
fn oversize_message_closes_with_1009() {
    let opts = WsOptions {
        max_frame: 100,
        ..WsOptions::default()
    };
    // One frame too big: refused at its header, before the payload arrives.
    let mut l = WsLayer::new(opts.clone());
    assert_eq!(
        feed(&mut l, &client_handshake_request(KEY, &["mqtt"])).0,
        Ok(())
    );
    let input = client_frame(opcode::BINARY, &[0; 101], true, MASK);
    let (r, up, down) = feed(&mut l, &input[..8]);
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert!(up.is_empty());
    assert_eq!(close_code_of(&down), Some(1009));
    // Fragments that add up to too much.
    let mut l = WsLayer::new(opts.clone());
    assert_eq!(
        feed(&mut l, &client_handshake_request(KEY, &["mqtt"])).0,
        Ok(())
    );
    let mut input = client_frame(opcode::BINARY, &[0; 60], false, MASK);
    input.extend(client_frame(opcode::CONTINUATION, &[0; 60], true, MASK));
    let (r, _, down) = feed(&mut l, &input);
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert_eq!(close_code_of(&down), Some(1009));
    // Exactly the limit, twice (the count restarts per message).
    let mut l = WsLayer::new(opts);
    assert_eq!(
        feed(&mut l, &client_handshake_request(KEY, &["mqtt"])).0,
        Ok(())
    );
    let mut input = client_frame(opcode::BINARY, &[1; 100], true, MASK);
    input.extend(client_frame(opcode::BINARY, &[2; 100], true, MASK));
    let (r, up, _) = feed(&mut l, &input);
    assert_eq!(r, Ok(()));
    assert_eq!(up.len(), 200);
}

fn with_origin(origins: &[&str], origin: Option<&str>) -> (Result<(), LayerError>, Vec<u8>) {
    let mut l = WsLayer::new(WsOptions {
        allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        ..WsOptions::default()
    });
    let mut req = text(&client_handshake_request(KEY, &["mqtt"]));
    req.truncate(req.len() - 2);
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    req.push_str("\r\n");
    let (r, _, down) = feed(&mut l, req.as_bytes());
    (r, down)
}

#[test]
fn origin_allow_and_deny() {
    let allowed = ["https://dash.example", "http://localhost:8080"];
    let (r, down) = with_origin(&allowed, Some("http://localhost:8080"));
    assert_eq!(r, Ok(()));
    assert_eq!(status_of(&down), 101);
    let (r, down) = with_origin(&allowed, Some("https://evil.example"));
    assert!(matches!(r, Err(LayerError::WebSocket(_))));
    assert_eq!(status_of(&down), 403);
    // No Origin header (non-browser client): allowed, as in mosquitto 2.1.
    let (r, _) = with_origin(&allowed, None);
    assert_eq!(r, Ok(()));
    // No list: any origin.
    let (r, _) = with_origin(&[], Some("https://evil.example"));
    assert_eq!(r, Ok(()));
}

fn http_layer(dir: &std::path::Path) -> WsLayer {
    WsLayer::new(WsOptions {
        http_dir: Some(dir.to_path_buf()),
        ..WsOptions::default()
    })
}

fn get(l: &mut WsLayer, method: &str, path: &str) -> (Result<(), LayerError>, String) {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (r, _, down) = feed(l, req.as_bytes());
    (r, text(&down))
}

#[test]
fn http_dir_serves_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(dir.path().join("app.js"), "let a = 1;").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();

    let (r, resp) = get(&mut http_layer(dir.path()), "GET", "/app.js?v=2");
    assert_eq!(r, Err(LayerError::Closed));
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("Content-Type: text/javascript; charset=utf-8\r\n"));
    assert!(resp.contains("Content-Length: 10\r\n"));
    assert!(resp.ends_with("\r\n\r\nlet a = 1;"));

    let (_, resp) = get(&mut http_layer(dir.path()), "GET", "/");
    assert!(resp.contains("Content-Type: text/html"));
    assert!(resp.ends_with("<h1>hi</h1>"));
    let (_, resp) = get(&mut http_layer(dir.path()), "GET", "/%61pp.js");
    assert!(resp.starts_with("HTTP/1.1 200 "));
    let (_, resp) = get(&mut http_layer(dir.path()), "HEAD", "/app.js");
    assert!(resp.starts_with("HTTP/1.1 200 ") && resp.ends_with("\r\n\r\n"));

    // Directory without index.html, missing file.
    let (r, resp) = get(&mut http_layer(dir.path()), "GET", "/sub/");
    assert_eq!(r, Err(LayerError::Closed));
    assert!(resp.starts_with("HTTP/1.1 404 "), "{resp}");
    let (_, resp) = get(&mut http_layer(dir.path()), "GET", "/nope.css");
    assert!(resp.starts_with("HTTP/1.1 404 "));
}

#[test]
fn http_traversal_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("www");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(root.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), dir.join("link.txt")).unwrap();
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/link.txt",
    ] {
        let (r, resp) = get(&mut http_layer(&dir), "GET", path);
        assert_eq!(r, Err(LayerError::Closed));
        assert!(resp.starts_with("HTTP/1.1 403 "), "{path}: {resp}");
        assert!(
            !resp.contains("secret\n") && !resp.ends_with("secret"),
            "{path}"
        );
    }
    for path in ["/%zz", "/%+1", "/%4", "/%00", "/a\\..\\b", "*"] {
        let (_, resp) = get(&mut http_layer(&dir), "GET", path);
        assert!(resp.starts_with("HTTP/1.1 400 "), "{path}: {resp}");
    }
}

#[test]
fn http_without_dir_and_other_methods() {
    let (r, resp) = get(&mut layer(), "GET", "/index.html");
    assert_eq!(r, Err(LayerError::Closed));
    assert!(resp.starts_with("HTTP/1.1 404 "));
    let dir = tempfile::tempdir().unwrap();
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (r, resp) = get(&mut http_layer(dir.path()), method, "/");
        assert_eq!(r, Err(LayerError::Closed));
        assert!(resp.starts_with("HTTP/1.1 405 "), "{method}");
        assert!(resp.contains("Allow: GET, HEAD\r\n"));
    }
    // An upgrade by POST is refused too.
    let req = text(&client_handshake_request(KEY, &["mqtt"])).replacen("GET", "POST", 1);
    let (r, _, down) = feed(&mut layer(), req.as_bytes());
    assert!(r.is_err());
    assert_eq!(status_of(&down), 405);
}

#[test]
fn content_types() {
    use std::path::Path;
    for (name, ct) in [
        ("a.html", "text/html; charset=utf-8"),
        ("a.CSS", "text/css; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.png", "image/png"),
        ("a.svg", "image/svg+xml"),
        ("favicon.ico", "image/x-icon"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.bin", "application/octet-stream"),
    ] {
        assert_eq!(http_files::content_type(Path::new(name)), ct);
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let handshake = client_handshake_request(KEY, &["mqtt"]);
    let opts = WsOptions {
        max_frame: 4096,
        ..WsOptions::default()
    };
    for i in 0..100_000u32 {
        let mut l = WsLayer::new(opts.clone());
        let mut up = Vec::new();
        let mut down = Vec::new();
        // Half the runs fuzz the frame parser past a valid handshake; a third
        // of those start from plausible frames with bytes flipped.
        let mut input = Vec::new();
        if i % 2 == 0 {
            input.extend_from_slice(&handshake);
        }
        let len = (rng.next() % 64) as usize;
        if i % 6 == 0 {
            let op = [0u8, 1, 2, 8, 9, 10][(rng.next() % 6) as usize];
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut f = client_frame(op, &payload, rng.next() & 1 == 0, MASK);
            let flip = (rng.next() as usize) % f.len();
            f[flip] ^= rng.next() as u8;
            input.extend(f);
        } else {
            input.extend((0..len).map(|_| rng.next() as u8));
        }
        // Feed in random chunks, then call everything else too.
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let n = 1 + (rng.next() as usize) % rest.len();
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            if l.ingest(chunk, &mut up, &mut down).is_err() {
                break;
            }
        }
        let _ = l.send(b"out", &mut down);
        l.close(&mut down);
        let _ = l.ingest(b"more", &mut up, &mut down);
    }
}

#[test]
fn random_http_heads_never_panic() {
    let mut rng = XorShift(42);
    let alphabet = b"GET /\r\n: HTTP/1.1Upgrade websocket Connection Sec-WebSocket-Key%.";
    for _ in 0..5_000 {
        let len = (rng.next() % 200) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
            .chain(*b"\r\n\r\n")
            .collect();
        let mut l = layer();
        let (_, _, _) = feed(&mut l, &input);
    }
}

#[test]
fn mask_at_any_offset() {
    let key = [1, 2, 3, 4];
    let data: Vec<u8> = (0..23).collect();
    for offset in 0..8u64 {
        let mut fast = data.clone();
        frame::apply_mask(&mut fast, key, offset);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset as usize + i) % 4])
            .collect();
        assert_eq!(fast, slow, "offset {offset}");
    }
}

#[test]
fn rfc6455_section_5_7_examples() {
    // The helpers agree with the RFC's byte examples, so tests built on them
    // check the layer against the RFC, not against itself.
    assert_eq!(
        client_frame(opcode::TEXT, b"Hello", true, MASK),
        [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    assert_eq!(
        client_frame(opcode::TEXT, b"Hel", false, None),
        [0x01, 0x03, 0x48, 0x65, 0x6c]
    );
    let mut l = open();
    let mut down = Vec::new();
    l.send(&[0; 256], &mut down).unwrap();
    assert_eq!(down[..4], [0x82, 0x7E, 0x01, 0x00]);
    let mut down = Vec::new();
    l.send(&[0; 65536], &mut down).unwrap();
    assert_eq!(down[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    // Masked "Hello" ping from the RFC, answered with an unmasked pong.
    let ping = [
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (r, _, down) = feed(&mut l, &ping);
    assert_eq!(r, Ok(()));
    assert_eq!(down, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}
