//! THE directive table: every directive of mosquitto 2.0 and 2.1, with the
//! scope, the value shape and what culex does with it.
//!
//! The parser (`parser.rs`) consults this table first: an unknown name is
//! `Unknown configuration variable`, a `Refuse` entry is a start-up error
//! naming the directive, a `Warn` entry is parsed and recorded in
//! `Config::warnings`. A unit test checks every entry is handled.

/// Where a directive applies (spec §7 legend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    /// Global, or per listener with `per_listener_settings true`.
    Security,
    Listener,
    Bridge,
    Plugin,
}

/// Shape of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Int,
    /// Rest of the line, trimmed; duplicate in one scope is an error.
    Str,
    /// One word from a fixed set (or `file <path>` for log_dest).
    Choice,
    /// Directive-specific grammar (listener, durations, lists...).
    Special,
}

/// What culex does with a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Parsed into the typed model and honoured.
    Implemented,
    /// Parsed (syntax checked); a warning is logged at start-up; no effect.
    Warn(&'static str),
    /// Start-up error (exit 3): ignoring it would weaken security or change
    /// what clients see.
    Refuse(&'static str),
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    pub name: &'static str,
    pub scope: Scope,
    pub kind: ValueKind,
    pub status: Status,
    /// Short note for the docs (version, alias, ...).
    pub note: &'static str,
}

const fn d(
    name: &'static str,
    scope: Scope,
    kind: ValueKind,
    status: Status,
    note: &'static str,
) -> Directive {
    Directive {
        name,
        scope,
        kind,
        status,
        note,
    }
}

use Scope::*;
use Status::*;
use ValueKind::*;

const BRIDGE: Status = Implemented;
const LOCAL_LOGIN: Status = Warn(
    "the local side of a culex bridge is trusted like mosquitto's own bridge context; no local login is made",
);

/// Every directive. `plugin_opt_` and `auth_opt_` are prefixes.
pub const DIRECTIVES: &[Directive] = &[
    // ---- security / auth
    d("acl_file", Security, Str, Implemented, ""),
    d(
        "allow_anonymous",
        Security,
        Bool,
        Implemented,
        "default false; true in local-only mode unless set",
    ),
    d(
        "allow_zero_length_clientid",
        Security,
        Bool,
        Implemented,
        "default true",
    ),
    d(
        "auto_id_prefix",
        Security,
        Str,
        Implemented,
        "default auto-",
    ),
    d("password_file", Security, Str, Implemented, ""),
    d(
        "psk_file",
        Security,
        Str,
        Implemented,
        "identity:hexkey lines, read at start-up and on SIGHUP",
    ),
    d(
        "per_listener_settings",
        Global,
        Bool,
        Implemented,
        "must precede security settings",
    ),
    d(
        "plugin",
        Security,
        Special,
        Implemented,
        "only mosquitto_password_file.so and mosquitto_acl_file.so (applied natively); any other plugin is refused",
    ),
    d(
        "auth_plugin",
        Security,
        Special,
        Implemented,
        "deprecated alias of plugin; same rules",
    ),
    d(
        "global_plugin",
        Global,
        Special,
        Implemented,
        "2.1; same rules as plugin, always global",
    ),
    d(
        "plugin_opt_",
        Plugin,
        Special,
        Implemented,
        "prefix; plugin_opt_password_file / plugin_opt_acl_file act like password_file / acl_file",
    ),
    d(
        "auth_opt_",
        Plugin,
        Special,
        Implemented,
        "prefix; deprecated alias of plugin_opt_",
    ),
    d(
        "auth_plugin_deny_special_chars",
        Plugin,
        Bool,
        Warn("only meaningful for external plugins, which culex cannot load"),
        "",
    ),
    d(
        "check_retain_source",
        Global,
        Bool,
        Implemented,
        "a retained message is delivered only while its publisher may still write its topic (under the ACL of the listener it used); the publisher is kept in mosquitto.db; counts as a security setting for per_listener_settings",
    ),
    d("clientid_prefixes", Global, Str, Implemented, "deprecated"),
    d(
        "listener_allow_anonymous",
        Listener,
        Bool,
        Implemented,
        "2.1",
    ),
    d("listener_auto_id_prefix", Listener, Str, Implemented, "2.1"),
    d(
        "enable_control_api",
        Global,
        Bool,
        Warn("the $CONTROL API is not implemented"),
        "2.1",
    ),
    // ---- persistence
    d("persistence", Global, Bool, Implemented, ""),
    d(
        "retained_persistence",
        Global,
        Bool,
        Implemented,
        "alias of persistence",
    ),
    d(
        "persistence_file",
        Global,
        Str,
        Implemented,
        "default mosquitto.db",
    ),
    d("persistence_location", Global, Str, Implemented, ""),
    d(
        "autosave_interval",
        Global,
        Int,
        Implemented,
        "default 1800",
    ),
    d("autosave_on_changes", Global, Bool, Implemented, ""),
    d(
        "persistent_client_expiration",
        Global,
        Special,
        Implemented,
        "<n>h|d|w|m|y",
    ),
    // ---- logging
    d(
        "log_dest",
        Global,
        Choice,
        Implemented,
        "accumulates; none clears",
    ),
    d(
        "log_type",
        Global,
        Choice,
        Implemented,
        "accumulates; none clears",
    ),
    d("log_timestamp", Global, Bool, Implemented, ""),
    d("log_timestamp_format", Global, Str, Implemented, ""),
    d(
        "log_facility",
        Global,
        Int,
        Implemented,
        "0-7 = local0-local7 for log_dest syslog",
    ),
    d("connection_messages", Global, Bool, Implemented, ""),
    d(
        "websockets_log_level",
        Global,
        Int,
        Warn("culex has no libwebsockets log to tune"),
        "",
    ),
    // ---- limits
    d(
        "max_inflight_messages",
        Global,
        Int,
        Implemented,
        "default 20",
    ),
    d(
        "max_inflight_bytes",
        Global,
        Int,
        Implemented,
        "0 = no limit; an empty window always takes one message",
    ),
    d(
        "max_queued_messages",
        Global,
        Int,
        Implemented,
        "default 1000",
    ),
    d("max_queued_bytes", Global, Int, Implemented, ""),
    d("queue_qos0_messages", Global, Bool, Implemented, ""),
    d(
        "max_keepalive",
        Global,
        Int,
        Implemented,
        "0-65535, default 0",
    ),
    d(
        "max_packet_size",
        Global,
        Int,
        Implemented,
        ">= 20; default 0 (2.0)",
    ),
    d(
        "message_size_limit",
        Global,
        Int,
        Implemented,
        "deprecated in favour of max_packet_size",
    ),
    d("retain_available", Global, Bool, Implemented, ""),
    d("upgrade_outgoing_qos", Global, Bool, Implemented, ""),
    d(
        "allow_duplicate_messages",
        Global,
        Bool,
        Implemented,
        "deprecated; default false (2.0)",
    ),
    d(
        "set_tcp_nodelay",
        Global,
        Bool,
        Implemented,
        "culex always disables Nagle and batches its own writes",
    ),
    d(
        "memory_limit",
        Global,
        Int,
        Implemented,
        "counts messages and socket buffers, not every allocation; read at start",
    ),
    d(
        "sys_interval",
        Global,
        Int,
        Implemented,
        "0-65535, default 10",
    ),
    d(
        "global_max_clients",
        Global,
        Int,
        Implemented,
        "2.1; a new session beyond it gets CONNACK 0x89 (3.x: 3)",
    ),
    d(
        "global_max_connections",
        Global,
        Int,
        Implemented,
        "2.1; extra connections are closed at once",
    ),
    d(
        "packet_buffer_size",
        Global,
        Int,
        Implemented,
        "2.1, default 4096",
    ),
    d(
        "websockets_headers_size",
        Global,
        Int,
        Warn("culex's HTTP upgrade accepts headers up to 8 KiB"),
        "2.1 alias of packet_buffer_size",
    ),
    d(
        "retry_interval",
        Global,
        Int,
        Warn("The retry_interval option is no longer available."),
        "obsolete",
    ),
    // ---- process
    d(
        "user",
        Global,
        Str,
        Implemented,
        "last wins; default mosquitto",
    ),
    d("pid_file", Global, Str, Implemented, ""),
    d(
        "include_dir",
        Global,
        Special,
        Implemented,
        "main file only",
    ),
    // ---- listeners
    d(
        "listener",
        Listener,
        Special,
        Implemented,
        "port [address|unix socket path]",
    ),
    d(
        "port",
        Listener,
        Int,
        Implemented,
        "deprecated; default listener",
    ),
    d(
        "bind_address",
        Listener,
        Str,
        Implemented,
        "deprecated; default listener",
    ),
    d(
        "protocol",
        Listener,
        Choice,
        Implemented,
        "mqtt and websockets; http_api is refused",
    ),
    d("socket_domain", Listener, Choice, Implemented, "ipv4|ipv6"),
    d("bind_interface", Listener, Str, Implemented, ""),
    d(
        "max_connections",
        Listener,
        Int,
        Implemented,
        "-1 = unlimited",
    ),
    d("max_qos", Listener, Int, Implemented, "0-2"),
    d(
        "maximum_qos",
        Listener,
        Int,
        Implemented,
        "alias of max_qos",
    ),
    d("max_topic_alias", Listener, Int, Implemented, "default 10"),
    d(
        "max_topic_alias_broker",
        Listener,
        Int,
        Implemented,
        "2.1, default 10",
    ),
    d(
        "mount_point",
        Listener,
        Str,
        Implemented,
        "prefixed to published, subscribed and will topics; stripped on delivery",
    ),
    d("use_username_as_clientid", Listener, Bool, Implemented, ""),
    d(
        "accept_protocol_versions",
        Listener,
        Special,
        Implemented,
        "2.1; comma list of 3,4,5",
    ),
    d("http_dir", Listener, Str, Implemented, ""),
    d("websockets_origin", Listener, Str, Implemented, "2.1"),
    d(
        "enable_proxy_protocol",
        Listener,
        Int,
        Refuse("the PROXY protocol is not supported by culex yet"),
        "2.1",
    ),
    // ---- TLS
    d("cafile", Listener, Str, Implemented, ""),
    d(
        "capath",
        Listener,
        Str,
        Implemented,
        "OpenSSL's hashed names (openssl rehash)",
    ),
    d(
        "certfile",
        Listener,
        Str,
        Implemented,
        "PEM chain; re-read on SIGHUP",
    ),
    d(
        "keyfile",
        Listener,
        Str,
        Implemented,
        "PEM; an encrypted key asks for its pass phrase on the terminal",
    ),
    d(
        "ciphers",
        Listener,
        Str,
        Implemented,
        "passed to OpenSSL as written",
    ),
    d("ciphers_tls1.3", Listener, Str, Implemented, ""),
    d("crlfile", Listener, Str, Implemented, ""),
    d(
        "dhparamfile",
        Listener,
        Str,
        Implemented,
        "PEM DH parameters for DHE suites",
    ),
    d("require_certificate", Listener, Bool, Implemented, ""),
    d("use_identity_as_username", Listener, Bool, Implemented, ""),
    d("use_subject_as_username", Listener, Bool, Implemented, ""),
    d(
        "tls_version",
        Listener,
        Str,
        Implemented,
        "tlsv1.1, tlsv1.2 or tlsv1.3 (minimum)",
    ),
    d(
        "psk_hint",
        Listener,
        Str,
        Implemented,
        "TLS-PSK, with psk_file",
    ),
    d(
        "tls_engine",
        Listener,
        Str,
        Implemented,
        "dynamically linked build only; the static one cannot load engine modules",
    ),
    d(
        "tls_keyform",
        Listener,
        Str,
        Implemented,
        "pem, or engine (keyfile is the engine's key id)",
    ),
    d("tls_engine_kpass_sha1", Listener, Str, Implemented, ""),
    d(
        "disable_client_cert_date_checks",
        Listener,
        Bool,
        Implemented,
        "2.1",
    ),
    // ---- bridges
    d("connection", Bridge, Str, BRIDGE, ""),
    d("address", Bridge, Special, BRIDGE, ""),
    d("addresses", Bridge, Special, BRIDGE, ""),
    d("topic", Bridge, Special, BRIDGE, ""),
    d("remote_username", Bridge, Str, BRIDGE, ""),
    d("username", Bridge, Str, BRIDGE, "alias of remote_username"),
    d("remote_password", Bridge, Str, BRIDGE, ""),
    d("password", Bridge, Str, BRIDGE, "alias of remote_password"),
    d("remote_clientid", Bridge, Str, BRIDGE, ""),
    d("clientid", Bridge, Str, BRIDGE, "alias of remote_clientid"),
    d("local_clientid", Bridge, Str, BRIDGE, ""),
    d("local_username", Bridge, Str, LOCAL_LOGIN, ""),
    d("local_password", Bridge, Str, LOCAL_LOGIN, ""),
    d("cleansession", Bridge, Bool, BRIDGE, ""),
    d("local_cleansession", Bridge, Bool, BRIDGE, ""),
    d("bridge_protocol_version", Bridge, Choice, BRIDGE, ""),
    d("keepalive_interval", Bridge, Int, BRIDGE, ""),
    d("try_private", Bridge, Bool, BRIDGE, ""),
    d("notifications", Bridge, Bool, BRIDGE, ""),
    d("notification_topic", Bridge, Str, BRIDGE, ""),
    d("notifications_local_only", Bridge, Bool, BRIDGE, ""),
    d("start_type", Bridge, Choice, BRIDGE, ""),
    d("restart_timeout", Bridge, Special, BRIDGE, ""),
    d("idle_timeout", Bridge, Int, BRIDGE, ""),
    d("threshold", Bridge, Int, BRIDGE, ""),
    d("round_robin", Bridge, Bool, BRIDGE, ""),
    d("bridge_attempt_unsubscribe", Bridge, Bool, BRIDGE, ""),
    d("bridge_outgoing_retain", Bridge, Bool, BRIDGE, ""),
    d("bridge_max_packet_size", Bridge, Int, BRIDGE, ""),
    d("bridge_bind_address", Bridge, Str, BRIDGE, ""),
    d("bridge_cafile", Bridge, Str, BRIDGE, "turns TLS on"),
    d(
        "bridge_capath",
        Bridge,
        Str,
        BRIDGE,
        "turns TLS on; OpenSSL's hashed names (openssl rehash)",
    ),
    d(
        "bridge_certfile",
        Bridge,
        Str,
        BRIDGE,
        "with bridge_keyfile; needs bridge_cafile or bridge_capath (mosquitto would connect in plaintext)",
    ),
    d(
        "bridge_keyfile",
        Bridge,
        Str,
        BRIDGE,
        "with bridge_certfile",
    ),
    d(
        "bridge_insecure",
        Bridge,
        Bool,
        BRIDGE,
        "skips the host name check only; the chain is still verified",
    ),
    d("bridge_tls_version", Bridge, Str, BRIDGE, "minimum version"),
    d("bridge_alpn", Bridge, Str, BRIDGE, ""),
    d(
        "bridge_require_ocsp",
        Bridge,
        Bool,
        Implemented,
        "the remote must staple a good OCSP response",
    ),
    d(
        "bridge_identity",
        Bridge,
        Str,
        BRIDGE,
        "TLS-PSK, with bridge_psk",
    ),
    d("bridge_psk", Bridge, Str, BRIDGE, "hex key; turns TLS on"),
    d("bridge_receive_maximum", Bridge, Int, BRIDGE, "2.1"),
    d("bridge_session_expiry_interval", Bridge, Int, BRIDGE, "2.1"),
    d(
        "bridge_max_topic_alias",
        Bridge,
        Int,
        Warn("culex bridges send no topic aliases"),
        "2.1",
    ),
    d("bridge_tcp_keepalive", Bridge, Special, BRIDGE, "2.1"),
    d("bridge_tcp_user_timeout", Bridge, Int, BRIDGE, "2.1"),
    d(
        "bridge_tls_use_os_certs",
        Bridge,
        Bool,
        BRIDGE,
        "2.1; turns TLS on; OpenSSL's default paths and the system CA bundle",
    ),
    d("bridge_ciphers", Bridge, Str, BRIDGE, "2.1"),
    d("bridge_ciphers_tls1.3", Bridge, Str, BRIDGE, "2.1"),
    d(
        "bridge_ciphers_tls",
        Bridge,
        Str,
        BRIDGE,
        "2.1 (name as in the 2.1 ChangeLog)",
    ),
    d(
        "bridge_reload_type",
        Bridge,
        Choice,
        Warn("culex bridges keep their start-up configuration on reload"),
        "2.1",
    ),
];

/// Look a directive name up (exact, case-sensitive; prefixes for
/// `plugin_opt_` / `auth_opt_`).
pub fn lookup(name: &str) -> Option<&'static Directive> {
    if let Some(e) = DIRECTIVES
        .iter()
        .find(|e| e.name == name && !e.name.ends_with('_'))
    {
        return Some(e);
    }
    for p in ["plugin_opt_", "auth_opt_"] {
        if name.starts_with(p) {
            return DIRECTIVES.iter().find(|e| e.name == p);
        }
    }
    None
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Global => "global",
        Security => "security",
        Listener => "listener",
        Bridge => "bridge",
        Plugin => "plugin",
    }
}

