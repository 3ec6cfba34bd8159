//! Counters behind `$SYS/broker/...`.

#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// All MQTT packets received.
    pub messages_received: u64,
    /// All MQTT packets sent (counted by the network layer).
    pub messages_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub publish_bytes_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_dropped: u64,
    pub publish_bytes_received: u64,
    pub sockets_opened: u64,
    pub connects: u64,
    pub clients_maximum: usize,
    pub clients_expired: u64,
    /// State changes that `autosave_on_changes` counts: retained stores,
    /// queued messages, acknowledged outgoing messages, durable connects,
    /// (un)subscriptions.
    pub changes: u64,
}
