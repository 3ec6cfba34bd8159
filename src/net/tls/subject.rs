//! The subject of a client certificate, printed the way mosquitto prints it
//! for `use_subject_as_username` and read for `use_identity_as_username`.
//!
//! mosquitto calls OpenSSL's `X509_NAME_print_ex(bio, name, 0,
//! XN_FLAG_RFC2253)`: RDNs most specific first (the reverse of the DER
//! order), `,` between RDNs and `+` inside a multi-valued one, OpenSSL's
//! short names (`CN`, `OU`, `emailAddress`, ...), and RFC 2253 escaping with
//! two OpenSSL twists: every byte above 0x7F of the UTF-8 text is written as
//! `\XX` (so `Württemberg` is `W\C3\BCrttemberg`), and control bytes too.
//! An attribute OpenSSL has no name for is printed as its dotted OID with
//! the value's DER as `#hex`. The expected strings in the tests come from
//! `openssl x509 -subject -nameopt RFC2253`.
//!
//! A small DER walk is all this needs; no X.509 crate.

use crate::net::layer::PeerIdentity;

/// One DER element: its tag byte(s), whole encoding and contents.
struct Tlv<'a> {
    /// The first tag byte (class, constructed bit, number or 0x1F).
    tag: u8,
    /// Tag, length and contents.
    raw: &'a [u8],
    contents: &'a [u8],
}

/// Reads one element from the front of `input`; `None` on malformed DER.
fn next_tlv<'a>(input: &mut &'a [u8]) -> Option<Tlv<'a>> {
    let data = *input;
    let tag = *data.first()?;
    let mut pos = 1;
    if tag & 0x1F == 0x1F {
        // High tag number form: base-128 continuation bytes.
        loop {
            let b = *data.get(pos)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 6 {
                return None;
            }
        }
    }
    let first = *data.get(pos)?;
    pos += 1;
    let len = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..count {
            len = (len << 8) | usize::from(*data.get(pos)?);
            pos += 1;
        }
        len
    };
    let end = pos.checked_add(len)?;
    let contents = data.get(pos..end)?;
    let raw = &data[..end];
    *input = &data[end..];
    Some(Tlv { tag, raw, contents })
}

fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<Tlv<'a>> {
    let tlv = next_tlv(input)?;
    (tlv.tag == tag).then_some(tlv)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The DER of the subject `Name` inside a certificate.
fn subject_der(cert: &[u8]) -> Option<&[u8]> {
    names_der(cert).map(|(_, subject)| subject)
}

/// The DER of a certificate's issuer and subject names.
pub(super) fn names_der(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut input = cert;
    let certificate = expect(&mut input, SEQUENCE)?;
    let mut body = certificate.contents;
    let tbs = expect(&mut body, SEQUENCE)?;
    let mut fields = tbs.contents;
    // version [0] EXPLICIT is optional.
    if fields.first() == Some(&0xA0) {
        next_tlv(&mut fields)?;
    }
    next_tlv(&mut fields)?; // serialNumber
    expect(&mut fields, SEQUENCE)?; // signature
    let issuer = expect(&mut fields, SEQUENCE)?;
    expect(&mut fields, SEQUENCE)?; // validity
    let subject = expect(&mut fields, SEQUENCE)?;
    Some((issuer.raw, subject.raw))
}

/// One attribute of a name: `(rdn index, type OID contents, value element)`.
struct Attribute<'a> {
    rdn: usize,
    oid: &'a [u8],
    value: Tlv<'a>,
}

fn attributes(name: &[u8]) -> Option<Vec<Attribute<'_>>> {
    let mut input = name;
    let name = expect(&mut input, SEQUENCE)?;
    let mut rdns = name.contents;
    let mut out = Vec::new();
    let mut rdn = 0;
    while !rdns.is_empty() {
        let set = expect(&mut rdns, SET)?;
        let mut atvs = set.contents;
        while !atvs.is_empty() {
            let atv = expect(&mut atvs, SEQUENCE)?;
            let mut parts = atv.contents;
            let oid = expect(&mut parts, OID)?;
            let value = next_tlv(&mut parts)?;
            out.push(Attribute {
                rdn,
                oid: oid.contents,
                value,
            });
        }
        rdn += 1;
    }
    Some(out)
}

/// The client identity from a DER certificate: `None` if the certificate
/// cannot be parsed far enough to find its subject.
pub fn peer_identity(cert: &[u8]) -> Option<PeerIdentity> {
    let name = subject_der(cert)?;
    let attrs = attributes(name)?;
    Some(PeerIdentity {
        common_name: common_name(&attrs),
        subject: format_rfc2253(&attrs),
    })
}

