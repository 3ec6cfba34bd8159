//! Host names over DNS without NSS, for bridge addresses.
//!
//! culex ships as one statically linked executable (`scripts/build-static`),
//! where glibc's `getaddrinfo` cannot load the NSS modules it needs (see
//! [`super::resolve`]). A bridge's `address` is usually a DNS name, so this
//! is a small stub resolver of its own. A bridge first tries a numeric
//! address, `/etc/hosts` and `localhost`, exactly as for bind addresses
//! ([`super::resolve::resolve`]); then DNS over UDP, driven by the event
//! loop ([`super::dns_lookup::Lookup`]): the A and AAAA queries to each
//! `nameserver` of `/etc/resolv.conf` in turn, `attempts` rounds, within
//! about five seconds in all. IPv4 addresses come first.
//!
//! Deliberately left out, as a bridge connects to one well-known host:
//!
//! * `search` and `domain` are ignored (as is `ndots`): the name is asked
//!   for as written, so a bare `broker` that `/etc/hosts` does not list is
//!   normally not found. Write the full name.
//! * No TCP fallback: a truncated answer (TC bit) is used for the records
//!   that did arrive, and is an error only when none did. Without EDNS0 a
//!   UDP answer holds about 30 addresses, far more than a broker has.
//! * `options` other than `timeout:` and `attempts:` (`rotate`,
//!   `single-request`, ...), the `RES_OPTIONS` variable, `sortlist`, a
//!   nameserver's interface-name zone (`fe80::1%eth0`; a numeric zone
//!   works), DNSSEC and caching: each lookup asks again.
//!
//! The packet code is sans-IO ([`ResolvConf::parse`], [`Query`]) and never
//! panics on what a file or the network hands it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// Where the name servers are listed.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The DNS port; `resolv.conf` has no way to name another.
pub const DNS_PORT: u16 = 53;

/// glibc's `MAXNS`: later `nameserver` lines are ignored.
pub const MAX_NAMESERVERS: usize = 3;

/// Per-try timeout without `options timeout:` (glibc waits 5 s, which
/// would spend the whole budget on one dead server).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Rounds over the name servers without `options attempts:` (glibc's).
pub const DEFAULT_ATTEMPTS: u32 = 2;

/// glibc's caps on `timeout:` (`RES_MAXRETRANS`) and `attempts:`
/// (`RES_MAXRETRY`).
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// A whole [`lookup`] gives up after this long, whatever `resolv.conf`
/// says: a bridge retries on its own schedule, and a stuck lookup would
/// hold up its reconnect logic.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(5);

/// RFC 1035 limits: 63 bytes per label, 255 bytes for a name on the wire,
/// which is 253 characters written with dots and no trailing dot.
const MAX_LABEL: usize = 63;
const MAX_NAME_TEXT: usize = 253;
const MAX_NAME_WIRE: usize = 255;

/// Compression pointers followed per name. A name has at most 127 labels,
/// so more jumps than that can only be a loop.
const MAX_JUMPS: usize = 127;

const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
/// Header flag bits (second 16-bit word).
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const RCODE_MASK: u16 = 0x000f;
const RCODE_NXDOMAIN: u8 = 3;

/// Large enough for any UDP answer; one without EDNS0 is at most 512
/// bytes, but a server may send more and `recv` silently cuts datagrams.
pub(super) const RECV_BUFFER: usize = 4096;

/// The parts of `/etc/resolv.conf` this resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most [`MAX_NAMESERVERS`], port 53 unless built by hand (tests).
    pub nameservers: Vec<SocketAddr>,
    /// How long one query waits for its answer.
    pub timeout: Duration,
    /// Rounds over `nameservers`.
    pub attempts: u32,
}

impl Default for ResolvConf {
    /// What glibc uses without a file: the name server on this machine.
    fn default() -> ResolvConf {
        ResolvConf {
            nameservers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, DNS_PORT))],
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

impl ResolvConf {
    /// Reads [`RESOLV_CONF`]; a missing or unreadable file counts as empty,
    /// as it does for glibc.
    pub fn load() -> ResolvConf {
        let text = std::fs::read(RESOLV_CONF).unwrap_or_default();
        ResolvConf::parse(&String::from_utf8_lossy(&text))
    }

    /// Parses `resolv.conf` text. Lines that do not parse are skipped, as
    /// glibc skips them; so this cannot fail.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            ..ResolvConf::default()
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let Some(keyword) = fields.next() else {
                continue;
            };
            match keyword {
                "nameserver" => {
                    // glibc ignores whatever follows the address.
                    if let Some(server) = fields.next().and_then(parse_nameserver)
                        && conf.nameservers.len() < MAX_NAMESERVERS
                    {
                        conf.nameservers.push(server);
                    }
                }
                "options" => fields.for_each(|option| conf.apply_option(option)),
                // `search`, `domain`, `sortlist`, comments (`#`, `;`): not
                // used (see the module comment).
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers = ResolvConf::default().nameservers;
        }
        conf
    }

    /// One `options` word; unknown ones and bad numbers are ignored.
    fn apply_option(&mut self, option: &str) {
        if let Some(n) = option.strip_prefix("timeout:") {
            if let Ok(secs) = n.parse::<u64>() {
                // `timeout:0` would never wait for an answer.
                self.timeout = Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS));
            }
        } else if let Some(n) = option.strip_prefix("attempts:")
            && let Ok(attempts) = n.parse::<u32>()
        {
            self.attempts = attempts.clamp(1, MAX_ATTEMPTS);
        }
    }
}

