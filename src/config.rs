//! The configuration camtls serves, as the command line leaves it: every
//! value parsed and checked (routes, backends, address ranges, the device's
//! login, timeouts, TLS files), so that the modules that serve it never see
//! command-line text. Files named here (auth files, certificates) are read
//! by the modules that use them, at start and on SIGHUP.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::allow::Allow;

/// Where a route's backend lives. The host is kept as text so that names are
/// resolved at connect time (a camera's DHCP name may change address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub host: String,
    pub port: u16,
    /// As in URLs and in Host, made once: it goes into every request.
    authority: String,
}

impl Backend {
    pub fn new(host: &str, port: u16) -> Backend {
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let authority = if port == 80 {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Backend {
            host: host.to_string(),
            port,
            authority,
        }
    }

    /// The authority as it appears in URLs and in Host: `host:port`, `[v6]:port`,
    /// with the port left out when it is 80.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a route listens: a concrete address, or a bare port meaning every
/// address (IPv6 and IPv4 where the kernel has IPv6, IPv4 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Any(u16),
    Addr(SocketAddr),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Any(port) => write!(f, "*:{port}"),
            Listen::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub listen: Listen,
    pub backend: Backend,
    pub guard: Guard,
}

/// Who may use a route, and the login camtls gives the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    /// HTTP Basic logins checked by camtls.
    pub auth_file: Option<PathBuf>,
    /// Client address ranges allowed to connect; empty allows everyone.
    pub allow: Allow,
    pub backend_auth: Option<BackendAuth>,
}

/// The device's own login, sent by camtls.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendAuth {
    /// USER:PASS given on the command line, checked, as the Authorization
    /// value camtls sends (auth::device::backend_auth).
    Inline(String),
    /// A file holding USER:PASS.
    File(PathBuf),
}

impl fmt::Debug for BackendAuth {
    // The password stays out of any debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAuth::Inline(_) => f.write_str("Inline(…)"),
            BackendAuth::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Timeouts, each one a defence against a client or backend that stops
/// talking; see docs/usage.md.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub handshake: Duration,
    pub head: Duration,
    pub idle: Duration,
    pub connect: Duration,
    pub backend: Duration,
    pub shutdown_grace: Duration,
}

/// Everything the proxy needs to serve, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub routes: Vec<Route>,
    /// None with --plain.
    pub tls: Option<TlsFiles>,
    pub preserve_host: bool,
    pub max_connections: usize,
    pub max_per_address: usize,
    pub timeouts: Timeouts,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    /// None when the key is to be found in the certificate file.
    pub key: Option<PathBuf>,
}
