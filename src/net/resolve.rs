//! Bind addresses without NSS.
//!
//! culex ships as one statically linked executable (`scripts/build-static`),
//! and `getaddrinfo` in a static glibc binary needs the shared NSS modules
//! of the glibc it was built with at run time, which the Alpine-based
//! `eclipse-mosquitto` image does not have. So a `listener`/`bind_address`
//! host is resolved here, in this order:
//!
//! 1. a numeric IPv4 or IPv6 address, as written;
//! 2. every address `/etc/hosts` lists for the name (case-insensitive, in
//!    file order, duplicates dropped);
//! 3. `localhost` (and `*.localhost`, as systemd's resolver does) when
//!    `/etc/hosts` does not name it: `127.0.0.1` and `::1`.
//!
//! Anything else is an error, `Error: Unable to resolve bind address
//! <host>: not found in /etc/hosts.` DNS is never asked: a broker binding
//! to an address should not depend on a name server at start-up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Where host names are looked up.
pub const HOSTS_FILE: &str = "/etc/hosts";

/// Why a host did not resolve (the text after `bind address <host>: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not found in {HOSTS_FILE}")
    }
}

/// Resolves `host` against [`HOSTS_FILE`]. An unreadable or missing hosts
/// file counts as empty (an empty root, a minimal container).
pub fn resolve(host: &str) -> Result<Vec<IpAddr>, NotFound> {
    resolve_in(host, Path::new(HOSTS_FILE))
}

/// [`resolve`] against another hosts file (tests).
pub fn resolve_in(host: &str, hosts_file: &Path) -> Result<Vec<IpAddr>, NotFound> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let text = std::fs::read(hosts_file).unwrap_or_default();
    resolve_with(host, &String::from_utf8_lossy(&text))
}

/// [`resolve`] with the hosts file's text given.
pub fn resolve_with(host: &str, hosts: &str) -> Result<Vec<IpAddr>, NotFound> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut found = lookup_hosts(host, hosts);
    if found.is_empty() && is_localhost(host) {
        found = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
    }
    if found.is_empty() {
        Err(NotFound)
    } else {
        Ok(found)
    }
}

/// The addresses `hosts` (in `/etc/hosts` format: address, then names;
/// `#` starts a comment) lists for `name`.
fn lookup_hosts(name: &str, hosts: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else {
            continue;
        };
        if !fields.any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        // glibc skips lines whose address does not parse; so do we. A
        // link-local IPv6 address with a zone (`fe80::1%eth0`) cannot be
        // bound without the interface index, so it is skipped too.
        if let Ok(ip) = addr.parse::<IpAddr>()
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "127.0.0.1\tlocalhost\n\
        127.0.1.1\tpi.example.org pi\n\
        \n\
        # The following lines are desirable for IPv6 capable hosts\n\
        ::1     localhost ip6-localhost ip6-loopback\n\
        ff02::1 ip6-allnodes\n\
        192.168.1.10  broker Broker.lan   # the LAN address\n\
        not-an-address broker\n\
        192.168.1.10  broker\n";

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn numeric_addresses_need_no_file() {
        assert_eq!(resolve_with("10.0.0.1", ""), Ok(ips(&["10.0.0.1"])));
        assert_eq!(resolve_with("::", ""), Ok(ips(&["::"])));
        assert_eq!(resolve_with("fe80::1", ""), Ok(ips(&["fe80::1"])));
        let missing = Path::new("/nonexistent/culex/hosts");
        assert_eq!(resolve_in("0.0.0.0", missing), Ok(ips(&["0.0.0.0"])));
    }

    #[test]
    fn names_from_the_hosts_file_in_file_order() {
        assert_eq!(
            resolve_with("localhost", DEBIAN),
            Ok(ips(&["127.0.0.1", "::1"]))
        );
        assert_eq!(resolve_with("pi", DEBIAN), Ok(ips(&["127.0.1.1"])));
        assert_eq!(resolve_with("ip6-loopback", DEBIAN), Ok(ips(&["::1"])));
        // Case-insensitive; comments and bad addresses ignored; no repeats.
        assert_eq!(resolve_with("BROKER", DEBIAN), Ok(ips(&["192.168.1.10"])));
        assert_eq!(
            resolve_with("broker.lan", DEBIAN),
            Ok(ips(&["192.168.1.10"]))
        );
        assert_eq!(resolve_with("lan", DEBIAN), Err(NotFound));
        assert_eq!(resolve_with("desirable", DEBIAN), Err(NotFound));
    }

    #[test]
    fn localhost_without_a_hosts_entry() {
        let both = ips(&["127.0.0.1", "::1"]);
        assert_eq!(resolve_with("localhost", ""), Ok(both.clone()));
        assert_eq!(resolve_with("LocalHost.", ""), Ok(both.clone()));
        assert_eq!(resolve_with("mqtt.localhost", ""), Ok(both));
        assert_eq!(resolve_with("localhostx", ""), Err(NotFound));
        // An entry in the file wins over the built-in answer.
        assert_eq!(
            resolve_with("localhost", "127.0.0.2 localhost\n"),
            Ok(ips(&["127.0.0.2"]))
        );
    }

    #[test]
    fn unknown_names_are_an_error_never_a_dns_query() {
        assert_eq!(resolve_with("example.com", DEBIAN), Err(NotFound));
        assert_eq!(resolve_with("", DEBIAN), Err(NotFound));
        assert_eq!(NotFound.to_string(), "not found in /etc/hosts");
    }

    #[test]
    fn reads_the_file_and_treats_a_missing_one_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, DEBIAN).unwrap();
        assert_eq!(resolve_in("pi", &path), Ok(ips(&["127.0.1.1"])));
        let missing = dir.path().join("none");
        assert_eq!(resolve_in("pi", &missing), Err(NotFound));
        assert_eq!(
            resolve_in("localhost", &missing),
            Ok(ips(&["127.0.0.1", "::1"]))
        );
    }
}
