//! The hash field of a password file line: parsing, verification, writing.
//!
//! | Prefix | Layout | Digest |
//! |--------|--------|--------|
//! | `$6$` | `$6$<salt>$<digest>` | SHA-512(password ‖ salt) |
//! | `$7$` | `$7$<iterations>$<salt>$<digest>` | PBKDF2-HMAC-SHA512(password, salt, iterations, 64) |
//! | `$argon2id$` | `$argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>` | Argon2id (PHC string) |
//!
//! `$6$`/`$7$`: standard base64 with padding (missing padding is tolerated),
//! salt of 12 bytes (what 2.0 writes and reads) or 64 bytes (what 2.1 writes),
//! digest of 64 bytes. The fields are found the way mosquitto's `strtok(…, "$")`
//! finds them, so empty fields (`$$`) are skipped and extra fields after the
//! digest are ignored. argon2id: unpadded base64, any parameters the `argon2`
//! crate accepts (2.1 writes `m=47104,t=1,p=1`, 64-byte salt and hash), up to
//! a memory cost of [`ARGON2_MAX_M_COST`].
//!
//! The password is the CONNECT password field; like mosquitto, which handles
//! it as a C string, bytes from the first NUL on are ignored.

use std::fmt;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_NO_PAD_INDIFFERENT, STANDARD_PAD_INDIFFERENT,
};
use sha2::{Digest, Sha512};

/// Salt length written by `culex_passwd` for `$6$`/`$7$`: 12 bytes, the only
/// length mosquitto 2.0 reads (2.1 reads 12 or 64).
pub const SALT_LEN: usize = 12;
/// Salt lengths accepted when reading `$6$`/`$7$` (2.0: 12, 2.1: 12 or 64).
pub const ACCEPTED_SALT_LENS: [usize; 2] = [12, 64];
/// `$7$` iterations written by `culex_passwd` by default (2.0's default is
/// 101, 2.1's 1000; both read any count).
pub const DEFAULT_ITERATIONS: u32 = 1000;
/// argon2id parameters of mosquitto 2.1's `mosquitto_passwd -H argon2id`.
pub const ARGON2_M_COST: u32 = 47104;
pub const ARGON2_T_COST: u32 = 1;
pub const ARGON2_P_COST: u32 = 1;
pub const ARGON2_SALT_LEN: usize = 64;
pub const ARGON2_HASH_LEN: usize = 64;
/// Largest argon2id memory cost accepted when reading (KiB): 1 GiB, twenty
/// times 2.1's 46 MiB. Larger values would let one login exhaust memory
/// (the crate allocates `m` KiB per verification), so such lines are dropped.
pub const ARGON2_MAX_M_COST: u32 = 1024 * 1024;

/// Which algorithm a hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// `$6$`: one SHA-512 over password ‖ salt.
    Sha512,
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Sha512Pbkdf2,
    /// `$argon2id$` (mosquitto 2.1 built with `WITH_ARGON2`).
    Argon2id,
}

impl HashKind {
    /// Name used by `mosquitto_passwd -H`.
    pub fn name(self) -> &'static str {
        match self {
            HashKind::Sha512 => "sha512",
            HashKind::Sha512Pbkdf2 => "sha512-pbkdf2",
            HashKind::Argon2id => "argon2id",
        }
    }

    /// Parse a `-H` argument (case-sensitive, as mosquitto_passwd 2.0.11).
    pub fn from_name(name: &str) -> Option<HashKind> {
        match name {
            "sha512" => Some(HashKind::Sha512),
            "sha512-pbkdf2" => Some(HashKind::Sha512Pbkdf2),
            "argon2id" => Some(HashKind::Argon2id),
            _ => None,
        }
    }
}

/// Why a hash field was refused; [`HashError::message`] gives mosquitto's
/// log text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// Empty field, or a field missing after the type.
    Invalid,
    /// Not `6`, `7` or `argon2id` (e.g. a plain-text password).
    InvalidType,
    /// `$7$` iterations below 1 (or not a number).
    InvalidIterations,
    /// Salt not base64 or not 12/64 bytes.
    BadSalt,
    /// Digest not base64 or not 64 bytes.
    BadDigest,
    /// An `$argon2id$` string the argon2 crate cannot use.
    BadArgon2,
}

