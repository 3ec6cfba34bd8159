//! TLS from a bridge to its remote broker: the `SSL_CTX` built from a
//! bridge's `bridge_*` directives as libmosquitto builds it
//! (`net__init_ssl_ctx`), mosquitto's host name check with its Common Name
//! fallback, TLS-PSK and OCSP stapling.
//!
//! mosquitto reads the bridge's files each time it connects and logs what
//! fails then; culex reads them once at start-up, so a missing or broken
//! file stops the broker with mosquitto's line and a detail line naming the
//! bridge, rather than leaving a bridge that can never connect.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslMode, SslOptions, SslRef,
    SslVerifyMode, StatusType,
};
use openssl::x509::{X509Ref, X509StoreContextRef};

use super::error::{check_path, openssl_lines};
use super::layer::{Side, TlsLayer};
use crate::auth::psk_file::hex_to_key;
use crate::config::bridge::{Bridge, BridgeTls, BridgeTlsVersion};
use crate::net::layer::LayerError;

/// Where Debian and Alpine keep the system's CA bundle. OpenSSL's default
/// paths (`SSL_CTX_set_default_verify_paths`) are compiled in and differ
/// between the two, and a static culex carries Debian's: this file makes
/// `bridge_tls_use_os_certs` work in the Docker image too.
pub const OS_CA_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

/// Why a bridge's TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTlsError {
    /// The line mosquitto logs for this failure (`net__init_ssl_ctx`).
    pub mosquitto: String,
    /// What exactly is wrong, naming the bridge; OpenSSL's own lines follow.
    pub detail: String,
    pub openssl: Vec<String>,
}

impl BridgeTlsError {
    fn new(mosquitto: impl Into<String>, bridge: &str, why: impl fmt::Display) -> BridgeTlsError {
        BridgeTlsError {
            mosquitto: mosquitto.into(),
            detail: format!("Error: Bridge {bridge}: {why}"),
            openssl: Vec::new(),
        }
    }

    fn and_openssl(mut self, e: &openssl::error::ErrorStack) -> BridgeTlsError {
        self.openssl = openssl_lines(e);
        self
    }

    /// mosquitto's line, culex's detail, then OpenSSL's lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.mosquitto.clone(), self.detail.clone()];
        lines.extend(super::error::numbered(&self.openssl));
        lines
    }
}

impl fmt::Display for BridgeTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for BridgeTlsError {}

/// A bridge's TLS configuration, shared by its connection attempts.
#[derive(Clone)]
pub struct BridgeTlsContext {
    ctx: SslContext,
    insecure: bool,
    require_ocsp: bool,
    /// PSK bridges verify no certificate.
    psk: bool,
}

impl fmt::Debug for BridgeTlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BridgeTlsContext")
    }
}

/// The TLS context of `bridge`, or `None` when it does not use TLS. Every
/// file is read here.
pub fn bridge_client_context(bridge: &Bridge) -> Result<Option<BridgeTlsContext>, BridgeTlsError> {
    let Some(tls) = &bridge.tls else {
        return Ok(None);
    };
    let name = bridge.name.as_str();
    for path in [&tls.cafile, &tls.capath, &tls.certfile, &tls.keyfile]
        .into_iter()
        .flatten()
    {
        check_path(path).map_err(|e| {
            BridgeTlsError::new("Error: Unable to create TLS context.", name, e.message)
        })?;
    }
    let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| {
        BridgeTlsError::new(
            "Error: Unable to create TLS context.",
            name,
            "OpenSSL refused to create a context.",
        )
        .and_openssl(&e)
    })?;
    let old = SslOptions::NO_SSLV3 | SslOptions::NO_TLSV1;
    b.set_options(match tls.version {
        BridgeTlsVersion::Tls11 => old,
        BridgeTlsVersion::Tls12 => old | SslOptions::NO_TLSV1_1,
        BridgeTlsVersion::Tls13 => old | SslOptions::NO_TLSV1_1 | SslOptions::NO_TLSV1_2,
    });
    b.set_options(SslOptions::NO_COMPRESSION);
    if let Some(alpn) = &tls.alpn {
        let mut wire = vec![alpn.len() as u8];
        wire.extend_from_slice(alpn.as_bytes());
        b.set_alpn_protos(&wire).map_err(|e| {
            BridgeTlsError::new(
                "Error: Unable to create TLS context.",
                name,
                format!("bridge_alpn \"{alpn}\" was refused."),
            )
            .and_openssl(&e)
        })?;
    }
    b.set_mode(SslMode::RELEASE_BUFFERS);
    let ciphers = match (&tls.ciphers, &tls.psk) {
        (Some(list), _) => Some(list.as_str()),
        // libmosquitto's default for PSK.
        (None, Some(_)) => Some("PSK"),
        (None, None) => None,
    };
    if let Some(list) = ciphers {
        b.set_cipher_list(list).map_err(|e| {
            BridgeTlsError::new(
                format!("Error: Unable to set TLS ciphers. Check cipher list \"{list}\"."),
                name,
                "bridge_ciphers selects no cipher suite OpenSSL offers.",
            )
            .and_openssl(&e)
        })?;
    }
    if let Some(list) = &tls.ciphers_tls13 {
        b.set_ciphersuites(list).map_err(|e| {
            BridgeTlsError::new(
                format!(
                    "Error: Unable to set TLS 1.3 ciphersuites. Check cipher_tls13 list \"{list}\"."
                ),
                name,
                "bridge_ciphers_tls1.3 selects no TLS 1.3 suite OpenSSL offers.",
            )
            .and_openssl(&e)
        })?;
    }
    match &tls.psk {
        Some(psk) => set_psk(&mut b, &psk.identity, &psk.key_hex),
        None => certificates(&mut b, name, tls)?,
    }
    if tls.require_ocsp {
        b.set_status_callback(ocsp_status_ok).map_err(|e| {
            BridgeTlsError::new(
                "Error: Unable to create TLS context.",
                name,
                "OCSP stapling could not be set up.",
            )
            .and_openssl(&e)
        })?;
    }
    Ok(Some(BridgeTlsContext {
        ctx: b.build(),
        insecure: tls.insecure,
        require_ocsp: tls.require_ocsp,
        psk: tls.psk.is_some(),
    }))
}

