//! A bridge's TLS client against culex's own TLS server layer, in memory:
//! configurations parsed from `connection` sections, certificates made by
//! rcgen for each test.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::*;
use crate::config::model::TlsSettings;
use crate::net::layer::{Layer, LayerError};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// (certificate, key) PEM signed by `issuer`, valid for `localhost` only.
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str, client: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    if client {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The remote's CA, its server certificate, a bridge client certificate,
/// and a CA nobody uses, as files.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        let remote_ca = ca("remote CA");
        let other = ca("other CA");
        let (server, server_key) = leaf(&remote_ca, "remote", false);
        let (client, client_key) = leaf(&remote_ca, "bridge", true);
        let (_, unrelated_key) = leaf(&other, "x", true);
        for (name, text) in [
            ("ca.pem", remote_ca.pem()),
            ("other-ca.pem", other.pem()),
            ("server.pem", server),
            ("server.key", server_key),
            ("client.pem", client),
            ("client.key", client_key),
            ("unrelated.key", unrelated_key),
        ] {
            std::fs::write(files.path(name), text).unwrap();
        }
        std::fs::create_dir(files.path("empty")).unwrap();
        files
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// The remote broker's TLS listener; `require_certificate` with our CA
    /// when `mtls`.
    fn server(&self, mtls: bool) -> TlsLayer {
        let settings = TlsSettings {
            certfile: Some(self.path("server.pem")),
            keyfile: Some(self.path("server.key")),
            cafile: mtls.then(|| self.path("ca.pem")),
            require_certificate: mtls,
            ..TlsSettings::default()
        };
        TlsLayer::new(server_config(&settings).unwrap()).unwrap()
    }

    /// A bridge to `host` with `extra` lines (`{dir}` is this folder).
    fn bridge(&self, host: &str, extra: &str) -> crate::config::bridge::Bridge {
        let text = format!("connection b\naddress {host}:8883\ntopic #\n{extra}")
            .replace("{dir}", &self.dir.path().to_string_lossy());
        let config = crate::config::parse_str(&text, "t.conf").expect("valid config");
        config.bridges.into_iter().next().expect("a bridge")
    }

    fn client(&self, host: &str, extra: &str) -> TlsClientLayer {
        let bridge = self.bridge(host, extra);
        let config = bridge_client_config(&bridge)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("TLS is on");
        TlsClientLayer::new(config, host).unwrap()
    }

    fn error(&self, host: &str, extra: &str) -> Vec<String> {
        match bridge_client_config(&self.bridge(host, extra)) {
            Ok(_) => panic!("{extra}: accepted"),
            Err(e) => e.lines(),
        }
    }
}

const CONNECT: &[u8] = &[
    0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'c',
];
const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];

/// What a run of the two layers ended with.
struct Run {
    client: Result<(), LayerError>,
    server: Result<(), LayerError>,
    /// MQTT bytes the remote received, and the bridge received.
    at_server: Vec<u8>,
    at_client: Vec<u8>,
    /// Every byte the bridge put on the wire.
    wire: Vec<u8>,
}

/// The bridge sends `first` (its CONNECT: the first send also carries the
/// ClientHello), then bytes go back and forth until both are quiet; the
/// remote answers `reply` once it has seen something.
fn run(client: &mut TlsClientLayer, server: &mut TlsLayer, first: &[u8], reply: &[u8]) -> Run {
    let mut to_server = Vec::new();
    let mut r = Run {
        client: client.send(first, &mut to_server),
        server: Ok(()),
        at_server: Vec::new(),
        at_client: Vec::new(),
        wire: Vec::new(),
    };
    let mut replied = false;
    for _ in 0..20 {
        r.wire.extend_from_slice(&to_server);
        let mut to_client = Vec::new();
        r.server = server.ingest(&to_server, &mut r.at_server, &mut to_client);
        if !replied && !r.at_server.is_empty() && r.server.is_ok() {
            replied = true;
            r.server = server.send(reply, &mut to_client);
        }
        to_server.clear();
        r.client = client.ingest(&to_client, &mut r.at_client, &mut to_server);
        if r.client.is_err() || r.server.is_err() {
            // The alert, as the loop would flush it.
            let mut ignored = Vec::new();
            let _ = server.ingest(&to_server, &mut ignored, &mut Vec::new());
            break;
        }
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
    }
    r
}