impl HashError {
    /// mosquitto 2.0's message for an entry dropped for this reason.
    pub fn message(self, user: &str) -> String {
        match self {
            HashError::Invalid | HashError::BadArgon2 => {
                format!("Error: Invalid password hash for user {user}, removing entry.")
            }
            HashError::InvalidType => {
                format!("Error: Invalid password hash type for user {user}, removing entry.")
            }
            HashError::InvalidIterations => {
                format!("Error: Invalid hash iterations for user {user}, removing entry.")
            }
            HashError::BadSalt => {
                format!("Error: Unable to decode password salt for user {user}, removing entry.")
            }
            HashError::BadDigest => {
                format!("Error: Unable to decode password for user {user}, removing entry.")
            }
        }
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashError::Invalid => "invalid password hash",
            HashError::InvalidType => "invalid password hash type",
            HashError::InvalidIterations => "invalid hash iterations",
            HashError::BadSalt => "unable to decode password salt",
            HashError::BadDigest => "unable to decode password",
            HashError::BadArgon2 => "invalid argon2id hash",
        })
    }
}

impl std::error::Error for HashError {}

#[derive(Clone)]
enum Inner {
    Sha512 {
        salt: Vec<u8>,
        digest: [u8; 64],
    },
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        digest: [u8; 64],
    },
    Argon2id {
        params: argon2::Params,
        version: argon2::Version,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// A parsed, usable hash from a password file.
#[derive(Clone)]
pub struct PasswordHash {
    encoded: String,
    inner: Inner,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The encoded hash is not secret in the file sense, but keep logs short.
        f.debug_struct("PasswordHash")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl PartialEq for PasswordHash {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

fn decode_std(s: &str) -> Option<Vec<u8>> {
    STANDARD_PAD_INDIFFERENT.decode(s).ok()
}

/// C `atoi`: optional leading whitespace and sign, then digits; stops at the
/// first other byte. `None` when the value does not fit an `i32` (undefined
/// in C).
fn atoi(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && super::is_c_space(b[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v * 10 + i64::from(b[i] - b'0');
        if v > i64::from(i32::MAX) + 1 {
            return None;
        }
        i += 1;
    }
    let v = if neg { -v } else { v };
    if v > i64::from(i32::MAX) || v < i64::from(i32::MIN) {
        return None;
    }
    Some(v)
}

impl PasswordHash {
    /// Parse a hash field (already trimmed), with mosquitto 2.0's checks
    /// and 2.1's extensions (64-byte salts, argon2id).
    pub fn parse(field: &str) -> Result<PasswordHash, HashError> {
        if field.starts_with("$argon2") {
            return Self::parse_argon2(field);
        }
        let mut tokens = field.split('$').filter(|t| !t.is_empty());
        let kind = match tokens.next() {
            None => return Err(HashError::Invalid),
            Some("6") => HashKind::Sha512,
            Some("7") => HashKind::Sha512Pbkdf2,
            Some(_) => return Err(HashError::InvalidType),
        };
        let mut iterations = 0u32;
        if kind == HashKind::Sha512Pbkdf2 {
            let tok = tokens.next().ok_or(HashError::Invalid)?;
            match atoi(tok) {
                Some(n) if n >= 1 => iterations = n as u32,
                _ => return Err(HashError::InvalidIterations),
            }
        }
        let salt_tok = tokens.next().ok_or(HashError::Invalid)?;
        let salt = match decode_std(salt_tok) {
            Some(s) if ACCEPTED_SALT_LENS.contains(&s.len()) => s,
            _ => return Err(HashError::BadSalt),
        };
        let digest_tok = tokens.next().ok_or(HashError::Invalid)?;
        let digest: [u8; 64] = decode_std(digest_tok)
            .and_then(|d| d.try_into().ok())
            .ok_or(HashError::BadDigest)?;
        let inner = match kind {
            HashKind::Sha512 => Inner::Sha512 { salt, digest },
            _ => Inner::Pbkdf2 {
                iterations,
                salt,
                digest,
            },
        };
        Ok(PasswordHash {
            encoded: field.to_string(),
            inner,
        })
    }

    fn parse_argon2(field: &str) -> Result<PasswordHash, HashError> {
        let mut parts = field.split('$');
        // "", "argon2id", ["v=19",] "m=..,t=..,p=..", salt, hash
        if parts.next() != Some("") {
            return Err(HashError::BadArgon2);
        }
        if parts.next() != Some("argon2id") {
            return Err(HashError::InvalidType);
        }
        let rest: Vec<&str> = parts.collect();
        let (version, rest) = match rest.first() {
            Some(v) if v.starts_with("v=") => {
                let version = match &v[2..] {
                    "19" => argon2::Version::V0x13,
                    "16" => argon2::Version::V0x10,
                    _ => return Err(HashError::BadArgon2),
                };
                (version, &rest[1..])
            }
            _ => (argon2::Version::V0x10, &rest[..]),
        };
        let [params_s, salt_s, hash_s] = rest else {
            return Err(HashError::BadArgon2);
        };
        let (mut m, mut t, mut p) = (None, None, None);
        for kv in params_s.split(',') {
            let (k, v) = kv.split_once('=').ok_or(HashError::BadArgon2)?;
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HashError::BadArgon2);
            }
            let v: u32 = v.parse().map_err(|_| HashError::BadArgon2)?;
            let slot = match k {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                _ => return Err(HashError::BadArgon2),
            };
            if slot.replace(v).is_some() {
                return Err(HashError::BadArgon2);
            }
        }
        let (Some(m), Some(t), Some(p)) = (m, t, p) else {
            return Err(HashError::BadArgon2);
        };
        let salt = STANDARD_NO_PAD_INDIFFERENT
            .decode(salt_s)
            .map_err(|_| HashError::BadArgon2)?;
        let hash = STANDARD_NO_PAD_INDIFFERENT
            .decode(hash_s)
            .map_err(|_| HashError::BadArgon2)?;
        if salt.len() < argon2::MIN_SALT_LEN || m > ARGON2_MAX_M_COST {
            return Err(HashError::BadArgon2);
        }
        let params =
            argon2::Params::new(m, t, p, Some(hash.len())).map_err(|_| HashError::BadArgon2)?;
        Ok(PasswordHash {
            encoded: field.to_string(),
            inner: Inner::Argon2id {
                params,
                version,
                salt,
                hash,
            },
        })
    }

    /// The hash field as it appeared in the file.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    pub fn kind(&self) -> HashKind {
        match self.inner {
            Inner::Sha512 { .. } => HashKind::Sha512,
            Inner::Pbkdf2 { .. } => HashKind::Sha512Pbkdf2,
            Inner::Argon2id { .. } => HashKind::Argon2id,
        }
    }

    /// `$7$` iteration count.
    pub fn iterations(&self) -> Option<u32> {
        match self.inner {
            Inner::Pbkdf2 { iterations, .. } => Some(iterations),
            _ => None,
        }
    }

    /// True for argon2id: tens of milliseconds and ~46 MiB per check with
    /// 2.1's parameters. Use a [`VerifyCache`](super::VerifyCache) and keep
    /// such checks off the hot path.
    pub fn is_expensive(&self) -> bool {
        matches!(self.inner, Inner::Argon2id { .. })
    }

    /// Does `password` (CONNECT password bytes) match? Constant-time
    /// comparison of the digests; never panics.
    pub fn verify(&self, password: &[u8]) -> bool {
        let password = super::c_str(password);
        match &self.inner {
            Inner::Sha512 { salt, digest } => ct_eq(&sha512_digest(password, salt), digest),
            Inner::Pbkdf2 {
                iterations,
                salt,
                digest,
            } => ct_eq(&pbkdf2_digest(password, salt, *iterations), digest),
            Inner::Argon2id {
                params,
                version,
                salt,
                hash,
            } => {
                let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, *version, params.clone());
                let mut out = vec![0u8; hash.len()];
                match a2.hash_password_into(password, salt, &mut out) {
                    Ok(()) => ct_eq(&out, hash),
                    Err(_) => false,
                }
            }
        }
    }

    /// A hash of the same kind and cost whose [`verify`](Self::verify)
    /// result is meaningless: used for unknown users so that a failed login
    /// costs the same whether the user exists or not.
    pub(crate) fn dummy_like(&self) -> PasswordHash {
        let inner = match &self.inner {
            Inner::Sha512 { salt, .. } => Inner::Sha512 {
                salt: vec![0x5a; salt.len()],
                digest: [0; 64],
            },
            Inner::Pbkdf2 {
                iterations, salt, ..
            } => Inner::Pbkdf2 {
                iterations: *iterations,
                salt: vec![0x5a; salt.len()],
                digest: [0; 64],
            },
            Inner::Argon2id {
                params,
                version,
                salt,
                hash,
            } => Inner::Argon2id {
                params: params.clone(),
                version: *version,
                salt: vec![0x5a; salt.len()],
                hash: vec![0; hash.len()],
            },
        };
        PasswordHash {
            encoded: String::new(),
            inner,
        }
    }
}

