//! The integration tests, one binary: linking one test binary instead of fifteen saves minutes
//! on two cores, and the private MariaDB (`harness::mariadb::MariaDb::shared`) starts once.
//! Each module is one subject; run one with `cargo test --test integration full_copy::`.

mod harness;

mod asl_live;
#[cfg(feature = "aws")]
mod aws_cli;
mod batch_writer;
mod binlog_charsets;
mod binlog_files;
mod binlog_stream;
mod chaos;
mod chunk_reader;
mod cli_run;
mod config_reference;
mod crash_trials;
mod execution_ended;
mod full_copy;
mod hostile_input;
mod incremental;
mod incremental_trials;
mod mysql_source;
mod node_sdk_conformance;
mod precheck_schema;
mod runner;
mod runner_scale;
mod samplconfig;
mod sdk_conformance;
mod server_durability;
mod server_robustness;
mod source_tls;
mod state_store;
mod steps_resume;
mod tablestore_client;
mod where_filter;
