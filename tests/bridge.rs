//! Bridges (`connection` sections) against Debian's mosquitto 2.0.11 in both
//! roles: culex bridging to mosquitto, mosquitto bridging to culex, and
//! culex to culex. Clients are raw sockets that assert exact topics,
//! payloads and retain flags.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Culex, MOSQUITTO, Raw};
use culex::codec::ProtocolVersion;

type Msg = (String, String, bool);

fn msg(topic: &str, payload: &str, retain: bool) -> Msg {
    (topic.to_string(), payload.to_string(), retain)
}

/// A broker without a bridge: the remote end.
const REMOTE: &str = "listener {port} 127.0.0.1\nallow_anonymous true\n";

/// A broker bridging `local/#` both ways to `remote/#` of the broker on
/// `remote_port`, as client id `c1`.
fn bridging(remote_port: u16, extra: &str) -> String {
    format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\n\
         connection b1\naddress 127.0.0.1:{remote_port}\nclientid c1\n\
         topic # both 1 local/ remote/\nrestart_timeout 1\n{extra}"
    )
}

fn require_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "mosquitto is not installed: run scripts/test"
    );
}

/// Subscribes on `port` and waits (bounded) until `want` arrives, as the
/// retained message or live (then without the retain flag), depending on
/// whether the bridge came up before the subscription.
fn wait_for(port: u16, filter: &str, want: &Msg, within: Duration) -> Raw {
    let mut raw = Raw::login(port, ProtocolVersion::V311, "waiter", None);
    raw.subscribe(&[(filter, 1)]);
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let got = raw.collect_until(Duration::from_millis(200), Duration::from_millis(400));
        if got.iter().any(|m| m.0 == want.0 && m.1 == want.1) {
            return raw;
        }
    }
    panic!("{want:?} never arrived on port {port}");
}

/// Messages on `raw` until it has been quiet for a while.
fn drain(raw: &mut Raw) -> Vec<Msg> {
    raw.collect_until(Duration::from_millis(700), Duration::from_secs(5))
}

/// The scenario every pairing must pass: state `1` on both sides, a
/// message each way with its topic mapped, nothing echoed back, retained
/// messages kept retained, unmapped topics not forwarded.
fn exercise(local: u16, remote: u16) {
    let state = msg("$SYS/broker/connection/c1/state", "1", true);
    wait_for(
        local,
        "$SYS/broker/connection/#",
        &state,
        Duration::from_secs(10),
    );
    wait_for(
        remote,
        "$SYS/broker/connection/#",
        &state,
        Duration::from_secs(10),
    );

    let mut on_local = Raw::login(local, ProtocolVersion::V311, "on-local", None);
    on_local.subscribe(&[("#", 1)]);
    let mut on_remote = Raw::login(remote, ProtocolVersion::V311, "on-remote", None);
    on_remote.subscribe(&[("#", 1)]);

    let mut p = Raw::login(local, ProtocolVersion::V311, "pub-local", None);
    assert_eq!(p.publish("local/a", b"out", 1, false), Some(0));
    let mut q = Raw::login(remote, ProtocolVersion::V311, "pub-remote", None);
    assert_eq!(q.publish("remote/b", b"in", 1, false), Some(0));
    assert_eq!(q.publish("other/c", b"stays", 0, false), None);

    let mut got_local = drain(&mut on_local);
    let mut got_remote = drain(&mut on_remote);
    got_local.sort();
    got_remote.sort();
    assert_eq!(
        got_local,
        vec![msg("local/a", "out", false), msg("local/b", "in", false)],
        "local side"
    );
    assert_eq!(
        got_remote,
        vec![
            msg("other/c", "stays", false),
            msg("remote/a", "out", false),
            msg("remote/b", "in", false)
        ],
        "remote side"
    );

    // Retained both ways: stored retained on the far side.
    assert_eq!(p.publish("local/kept", b"L", 1, true), Some(0));
    assert_eq!(q.publish("remote/held", b"R", 1, true), Some(0));
    std::thread::sleep(Duration::from_millis(500));
    let mut late = Raw::login(remote, ProtocolVersion::V311, "late-remote", None);
    late.subscribe(&[("remote/kept", 0)]);
    assert_eq!(drain(&mut late), vec![msg("remote/kept", "L", true)]);
    let mut late = Raw::login(local, ProtocolVersion::V311, "late-local", None);
    late.subscribe(&[("local/held", 0)]);
    assert_eq!(drain(&mut late), vec![msg("local/held", "R", true)]);
}

