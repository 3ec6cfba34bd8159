//! The subscription trie: "who gets a message on this topic" without scanning
//! every subscription. One node per topic level; `+` and `#` are ordinary
//! children looked up by name, so a match costs at most three hash lookups
//! per level. Shared subscriptions (`$share/GROUP/FILTER`) hang off the node
//! of their inner filter as groups that hand out messages round robin.

use std::collections::HashMap;

/// Topic levels are short strings hashed on every message: foldhash is
/// several times faster than SipHash here and still seeded per process.
type LevelMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

use crate::codec::{SubscriptionOptions, TopicFilter};

pub type SessionKey = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriber {
    pub session: SessionKey,
    pub options: SubscriptionOptions,
    /// 5.0 subscription identifier.
    pub id: Option<u32>,
}

#[derive(Debug, Default)]
struct SharedGroup {
    name: Box<str>,
    members: Vec<Subscriber>,
    next: usize,
}

#[derive(Debug, Default)]
struct Node {
    children: LevelMap<Node>,
    subscribers: Vec<Subscriber>,
    shared: Vec<SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.shared.is_empty()
    }
}

/// A match found for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub subscriber: Subscriber,
    pub shared: bool,
}

#[derive(Debug, Default)]
pub struct SubscriptionTree {
    root: Node,
    count: usize,
    shared_count: usize,
}

impl SubscriptionTree {
    pub fn new() -> SubscriptionTree {
        SubscriptionTree::default()
    }

    /// Number of (non-shared) subscriptions, for `$SYS`.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn shared_count(&self) -> usize {
        self.shared_count
    }

    /// Adds or replaces `session`'s subscription to `filter`. Returns `true`
    /// if it already existed (5.0 retain handling 1 needs to know).
    pub fn subscribe(&mut self, filter: &TopicFilter, sub: Subscriber) -> bool {
        let shared = filter.shared();
        let mut node = &mut self.root;
        for level in filter.match_part().split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let list = match shared {
            None => &mut node.subscribers,
            Some((group, _)) => {
                let idx = match node.shared.iter().position(|g| &*g.name == group) {
                    Some(i) => i,
                    None => {
                        node.shared.push(SharedGroup {
                            name: group.into(),
                            ..SharedGroup::default()
                        });
                        node.shared.len() - 1
                    }
                };
                &mut node.shared[idx].members
            }
        };
        if let Some(existing) = list.iter_mut().find(|s| s.session == sub.session) {
            *existing = sub;
            true
        } else {
            list.push(sub);
            if shared.is_some() {
                self.shared_count += 1;
            } else {
                self.count += 1;
            }
            false
        }
    }

    /// Removes `session`'s subscription to `filter`; `true` if there was one.
    pub fn unsubscribe(&mut self, filter: &TopicFilter, session: SessionKey) -> bool {
        let levels: Vec<&str> = filter.match_part().split('/').collect();
        let removed = remove_rec(&mut self.root, &levels, filter.shared(), session);
        if removed {
            if filter.shared().is_some() {
                self.shared_count -= 1;
            } else {
                self.count -= 1;
            }
        }
        removed
    }

    /// Appends every subscription matching `topic` to `out`. Shared groups
    /// contribute one member each, chosen round robin. Returns how many
    /// trie nodes contributed: with one, no session can appear twice (a
    /// session has one subscription per filter), so callers skip deduping.
    pub fn matches(&mut self, topic: &str, out: &mut Vec<Match>) -> usize {
        let dollar = topic.starts_with('$');
        let mut sources = 0;
        walk(
            &mut self.root,
            topic.split('/'),
            true,
            dollar,
            out,
            &mut sources,
        );
        sources
    }
}

