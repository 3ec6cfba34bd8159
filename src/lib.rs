//! culex: an MQTT broker that replaces Eclipse Mosquitto 2.0 in place.
//!
//! See ARCHITECTURE.md for the map.
#![deny(unsafe_code)]

/// The culex version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The mosquitto release whose behaviour culex follows and whose version it
/// reports where tools parse one (`$SYS/broker/version`, `--version`).
pub const MOSQUITTO_COMPAT: &str = "2.0.11";

pub mod app;
pub mod auth;
pub mod bench;
pub mod bridge;
pub mod broker;
pub mod cli;
pub mod codec;
pub mod config;
pub mod logging;
pub mod memory;
pub mod net;
pub mod persist;
pub mod sys;
