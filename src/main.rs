use std::process::ExitCode;

fn main() -> ExitCode {
    let args: camtls::cli::Args = argh::from_env();
    if args.version {
        println!("camtls {}", camtls::VERSION);
        return ExitCode::SUCCESS;
    }
    match args.to_config() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camtls: {e}");
            ExitCode::from(2)
        }
    }
}
