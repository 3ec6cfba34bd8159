//! Resource limits a single peer can hit: the broker must recover from them
//! for everyone else.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Culex, Raw, require};
use culex::codec::{Packet, ProtocolVersion};

/// Out of file descriptors with a full accept queue (issue: the listener went
/// deaf for good after EMFILE). Once the flood has gone, a new client must
/// be served, without any new event on the listening socket to wake it.
#[test]
fn the_listener_recovers_after_running_out_of_descriptors() {
    require("prlimit");
    // The broker runs with 48 descriptors, hard limit included (it raises
    // its soft limit to the hard one at start).
    let wrap = tempfile::tempdir().expect("tempdir");
    let script = wrap.path().join("culex-48-fds");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec prlimit --nofile=48:48 -- {} \"$@\"\n",
            common::BIN
        ),
    )
    .expect("write wrapper");
    common::world_readable(wrap.path());
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let b = Culex::start_program(
        script.to_str().expect("utf-8 path"),
        "listener {port} 127.0.0.1\nallow_anonymous true\n",
        &[],
    );

    // More connections than descriptors plus the listen backlog (100):
    // accept() fails with EMFILE and the queue fills up.
    let addr: SocketAddr = format!("127.0.0.1:{}", b.port).parse().unwrap();
    let mut flood = Vec::new();
    for _ in 0..300 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&addr.into());
        flood.push(s);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        b.log_text().contains("Unable to accept new connection"),
        "the flood did not exhaust descriptors: {}",
        b.log_text()
    );
    drop(flood);

    // Everyone has left: a new client gets its CONNACK.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut raw) = Raw::try_connect(b.port, Duration::from_secs(2)) {
            raw.send(&common::connect_packet(
                ProtocolVersion::V311,
                "after",
                None,
            ));
            if let Some(Packet::Connack(c)) = raw.recv() {
                assert_eq!(c.code, 0);
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "still deaf 20 s after the flood: {}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// utime + stime of a process, from /proc/PID/stat, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Receiving one large packet costs time linear in its size (it cost the
/// square: every read copied the whole partial packet, 15.6 s of CPU for
/// 64 MiB while every other client waited).
#[test]
fn a_large_publish_costs_linear_cpu() {
    use std::io::{Read, Write};
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let mut sub = Raw::login(b.port, ProtocolVersion::V311, "big-sub", None);
    sub.subscribe(&[("big", 0)]);
    let mut publisher = Raw::login(b.port, ProtocolVersion::V311, "big-pub", None);
    const SIZE: usize = 48 << 20;
    let before = cpu_seconds(b.pid());
    // A QoS 0 PUBLISH to "big": fixed header, topic, payload.
    let remaining = 2 + 3 + SIZE;
    let mut header = vec![0x30];
    let mut r = remaining;
    loop {
        let mut byte = (r % 128) as u8;
        r /= 128;
        if r > 0 {
            byte |= 0x80;
        }
        header.push(byte);
        if r == 0 {
            break;
        }
    }
    header.extend([0, 3, b'b', b'i', b'g']);
    // The subscriber must get exactly this PUBLISH back: the same header
    // (QoS 0, same length, topic) and every payload byte.
    let expected_header = header.clone();
    let reader = std::thread::spawn(move || {
        let total = expected_header.len() + SIZE;
        let mut got = 0usize;
        let mut wrong = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        sub.stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        while got < total {
            match sub.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for (k, &byte) in buf[..n].iter().enumerate() {
                        let want = expected_header.get(got + k).copied().unwrap_or(0x5a);
                        wrong += usize::from(byte != want);
                    }
                    got += n;
                }
            }
        }
        (got, total, wrong)
    });
    publisher.stream.write_all(&header).unwrap();
    let chunk = vec![0x5a; 64 << 10];
    for _ in 0..SIZE / chunk.len() {
        publisher.stream.write_all(&chunk).unwrap();
    }
    let (got, total, wrong) = reader.join().unwrap();
    assert_eq!(got, total, "the subscriber got {got} of {total} bytes");
    assert_eq!(wrong, 0, "bytes differing from the published packet");
    let used = cpu_seconds(b.pid()) - before;
    // Linear: well under a second here; the quadratic copy took ~9 s.
    assert!(used < 3.0, "48 MiB cost the broker {used:.2} s of CPU");
}

/// A stranger may not make the broker buffer a huge CONNECT: one declaring
/// 256 MiB is refused from its fixed header, before any of it is stored.
#[test]
fn a_huge_connect_is_refused_from_its_header() {
    use std::io::{Read, Write};
    let b = Culex::start("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let mut raw = Raw::connect(b.port);
    // CONNECT with remaining length 256 MiB - 1 (0xff 0xff 0xff 0x7f).
    raw.stream
        .write_all(&[0x10, 0xff, 0xff, 0xff, 0x7f])
        .unwrap();
    let _ = raw.stream.write_all(&[0u8; 4096]);
    raw.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let closed = match raw.stream.read(&mut buf) {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    };
    assert!(closed, "the broker kept a 256 MiB CONNECT coming");
    // A CONNECT with a 60 KB will still works.
    let mut will = common::connect_packet(ProtocolVersion::V311, "big-will", None);
    if let Packet::Connect(c) = &mut will {
        c.will = Some(culex::codec::Will {
            topic: culex::codec::TopicName::new("w").unwrap(),
            payload: vec![7; 60_000],
            qos: culex::codec::Qos::AtMostOnce,
            retain: false,
            properties: Default::default(),
        });
    }
    let mut ok = Raw::connect(b.port);
    ok.send(&will);
    assert!(matches!(ok.recv(), Some(Packet::Connack(c)) if c.code == 0));
}
