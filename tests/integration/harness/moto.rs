//! moto's server (PyPI `moto`, a real AWS API emulator: Step Functions, S3, Secrets Manager…)
//! for integration tests of both crates. Include it by path, so it needs nothing but std:
//!
//! ```ignore
//! #[path = "harness/moto.rs"] mod moto;          // tests/ of the root crate
//! #[path = "../../tests/harness/moto.rs"] mod moto; // functions/tests/
//! ```
//!
//! [`Moto::shared`] starts one server per test binary on a free loopback port. It exits by
//! itself when the test process ends, however it ends: it watches its stdin, a pipe this process
//! holds open. The python is `TSMIGRATE_PYTHON`, else the workspace's `.venv/bin/python` (which
//! `.ci/run` creates and fills). It panics with the fix when moto cannot start: it never skips.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PIP_LINE: &str = ".venv/bin/pip install 'moto[server,stepfunctions]==5.2.5'";

/// Dummy credentials and the region moto's ARNs use.
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    child: Child,
}

/// `TSMIGRATE_PYTHON`, else the first `.venv/bin/python` above the including crate.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TSMIGRATE_PYTHON") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join(".venv/bin/python"))
        .find(|p| p.exists())
        .unwrap_or_else(|| manifest.join(".venv/bin/python"))
}

impl Moto {
    /// The server of this test binary, started on first use.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// A new server (stops when dropped or when this process ends).
    pub fn start() -> Moto {
        let python = python();
        let check = Command::new(&python)
            .args(["-c", "import moto.server, flask, antlr4"])
            .output();
        match check {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "moto is not installed in {}: run .ci/run (it creates .venv and runs \
                 `{PIP_LINE}`)\n{}",
                python.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "cannot run {} ({e}): run .ci/run, which creates .venv and runs `{PIP_LINE}` \
                 (or set TSMIGRATE_PYTHON to a python with moto)",
                python.display()
            ),
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().expect("addr").port()
        };
        let log = std::env::temp_dir().join(format!("tsmigrate-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        // `python -m moto.server -H 127.0.0.1 -p PORT`, plus a thread that ends the server when
        // stdin closes (this process exited, however it exited).
        let script = "import os, sys, threading\n\
                      threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
                      from moto.server import main\n\
                      main(sys.argv[1:])\n";
        let mut child = Command::new(&python)
            .args(["-c", script, "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto with {}: {e}; run .ci/run",
                    python.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut text = String::new();
                let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
                panic!(
                    "moto exited ({status}) before answering; run .ci/run to (re)install it\n{text}"
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on 127.0.0.1:{port} within 60 s (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child,
        }
    }

    /// `POST /moto-api/config` (e.g. `{"stepfunctions": {"execute_state_machine": true}}`, which
    /// makes moto run executions instead of leaving them `RUNNING`). Server-wide.
    pub fn configure(&self, json: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        let request = format!(
            "POST /moto-api/config HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            self.port,
            json.len()
        );
        stream.write_all(request.as_bytes()).expect("send to moto");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2"),
            "moto refused config {json}: {answer}"
        );
    }

    /// Environment for a child process (the CLI) that talks to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
