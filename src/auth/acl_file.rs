//! The ACL file: reader and evaluator with mosquitto 2.0's rules
//! (`shared/spec/auth-files.md` §5, §6).
//!
//! Syntax, line by line: trailing C whitespace is stripped; a line whose
//! first byte is `#` is a comment; words are split on spaces only (a leading
//! tab makes the first word `\ttopic`, an invalid line).
//! * `topic [read|write|readwrite|deny] FILTER`: a rule for the current
//!   block (the anonymous block before the first `user` line). The filter is
//!   the rest of the line, trimmed. With a single word after `topic` that word
//!   is the filter (readwrite), so `topic read` is the filter `read`.
//! * `pattern [read|write|readwrite|deny] FILTER`: a rule for every client;
//!   `%c` and `%u` are replaced by the client id and username anywhere.
//! * `user NAME`: the rest of the line, trimmed, starts a new block; blocks
//!   for the same name merge.
//!
//! Any error is fatal (exit 3), with mosquitto's text.
//!
//! Evaluation ([`AclFile::check`]): the client's block (by username, or the
//! anonymous block without one): deny rules first, then grants in file order,
//! the first matching rule decides. Then patterns the same way, after
//! refusing clients whose username or client id contains `+` or `#`. No
//! decision means denied. A topic starting with `$` is matched only by
//! filters starting with `$`, and `a/#` matches `a`.
//!
//! Subscribe and unsubscribe are never refused by the ACL file in mosquitto
//! 2.0 or 2.1: messages are filtered per delivery (`Access::Read`) instead.
//! [`AclFile::check_subscribe`] exists to say so in code.
//!
//! Differences: lines that are not UTF-8 are read lossily (U+FFFD); errors
//! carry ` (file:line)` after mosquitto's text.

use crate::codec::topic::TOPIC_HIERARCHY_LIMIT;
use std::collections::HashMap;
use std::path::Path;

use super::error::AclFileError;
use super::{Level, LogLine, c_str, fgets_lines, is_c_space, trim_c_space};

/// What a client wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive a message (checked for each delivery, retained and queued
    /// messages included).
    Read,
    /// Publish a message (incoming PUBLISH, or a Will when it is sent).
    Write,
}

impl Access {
    fn bit(self) -> u8 {
        match self {
            Access::Read => READ,
            Access::Write => WRITE,
        }
    }
}

const DENY: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;

/// Outcome of [`AclFile::decide`], with the reason for the two refusals
/// mosquitto logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclDecision {
    Allowed,
    Denied,
    /// Patterns exist and the username contains `+` or `#`.
    DangerousUsername,
    /// Patterns exist and the client id contains `+` or `#`.
    DangerousClientId,
}

impl AclDecision {
    pub fn is_allowed(self) -> bool {
        self == AclDecision::Allowed
    }

