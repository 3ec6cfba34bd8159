//! Topic names and topic filters, validated once where they enter the broker.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    Empty,
    TooLong,
    /// A `+` or `#` in a topic name [MQTT-3.3.2-2].
    WildcardInName,
    /// `#` not last, or a wildcard sharing a level with other characters [MQTT-4.7.1-1].
    BadWildcard,
    /// U+0000 is never allowed [MQTT-4.7.3-2].
    NulCharacter,
    /// `$share/` without a valid group name or filter.
    BadSharedSubscription,
    /// More than `TOPIC_HIERARCHY_LIMIT` separators.
    TooDeep,
}

/// mosquitto refuses topics and filters with more than 200 `/`
/// (`TOPIC_HIERARCHY_LIMIT`), which bounds the work a single topic costs.
pub const TOPIC_HIERARCHY_LIMIT: usize = 200;

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "empty topic",
            TopicError::TooLong => "topic longer than 65535 bytes",
            TopicError::WildcardInName => "wildcard in topic name",
            TopicError::BadWildcard => "misplaced wildcard in topic filter",
            TopicError::NulCharacter => "NUL character in topic",
            TopicError::BadSharedSubscription => "invalid shared subscription",
            TopicError::TooDeep => "topic with more than 200 levels",
        })
    }
}

impl std::error::Error for TopicError {}

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > 65535 {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NulCharacter);
    }
    if s.bytes().filter(|&b| b == b'/').count() > TOPIC_HIERARCHY_LIMIT {
        return Err(TopicError::TooDeep);
    }
    Ok(())
}

/// A topic a message is published to: non-empty, no wildcards, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    pub fn new(s: impl Into<String>) -> Result<TopicName, TopicError> {
        let s = s.into();
        check_common(&s)?;
        if s.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInName);
        }
        Ok(TopicName(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
    /// `$SYS/...` and other topics starting with `$` are not matched by a
    /// leading wildcard [MQTT-4.7.2-1].
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A subscription filter: `+` and `#` only as whole levels, `#` last.
/// A shared subscription `$share/GROUP/FILTER` keeps its full text here;
/// `shared()` splits it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

fn check_filter_levels(s: &str) -> Result<(), TopicError> {
    let mut levels = s.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::BadWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::BadWildcard);
        }
    }
    Ok(())
}

impl TopicFilter {
    pub fn new(s: impl Into<String>) -> Result<TopicFilter, TopicError> {
        let s = s.into();
        check_common(&s)?;
        if let Some(rest) = s.strip_prefix("$share/") {
            // [MQTT-4.8.2-1]: a group name without wildcards or '/', then a filter.
            let (group, filter) = rest
                .split_once('/')
                .ok_or(TopicError::BadSharedSubscription)?;
            if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                return Err(TopicError::BadSharedSubscription);
            }
            check_filter_levels(filter)?;
        } else {
            check_filter_levels(&s)?;
        }
        Ok(TopicFilter(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(group, filter)` for `$share/GROUP/FILTER`, else `None`.
    pub fn shared(&self) -> Option<(&str, &str)> {
        self.0.strip_prefix("$share/")?.split_once('/')
    }

    /// The filter that topics are matched against (without any `$share/GROUP/`).
    pub fn match_part(&self) -> &str {
        self.shared().map(|(_, f)| f).unwrap_or(&self.0)
    }

    pub fn has_wildcards(&self) -> bool {
        self.match_part().contains(['+', '#'])
    }

    /// Does this filter match `topic`? Shared subscriptions match by their
    /// inner filter.
    pub fn matches(&self, topic: &str) -> bool {
        filter_matches(self.match_part(), topic)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// MQTT filter matching on already-validated strings. `a/#` matches `a`;
/// a topic starting with `$` is not matched by a filter starting with a
/// wildcard [MQTT-4.7.2-1].
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_wildcards_and_empty() {
        assert!(TopicName::new("a/b").is_ok());
        assert!(TopicName::new("/").is_ok());
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::NulCharacter));
    }

    #[test]
    fn filters_validate_wildcard_placement() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "a/+/b",
            "/",
            "$SYS/#",
            "$share/g/a/#",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a#",
            "a/#/b",
            "a/b+",
            "+a",
            "",
            "$share/g",
            "$share//a",
            "$share/g+/a",
        ] {
            assert!(TopicFilter::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_follows_the_standard() {
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("a/+", "a/b"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(filter_matches("a/+", "a/"));
        assert!(filter_matches("+/+", "/a"));
        assert!(filter_matches("#", "a/b"));
        assert!(!filter_matches("#", "$SYS/broker"));
        assert!(!filter_matches("+/broker", "$SYS/broker"));
        assert!(filter_matches("$SYS/#", "$SYS/broker/version"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(!filter_matches("a/b/c", "a/b"));
    }

    #[test]
    fn shared_filters_split() {
        let f = TopicFilter::new("$share/grp/a/+").unwrap();
        assert_eq!(f.shared(), Some(("grp", "a/+")));
        assert!(f.matches("a/b"));
        assert!(f.has_wildcards());
    }
}
