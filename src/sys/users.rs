//! User and group look-up without NSS.
//!
//! culex ships as a static binary; `getpwnam`/`initgroups` from a static glibc
//! need NSS modules that do not exist on Alpine (musl), and a static musl
//! build only reads the files anyway. So culex reads `/etc/passwd` and
//! `/etc/group` itself, the way the `files` NSS backend does:
//!
//! - leading blanks are ignored; blank lines and lines starting with `#`
//!   are skipped, as are NIS compat entries (`+…`, `-…`);
//! - a malformed line (too few fields, empty name, non-numeric or `-1`
//!   id) is skipped, never an error: one bad line must not hide the others;
//! - the first entry with a given name wins, as with `getpwnam`;
//! - a `\r` before the newline is tolerated.
//!
//! The root directory is a parameter so tests (and chroot-like setups) can
//! point at their own `etc/passwd`.
//!
//! Deliberate difference from mosquitto: users that exist only in another
//! NSS source (LDAP, sssd, systemd-homed, …) are not found. A service
//! account such as `mosquitto` lives in `/etc/passwd` on Debian and Alpine.

use std::path::{Path, PathBuf};

/// One `/etc/passwd` entry (`name:passwd:uid:gid:gecos:home:shell`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
}

/// One `/etc/group` entry (`name:passwd:gid:member,member,…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// What privilege dropping needs to know about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name found in the passwd file.
    pub name: String,
    pub uid: u32,
    /// Primary group, from the passwd entry.
    pub gid: u32,
    pub home: PathBuf,
    /// Groups that list the user by name in their member field (not
    /// including the primary group unless it lists the user too).
    pub supplementary: Vec<u32>,
}

/// Parses a numeric id as the files backend does: decimal digits only.
/// `u32::MAX` is `(uid_t)-1`, which the set*id calls read as "leave
/// unchanged", so it is rejected like any other malformed value.
fn parse_id(field: &str) -> Option<u32> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match field.parse::<u32>() {
        Ok(id) if id != u32::MAX => Some(id),
        _ => None,
    }
}

/// Yields the lines worth parsing: without `\r`, not blank, not comments,
/// not NIS compat markers.
fn entry_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        // glibc's files backend skips leading blanks before parsing.
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        if line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        Some(line)
    })
}

/// Parses one passwd line; `None` if malformed.
pub fn parse_passwd_line(line: &str) -> Option<Passwd> {
    let fields: Vec<&str> = line.splitn(7, ':').collect();
    if fields.len() != 7 {
        return None;
    }
    let name = fields[0];
    if name.is_empty() {
        return None;
    }
    Some(Passwd {
        name: name.to_string(),
        uid: parse_id(fields[2])?,
        gid: parse_id(fields[3])?,
        home: PathBuf::from(fields[5]),
        shell: fields[6].to_string(),
    })
}

