//! Unit tests of the mosquitto.conf parser (spec §1–§5, §7).

use std::path::PathBuf;

use super::directives::{DIRECTIVES, Status};
use super::*;
use crate::codec::Qos;

fn ok(s: &str) -> Config {
    match parse_str(s, "t.conf") {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn err(s: &str) -> String {
    match parse_str(s, "t.conf") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 3);
            e.to_string()
        }
    }
}

fn at(msg: &str, line: usize) -> String {
    format!("{msg}\nError found at t.conf:{line}.")
}

fn msgs(c: &Config) -> Vec<&str> {
    c.messages.iter().map(|m| m.text.as_str()).collect()
}

// ---------------------------------------------------------------- §1 syntax

#[test]
fn unknown_directive_reports_file_and_line() {
    assert_eq!(
        err("listener 1883\n\nbogus_option 1\n"),
        at("Error: Unknown configuration variable \"bogus_option\".", 3)
    );
}

#[test]
fn comment_only_at_byte_zero() {
    ok("# comment\n#listener 1\nlistener 1883\n");
    assert_eq!(
        err("listener 1883\n  # indented\n"),
        at("Error: Unknown configuration variable \"#\".", 2)
    );
}

#[test]
fn blank_and_space_lines_skipped_tab_line_is_error() {
    ok("\n\r\n   \nlistener 1883\n\n");
    assert_eq!(
        err("\t\n"),
        at("Error: Unknown configuration variable \"\t\".", 1)
    );
}

#[test]
fn crlf_and_no_trailing_newline() {
    let c = ok("listener 1883\r\nallow_anonymous true\r\npassword_file /x\r\n");
    assert_eq!(c.listeners[0].port, 1883);
    assert!(c.security.allow_anonymous);
    assert_eq!(c.security.password_file, Some(PathBuf::from("/x")));
    let c = ok("listener 1884");
    assert_eq!(c.listeners[0].port, 1884);
}

#[test]
fn tab_is_not_a_separator_spaces_are() {
    assert_eq!(
        err("listener\t1883\n"),
        at(
            "Error: Unknown configuration variable \"listener\t1883\".",
            1
        )
    );
    let c = ok("   listener    1883    \n");
    assert_eq!(c.listeners[0].port, 1883);
}

#[test]
fn names_are_case_sensitive() {
    assert_eq!(
        err("Listener 1883\n"),
        at("Error: Unknown configuration variable \"Listener\".", 1)
    );
}

#[test]
fn booleans() {
    for (v, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        let c = ok(&format!("listener 1883\nallow_anonymous {v}\n"));
        assert_eq!(c.security.allow_anonymous, want);
    }
    assert_eq!(
        err("allow_anonymous yes\n"),
        at("Error: Invalid allow_anonymous value (yes).", 1)
    );
    assert_eq!(
        err("allow_anonymous true\t\n"),
        at("Error: Invalid allow_anonymous value (true\t).", 1)
    );
    assert_eq!(
        err("listener 1\nallow_anonymous\n"),
        at("Error: Empty allow_anonymous value in configuration.", 2)
    );
    assert_eq!(
        err("allow_anonymous   \n"),
        at("Error: Empty allow_anonymous value in configuration.", 1)
    );
    // only the next word is read
    let c = ok("listener 1883\nallow_anonymous true junk\n");
    assert!(c.security.allow_anonymous);
}

#[test]
fn integers_use_atoi() {
    assert_eq!(ok("sys_interval 5abc\n").sys_interval, 5);
    assert_eq!(ok("sys_interval abc\n").sys_interval, 0);
    assert_eq!(ok("sys_interval 7 8\n").sys_interval, 7);
    assert_eq!(
        err("sys_interval -1\n"),
        at("Error: Invalid sys_interval value (-1).", 1)
    );
    assert_eq!(
        err("sys_interval\n"),
        at("Error: Empty sys_interval value in configuration.", 1)
    );
}

#[test]
fn strings_take_rest_of_line_trimmed() {
    let c = ok("listener 1883\npassword_file   name with  spaces \t \n");
    assert_eq!(
        c.security.password_file,
        Some(PathBuf::from("name with  spaces"))
    );
    let c = ok("listener 1883\npassword_file /x # c\n");
    assert_eq!(c.security.password_file, Some(PathBuf::from("/x # c")));
    assert_eq!(
        err("password_file\n"),
        at("Error: Empty password_file value in configuration.", 1)
    );
    assert_eq!(
        err("password_file  \t \n"),
        at("Error: Empty password_file value in configuration.", 1)
    );
    match parse_bytes(b"password_file \xff\xfe\n", "t.conf") {
        Err(e) => assert_eq!(
            e.to_string(),
            at("Error: Malformed UTF-8 in configuration.", 1)
        ),
        Ok(_) => panic!("expected error"),
    }
}

#[test]
fn duplicate_strings_are_errors_user_last_wins() {
    assert_eq!(
        err("password_file a\nacl_file b\npassword_file c\n"),
        at("Error: Duplicate password_file value in configuration.", 3)
    );
    for d in [
        "acl_file",
        "persistence_file",
        "persistence_location",
        "pid_file",
        "log_timestamp_format",
    ] {
        assert_eq!(
            err(&format!("{d} a\n{d} b\n")),
            at(&format!("Error: Duplicate {d} value in configuration."), 2)
        );
    }
    assert_eq!(ok("user a\nuser b\n").user, "b");
    // bool/int: last wins
    let c = ok("sys_interval 5\nsys_interval 6\n");
    assert_eq!(c.sys_interval, 6);
}