#[test]
fn culex_bridges_to_mosquitto() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let local = Culex::start(&bridging(remote.port, ""));
    exercise(local.port, remote.port);
    local.wait_log(&format!(
        "Connecting bridge (step 1) b1 (127.0.0.1:{})",
        remote.port
    ));
    // mosquitto knows it is talking to a bridge (protocol level | 0x80).
    remote.wait_log("New bridge connected from 127.0.0.1:");
    assert!(remote.log_text().contains(" as c1 (p2, c0, k60)."));
}

#[test]
fn mosquitto_bridges_to_culex() {
    require_mosquitto();
    let remote = Culex::start(REMOTE);
    let local = Culex::start_program(MOSQUITTO, &bridging(remote.port, ""), &[]);
    exercise(local.port, remote.port);
    remote.wait_log("New bridge connected from 127.0.0.1:");
    assert!(remote.log_text().contains(" as c1 (p2, c0, k60)."));
}

#[test]
fn culex_bridges_to_culex() {
    let remote = Culex::start(REMOTE);
    // 2.1's socket options on the bridge's connection.
    let local = Culex::start(&bridging(
        remote.port,
        "bridge_tcp_keepalive 30 10 3
bridge_tcp_user_timeout 5000
",
    ));
    exercise(local.port, remote.port);
}

#[test]
fn mqtt5_bridge_to_mosquitto() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let local = Culex::start(&bridging(remote.port, "bridge_protocol_version mqttv50\n"));
    exercise(local.port, remote.port);
    remote.wait_log(" as c1 (p5, c0, k60).");
}

/// Starts `program` on an existing config file (a restart on the same port).
fn spawn(program: &str, conf: &Path, log: &Path) -> Child {
    Command::new(program)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn")
}

#[test]
fn state_goes_to_0_and_back_and_queued_messages_survive_a_remote_restart() {
    require_mosquitto();
    let remote_conf = format!("{REMOTE}persistence true\npersistence_location {{dir}}/\n");
    let mut remote = Culex::start_program(MOSQUITTO, &remote_conf, &[]);
    let local = Culex::start(&bridging(remote.port, ""));
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    let mut watcher = wait_for(
        local.port,
        "$SYS/broker/connection/#",
        &up,
        Duration::from_secs(10),
    );

    // A durable subscriber on the remote, offline while the remote restarts.
    let mut durable = Raw::connect(remote.port);
    durable.send(&clean_false_connect("durable"));
    assert!(matches!(
        durable.recv(),
        Some(culex::codec::Packet::Connack(_))
    ));
    durable.subscribe(&[("remote/#", 1)]);
    durable.shutdown();

    assert!(remote.stop().success());
    let down = drain(&mut watcher);
    assert_eq!(
        down,
        vec![msg("$SYS/broker/connection/c1/state", "0", false)]
    );
    // Queued in the bridge's durable local session while the remote is away.
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    assert_eq!(p.publish("local/while-down", b"queued", 1, false), Some(0));

    let conf = remote.path("culex.conf");
    let mut restarted = spawn(MOSQUITTO, &conf, &remote.path("restart.log"));
    let again = watcher.collect_until(Duration::from_secs(5), Duration::from_secs(8));
    assert_eq!(
        again,
        vec![msg("$SYS/broker/connection/c1/state", "1", false)]
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut durable = Raw::connect(remote.port);
    durable.send(&clean_false_connect("durable"));
    assert!(matches!(durable.recv(), Some(culex::codec::Packet::Connack(c)) if c.session_present));
    assert_eq!(
        drain(&mut durable),
        vec![msg("remote/while-down", "queued", false)]
    );
    let _ = restarted.kill();
    let _ = restarted.wait();
}

fn clean_false_connect(id: &str) -> culex::codec::Packet {
    let mut p = common::connect_packet(ProtocolVersion::V311, id, None);
    if let culex::codec::Packet::Connect(c) = &mut p {
        c.clean_start = false;
    }
    p
}

#[test]
fn killed_bridge_leaves_its_will_on_the_remote() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let mut local = Culex::start(&bridging(remote.port, ""));
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    let mut watcher = wait_for(
        remote.port,
        "$SYS/broker/connection/#",
        &up,
        Duration::from_secs(10),
    );
    if let Some(mut child) = local.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(
        drain(&mut watcher),
        vec![msg("$SYS/broker/connection/c1/state", "0", false)]
    );
}

