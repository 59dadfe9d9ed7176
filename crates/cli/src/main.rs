//! `mixsync`: one binary for every service (`mixsync serve <service>`) and, later, the client commands.

mod serve;

use clap::{Parser, Subcommand};

/// Self-hosted reverse ETL into Mixpanel.
#[derive(Debug, Parser)]
#[command(name = "mixsync", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a mixsync service in the foreground.
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mixsync: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mixsync: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