/// The subject of a DER certificate in OpenSSL's RFC 2253 format.
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    peer_identity(cert).map(|id| id.subject)
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// The first CN in DER order (OpenSSL's `X509_NAME_get_index_by_NID(...,
/// -1)`). mosquitto takes the string's raw bytes; here they are decoded by
/// type. A CN with a NUL in it is refused, as mosquitto refuses it.
fn common_name(attrs: &[Attribute<'_>]) -> Option<String> {
    let attr = attrs.iter().find(|a| a.oid == OID_CN)?;
    let text = decode_string(attr.value.tag, attr.value.contents)?;
    (!text.contains('\0')).then_some(text)
}

/// Decodes a directory string to text; `None` for non-string types.
fn decode_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String
        0x0C => Some(String::from_utf8_lossy(bytes).into_owned()),
        // NumericString, PrintableString, T61String, IA5String,
        // VisibleString: one byte per character (Latin-1 for T61).
        0x12 | 0x13 | 0x14 | 0x16 | 0x1A => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1E => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UniversalString: UCS-4BE.
        0x1C => Some(
            bytes
                .chunks(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b[..c.len()].copy_from_slice(c);
                    char::from_u32(u32::from_be_bytes(b)).unwrap_or('\u{FFFD}')
                })
                .collect(),
        ),
        _ => None,
    }
}

/// `X509_NAME_print_ex(..., XN_FLAG_RFC2253)`.
fn format_rfc2253(attrs: &[Attribute<'_>]) -> String {
    let mut out = String::new();
    let mut prev: Option<usize> = None;
    for attr in attrs.iter().rev() {
        if let Some(p) = prev {
            out.push(if p == attr.rdn { '+' } else { ',' });
        }
        prev = Some(attr.rdn);
        match short_name(attr.oid) {
            Some(name) => {
                out.push_str(name);
                out.push('=');
                print_value(&attr.value, &mut out);
            }
            None => {
                // Unknown field: dotted OID and the DER dumped as hex
                // (XN_FLAG_DUMP_UNKNOWN_FIELDS).
                out.push_str(&oid_text(attr.oid));
                out.push('=');
                dump_hex(attr.value.raw, &mut out);
            }
        }
    }
    out
}

fn dump_hex(der: &[u8], out: &mut String) {
    out.push('#');
    for b in der {
        out.push_str(&format!("{b:02X}"));
    }
}

/// OpenSSL's `do_print_ex` with `ASN1_STRFLGS_RFC2253`: known string types
/// are converted to UTF-8 and escaped; anything else is dumped as `#hex`.
fn print_value(value: &Tlv<'_>, out: &mut String) {
    // Code points of the value, by the width OpenSSL gives each type.
    // UTF8String is taken a byte at a time: OpenSSL does the same to avoid
    // converting twice, and every byte above 0x7F is escaped anyway.
    let chars: Vec<u32> = match value.tag {
        0x0C | 0x12 | 0x13 | 0x14 | 0x16 | 0x17 | 0x18 | 0x1A => {
            value.contents.iter().map(|&b| u32::from(b)).collect()
        }
        0x1E if value.contents.len().is_multiple_of(2) => value
            .contents
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .collect(),
        0x1C if value.contents.len().is_multiple_of(4) => value
            .contents
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => {
            dump_hex(value.raw, out);
            return;
        }
    };
    let utf8_input = value.tag == 0x0C;
    let count = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        // As in OpenSSL's do_buf, "last" overrides "first" for a one-char
        // value: a lone `#` is not escaped, a lone space is.
        let position = if i + 1 == count {
            Position::Last
        } else if i == 0 {
            Position::First
        } else {
            Position::Middle
        };
        if utf8_input || c < 0x80 {
            escape_byte(c as u8, position, out);
        } else {
            let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
            let mut buf = [0u8; 4];
            for &b in ch.encode_utf8(&mut buf).as_bytes() {
                escape_byte(b, Position::Middle, out);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    First,
    Middle,
    Last,
}

/// OpenSSL's `do_esc_char` with ESC_2253 | ESC_CTRL | ESC_MSB.
fn escape_byte(b: u8, position: Position, out: &mut String) {
    match b {
        b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
            out.push('\\');
            out.push(char::from(b));
        }
        b'#' if position == Position::First => out.push_str("\\#"),
        b' ' if position != Position::Middle => out.push_str("\\ "),
        0..=0x1F | 0x7F..=0xFF => out.push_str(&format!("\\{b:02X}")),
        _ => out.push(char::from(b)),
    }
}

/// OpenSSL's short names for the attributes seen in certificate subjects.
fn short_name(oid: &[u8]) -> Option<&'static str> {
    const X520: &[u8] = &[0x55, 0x04];
    if let Some(&[n]) = oid.strip_prefix(X520) {
        return Some(match n {
            3 => "CN",
            4 => "SN",
            5 => "serialNumber",
            6 => "C",
            7 => "L",
            8 => "ST",
            9 => "street",
            10 => "O",
            11 => "OU",
            12 => "title",
            13 => "description",
            14 => "searchGuide",
            15 => "businessCategory",
            16 => "postalAddress",
            17 => "postalCode",
            18 => "postOfficeBox",
            19 => "physicalDeliveryOfficeName",
            20 => "telephoneNumber",
            41 => "name",
            42 => "GN",
            43 => "initials",
            44 => "generationQualifier",
            45 => "x500UniqueIdentifier",
            46 => "dnQualifier",
            54 => "dmdName",
            65 => "pseudonym",
            72 => "role",
            97 => "organizationIdentifier",
            _ => return None,
        });
    }
    // 1.2.840.113549.1.9.n (PKCS #9)
    const PKCS9: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09];
    if let Some(&[n]) = oid.strip_prefix(PKCS9) {
        return match n {
            1 => Some("emailAddress"),
            2 => Some("unstructuredName"),
            8 => Some("unstructuredAddress"),
            _ => None,
        };
    }
    // 0.9.2342.19200300.100.1.n
    const PILOT: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01];
    if let Some(&[n]) = oid.strip_prefix(PILOT) {
        return match n {
            1 => Some("UID"),
            3 => Some("mail"),
            25 => Some("DC"),
            _ => None,
        };
    }
    // 1.3.6.1.4.1.311.60.2.1.n (EV jurisdiction)
    const JURISDICTION: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01];
    if let Some(&[n]) = oid.strip_prefix(JURISDICTION) {
        return match n {
            1 => Some("jurisdictionL"),
            2 => Some("jurisdictionST"),
            3 => Some("jurisdictionC"),
            _ => None,
        };
    }
    None
}

