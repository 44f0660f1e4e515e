//! Running the CLI, and what a run printed for assertion messages. Include by path (`#[path =
//! "harness/output.rs"] mod output;`) or through `mod harness;`.

use std::process::{Child, Command, Output, Stdio};

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

/// Starts `tsmigrate run --config CONFIG` in the background, output captured (the trials kill
/// and restart it).
pub fn spawn_run(config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args(["run", "--config", config])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tsmigrate run")
}

/// Sends `sig` to a child process.
pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "could not signal pid {}", child.id());
}

/// `(chunks done, chunks, rows copied)` of the `chunks:` line of `tsmigrate status`; `None`
/// when there is no such line.
pub fn status_chunks(config: &str) -> Option<(u64, u64, u64)> {
    let out = tsmigrate(&["status", "--config", config]);
    assert!(out.status.success(), "status failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("chunks: "))?;
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    assert_eq!(nums.len(), 3, "unexpected status line {line:?}");
    Some((nums[0], nums[1], nums[2]))
}
