//! `mixsync`: one binary for every service (`mixsync serve <service>`), the client commands over the
//! gRPC API, `mixsync demo` and `mixsync bench`.
//!
//! The services it starts and how they fit together: docs/architecture.md.

mod activation_file;
mod client;
mod commands;
mod demo;
mod output;
mod progress;
mod seed;
mod serve;
mod stack;
mod views;

use clap::{Parser, Subcommand};

use commands::activation::ActivationCommand;
use commands::failed::FailedCommand;
use commands::run::RunCommand;
use commands::target::TargetCommand;
use commands::warehouse::WarehouseCommand;
use output::Output;

/// Self-hosted reverse ETL into Mixpanel.
#[derive(Debug, Parser)]
#[command(name = "mixsync", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    server: client::ServerArgs,
    /// Output style.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a mixsync service (or all of them) in the foreground.
    Serve(serve::ServeArgs),
    /// Warehouses: the databases activations read from.
    #[command(subcommand)]
    Warehouse(WarehouseCommand),
    /// Targets: Mixpanel projects.
    #[command(subcommand)]
    Target(TargetCommand),
    /// Activations: query + mapping + target.
    #[command(subcommand)]
    Activation(ActivationCommand),
    /// Runs of activations.
    #[command(subcommand)]
    Run(RunCommand),
    /// Failed records: list them by reason, show one, replay a run's.
    #[command(subcommand)]
    Failed(FailedCommand),
    /// The whole job on this machine: seed a sample warehouse, start every service and an emulator,
    /// sync the sample events and print the run report.
    Demo(demo::DemoArgs),
    /// The demo timed: end-to-end events/s, CPU and peak memory; rate limits off unless
    /// `--cap` asks how fully a shared cap is used.
    Bench(demo::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mixsync: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mixsync: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let output = cli.output;
    let connect = || async {
        let token = cli.server.token()?;
        client::connect(&cli.server.server, token.as_deref(), &cli.server.tls).await
    };
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Warehouse(command) => {
            commands::warehouse::run(connect().await?, output, command).await
        }
        Command::Target(command) => commands::target::run(connect().await?, output, command).await,
        Command::Activation(command) => {
            command.preflight()?;
            commands::activation::run(connect().await?, output, command).await
        }
        Command::Run(command) => commands::run::run(connect().await?, output, command).await,
        Command::Failed(command) => commands::failed::run(connect().await?, output, command).await,
        Command::Demo(args) => demo::run(args, output, None).await,
        Command::Bench(args) => {
            let (args, bench) = args.split();
            demo::run(args, output, Some(bench)).await
        }
    }
}
