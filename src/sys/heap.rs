//! Heap in use, for `$SYS/broker/heap/current` (mosquitto reports the bytes
//! its own allocator wrapper tracks; culex asks glibc's malloc).
#![allow(unsafe_code)]

/// Bytes currently allocated with malloc, or `None` where glibc's
/// `mallinfo2` is not available.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn in_use() -> Option<u64> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct by
    // value; it only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    Some((info.uordblks + info.hblkhd) as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn in_use() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_something_plausible() {
        // black_box: in a release build the unused buffer is optimised away.
        let keep = std::hint::black_box(vec![0u8; 1 << 20]);
        let n = super::in_use().expect("glibc");
        assert!(n >= keep.len() as u64, "{n}");
    }
}
