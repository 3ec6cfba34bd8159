//! The `mosquitto.db` reader (versions 2-6), and write→read round trips.
//!
//! The writer leaves out, as mosquitto's does, what a loader would drop
//! (unreferenced messages, `$SYS` retained entries, empty client ids, 3/4's
//! disconnect time, ...; see `persist::write`), so a file read once is not
//! always written back as it was. What is asserted: whatever is read
//! writes to a file that reads without error, and that file is a fixed
//! point: reading and writing it again gives the same contents and bytes.
//! The reader is also run with a clock (`read_at`), which drops expired
//! messages and what refers to them.
#![no_main]

use culex::persist::{read, read_at, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((contents, warnings)) = read(data) {
        std::hint::black_box(warnings);
        let bytes = write(&contents);
        let again = match read(&bytes) {
            Ok((again, _)) => again,
            Err(e) => panic!("{contents:?} written as {bytes:02x?} reads as {e}"),
        };
        let bytes2 = write(&again);
        assert_eq!(bytes, bytes2, "{contents:?} then {again:?}");
        match read(&bytes2) {
            Ok((third, _)) => assert_eq!(third, again, "written as {bytes:02x?}"),
            Err(e) => panic!("{again:?} written as {bytes2:02x?} reads as {e}"),
        }
    }
    let _ = read_at(data, 1_700_000_000);
});
