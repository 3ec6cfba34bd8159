//! Opening listening sockets the way mosquitto does: one socket per address
//! family when no bind address is given, IPv6 sockets IPv6-only,
//! SO_REUSEADDR, a backlog of 100.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::broker::ListenerId;

/// What to bind for one configured listener.
#[derive(Debug, Clone)]
pub struct ListenSpec {
    pub listener: ListenerId,
    pub port: u16,
    /// `None`: every address of every family.
    pub bind_address: Option<String>,
    /// Restrict to one family (`socket_domain`).
    pub ipv4_only: bool,
    pub ipv6_only: bool,
    /// `bind_interface` (SO_BINDTODEVICE).
    pub bind_interface: Option<String>,
    /// Extra connections are closed at once; `None` = unlimited.
    pub max_connections: Option<u32>,
    /// `listener 0 /path`: a unix domain socket instead of TCP.
    pub unix_path: Option<std::path::PathBuf>,
    /// Byte transforms every connection of this listener gets, nearest the
    /// socket first (TLS, then WebSocket framing). Empty for plain MQTT.
    pub transport: Vec<TransportLayer>,
}

/// How to build one layer of a connection's transport stack.
#[derive(Clone)]
pub enum TransportLayer {
    Tls(crate::net::tls::ServerContext),
    WebSocket(crate::net::websocket::WsOptions),
}

impl std::fmt::Debug for TransportLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportLayer::Tls(_) => f.write_str("Tls"),
            TransportLayer::WebSocket(_) => f.write_str("WebSocket"),
        }
    }
}

impl TransportLayer {
    pub fn build(
        &self,
    ) -> Result<Box<dyn crate::net::layer::Layer>, crate::net::layer::LayerError> {
        Ok(match self {
            TransportLayer::Tls(ctx) => Box::new(crate::net::tls::TlsLayer::server(ctx)?),
            TransportLayer::WebSocket(opts) => {
                Box::new(crate::net::websocket::WsLayer::new(opts.clone()))
            }
        })
    }
}

#[derive(Debug)]
pub struct BoundListener {
    pub socket: crate::net::stream::ListenSocket,
    pub listener: ListenerId,
    pub port: u16,
    pub max_connections: Option<u32>,
    pub transport: Vec<TransportLayer>,
}

#[derive(Debug)]
pub enum ListenError {
    /// The bind address did not resolve (`net::resolve`: numeric, from
    /// `/etc/hosts`, or `localhost`; never DNS).
    Resolve(String, super::resolve::NotFound),
    Bind(SocketAddr, io::Error),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::Resolve(host, e) => {
                write!(f, "Error: Unable to resolve bind address {host}: {e}.")
            }
            // mosquitto prints strerror() alone: "Error: Address already in use".
            ListenError::Bind(_, e) => write!(f, "Error: {}", strerror(e)),
        }
    }
}

impl std::error::Error for ListenError {}

/// The text of an OS error without Rust's " (os error N)" suffix.
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn addresses(spec: &ListenSpec) -> Result<Vec<SocketAddr>, ListenError> {
    let mut addrs = match &spec.bind_address {
        None => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), spec.port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), spec.port),
        ],
        Some(host) => super::resolve::resolve(host)
            .map_err(|e| ListenError::Resolve(host.clone(), e))?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, spec.port))
            .collect(),
    };
    addrs.retain(|a| !((spec.ipv4_only && a.is_ipv6()) || (spec.ipv6_only && a.is_ipv4())));
    Ok(addrs)
}

/// Opens every socket of `spec`, logging each as mosquitto does. A family
/// the host does not support is skipped with a warning; a bind failure is
/// fatal (the caller exits 1).
pub fn open(spec: &ListenSpec) -> Result<Vec<BoundListener>, ListenError> {
    if let Some(path) = &spec.unix_path {
        return open_unix(spec, path).map(|l| vec![l]);
    }
    let mut out = Vec::new();
    for addr in addresses(spec)? {
        let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
        if spec
            .transport
            .iter()
            .any(|t| matches!(t, TransportLayer::WebSocket(_)))
        {
            // mosquitto (libwebsockets) logs a websockets listener once,
            // whatever the address families.
            if out.is_empty() {
                log::info!("Opening websockets listen socket on port {}.", spec.port);
            }
        } else {
            log::info!("Opening {family} listen socket on port {}.", spec.port);
        }
        let domain = if addr.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = match Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP)) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Warning: {}", strerror(&e));
                continue;
            }
        };
        let bind = || -> io::Result<()> {
            socket.set_reuse_address(true)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            if let Some(dev) = &spec.bind_interface {
                socket.bind_device(Some(dev.as_bytes()))?;
            }
            socket.bind(&addr.into())?;
            socket.listen(100)
        };
        if let Err(e) = bind() {
            // A host without IPv6 (common in containers) still serves IPv4
            // when no bind address was asked for.
            let no_family = matches!(
                e.raw_os_error(),
                Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
            );
            if spec.bind_address.is_none() && addr.is_ipv6() && no_family {
                log::warn!("Warning: {}", strerror(&e));
                continue;
            }
            return Err(ListenError::Bind(addr, e));
        }
        let std_listener: std::net::TcpListener = socket.into();
        out.push(BoundListener {
            socket: crate::net::stream::ListenSocket::Tcp(mio::net::TcpListener::from_std(
                std_listener,
            )),
            listener: spec.listener,
            port: spec.port,
            max_connections: spec.max_connections,
            transport: spec.transport.clone(),
        });
    }
    Ok(out)
}

/// `listener 0 /path`: a unix domain socket. A stale socket file from an
/// earlier run is replaced; anything else at the path is an error.
fn open_unix(spec: &ListenSpec, path: &std::path::Path) -> Result<BoundListener, ListenError> {
    log::info!("Opening unix listen socket on path {}.", path.display());
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        let _ = std::fs::remove_file(path);
    }
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let listener = mio::net::UnixListener::bind(path).map_err(|e| ListenError::Bind(local, e))?;
    Ok(BoundListener {
        socket: crate::net::stream::ListenSocket::Unix(listener, path.to_path_buf()),
        listener: spec.listener,
        port: spec.port,
        max_connections: spec.max_connections,
        transport: spec.transport.clone(),
    })
}
