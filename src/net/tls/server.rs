//! A listener's TLS directives → an OpenSSL `SSL_CTX`, configured call for
//! call as mosquitto 2.0 configures its listeners (`net__tls_server_ctx`,
//! `net__tls_load_ca`, `net__load_certificates`, the PSK setup of
//! `net__socket_listen`), so that certificates, keys, cipher strings, CRLs
//! and PSK files behave as they do there: OpenSSL decides, not culex.
//!
//! Every file is read afresh on each call (SIGHUP re-reads certificates).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use openssl::ex_data::Index;

use openssl::dh::Dh;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslMode, SslOptions, SslVerifyMode,
};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;

use super::error::TlsConfigError;
use crate::auth::psk_file::PskKeys;
use crate::config::model::TlsSettings;
use crate::sys::openssl_ffi::{Engine, EngineError};

/// mosquitto's cipher list when `ciphers` is not set.
const DEFAULT_CIPHERS: &str = "DEFAULT:!aNULL:!eNULL:!LOW:!EXPORT:!SSLv2:@STRENGTH";

/// One listener's TLS configuration, shared by all its connections.
#[derive(Clone)]
pub struct ServerContext {
    pub(super) ctx: SslContext,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerContext")
    }
}

/// Whether the listener serves TLS: mosquitto turns it on with `certfile`
/// and `keyfile`, or with `psk_hint`. Half a certificate pair also counts,
/// so that [`server_context`] refuses it rather than the listener silently
/// speaking plain MQTT.
pub fn tls_configured(tls: &TlsSettings) -> bool {
    tls.certfile.is_some() || tls.keyfile.is_some() || tls.psk_hint.is_some()
}

/// Builds the `SSL_CTX` of the listener on `port` (the port names the
/// session id context, as in mosquitto). `psk` holds the `psk_file` keys
/// this listener uses when `psk_hint` is set.
pub fn server_context(
    tls: &TlsSettings,
    port: u16,
    psk: Option<Arc<PskKeys>>,
) -> Result<ServerContext, TlsConfigError> {
    let certs = match (&tls.certfile, &tls.keyfile) {
        (Some(c), Some(k)) => Some((c.as_str(), k.as_str())),
        (None, None) if tls.psk_hint.is_some() => None,
        (Some(_), None) => return Err(TlsConfigError::incomplete("keyfile")),
        (None, _) => return Err(TlsConfigError::incomplete("certfile")),
    };
    for path in [
        &tls.certfile,
        &tls.keyfile,
        &tls.cafile,
        &tls.capath,
        &tls.crlfile,
        &tls.dhparamfile,
    ]
    .into_iter()
    .flatten()
    {
        super::error::check_path(path)?;
    }

    let mut b = new_context(tls, port)?;
    if let Some((certfile, keyfile)) = certs {
        load_ca(&mut b, tls)?;
        let engine = match &tls.tls_engine {
            Some(id) => Some(load_engine(id)?),
            None => None,
        };
        load_certificates(&mut b, tls, certfile, keyfile, engine.as_ref())?;
    }
    if let Some(hint) = &tls.psk_hint {
        if !crate::sys::openssl_ffi::set_psk_identity_hint(&mut b, hint) {
            return Err(TlsConfigError::new("Error: Unable to set TLS PSK hint."));
        }
        let keys = psk.unwrap_or_default();
        let as_username = tls.use_identity_as_username;
        let index = psk_identity_index()?;
        b.set_psk_server_callback(move |ssl, identity, out| {
            let n = keys.key_for(identity, as_username, out);
            // OpenSSL forgets the identity of a TLS 1.3 PSK session; keep
            // it for use_identity_as_username.
            if n > 0
                && let Some(id) = identity
            {
                ssl.set_ex_data(index, id.to_vec());
            }
            Ok(n)
        });
    }
    Ok(ServerContext { ctx: b.build() })
}

/// `tls_engine`: found, initialised and made OpenSSL's default, with
/// mosquitto's messages (its trailing newline included).
fn load_engine(id: &str) -> Result<Engine, TlsConfigError> {
    if cfg!(target_feature = "crt-static") {
        return Err(TlsConfigError::new(format!(
            "Error: tls_engine \"{id}\": this statically linked culex cannot load OpenSSL engine modules; use the dynamically linked build."
        )));
    }
    Engine::load(id).map_err(|e| {
        let message = match e {
            EngineError::Init => "Failed engine initialisation\n".to_string(),
            _ => format!("Error loading {id} engine\n"),
        };
        TlsConfigError::with_openssl(message, &openssl::error::ErrorStack::get())
    })
}

