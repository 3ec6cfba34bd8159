//! `check_retain_source`: who published each retained message, so that a
//! retained message is only delivered while its publisher may still write
//! its topic (mosquitto checks the publisher's write access again when it
//! delivers a retained message on SUBSCRIBE).
//!
//! Kept beside the retained store, keyed by topic, only while the option is
//! on: a million retained messages should not pay for it otherwise.

use std::collections::HashMap;
use std::rc::Rc;

use super::ListenerSettings;
use super::settings::Access;

/// The publisher of a retained message, as mosquitto.db stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainSource {
    pub client_id: Rc<str>,
    pub username: Option<Box<str>>,
    /// The listener it published through (its port is what the file keeps).
    pub listener: usize,
}

#[derive(Debug, Default)]
pub struct RetainSources(HashMap<Box<str>, RetainSource, foldhash::fast::RandomState>);

impl RetainSources {
    /// Records (or, for an empty payload, forgets) the source of `topic`.
    pub fn set(&mut self, topic: &str, source: Option<RetainSource>, clears: bool) {
        match source {
            Some(s) if !clears => {
                self.0.insert(topic.into(), s);
            }
            _ => {
                self.0.remove(topic);
            }
        }
    }

    pub fn get(&self, topic: &str) -> Option<&RetainSource> {
        self.0.get(topic)
    }

    /// Whether the retained message on `topic` may be delivered: its
    /// publisher, under the ACL of the listener it used, may still write
    /// it. A message with no recorded source (made by the broker) may.
    pub fn may_deliver(&self, listeners: &[ListenerSettings], topic: &str) -> bool {
        let Some(src) = self.get(topic) else {
            return true;
        };
        super::settings::acl_allows(
            listeners,
            src.listener,
            &src.client_id,
            src.username.as_deref(),
            topic,
            Access::Write,
        )
    }
}
