//! The command line: argh definitions, and their translation into a
//! validated [`Config`]. The option names are a contract that the OpenWrt and
//! Tomato scripts and the tests rely on.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::auth::allow::Allow;
use crate::auth::device;
use crate::config::{Backend, BackendAuth, Config, Guard, Listen, Route, Timeouts, TlsFiles};

pub const DEFAULT_CERT: &str = "/tmp/etc/cert.pem";
pub const DEFAULT_KEY: &str = "/tmp/etc/key.pem";

// No Debug: --backend-auth holds a password.
#[derive(FromArgs)]
/// camtls: HTTPS in front of plain-HTTP cameras, printers and web UIs.
///
/// Each --route LISTEN=BACKEND serves https://ROUTER:LISTEN and forwards to
/// http://BACKEND. LISTEN is PORT (all addresses), IPv4:PORT or [IPv6]:PORT;
/// BACKEND is HOST:PORT, HOST an IP address or a name resolved at connect time.
pub struct Args {
    /// a route, LISTEN=BACKEND, e.g. 8443=192.168.1.20:80 (repeatable)
    #[argh(option, long = "route")]
    pub routes: Vec<String>,

    /// certificate file, PEM, leaf first then intermediates; may also hold the
    /// key (default: /tmp/etc/cert.pem)
    #[argh(option)]
    pub cert: Option<PathBuf>,

    /// private key file, PEM: PKCS#8, traditional RSA or SEC1 EC (default:
    /// /tmp/etc/key.pem, or the key inside --cert)
    #[argh(option)]
    pub key: Option<PathBuf>,

    /// serve plain HTTP, no TLS (for checking the forwarding first)
    #[argh(switch)]
    pub plain: bool,

    /// pass the client's Host header to the backend instead of the backend's
    /// own address
    #[argh(switch)]
    pub preserve_host: bool,

    /// HTTP Basic logins checked by camtls, a file of user:hash lines from
    /// `camtls hash-password` (every route without its own auth=)
    #[argh(option)]
    pub auth_file: Option<PathBuf>,

    /// a client address range allowed to connect, e.g. 192.168.1.0/24 or
    /// 2001:db8::/32; repeatable (default: any address)
    #[argh(option, long = "allow")]
    pub allow: Vec<String>,

    /// USER:PASS that camtls sends to the device as HTTP Basic login, so
    /// the device's password never crosses the internet
    #[argh(option)]
    pub backend_auth: Option<String>,

    /// like --backend-auth, from a file holding USER:PASS
    #[argh(option)]
    pub backend_auth_file: Option<PathBuf>,

    /// most client connections open at once, over all routes (default: 128)
    #[argh(option, default = "128")]
    pub max_connections: usize,

    /// most connections open at once from one client address, an IPv6 /64
    /// counting as one (default: 32)
    #[argh(option, default = "32")]
    pub max_per_address: usize,

    /// seconds a client may take to complete the TLS handshake (default: 10)
    #[argh(option, default = "10")]
    pub handshake_timeout: u64,

    /// seconds a client may take to send a whole request head once it has
    /// started (default: 10)
    #[argh(option, default = "10")]
    pub head_timeout: u64,

    /// seconds an idle keep-alive connection, a stalled request body or a
    /// silent tunnel is kept open (default: 75)
    #[argh(option, default = "75")]
    pub idle_timeout: u64,

    /// seconds to wait for a backend connection (default: 5)
    #[argh(option, default = "5")]
    pub connect_timeout: u64,

    /// seconds a backend may stay silent before the response head or while
    /// sending a body (default: 60)
    #[argh(option, default = "60")]
    pub backend_timeout: u64,

    /// seconds open exchanges may take to finish after SIGTERM or SIGINT
    /// (default: 5)
    #[argh(option, default = "5")]
    pub shutdown_grace: u64,

    /// log level: error, warn, info, debug or trace (default: info)
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,

    /// log to syslog (/dev/log) instead of stderr; implied by --daemon
    #[argh(switch)]
    pub syslog: bool,

    /// detach from the terminal and run in the background
    #[argh(switch)]
    pub daemon: bool,

    /// write the process id to this file (removed at exit)
    #[argh(option)]
    pub pidfile: Option<PathBuf>,

    /// after binding the ports, switch to this user (and its group)
    #[argh(option)]
    pub user: Option<String>,

