//! Full handshakes in memory: culex's server [`TlsLayer`] against an
//! OpenSSL client session (a [`TlsLayer`] on the client side), with
//! certificates made by rcgen for each test and files written as users
//! write them.

use std::path::PathBuf;

use openssl::ssl::{Ssl, SslContext, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber, date_time_ymd,
};

use super::layer::Side;
use super::*;
use crate::auth::psk_file::PskKeys;
use crate::config::model::TlsSettings;
use crate::net::layer::{Layer, LayerError, PeerIdentity};

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

/// How a test client is set up.
#[derive(Default)]
struct ClientOpts<'a> {
    /// Trust this CA PEM file (verification on).
    ca: Option<String>,
    /// Client certificate and key files.
    cert: Option<(String, String)>,
    ciphers: Option<&'a str>,
    max_version: Option<SslVersion>,
    psk: Option<(&'a str, Vec<u8>)>,
}

fn client(opts: ClientOpts<'_>) -> TlsLayer {
    let mut b = SslContext::builder(SslMethod::tls_client()).unwrap();
    match &opts.ca {
        Some(ca) => {
            b.set_ca_file(ca).unwrap();
            b.set_verify(SslVerifyMode::PEER);
        }
        None => b.set_verify(SslVerifyMode::NONE),
    }
    if let Some((cert, key)) = &opts.cert {
        b.set_certificate_chain_file(cert).unwrap();
        b.set_private_key_file(key, SslFiletype::PEM).unwrap();
    }
    if let Some(c) = opts.ciphers {
        b.set_cipher_list(c).unwrap();
    }
    if let Some(v) = opts.max_version {
        b.set_max_proto_version(Some(v)).unwrap();
    }
    if let Some((identity, key)) = opts.psk {
        let identity = identity.as_bytes().to_vec();
        b.set_psk_client_callback(move |_, _, id_out, key_out| {
            id_out[..identity.len()].copy_from_slice(&identity);
            id_out[identity.len()] = 0;
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
    }
    let ctx = b.build();
    let mut ssl = Ssl::new(&ctx).unwrap();
    ssl.set_hostname("localhost").unwrap();
    TlsLayer::new(ssl, Side::Client).unwrap()
}

/// What one shuttle run ended with.
struct Outcome {
    server: Result<(), LayerError>,
    client: Result<(), LayerError>,
    /// Plaintext the server layer passed up.
    up: Vec<u8>,
    /// Plaintext the client received.
    got: Vec<u8>,
}

/// Sends `first` from the client, then moves bytes both ways until neither
/// side has anything to say or one side fails. `chunk` splits what the
/// client sends, to exercise partial records.
fn shuttle(client: &mut TlsLayer, server: &mut TlsLayer, first: &[u8], chunk: usize) -> Outcome {
    let mut up = Vec::new();
    let mut got = Vec::new();
    let mut to_server = Vec::new();
    client.send(first, &mut to_server).unwrap();
    for _ in 0..50 {
        let mut down = Vec::new();
        let mut server_result = Ok(());
        for piece in to_server.chunks(chunk.max(1)) {
            server_result = server.ingest(piece, &mut up, &mut down);
            if server_result.is_err() {
                break;
            }
        }
        let mut next = Vec::new();
        let client_result = if down.is_empty() {
            Ok(())
        } else {
            client.ingest(&down, &mut got, &mut next)
        };
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
        to_server = next;
    }
    Outcome {
        server: Ok(()),
        client: Ok(()),
        up,
        got,
    }
}

fn layer(settings: &TlsSettings) -> TlsLayer {
    TlsLayer::server(&server_context(settings, 8883, None).unwrap()).unwrap()
}

/// MQTT 3.1.1 CONNECT, client id "c".
const CONNECT: &[u8] = &[
    0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'c',
];
const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];

fn trusting(pki: &Pki) -> ClientOpts<'static> {
    ClientOpts {
        ca: Some(pki.path("ca.pem")),
        ..ClientOpts::default()
    }
}

