//! The functions' tests, one binary: handlers called as the Lambda runtime calls them, the
//! start-migration event shapes, and the AWS clients against moto's emulator.

mod aws_emulator;
mod execution_ended;
mod start_migration;
mod step_handlers;
mod template;
