//! The password file, read with mosquitto 2.0's rules.
//!
//! Line rules (see `shared/spec/auth-files.md` §1):
//! * a line whose first byte is `#` is a comment; a line without `:` is
//!   ignored silently (blank lines included);
//! * the line is split on `:` like `strtok` does (runs of `:` count as one and
//!   leading `:` are skipped): the first field is the username, the second the
//!   hash field, both trimmed of C whitespace (so CRLF works); later fields
//!   are ignored;
//! * a bad entry is dropped with mosquitto's log message, it never stops the
//!   broker; for a username given twice the last *valid* line wins.
//!
//! Differences from 2.0 (all deliberate): 2.1's 64-byte salts and argon2id
//! lines are accepted; a duplicate username also logs a warning (2.1 refuses
//! such a file, 2.0 says nothing); messages carry ` (file:line)`; the 2.0.16+
//! file permission warnings are not produced here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use sha2::{Digest, Sha512};

use super::error::AuthFileError;
use super::hash::PasswordHash;
use super::{Level, LogLine, c_str, fgets_lines, trim_c_space};

/// Usernames and hash fields longer than this are skipped (mosquitto).
const MAX_FIELD: usize = 65535;

/// A parsed password file: username → hash.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<Vec<u8>, PasswordHash>,
    /// Same kind and cost as the first valid entry; verified against when the
    /// username is unknown so that failures cost the same either way.
    dummy: Option<PasswordHash>,
}

impl PasswordFile {
    /// Parse a password file's content. Never fails: problems come back as
    /// log lines (`file_name` is used in them, normally the configured path).
    pub fn parse(bytes: &[u8], file_name: &str) -> (PasswordFile, Vec<LogLine>) {
        let mut file = PasswordFile::default();
        let mut logs = Vec::new();
        let mut seen_on: HashMap<Vec<u8>, usize> = HashMap::new();
        for (idx, raw) in fgets_lines(bytes).enumerate() {
            let lineno = idx + 1;
            let line = c_str(raw);
            if line.first() == Some(&b'#') || !line.contains(&b':') {
                continue;
            }
            let mut tokens = line.split(|&b| b == b':').filter(|t| !t.is_empty());
            let Some(user_tok) = tokens.next() else {
                continue;
            };
            let user = trim_c_space(user_tok);
            if user.len() > MAX_FIELD {
                logs.push(LogLine::at(
                    Level::Notice,
                    &format!(
                        "Warning: Invalid line in password file '{file_name}', username too long."
                    ),
                    file_name,
                    lineno,
                ));
                continue;
            }
            let Some(hash_tok) = tokens.next() else {
                // mosquitto prints its buffer, which strtok cut after the username.
                let end = user_tok.as_ptr() as usize - line.as_ptr() as usize + user_tok.len();
                logs.push(LogLine::at(
                    Level::Notice,
                    &format!(
                        "Warning: Invalid line in password file '{file_name}': {}",
                        String::from_utf8_lossy(trim_c_space(&line[..end]))
                    ),
                    file_name,
                    lineno,
                ));
                continue;
            };
            let field = trim_c_space(hash_tok);
            if field.len() > MAX_FIELD {
                logs.push(LogLine::at(
                    Level::Notice,
                    &format!(
                        "Warning: Invalid line in password file '{file_name}', password too long."
                    ),
                    file_name,
                    lineno,
                ));
                continue;
            }
            let user_shown = String::from_utf8_lossy(user);
            match PasswordHash::parse(&String::from_utf8_lossy(field)) {
                Err(e) => logs.push(LogLine::at(
                    Level::Error,
                    &e.message(&user_shown),
                    file_name,
                    lineno,
                )),
                Ok(hash) => {
                    if file.dummy.is_none() {
                        file.dummy = Some(hash.dummy_like());
                    }
                    if let Some(prev) = seen_on.insert(user.to_vec(), lineno) {
                        logs.push(LogLine::at(
                            Level::Warning,
                            &format!(
                                "Warning: Duplicate user '{user_shown}' in password file '{file_name}' \
                                 (also on line {prev}); the last valid line wins. \
                                 Mosquitto 2.1 refuses such a file."
                            ),
                            file_name,
                            lineno,
                        ));
                    }
                    file.users.insert(user.to_vec(), hash);
                }
            }
        }
        (file, logs)
    }

