//! A listener's TLS directives → `rustls::ServerConfig`.
//!
//! Every file is read afresh on each call (SIGHUP re-reads certificates, as
//! mosquitto does); nothing else is cached, and building a config costs a
//! few file reads and a key parse.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::ciphers::{self, CipherError};
use crate::config::model::TlsSettings;

/// Why a listener's TLS settings cannot be used. `Display` gives one
/// `Error: ...` line naming the directive and file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfigError {
    /// `certfile` without `keyfile` or the other way round.
    Incomplete { missing: &'static str },
    /// A file (or `capath` directory) could not be read.
    Io {
        directive: &'static str,
        path: String,
        error: String,
    },
    /// A file is not valid PEM.
    Pem {
        directive: &'static str,
        path: String,
        detail: String,
    },
    /// A PEM file holds nothing of the kind the directive needs.
    Empty {
        directive: &'static str,
        path: String,
        what: &'static str,
    },
    /// `keyfile` is encrypted; like mosquitto's broker, culex cannot ask for
    /// a password.
    EncryptedKey { path: String },
    /// `keyfile` holds a key rustls cannot use.
    InvalidKey { path: String, detail: String },
    /// The key does not belong to the certificate.
    KeyMismatch { certfile: String, keyfile: String },
    /// A certificate in `cafile`/`capath`/`certfile` is not usable.
    InvalidCertificate {
        directive: &'static str,
        path: String,
        detail: String,
    },
    /// `crlfile` cannot be used.
    InvalidCrl { path: String, detail: String },
    /// `require_certificate true` without any CA to verify against.
    NoCa { capath: Option<String> },
    /// `tls_version` is one rustls does not implement, or unknown.
    TlsVersion { value: String },
    /// `ciphers` / `ciphers_tls1.3` selects nothing rustls implements.
    Ciphers {
        directive: &'static str,
        list: String,
        unsupported: Vec<String>,
    },
    /// `psk_hint`: rustls cannot serve TLS-PSK.
    PskUnsupported,
    /// rustls refused the assembled configuration.
    Rustls(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TlsConfigError::*;
        match self {
            Incomplete { missing } => write!(
                f,
                "Error: Both certfile and keyfile must be provided to enable TLS on a listener; {missing} is missing."
            ),
            Io {
                directive,
                path,
                error,
            } => write!(f, "Error: Unable to read {directive} \"{path}\": {error}."),
            Pem {
                directive,
                path,
                detail,
            } => write!(
                f,
                "Error: Unable to load {directive} \"{path}\": invalid PEM ({detail})."
            ),
            Empty {
                directive,
                path,
                what,
            } => write!(
                f,
                "Error: Unable to load {directive} \"{path}\": no {what} found in the file."
            ),
            EncryptedKey { path } => write!(
                f,
                "Error: Unable to load server key file \"{path}\": the key is encrypted; decrypt it first (openssl pkey -in KEY -out KEY.plain)."
            ),
            InvalidKey { path, detail } => write!(
                f,
                "Error: Unable to load server key file \"{path}\": {detail}. Check keyfile."
            ),
            KeyMismatch { certfile, keyfile } => write!(
                f,
                "Error: Server certificate/key are inconsistent (certfile \"{certfile}\", keyfile \"{keyfile}\")."
            ),
            InvalidCertificate {
                directive,
                path,
                detail,
            } => write!(
                f,
                "Error: Unable to load certificate from {directive} \"{path}\": {detail}."
            ),
            InvalidCrl { path, detail } => write!(
                f,
                "Error: Unable to load certificate revocation file \"{path}\": {detail}. Check crlfile."
            ),
            NoCa { capath: Some(dir) } => write!(
                f,
                "Error: require_certificate is true but capath \"{dir}\" holds no CA certificates."
            ),
            NoCa { capath: None } => f.write_str(
                "Error: require_certificate is true but neither cafile nor capath is set.",
            ),
            TlsVersion { value } => match value.as_str() {
                "tlsv1.1" | "tlsv1" | "tlsv1.0" => write!(
                    f,
                    "Error: Unsupported tls_version \"{value}\": culex's TLS library (rustls) implements TLS 1.2 and 1.3 only; use tlsv1.2 or tlsv1.3."
                ),
                _ => write!(
                    f,
                    "Error: Unsupported tls_version \"{value}\" (use tlsv1.2 or tlsv1.3)."
                ),
            },
            Ciphers {
                directive,
                list,
                unsupported,
            } => {
                write!(
                    f,
                    "Error: Unable to set TLS ciphers. Check {directive} \"{list}\""
                )?;
                if unsupported.is_empty() {
                    f.write_str(": it selects no cipher suite.")
                } else {
                    write!(
                        f,
                        ": not supported by culex's TLS library (rustls): {}.",
                        unsupported.join(", ")
                    )
                }
            }
            PskUnsupported => f.write_str(
                "Error: psk_hint: TLS-PSK is not supported by culex's TLS library (rustls); use certificates instead.",
            ),
            Rustls(detail) => write!(f, "Error: Unable to create TLS context: {detail}."),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// Whether the listener asks for TLS: `certfile` or `keyfile` is set. Half a
/// pair is meant to reach [`server_config`], which refuses it, so a
/// forgotten `keyfile` is an error rather than a silently plain listener.
pub fn tls_configured(tls: &TlsSettings) -> bool {
    tls.certfile.is_some() || tls.keyfile.is_some()
}

/// Builds the rustls server configuration for one listener. Called at
/// start-up and again on SIGHUP (the files are re-read).
pub fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, TlsConfigError> {
    if tls.psk_hint.is_some() {
        return Err(TlsConfigError::PskUnsupported);
    }
    let versions = protocol_versions(tls.tls_version.as_deref())?;
    let (certfile, keyfile) = match (&tls.certfile, &tls.keyfile) {
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => return Err(TlsConfigError::Incomplete { missing: "keyfile" }),
        (None, _) => {
            return Err(TlsConfigError::Incomplete {
                missing: "certfile",
            });
        }
    };

    let mut chain = load_certs("certfile", certfile)?;
    if let Some(path) = &tls.cafile {
        complete_chain(&mut chain, &load_certs("cafile", path)?);
    }
    let key = load_key("keyfile", keyfile)?;
    let roots = load_roots(tls)?;
    let crls = match &tls.crlfile {
        Some(path) => load_crls(path)?,
        None => Vec::new(),
    };
    if let Some(path) = &tls.dhparamfile {
        read("dhparamfile", path)?;
        log::info!(
            "dhparamfile \"{path}\" is not used: culex's TLS library offers no DHE cipher suites (ECDHE only)."
        );
    }

    let provider = Arc::new(provider(tls)?);
    let verifier = client_verifier(tls, roots, crls, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier);
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsConfigError::KeyMismatch {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
        },
        other => TlsConfigError::InvalidKey {
            path: keyfile.clone(),
            detail: other.to_string(),
        },
    })?;
    // mosquitto sets SSL_OP_CIPHER_SERVER_PREFERENCE.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

fn protocol_versions(
    value: Option<&str>,
) -> Result<&'static [&'static SupportedProtocolVersion], TlsConfigError> {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    // tls_version is the *minimum* version since mosquitto 2.0.
    match value {
        None | Some("tlsv1.2") => Ok(BOTH),
        Some("tlsv1.3") => Ok(TLS13_ONLY),
        Some(other) => Err(TlsConfigError::TlsVersion {
            value: other.to_string(),
        }),
    }
}

/// The *ring* provider with the suites `ciphers` / `ciphers_tls1.3` allow.
fn provider(tls: &TlsSettings) -> Result<CryptoProvider, TlsConfigError> {
    provider_with(
        ("ciphers", tls.ciphers.as_deref()),
        ("ciphers_tls1.3", tls.ciphers_tls13.as_deref()),
    )
}

/// The *ring* provider with the TLS 1.2 and 1.3 suites two OpenSSL-style
/// lists allow (`None`: rustls' defaults); each comes with the directive
/// that gave it, for messages. Listeners and bridges share it.
pub(super) fn provider_with(
    (name12, list12): (&'static str, Option<&str>),
    (name13, list13): (&'static str, Option<&str>),
) -> Result<CryptoProvider, TlsConfigError> {
    let tls12 = match list12 {
        None => ciphers::default_tls12(),
        Some(list) => {
            let sel = ciphers::select_tls12(list).map_err(|e| cipher_error(name12, list, e))?;
            if !sel.unsupported.is_empty() {
                log::warn!(
                    "Warning: {name12}: ignoring cipher suites culex's TLS library (rustls) does not implement: {}.",
                    sel.unsupported.join(", ")
                );
            }
            if sel.used_keywords {
                log::info!(
                    "{name12} \"{list}\": OpenSSL cipher keywords select by property; culex keeps its TLS library's secure defaults for them (ECDHE with AES-GCM or ChaCha20-Poly1305)."
                );
            }
            sel.suites
        }
    };
    let tls13 = match list13 {
        None => ciphers::default_tls13(),
        Some(list) => {
            let sel = ciphers::select_tls13(list).map_err(|e| cipher_error(name13, list, e))?;
            if !sel.unsupported.is_empty() {
                log::warn!(
                    "Warning: {name13}: ignoring cipher suites culex's TLS library (rustls) does not implement: {}.",
                    sel.unsupported.join(", ")
                );
            }
            sel.suites
        }
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    Ok(provider)
}

fn cipher_error(directive: &'static str, list: &str, e: CipherError) -> TlsConfigError {
    match e {
        CipherError::NoneSupported(unsupported) => TlsConfigError::Ciphers {
            directive,
            list: list.to_string(),
            unsupported,
        },
    }
}

/// As mosquitto: with `require_certificate` the client must present a
/// certificate that chains to the CA; without it the server does not ask
/// for one at all (OpenSSL's `SSL_VERIFY_NONE`), so `cafile` is loaded (and
/// checked) but unused.
fn client_verifier(
    tls: &TlsSettings,
    roots: RootCertStore,
    crls: Vec<CertificateRevocationListDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    if roots.is_empty() {
        if tls.require_certificate {
            return Err(TlsConfigError::NoCa {
                capath: tls.capath.clone(),
            });
        }
        if let (Some(path), false) = (&tls.crlfile, crls.is_empty()) {
            log::warn!("Warning: crlfile \"{path}\" is not used: no cafile or capath is set.");
        }
        return Ok(WebPkiClientVerifier::no_client_auth());
    }
    let crlfile = tls.crlfile.clone().unwrap_or_default();
    // OpenSSL's X509_V_FLAG_CRL_CHECK: the leaf only, its issuer's CRL must
    // be present, and an expired CRL fails.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .enforce_revocation_expiration()
        .build()
        .map_err(|e| match e {
            rustls::server::VerifierBuilderError::InvalidCrl(e) => TlsConfigError::InvalidCrl {
                path: crlfile,
                detail: format!("{e:?}"),
            },
            other => TlsConfigError::Rustls(other.to_string()),
        })?;
    if tls.require_certificate {
        Ok(verifier)
    } else {
        Ok(WebPkiClientVerifier::no_client_auth())
    }
}

fn read(directive: &'static str, path: &str) -> Result<Vec<u8>, TlsConfigError> {
    fs::read(path).map_err(|e| TlsConfigError::Io {
        directive,
        path: path.to_string(),
        error: crate::net::listen::strerror(&e),
    })
}

pub(super) fn pem_error(directive: &'static str, path: &str, e: pem::Error) -> TlsConfigError {
    let detail = match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "missing \"-----END {}-----\" line",
            String::from_utf8_lossy(&end_marker).trim()
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed line \"{}\"",
            String::from_utf8_lossy(&line).trim()
        ),
        pem::Error::Base64Decode(e) => format!("bad base64: {e}"),
        other => other.to_string(),
    };
    TlsConfigError::Pem {
        directive,
        path: path.to_string(),
        detail,
    }
}

fn parse_certs(
    directive: &'static str,
    path: &str,
    data: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(directive, path, e))
}

/// A PEM chain: the server certificate first, then intermediates.
pub(super) fn load_certs(
    directive: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let data = read(directive, path)?;
    let certs = parse_certs(directive, path, &data)?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty {
            directive,
            path: path.to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// PKCS#1 (`RSA PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE
/// KEY`); the first key in the file.
pub(super) fn load_key(
    directive: &'static str,
    path: &str,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let data = read(directive, path)?;
    let text = String::from_utf8_lossy(&data);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(TlsConfigError::EncryptedKey {
            path: path.to_string(),
        });
    }
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsConfigError::Empty {
            directive,
            path: path.to_string(),
            what: "private key (RSA, PKCS#8 or EC)",
        },
        other => pem_error(directive, path, other),
    })
}