    /// The notice mosquitto logs for this decision, if any.
    pub fn log_text(self, client_id: &str, username: Option<&str>) -> Option<String> {
        match self {
            AclDecision::DangerousUsername => Some(format!(
                "ACL denying access to client with dangerous username \"{}\"",
                username.unwrap_or("")
            )),
            AclDecision::DangerousClientId => Some(format!(
                "ACL denying access to client with dangerous client id \"{client_id}\""
            )),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    filter: Box<str>,
    access: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PatternRule {
    filter: Box<str>,
    access: u8,
    /// Contains `%c` / `%u` (mosquitto's ccount/ucount > 0).
    has_c: bool,
    has_u: bool,
}

/// Rules of one block, deny rules first (their order among themselves does
/// not matter), then grants in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleList {
    denies: usize,
    rules: Vec<Rule>,
}

impl RuleList {
    fn push(&mut self, rule: Rule) {
        if rule.access == DENY {
            self.rules.insert(self.denies, rule);
            self.denies += 1;
        } else {
            self.rules.push(rule);
        }
    }
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFile {
    anonymous: Option<RuleList>,
    users: HashMap<String, RuleList>,
    patterns: Vec<PatternRule>,
    pattern_denies: usize,
}

/// `strtok(s, " ")` as mosquitto uses it: skip leading spaces, return the
/// token and what follows the space that ended it.
fn strtok_space(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    Some(match s.find(' ') {
        Some(j) => (&s[..j], &s[j + 1..]),
        None => (s, ""),
    })
}

fn trim_str(s: &str) -> &str {
    // C-whitespace trimming on a str: the bytes removed are ASCII, so the
    // result is still on char boundaries.
    let t = trim_c_space(s.as_bytes());
    let start = t.as_ptr() as usize - s.as_ptr() as usize;
    &s[start..start + t.len()]
}

/// mosquitto 2.0's broker-side `mosquitto_sub_topic_check`: `+` and `#` only
/// as whole levels, `#` last, at most 65535 bytes and at most 200 `/`
/// (`TOPIC_HIERARCHY_LIMIT`, checked against 2.0.11). No UTF-8 check.
pub fn valid_acl_filter(filter: &str) -> bool {
    let b = filter.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let prev_ok = i == 0 || b[i - 1] == b'/';
        match c {
            b'+' if !prev_ok || (i + 1 < b.len() && b[i + 1] != b'/') => return false,
            b'#' if !prev_ok || i + 1 < b.len() => return false,
            _ => {}
        }
    }
    b.len() <= 65535 && b.iter().filter(|&&c| c == b'/').count() <= TOPIC_HIERARCHY_LIMIT
}

/// mosquitto's `mosquitto_topic_matches_sub` on a valid filter and topic:
/// `+` one level, `#` the rest (including the parent: `a/#` matches `a`),
/// and a `$` topic is matched only by a `$` filter (and vice versa).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || topic.is_empty() || filter.starts_with('$') != topic.starts_with('$') {
        return false;
    }
    crate::codec::topic::filter_matches(filter, topic)
}

/// Rules the broker applies whatever the ACL file says (mosquitto's
/// `acl__check_dollar`): publishing to a topic starting with `$SYS` is refused
/// except `$SYS/broker/connection/<name>/state` (bridge status), and a topic
/// starting with `$share` can never be published. Bridges bypass this.
pub fn publish_allowed_always(topic: &str) -> bool {
    if topic.starts_with("$SYS") {
        topic_matches("$SYS/broker/connection/+/state", topic)
    } else {
        !topic.starts_with("$share")
    }
}

/// The delivery (read) side of the same rule: a topic starting with `$share`
/// is never delivered; everything else is left to the ACL file.
pub fn delivery_allowed_always(topic: &str) -> bool {
    !topic.starts_with("$share")
}

impl AclFile {
    /// Parse an ACL file's content. `file_name` appears in messages (normally
    /// the configured path). Warnings (a pattern without `%c`/`%u`) come back
    /// as log lines; any syntax error is fatal.
    pub fn parse(bytes: &[u8], file_name: &str) -> Result<(AclFile, Vec<LogLine>), AclFileError> {
        let mut acl = AclFile::default();
        let mut logs = Vec::new();
        let mut user: Option<String> = None;
        for (idx, raw) in fgets_lines(bytes).enumerate() {
            let lineno = idx + 1;
            let err = |message: String| AclFileError::Syntax {
                file: file_name.to_string(),
                line: lineno,
                message,
            };
            let mut line = c_str(raw);
            while let [rest @ .., last] = line {
                if is_c_space(*last) {
                    line = rest;
                } else {
                    break;
                }
            }
            if line.first() == Some(&b'#') {
                continue;
            }
            let line = String::from_utf8_lossy(line);
            let Some((word, rest)) = strtok_space(&line) else {
                continue;
            };
            match word {
                "topic" | "pattern" => {
                    let Some((access_s, rest)) = strtok_space(rest) else {
                        return Err(err(format!(
                            "Error: Empty topic in acl_file \"{file_name}\"."
                        )));
                    };
                    let (access_s, filter) = if rest.is_empty() {
                        (None, access_s)
                    } else {
                        (Some(access_s), trim_str(rest))
                    };
                    let access = match access_s {
                        None | Some("readwrite") => READ | WRITE,
                        Some("read") => READ,
                        Some("write") => WRITE,
                        Some("deny") => DENY,
                        Some(other) => {
                            return Err(err(format!(
                                "Error: Invalid topic access type \"{other}\" in acl_file \"{file_name}\"."
                            )));
                        }
                    };
                    if !valid_acl_filter(filter) {
                        return Err(err(format!(
                            "Error: Invalid ACL topic \"{filter}\" in acl_file \"{file_name}\"."
                        )));
                    }
                    if word == "topic" {
                        let rule = Rule {
                            filter: filter.into(),
                            access,
                        };
                        match &user {
                            None => acl
                                .anonymous
                                .get_or_insert_with(RuleList::default)
                                .push(rule),
                            Some(u) => acl.users.entry(u.clone()).or_default().push(rule),
                        }
                    } else {
                        let has_c = filter.contains("%c");
                        let has_u = filter.contains("%u");
                        if !has_c && !has_u {
                            logs.push(LogLine::at(
                                Level::Warning,
                                &format!(
                                    "Warning: ACL pattern '{filter}' does not contain '%c' or '%u'."
                                ),
                                file_name,
                                lineno,
                            ));
                        }
                        let rule = PatternRule {
                            filter: filter.into(),
                            access,
                            has_c,
                            has_u,
                        };
                        if access == DENY {
                            acl.patterns.insert(acl.pattern_denies, rule);
                            acl.pattern_denies += 1;
                        } else {
                            acl.patterns.push(rule);
                        }
                    }
                }
                "user" => {
                    if rest.is_empty() {
                        return Err(err(format!(
                            "Error: Missing username in acl_file \"{file_name}\"."
                        )));
                    }
                    user = Some(trim_str(rest).to_string());
                }
                _ => {
                    // mosquitto prints its buffer, cut by strtok after the first word.
                    let end = word.as_ptr() as usize - line.as_ptr() as usize + word.len();
                    return Err(err(format!(
                        "Error: Invalid line in acl_file \"{file_name}\": {}.",
                        &line[..end]
                    )));
                }
            }
        }
        Ok((acl, logs))
    }

