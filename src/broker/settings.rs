//! What the broker core needs to know from the configuration, in its own
//! terms. `main` builds these from `config::Config`; tests build them directly.

use std::rc::Rc;
use std::time::Duration;

use crate::codec::{ProtocolVersion, Qos};

/// Decides whether a username/password pair may connect. Implemented by the
/// password file; kept as a trait so the core is tested without files.
pub trait PasswordCheck {
    /// `true` if the user exists and the password matches.
    fn check(&self, username: &str, password: Option<&[u8]>) -> bool;

    /// Whether `check` would be costly (argon2id, tens of milliseconds):
    /// the event loop runs at most one such check per turn.
    fn is_expensive(&self, _username: &str, _password: Option<&[u8]>) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Decides topic access per message (mosquitto never refuses a SUBSCRIBE
/// through the ACL file: read access is checked at each delivery).
pub trait AclCheck {
    fn check(&self, client_id: &str, username: Option<&str>, topic: &str, access: Access) -> bool;
}

/// Whether the ACL of `listener` lets a client do `access` on `topic`; a
/// listener without an ACL allows everything.
pub(super) fn acl_allows(
    listeners: &[super::ListenerSettings],
    listener: usize,
    client_id: &str,
    username: Option<&str>,
    topic: &str,
    access: Access,
) -> bool {
    listeners
        .get(listener)
        .and_then(|l| l.security.acl.as_ref())
        .is_none_or(|acl| acl.check(client_id, username, topic, access))
}

/// The security options in force on one listener (with
/// `per_listener_settings false` every listener shares the same values).
#[derive(Clone)]
pub struct Security {
    pub allow_anonymous: bool,
    /// `None`: no password file. With `allow_anonymous false` that refuses
    /// everyone, as mosquitto does.
    pub passwords: Option<Rc<dyn PasswordCheck>>,
    pub acl: Option<Rc<dyn AclCheck>>,
    pub allow_zero_length_clientid: bool,
    pub auto_id_prefix: String,
    pub clientid_prefixes: Option<String>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            allow_anonymous: false,
            passwords: None,
            acl: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_string(),
            clientid_prefixes: None,
        }
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("passwords", &self.passwords.is_some())
            .field("acl", &self.acl.is_some())
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// For log lines (`New connection from … on port N.`).
    pub port: u16,
    pub max_qos: Qos,
    /// Inbound topic aliases a v5 client may use (`max_topic_alias`).
    pub max_topic_alias: u16,
    /// Outbound topic aliases culex creates per v5 client (2.1's
    /// `max_topic_alias_broker`, default 10; 0 turns them off).
    pub max_topic_alias_broker: u16,
    pub mount_point: Option<String>,
    pub use_username_as_clientid: bool,
    /// TLS: the client certificate's CN becomes the username and the
    /// password file is not consulted.
    pub use_identity_as_username: bool,
    /// TLS: the certificate's whole subject (RFC 2253) becomes the username.
    pub use_subject_as_username: bool,
    /// TLS-PSK (`psk_hint`): with `use_identity_as_username` the PSK
    /// identity is the username, and a certificate never is.
    pub psk_listener: bool,
    /// `accept_protocol_versions` (2.1); `None` accepts 3.1, 3.1.1 and 5.0.
    pub accept_protocol_versions: Option<Vec<ProtocolVersion>>,
    pub security: Security,
}

impl Default for ListenerSettings {
    fn default() -> ListenerSettings {
        ListenerSettings {
            port: 1883,
            max_qos: Qos::ExactlyOnce,
            max_topic_alias: 10,
            max_topic_alias_broker: 10,
            mount_point: None,
            use_username_as_clientid: false,
            use_identity_as_username: false,
            use_subject_as_username: false,
            psk_listener: false,
            accept_protocol_versions: None,
            security: Security::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// 0 = no limit.
    pub max_keepalive: u16,
    /// 0 = only the protocol's limit.
    pub max_packet_size: u32,
    /// 0 = no limit. Larger PUBLISH payloads are dropped (flow completed).
    pub message_size_limit: u32,
    /// Outgoing QoS 1/2 messages in flight per client; 0 = unlimited.
    pub max_inflight_messages: u16,
    /// 0 = unlimited.
    pub max_inflight_bytes: u64,
    /// 0 = unlimited.
    pub max_queued_messages: u32,
    /// 0 = unlimited.
    pub max_queued_bytes: u64,
    pub queue_qos0_messages: bool,
    pub retain_available: bool,
    pub upgrade_outgoing_qos: bool,
    /// Deliver a retained message only while its publisher may still write
    /// its topic.
    pub check_retain_source: bool,
    pub allow_duplicate_messages: bool,
    pub persistent_client_expiration: Option<Duration>,
    pub connection_messages: bool,
    /// How long a socket may stay open without sending CONNECT.
    pub connect_timeout: Duration,
    /// `$SYS` update period in seconds; 0 disables `$SYS`.
    pub sys_interval: u32,
    /// 2.1's `global_max_clients`: sessions, connected or not.
    pub global_max_clients: Option<u32>,
    /// `memory_limit` in bytes, compared with what `crate::memory` counts;
    /// 0 = no limit.
    pub memory_limit: u64,
    /// Reads the heap in use for `$SYS/broker/heap/*` (injected so the core
    /// stays free of system calls; `None` leaves the topics out).
    pub heap_probe: Option<fn() -> Option<u64>>,
}

impl Default for BrokerSettings {
    fn default() -> BrokerSettings {
        BrokerSettings {
            max_keepalive: 0,
            max_packet_size: 0,
            message_size_limit: 0,
            max_inflight_messages: 20,
            max_inflight_bytes: 0,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            retain_available: true,
            upgrade_outgoing_qos: false,
            check_retain_source: false,
            allow_duplicate_messages: false,
            persistent_client_expiration: None,
            connection_messages: true,
            connect_timeout: Duration::from_secs(10),
            sys_interval: 0,
            global_max_clients: None,
            memory_limit: 0,
            heap_probe: None,
        }
    }
}
