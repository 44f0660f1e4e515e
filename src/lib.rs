//! The `tsmigrate` command line as a library (the binary is `src/main.rs`): each subcommand is a
//! thin shell over the core library (`tsmigrate_core`), the local Tablestore server
//! (`tablestore_server`, for `embedded:DIR` destinations and `tablestore serve`) and the
//! state-machine runner (`asl`). The integration tests and benches drive it from here.

pub mod cli;
pub mod process;
