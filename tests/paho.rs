//! paho-mqtt (what Home Assistant uses) against culex, checked line by line.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");

fn scenario(port: u16, name: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/paho_check.py");
    let mut cmd = Command::new(python_with_paho());
    cmd.args([script, &port.to_string(), name]);
    run_scenario(
        cmd,
        &format!("paho scenario {name}"),
        Duration::from_secs(60),
    )
}

fn broker() -> Culex {
    Culex::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
        &[("passwd", PASSWD)],
    )
}

#[test]
fn paho_sees_mosquittos_connack_codes() {
    let b = broker();
    assert_eq!(
        scenario(b.port, "rc"),
        "v31 anonymous 5\nv31 wrong 5\nv31 alice 0\n\
         v311 anonymous 5\nv311 wrong 5\nv311 alice 0\n\
         v5 anonymous 135\nv5 wrong 135\nv5 alice 0\n"
    );
}

#[test]
fn paho_publishes_and_subscribes_at_every_qos() {
    let b = broker();
    for version in ["v311", "v5", "v31"] {
        let expected = "paho/q0 m0 qos=0 retain=0\npaho/q1 m1 qos=1 retain=0\npaho/q2 m2 qos=2 retain=0\n\
                        paho/retained r qos=1 retain=0\nlate paho/retained r qos=1 retain=1\n";
        let got = scenario(b.port, &format!("pubsub-{version}"));
        assert_eq!(got, expected, "{version}");
        // Clear the retained message for the next round.
        let port = b.port.to_string();
        run_client(
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "alice",
                "-P",
                "secret",
                "-t",
                "paho/retained",
                "-r",
                "-n",
            ],
            Duration::from_secs(5),
        );
    }
}
