//! Running the CLI, and what a run printed for assertion messages. Include by path (`#[path =
//! "harness/output.rs"] mod output;`) or through `mod harness;`.

use std::process::{Command, Output};

/// Runs the `tsmigrate` binary of this build with `args` and waits for it.
pub fn tsmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args(args)
        .output()
        .expect("run tsmigrate")
}

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