#[test]
fn bridge_options_culex_does_not_implement_are_named() {
    // TLS-PSK is accepted, and turns TLS on.
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        "connection b\naddress 127.0.0.1\ntopic #\nbridge_identity me\nbridge_psk 0123\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["-c", conf.to_str().expect("utf-8"), "--test-config"])
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn messages_queue_before_the_remote_was_ever_reached() {
    require_mosquitto();
    let remote_port = common::free_port();
    let local = Culex::start(&bridging(remote_port, ""));
    // Nobody listens there yet: the attempt fails and is logged.
    local.wait_log("Error creating bridge: Connection refused.");
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    assert_eq!(p.publish("local/early", b"first", 1, false), Some(0));

    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("remote.conf");
    std::fs::write(
        &conf,
        format!("listener {remote_port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .expect("write");
    let mut remote = spawn(MOSQUITTO, &conf, &dir.path().join("remote.log"));
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", remote_port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut watcher = Raw::login(remote_port, ProtocolVersion::V311, "watch", None);
    watcher.subscribe(&[("remote/#", 1), ("$SYS/broker/connection/#", 1)]);
    let got = watcher.collect_until(Duration::from_secs(4), Duration::from_secs(8));
    let _ = remote.kill();
    let _ = remote.wait();
    assert!(
        got.contains(&msg("remote/early", "first", false)),
        "{got:?}"
    );
    assert!(
        got.contains(&up) || got.contains(&msg("$SYS/broker/connection/c1/state", "1", false)),
        "{got:?}"
    );
}

/// A test CA with a broker certificate for 127.0.0.1 and localhost, a
/// bridge client certificate, and an unrelated CA, as (name, PEM) files.
fn tls_files() -> Vec<(&'static str, Vec<u8>)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
    };
    let leaf = |issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let test_ca = ca("culex bridge test CA");
    let other = ca("some other CA");
    let (server, server_key) = leaf(&test_ca, "remote");
    let (client, client_key) = leaf(&test_ca, "bridge-b1");
    // What `openssl rehash` makes of the folder, so `bridge_capath {dir}`
    // finds the test CA by its subject hash, as OpenSSL looks CAs up.
    let hashed: &'static str = {
        let cert = openssl::x509::X509::from_pem(test_ca.pem().as_bytes()).expect("CA");
        Box::leak(format!("{:08x}.0", cert.subject_name_hash()).into_boxed_str())
    };
    vec![
        ("ca.pem", test_ca.pem().into_bytes()),
        (hashed, test_ca.pem().into_bytes()),
        ("other-ca.pem", other.pem().into_bytes()),
        ("server.pem", server.into_bytes()),
        ("server.key", server_key.into_bytes()),
        ("client.pem", client.into_bytes()),
        ("client.key", client_key.into_bytes()),
    ]
}

fn borrowed<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, d)| (*n, d.as_slice())).collect()
}

/// mosquitto with a plain listener on `{port}` for the test clients and a
/// TLS listener on `{port2}` that requires a client certificate from the
/// test CA, for the bridge.
const TLS_REMOTE: &str = "per_listener_settings false\nallow_anonymous true\n\
    listener {port} 127.0.0.1\n\
    listener {port2} 127.0.0.1\ncafile {dir}/ca.pem\ncertfile {dir}/server.pem\n\
    keyfile {dir}/server.key\nrequire_certificate true\n";

#[test]
fn culex_bridges_to_mosquitto_over_tls() {
    require_mosquitto();
    let files = tls_files();
    let remote = Culex::start_program(MOSQUITTO, TLS_REMOTE, &borrowed(&files));
    let tls = "bridge_cafile {dir}/ca.pem\nbridge_certfile {dir}/client.pem\n\
               bridge_keyfile {dir}/client.key\n";
    let local = Culex::start_with(&bridging(remote.port2, tls), &borrowed(&files));
    exercise(local.port, remote.port);
    // It went to the TLS listener, which refuses anything but TLS with a
    // certificate of the test CA.
    remote.wait_log("New bridge connected from 127.0.0.1:");
    assert!(remote.log_text().contains(" as c1 (p2, c0, k60)."));
    assert!(
        !local.log_text().contains("TLS error"),
        "{}",
        local.log_text()
    );
}

