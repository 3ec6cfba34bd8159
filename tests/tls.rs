//! TLS listeners with real clients: mosquitto_pub/_sub and paho over TLS, a
//! wrong CA, require_certificate, use_identity_as_username with an ACL, and
//! a certificate renewed by SIGHUP while a TLS client stays connected.

mod common;

use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

const T: Duration = Duration::from_secs(10);

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
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// (certificate PEM, key PEM) for `cn`, valid for 127.0.0.1 and localhost.
    fn leaf(&self, cn: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

struct Pki {
    ca: Ca,
    files: Vec<(String, Vec<u8>)>,
}

fn pki() -> Pki {
    let ca = Ca::new("culex test CA");
    let other = Ca::new("some other CA");
    let (server_cert, server_key) = ca.leaf("broker");
    let (client_cert, client_key) = ca.leaf("device1");
    let (rogue_cert, rogue_key) = other.leaf("device1");
    let files = vec![
        ("ca.pem".to_string(), ca.issuer.pem().into_bytes()),
        ("other-ca.pem".to_string(), other.issuer.pem().into_bytes()),
        ("server.pem".to_string(), server_cert.into_bytes()),
        ("server.key".to_string(), server_key.into_bytes()),
        ("client.pem".to_string(), client_cert.into_bytes()),
        ("client.key".to_string(), client_key.into_bytes()),
        ("rogue.pem".to_string(), rogue_cert.into_bytes()),
        ("rogue.key".to_string(), rogue_key.into_bytes()),
    ];
    Pki { ca, files }
}

fn start(config: &str, pki: &Pki, extra: &[(&str, &[u8])]) -> Culex {
    let mut files: Vec<(&str, &[u8])> = pki
        .files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    files.extend_from_slice(extra);
    Culex::start_with(config, &files)
}

fn pub_tls(b: &Culex, extra: &[&str]) -> (i32, String) {
    let port = b.port.to_string();
    let ca = b.path("ca.pem").display().to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "tls/t",
        "-m",
        "secret",
        "--cafile",
        &ca,
    ];
    args.extend_from_slice(extra);
    let out = run_client("mosquitto_pub", &args, T);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BASIC: &str = "listener {port} 127.0.0.1\nallow_anonymous true\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n";

#[test]
fn mosquitto_clients_publish_and_subscribe_over_tls() {
    let p = pki();
    let b = start(BASIC, &p, &[]);
    let port = b.port.to_string();
    let ca = b.path("ca.pem").display().to_string();
    let sub = Sub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &ca,
        "-t",
        "tls/#",
        "-C",
        "1",
        "-W",
        "8",
        "-v",
    ]);
    let (code, err) = pub_tls(&b, &["-q", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sub.output(T).0, "tls/t secret\n");
}

#[test]
fn a_client_trusting_another_ca_is_refused_and_plain_mqtt_is_closed() {
    let p = pki();
    let b = start(BASIC, &p, &[]);
    let port = b.port.to_string();
    let other = b.path("other-ca.pem").display().to_string();
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "t",
            "-m",
            "x",
            "--cafile",
            &other,
        ],
        T,
    );
    assert_ne!(out.status.code(), Some(0));
    // Plain MQTT to the TLS port.
    let mut raw = Raw::connect(b.port);
    raw.send(&connect_packet(
        culex::codec::ProtocolVersion::V311,
        "plain",
        None,
    ));
    assert!(raw.recv().is_none(), "no CONNACK over plain TCP");
    // OpenSSL's own reason, as mosquitto logs it.
    b.wait_log("OpenSSL Error[0]: error:0A00010B:SSL routines::wrong version number");
    b.wait_log("Client <unknown> disconnected: Protocol error.");
}

