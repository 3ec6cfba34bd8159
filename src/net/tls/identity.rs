//! Who a finished TLS handshake says the peer is, read the way mosquitto's
//! `handle_connect` reads it: the first Common Name's raw bytes for
//! `use_identity_as_username`, the RFC 2253 subject from OpenSSL for
//! `use_subject_as_username`, or the PSK identity.

use openssl::nid::Nid;
use openssl::ssl::SslRef;
use openssl::x509::X509Ref;

use crate::net::layer::PeerIdentity;

/// The identity of an established session, if it has one.
pub fn of_session(ssl: &SslRef) -> Option<PeerIdentity> {
    if let Some(cert) = ssl.peer_certificate() {
        return Some(of_certificate(&cert));
    }
    let index = super::server::psk_identity_index().ok()?;
    let identity = ssl
        .ex_data(index)
        .map(Vec::as_slice)
        .or(ssl.psk_identity())?;
    Some(PeerIdentity::Psk {
        identity: std::str::from_utf8(identity).ok()?.to_string(),
    })
}

pub fn of_certificate(cert: &X509Ref) -> PeerIdentity {
    let name = cert.subject_name();
    // mosquitto copies the string's bytes as they are (no conversion from
    // BMPString and the like) and refuses a NUL inside or bad UTF-8.
    let common_name = name
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| {
            let bytes = entry.data().as_slice();
            if bytes.contains(&0) {
                return None;
            }
            crate::codec::validate_utf8(bytes).map(str::to_string)
        });
    PeerIdentity::Certificate {
        common_name,
        subject: crate::sys::openssl_ffi::name_rfc2253(name),
    }
}
