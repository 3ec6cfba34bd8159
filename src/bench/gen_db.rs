//! `culex_bench gen-db`: writes a large `mosquitto.db` (retained messages
//! and durable sessions with a subscription each) for the load-time
//! benchmark in `scripts/bench-db`, through culex's own writer, which
//! mosquitto reads too.

use crate::persist::{DbContents, StoredClient, StoredMessage, StoredSubscription};

/// Retained topics look like Home Assistant / Zigbee2MQTT states.
pub fn topic(i: usize) -> String {
    format!("site{}/zigbee2mqtt/device{}/state", i / 1000, i % 1000)
}

pub fn generate(retained: usize, sessions: usize) -> DbContents {
    let mut db = DbContents::default();
    db.messages.reserve(retained);
    for i in 0..retained {
        let id = i as u64 + 1;
        db.messages.push(StoredMessage {
            store_id: id,
            expiry_time: 0,
            source_id: None,
            source_username: None,
            source_port: 0,
            source_mid: 0,
            topic: topic(i),
            payload: format!(
                "{{\"state\":\"ON\",\"linkquality\":{:03},\"pad\":\"..........\"}}",
                i % 256
            )
            .into_bytes(),
            qos: 1,
            retain: true,
            properties: Default::default(),
        });
        db.retained.push(id);
    }
    for j in 0..sessions {
        let client_id = format!("client{j:06}");
        db.clients.push(StoredClient {
            client_id: client_id.clone(),
            username: None,
            session_expiry_time: 0,
            session_expiry_interval: u32::MAX,
            last_mid: 0,
            listener_port: 0,
            disconnect_time: None,
        });
        db.subscriptions.push(StoredSubscription {
            client_id,
            topic: format!("cmd/client{j:06}/#"),
            qos: 1,
            options: 0,
            identifier: 0,
        });
    }
    db.last_db_id = retained as u64;
    db.shutdown = true;
    db
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_db_reads_back() {
        let db = super::generate(10, 3);
        let bytes = crate::persist::write(&db);
        let (read, warnings) = crate::persist::read(&bytes).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(read.retained.len(), 10);
        assert_eq!(read.clients.len(), 3);
        assert_eq!(read.subscriptions.len(), 3);
    }
}