    /// Read and parse a password file. An unreadable file is an error whose
    /// Display is mosquitto's `Error: Unable to open pwfile "<p>".` and whose
    /// `exit_code()` is 13.
    pub fn load(path: impl AsRef<Path>) -> Result<(PasswordFile, Vec<LogLine>), AuthFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| AuthFileError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(PasswordFile::parse(&bytes, &path.display().to_string()))
    }

    /// The hash for `user` (byte-exact, case-sensitive).
    pub fn lookup(&self, user: &str) -> Option<&PasswordHash> {
        self.users.get(user.as_bytes())
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The CONNECT decision for a client that sent a username (auth-files.md
    /// §3): true only for a known user with a matching password. An unknown
    /// user or a missing password costs one verification too, so timing does
    /// not reveal which usernames exist.
    pub fn authenticate(&self, username: &str, password: Option<&[u8]>) -> bool {
        // mosquitto reads a zero-length password field as no password at
        // all, so a hash of the empty string never lets anyone in (its
        // test 09-pwfile-parse-invalid guards this security fix).
        let password = password.filter(|pw| !pw.is_empty());
        match (self.lookup(username), password) {
            (Some(hash), Some(pw)) => hash.verify(pw),
            (Some(hash), None) => {
                // Same cost as a wrong password; the result does not matter.
                std::hint::black_box(hash.verify(b""));
                false
            }
            (None, pw) => {
                if let Some(dummy) = &self.dummy {
                    std::hint::black_box(dummy.verify(pw.unwrap_or(b"")));
                }
                false
            }
        }
    }

    /// Whether checking these credentials would run an expensive (argon2id)
    /// verification: the event loop spreads those over its turns so a login
    /// storm cannot stall everyone else.
    pub fn is_expensive(
        &self,
        cache: &VerifyCache,
        username: &str,
        password: Option<&[u8]>,
    ) -> bool {
        match self.lookup(username) {
            Some(hash) if hash.is_expensive() => match password {
                Some(pw) => !cache.contains(&cache.key(username, pw, hash)),
                None => true,
            },
            Some(_) => false,
            None => self.dummy.as_ref().is_some_and(|d| d.is_expensive()),
        }
    }

    /// [`authenticate`](Self::authenticate) with a cache of successful
    /// verifications of expensive (argon2id) hashes: a client reconnecting
    /// with the same credentials is accepted without a new argon2 run.
    pub fn authenticate_cached(
        &self,
        cache: &mut VerifyCache,
        username: &str,
        password: Option<&[u8]>,
    ) -> bool {
        let password = password.filter(|pw| !pw.is_empty());
        if let (Some(hash), Some(pw)) = (self.lookup(username), password)
            && hash.is_expensive()
        {
            let key = cache.key(username, pw, hash);
            if cache.contains(&key) {
                return true;
            }
            let ok = hash.verify(pw);
            if ok {
                cache.insert(key);
            }
            return ok;
        }
        self.authenticate(username, password)
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    user: Box<str>,
    password: [u8; 64],
    hash: Box<str>,
}

/// Remembers successful verifications of expensive hashes, keyed by
/// (username, keyed SHA-512 of the password, hash string); bounded, the
/// oldest entry goes first. Failures are never cached. Clear it when the
/// password file is reloaded (a changed hash string misses anyway).
///
/// The password is stored only as SHA-512(per-process random key ‖ password),
/// so the cache does not hold a fast unsalted hash of real passwords.
pub struct VerifyCache {
    capacity: usize,
    secret: [u8; 32],
    set: HashSet<CacheKey>,
    order: VecDeque<CacheKey>,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.set.len())
            .finish()
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        VerifyCache::new(1024)
    }
}

