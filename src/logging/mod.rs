//! mosquitto's log types on top of the `log` facade.
//!
//! mosquitto has more categories than `log` has levels (notice, information,
//! subscribe, unsubscribe, …). Each category is a `log` target; the logger in
//! `logging::sink` maps it back to mosquitto's type for filtering
//! (`log_type`) and for destinations such as `$SYS/broker/log/N`.
//!
//! Destinations: `sink` (stdout, stderr, file, the `$SYS/broker/log` buffer)
//! and `syslog` (the local `/dev/log` socket).

/// mosquitto's log categories (`log_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogType {
    Error,
    Warning,
    Notice,
    Information,
    Debug,
    Subscribe,
    Unsubscribe,
    Websockets,
    Internal,
}

impl LogType {
    /// Recovers the category from a `log::Record`'s level and target.
    pub fn of(level: log::Level, target: &str) -> LogType {
        match (level, target) {
            (_, "notice") => LogType::Notice,
            (_, "subscribe") => LogType::Subscribe,
            (_, "unsubscribe") => LogType::Unsubscribe,
            (_, "websockets") => LogType::Websockets,
            (_, "internal") => LogType::Internal,
            (log::Level::Error, _) => LogType::Error,
            (log::Level::Warn, _) => LogType::Warning,
            (log::Level::Info, _) => LogType::Information,
            _ => LogType::Debug,
        }
    }

    /// The `$SYS` topic `log_dest topic` publishes this type on; `None`
    /// for debug and internal lines, which mosquitto never publishes.
    pub fn sys_topic(self) -> Option<&'static str> {
        match self {
            LogType::Error => Some("$SYS/broker/log/E"),
            LogType::Warning => Some("$SYS/broker/log/W"),
            LogType::Notice => Some("$SYS/broker/log/N"),
            LogType::Information => Some("$SYS/broker/log/I"),
            LogType::Subscribe => Some("$SYS/broker/log/M/subscribe"),
            LogType::Unsubscribe => Some("$SYS/broker/log/M/unsubscribe"),
            LogType::Websockets => Some("$SYS/broker/log/WS"),
            LogType::Debug | LogType::Internal => None,
        }
    }
}

/// Logs at mosquitto's NOTICE level (connections, disconnections).
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => { log::info!(target: "notice", $($arg)*) };
}

/// Logs a SUBSCRIBE line (`<client> <qos> <filter>`).
#[macro_export]
macro_rules! log_subscribe {
    ($($arg:tt)*) => { log::info!(target: "subscribe", $($arg)*) };
}

/// Logs an UNSUBSCRIBE line (`<client> <filter>`).
#[macro_export]
macro_rules! log_unsubscribe {
    ($($arg:tt)*) => { log::info!(target: "unsubscribe", $($arg)*) };
}

pub mod sink;
pub mod syslog;

pub use sink::{take_topic_lines, topic_lines_pending};

#[cfg(test)]
mod tests {
    use super::LogType;

    #[test]
    fn sys_topics() {
        assert_eq!(LogType::Error.sys_topic(), Some("$SYS/broker/log/E"));
        assert_eq!(LogType::Warning.sys_topic(), Some("$SYS/broker/log/W"));
        assert_eq!(LogType::Notice.sys_topic(), Some("$SYS/broker/log/N"));
        assert_eq!(LogType::Information.sys_topic(), Some("$SYS/broker/log/I"));
        assert_eq!(
            LogType::Subscribe.sys_topic(),
            Some("$SYS/broker/log/M/subscribe")
        );
        assert_eq!(
            LogType::Unsubscribe.sys_topic(),
            Some("$SYS/broker/log/M/unsubscribe")
        );
        assert_eq!(LogType::Websockets.sys_topic(), Some("$SYS/broker/log/WS"));
        assert_eq!(LogType::Debug.sys_topic(), None);
        assert_eq!(LogType::Internal.sys_topic(), None);
    }
}
