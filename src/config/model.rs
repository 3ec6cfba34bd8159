//! The typed configuration the broker consumes.
//!
//! Defaults follow mosquitto 2.0.20 unless noted. Where 2.1 changed a
//! default, culex keeps the 2.0 value when the 2.1 value could change what
//! an existing 2.0 user's clients see (see `docs/config-choices.md`):
//!
//! * `max_packet_size`: 0 (no limit, 2.0) rather than 2,000,000 (2.1): the
//!   2.1 value would disconnect 2.0 clients that publish >2 MB payloads.
//! * `allow_duplicate_messages`: false (2.0) rather than true (2.1): the 2.1
//!   value makes v3.x clients with overlapping subscriptions receive copies.
//! * `max_topic_alias_broker`: 10 (2.1; 2.0 has no outbound aliases). Only
//!   v5 clients that announced Topic Alias Maximum > 0 are affected, and
//!   they must accept aliases by the MQTT 5 spec.
//! * `packet_buffer_size`: 4096 (2.1); an internal buffer size, invisible
//!   to clients.

use std::path::PathBuf;

use crate::codec::Qos;

use super::error::ParseMessage;

/// Transport of a listener (`protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Mqtt,
    Websockets,
    HttpApi,
}

/// `socket_domain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketDomain {
    Ipv4,
    Ipv6,
}

/// Security options (§3 of the spec): global, or per listener when
/// `per_listener_settings true`. In [`Listener::security`] this is always
/// the effective set for that listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub allow_anonymous: bool,
    /// From `password_file` or `plugin_opt_password_file` of the
    /// `mosquitto_password_file.so` plugin.
    pub password_file: Option<PathBuf>,
    /// From `acl_file` or `plugin_opt_acl_file` of `mosquitto_acl_file.so`.
    pub acl_file: Option<PathBuf>,
    /// `psk_file`: identities and hex keys of TLS-PSK clients.
    pub psk_file: Option<PathBuf>,
    pub allow_zero_length_clientid: bool,
    pub auto_id_prefix: String,
    /// Deprecated global `clientid_prefixes` (copied into every listener).
    pub clientid_prefixes: Option<String>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            allow_anonymous: false,
            password_file: None,
            acl_file: None,
            psk_file: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_string(),
            clientid_prefixes: None,
        }
    }
}

/// TLS settings of a listener, kept for when TLS lands. Every TLS directive
/// is refused today, so these are always empty/false in a loaded config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub cafile: Option<String>,
    pub capath: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub ciphers: Option<String>,
    pub ciphers_tls13: Option<String>,
    pub crlfile: Option<String>,
    pub dhparamfile: Option<String>,
    pub psk_hint: Option<String>,
    pub tls_version: Option<String>,
    pub require_certificate: bool,
    pub use_identity_as_username: bool,
    pub use_subject_as_username: bool,
    /// `tls_engine`: an OpenSSL engine made the default for everything.
    pub tls_engine: Option<String>,
    /// `tls_keyform engine`: `keyfile` is a key id the engine loads.
    pub keyform_engine: bool,
    /// `tls_engine_kpass_sha1`: the key's password for the engine.
    pub tls_engine_kpass_sha1: Option<String>,
    /// 2.1 `disable_client_cert_date_checks`: expired or not yet valid
    /// client certificates are accepted.
    pub disable_client_cert_date_checks: bool,
}

/// One listener, in the order mosquitto opens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// 0 only for unix socket listeners.
    pub port: u16,
    pub bind_address: Option<String>,
    pub unix_path: Option<PathBuf>,
    pub protocol: Protocol,
    /// `None` = both address families.
    pub socket_domain: Option<SocketDomain>,
    pub bind_interface: Option<String>,
    /// `None` = unlimited (`max_connections -1`, the default).
    pub max_connections: Option<u32>,
    pub max_qos: Qos,
    pub max_topic_alias: u16,
    pub max_topic_alias_broker: u16,
    pub mount_point: Option<String>,
    pub use_username_as_clientid: bool,
    /// 2.1 `accept_protocol_versions`: accepted protocol levels (3, 4, 5).
    /// `None` = all.
    pub accept_protocol_versions: Option<Vec<u8>>,
    /// Effective security for this listener (own set with
    /// `per_listener_settings true`, else a copy of the global set), with
    /// 2.1's `listener_allow_anonymous` / `listener_auto_id_prefix` applied.
    pub security: Security,
    /// True for the implicit "default listener" (§2 row 5) and for the
    /// loopback listeners of local-only mode.
    pub is_default: bool,
    pub http_dir: Option<String>,
    pub websockets_origins: Vec<String>,
    pub tls: TlsSettings,
}

impl Listener {
    pub(crate) fn new(port: u16) -> Self {
        Listener {
            port,
            bind_address: None,
            unix_path: None,
            protocol: Protocol::Mqtt,
            socket_domain: None,
            bind_interface: None,
            max_connections: None,
            max_qos: Qos::ExactlyOnce,
            max_topic_alias: 10,
            max_topic_alias_broker: 10,
            mount_point: None,
            use_username_as_clientid: false,
            accept_protocol_versions: None,
            security: Security::default(),
            is_default: false,
            http_dir: None,
            websockets_origins: Vec::new(),
            tls: TlsSettings::default(),
        }
    }
}

