//! TLS from a bridge to its remote broker: the rustls client configuration
//! built from a bridge's `bridge_*` directives, and [`TlsClientLayer`], one
//! outgoing session as a sans-IO [`Layer`].
//!
//! mosquitto reads the bridge's files each time it connects and logs what
//! fails then; culex reads them once at start-up, so a missing or broken
//! file stops the broker with mosquitto's line and a detail line naming the
//! bridge, rather than leaving a bridge that can never connect.

use std::fmt;
use std::fs;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};

use super::config::{TlsConfigError, capath_files, load_capath_file, load_certs, load_key};
use super::layer::{close_notify, encrypt, flush_records, take_plaintext};
use crate::config::bridge::{Bridge, BridgeTls, BridgeTlsVersion};
use crate::net::layer::{Layer, LayerError};

/// Where Debian (and the Docker image's base) keep the system's CA bundle,
/// which `SSL_CTX_set_default_verify_paths` loads for mosquitto.
pub const OS_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a bridge's TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTlsError {
    /// The line mosquitto logs for this failure (`net__init_ssl_ctx`).
    pub mosquitto: String,
    /// What exactly is wrong, naming the bridge and the file.
    pub detail: String,
}

impl BridgeTlsError {
    /// mosquitto's line first, then culex's detail.
    pub fn lines(&self) -> Vec<String> {
        vec![self.mosquitto.clone(), self.detail.clone()]
    }
}

impl fmt::Display for BridgeTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.mosquitto, self.detail)
    }
}

impl std::error::Error for BridgeTlsError {}

fn detail(bridge: &str, text: impl fmt::Display) -> String {
    let text = text.to_string();
    let text = text.strip_prefix("Error: ").unwrap_or(&text);
    format!("Error: Bridge {bridge}: {text}")
}

/// The client configuration of `bridge`, or `None` when it does not use TLS.
/// Every file is read here; every address must be usable as a TLS server
/// name (the certificate is checked against it).
pub fn bridge_client_config(bridge: &Bridge) -> Result<Option<Arc<ClientConfig>>, BridgeTlsError> {
    let Some(tls) = &bridge.tls else {
        return Ok(None);
    };
    let name = bridge.name.as_str();
    for a in &bridge.addresses {
        if ServerName::try_from(a.host.clone()).is_err() {
            return Err(BridgeTlsError {
                mosquitto: "Error: Unable to create TLS context.".into(),
                detail: detail(
                    name,
                    format!(
                        "address \"{}\" is neither an IP address nor a valid host name, so its certificate cannot be checked.",
                        a.host
                    ),
                ),
            });
        }
    }
    client_config(name, tls).map(Some)
}

fn ca_error(name: &str, tls: &BridgeTls, why: impl fmt::Display) -> BridgeTlsError {
    // mosquitto's three forms (`net__tls_load_ca`).
    let mosquitto = match (&tls.cafile, &tls.capath) {
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
    BridgeTlsError {
        mosquitto,
        detail: detail(name, why),
    }
}

fn roots(name: &str, tls: &BridgeTls) -> Result<RootCertStore, BridgeTlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &tls.cafile {
        let certs = load_certs("bridge_cafile", path).map_err(|e| ca_error(name, tls, e))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                ca_error(
                    name,
                    tls,
                    TlsConfigError::InvalidCertificate {
                        directive: "bridge_cafile",
                        path: path.clone(),
                        detail: e.to_string(),
                    },
                )
            })?;
        }
    }
    if let Some(dir) = &tls.capath {
        let files = capath_files("bridge_capath", dir).map_err(|e| ca_error(name, tls, e))?;
        for file in files {
            load_capath_file(&mut roots, &file);
        }
    }
    if tls.use_os_certs {
        // mosquitto ignores a missing system store (OpenSSL's default paths
        // fail silently); say so, and fail below only if no CA is left.
        match fs::read(OS_CA_BUNDLE) {
            Ok(data) => {
                let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
                    .filter_map(Result::ok)
                    .collect();
                roots.add_parsable_certificates(certs);
            }
            Err(e) => log::warn!(
                "Warning: Bridge {name}: bridge_tls_use_os_certs: unable to read {OS_CA_BUNDLE}: {}.",
                crate::net::listen::strerror(&e)
            ),
        }
    }
    if roots.is_empty() {
        return Err(ca_error(
            name,
            tls,
            "no CA certificate found to verify the remote broker with.",
        ));
    }
    Ok(roots)
}