fn remove_rec(
    node: &mut Node,
    levels: &[&str],
    shared: Option<(&str, &str)>,
    session: SessionKey,
) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match shared {
            None => remove_from(&mut node.subscribers, session),
            Some((group, _)) => {
                let Some(gi) = node.shared.iter().position(|g| &*g.name == group) else {
                    return false;
                };
                let removed = remove_from(&mut node.shared[gi].members, session);
                if node.shared[gi].members.is_empty() {
                    node.shared.swap_remove(gi);
                }
                removed
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_rec(child, rest, shared, session);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn remove_from(list: &mut Vec<Subscriber>, session: SessionKey) -> bool {
    match list.iter().position(|s| s.session == session) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

fn collect(node: &mut Node, out: &mut Vec<Match>, sources: &mut usize) {
    if !node.subscribers.is_empty() || !node.shared.is_empty() {
        *sources += 1;
    }
    out.extend(node.subscribers.iter().map(|&subscriber| Match {
        subscriber,
        shared: false,
    }));
    for group in &mut node.shared {
        if group.members.is_empty() {
            continue;
        }
        let i = group.next % group.members.len();
        group.next = (i + 1) % group.members.len();
        out.push(Match {
            subscriber: group.members[i],
            shared: true,
        });
    }
}

fn walk<'t>(
    node: &mut Node,
    mut levels: std::str::Split<'t, char>,
    first: bool,
    dollar: bool,
    out: &mut Vec<Match>,
    sources: &mut usize,
) {
    // A leading wildcard never matches a `$` topic [MQTT-4.7.2-1].
    let wild_ok = !(first && dollar);
    if wild_ok && let Some(hash) = node.children.get_mut("#") {
        // `a/#` matches `a` as well as everything below it [MQTT-4.7.1-2].
        collect(hash, out, sources);
    }
    let Some(level) = levels.next() else {
        collect(node, out, sources);
        return;
    };
    if wild_ok && let Some(plus) = node.children.get_mut("+") {
        walk(plus, levels.clone(), false, dollar, out, sources);
    }
    if level != "+"
        && level != "#"
        && let Some(child) = node.children.get_mut(level)
    {
        walk(child, levels, false, dollar, out, sources);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Qos;

    fn sub(session: SessionKey) -> Subscriber {
        Subscriber {
            session,
            options: SubscriptionOptions::with_qos(Qos::AtLeastOnce),
            id: None,
        }
    }

    fn f(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    fn sessions(tree: &mut SubscriptionTree, topic: &str) -> Vec<SessionKey> {
        let mut out = Vec::new();
        tree.matches(topic, &mut out);
        let mut v: Vec<_> = out.iter().map(|m| m.subscriber.session).collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_match_as_the_standard_says() {
        let mut t = SubscriptionTree::new();
        t.subscribe(&f("a/b"), sub(1));
        t.subscribe(&f("a/+"), sub(2));
        t.subscribe(&f("a/#"), sub(3));
        t.subscribe(&f("#"), sub(4));
        t.subscribe(&f("+/+/c"), sub(5));
        t.subscribe(&f("$SYS/#"), sub(6));
        assert_eq!(sessions(&mut t, "a/b"), vec![1, 2, 3, 4]);
        assert_eq!(sessions(&mut t, "a"), vec![3, 4]);
        assert_eq!(sessions(&mut t, "a/b/c"), vec![3, 4, 5]);
        assert_eq!(sessions(&mut t, "$SYS/broker/uptime"), vec![6]);
        assert_eq!(sessions(&mut t, "x"), vec![4]);
        assert_eq!(t.count(), 6);
    }

    #[test]
    fn resubscribe_replaces_and_unsubscribe_prunes() {
        let mut t = SubscriptionTree::new();
        assert!(!t.subscribe(&f("a/b"), sub(1)));
        assert!(t.subscribe(&f("a/b"), sub(1)));
        assert_eq!(t.count(), 1);
        assert!(t.unsubscribe(&f("a/b"), 1));
        assert!(!t.unsubscribe(&f("a/b"), 1));
        assert!(t.root.is_empty());
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn shared_groups_round_robin() {
        let mut t = SubscriptionTree::new();
        t.subscribe(&f("$share/g/a/+"), sub(1));
        t.subscribe(&f("$share/g/a/+"), sub(2));
        t.subscribe(&f("$share/h/a/+"), sub(3));
        assert_eq!(sessions(&mut t, "a/x"), vec![1, 3]);
        assert_eq!(sessions(&mut t, "a/x"), vec![2, 3]);
        assert_eq!(sessions(&mut t, "a/x"), vec![1, 3]);
        assert_eq!(t.shared_count(), 3);
        assert!(t.unsubscribe(&f("$share/g/a/+"), 1));
        assert_eq!(sessions(&mut t, "a/x"), vec![2, 3]);
    }

    #[test]
    fn empty_levels_are_levels() {
        let mut t = SubscriptionTree::new();
        t.subscribe(&f("/+"), sub(1));
        t.subscribe(&f("+/"), sub(2));
        assert_eq!(sessions(&mut t, "/x"), vec![1]);
        assert_eq!(sessions(&mut t, "x/"), vec![2]);
        assert_eq!(sessions(&mut t, "/"), vec![1, 2]);
    }
}
