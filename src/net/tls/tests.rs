//! Full handshakes in memory: a rustls client and a [`TlsLayer`] with bytes
//! shuttled between them, certificates made by rcgen for each test.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject;

use super::*;
use crate::config::model::TlsSettings;
use crate::net::layer::{Layer, LayerError};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `localhost` over `key`.
    fn server(&self, key: &KeyPair) -> String {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "broker");
        params.signed_by(key, &self.issuer).unwrap().pem()
    }

    /// A client certificate with subject C=DE, O=Home, OU=IoT, CN=`cn` (in
    /// DER order) and the given serial.
    fn client(&self, key: &KeyPair, cn: &str, serial: u64) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // CertificateParams::new puts a CN first; keep DER order C, O, OU, CN.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Home");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "IoT");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.signed_by(key, &self.issuer).unwrap().pem()
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.issuer).unwrap();
        Ca { issuer }
    }

    /// A client certificate that expired in 2021.
    fn expired_client(&self, key: &KeyPair) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "old");
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.signed_by(key, &self.issuer).unwrap().pem()
    }

    fn crl(&self, revoked: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: date_time_ymd(2024, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer: &Issuer<'_, KeyPair> = &self.issuer;
        params.signed_by(issuer).unwrap().pem().unwrap()
    }
}

/// A CA, a server certificate and key and a client certificate and key,
/// written to a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    client_cert: String,
    client_key: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("culex test CA");
        let server_key = KeyPair::generate().unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert = ca.client(&client_key, "client1", 1001);
        let pki = Pki {
            dir,
            client_cert,
            client_key: client_key.serialize_pem(),
            ca,
        };
        pki.write("ca.pem", &pki.ca.pem());
        pki.write("server.pem", &pki.ca.server(&server_key));
        pki.write("server.key", &server_key.serialize_pem());
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// certfile + keyfile only.
    fn settings(&self) -> TlsSettings {
        TlsSettings {
            certfile: Some(self.path("server.pem")),
            keyfile: Some(self.path("server.key")),
            ..TlsSettings::default()
        }
    }

    /// With cafile and require_certificate.
    fn mtls_settings(&self) -> TlsSettings {
        TlsSettings {
            cafile: Some(self.path("ca.pem")),
            require_certificate: true,
            ..self.settings()
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config_with(
    ca: &CertificateDer<'static>,
    cert: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

fn client_config(ca: &CertificateDer<'static>, cert: Option<(&str, &str)>) -> Arc<ClientConfig> {
    client_config_with(ca, cert, rustls::ALL_VERSIONS)
}

fn client(config: Arc<ClientConfig>) -> ClientConnection {
    let mut c = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    c.set_buffer_limit(None);
    c
}

/// What one shuttle run ended with.
struct Outcome {
    server: Result<(), LayerError>,
    client: Result<(), rustls::Error>,
    /// Plaintext the server layer passed up.
    up: Vec<u8>,
    /// Plaintext the client received.
    got: Vec<u8>,
}

/// Moves bytes both ways until neither side has anything to say or one
/// side fails. `chunk` splits what the client sends, to exercise partial
/// records.
fn shuttle(client: &mut ClientConnection, server: &mut TlsLayer, chunk: usize) -> Outcome {
    let mut up = Vec::new();
    let mut got = Vec::new();
    for _ in 0..50 {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        let mut down = Vec::new();
        let mut server_result = Ok(());
        for piece in to_server.chunks(chunk.max(1)) {
            server_result = server.ingest(piece, &mut up, &mut down);
            if server_result.is_err() {
                break;
            }
        }
        let client_result = deliver(client, &down, &mut got);
        if server_result.is_err() || client_result.is_err() {
            return Outcome {
                server: server_result,
                client: client_result,
                up,
                got,
            };
        }
        if to_server.is_empty() && down.is_empty() {
            break;
        }
    }
    Outcome {
        server: Ok(()),
        client: Ok(()),
        up,
        got,
    }
}

/// Feeds `bytes` to the client, appending what it decrypts to `got`.
fn deliver(
    client: &mut ClientConnection,
    mut bytes: &[u8],
    got: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).unwrap();
        client.process_new_packets()?;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = client.reader().read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    Ok(())
}

fn layer(settings: &TlsSettings) -> TlsLayer {
    TlsLayer::new(server_config(settings).unwrap()).unwrap()
}

/// MQTT 3.1.1 CONNECT, client id "c".
const CONNECT: &[u8] = &[
    0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'c',
];
const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];

#[test]
fn handshake_and_application_data_both_ways() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut client = client(client_config(&pki.ca.der(), None));
    client.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut client, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert!(out.client.is_ok());
    assert!(!server.is_handshaking());
    assert_eq!(out.up, CONNECT);
    assert!(server.negotiated().unwrap().starts_with("TLSv1.3 "));
    assert_eq!(server.peer_identity(), None);

    let mut down = Vec::new();
    server.send(CONNACK, &mut down).unwrap();
    assert!(!down.is_empty());
    assert!(!down.windows(CONNACK.len()).any(|w| w == CONNACK));
    let mut got = Vec::new();
    deliver(&mut client, &down, &mut got).unwrap();
    assert_eq!(got, CONNACK);
}

