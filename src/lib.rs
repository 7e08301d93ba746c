//! camtls: a single-threaded TLS-terminating reverse proxy for plain-HTTP
//! devices (IP cameras first), small enough for a home router.
//!
//! # Layout
//! - `cli`: the command line (argh), and its translation into a `Config`:
//!   every option parsed and checked there, once.
//! - `config`: the validated configuration the rest is given: routes,
//!   listen addresses, backends, each route's access settings, timeouts, TLS
//!   files.
//! - `app`: the subcommands and the start sequence (load, bind, detach, serve).
//! - `tls`: certificate and key loading, the server context (policy, cipher
//!   order, sessions); `tls::stream`: the async OpenSSL stream.
//! - `certgen`: `camtls gen-cert`, a key and a self-signed certificate.
//! - `auth`: who may use a route, one module a concern:
//!   - `auth::guard`: a route's access rules (`RouteGuard`), loaded from its
//!     configuration at start and on SIGHUP, and the check before a handshake;
//!   - `auth::users`: the `--auth-file` format, the Basic check, the cache of
//!     verified logins;
//!   - `auth::password`: PBKDF2 password hashes (`camtls hash-password`);
//!   - `auth::device`: the device's own login (`--backend-auth`);
//!   - `auth::allow`: `--allow` address ranges;
//!   - `auth::lockout`: the lockout of addresses that keep failing;
//!   - `auth::base64`: strict base64 for Basic tokens and hashes;
//!   - `auth::secret_file`: the warning for a secret file others can read.
//! - `stream`: client and backend streams, and the read buffer that keeps
//!   bytes received past a head.
//! - `head`: parsing, checking and rewriting request and response heads:
//!   what a head says (its facts), then the head sent on.
//! - `answer`: the responses camtls makes itself (errors, the login
//!   challenge, the redirect to https).
//! - `body`: framed body copies and two-way tunnels, under idle timeouts.
//! - `deadline`: timeouts for every wait, on one ticking task.
//! - `proxy`: one client connection and its paired backend connection, from
//!   the first request head to the close.
//! - `connect`: connecting to a backend, and the one resolver thread for
//!   backends named by host name.
//! - `redirect`: a client's first byte on a TLS port, and the redirect to
//!   https for plain HTTP there.
//! - `admission`: connection slots: the global limit, the cap per address,
//!   eviction of unfinished connections at the limit.
//! - `server`: listeners, accept loops, reload, shutdown.
//! - `signals`: SIGHUP, SIGTERM and SIGINT as events on the loop.
//! - `process`: kernel check, open-file limit, --daemon, pid file, --user.
//! - `logging`: the log, on stderr or in syslog.
//! - `allocator`: dlmalloc as the C and Rust allocator of the static builds.
//! - `compat`: link-time replacements for C library functions on targets
//!   whose dependencies or kernels fall short.
//! - `fuzzing`: property checks on arbitrary bytes, for fuzzers and tests.
//!
//! # Where a change goes
//! - A new option: `cli` parses and checks it into a `config` value; the
//!   module that acts on it takes it from there.
//! - A header or framing rule: `head` (`Facts::find` for what a request
//!   says, `write_backend_head` for what the device gets, `parse_response`
//!   and `write_client_head` for the way back); how a body is copied once
//!   framed: `body`.
//! - Who may connect or log in: the `auth` module of that concern; a
//!   route's rules come together in `auth::guard`.
//! - A limit or timeout: a named constant in the module that enforces it,
//!   or `config::Timeouts` when the command line sets it.
//! - TLS policy: `tls`; the stream adapter: `tls::stream`.
//!
//! Imports run one way: `app`, then `server`, `proxy`, `body`, `head`, down
//! to `stream`, `tls`, `config` and the `auth` modules, which need nothing
//! above them.

pub mod admission;
pub mod allocator;
pub mod answer;
pub mod app;
pub mod auth;
pub mod body;
pub mod certgen;
pub mod cli;
pub mod compat;
pub mod config;
pub mod connect;
pub mod deadline;
pub mod fuzzing;
pub mod head;
pub mod logging;
pub mod process;
pub mod proxy;
pub mod redirect;
pub mod server;
pub mod signals;
pub mod stream;
pub mod tls;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A failure that stops camtls before (or instead of) serving, worded for the
/// user: it names the file, address or option at fault.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