fn with_client_cert(pki: &Pki) -> ClientOpts<'static> {
    let cert = pki.write("client.pem", &pki.client_cert);
    let key = pki.write("client.key", &pki.client_key);
    ClientOpts {
        cert: Some((cert, key)),
        ..trusting(pki)
    }
}

fn tls_error(r: &Result<(), LayerError>) -> String {
    match r {
        Err(LayerError::Tls(text)) => text.clone(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn handshake_and_application_data_both_ways() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut client = client(trusting(&pki));
    let out = shuttle(&mut client, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.client, Ok(()));
    assert!(!server.is_handshaking());
    assert_eq!(out.up, CONNECT);
    let mut down = Vec::new();
    server.send(CONNACK, &mut down).unwrap();
    let (mut got, mut back) = (Vec::new(), Vec::new());
    client.ingest(&down, &mut got, &mut back).unwrap();
    assert_eq!(got, CONNACK);
    assert!(server.negotiated().unwrap().starts_with("TLSv1.3 "));
    assert_eq!(server.peer_identity(), None);
}

#[test]
fn large_payloads_and_byte_at_a_time_input() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut client = client(trusting(&pki));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = shuttle(&mut client, &mut server, &big, 1);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up.len(), big.len());
    assert_eq!(out.up, big);
}

#[test]
fn data_sent_before_the_handshake_completes_is_buffered() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut client = client(trusting(&pki));
    // The server answers before it has seen a byte: kept until established.
    let mut down = Vec::new();
    server.send(CONNACK, &mut down).unwrap();
    assert!(down.is_empty());
    let out = shuttle(&mut client, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.up, CONNECT);
    assert_eq!(out.got, CONNACK);
}

#[test]
fn cipher_strings_go_to_openssl_as_written() {
    let pki = Pki::new();
    // rcgen's keys are ECDSA P-256: a TLS 1.2 CBC suite of the ESP8266 era.
    let settings = TlsSettings {
        ciphers: Some("ECDHE-ECDSA-AES128-SHA".into()),
        ..pki.settings()
    };
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        max_version: Some(SslVersion::TLS1_2),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(
        server.negotiated().as_deref(),
        Some("TLSv1.2 ECDHE-ECDSA-AES128-SHA")
    );
    // A client offering only something else gets OpenSSL's refusal.
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        max_version: Some(SslVersion::TLS1_2),
        ciphers: Some("ECDHE-ECDSA-AES256-GCM-SHA384"),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("no shared cipher"));
}