#[test]
fn duplicate_in_different_listener_scopes_is_fine() {
    let c = ok(
        "per_listener_settings true\nlistener 1\npassword_file a\nlistener 2\npassword_file b\n",
    );
    assert_eq!(
        c.listeners[0].security.password_file,
        Some(PathBuf::from("a"))
    );
    assert_eq!(
        c.listeners[1].security.password_file,
        Some(PathBuf::from("b"))
    );
    // global scope: the second one below another listener is still a duplicate
    assert_eq!(
        err("listener 1\npassword_file a\nlistener 2\npassword_file b\n"),
        at("Error: Duplicate password_file value in configuration.", 4)
    );
}

#[test]
fn deprecation_notices() {
    let c = ok(
        "port 1884\nbind_address 127.0.0.1\nallow_duplicate_messages true\nclientid_prefixes x\nmessage_size_limit 10\nretry_interval 20\n",
    );
    let m = msgs(&c);
    assert!(m.contains(&"The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead."));
    assert!(m.contains(&"The 'bind_address' option is now deprecated and will be removed in a future version. The behaviour will default to true."));
    assert!(m.contains(&"The 'allow_duplicate_messages' option is now deprecated and will be removed in a future version. The behaviour will default to true."));
    assert!(m.contains(
        &"The 'clientid_prefixes' option is now deprecated and will be removed in a future version."
    ));
    assert!(m.contains(
        &"Note: It is recommended to replace `message_size_limit` with `max_packet_size`."
    ));
    assert!(m.contains(&"Warning: The retry_interval option is no longer available."));
    assert!(c.limits.allow_duplicate_messages);
    assert_eq!(c.limits.message_size_limit, 10);
    assert_eq!(c.security.clientid_prefixes.as_deref(), Some("x"));
    assert_eq!(
        c.listeners[0].security.clientid_prefixes.as_deref(),
        Some("x")
    );
}

#[test]
fn port_twice_warns_last_wins() {
    let c = ok("port 1884\nport 1885\n");
    assert!(msgs(&c).contains(
        &"Warning: Default listener port specified multiple times. Only the latest will be used."
    ));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].port, 1885);
    assert_eq!(err("port 0\n"), at("Error: Invalid port value (0).", 1));
    assert_eq!(
        err("port 65536\n"),
        at("Error: Invalid port value (65536).", 1)
    );
}

#[test]
fn notices_are_kept_on_error() {
    let e = parse_str("port 1\nbogus\n", "t.conf").unwrap_err();
    assert_eq!(e.notices.len(), 1);
    assert_eq!(e.kind, ConfigErrorKind::Parse);
}

#[test]
fn never_panics_on_odd_input() {
    let inputs: [&[u8]; 10] = [
        b"",
        b"\n",
        b"\0",
        b"listener\0 1883",
        b"persistent_client_expiration h",
        b"include_dir",
        b"log_dest file",
        b"plugin_opt_",
        b"listener 99999999999999999999",
        b"\xff\xfe",
    ];
    for i in inputs {
        let _ = parse_bytes(i, "x");
    }
    for d in DIRECTIVES {
        for v in ["", " ", " 0", " -1", " abc", " 1 2 3", " \t", " #"] {
            let _ = parse_str(&format!("{}{}\n", d.name, v), "x");
            let _ = parse_str(&format!("listener 1\n{}{}\n", d.name, v), "x");
        }
    }
}

// ---------------------------------------------------------------- §2 listeners

#[test]
fn listener_forms() {
    let c = ok(
        "listener 1883\nlistener 1884 127.0.0.1 ignored\nlistener 1885 #comment\nlistener 0 /run/mqtt.sock\n",
    );
    assert_eq!(c.listeners.len(), 4);
    assert_eq!(c.listeners[0].bind_address, None);
    assert_eq!(c.listeners[1].bind_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.listeners[2].bind_address, None);
    assert_eq!(c.listeners[3].port, 0);
    assert_eq!(
        c.listeners[3].unix_path,
        Some(PathBuf::from("/run/mqtt.sock"))
    );
    assert!(!c.local_only);
    assert_eq!(
        err("listener 0\n"),
        at(
            "Error: A listener with port 0 must provide a Unix socket path.",
            1
        )
    );
    assert_eq!(
        err("listener abc\n"),
        at(
            "Error: A listener with port 0 must provide a Unix socket path.",
            1
        )
    );
    assert_eq!(
        err("listener 65536\n"),
        at("Error: Invalid port value (65536).", 1)
    );
    assert_eq!(
        err("listener -1\n"),
        at("Error: Invalid port value (-1).", 1)
    );
    assert_eq!(
        err("listener\n"),
        at("Error: Empty listener value in configuration.", 1)
    );
}

#[test]
fn listener_defaults() {
    let l = &ok("listener 1883\n").listeners[0];
    assert_eq!(l.protocol, Protocol::Mqtt);
    assert_eq!(l.max_qos, Qos::ExactlyOnce);
    assert_eq!(l.max_connections, None);
    assert_eq!(l.max_topic_alias, 10);
    assert_eq!(l.max_topic_alias_broker, 10);
    assert_eq!(l.mount_point, None);
    assert_eq!(l.socket_domain, None);
    assert_eq!(l.bind_interface, None);
    assert!(!l.use_username_as_clientid);
    assert_eq!(l.accept_protocol_versions, None);
    assert!(!l.is_default);
    assert!(!l.security.allow_anonymous);
}

