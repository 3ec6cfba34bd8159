//! Listener assembly (§2), local-only mode and per_listener_settings
//! resolution (§3): turns the parser state into a [`Config`].

use std::path::PathBuf;

use super::error::{MsgLevel, ParseMessage};
use super::model::{Config, Listener, LogDest, LogTypes, Security};
use super::parser::{ListenerDraft, Parser, SecDraft};

/// The three warnings of local-only mode, in order.
pub const LOCAL_ONLY_WARNINGS: [&str; 3] = [
    "Starting in local only mode. Connections will only be possible from clients running on this machine.",
    "Create a configuration file which defines a listener to allow remote access.",
    "For more details see https://mosquitto.org/documentation/authentication-methods/",
];

fn resolve(d: &SecDraft, anon_default: bool, clientid_prefixes: &Option<String>) -> Security {
    Security {
        allow_anonymous: d.allow_anonymous.unwrap_or(anon_default),
        password_file: d.password_file.as_ref().map(PathBuf::from),
        acl_file: d.acl_file.as_ref().map(PathBuf::from),
        psk_file: d.psk_file.as_ref().map(PathBuf::from),
        allow_zero_length_clientid: d.allow_zero_length_clientid,
        auto_id_prefix: d
            .auto_id_prefix
            .clone()
            .unwrap_or_else(|| "auto-".to_string()),
        clientid_prefixes: clientid_prefixes.clone(),
    }
}

fn finish_listener(d: &ListenerDraft, pls: bool, global: &Security, p: &Parser) -> Listener {
    let mut l = d.l.clone();
    l.security = if pls {
        resolve(&d.sec, false, &p.clientid_prefixes)
    } else {
        global.clone()
    };
    if let Some(a) = d.listener_allow_anonymous {
        l.security.allow_anonymous = a;
    }
    if let Some(pfx) = &d.listener_auto_id_prefix {
        l.security.auto_id_prefix = pfx.clone();
    }
    l
}

/// Loopback listeners of local-only mode: 127.0.0.1 and ::1 for each port.
pub(crate) fn local_listeners(template: &Listener, ports: &[u16]) -> Vec<Listener> {
    let mut v = Vec::new();
    for &port in ports {
        for addr in ["127.0.0.1", "::1"] {
            let mut l = template.clone();
            l.port = port;
            l.bind_address = Some(addr.to_string());
            v.push(l);
        }
    }
    v
}

pub(crate) fn build(p: Parser) -> Config {
    let pls = p.pls;
    let local_only = p.local_only;
    // allow_anonymous: false unless local-only mode, where it defaults to
    // true but an explicit `false` is honoured (2.0.21+).
    let global = resolve(&p.global, local_only, &p.clientid_prefixes);

    let mut listeners = Vec::new();
    let mut messages = p.messages.clone();
    if local_only {
        let mut t = Listener::new(1883);
        t.is_default = true;
        t.security = match (&p.default, pls) {
            (Some(d), true) => resolve(&d.sec, true, &p.clientid_prefixes),
            _ => global.clone(),
        };
        listeners = local_listeners(&t, &[1883]);
        for w in LOCAL_ONLY_WARNINGS {
            messages.push(ParseMessage::new(MsgLevel::Warning, w));
        }
    } else {
        for d in &p.listeners {
            listeners.push(finish_listener(d, pls, &global, &p));
        }
        if let Some(d) = &p.default
            && d.default_is_used()
        {
            let mut l = finish_listener(d, pls, &global, &p);
            if !d.port_set {
                l.port = 1883;
            }
            l.is_default = true;
            // Options the default listener does not copy (conf.c).
            l.accept_protocol_versions = None;
            l.http_dir = None;
            l.websockets_origins.clear();
            listeners.push(l);
        }
    }

    let mut logging = p.logging.clone();
    if p.log_dest_set {
        logging.dest = p.log_dests.clone();
    }
    if p.log_type_set {
        logging.types = LogTypes(p.log_types);
    }
    let mut persistence = p.persistence.clone();
    if let Some(f) = &p.persistence_file {
        persistence.file = f.clone();
    }
    persistence.location = p.persistence_location.as_ref().map(PathBuf::from);

    Config {
        per_listener_settings: pls,
        listeners,
        local_only,
        security: global,
        limits: p.limits.clone(),
        persistence,
        logging,
        user: p.user.clone().unwrap_or_else(|| "mosquitto".to_string()),
        pid_file: p.pid_file.as_ref().map(PathBuf::from),
        sys_interval: p.sys_interval,
        enable_control_api: p.enable_control_api,
        messages,
        warnings: p.warnings,
        bridges: Vec::new(),
    }
}

impl Config {
    /// Log file path, if `log_dest file` is configured.
    pub fn log_file(&self) -> Option<&PathBuf> {
        self.logging.dest.iter().find_map(|d| match d {
            LogDest::File(p) => Some(p),
            _ => None,
        })
    }
}