/// The CA store, verification and the client certificate.
fn certificates(
    b: &mut SslContextBuilder,
    name: &str,
    tls: &BridgeTls,
) -> Result<(), BridgeTlsError> {
    let ca_message = match (&tls.cafile, &tls.capath) {
        (Some(f), Some(p)) => format!(
            "Error: Unable to load CA certificates, check bridge_cafile \"{f}\" and bridge_capath \"{p}\"."
        ),
        (Some(f), None) => {
            format!("Error: Unable to load CA certificates, check bridge_cafile \"{f}\".")
        }
        (None, Some(p)) => {
            format!("Error: Unable to load CA certificates, check bridge_capath \"{p}\".")
        }
        (None, None) => "Error: Unable to load CA certificates.".to_string(),
    };
    if tls.cafile.is_some() || tls.capath.is_some() {
        b.load_verify_locations(
            tls.cafile.as_deref().map(Path::new),
            tls.capath.as_deref().map(Path::new),
        )
        .map_err(|e| {
            BridgeTlsError::new(ca_message.clone(), name, "OpenSSL could not read the CA.")
                .and_openssl(&e)
        })?;
    }
    if tls.use_os_certs {
        // As mosquitto: a missing system store is not an error here.
        let _ = b.set_default_verify_paths();
        if let Some(bundle) = OS_CA_BUNDLES.iter().find(|p| Path::new(p).exists()) {
            let _ = b.set_ca_file(bundle);
        }
    }
    // Verification proper is set per connection (`TlsLayer::client`),
    // where the remote's address is known.
    b.set_verify(SslVerifyMode::PEER);
    if let (Some(certfile), Some(keyfile)) = (&tls.certfile, &tls.keyfile) {
        b.set_certificate_chain_file(certfile).map_err(|e| {
            BridgeTlsError::new(
                format!("Error: Unable to load client certificate \"{certfile}\"."),
                name,
                "check bridge_certfile.",
            )
            .and_openssl(&e)
        })?;
        b.set_private_key_file(keyfile, SslFiletype::PEM)
            .map_err(|e| {
                BridgeTlsError::new(
                    format!("Error: Unable to load client key file \"{keyfile}\"."),
                    name,
                    "check bridge_keyfile.",
                )
                .and_openssl(&e)
            })?;
        b.check_private_key().map_err(|e| {
            BridgeTlsError::new(
                "Error: Client certificate/key are inconsistent.",
                name,
                format!(
                    "bridge_keyfile \"{keyfile}\" is not the key of bridge_certfile \"{certfile}\"."
                ),
            )
            .and_openssl(&e)
        })?;
    }
    Ok(())
}

/// libmosquitto's `psk_client_callback`: the identity as a C string, the
/// key from its hex digits.
fn set_psk(b: &mut SslContextBuilder, identity: &str, key_hex: &str) {
    let identity = identity.as_bytes().to_vec();
    let key_hex = key_hex.to_string();
    b.set_psk_client_callback(move |_ssl, _hint, identity_out, key_out| {
        // Room for the terminating NUL.
        if identity.len() >= identity_out.len() {
            return Ok(0);
        }
        identity_out[..identity.len()].copy_from_slice(&identity);
        identity_out[identity.len()] = 0;
        Ok(hex_to_key(&key_hex, key_out).unwrap_or(0))
    });
}

