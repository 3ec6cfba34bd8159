use super::*;
use crate::config::bridge::{BridgeTlsVersion, Direction, StartType};
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
    let c = connect_packet(&b, b.protocol_version, b.try_private);
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
    let packets = remote_subscriptions(&b, b.protocol_version, Qos::ExactlyOnce);
    // Two inbound topics subscribed, one outbound unsubscribed.
    assert_eq!(packets.len(), 3);
    assert!(matches!(&packets[2], Packet::Unsubscribe(u) if u.filters[0].as_str() == "up/x"));
}

#[test]
fn requests_in_configuration_order_capped_at_the_remotes_qos() {
    let b = bridge(
        "connection b\naddress h\ntopic a/# both 2\ntopic o/# out 1\ntopic i/# in 1\nbridge_protocol_version mqttv50\n",
    );
    let packets = remote_subscriptions(&b, b.protocol_version, Qos::AtLeastOnce);
    let lines: Vec<_> = packets
        .iter()
        .filter_map(|p| request_log_line(&b.local_clientid, p))
        .collect();
    let id = &b.local_clientid;
    // Ids are placeholders (1) until the core numbers them.
    assert_eq!(
        lines,
        vec![
            format!("Bridge {id} sending SUBSCRIBE (Mid: 1, Topic: a/#, QoS: 1, Options: 0x0c)"),
            format!("Bridge {id} sending UNSUBSCRIBE (Mid: 1, Topic: o/#)"),
            format!("Bridge {id} sending SUBSCRIBE (Mid: 1, Topic: i/#, QoS: 1, Options: 0x0c)"),
        ]
    );
    let b = bridge("connection b\naddress h\ntopic o/# out 1\nbridge_attempt_unsubscribe false\n");
    assert!(remote_subscriptions(&b, b.protocol_version, Qos::ExactlyOnce).is_empty());
}

