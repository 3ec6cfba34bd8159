//! Pure edits of a password file's bytes, used by `culex_passwd`
//! (mosquitto_passwd's replacement). Reading, prompting and writing the file
//! live in `src/bin/culex_passwd.rs`.
//!
//! Lines are recognised with the broker's rules (`#` comment, no `:` →
//! not an entry, username = first `:`-field trimmed). Unlike mosquitto_passwd,
//! comment, blank and other non-entry lines are kept untouched instead of
//! being reported as corruption (mosquitto_passwd 2.0 would even drop the rest
//! of the file when adding a user).

use super::hash::{HashError, PasswordHash};
use super::{c_str, fgets_lines, trim_c_space};

/// The username of an entry line as the broker reads it, or `None` for a
/// comment / non-entry line.
pub fn line_username(line: &[u8]) -> Option<&[u8]> {
    let line = c_str(line);
    if line.first() == Some(&b'#') || !line.contains(&b':') {
        return None;
    }
    line.split(|&b| b == b':')
        .find(|t| !t.is_empty())
        .map(trim_c_space)
}

/// The trimmed hash field of an entry line.
fn line_hash_field(line: &[u8]) -> Option<&[u8]> {
    let line = c_str(line);
    line.split(|&b| b == b':')
        .filter(|t| !t.is_empty())
        .nth(1)
        .map(trim_c_space)
}

fn line_ending(line: &[u8]) -> &'static [u8] {
    if line.ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    }
}

fn entry(user: &[u8], hash: &str, ending: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + hash.len() + 3);
    out.extend_from_slice(user);
    out.push(b':');
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(ending);
    out
}

/// Is `user` (as typed) the same name as this line's username?
fn same_user(line: &[u8], user: &[u8]) -> bool {
    line_username(line) == Some(trim_c_space(user))
}

/// Set `user`'s hash: the first line of that user is replaced in place (later
/// duplicates are removed), otherwise a line is appended.
pub fn set_user(content: &[u8], user: &[u8], hash: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + user.len() + hash.len() + 2);
    let mut done = false;
    for line in fgets_lines(content) {
        if same_user(line, user) {
            if !done {
                out.extend_from_slice(&entry(user, hash, line_ending(line)));
                done = true;
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(&entry(user, hash, b"\n"));
    }
    out
}

/// Remove every line of `user`; `None` when there is none.
pub fn delete_user(content: &[u8], user: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(content.len());
    let mut found = false;
    for line in fgets_lines(content) {
        if same_user(line, user) {
            found = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    found.then_some(out)
}

/// `-U`: replace each plain-text password with a hash made by `hasher`.
/// Entries that already hold a hash culex can read (and entries with an
/// empty field) are kept as they are, so running it twice is harmless
/// (mosquitto_passwd would hash the hashes).
pub fn hash_plaintext<E>(
    content: &[u8],
    mut hasher: impl FnMut(&[u8]) -> Result<String, E>,
) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(content.len() * 2);
    for line in fgets_lines(content) {
        let (Some(user), Some(field)) = (line_username(line), line_hash_field(line)) else {
            out.extend_from_slice(line);
            continue;
        };
        let is_plain = matches!(
            PasswordHash::parse(&String::from_utf8_lossy(field)),
            Err(HashError::InvalidType)
        );
        if is_plain {
            let hash = hasher(field)?;
            out.extend_from_slice(&entry(user, &hash, line_ending(line)));
        } else {
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_order_comments_and_appends() {
        let c = b"# head\nalice:$6$a$b\n\nbob:x\r\n  carol  :y\nalice:dup\nnocolon";
        let out = set_user(c, b"bob", "$7$H");
        assert_eq!(
            out,
            b"# head\nalice:$6$a$b\n\nbob:$7$H\r\n  carol  :y\nalice:dup\nnocolon".to_vec()
        );
        let out = set_user(c, b"carol", "$7$H");
        assert_eq!(
            out,
            b"# head\nalice:$6$a$b\n\nbob:x\r\ncarol:$7$H\nalice:dup\nnocolon".to_vec()
        );
        let out = set_user(c, b"alice", "$7$H");
        assert_eq!(
            out,
            b"# head\nalice:$7$H\n\nbob:x\r\n  carol  :y\nnocolon".to_vec()
        );
        let out = set_user(c, b"dave", "$7$H");
        assert!(out.ends_with(b"nocolon\ndave:$7$H\n"));
        assert_eq!(set_user(b"", b"u", "h"), b"u:h\n".to_vec());
    }

    #[test]
    fn delete_all_lines_of_a_user() {
        let c = b"alice:1\n#alice:2\nbob:3\nalice:4\n";
        assert_eq!(
            delete_user(c, b"alice").unwrap(),
            b"#alice:2\nbob:3\n".to_vec()
        );
        assert!(delete_user(c, b"zed").is_none());
    }

    #[test]
    fn update_hashes_only_plain_text() {
        let c = b"# c\nu:plain\nv:$6$pef+jXZ3jZyYUk7u$FFUnUIRwvfQ7ll33/VyUxIlr1sM9bxtAtrkm9phikeCEN6bcYE7d2iyyY7jb69crDdZZmnuApS1Ff7Pf07fRvg==\nw:\n";
        let out = hash_plaintext(c, |pw| {
            Ok::<_, ()>(format!("H({})", String::from_utf8_lossy(pw)))
        })
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("# c\nu:H(plain)\nv:$6$pef+"));
        assert!(s.ends_with("\nw:\n"));
    }
}
