//! Translating the typed configuration into what each layer consumes: the
//! broker core's settings, the sockets to open, the log sink.

use std::time::Duration;

use crate::broker::{self, BrokerSettings, ListenerSettings};
use crate::codec::ProtocolVersion;
use crate::config::bridge::Bridge;
use crate::config::{Config, Listener, LogDest, LogTypes, Logging, Protocol, SocketDomain};
use crate::logging::{LogType, sink};
use crate::net::tls;
use std::path::PathBuf;

use crate::net::websocket::WsOptions;
use crate::net::{ListenSpec, TransportLayer};

use super::StartupError;

/// Refuses configurations that name something the broker does not do yet,
/// where carrying on would change what clients see. (Directives the parser
/// knows to be unimplemented are refused or warned about there.)
pub fn check_supported(config: &Config) -> Result<(), StartupError> {
    for l in &config.listeners {
        if l.protocol == Protocol::HttpApi {
            return Err(StartupError::Unsupported(
                "Error: 'protocol http_api' listeners are not supported by culex yet.".to_string(),
            ));
        }
    }
    Ok(())
}

pub fn broker_settings(config: &Config) -> BrokerSettings {
    let l = &config.limits;
    BrokerSettings {
        max_keepalive: l.max_keepalive,
        max_packet_size: l.max_packet_size,
        message_size_limit: l.message_size_limit,
        max_inflight_messages: l.max_inflight_messages,
        max_inflight_bytes: l.max_inflight_bytes,
        max_queued_messages: l.max_queued_messages,
        max_queued_bytes: l.max_queued_bytes,
        queue_qos0_messages: l.queue_qos0_messages,
        retain_available: l.retain_available,
        upgrade_outgoing_qos: l.upgrade_outgoing_qos,
        check_retain_source: l.check_retain_source,
        allow_duplicate_messages: l.allow_duplicate_messages,
        persistent_client_expiration: l.persistent_client_expiration.map(Duration::from_secs),
        connection_messages: config.logging.connection_messages,
        connect_timeout: Duration::from_secs(10),
        sys_interval: config.sys_interval,
        global_max_clients: l.global_max_clients,
        memory_limit: l.memory_limit,
        heap_probe: Some(crate::sys::heap::in_use),
    }
}

/// The core's view of each listener, with its loaded security.
pub fn listener_settings(
    config: &Config,
    security: Vec<broker::Security>,
) -> Vec<ListenerSettings> {
    config
        .listeners
        .iter()
        .zip(security)
        .map(|(l, security)| ListenerSettings {
            port: l.port,
            max_qos: l.max_qos,
            max_topic_alias: l.max_topic_alias,
            max_topic_alias_broker: l.max_topic_alias_broker,
            mount_point: l.mount_point.clone(),
            use_username_as_clientid: l.use_username_as_clientid,
            // mosquitto reads both only on a listener with an SSL_CTX: on a
            // plain one they do nothing and the password file applies.
            use_identity_as_username: tls::tls_configured(&l.tls) && l.tls.use_identity_as_username,
            use_subject_as_username: tls::tls_configured(&l.tls) && l.tls.use_subject_as_username,
            psk_listener: l.tls.psk_hint.is_some(),
            accept_protocol_versions: l.accept_protocol_versions.as_ref().map(|levels| {
                levels
                    .iter()
                    .filter_map(|lvl| match lvl {
                        3 => Some(ProtocolVersion::V31),
                        4 => Some(ProtocolVersion::V311),
                        5 => Some(ProtocolVersion::V5),
                        _ => None,
                    })
                    .collect()
            }),
            security,
        })
        .collect()
}

