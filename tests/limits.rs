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
