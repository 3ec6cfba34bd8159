//! paho-mqtt (what Home Assistant uses) against culex, checked line by line.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PASSWD: &[u8] = include_bytes!("../testdata/passwd/pbkdf2.passwd");

/// Debian's python3 has python3-paho-mqtt; `CULEX_PYTHON` overrides.
fn python() -> String {
    if let Ok(p) = std::env::var("CULEX_PYTHON") {
        return p;
    }
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return candidate.to_string();
        }
    }
    panic!("no python3 with paho-mqtt: run scripts/test, which installs python3-paho-mqtt");
}

fn scenario(port: u16, name: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/paho_check.py");
    let mut child = Command::new(python())
        .args([script, &port.to_string(), name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "paho scenario {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