#[test]
fn large_payloads_and_byte_at_a_time_input() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut client = client(client_config(&pki.ca.der(), None));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client.writer().write_all(&big[..1000]).unwrap();
    // The handshake and first record one byte per ingest call.
    let out = shuttle(&mut client, &mut server, 1);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, &big[..1000]);
    client.writer().write_all(&big).unwrap();
    let out = shuttle(&mut client, &mut server, 1500);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, big);

    let mut down = Vec::new();
    server.send(&big, &mut down).unwrap();
    let mut got = Vec::new();
    deliver(&mut client, &down, &mut got).unwrap();
    assert_eq!(got, big);
}

#[test]
fn data_sent_before_the_handshake_completes_is_buffered() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut down = Vec::new();
    server.send(b"early", &mut down).unwrap();
    assert!(down.is_empty());
    let mut client = client(client_config(&pki.ca.der(), None));
    let out = shuttle(&mut client, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.got, b"early");
}

#[test]
fn tls12_is_negotiated_and_tls_version_13_refuses_it() {
    let pki = Pki::new();
    let tls12 = client_config_with(&pki.ca.der(), None, &[&rustls::version::TLS12]);
    let mut server = layer(&pki.settings());
    let mut c = client(tls12.clone());
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    assert!(server.negotiated().unwrap().starts_with("TLSv1.2 "));

    let settings = TlsSettings {
        tls_version: Some("tlsv1.3".into()),
        ..pki.settings()
    };
    let mut server = layer(&settings);
    let out = shuttle(&mut client(tls12), &mut server, usize::MAX);
    let Err(LayerError::Tls(text)) = out.server else {
        panic!("expected a TLS error, got {:?}", out.server);
    };
    assert!(text.contains("no common TLS parameters"), "{text}");
    assert!(out.client.is_err());
}

#[test]
fn ciphers_restrict_the_negotiated_suite() {
    let pki = Pki::new();
    let settings = TlsSettings {
        ciphers: Some("ECDHE-ECDSA-CHACHA20-POLY1305".into()),
        ciphers_tls13: Some("TLS_CHACHA20_POLY1305_SHA256".into()),
        ..pki.settings()
    };
    let tls12 = client_config_with(&pki.ca.der(), None, &[&rustls::version::TLS12]);
    let mut server = layer(&settings);
    let out = shuttle(&mut client(tls12), &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(
        server.negotiated().unwrap(),
        "TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    );
    let mut server = layer(&settings);
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), None)),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
    assert_eq!(
        server.negotiated().unwrap(),
        "TLSv1.3 TLS13_CHACHA20_POLY1305_SHA256"
    );
}

#[test]
fn require_certificate_refuses_a_client_without_one() {
    let pki = Pki::new();
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(client_config(&pki.ca.der(), None));
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    let Err(LayerError::Tls(text)) = out.server else {
        panic!("expected a TLS error, got {:?}", out.server);
    };
    assert!(text.contains("no certificate"), "{text}");
    assert!(out.up.is_empty());
    assert_eq!(server.peer_identity(), None);
}