/// A `nameserver` address: IPv4, or IPv6 with an optional numeric zone.
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    let (addr, zone) = text.split_once('%')?;
    let ip = addr.parse::<Ipv6Addr>().ok()?;
    // Interface names need `if_nametoindex`; a numeric zone does not.
    let scope = zone.parse::<u32>().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope)))
}

/// The record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// An IPv4 address.
    A,
    /// An IPv6 address.
    Aaaa,
}

impl QType {
    pub fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
        }
    }
}

/// Why a host name cannot be put into a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// `a..b`, or a leading dot.
    EmptyLabel,
    LabelTooLong,
    TooLong,
    /// Anything but letters, digits, `-` and `_`: IDNs must be given in
    /// their `xn--` form, and spaces or `:` mean a typo, not a host.
    BadCharacter,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "empty host name",
            NameError::EmptyLabel => "empty label in host name",
            NameError::LabelTooLong => "label longer than 63 characters in host name",
            NameError::TooLong => "host name longer than 253 characters",
            NameError::BadCharacter => "invalid character in host name",
        })
    }
}

/// Why a response does not answer a [`Query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Ends inside the header, a name or a record.
    TooShort,
    /// Another query's answer (or a forgery): to be ignored.
    WrongId,
    /// The QR bit is clear: a query, not a response.
    NotAResponse,
    /// The question is not the one asked: to be ignored.
    WrongQuestion,
    /// A reserved label type, a forward or looping compression pointer, or
    /// a name longer than 255 bytes.
    BadName,
    /// An A or AAAA record whose data is not 4 or 16 bytes.
    BadRecord,
    /// The TC bit is set and no address arrived (no TCP fallback).
    Truncated,
    /// RCODE 3: the name does not exist.
    NxDomain,
    /// Any other non-zero RCODE.
    Rcode(u8),
}

impl ResponseError {
    /// Errors that say the datagram was not the answer to this query, so
    /// the wait for the real one goes on: a late answer to an earlier try,
    /// or an off-path forgery guessing ids.
    pub fn is_stray(self) -> bool {
        matches!(
            self,
            ResponseError::WrongId | ResponseError::NotAResponse | ResponseError::WrongQuestion
        )
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::TooShort => f.write_str("response too short"),
            ResponseError::WrongId => f.write_str("response id does not match the query"),
            ResponseError::NotAResponse => f.write_str("not a response"),
            ResponseError::WrongQuestion => f.write_str("response to another question"),
            ResponseError::BadName => f.write_str("malformed name in response"),
            ResponseError::BadRecord => f.write_str("malformed address record"),
            ResponseError::Truncated => f.write_str("truncated response"),
            ResponseError::NxDomain => f.write_str("no such host"),
            ResponseError::Rcode(code) => write!(f, "server error {}", rcode_name(*code)),
        }
    }
}

/// RCODE mnemonics (RFC 1035 4.1.1) for log lines.
fn rcode_name(code: u8) -> String {
    match code {
        1 => "FORMERR".to_string(),
        2 => "SERVFAIL".to_string(),
        3 => "NXDOMAIN".to_string(),
        4 => "NOTIMP".to_string(),
        5 => "REFUSED".to_string(),
        other => format!("RCODE {other}"),
    }
}

/// One question for one name and type, and the checks its answer must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    id: u16,
    /// The name in wire form: length-prefixed labels, then a 0.
    qname: Vec<u8>,
    qtype: QType,
}