    /// Read and parse an ACL file. An unreadable file gives
    /// `Error: Unable to open acl_file "<p>".` with `exit_code()` 13.
    pub fn load(path: impl AsRef<Path>) -> Result<(AclFile, Vec<LogLine>), AclFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| AclFileError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        AclFile::parse(&bytes, &path.display().to_string())
    }

    /// May this client read (receive) or write (publish) `topic`?
    /// `topic` is the message topic, after any `mount_point`. The rules of
    /// [`publish_allowed_always`] are separate and apply too.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        self.decide(client_id, username, topic, access).is_allowed()
    }

    /// SUBSCRIBE/UNSUBSCRIBE are never refused by the ACL file (mosquitto 2.0
    /// and 2.1): always true. Deliveries are checked with `Access::Read`.
    pub fn check_subscribe(
        &self,
        _client_id: &str,
        _username: Option<&str>,
        _filter: &str,
    ) -> bool {
        true
    }

    /// [`check`](Self::check) with the reason, for logging.
    pub fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> AclDecision {
        let list = match username {
            Some(u) => self.users.get(u),
            None => self.anonymous.as_ref(),
        };
        if list.is_none() && self.patterns.is_empty() {
            return AclDecision::Denied;
        }
        let want = access.bit();
        if let Some(list) = list {
            for rule in &list.rules {
                if topic_matches(&rule.filter, topic) {
                    if rule.access == DENY {
                        return AclDecision::Denied;
                    }
                    if rule.access & want != 0 {
                        return AclDecision::Allowed;
                    }
                }
            }
        }
        if self.patterns.is_empty() {
            return AclDecision::Denied;
        }
        if username.is_some_and(|u| u.contains(['+', '#'])) {
            return AclDecision::DangerousUsername;
        }
        if client_id.contains(['+', '#']) {
            return AclDecision::DangerousClientId;
        }
        let mut buf = String::new();
        for p in &self.patterns {
            if p.has_u && username.is_none() {
                continue;
            }
            let filter: &str = if p.has_c || p.has_u {
                substitute(&p.filter, client_id, username, &mut buf);
                &buf
            } else {
                &p.filter
            };
            if topic_matches(filter, topic) {
                if p.access == DENY {
                    return AclDecision::Denied;
                }
                if p.access & want != 0 {
                    return AclDecision::Allowed;
                }
            }
        }
        AclDecision::Denied
    }
}

