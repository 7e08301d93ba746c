use std::process::ExitCode;

use nix::sys::signal::{signal, SigHandler, Signal};

fn main() -> ExitCode {
    // Rust ignores SIGPIPE; a command whose output goes to `| head` should
    // end quietly instead of failing. The server ignores it again once it
    // starts serving (signals::install).
    // SAFETY: setting a disposition before any thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let args: camtls::cli::Args = argh::from_env();
    match camtls::app::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // On the terminal (before --daemon detaches), and in syslog when
            // that is where the log goes.
            eprintln!("camtls: {e}");
            if camtls::process::logs_to_syslog() {
                log::error!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}