/// Global limits and message handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// 0 = no limit (2.0.12+).
    pub max_keepalive: u16,
    /// 0 = no limit (2.0 default; 2.1 uses 2,000,000, see module doc).
    pub max_packet_size: u32,
    /// 0 = no limit.
    pub message_size_limit: u32,
    /// 0 = unlimited (also what 65535 and negative values become).
    pub max_inflight_messages: u16,
    pub max_inflight_bytes: u64,
    /// 0 = unlimited.
    pub max_queued_messages: u32,
    pub max_queued_bytes: u64,
    pub queue_qos0_messages: bool,
    pub retain_available: bool,
    pub upgrade_outgoing_qos: bool,
    /// 2.0 default false (2.1: true, see module doc).
    pub allow_duplicate_messages: bool,
    pub set_tcp_nodelay: bool,
    /// Seconds; `None` = never expire.
    pub persistent_client_expiration: Option<u64>,
    pub check_retain_source: bool,
    /// 2.1; `None` = unlimited (negative values).
    pub global_max_clients: Option<u32>,
    /// 2.1; `None` = unlimited (negative values).
    pub global_max_connections: Option<u32>,
    /// 2.1 initial read buffer size.
    pub packet_buffer_size: u32,
    /// 0 = none. Parsed; not enforced (Warn).
    pub memory_limit: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
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
            allow_duplicate_messages: false,
            set_tcp_nodelay: false,
            persistent_client_expiration: None,
            check_retain_source: false,
            global_max_clients: None,
            global_max_connections: None,
            packet_buffer_size: 4096,
            memory_limit: 0,
        }
    }
}

/// Persistence settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    /// `persistence` or its undocumented alias `retained_persistence`.
    pub enabled: bool,
    pub file: String,
    pub location: Option<PathBuf>,
    /// Seconds (or a change count with `autosave_on_changes`); 0 = only at
    /// shutdown / SIGUSR1.
    pub autosave_interval: u32,
    pub autosave_on_changes: bool,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            enabled: false,
            file: "mosquitto.db".to_string(),
            location: None,
            autosave_interval: 1800,
            autosave_on_changes: false,
        }
    }
}

impl Persistence {
    /// `location + "/" + file` (a trailing slash gives `dir//file`, like
    /// mosquitto); the file alone (relative to the cwd) without a location.
    pub fn path(&self) -> PathBuf {
        match &self.location {
            Some(loc) if !loc.as_os_str().is_empty() => {
                PathBuf::from(format!("{}/{}", loc.display(), self.file))
            }
            _ => PathBuf::from(&self.file),
        }
    }
}

/// A `log_dest` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Stdout,
    Stderr,
    Syslog,
    Topic,
    Dlt,
    File(PathBuf),
}

/// The set of `log_type` categories (mosquitto's bit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTypes(pub u32);

impl LogTypes {
    pub const NONE: LogTypes = LogTypes(0);
    pub const INFO: LogTypes = LogTypes(0x01);
    pub const NOTICE: LogTypes = LogTypes(0x02);
    pub const WARNING: LogTypes = LogTypes(0x04);
    pub const ERR: LogTypes = LogTypes(0x08);
    pub const DEBUG: LogTypes = LogTypes(0x10);
    pub const SUBSCRIBE: LogTypes = LogTypes(0x20);
    pub const UNSUBSCRIBE: LogTypes = LogTypes(0x40);
    pub const WEBSOCKETS: LogTypes = LogTypes(0x80);
    pub const INTERNAL: LogTypes = LogTypes(0x8000_0000);
    pub const ALL: LogTypes = LogTypes(0xFFFF_FFFF);
    /// error + warning + notice + information.
    pub const DEFAULT: LogTypes = LogTypes(0x01 | 0x02 | 0x04 | 0x08);

    pub fn contains(self, other: LogTypes) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }
}

/// Logging settings, after mosquitto's accumulate/replace rules (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// Empty after `log_dest none`. Default `[Stderr]`.
    pub dest: Vec<LogDest>,
    /// Default error+warning+notice+information; `-v` means `ALL` and `-q`
    /// `NONE` (the caller applies those).
    pub types: LogTypes,
    pub timestamp: bool,
    pub timestamp_format: Option<String>,
    pub connection_messages: bool,
    /// `log_facility` 0–7 = local0–local7; `None` = daemon.
    pub facility: Option<u8>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            dest: vec![LogDest::Stderr],
            types: LogTypes::DEFAULT,
            timestamp: true,
            timestamp_format: None,
            connection_messages: true,
            facility: None,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub per_listener_settings: bool,
    /// Explicit listeners in file order, then the default listener if it is
    /// created (§2 row 5); in local-only mode the loopback listeners.
    pub listeners: Vec<Listener>,
    /// No `listener`/`port`/`bind_address` anywhere (§2 row 7).
    pub local_only: bool,
    /// The global security set (what listeners copy when
    /// `per_listener_settings false`).
    pub security: Security,
    pub limits: Limits,
    pub persistence: Persistence,
    pub logging: Logging,
    /// Default `mosquitto`.
    pub user: String,
    pub pid_file: Option<PathBuf>,
    /// Default 10; 0 disables `$SYS`.
    pub sys_interval: u32,
    /// 2.1 `enable_control_api` (parsed, Warn: not implemented).
    pub enable_control_api: bool,
    /// Parse-time lines mosquitto would log (notices, `Loading config
    /// file`, the three local-only warnings, non-fatal errors).
    pub messages: Vec<ParseMessage>,
    /// One line per `Warn` directive used: parsed but not active in culex.
    pub warnings: Vec<String>,
    /// `connection` sections, in file order.
    pub bridges: Vec<super::bridge::Bridge>,
}