/// Replace `%c` by the client id and `%u` by the username (when there is
/// one) anywhere in `pattern`, scanning left to right as mosquitto does.
fn substitute(pattern: &str, client_id: &str, username: Option<&str>, out: &mut String) {
    out.clear();
    let b = pattern.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i + 1 < b.len() {
        if b[i] == b'%' {
            let repl = match b[i + 1] {
                b'c' => Some(client_id),
                b'u' => username,
                _ => None,
            };
            if let Some(r) = repl {
                out.push_str(&pattern[start..i]);
                out.push_str(r);
                i += 2;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&pattern[start..]);
}

#[cfg(test)]
mod tests {
    use super::Access::{Read, Write};
    use super::*;

    fn parse(text: &str) -> AclFile {
        AclFile::parse(text.as_bytes(), "acl").unwrap().0
    }

    fn parse_err(text: &str) -> AclFileError {
        AclFile::parse(text.as_bytes(), "acl").unwrap_err()
    }

    fn sample() -> AclFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/acl/sample.acl");
        let (acl, logs) = AclFile::load(path).unwrap();
        assert!(logs.is_empty(), "{logs:?}");
        acl
    }

    #[test]
    fn sample_acl_outcomes_from_readme() {
        let acl = sample();
        let published = [
            "home/living",
            "home/secret",
            "public/news",
            "anon/rw",
            "clients/a2/x",
            "users/nouser/inbox",
            "infix/id-xyz",
            "$SYS/foo",
        ];
        // writer may publish all of them as far as the ACL file goes...
        for t in published {
            assert!(acl.check("w", Some("writer"), t, Write), "{t}");
        }
        // ...but the broker's own $SYS rule refuses the last one.
        assert!(!publish_allowed_always("$SYS/foo"));
        // what each subscriber received: published topics matching its
        // subscriptions (all granted) that the ACL lets it read
        let delivered = |id: &str, user: Option<&str>, subs: &[&str]| -> Vec<&str> {
            published[..7]
                .iter()
                .copied()
                .filter(|t| subs.iter().any(|s| topic_matches(s, t)))
                .filter(|t| acl.check(id, user, t, Read))
                .collect()
        };
        assert_eq!(
            delivered("a1", Some("alice"), &["home/#", "$SYS/#", "public/#"]),
            vec!["home/living"]
        );
        assert!(acl.check("a1", Some("alice"), "$SYS/broker/version", Read));
        assert!(!acl.check("a1", Some("alice"), "$SYS/broker/uptime", Read));
        assert_eq!(
            delivered(
                "a2",
                None,
                &["public/#", "home/#", "anon/rw", "clients/a2/x", "infix/#"]
            ),
            vec!["public/news", "anon/rw", "clients/a2/x"]
        );
        assert_eq!(delivered("xyz", None, &["infix/#"]), vec!["infix/id-xyz"]);
        assert_eq!(
            delivered(
                "n1",
                Some("nouser"),
                &["users/nouser/inbox", "public/#", "#"]
            ),
            vec!["users/nouser/inbox"]
        );
        // named users do not get the anonymous block
        assert!(!acl.check("a1", Some("alice"), "public/news", Read));
        // anonymous publishers: public/x refused, anon/rw allowed
        assert!(!acl.check("p1", None, "public/x", Write));
        assert!(acl.check("p1", None, "anon/rw", Write));
        // $SYS is not granted by '#'
        assert!(!acl.check("w", Some("writer"), "$SYS/bar", Write));
        // subscribe is never refused
        assert!(acl.check_subscribe("a1", Some("alice"), "#"));
    }

    #[test]
    fn rule_types_and_access() {
        let acl = parse(
            "user u\n\
             topic read r/#\n\
             topic write w/#\n\
             topic readwrite rw/#\n\
             topic both/#\n\
             topic deny rw/no\n\
             topic read\n",
        );
        let c = |t, a| acl.check("id", Some("u"), t, a);
        assert!(c("r/1", Read) && !c("r/1", Write));
        assert!(!c("w/1", Read) && c("w/1", Write));
        assert!(c("rw", Read) && c("rw/x", Write));
        assert!(c("both/1", Read) && c("both/1", Write));
        assert!(!c("rw/no", Read) && !c("rw/no", Write));
        // `topic read` alone is the filter "read" with readwrite access
        assert!(c("read", Read) && c("read", Write));
        assert!(!c("other", Read));
        // other users and anonymous have nothing
        assert!(!acl.check("id", Some("v"), "r/1", Read));
        assert!(!acl.check("id", None, "r/1", Read));
    }

    #[test]
    fn deny_wins_regardless_of_order_and_first_match_decides() {
        let acl = parse("topic readwrite a/#\ntopic deny a/b\ntopic read x/#\ntopic write x/y\n");
        assert!(!acl.check("c", None, "a/b", Read));
        assert!(acl.check("c", None, "a/c", Read));
        // read rule matches first for a write: skipped, then write rule grants
        assert!(acl.check("c", None, "x/y", Write));
        assert!(!acl.check("c", None, "x/z", Write));
    }

    #[test]
    fn user_blocks_merge_and_names_are_trimmed() {
        let acl = parse("user  some one  \ntopic a\nuser b\ntopic bb\nuser some one\ntopic c\n");
        assert!(acl.check("x", Some("some one"), "a", Read));
        assert!(acl.check("x", Some("some one"), "c", Read));
        assert!(!acl.check("x", Some("some one"), "bb", Read));
        // no anonymous block at all
        assert!(!acl.check("x", None, "a", Read));
    }

    #[test]
    fn patterns() {
        let (acl, logs) = AclFile::parse(
            b"pattern write dev/%c/out\npattern read in/%u/#\npattern deny dev/%c/out/secret\n\
              pattern infix/id-%c-%u\npattern static/#\n",
            "acl",
        )
        .unwrap();
        assert_eq!(
            logs,
            vec![LogLine {
                level: Level::Warning,
                text: "Warning: ACL pattern 'static/#' does not contain '%c' or '%u'. (acl:5)"
                    .into()
            }]
        );
        assert!(acl.check("d1", None, "dev/d1/out", Write));
        assert!(!acl.check("d1", None, "dev/d1/out", Read));
        assert!(!acl.check("d1", None, "dev/d2/out", Write));
        assert!(!acl.check("d1", None, "dev/d1/out/secret", Write));
        // %u patterns skipped without a username
        assert!(!acl.check("d1", None, "in/d1/x", Read));
        assert!(acl.check("d1", Some("bob"), "in/bob/x", Read));
        assert!(acl.check("d1", Some("bob"), "infix/id-d1-bob", Write));
        assert!(!acl.check("d1", None, "infix/id-d1-%u", Write));
        assert!(acl.check("anyone", None, "static/x", Read));
        // a client id with '/' adds levels, as in mosquitto
        assert!(acl.check("a/b", None, "dev/a/b/out", Write));
        // dangerous names refused before patterns
        assert_eq!(
            acl.decide("x", Some("b+"), "static/x", Read),
            AclDecision::DangerousUsername
        );
        assert_eq!(
            acl.decide("x#", None, "static/x", Read),
            AclDecision::DangerousClientId
        );
        assert_eq!(
            AclDecision::DangerousClientId.log_text("x#", None).unwrap(),
            "ACL denying access to client with dangerous client id \"x#\""
        );
    }

    #[test]
    fn dangerous_check_only_after_user_list_and_with_patterns() {
        let acl = parse("user a+b\ntopic t\n");
        assert!(acl.check("c#", Some("a+b"), "t", Read));
        let acl = parse("user a+b\ntopic t\npattern p/%c\n");
        assert!(acl.check("c#", Some("a+b"), "t", Read));
        assert!(!acl.check("c#", Some("a+b"), "u", Read));
    }

    #[test]
    fn substitution() {
        let mut s = String::new();
        substitute("a/%c/%u/%%c/%x/%", "id", Some("us"), &mut s);
        assert_eq!(s, "a/id/us/%id/%x/%");
        substitute("%u", "id", None, &mut s);
        assert_eq!(s, "%u");
    }

    #[test]
    fn dollar_topics() {
        let acl = parse("topic #\ntopic +/x\ntopic $SYS/broker/#\n");
        assert!(acl.check("c", None, "a/b", Read));
        assert!(!acl.check("c", None, "$SYS/x", Read));
        assert!(!acl.check("c", None, "$foo/x", Read));
        assert!(acl.check("c", None, "$SYS/broker", Read));
        assert!(acl.check("c", None, "$SYS/broker/load", Read));
        assert!(publish_allowed_always("a/b"));
        assert!(publish_allowed_always("$other/x"));
        assert!(!publish_allowed_always("$SYS/broker/version"));
        assert!(!publish_allowed_always("$SYS"));
        assert!(publish_allowed_always("$SYS/broker/connection/br1/state"));
        assert!(!publish_allowed_always(
            "$SYS/broker/connection/br1/state/x"
        ));
        assert!(!publish_allowed_always("$share/g/t"));
        assert!(!delivery_allowed_always("$share/g/t"));
        assert!(delivery_allowed_always("$SYS/broker/version"));
    }

    #[test]
    fn matching() {
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/+", "a/"));
        assert!(!topic_matches("a/+", "a"));
        assert!(topic_matches("+/+", "/x"));
        assert!(!topic_matches("#", "$SYS"));
        assert!(!topic_matches("$SYS/#", "SYS/x"));
        assert!(topic_matches("$SYS/#", "$SYS"));
        assert!(!topic_matches("a", "a/b"));
        assert!(valid_acl_filter("a/+/#") && valid_acl_filter("+") && valid_acl_filter("a b/c"));
        assert!(!valid_acl_filter("a/+b") && !valid_acl_filter("a/#/b") && !valid_acl_filter("a#"));
        assert!(valid_acl_filter(&format!("{}b", "a/".repeat(200))));
        assert!(!valid_acl_filter(&format!("{}b", "a/".repeat(201))));
    }

    #[test]
    fn comments_blank_lines_spaces_crlf() {
        let acl = parse("# c\n\n   \n   topic   read    a b/c  \r\n\t\r\nuser u\r\ntopic x\r\n");
        assert!(acl.check("c", None, "a b/c", Read));
        assert!(acl.check("c", Some("u"), "x", Write));
    }

    #[test]
    fn errors_with_line_numbers() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "topic a\n\ttopic b\n",
                2,
                "Error: Invalid line in acl_file \"acl\": \ttopic.",
            ),
            (
                "topic foo bar/#\n",
                1,
                "Error: Invalid topic access type \"foo\" in acl_file \"acl\".",
            ),
            (
                "#x\ntopic read a/+b\n",
                2,
                "Error: Invalid ACL topic \"a/+b\" in acl_file \"acl\".",
            ),
            ("topic\n", 1, "Error: Empty topic in acl_file \"acl\"."),
            ("pattern   \n", 1, "Error: Empty topic in acl_file \"acl\"."),
            ("user\n", 1, "Error: Missing username in acl_file \"acl\"."),
            (
                "user  \t \n",
                1,
                "Error: Missing username in acl_file \"acl\".",
            ),
            (
                "\n\n  # indented comment\n",
                3,
                "Error: Invalid line in acl_file \"acl\":   #.",
            ),
            (
                "topic a/#/b\n",
                1,
                "Error: Invalid ACL topic \"a/#/b\" in acl_file \"acl\".",
            ),
            (
                "Topic a\n",
                1,
                "Error: Invalid line in acl_file \"acl\": Topic.",
            ),
        ];
        for (text, line, msg) in cases {
            let e = parse_err(text);
            assert_eq!(e.line(), Some(*line), "{text:?}");
            assert_eq!(e.message(), *msg, "{text:?}");
            assert_eq!(e.to_string(), format!("{msg} (acl:{line})"));
            assert_eq!(e.exit_code(), 3);
        }
        let e = AclFile::load("/nonexistent/culex.acl").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error: Unable to open acl_file \"/nonexistent/culex.acl\"."
        );
        assert_eq!(e.exit_code(), 13);
    }

    #[test]
    fn empty_file_denies_everything() {
        let acl = parse("# nothing\n");
        assert!(!acl.check("c", None, "a", Read));
        assert!(!acl.check("c", Some("u"), "a", Write));
    }

    #[test]
    fn garbage_never_panics() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let _ = AclFile::parse(&garbage, "g");
        let acl = parse("topic \u{e9}/+\npattern %\npattern %c%u%\n");
        assert!(acl.check("\u{e9}", None, "\u{e9}/x", Read));
        assert!(!acl.check("\u{e9}", Some("\u{fc}"), "\u{e9}/x", Read));
        assert!(!acl.check("", Some(""), "", Read));
    }
}