    /// check the routes, certificate and key, then exit without serving
    #[argh(switch)]
    pub check: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    GenCert(GenCertArgs),
    Fingerprint(FingerprintArgs),
    HashPassword(HashPasswordArgs),
}

#[derive(FromArgs, Debug)]
/// Read a password (from the terminal, without echo, or from standard input)
/// and print a line for --auth-file.
#[argh(subcommand, name = "hash-password")]
pub struct HashPasswordArgs {
    /// the login name; the line printed is NAME:HASH (default: only HASH)
    #[argh(option)]
    pub user: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Write a new private key and a self-signed certificate.
#[argh(subcommand, name = "gen-cert")]
pub struct GenCertArgs {
    /// certificate file to write
    #[argh(option)]
    pub cert: PathBuf,
    /// key file to write (mode 0600)
    #[argh(option)]
    pub key: PathBuf,
    /// a DNS name or IP address for the certificate (repeatable; the first is
    /// also the subject's common name; default: localhost)
    #[argh(option, long = "name")]
    pub names: Vec<String>,
    /// days the certificate is valid (default: 825, the most Apple devices
    /// accept)
    #[argh(option, default = "825")]
    pub days: u32,
    /// an RSA-2048 key instead of ECDSA P-256
    #[argh(switch)]
    pub rsa: bool,
    /// overwrite existing files
    #[argh(switch)]
    pub force: bool,
}

#[derive(FromArgs, Debug)]
/// Print the SHA-256 fingerprint of a certificate file.
#[argh(subcommand, name = "fingerprint")]
pub struct FingerprintArgs {
    /// the certificate file (PEM; the first certificate is used)
    #[argh(positional)]
    pub file: PathBuf,
}

/// A command-line mistake, worded for the user.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

impl Args {
    pub fn log_level(&self) -> Result<log::LevelFilter, UsageError> {
        self.log_level.parse().map_err(|_| {
            usage(format!(
                "--log-level {:?}: expected error, warn, info, debug or trace",
                self.log_level
            ))
        })
    }