impl Query {
    /// A query for `host` (one trailing dot allowed) with this id, which
    /// should be random ([`random_id`]): with the random source port it is
    /// what keeps off-path forgeries out.
    pub fn new(id: u16, host: &str, qtype: QType) -> Result<Query, NameError> {
        Ok(Query {
            id,
            qname: encode_name(host)?,
            qtype,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn qtype(&self) -> QType {
        self.qtype
    }

    /// The datagram: header with RD set and one question, class IN.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.qname.len() + 4);
        for word in [self.id, FLAG_RD, 1, 0, 0, 0] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.qname);
        out.extend_from_slice(&self.qtype.code().to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out
    }

    /// The A and AAAA addresses in the answer section of `msg`, in order
    /// and without repeats. Any A or AAAA record counts, whatever its owner
    /// name: a recursive server puts the CNAME chain before the addresses
    /// of its end, and the id and question checks stand for the rest.
    pub fn parse_response(&self, msg: &[u8]) -> Result<Vec<IpAddr>, ResponseError> {
        let header = Header::parse(msg)?;
        if header.id != self.id {
            return Err(ResponseError::WrongId);
        }
        if header.flags & FLAG_QR == 0 {
            return Err(ResponseError::NotAResponse);
        }
        let rcode = (header.flags & RCODE_MASK) as u8;
        // Servers refusing a query may leave out the question; an answer
        // must carry exactly ours.
        if header.qdcount == 0 && rcode != 0 {
            return Err(rcode_error(rcode));
        }
        if header.qdcount != 1 {
            return Err(ResponseError::WrongQuestion);
        }
        let pos = self.check_question(msg, HEADER_LEN)?;
        if rcode != 0 {
            return Err(rcode_error(rcode));
        }
        let truncated = header.flags & FLAG_TC != 0;
        let addrs = read_answers(msg, pos, header.ancount, truncated)?;
        if truncated && addrs.is_empty() {
            return Err(ResponseError::Truncated);
        }
        Ok(addrs)
    }

    /// Checks the question at `pos` is ours (names compared ignoring ASCII
    /// case, as servers may echo another case); returns the offset past it.
    fn check_question(&self, msg: &[u8], pos: usize) -> Result<usize, ResponseError> {
        let (name, pos) = read_name(msg, pos)?;
        let qtype = read_u16(msg, pos)?;
        let qclass = read_u16(msg, pos + 2)?;
        if !name.eq_ignore_ascii_case(&self.qname)
            || qtype != self.qtype.code()
            || qclass != CLASS_IN
        {
            return Err(ResponseError::WrongQuestion);
        }
        Ok(pos + 4)
    }
}

fn rcode_error(rcode: u8) -> ResponseError {
    if rcode == RCODE_NXDOMAIN {
        ResponseError::NxDomain
    } else {
        ResponseError::Rcode(rcode)
    }
}

/// The header words a response is checked by.
struct Header {
    id: u16,
    flags: u16,
    qdcount: u16,
    ancount: u16,
}

impl Header {
    fn parse(msg: &[u8]) -> Result<Header, ResponseError> {
        Ok(Header {
            id: read_u16(msg, 0)?,
            flags: read_u16(msg, 2)?,
            qdcount: read_u16(msg, 4)?,
            ancount: read_u16(msg, 6)?,
        })
    }
}

/// `host` in wire form, checked against RFC 1035's limits.
fn encode_name(host: &str) -> Result<Vec<u8>, NameError> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_TEXT {
        return Err(NameError::TooLong);
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::BadCharacter);
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(out)
}

fn read_u16(msg: &[u8], pos: usize) -> Result<u16, ResponseError> {
    match msg.get(pos..pos.saturating_add(2)) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(ResponseError::TooShort),
    }
}

/// Reads the possibly compressed name at `pos`: its uncompressed wire form
/// and the offset just past it in `msg` (past the first pointer, if any).
fn read_name(msg: &[u8], pos: usize) -> Result<(Vec<u8>, usize), ResponseError> {
    let mut name = Vec::new();
    let mut at = pos;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at).ok_or(ResponseError::TooShort)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                name.push(0);
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let len = usize::from(len);
                let label = msg
                    .get(at + 1..at + 1 + len)
                    .ok_or(ResponseError::TooShort)?;
                // Room must stay for the final 0.
                if name.len() + 1 + len >= MAX_NAME_WIRE {
                    return Err(ResponseError::BadName);
                }
                name.push(len as u8);
                name.extend_from_slice(label);
                at += 1 + len;
            }
            0xc0 => {
                let target = usize::from(read_u16(msg, at)? & 0x3fff);
                end.get_or_insert(at + 2);
                jumps += 1;
                // A pointer names an earlier occurrence (RFC 1035 4.1.4);
                // the jump bound ends loops that go back and forth.
                if target >= at || jumps > MAX_JUMPS {
                    return Err(ResponseError::BadName);
                }
                at = target;
            }
            // 0x40 (extended label types, RFC 6891) and 0x80 (reserved).
            _ => return Err(ResponseError::BadName),
        }
    }
}

/// The addresses of the `count` records from `pos` on. In a truncated
/// response the records that arrived whole are kept.
fn read_answers(
    msg: &[u8],
    mut pos: usize,
    count: u16,
    truncated: bool,
) -> Result<Vec<IpAddr>, ResponseError> {
    let mut addrs = Vec::new();
    for _ in 0..count {
        match read_record(msg, pos) {
            Ok((addr, next)) => {
                if let Some(addr) = addr
                    && !addrs.contains(&addr)
                {
                    addrs.push(addr);
                }
                pos = next;
            }
            Err(_) if truncated => break,
            Err(e) => return Err(e),
        }
    }
    Ok(addrs)
}

/// One resource record: its address if it is an A or AAAA record of class
/// IN, and the offset past it.
fn read_record(msg: &[u8], pos: usize) -> Result<(Option<IpAddr>, usize), ResponseError> {
    let (_, pos) = read_name(msg, pos)?;
    let rtype = read_u16(msg, pos)?;
    let class = read_u16(msg, pos + 2)?;
    // 4 bytes of TTL, then the data length.
    let rdlength = usize::from(read_u16(msg, pos + 8)?);
    let start = pos + 10;
    let data = msg
        .get(start..start + rdlength)
        .ok_or(ResponseError::TooShort)?;
    let next = start + rdlength;
    if class != CLASS_IN {
        return Ok((None, next));
    }
    let addr = if rtype == QType::A.code() {
        let octets: [u8; 4] = data.try_into().map_err(|_| ResponseError::BadRecord)?;
        Some(IpAddr::from(octets))
    } else if rtype == QType::Aaaa.code() {
        let octets: [u8; 16] = data.try_into().map_err(|_| ResponseError::BadRecord)?;
        Some(IpAddr::from(octets))
    } else {
        None
    };
    Ok((addr, next))
}

/// A 16-bit query id nobody off the path can predict.
pub fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    // std keys each RandomState from the OS's random source (stepped per
    // instance), so SipHash under it is unpredictable without a file or
    // syscall of our own; the clock only varies the input.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish() as u16
}

