use super::*;
use crate::config::bridge::{Direction, StartType};
use crate::config::{ConfigError, parse_str};

fn bridge(text: &str) -> Bridge {
    let config = parse_str(text, "t.conf").expect("valid bridge config");
    config.bridges.into_iter().next().expect("one bridge")
}

fn error(text: &str) -> Vec<String> {
    let e: ConfigError = parse_str(text, "t.conf").expect_err("invalid bridge config");
    e.lines()
}

#[test]
fn defaults_are_mosquittos() {
    let b = bridge("connection b1\naddress 10.0.0.1\ntopic #\n");
    assert_eq!(b.addresses[0].to_string(), "10.0.0.1:1883");
    assert_eq!(b.topics[0].direction, Direction::Out);
    assert_eq!(b.topics[0].qos, crate::codec::Qos::AtMostOnce);
    assert!(b.remote_clientid.ends_with(".b1"));
    assert_eq!(b.local_clientid, format!("local.{}", b.remote_clientid));
    assert_eq!(
        b.notification_topic.as_str(),
        format!("$SYS/broker/connection/{}/state", b.remote_clientid)
    );
    assert_eq!(b.keepalive, 60);
    assert!(b.try_private && b.notifications && !b.clean_session);
    assert_eq!(b.start_type, StartType::Automatic);
    assert_eq!(
        b.restart_timeout,
        RestartTimeout::Backoff { base: 5, cap: 30 }
    );
    let c = connect_packet(&b);
    assert!(c.bridge && !c.clean_start);
    let will = c.will.expect("state will");
    assert_eq!((will.payload.as_slice(), will.retain), (&b"0"[..], true));
}

#[test]
fn topic_lines_build_both_filters() {
    let b = bridge(
        "connection b\naddress h:1884\nclientid r\ntopic sensors/# both 2 local/ remote/\ntopic \"\" in 1 a/b c/d\ntopic x out 1 \"\" up/\n",
    );
    let t = &b.topics;
    assert_eq!(t[0].local_filter.as_str(), "local/sensors/#");
    assert_eq!(t[0].remote_filter.as_str(), "remote/sensors/#");
    assert_eq!(t[1].local_filter.as_str(), "a/b");
    assert_eq!(t[1].remote_filter.as_str(), "c/d");
    assert_eq!(t[2].local_filter.as_str(), "x");
    assert_eq!(t[2].remote_filter.as_str(), "up/x");
    assert_eq!(
        remap_out(&b, "local/sensors/t1").as_deref(),
        Some("remote/sensors/t1")
    );
    assert_eq!(
        remap_in(&b, "remote/sensors/t1").as_deref(),
        Some("local/sensors/t1")
    );
    assert_eq!(remap_in(&b, "c/d").as_deref(), Some("a/b"));
    assert_eq!(remap_out(&b, "x").as_deref(), Some("up/x"));
    assert_eq!(remap_out(&b, "other"), None);
    let mut next = 65535u16;
    let packets = remote_subscriptions(&b, || {
        next -= 1;
        PacketId::new(next).expect("non-zero")
    });
    // Two inbound topics subscribed, one outbound unsubscribed.
    assert_eq!(packets.len(), 3);
    assert!(matches!(&packets[2], Packet::Unsubscribe(u) if u.filters[0].as_str() == "up/x"));
}

#[test]
fn bad_bridge_lines_fail_as_mosquitto() {
    let cases: &[(&str, &str)] = &[
        ("address h\n", "Error: Invalid bridge configuration."),
        (
            "connection a\nconnection a\n",
            "Error: Duplicate bridge name \"a\".",
        ),
        (
            "connection a\naddress h\naddress h\n",
            "Error: Invalid bridge configuration.",
        ),
        (
            "connection a\naddress h:0\n",
            "Error: Invalid port value (0).",
        ),
        (
            "connection a\naddress h\ntopic # sideways\n",
            "Error: Invalid bridge topic direction 'sideways'.",
        ),
        (
            "connection a\naddress h\ntopic # in 3\n",
            "Error: Invalid bridge QoS level '3'.",
        ),
        (
            "connection a\naddress h\ntopic \"\" in 1 a/\n",
            "Error: Invalid bridge remapping.",
        ),
        (
            "connection a\naddress h\nstart_type manual\n",
            "Error: Manual start_type not supported.",
        ),
        (
            "connection a\naddress h\nrestart_timeout 10 5\n",
            "Error: backoff cap is lower than the base in restart_timeout.",
        ),
        (
            "connection a\naddress h\nbridge_protocol_version mqttv6\n",
            "Error: Invalid bridge_protocol_version value (mqttv6).",
        ),
        (
            "connection a\naddress h\nbridge_cafile /x\n",
            "not supported by culex",
        ),
    ];
    for (text, want) in cases {
        let lines = error(text).join("\n");
        assert!(lines.contains(want), "{text:?}: {lines}");
    }
    let lines = error("connection a\ntopic #\n").join("\n");
    assert!(lines.contains("no remote addresses defined"), "{lines}");
    let lines = error("connection a\naddress h\n").join("\n");
    assert!(lines.contains("no topics defined"), "{lines}");
    let lines = error(
        "connection a\naddress h\ntopic #\nlocal_clientid same\nconnection b\naddress h\ntopic #\nlocal_clientid same\n",
    )
    .join("\n");
    assert!(
        lines.contains("local_clientid 'same' is not unique"),
        "{lines}"
    );
}

#[test]
fn keepalive_and_restart_timeout() {
    let b = bridge("connection a\naddress h\ntopic #\nkeepalive_interval 2\nrestart_timeout 7\n");
    assert_eq!(b.keepalive, 5);
    let mut backoff = Backoff::new(b.restart_timeout, 1);
    assert_eq!(backoff.next_delay(), Duration::from_secs(7));
    let mut backoff = Backoff::new(RestartTimeout::Backoff { base: 2, cap: 20 }, 42);
    for _ in 0..50 {
        let d = backoff.next_delay().as_secs();
        assert!((2..=20).contains(&d), "{d}");
    }
}

#[test]
fn keepalive_pings_then_gives_up() {
    let t0 = Instant::now();
    let mut k = KeepAlive::new(5, t0);
    assert_eq!(
        k.poll(t0 + Duration::from_secs(4)),
        KeepAliveAction::Nothing
    );
    assert_eq!(
        k.poll(t0 + Duration::from_secs(5)),
        KeepAliveAction::SendPing
    );
    assert_eq!(
        k.poll(t0 + Duration::from_secs(9)),
        KeepAliveAction::Nothing
    );
    assert_eq!(
        k.poll(t0 + Duration::from_secs(10)),
        KeepAliveAction::GiveUp
    );
    k.received();
    assert_eq!(
        k.poll(t0 + Duration::from_secs(10)),
        KeepAliveAction::SendPing
    );
}
