//! What the event loop does on SIGHUP, SIGUSR1 and SIGRTMIN.
//!
//! Reload is transactional: the config and every password/ACL file are read
//! first; only if all of it is valid does the broker switch. A broken file
//! is logged and the previous rules stay in force (mosquitto 2.0 can end up
//! with no password check there; 2.1 exits; culex does neither).

use crate::broker::Broker;
use crate::cli::CliOptions;
use crate::config::Config;
use crate::logging::sink;
use crate::net::Control;

use super::persistence::Saver;
use super::{read_config, security, settings};

pub struct Reloader {
    options: CliOptions,
    config: Config,
    saver: Saver,
    /// New transport stacks (TLS certificates re-read) from the last reload.
    transports: Option<Vec<(usize, Vec<crate::net::TransportLayer>)>>,
}

impl Reloader {
    pub fn new(options: CliOptions, config: Config, saver: Saver) -> Reloader {
        Reloader {
            options,
            config,
            saver,
            transports: None,
        }
    }

    fn try_reload(&mut self, broker: &mut Broker) -> Result<(), super::StartupError> {
        let new = if self.options.config_file.is_some() {
            read_config(&self.options)?
        } else {
            self.config.clone()
        };
        let security = security::load(&new, security::Strictness::RefuseBadFile)?;
        if security.len() != broker_listener_count(broker) {
            return Err(super::StartupError::Unsupported(
                "Error: It is not currently possible to add/remove listeners when reloading the config file."
                    .to_string(),
            ));
        }
        // Certificates are re-read (Let's Encrypt renewals); a listener
        // whose new files are broken keeps serving the old ones.
        let mut transports = Vec::new();
        for (i, l) in new.listeners.iter().enumerate() {
            match settings::transport(&new, l) {
                Ok(t) => transports.push((i, t)),
                Err(e) => {
                    for line in e.lines() {
                        log::error!("{line}");
                    }
                    log::error!(
                        "Error: Keeping the previous TLS certificate for the listener on port {}.",
                        l.port
                    );
                }
            }
        }
        self.transports = Some(transports);
        broker.set_security(security);
        sink::configure(settings::log_settings(
            &new.logging,
            self.options.verbose,
            self.options.quiet,
        ));
        self.saver.set_settings(new.persistence.clone());
        self.config = new;
        Ok(())
    }
}

fn broker_listener_count(broker: &Broker) -> usize {
    (0..).take_while(|&i| broker.listener(i).is_some()).count()
}

impl Control for Reloader {
    fn reload(&mut self, broker: &mut Broker) {
        if let Err(e) = self.try_reload(broker) {
            for line in e.lines() {
                log::error!("{line}");
            }
            log::error!(
                "Error: Reload failed; keeping the previous configuration and security files."
            );
        }
    }

    fn save(&mut self, broker: &Broker) {
        self.saver.save(broker);
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        self.saver.deadline()
    }

    fn after_turn(&mut self, broker: &Broker, now: std::time::Instant) {
        self.saver.maybe_save(broker, now);
    }

    fn shutdown(&mut self, broker: &Broker) {
        // mosquitto's order: terminating, then the final save.
        let _ = crate::sys::notify::notify(crate::sys::notify::STOPPING);
        log::info!("{} terminating", crate::cli::version_line());
        self.saver.save(broker);
    }

    fn take_transports(&mut self) -> Option<Vec<(usize, Vec<crate::net::TransportLayer>)>> {
        self.transports.take()
    }

    fn reopen_logs(&mut self) {
        sink::reopen();
    }
}
