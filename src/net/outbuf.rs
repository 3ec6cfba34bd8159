//! A connection's output: bytes appended at the back, written from the
//! front, released as they are written.
//!
//! A reader that is slower than its messages arrive always has a backlog.
//! A buffer freed only once it has been written completely would then keep
//! everything ever sent to it; this one moves the unwritten rest to the front
//! once the written prefix is at least as long as that rest, so it holds at
//! most about twice its backlog. Each move copies fewer bytes than were
//! written since the last one: the cost stays linear in the bytes sent.
//!
//! It also remembers where each packet ends, so the loop can tell the core
//! how many packets still wait for the socket (mosquitto's
//! `out_packet_count`, which `max_queued_messages` limits for QoS 0).

use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct OutBuf {
    data: Vec<u8>,
    /// `data[pos..]` is not written yet.
    pos: usize,
    /// Bytes written (or discarded) since the buffer was made: the stream
    /// offset of `data[pos]` once `pos` is added back.
    consumed: u64,
    /// Stream offsets where packets not yet completely written end, with how
    /// many end there (several when a layer encoded a batch of packets at
    /// once), oldest first.
    ends: VecDeque<(u64, u32)>,
    /// Sum of the counts in `ends`.
    packets: u32,
}

/// Below this capacity a buffer is never shrunk while it holds bytes.
const SHRINK_ABOVE: usize = 1 << 20;

impl OutBuf {
    /// Where encoders append (only appending is allowed).
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Records that `n` packets end at the current end of the buffer.
    pub fn end_packets(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        let end = self.stream_end();
        match self.ends.back_mut() {
            Some((last, count)) if *last == end => *count = count.saturating_add(n),
            _ => self.ends.push_back((end, n)),
        }
        self.packets = self.packets.saturating_add(n);
    }

    /// The bytes not written yet.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Packets not completely written.
    pub fn packets(&self) -> u32 {
        self.packets
    }

    /// The socket took `n` more bytes (the buffer is compacted by `compact`,
    /// once per flush, not here).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        self.pos += n;
        self.consumed += n as u64;
        while let Some(&(end, count)) = self.ends.front() {
            if end > self.consumed {
                break;
            }
            self.ends.pop_front();
            self.packets = self.packets.saturating_sub(count);
        }
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        }
    }

    /// Releases the written prefix once it is at least as long as the rest,
    /// and a mostly empty large allocation.
    pub fn compact(&mut self) {
        if self.pos > 0 && self.pos >= self.len() {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.data.len();
        if self.pos == 0 && self.data.capacity() > SHRINK_ABOVE && self.data.capacity() / 4 > len {
            self.data.shrink_to((len * 2).max(SHRINK_ABOVE));
        }
    }

    /// Frees the allocation when nothing is waiting.
    pub fn release(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
            self.pos = 0;
        }
    }

    fn stream_end(&self) -> u64 {
        self.consumed + self.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_counted_until_their_last_byte_is_written() {
        let mut b = OutBuf::default();
        b.bytes_mut().extend_from_slice(b"aaaa");
        b.end_packets(1);
        b.bytes_mut().extend_from_slice(b"bb");
        b.end_packets(1);
        b.bytes_mut().extend_from_slice(b"ccc");
        b.end_packets(2);
        assert_eq!((b.len(), b.packets()), (9, 4));
        b.consume(3);
        assert_eq!((b.pending(), b.packets()), (&b"abbccc"[..], 4));
        b.consume(1);
        assert_eq!(b.packets(), 3);
        b.consume(4);
        assert_eq!((b.pending(), b.packets()), (&b"c"[..], 2));
        b.consume(10);
        assert_eq!((b.len(), b.packets()), (0, 0));
        // Offsets carry on after the buffer emptied.
        b.bytes_mut().extend_from_slice(b"dd");
        b.end_packets(1);
        b.end_packets(0);
        assert_eq!(b.packets(), 1);
        b.consume(1);
        assert_eq!(b.packets(), 1);
        b.consume(1);
        assert_eq!(b.packets(), 0);
    }

    #[test]
    fn written_bytes_are_released_while_a_backlog_remains() {
        // A reader that takes 3 of every 4 bytes it is sent: the backlog
        // grows by a quarter of the traffic, and so must the buffer, not by
        // all of it.
        let mut b = OutBuf::default();
        let chunk = vec![7u8; 4096];
        let mut sent = 0usize;
        let mut written = 0usize;
        let mut next = 0u8;
        let mut expect_next = 0u8;
        for _ in 0..2000 {
            let mut c = chunk.clone();
            for byte in c.iter_mut() {
                *byte = next;
                next = next.wrapping_add(1);
            }
            b.bytes_mut().extend_from_slice(&c);
            b.end_packets(1);
            sent += c.len();
            let take = c.len() * 3 / 4;
            // Every byte comes out in order.
            for &byte in &b.pending()[..take] {
                assert_eq!(byte, expect_next);
                expect_next = expect_next.wrapping_add(1);
            }
            b.consume(take);
            written += take;
            b.compact();
            assert!(
                b.capacity() <= 4 * b.len() + 2 * 4096,
                "capacity {} for a backlog of {}",
                b.capacity(),
                b.len()
            );
        }
        assert_eq!(b.len(), sent - written);
        // Whole packets written: those that ended at or before `written`.
        assert_eq!(b.packets() as usize, 2000 - written / 4096);
    }

    #[test]
    fn a_drained_large_buffer_shrinks() {
        let mut b = OutBuf::default();
        b.bytes_mut().resize(16 << 20, 1);
        b.end_packets(1);
        b.consume((16 << 20) - 1000);
        b.compact();
        assert_eq!(b.len(), 1000);
        assert!(b.capacity() <= 2 * SHRINK_ABOVE, "{}", b.capacity());
        b.consume(1000);
        b.release();
        assert_eq!((b.capacity(), b.packets()), (0, 0));
    }
}
