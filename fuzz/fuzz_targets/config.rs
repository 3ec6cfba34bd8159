//! The mosquitto.conf parser, `include_dir` included.
//!
//! Input: the main file, then any number of included files, each after a
//! line `#@file` (`\n#@file\n` separates them). The included files are
//! written, as `00.conf`, `01.conf`, ..., to a directory made for this
//! input, and every `@DIR@` in the main file is replaced by that
//! directory's path, so `include_dir @DIR@` reads them.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const SEP: &[u8] = b"\n#@file\n";

/// One directory per fuzzing process, emptied and refilled for each input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("culex-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fn split<'a>(mut data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(p) = data.windows(sep.len()).position(|w| w == sep) {
        parts.push(&data[..p]);
        data = &data[p + sep.len()..];
    }
    parts.push(data);
    parts
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data, SEP);
    let dir = dir();
    for entry in std::fs::read_dir(dir).expect("read temp dir") {
        let _ = std::fs::remove_file(entry.expect("dir entry").path());
    }
    for (i, part) in parts.iter().enumerate().skip(1).take(16) {
        std::fs::write(dir.join(format!("{:02}.conf", i - 1)), part).expect("write include");
    }
    let dir_s = dir.to_str().expect("temp dir is UTF-8").as_bytes();
    let main: Vec<u8> = split(parts[0], b"@DIR@").join(dir_s);
    match culex::config::parse_bytes(&main, "fuzz.conf") {
        Ok(config) => {
            std::hint::black_box(config);
        }
        Err(e) => {
            let _ = e.lines();
            let _ = e.exit_code();
        }
    }
});