/// `tls_keyform engine`: `keyfile` is the engine's key id; with
/// `tls_engine_kpass_sha1` the engine gets the password and no prompt.
fn engine_key(
    b: &mut SslContextBuilder,
    tls: &TlsSettings,
    keyfile: &str,
    engine: &Engine,
) -> Result<(), TlsConfigError> {
    let stack = openssl::error::ErrorStack::get;
    if let Some(kpass) = &tls.tls_engine_kpass_sha1 {
        engine.set_password_sha1(kpass).map_err(|e| {
            let message = match e {
                EngineError::SecretMode => "Error: Unable to set engine secret mode sha1",
                _ => "Error: Unable to set engine pin",
            };
            TlsConfigError::with_openssl(message, &stack())
        })?;
    }
    let key = engine
        .load_private_key(keyfile, tls.tls_engine_kpass_sha1.is_some())
        .map_err(|_| {
            TlsConfigError::with_openssl(
                format!("Error: Unable to load engine private key file \"{keyfile}\"."),
                &stack(),
            )
        })?;
    b.set_private_key(&key).map_err(|e| {
        TlsConfigError::with_openssl(
            format!("Error: Unable to use engine private key file \"{keyfile}\"."),
            &e,
        )
    })
}

/// Where a session keeps the PSK identity its client presented.
pub(super) fn psk_identity_index() -> Result<Index<Ssl, Vec<u8>>, TlsConfigError> {
    static INDEX: OnceLock<Index<Ssl, Vec<u8>>> = OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    let i = Ssl::new_ex_index()
        .map_err(|e| TlsConfigError::with_openssl("Error: Unable to create TLS context.", &e))?;
    Ok(*INDEX.get_or_init(|| i))
}

/// `net__tls_server_ctx`: protocol versions, options, ciphers, DH
/// parameters.
fn new_context(tls: &TlsSettings, port: u16) -> Result<SslContextBuilder, TlsConfigError> {
    let mut b = SslContext::builder(SslMethod::tls_server())
        .map_err(|e| TlsConfigError::with_openssl("Error: Unable to create TLS context.", &e))?;
    // Without tls_version, Debian's mosquitto 2.0.11 refuses SSLv3 and TLS
    // 1.0 only: TLS 1.1 is then up to OpenSSL's security level.
    let old = SslOptions::NO_SSLV3 | SslOptions::NO_TLSV1;
    let versions = match tls.tls_version.as_deref() {
        None | Some("tlsv1.1") => old,
        Some("tlsv1.2") => old | SslOptions::NO_TLSV1_1,
        Some("tlsv1.3") => old | SslOptions::NO_TLSV1_1 | SslOptions::NO_TLSV1_2,
        Some(other) => {
            return Err(TlsConfigError::new(format!(
                "Error: Unsupported tls_version \"{other}\"."
            )));
        }
    };
    b.set_options(
        versions
            | SslOptions::SINGLE_DH_USE
            | SslOptions::NO_COMPRESSION
            | SslOptions::CIPHER_SERVER_PREFERENCE
            | SslOptions::NO_RENEGOTIATION,
    );
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Without it OpenSSL refuses to resume sessions once a client
    // certificate has been asked for.
    b.set_session_id_context(format!("mosquitto-{port}").as_bytes())
        .map_err(|e| TlsConfigError::with_openssl("Error: Unable to create TLS context.", &e))?;
    // mosquitto logs no OpenSSL lines for these two.
    let ciphers = tls.ciphers.as_deref().unwrap_or(DEFAULT_CIPHERS);
    b.set_cipher_list(ciphers).map_err(|_| {
        TlsConfigError::new(format!(
            "Error: Unable to set TLS ciphers. Check cipher list \"{ciphers}\"."
        ))
    })?;
    if let Some(list) = &tls.ciphers_tls13 {
        b.set_ciphersuites(list).map_err(|_| {
            TlsConfigError::new(format!(
                "Error: Unable to set TLS 1.3 ciphersuites. Check cipher_tls13 list \"{list}\"."
            ))
        })?;
    }
    if !crate::sys::openssl_ffi::set_dh_auto(&mut b) {
        return Err(TlsConfigError::with_openssl(
            "Error: Unable to create TLS context.",
            &openssl::error::ErrorStack::get(),
        ));
    }
    // The file is still read and must be acceptable to OpenSSL (a 1024-bit
    // group is too small), though the automatic group is the one used.
    if let Some(path) = &tls.dhparamfile {
        let error = || TlsConfigError::new(format!("Error loading dhparamfile \"{path}\"."));
        let pem = std::fs::read(path).map_err(|_| error())?;
        let dh = Dh::params_from_pem(&pem).map_err(|e| error().and_openssl(&e))?;
        b.set_tmp_dh(&dh).map_err(|e| error().and_openssl(&e))?;
    }
    Ok(b)
}

