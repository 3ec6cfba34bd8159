//! `ciphers` and `ciphers_tls1.3`: OpenSSL cipher lists mapped onto the
//! suites rustls (with the *ring* provider) implements.
//!
//! rustls offers six TLS 1.2 suites (ECDHE with AES-GCM or ChaCha20-Poly1305)
//! and three TLS 1.3 suites. A list naming suites explicitly keeps those
//! rustls has, in the list's order (OpenSSL's order is the server's
//! preference, and mosquitto sets `SSL_OP_CIPHER_SERVER_PREFERENCE`).
//! OpenSSL skips names it does not know and fails only when nothing is left;
//! culex does the same with names rustls lacks (a warning names the dropped
//! ones, an error if none is left), so a copied Mozilla-style list that
//! also names DHE or CBC suites still starts.
//!
//! Keywords (`HIGH`, `DEFAULT`, `!aNULL`, `ECDHE+AESGCM`, `@STRENGTH`, ...)
//! select by property; rustls' suites are all in OpenSSL's `HIGH` set and
//! none is anonymous, export or NULL, so a list with a positive keyword keeps
//! rustls' defaults (less any suite it explicitly negates).

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as suite;

/// OpenSSL names of the TLS 1.2 suites rustls implements.
const TLS12_SUITES: &[(&str, SupportedCipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The TLS 1.3 suites, by the names OpenSSL's `SSL_CTX_set_ciphersuites`
/// takes.
const TLS13_SUITES: &[(&str, SupportedCipherSuite)] = &[
    ("TLS_AES_256_GCM_SHA384", suite::TLS13_AES_256_GCM_SHA384),
    ("TLS_AES_128_GCM_SHA256", suite::TLS13_AES_128_GCM_SHA256),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// OpenSSL cipher-string keywords (they select by property, they are not
/// suite names). Compared case-sensitively, as OpenSSL does.
const KEYWORDS: &[&str] = &[
    "ALL",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "DEFAULT",
    "HIGH",
    "MEDIUM",
    "LOW",
    "EXP",
    "EXPORT",
    "EXPORT40",
    "EXPORT56",
    "NULL",
    "eNULL",
    "aNULL",
    "kRSA",
    "aRSA",
    "RSA",
    "kDH",
    "kDHr",
    "kDHd",
    "kDHE",
    "kEDH",
    "DH",
    "DHE",
    "EDH",
    "ADH",
    "kECDH",
    "kECDHE",
    "kEECDH",
    "ECDH",
    "ECDHE",
    "EECDH",
    "AECDH",
    "aECDH",
    "aDSS",
    "DSS",
    "aDH",
    "aECDSA",
    "ECDSA",
    "SSLv2",
    "SSLv3",
    "TLSv1",
    "TLSv1.0",
    "TLSv1.2",
    "AES",
    "AES128",
    "AES256",
    "AESGCM",
    "AESCCM",
    "AESCCM8",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "ARIAGCM",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "CHACHA20",
    "3DES",
    "DES",
    "RC4",
    "RC2",
    "IDEA",
    "SEED",
    "MD5",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "kGOST",
    "aGOST",
    "aGOST01",
    "GOST94",
    "GOST89MAC",
    "PSK",
    "kPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "aPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "CBC",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
];

/// The outcome of mapping one list.
#[derive(Debug, PartialEq)]
pub(super) struct Selection {
    /// The suites to offer, in preference order.
    pub suites: Vec<SupportedCipherSuite>,
    /// Names in the list that rustls does not implement (dropped).
    pub unsupported: Vec<String>,
    /// The list used OpenSSL keywords, so rustls' defaults were kept.
    pub used_keywords: bool,
}

/// Why a list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CipherError {
    /// Nothing usable is left; the names rustls lacks, if any.
    NoneSupported(Vec<String>),
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split([':', ',', ' ', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `ciphers`: an OpenSSL cipher list for TLS 1.2 and below.
pub(super) fn select_tls12(list: &str) -> Result<Selection, CipherError> {
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    let mut removed: Vec<SupportedCipherSuite> = Vec::new();
    let mut unsupported = Vec::new();
    let mut used_keywords = false;
    for token in split(list) {
        if token.starts_with('@') {
            continue; // @STRENGTH, @SECLEVEL=n
        }
        let (negated, name) = match token.as_bytes()[0] {
            b'!' | b'-' => (true, &token[1..]),
            b'+' => (false, &token[1..]),
            _ => (false, token),
        };
        if let Some(&(_, s)) = TLS12_SUITES.iter().find(|(n, _)| *n == name) {
            if negated {
                chosen.retain(|c| c.suite() != s.suite());
                removed.push(s);
            } else if !chosen.iter().any(|c| c.suite() == s.suite()) {
                chosen.push(s);
            }
        } else if is_keyword(name) {
            if !negated {
                used_keywords = true;
            }
        } else if !negated && !name.is_empty() {
            unsupported.push(name.to_string());
        }
    }
    if used_keywords {
        // Keywords keep the defaults, in rustls' order, less explicit
        // negations; explicitly named suites are already among them.
        let suites = TLS12_SUITES
            .iter()
            .map(|&(_, s)| s)
            .filter(|s| !removed.iter().any(|r| r.suite() == s.suite()))
            .collect::<Vec<_>>();
        if suites.is_empty() {
            return Err(CipherError::NoneSupported(unsupported));
        }
        return Ok(Selection {
            suites,
            unsupported,
            used_keywords,
        });
    }
    if chosen.is_empty() {
        return Err(CipherError::NoneSupported(unsupported));
    }
    Ok(Selection {
        suites: chosen,
        unsupported,
        used_keywords,
    })
}

/// A keyword, or a `+`-joined combination of keywords and names.
fn is_keyword(name: &str) -> bool {
    if name.contains('+') {
        return name
            .split('+')
            .all(|part| KEYWORDS.contains(&part) || TLS12_SUITES.iter().any(|(n, _)| *n == part));
    }
    KEYWORDS.contains(&name)
}

/// `ciphers_tls1.3`: a colon-separated list of TLS 1.3 suite names.
pub(super) fn select_tls13(list: &str) -> Result<Selection, CipherError> {
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    let mut unsupported = Vec::new();
    for name in split(list) {
        match TLS13_SUITES.iter().find(|(n, _)| *n == name) {
            Some(&(_, s)) => {
                if !chosen.iter().any(|c| c.suite() == s.suite()) {
                    chosen.push(s);
                }
            }
            None => unsupported.push(name.to_string()),
        }
    }
    if chosen.is_empty() {
        return Err(CipherError::NoneSupported(unsupported));
    }
    Ok(Selection {
        suites: chosen,
        unsupported,
        used_keywords: false,
    })
}

/// rustls' default suites for each version, in its preference order.
pub(super) fn default_tls12() -> Vec<SupportedCipherSuite> {
    TLS12_SUITES.iter().map(|&(_, s)| s).collect()
}

pub(super) fn default_tls13() -> Vec<SupportedCipherSuite> {
    TLS13_SUITES.iter().map(|&(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite;

    fn ids(sel: &Selection) -> Vec<CipherSuite> {
        sel.suites.iter().map(|s| s.suite()).collect()
    }

    #[test]
    fn named_suites_keep_their_order() {
        let sel =
            select_tls12("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256").unwrap();
        assert_eq!(
            ids(&sel),
            vec![
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ]
        );
        assert!(sel.unsupported.is_empty());
        assert!(!sel.used_keywords);
    }

    #[test]
    fn unsupported_names_are_dropped_or_refused() {
        let sel = select_tls12("ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:AES128-SHA")
            .unwrap();
        assert_eq!(
            ids(&sel),
            vec![CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
        );
        assert_eq!(
            sel.unsupported,
            vec!["DHE-RSA-AES256-GCM-SHA384", "AES128-SHA"]
        );
        assert_eq!(
            select_tls12("DHE-RSA-AES256-SHA:RC4-MD5"),
            Err(CipherError::NoneSupported(vec![
                "DHE-RSA-AES256-SHA".into(),
                "RC4-MD5".into()
            ]))
        );
    }

    #[test]
    fn keywords_keep_the_defaults_less_negations() {
        let sel = select_tls12("HIGH:!aNULL:!MD5:@STRENGTH").unwrap();
        assert!(sel.used_keywords);
        assert_eq!(sel.suites.len(), 6);
        let sel = select_tls12("DEFAULT:!ECDHE-RSA-CHACHA20-POLY1305").unwrap();
        assert_eq!(sel.suites.len(), 5);
        assert!(select_tls12("ECDHE+AESGCM:-SHA1").unwrap().used_keywords);
        // Only negations: nothing is selected.
        assert!(select_tls12("!aNULL:!eNULL").is_err());
    }

    #[test]
    fn tls13_names() {
        let sel = select_tls13("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256").unwrap();
        assert_eq!(
            ids(&sel),
            vec![
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS13_AES_128_GCM_SHA256
            ]
        );
        let sel = select_tls13("TLS_AES_128_CCM_SHA256:TLS_AES_256_GCM_SHA384").unwrap();
        assert_eq!(sel.unsupported, vec!["TLS_AES_128_CCM_SHA256"]);
        assert!(select_tls13("TLS_AES_128_CCM_8_SHA256").is_err());
        assert!(select_tls13("").is_err());
    }
}
