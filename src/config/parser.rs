//! The directive parser: mosquitto's `config__read_file_core` rule for rule.
//!
//! Value helpers mirror `conf__parse_bool/int/string`: a bool or int reads
//! only the next word; a string takes the rest of the line, trimmed; a
//! string given twice in one scope is an error.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::directives::{self, Status};
use super::error::{ConfigError, MsgLevel, ParseMessage};
use super::lexer::{self, Tok};
use super::model::{LogDest, LogTypes, SocketDomain};
use crate::codec::Qos;

type R<T> = Result<T, String>;

/// Security options as written (unset = `None`), resolved in `listeners.rs`.
#[derive(Debug, Clone)]
pub(crate) struct SecDraft {
    pub allow_anonymous: Option<bool>,
    pub password_file: Option<String>,
    pub acl_file: Option<String>,
    pub psk_file: Option<String>,
    pub allow_zero_length_clientid: bool,
    pub auto_id_prefix: Option<String>,
    /// Number of (recognised) plugins configured in this scope.
    pub plugins: usize,
}

impl Default for SecDraft {
    fn default() -> Self {
        SecDraft {
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
            psk_file: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: None,
            plugins: 0,
        }
    }
}

/// A listener as written.
#[derive(Debug, Clone)]
pub(crate) struct ListenerDraft {
    pub l: super::model::Listener,
    /// Port given with the deprecated `port` (default listener only).
    pub port_set: bool,
    pub sec: SecDraft,
    pub listener_allow_anonymous: Option<bool>,
    pub listener_auto_id_prefix: Option<String>,
}

impl ListenerDraft {
    fn new(port: u16) -> Self {
        ListenerDraft {
            l: super::model::Listener::new(port),
            port_set: false,
            sec: SecDraft::default(),
            listener_allow_anonymous: None,
            listener_auto_id_prefix: None,
        }
    }

