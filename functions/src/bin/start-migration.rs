//! Lambda function `start-migration`: starts the migration state machine (from env
//! `STATE_MACHINE_ARN`) for an EventBridge event or a direct invoke; see
//! `tsmigrate_functions::start`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tsmigrate_functions::run_start_migration_function().await
}