#[test]
fn listener_options_apply_to_current_listener() {
    let c = ok(
        "listener 1\nmax_connections 5\nmax_qos 1\nmax_topic_alias 3\nmax_topic_alias_broker 0\nmount_point a/\nuse_username_as_clientid true\nsocket_domain ipv4\nbind_interface eth0\naccept_protocol_versions 5, 4\nlistener 2\nmaximum_qos 0\nsocket_domain ipv6\nmax_connections -7\n",
    );
    let (a, b) = (&c.listeners[0], &c.listeners[1]);
    assert_eq!(a.max_connections, Some(5));
    assert_eq!(a.max_qos, Qos::AtLeastOnce);
    assert_eq!(a.max_topic_alias, 3);
    assert_eq!(a.max_topic_alias_broker, 0);
    assert_eq!(a.mount_point.as_deref(), Some("a/"));
    assert!(a.use_username_as_clientid);
    assert_eq!(a.socket_domain, Some(SocketDomain::Ipv4));
    assert_eq!(a.bind_interface.as_deref(), Some("eth0"));
    assert_eq!(a.accept_protocol_versions, Some(vec![4, 5]));
    assert_eq!(b.max_qos, Qos::AtMostOnce);
    assert_eq!(b.socket_domain, Some(SocketDomain::Ipv6));
    assert_eq!(b.max_connections, None);
    assert_eq!(b.mount_point, None);
}

#[test]
fn listener_option_errors() {
    assert_eq!(
        err("listener 1\nmax_qos 3\n"),
        at("Error: max_qos must be between 0 and 2 inclusive.", 2)
    );
    assert_eq!(
        err("listener 1\nmax_topic_alias 65536\n"),
        at("Error: Invalid max_topic_alias value in configuration.", 2)
    );
    assert_eq!(
        err("listener 1\nsocket_domain ipv5\n"),
        at(
            "Error: Invalid socket_domain value \"ipv5\" in configuration.",
            2
        )
    );
    assert_eq!(
        err("listener 1\nprotocol mqttsn\n"),
        at("Error: Invalid protocol value (mqttsn).", 2)
    );
    assert_eq!(
        err("listener 1\nmount_point a/#\n"),
        at(
            "Error: Invalid mount_point 'a/#'. Does it contain a wildcard character?",
            2
        )
    );
    assert_eq!(
        err("mount_point a/\nlistener 1\n"),
        at(
            "Error: You must use create a listener before using the mount_point option in the configuration file.",
            1
        )
    );
    assert_eq!(
        err("accept_protocol_versions 5\n"),
        at(
            "Error: You must define a listener before using the accept_protocol_versions option.",
            1
        )
    );
    assert_eq!(
        err("listener 1\naccept_protocol_versions , ,\n"),
        at(
            "Error: Empty accept_protocol_versions value in configuration.",
            2
        )
    );
    // non-fatal empties
    let c = ok("listener 1\nmax_connections\nprotocol\n");
    assert!(c.messages.iter().any(|m| m.level == MsgLevel::Error
        && m.text == "Error: Empty max_connections value in configuration."));
    assert!(msgs(&c).contains(&"Error: Empty protocol value in configuration."));
}

#[test]
fn default_listener_created_after_explicit_ones() {
    let c = ok("port 18844\nbind_address 127.0.0.1\nlistener 18843 127.0.0.1\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].port, 18843);
    assert!(!c.listeners[0].is_default);
    assert_eq!(c.listeners[1].port, 18844);
    assert_eq!(c.listeners[1].bind_address.as_deref(), Some("127.0.0.1"));
    assert!(c.listeners[1].is_default);
    let c = ok("bind_address 10.0.0.1\n");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].port, 1883);
    assert_eq!(
        err("bind_address a\nbind_address b\n"),
        at(
            "Error: Duplicate default listener bind_address value in configuration.",
            2
        )
    );
}

#[test]
fn stray_option_creates_public_default_listener() {
    let c = ok("max_connections 10\nlistener 1884 127.0.0.1\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].port, 1883);
    assert_eq!(c.listeners[1].bind_address, None);
    assert_eq!(c.listeners[1].max_connections, Some(10));
    // options that do not create it
    for o in [
        "max_topic_alias 5",
        "protocol mqtt",
        "allow_anonymous true",
        "acl_file x",
        "max_connections -1",
        "max_qos 2",
    ] {
        let c = ok(&format!("{o}\nlistener 1884\n"));
        assert_eq!(c.listeners.len(), 1, "{o}");
    }
    for o in [
        "max_qos 1",
        "socket_domain ipv4",
        "bind_interface lo",
        "use_username_as_clientid true",
    ] {
        let c = ok(&format!("{o}\nlistener 1884\n"));
        assert_eq!(c.listeners.len(), 2, "{o}");
    }
}

#[test]
fn default_listener_security_options_with_per_listener_settings() {
    for o in [
        "password_file p",
        "allow_zero_length_clientid false",
        "plugin /usr/lib/mosquitto_password_file.so",
    ] {
        let c = ok(&format!("per_listener_settings true\n{o}\nlistener 1884\n"));
        assert_eq!(c.listeners.len(), 2, "{o}");
        let c = ok(&format!("{o}\nlistener 1884\n"));
        assert_eq!(c.listeners.len(), 1, "{o}");
    }
    let c = ok("per_listener_settings true\nallow_anonymous true\nacl_file a\nlistener 1884\n");
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn local_only_mode() {
    for text in [
        "",
        "# only comments\n",
        "max_connections 10\n",
        "persistence true\nallow_anonymous true\n",
    ] {
        let c = ok(text);
        assert!(c.local_only, "{text}");
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].bind_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.listeners[1].bind_address.as_deref(), Some("::1"));
        assert!(
            c.listeners
                .iter()
                .all(|l| l.port == 1883 && l.security.allow_anonymous)
        );
        assert_eq!(c.listeners[0].max_connections, None);
        let m = msgs(&c);
        assert_eq!(&m[m.len() - 3..], &listeners::LOCAL_ONLY_WARNINGS[..]);
    }
    // 2.0.21+: explicit allow_anonymous false honoured
    let c = ok("allow_anonymous false\n");
    assert!(c.local_only);
    assert!(!c.listeners[0].security.allow_anonymous);
    assert!(!ok("port 1883\n").local_only);
    assert!(!ok("bind_address ::\n").local_only);
    assert!(!ok("listener 0 /tmp/s\n").local_only);
}

