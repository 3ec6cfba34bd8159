//! The stub resolver's answer parser (`net::dns`, used for bridge
//! addresses): header, the echoed question, name compression, CNAME chains,
//! A/AAAA records, truncation and error codes.
//!
//! Input: one control byte, then the datagram. Bit 0 chooses the question:
//! A or AAAA for `broker.example.com`. The query's id is taken from the
//! datagram's first two bytes, so the id check passes and the fuzzer
//! reaches what follows; the name is fixed, as in a real lookup.
#![no_main]

use culex::net::dns::{QType, Query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, msg)) = data.split_first() else {
        return;
    };
    let qtype = if control & 1 == 0 {
        QType::A
    } else {
        QType::Aaaa
    };
    let id = match msg {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let query = Query::new(id, "broker.example.com", qtype).expect("valid name");
    let _ = query.to_bytes();
    match query.parse_response(msg) {
        Ok(addrs) => {
            // In order and without repeats.
            for (i, a) in addrs.iter().enumerate() {
                assert!(!addrs[..i].contains(a), "{addrs:?}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.is_stray();
        }
    }
    // Names as the configuration gives them.
    if let Ok(host) = std::str::from_utf8(msg)
        && let Ok(q) = Query::new(0, host, qtype)
    {
        let _ = q.to_bytes();
    }
});