#[test]
fn require_certificate_refuses_clients_without_one() {
    let p = pki();
    let b = start(
        &format!("{BASIC}cafile {{dir}}/ca.pem\nrequire_certificate true\n"),
        &p,
        &[],
    );
    let (code, _) = pub_tls(&b, &[]);
    assert_ne!(code, 0, "no client certificate must be refused");
    let rogue = (
        b.path("rogue.pem").display().to_string(),
        b.path("rogue.key").display().to_string(),
    );
    let (code, _) = pub_tls(&b, &["--cert", &rogue.0, "--key", &rogue.1]);
    assert_ne!(code, 0, "a certificate from another CA must be refused");
    let good = (
        b.path("client.pem").display().to_string(),
        b.path("client.key").display().to_string(),
    );
    let (code, err) = pub_tls(&b, &["--cert", &good.0, "--key", &good.1]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn use_identity_as_username_and_an_acl_restrict_by_common_name() {
    let p = pki();
    let config = format!(
        "{BASIC}cafile {{dir}}/ca.pem\nrequire_certificate true\nuse_identity_as_username true\nacl_file {{dir}}/acl\n"
    );
    let b = start(
        &config,
        &p,
        &[("acl", b"user device1\ntopic readwrite devices/device1/#\n")],
    );
    let port = b.port.to_string();
    let ca = b.path("ca.pem").display().to_string();
    let cert = b.path("client.pem").display().to_string();
    let key = b.path("client.key").display().to_string();
    let tls = [
        "-h",
        "127.0.0.1",
        "-p",
        port.as_str(),
        "--cafile",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    let mut sub_args = tls.to_vec();
    sub_args.extend(["-t", "#", "-C", "1", "-W", "8", "-v"]);
    let sub = Sub::start(&sub_args);
    for topic in ["devices/other/x", "devices/device1/state"] {
        let mut a = tls.to_vec();
        // The username and password are ignored: the certificate decides.
        a.extend(["-t", topic, "-m", topic, "-u", "someone-else", "-P", "x"]);
        let out = run_client("mosquitto_pub", &a, T);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        sub.output(T).0,
        "devices/device1/state devices/device1/state\n"
    );
    b.wait_log("u'device1'");
}

#[test]
fn sighup_serves_a_renewed_certificate_and_keeps_tls_clients() {
    let p = pki();
    let b = start(BASIC, &p, &[]);
    let port = b.port.to_string();
    let ca = b.path("ca.pem").display().to_string();
    let sub = Sub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &ca,
        "-t",
        "renew/#",
        "-C",
        "1",
        "-W",
        "9",
        "-v",
    ]);
    // Renew with a certificate from a new CA.
    let new_ca = Ca::new("renewed CA");
    let (cert, key) = new_ca.leaf("broker");
    std::fs::write(b.path("new-ca.pem"), new_ca.issuer.pem()).unwrap();
    std::fs::write(b.path("server.pem"), cert).unwrap();
    std::fs::write(b.path("server.key"), key).unwrap();
    world_readable(b.dir.path());
    b.signal("HUP");
    b.wait_log("Reloading config.");
    std::thread::sleep(Duration::from_millis(200));
    // New connections get the new certificate.
    let (code, _) = pub_tls(&b, &[]);
    assert_ne!(code, 0, "the old CA must no longer verify the server");
    let new_ca_path = b.path("new-ca.pem").display().to_string();
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &new_ca_path,
            "-t",
            "renew/x",
            "-m",
            "after renewal",
        ],
        T,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and the subscriber connected before the renewal is still served.
    assert_eq!(sub.output(T).0, "renew/x after renewal\n");
    let _ = p.ca;
}

