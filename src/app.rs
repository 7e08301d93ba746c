//! What `camtls` does with its command line: the subcommands, and the start
//! sequence of the proxy (check, load, bind, detach, drop root, serve).

use crate::cli::{Args, Command};
use crate::server::{self, TlsState};
use crate::tls::{self, Identity};
use crate::{certgen, process, signals, Error};

pub fn main(args: Args) -> Result<(), Error> {
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
        None => serve(&args),
    }
}

fn serve(args: &Args) -> Result<(), Error> {
    let level = args.log_level().map_err(|e| Error::new(e.0))?;
    let config = args.to_config().map_err(|e| Error::new(e.0))?;
    process::init_logging(level, args.syslog || args.daemon);
    process::check_kernel()?;

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
            for warning in tls::startup_warnings(files, &identity) {
                log::warn!("{warning}");
            }
            Some(TlsState {
                files: files.clone(),
                context,
            })
        }
    };
    let user = args.user.as_deref().map(process::lookup_user).transpose()?;
    if args.check {
        for route in &config.routes {
            println!("route {} -> http://{}", route.listen, route.backend);
        }
        println!("configuration OK");
        return Ok(());
    }
    let bound = server::bind(&config.routes)?;
    if args.daemon {
        process::daemonize()?;
    }
    let _pid_file = args
        .pidfile
        .as_deref()
        .map(process::PidFile::create)
        .transpose()?;
    if let Some(user) = &user {
        process::drop_privileges(user)?;
        log::info!("running as user {}", user.name);
    }
    let signals = signals::install()?;
    server::run(config, tls, bound, signals)
}
