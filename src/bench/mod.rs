//! Support for `culex_bench`, the side-by-side load generator (issue 7).
//!
//! Not part of the broker: nothing in `broker`, `net` or `codec` uses it. The
//! generator builds its packets with `codec::encode` and reads control packets
//! with `codec::decode`; on the hot path it only needs to find PUBLISH and
//! PUBACK frames in a byte stream, which `split_frame` does without
//! allocating (checked against the codec in the tests below).

pub mod gen_db;
pub mod report;

use std::fs;

/// Payload layout of every benchmark message (64 bytes): send time in
/// nanoseconds since the generator's start, publisher index, sequence number,
/// then filler.
pub const PAYLOAD_LEN: usize = 64;
pub const TS_AT: usize = 0;
pub const PUB_AT: usize = 8;
pub const SEQ_AT: usize = 12;

pub fn payload_template() -> Vec<u8> {
    let mut p = vec![b'x'; PAYLOAD_LEN];
    p[..16].fill(0);
    p
}

pub fn write_stamp(payload: &mut [u8], ts_ns: u64, publisher: u32, seq: u32) {
    payload[TS_AT..TS_AT + 8].copy_from_slice(&ts_ns.to_le_bytes());
    payload[PUB_AT..PUB_AT + 4].copy_from_slice(&publisher.to_le_bytes());
    payload[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_le_bytes());
}

/// (timestamp ns, publisher, seq) from a benchmark payload.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u32, u32)> {
    if payload.len() < 16 {
        return None;
    }
    let ts = u64::from_le_bytes(payload[0..8].try_into().ok()?);
    let p = u32::from_le_bytes(payload[8..12].try_into().ok()?);
    let s = u32::from_le_bytes(payload[12..16].try_into().ok()?);
    Some((ts, p, s))
}

/// One MQTT 3.1.1 frame found in a byte stream, borrowing from it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Publish {
        qos: u8,
        retain: bool,
        packet_id: u16,
        topic: &'a [u8],
        payload: &'a [u8],
    },
    Puback(u16),
    /// Any other packet, whole (fixed header included): hand it to
    /// `codec::decode`.
    Other(&'a [u8]),
}

/// Splits the first frame off `buf`: `Ok(None)` when more bytes are needed,
/// `Err` for a malformed length.
pub fn split_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, &'static str> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let mut rl: usize = 0;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        rl |= ((b & 0x7f) as usize) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Err("remaining length longer than 4 bytes");
        }
    }
    let total = i + rl;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[i..total];
    let first = buf[0];
    let frame = match first >> 4 {
        3 => {
            let qos = (first >> 1) & 3;
            if body.len() < 2 {
                return Err("short PUBLISH");
            }
            let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
            let mut at = 2 + tl;
            let mut packet_id = 0;
            if qos > 0 {
                if body.len() < at + 2 {
                    return Err("short PUBLISH");
                }
                packet_id = u16::from_be_bytes([body[at], body[at + 1]]);
                at += 2;
            }
            if body.len() < at {
                return Err("short PUBLISH");
            }
            Frame::Publish {
                qos,
                retain: first & 1 == 1,
                packet_id,
                topic: &body[2..2 + tl],
                payload: &body[at..],
            }
        }
        4 if body.len() >= 2 => Frame::Puback(u16::from_be_bytes([body[0], body[1]])),
        _ => Frame::Other(&buf[..total]),
    };
    Ok(Some((frame, total)))
}

/// Resident set size of a process in KiB (`VmRSS` from /proc/PID/status).
pub fn vm_rss_kb(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Peak resident set size in KiB (`VmHWM`).
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// User + system CPU time of a process in clock ticks (utime + stime from
/// /proc/PID/stat). `pid` 0 means this process.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_string()
    } else {
        format!("/proc/{pid}/stat")
    };
    let s = fs::read_to_string(path).ok()?;
    parse_stat_ticks(&s)
}

/// utime + stime from the text of /proc/PID/stat.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; fields after ')' are
    // positional: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Nanoseconds a process has spent runnable but waiting for a CPU (field 2
/// of /proc/PID/schedstat; threads summed by the kernel for the main task
/// only, which is enough for single-threaded brokers). Another process on
/// the broker's CPU shows up here.
pub fn run_delay_ns(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second for /proc times. Linux exposes USER_HZ = 100 on
/// every architecture we run on.
pub const TICKS_PER_SEC: f64 = 100.0;

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{
        self, Ack, Packet, PacketId, ProtocolVersion, Publish, Qos, properties::Properties,
    };

    fn publish(qos: Qos, retain: bool, id: u16) -> Vec<u8> {
        let mut payload = payload_template();
        write_stamp(&mut payload, 123_456_789, 7, 42);
        let p = Publish {
            dup: false,
            qos,
            retain,
            topic: "bench/fanin/3".into(),
            packet_id: PacketId::new(id),
            payload,
            properties: Properties::default(),
        };
        let mut out = Vec::new();
        codec::encode(&Packet::Publish(p), ProtocolVersion::V311, &mut out);
        out
    }

    #[test]
    fn split_frame_reads_what_the_codec_writes() {
        for (qos, id) in [(Qos::AtMostOnce, 0), (Qos::AtLeastOnce, 513)] {
            let wire = publish(qos, true, id);
            let (frame, used) = split_frame(&wire).unwrap().unwrap();
            assert_eq!(used, wire.len());
            let Frame::Publish {
                qos: q,
                retain,
                packet_id,
                topic,
                payload,
            } = frame
            else {
                panic!("not a publish: {frame:?}");
            };
            assert_eq!((q, retain, packet_id), (qos.as_u8(), true, id));
            assert_eq!(topic, b"bench/fanin/3");
            assert_eq!(read_stamp(payload), Some((123_456_789, 7, 42)));
            // Every strict prefix needs more bytes.
            for cut in 0..wire.len() {
                assert_eq!(split_frame(&wire[..cut]).unwrap(), None);
            }
        }
        let mut ack = Vec::new();
        let puback = Packet::Puback(Ack::new(PacketId::new(9).unwrap()));
        codec::encode(&puback, ProtocolVersion::V311, &mut ack);
        assert_eq!(split_frame(&ack).unwrap(), Some((Frame::Puback(9), 4)));
        let ping = [0xd0, 0x00, 0xff];
        assert_eq!(
            split_frame(&ping).unwrap(),
            Some((Frame::Other(&ping[..2]), 2))
        );
        assert!(split_frame(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn stat_and_quantiles() {
        let stat = "1234 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert!(cpu_ticks(0).is_some());
        assert!(run_delay_ns(std::process::id()).is_some());
        assert!(vm_rss_kb(std::process::id()).unwrap() > 0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