#[test]
fn cli_ports_only_in_local_only_mode() {
    let mut c = Config::default_local_only();
    assert!(c.local_only && c.security.allow_anonymous);
    assert_eq!(c.listeners.len(), 2);
    apply_cli_ports(&mut c, &[18900, 18901]);
    let got: Vec<_> = c
        .listeners
        .iter()
        .map(|l| (l.port, l.bind_address.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        got,
        vec![
            (18900, "127.0.0.1".to_string()),
            (18900, "::1".to_string()),
            (18901, "127.0.0.1".to_string()),
            (18901, "::1".to_string())
        ]
    );
    let mut c = ok("listener 1884\n");
    apply_cli_ports(&mut c, &[18900]);
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].port, 1884);
}

// ---------------------------------------------------------------- §3 per_listener_settings

#[test]
fn per_listener_settings_false_makes_security_global() {
    let c = ok(
        "listener 1\nlistener 2\nallow_anonymous true\npassword_file p\nacl_file a\nauto_id_prefix x-\nallow_zero_length_clientid false\n",
    );
    assert!(!c.per_listener_settings);
    for l in &c.listeners {
        assert!(l.security.allow_anonymous);
        assert_eq!(l.security.password_file, Some(PathBuf::from("p")));
        assert_eq!(l.security.acl_file, Some(PathBuf::from("a")));
        assert_eq!(l.security.auto_id_prefix, "x-");
        assert!(!l.security.allow_zero_length_clientid);
    }
}

#[test]
fn per_listener_settings_true_is_per_listener() {
    let c = ok(
        "per_listener_settings true\nlistener 1\nallow_anonymous true\nlistener 2\npassword_file p\nauto_id_prefix y-\n",
    );
    assert!(c.per_listener_settings);
    let (a, b) = (&c.listeners[0].security, &c.listeners[1].security);
    assert!(a.allow_anonymous);
    assert!(!b.allow_anonymous);
    assert_eq!(a.password_file, None);
    assert_eq!(b.password_file, Some(PathBuf::from("p")));
    assert_eq!(a.auto_id_prefix, "auto-");
    assert_eq!(b.auto_id_prefix, "y-");
}

#[test]
fn per_listener_settings_ordering() {
    let e = "Error: per_listener_settings must be set before any other security settings.";
    for first in [
        "allow_anonymous true",
        "check_retain_source true",
        "password_file x",
        "acl_file x",
        "auto_id_prefix a",
        "allow_zero_length_clientid true",
        "plugin /x/mosquitto_acl_file.so",
    ] {
        assert_eq!(
            err(&format!(
                "listener 1\n{first}\nper_listener_settings true\n"
            )),
            at(e, 3),
            "{first}"
        );
    }
    // a late `false` is accepted (2.0: every line counts, the last wins)
    ok("allow_anonymous true\nper_listener_settings false\nlistener 1\n");
    let c = ok("per_listener_settings true\nper_listener_settings false\nlistener 1\n");
    assert!(!c.per_listener_settings);
    assert_eq!(
        err("per_listener_settings true\nper_listener_settings junk\n"),
        at("Error: Invalid per_listener_settings value (junk).", 2)
    );
    // non-security settings before it are fine
    ok("persistence true\nlistener 1\nper_listener_settings true\n");
}

#[test]
fn listener_allow_anonymous_and_auto_id_prefix() {
    let c = ok(
        "allow_anonymous false\nlistener 1\nlistener_allow_anonymous true\nlistener_auto_id_prefix l1-\nlistener 2\n",
    );
    assert!(c.listeners[0].security.allow_anonymous);
    assert_eq!(c.listeners[0].security.auto_id_prefix, "l1-");
    assert!(!c.listeners[1].security.allow_anonymous);
    assert_eq!(c.listeners[1].security.auto_id_prefix, "auto-");
    assert!(!c.security.allow_anonymous);
    let c = ok("per_listener_settings true\nlistener 1\nlistener_allow_anonymous true\n");
    assert!(c.listeners[0].security.allow_anonymous);
}

// ---------------------------------------------------------------- plugins

