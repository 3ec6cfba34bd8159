//! Codec micro-benchmarks: decode and encode a 64-byte PUBLISH in MQTT 3.1.1
//! and 5.0, and `encode_publish` (the broker's per-delivery encoder).

use std::hint::black_box;
use std::rc::Rc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use culex::codec::{
    self, Message, OutgoingPublish, Packet, PacketId, ProtocolVersion, Publish, Qos, TopicName,
};

const TOPIC: &str = "home/kitchen/sensor-12/state";

fn publish(qos: Qos) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: TOPIC.into(),
        packet_id: (qos != Qos::AtMostOnce).then(|| PacketId::new(42).unwrap()),
        payload: vec![0x5a; 64],
        properties: Default::default(),
    }
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish_64b");
    g.throughput(Throughput::Elements(1));
    for (name, version) in [("v311", ProtocolVersion::V311), ("v5", ProtocolVersion::V5)] {
        for qos in [Qos::AtMostOnce, Qos::AtLeastOnce] {
            let packet = Packet::Publish(publish(qos));
            let mut wire = Vec::new();
            codec::encode(&packet, version, &mut wire);
            g.bench_function(format!("decode/{name}/qos{}", qos.as_u8()), |b| {
                b.iter(|| codec::decode(black_box(&wire), Some(version), 0).unwrap())
            });
            let mut out = Vec::with_capacity(256);
            g.bench_function(format!("encode/{name}/qos{}", qos.as_u8()), |b| {
                b.iter(|| {
                    out.clear();
                    codec::encode(black_box(&packet), version, &mut out);
                    out.len()
                })
            });
            let outgoing = OutgoingPublish {
                message: Rc::new(Message::new(
                    TopicName::new(TOPIC).unwrap(),
                    vec![0x5a; 64],
                    qos,
                    false,
                    Default::default(),
                    None,
                )),
                qos,
                retain: false,
                dup: false,
                packet_id: (qos != Qos::AtMostOnce).then(|| PacketId::new(42).unwrap()),
                subscription_id: None,
                message_expiry: None,
                topic_alias: None,
                topic_alias_only: false,
                topic_skip: 0,
            };
            g.bench_function(format!("encode_publish/{name}/qos{}", qos.as_u8()), |b| {
                b.iter(|| {
                    out.clear();
                    codec::encode_publish(black_box(&outgoing), version, &mut out);
                    out.len()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
