//! The WebSocket layer of `protocol websockets` listeners: the HTTP upgrade
//! request, then RFC 6455 frames (fragments, control frames, masks, close
//! codes, size limits), fed in chunks as reads deliver them.
//!
//! Input: one control byte, then the bytes from the client.
//! - bits 0-3: chunk size for `ingest` (0 = everything at once, else
//!   1..15 bytes, then growing), so headers and frames split anywhere;
//! - bit 4: `websockets_origin` is set (to `http://good.example`);
//! - bit 5: a small message limit (64 bytes) instead of the default.
//!
//! The layer sends something back for the broker between chunks, and
//! closes at the end, as the event loop does.
#![no_main]

use culex::net::layer::Layer;
use culex::net::websocket::{WsLayer, WsOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut input)) = data.split_first() else {
        return;
    };
    let mut opts = WsOptions::default();
    if control & 0x10 != 0 {
        opts.allowed_origins = vec!["http://good.example".to_string()];
    }
    if control & 0x20 != 0 {
        opts.max_frame = 64;
    }
    let mut layer = WsLayer::new(opts);
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut chunk = usize::from(control & 0x0F);
    let mut fed = 0usize;
    while !input.is_empty() {
        let n = if chunk == 0 {
            input.len()
        } else {
            chunk.min(input.len())
        };
        let (now, rest) = input.split_at(n);
        input = rest;
        fed += n;
        let result = layer.ingest(now, &mut up, &mut down);
        // Unmasking never adds bytes: MQTT bytes out are at most bytes in.
        assert!(up.len() <= fed);
        let _ = layer.is_open();
        let _ = layer.subprotocol();
        let _ = layer.path();
        if result.is_err() {
            return;
        }
        let _ = layer.send(b"\x20\x02\x00\x00", &mut down);
        if chunk != 0 {
            chunk += 1;
        }
    }
    layer.close(&mut down);
});
