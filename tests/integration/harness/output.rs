//! What a CLI run printed, for assertion messages. Include by path (`#[path =
//! "harness/output.rs"] mod output;`) or through `mod harness;`.

use std::process::Output;

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