/// `cafile` (every certificate must load) and `capath` (every file that
/// parses as PEM certificates is loaded; OpenSSL's hashed names are not
/// needed).
/// OpenSSL, as mosquitto uses it, sends a certfile that holds only the leaf
/// with the issuers it finds in the CA store, so clients that trust only the
/// root still verify it. rustls sends the certfile as it is: append the
/// issuers from `cafile`, up to a self-signed one, as OpenSSL would.
fn complete_chain(chain: &mut Vec<CertificateDer<'static>>, cas: &[CertificateDer<'static>]) {
    for _ in 0..10 {
        let Some((issuer, subject)) = chain.last().and_then(|c| super::subject::names_der(c))
        else {
            return;
        };
        if issuer == subject {
            return;
        }
        let next = cas.iter().find(|ca| {
            super::subject::names_der(ca).is_some_and(|(_, s)| s == issuer) && !chain.contains(ca)
        });
        match next {
            Some(ca) => chain.push(ca.clone()),
            None => return,
        }
    }
}

fn load_roots(tls: &TlsSettings) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &tls.cafile {
        for cert in load_certs("cafile", path)? {
            roots
                .add(cert)
                .map_err(|e| TlsConfigError::InvalidCertificate {
                    directive: "cafile",
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
        }
    }
    if let Some(dir) = &tls.capath {
        for file in capath_files("capath", dir)? {
            let (added, ignored) = load_capath_file(&mut roots, &file);
            log::debug!(
                "capath: {} CA certificate(s) loaded, {} ignored from \"{}\".",
                added,
                ignored,
                file.display()
            );
        }
    }
    Ok(roots)
}

/// The files of a `capath` directory, in name order (as OpenSSL's lookup
/// by hash would find any of them).
pub(super) fn capath_files(
    directive: &'static str,
    dir: &str,
) -> Result<Vec<PathBuf>, TlsConfigError> {
    let entries = fs::read_dir(dir).map_err(|e| TlsConfigError::Io {
        directive,
        path: dir.to_string(),
        error: crate::net::listen::strerror(&e),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

pub(super) fn load_capath_file(roots: &mut RootCertStore, file: &Path) -> (usize, usize) {
    let Ok(data) = fs::read(file) else {
        return (0, 0);
    };
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .filter_map(Result::ok)
        .collect();
    roots.add_parsable_certificates(certs)
}

fn load_crls(path: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsConfigError> {
    let data = read("crlfile", path)?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("crlfile", path, e))?;
    if crls.is_empty() {
        return Err(TlsConfigError::Empty {
            directive: "crlfile",
            path: path.to_string(),
            what: "certificate revocation list (X509 CRL)",
        });
    }
    Ok(crls)
}
