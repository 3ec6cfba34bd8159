//! MQTT over WebSockets with raw frames: the upgrade, packets split across
//! frames and packed into one, ping/pong, and interop with plain MQTT.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use culex::codec::{self, Packet, ProtocolVersion};
use culex::net::websocket::frame::{client_frame, decode_server_frames};
use culex::net::websocket::handshake::client_handshake_request;

const BINARY: u8 = 2;
const CONTINUATION: u8 = 0;
const PING: u8 = 9;
const PONG: u8 = 10;
const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl WsClient {
    fn open(port: u16, protocols: &[&str]) -> (WsClient, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(&client_handshake_request(
                "dGhlIHNhbXBsZSBub25jZQ==",
                protocols,
            ))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed during handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        (WsClient { stream, buf }, head)
    }

    fn send_frame(&mut self, op: u8, payload: &[u8], fin: bool) {
        self.stream
            .write_all(&client_frame(op, payload, fin, MASK))
            .unwrap();
    }

    /// The next server frame (opcode, payload).
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(f) = decode_server_frames(&self.buf).into_iter().next() {
                self.buf.drain(..f.len);
                return Some((f.opcode, f.payload));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until a whole MQTT packet has arrived.
    fn packet(&mut self, mqtt: &mut Vec<u8>, version: ProtocolVersion) -> Packet {
        loop {
            if let Ok(Some((p, n))) = codec::decode(mqtt, Some(version), 0) {
                mqtt.drain(..n);
                return p;
            }
            let (op, payload) = self.frame().expect("frame");
            assert_eq!(op, BINARY);
            mqtt.extend_from_slice(&payload);
        }
    }
}

fn encode(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(p, v, &mut out);
    out
}

#[test]
fn mqtt_over_websockets_split_and_packed_frames() {
    let b = Culex::start("listener {port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n");
    b.wait_log("Opening websockets listen socket on port");
    let (mut ws, head) = WsClient::open(b.port, &["mqtt"]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt"),
        "{head}"
    );

    // CONNECT split over three frames.
    let v = ProtocolVersion::V311;
    let connect = encode(&connect_packet(v, "ws-client", None), v);
    let (a, rest) = connect.split_at(3);
    let (bb, c) = rest.split_at(5);
    ws.send_frame(BINARY, a, false);
    ws.send_frame(CONTINUATION, bb, false);
    ws.send_frame(CONTINUATION, c, true);
    let mut mqtt = Vec::new();
    assert!(matches!(ws.packet(&mut mqtt, v), Packet::Connack(c) if c.code == 0));

    // SUBSCRIBE and PUBLISH packed in one frame.
    let mut both = encode(
        &Packet::Subscribe(codec::Subscribe {
            packet_id: codec::PacketId::new(1).unwrap(),
            filters: vec![(
                codec::TopicFilter::new("ws/#").unwrap(),
                codec::SubscriptionOptions::with_qos(codec::Qos::AtLeastOnce),
            )],
            properties: Default::default(),
        }),
        v,
    );
    both.extend(encode(
        &Packet::Publish(codec::Publish {
            dup: false,
            qos: codec::Qos::AtMostOnce,
            retain: false,
            topic: "ws/echo".into(),
            packet_id: None,
            payload: b"over websockets".to_vec(),
            properties: Default::default(),
        }),
        v,
    ));
    ws.send_frame(BINARY, &both, true);
    assert!(matches!(ws.packet(&mut mqtt, v), Packet::Suback(s) if s.codes == vec![1]));
    match ws.packet(&mut mqtt, v) {
        Packet::Publish(p) => {
            assert_eq!(p.topic, "ws/echo");
            assert_eq!(p.payload, b"over websockets");
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }

    // Ping is answered with a pong carrying the same payload.
    ws.send_frame(PING, b"hi", true);
    assert_eq!(ws.frame(), Some((PONG, b"hi".to_vec())));
}

#[test]
fn websocket_and_tcp_listeners_share_one_broker() {
    let tcp = free_port();
    let b = Culex::start(&format!(
        "listener {{port}} 127.0.0.1\nprotocol websockets\nallow_anonymous true\nlistener {tcp} 127.0.0.1\n"
    ));
    let (mut ws, head) = WsClient::open(b.port, &["mqttv3.1", "mqtt"]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let v = ProtocolVersion::V5;
    ws.send_frame(BINARY, &encode(&connect_packet(v, "ws5", None), v), true);
    let mut mqtt = Vec::new();
    assert!(matches!(ws.packet(&mut mqtt, v), Packet::Connack(c) if c.code == 0));
    ws.send_frame(
        BINARY,
        &encode(
            &Packet::Subscribe(codec::Subscribe {
                packet_id: codec::PacketId::new(1).unwrap(),
                filters: vec![(
                    codec::TopicFilter::new("x").unwrap(),
                    codec::SubscriptionOptions::with_qos(codec::Qos::ExactlyOnce),
                )],
                properties: Default::default(),
            }),
            v,
        ),
        true,
    );
    assert!(matches!(ws.packet(&mut mqtt, v), Packet::Suback(_)));
    let mut p = Raw::login(tcp, ProtocolVersion::V311, "tcp-pub", None);
    p.publish("x", b"from tcp", 2, false);
    match ws.packet(&mut mqtt, v) {
        Packet::Publish(m) => assert_eq!(m.payload, b"from tcp"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_websockets_only_config_on_ipv6_starts_and_serves() {
    // Only a websockets listener, bound to ::1 (both broken in mosquitto
    // 2.0's libwebsockets listeners).
    let b = Culex::start_ipv6("listener {port} ::1\nprotocol websockets\nallow_anonymous true\n");
    let mut stream = TcpStream::connect(("::1", b.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(&client_handshake_request(
            "dGhlIHNhbXBsZSBub25jZQ==",
            &["mqtt"],
        ))
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    // IPv4 is not served: the listener is bound to ::1 only.
    assert!(TcpStream::connect(("127.0.0.1", b.port)).is_err());
}
