//! A DNS lookup driven by the event loop instead of blocking it: the UDP
//! socket is registered with mio, answers are read when it is readable and
//! the loop's timer moves on to the next name server. A bridge resolving
//! its remote's name must not stall every client for up to five seconds
//! when DNS is slow or down. The packet code is [`super::dns`]'s.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::dns::{
    LOOKUP_BUDGET, LookupError, QType, Query, RECV_BUFFER, ResolvConf, ResponseError, random_id,
};

/// Where a lookup stands after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Done(Result<Vec<IpAddr>, LookupError>),
}

/// One lookup: the A and AAAA queries sent together to one name server at
/// a time, `attempts` rounds over the servers, within [`LOOKUP_BUDGET`].
pub struct Lookup {
    host: String,
    conf: ResolvConf,
    token: Token,
    socket: Option<UdpSocket>,
    /// Queries sent to the current server and not answered yet.
    outstanding: Vec<Query>,
    found: Vec<IpAddr>,
    server: usize,
    round: u32,
    try_until: Instant,
    deadline: Instant,
    last_error: LookupError,
}

impl Lookup {
    /// Sends the queries to the first name server.
    pub fn start(
        host: &str,
        conf: ResolvConf,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> Result<Lookup, LookupError> {
        // A bad name fails here, before any datagram is sent.
        Query::new(0, host, QType::A).map_err(LookupError::InvalidName)?;
        if conf.nameservers.is_empty() {
            return Err(LookupError::Timeout);
        }
        let mut lookup = Lookup {
            host: host.to_string(),
            conf,
            token,
            socket: None,
            outstanding: Vec::new(),
            found: Vec::new(),
            server: 0,
            round: 0,
            try_until: now,
            deadline: now + LOOKUP_BUDGET,
            last_error: LookupError::Timeout,
        };
        match lookup.ask(registry, now) {
            Progress::Done(Err(e)) => Err(e),
            _ => Ok(lookup),
        }
    }

    /// When [`Lookup::tick`] next has something to do.
    pub fn deadline(&self) -> Instant {
        self.try_until.min(self.deadline)
    }

    /// The socket is readable: take every answer waiting.
    pub fn readable(&mut self, registry: &Registry, now: Instant) -> Progress {
        let mut buf = vec![0; RECV_BUFFER];
        loop {
            let Some(socket) = self.socket.as_ref() else {
                return Progress::Pending;
            };
            let len = match socket.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP port unreachable and the like: this server is out.
                    self.last_error = e.into();
                    return self.next_server(registry, now);
                }
            };
            let datagram = buf.get(..len).unwrap_or_default();
            if let Some(done) = self.answer(datagram, registry, now) {
                return done;
            }
            if self.outstanding.is_empty() {
                return self.server_finished(registry, now);
            }
        }
    }

    /// Time passed: give up on the current server, or on the whole lookup.
    pub fn tick(&mut self, registry: &Registry, now: Instant) -> Progress {
        if now >= self.deadline {
            return self.finish(LookupError::Timeout);
        }
        if now >= self.try_until {
            if !self.found.is_empty() {
                // The A answer came; a server that ignores AAAA spoils nothing.
                return self.finish(LookupError::Timeout);
            }
            return self.next_server(registry, now);
        }
        Progress::Pending
    }

    /// Stops listening (the bridge gave up or the lookup is done).
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut socket) = self.socket.take() {
            let _ = registry.deregister(&mut socket);
        }
    }

    /// Matches a datagram against the outstanding queries. `Some` when the
    /// lookup is decided by it.
    fn answer(&mut self, datagram: &[u8], registry: &Registry, now: Instant) -> Option<Progress> {
        let mut i = 0;
        while i < self.outstanding.len() {
            match self.outstanding[i].parse_response(datagram) {
                Ok(addrs) => {
                    for a in addrs {
                        if !self.found.contains(&a) {
                            self.found.push(a);
                        }
                    }
                    self.outstanding.remove(i);
                    return None;
                }
                Err(e) if e.is_stray() => i += 1,
                Err(ResponseError::NxDomain) => {
                    return Some(self.finish(LookupError::NotFound));
                }
                Err(e) => {
                    self.last_error = e.into();
                    self.outstanding.remove(i);
                    // A failed AAAA query does not spoil an A answer; with
                    // nothing found yet, this server is out.
                    if self.found.is_empty() {
                        return Some(self.next_server(registry, now));
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Both queries of this server were answered.
    fn server_finished(&mut self, registry: &Registry, now: Instant) -> Progress {
        if !self.found.is_empty() {
            return self.finish(LookupError::NoAddress);
        }
        if matches!(
            self.last_error,
            LookupError::BadResponse(_) | LookupError::Io(_)
        ) {
            return self.next_server(registry, now);
        }
        // Both answered without an address: the name has none.
        self.finish(LookupError::NoAddress)
    }

    fn next_server(&mut self, registry: &Registry, now: Instant) -> Progress {
        self.server += 1;
        if self.server >= self.conf.nameservers.len() {
            self.server = 0;
            self.round += 1;
        }
        if self.round >= self.conf.attempts.max(1) || now >= self.deadline {
            let e = self.last_error.clone();
            return self.finish(e);
        }
        self.ask(registry, now)
    }

    /// A fresh socket to the current server (late answers from the last
    /// one are not read), and both queries on it.
    fn ask(&mut self, registry: &Registry, now: Instant) -> Progress {
        self.close(registry);
        self.outstanding.clear();
        self.try_until = now + self.conf.timeout;
        let Some(&server) = self.conf.nameservers.get(self.server) else {
            return self.finish(LookupError::Timeout);
        };
        let sent = (|| -> Result<(), LookupError> {
            let local = match server {
                SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            };
            let mut socket = UdpSocket::bind(local)?;
            socket.connect(server)?;
            registry.register(&mut socket, self.token, Interest::READABLE)?;
            for qtype in [QType::A, QType::Aaaa] {
                let q =
                    Query::new(random_id(), &self.host, qtype).map_err(LookupError::InvalidName)?;
                socket.send(&q.to_bytes())?;
                self.outstanding.push(q);
            }
            self.socket = Some(socket);
            Ok(())
        })();
        match sent {
            Ok(()) => Progress::Pending,
            Err(e @ LookupError::InvalidName(_)) => self.finish(e),
            Err(e) => {
                self.last_error = e;
                self.next_server(registry, now)
            }
        }
    }

    /// The result: the addresses found (IPv4 first), else `error`.
    fn finish(&mut self, error: LookupError) -> Progress {
        // A closed socket leaves epoll by itself.
        self.socket = None;
        self.outstanding.clear();
        if self.found.is_empty() {
            return Progress::Done(Err(error));
        }
        let mut found = std::mem::take(&mut self.found);
        found.sort_by_key(IpAddr::is_ipv6);
        Progress::Done(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A name server socket on 127.0.0.1; it answers only when the test
    /// calls `serve`.
    fn server() -> (std::net::UdpSocket, SocketAddr) {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        let addr = s.local_addr().unwrap();
        (s, addr)
    }

    /// Replies to every waiting query: an A record for A, none for AAAA.
    fn serve(s: &std::net::UdpSocket) -> usize {
        let mut buf = [0u8; 512];
        let mut n = 0;
        while let Ok((len, from)) = s.recv_from(&mut buf) {
            let q = &buf[..len];
            let qtype = u16::from_be_bytes([q[len - 4], q[len - 3]]);
            let mut r = q.to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            if qtype == 1 {
                r[7] = 1; // ANCOUNT
                r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            }
            s.send_to(&r, from).unwrap();
            n += 1;
        }
        n
    }

    fn run(lookup: &mut Lookup, poll: &mut mio::Poll, s: Option<&std::net::UdpSocket>) -> Progress {
        let mut events = mio::Events::with_capacity(8);
        for _ in 0..100 {
            if let Some(s) = s {
                serve(s);
            }
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            let now = Instant::now();
            let p = if events.is_empty() {
                lookup.tick(poll.registry(), now)
            } else {
                lookup.readable(poll.registry(), now)
            };
            if p != Progress::Pending {
                return p;
            }
        }
        Progress::Pending
    }

    #[test]
    fn answers_arrive_through_the_poll() {
        let (s, addr) = server();
        let conf = ResolvConf {
            nameservers: vec![addr],
            timeout: Duration::from_millis(500),
            attempts: 1,
        };
        let mut poll = mio::Poll::new().unwrap();
        let mut l = Lookup::start(
            "broker.example",
            conf,
            poll.registry(),
            Token(7),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(
            run(&mut l, &mut poll, Some(&s)),
            Progress::Done(Ok(vec!["192.0.2.7".parse().unwrap()]))
        );
    }

    #[test]
    fn a_silent_server_times_out_and_the_next_one_answers() {
        let (silent, silent_addr) = server();
        let (s, addr) = server();
        let conf = ResolvConf {
            nameservers: vec![silent_addr, addr],
            timeout: Duration::from_millis(100),
            attempts: 1,
        };
        let mut poll = mio::Poll::new().unwrap();
        let mut l = Lookup::start(
            "broker.example",
            conf,
            poll.registry(),
            Token(7),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(
            run(&mut l, &mut poll, Some(&s)),
            Progress::Done(Ok(vec!["192.0.2.7".parse().unwrap()]))
        );
        drop(silent);
    }

    #[test]
    fn nobody_answering_is_a_timeout() {
        let (silent, addr) = server();
        let conf = ResolvConf {
            nameservers: vec![addr],
            timeout: Duration::from_millis(50),
            attempts: 2,
        };
        let mut poll = mio::Poll::new().unwrap();
        let mut l = Lookup::start(
            "broker.example",
            conf,
            poll.registry(),
            Token(7),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(
            run(&mut l, &mut poll, None),
            Progress::Done(Err(LookupError::Timeout))
        );
        drop(silent);
    }

    #[test]
    fn bad_names_fail_before_sending() {
        let poll = mio::Poll::new().unwrap();
        let e = Lookup::start(
            "bad name",
            ResolvConf::default(),
            poll.registry(),
            Token(1),
            Instant::now(),
        );
        assert!(matches!(e, Err(LookupError::InvalidName(_))));
    }
}