#[test]
fn require_certificate_accepts_a_valid_one_and_reads_its_identity() {
    let pki = Pki::new();
    let mut server = layer(&pki.mtls_settings());
    let cert = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let mut c = client(client_config(&pki.ca.der(), cert));
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    let id = server.peer_identity().unwrap();
    assert_eq!(id.common_name.as_deref(), Some("client1"));
    assert_eq!(id.subject, "CN=client1,OU=IoT,O=Home,C=DE");
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Ca::new("someone else's CA");
    let key = KeyPair::generate().unwrap();
    let cert = other.client(&key, "intruder", 7);
    let key = key.serialize_pem();
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(client_config(&pki.ca.der(), Some((&cert, &key))));
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    let Err(LayerError::Tls(text)) = out.server else {
        panic!("expected a TLS error, got {:?}", out.server);
    };
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(out.up.is_empty());
    assert_eq!(server.peer_identity(), None);
}

#[test]
fn an_expired_client_certificate_is_refused() {
    let pki = Pki::new();
    let key = KeyPair::generate().unwrap();
    let cert = pki.ca.expired_client(&key);
    let key = key.serialize_pem();
    let mut server = layer(&pki.mtls_settings());
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), Some((&cert, &key)))),
        &mut server,
        usize::MAX,
    );
    let Err(LayerError::Tls(text)) = out.server else {
        panic!("expected a TLS error, got {:?}", out.server);
    };
    assert!(text.contains("Expired"), "{text}");
}

#[test]
fn client_certificates_work_over_tls12_too() {
    let pki = Pki::new();
    let mut server = layer(&pki.mtls_settings());
    let cert = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let config = client_config_with(&pki.ca.der(), cert, &[&rustls::version::TLS12]);
    let mut c = client(config);
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    assert!(server.negotiated().unwrap().starts_with("TLSv1.2 "));
    assert_eq!(
        server.peer_identity().unwrap().subject,
        "CN=client1,OU=IoT,O=Home,C=DE"
    );
}

#[test]
fn certfile_chains_and_intermediate_client_cas() {
    // certfile: server certificate then the intermediate that issued it;
    // the client trusts only the root.
    let pki = Pki::new();
    let intermediate = pki.ca.intermediate("culex intermediate");
    let key = KeyPair::generate().unwrap();
    let chain = intermediate.server(&key) + &intermediate.pem();
    pki.write("chain.pem", &chain);
    pki.write("chain.key", &key.serialize_pem());
    // Clients with certificates from the intermediate; cafile has both.
    pki.write("cas.pem", &(pki.ca.pem() + &intermediate.pem()));
    let settings = TlsSettings {
        certfile: Some(pki.path("chain.pem")),
        keyfile: Some(pki.path("chain.key")),
        cafile: Some(pki.path("cas.pem")),
        ..pki.mtls_settings()
    };
    let ckey = KeyPair::generate().unwrap();
    let ccert = intermediate.client(&ckey, "leaf", 9);
    let ckey = ckey.serialize_pem();
    let mut server = layer(&settings);
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), Some((&ccert, &ckey)))),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
    assert!(out.client.is_ok());
    assert_eq!(
        server.peer_identity().unwrap().common_name.as_deref(),
        Some("leaf")
    );
}

#[test]
fn a_leaf_only_certfile_is_completed_from_the_cafile() {
    // mosquitto's own 08-ssl-* setup: certfile holds only the leaf, the
    // intermediate and the root are in cafile, the client trusts the root.
    let pki = Pki::new();
    let intermediate = pki.ca.intermediate("culex intermediate");
    let key = KeyPair::generate().unwrap();
    pki.write("leaf.pem", &intermediate.server(&key));
    pki.write("leaf.key", &key.serialize_pem());
    pki.write("all-ca.pem", &(pki.ca.pem() + &intermediate.pem()));
    let settings = TlsSettings {
        certfile: Some(pki.path("leaf.pem")),
        keyfile: Some(pki.path("leaf.key")),
        cafile: Some(pki.path("all-ca.pem")),
        require_certificate: false,
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), None)),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
    assert!(out.client.is_ok(), "{:?}", out.client);
}

