//! The retained store with 100,000 topics: replacing a retained message, and
//! collecting matches for a new subscription (exact, `+`, subtree `#`, `#`).

use std::hint::black_box;
use std::rc::Rc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use culex::broker::retained::RetainedStore;
use culex::codec::{Message, Qos, SharedMessage, TopicName};

const SITES: usize = 100;
const DEVICES: usize = 1_000;

fn message(topic: &str) -> SharedMessage {
    Rc::new(Message::new(
        TopicName::new(topic).unwrap(),
        vec![0x5a; 64],
        Qos::AtMostOnce,
        true,
        Default::default(),
        None,
    ))
}

fn topic(i: usize) -> String {
    format!("site/{}/dev/{}/state", i / DEVICES, i % DEVICES)
}

fn store() -> RetainedStore {
    let mut s = RetainedStore::new();
    for i in 0..SITES * DEVICES {
        s.set(message(&topic(i)));
    }
    s
}

fn bench_retained(c: &mut Criterion) {
    let mut s = store();
    assert_eq!(s.len(), 100_000);
    let mut g = c.benchmark_group("retained_100k");
    let updates: Vec<SharedMessage> = (0..1024).map(|i| message(&topic(i * 97))).collect();
    let mut i = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("set/replace_existing", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            s.set(black_box(updates[i].clone()));
        })
    });
    // A topic not yet in the store, then removed again so every iteration
    // inserts into the same 100,000-topic trie.
    let fresh: Vec<SharedMessage> = (0..1024)
        .map(|i| message(&format!("site/{}/dev/new{i}/state", i % SITES)))
        .collect();
    let empty: Vec<SharedMessage> = fresh
        .iter()
        .map(|m| {
            Rc::new(Message::new(
                m.topic.clone(),
                Vec::new(),
                m.qos,
                m.retain,
                m.properties.clone(),
                m.expires_at,
            ))
        })
        .collect();
    g.bench_function("set/insert_then_clear", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            s.set(black_box(fresh[i].clone()));
            s.set(black_box(empty[i].clone()));
        })
    });
    let mut out = Vec::with_capacity(100_000);
    for (name, filter, n) in [
        ("exact", "site/42/dev/7/state", 1),
        ("plus_device", "site/42/dev/+/state", DEVICES),
        ("subtree", "site/42/#", DEVICES),
        ("all", "#", SITES * DEVICES),
    ] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("matching/{name}"), |b| {
            b.iter(|| {
                out.clear();
                s.matching(black_box(filter), &mut out);
                assert_eq!(out.len(), n);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_retained);
criterion_main!(benches);