/// Why [`lookup`] found no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    InvalidName(NameError),
    /// A name server said the name does not exist (NXDOMAIN).
    NotFound,
    /// The name exists but has no A or AAAA record.
    NoAddress,
    /// No name server answered in time.
    Timeout,
    /// The last name server answered with an error or nonsense.
    BadResponse(ResponseError),
    /// The last name server could not be reached (no route, port closed).
    Io(io::ErrorKind),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::InvalidName(e) => e.fmt(f),
            LookupError::NotFound => f.write_str("host not found"),
            LookupError::NoAddress => f.write_str("host has no address"),
            LookupError::Timeout => write!(f, "no answer from the name servers in {RESOLV_CONF}"),
            LookupError::BadResponse(e) => write!(f, "name server: {e}"),
            LookupError::Io(kind) => write!(f, "name server unreachable: {kind}"),
        }
    }
}

impl From<ResponseError> for LookupError {
    fn from(e: ResponseError) -> LookupError {
        match e {
            ResponseError::NxDomain => LookupError::NotFound,
            e => LookupError::BadResponse(e),
        }
    }
}

impl From<io::Error> for LookupError {
    fn from(e: io::Error) -> LookupError {
        LookupError::Io(e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::super::resolve;
    use super::*;
    use std::net::UdpSocket;
    use std::thread::JoinHandle;
    use std::time::Instant;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ns(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), DNS_PORT)
    }

    // --- resolv.conf ---

    #[test]
    fn resolv_conf_nameservers_in_order_at_most_three() {
        let conf = ResolvConf::parse(
            "# generated by NetworkManager\n\
             ; old-style comment\n\
             search lan example.org\n\
             domain lan\n\
             nameserver 192.168.1.1\n\
             nameserver\t2001:4860:4860::8888   # Google\n\
             nameserver not-an-address\n\
             nameserver\n\
             nameserver 9.9.9.9\n\
             nameserver 1.1.1.1\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![ns("192.168.1.1"), ns("2001:4860:4860::8888"), ns("9.9.9.9")]
        );
        assert_eq!(conf.timeout, DEFAULT_TIMEOUT);
        assert_eq!(conf.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn resolv_conf_without_nameservers_asks_this_machine() {
        let local = vec![ns("127.0.0.1")];
        assert_eq!(ResolvConf::parse("").nameservers, local);
        assert_eq!(
            ResolvConf::parse("search lan\nnameserver bogus\n").nameservers,
            local
        );
        assert_eq!(ResolvConf::default().nameservers, local);
    }

    #[test]
    fn resolv_conf_ipv6_zones() {
        let conf = ResolvConf::parse("nameserver fe80::1%2\nnameserver fe80::2%eth0\n");
        let want = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2));
        // An interface name would need if_nametoindex: skipped.
        assert_eq!(conf.nameservers, vec![want]);
    }

    #[test]
    fn resolv_conf_options() {
        let conf = ResolvConf::parse("options ndots:2 timeout:1 rotate attempts:3\n");
        assert_eq!(conf.timeout, Duration::from_secs(1));
        assert_eq!(conf.attempts, 3);
        // Later lines win; glibc's caps apply; bad numbers are ignored.
        let conf = ResolvConf::parse(
            "options timeout:1 attempts:3\noptions timeout:99 attempts:0\noptions timeout:x attempts:-1\n",
        );
        assert_eq!(conf.timeout, Duration::from_secs(30));
        assert_eq!(conf.attempts, 1);
        let conf = ResolvConf::parse("options timeout:0 attempts:9\n");
        assert_eq!(conf.timeout, Duration::from_secs(1));
        assert_eq!(conf.attempts, 5);
    }

    // --- queries ---

    #[test]
    fn query_bytes() {
        let q = Query::new(0x1234, "mqtt.example.org", QType::A).unwrap();
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x04mqtt\x07example\x03org\x00");
        want.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(q.to_bytes(), want);
        assert_eq!(q.id(), 0x1234);
        // A trailing dot (a rooted name) is the same question.
        let rooted = Query::new(0x1234, "mqtt.example.org.", QType::A).unwrap();
        assert_eq!(rooted.to_bytes(), want);
        let q6 = Query::new(0xfffe, "a_b-c.d", QType::Aaaa).unwrap();
        let bytes = q6.to_bytes();
        assert_eq!(&bytes[..2], &[0xff, 0xfe]);
        assert_eq!(&bytes[12..], b"\x05a_b-c\x01d\x00\x00\x1c\x00\x01");
        assert_eq!(q6.qtype(), QType::Aaaa);
    }

    #[test]
    fn query_name_limits() {
        let err = |host: &str| Query::new(1, host, QType::A).unwrap_err();
        assert_eq!(err(""), NameError::Empty);
        assert_eq!(err("."), NameError::Empty);
        assert_eq!(err("a..b"), NameError::EmptyLabel);
        assert_eq!(err(".a"), NameError::EmptyLabel);
        assert_eq!(err("a.."), NameError::EmptyLabel);
        assert_eq!(err("a b"), NameError::BadCharacter);
        assert_eq!(err("fe80::1%eth0"), NameError::BadCharacter);
        assert_eq!(err("bröker.example"), NameError::BadCharacter);
        let label63 = "x".repeat(63);
        assert!(Query::new(1, &format!("{label63}.org"), QType::A).is_ok());
        assert_eq!(err(&format!("{label63}x.org")), NameError::LabelTooLong);
        // 4 x 63 + 1 + dots = 253 characters: the longest name there is.
        let longest = format!("{label63}.{label63}.{label63}.{}", "y".repeat(61));
        assert_eq!(longest.len(), 253);
        let q = Query::new(1, &longest, QType::A).unwrap();
        assert_eq!(q.to_bytes().len(), HEADER_LEN + 255 + 4);
        assert!(Query::new(1, &format!("{longest}."), QType::A).is_ok());
        assert_eq!(err(&format!("{longest}y")), NameError::TooLong);
    }

