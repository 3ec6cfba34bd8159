//! Loads the password and ACL files each listener uses and adapts them to
//! the broker core's `PasswordCheck`/`AclCheck` traits. Files shared by
//! several listeners (always, with `per_listener_settings false`) are read
//! once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::auth::{self, AclFile, PasswordFile, VerifyCache};
use crate::broker::{self, Access, AclCheck, PasswordCheck};
use crate::config::{self, Config};

use super::StartupError;

/// A password file plus the cache that keeps argon2id logins cheap.
pub struct Passwords {
    file: PasswordFile,
    cache: RefCell<VerifyCache>,
}

impl PasswordCheck for Passwords {
    fn check(&self, username: &str, password: Option<&[u8]>) -> bool {
        match self.cache.try_borrow_mut() {
            Ok(mut cache) => self
                .file
                .authenticate_cached(&mut cache, username, password),
            Err(_) => self.file.authenticate(username, password),
        }
    }

    fn is_expensive(&self, username: &str, password: Option<&[u8]>) -> bool {
        match self.cache.try_borrow() {
            Ok(cache) => self.file.is_expensive(&cache, username, password),
            Err(_) => true,
        }
    }
}

pub struct Acl(AclFile);

impl AclCheck for Acl {
    fn check(&self, client_id: &str, username: Option<&str>, topic: &str, access: Access) -> bool {
        let access = match access {
            Access::Read => auth::Access::Read,
            Access::Write => auth::Access::Write,
        };
        self.0.check(client_id, username, topic, access)
    }
}

fn log_lines(lines: &[auth::LogLine]) {
    for l in lines {
        match l.level {
            auth::Level::Error => log::error!("{}", l.text),
            auth::Level::Warning => log::warn!("{}", l.text),
            auth::Level::Notice => crate::notice!("{}", l.text),
            auth::Level::Info => log::info!("{}", l.text),
        }
    }
}

/// A listener's `psk_file`, read afresh (start-up and SIGHUP). Its
/// warnings are logged; an unreadable file or a key that is not hex stops
/// start-up as in mosquitto.
pub fn load_psk(path: &std::path::Path) -> Result<auth::psk_file::PskKeys, StartupError> {
    let (keys, lines) = auth::psk_file::PskKeys::load(path).map_err(StartupError::PskFile)?;
    log_lines(&lines);
    Ok(keys)
}

/// How strictly to read password files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Start-up: mosquitto 2.0's rule, an unusable line is logged and
    /// dropped, the rest is used.
    DropBadLines,
    /// SIGHUP: a file with any unusable line is refused whole, so a
    /// half-written or garbage file never replaces working credentials.
    RefuseBadFile,
}

/// The broker-side security of every listener, in listener order.
pub fn load(
    config: &Config,
    strictness: Strictness,
) -> Result<Vec<broker::Security>, StartupError> {
    let mut passwords: HashMap<PathBuf, Rc<Passwords>> = HashMap::new();
    let mut acls: HashMap<PathBuf, Rc<Acl>> = HashMap::new();
    let mut out = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        // mosquitto reads every psk_file at start-up, used or not, and
        // refuses a broken one; the keys themselves go to the TLS context.
        if let Some(path) = &listener.security.psk_file
            && listener.tls.psk_hint.is_none()
        {
            load_psk(path)?;
        }
        out.push(security_for(
            &listener.security,
            strictness,
            &mut passwords,
            &mut acls,
        )?);
    }
    Ok(out)
}

fn security_for(
    s: &config::Security,
    strictness: Strictness,
    passwords: &mut HashMap<PathBuf, Rc<Passwords>>,
    acls: &mut HashMap<PathBuf, Rc<Acl>>,
) -> Result<broker::Security, StartupError> {
    let pw: Option<Rc<dyn PasswordCheck>> = match &s.password_file {
        None => None,
        Some(path) => Some(match passwords.get(path) {
            Some(p) => p.clone(),
            None => {
                let (file, lines) = PasswordFile::load(path).map_err(StartupError::PasswordFile)?;
                log_lines(&lines);
                let broken = lines.iter().any(|l| l.level == auth::Level::Error);
                if broken && strictness == Strictness::RefuseBadFile {
                    return Err(StartupError::Unsupported(format!(
                        "Error: Password file \"{}\" has unusable lines; keeping the previous one.",
                        path.display()
                    )));
                }
                let p = Rc::new(Passwords {
                    file,
                    cache: RefCell::new(VerifyCache::new(1024)),
                });
                passwords.insert(path.clone(), p.clone());
                p
            }
        }),
    };
    let acl: Option<Rc<dyn AclCheck>> = match &s.acl_file {
        None => None,
        Some(path) => Some(match acls.get(path) {
            Some(a) => a.clone(),
            None => {
                let (file, lines) =
                    AclFile::load(path).map_err(|e| StartupError::AclFile(path.clone(), e))?;
                log_lines(&lines);
                let a = Rc::new(Acl(file));
                acls.insert(path.clone(), a.clone());
                a
            }
        }),
    };
    Ok(broker::Security {
        allow_anonymous: s.allow_anonymous,
        passwords: pw,
        acl,
        allow_zero_length_clientid: s.allow_zero_length_clientid,
        auto_id_prefix: s.auto_id_prefix.clone(),
        clientid_prefixes: s.clientid_prefixes.clone(),
    })
}