#[test]
fn test_config_prints_each_bridge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        "listener 1883\nconnection up\naddress 10.0.0.1 10.0.0.2:8883\nclientid site7\nround_robin true\ntopic sensors/# out 1 \"\" site7/\ntopic cmd/# in 2 \"\" site7/\nstart_type lazy\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["-c", conf.to_str().expect("utf-8"), "--test-config"])
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Bridge up to 10.0.0.1:1883 10.0.0.2:8883 (mqttv311) as site7, locally local.site7: sensors/# -> site7/sensors/# (QoS 1), cmd/# <- site7/cmd/# (QoS 2)"),
        "{text}"
    );
}

/// A bridge whose `address` is a DNS name, resolved through the event loop
/// against a name server from `/etc/resolv.conf`: both are private to a
/// network and mount namespace (needs root, as the test command runs).
#[test]
fn bridge_address_resolved_over_dns() {
    require_mosquitto();
    let dir = tempfile::tempdir().expect("tempdir");
    common::world_readable(dir.path());
    let d = dir.path().display().to_string();
    let (lport, rport) = (18831, 18832);
    std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").expect("write");
    std::fs::write(
        dir.path().join("remote.conf"),
        format!("listener {rport} 127.0.0.1\nallow_anonymous true\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("local.conf"),
        format!(
            "listener {lport} 127.0.0.1\nallow_anonymous true\n\
             connection b1\naddress remote.bridge.test:{rport}\nclientid c1\n\
             topic # out 1 local/ remote/\n"
        ),
    )
    .expect("write");
    let dns = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/fake_dns.py");
    let script = format!(
        "ip link set lo up || exit 98\n\
         mount --bind {d}/resolv.conf /etc/resolv.conf || exit 99\n\
         python3 {dns} 12 & D=$!\n\
         {MOSQUITTO} -c {d}/remote.conf 2>/dev/null & M=$!\n\
         sleep 0.5\n\
         {BIN} -c {d}/local.conf 2>{d}/culex.log & P=$!\n\
         mosquitto_sub -p {rport} -t remote/# -C 1 -W 8 > {d}/got.txt & S=$!\n\
         sleep 2\n\
         mosquitto_pub -p {lport} -t local/x -m via-dns -q 1\n\
         wait $S\n\
         kill $P $M $D\n\
         wait\n"
    );
    let out = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let log = std::fs::read_to_string(dir.path().join("culex.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "unshare -m -n needs root: {}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read_to_string(dir.path().join("got.txt")).unwrap_or_default();
    assert_eq!(got, "via-dns\n", "{log}");
    assert!(
        log.contains(&format!(
            "Connecting bridge (step 1) b1 (remote.bridge.test:{rport})"
        )),
        "{log}"
    );
}

#[test]
fn mqtt5_bridge_over_tls_by_host_name() {
    require_mosquitto();
    let files = tls_files();
    let remote = Culex::start_program(MOSQUITTO, TLS_REMOTE, &borrowed(&files));
    // `localhost`: SNI and the host name check use the name.
    let conf = format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\n\
         connection b1\naddress localhost:{}\nclientid c1\n\
         topic # both 1 local/ remote/\nrestart_timeout 1\nbridge_protocol_version mqttv50\n\
         bridge_capath {{dir}}\nbridge_certfile {{dir}}/client.pem\nbridge_keyfile {{dir}}/client.key\n\
         bridge_tls_version tlsv1.3\nbridge_ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n",
        remote.port2
    );
    let local = Culex::start_with(&conf, &borrowed(&files));
    exercise(local.port, remote.port);
    remote.wait_log(" as c1 (p5, c0, k60).");
}

#[test]
fn a_remote_with_a_certificate_from_another_ca_gets_nothing() {
    require_mosquitto();
    let files = tls_files();
    let remote = Culex::start_program(MOSQUITTO, TLS_REMOTE, &borrowed(&files));
    let tls = "bridge_cafile {dir}/other-ca.pem\nbridge_certfile {dir}/client.pem\n\
               bridge_keyfile {dir}/client.key\n";
    let local = Culex::start_with(&bridging(remote.port2, tls), &borrowed(&files));
    local.wait_log("OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed");
    let want = format!(
        "Bridge b1 (127.0.0.1:{}): the TLS connection failed.",
        remote.port2
    );
    local.wait_log(&want);

    let mut on_remote = Raw::login(remote.port, ProtocolVersion::V311, "on-remote", None);
    on_remote.subscribe(&[("#", 1)]);
    let mut on_local = Raw::login(local.port, ProtocolVersion::V311, "on-local", None);
    on_local.subscribe(&[("local/#", 1)]);
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    assert_eq!(p.publish("local/a", b"out", 1, false), Some(0));
    let mut q = Raw::login(remote.port, ProtocolVersion::V311, "pub-remote", None);
    assert_eq!(q.publish("remote/b", b"in", 1, false), Some(0));
    // Only what was published on each side itself, after another attempt
    // (restart_timeout 1) has failed the same way.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(drain(&mut on_remote), vec![msg("remote/b", "in", false)]);
    assert_eq!(drain(&mut on_local), vec![msg("local/a", "out", false)]);
    let log = local.log_text();
    assert!(log.matches(&want).count() >= 2, "{log}");
    // The remote never saw an MQTT packet from the bridge: no CONNECT in
    // clear, no bridge session.
    let remote_log = remote.log_text();
    assert!(!remote_log.contains("New bridge connected"), "{remote_log}");
    assert!(!remote_log.contains(" as c1 "), "{remote_log}");
}

#[test]
fn unreadable_bridge_tls_files_stop_culex_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nconnection b1\naddress 127.0.0.1:8883\ntopic #\n\
             bridge_cafile {0}/missing-ca.pem\n",
            dir.path().display()
        ),
    )
    .expect("write");
    common::world_readable(dir.path());
    let out = common::run_culex(&["-c", conf.to_str().expect("utf-8")], dir.path());
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    let ca = format!("{}/missing-ca.pem", dir.path().display());
    assert!(
        text.contains(&format!(
            "Error: Unable to load CA certificates, check bridge_cafile \"{ca}\"."
        )),
        "{text}"
    );
    assert!(
        text.contains("OpenSSL Error[0]: error:80000002:system library::No such file or directory"),
        "{text}"
    );
}