#[test]
fn builtin_plugins_act_like_files() {
    let c = ok(
        "listener 1883\nplugin /usr/lib/mosquitto_password_file.so\nplugin_opt_password_file /etc/pw\nauth_plugin /usr/lib/x86_64-linux-gnu/mosquitto_acl_file.so\nauth_opt_acl_file /etc/acl\n",
    );
    assert_eq!(c.security.password_file, Some(PathBuf::from("/etc/pw")));
    assert_eq!(c.security.acl_file, Some(PathBuf::from("/etc/acl")));
    let c = ok(
        "per_listener_settings true\nlistener 1\nplugin mosquitto_password_file.so\nplugin_opt_password_file pw1\nlistener 2\nglobal_plugin /p/mosquitto_acl_file.so\nplugin_opt_acl_file acl\n",
    );
    assert_eq!(
        c.listeners[0].security.password_file,
        Some(PathBuf::from("pw1"))
    );
    assert_eq!(c.listeners[1].security.password_file, None);
    assert_eq!(c.security.acl_file, Some(PathBuf::from("acl")));
    assert_eq!(
        err(
            "listener 1\npassword_file a\nplugin /x/mosquitto_password_file.so\nplugin_opt_password_file b\n"
        ),
        at("Error: Duplicate password_file value in configuration.", 4)
    );
    let c = ok("listener 1\nplugin /x/mosquitto_password_file.so\nplugin_opt_other 1\n");
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn other_plugins_are_refused() {
    for d in ["plugin", "auth_plugin", "global_plugin"] {
        let e = err(&format!(
            "listener 1\n{d} /usr/lib/mosquitto_dynamic_security.so\n"
        ));
        assert!(e.starts_with(&format!("Error: The '{d}' option with '/usr/lib/mosquitto_dynamic_security.so' is not supported by culex")), "{e}");
        assert!(e.ends_with("Error found at t.conf:2."));
    }
}

#[test]
fn plugin_opt_errors() {
    assert_eq!(
        err("listener 1\nplugin   \n"),
        at("Error: Empty auth_plugin value in configuration.", 2)
    );
    assert_eq!(
        err("plugin_opt_password_file x\n"),
        at(
            "Error: An auth_opt_ option exists in the config file without an auth_plugin.",
            1
        )
    );
    assert_eq!(
        err("plugin /a/mosquitto_acl_file.so\nplugin_opt_ab x\n"),
        at("Error: Invalid auth_opt_ config option.", 2)
    );
    assert_eq!(
        err("plugin /a/mosquitto_acl_file.so\nplugin_opt_acl_file   \n"),
        at("Error: Empty acl_file value in configuration.", 2)
    );
    assert_eq!(
        err("auth_plugin_deny_special_chars true\n"),
        at(
            "Error: An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin.",
            1
        )
    );
}

// ---------------------------------------------------------------- refuse / warn

#[test]
fn refused_directives_exit_3_with_name_and_line() {
    for d in DIRECTIVES {
        if let Status::Refuse(why) = d.status {
            let e = parse_str(&format!("listener 1883\n{} x\n", d.name), "t.conf").unwrap_err();
            assert_eq!(e.exit_code(), 3);
            assert_eq!(
                e.to_string(),
                at(
                    &format!(
                        "Error: The '{}' option is not supported by culex: {why}.",
                        d.name
                    ),
                    2
                )
            );
        }
    }
    let e = err("listener 9001\nprotocol http_api\n");
    assert!(e.starts_with("Error: The 'protocol http_api' option is not supported by culex"));
}

#[test]
fn every_table_entry_is_handled() {
    for d in DIRECTIVES {
        let name = if d.name.ends_with('_') {
            format!("{}password_file", d.name)
        } else {
            d.name.to_string()
        };
        let text = format!("listener 1883\nplugin /x/mosquitto_password_file.so\n{name} 1\n");
        match parse_str(&text, "t.conf") {
            Ok(_) => assert!(!matches!(d.status, Status::Refuse(_)), "{name}"),
            Err(e) => {
                assert!(
                    !e.message.contains("Unknown configuration variable"),
                    "{name}: {e}"
                );
            }
        }
    }
}

#[test]
fn warn_directives_are_recorded() {
    let c = ok(
        "listener 1\nmemory_limit 100\nlog_facility 3\nwebsockets_log_level 1\nenable_control_api false\nhttp_dir /x\nwebsockets_origin a\nwebsockets_origin b\nwebsockets_headers_size 10\n",
    );
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    // memory_limit is enforced: no warning.
    assert!(c.warnings.iter().all(|w| !w.contains("memory_limit")));
    assert_eq!(c.limits.memory_limit, 100);
    assert_eq!(c.logging.facility, Some(3));
    assert_eq!(c.listeners[0].websockets_origins, vec!["a", "b"]);
    assert_eq!(
        err("log_facility 8\n"),
        at("Error: Invalid log_facility value (8).", 1)
    );
    assert_eq!(
        err("memory_limit -1\n"),
        at("Error: Invalid memory_limit value (-1).", 1)
    );
    // retry_interval: the mosquitto warning only
    let c = ok("retry_interval 10\n");
    assert!(c.warnings.is_empty());
}

// ---------------------------------------------------------------- §7 defaults and values

#[test]
fn global_defaults() {
    let c = ok("listener 1883\n");
    let l = &c.limits;
    assert_eq!(l.max_keepalive, 0);
    assert_eq!(l.max_packet_size, 0);
    assert_eq!(l.message_size_limit, 0);
    assert_eq!(l.max_inflight_messages, 20);
    assert_eq!(l.max_inflight_bytes, 0);
    assert_eq!(l.max_queued_messages, 1000);
    assert_eq!(l.max_queued_bytes, 0);
    assert!(!l.queue_qos0_messages);
    assert!(l.retain_available);
    assert!(!l.upgrade_outgoing_qos);
    assert!(!l.allow_duplicate_messages);
    assert!(!l.set_tcp_nodelay);
    assert_eq!(l.persistent_client_expiration, None);
    assert!(!l.check_retain_source);
    assert_eq!(l.global_max_clients, None);
    assert_eq!(l.global_max_connections, None);
    assert_eq!(l.packet_buffer_size, 4096);
    assert_eq!(l.memory_limit, 0);
    assert_eq!(c.user, "mosquitto");
    assert_eq!(c.pid_file, None);
    assert_eq!(c.sys_interval, 10);
    assert!(!c.per_listener_settings);
    let s = &c.security;
    assert!(!s.allow_anonymous);
    assert_eq!(s.password_file, None);
    assert_eq!(s.acl_file, None);
    assert!(s.allow_zero_length_clientid);
    assert_eq!(s.auto_id_prefix, "auto-");
    let p = &c.persistence;
    assert!(!p.enabled);
    assert_eq!(p.file, "mosquitto.db");
    assert_eq!(p.location, None);
    assert_eq!(p.autosave_interval, 1800);
    assert!(!p.autosave_on_changes);
    assert_eq!(p.path(), PathBuf::from("mosquitto.db"));
    let g = &c.logging;
    assert_eq!(g.dest, vec![LogDest::Stderr]);
    assert_eq!(g.types, LogTypes::DEFAULT);
    assert!(g.timestamp);
    assert_eq!(g.timestamp_format, None);
    assert!(g.connection_messages);
    assert_eq!(g.facility, None);
    assert!(c.warnings.is_empty());
    assert!(c.messages.is_empty());
}

#[test]
fn global_values() {
    let c = ok(
        "listener 1883\nmax_keepalive 60\nmax_packet_size 20\nmessage_size_limit 268435455\nmax_inflight_messages 5\nmax_inflight_bytes 100\nmax_queued_messages 0\nmax_queued_bytes 200\nqueue_qos0_messages true\nretain_available false\nupgrade_outgoing_qos true\nset_tcp_nodelay true\ncheck_retain_source true\nglobal_max_clients 7\nglobal_max_connections 8\npacket_buffer_size 1024\nsys_interval 0\nuser nobody\npid_file /run/m.pid\nenable_control_api true\n",
    );
    let l = &c.limits;
    assert_eq!(l.max_keepalive, 60);
    assert_eq!(l.max_packet_size, 20);
    assert_eq!(l.message_size_limit, 268_435_455);
    assert_eq!(l.max_inflight_messages, 5);
    assert_eq!(l.max_inflight_bytes, 100);
    assert_eq!(l.max_queued_messages, 0);
    assert_eq!(l.max_queued_bytes, 200);
    assert!(l.queue_qos0_messages && !l.retain_available && l.upgrade_outgoing_qos);
    assert!(l.set_tcp_nodelay && l.check_retain_source);
    assert_eq!(l.global_max_clients, Some(7));
    assert_eq!(l.global_max_connections, Some(8));
    assert_eq!(l.packet_buffer_size, 1024);
    assert_eq!(c.sys_interval, 0);
    assert_eq!(c.user, "nobody");
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/m.pid")));
    assert!(c.enable_control_api);
}

#[test]
fn limit_ranges() {
    assert_eq!(
        ok("max_inflight_messages 65535\n")
            .limits
            .max_inflight_messages,
        0
    );
    assert_eq!(
        ok("max_inflight_messages -3\n")
            .limits
            .max_inflight_messages,
        0
    );
    assert_eq!(
        err("max_inflight_messages 65536\n"),
        at("Error: max_inflight_messages must be <= 65535.", 1)
    );
    assert_eq!(
        err("max_keepalive 65536\n"),
        at("Error: Invalid max_keepalive value (65536).", 1)
    );
    assert_eq!(
        err("max_keepalive -1\n"),
        at("Error: Invalid max_keepalive value (-1).", 1)
    );
    assert_eq!(
        err("max_packet_size 19\n"),
        at("Error: Invalid max_packet_size value (19).", 1)
    );
    assert_eq!(
        err("message_size_limit 268435456\n"),
        at("Error: Invalid message_size_limit value (268435456).", 1)
    );
    assert_eq!(
        err("message_size_limit -1\n"),
        at("Error: Invalid message_size_limit value (4294967295).", 1)
    );
    assert_eq!(ok("max_queued_messages -5\n").limits.max_queued_messages, 0);
    assert_eq!(ok("max_queued_bytes -5\n").limits.max_queued_bytes, 0);
    assert_eq!(ok("max_inflight_bytes -5\n").limits.max_inflight_bytes, 0);
    assert_eq!(
        ok("autosave_interval -5\n").persistence.autosave_interval,
        0
    );
    assert_eq!(
        ok("global_max_clients -1\n").limits.global_max_clients,
        None
    );
    assert_eq!(
        err("websockets_headers_size 70000\n"),
        at(
            "Error: Websockets headers size must be between 0 and 65535 inclusive.",
            1
        )
    );
}

#[test]
fn persistent_client_expiration_durations() {
    for (v, secs) in [
        ("2h", 7200u64),
        ("14d", 14 * 86400),
        ("1w", 7 * 86400),
        ("1m", 30 * 86400),
        ("1y", 365 * 86400),
    ] {
        let c = ok(&format!("persistent_client_expiration {v}\n"));
        assert_eq!(c.limits.persistent_client_expiration, Some(secs));
    }
    let bad = "Error: Invalid persistent_client_expiration duration in configuration.";
    for v in ["14", "0d", "-1d", "d", "5s"] {
        assert_eq!(
            err(&format!("persistent_client_expiration {v}\n")),
            at(bad, 1),
            "{v}"
        );
    }
    let c = ok("persistent_client_expiration\n");
    assert_eq!(c.limits.persistent_client_expiration, None);
    assert!(
        msgs(&c).contains(&"Error: Empty persistent_client_expiration value in configuration.")
    );
}

#[test]
fn persistence_options() {
    let c = ok(
        "retained_persistence true\npersistence_file x.db\npersistence_location /var/lib/m/\nautosave_interval 60\nautosave_on_changes true\n",
    );
    assert!(c.persistence.enabled);
    assert_eq!(c.persistence.path(), PathBuf::from("/var/lib/m//x.db"));
    assert_eq!(c.persistence.autosave_interval, 60);
    assert!(c.persistence.autosave_on_changes);
    let c = ok("persistence_location data\n");
    assert_eq!(c.persistence.path(), PathBuf::from("data/mosquitto.db"));
}

// ---------------------------------------------------------------- §5 logging

#[test]
fn log_dest_accumulates_and_replaces() {
    let c = ok("log_dest stdout\nlog_dest syslog\nlog_dest stdout\n");
    assert_eq!(c.logging.dest, vec![LogDest::Stdout, LogDest::Syslog]);
    let c = ok("log_dest stdout\nlog_dest none\nlog_dest topic\nlog_dest file  /var/log/m.log\n");
    assert_eq!(
        c.logging.dest,
        vec![
            LogDest::Topic,
            LogDest::File(PathBuf::from("/var/log/m.log"))
        ]
    );
    assert_eq!(c.log_file(), Some(&PathBuf::from("/var/log/m.log")));
    assert!(ok("log_dest none\n").logging.dest.is_empty());
    assert_eq!(
        ok("log_dest dlt\nlog_dest stderr\n").logging.dest,
        vec![LogDest::Dlt, LogDest::Stderr]
    );
    assert_eq!(
        err("log_dest file a\nlog_dest file b\n"),
        at("Error: Duplicate \"log_dest file\" value.", 2)
    );
    assert_eq!(
        err("log_dest file   \n"),
        at("Error: Empty \"log_dest file\" value in configuration.", 1)
    );
    assert_eq!(
        err("log_dest bogus\n"),
        at("Error: Invalid log_dest value (bogus).", 1)
    );
    assert_eq!(
        err("log_dest\n"),
        at("Error: Empty log_dest value in configuration.", 1)
    );
}

#[test]
fn log_type_accumulates_and_replaces() {
    let c = ok("log_type error\nlog_type subscribe\n");
    assert_eq!(
        c.logging.types,
        LogTypes(LogTypes::ERR.0 | LogTypes::SUBSCRIBE.0)
    );
    assert_eq!(ok("log_type all\n").logging.types, LogTypes::ALL);
    assert_eq!(
        ok("log_type debug\nlog_type none\n").logging.types,
        LogTypes::NONE
    );
    assert!(
        ok("log_type websockets\n")
            .logging
            .types
            .contains(LogTypes::WEBSOCKETS)
    );
    let c = ok(
        "log_type information\nlog_type notice\nlog_type warning\nlog_type unsubscribe\nlog_type internal\n",
    );
    assert!(c.logging.types.contains(LogTypes::INTERNAL));
    assert!(!c.logging.types.contains(LogTypes::ERR));
    assert_eq!(
        err("log_type bogus\n"),
        at("Error: Invalid log_type value (bogus).", 1)
    );
    let c = ok("log_type\n");
    assert_eq!(c.logging.types, LogTypes::DEFAULT);
    assert!(msgs(&c).contains(&"Error: Empty log_type value in configuration."));
}

#[test]
fn log_misc() {
    let c = ok(
        "log_timestamp false\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\nconnection_messages false\n",
    );
    assert!(!c.logging.timestamp);
    assert_eq!(
        c.logging.timestamp_format.as_deref(),
        Some("%Y-%m-%dT%H:%M:%S")
    );
    assert!(!c.logging.connection_messages);
}

// ---------------------------------------------------------------- §4 include_dir

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

#[test]
fn include_dir_order_and_messages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let names = [
        ".x.conf", "00.conf", "01.conf", "A.conf", "Ab.conf", "a.conf", "aB.conf", "B.conf",
        "b.conf",
    ];
    for (i, n) in names.iter().enumerate() {
        write(d, n, &format!("listener {}\n", 2000 + i));
    }
    write(d, ".conf", "bogus\n");
    write(d, "x.conf.bak", "bogus\n");
    write(d, "readme", "bogus\n");
    let ds = d.display().to_string();
    let c = ok(&format!("include_dir {ds}\n"));
    let ports: Vec<u16> = c.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, (2000..2009).collect::<Vec<u16>>());
    let loading: Vec<String> = names
        .iter()
        .map(|n| format!("Loading config file {ds}/{n}"))
        .collect();
    assert_eq!(
        msgs(&c),
        loading.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(c.messages.iter().all(|m| m.level == MsgLevel::Info));
}