/// The table as Markdown (`name | scope | status | note`), sorted by name.
pub fn directive_table_markdown() -> String {
    let mut rows: Vec<&Directive> = DIRECTIVES.iter().collect();
    rows.sort_by_key(|e| e.name);
    let mut out = String::from("| directive | scope | status | note |\n|---|---|---|---|\n");
    for e in rows {
        let name = if e.name.ends_with('_') {
            format!("`{}*`", e.name)
        } else {
            format!("`{}`", e.name)
        };
        let (status, why) = match e.status {
            Implemented => ("implemented", ""),
            Warn(w) => ("warn", w),
            Refuse(r) => ("refuse", r),
        };
        let note = match (why.is_empty(), e.note.is_empty()) {
            (true, _) => e.note.to_string(),
            (false, true) => why.to_string(),
            (false, false) => format!("{}; {}", why, e.note),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            name,
            scope_name(e.scope),
            status,
            note.replace('|', "\\|")
        ));
    }
    out
}

/// Counts of (implemented, warn, refuse) entries.
pub fn status_counts() -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for e in DIRECTIVES {
        match e.status {
            Implemented => c.0 += 1,
            Warn(_) => c.1 += 1,
            Refuse(_) => c.2 += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lookup_works() {
        for (i, a) in DIRECTIVES.iter().enumerate() {
            for b in &DIRECTIVES[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(lookup("listener").map(|e| e.name), Some("listener"));
        assert_eq!(lookup("plugin_opt_x").map(|e| e.name), Some("plugin_opt_"));
        assert_eq!(lookup("auth_opt_foo").map(|e| e.name), Some("auth_opt_"));
        assert!(lookup("plugin_opt_").is_some());
        assert!(lookup("Listener").is_none());
        assert!(lookup("bogus").is_none());
    }

    #[test]
    fn markdown_is_sorted_and_complete() {
        let md = directive_table_markdown();
        assert_eq!(md.lines().count(), DIRECTIVES.len() + 2);
        // every row has exactly four cells (no stray `|` in notes)
        for l in md.lines() {
            assert_eq!(l.replace("\\|", "").matches('|').count(), 5, "{l}");
        }
        assert!(
            md.contains("| `certfile` | listener | implemented | PEM chain; re-read on SIGHUP |")
        );
        let (i, w, r) = status_counts();
        assert_eq!(i + w + r, DIRECTIVES.len());
    }
}
