//! Topic matching: `SubscriptionTree::matches` against 100,000 subscriptions
//! shaped like a home-automation deployment: one exact filter per device
//! (`home/<room>/<device>/state`), plus per-room `+` and `#` filters and a few
//! catch-alls.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use culex::broker::subscriptions::{Match, Subscriber, SubscriptionTree};
use culex::codec::{Qos, SubscriptionOptions, TopicFilter};

const ROOMS: usize = 1_000;
const DEVICES: usize = 96;

fn tree() -> SubscriptionTree {
    let mut t = SubscriptionTree::new();
    let mut session = 0;
    let add = |t: &mut SubscriptionTree, session: &mut usize, f: String| {
        let filter = TopicFilter::new(f).unwrap();
        t.subscribe(
            &filter,
            Subscriber {
                session: *session,
                options: SubscriptionOptions::with_qos(Qos::AtMostOnce),
                id: None,
            },
        );
        *session += 1;
    };
    for room in 0..ROOMS {
        for dev in 0..DEVICES {
            add(
                &mut t,
                &mut session,
                format!("home/room{room}/dev{dev}/state"),
            );
        }
        // Dashboards per room.
        if room % 3 == 0 {
            add(&mut t, &mut session, format!("home/room{room}/+/state"));
        }
        if room % 5 == 0 {
            add(&mut t, &mut session, format!("home/room{room}/#"));
        }
    }
    // Remaining slots: wildcard subscribers across rooms, then catch-alls.
    while session < 100_000 - 3 {
        let f = format!("home/+/dev{}/state", session % DEVICES);
        add(&mut t, &mut session, f);
    }
    add(&mut t, &mut session, "home/#".into());
    add(&mut t, &mut session, "#".into());
    add(&mut t, &mut session, "+/+/+/+".into());
    t
}

fn bench_topics(c: &mut Criterion) {
    let mut t = tree();
    let mut out: Vec<Match> = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("subscriptions_100k");
    g.throughput(Throughput::Elements(1));
    let topics = [
        ("exact_device", "home/room417/dev42/state".to_string()),
        ("no_device_match", "home/room417/dev9999/state".to_string()),
        ("other_tree", "office/floor1/door/open".to_string()),
        ("sys", "$SYS/broker/uptime".to_string()),
    ];
    for (name, topic) in &topics {
        g.bench_function(format!("matches/{name}"), |b| {
            b.iter(|| {
                out.clear();
                t.matches(black_box(topic), &mut out);
                out.len()
            })
        });
    }
    // A stream of different device topics, as a fan-in would produce.
    let stream: Vec<String> = (0..1024)
        .map(|i| format!("home/room{}/dev{}/state", (i * 37) % ROOMS, i % DEVICES))
        .collect();
    let mut i = 0;
    g.bench_function("matches/rotating_devices", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            out.clear();
            t.matches(black_box(&stream[i]), &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_topics);
criterion_main!(benches);
