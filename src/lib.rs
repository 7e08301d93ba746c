//! camtls: a single-threaded TLS-terminating reverse proxy for plain-HTTP
//! devices (IP cameras first), small enough for a home router.
//!
//! # Layout
//! - `cli`: the command line and its translation into a validated `Config`.
pub mod cli;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
