//! The TLS-PSK key file reader (`psk_file`): `identity:hexkey` lines, and
//! the key lookup OpenSSL's callback makes for each identity in the file
//! (with a buffer of OpenSSL's size, 256 bytes, and a short one).
#![no_main]

use culex::auth::psk_file::{PskKeys, hex_to_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = match PskKeys::parse(data, "fuzz.psk") {
        Ok((keys, logs)) => {
            for l in &logs {
                let _ = l.to_string();
            }
            keys
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.exit_code();
            return;
        }
    };
    let _ = keys.len();
    for line in data.split(|&b| b == b'\n') {
        let identity = line.split(|&b| b == b':').next().unwrap_or_default();
        for as_username in [false, true] {
            let mut out = [0u8; 256];
            let n = keys.key_for(Some(identity.trim_ascii()), as_username, &mut out);
            assert!(n <= out.len());
            let mut short = [0u8; 4];
            let n = keys.key_for(Some(identity), as_username, &mut short);
            assert!(n <= short.len());
        }
        if let Ok(text) = std::str::from_utf8(line) {
            let mut out = [0u8; 64];
            if let Some(n) = hex_to_key(text, &mut out) {
                assert!(n <= out.len());
            }
        }
    }
    let _ = keys.key_for(None, false, &mut [0u8; 16]);
});
