//! Lambda function for the Verify step (design §5): the library's step, JSON in and JSON out.

use tsmigrate::steps::dispatch::Step;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tsmigrate_functions::run_step_function(Step::Verify).await
}
