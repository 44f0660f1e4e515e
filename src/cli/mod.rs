//! The `tsmigrate` command line. Each subcommand is a thin shell over library functions.

#[cfg(feature = "aws")]
mod aws_cmd;
mod config_cmd;
pub mod embedded;
mod local_run;
pub mod run_cmd;
mod step_cmd;
mod steps_cmd;
mod tablestore_cmd;

use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use steps_cmd::Local;

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
    /// Run a migration locally: the state machine in this process (Ctrl-C stops; run again
    /// to resume).
    Run {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// What the state machine runs after the full copy.
        #[arg(long, value_enum, default_value_t = ModeArg::FullAndIncremental)]
        mode: ModeArg,
    },
    /// One state-machine step as its Lambda runs it (input on stdin, output on stdout), for a
    /// second ASL engine driving the real steps; `--execution-input` prints the run's input.
    #[command(hide = true)]
    Step {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = ModeArg::FullAndIncremental)]
        mode: ModeArg,
        /// Print the execution input instead of running a step.
        #[arg(long, conflicts_with = "resource")]
        execution_input: bool,
        /// The step's resource name (Precheck, Begin, CopyChunk, BinlogBatch, …).
        #[arg(required_unless_present = "execution_input")]
        resource: Option<String>,
    },
    /// Check every precondition of a migration (exit 0 passed, 1 a check failed, 2 could not run).
    Precheck {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Print the items as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create the destination tables (and the state table) from the source tables.
    CreateSchema {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Compare source and destination rows (every chunk of the plan), listing mismatching keys.
    /// With incremental migration, mismatches are compared again once the binlog has been
    /// applied past the first comparison; only those that persist are reported.
    Verify {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Only this chunk.
        #[arg(long)]
        chunk: Option<u32>,
    },
    /// Stop a migration for cut-over: its binlog loop ends successfully at the next batch
    /// (`--resume` withdraws the request).
    Stop {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Withdraw an earlier stop request.
        #[arg(long)]
        resume: bool,
    },
    /// Show a migration's phase, chunk progress, checkpoint and dirty rows from the state store.
    Status {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the JSON Schema of the migration config.
    Schema,
    /// Migration config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The local Tablestore server and tools that talk to a Tablestore endpoint.
    Tablestore {
        #[command(subcommand)]
        command: tablestore_cmd::TablestoreCommand,
    },
    /// The migration on AWS Step Functions: start an execution, show its status.
    #[cfg(feature = "aws")]
    Aws {
        #[command(subcommand)]
        command: aws_cmd::AwsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a migration config: parse it and list every problem at once.
    Check {
        /// The migration config file (JSON).
        file: PathBuf,
    },
}

/// The execution input's `mode` (design §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ModeArg {
    /// Schema and full copy as configured, then the binlog loop without end.
    FullAndIncremental,
    /// Replay the binlog until caught up, then finish (scheduled catch-up runs).
    CatchUp,
}

impl ModeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeArg::FullAndIncremental => "full_and_incremental",
            ModeArg::CatchUp => "catch_up",
        }
    }
}

#[cfg(feature = "aws")]
impl From<ModeArg> for tsmigrate_core::aws::sfn::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::FullAndIncremental => Self::FullAndIncremental,
            ModeArg::CatchUp => Self::CatchUp,
        }
    }
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let code = dispatch(cli).await;
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Run { config, mode } => run_cmd::run(&config, mode).await,
        Command::Step {
            config,
            mode,
            resource,
            ..
        } => step_cmd::step(&config, mode, resource.as_deref()).await,
        Command::Precheck { config, json } => {
            steps_cmd::run(&config, Local::Precheck { json }).await
        }
        Command::CreateSchema { config } => steps_cmd::run(&config, Local::CreateSchema).await,
        Command::Verify { config, chunk } => steps_cmd::run(&config, Local::Verify { chunk }).await,
        Command::Status { config } => steps_cmd::run(&config, Local::Status).await,
        Command::Stop { config, resume } => steps_cmd::run(&config, Local::Stop { resume }).await,
        Command::Schema => config_cmd::schema_cmd(),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config_cmd::check_cmd(&file),
        Command::Tablestore { command } => tablestore_cmd::run(command).await,
        #[cfg(feature = "aws")]
        Command::Aws { command } => aws_cmd::run(command).await,
    }
}

/// Logs go to stderr so stdout stays machine-readable. `RUST_LOG` overrides the level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