    #[test]
    fn random_ids_differ() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        // 64 draws from 65536 values: a handful of repeats at most.
        assert!(ids.len() > 56, "{ids:?}");
    }

    // --- responses ---

    /// A pointer to the question's name, which starts right after the header.
    const AT_QNAME: [u8; 2] = [0xc0, 0x0c];
    const CNAME: u16 = 5;
    const TXT: u16 = 16;

    fn record(owner: &[u8], rtype: u16, class: u16, data: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&class.to_be_bytes());
        r.extend_from_slice(&300u32.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
        r
    }

    fn a(owner: &[u8], ip: &str) -> Vec<u8> {
        let ip: Ipv4Addr = ip.parse().unwrap();
        record(owner, 1, CLASS_IN, &ip.octets())
    }

    fn aaaa(owner: &[u8], ip: &str) -> Vec<u8> {
        let ip: Ipv6Addr = ip.parse().unwrap();
        record(owner, 28, CLASS_IN, &ip.octets())
    }

    /// The answer a server would send to `query`: its id and question, the
    /// flags given (QR is the caller's business) and `records`.
    fn reply(query: &[u8], flags: u16, records: &[Vec<u8>]) -> Vec<u8> {
        let mut r = query[..2].to_vec();
        for word in [flags, 1, records.len() as u16, 0, 0] {
            r.extend_from_slice(&word.to_be_bytes());
        }
        r.extend_from_slice(&query[HEADER_LEN..]);
        for rec in records {
            r.extend_from_slice(rec);
        }
        r
    }

    /// QR, RD and RA, as a recursive server answers.
    const OK: u16 = 0x8180;

    fn q(host: &str, qtype: QType) -> Query {
        Query::new(0xbeef, host, qtype).unwrap()
    }

    #[test]
    fn a_answer_with_a_compression_pointer() {
        let query = q("test.mosquitto.org", QType::A);
        let msg = reply(&query.to_bytes(), OK, &[a(&AT_QNAME, "5.196.78.28")]);
        assert_eq!(query.parse_response(&msg), Ok(ips(&["5.196.78.28"])));
    }

    #[test]
    fn cname_chain_then_addresses() {
        let query = q("broker.example.com", QType::A);
        let bytes = query.to_bytes();
        // The CNAME's data (an uncompressed name) is where the A records'
        // owner pointer points.
        let target_at = bytes.len() + AT_QNAME.len() + 10;
        let target = b"\x04edge\x03cdn\x07example\x03net\x00";
        let ptr = [0xc0, target_at as u8];
        let records = [
            record(&AT_QNAME, CNAME, CLASS_IN, target),
            a(&ptr, "192.0.2.1"),
            a(&ptr, "192.0.2.2"),
            a(&ptr, "192.0.2.1"),
        ];
        let msg = reply(&bytes, OK, &records);
        assert_eq!(msg[target_at..target_at + 5], *b"\x04edge");
        assert_eq!(
            query.parse_response(&msg),
            Ok(ips(&["192.0.2.1", "192.0.2.2"]))
        );
    }

    #[test]
    fn other_records_are_skipped() {
        let query = q("h.example", QType::Aaaa);
        let records = [
            record(&AT_QNAME, TXT, CLASS_IN, b"\x05hello"),
            // Class CHAOS, even shaped like an address: not ours.
            record(&AT_QNAME, 28, 3, &[0; 16]),
            aaaa(&AT_QNAME, "2001:db8::1"),
            // An uncompressed owner name works as well.
            a(b"\x01h\x07example\x00", "192.0.2.9"),
        ];
        let msg = reply(&query.to_bytes(), OK, &records);
        assert_eq!(
            query.parse_response(&msg),
            Ok(ips(&["2001:db8::1", "192.0.2.9"]))
        );
        // No answers: the name exists without this type (NODATA).
        let empty = reply(&query.to_bytes(), OK, &[]);
        assert_eq!(query.parse_response(&empty), Ok(vec![]));
    }

    #[test]
    fn answers_to_something_else_are_stray() {
        let query = q("h.example", QType::A);
        let bytes = query.to_bytes();
        let good = reply(&bytes, OK, &[a(&AT_QNAME, "192.0.2.1")]);

        let mut other_id = good.clone();
        other_id[1] ^= 1;
        assert_eq!(query.parse_response(&other_id), Err(ResponseError::WrongId));

        let not_response = reply(&bytes, 0x0100, &[]);
        assert_eq!(
            query.parse_response(&not_response),
            Err(ResponseError::NotAResponse)
        );

        let mut other_name = good.clone();
        other_name[13] = b'x';
        assert_eq!(
            query.parse_response(&other_name),
            Err(ResponseError::WrongQuestion)
        );
        let other_type = reply(&q("h.example", QType::Aaaa).to_bytes(), OK, &[]);
        assert_eq!(
            query.parse_response(&other_type),
            Err(ResponseError::WrongQuestion)
        );
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        assert_eq!(
            query.parse_response(&two_questions),
            Err(ResponseError::WrongQuestion)
        );
        let mut no_question = reply(&bytes, OK, &[]);
        no_question[5] = 0;
        no_question.truncate(HEADER_LEN);
        assert_eq!(
            query.parse_response(&no_question),
            Err(ResponseError::WrongQuestion)
        );
        for e in [
            ResponseError::WrongId,
            ResponseError::NotAResponse,
            ResponseError::WrongQuestion,
        ] {
            assert!(e.is_stray());
        }
        assert!(!ResponseError::NxDomain.is_stray());

        // Servers may echo the name in another case (0x20 randomisation).
        let mut upper = good;
        upper[13..14].make_ascii_uppercase();
        assert_eq!(query.parse_response(&upper), Ok(ips(&["192.0.2.1"])));
    }

    #[test]
    fn rcodes() {
        let query = q("nope.example", QType::A);
        let bytes = query.to_bytes();
        assert_eq!(
            query.parse_response(&reply(&bytes, OK | 3, &[])),
            Err(ResponseError::NxDomain)
        );
        assert_eq!(
            query.parse_response(&reply(&bytes, OK | 2, &[])),
            Err(ResponseError::Rcode(2))
        );
        // A refusal may come without the question.
        let mut refused = reply(&bytes, OK | 5, &[]);
        refused[5] = 0;
        refused.truncate(HEADER_LEN);
        assert_eq!(query.parse_response(&refused), Err(ResponseError::Rcode(5)));
        // With a question, it must be ours even for an error.
        let mut wrong = reply(&bytes, OK | 3, &[]);
        wrong[13] = b'x';
        assert_eq!(
            query.parse_response(&wrong),
            Err(ResponseError::WrongQuestion)
        );
    }

    #[test]
    fn truncated_responses_keep_whole_records() {
        let query = q("many.example", QType::A);
        let bytes = query.to_bytes();
        let tc = OK | FLAG_TC;
        let mut msg = reply(
            &bytes,
            tc,
            &[a(&AT_QNAME, "192.0.2.1"), a(&AT_QNAME, "192.0.2.2")],
        );
        // The header still counts two records; the second is cut short.
        msg.truncate(msg.len() - 3);
        assert_eq!(query.parse_response(&msg), Ok(ips(&["192.0.2.1"])));
        let mut none = reply(&bytes, tc, &[a(&AT_QNAME, "192.0.2.1")]);
        none[7] = 5;
        none.truncate(bytes.len());
        assert_eq!(query.parse_response(&none), Err(ResponseError::Truncated));
        // Without TC a short message is an error.
        let mut short = reply(&bytes, OK, &[a(&AT_QNAME, "192.0.2.1")]);
        short.pop();
        assert_eq!(query.parse_response(&short), Err(ResponseError::TooShort));
    }

    #[test]
    fn address_records_of_the_wrong_size() {
        let query = q("h.example", QType::A);
        let msg = reply(
            &query.to_bytes(),
            OK,
            &[record(&AT_QNAME, 1, CLASS_IN, &[192, 0, 2, 1, 0])],
        );
        assert_eq!(query.parse_response(&msg), Err(ResponseError::BadRecord));
        let msg = reply(
            &query.to_bytes(),
            OK,
            &[record(&AT_QNAME, 28, CLASS_IN, &[0; 4])],
        );
        assert_eq!(query.parse_response(&msg), Err(ResponseError::BadRecord));
    }

    #[test]
    fn bad_names() {
        let mut msg = vec![0u8; HEADER_LEN];
        let at = msg.len();
        // A pointer to itself, then one forward.
        msg.extend_from_slice(&[0xc0, at as u8, 0xc0, 0x20]);
        assert_eq!(read_name(&msg, at), Err(ResponseError::BadName));
        assert_eq!(read_name(&msg, at + 2), Err(ResponseError::BadName));
        // A label that jumps back to itself grows without end.
        let looped = [b"\x03abc".as_slice(), &[0xc0, at as u8]].concat();
        let msg = [vec![0; HEADER_LEN], looped].concat();
        assert_eq!(read_name(&msg, at), Err(ResponseError::BadName));
        // Extended (0x40) and reserved (0x80) label types.
        for first in [0x41, 0x81] {
            let msg = [vec![0; HEADER_LEN], vec![first, b'a', 0]].concat();
            assert_eq!(read_name(&msg, at), Err(ResponseError::BadName));
        }
        // A pointer cut in half, and a label running off the end.
        assert_eq!(read_name(&[0xc0], 0), Err(ResponseError::TooShort));
        assert_eq!(read_name(b"\x05ab", 0), Err(ResponseError::TooShort));
        assert_eq!(read_name(b"", 0), Err(ResponseError::TooShort));
        // A chain of pointers back is fine, and ends after the first one.
        let msg = b"\x01a\x00\x01b\xc0\x00\xc0\x03zz";
        assert_eq!(read_name(msg, 7), Ok((b"\x01b\x01a\x00".to_vec(), 9)));
    }

    #[test]
    fn names_of_255_bytes_but_no_longer() {
        let label = [&[63u8][..], &[b'x'; 63]].concat();
        let mut longest = label.repeat(3);
        longest.extend_from_slice(&[61]);
        longest.extend_from_slice(&[b'y'; 61]);
        longest.push(0);
        assert_eq!(longest.len(), 255);
        assert_eq!(read_name(&longest, 0), Ok((longest.clone(), 255)));
        let mut too_long = label.repeat(3);
        too_long.extend_from_slice(&[62]);
        too_long.extend_from_slice(&[b'y'; 62]);
        too_long.push(0);
        assert_eq!(read_name(&too_long, 0), Err(ResponseError::BadName));
    }

    /// xorshift64, as in the codec's fuzz test: reproducible noise.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_on_random_or_cut_input() {
        let query = q("test.mosquitto.org", QType::A);
        let bytes = query.to_bytes();
        // The CNAME's data, which the AAAA record's owner points at.
        let cname_data = [0xc0, (bytes.len() + AT_QNAME.len() + 10) as u8];
        let valid = [
            reply(&bytes, OK, &[a(&AT_QNAME, "5.196.78.28")]),
            reply(
                &bytes,
                OK | FLAG_TC,
                &[
                    record(&AT_QNAME, CNAME, CLASS_IN, b"\x01x\xc0\x0c"),
                    aaaa(&cname_data, "2001:db8::1"),
                    a(&AT_QNAME, "192.0.2.1"),
                ],
            ),
        ];
        // Every prefix of a good answer.
        for msg in &valid {
            for len in 0..msg.len() {
                let _ = query.parse_response(&msg[..len]);
            }
            assert!(query.parse_response(msg).is_ok());
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for round in 0..100_000 {
            let mut msg = if round % 2 == 0 {
                // Noise with our id, so the checks past it run too.
                let len = rng.below(80);
                let mut m: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if m.len() >= 2 && rng.below(2) == 0 {
                    m[..2].copy_from_slice(&bytes[..2]);
                }
                m
            } else {
                valid[rng.below(valid.len())].clone()
            };
            for _ in 0..1 + rng.below(4) {
                if msg.is_empty() {
                    break;
                }
                let i = rng.below(msg.len());
                match rng.below(4) {
                    0 => msg[i] = rng.next() as u8,
                    // Pointers and big counts are the interesting values.
                    1 => msg[i] = [0xc0, 0xff, 0x3f, 0x00][rng.below(4)],
                    2 => msg.truncate(i),
                    _ => msg.insert(i, rng.next() as u8),
                }
            }
            if query.parse_response(&msg).is_ok() {
                parsed += 1;
            }
            for pos in 0..msg.len().min(16) {
                let _ = read_name(&msg, pos);
            }
        }
        // The mutations left some answers whole.
        assert!(parsed > 100, "{parsed}");
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            NameError::EmptyLabel.to_string(),
            "empty label in host name"
        );
        assert_eq!(ResponseError::Rcode(2).to_string(), "server error SERVFAIL");
        assert_eq!(ResponseError::Rcode(9).to_string(), "server error RCODE 9");
        assert_eq!(LookupError::NotFound.to_string(), "host not found");
        assert_eq!(
            LookupError::Timeout.to_string(),
            "no answer from the name servers in /etc/resolv.conf"
        );
        assert_eq!(
            LookupError::BadResponse(ResponseError::Rcode(5)).to_string(),
            "name server: server error REFUSED"
        );
        assert_eq!(
            LookupError::InvalidName(NameError::TooLong).to_string(),
            "host name longer than 253 characters"
        );
        assert_eq!(
            LookupError::Io(io::ErrorKind::ConnectionRefused).to_string(),
            "name server unreachable: connection refused"
        );
    }

    // --- lookups against name servers on 127.0.0.1 ---

    /// The question of a query: its type and name in wire form.
    type Question = (u16, Vec<u8>);

    fn question(query: &[u8]) -> Question {
        let (name, pos) = read_name(query, HEADER_LEN).unwrap();
        (read_u16(query, pos).unwrap(), name)
    }

    /// A name server on 127.0.0.1 that answers `queries` datagrams with
    /// what `answer` makes of each, then returns the questions it saw.
    fn fake_server(
        queries: usize,
        answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, JoinHandle<Vec<Question>>) {
        let socket = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            // Never outlive a failed test by long.
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            while seen.len() < queries {
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    break;
                };
                seen.push(question(&buf[..len]));
                for datagram in answer(&buf[..len]) {
                    socket.send_to(&datagram, peer).unwrap();
                }
            }
            seen
        });
        (addr, thread)
    }

    /// A server that answers A queries with 192.0.2.7 (owner name as a
    /// pointer to the question) and AAAA queries with no records.
    fn a_only(query: &[u8]) -> Vec<Vec<u8>> {
        let records = match question(query).0 {
            1 => vec![a(&AT_QNAME, "192.0.2.7")],
            _ => vec![],
        };
        vec![reply(query, OK, &records)]
    }

    fn conf(servers: &[SocketAddr], timeout: Duration) -> ResolvConf {
        ResolvConf {
            nameservers: servers.to_vec(),
            timeout,
            attempts: 1,
        }
    }

    /// The loop's [`Lookup`](super::super::dns_lookup::Lookup) driven to
    /// its end on a private poll, after the hosts file.
    fn lookup_with(host: &str, conf: &ResolvConf, hosts: &str) -> Result<Vec<IpAddr>, LookupError> {
        use super::super::dns_lookup::{Lookup, Progress};
        if let Ok(found) = resolve::resolve_with(host, hosts) {
            return Ok(found);
        }
        let mut poll = mio::Poll::new().unwrap();
        let token = mio::Token(0);
        let mut lookup = Lookup::start(host, conf.clone(), poll.registry(), token, Instant::now())?;
        let mut events = mio::Events::with_capacity(4);
        loop {
            let wait = lookup.deadline().saturating_duration_since(Instant::now());
            poll.poll(&mut events, Some(wait)).unwrap();
            let now = Instant::now();
            let progress = if events.is_empty() {
                lookup.tick(poll.registry(), now)
            } else {
                lookup.readable(poll.registry(), now)
            };
            if let Progress::Done(result) = progress {
                return result;
            }
        }
    }

    #[test]
    fn lookup_asks_a_then_aaaa() {
        let (addr, server) = fake_server(2, a_only);
        let conf = conf(&[addr], Duration::from_secs(2));
        assert_eq!(
            lookup_with("bridge.example", &conf, ""),
            Ok(ips(&["192.0.2.7"]))
        );
        let name = b"\x06bridge\x07example\x00".to_vec();
        assert_eq!(server.join().unwrap(), vec![(1, name.clone()), (28, name)]);
    }

    #[test]
    fn lookup_skips_stray_datagrams_and_puts_ipv4_first() {
        let (addr, server) = fake_server(2, |query| {
            let mut stray = reply(query, OK, &[a(&AT_QNAME, "203.0.113.66")]);
            stray[0] ^= 0x80;
            let records = match question(query).0 {
                // An AAAA record in the A answer, sorted after the A.
                1 => vec![aaaa(&AT_QNAME, "2001:db8::8"), a(&AT_QNAME, "192.0.2.8")],
                _ => vec![aaaa(&AT_QNAME, "2001:db8::6")],
            };
            vec![stray, reply(query, OK, &records)]
        });
        let conf = conf(&[addr], Duration::from_secs(2));
        assert_eq!(
            lookup_with("bridge.example", &conf, ""),
            Ok(ips(&["192.0.2.8", "2001:db8::8", "2001:db8::6"]))
        );
        server.join().unwrap();
    }

    #[test]
    fn lookup_moves_past_dead_servers() {
        // A closed port (ICMP port unreachable) and a server that never
        // answers, before one that does.
        let closed = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let silent = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let (addr, server) = fake_server(2, a_only);
        let conf = conf(
            &[closed_addr, silent.local_addr().unwrap(), addr],
            Duration::from_millis(200),
        );
        let start = Instant::now();
        assert_eq!(
            lookup_with("bridge.example", &conf, ""),
            Ok(ips(&["192.0.2.7"]))
        );
        assert!(start.elapsed() < Duration::from_secs(2));
        server.join().unwrap();
    }

    #[test]
    fn lookup_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let mut conf = conf(&[silent.local_addr().unwrap()], Duration::from_millis(100));
        conf.attempts = 2;
        let start = Instant::now();
        assert_eq!(
            lookup_with("bridge.example", &conf, ""),
            Err(LookupError::Timeout)
        );
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The A and AAAA queries go out together, once per attempt.
        let mut buf = [0; 512];
        silent.set_nonblocking(true).unwrap();
        let queries = std::iter::from_fn(|| silent.recv(&mut buf).ok()).count();
        assert_eq!(queries, 4);
    }

    #[test]
    fn nxdomain_is_final() {
        let (addr, server) = fake_server(1, |query| vec![reply(query, OK | 3, &[])]);
        let other = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let conf = conf(&[addr, other.local_addr().unwrap()], Duration::from_secs(2));
        assert_eq!(
            lookup_with("nope.example", &conf, ""),
            Err(LookupError::NotFound)
        );
        server.join().unwrap();
        other.set_nonblocking(true).unwrap();
        assert!(other.recv(&mut [0; 512]).is_err(), "second server asked");
    }

    #[test]
    fn no_address_and_server_errors() {
        let (addr, server) = fake_server(2, |query| vec![reply(query, OK, &[])]);
        let conf1 = conf(&[addr], Duration::from_secs(2));
        assert_eq!(
            lookup_with("bare.example", &conf1, ""),
            Err(LookupError::NoAddress)
        );
        server.join().unwrap();
        let (addr, server) = fake_server(1, |query| vec![reply(query, OK | 2, &[])]);
        let conf2 = conf(&[addr], Duration::from_millis(300));
        assert_eq!(
            lookup_with("broken.example", &conf2, ""),
            Err(LookupError::BadResponse(ResponseError::Rcode(2)))
        );
        server.join().unwrap();
    }

    #[test]
    fn lookup_without_dns() {
        // Nothing listens here: any query would fail the test.
        let nobody = conf(&[ns("127.0.0.1")], Duration::from_millis(1));
        let hosts = "192.0.2.1 broker broker.lan\n";
        assert_eq!(lookup_with("10.1.2.3", &nobody, ""), Ok(ips(&["10.1.2.3"])));
        assert_eq!(lookup_with("::1", &nobody, ""), Ok(ips(&["::1"])));
        assert_eq!(
            lookup_with("Broker.lan", &nobody, hosts),
            Ok(ips(&["192.0.2.1"]))
        );
        assert_eq!(
            lookup_with("localhost", &nobody, ""),
            Ok(ips(&["127.0.0.1", "::1"]))
        );
        assert_eq!(
            lookup_with("a..b", &nobody, hosts),
            Err(LookupError::InvalidName(NameError::EmptyLabel))
        );
    }
}