#[test]
fn without_require_certificate_no_client_certificate_is_asked_for() {
    // mosquitto: SSL_VERIFY_NONE unless require_certificate, even with a
    // cafile; a client certificate from anywhere does not matter.
    let pki = Pki::new();
    let settings = TlsSettings {
        require_certificate: false,
        ..pki.mtls_settings()
    };
    let other = Ca::new("someone else's CA");
    let key = KeyPair::generate().unwrap();
    let cert = other.client(&key, "stranger", 8);
    let key = key.serialize_pem();
    let mut server = layer(&settings);
    let mut c = client(client_config(&pki.ca.der(), Some((&cert, &key))));
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    assert_eq!(server.peer_identity(), None);
}

#[test]
fn crlfile_refuses_revoked_client_certificates() {
    let pki = Pki::new();
    let good_key = KeyPair::generate().unwrap();
    let good = pki.ca.client(&good_key, "good", 2002);
    let good_key = good_key.serialize_pem();
    let settings = TlsSettings {
        crlfile: Some(pki.write("crl.pem", &pki.ca.crl(&[1001]))),
        ..pki.mtls_settings()
    };
    let config = server_config(&settings).unwrap();

    let mut server = TlsLayer::new(config.clone()).unwrap();
    let revoked = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), revoked)),
        &mut server,
        usize::MAX,
    );
    let Err(LayerError::Tls(text)) = out.server else {
        panic!("expected a TLS error, got {:?}", out.server);
    };
    assert!(text.contains("Revoked"), "{text}");

    let mut server = TlsLayer::new(config).unwrap();
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), Some((&good, &good_key)))),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
    assert_eq!(
        server.peer_identity().unwrap().common_name.as_deref(),
        Some("good")
    );
}

#[test]
fn capath_loads_every_certificate_file_and_skips_the_rest() {
    let pki = Pki::new();
    let dir = pki.dir.path().join("certs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("5a3f0c1e.0"), pki.ca.pem()).unwrap();
    std::fs::write(dir.join("README"), "not a certificate\n").unwrap();
    std::fs::write(dir.join("other.pem"), Ca::new("other").pem()).unwrap();
    let settings = TlsSettings {
        cafile: None,
        capath: Some(dir.to_string_lossy().into_owned()),
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let cert = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), cert)),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
    assert!(server.peer_identity().is_some());

    // An empty capath with require_certificate is an error.
    let empty = pki.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let settings = TlsSettings {
        capath: Some(empty.to_string_lossy().into_owned()),
        ..settings
    };
    let err = server_config(&settings).unwrap_err();
    assert!(matches!(err, TlsConfigError::NoCa { capath: Some(_) }));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

/// A server certificate for the fixture key `pkcs8` (the public half), with
/// `keyfile` pointing at `keyfile` (the same key in another encoding).
fn handshake_with_key_file(pkcs8: &str, keyfile: &str) {
    let pki = Pki::new();
    let key_pem = std::fs::read_to_string(fixture(pkcs8)).unwrap();
    let key = KeyPair::from_pem(&key_pem).unwrap();
    pki.write("server.pem", &pki.ca.server(&key));
    let settings = TlsSettings {
        keyfile: Some(fixture(keyfile).to_string_lossy().into_owned()),
        ..pki.settings()
    };
    let mut server = layer(&settings);
    let mut c = client(client_config(&pki.ca.der(), None));
    c.writer().write_all(CONNECT).unwrap();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Ok(()), "{keyfile}");
    assert_eq!(out.up, CONNECT, "{keyfile}");
}

#[test]
fn key_formats_pkcs8_pkcs1_rsa_and_sec1_ec() {
    handshake_with_key_file("rsa-pkcs8.key", "rsa-pkcs8.key");
    handshake_with_key_file("rsa-pkcs8.key", "rsa-pkcs1.key");
    handshake_with_key_file("ec-pkcs8.key", "ec-pkcs8.key");
    handshake_with_key_file("ec-pkcs8.key", "ec-sec1.key");
}