/// Parses one group line; `None` if malformed.
pub fn parse_group_line(line: &str) -> Option<Group> {
    let fields: Vec<&str> = line.splitn(4, ':').collect();
    if fields.len() != 4 {
        return None;
    }
    let name = fields[0];
    if name.is_empty() {
        return None;
    }
    Some(Group {
        name: name.to_string(),
        gid: parse_id(fields[2])?,
        members: fields[3]
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Parses the text of a passwd file, skipping what cannot be parsed.
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    entry_lines(text).filter_map(parse_passwd_line).collect()
}

/// Parses the text of a group file, skipping what cannot be parsed.
pub fn parse_group(text: &str) -> Vec<Group> {
    entry_lines(text).filter_map(parse_group_line).collect()
}

/// The users and groups of one system root.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    users: Vec<Passwd>,
    groups: Vec<Group>,
}

/// Reads a file as text; unreadable or absent reads as empty (as NSS does:
/// the user then simply "does not exist"). Invalid UTF-8 is replaced, which
/// can only affect entries that no UTF-8 config could name anyway.
fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

impl UserDb {
    /// Reads `<root>/etc/passwd` and `<root>/etc/group`. Use `Path::new("/")`
    /// for the real system. Missing files give an empty database.
    pub fn load(root: &Path) -> UserDb {
        let etc = root.join("etc");
        UserDb::from_text(
            &read_lossy(&etc.join("passwd")),
            &read_lossy(&etc.join("group")),
        )
    }

    /// The running system's database (`/etc/passwd`, `/etc/group`).
    pub fn system() -> UserDb {
        UserDb::load(Path::new("/"))
    }

    /// Builds the database from file contents.
    pub fn from_text(passwd: &str, group: &str) -> UserDb {
        UserDb {
            users: parse_passwd(passwd),
            groups: parse_group(group),
        }
    }

    /// The first passwd entry with this name (`getpwnam`).
    pub fn user(&self, name: &str) -> Option<&Passwd> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The first group entry with this name (`getgrnam`).
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Gids of the groups listing `user` by name in their member field, in
    /// file order, without duplicates.
    pub fn supplementary_groups(&self, user: &str) -> Vec<u32> {
        let mut gids = Vec::new();
        for g in &self.groups {
            if g.members.iter().any(|m| m == user) && !gids.contains(&g.gid) {
                gids.push(g.gid);
            }
        }
        gids
    }

    /// The list `initgroups(user, primary)` would install: `primary` first,
    /// then the supplementary groups of `user`, without duplicates.
    pub fn initgroups_list(&self, user: &str, primary: u32) -> Vec<u32> {
        let mut gids = vec![primary];
        for gid in self.supplementary_groups(user) {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
        gids
    }

    /// uid, primary gid, home and supplementary groups of `name`.
    pub fn account(&self, name: &str) -> Option<Account> {
        let u = self.user(name)?;
        Some(Account {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            home: u.home.clone(),
            supplementary: self.supplementary_groups(name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# comment line
root:x:0:0:root:/root:/bin/ash

   # indented comment
mosquitto:x:1883:1883:mosquitto:/var/empty:/sbin/nologin
broken
short:x:1:2:gecos:/home
baduid:x:abc:1::/:/bin/sh
neguid:x:-5:1::/:/bin/sh
minusone:x:4294967295:1::/:/bin/sh
toobig:x:4294967296:1::/:/bin/sh
:x:5:5::/:/bin/sh
+nisuser::::::
-other::::::
crlf:x:7:8::/home/crlf:/bin/sh\r
  indented:x:11:11::/:/bin/sh
colons:x:9:9:g:/h:/bin/sh:extra
mosquitto:x:2000:2000:dup:/dup:/bin/sh
";

    const GROUP: &str = "\
root:x:0:root
# wheel:x:10:mosquitto
wheel:x:10:root,mosquitto
mosquitto:x:1883:
dialout:x:20: mosquitto , other
bad:x:zz:mosquitto
nogid:x::mosquitto
short:x:30
again:x:10:mosquitto
empty:x:40:,,
";

    #[test]
    fn passwd_valid_entries() {
        let db = UserDb::from_text(PASSWD, GROUP);
        let m = db.user("mosquitto").unwrap();
        assert_eq!((m.uid, m.gid), (1883, 1883));
        assert_eq!(m.home, PathBuf::from("/var/empty"));
        assert_eq!(m.shell, "/sbin/nologin");
        assert_eq!(db.user("root").unwrap().uid, 0);
        let crlf = db.user("crlf").unwrap();
        assert_eq!((crlf.uid, crlf.gid), (7, 8));
        assert_eq!(crlf.shell, "/bin/sh");
        // The shell is everything after the sixth colon.
        assert_eq!(db.user("colons").unwrap().shell, "/bin/sh:extra");
    }

    #[test]
    fn passwd_skips_malformed_and_comments() {
        let users = parse_passwd(PASSWD);
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "root",
                "mosquitto",
                "crlf",
                "indented",
                "colons",
                "mosquitto"
            ]
        );
        for bad in [
            "broken", "short", "baduid", "neguid", "minusone", "toobig", "+nisuser", "#",
        ] {
            assert!(UserDb::from_text(PASSWD, "").user(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn first_entry_wins() {
        let db = UserDb::from_text(PASSWD, "");
        assert_eq!(db.user("mosquitto").unwrap().uid, 1883);
    }

    #[test]
    fn group_parsing() {
        let groups = parse_group(GROUP);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "wheel", "mosquitto", "dialout", "again", "empty"]
        );
        assert!(groups[2].members.is_empty());
        assert_eq!(groups[3].members, ["mosquitto", "other"]);
        assert!(groups[5].members.is_empty());
    }

    #[test]
    fn supplementary_groups_by_member_name() {
        let db = UserDb::from_text(PASSWD, GROUP);
        // wheel (10) and dialout (20); "again" repeats gid 10; the commented
        // and malformed lines do not count; the primary group does not list
        // the user, so it is not supplementary.
        assert_eq!(db.supplementary_groups("mosquitto"), [10, 20]);
        assert_eq!(db.supplementary_groups("root"), [0, 10]);
        assert!(db.supplementary_groups("nobody").is_empty());
        assert_eq!(db.initgroups_list("mosquitto", 1883), [1883, 10, 20]);
        assert_eq!(db.initgroups_list("root", 0), [0, 10]);
        let acc = db.account("mosquitto").unwrap();
        assert_eq!(acc.supplementary, [10, 20]);
        assert_eq!(acc.home, PathBuf::from("/var/empty"));
    }

    #[test]
    fn missing_user_and_files() {
        let db = UserDb::from_text(PASSWD, GROUP);
        assert!(db.account("nobody").is_none());
        let dir = tempfile::tempdir().unwrap();
        let empty = UserDb::load(dir.path());
        assert!(empty.user("root").is_none());
        assert!(empty.supplementary_groups("root").is_empty());
    }

    #[test]
    fn load_from_root_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        // Invalid UTF-8 in one line must not spoil the rest.
        let mut group = b"weird\xff:x:50:mosquitto\n".to_vec();
        group.extend_from_slice(GROUP.as_bytes());
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let db = UserDb::load(dir.path());
        assert_eq!(db.user("mosquitto").unwrap().uid, 1883);
        assert_eq!(db.supplementary_groups("mosquitto"), [50, 10, 20]);
        assert_eq!(db.group("wheel").unwrap().gid, 10);
    }

    #[test]
    fn system_database() {
        // Every Linux system this runs on has root as uid 0 in /etc/passwd.
        if Path::new("/etc/passwd").exists() {
            assert_eq!(UserDb::system().user("root").map(|u| u.uid), Some(0));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let junk = "::::::\n:\n\u{0}:x:1:1::/:\n\n\n:::\nä:x:1:1:ü:/ö:/ß\nx:x:99999999999999999999:1::/:\n";
        let db = UserDb::from_text(junk, junk);
        assert_eq!(db.user("ä").unwrap().home, PathBuf::from("/ö"));
        assert!(db.supplementary_groups("").is_empty());
    }
}