fn client_config(name: &str, tls: &BridgeTls) -> Result<Arc<ClientConfig>, BridgeTlsError> {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let context_error = |e: rustls::Error| BridgeTlsError {
        mosquitto: "Error: Unable to create TLS context.".into(),
        detail: detail(name, format!("{e}.")),
    };
    let roots = roots(name, tls)?;
    let provider = super::config::provider_with(
        ("bridge_ciphers", tls.ciphers.as_deref()),
        ("bridge_ciphers_tls1.3", tls.ciphers_tls13.as_deref()),
    )
    .map_err(|e| BridgeTlsError {
        mosquitto: "Error: Unable to set TLS ciphers.".into(),
        detail: detail(name, e),
    })?;
    let provider = Arc::new(provider);
    let versions = match tls.version {
        BridgeTlsVersion::Tls12 => BOTH,
        BridgeTlsVersion::Tls13 => TLS13_ONLY,
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ca_error(name, tls, format!("{e}.")))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(context_error)?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
    } else {
        builder.with_webpki_verifier(verifier)
    };
    let mut config = match (&tls.certfile, &tls.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let cert_error = |e: TlsConfigError| BridgeTlsError {
                mosquitto: format!(
                    "Error: Unable to load client certificate, check bridge_certfile \"{certfile}\"."
                ),
                detail: detail(name, e),
            };
            let key_error = |why: String| BridgeTlsError {
                mosquitto: format!(
                    "Error: Unable to load client key file, check bridge_keyfile \"{keyfile}\"."
                ),
                detail: detail(name, why),
            };
            let chain = load_certs("bridge_certfile", certfile).map_err(cert_error)?;
            let key = load_key("bridge_keyfile", keyfile).map_err(|e| match e {
                // Its text speaks of a server key; this one is the bridge's.
                TlsConfigError::EncryptedKey { path } => key_error(format!(
                    "bridge_keyfile \"{path}\" is encrypted and culex cannot ask for its password; decrypt it first (openssl pkey -in KEY -out KEY.plain)."
                )),
                other => key_error(other.to_string()),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => BridgeTlsError {
                        mosquitto: "Error: Client certificate/key are inconsistent.".into(),
                        detail: detail(
                            name,
                            format!(
                                "bridge_keyfile \"{keyfile}\" is not the key of bridge_certfile \"{certfile}\"."
                            ),
                        ),
                    },
                    other => key_error(format!("{other}.")),
                })?
        }
        // `finish` lets only both or neither through.
        _ => builder.with_no_client_auth(),
    };
    if let Some(alpn) = &tls.alpn {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Ok(Arc::new(config))
}

/// `bridge_insecure true`: OpenSSL's `SSL_VERIFY_PEER` still checks the
/// chain; mosquitto only skips its own host name check. So this verifier
/// forgives exactly a certificate that is valid but for another name.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, after the chain, validity dates and
        // revocation: a name error means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One bridge connection's TLS session. The client speaks first: its
/// ClientHello is pending from [`TlsClientLayer::new`] and goes out with the
/// first [`Layer::send`] (the bridge's CONNECT, which rustls keeps until the
/// handshake has verified the remote).
pub struct TlsClientLayer {
    conn: ClientConnection,
    /// The host the certificate must be valid for (for error messages).
    host: String,
}

impl TlsClientLayer {
    /// A session to `host` (the bridge address as configured: a host name
    /// for SNI and the certificate check, or an IP address).
    pub fn new(config: Arc<ClientConfig>, host: &str) -> Result<TlsClientLayer, LayerError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| LayerError::Tls(format!("bad server name \"{host}\": {e}")))?;
        let mut conn =
            ClientConnection::new(config, name).map_err(|e| LayerError::Tls(e.to_string()))?;
        // The event loop owns back-pressure: take everything the broker
        // sends, before and after the handshake.
        conn.set_buffer_limit(None);
        Ok(TlsClientLayer {
            conn,
            host: host.to_string(),
        })
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Feeds `input` to rustls and moves plaintext to `up`. `Ok(true)` when
    /// the remote has sent close_notify.
    fn ingest_inner(&mut self, mut input: &[u8], up: &mut Vec<u8>) -> Result<bool, LayerError> {
        let mut closed = false;
        while !input.is_empty() {
            match self.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(LayerError::Tls(format!("reading TLS records: {e}"))),
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| describe(e, &self.host))?;
            take_plaintext(&mut self.conn, state.plaintext_bytes_to_read(), up)?;
            closed |= state.peer_has_closed();
        }
        Ok(closed)
    }
}

impl Layer for TlsClientLayer {
    /// On `Err`, `down` holds the alert telling the remote why: send it,
    /// then close.
    fn ingest(
        &mut self,
        from_below: &[u8],
        up: &mut Vec<u8>,
        down: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        let result = self.ingest_inner(from_below, up);
        // Handshake messages, and the plaintext rustls held back until the
        // handshake completed.
        flush_records(&mut self.conn, down);
        match result {
            Ok(true) => Err(LayerError::Closed),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, from_above: &[u8], down: &mut Vec<u8>) -> Result<(), LayerError> {
        encrypt(&mut self.conn, from_above, down)
    }

    fn close(&mut self, down: &mut Vec<u8>) {
        close_notify(&mut self.conn, down);
    }
}

/// A rustls error as the log line of a failed bridge connection.
fn describe(e: rustls::Error, host: &str) -> LayerError {
    use rustls::Error as E;
    let text = match &e {
        E::InvalidCertificate(why) => {
            let why = match why {
                CertificateError::UnknownIssuer => {
                    "it is not signed by a CA in bridge_cafile/bridge_capath".to_string()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "it is not valid for \"{host}\" (bridge_insecure skips only this check)"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_string()
                }
                other => format!("{other:?}"),
            };
            format!("the remote broker's certificate was rejected: {why}")
        }
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        | E::InvalidMessage(rustls::InvalidMessage::UnknownProtocolVersion) => {
            format!("the remote did not answer with TLS (is it a plain MQTT port?): {e}")
        }
        E::PeerIncompatible(why) => {
            format!("no common TLS parameters with the remote broker: {why:?}")
        }
        E::AlertReceived(alert) => format!("the remote broker sent alert {alert:?}"),
        _ => e.to_string(),
    };
    LayerError::Tls(text)
}