/// QoS 2 both ways: every hop of the exchange (PUBREC, PUBREL, PUBCOMP)
/// passes between the remote and the core, and each message arrives once.
/// 60 messages: three times mosquitto's in-flight window, which a lost
/// PUBREL or PUBCOMP would leave stuck.
#[test]
fn qos2_crosses_the_bridge_exactly_once_both_ways() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let conf = "listener {port} 127.0.0.1\nallow_anonymous true\n\
                connection b1\naddress 127.0.0.1:REMOTE\nclientid c1\n\
                topic # both 2 local/ remote/\nrestart_timeout 1\n"
        .replace("REMOTE", &remote.port.to_string());
    let local = Culex::start(&conf);
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    wait_for(
        remote.port,
        "$SYS/broker/connection/#",
        &up,
        Duration::from_secs(10),
    );

    let mut on_local = Raw::login(local.port, ProtocolVersion::V311, "on-local", None);
    on_local.subscribe(&[("local/#", 1)]);
    let mut on_remote = Raw::login(remote.port, ProtocolVersion::V311, "on-remote", None);
    on_remote.subscribe(&[("remote/#", 1)]);
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    let mut q = Raw::login(remote.port, ProtocolVersion::V311, "pub-remote", None);
    for i in 0..60 {
        assert_eq!(
            p.publish(&format!("local/out/{i}"), b"2", 2, false),
            Some(0)
        );
        assert_eq!(
            q.publish(&format!("remote/in/{i}"), b"2", 2, false),
            Some(0)
        );
    }
    let mut got_local: Vec<String> = drain(&mut on_local).into_iter().map(|m| m.0).collect();
    let mut got_remote: Vec<String> = drain(&mut on_remote).into_iter().map(|m| m.0).collect();
    got_local.sort();
    got_remote.sort();
    let mut want_local: Vec<String> = (0..60)
        .flat_map(|i| [format!("local/out/{i}"), format!("local/in/{i}")])
        .collect();
    let mut want_remote: Vec<String> = (0..60)
        .flat_map(|i| [format!("remote/out/{i}"), format!("remote/in/{i}")])
        .collect();
    want_local.sort();
    want_remote.sort();
    assert_eq!(got_local, want_local);
    assert_eq!(got_remote, want_remote);
}

