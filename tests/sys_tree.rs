//! `$SYS/broker/...` as monitoring tools see it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use culex::codec::ProtocolVersion;

/// Everything published on `$SYS` during `total`, latest value per topic.
fn snapshot(raw: &mut Raw, total: Duration) -> HashMap<String, String> {
    raw.collect_until(total, total)
        .into_iter()
        .map(|(t, p, _)| (t, p))
        .collect()
}

#[test]
fn sys_topics_appear_and_counters_move() {
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\nsys_interval 1\n");
    let mut mon = Raw::login(b.port, ProtocolVersion::V311, "monitor", None);
    mon.subscribe(&[("$SYS/#", 0)]);
    let first = snapshot(&mut mon, Duration::from_millis(1500));
    assert_eq!(
        first["$SYS/broker/version"],
        "mosquitto version 2.0.11 (culex 0.1.0)"
    );
    for topic in [
        "uptime",
        "clients/total",
        "clients/connected",
        "clients/active",
        "clients/disconnected",
        "clients/inactive",
        "clients/maximum",
        "clients/expired",
        "messages/stored",
        "store/messages/count",
        "store/messages/bytes",
        "messages/received",
        "messages/sent",
        "publish/messages/received",
        "publish/messages/sent",
        "publish/messages/dropped",
        "publish/bytes/received",
        "publish/bytes/sent",
        "bytes/received",
        "bytes/sent",
        "subscriptions/count",
        "shared_subscriptions/count",
        "retained messages/count",
        "load/messages/received/1min",
        "load/messages/sent/15min",
        "load/publish/received/5min",
        "load/bytes/sent/1min",
        "load/sockets/1min",
        "load/connections/15min",
        "load/publish/dropped/1min",
        "heap/current",
        "heap/maximum",
    ] {
        assert!(
            first.contains_key(&format!("$SYS/broker/{topic}")),
            "missing $SYS/broker/{topic}: {first:?}"
        );
    }
    assert!(first["$SYS/broker/uptime"].ends_with(" seconds"));
    let heap: u64 = first["$SYS/broker/heap/current"].parse().unwrap();
    assert!(heap > 0 && heap <= first["$SYS/broker/heap/maximum"].parse::<u64>().unwrap());
    assert_eq!(first["$SYS/broker/clients/connected"], "1");
    assert_eq!(first["$SYS/broker/subscriptions/count"], "1");

    // Another client connects and publishes: counters move.
    let mut p = Raw::login(b.port, ProtocolVersion::V311, "pub", None);
    for i in 0..5 {
        p.publish("some/topic", format!("m{i}").as_bytes(), 1, i == 0);
    }
    let later = snapshot(&mut mon, Duration::from_millis(2500));
    assert_eq!(later["$SYS/broker/clients/connected"], "2");
    assert_eq!(later["$SYS/broker/publish/messages/received"], "5");
    // The count includes the broker's own retained $SYS topics, as mosquitto's.
    let count = |m: &HashMap<String, String>| -> u64 {
        m["$SYS/broker/retained messages/count"].parse().unwrap()
    };
    assert!(
        count(&later) > count(&first),
        "{} vs {}",
        count(&later),
        count(&first)
    );
    let received: u64 = later["$SYS/broker/bytes/received"].parse().unwrap();
    assert!(received > 0);

    // A new subscriber gets the retained $SYS values at once, flagged retained.
    let mut late = Raw::login(b.port, ProtocolVersion::V311, "late", None);
    late.subscribe(&[("$SYS/broker/version", 0)]);
    let got = late.collect(Duration::from_millis(300));
    assert_eq!(
        got,
        vec![(
            "$SYS/broker/version".into(),
            "mosquitto version 2.0.11 (culex 0.1.0)".into(),
            true
        )]
    );
    // `#` does not match $SYS.
    let mut hash = Raw::login(b.port, ProtocolVersion::V311, "hash", None);
    hash.subscribe(&[("#", 0)]);
    let got = hash.collect_until(Duration::from_millis(300), Duration::from_millis(1500));
    assert!(got.iter().all(|(t, _, _)| !t.starts_with('$')), "{got:?}");
}

#[test]
fn sys_interval_0_disables_sys() {
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\nsys_interval 0\n");
    let mut mon = Raw::login(b.port, ProtocolVersion::V311, "monitor", None);
    mon.subscribe(&[("$SYS/#", 0)]);
    assert_eq!(mon.collect(Duration::from_millis(1200)), vec![]);
}
