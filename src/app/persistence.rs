//! When `mosquitto.db` is read and written: restored at start-up, saved on
//! SIGUSR1, at shutdown, and every `autosave_interval` seconds (or after that
//! many changes with `autosave_on_changes`), always atomically.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::broker::Broker;
use crate::config::Persistence;
use crate::persist;

use super::StartupError;

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Saver {
    settings: Persistence,
    last_save: Instant,
    changes_at_last_save: u64,
}

impl Saver {
    pub fn new(settings: Persistence, now: Instant) -> Saver {
        Saver {
            settings,
            last_save: now,
            changes_at_last_save: 0,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.settings.path()
    }

    /// Restores the database into a fresh broker. A missing file is a fresh
    /// start; a file that cannot be read is a start-up error, and the file
    /// is left exactly as it is.
    pub fn restore(&mut self, broker: &mut Broker) -> Result<(), StartupError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let path = self.path();
        if !path.exists() {
            return Ok(());
        }
        let (db, warnings) = persist::load(&path)
            .map_err(|e| StartupError::Database(format!("Error: Couldn't open database: {e}")))?;
        for w in warnings {
            log::warn!("{w}");
        }
        let (retained, sessions) = (db.retained.len(), db.clients.len());
        for w in broker.restore(db, Instant::now(), unix_now()) {
            log::warn!("{w}");
        }
        log::info!(
            "Restored {retained} retained messages and {sessions} sessions from {}.",
            path.display()
        );
        self.changes_at_last_save = broker.stats.changes;
        Ok(())
    }

    /// Writes the database now. A failure is logged; the previous file
    /// stays and the broker carries on.
    pub fn save(&mut self, broker: &Broker) {
        if !self.settings.enabled {
            return;
        }
        let path = self.path();
        log::info!("Saving in-memory database to {}.", path.display());
        let db = broker.snapshot(Instant::now(), unix_now());
        let bytes = persist::write(&db);
        if let Err(e) = persist::save_atomic(&path, &bytes) {
            log::error!(
                "Error saving in-memory database, unable to write {}: {}.",
                path.display(),
                crate::net::listen::strerror(&e)
            );
        }
        self.last_save = Instant::now();
        self.changes_at_last_save = broker.stats.changes;
    }

    /// When the next time-based autosave is due.
    pub fn deadline(&self) -> Option<Instant> {
        let s = &self.settings;
        (s.enabled && !s.autosave_on_changes && s.autosave_interval > 0)
            .then(|| self.last_save + Duration::from_secs(u64::from(s.autosave_interval)))
    }

    /// Saves if an autosave is due.
    pub fn maybe_save(&mut self, broker: &Broker, now: Instant) {
        let s = &self.settings;
        if !s.enabled || s.autosave_interval == 0 {
            return;
        }
        let due = if s.autosave_on_changes {
            broker
                .stats
                .changes
                .saturating_sub(self.changes_at_last_save)
                >= u64::from(s.autosave_interval)
        } else {
            self.deadline().is_some_and(|d| d <= now)
        };
        if due {
            self.save(broker);
        }
    }

    pub fn set_settings(&mut self, settings: Persistence) {
        self.settings = settings;
    }
}
