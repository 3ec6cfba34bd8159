//! The children of a topic-trie node, keyed by topic level. Most nodes have
//! one or a few children (`zigbee2mqtt/<device>/state`), where a hash map's
//! table costs far more than the entries; a node with many children (the
//! `<device>` level) needs hashing. So: a small vector that becomes a hash
//! map past `SMALL` entries.

use std::collections::HashMap;

/// Children kept in a vector up to this many; linear search is faster than
/// hashing at this size and far smaller.
const SMALL: usize = 8;

type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

#[derive(Debug)]
pub enum ChildMap<V> {
    Few(Vec<(Box<str>, V)>),
    Many(Map<V>),
}

impl<V> Default for ChildMap<V> {
    fn default() -> Self {
        ChildMap::Few(Vec::new())
    }
}

impl<V: Default> ChildMap<V> {
    /// The child for `level`, created empty if missing.
    pub fn get_or_default(&mut self, level: &str) -> &mut V {
        if let ChildMap::Few(v) = self
            && v.len() >= SMALL
            && !v.iter().any(|(k, _)| &**k == level)
        {
            let map: Map<V> = std::mem::take(v).into_iter().collect();
            *self = ChildMap::Many(map);
        }
        match self {
            ChildMap::Few(v) => {
                let i = match v.iter().position(|(k, _)| &**k == level) {
                    Some(i) => i,
                    None => {
                        v.push((level.into(), V::default()));
                        v.len() - 1
                    }
                };
                &mut v[i].1
            }
            ChildMap::Many(m) => m.entry(level.into()).or_default(),
        }
    }
}

impl<V> ChildMap<V> {
    pub fn get(&self, level: &str) -> Option<&V> {
        match self {
            ChildMap::Few(v) => v.iter().find(|(k, _)| &**k == level).map(|(_, c)| c),
            ChildMap::Many(m) => m.get(level),
        }
    }

    pub fn get_mut(&mut self, level: &str) -> Option<&mut V> {
        match self {
            ChildMap::Few(v) => v.iter_mut().find(|(k, _)| &**k == level).map(|(_, c)| c),
            ChildMap::Many(m) => m.get_mut(level),
        }
    }

    pub fn remove(&mut self, level: &str) -> Option<V> {
        match self {
            ChildMap::Few(v) => {
                let i = v.iter().position(|(k, _)| &**k == level)?;
                Some(v.swap_remove(i).1)
            }
            ChildMap::Many(m) => m.remove(level),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            ChildMap::Few(v) => v.is_empty(),
            ChildMap::Many(m) => m.is_empty(),
        }
    }

    /// Every (level, child) pair, in no particular order.
    pub fn iter(&self) -> Iter<'_, V> {
        match self {
            ChildMap::Few(v) => Iter::Few(v.iter()),
            ChildMap::Many(m) => Iter::Many(m.iter()),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, c)| c)
    }
}

/// Iterator over a `ChildMap` without boxing (it runs once per node when a
/// subscriber to `#` collects every retained message).
pub enum Iter<'a, V> {
    Few(std::slice::Iter<'a, (Box<str>, V)>),
    Many(std::collections::hash_map::Iter<'a, Box<str>, V>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a str, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(k, c)| (&**k, c)),
            Iter::Many(i) => i.next().map(|(k, c)| (&**k, c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_vector_to_map_and_keeps_everything() {
        let mut m: ChildMap<u32> = ChildMap::default();
        for i in 0..100u32 {
            *m.get_or_default(&format!("l{i}")) = i;
            // The same level again is the same child.
            assert_eq!(*m.get_or_default(&format!("l{i}")), i);
        }
        assert!(matches!(m, ChildMap::Many(_)));
        for i in 0..100u32 {
            assert_eq!(m.get(&format!("l{i}")), Some(&i));
        }
        assert_eq!(m.iter().count(), 100);
        assert_eq!(m.remove("l5"), Some(5));
        assert_eq!(m.get("l5"), None);
        let mut few: ChildMap<u32> = ChildMap::default();
        *few.get_or_default("a") = 1;
        assert!(matches!(few, ChildMap::Few(_)));
        assert_eq!(few.remove("a"), Some(1));
        assert!(few.is_empty());
    }
}
