//! Local-time formatting for `log_timestamp_format` (strftime in the
//! process's time zone, as mosquitto does).
#![allow(unsafe_code)]

use std::ffi::CString;

/// `strftime(format)` of `unix_secs` in local time; `None` if the format is
/// unusable or yields nothing (mosquitto then prints `Time error`).
pub fn strftime_local(format: &str, unix_secs: i64) -> Option<String> {
    let fmt = CString::new(format).ok()?;
    let t: libc::time_t = unix_secs as libc::time_t;
    // SAFETY: tm is plain data filled by localtime_r; buf is a local array
    // whose length is passed to strftime, which never writes past it.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        // mosquitto formats into a 1000-byte buffer; lines are cut at 999.
        let mut buf = [0u8; 1000];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm);
        if n == 0 {
            return None;
        }
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// CPU time this thread has used: for tests and benchmarks that measure
/// work, not wall time (which a shared machine makes noisy).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_years() {
        let s = super::strftime_local("%Y", 1_700_000_000).unwrap();
        assert_eq!(s, "2023");
        assert_eq!(super::strftime_local("", 0), None);
    }
}