pub fn listen_specs(config: &Config) -> Result<Vec<ListenSpec>, StartupError> {
    let mut specs = Vec::with_capacity(config.listeners.len());
    for (i, l) in config.listeners.iter().enumerate() {
        specs.push(ListenSpec {
            listener: i,
            port: l.port,
            bind_address: l.bind_address.clone(),
            ipv4_only: l.socket_domain == Some(SocketDomain::Ipv4),
            ipv6_only: l.socket_domain == Some(SocketDomain::Ipv6),
            bind_interface: l.bind_interface.clone(),
            max_connections: l.max_connections,
            unix_path: l.unix_path.clone(),
            transport: transport(config, l)?,
        });
    }
    Ok(specs)
}

/// The layers a listener's connections get: TLS when certificates are
/// configured, then WebSocket framing for `protocol websockets`.
pub fn transport(config: &Config, l: &Listener) -> Result<Vec<TransportLayer>, StartupError> {
    let mut layers = Vec::new();
    if tls::tls_configured(&l.tls) {
        let psk = match (&l.tls.psk_hint, &l.security.psk_file) {
            (Some(_), Some(path)) => Some(std::sync::Arc::new(super::security::load_psk(path)?)),
            _ => None,
        };
        let ctx =
            tls::server_context(&l.tls, l.port, psk).map_err(|e| StartupError::Tls(e.lines()))?;
        layers.push(TransportLayer::Tls(ctx));
    }
    if l.protocol == Protocol::Websockets {
        layers.push(TransportLayer::WebSocket(WsOptions {
            http_dir: l.http_dir.as_ref().map(PathBuf::from),
            allowed_origins: l.websockets_origins.clone(),
            max_frame: match config.limits.max_packet_size {
                0 => WsOptions::default().max_frame,
                n => n as usize + 16,
            },
        }));
    }
    Ok(layers)
}

/// Each bridge with its TLS client configuration, if it uses TLS: every
/// bridge file is read here, so a broken one stops start-up.
#[allow(clippy::type_complexity)]
pub fn bridges_with_tls(
    config: &Config,
) -> Result<Vec<(Bridge, Option<tls::BridgeTlsContext>)>, StartupError> {
    config
        .bridges
        .iter()
        .map(|b| {
            let tls =
                tls::bridge_client_context(b).map_err(|e| StartupError::BridgeTls(e.lines()))?;
            Ok((b.clone(), tls))
        })
        .collect()
}

/// `-v` forces every type, `-q` none (2.1), else the file's `log_type`.
pub fn log_settings(logging: &Logging, verbose: bool, quiet: bool) -> sink::LogSettings {
    let types = if quiet {
        Default::default()
    } else if verbose {
        sink::all_types()
    } else {
        let pairs = [
            (LogTypes::ERR, LogType::Error),
            (LogTypes::WARNING, LogType::Warning),
            (LogTypes::NOTICE, LogType::Notice),
            (LogTypes::INFO, LogType::Information),
            (LogTypes::DEBUG, LogType::Debug),
            (LogTypes::SUBSCRIBE, LogType::Subscribe),
            (LogTypes::UNSUBSCRIBE, LogType::Unsubscribe),
            (LogTypes::WEBSOCKETS, LogType::Websockets),
            (LogTypes::INTERNAL, LogType::Internal),
        ];
        pairs
            .iter()
            .filter(|(bit, _)| logging.types.contains(*bit))
            .map(|(_, t)| *t)
            .collect()
    };
    let destinations = logging
        .dest
        .iter()
        .map(|d| match d {
            LogDest::Stdout => sink::Destination::Stdout,
            LogDest::Stderr => sink::Destination::Stderr,
            LogDest::File(p) => sink::Destination::File(p.clone()),
            LogDest::Syslog => sink::Destination::Syslog,
            LogDest::Topic => sink::Destination::Topic,
            // The sink warns once that DLT is not supported.
            LogDest::Dlt => sink::Destination::Dlt,
        })
        .collect();
    sink::LogSettings {
        destinations,
        types,
        timestamp: logging.timestamp,
        facility: logging.facility,
        timestamp_format: logging.timestamp_format.clone(),
    }
}