    /// §2 row 5: does this default listener get created?
    pub fn default_is_used(&self) -> bool {
        let l = &self.l;
        self.port_set
            || l.bind_address.is_some()
            || l.bind_interface.is_some()
            || l.max_connections.is_some()
            || l.max_qos != Qos::ExactlyOnce
            || l.mount_point.is_some()
            || l.protocol != super::model::Protocol::Mqtt
            || l.socket_domain.is_some()
            || l.use_username_as_clientid
            || l.tls != super::model::TlsSettings::default()
            || self.sec.password_file.is_some()
            || self.sec.plugins > 0
            || !self.sec.allow_zero_length_clientid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecTarget {
    Global,
    Default,
    Listener(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PluginKind {
    PasswordFile,
    AclFile,
}

#[derive(Debug, Clone, Copy)]
struct PluginCtx {
    kind: PluginKind,
    target: SecTarget,
}

/// Parser state; `listeners.rs` turns it into a `Config`.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    pub pls: bool,
    sec_touched: bool,
    pub global: SecDraft,
    pub default: Option<ListenerDraft>,
    pub listeners: Vec<ListenerDraft>,
    cur: Option<usize>,
    plugin: Option<PluginCtx>,
    pub local_only: bool,
    pub limits: super::model::Limits,
    pub persistence: super::model::Persistence,
    pub persistence_file: Option<String>,
    pub persistence_location: Option<String>,
    pub logging: super::model::Logging,
    pub log_dest_set: bool,
    pub log_dests: Vec<LogDest>,
    log_file_seen: bool,
    pub log_type_set: bool,
    pub log_types: u32,
    pub user: Option<String>,
    pub pid_file: Option<String>,
    pub sys_interval: u32,
    pub clientid_prefixes: Option<String>,
    pub enable_control_api: bool,
    pub messages: Vec<ParseMessage>,
    pub warnings: Vec<String>,
    /// Bridge sections in file order; options apply to the last one.
    pub bridges: Vec<super::bridge::BridgeDraft>,
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn empty(name: &str) -> String {
    format!("Error: Empty {name} value in configuration.")
}

fn dup(name: &str) -> String {
    format!("Error: Duplicate {name} value in configuration.")
}

/// `conf__parse_bool`.
pub(super) fn parse_bool(tok: &mut Tok, name: &str) -> R<bool> {
    match tok.word() {
        None => Err(empty(name)),
        Some(b"true") | Some(b"1") => Ok(true),
        Some(b"false") | Some(b"0") => Ok(false),
        Some(w) => Err(format!("Error: Invalid {name} value ({}).", lossy(w))),
    }
}

/// `conf__parse_int` (C `atoi` of the next word).
pub(super) fn parse_int(tok: &mut Tok, name: &str) -> R<i32> {
    match tok.word() {
        None => Err(empty(name)),
        Some(w) => Ok(lexer::atoi(w)),
    }
}

/// `conf__parse_string`: rest of line, duplicate check, trim, UTF-8 check.
pub(super) fn parse_string(tok: &mut Tok, name: &str, slot: &Option<String>) -> R<String> {
    let rest = tok.rest().ok_or_else(|| empty(name))?;
    if slot.is_some() {
        return Err(dup(name));
    }
    let v = lexer::trim_blanks(rest);
    if v.is_empty() {
        return Err(empty(name));
    }
    std::str::from_utf8(v)
        .map(str::to_string)
        .map_err(|_| "Error: Malformed UTF-8 in configuration.".to_string())
}

fn refuse(name: &str, why: &str) -> String {
    format!("Error: The '{name}' option is not supported by culex: {why}.")
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            local_only: true,
            sys_interval: 10,
            ..Default::default()
        }
    }

    fn cur_listener(&mut self) -> &mut ListenerDraft {
        match self.cur {
            Some(i) if i < self.listeners.len() => &mut self.listeners[i],
            _ => self.default.get_or_insert_with(|| ListenerDraft::new(0)),
        }
    }

    /// `conf__set_cur_security_options`; also marks "a security setting
    /// was seen" for the per_listener_settings ordering rule.
    fn sec_target(&mut self) -> SecTarget {
        self.sec_touched = true;
        if !self.pls {
            SecTarget::Global
        } else {
            match self.cur {
                Some(i) => SecTarget::Listener(i),
                None => SecTarget::Default,
            }
        }
    }

    fn sec_mut(&mut self, t: SecTarget) -> &mut SecDraft {
        match t {
            SecTarget::Global => &mut self.global,
            SecTarget::Listener(i) if i < self.listeners.len() => &mut self.listeners[i].sec,
            _ => {
                &mut self
                    .default
                    .get_or_insert_with(|| ListenerDraft::new(0))
                    .sec
            }
        }
    }

    fn msg(&mut self, level: MsgLevel, text: impl Into<String>) {
        self.messages.push(ParseMessage::new(level, text));
    }

    /// Parse one file's bytes. `level` 0 = main file (only it honours
    /// `include_dir`). Each file starts at the default listener.
    pub fn parse_bytes(&mut self, data: &[u8], file: &str, level: u32) -> Result<(), ConfigError> {
        let saved_cur = self.cur.take();
        let saved_plugin = self.plugin.take();
        for (lineno, line) in lexer::lines(data) {
            let mut tok = Tok::new(line);
            let Some(name) = tok.word() else { continue };
            if name == b"include_dir" {
                if level == 0 {
                    self.include_dir(&mut tok, file, lineno)?;
                }
                continue;
            }
            if let Err(m) = self.directive(name, &mut tok) {
                return Err(ConfigError::parse(m).at(file, lineno));
            }
        }
        self.cur = saved_cur;
        self.plugin = saved_plugin;
        Ok(())
    }

    fn include_dir(&mut self, tok: &mut Tok, file: &str, lineno: usize) -> Result<(), ConfigError> {
        let Some(dir) = tok.rest() else {
            return Err(ConfigError::parse(empty("include_dir")).at(file, lineno));
        };
        let dir_s = lossy(dir);
        let rd = std::fs::read_dir(Path::new(OsStr::from_bytes(dir))).map_err(|_| {
            ConfigError::parse(format!("Error: Unable to open include_dir '{dir_s}'."))
                .at(file, lineno)
        })?;
        let mut names: Vec<Vec<u8>> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().as_bytes().to_vec())
            .filter(|n| lexer::is_include_candidate(n))
            .collect();
        names.sort_by(|a, b| lexer::include_order(a, b));
        for n in names {
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(&n);
            let full_s = lossy(&full);
            self.msg(MsgLevel::Info, format!("Loading config file {full_s}"));
            let data = read_config(Path::new(OsStr::from_bytes(&full)), &full_s)
                .map_err(|e| e.at(file, lineno))?;
            self.parse_bytes(&data, &full_s, 1)
                .map_err(|e| e.at(file, lineno))?;
        }
        Ok(())
    }

    /// One directive line (after its first word).
    fn directive(&mut self, name_b: &[u8], tok: &mut Tok) -> R<()> {
        let unknown = || {
            format!(
                "Error: Unknown configuration variable \"{}\".",
                lossy(name_b)
            )
        };
        let name = std::str::from_utf8(name_b).map_err(|_| unknown())?;
        let entry = directives::lookup(name).ok_or_else(unknown)?;
        if let Status::Refuse(why) = entry.status {
            return Err(refuse(name, why));
        }
        if entry.scope == directives::Scope::Bridge {
            self.bridge_line(name, tok)?;
        } else {
            self.value(name, tok)?;
        }
        if let Status::Warn(note) = entry.status
            && name != "retry_interval"
        {
            self.warnings.push(format!(
                "Warning: The '{name}' option has no effect in culex: {note}."
            ));
        }
        Ok(())
    }

    fn bridge_line(&mut self, name: &str, tok: &mut Tok) -> R<()> {
        if name == "connection" {
            return super::bridge::start(&mut self.bridges, tok);
        }
        let mut notices = Vec::new();
        let result = super::bridge::option(self.bridges.last_mut(), name, tok, &mut notices);
        for n in notices {
            self.msg(MsgLevel::Notice, n);
        }
        result?;
        // mosquitto warns as it reads the line.
        let warning = match self.bridges.last() {
            Some(b) if name == "bridge_insecure" && b.is_insecure() => {
                Some(format!("Warning: Bridge {} using insecure mode.", b.name()))
            }
            _ => None,
        };
        if let Some(text) = warning {
            self.msg(MsgLevel::Warning, text);
        }
        Ok(())
    }

    fn value(&mut self, name: &str, tok: &mut Tok) -> R<()> {
        use MsgLevel::*;
        match name {
            // ---------------- security
            "acl_file" | "password_file" | "psk_file" => {
                let t = self.sec_target();
                self.set_sec_file(t, name, tok)?;
            }
            "allow_anonymous" => {
                let t = self.sec_target();
                let v = parse_bool(tok, name)?;
                self.sec_mut(t).allow_anonymous = Some(v);
            }
            "allow_zero_length_clientid" => {
                let t = self.sec_target();
                let v = parse_bool(tok, name)?;
                self.sec_mut(t).allow_zero_length_clientid = v;
            }
            "auto_id_prefix" => {
                let t = self.sec_target();
                let v = parse_string(tok, name, &self.sec_mut(t).auto_id_prefix)?;
                self.sec_mut(t).auto_id_prefix = Some(v);
            }
            "check_retain_source" => {
                self.sec_touched = true;
                self.limits.check_retain_source = parse_bool(tok, name)?;
            }
            "per_listener_settings" => {
                // 2.0 semantics: every line is parsed and the last one wins
                // (2.1 ignores the option once it has been set to true).
                let v = parse_bool(tok, name)?;
                if v && self.sec_touched {
                    return Err("Error: per_listener_settings must be set before any other security settings.".into());
                }
                self.pls = v;
            }
            "plugin" | "auth_plugin" | "global_plugin" => {
                let t = if name == "global_plugin" {
                    self.sec_touched = true;
                    SecTarget::Global
                } else {
                    self.sec_target()
                };
                let path = parse_string(tok, "auth_plugin", &None)?;
                let file = path.rsplit('/').next().unwrap_or(&path);
                let kind = match file {
                    "mosquitto_password_file.so" => PluginKind::PasswordFile,
                    "mosquitto_acl_file.so" => PluginKind::AclFile,
                    _ => {
                        return Err(format!(
                            "Error: The '{name}' option with '{path}' is not supported by culex: only mosquitto_password_file.so and mosquitto_acl_file.so can be used (culex applies them natively)."
                        ));
                    }
                };
                self.sec_mut(t).plugins += 1;
                self.plugin = Some(PluginCtx { kind, target: t });
            }
            "auth_plugin_deny_special_chars" => {
                if self.plugin.is_none() {
                    return Err("Error: An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin.".into());
                }
                parse_bool(tok, name)?;
            }
            _ if name.starts_with("plugin_opt_") || name.starts_with("auth_opt_") => {
                self.plugin_opt(name, tok)?;
            }
            "clientid_prefixes" => {
                self.msg(Notice, "The 'clientid_prefixes' option is now deprecated and will be removed in a future version.");
                let v = parse_string(tok, name, &self.clientid_prefixes)?;
                self.clientid_prefixes = Some(v);
            }
            "listener_allow_anonymous" => {
                let v = parse_bool(tok, name)?;
                self.cur_listener().listener_allow_anonymous = Some(v);
            }
            "listener_auto_id_prefix" => {
                let v = parse_string(tok, name, &self.cur_listener().listener_auto_id_prefix)?;
                self.cur_listener().listener_auto_id_prefix = Some(v);
            }
            "enable_control_api" => self.enable_control_api = parse_bool(tok, name)?,
            // ---------------- persistence
            "persistence" | "retained_persistence" => {
                self.persistence.enabled = parse_bool(tok, name)?
            }
            "persistence_file" => {
                let v = parse_string(tok, name, &self.persistence_file)?;
                self.persistence_file = Some(v);
            }
            "persistence_location" => {
                let v = parse_string(tok, name, &self.persistence_location)?;
                self.persistence_location = Some(v);
            }
            "autosave_interval" => {
                self.persistence.autosave_interval = parse_int(tok, name)?.max(0) as u32
            }
            "autosave_on_changes" => self.persistence.autosave_on_changes = parse_bool(tok, name)?,
            "persistent_client_expiration" => match tok.word() {
                None => self.msg(Error, empty(name)),
                Some(w) => {
                    let bad = || {
                        "Error: Invalid persistent_client_expiration duration in configuration."
                            .to_string()
                    };
                    let (num, unit) = w.split_at(w.len() - 1);
                    let mult: i64 = match unit {
                        b"h" => 3600,
                        b"d" => 86400,
                        b"w" => 86400 * 7,
                        b"m" => 86400 * 30,
                        b"y" => 86400 * 365,
                        _ => return Err(bad()),
                    };
                    let secs = i64::from(lexer::atoi(num)) * mult;
                    if secs <= 0 {
                        return Err(bad());
                    }
                    self.limits.persistent_client_expiration = Some(secs as u64);
                }
            },
            // ---------------- logging
            "log_dest" => self.log_dest(tok)?,
            "log_type" => match tok.word() {
                None => self.msg(Error, empty(name)),
                Some(w) => {
                    self.log_type_set = true;
                    let bit = match w {
                        b"none" => {
                            self.log_types = 0;
                            return Ok(());
                        }
                        b"all" => {
                            self.log_types = LogTypes::ALL.0;
                            return Ok(());
                        }
                        b"information" => LogTypes::INFO,
                        b"notice" => LogTypes::NOTICE,
                        b"warning" => LogTypes::WARNING,
                        b"error" => LogTypes::ERR,
                        b"debug" => LogTypes::DEBUG,
                        b"subscribe" => LogTypes::SUBSCRIBE,
                        b"unsubscribe" => LogTypes::UNSUBSCRIBE,
                        b"internal" => LogTypes::INTERNAL,
                        b"websockets" => LogTypes::WEBSOCKETS,
                        _ => {
                            return Err(format!("Error: Invalid log_type value ({}).", lossy(w)));
                        }
                    };
                    self.log_types |= bit.0;
                }
            },
            "log_timestamp" => self.logging.timestamp = parse_bool(tok, name)?,
            "log_timestamp_format" => {
                let v = parse_string(tok, name, &self.logging.timestamp_format)?;
                self.logging.timestamp_format = Some(v);
            }
            "log_facility" => {
                let v = parse_int(tok, name)?;
                if !(0..=7).contains(&v) {
                    return Err(format!("Error: Invalid log_facility value ({v})."));
                }
                self.logging.facility = Some(v as u8);
            }
            "connection_messages" => self.logging.connection_messages = parse_bool(tok, name)?,
            "websockets_log_level" => {
                parse_int(tok, name)?;
            }
            // ---------------- limits
            "max_inflight_messages" => {
                let v = parse_int(tok, name)?;
                self.limits.max_inflight_messages = if v < 0 || v == 65535 {
                    0
                } else if v > 65535 {
                    return Err("Error: max_inflight_messages must be <= 65535.".into());
                } else {
                    v as u16
                };
            }
            "max_inflight_bytes" => {
                self.limits.max_inflight_bytes = parse_int(tok, name)?.max(0) as u64
            }
            "max_queued_messages" => {
                self.limits.max_queued_messages = parse_int(tok, name)?.max(0) as u32
            }
            "max_queued_bytes" => {
                self.limits.max_queued_bytes = parse_int(tok, name)?.max(0) as u64
            }
            "queue_qos0_messages" => self.limits.queue_qos0_messages = parse_bool(tok, name)?,
            "max_keepalive" => {
                let v = parse_int(tok, name)?;
                if !(0..=65535).contains(&v) {
                    return Err(format!("Error: Invalid max_keepalive value ({v})."));
                }
                self.limits.max_keepalive = v as u16;
            }
            "max_packet_size" => {
                let v = parse_int(tok, name)?;
                if v < 20 {
                    return Err(format!("Error: Invalid max_packet_size value ({v})."));
                }
                self.limits.max_packet_size = v as u32;
            }
            "message_size_limit" => {
                self.msg(Notice, "Note: It is recommended to replace `message_size_limit` with `max_packet_size`.");
                let v = parse_int(tok, name)? as u32;
                if v > 268_435_455 {
                    return Err(format!("Error: Invalid message_size_limit value ({v})."));
                }
                self.limits.message_size_limit = v;
            }
            "retain_available" => self.limits.retain_available = parse_bool(tok, name)?,
            "upgrade_outgoing_qos" => self.limits.upgrade_outgoing_qos = parse_bool(tok, name)?,
            "allow_duplicate_messages" => {
                self.msg(Notice, "The 'allow_duplicate_messages' option is now deprecated and will be removed in a future version. The behaviour will default to true.");
                self.limits.allow_duplicate_messages = parse_bool(tok, name)?;
            }
            "set_tcp_nodelay" => self.limits.set_tcp_nodelay = parse_bool(tok, name)?,
            "memory_limit" => {
                let w = tok.word().ok_or_else(|| empty(name))?;
                let v = lexer::atol(w);
                if v < 0 {
                    return Err(format!("Error: Invalid memory_limit value ({v})."));
                }
                self.limits.memory_limit = v as u64;
            }
            "sys_interval" => {
                let v = parse_int(tok, name)?;
                if !(0..=65535).contains(&v) {
                    return Err(format!("Error: Invalid sys_interval value ({v})."));
                }
                self.sys_interval = v as u32;
            }
            "global_max_clients" => {
                let v = parse_int(tok, name)?;
                self.limits.global_max_clients = u32::try_from(v).ok();
            }
            "global_max_connections" => {
                let v = parse_int(tok, name)?;
                self.limits.global_max_connections = u32::try_from(v).ok();
            }
            "packet_buffer_size" => {
                let v = parse_int(tok, name)?;
                if v > 0 {
                    self.limits.packet_buffer_size = v as u32;
                }
            }
            "websockets_headers_size" => {
                let v = parse_int(tok, name)?;
                if !(0..=65535).contains(&v) {
                    return Err(
                        "Error: Websockets headers size must be between 0 and 65535 inclusive."
                            .into(),
                    );
                }
            }
            "retry_interval" => self.msg(
                Warning,
                "Warning: The retry_interval option is no longer available.",
            ),
            // ---------------- process
            "user" => {
                let v = parse_string(tok, name, &None)?;
                self.user = Some(v);
            }
            "pid_file" => {
                let v = parse_string(tok, name, &self.pid_file)?;
                self.pid_file = Some(v);
            }
            // ---------------- listeners
            "listener" => self.listener(tok)?,
            "port" => {
                self.msg(Notice, "The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead.");
                self.local_only = false;
                let already = self.default.as_ref().is_some_and(|d| d.port_set);
                if already {
                    self.msg(Warning, "Warning: Default listener port specified multiple times. Only the latest will be used.");
                }
                let v = parse_int(tok, name)?;
                if !(1..=65535).contains(&v) {
                    return Err(format!("Error: Invalid port value ({v})."));
                }
                let d = self.default.get_or_insert_with(|| ListenerDraft::new(0));
                d.l.port = v as u16;
                d.port_set = true;
            }
            "bind_address" => {
                self.msg(Notice, "The 'bind_address' option is now deprecated and will be removed in a future version. The behaviour will default to true.");
                self.local_only = false;
                let d = self.default.get_or_insert_with(|| ListenerDraft::new(0));
                let v = parse_string(tok, "default listener bind_address", &d.l.bind_address)?;
                d.l.bind_address = Some(v);
            }
            "protocol" => match tok.word() {
                None => self.msg(Error, empty(name)),
                Some(b"mqtt") => self.cur_listener().l.protocol = super::model::Protocol::Mqtt,
                Some(b"websockets") => {
                    self.cur_listener().l.protocol = super::model::Protocol::Websockets
                }
                Some(b"http_api") => {
                    return Err(refuse(
                        "protocol http_api",
                        "the HTTP API is not supported by culex yet",
                    ));
                }
                Some(w) => return Err(format!("Error: Invalid protocol value ({}).", lossy(w))),
            },
            "socket_domain" => {
                let d = match tok.word() {
                    None => return Err(empty(name)),
                    Some(b"ipv4") => SocketDomain::Ipv4,
                    Some(b"ipv6") => SocketDomain::Ipv6,
                    Some(w) => {
                        return Err(format!(
                            "Error: Invalid socket_domain value \"{}\" in configuration.",
                            lossy(w)
                        ));
                    }
                };
                self.cur_listener().l.socket_domain = Some(d);
            }
            "bind_interface" => {
                let v = parse_string(tok, name, &self.cur_listener().l.bind_interface)?;
                self.cur_listener().l.bind_interface = Some(v);
            }
            "max_connections" => match tok.word() {
                None => self.msg(Error, empty(name)),
                Some(w) => {
                    self.cur_listener().l.max_connections = u32::try_from(lexer::atoi(w)).ok()
                }
            },
            "max_qos" | "maximum_qos" => {
                let v = parse_int(tok, name)?;
                let q = u8::try_from(v).ok().and_then(Qos::from_u8).ok_or_else(|| {
                    "Error: max_qos must be between 0 and 2 inclusive.".to_string()
                })?;
                self.cur_listener().l.max_qos = q;
            }
            "max_topic_alias" | "max_topic_alias_broker" => {
                let w = tok.word().ok_or_else(|| empty(name))?;
                let v = u16::try_from(lexer::atoi(w))
                    .map_err(|_| format!("Error: Invalid {name} value in configuration."))?;
                let l = &mut self.cur_listener().l;
                if name == "max_topic_alias" {
                    l.max_topic_alias = v;
                } else {
                    l.max_topic_alias_broker = v;
                }
            }
            "mount_point" => {
                if self.listeners.is_empty() {
                    return Err("Error: You must use create a listener before using the mount_point option in the configuration file.".into());
                }
                let v = parse_string(tok, name, &self.cur_listener().l.mount_point)?;
                if v.contains(['+', '#']) {
                    return Err(format!(
                        "Error: Invalid mount_point '{v}'. Does it contain a wildcard character?"
                    ));
                }
                self.cur_listener().l.mount_point = Some(v);
            }
            // mosquitto refuses these two once psk_hint is set (not the
            // other way round).
            "cafile" | "certfile" if self.cur_listener().l.tls.psk_hint.is_some() => {
                return Err(
                    "Error: Cannot use both certificate and psk encryption in a single listener."
                        .into(),
                );
            }
            "cafile" | "capath" | "certfile" | "keyfile" | "ciphers" | "ciphers_tls1.3"
            | "crlfile" | "dhparamfile" | "tls_version" | "psk_hint" => {
                let tls = &self.cur_listener().l.tls;
                let slot = match name {
                    "cafile" => &tls.cafile,
                    "capath" => &tls.capath,
                    "certfile" => &tls.certfile,
                    "keyfile" => &tls.keyfile,
                    "ciphers" => &tls.ciphers,
                    "ciphers_tls1.3" => &tls.ciphers_tls13,
                    "crlfile" => &tls.crlfile,
                    "dhparamfile" => &tls.dhparamfile,
                    "psk_hint" => &tls.psk_hint,
                    _ => &tls.tls_version,
                };
                let v = parse_string(tok, name, slot)?;
                let tls = &mut self.cur_listener().l.tls;
                let slot = match name {
                    "cafile" => &mut tls.cafile,
                    "capath" => &mut tls.capath,
                    "certfile" => &mut tls.certfile,
                    "keyfile" => &mut tls.keyfile,
                    "ciphers" => &mut tls.ciphers,
                    "ciphers_tls1.3" => &mut tls.ciphers_tls13,
                    "crlfile" => &mut tls.crlfile,
                    "dhparamfile" => &mut tls.dhparamfile,
                    "psk_hint" => &mut tls.psk_hint,
                    _ => &mut tls.tls_version,
                };
                *slot = Some(v);
            }
            "require_certificate" => {
                self.cur_listener().l.tls.require_certificate = parse_bool(tok, name)?
            }
            "use_identity_as_username" => {
                self.cur_listener().l.tls.use_identity_as_username = parse_bool(tok, name)?
            }
            "use_subject_as_username" => {
                self.cur_listener().l.tls.use_subject_as_username = parse_bool(tok, name)?
            }
            "tls_keyform" => match tok.word() {
                Some(b"pem") => self.cur_listener().l.tls.keyform_engine = false,
                Some(b"engine") => self.cur_listener().l.tls.keyform_engine = true,
                Some(w) => return Err(format!("Error: Invalid tls_keyform value ({}).", lossy(w))),
                None => return Err(empty(name)),
            },
            "tls_engine" => {
                let v = parse_string(tok, name, &self.cur_listener().l.tls.tls_engine)?;
                self.cur_listener().l.tls.tls_engine = Some(v);
            }
            "tls_engine_kpass_sha1" => {
                let v = parse_string(tok, name, &self.cur_listener().l.tls.tls_engine_kpass_sha1)?;
                self.cur_listener().l.tls.tls_engine_kpass_sha1 = Some(v);
            }
            "disable_client_cert_date_checks" => {
                self.cur_listener().l.tls.disable_client_cert_date_checks = parse_bool(tok, name)?
            }
            "use_username_as_clientid" => {
                self.cur_listener().l.use_username_as_clientid = parse_bool(tok, name)?
            }
            "accept_protocol_versions" => {
                if self.cur.is_none() {
                    return Err(format!(
                        "Error: You must define a listener before using the {name} option."
                    ));
                }
                let rest = tok.rest().ok_or_else(|| empty(name))?;
                let mut any = false;
                let mut v: Vec<u8> = Vec::new();
                for w in rest.split(|c| matches!(c, b',' | b' ' | b'\t')) {
                    if w.is_empty() {
                        continue;
                    }
                    any = true;
                    match w {
                        b"3" => v.push(3),
                        b"4" => v.push(4),
                        b"5" => v.push(5),
                        _ => {}
                    }
                }
                if !any {
                    return Err(empty(name));
                }
                v.sort_unstable();
                v.dedup();
                self.cur_listener().l.accept_protocol_versions = Some(v);
            }
            "http_dir" => {
                let v = parse_string(tok, name, &self.cur_listener().l.http_dir)?;
                self.cur_listener().l.http_dir = Some(v);
            }
            "websockets_origin" => {
                let v = parse_string(tok, name, &None)?;
                self.cur_listener().l.websockets_origins.push(v);
            }
            // Everything else in the table is refused before we get here.
            _ => return Err(format!("Error: Unknown configuration variable \"{name}\".")),
        }
        Ok(())
    }

    fn set_sec_file(&mut self, t: SecTarget, name: &str, tok: &mut Tok) -> R<()> {
        let sec = self.sec_mut(t);
        let slot = match name {
            "acl_file" => &mut sec.acl_file,
            "psk_file" => &mut sec.psk_file,
            _ => &mut sec.password_file,
        };
        let v = parse_string(tok, name, slot)?;
        *slot = Some(v);
        Ok(())
    }

    fn plugin_opt(&mut self, name: &str, tok: &mut Tok) -> R<()> {
        let Some(p) = self.plugin else {
            return Err(
                "Error: An auth_opt_ option exists in the config file without an auth_plugin."
                    .into(),
            );
        };
        let prefix = if name.starts_with("auth_opt_") {
            "auth_opt_".len()
        } else {
            "plugin_opt_".len()
        };
        if name.len() < prefix + 3 {
            return Err("Error: Invalid auth_opt_ config option.".into());
        }
        let key = &name[prefix..];
        let value = tok.rest().unwrap_or(b"");
        let start = value
            .iter()
            .position(|&c| c != b' ' && c != b'\t')
            .unwrap_or(value.len());
        if start == value.len() {
            return Err(empty(key));
        }
        let value = std::str::from_utf8(&value[start..])
            .map_err(|_| "Error: Malformed UTF-8 in configuration.".to_string())?
            .to_string();
        let sec = self.sec_mut(p.target);
        match (p.kind, key) {
            (PluginKind::PasswordFile, "password_file") => {
                if sec.password_file.is_some() {
                    return Err(dup("password_file"));
                }
                sec.password_file = Some(value);
            }
            (PluginKind::AclFile, "acl_file") => {
                if sec.acl_file.is_some() {
                    return Err(dup("acl_file"));
                }
                sec.acl_file = Some(value);
            }
            _ => self.warnings.push(format!(
                "Warning: Plugin option '{name}' has no effect in culex."
            )),
        }
        Ok(())
    }

    fn listener(&mut self, tok: &mut Tok) -> R<()> {
        self.local_only = false;
        let w = tok.word().ok_or_else(|| empty("listener"))?;
        let port = lexer::atoi(w);
        if !(0..=65535).contains(&port) {
            return Err(format!("Error: Invalid port value ({port})."));
        }
        let addr = tok.word().filter(|a| a.first() != Some(&b'#'));
        if port == 0 && addr.is_none() {
            return Err("Error: A listener with port 0 must provide a Unix socket path.".into());
        }
        let mut d = ListenerDraft::new(port as u16);
        if let Some(a) = addr {
            if port == 0 {
                d.l.unix_path = Some(Path::new(OsStr::from_bytes(a)).to_path_buf());
            } else {
                d.l.bind_address = Some(lossy(a));
            }
        }
        self.listeners.push(d);
        self.cur = Some(self.listeners.len() - 1);
        Ok(())
    }

    fn log_dest(&mut self, tok: &mut Tok) -> R<()> {
        let w = tok.word().ok_or_else(|| empty("log_dest"))?;
        self.log_dest_set = true;
        let d = match w {
            b"none" => {
                self.log_dests.clear();
                return Ok(());
            }
            b"stdout" => LogDest::Stdout,
            b"stderr" => LogDest::Stderr,
            b"syslog" => LogDest::Syslog,
            b"topic" => LogDest::Topic,
            b"dlt" => LogDest::Dlt,
            b"file" => {
                if self.log_file_seen {
                    return Err("Error: Duplicate \"log_dest file\" value.".into());
                }
                let rest = tok.rest().unwrap_or(b"");
                let start = rest
                    .iter()
                    .position(|&c| c != b' ' && c != b'\t')
                    .unwrap_or(rest.len());
                if start == rest.len() {
                    return Err("Error: Empty \"log_dest file\" value in configuration.".into());
                }
                self.log_file_seen = true;
                LogDest::File(Path::new(OsStr::from_bytes(&rest[start..])).to_path_buf())
            }
            _ => return Err(format!("Error: Invalid log_dest value ({}).", lossy(w))),
        };
        if !self.log_dests.contains(&d) {
            self.log_dests.push(d);
        }
        Ok(())
    }
}

/// Read a config file: mosquitto's open errors (exit 3, no line number).
pub(crate) fn read_config(path: &Path, shown: &str) -> Result<Vec<u8>, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::open(format!(
            "Error: Config file {shown} is a directory."
        )));
    }
    std::fs::read(path)
        .map_err(|_| ConfigError::open(format!("Error: Unable to open config file {shown}.")))
}
