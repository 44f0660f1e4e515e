//! The one Lambda binary (`bootstrap`): every function of the SAM template runs it and names its
//! job in the environment variable `TSMIGRATE_FUNCTION` (`precheck`, `create-schema`, `begin`,
//! `plan-chunks`, `copy-chunk`, `verify`, `binlog-batch`, `finish`, `start-migration` or
//! `execution-ended`). One build, one zip; each function keeps its own memory, timeout and role
//! in the template.

use tsmigrate_functions::{function_from_env, Function};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    match function_from_env()? {
        Function::Step(step) => tsmigrate_functions::run_step_function(step).await,
        Function::StartMigration => tsmigrate_functions::run_start_migration_function().await,
        Function::ExecutionEnded => tsmigrate_functions::run_execution_ended_function().await,
    }
}
