use std::process::ExitCode;

fn main() -> ExitCode {
    let args: camtls::cli::Args = argh::from_env();
    match camtls::app::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Before --daemon detaches this reaches the terminal; after, the log.
            eprintln!("camtls: {e}");
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
