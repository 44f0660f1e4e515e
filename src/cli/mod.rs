//! The `tsmigrate` command line. Each subcommand is a thin shell over library functions.

mod tablestore_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tsmigrate",
    version,
    about = "Migrate MySQL into Alibaba Cloud Tablestore"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The local Tablestore server and tools that talk to a Tablestore endpoint.
    Tablestore {
        #[command(subcommand)]
        command: tablestore_cmd::TablestoreCommand,
    },
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Tablestore { command } => tablestore_cmd::run(command).await,
    }
}

/// Logs go to stderr so stdout stays machine-readable. `RUST_LOG` overrides the level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