#[test]
fn tls_websockets_and_tcp_listeners_in_one_process() {
    let p = pki();
    let tls_port = free_port();
    let ws_port = free_port();
    let config = format!(
        "per_listener_settings true\n\
         listener {{port}} 127.0.0.1\npassword_file {{dir}}/tcp.passwd\n\
         listener {tls_port} 127.0.0.1\ncertfile {{dir}}/server.pem\nkeyfile {{dir}}/server.key\npassword_file {{dir}}/tls.passwd\n\
         listener {ws_port} 127.0.0.1\nprotocol websockets\npassword_file {{dir}}/ws.passwd\n"
    );
    let pbkdf2 = include_bytes!("../testdata/passwd/pbkdf2.passwd");
    let sha512 = include_bytes!("../testdata/passwd/sha512.passwd");
    let b = start(
        &config,
        &p,
        &[
            ("tcp.passwd", pbkdf2),
            ("tls.passwd", sha512),
            ("ws.passwd", pbkdf2),
        ],
    );
    let ca = b.path("ca.pem").display().to_string();
    let tcp = b.port.to_string();
    let tls = tls_port.to_string();
    // alice on TCP (pbkdf2 file) subscribes; bob on TLS ($6$ file) publishes.
    let sub = Sub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &tcp,
        "-u",
        "alice",
        "-P",
        "secret",
        "-t",
        "all/#",
        "-C",
        "1",
        "-W",
        "8",
        "-v",
    ]);
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tls,
            "--cafile",
            &ca,
            "-u",
            "bob",
            "-P",
            "p@ss w0rd:with:colons",
            "-t",
            "all/x",
            "-m",
            "via tls",
        ],
        T,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (got, err) = sub.output(T);
    assert_eq!(got, "all/x via tls\n", "{err}\n{}", b.log_text());
    // Each listener checks its own file: alice's pbkdf2 password is wrong on TLS.
    let out = run_client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tls,
            "--cafile",
            &ca,
            "-u",
            "alice",
            "-P",
            "wrong",
            "-t",
            "x",
            "-m",
            "x",
        ],
        T,
    );
    assert!(!out.status.success());
    b.wait_log(&format!(
        "Opening websockets listen socket on port {ws_port}."
    ));
}

/// Starts `program` on `conf` under a pseudo-terminal (python's pty), types
/// `answer` when OpenSSL asks for the pass phrase, and returns what the
/// terminal showed within a few seconds.
fn on_a_terminal(program: &str, conf: &std::path::Path, answer: &str) -> String {
    let script = r#"
import os, pty, select, sys, time
prog, conf, answer = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv(prog, [prog, '-c', conf])
out, sent, start = b'', False, time.time()
while time.time() - start < 4 and b' running' not in out:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
    if b'pass phrase' in out and not sent:
        os.write(fd, answer.encode() + b'\n')
        sent = True
try:
    os.kill(pid, 15)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, program, conf.to_str().unwrap(), answer])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_encrypted_keyfile_asks_for_its_pass_phrase_as_mosquitto_does() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&[
        "genrsa",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "enc.key",
        "2048",
    ]);
    run(&[
        "req",
        "-new",
        "-x509",
        "-key",
        "enc.key",
        "-passin",
        "pass:secret",
        "-subj",
        "/CN=localhost",
        "-days",
        "30",
        "-out",
        "enc.crt",
    ]);
    world_readable(d);
    let conf = d.join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {} 127.0.0.1\ncertfile {1}/enc.crt\nkeyfile {1}/enc.key\nallow_anonymous true\n",
            free_port(),
            d.display()
        ),
    )
    .unwrap();
    let mut programs = vec![BIN];
    if std::path::Path::new(MOSQUITTO).exists() {
        programs.push(MOSQUITTO);
    }
    for program in programs {
        // On a terminal: OpenSSL's prompt, then the broker runs.
        let shown = on_a_terminal(program, &conf, "secret");
        assert!(
            shown.contains("Enter PEM pass phrase:"),
            "{program}: {shown}"
        );
        assert!(shown.contains(" running"), "{program}: {shown}");
        // Without one the key cannot be read: exit 1, OpenSSL's reasons.
        // setsid: no controlling terminal, even when the tests have one
        // (OpenSSL would prompt on /dev/tty and wait).
        let out = std::process::Command::new("setsid")
            .args([program, "-c", conf.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{program}: {text}");
        assert!(
            text.contains("Check keyfile.") && text.contains("PEM routines::bad password read"),
            "{program}: {text}"
        );
    }
}