#[test]
fn include_dir_files_start_at_default_listener() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "a.conf", "max_connections 5\nlistener 2001\nmax_qos 1\n");
    let ds = d.display().to_string();
    let c = ok(&format!(
        "listener 1999\ninclude_dir {ds}\nmax_topic_alias 4\n"
    ));
    // max_connections in a.conf goes to the default listener, which is then created
    assert_eq!(c.listeners.len(), 3);
    assert_eq!(c.listeners[0].port, 1999);
    assert_eq!(c.listeners[0].max_connections, None);
    // the main file's current listener is restored after the include
    assert_eq!(c.listeners[0].max_topic_alias, 4);
    assert_eq!(c.listeners[1].max_qos, Qos::AtLeastOnce);
    assert_eq!(c.listeners[2].port, 1883);
    assert_eq!(c.listeners[2].max_connections, Some(5));
}

#[test]
fn include_dir_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ds = d.display().to_string();
    write(d, "a.conf", "password_file x\n\nbogus 1\n");
    let e = parse_str(&format!("# c\ninclude_dir {ds}\n"), "main.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Error: Unknown configuration variable \"bogus\".\nError found at {ds}/a.conf:3.\nError found at main.conf:2."
        )
    );
    assert_eq!(
        e.notices[0].text,
        format!("Loading config file {ds}/a.conf")
    );
    // duplicate strings apply across files
    write(d, "a.conf", "password_file x\n");
    let e = parse_str(&format!("include_dir {ds}\npassword_file y\n"), "m").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Error: Duplicate password_file value in configuration.\nError found at m:2."
    );
    // trailing space is part of the name
    assert_eq!(
        err(&format!("include_dir {ds} \n")),
        at(&format!("Error: Unable to open include_dir '{ds} '."), 1)
    );
    assert_eq!(
        err("include_dir /nonexistent/culex\n"),
        at("Error: Unable to open include_dir '/nonexistent/culex'.", 1)
    );
    assert_eq!(
        err("include_dir\n"),
        at("Error: Empty include_dir value in configuration.", 1)
    );
    // a directory named x.conf fails
    std::fs::create_dir(d.join("z.conf")).expect("mkdir");
    write(d, "a.conf", "\n");
    assert_eq!(
        err(&format!("include_dir {ds}\n")),
        at(
            &format!("Error: Config file {ds}/z.conf is a directory."),
            1
        )
    );
}

