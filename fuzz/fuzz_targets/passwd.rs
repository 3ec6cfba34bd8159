//! The password file reader (`password_file`): `$6$`, `$7$` and argon2id
//! lines, comments, duplicates, over-long fields, bytes that are not UTF-8.
//!
//! After parsing, every user named in the input is looked up and, where the
//! check is cheap (`$6$`, `$7$` with at most 64 iterations), its hash is
//! verified against a fixed password and against the text after the last
//! `:` of its line. argon2id hashes are parsed but not run: their cost
//! comes from the file, which only the administrator writes.
#![no_main]

use culex::auth::{HashKind, PasswordFile, PasswordHash};
use libfuzzer_sys::fuzz_target;

fn cheap(hash: &PasswordHash) -> bool {
    match hash.kind() {
        HashKind::Sha512 => true,
        HashKind::Sha512Pbkdf2 => hash.iterations().is_some_and(|n| n <= 64),
        HashKind::Argon2id => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, logs) = PasswordFile::parse(data, "fuzz.passwd");
    for l in &logs {
        let _ = l.to_string();
    }
    for line in data.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let Some(user) = fields.next() else { continue };
        let Ok(user) = std::str::from_utf8(user.trim_ascii()) else {
            continue;
        };
        let last = line.rsplit(|&b| b == b':').next().unwrap_or_default();
        if let Some(hash) = file.lookup(user) {
            let _ = hash.as_str();
            if cheap(hash) {
                let _ = hash.verify(b"password");
                let _ = hash.verify(last);
                let _ = file.authenticate(user, Some(last));
            }
        }
        // The hash field alone, as `culex_passwd` and reload read it.
        if let Some(field) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split(':').nth(1))
            && let Ok(hash) = PasswordHash::parse(field.trim())
            && cheap(&hash)
        {
            let _ = hash.verify(b"");
        }
    }
    let _ = file.len();
});
