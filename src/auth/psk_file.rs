//! The `psk_file` of TLS-PSK listeners: `identity:hexkey` lines, read with
//! the password file's line rules (mosquitto's `pwfile__parse`: `#`
//! comments, blanks trimmed, a line without a key is skipped with a
//! warning), then every key checked for hex digits only.
//!
//! Keys are turned into bytes as mosquitto's `mosquitto__hex2bin` does: the
//! hex string read as one big number (so an odd number of digits works),
//! with each leading `00` pair kept as a zero byte.

use std::path::Path;

use super::{LogLine, fgets_lines, trim_c_space};
use crate::auth::Level;

/// Why a psk file cannot be used (mosquitto refuses to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PskFileError {
    /// `Error: Unable to open pwfile "<p>".` (exit 13, as for a password file).
    Open { path: String },
    /// `Error: psk for identity "<id>" contains non-hexadecimal characters.` (exit 3).
    NotHex { identity: String },
}

impl PskFileError {
    pub fn exit_code(&self) -> i32 {
        match self {
            PskFileError::Open { .. } => 13,
            PskFileError::NotHex { .. } => 3,
        }
    }
}

impl std::fmt::Display for PskFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PskFileError::Open { path } => write!(f, "Error: Unable to open pwfile \"{path}\"."),
            PskFileError::NotHex { identity } => write!(
                f,
                "Error: psk for identity \"{identity}\" contains non-hexadecimal characters."
            ),
        }
    }
}

impl std::error::Error for PskFileError {}

/// The identities and keys of one psk file, in file order (mosquitto finds
/// the first line with the identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PskKeys {
    entries: Vec<(Vec<u8>, String)>,
}

impl PskKeys {
    pub fn parse(bytes: &[u8], file_name: &str) -> Result<(PskKeys, Vec<LogLine>), PskFileError> {
        let mut keys = PskKeys::default();
        let mut logs = Vec::new();
        for (idx, raw) in fgets_lines(bytes).enumerate() {
            let line = super::c_str(raw);
            if line.first() == Some(&b'#') {
                continue;
            }
            let mut tokens = line.split(|&b| b == b':').filter(|t| !t.is_empty());
            let Some(identity) = tokens.next().map(trim_c_space) else {
                continue;
            };
            if identity.is_empty() {
                continue;
            }
            let Some(key) = tokens.next().map(trim_c_space) else {
                logs.push(LogLine::at(
                    Level::Notice,
                    &format!(
                        "Warning: Invalid line in password file '{file_name}': {}",
                        String::from_utf8_lossy(identity)
                    ),
                    file_name,
                    idx + 1,
                ));
                continue;
            };
            let key = String::from_utf8_lossy(key).into_owned();
            if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PskFileError::NotHex {
                    identity: String::from_utf8_lossy(identity).into_owned(),
                });
            }
            keys.entries.push((identity.to_vec(), key));
        }
        Ok((keys, logs))
    }

    pub fn load(path: &Path) -> Result<(PskKeys, Vec<LogLine>), PskFileError> {
        let bytes = std::fs::read(path).map_err(|_| PskFileError::Open {
            path: path.display().to_string(),
        })?;
        PskKeys::parse(&bytes, &path.display().to_string())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key of `identity` as bytes, written into `out` (OpenSSL's
    /// buffer); its length, or 0 to refuse the handshake: unknown identity,
    /// a key longer than `out`, or (when the identity is to become the
    /// username) an identity that is not UTF-8.
    pub fn key_for(&self, identity: Option<&[u8]>, as_username: bool, out: &mut [u8]) -> usize {
        let Some(identity) = identity else {
            return 0;
        };
        if as_username && std::str::from_utf8(identity).is_err() {
            return 0;
        }
        let Some((_, hex)) = self.entries.iter().find(|(id, _)| id == identity) else {
            return 0;
        };
        hex_to_key(hex, out).unwrap_or(0)
    }
}

/// mosquitto's `mosquitto__hex2bin`: leading `00` pairs become zero bytes,
/// the whole string is then read as a big-endian number and written
/// without leading zeros. `None` if it does not fit `out` or is empty.
pub fn hex_to_key(hex: &str, out: &mut [u8]) -> Option<usize> {
    let bytes = hex.as_bytes();
    let zeros = bytes.chunks(2).take_while(|pair| *pair == b"00").count();
    let digits: Vec<u8> = bytes
        .iter()
        .map(|&b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if digits.is_empty() {
        return None;
    }
    let significant = match digits.iter().position(|&d| d != 0) {
        Some(i) => &digits[i..],
        None => &[][..],
    };
    let number_len = significant.len().div_ceil(2);
    let total = zeros + number_len;
    if total > out.len() {
        return None;
    }
    out[..zeros].fill(0);
    // Right-align the digits: an odd count starts with a half byte.
    let mut at = zeros;
    let mut rest = significant;
    if rest.len() % 2 == 1 {
        out[at] = rest[0];
        at += 1;
        rest = &rest[1..];
    }
    for pair in rest.chunks(2) {
        out[at] = (pair[0] << 4) | pair[1];
        at += 1;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> Option<Vec<u8>> {
        let mut out = [0u8; 64];
        hex_to_key(hex, &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn keys_convert_as_mosquittos_hex2bin() {
        assert_eq!(key("deadbeef"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(key("DEADBEEF"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        // An odd count is a number: 0x123.
        assert_eq!(key("123"), Some(vec![0x01, 0x23]));
        // Leading 00 pairs are kept, a lone leading 0 digit is not.
        assert_eq!(key("0012"), Some(vec![0x00, 0x12]));
        assert_eq!(key("000abc"), Some(vec![0x00, 0x0a, 0xbc]));
        assert_eq!(key("0abc"), Some(vec![0x0a, 0xbc]));
        assert_eq!(key("00"), Some(vec![0x00]));
        assert_eq!(key("0"), Some(vec![]));
        assert_eq!(key(""), None);
        let mut small = [0u8; 2];
        assert_eq!(hex_to_key("010203", &mut small), None);
    }

    #[test]
    fn lines_are_read_as_mosquitto_reads_a_password_file() {
        let (keys, logs) = PskKeys::parse(
            b"# comment\nsensor1:deadbeef\n  sensor2 : 1234 \nnokey\nsensor1:ffff\n",
            "psk",
        )
        .unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(logs.len(), 1);
        assert!(logs[0].text.contains("Invalid line"), "{}", logs[0].text);
        let mut out = [0u8; 16];
        // The first line with the identity wins.
        assert_eq!(keys.key_for(Some(b"sensor1"), false, &mut out), 4);
        assert_eq!(&out[..4], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(keys.key_for(Some(b"sensor2"), false, &mut out), 2);
        assert_eq!(keys.key_for(Some(b"nobody"), false, &mut out), 0);
        assert_eq!(keys.key_for(None, false, &mut out), 0);
    }

    #[test]
    fn a_key_with_other_characters_is_refused() {
        let e = PskKeys::parse(b"dev:12zz\n", "psk").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error: psk for identity \"dev\" contains non-hexadecimal characters."
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn a_non_utf8_identity_cannot_become_a_username() {
        let (keys, _) = PskKeys::parse(b"\xff\xfe:1234\n", "psk").unwrap();
        let mut out = [0u8; 16];
        assert_eq!(keys.key_for(Some(b"\xff\xfe"), false, &mut out), 2);
        assert_eq!(keys.key_for(Some(b"\xff\xfe"), true, &mut out), 0);
    }
}
