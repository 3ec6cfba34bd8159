//! culex: an MQTT broker that replaces Eclipse Mosquitto 2.0 in place.
//!
//! See ARCHITECTURE.md for the map.
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod bench;
pub mod bridge;
pub mod broker;
pub mod cli;
pub mod codec;
pub mod config;
pub mod logging;
pub mod net;
pub mod persist;
pub mod sys;