/// Constant-time equality: the time depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from turning the loop into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// SHA-512(password ‖ salt), the `$6$` digest.
pub fn sha512_digest(password: &[u8], salt: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(password);
    h.update(salt);
    h.finalize().into()
}

/// PBKDF2-HMAC-SHA512(password, salt, iterations, 64), the `$7$` digest.
pub fn pbkdf2_digest(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// Fill `buf` from `/dev/urandom`.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// `$6$<salt>$<digest>` for this password and salt.
pub fn encode_sha512(password: &[u8], salt: &[u8]) -> String {
    format!(
        "$6${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(sha512_digest(password, salt))
    )
}

/// `$7$<iterations>$<salt>$<digest>` for this password and salt.
pub fn encode_pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> String {
    format!(
        "${}${iterations}${}${}",
        7,
        STANDARD.encode(salt),
        STANDARD.encode(pbkdf2_digest(password, salt, iterations))
    )
}

/// `$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` (PHC, unpadded base64).
pub fn encode_argon2id(
    password: &[u8],
    salt: &[u8],
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    hash_len: usize,
) -> Result<String, HashError> {
    let params = argon2::Params::new(m_cost, t_cost, p_cost, Some(hash_len))
        .map_err(|_| HashError::BadArgon2)?;
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = vec![0u8; hash_len];
    a2.hash_password_into(password, salt, &mut out)
        .map_err(|_| HashError::BadArgon2)?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "$argon2id$v=19$m={m_cost},t={t_cost},p={p_cost}${}${}",
        b64.encode(salt),
        b64.encode(&out)
    ))
}

