//! CONNECT: protocol checks, client id, authentication, session take-over and
//! resumption, CONNACK. The order of checks follows mosquitto's
//! `handle__connect`, because clients can observe which refusal wins.

use std::rc::Rc;
use std::time::Instant;

use crate::codec::{
    Connack, Connect, Disconnect, Message, OutgoingPublish, Packet, Properties, ProtocolVersion,
    Qos, TopicName, reason,
};
use crate::notice;

use super::connections::{CloseReason, ConnId, PeerIdentity};
use super::session::{NEVER, OutState, PendingWill, Presence, Session};
use super::{Action, Broker, Outbound};

/// How a CONNECT is refused: the 3.x return code and the 5.0 reason code.
struct Refusal {
    v3: u8,
    v5: u8,
    reason: CloseReason,
}

const NOT_AUTHORISED: Refusal = Refusal {
    v3: reason::v3::NOT_AUTHORIZED,
    v5: reason::v5::NOT_AUTHORIZED,
    reason: CloseReason::NotAuthorised,
};

impl Broker {
    pub(super) fn handle_connect(
        &mut self,
        conn: ConnId,
        connect: Connect,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let version = connect.version;
        c.version = Some(version);
        c.is_bridge |= connect.bridge;
        let listener_id = c.listener;
        // culex's own bridge: trusted, and never timed out.
        let own_bridge = listener_id == self.bridge_listener;
        let Some(listener) = self.listeners.get(listener_id).cloned() else {
            return;
        };
        self.stats.connects += 1;

        if let Some(accepted) = &listener.accept_protocol_versions
            && !accepted.contains(&version)
        {
            let refusal = Refusal {
                v3: reason::v3::UNACCEPTABLE_PROTOCOL_VERSION,
                v5: reason::v5::UNSUPPORTED_PROTOCOL_VERSION,
                reason: CloseReason::ProtocolError,
            };
            return self.refuse(conn, version, refusal, now, out);
        }

        // Client identifier [MQTT-3.1.3-6..8].
        let mut client_id = connect.client_id.clone();
        let mut assigned = false;
        if client_id.is_empty() {
            let allowed = match version {
                ProtocolVersion::V31 => false,
                ProtocolVersion::V311 => connect.clean_start,
                ProtocolVersion::V5 => true,
            } && listener.security.allow_zero_length_clientid;
            if !allowed {
                let refusal = Refusal {
                    v3: reason::v3::IDENTIFIER_REJECTED,
                    v5: reason::v5::UNSPECIFIED_ERROR,
                    reason: CloseReason::ProtocolError,
                };
                return self.refuse(conn, version, refusal, now, out);
            }
            client_id = self.generate_client_id(&listener.security.auto_id_prefix);
            assigned = true;
        }
        if listener.use_username_as_clientid {
            match &connect.username {
                Some(u) => client_id = u.clone(),
                None => return self.refuse(conn, version, NOT_AUTHORISED, now, out),
            }
        }
        if let Some(prefix) = &listener.security.clientid_prefixes
            && !client_id.starts_with(prefix.as_str())
        {
            return self.refuse(conn, version, NOT_AUTHORISED, now, out);
        }

        // Keep alive against max_keepalive (2.0.12+ behaviour).
        let max_ka = self.settings.max_keepalive;
        let mut keep_alive = connect.keep_alive;
        let mut server_keep_alive = None;
        if max_ka > 0 && !own_bridge && (keep_alive == 0 || keep_alive > max_ka) {
            if version.is_v5() {
                keep_alive = max_ka;
                server_keep_alive = Some(max_ka);
            } else {
                let refusal = Refusal {
                    v3: reason::v3::IDENTIFIER_REJECTED,
                    v5: reason::v5::UNSPECIFIED_ERROR,
                    reason: CloseReason::ProtocolError,
                };
                return self.refuse(conn, version, refusal, now, out);
            }
        }

        // Will checks.
        if let Some(will) = &connect.will {
            if will.qos > listener.max_qos {
                let refusal = Refusal {
                    v3: 0,
                    v5: reason::v5::QOS_NOT_SUPPORTED,
                    reason: CloseReason::ProtocolError,
                };
                return self.refuse_or_close(conn, version, refusal, now, out);
            }
            if will.retain && !self.settings.retain_available {
                let refusal = Refusal {
                    v3: 0,
                    v5: reason::v5::RETAIN_NOT_SUPPORTED,
                    reason: CloseReason::ProtocolError,
                };
                return self.refuse_or_close(conn, version, refusal, now, out);
            }
            let limit = self.settings.message_size_limit;
            if limit > 0 && will.payload.len() > limit as usize {
                let refusal = Refusal {
                    v3: reason::v3::NOT_AUTHORIZED,
                    v5: reason::v5::PACKET_TOO_LARGE,
                    reason: CloseReason::ProtocolError,
                };
                return self.refuse(conn, version, refusal, now, out);
            }
        }

        // Enhanced authentication needs a plugin; mosquitto without one
        // answers any authentication method with 0x8C.
        if connect.properties.authentication_method.is_some() {
            let refusal = Refusal {
                v3: reason::v3::NOT_AUTHORIZED,
                v5: reason::v5::BAD_AUTHENTICATION_METHOD,
                reason: CloseReason::NotAuthorised,
            };
            return self.refuse(conn, version, refusal, now, out);
        }

        // With use_identity_as_username / use_subject_as_username the
        // certificate names the user and the password file is skipped; no
        // usable certificate is "bad username or password" (3.x 4, 5.0 0x86).
        let mut connect = connect;
        if listener.use_identity_as_username || listener.use_subject_as_username {
            let identity = self.conns.get(&conn).and_then(|c| c.identity().cloned());
            // On a PSK listener only the PSK identity counts (mosquitto
            // sets it as the username in its PSK callback).
            let name = identity.and_then(|id| match id {
                PeerIdentity::Psk { identity } => {
                    listener.use_identity_as_username.then_some(identity)
                }
                PeerIdentity::Certificate { .. } if listener.psk_listener => None,
                PeerIdentity::Certificate {
                    common_name,
                    subject,
                } => {
                    if listener.use_identity_as_username {
                        common_name
                    } else {
                        subject
                    }
                }
            });
            match name {
                Some(name) => {
                    connect.username = Some(name);
                    connect.password = None;
                }
                None => {
                    let refusal = Refusal {
                        v3: reason::v3::BAD_USERNAME_OR_PASSWORD,
                        v5: reason::v5::BAD_USERNAME_OR_PASSWORD,
                        reason: CloseReason::NotAuthorised,
                    };
                    return self.refuse(conn, version, refusal, now, out);
                }
            }
        } else if !authenticate(
            &listener.security,
            connect.username.as_deref(),
            connect.password.as_deref(),
        ) {
            return self.refuse(conn, version, NOT_AUTHORISED, now, out);
        }

        // Everything checked: take over or resume the session.
        let client_id: Rc<str> = client_id.into();
        let expiry = match version {
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
            _ if connect.clean_start => 0,
            _ => NEVER,
        };
        let mut session_present = false;
        if let Some(&old_key) = self.by_client_id.get(&client_id) {
            if let Some(old_conn) = self.sessions.get(old_key).and_then(|s| s.conn()) {
                if self.settings.connection_messages {
                    log::error!("Client {client_id} already connected, closing old connection.");
                }
                // 2.0.15+ (and 2.1) tell a v5 client why it lost the socket.
                if self.version_of(old_conn) == Some(ProtocolVersion::V5) {
                    self.send(
                        out,
                        old_conn,
                        Packet::Disconnect(Disconnect {
                            reason: reason::v5::SESSION_TAKEN_OVER,
                            properties: Properties::default(),
                        }),
                    );
                }
                // The old connection's will goes out unless the session
                // continues [MQTT-3.1.4-3]. Keep it out of drop_connection's
                // expiry handling by detaching the session first.
                let continues = !connect.clean_start
                    && self
                        .sessions
                        .get(old_key)
                        .is_some_and(|s| s.expiry_interval > 0);
                if let Some(s) = self.sessions.get_mut(old_key) {
                    s.presence = Presence::Offline(None);
                }
                if let Some(old) = self.conns.get_mut(&old_conn) {
                    old.session = None;
                }
                self.drop_connection(old_conn, CloseReason::TakenOver, now, out);
                out.push(Action::Close(old_conn));
                if !continues {
                    self.publish_will(old_key, now, out);
                }
            }
            let durable = self
                .sessions
                .get(old_key)
                .is_some_and(|s| s.expiry_interval > 0);
            if connect.clean_start || !durable {
                // A delayed will still pending is dropped, not sent: the
                // client came back within the delay (mosquitto 2.0.11,
                // 07-will-delay-recover, even with clean start).
                self.destroy_session(old_key, now, out);
            } else {
                session_present = true;
            }
        }
        let key = match self.by_client_id.get(&client_id) {
            Some(&k) if session_present => k,
            _ => {
                // 2.1's global_max_clients counts sessions, connected or
                // not; a new one beyond it is told the server is busy.
                if self
                    .settings
                    .global_max_clients
                    .is_some_and(|max| self.sessions.len() >= max as usize)
                {
                    let refusal = Refusal {
                        v3: reason::v3::SERVER_UNAVAILABLE,
                        v5: reason::v5::SERVER_BUSY,
                        reason: CloseReason::ProtocolError,
                    };
                    return self.refuse(conn, version, refusal, now, out);
                }
                let k = self.sessions.insert(Session::new(
                    client_id.clone(),
                    conn_listener(self, conn),
                    version,
                ));
                self.by_client_id.insert(client_id.clone(), k);
                self.stats.clients_maximum = self.stats.clients_maximum.max(self.sessions.len());
                k
            }
        };
        let serial = self.next_serial();
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        s.presence = Presence::Online(conn);
        s.serial = serial;
        s.listener = listener_id;
        s.version = version;
        s.username = connect.username.as_deref().map(Box::from);
        s.expiry_interval = expiry;
        s.dropping = false;
        s.receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        s.max_packet_size = connect.properties.maximum_packet_size.unwrap_or(0);
        // A resumed session cancels a pending (delayed) will [MQTT-3.1.3-9];
        // the new CONNECT's will replaces it.
        s.will = connect.will.as_ref().map(|w| {
            Box::new(PendingWill {
                message: Rc::new(Message::new(
                    match &listener.mount_point {
                        Some(mp) => TopicName::new(format!("{mp}{}", w.topic))
                            .unwrap_or_else(|_| w.topic.clone()),
                        None => w.topic.clone(),
                    },
                    w.payload.clone(),
                    w.qos,
                    w.retain,
                    will_message_properties(&w.properties).into(),
                    None,
                )),
                delay: w.properties.will_delay_interval.unwrap_or(0),
            })
        });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(key);
            c.keep_alive = keep_alive;
            c.set_alias_limit(match version {
                ProtocolVersion::V5 => connect
                    .properties
                    .topic_alias_maximum
                    .unwrap_or(0)
                    .min(listener.max_topic_alias_broker),
                _ => 0,
            });
        }