/// `net__tls_load_ca`: `SSL_CTX_load_verify_locations` with `cafile` and
/// `capath` (a folder of `openssl rehash` links, as OpenSSL reads it).
fn load_ca(b: &mut SslContextBuilder, tls: &TlsSettings) -> Result<(), TlsConfigError> {
    if tls.cafile.is_none() && tls.capath.is_none() {
        return Ok(());
    }
    let file = tls.cafile.as_deref().map(Path::new);
    let dir = tls.capath.as_deref().map(Path::new);
    b.load_verify_locations(file, dir).map_err(|e| {
        let message = match (&tls.cafile, &tls.capath) {
            (Some(f), Some(p)) => format!(
                "Error: Unable to load CA certificates. Check cafile \"{f}\" and capath \"{p}\"."
            ),
            (Some(f), None) => {
                format!("Error: Unable to load CA certificates. Check cafile \"{f}\".")
            }
            (None, p) => format!(
                "Error: Unable to load CA certificates. Check capath \"{}\".",
                p.as_deref().unwrap_or_default()
            ),
        };
        TlsConfigError::with_openssl(message, &e)
    })
}

/// `net__load_certificates`: client verification, the certificate chain,
/// the key (OpenSSL prompts for an encrypted key's pass phrase on the
/// terminal, as it does for mosquitto), and the CRL.
fn load_certificates(
    b: &mut SslContextBuilder,
    tls: &TlsSettings,
    certfile: &str,
    keyfile: &str,
    engine: Option<&Engine>,
) -> Result<(), TlsConfigError> {
    let mode = if tls.require_certificate {
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
    } else {
        SslVerifyMode::NONE
    };
    // mosquitto's callback accepts what OpenSSL's own checks accepted; with
    // 2.1's disable_client_cert_date_checks, also a certificate whose only
    // fault is its dates.
    if tls.disable_client_cert_date_checks {
        b.set_verify_callback(mode, |ok, store| {
            ok || matches!(
                store.error().as_raw(),
                openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED
                    | openssl_sys::X509_V_ERR_CERT_NOT_YET_VALID
            )
        });
    } else {
        b.set_verify(mode);
    }
    b.set_certificate_chain_file(certfile).map_err(|e| {
        TlsConfigError::with_openssl(
            format!("Error: Unable to load server certificate \"{certfile}\". Check certfile."),
            &e,
        )
    })?;
    match engine {
        // `tls_keyform engine` without `tls_engine`: mosquitto reads the
        // key file as PEM.
        Some(engine) if tls.keyform_engine => engine_key(b, tls, keyfile, engine)?,
        _ => b
            .set_private_key_file(keyfile, SslFiletype::PEM)
            .map_err(|e| {
                TlsConfigError::with_openssl(
                    format!("Error: Unable to load server key file \"{keyfile}\". Check keyfile."),
                    &e,
                )
            })?,
    }
    b.check_private_key().map_err(|e| {
        TlsConfigError::with_openssl("Error: Server certificate/key are inconsistent.", &e)
    })?;
    if let Some(crlfile) = &tls.crlfile {
        let error = |e: &openssl::error::ErrorStack| {
            TlsConfigError::with_openssl(
                format!(
                    "Error: Unable to load certificate revocation file \"{crlfile}\". Check crlfile."
                ),
                e,
            )
        };
        let store = b.cert_store_mut();
        let lookup = store
            .add_lookup(X509Lookup::file())
            .map_err(|e| error(&e))?;
        match lookup.load_crl_file(crlfile, SslFiletype::PEM) {
            Ok(n) if n >= 1 => {}
            Ok(_) => return Err(error(&openssl::error::ErrorStack::get())),
            Err(e) => return Err(error(&e)),
        }
        store
            .set_flags(X509VerifyFlags::CRL_CHECK)
            .map_err(|e| error(&e))?;
    }
    Ok(())
}