/// Dotted text of an OID's contents, as `OBJ_obj2txt(..., 1)`.
fn oid_text(oid: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    for &b in oid {
        value = value.saturating_mul(128) | u128::from(b & 0x7F);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let mut text = String::new();
    if let Some((&first, rest)) = arcs.split_first() {
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        text = format!("{a}.{b}");
        for arc in rest {
            text.push_str(&format!(".{arc}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        CertificateDer::from_pem_file(path)
            .expect("fixture")
            .to_vec()
    }

    #[test]
    fn matches_openssl_on_escapes_multivalue_and_unknown_oids() {
        // openssl x509 -in odd-subject.pem -noout -subject -nameopt RFC2253
        let id = peer_identity(&fixture("odd-subject.pem")).unwrap();
        assert_eq!(
            id.subject,
            "UID=u\\\\1,DC=example,1.2.3.4=#0C06637573746F6D,emailAddress=dev@example.org,\
             CN=\\#client 1,OU=Lab+OU=IoT,O=Home\\, Inc. \\<a\\+b\\>\\;x,\
             ST=Baden-W\\C3\\BCrttemberg,C=DE"
        );
        assert_eq!(id.common_name.as_deref(), Some("#client 1"));
    }

    #[test]
    fn matches_openssl_on_spaces_hash_and_control_characters() {
        let id = peer_identity(&fixture("edge-subject.pem")).unwrap();
        assert_eq!(
            id.subject,
            "title=tab\\09x,street=\\CE\\A9 ok,ST=\\C3\\BC,L=a#b,O=#,OU=trail\\ ,CN=\\ lead"
        );
        assert_eq!(id.common_name.as_deref(), Some(" lead"));
    }

    #[test]
    fn matches_openssl_on_t61_and_bmp_strings() {
        let id = peer_identity(&fixture("bmp-subject.pem")).unwrap();
        assert_eq!(id.subject, "CN=plain,O=\\CE\\A9 ok,ST=\\C3\\BC");
    }

    #[test]
    fn cn_with_nul_is_refused_and_missing_cn_is_none() {
        // Name: SET{ SEQ{ CN, UTF8 "a\0b" } }
        let name = [
            0x30, 0x0E, 0x31, 0x0C, 0x30, 0x0A, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0C, 0x03, b'a', 0,
            b'b',
        ];
        let attrs = attributes(&name).unwrap();
        assert_eq!(common_name(&attrs), None);
        assert_eq!(format_rfc2253(&attrs), "CN=a\\00b");
        let name = [
            0x30, 0x0D, 0x31, 0x0B, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x0A, 0x0C, 0x02, b'o',
            b'k',
        ];
        let attrs = attributes(&name).unwrap();
        assert_eq!(common_name(&attrs), None);
        assert_eq!(format_rfc2253(&attrs), "O=ok");
    }

    #[test]
    fn oid_text_handles_the_first_two_arcs() {
        assert_eq!(oid_text(&[0x2A, 0x03, 0x04]), "1.2.3.4");
        assert_eq!(oid_text(&[0x88, 0x37, 0x01]), "2.999.1");
        assert_eq!(oid_text(&[0x09, 0x92, 0x26]), "0.9.2342");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let cert = fixture("odd-subject.pem");
        for round in 0..2000 {
            let mut bytes = cert.clone();
            // Flip a few bytes, or truncate, or pure noise.
            for _ in 0..1 + round % 4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % bytes.len();
                bytes[i] = (seed >> 32) as u8;
            }
            if round % 3 == 0 {
                bytes.truncate((seed >> 40) as usize % bytes.len());
            }
            let _ = peer_identity(&bytes);
        }
        assert!(peer_identity(&[]).is_none());
        assert!(peer_identity(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
        assert!(peer_identity(&[0x30, 0x80]).is_none());
    }
}
