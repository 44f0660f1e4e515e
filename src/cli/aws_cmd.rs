//! `tsmigrate aws start` and `tsmigrate aws status`: the migration state machine on AWS, from a
//! workstation. The same code as the `start-migration` function ([`tsmigrate_core::aws::sfn`]): the same
//! validation, execution input and deterministic name, so starting twice starts once.
//!
//! Credentials and region come from the standard AWS environment/profile chain (`AWS_PROFILE`,
//! `AWS_ACCESS_KEY_ID`…, `~/.aws/config`); the region of an ARN argument wins, since that is
//! where the resource lives. `AWS_ENDPOINT_URL` points the client elsewhere (an emulator).
//!
//! Exit codes: 0 done (`status`: running or succeeded), 1 refused (`start`: the config or
//! request is invalid; `status`: the execution failed, timed out or was aborted), 2 could not
//! run (unreadable file, no credentials or region, AWS said no or could not be reached).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::ModeArg;

use tsmigrate_core::aws::sfn::{self, ExecutionRequest, Mode, SfnError};
use tsmigrate_core::config::{self, ConfigError};

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Start a migration on AWS: one execution of the state machine, or the one this same
    /// request already started.
    Start {
        /// The migration state machine (the stack output StateMachineArn).
        #[arg(long, value_name = "ARN")]
        state_machine_arn: String,
        /// The migration config (JSON); secrets must be {"secret_arn": …} or {"env": …}.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// What the state machine runs after the full copy.
        #[arg(long, value_enum, default_value_t = ModeArg::FullAndIncremental)]
        mode: ModeArg,
        /// Run the Verify step after the full copy.
        #[arg(long)]
        verify: bool,
        /// Start a new execution of a config that already ran (names stay taken 90 days). The
        /// same key as a direct invoke's idempotency_key gives the same execution.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an execution's status, start and stop dates, and on failure its error and cause.
    Status {
        /// The execution (`tsmigrate aws start` prints it).
        #[arg(long, value_name = "ARN")]
        execution_arn: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The dedup key of a start without `--idempotency-key`: one execution per config and mode.
const CLI_DEDUP_KEY: &str = "cli";

/// A failure: exit code, problem, fix.
struct Failed {
    code: i32,
    problem: String,
    fix: Option<String>,
}

impl Failed {
    fn report(self) -> i32 {
        eprintln!("error: {}", self.problem);
        if let Some(fix) = self.fix {
            eprintln!("fix: {fix}");
        }
        self.code
    }
}

fn from_sfn(e: SfnError) -> Failed {
    let code = match e {
        SfnError::Invalid(_) | SfnError::NameTaken { .. } => 1,
        _ => 2,
    };
    let fix = e.fix().map(str::to_owned);
    Failed {
        code,
        problem: e.to_string(),
        fix,
    }
}

pub async fn run(command: AwsCommand) -> i32 {
    let outcome = match command {
        AwsCommand::Start {
            state_machine_arn,
            config,
            mode,
            verify,
            idempotency_key,
            json,
        } => {
            start(
                &state_machine_arn,
                &config,
                mode.into(),
                verify.then_some(true),
                idempotency_key,
                json,
            )
            .await
        }
        AwsCommand::Status {
            execution_arn,
            json,
        } => status(&execution_arn, json).await,
    };
    outcome.unwrap_or_else(Failed::report)
}

/// A Step Functions client from the standard chain, in the region of `arn` when it names one.
async fn client(arn: &str) -> Result<aws_sdk_sfn::Client, Failed> {
    let mut loader = tsmigrate_core::aws::config_loader();
    let arn_region = arn
        .split(':')
        .nth(3)
        .filter(|r| arn.starts_with("arn:") && !r.is_empty());
    if let Some(region) = arn_region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Failed {
            code: 2,
            problem: format!("no AWS region, and {arn} does not name one"),
            fix: Some(
                "pass a full ARN (arn:aws:states:REGION:…), or set AWS_REGION or a region in \
                 the AWS profile"
                    .to_owned(),
            ),
        });
    }
    Ok(aws_sdk_sfn::Client::new(&sdk))
}

fn load(path: &Path) -> Result<config::MigrationConfig, Failed> {
    config::load(path).map_err(|e| match e {
        e @ ConfigError::Io { .. } => Failed {
            code: 2,
            problem: e.to_string(),
            fix: Some("check the --config path".to_owned()),
        },
        e => Failed {
            code: 1,
            problem: format!("invalid config: {e}"),
            fix: Some(format!(
                "correct it; `tsmigrate config check {}` lists every problem",
                path.display()
            )),
        },
    })
}

async fn start(
    state_machine_arn: &str,
    path: &Path,
    mode: Mode,
    verify: Option<bool>,
    idempotency_key: Option<String>,
    json: bool,
) -> Result<i32, Failed> {
    let config = load(path)?;
    let dedup_key = match idempotency_key {
        Some(key) if key.is_empty() || key.len() > 256 => {
            return Err(Failed {
                code: 1,
                problem: "--idempotency-key must be 1-256 characters".to_owned(),
                fix: None,
            })
        }
        // The direct invoke's spelling: the same key reaches the same execution either way.
        Some(key) => format!("key:{key}"),
        None => CLI_DEDUP_KEY.to_owned(),
    };
    let request = ExecutionRequest::new(config, mode, verify, dedup_key).map_err(|e| {
        let mut failed = from_sfn(e);
        failed.problem = format!("invalid config {}: {}", path.display(), failed.problem);
        failed
            .fix
            .get_or_insert_with(|| "correct the config and start again".to_owned());
        failed
    })?;
    let sfn = client(state_machine_arn).await?;
    let started = sfn::start_or_find(&sfn, state_machine_arn, &request)
        .await
        .map_err(from_sfn)?;
    if json {
        let text = serde_json::to_string_pretty(&started).map_err(|e| Failed {
            code: 2,
            problem: format!("cannot print the outcome: {e}"),
            fix: None,
        })?;
        println!("{text}");
    } else {
        println!("execution_arn: {}", started.execution_arn);
        if started.started {
            println!("started: yes");
        } else {
            println!(
                "started: no, it already existed (status {}); pass --idempotency-key to start \
                 another",
                started.existing_status.as_deref().unwrap_or("unknown")
            );
        }
    }
    Ok(0)
}

async fn status(execution_arn: &str, json: bool) -> Result<i32, Failed> {
    let sfn = client(execution_arn).await?;
    let info = sfn::describe(&sfn, execution_arn).await.map_err(from_sfn)?;
    if json {
        let text = serde_json::to_string_pretty(&info).map_err(|e| Failed {
            code: 2,
            problem: format!("cannot print the status: {e}"),
            fix: None,
        })?;
        println!("{text}");
    } else {
        println!("execution_arn: {}", info.execution_arn);
        println!("status: {}", info.status);
        println!("start_date: {}", info.start_date);
        println!("stop_date: {}", info.stop_date.as_deref().unwrap_or("-"));
        if let Some(error) = &info.error {
            println!("error: {error}");
        }
        if let Some(cause) = &info.cause {
            println!("cause: {cause}");
        }
    }
    Ok(if info.unsuccessful() { 1 } else { 0 })
}