impl VerifyCache {
    /// A cache holding at most `capacity` successful verifications.
    pub fn new(capacity: usize) -> VerifyCache {
        let mut secret = [0u8; 32];
        if super::hash::random_bytes(&mut secret).is_err() {
            // No /dev/urandom: fall back to something process-specific.
            let seed = format!("{:?}{:?}", std::time::SystemTime::now(), std::process::id());
            let d = Sha512::digest(seed.as_bytes());
            secret.copy_from_slice(&d[..32]);
        }
        VerifyCache {
            capacity,
            secret,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Forget everything (call on password file reload).
    pub fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }

    fn key(&self, user: &str, password: &[u8], hash: &PasswordHash) -> CacheKey {
        let mut h = Sha512::new();
        h.update(self.secret);
        h.update(c_str(password));
        CacheKey {
            user: user.into(),
            password: h.finalize().into(),
            hash: hash.as_str().into(),
        }
    }

    fn contains(&self, key: &CacheKey) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: CacheKey) {
        if self.capacity == 0 || self.set.contains(&key) {
            return;
        }
        while self.set.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.set.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "secret";
    const BOB: &str = "p@ss w0rd:with:colons";
    const CAROL: &str = "pässwörd€";
    const DAVE: &str = "iterations-1000";

    fn testdata(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/passwd")
            .join(name)
    }

    fn load(name: &str) -> (PasswordFile, Vec<LogLine>) {
        PasswordFile::load(testdata(name)).unwrap()
    }

    fn assert_user(f: &PasswordFile, user: &str, good: &str) {
        let h = f.lookup(user).unwrap_or_else(|| panic!("{user} missing"));
        assert!(
            h.verify(good.as_bytes()),
            "{user} should accept its password"
        );
        assert!(
            !h.verify(b"wrong password"),
            "{user} accepted a wrong password"
        );
        assert!(!h.verify(format!("{good}x").as_bytes()));
        assert!(f.authenticate(user, Some(good.as_bytes())));
        assert!(!f.authenticate(user, Some(b"nope")));
        assert!(!f.authenticate(user, None));
    }

    #[test]
    fn pbkdf2_vectors() {
        let (f, logs) = load("pbkdf2.passwd");
        assert!(logs.is_empty(), "{logs:?}");
        assert_eq!(f.len(), 4);
        assert_user(&f, "alice", ALICE);
        assert_user(&f, "bob", BOB);
        assert_user(&f, "carol", CAROL);
        assert_user(&f, "dave", DAVE);
        assert_eq!(f.lookup("dave").unwrap().iterations(), Some(1000));
        assert!(f.lookup("Alice").is_none());
        assert!(!f.authenticate("nobody", Some(ALICE.as_bytes())));
    }

    #[test]
    fn a_hash_of_the_empty_password_lets_nobody_in() {
        let (f, logs) = load("empty-password.passwd");
        assert!(logs.is_empty(), "{logs:?}");
        let mut cache = VerifyCache::default();
        for user in ["empty", "empty6"] {
            // The hash is of "": verify says so, but a login never does.
            assert!(f.lookup(user).unwrap().verify(b""));
            assert!(!f.authenticate(user, Some(b"")));
            assert!(!f.authenticate(user, None));
            assert!(!f.authenticate_cached(&mut cache, user, Some(b"")));
            assert!(!f.authenticate(user, Some(b"test")));
        }
    }

    #[test]
    fn sha512_vectors() {
        let (f, logs) = load("sha512.passwd");
        assert!(logs.is_empty(), "{logs:?}");
        assert_eq!(f.len(), 3);
        assert_user(&f, "alice", ALICE);
        assert_user(&f, "bob", BOB);
        assert_user(&f, "carol", CAROL);
    }

    #[test]
    fn mosquitto_21_sha_and_pbkdf2_lines() {
        for file in ["mosquitto-2.1.2.passwd", "mosquitto-2.1-style.passwd"] {
            let (f, logs) = load(file);
            assert!(logs.is_empty(), "{file}: {logs:?}");
            for (suffix, names) in [
                ("-pbkdf2", true),
                ("-sha512", true),
                ("", file.contains("2.1.2")),
            ] {
                if !names {
                    continue;
                }
                assert_user(&f, &format!("alice{suffix}"), ALICE);
                assert_user(&f, &format!("bob{suffix}"), BOB);
                assert_user(&f, &format!("carol{suffix}"), CAROL);
            }
        }
    }

    #[test]
    fn argon2id_lines_verify() {
        let (f, logs) = load("mosquitto-2.1.2-argon2id.passwd");
        assert!(logs.is_empty(), "{logs:?}");
        assert_eq!(f.len(), 3);
        let h = f.lookup("alice-argon2id").unwrap();
        assert!(h.is_expensive());
        assert!(h.verify(ALICE.as_bytes()));
        assert!(!h.verify(BOB.as_bytes()));
        let (f, _) = load("mosquitto-2.1-style.passwd");
        assert!(f.lookup("carol").unwrap().verify(CAROL.as_bytes()));
    }

    #[test]
    fn verify_cache_remembers_successes_only() {
        let (f, _) = load("mosquitto-2.1.2-argon2id.passwd");
        let mut cache = VerifyCache::new(2);
        assert!(!f.authenticate_cached(&mut cache, "bob-argon2id", Some(b"wrong")));
        assert!(cache.is_empty());
        assert!(f.authenticate_cached(&mut cache, "bob-argon2id", Some(BOB.as_bytes())));
        assert_eq!(cache.len(), 1);
        let t = std::time::Instant::now();
        assert!(f.authenticate_cached(&mut cache, "bob-argon2id", Some(BOB.as_bytes())));
        assert!(t.elapsed() < std::time::Duration::from_millis(5));
        // a different password for the same user is not a hit
        assert!(!f.authenticate_cached(&mut cache, "bob-argon2id", Some(ALICE.as_bytes())));
        // bounded
        for i in 0..5 {
            let k = cache.key(&format!("u{i}"), b"x", f.lookup("bob-argon2id").unwrap());
            cache.insert(k);
        }
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn edge_cases_match_vectors_md() {
        let (f, logs) = load("edge-cases.passwd");
        let mut names: Vec<&[u8]> = f.users.keys().map(|k| k.as_slice()).collect();
        names.sort();
        let expected: Vec<&[u8]> =
            vec![b"alice", b"bob", b"carol", b"crlfuser", b"dave", b"spaced"];
        assert_eq!(names, expected);
        // the second alice line ($6$ of bob's password) wins
        assert_eq!(
            f.lookup("alice").unwrap().kind(),
            crate::auth::HashKind::Sha512
        );
        assert!(f.authenticate("alice", Some(BOB.as_bytes())));
        assert!(!f.authenticate("alice", Some(ALICE.as_bytes())));
        assert_user(&f, "spaced", ALICE);
        assert_user(&f, "crlfuser", ALICE);
        assert_user(&f, "bob", BOB);
        assert_user(&f, "carol", CAROL);
        assert_user(&f, "dave", DAVE);
        for gone in [
            "plainuser",
            "emptypw",
            "nocolonline",
            "  spaced  ",
            "# a comment line",
        ] {
            assert!(f.lookup(gone).is_none(), "{gone}");
        }
        assert!(!f.authenticate("plainuser", Some(b"plaintext")));
        let path = testdata("edge-cases.passwd").display().to_string();
        let texts: Vec<(Level, String)> = logs.iter().map(|l| (l.level, l.text.clone())).collect();
        assert_eq!(
            texts,
            vec![
                (
                    Level::Error,
                    format!(
                        "Error: Invalid password hash type for user plainuser, removing entry. ({path}:6)"
                    )
                ),
                (
                    Level::Error,
                    format!(
                        "Error: Invalid password hash for user emptypw, removing entry. ({path}:8)"
                    )
                ),
                (
                    Level::Warning,
                    format!(
                        "Warning: Duplicate user 'alice' in password file '{path}' (also on line 1); \
                         the last valid line wins. Mosquitto 2.1 refuses such a file. ({path}:11)"
                    )
                ),
            ]
        );
    }

    #[test]
    fn line_rules() {
        let h6 = "$6$pef+jXZ3jZyYUk7u$FFUnUIRwvfQ7ll33/VyUxIlr1sM9bxtAtrkm9phikeCEN6bcYE7d2iyyY7jb69crDdZZmnuApS1Ff7Pf07fRvg==";
        let text = format!(
            "::bob:{h6}\n\
             x:{h6}:trailing:fields\n\
             carol::{h6}\n\
             dan:$6$AAAA\n\
             late:$6$pef+jXZ3jZyYUk7u$QUJD\n\
             it:$7$0$pef+jXZ3jZyYUk7u$QUJD\n\
             ok:{h6}\n\
             ok:garbage\n\
             \t tab\t:\t{h6}\x0b\n\
             nul:{h6}\0junk\n\
             :\n\
             lastline:"
        );
        let (f, logs) = PasswordFile::parse(text.as_bytes(), "pw");
        for u in ["bob", "x", "carol", "ok", "tab", "nul"] {
            assert!(f.authenticate(u, Some(b"secret")), "{u}");
        }
        assert!(
            f.lookup("dan").is_none() && f.lookup("late").is_none() && f.lookup("it").is_none()
        );
        let texts: Vec<&str> = logs.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Error: Unable to decode password salt for user dan, removing entry. (pw:4)",
                "Error: Unable to decode password for user late, removing entry. (pw:5)",
                "Error: Invalid hash iterations for user it, removing entry. (pw:6)",
                "Error: Invalid password hash type for user ok, removing entry. (pw:8)",
                "Warning: Invalid line in password file 'pw': : (pw:11)",
                "Warning: Invalid line in password file 'pw': lastline (pw:12)",
            ]
        );
        assert_eq!(logs[5].level, Level::Notice);
    }

