use std::process::ExitCode;

use nix::sys::signal::{signal, SigHandler, Signal};

fn main() -> ExitCode {
    // Rust ignores SIGPIPE; a command whose output goes to `| head` should
    // end quietly instead of failing. The server ignores it again once it
    // starts serving (signals::install).
    // SAFETY: setting a disposition before any thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    #[cfg(target_env = "musl")]
    camtls::allocator::install_fork_handlers();
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match camtls::app::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let e = failure.error;
            // On the terminal (before --daemon detaches), and in syslog when
            // that is where the log goes.
            eprintln!("camtls: {e}");
            if camtls::logging::logs_to_syslog() {
                log::error!("{e}");
            }
            ExitCode::from(failure.status)
        }
    }
}

/// argh::from_env, but a command line argh refuses exits with
/// app::EXIT_USAGE (its own exit is 1, which supervisors retry).
fn parse_args() -> Result<camtls::cli::Args, ExitCode> {
    use argh::FromArgs;
    let Ok(words) = std::env::args_os()
        .map(|w| w.into_string())
        .collect::<Result<Vec<String>, _>>()
    else {
        eprintln!("camtls: the command line is not valid UTF-8");
        return Err(ExitCode::from(camtls::app::EXIT_USAGE));
    };
    let path = words.first().map_or("camtls", String::as_str);
    let name = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    camtls::cli::Args::from_args(&[name], &rest).map_err(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}\nRun {name} --help for more information.", exit.output);
            ExitCode::from(camtls::app::EXIT_USAGE)
        }
    })
}