#[test]
fn close_sends_close_notify_and_a_client_close_is_reported() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut c = client(client_config(&pki.ca.der(), None));
    assert_eq!(shuttle(&mut c, &mut server, usize::MAX).server, Ok(()));
    let mut down = Vec::new();
    server.close(&mut down);
    assert!(!down.is_empty());
    c.read_tls(&mut &down[..]).unwrap();
    let state = c.process_new_packets().unwrap();
    assert!(state.peer_has_closed());

    let mut server = layer(&pki.settings());
    let mut c = client(client_config(&pki.ca.der(), None));
    assert_eq!(shuttle(&mut c, &mut server, usize::MAX).server, Ok(()));
    c.writer().write_all(b"last words").unwrap();
    c.send_close_notify();
    let out = shuttle(&mut c, &mut server, usize::MAX);
    assert_eq!(out.server, Err(LayerError::Closed));
    assert_eq!(out.up, b"last words");
}

#[test]
fn plain_mqtt_on_a_tls_listener_is_not_tls() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let err = server.ingest(CONNECT, &mut up, &mut down).unwrap_err();
    let LayerError::Tls(text) = err else {
        panic!("{err:?}");
    };
    assert!(text.contains("not TLS"), "{text}");
    assert!(text.contains("MQTT CONNECT"), "{text}");
    assert!(up.is_empty());

    // A handshake record type with a non-TLS body is refused too.
    let mut server = layer(&pki.settings());
    let err = server
        .ingest(
            &[0x16, 0x10, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5],
            &mut up,
            &mut down,
        )
        .unwrap_err();
    assert!(matches!(err, LayerError::Tls(_)));
}

#[test]
fn garbage_input_never_panics() {
    let pki = Pki::new();
    let config = server_config(&pki.settings()).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // A real ClientHello to corrupt.
    let mut c = client(client_config(&pki.ca.der(), None));
    let mut hello = Vec::new();
    c.write_tls(&mut hello).unwrap();
    for round in 0..300 {
        let mut server = TlsLayer::new(config.clone()).unwrap();
        let mut input: Vec<u8> = if round % 2 == 0 {
            let len = (next() % 600) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 4 == 0 && v.len() >= 2 {
                v[0] = 0x16;
                v[1] = 0x03;
            }
            v
        } else {
            let mut v = hello.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % v.len();
                v[i] = next() as u8;
            }
            v
        };
        if round % 5 == 0 {
            input.truncate((next() as usize) % (input.len() + 1));
        }
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for piece in input.chunks(1 + (next() % 64) as usize) {
            if server.ingest(piece, &mut up, &mut down).is_err() {
                break;
            }
        }
        let _ = server.send(b"x", &mut down);
        server.close(&mut down);
        let _ = server.peer_identity();
    }
}

#[test]
fn looks_like_tls_recognises_a_client_hello() {
    let pki = Pki::new();
    let mut c = client(client_config(&pki.ca.der(), None));
    let mut hello = Vec::new();
    c.write_tls(&mut hello).unwrap();
    assert!(looks_like_tls(&hello));
    assert!(looks_like_tls(&hello[..1]));
    assert!(!looks_like_tls(CONNECT));
    assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_tls(&[]));
    assert!(!looks_like_tls(&[0x16, 0x00]));
}

// ---- configuration errors ------------------------------------------------

fn config_error(settings: &TlsSettings) -> TlsConfigError {
    let err = server_config(settings).unwrap_err();
    assert!(err.to_string().starts_with("Error: "), "{err}");
    err
}