#[test]
fn require_certificate_refuses_a_client_without_one() {
    let pki = Pki::new();
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(trusting(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(
        tls_error(&out.server),
        "error:0A0000C7:SSL routines::peer did not return a certificate"
    );
    assert!(out.up.is_empty());
}

#[test]
fn a_valid_client_certificate_gives_the_identity_as_mosquitto_reads_it() {
    let pki = Pki::new();
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(with_client_cert(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    assert_eq!(
        server.peer_identity(),
        Some(PeerIdentity::Certificate {
            common_name: Some("client1".into()),
            subject: Some("CN=client1,OU=IoT,O=Home,C=DE".into()),
        })
    );
}

#[test]
fn a_client_certificate_from_another_ca_or_expired_is_refused() {
    let pki = Pki::new();
    let other = Ca::new("another CA");
    let key = KeyPair::generate().unwrap();
    let cert = pki.write("rogue.pem", &other.client(&key, "client1", 7));
    let keyfile = pki.write("rogue.key", &key.serialize_pem());
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(ClientOpts {
        cert: Some((cert, keyfile.clone())),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(
        tls_error(&out.server),
        "error:0A000086:SSL routines::certificate verify failed"
    );
    let cert = pki.write("old.pem", &pki.ca.expired_client(&key));
    let mut server = layer(&pki.mtls_settings());
    let mut c = client(ClientOpts {
        cert: Some((cert, keyfile)),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("certificate verify failed"));
}

#[test]
fn a_leaf_only_certfile_is_completed_from_the_cafile() {
    let pki = Pki::new();
    let inter = pki.ca.intermediate("intermediate");
    let key = KeyPair::generate().unwrap();
    pki.write("leaf.pem", &inter.server(&key));
    pki.write("leaf.key", &key.serialize_pem());
    pki.write("cas.pem", &format!("{}{}", inter.pem(), pki.ca.pem()));
    let settings = TlsSettings {
        certfile: Some(pki.path("leaf.pem")),
        keyfile: Some(pki.path("leaf.key")),
        cafile: Some(pki.path("cas.pem")),
        ..TlsSettings::default()
    };
    let mut server = layer(&settings);
    // The client trusts only the root: the intermediate must be sent.
    let mut c = client(trusting(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.client, Ok(()));
    assert_eq!(out.up, CONNECT);
}

#[test]
fn crlfile_refuses_revoked_client_certificates() {
    let pki = Pki::new();
    let settings = TlsSettings {
        crlfile: Some(pki.write("crl.pem", &pki.ca.crl(&[1001]))),
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let mut c = client(with_client_cert(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("certificate verify failed"));
    let settings = TlsSettings {
        crlfile: Some(pki.write("crl2.pem", &pki.ca.crl(&[4242]))),
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let mut c = client(with_client_cert(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
}

#[test]
fn capath_needs_openssls_hashed_names() {
    let pki = Pki::new();
    let dir = pki.dir.path().join("cas");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), pki.ca.pem()).unwrap();
    let settings = TlsSettings {
        cafile: None,
        capath: Some(dir.to_string_lossy().into_owned()),
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let mut c = client(with_client_cert(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("certificate verify failed"));
    // What `openssl rehash` makes: <subject hash>.0 → the file.
    let ca = openssl::x509::X509::from_pem(pki.ca.pem().as_bytes()).unwrap();
    let hash = ca.subject_name_hash();
    std::os::unix::fs::symlink("ca.pem", dir.join(format!("{hash:08x}.0"))).unwrap();
    let mut server = layer(&settings);
    let mut c = client(with_client_cert(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

#[test]
fn rsa_and_ec_keys_in_every_pem_form_load() {
    for key in [
        "rsa-pkcs1.key",
        "rsa-pkcs8.key",
        "ec-sec1.key",
        "ec-pkcs8.key",
    ] {
        let pki = Pki::new();
        let keyfile = fixture(key).to_string_lossy().into_owned();
        let pkey =
            openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&keyfile).unwrap()).unwrap();
        let der = pkey.private_key_to_pkcs8().unwrap();
        let kp = KeyPair::try_from(der.as_slice()).unwrap();
        pki.write("server.pem", &pki.ca.server(&kp));
        let settings = TlsSettings {
            keyfile: Some(keyfile),
            ..pki.settings()
        };
        let mut server = layer(&settings);
        let mut c = client(trusting(&pki));
        let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
        assert_eq!(out.server, Ok(()), "{key}");
        assert_eq!(out.up, CONNECT, "{key}");
    }
}

#[test]
fn close_sends_close_notify_and_a_client_close_is_reported() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let mut c = client(trusting(&pki));
    shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    let mut down = Vec::new();
    c.close(&mut down);
    assert!(!down.is_empty());
    let (mut up, mut back) = (Vec::new(), Vec::new());
    assert_eq!(
        server.ingest(&down, &mut up, &mut back),
        Err(LayerError::Closed)
    );
}

#[test]
fn plain_mqtt_on_a_tls_listener_gets_openssls_reason() {
    let pki = Pki::new();
    let mut server = layer(&pki.settings());
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let r = server.ingest(CONNECT, &mut up, &mut down);
    assert_eq!(
        tls_error(&r),
        "error:0A00010B:SSL routines::wrong version number"
    );
    assert!(up.is_empty());
}

#[test]
fn garbage_input_never_panics() {
    let pki = Pki::new();
    let ctx = server_context(&pki.settings(), 8883, None).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..300 {
        let mut server = TlsLayer::server(&ctx).unwrap();
        let mut bytes = vec![0x16, 0x03, 0x01];
        for _ in 0..(round % 64) * 8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let _ = server.ingest(&bytes, &mut up, &mut down);
        assert!(up.is_empty());
    }
    assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
    assert!(!looks_like_tls(CONNECT));
}

fn config_error(settings: &TlsSettings) -> Vec<String> {
    server_context(settings, 8883, None).unwrap_err().lines()
}

#[test]
fn broken_files_get_mosquittos_line_then_openssls() {
    let pki = Pki::new();
    let lines = config_error(&TlsSettings {
        certfile: Some(pki.path("missing.pem")),
        ..pki.settings()
    });
    assert_eq!(
        lines[0],
        format!(
            "Error: Unable to load server certificate \"{}\". Check certfile.",
            pki.path("missing.pem")
        )
    );
    assert_eq!(
        lines[1],
        "OpenSSL Error[0]: error:80000002:system library::No such file or directory"
    );
    let lines = config_error(&TlsSettings {
        keyfile: Some(pki.path("ca.pem")),
        ..pki.settings()
    });
    assert_eq!(
        lines[0],
        format!(
            "Error: Unable to load server key file \"{}\". Check keyfile.",
            pki.path("ca.pem")
        )
    );
    let other = KeyPair::generate().unwrap();
    let lines = config_error(&TlsSettings {
        keyfile: Some(pki.write("other.key", &other.serialize_pem())),
        ..pki.settings()
    });
    // SSL_CTX_use_PrivateKey_file already compares it with the certificate.
    assert!(lines[0].starts_with("Error: Unable to load server key file"));
    assert!(
        lines.iter().any(|l| l.ends_with("key values mismatch")),
        "{lines:?}"
    );
    let lines = config_error(&TlsSettings {
        cafile: Some(pki.path("nope.pem")),
        ..pki.settings()
    });
    assert_eq!(
        lines[0],
        format!(
            "Error: Unable to load CA certificates. Check cafile \"{}\".",
            pki.path("nope.pem")
        )
    );
    let lines = config_error(&TlsSettings {
        crlfile: Some(pki.path("ca.pem")),
        ..pki.mtls_settings()
    });
    assert!(lines[0].starts_with("Error: Unable to load certificate revocation file"));
    let lines = config_error(&TlsSettings {
        keyfile: None,
        ..pki.settings()
    });
    assert!(lines[0].contains("keyfile is missing"), "{lines:?}");
}

#[test]
fn bad_cipher_lists_and_versions_are_refused_as_mosquitto_refuses_them() {
    let pki = Pki::new();
    let lines = config_error(&TlsSettings {
        ciphers: Some("NOT-A-CIPHER".into()),
        ..pki.settings()
    });
    assert_eq!(
        lines[0],
        "Error: Unable to set TLS ciphers. Check cipher list \"NOT-A-CIPHER\"."
    );
    // mosquitto prints no OpenSSL lines here.
    assert_eq!(lines.len(), 1, "{lines:?}");
    let lines = config_error(&TlsSettings {
        ciphers_tls13: Some("TLS_NOPE".into()),
        ..pki.settings()
    });
    assert!(lines[0].starts_with("Error: Unable to set TLS 1.3 ciphersuites."));
    let lines = config_error(&TlsSettings {
        tls_version: Some("tlsv1.0".into()),
        ..pki.settings()
    });
    assert_eq!(lines, vec!["Error: Unsupported tls_version \"tlsv1.0\"."]);
    // What OpenSSL accepts starts, whatever its security level then allows.
    for (v, c) in [("tlsv1.1", "DEFAULT@SECLEVEL=0"), ("tlsv1.3", "AES128-SHA")] {
        let settings = TlsSettings {
            tls_version: Some(v.into()),
            ciphers: Some(c.into()),
            ..pki.settings()
        };
        assert!(server_context(&settings, 8883, None).is_ok(), "{v} {c}");
    }
}

#[test]
fn tls_version_tlsv1_3_refuses_a_tls_1_2_client() {
    let pki = Pki::new();
    let settings = TlsSettings {
        tls_version: Some("tlsv1.3".into()),
        ..pki.settings()
    };
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        max_version: Some(SslVersion::TLS1_2),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("unsupported protocol"));
}

#[test]
fn psk_clients_are_identified_and_a_wrong_key_is_refused() {
    let (keys, _) = PskKeys::parse(b"sensor1:00c0ffee\n", "psk").unwrap();
    let settings = TlsSettings {
        psk_hint: Some("culex".into()),
        use_identity_as_username: true,
        ..TlsSettings::default()
    };
    let ctx = server_context(&settings, 8883, Some(std::sync::Arc::new(keys))).unwrap();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let mut server = TlsLayer::server(&ctx).unwrap();
        let mut c = client(ClientOpts {
            psk: Some(("sensor1", vec![0x00, 0xc0, 0xff, 0xee])),
            ciphers: Some("PSK"),
            max_version: Some(version),
            ..ClientOpts::default()
        });
        let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
        assert_eq!(out.server, Ok(()), "{version:?}");
        assert_eq!(out.up, CONNECT);
        assert_eq!(
            server.peer_identity(),
            Some(PeerIdentity::Psk {
                identity: "sensor1".into()
            })
        );
    }
    let mut server = TlsLayer::server(&ctx).unwrap();
    let mut c = client(ClientOpts {
        psk: Some(("sensor1", vec![0x01, 0x02])),
        ciphers: Some("PSK"),
        max_version: Some(SslVersion::TLS1_2),
        ..ClientOpts::default()
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(out.server.is_err() || out.client.is_err());
    assert!(out.up.is_empty());
}

#[test]
fn dhparamfile_enables_dhe_suites() {
    let pki = Pki::new();
    let rsa = fixture("rsa-pkcs8.key").to_string_lossy().into_owned();
    let pkey = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&rsa).unwrap()).unwrap();
    let der = pkey.private_key_to_pkcs8().unwrap();
    let kp = KeyPair::try_from(der.as_slice()).unwrap();
    pki.write("server.pem", &pki.ca.server(&kp));
    let dh = openssl::dh::Dh::get_2048_256().unwrap();
    let dh_pem = dh.params_to_pem().unwrap();
    let dhfile = pki.dir.path().join("dh.pem");
    std::fs::write(&dhfile, dh_pem).unwrap();
    let settings = TlsSettings {
        keyfile: Some(rsa),
        ciphers: Some("DHE-RSA-AES128-GCM-SHA256".into()),
        dhparamfile: Some(dhfile.to_string_lossy().into_owned()),
        ..pki.settings()
    };
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        max_version: Some(SslVersion::TLS1_2),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(
        server.negotiated().as_deref(),
        Some("TLSv1.2 DHE-RSA-AES128-GCM-SHA256")
    );
    let lines = config_error(&TlsSettings {
        dhparamfile: Some(pki.path("ca.pem")),
        ..settings
    });
    assert_eq!(
        lines[0],
        format!("Error loading dhparamfile \"{}\".", pki.path("ca.pem"))
    );
}

#[test]
fn subjects_match_openssls_rfc2253_output() {
    // openssl x509 -in FILE -noout -subject -nameopt RFC2253
    let cases = [
        (
            "odd-subject.pem",
            "UID=u\\\\1,DC=example,1.2.3.4=#0C06637573746F6D,emailAddress=dev@example.org,\
             CN=\\#client 1,OU=Lab+OU=IoT,O=Home\\, Inc. \\<a\\+b\\>\\;x,\
             ST=Baden-W\\C3\\BCrttemberg,C=DE",
            Some("#client 1"),
        ),
        (
            "edge-subject.pem",
            "title=tab\\09x,street=\\CE\\A9 ok,ST=\\C3\\BC,L=a#b,O=#,OU=trail\\ ,CN=\\ lead",
            Some(" lead"),
        ),
        (
            "bmp-subject.pem",
            "CN=plain,O=\\CE\\A9 ok,ST=\\C3\\BC",
            Some("plain"),
        ),
    ];
    for (file, subject, cn) in cases {
        let cert = openssl::x509::X509::from_pem(&std::fs::read(fixture(file)).unwrap()).unwrap();
        assert_eq!(
            identity::of_certificate(&cert),
            PeerIdentity::Certificate {
                common_name: cn.map(str::to_string),
                subject: Some(subject.to_string()),
            },
            "{file}"
        );
    }
}

#[test]
fn bridge_host_names_are_checked_as_mosquitto_checks_them() {
    let ca = Ca::new("ca");
    let key = KeyPair::generate().unwrap();
    let san = openssl::x509::X509::from_pem(ca.server(&key).as_bytes()).unwrap();
    assert!(certificate_matches_host(&san, "localhost"));
    assert!(certificate_matches_host(&san, "LOCALHOST"));
    assert!(!certificate_matches_host(&san, "broker"));
    // A certificate with a CN and no subjectAltName: the CN is compared.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "broker.lan");
    let cn_only = params.signed_by(&key, &ca.issuer).unwrap().pem();
    let cn_only = openssl::x509::X509::from_pem(cn_only.as_bytes()).unwrap();
    assert!(certificate_matches_host(&cn_only, "broker.lan"));
    assert!(!certificate_matches_host(&cn_only, "other.lan"));
    // An IP subjectAltName only: the CN is still compared, as in mosquitto.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "broker.lan");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()));
    let ip = params.signed_by(&key, &ca.issuer).unwrap().pem();
    let ip = openssl::x509::X509::from_pem(ip.as_bytes()).unwrap();
    assert!(certificate_matches_host(&ip, "10.0.0.1"));
    assert!(certificate_matches_host(&ip, "broker.lan"));
    assert!(!certificate_matches_host(&ip, "10.0.0.2"));
}

#[test]
fn a_reload_picks_up_a_new_certificate() {
    let pki = Pki::new();
    let first = server_context(&pki.settings(), 8883, None).unwrap();
    let key = KeyPair::generate().unwrap();
    let other = Ca::new("renewed CA");
    pki.write("server.pem", &other.server(&key));
    pki.write("server.key", &key.serialize_pem());
    let second = server_context(&pki.settings(), 8883, None).unwrap();
    // Old sessions keep the old certificate; new ones get the new one.
    let mut server = TlsLayer::server(&first).unwrap();
    let mut c = client(trusting(&pki));
    assert_eq!(
        shuttle(&mut c, &mut server, CONNECT, usize::MAX).server,
        Ok(())
    );
    let mut server = TlsLayer::server(&second).unwrap();
    let mut c = client(trusting(&pki));
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(out.client.is_err());
}

#[test]
fn disable_client_cert_date_checks_accepts_an_expired_certificate_only() {
    let pki = Pki::new();
    let key = KeyPair::generate().unwrap();
    let keyfile = pki.write("old.key", &key.serialize_pem());
    let expired = pki.write("old.pem", &pki.ca.expired_client(&key));
    let settings = TlsSettings {
        disable_client_cert_date_checks: true,
        ..pki.mtls_settings()
    };
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        cert: Some((expired, keyfile.clone())),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert_eq!(out.server, Ok(()));
    assert_eq!(out.up, CONNECT);
    // Another CA is still refused.
    let other = Ca::new("another CA");
    let rogue = pki.write("rogue.pem", &other.client(&key, "client1", 9));
    let mut server = layer(&settings);
    let mut c = client(ClientOpts {
        cert: Some((rogue, keyfile)),
        ..trusting(&pki)
    });
    let out = shuttle(&mut c, &mut server, CONNECT, usize::MAX);
    assert!(tls_error(&out.server).contains("certificate verify failed"));
}
