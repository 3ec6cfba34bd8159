//! MQTT.js (the npm `mqtt` package, as Zigbee2MQTT, Node-RED and MQTT
//! Explorer use it) against culex AND Debian's mosquitto 2.0.11, checked
//! line by line: each scenario in `tests/clients/mqttjs_check.js` runs
//! against both brokers started on the same config, and both must print the
//! expected lines. Where mosquitto 2.0.11 has an old quirk that culex
//! follows 2.1 for (issue 5), the mosquitto line is asserted separately and
//! the difference is explained.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");

const TCP: &str = "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n";

fn node_modules() -> &'static str {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/node_modules/mqtt"
    );
    assert!(
        Path::new(dir).exists(),
        "MQTT.js is not installed: run scripts/test (or `cd tests/clients && npm ci`)"
    );
    dir
}

/// Runs one scenario (`node mqttjs_check.js URL VERSION SCENARIO [CA]`) and
/// returns its stdout; a failing or hanging script fails the test.
fn js(url: &str, version: u8, name: &str, ca: Option<&Path>) -> String {
    node_modules();
    require("node");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mqttjs_check.js");
    let mut cmd = Command::new("node");
    cmd.args([script, url, &version.to_string(), name]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    run_scenario(
        cmd,
        &format!("MQTT.js scenario {name} on {url} v{version}"),
        Duration::from_secs(40),
    )
}

/// One MQTT 5 scenario over plain MQTT against both brokers on `config`.
fn v5(config: &str, name: &str) -> (String, String) {
    let pair = Pair::start(config, &[("passwd", PASSWD)]);
    let (c, m) = pair.run(|b| js(&format!("mqtt://127.0.0.1:{}", b.port), 5, name, None));
    let logs = format!(
        "--- culex log:\n{}\n--- mosquitto log:\n{}",
        pair.culex.log_text(),
        pair.mosquitto.log_text()
    );
    if std::env::var("CULEX_COMPAT_DEBUG").is_ok() {
        eprintln!("{name}\n--- culex:\n{c}--- mosquitto:\n{m}{logs}");
    }
    (c, m)
}

/// Asserts that both brokers gave `expected`.
fn same(name: &str, expected: &str) {
    let (c, m) = v5(TCP, name);
    assert_eq!(c, expected, "culex, scenario {name}");
    assert_eq!(m, expected, "mosquitto 2.0.11, scenario {name}");
}

// ---- certificates for wss:// ----

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "culex compat CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// (CA PEM, server certificate PEM, server key PEM) for 127.0.0.1.
fn pki() -> (String, String, String) {
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.distinguished_name.push(DnType::CommonName, "broker");
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

// ---- 1. transports, versions, QoS, retained, CONNACK codes ----

/// TCP on {port}, WebSockets on {port2}, WebSockets over TLS on {port3}.
/// The WebSockets listeners have no bind address: mosquitto 2.0's
/// libwebsockets listeners ignore it.
const TRANSPORTS: &str = "listener {port} 127.0.0.1\n\
    listener {port2}\nprotocol websockets\n\
    listener {port3}\nprotocol websockets\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n\
    allow_anonymous false\npassword_file {dir}/passwd\n";

fn transports(b: &Culex, name: &str) -> String {
    let ca = b.path("ca.pem");
    let mut all = String::new();
    for (scheme, port) in [("mqtt", b.port), ("ws", b.port2), ("wss", b.port3)] {
        for version in [4, 5] {
            let url = format!("{scheme}://127.0.0.1:{port}");
            all += &format!("== {scheme} v{version}\n");
            all += &js(
                &url,
                version,
                name,
                (scheme == "wss").then_some(ca.as_path()),
            );
        }
    }
    all
}

fn transport_pair() -> Pair {
    let (ca, cert, key) = pki();
    Pair::start(
        TRANSPORTS,
        &[
            ("passwd", PASSWD),
            ("ca.pem", ca.as_bytes()),
            ("server.pem", cert.as_bytes()),
            ("server.key", key.as_bytes()),
        ],
    )
}

#[test]
fn mqttjs_publishes_and_subscribes_over_mqtt_ws_and_wss_with_v4_and_v5() {
    let pair = transport_pair();
    let one = "connack rc=0 sessionPresent=false\nsuback 2\n\
               js/q0 m0 qos=0 retain=false\njs/q1 m1 qos=1 retain=false\n\
               js/q2 m2 qos=2 retain=false\njs/retained r qos=1 retain=false\n\
               late js/retained r qos=1 retain=true\n";
    let expected: String = ["mqtt", "ws", "wss"]
        .iter()
        .flat_map(|s| [4, 5].map(|v| format!("== {s} v{v}\n{one}")))
        .collect();
    let (c, m) = pair.run(|b| transports(b, "pubsub"));
    assert_eq!(c, expected, "culex\n{}", pair.culex.log_text());
    assert_eq!(m, expected, "mosquitto 2.0.11");
}

#[test]
fn mqttjs_reports_the_connack_code_for_a_wrong_password() {
    let pair = transport_pair();
    let expected: String = ["mqtt", "ws", "wss"]
        .iter()
        .flat_map(|s| {
            [(4, 5), (5, 135)].map(|(v, code)| format!("== {s} v{v}\nrefused code={code}\n"))
        })
        .collect();
    let (c, m) = pair.run(|b| transports(b, "badpass"));
    assert_eq!(c, expected, "culex");
    assert_eq!(m, expected, "mosquitto 2.0.11");
}

// ---- 2. MQTT 5 features ----

#[test]
fn v5_connack_properties_of_a_default_listener() {
    same("connack", "receiveMaximum=20\ntopicAliasMaximum=10\n");
}

#[test]
fn v5_session_expiry_keeps_the_session_within_the_interval_only() {
    same(
        "session-expiry",
        "within sessionPresent=true\nwithin se/t queued qos=1 retain=false\n\
         after sessionPresent=false\n",
    );
}

#[test]
fn v5_message_expiry_drops_expired_and_reduces_the_interval() {
    // culex today: "me/short expiry=1\nme/long expiry=10\nme/none expiry=none\n"
    same(
        "message-expiry",
        "me/long expiry=reduced\nme/none expiry=none\n",
    );
}

#[test]
fn v5_publish_properties_pass_through_unchanged_and_in_order() {
    same(
        "properties",
        "topic=pr/t\npayloadFormatIndicator=true\ncontentType=application/json\n\
         responseTopic=pr/reply\ncorrelationData=0001feff\n\
         userProperties={\"zulu\":\"1\",\"alpha\":[\"2\",\"3\"],\"mike\":\"4\"}\n",
    );
}

#[test]
fn v5_retained_message_keeps_its_properties_and_gets_the_subscription_id() {
    same(
        "retained-props",
        "rp/t kept qos=1 retain=true contentType=text/plain responseTopic=rp/reply\n\
         correlationData=cd sid=9\nuserProperties={\"b\":\"1\",\"a\":\"2\"}\n",
    );
}

#[test]
fn v5_retained_message_expiry() {
    // culex today: "re/long retain=true expiry=10\nre/short retain=true expiry=1\n"
    same("retained-expiry", "re/long retain=true expiry=reduced\n");
}

#[test]
fn v5_will_properties_pass_through() {
    same(
        "will-props",
        "wp/will {} qos=1 retain=false\ncontentType=application/json payloadFormatIndicator=true\n\
         responseTopic=wp/reply correlationData=0707\nuserProperties={\"device\":\"w\",\"zone\":\"1\"}\n",
    );
}

#[test]
fn v5_subscription_identifiers_on_delivery() {
    // Overlapping subscriptions: one copy per matching subscription, each
    // with its own identifier (mosquitto 2.0 and 2.1).
    same(
        "subid",
        "sid/a/x sid=5\nsid/a/x sid=7\nsid/a/y sid=5\nsid/b sid=undefined\nsid/b/x sid=7\n",
    );
}

#[test]
fn v5_no_local() {
    same(
        "nolocal",
        "nl/t other qos=1 retain=false\nnl/u self qos=1 retain=false\n",
    );
}

#[test]
fn v5_retain_as_published() {
    same(
        "rap",
        "rap=1 rap/t live qos=1 retain=true\nrap=0 rap/t live qos=1 retain=false\n\
         new rap=0 rap/t live qos=1 retain=true\n",
    );
}

#[test]
fn v5_retain_handling_0_1_2() {
    same(
        "retain-handling",
        "new rh/t rh=0 got=1\nagain rh/t rh=0 got=1\nnew rh/+ rh=1 got=1\n\
         again rh/+ rh=1 got=0\nnew rh/# rh=2 got=0\nagain rh/# rh=2 got=0\n",
    );
}

#[test]
fn v5_shared_subscriptions_share_messages_and_get_no_retained() {
    let (c, m) = v5(TCP, "shared");
    let expected = |retained: u8| {
        format!(
            "suback 1\nretained to shared={retained} to plain=1\n\
             shared total=10 a>0=true b>0=true\neach once=true\nplain=10\n"
        )
    };
    assert_eq!(c, expected(0), "culex");
    // mosquitto 2.0.11 quirk: it sends the retained message to each member
    // of the shared group when they subscribe; MQTT 5 (4.8.2) and issue 5
    // say no retained messages for shared subscriptions, as 2.1 does.
    assert_eq!(m, expected(2), "mosquitto 2.0.11");
}

#[test]
fn v5_topic_alias_from_the_client() {
    same(
        "alias-in",
        "ai/long/topic one qos=1 retain=false\nai/long/topic two qos=1 retain=false\n\
         ai/other three qos=1 retain=false\nai/other four qos=1 retain=false\n",
    );
}

#[test]
fn v5_outbound_topic_aliases_as_mosquitto_2_1_creates_them() {
    let (c, m) = v5(TCP, "alias-out");
    let delivered = "delivered ao/one,ao/one,ao/two,ao/three,ao/one,ao/three\n";
    // 2.1 (max_topic_alias_broker 10, the client allows 2): aliases are
    // handed out in order, 1 and 2, the first use carrying the topic, later
    // ones an empty topic; once the client's two are taken a new topic goes
    // out in full without an alias (mosquitto's alias__add_l2r).
    assert_eq!(
        c,
        format!(
            "wire topic='ao/one' alias=1\nwire topic='' alias=1\n\
             wire topic='ao/two' alias=2\nwire topic='ao/three' alias=undefined\n\
             wire topic='' alias=1\nwire topic='ao/three' alias=undefined\n{delivered}"
        ),
        "culex"
    );
    // mosquitto 2.0.11 never creates outbound aliases.
    let plain: String = ["one", "one", "two", "three", "one", "three"]
        .iter()
        .map(|t| format!("wire topic='ao/{t}' alias=undefined\n"))
        .collect();
    assert_eq!(m, format!("{plain}{delivered}"), "mosquitto 2.0.11");
}

#[test]
fn v5_maximum_packet_size_from_the_client() {
    same(
        "max-packet",
        "mp/small len=10\nmp/after len=10\nconnected=true\n",
    );
}

#[test]
fn v5_will_delay_and_its_cancellation_by_a_reconnect() {
    same(
        "will-delay",
        "wd/one wills=1 delayed=true\nwd-2 back sessionPresent=true\nwd/two wills=0\n",
    );
}

#[test]
fn v5_disconnect_with_will_message_0x04() {
    same("disconnect-will", "dw/with-will will qos=1 retain=false\n");
}

#[test]
fn v5_server_keep_alive_from_max_keepalive() {
    let (c, m) = v5(&format!("{TCP}max_keepalive 30\n"), "keepalive");
    let expected = "keepalive 120: connack rc=0 serverKeepAlive=30\n\
                    keepalive 20: connack rc=0 serverKeepAlive=undefined\n\
                    keepalive 0: connack rc=0 serverKeepAlive=30\n";
    assert_eq!(c, expected, "culex");
    assert_eq!(m, expected, "mosquitto 2.0.11");
}

#[test]
fn v311_keep_alive_above_max_keepalive() {
    let pair = Pair::start(&format!("{TCP}max_keepalive 30\n"), &[("passwd", PASSWD)]);
    let (c, m) = pair.run(|b| {
        js(
            &format!("mqtt://127.0.0.1:{}", b.port),
            4,
            "keepalive",
            None,
        )
    });
    // culex follows mosquitto 2.0.12+ (docs/config-choices.md): a 3.1.1
    // client asking for more than max_keepalive, or for 0 (none), is refused
    // with "identifier rejected". 2.0.11 accepts both.
    assert_eq!(
        c,
        "keepalive 120: refused code=2\n\
         keepalive 20: connack rc=0 serverKeepAlive=undefined\n\
         keepalive 0: refused code=2\n",
        "culex"
    );
    assert_eq!(
        m,
        "keepalive 120: connack rc=0 serverKeepAlive=undefined\n\
         keepalive 20: connack rc=0 serverKeepAlive=undefined\n\
         keepalive 0: connack rc=0 serverKeepAlive=undefined\n",
        "mosquitto 2.0.11"
    );
}

#[test]
fn v5_session_takeover_disconnects_the_first_client_with_0x8e() {
    let (c, m) = v5(TCP, "takeover");
    assert_eq!(
        c, "first disconnect reason=142\nfirst closed\nsecond connected=true\n",
        "culex"
    );
    // mosquitto 2.0.11 quirk: it closes the old connection without a
    // DISCONNECT; 2.1 sends DISCONNECT 0x8E (session taken over), as
    // issue 5 asks.
    assert_eq!(
        m, "first closed\nsecond connected=true\n",
        "mosquitto 2.0.11"
    );
}