    /// Same outcome as the Debian 2.0.11 broker given this file (checked with
    /// mosquitto_pub): all six users log in with `secret`, `eof` does not,
    /// and the only log line is the notice for `eof:`.
    #[test]
    fn tokeniser_quirks_checked_against_2_0_11() {
        let h = "pef+jXZ3jZyYUk7u$FFUnUIRwvfQ7ll33/VyUxIlr1sM9bxtAtrkm9phikeCEN6bcYE7d2iyyY7jb69crDdZZmnuApS1Ff7Pf07fRvg==";
        let text = format!(
            "nolead:6${h}\nu2::$6${h}\nsp ace:$6${h}\n::lead:$6${h}\nx:$6$${h}\ny:$6${h}:extra\neof:"
        );
        let (f, logs) = PasswordFile::parse(text.as_bytes(), "/tmp/mpt/edge.pw");
        for u in ["nolead", "u2", "sp ace", "lead", "x", "y"] {
            assert!(f.authenticate(u, Some(b"secret")), "{u}");
        }
        assert!(f.lookup("eof").is_none());
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs[0].text,
            "Warning: Invalid line in password file '/tmp/mpt/edge.pw': eof (/tmp/mpt/edge.pw:7)"
        );
    }

    #[test]
    fn long_fields_and_garbage_never_panic() {
        let long = "u".repeat(70000);
        let text = format!("{long}:$6$x$y\nv:{long}\n");
        let (f, logs) = PasswordFile::parse(text.as_bytes(), "pw");
        assert!(f.is_empty());
        assert_eq!(logs.len(), 2);
        assert!(
            logs[0]
                .text
                .starts_with("Warning: Invalid line in password file 'pw', username too long.")
        );
        assert!(
            logs[1]
                .text
                .starts_with("Warning: Invalid line in password file 'pw', password too long.")
        );
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = PasswordFile::parse(&garbage, "g");
        let _ = PasswordFile::parse(b"\xff\xfe:\xff$6$\xff\n", "g");
    }

    #[test]
    fn missing_file_error() {
        let err = PasswordFile::load("/nonexistent/culex/pw").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error: Unable to open pwfile \"/nonexistent/culex/pw\"."
        );
        assert_eq!(
            err.followup(),
            "Error opening password file \"/nonexistent/culex/pw\"."
        );
        assert_eq!(err.exit_code(), 13);
    }

    /// Rough cost of one verification; run with
    /// `cargo test --lib verify_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn verify_timing() {
        let (a2, _) = load("mosquitto-2.1.2-argon2id.passwd");
        let (p7, _) = load("mosquitto-2.1.2.passwd");
        let cases = [
            (
                "argon2id m=47104,t=1,p=1",
                a2.lookup("alice-argon2id").unwrap(),
            ),
            ("$7$ 1000 iterations", p7.lookup("alice").unwrap()),
            ("$6$", p7.lookup("alice-sha512").unwrap()),
        ];
        for (name, h) in cases {
            let n = 5;
            let t = std::time::Instant::now();
            for _ in 0..n {
                assert!(h.verify(ALICE.as_bytes()));
            }
            eprintln!("{name}: {:?} per verify", t.elapsed() / n);
        }
    }

    #[test]
    fn unknown_user_costs_a_verification() {
        let (f, _) = load("pbkdf2.passwd");
        let d = f.dummy.as_ref().unwrap();
        assert_eq!(d.iterations(), Some(101));
        assert!(!f.authenticate("ghost", Some(b"")));
        assert!(!f.authenticate("ghost", None));
        let (empty, _) = PasswordFile::parse(b"", "e");
        assert!(!empty.authenticate("ghost", Some(b"x")));
    }
}
