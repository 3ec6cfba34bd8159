//! The memory culex holds for its clients, counted cheaply for
//! `memory_limit`.
//!
//! mosquitto wraps every allocation and refuses one that would take its
//! heap total over `memory_limit`. culex counts only the big part its
//! clients drive, where it is created and freed, never per allocation:
//!
//! * messages (payload, topic, properties, fixed overhead): each `Message`
//!   carries a `Held` ticket that adds its size to a running total when the
//!   message is made and takes it off when the message is dropped, so a
//!   message shared by the retained store and a thousand queues counts once,
//!   as its bytes exist once;
//! * the network layer's buffers (partial input packets, unwritten output):
//!   it reports their total to the core (`Broker::set_io_buffered`).
//!
//! glibc's `mallinfo2` would count everything, but it walks every free chunk
//! of the heap: 0.1 ms with 10,000 free chunks, 13 ms with 100,000, far too
//! slow to sample per loop turn.
//!
//! The total is per thread (the broker runs on one), so unit tests running
//! side by side each see their own.

use std::cell::Cell;

thread_local! {
    static MESSAGES: Cell<u64> = const { Cell::new(0) };
}

/// Bytes of the messages alive on this thread.
pub fn message_bytes() -> u64 {
    MESSAGES.with(Cell::get)
}

/// A message's share of the running total: added when made (and when
/// cloned), taken off when dropped. Compares equal to any other ticket, so
/// messages still compare by content.
#[derive(Debug)]
pub struct Held(u32);

impl Held {
    /// Counts `bytes` until the ticket is dropped.
    pub fn new(bytes: usize) -> Held {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        MESSAGES.with(|m| m.set(m.get() + u64::from(bytes)));
        Held(bytes)
    }

    /// The bytes this ticket counts.
    pub fn bytes(&self) -> u32 {
        self.0
    }
}

impl Clone for Held {
    fn clone(&self) -> Held {
        Held::new(self.0 as usize)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let bytes = u64::from(self.0);
        MESSAGES.with(|m| m.set(m.get().saturating_sub(bytes)));
    }
}

impl PartialEq for Held {
    fn eq(&self, _: &Held) -> bool {
        true
    }
}

impl Eq for Held {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_add_up_and_go() {
        let start = message_bytes();
        let a = Held::new(100);
        let b = a.clone();
        assert_eq!(message_bytes(), start + 200);
        drop(a);
        assert_eq!(message_bytes(), start + 100);
        drop(b);
        assert_eq!(message_bytes(), start);
    }
}