    pub fn to_config(&self) -> Result<Config, UsageError> {
        if self.routes.is_empty() {
            return Err(usage(
                "no --route given: say what to serve, e.g. --route 8443=192.168.1.20:80",
            ));
        }
        let default_guard = Guard {
            auth_file: self.auth_file.clone(),
            allow: Allow::parse(&self.allow).map_err(|why| usage(format!("--allow: {why}")))?,
            backend_auth: match (&self.backend_auth, &self.backend_auth_file) {
                (Some(_), Some(_)) => {
                    return Err(usage(
                        "--backend-auth and --backend-auth-file: give one of them",
                    ))
                }
                (Some(inline), None) => Some(BackendAuth::Inline(
                    device::backend_auth(inline)
                        .map_err(|why| usage(format!("--backend-auth: {why}")))?,
                )),
                (None, Some(file)) => Some(BackendAuth::File(file.clone())),
                (None, None) => None,
            },
        };
        let routes = self
            .routes
            .iter()
            .map(|r| parse_route_with(r, &default_guard))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in routes.iter().enumerate() {
            if let Some(b) = routes[..i]
                .iter()
                .find(|b| listens_overlap(&a.listen, &b.listen))
            {
                return Err(usage(format!(
                    "--route: {} and {} listen on the same port",
                    a.listen, b.listen
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(usage("--max-connections must be at least 1"));
        }
        if self.max_per_address == 0 {
            return Err(usage("--max-per-address must be at least 1"));
        }
        let secs = |name: &str, v: u64| {
            if v == 0 {
                Err(usage(format!("--{name} must be at least 1 second")))
            } else {
                Ok(Duration::from_secs(v))
            }
        };
        let timeouts = Timeouts {
            handshake: secs("handshake-timeout", self.handshake_timeout)?,
            head: secs("head-timeout", self.head_timeout)?,
            idle: secs("idle-timeout", self.idle_timeout)?,
            connect: secs("connect-timeout", self.connect_timeout)?,
            backend: secs("backend-timeout", self.backend_timeout)?,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
        };
        let tls = if self.plain {
            if self.cert.is_some() || self.key.is_some() {
                return Err(usage("--plain serves no TLS: leave out --cert and --key"));
            }
            None
        } else {
            let cert = self.cert.clone().unwrap_or_else(|| DEFAULT_CERT.into());
            // With an explicit --cert and no --key, the key may sit in the cert
            // file; with neither, Tomato's pair of files is the default.
            let key = match (&self.key, &self.cert) {
                (Some(k), _) => Some(k.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(DEFAULT_KEY.into()),
            };
            Some(TlsFiles { cert, key })
        };
        Ok(Config {
            routes,
            tls,
            preserve_host: self.preserve_host,
            max_connections: self.max_connections,
            max_per_address: self.max_per_address,
            timeouts,
        })
    }
}

fn listens_overlap(a: &Listen, b: &Listen) -> bool {
    let port = |l: &Listen| match l {
        Listen::Any(p) => *p,
        Listen::Addr(a) => a.port(),
    };
    if port(a) != port(b) || port(a) == 0 {
        return false;
    }
    match (a, b) {
        (Listen::Addr(x), Listen::Addr(y)) => x.ip() == y.ip(),
        _ => true,
    }
}

/// `LISTEN=BACKEND`, with no options of its own.
pub fn parse_route(text: &str) -> Result<Route, UsageError> {
    parse_route_with(text, &Guard::default())
}

/// `LISTEN=BACKEND[,auth=FILE][,allow=CIDR]...[,backend-auth-file=FILE]`.
/// An option given on the route replaces the command-line default for it.
fn parse_route_with(text: &str, defaults: &Guard) -> Result<Route, UsageError> {
    let (listen, rest) = text.split_once('=').ok_or_else(|| {
        usage(format!(
            "--route {text:?}: expected LISTEN=BACKEND, e.g. 8443=192.168.1.20:80"
        ))
    })?;
    let mut parts = rest.split(',');
    let backend = parts.next().unwrap_or_default();
    let listen = parse_listen(listen.trim())
        .map_err(|why| usage(format!("--route {text:?}: listen address {why}")))?;
    let backend = parse_backend(backend.trim())
        .map_err(|why| usage(format!("--route {text:?}: backend {why}")))?;
    let mut guard = defaults.clone();
    let mut own_allow = Vec::new();
    for option in parts {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let value = value.trim();
        if value.is_empty() {
            return Err(usage(format!(
                "--route {text:?}: option {key:?} needs a value, e.g. allow=192.168.1.0/24"
            )));
        }
        match key.trim() {
            "auth" => guard.auth_file = Some(value.into()),
            "allow" => own_allow.push(value),
            "backend-auth-file" => guard.backend_auth = Some(BackendAuth::File(value.into())),
            other => {
                return Err(usage(format!(
                    "--route {text:?}: unknown option {other:?} (known: auth, allow, backend-auth-file)"
                )))
            }
        }
    }
    if !own_allow.is_empty() {
        guard.allow = Allow::parse(&own_allow)
            .map_err(|why| usage(format!("--route {text:?}: option allow: {why}")))?;
    }
    Ok(Route {
        listen,
        backend,
        guard,
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a port number"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("port {text} is out of range (1-65535)"))
}

/// `PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
pub fn parse_listen(text: &str) -> Result<Listen, String> {
    if !text.contains(':') {
        return parse_port(text).map(Listen::Any);
    }
    text.parse::<SocketAddr>()
        .map(Listen::Addr)
        .map_err(|_| format!("{text:?}: expected PORT, IPv4:PORT or [IPv6]:PORT"))
}

/// `HOST:PORT` or `[IPv6]:PORT`.
pub fn parse_backend(text: &str) -> Result<Backend, String> {
    let bad = || format!("{text:?}: expected HOST:PORT, e.g. 192.168.1.20:80");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        host.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (host, port)
    } else {
        text.rsplit_once(':').ok_or_else(bad)?
    };
    if host.is_empty() || !text.starts_with('[') && host.contains(':') {
        // An IPv6 backend needs brackets: fe80::1:80 is ambiguous.
        return Err(bad());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(format!("{text:?}: {host:?} is not a host name or address"));
    }
    let port = parse_port(port)?;
    if port == 0 {
        return Err(format!("{text:?}: port 0 cannot be connected to"));
    }
    Ok(Backend::new(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("8443"), Ok(Listen::Any(8443)));
        assert_eq!(
            parse_listen("127.0.0.1:0"),
            Ok(Listen::Addr("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("[::1]:8443"),
            Ok(Listen::Addr("[::1]:8443".parse().unwrap()))
        );
        assert!(parse_listen("65536").is_err());
        assert!(parse_listen("http").is_err());
        assert!(parse_listen("1.2.3.4").is_err());
        assert!(parse_listen("::1:80").is_err());
    }

    #[test]
    fn backend_forms() {
        let b = parse_backend("192.168.1.20:80").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("192.168.1.20", 80));
        assert_eq!(b.authority(), "192.168.1.20");
        let b = parse_backend("cam.lan:8080").unwrap();
        assert_eq!(b.authority(), "cam.lan:8080");
        let b = parse_backend("[fe80::1]:81").unwrap();
        assert_eq!(b.host, "fe80::1");
        assert_eq!(b.authority(), "[fe80::1]:81");
        assert_eq!(b.to_string(), "[fe80::1]:81");
        for bad in [
            "cam",
            "cam:",
            ":80",
            "cam:0",
            "cam:99999",
            "fe80::1:80",
            "c m:80",
            "[x]:80",
        ] {
            assert!(parse_backend(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_options_override_the_defaults() {
        let defaults = Guard {
            auth_file: Some("/etc/camtls/users".into()),
            allow: Allow::parse(&["10.0.0.0/8"]).unwrap(),
            backend_auth: Some(BackendAuth::Inline("admin:x".into())),
        };
        let r = parse_route_with("8443=cam:80", &defaults).unwrap();
        assert_eq!(r.guard, defaults);
        let r = parse_route_with(
            "8443=cam:80,allow=192.168.1.0/24,allow=::1,auth=/a,backend-auth-file=/p",
            &defaults,
        )
        .unwrap();
        assert_eq!(
            r.guard.allow,
            Allow::parse(&["192.168.1.0/24", "::1"]).unwrap()
        );
        assert_eq!(r.guard.auth_file, Some("/a".into()));
        assert_eq!(r.guard.backend_auth, Some(BackendAuth::File("/p".into())));
        assert!(parse_route("8443=cam:80,colour=blue").is_err());
        assert!(parse_route("8443=cam:80,allow=").is_err());
        let e = parse_route("8443=cam:80,allow=10.0.0.0/33").unwrap_err();
        assert!(e.0.contains("allow") && e.0.contains("0 to 32"), "{e}");
    }

    #[test]
    fn debug_output_hides_the_device_password() {
        let a = args(&["--route", "1=a:2", "--backend-auth", "admin:hunter2"]);
        let shown = format!("{:?}", a.to_config().unwrap());
        assert!(
            !shown.contains("hunter2") && shown.contains("Inline(…)"),
            "{shown}"
        );
    }

    #[test]
    fn route_errors_name_the_route() {
        let e = parse_route("8443").unwrap_err();
        assert!(e.0.contains("LISTEN=BACKEND"), "{e}");
        let e = parse_route("8443=cam").unwrap_err();
        assert!(e.0.contains("backend"), "{e}");
    }

    fn args(list: &[&str]) -> Args {
        Args::from_args(&["camtls"], list).unwrap()
    }

    #[test]
    fn cert_and_key_defaults() {
        let c = args(&["--route", "8443=cam:80"]).to_config().unwrap();
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert: DEFAULT_CERT.into(),
                key: Some(DEFAULT_KEY.into())
            })
        );
        let c = args(&["--route", "8443=cam:80", "--cert", "/x/both.pem"])
            .to_config()
            .unwrap();
        assert_eq!(c.tls.unwrap().key, None);
        let c = args(&["--route", "8443=cam:80", "--plain"])
            .to_config()
            .unwrap();
        assert!(c.tls.is_none());
    }

    #[test]
    fn same_port_twice_is_refused() {
        let e = args(&["--route", "8443=a:80", "--route", "8443=b:80"])
            .to_config()
            .unwrap_err();
        assert!(e.0.contains("same port"), "{e}");
        args(&["--route", "127.0.0.1:0=a:80", "--route", "127.0.0.1:0=b:80"])
            .to_config()
            .unwrap();
    }

    #[test]
    fn no_route_and_zero_limits_are_refused() {
        assert!(args(&[]).to_config().is_err());
        assert!(args(&["--route", "1=a:2", "--max-connections", "0"])
            .to_config()
            .is_err());
        assert!(args(&["--route", "1=a:2", "--head-timeout", "0"])
            .to_config()
            .is_err());
    }
}