#[test]
fn include_dir_ignored_in_included_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "a.conf", "include_dir /nonexistent\nlistener 1\n");
    let c = ok(&format!("include_dir {}\n", d.display()));
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn load_reads_files_and_reports_open_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("m.conf");
    std::fs::write(&p, "listener 1883\nbogus\n").expect("write");
    let e = load(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Error: Unknown configuration variable \"bogus\".\nError found at {}:2.",
            p.display()
        )
    );
    let missing = tmp.path().join("missing.conf");
    let e = load(&missing).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Open);
    assert_eq!(e.exit_code(), 3);
    assert_eq!(
        e.to_string(),
        format!("Error: Unable to open config file {}.", missing.display())
    );
    let e = load(tmp.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Error: Config file {} is a directory.",
            tmp.path().display()
        )
    );
    std::fs::write(&p, "listener 1883\n").expect("write");
    assert_eq!(load(&p).map(|c| c.listeners.len()).ok(), Some(1));
}

// ---------------------------------------------------------------- real-world files

#[test]
fn debian_stock_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let confd = tmp.path().join("conf.d");
    std::fs::create_dir(&confd).expect("mkdir");
    write(
        &confd,
        "README",
        "Any files placed in this directory that have a .conf ending will be loaded\n",
    );
    let text = format!(
        "# Place your local configuration in /etc/mosquitto/conf.d/\n#\n# A full description of the configuration file is at\n# /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\npid_file /run/mosquitto/mosquitto.pid\n\npersistence true\npersistence_location /var/lib/mosquitto/\n\nlog_dest file /var/log/mosquitto/mosquitto.log\n\ninclude_dir {}\n",
        confd.display()
    );
    let c = ok(&text);
    assert_eq!(
        c.pid_file,
        Some(PathBuf::from("/run/mosquitto/mosquitto.pid"))
    );
    assert!(c.persistence.enabled);
    assert_eq!(
        c.persistence.path(),
        PathBuf::from("/var/lib/mosquitto//mosquitto.db")
    );
    assert_eq!(
        c.logging.dest,
        vec![LogDest::File(PathBuf::from(
            "/var/log/mosquitto/mosquitto.log"
        ))]
    );
    assert!(c.local_only);
    assert_eq!(c.listeners.len(), 2);
}