#[test]
fn missing_files_name_the_directive_and_path() {
    let pki = Pki::new();
    let missing = pki.path("nope.pem");
    for (directive, settings) in [
        (
            "certfile",
            TlsSettings {
                certfile: Some(missing.clone()),
                ..pki.settings()
            },
        ),
        (
            "keyfile",
            TlsSettings {
                keyfile: Some(missing.clone()),
                ..pki.settings()
            },
        ),
        (
            "cafile",
            TlsSettings {
                cafile: Some(missing.clone()),
                ..pki.mtls_settings()
            },
        ),
        (
            "capath",
            TlsSettings {
                capath: Some(missing.clone()),
                ..pki.mtls_settings()
            },
        ),
        (
            "crlfile",
            TlsSettings {
                crlfile: Some(missing.clone()),
                ..pki.mtls_settings()
            },
        ),
        (
            "dhparamfile",
            TlsSettings {
                dhparamfile: Some(missing.clone()),
                ..pki.settings()
            },
        ),
    ] {
        let err = config_error(&settings);
        let text = err.to_string();
        assert!(
            matches!(&err, TlsConfigError::Io { directive: d, .. } if *d == directive),
            "{text}"
        );
        assert_eq!(
            text,
            format!("Error: Unable to read {directive} \"{missing}\": No such file or directory.")
        );
    }
}

#[test]
fn certfile_without_keyfile_and_the_reverse() {
    let pki = Pki::new();
    let err = config_error(&TlsSettings {
        keyfile: None,
        ..pki.settings()
    });
    assert_eq!(err, TlsConfigError::Incomplete { missing: "keyfile" });
    let err = config_error(&TlsSettings {
        certfile: None,
        ..pki.settings()
    });
    assert_eq!(
        err,
        TlsConfigError::Incomplete {
            missing: "certfile"
        }
    );
    assert!(!tls_configured(&TlsSettings::default()));
    assert!(tls_configured(&pki.settings()));
}