/// `start_type lazy`: no connection until `threshold` messages wait (QoS 0
/// ones included), then all of them go out; after `idle_timeout` seconds
/// without messages the bridge disconnects until the queue fills again.
#[test]
fn lazy_bridge_starts_at_the_threshold_and_stops_when_idle() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let local = Culex::start(&bridging(
        remote.port,
        "start_type lazy\nthreshold 3\nidle_timeout 2\n",
    ));
    let mut on_remote = Raw::login(remote.port, ProtocolVersion::V311, "on-remote", None);
    on_remote.subscribe(&[("remote/#", 1), ("$SYS/broker/connection/#", 1)]);
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    assert_eq!(p.publish("local/1", b"a", 0, false), None);
    assert_eq!(p.publish("local/2", b"b", 1, false), Some(0));
    // Below the threshold: nothing reaches the remote.
    assert_eq!(drain(&mut on_remote), vec![]);
    assert!(!local.log_text().contains("Connecting bridge"));
    assert_eq!(p.publish("local/3", b"c", 0, false), None);
    let mut got = on_remote.collect_until(Duration::from_millis(700), Duration::from_secs(5));
    got.retain(|m| m.0.starts_with("remote/"));
    assert_eq!(
        got,
        vec![
            msg("remote/1", "a", false),
            msg("remote/2", "b", false),
            msg("remote/3", "c", false)
        ]
    );
    local.wait_log("Bridge connection local.c1 has exceeded idle timeout, disconnecting.");
    let down = on_remote.collect_until(Duration::from_millis(700), Duration::from_secs(3));
    assert_eq!(
        down,
        vec![msg("$SYS/broker/connection/c1/state", "0", false)]
    );
}

#[test]
fn bridge_max_packet_size_keeps_big_messages_home() {
    require_mosquitto();
    let remote = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let local = Culex::start(&bridging(remote.port, "bridge_max_packet_size 100\n"));
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    wait_for(
        remote.port,
        "$SYS/broker/connection/#",
        &up,
        Duration::from_secs(10),
    );
    let mut on_remote = Raw::login(remote.port, ProtocolVersion::V311, "on-remote", None);
    on_remote.subscribe(&[("remote/#", 1)]);
    let mut p = Raw::login(local.port, ProtocolVersion::V311, "pub-local", None);
    let big = vec![b'x'; 200];
    assert_eq!(p.publish("local/big", &big, 1, false), Some(0));
    assert_eq!(p.publish("local/small", b"fits", 1, false), Some(0));
    assert_eq!(
        drain(&mut on_remote),
        vec![msg("remote/small", "fits", false)]
    );
}

/// Reads one MQTT packet: (first byte, body).
fn read_packet(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("packet type");
    let first = b[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        s.read_exact(&mut b).expect("length");
        len |= usize::from(b[0] & 0x7F) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).expect("body");
    (first, body)
}

/// A 3.x-only broker (a mosquitto 1.x) answers a 5.0 CONNECT with 3.x
/// return code 1: the bridge says so and reconnects with 3.1.1.
#[test]
fn a_5_0_bridge_falls_back_to_3_1_1_for_a_3_x_remote() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let local = Culex::start(&bridging(port, "bridge_protocol_version mqttv50\n"));
    let accept = || {
        listener.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking");
                    s.set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    return s;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("no bridge connection: {e}"),
            }
        }
    };
    let mut s = accept();
    let (first, body) = read_packet(&mut s);
    assert_eq!((first, body[6]), (0x10, 5), "a 5.0 CONNECT first");
    s.write_all(&[0x20, 2, 0, 1]).expect("connack");
    let mut s = accept();
    let (first, body) = read_packet(&mut s);
    assert_eq!(
        (first, body[6]),
        (0x10, 0x84),
        "then 3.1.1 with the bridge bit"
    );
    s.write_all(&[0x20, 2, 0, 0]).expect("connack");
    // Up: the `1` state, then the SUBSCRIBE for `local/#` <-> `remote/#`.
    let mut types = Vec::new();
    while !types.contains(&0x82) {
        let (first, _) = read_packet(&mut s);
        types.push(first);
    }
    local.wait_log(
        "Warning: Remote bridge b1 does not support MQTT v5.0, reconnecting using MQTT v3.1.1.",
    );
}