impl TlsLayer {
    /// A bridge's session to `host` (the address as configured: a host
    /// name for SNI and the certificate check, or an IP address).
    pub fn client(context: &BridgeTlsContext, host: &str) -> Result<TlsLayer, LayerError> {
        let mut ssl =
            Ssl::new(&context.ctx).map_err(|e| LayerError::Tls(openssl_lines(&e).join("\n")))?;
        // libmosquitto sends SNI with whatever the address is.
        let _ = ssl.set_hostname(host);
        if !context.psk {
            let host = host.to_string();
            let insecure = context.insecure;
            ssl.set_verify_callback(SslVerifyMode::PEER, move |ok, store| {
                verify_server(ok, store, &host, insecure)
            });
        }
        if context.require_ocsp {
            ssl.set_status_type(StatusType::OCSP)
                .map_err(|e| LayerError::Tls(openssl_lines(&e).join("\n")))?;
        }
        TlsLayer::new(ssl, Side::Client)
    }
}

/// `mosquitto__server_certificate_verify`: OpenSSL's verdict, and for the
/// remote's own certificate (depth 0) the host name unless
/// `bridge_insecure` is set.
fn verify_server(ok: bool, store: &mut X509StoreContextRef, host: &str, insecure: bool) -> bool {
    if !ok {
        return false;
    }
    if insecure || store.error_depth() != 0 {
        return true;
    }
    let Some(cert) = store.current_cert() else {
        return false;
    };
    let matches = certificate_matches_host(cert, host);
    if !matches {
        log::error!("Error: host name verification failed.");
    }
    matches
}

/// `mosquitto__verify_certificate_hostname`: a DNS subjectAltName that
/// matches (one leading `*.` label allowed), or an IP subjectAltName equal
/// to the address; only when the certificate has no DNS subjectAltName at
/// all, its Common Name compared without case.
pub fn certificate_matches_host(cert: &X509Ref, host: &str) -> bool {
    let ip: Option<IpAddr> = host.parse().ok();
    let mut has_dns = false;
    if let Some(names) = cert.subject_alt_names() {
        for name in names.iter() {
            if let Some(dns) = name.dnsname() {
                has_dns = true;
                if dns_name_matches(dns, host) {
                    return true;
                }
            } else if let (Some(bytes), Some(ip)) = (name.ipaddress(), ip) {
                let equal = match ip {
                    IpAddr::V4(v4) => bytes == v4.octets(),
                    IpAddr::V6(v6) => bytes == v6.octets(),
                };
                if equal {
                    return true;
                }
            }
        }
        if has_dns {
            return false;
        }
    }
    cert.subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .is_some_and(|cn| {
            let cn = cn.data().as_slice();
            // mosquitto reads at most 255 bytes of it.
            let cn = &cn[..cn.len().min(255)];
            cn.eq_ignore_ascii_case(host.as_bytes())
        })
}

/// mosquitto's `match_hostname`: case-insensitive; `*.example.com` matches
/// exactly one label in front of `example.com`.
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => match host.split_once('.') {
            Some((label, host_rest)) => !label.is_empty() && host_rest.eq_ignore_ascii_case(rest),
            None => false,
        },
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// `mosquitto__verify_ocsp_status_cb`: a stapled, successful, signed OCSP
/// response that says the remote's certificate is good and is not out of
/// date (five minutes of grace, as mosquitto allows).
fn ocsp_status_ok(ssl: &mut SslRef) -> Result<bool, openssl::error::ErrorStack> {
    let fail = |why: &str| {
        log::error!("OCSP: {why}");
        Ok(false)
    };
    let Some(der) = ssl.ocsp_status() else {
        return fail("no response");
    };
    let Ok(response) = OcspResponse::from_der(der) else {
        return fail("invalid response");
    };
    if response.status() != OcspResponseStatus::SUCCESSFUL {
        return fail(&format!("invalid status ({})", response.status().as_raw()));
    }
    let Ok(basic) = response.basic() else {
        return fail("invalid response");
    };
    let Some(chain) = ssl.peer_cert_chain() else {
        return fail("we did not receive certificates of the server (num: 0)");
    };
    let store = ssl.ssl_context().cert_store();
    if basic.verify(chain, store, OcspFlag::empty()).is_err() {
        return fail("response verification failed");
    }
    let Some(verified) = ssl.verified_chain() else {
        return fail("the server's certificate chain was not verified");
    };
    let (Some(leaf), Some(issuer)) = (verified.get(0), verified.get(1)) else {
        return fail("the server's certificate has no issuer in its chain");
    };
    let id = OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer)?;
    let Some(status) = basic.find_status(&id) else {
        return fail("SSL certificate status: unknown");
    };
    if status.status == OcspCertStatus::GOOD {
        if status.check_validity(300, None).is_err() {
            return fail("OCSP response has expired");
        }
        return Ok(true);
    }
    if status.status == OcspCertStatus::REVOKED {
        return fail("SSL certificate status: revoked");
    }
    fail("SSL certificate revocation status unknown")
}

#[cfg(test)]
mod tests {
    use super::dns_name_matches;

    #[test]
    fn wildcards_match_one_label_as_mosquitto_matches_them() {
        assert!(dns_name_matches("broker.example.com", "BROKER.example.com"));
        assert!(dns_name_matches("*.example.com", "a.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.example.com", ".example.com"));
        assert!(!dns_name_matches(
            "broker.example.com",
            "broker.example.org"
        ));
    }
}