fn tls_error(r: &Result<(), LayerError>) -> String {
    match r {
        Err(LayerError::Tls(e)) => e.clone(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn mqtt_goes_both_ways_inside_tls() {
    let f = Files::new();
    let mut client = f.client("localhost", "bridge_cafile {dir}/ca.pem\n");
    let mut server = f.server(false);
    assert!(client.is_handshaking());
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert_eq!((&r.client, &r.server), (&Ok(()), &Ok(())));
    assert!(!client.is_handshaking());
    assert_eq!(r.at_server, CONNECT);
    assert_eq!(r.at_client, CONNACK);
    // The first bytes on the wire are the ClientHello; the CONNECT never
    // appears in clear.
    assert!(looks_like_tls(&r.wire[..3]));
    assert!(!r.wire.windows(CONNECT.len()).any(|w| w == CONNECT));
    assert!(server.negotiated().unwrap().starts_with("TLSv1.3 "));
}

#[test]
fn a_remote_signed_by_another_ca_is_refused_before_any_mqtt() {
    let f = Files::new();
    let mut client = f.client("localhost", "bridge_cafile {dir}/other-ca.pem\n");
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    let e = tls_error(&r.client);
    assert!(e.contains("not signed by a CA in bridge_cafile"), "{e}");
    assert!(r.at_server.is_empty());
    // Nor does bridge_insecure let it through: it skips the name check only.
    let mut client = f.client(
        "localhost",
        "bridge_cafile {dir}/other-ca.pem\nbridge_insecure true\n",
    );
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert!(tls_error(&r.client).contains("not signed by a CA"));
    assert!(r.at_server.is_empty());
}

#[test]
fn the_certificate_must_match_the_address_unless_bridge_insecure() {
    let f = Files::new();
    // The certificate names localhost only.
    let mut client = f.client("127.0.0.1", "bridge_cafile {dir}/ca.pem\n");
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    let e = tls_error(&r.client);
    assert!(e.contains("not valid for \"127.0.0.1\""), "{e}");
    assert!(r.at_server.is_empty());

    let mut client = f.client(
        "127.0.0.1",
        "bridge_cafile {dir}/ca.pem\nbridge_insecure true\n",
    );
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert_eq!((&r.client, &r.server), (&Ok(()), &Ok(())));
    assert_eq!(r.at_server, CONNECT);
}

#[test]
fn client_certificate_for_a_remote_that_requires_one() {
    let f = Files::new();
    let mut client = f.client(
        "localhost",
        "bridge_capath {dir}/\nbridge_certfile {dir}/client.pem\nbridge_keyfile {dir}/client.key\n",
    );
    let mut server = f.server(true);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert_eq!((&r.client, &r.server), (&Ok(()), &Ok(())));
    assert_eq!(r.at_server, CONNECT);
    let id = server.peer_identity().expect("client certificate");
    assert_eq!(id.common_name.as_deref(), Some("bridge"));

    // Without one the remote refuses the bridge.
    let mut client = f.client("localhost", "bridge_cafile {dir}/ca.pem\n");
    let mut server = f.server(true);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert!(r.server.is_err() || r.client.is_err());
    assert!(r.at_server.is_empty());
}

#[test]
fn tls_version_and_alpn_reach_the_config() {
    let f = Files::new();
    let bridge = f.bridge(
        "localhost",
        "bridge_cafile {dir}/ca.pem\nbridge_tls_version tlsv1.3\nbridge_alpn mqtt\n",
    );
    let config = bridge_client_config(&bridge).unwrap().unwrap();
    assert_eq!(config.alpn_protocols, vec![b"mqtt".to_vec()]);
    let mut client = TlsClientLayer::new(config, "localhost").unwrap();
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert_eq!(r.client, Ok(()));
    assert!(server.negotiated().unwrap().starts_with("TLSv1.3 "));
    // A plain bridge has no TLS configuration at all.
    assert!(
        bridge_client_config(&f.bridge("localhost", ""))
            .unwrap()
            .is_none()
    );
}

#[test]
fn close_sends_close_notify_and_a_remote_close_is_reported() {
    let f = Files::new();
    let mut client = f.client("localhost", "bridge_cafile {dir}/ca.pem\n");
    let mut server = f.server(false);
    let r = run(&mut client, &mut server, CONNECT, CONNACK);
    assert_eq!(r.client, Ok(()));
    let mut down = Vec::new();
    server.close(&mut down);
    let mut up = Vec::new();
    assert_eq!(
        client.ingest(&down, &mut up, &mut Vec::new()),
        Err(LayerError::Closed)
    );
    let mut bye = Vec::new();
    client.close(&mut bye);
    assert!(!bye.is_empty());
}

#[test]
fn bad_files_give_mosquittos_line_then_the_detail() {
    let f = Files::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "bridge_cafile {dir}/nope.pem\n",
            "Error: Unable to load CA certificates, check bridge_cafile \"{dir}/nope.pem\".",
            "Error: Bridge b: Unable to read bridge_cafile \"{dir}/nope.pem\": No such file or directory.",
        ),
        (
            "bridge_capath {dir}/empty\n",
            "Error: Unable to load CA certificates, check bridge_capath \"{dir}/empty\".",
            "Error: Bridge b: no CA certificate found to verify the remote broker with.",
        ),
        (
            "bridge_cafile {dir}/server.key\n",
            "Error: Unable to load CA certificates, check bridge_cafile \"{dir}/server.key\".",
            "Error: Bridge b: Unable to load bridge_cafile \"{dir}/server.key\": no certificate found in the file.",
        ),
        (
            "bridge_cafile {dir}/ca.pem\nbridge_certfile {dir}/missing.pem\nbridge_keyfile {dir}/client.key\n",
            "Error: Unable to load client certificate, check bridge_certfile \"{dir}/missing.pem\".",
            "Error: Bridge b: Unable to read bridge_certfile \"{dir}/missing.pem\": No such file or directory.",
        ),
        (
            "bridge_cafile {dir}/ca.pem\nbridge_certfile {dir}/client.pem\nbridge_keyfile {dir}/client.pem\n",
            "Error: Unable to load client key file, check bridge_keyfile \"{dir}/client.pem\".",
            "Error: Bridge b: Unable to load bridge_keyfile \"{dir}/client.pem\": no private key (RSA, PKCS#8 or EC) found in the file.",
        ),
        (
            "bridge_cafile {dir}/ca.pem\nbridge_certfile {dir}/client.pem\nbridge_keyfile {dir}/unrelated.key\n",
            "Error: Client certificate/key are inconsistent.",
            "Error: Bridge b: bridge_keyfile \"{dir}/unrelated.key\" is not the key of bridge_certfile \"{dir}/client.pem\".",
        ),
    ];
    let dir = f.dir.path().to_string_lossy().into_owned();
    for (extra, mosquitto, detail) in cases {
        let lines = f.error("localhost", extra);
        assert_eq!(
            lines,
            vec![
                mosquitto.replace("{dir}", &dir),
                detail.replace("{dir}", &dir)
            ],
            "{extra}"
        );
    }
    let lines = f.error("bad_host!", "bridge_cafile {dir}/ca.pem\n");
    assert_eq!(lines[0], "Error: Unable to create TLS context.");
    assert!(lines[1].contains("\"bad_host!\""), "{lines:?}");
}

#[test]
fn garbage_from_the_remote_is_an_error_not_a_panic() {
    let f = Files::new();
    let mut client = f.client("localhost", "bridge_cafile {dir}/ca.pem\n");
    let mut hello = Vec::new();
    client.send(CONNECT, &mut hello).unwrap();
    assert!(looks_like_tls(&hello));
    // A plain MQTT broker answering with a CONNACK.
    let e = client.ingest(CONNACK, &mut Vec::new(), &mut Vec::new());
    assert!(tls_error(&e).contains("did not answer with TLS"), "{e:?}");
}

#[test]
fn os_certs_alone_turn_tls_on() {
    let f = Files::new();
    let bridge = f.bridge("localhost", "bridge_tls_use_os_certs true\n");
    let tls = bridge.tls.clone().expect("TLS on");
    assert!(tls.use_os_certs && tls.cafile.is_none());
    // Whether the system store exists depends on the machine; with it the
    // configuration builds, without it the error names the bridge.
    match bridge_client_config(&bridge) {
        Ok(config) => assert!(config.is_some()),
        Err(e) => assert!(e.detail.starts_with("Error: Bridge b: "), "{e}"),
    }
}