        let mut props = Properties::default();
        if version.is_v5() {
            if listener.max_topic_alias > 0 {
                props.topic_alias_maximum = Some(listener.max_topic_alias);
            }
            if self.settings.max_inflight_messages > 0 {
                props.receive_maximum = Some(self.settings.max_inflight_messages);
            }
            if assigned {
                props.assigned_client_identifier = Some(client_id.to_string());
            }
            props.server_keep_alive = server_keep_alive;
            if self.settings.max_packet_size > 0 {
                props.maximum_packet_size = Some(self.settings.max_packet_size);
            }
            if listener.max_qos < Qos::ExactlyOnce {
                props.maximum_qos = Some(listener.max_qos.as_u8());
            }
            if !self.settings.retain_available {
                props.retain_available = Some(0);
            }
        }
        let connack = Packet::Connack(Connack {
            session_present,
            code: 0,
            properties: props,
        });
        // Not even a CONNACK may exceed the client's Maximum Packet Size
        // [MQTT-3.1.2-24]; mosquitto then closes without one.
        if let Some(max) = connect.properties.maximum_packet_size {
            let mut probe = Vec::new();
            crate::codec::encode(&connack, version, &mut probe);
            if probe.len() > max as usize {
                if self.drop_connection(conn, CloseReason::ProtocolError, now, out) {
                    out.push(Action::Close(conn));
                }
                return;
            }
        }
        if self.settings.connection_messages && !own_bridge {
            let ip = self
                .conns
                .get(&conn)
                .map(|c| c.peer_text())
                .unwrap_or_default();
            let p = match version {
                ProtocolVersion::V31 => 1,
                ProtocolVersion::V311 => 2,
                ProtocolVersion::V5 => 5,
            };
            let c = u8::from(connect.clean_start);
            let kind = if connect.bridge { "bridge" } else { "client" };
            match &connect.username {
                Some(u) => notice!(
                    "New {kind} connected from {ip} as {client_id} (p{p}, c{c}, k{keep_alive}, u'{u}')."
                ),
                None => notice!(
                    "New {kind} connected from {ip} as {client_id} (p{p}, c{c}, k{keep_alive})."
                ),
            }
        }
        // mosquitto's order: the connection line, the will, then CONNACK.
        if !own_bridge {
            match &connect.will {
                Some(w) => {
                    log::debug!(
                        "Will message specified ({} bytes) (r{}, q{}).",
                        w.payload.len(),
                        u8::from(w.retain),
                        w.qos.as_u8()
                    );
                    log::debug!("\t{}", w.topic);
                }
                None => log::debug!("No will message specified."),
            }
        }
        self.send(out, conn, connack);
        self.arm_keep_alive(conn, now);
        if session_present {
            self.resend_inflight(conn, key, out);
        }
        self.drain_queue(key, out);
    }

    /// Re-sends unacknowledged messages after a session resumes: PUBLISH with
    /// DUP set, or PUBREL for those already PUBREC'd [MQTT-4.4.0-1].
    fn resend_inflight(&mut self, conn: ConnId, key: usize, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get(key) else {
            return;
        };
        for i in s.inflight() {
            match i.state {
                OutState::AwaitPubcomp => out.push(Action::Send(
                    conn,
                    Outbound::Ack(super::AckKind::Pubrel, i.packet_id, 0),
                )),
                _ => out.push(Action::Send(
                    conn,
                    Outbound::Publish(OutgoingPublish {
                        message: i.delivery.message.clone(),
                        qos: i.delivery.qos,
                        retain: i.delivery.retain,
                        dup: true,
                        packet_id: Some(i.packet_id),
                        subscription_id: i.delivery.subscription_id,
                        message_expiry: i.delivery.message.remaining_expiry(self.now),
                        topic_alias: None,
                        topic_alias_only: false,
                        topic_skip: 0,
                    }),
                )),
            }
        }
    }

    /// Sends CONNACK with the refusal code and closes.
    fn refuse(
        &mut self,
        conn: ConnId,
        version: ProtocolVersion,
        r: Refusal,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let code = if version.is_v5() { r.v5 } else { r.v3 };
        // mosquitto announces a reduced maximum QoS even when refusing.
        let mut properties = Properties::default();
        let max_qos = self
            .listeners
            .get(conn_listener(self, conn))
            .map_or(Qos::ExactlyOnce, |l| l.max_qos);
        if version.is_v5() && max_qos < Qos::ExactlyOnce {
            properties.maximum_qos = Some(max_qos.as_u8());
        }
        self.send(
            out,
            conn,
            Packet::Connack(Connack {
                session_present: false,
                code,
                properties,
            }),
        );
        // The connection has no session yet: the log line names the client
        // id of the CONNECT (`connecting_id`), as 2.0.13+ does.
        if self.drop_connection(conn, r.reason, now, out) {
            out.push(Action::Close(conn));
        }
    }

    /// For refusals where mosquitto answers 3.x clients with no CONNACK.
    fn refuse_or_close(
        &mut self,
        conn: ConnId,
        version: ProtocolVersion,
        r: Refusal,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if version.is_v5() {
            self.refuse(conn, version, r, now, out);
        } else if self.drop_connection(conn, r.reason, now, out) {
            out.push(Action::Close(conn));
        }
    }

    /// mosquitto's generated ids: prefix + 16 random bytes formatted like an
    /// upper-case UUID.
    fn generate_client_id(&mut self, prefix: &str) -> String {
        let a = self.random_u64();
        let b = self.random_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        let mut id = String::with_capacity(prefix.len() + 36);
        id.push_str(prefix);
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                id.push('-');
            }
            id.push_str(&format!("{byte:02X}"));
        }
        id
    }
}

fn conn_listener(b: &Broker, conn: ConnId) -> usize {
    b.conns.get(&conn).map(|c| c.listener).unwrap_or(0)
}

/// The will's properties that travel with the will message (the will delay
/// is the broker's business, not the subscribers').
fn will_message_properties(p: &Properties) -> Properties {
    Properties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        received_order: p.received_order.clone(),
        ..Properties::default()
    }
}

/// mosquitto's rules (auth-files.md §3): with a password file every client
/// that sends a username is checked against it, and `allow_anonymous` only
/// decides for clients without one. With no password file, `allow_anonymous
/// false` refuses everyone.
pub(super) fn authenticate(
    security: &super::Security,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> bool {
    match (username, &security.passwords) {
        (Some(user), Some(passwords)) => passwords.check(user, password),
        (Some(_), None) => security.allow_anonymous,
        (None, _) => security.allow_anonymous,
    }
}
