//! Low-level wire primitives shared by the decoder and the encoder:
//! variable byte integers, UTF-8 string validation, and the nom parsers for
//! the MQTT data types (two/four-byte integers, strings, binary data).

use nom::IResult;
use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u8, be_u16, be_u32};

/// Outcome of reading a variable byte integer from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Varint {
    /// `(value, bytes used)`.
    Value(u32, usize),
    /// The buffer ends before the integer does.
    Incomplete,
    /// More than 4 bytes.
    Malformed,
}

/// Reads a variable byte integer (MQTT 5.0 section 1.5.5) from `buf`.
pub(crate) fn read_varint(buf: &[u8]) -> Varint {
    let mut value: u32 = 0;
    for (i, &b) in buf.iter().enumerate().take(4) {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Varint::Value(value, i + 1);
        }
    }
    if buf.len() >= 4 {
        Varint::Malformed
    } else {
        Varint::Incomplete
    }
}

/// Bytes needed to encode `v` as a variable byte integer.
#[inline]
pub(crate) fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let mut b = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            b |= 0x80;
        }
        out.push(b);
        if v == 0 {
            break;
        }
    }
}

/// Length of a u16-prefixed string or binary field, clamped as `put_bytes` writes it.
#[inline]
pub(crate) fn lp_len(bytes: &[u8]) -> usize {
    2 + bytes.len().min(u16::MAX as usize)
}

/// Writes a u16 length prefix then the bytes. Data longer than 65535 bytes is
/// cut (the packet model never holds such fields; this keeps encoding total).
#[inline]
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..n]);
}

/// mosquitto's `mosquitto_validate_utf8` rules on top of well-formed UTF-8
/// (which `std::str::from_utf8` already enforces: no overlong forms, no
/// surrogates, nothing above U+10FFFF): no U+0000..U+001F, no U+007F..U+009F,
/// no U+FDD0..U+FDEF and no U+xFFFE/U+xFFFF non-characters.
pub(crate) fn validate_utf8(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let ok = s.chars().all(|c| {
        let cp = c as u32;
        !(cp <= 0x1F
            || (0x7F..=0x9F).contains(&cp)
            || (0xFDD0..=0xFDEF).contains(&cp)
            || (cp & 0xFFFF) >= 0xFFFE)
    });
    ok.then_some(s)
}

/// Error of the body parsers: a malformed or protocol-violating field, with
/// the reason; the packet name is attached by `decode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PErr {
    Malformed(&'static str),
    Protocol(&'static str),
    /// A fully formed error (CONNECT protocol name / version).
    Full(super::decode::DecodeError),
}

impl<I> ParseError<I> for PErr {
    fn from_error_kind(_: I, _: ErrorKind) -> Self {
        PErr::Malformed("packet shorter than its fields")
    }
    fn append(_: I, _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type In<'a> = &'a [u8];
pub(crate) type PResult<'a, T> = IResult<In<'a>, T, PErr>;

pub(crate) fn malformed<T>(reason: &'static str) -> Result<T, nom::Err<PErr>> {
    Err(nom::Err::Failure(PErr::Malformed(reason)))
}

pub(crate) fn protocol<T>(reason: &'static str) -> Result<T, nom::Err<PErr>> {
    Err(nom::Err::Failure(PErr::Protocol(reason)))
}

pub(crate) fn byte(i: In<'_>) -> PResult<'_, u8> {
    be_u8(i)
}

pub(crate) fn two(i: In<'_>) -> PResult<'_, u16> {
    be_u16(i)
}

pub(crate) fn four(i: In<'_>) -> PResult<'_, u32> {
    be_u32(i)
}

/// Binary data: two-byte length then that many bytes.
pub(crate) fn binary(i: In<'_>) -> PResult<'_, &[u8]> {
    let (i, n) = be_u16(i)?;
    take(n)(i)
}

/// A UTF-8 encoded string, validated as mosquitto does.
pub(crate) fn utf8(i: In<'_>) -> PResult<'_, &str> {
    let (i, b) = binary(i)?;
    match validate_utf8(b) {
        Some(s) => Ok((i, s)),
        None => malformed("invalid UTF-8 string"),
    }
}

/// A variable byte integer inside a packet body (property length,
/// subscription identifier).
pub(crate) fn varint(i: In<'_>) -> PResult<'_, u32> {
    match read_varint(i) {
        Varint::Value(v, n) => Ok((i.get(n..).unwrap_or_default(), v)),
        Varint::Incomplete => malformed("truncated variable byte integer"),
        Varint::Malformed => malformed("variable byte integer longer than 4 bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_varint_round_trip_and_limits() {
        for v in [
            0usize,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(read_varint(&out), Varint::Value(v as u32, out.len()));
        }
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80]), Varint::Malformed);
        assert_eq!(read_varint(&[0x80, 0x80, 0x80]), Varint::Incomplete);
        assert_eq!(read_varint(&[]), Varint::Incomplete);
    }

    #[test]
    fn codec_utf8_rules_follow_mosquitto() {
        assert!(validate_utf8(b"a/b").is_some());
        assert!(validate_utf8("h\u{e9}llo \u{1F600}".as_bytes()).is_some());
        assert!(validate_utf8(b"").is_some());
        for bad in [
            &b"a\x00b"[..],
            b"\x01",
            b"\x1f",
            b"\x7f",
            "\u{85}".as_bytes(),
            "\u{9f}".as_bytes(),
            "\u{FDD0}".as_bytes(),
            "\u{FFFE}".as_bytes(),
            "\u{1FFFF}".as_bytes(),
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf5\x80\x80\x80",
            b"\xe2\x82",
        ] {
            assert!(validate_utf8(bad).is_none(), "{bad:?}");
        }
    }
}