#[test]
fn a_v5_connect_announces_max_inflight_messages_as_receive_maximum() {
    let v5 = "connection b\naddress h\ntopic # out\nbridge_protocol_version mqttv50\n";
    let b = bridge(v5);
    let c = connect_packet(&b, b.protocol_version, b.try_private);
    // mosquitto 2.0: receive maximum 20 and no session expiry interval.
    assert_eq!(c.properties.receive_maximum, Some(20));
    assert_eq!(c.properties.session_expiry_interval, None);
    let b = bridge(&format!("max_inflight_messages 7\n{v5}"));
    let c = connect_packet(&b, b.protocol_version, b.try_private);
    assert_eq!(c.properties.receive_maximum, Some(7));
    let b = bridge(&format!(
        "max_inflight_messages 7\n{v5}bridge_receive_maximum 3\n"
    ));
    let c = connect_packet(&b, b.protocol_version, b.try_private);
    assert_eq!(c.properties.receive_maximum, Some(3));
    // Unlimited: no property (65535), where mosquitto sends an invalid 0.
    let b = bridge(&format!("max_inflight_messages 0\n{v5}"));
    let c = connect_packet(&b, b.protocol_version, b.try_private);
    assert_eq!(c.properties.receive_maximum, None);
    // 3.1.1 has no properties.
    let b = bridge("connection b\naddress h\ntopic # out\n");
    let c = connect_packet(&b, b.protocol_version, b.try_private);
    assert_eq!(c.properties.receive_maximum, None);
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
            "connection a\naddress h\nbridge_psk 0123\n",
            "Error: Invalid bridge configuration: missing bridge_identity.",
        ),
        (
            "connection a\naddress h\nbridge_identity me\n",
            "Error: Invalid bridge configuration: missing bridge_psk.",
        ),
        (
            "connection a\naddress h\nbridge_identity me\nbridge_psk 12xy\n",
            "contains non-hexadecimal characters",
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

/// `topic #` bridge `b` to `h` with `extra` lines.
fn tls_bridge(extra: &str) -> String {
    format!("connection b\naddress h:8883\ntopic #\n{extra}")
}

#[test]
fn tls_directives_are_parsed_and_a_ca_turns_tls_on() {
    assert_eq!(bridge(&tls_bridge("")).tls, None);
    let b = bridge(&tls_bridge(
        "bridge_cafile /ca.pem\nbridge_certfile  /c.pem \nbridge_keyfile /k.pem\nbridge_insecure true\nbridge_tls_version tlsv1.3\nbridge_alpn mqtt\n",
    ));
    let tls = b.tls.expect("TLS on");
    assert_eq!(tls.cafile.as_deref(), Some("/ca.pem"));
    assert_eq!(tls.capath, None);
    assert_eq!(tls.certfile.as_deref(), Some("/c.pem"));
    assert_eq!(tls.keyfile.as_deref(), Some("/k.pem"));
    assert!(tls.insecure && !tls.use_os_certs);
    assert_eq!(tls.version, BridgeTlsVersion::Tls13);
    assert_eq!(tls.alpn.as_deref(), Some("mqtt"));

    let tls = bridge(&tls_bridge("bridge_capath /etc/ssl/certs\n"))
        .tls
        .expect("capath turns TLS on");
    assert_eq!(tls.capath.as_deref(), Some("/etc/ssl/certs"));
    assert_eq!(tls.version, BridgeTlsVersion::Tls12);
    assert!(!tls.insecure && tls.certfile.is_none());
    let tls = bridge(&tls_bridge("bridge_tls_use_os_certs true\n"))
        .tls
        .expect("the system store turns TLS on");
    assert!(tls.use_os_certs);
    assert!(
        bridge(&tls_bridge("bridge_tls_use_os_certs false\n"))
            .tls
            .is_none()
    );
    // `bridge_insecure false` without a CA is harmless.
    assert!(bridge(&tls_bridge("bridge_insecure false\n")).tls.is_none());
    // Each bridge has its own settings.
    let config = parse_str(
        &format!(
            "{}{}",
            tls_bridge("bridge_cafile /a\n"),
            "connection c\naddress h\ntopic #\n"
        ),
        "t.conf",
    )
    .expect("valid");
    assert!(config.bridges[0].tls.is_some() && config.bridges[1].tls.is_none());
}

#[test]
fn tls_warnings_as_mosquitto_logs_them() {
    let config = parse_str(
        &tls_bridge("bridge_cafile /ca\nbridge_insecure true\nbridge_tls_version tlsv1.1\n"),
        "t.conf",
    )
    .expect("valid");
    let texts: Vec<&str> = config.messages.iter().map(|m| m.text.as_str()).collect();
    assert!(
        texts.contains(&"Warning: Bridge b using insecure mode."),
        "{texts:?}"
    );
    // OpenSSL offers TLS 1.1 as mosquitto's does: nothing to warn about.
    assert!(!texts.iter().any(|t| t.contains("tlsv1.1")), "{texts:?}");
    assert_eq!(
        config.bridges[0].tls.as_ref().map(|t| t.version),
        Some(BridgeTlsVersion::Tls11)
    );
}

#[test]
fn tls_configuration_errors() {
    let cases: &[(&str, &str)] = &[
        // mosquitto's texts.
        (
            "bridge_tls_version tlsv1.0\n",
            "Error: Protocol tlsv1.0 not supported.",
        ),
        (
            "bridge_cafile /a\nbridge_cafile /b\n",
            "Error: Duplicate bridge_cafile value in configuration.",
        ),
        (
            "bridge_certfile /a\nbridge_certfile /b\n",
            "Error: Duplicate bridge_certfile value in configuration.",
        ),
        (
            "bridge_keyfile\n",
            "Error: Empty bridge_keyfile value in configuration.",
        ),
        (
            "bridge_insecure maybe\n",
            "Error: Invalid bridge_insecure value (maybe).",
        ),
        // culex's: mosquitto would connect in plaintext.
        (
            "bridge_certfile /c\nbridge_keyfile /k\n",
            "Error: Invalid bridge configuration: bridge_certfile is set but neither bridge_cafile nor bridge_capath is, so bridge b would not use TLS.",
        ),
        (
            "bridge_insecure true\n",
            "Error: Invalid bridge configuration: bridge_insecure is set but neither bridge_cafile nor bridge_capath is, so bridge b would not use TLS.",
        ),
        (
            "bridge_alpn mqtt\n",
            "Error: Invalid bridge configuration: bridge_alpn is set but neither",
        ),
        // culex's, after mosquitto's client tools.
        (
            "bridge_cafile /a\nbridge_certfile /c\n",
            "Error: Invalid bridge configuration: both bridge_certfile and bridge_keyfile must be provided if one of them is set.",
        ),
        (
            "bridge_cafile /a\nbridge_keyfile /k\n",
            "Error: Invalid bridge configuration: both bridge_certfile and bridge_keyfile must be provided if one of them is set.",
        ),
        (
            "bridge_cafile /a\nbridge_identity me\nbridge_psk 01\n",
            "Error: Cannot use both certificate and identity encryption in a single bridge.",
        ),
        (
            "bridge_ciphers HIGH\n",
            "Error: Invalid bridge configuration: bridge_ciphers is set but neither bridge_cafile nor bridge_capath is",
        ),
    ];
    for (extra, want) in cases {
        let lines = error(&tls_bridge(extra)).join("\n");
        assert!(lines.contains(want), "{extra:?}: {lines}");
    }
    // Errors on a line say where.
    let lines = error(&tls_bridge("bridge_tls_version sslv3\n")).join("\n");
    assert!(lines.contains("Error found at t.conf:4."), "{lines}");
}

#[test]
fn tcp_socket_options_of_2_1() {
    let b = bridge(
        "connection a\naddress h\ntopic #\nbridge_tcp_keepalive 30 10 3\nbridge_tcp_user_timeout 5000\n",
    );
    assert_eq!(
        b.tcp_keepalive,
        Some(crate::config::bridge::TcpKeepalive {
            idle: 30,
            interval: 10,
            count: 3
        })
    );
    assert_eq!(b.tcp_user_timeout, Some(5000));
    for (line, want) in [
        (
            "bridge_tcp_keepalive 0 10 3",
            "Error: invalid TCP keepalive idle value.",
        ),
        (
            "bridge_tcp_keepalive 30 -1 3",
            "Error: invalid TCP keepalive interval value.",
        ),
        (
            "bridge_tcp_keepalive 30 10 0",
            "Error: invalid TCP keepalive counter value.",
        ),
        (
            "bridge_tcp_keepalive 30 10",
            "Error: Empty bridge_tcp_keepalive_counter value in configuration.",
        ),
        (
            "bridge_tcp_user_timeout -5",
            "Error: invalid TCP user timeout value.",
        ),
        (
            "bridge_session_expiry_interval -1",
            "Error: bridge_session_expiry_interval must not be negative.",
        ),
    ] {
        let lines = error(&format!("connection a\naddress h\ntopic #\n{line}\n")).join("\n");
        assert!(lines.contains(want), "{line}: {lines}");
    }
}
