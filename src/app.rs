//! What `camtls` does with its command line: the subcommands, and the start
//! sequence of the proxy (check, load, bind, detach, drop root, serve).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use crate::auth::{guard, password, users};
use crate::cli::{Args, Command};
use crate::server::{self, TlsState};
use crate::tls::{self, Identity};
use crate::{certgen, logging, process, signals, Error};

/// Exit status for a failure that may pass on a retry: a port in use, a
/// certificate not there yet, a file that cannot be read now.
pub const EXIT_RETRY: u8 = 1;
/// Exit status for a command line or configuration that is wrong: starting
/// again as it is cannot help, so supervisors stop restarting.
pub const EXIT_USAGE: u8 = 2;

/// Why camtls stopped, with the exit status that says whether to retry.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub status: u8,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            status: EXIT_RETRY,
        }
    }
}

fn usage(error: Error) -> Failure {
    Failure {
        error,
        status: EXIT_USAGE,
    }
}

pub fn main(args: Args) -> Result<(), Failure> {
    if args.version {
        println!("camtls {}", crate::VERSION);
        return Ok(());
    }
    match &args.command {
        Some(Command::GenCert(gen)) => {
            let fingerprint = certgen::generate(gen)?;
            println!("wrote {} and {}", gen.cert.display(), gen.key.display());
            println!("SHA-256 fingerprint {fingerprint}");
            Ok(())
        }
        Some(Command::Fingerprint(f)) => {
            println!("{}", tls::fingerprint_file(&f.file)?);
            Ok(())
        }
        Some(Command::HashPassword(h)) => Ok(hash_password(h.user.as_deref())?),
        None => serve(&args),
    }
}

fn serve(args: &Args) -> Result<(), Failure> {
    let level = args.log_level().map_err(|e| usage(Error::new(e.0)))?;
    let config = args.to_config().map_err(|e| usage(Error::new(e.0)))?;
    logging::init_logging(level, args.syslog || args.daemon);
    process::check_kernel().map_err(usage)?;
    let tls = match &config.tls {
        None => None,
        Some(files) => {
            let identity = Identity::load(files)?;
            let context = identity.server_context()?;
            log::info!(
                "certificate {} SHA-256 fingerprint {}",
                files.cert.display(),
                identity.fingerprint()
            );
            if tls::cpu_has_aes() {
                log::info!("TLS: AES instructions found; clients' order of cipher suites kept");
            } else {
                log::info!("TLS: no AES instructions; ChaCha20-Poly1305 first for every client");
            }
            for warning in tls::startup_warnings(files, &identity) {
                log::warn!("{warning}");
            }
            Some(TlsState {
                files: files.clone(),
                context,
            })
        }
    };
    let guards = guard::load_guards(&config.routes)?;
    let user = args
        .user
        .as_deref()
        .map(process::lookup_user)
        .transpose()
        .map_err(usage)?;
    if args.check {
        for route in &config.routes {
            println!("route {} -> http://{}", route.listen, route.backend);
        }
        println!("configuration OK");
        return Ok(());
    }
    let bound = server::bind(&config.routes)?;
    let mut config = config;
    config.max_connections = process::fit_descriptor_limit(config.max_connections, bound.len());
    // A detached process works from /, so paths read later (the pid file,
    // the certificate on SIGHUP) must not depend on the directory.
    let pid_path = args.pidfile.as_deref().map(absolute).transpose()?;
    let tls = match tls {
        Some(mut state) => {
            state.files.cert = absolute(&state.files.cert)?;
            state.files.key = state.files.key.as_deref().map(absolute).transpose()?;
            Some(state)
        }
        None => None,
    };
    let detached = if args.daemon {
        Some(process::daemonize()?)
    } else {
        None
    };
    let started = (|| {
        let pid_file = pid_path
            .as_deref()
            .map(process::PidFile::create)
            .transpose()?;
        if let Some(user) = &user {
            process::drop_privileges(user)?;
            log::info!("running as user {}", user.name);
        }
        Ok::<_, Error>((pid_file, signals::install()?))
    })();
    let (_pid_file, signals) = match (started, detached) {
        (Ok(started), Some(detached)) => {
            detached.ready();
            started
        }
        (Ok(started), None) => started,
        (Err(e), Some(detached)) => {
            detached.failed(&e);
            return Err(e.into());
        }
        (Err(e), None) => return Err(e.into()),
    };
    Ok(server::run(config, tls, bound, guards, signals)?)
}

fn absolute(path: &std::path::Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// `camtls hash-password`: the password from the terminal (no echo, asked
/// twice) or from the first line of standard input.
fn hash_password(user: Option<&str>) -> Result<(), Error> {
    if let Some(name) = user {
        users::check_user_name(name)
            .map_err(|why| Error::new(format!("--user {name:?}: {why}")))?;
    }
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Again: ")?;
        if first != again {
            return Err(Error::new("the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::new(format!("cannot read the password: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err(Error::new("the password is empty"));
    }
    let hash = password::hash_password(&password).map_err(Error::new)?;
    match user {
        Some(name) => println!("{}", users::format_line(name, &hash)),
        None => println!("{hash}"),
    }
    Ok(())
}

fn read_hidden(prompt: &str) -> Result<String, Error> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| Error::new(format!("terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| Error::new(format!("terminal: {e}")))?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.map_err(|e| Error::new(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
