//! Retained messages in a trie keyed by topic level, so a SUBSCRIBE with a
//! filter visits only the branches the filter can match instead of every
//! retained topic.

use super::child_map::ChildMap;

use crate::codec::SharedMessage;

#[derive(Debug, Default)]
struct Node {
    children: ChildMap<Node>,
    message: Option<SharedMessage>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

#[derive(Debug, Default)]
pub struct RetainedStore {
    root: Node,
    count: usize,
    bytes: usize,
}

impl RetainedStore {
    pub fn new() -> RetainedStore {
        RetainedStore::default()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Payload bytes held, for `$SYS/broker/store/messages/bytes`.
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }

    /// Stores `message` under its topic, or clears the topic when the payload
    /// is empty [MQTT-3.3.1-10].
    pub fn set(&mut self, message: SharedMessage) {
        if message.payload.is_empty() {
            self.remove(message.topic.as_str());
            return;
        }
        // A second handle to walk the topic while `message` moves in.
        let handle = message.clone();
        let mut node = &mut self.root;
        for level in handle.topic.as_str().split('/') {
            node = node.children.get_or_default(level);
        }
        self.bytes += message.payload.len();
        match node.message.replace(message) {
            Some(old) => self.bytes -= old.payload.len(),
            None => self.count += 1,
        }
    }

    pub fn remove(&mut self, topic: &str) -> Option<SharedMessage> {
        let levels: Vec<&str> = topic.split('/').collect();
        let removed = remove_rec(&mut self.root, &levels);
        if let Some(m) = &removed {
            self.count -= 1;
            self.bytes -= m.payload.len();
        }
        removed
    }

    pub fn get(&self, topic: &str) -> Option<&SharedMessage> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    /// Every retained message whose topic matches `filter`, appended to `out`.
    pub fn matching(&self, filter: &str, out: &mut Vec<SharedMessage>) {
        let levels: Vec<&str> = filter.split('/').collect();
        match_rec(&self.root, &levels, true, out);
    }

    /// All retained messages (for persistence and `$SYS` counts).
    pub fn iter(&self) -> impl Iterator<Item = &SharedMessage> {
        let mut stack = vec![&self.root];
        std::iter::from_fn(move || {
            while let Some(node) = stack.pop() {
                stack.extend(node.children.values());
                if let Some(m) = &node.message {
                    return Some(m);
                }
            }
            None
        })
    }
}

fn remove_rec(node: &mut Node, levels: &[&str]) -> Option<SharedMessage> {
    let Some((first, rest)) = levels.split_first() else {
        return node.message.take();
    };
    let child = node.children.get_mut(first)?;
    let removed = remove_rec(child, rest);
    if child.is_empty() {
        node.children.remove(first);
    }
    removed
}

fn collect_all(node: &Node, out: &mut Vec<SharedMessage>) {
    if let Some(m) = &node.message {
        out.push(m.clone());
    }
    for child in node.children.values() {
        collect_all(child, out);
    }
}

fn match_rec(node: &Node, levels: &[&str], first: bool, out: &mut Vec<SharedMessage>) {
    let Some((level, rest)) = levels.split_first() else {
        if let Some(m) = &node.message {
            out.push(m.clone());
        }
        return;
    };
    match *level {
        "#" => {
            // `a/#` includes `a` itself.
            if let Some(m) = &node.message
                && !first
            {
                out.push(m.clone());
            }
            for (name, child) in node.children.iter() {
                if first && name.starts_with('$') {
                    continue;
                }
                collect_all(child, out);
            }
        }
        "+" => {
            for (name, child) in node.children.iter() {
                if first && name.starts_with('$') {
                    continue;
                }
                match_rec(child, rest, false, out);
            }
        }
        exact => {
            if let Some(child) = node.children.get(exact) {
                match_rec(child, rest, false, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::topic::filter_matches;
    use crate::codec::{Message, Qos, TopicName};
    use std::rc::Rc;

    fn msg(topic: &str, payload: &str) -> SharedMessage {
        Rc::new(Message::new(
            TopicName::new(topic).unwrap(),
            payload.as_bytes().to_vec(),
            Qos::AtMostOnce,
            true,
            Default::default(),
            None,
        ))
    }

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        store.matching(filter, &mut out);
        let mut v: Vec<_> = out.iter().map(|m| m.topic.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn set_replace_clear() {
        let mut s = RetainedStore::new();
        s.set(msg("a/b", "1"));
        s.set(msg("a/b", "22"));
        assert_eq!(s.len(), 1);
        assert_eq!(s.payload_bytes(), 2);
        assert_eq!(s.get("a/b").unwrap().payload, b"22");
        s.set(msg("a/b", ""));
        assert_eq!(s.len(), 0);
        assert!(s.root.is_empty());
    }

    #[test]
    fn filters_agree_with_the_matcher() {
        let mut s = RetainedStore::new();
        let all = ["a", "a/b", "a/b/c", "/x", "x/", "$SYS/v", "b/b", "a/c"];
        for t in all {
            s.set(msg(t, "p"));
        }
        for filter in [
            "#", "a/#", "+", "+/b", "a/+", "+/+", "/+", "$SYS/#", "+/#", "a/b/c/#",
        ] {
            let mut want: Vec<String> = all
                .iter()
                .filter(|t| filter_matches(filter, t))
                .map(|t| t.to_string())
                .collect();
            want.sort();
            assert_eq!(topics(&s, filter), want, "filter {filter}");
        }
        assert_eq!(s.iter().count(), all.len());
    }
}
