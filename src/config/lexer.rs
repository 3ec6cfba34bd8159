//! Byte-exact line and word handling of mosquitto's config reader.
//!
//! * a line is a comment only if its first byte is `#`;
//! * lines starting with `\n`/`\r` are skipped, trailing `\r`/`\n` removed;
//! * words are separated by runs of the space byte only (`strtok_r(" ")`);
//!   a TAB is part of a word;
//! * "rest of line" values are what `strtok_r(NULL, "")` returns.

use std::cmp::Ordering;

/// Iterate over the significant lines of a file: `(line number, content)`.
/// Content has trailing CR/LF removed and is cut at the first NUL (C string).
pub fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    // A trailing '\n' produces an empty last element that is not a line.
    if data.last() == Some(&b'\n') || data.is_empty() {
        parts.pop();
    }
    parts.into_iter().enumerate().filter_map(|(i, raw)| {
        let raw = match raw.iter().position(|&b| b == 0) {
            Some(p) => &raw[..p],
            None => raw,
        };
        match raw.first() {
            None | Some(b'#') | Some(b'\r') => return None,
            _ => {}
        }
        let mut end = raw.len();
        while end > 0 && (raw[end - 1] == b'\r' || raw[end - 1] == b'\n') {
            end -= 1;
        }
        Some((i + 1, &raw[..end]))
    })
}

/// A `strtok_r` cursor over one line.
pub struct Tok<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Tok<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Tok { s, pos: 0 }
    }

    /// `strtok_r(.., " ", ..)`: next run of non-space bytes.
    pub fn word(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.s.len() && self.s[self.pos] == b' ' {
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != b' ' {
            self.pos += 1;
        }
        let w = &self.s[start..self.pos];
        if self.pos < self.s.len() {
            self.pos += 1; // the delimiter is consumed
        }
        Some(w)
    }

    /// `strtok_r(NULL, "", ..)`: everything left, untrimmed; `None` if empty.
    pub fn rest(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.s.len() {
            return None;
        }
        let r = &self.s[self.pos..];
        self.pos = self.s.len();
        Some(r)
    }
}

/// `misc__trimblanks`: strip leading and trailing spaces and tabs.
pub fn trim_blanks(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && (s[a] == b' ' || s[a] == b'\t') {
        a += 1;
    }
    while b > a && (s[b - 1] == b' ' || s[b - 1] == b'\t') {
        b -= 1;
    }
    &s[a..b]
}

/// C `atol` (glibc `strtol` semantics, saturating at the `long` range).
pub fn atol(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut v: i128 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v * 10 + i128::from(s[i] - b'0');
        if v > i128::from(i64::MAX) + 1 {
            v = i128::from(i64::MAX) + 1;
        }
        i += 1;
    }
    if neg {
        v = -v;
    }
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// C `atoi` as glibc implements it: `(int)strtol(s, NULL, 10)`.
pub fn atoi(s: &[u8]) -> i32 {
    atol(s) as i32
}

/// The `include_dir` file order of mosquitto (`scmp_p`): walk both names,
/// at the first position where the upper-cased bytes differ they decide;
/// if only the case differs the (signed) raw bytes decide.
pub fn include_order(a: &[u8], b: &[u8]) -> Ordering {
    fn upper(c: i8) -> i32 {
        if (b'a' as i8..=b'z' as i8).contains(&c) {
            i32::from(c) - 32
        } else {
            i32::from(c)
        }
    }
    let mut i = 0;
    while i < a.len() && i < b.len() {
        let (ca, cb) = (a[i] as i8, b[i] as i8);
        let r = upper(ca) - upper(cb);
        if r != 0 {
            return r.cmp(&0);
        }
        let r = i32::from(ca) - i32::from(cb);
        if r != 0 {
            return r.cmp(&0);
        }
        i += 1;
    }
    let ca = a.get(i).map_or(0, |&c| i32::from(c as i8));
    let cb = b.get(i).map_or(0, |&c| i32::from(c as i8));
    (ca - cb).cmp(&0)
}

/// Which entries of an include directory are loaded: name longer than five
/// bytes ending in `.conf`.
pub fn is_include_candidate(name: &[u8]) -> bool {
    name.len() > 5 && name.ends_with(b".conf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_comments_blank_and_strip_crlf() {
        let d = b"# c\n\nport 1\r\n \r\n  # x\n\r\nlast";
        let v: Vec<_> = lines(d).collect();
        assert_eq!(
            v,
            vec![
                (3, &b"port 1"[..]),
                (4, &b" "[..]),
                (5, &b"  # x"[..]),
                (7, &b"last"[..])
            ]
        );
    }

    #[test]
    fn words_split_on_space_only() {
        let mut t = Tok::new(b"  listener\t1883  a b ");
        assert_eq!(t.word(), Some(&b"listener\t1883"[..]));
        assert_eq!(t.rest(), Some(&b" a b "[..]));
        assert_eq!(t.rest(), None);
        let mut t = Tok::new(b"x");
        assert_eq!(t.word(), Some(&b"x"[..]));
        assert_eq!(t.rest(), None);
        assert_eq!(t.word(), None);
    }

    #[test]
    fn atoi_is_c_like() {
        assert_eq!(atoi(b"5abc"), 5);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"-7"), -7);
        assert_eq!(atoi(b"+8"), 8);
        assert_eq!(atoi(b"\t 9"), 9);
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atol(b"99999999999999999999999"), i64::MAX);
        assert_eq!(atol(b"-99999999999999999999999"), i64::MIN);
    }

    #[test]
    fn include_order_matches_mosquitto() {
        let mut v: Vec<&[u8]> = vec![
            b"b.conf", b"aB.conf", b"B.conf", b"a.conf", b"Ab.conf", b"A.conf", b"01.conf",
            b"00.conf", b".x.conf",
        ];
        v.sort_by(|a, b| include_order(a, b));
        let want: Vec<&[u8]> = vec![
            b".x.conf", b"00.conf", b"01.conf", b"A.conf", b"Ab.conf", b"a.conf", b"aB.conf",
            b"B.conf", b"b.conf",
        ];
        assert_eq!(v, want);
        assert_eq!(include_order(b"_.conf", b"z.conf"), Ordering::Greater);
        assert!(is_include_candidate(b"x.conf"));
        assert!(!is_include_candidate(b".conf"));
        assert!(!is_include_candidate(b"x.conf~"));
    }
}