/// A fresh hash field for `password` with a random salt from /dev/urandom:
/// `$6$`/`$7$` with a 12-byte salt (readable by 2.0 and 2.1), argon2id with
/// 2.1's parameters. `iterations` applies to `$7$` only.
pub fn new_hash(kind: HashKind, password: &[u8], iterations: u32) -> std::io::Result<String> {
    match kind {
        HashKind::Sha512 | HashKind::Sha512Pbkdf2 => {
            let mut salt = [0u8; SALT_LEN];
            random_bytes(&mut salt)?;
            Ok(if kind == HashKind::Sha512 {
                encode_sha512(password, &salt)
            } else {
                encode_pbkdf2(password, &salt, iterations)
            })
        }
        HashKind::Argon2id => {
            let mut salt = [0u8; ARGON2_SALT_LEN];
            random_bytes(&mut salt)?;
            encode_argon2id(
                password,
                &salt,
                ARGON2_M_COST,
                ARGON2_T_COST,
                ARGON2_P_COST,
                ARGON2_HASH_LEN,
            )
            .map_err(std::io::Error::other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_7: &str = "$7$101$QE8Ldg5uRxGyTz3V$NzbnuY7C5cWjYHZjIlpBu2iVxIpyxv2kvAszDWGX5yo+E/AyfpD7TDetpmmsi6NPaj4uFddrHRn3YB6X/kpSOg==";
    const ALICE_6: &str = "$6$pef+jXZ3jZyYUk7u$FFUnUIRwvfQ7ll33/VyUxIlr1sM9bxtAtrkm9phikeCEN6bcYE7d2iyyY7jb69crDdZZmnuApS1Ff7Pf07fRvg==";

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("101"), Some(101));
        assert_eq!(atoi(" 12abc"), Some(12));
        assert_eq!(atoi("abc"), Some(0));
        assert_eq!(atoi("-5"), Some(-5));
        assert_eq!(atoi("99999999999999999999"), None);
    }

    #[test]
    fn worked_examples_verify() {
        let h = PasswordHash::parse(ALICE_7).unwrap();
        assert_eq!(h.kind(), HashKind::Sha512Pbkdf2);
        assert_eq!(h.iterations(), Some(101));
        assert!(h.verify(b"secret"));
        assert!(!h.verify(b"secret2"));
        // bytes after a NUL are ignored, as in mosquitto
        assert!(h.verify(b"secret\0garbage"));
        let h = PasswordHash::parse(ALICE_6).unwrap();
        assert!(h.verify(b"secret"));
        assert!(!h.verify(b"Secret"));
        assert!(!h.is_expensive());
    }

    #[test]
    fn strtok_field_rules() {
        // empty fields are skipped, extra fields ignored, leading '$' optional
        assert!(
            PasswordHash::parse(&ALICE_7.replace("$101$", "$$101$$"))
                .unwrap()
                .verify(b"secret")
        );
        assert!(
            PasswordHash::parse(&format!("{ALICE_6}$extra"))
                .unwrap()
                .verify(b"secret")
        );
        assert!(
            PasswordHash::parse(&ALICE_6[1..])
                .unwrap()
                .verify(b"secret")
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(PasswordHash::parse("").unwrap_err(), HashError::Invalid);
        assert_eq!(PasswordHash::parse("$$$").unwrap_err(), HashError::Invalid);
        assert_eq!(
            PasswordHash::parse("plaintext").unwrap_err(),
            HashError::InvalidType
        );
        assert_eq!(
            PasswordHash::parse("$5$abc$def").unwrap_err(),
            HashError::InvalidType
        );
        assert_eq!(PasswordHash::parse("$7$").unwrap_err(), HashError::Invalid);
        assert_eq!(
            PasswordHash::parse("$7$0$a$b").unwrap_err(),
            HashError::InvalidIterations
        );
        assert_eq!(
            PasswordHash::parse("$7$x$a$b").unwrap_err(),
            HashError::InvalidIterations
        );
        assert_eq!(PasswordHash::parse("$6$").unwrap_err(), HashError::Invalid);
        assert_eq!(
            PasswordHash::parse("$6$QUJD$x").unwrap_err(),
            HashError::BadSalt
        );
        assert_eq!(
            PasswordHash::parse("$6$!!!!$x").unwrap_err(),
            HashError::BadSalt
        );
        // 16-byte salt: refused (2.0 and 2.1)
        let s16 = STANDARD.encode([1u8; 16]);
        assert_eq!(
            PasswordHash::parse(&format!("$6${s16}$x")).unwrap_err(),
            HashError::BadSalt
        );
        assert_eq!(
            PasswordHash::parse("$6$pef+jXZ3jZyYUk7u").unwrap_err(),
            HashError::Invalid
        );
        assert_eq!(
            PasswordHash::parse("$6$pef+jXZ3jZyYUk7u$QUJD").unwrap_err(),
            HashError::BadDigest
        );
        assert_eq!(
            PasswordHash::parse("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g").unwrap_err(),
            HashError::InvalidType
        );
        for bad in [
            "$argon2id$",
            "$argon2id$v=19$m=8,t=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=18$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaGhhc2g",
            "$argon2id$v=19$m=8,t=1,p=1,x=2$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g$more",
            "$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=8,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=+8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        ] {
            assert_eq!(
                PasswordHash::parse(bad).unwrap_err(),
                HashError::BadArgon2,
                "{bad}"
            );
        }
    }

    #[test]
    fn written_hashes_round_trip() {
        let salt = [7u8; 12];
        let h = PasswordHash::parse(&encode_pbkdf2(b"pw", &salt, 1000)).unwrap();
        assert!(h.verify(b"pw") && !h.verify(b"pw2"));
        let h = PasswordHash::parse(&encode_sha512(b"pw", &[9u8; 64])).unwrap();
        assert!(h.verify(b"pw") && !h.verify(b""));
        // cheap argon2id parameters for the test
        let enc = encode_argon2id(b"pw", &[3u8; 16], 64, 1, 1, 32).unwrap();
        assert!(enc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let h = PasswordHash::parse(&enc).unwrap();
        assert!(h.is_expensive());
        assert!(h.verify(b"pw") && !h.verify(b"px"));
        for kind in [HashKind::Sha512, HashKind::Sha512Pbkdf2] {
            let enc = new_hash(kind, "pässwörd€".as_bytes(), 10).unwrap();
            let h = PasswordHash::parse(&enc).unwrap();
            assert_eq!(h.kind(), kind);
            assert!(h.verify("pässwörd€".as_bytes()));
        }
    }

    #[test]
    fn dummy_never_matches_the_original() {
        let h = PasswordHash::parse(ALICE_7).unwrap();
        let d = h.dummy_like();
        assert_eq!(d.kind(), HashKind::Sha512Pbkdf2);
        assert_eq!(d.iterations(), Some(101));
        assert!(!d.verify(b"secret"));
    }
}