/// Two addresses without round_robin: the primary is down, so the bridge
/// uses the secondary; once the primary is back it returns to it.
#[test]
fn without_round_robin_the_bridge_returns_to_its_primary_address() {
    require_mosquitto();
    let secondary = Culex::start_program(MOSQUITTO, REMOTE, &[]);
    let primary_port = common::free_port();
    let conf = format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\n\
         connection b1\naddress 127.0.0.1:{primary_port} 127.0.0.1:{}\nclientid c1\n\
         topic # both 1 local/ remote/\nrestart_timeout 1\n",
        secondary.port
    );
    let local = Culex::start(&conf);
    let up = msg("$SYS/broker/connection/c1/state", "1", true);
    let mut on_secondary = wait_for(
        secondary.port,
        "$SYS/broker/connection/#",
        &up,
        Duration::from_secs(10),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let rconf = dir.path().join("primary.conf");
    std::fs::write(
        &rconf,
        format!("listener {primary_port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .expect("write");
    let mut primary = spawn(MOSQUITTO, &rconf, &dir.path().join("primary.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", primary_port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let on_primary = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            primary_port,
            "$SYS/broker/connection/#",
            &up,
            Duration::from_secs(15),
        )
    }));
    // The secondary saw the bridge leave (its will).
    let left = on_secondary.collect_until(Duration::from_millis(500), Duration::from_secs(2));
    let _ = primary.kill();
    let _ = primary.wait();
    assert!(on_primary.is_ok(), "{}", local.log_text());
    assert!(
        left.contains(&msg("$SYS/broker/connection/c1/state", "0", false)),
        "{left:?}"
    );
}

/// conf/bridge.conf, the example, bridging (with a password) to the seed
/// setup conf/mosquitto.conf, both on free ports.
#[test]
fn the_example_bridge_config_reaches_the_seed_setup() {
    let root = env!("CARGO_MANIFEST_DIR");
    let seed = std::fs::read_to_string(format!("{root}/conf/mosquitto.conf")).expect("seed");
    let passwd = std::fs::read(format!("{root}/conf/passwd")).expect("passwd");
    let seed = seed
        .replace("listener 1883", "listener {port} 127.0.0.1")
        .replace("persistence true", "persistence false")
        .replace("password_file conf/passwd", "password_file {dir}/passwd");
    let remote = Culex::start_with(&seed, &[("passwd", &passwd)]);
    let example = std::fs::read_to_string(format!("{root}/conf/bridge.conf")).expect("example");
    let example = example
        .replace("listener 1884 127.0.0.1", "listener {port} 127.0.0.1")
        .replace(
            "address 127.0.0.1:1883",
            &format!("address 127.0.0.1:{}", remote.port),
        );
    let local = Culex::start(&example);
    remote.wait_log("as site7 (p2, c0, k60, u'culex').");

    let mut central = Raw::login(
        remote.port,
        ProtocolVersion::V311,
        "central",
        Some(("culex", "culex-demo")),
    );
    central.subscribe(&[("site7/#", 1)]);
    let mut here = Raw::login(local.port, ProtocolVersion::V311, "here", None);
    here.subscribe(&[("commands/#", 1)]);
    let mut sensor = Raw::login(local.port, ProtocolVersion::V311, "sensor", None);
    assert_eq!(sensor.publish("sensors/t1", b"21.5", 1, false), Some(0));
    assert_eq!(
        drain(&mut central),
        vec![msg("site7/sensors/t1", "21.5", false)]
    );
    assert_eq!(
        central.publish("site7/commands/fan", b"on", 1, false),
        Some(0)
    );
    assert_eq!(drain(&mut here), vec![msg("commands/fan", "on", false)]);
}