#[test]
fn bad_pem_is_reported() {
    let pki = Pki::new();
    let bad = pki.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
    );
    let err = config_error(&TlsSettings {
        certfile: Some(bad.clone()),
        ..pki.settings()
    });
    assert!(
        matches!(
            &err,
            TlsConfigError::Pem {
                directive: "certfile",
                ..
            }
        ),
        "{err}"
    );
    let truncated = pki.write("trunc.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let err = config_error(&TlsSettings {
        cafile: Some(truncated),
        ..pki.mtls_settings()
    });
    assert!(
        matches!(
            &err,
            TlsConfigError::Pem {
                directive: "cafile",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("END CERTIFICATE"), "{err}");

    let empty = pki.write("empty.pem", "just text\n");
    let err = config_error(&TlsSettings {
        certfile: Some(empty.clone()),
        ..pki.settings()
    });
    assert!(matches!(
        &err,
        TlsConfigError::Empty {
            directive: "certfile",
            ..
        }
    ));
    let err = config_error(&TlsSettings {
        keyfile: Some(empty.clone()),
        ..pki.settings()
    });
    assert!(matches!(
        &err,
        TlsConfigError::Empty {
            directive: "keyfile",
            ..
        }
    ));
    // A certificate where the key should be.
    let err = config_error(&TlsSettings {
        keyfile: Some(pki.path("server.pem")),
        ..pki.settings()
    });
    assert!(matches!(
        &err,
        TlsConfigError::Empty {
            directive: "keyfile",
            ..
        }
    ));
    let err = config_error(&TlsSettings {
        crlfile: Some(empty),
        ..pki.mtls_settings()
    });
    assert!(matches!(
        &err,
        TlsConfigError::Empty {
            directive: "crlfile",
            ..
        }
    ));
}

#[test]
fn encrypted_and_mismatched_keys_are_refused() {
    let pki = Pki::new();
    let err = config_error(&TlsSettings {
        keyfile: Some(fixture("ec-encrypted.key").to_string_lossy().into_owned()),
        ..pki.settings()
    });
    assert!(matches!(err, TlsConfigError::EncryptedKey { .. }), "{err}");
    assert!(err.to_string().contains("encrypted"));

    let err = config_error(&TlsSettings {
        keyfile: Some(fixture("ec-pkcs8.key").to_string_lossy().into_owned()),
        ..pki.settings()
    });
    assert!(matches!(err, TlsConfigError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("Error: Server certificate/key are inconsistent")
    );
}

#[test]
fn unsupported_ciphers_are_named() {
    let pki = Pki::new();
    let err = config_error(&TlsSettings {
        ciphers: Some("DHE-RSA-AES256-SHA:AES128-SHA".into()),
        ..pki.settings()
    });
    assert_eq!(
        err.to_string(),
        "Error: Unable to set TLS ciphers. Check ciphers \"DHE-RSA-AES256-SHA:AES128-SHA\": \
         not supported by culex's TLS library (rustls): DHE-RSA-AES256-SHA, AES128-SHA."
    );
    let err = config_error(&TlsSettings {
        ciphers_tls13: Some("TLS_AES_128_CCM_8_SHA256".into()),
        ..pki.settings()
    });
    assert!(
        matches!(
            &err,
            TlsConfigError::Ciphers {
                directive: "ciphers_tls1.3",
                ..
            }
        ),
        "{err}"
    );
    // Mixed lists and keywords are accepted.
    for list in [
        "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256",
        "HIGH:!aNULL:!MD5",
        "DEFAULT:!aNULL:!eNULL:!LOW:!EXPORT:!SSLv2:@STRENGTH",
    ] {
        server_config(&TlsSettings {
            ciphers: Some(list.into()),
            ..pki.settings()
        })
        .unwrap();
    }
}

#[test]
fn old_tls_versions_and_psk_are_refused() {
    let pki = Pki::new();
    for version in ["tlsv1.1", "tlsv1"] {
        let err = config_error(&TlsSettings {
            tls_version: Some(version.into()),
            ..pki.settings()
        });
        assert!(err.to_string().contains("TLS 1.2 and 1.3 only"), "{err}");
    }
    let err = config_error(&TlsSettings {
        tls_version: Some("sslv3".into()),
        ..pki.settings()
    });
    assert_eq!(
        err.to_string(),
        "Error: Unsupported tls_version \"sslv3\" (use tlsv1.2 or tlsv1.3)."
    );
    server_config(&TlsSettings {
        tls_version: Some("tlsv1.2".into()),
        ..pki.settings()
    })
    .unwrap();

    let err = config_error(&TlsSettings {
        psk_hint: Some("hint".into()),
        ..pki.settings()
    });
    assert_eq!(err, TlsConfigError::PskUnsupported);
    let err = config_error(&TlsSettings {
        psk_hint: Some("hint".into()),
        ..TlsSettings::default()
    });
    assert_eq!(err, TlsConfigError::PskUnsupported);
}

#[test]
fn require_certificate_without_a_ca_and_a_bad_crl() {
    let pki = Pki::new();
    let err = config_error(&TlsSettings {
        require_certificate: true,
        ..pki.settings()
    });
    assert_eq!(err, TlsConfigError::NoCa { capath: None });

    let bogus = pki.write(
        "bogus-crl.pem",
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    );
    let err = config_error(&TlsSettings {
        crlfile: Some(bogus),
        ..pki.mtls_settings()
    });
    assert!(matches!(err, TlsConfigError::InvalidCrl { .. }), "{err}");
}

#[test]
fn dhparamfile_is_accepted_and_unused() {
    let pki = Pki::new();
    let dh = pki.write(
        "dh.pem",
        "-----BEGIN DH PARAMETERS-----\nMAYCAQACAQI=\n-----END DH PARAMETERS-----\n",
    );
    server_config(&TlsSettings {
        dhparamfile: Some(dh),
        ..pki.settings()
    })
    .unwrap();
}

#[test]
fn a_reload_picks_up_a_new_certificate() {
    let pki = Pki::new();
    let first = server_config(&pki.settings()).unwrap();
    let key = KeyPair::generate().unwrap();
    pki.write("server.pem", &pki.ca.server(&key));
    pki.write("server.key", &key.serialize_pem());
    let second = server_config(&pki.settings()).unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    let mut server = TlsLayer::new(second).unwrap();
    let out = shuttle(
        &mut client(client_config(&pki.ca.der(), None)),
        &mut server,
        usize::MAX,
    );
    assert_eq!(out.server, Ok(()));
}
