//! MQTT 5.0 properties as one typed struct.
//!
//! Every property the standard defines has a field; the decoder rejects a
//! property that appears twice (except user properties and subscription
//! identifiers) or on a packet that may not carry it, so the broker never sees
//! an invalid combination. For 3.x packets this is always `Properties::default()`.

/// Property identifiers (MQTT 5.0 section 2.2.2.2).
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    /// Several on a PUBLISH to a client, at most one on SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Vec<u8>>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    /// In the order received; forwarded unchanged [MQTT-3.3.2-17].
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
    /// The order in which a PUBLISH's or will's message properties arrived,
    /// so they are forwarded in that order, as mosquitto does.
    pub received_order: ReceivedOrder,
}

/// The identifiers of a message's forwarded properties (payload format,
/// content type, response topic, correlation data, user properties) in the
/// order they arrived. Not part of the value: two property sets that differ
/// only in order are equal.
#[derive(Debug, Clone, Default)]
pub struct ReceivedOrder(Vec<u8>);

impl ReceivedOrder {
    /// Whether `prop` is among the ones whose arrival order is kept.
    pub fn keeps(prop: u8) -> bool {
        matches!(
            prop,
            id::PAYLOAD_FORMAT_INDICATOR
                | id::CONTENT_TYPE
                | id::RESPONSE_TOPIC
                | id::CORRELATION_DATA
                | id::USER_PROPERTY
        )
    }

    pub fn push(&mut self, prop: u8) {
        if Self::keeps(prop) {
            self.0.push(prop);
        }
    }

    pub fn ids(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for ReceivedOrder {
    fn eq(&self, _: &ReceivedOrder) -> bool {
        true
    }
}

impl Eq for ReceivedOrder {}

impl Properties {
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// No properties at all: what most messages (every 3.x one) carry.
pub const EMPTY_PROPERTIES: Properties = Properties {
    payload_format_indicator: None,
    message_expiry_interval: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    subscription_identifiers: Vec::new(),
    session_expiry_interval: None,
    assigned_client_identifier: None,
    server_keep_alive: None,
    authentication_method: None,
    authentication_data: None,
    request_problem_information: None,
    will_delay_interval: None,
    request_response_information: None,
    response_information: None,
    server_reference: None,
    reason_string: None,
    receive_maximum: None,
    topic_alias_maximum: None,
    topic_alias: None,
    maximum_qos: None,
    retain_available: None,
    user_properties: Vec::new(),
    maximum_packet_size: None,
    wildcard_subscription_available: None,
    subscription_identifier_available: None,
    shared_subscription_available: None,
    received_order: ReceivedOrder(Vec::new()),
};

/// A message's properties, boxed only when there are any: `Properties` is
/// 328 bytes, and a broker holding a million retained 3.1.1 messages should
/// not pay that a million times. Reads go through `Deref`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties(Option<Box<Properties>>);

impl MessageProperties {
    pub fn new(p: Properties) -> MessageProperties {
        if p.is_empty() {
            MessageProperties(None)
        } else {
            MessageProperties(Some(Box::new(p)))
        }
    }

    /// Heap bytes they hold (the box and its strings), roughly.
    pub fn heap_size(&self) -> usize {
        let Some(p) = &self.0 else {
            return 0;
        };
        let strings = [&p.content_type, &p.response_topic]
            .into_iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum::<usize>();
        let users = p
            .user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len() + std::mem::size_of::<(String, String)>())
            .sum::<usize>();
        std::mem::size_of::<Properties>()
            + strings
            + p.correlation_data.as_ref().map_or(0, Vec::len)
            + users
    }

    /// An owned copy to modify.
    pub fn to_properties(&self) -> Properties {
        (**self).clone()
    }
}

impl std::ops::Deref for MessageProperties {
    type Target = Properties;
    fn deref(&self) -> &Properties {
        static EMPTY: Properties = EMPTY_PROPERTIES;
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl From<Properties> for MessageProperties {
    fn from(p: Properties) -> MessageProperties {
        MessageProperties::new(p)
    }
}