#[test]
fn seed_config() {
    let c = ok(
        "persistence true\npersistence_file mosquitto.db\npersistence_location /mosquitto/data/\nper_listener_settings false\nlistener 1883\nprotocol mqtt\nallow_anonymous false\npassword_file /mosquitto/config/passwd\n",
    );
    assert!(!c.local_only);
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!(l.port, 1883);
    assert_eq!(l.bind_address, None);
    assert_eq!(l.protocol, Protocol::Mqtt);
    assert!(!l.security.allow_anonymous);
    assert_eq!(
        l.security.password_file,
        Some(PathBuf::from("/mosquitto/config/passwd"))
    );
    assert_eq!(
        c.persistence.path(),
        PathBuf::from("/mosquitto/data//mosquitto.db")
    );
    assert!(c.warnings.is_empty());
}

#[test]
fn docker_default_config_is_local_only() {
    let c = ok(
        "# Place your local configuration in /mosquitto/config/\n#listener 1883\n#persistence true\n",
    );
    assert!(c.local_only);
    assert!(c.listeners.iter().all(|l| l.security.allow_anonymous));
}

#[test]
fn markdown_table_renders() {
    let md = directive_table_markdown();
    assert!(md.starts_with("| directive | scope | status | note |"));
    assert!(md.contains("| `listener` | listener | implemented |"));
    assert!(md.contains("| `plugin_opt_*` | plugin | implemented |"));
}

/// `docs/config-directives.md` is generated from the table; refresh it with
/// `CULEX_UPDATE_DOCS=1 cargo test --lib config`.
#[test]
fn directive_doc_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config-directives.md");
    let (i, w, r) = directives::status_counts();
    let want = format!(
        "# mosquitto.conf directives in culex\n\n\
Generated from `src/config/directives.rs` (`directive_table_markdown()`).\n\
{i} implemented, {w} parsed with a start-up warning (no effect), {r} refused \
(start-up error, exit 3). Unknown names fail exactly as in mosquitto.\n\n{}",
        directive_table_markdown()
    );
    if std::env::var_os("CULEX_UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).expect("write docs");
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/config-directives.md is stale: run CULEX_UPDATE_DOCS=1 cargo test --lib config"
    );
}

#[test]
fn psk_and_certificates_mix_as_mosquitto_allows() {
    // cafile or certfile after psk_hint is refused; the other order, and
    // the other TLS options, are not (mosquitto 2.0.11).
    for line in ["cafile /ca", "certfile /c"] {
        let e = err(&format!("listener 8883\npsk_hint h\n{line}\n"));
        assert!(
            e.contains(
                "Error: Cannot use both certificate and psk encryption in a single listener."
            ),
            "{line}: {e}"
        );
        assert!(e.contains("Error found at"), "{e}");
        parse_str(&format!("listener 8883\n{line}\npsk_hint h\n"), "t.conf").expect(line);
    }
    parse_str(
        "listener 8883\npsk_hint h\nkeyfile /k\ncapath /p\n",
        "t.conf",
    )
    .expect("valid");
    let c = parse_str("psk_file /etc/psk\nlistener 8883\npsk_hint h\n", "t.conf").expect("valid");
    assert_eq!(c.listeners[0].tls.psk_hint.as_deref(), Some("h"));
    assert_eq!(
        c.listeners[0].security.psk_file.as_deref(),
        Some(std::path::Path::new("/etc/psk"))
    );
}
