//! mosquitto's log types on top of the `log` facade.
//!
//! mosquitto has more categories than `log` has levels (notice, information,
//! subscribe, unsubscribe, …). Each category is a `log` target; the logger in
//! `logging::sink` maps it back to mosquitto's type for filtering
//! (`log_type`) and for destinations such as `$SYS/broker/log/N`.

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
