//! A private MariaDB for integration tests (design §9).
//!
//! [`MariaDb::shared`] starts ONE server per test binary, lazily, on first use: `mariadbd
//! --no-defaults` (first option, so /etc/mysql is never read) with its own datadir, socket
//! and free TCP port on 127.0.0.1, binlog on (ROW, FULL image, FULL row metadata,
//! server-id 1). [`MariaDb::start_with`] starts another, owned server with extra flags for
//! bad-setup tests; it stops when dropped.
//!
//! Lifetime: a server in a static is never dropped, so every mariadbd is spawned with
//! `PR_SET_PDEATHSIG = SIGKILL` from a dedicated spawner thread that lives as long as the
//! process (the signal follows the spawning *thread*, and libtest ends a test's thread when
//! the test ends). A watchdog shell (own process group) removes this process's data
//! directories once the test process is gone.
//!
//! Users: `tsm_admin` (ALL PRIVILEGES, for setup) and `tsmigrate` (SELECT, REPLICATION SLAVE,
//! REPLICATION CLIENT, BINLOG MONITOR ON *.*), both `@'%'` with passwords. If the server
//! cannot start, the harness panics with the tail of the server's error log: it never skips.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tsmigrate_core::mysql::{self, Conn, ConnectOptions, TlsMode};

pub const ADMIN_USER: &str = "tsm_admin";
pub const ADMIN_PASSWORD: &str = "tsm-admin-pass";
pub const USER: &str = "tsmigrate";
pub const USER_PASSWORD: &str = "tsmigrate-pass";

/// The default flags after the per-server ones (`--log-bin` is added unless an extra flag
/// is `--skip-log-bin`). Extra flags come last and so win.
const BINLOG_FLAGS: &[&str] = &[
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--server-id=1",
];

const START_TIMEOUT: Duration = Duration::from_secs(90);

pub struct MariaDb {
    dir: PathBuf,
    port: u16,
    socket: PathBuf,
    child: Mutex<Option<Child>>,
    next_db: AtomicUsize,
    extra: Vec<String>,
}

impl MariaDb {
    /// The server shared by every test of this binary; started by the first caller.
    pub fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<MariaDb> = OnceLock::new();
        SHARED.get_or_init(|| MariaDb::start_with(&[]))
    }

    /// Starts a separate server with `extra` flags appended (e.g. `--skip-log-bin`,
    /// `--binlog-format=STATEMENT`). Blocks until it accepts connections; panics with the
    /// error log if it does not. The server stops when the value is dropped.
    pub fn start_with(extra: &[&str]) -> MariaDb {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match start_once(extra) {
                Ok(db) => return db,
                Err(StartError::PortTaken(log)) => last_log = log,
                Err(StartError::Fatal(msg)) => panic!("{msg}"),
            }
        }
        panic!("mariadbd could not bind a free port three times; error log:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (benches read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        let guard = match self.child.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.as_ref().map(Child::id)
    }

    /// Stops the server (SIGTERM: a clean shutdown) and starts it again on the same data, port
    /// and flags; blocks until it accepts connections again.
    pub fn restart(&self) {
        self.restart_after(libc::SIGTERM)
    }

    /// [`MariaDb::restart`] after a crash: SIGKILL, so InnoDB recovers on start.
    pub fn restart_after_crash(&self) {
        self.restart_after(libc::SIGKILL)
    }

    fn restart_after(&self, signal: libc::c_int) {
        let mut guard = match self.child.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(mut child) = guard.take() {
            // SAFETY: a plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
            let _ = child.wait();
        }
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let mut child = match launch(&self.dir, self.port, &extra) {
            Ok(c) => c,
            Err(StartError::PortTaken(m) | StartError::Fatal(m)) => panic!("restart: {m}"),
        };
        if let Err(StartError::PortTaken(m) | StartError::Fatal(m)) =
            wait_ready(&mut child, &self.dir, self.port, &extra)
        {
            panic!("restart: {m}");
        }
        *guard = Some(child);
    }

    /// The data directory (the binlog files are `binlog.NNNNNN` in it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn admin_url(&self) -> String {
        format!(
            "mysql://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{}/",
            self.port
        )
    }

    pub fn user_url(&self) -> String {
        format!("mysql://{USER}:{USER_PASSWORD}@127.0.0.1:{}/", self.port)
    }

    /// Connect options of the admin account (no TLS: the test server has none).
    pub fn admin_options(&self) -> ConnectOptions {
        ConnectOptions::new("127.0.0.1", self.port, ADMIN_USER, ADMIN_PASSWORD)
            .with_tls(TlsMode::Disabled)
    }

    /// Connect options of the `tsmigrate` account.
    pub fn user_options(&self) -> ConnectOptions {
        ConnectOptions::new("127.0.0.1", self.port, USER, USER_PASSWORD).with_tls(TlsMode::Disabled)
    }

    /// A new admin connection (on the calling test's runtime).
    pub async fn admin_conn(&self) -> Conn {
        match mysql::connect(&self.admin_options()).await {
            Ok(c) => c,
            Err(e) => panic!(
                "admin connection to the test MariaDB failed: {e}\nerror log:\n{}",
                self.error_log_tail(30)
            ),
        }
    }

    /// Runs SQL (several statements allowed) as the admin; panics on error.
    pub async fn exec(&self, sql: &str) {
        use mysql_async::prelude::Queryable;
        let mut conn = self.admin_conn().await;
        if let Err(e) = conn.query_drop(sql).await {
            panic!("test SQL failed: {e}\nSQL: {sql}");
        }
        mysql::close(conn).await;
    }

    /// Creates a database with a name unique on this server and returns the name.
    pub async fn fresh_database(&self, prefix: &str) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{n}");
        self.exec(&format!("CREATE DATABASE `{name}`")).await;
        name
    }

    /// The last `lines` lines of the server's error log.
    pub fn error_log_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("mysqld.err"), lines)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(mut child) = guard.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum StartError {
    PortTaken(String),
    Fatal(String),
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let all: Vec<&str> = s.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Finds a program in PATH or in the usual Debian locations.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` not found. The MySQL integration tests need a local MariaDB: \
             apt-get install -y mariadb-server (.ci/run installs it)"
        )
    })
}

/// This process's directory for server data; a watchdog removes it when the process ends.
fn process_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("tsm-mariadb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        if let Err(e) = std::fs::create_dir_all(&root) {
            panic!("cannot create {}: {e}", root.display());
        }
        let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; sleep 2; rm -rf \"$2\"";
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("tsm-mariadb-watchdog")
            .arg(std::process::id().to_string())
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        if let Err(e) = spawned {
            panic!("cannot start the cleanup watchdog: {e}");
        }
        root
    })
}

/// A datadir made once per process by mariadb-install-db; each server gets a copy.
fn template_datadir() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = process_root().join("template");
        let log = process_root().join("install.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup a file handle: {e}"));
        let status = Command::new(program("mariadb-install-db"))
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", dir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--innodb-log-file-size=8M")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status();
        match status {
            Ok(s) if s.success() => dir,
            Ok(s) => panic!(
                "mariadb-install-db failed ({s}); its output:\n{}",
                tail(&log, 40)
            ),
            Err(e) => panic!("cannot run mariadb-install-db: {e}"),
        }
    })
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns from one thread that lives as long as the process, so PR_SET_PDEATHSIG fires when
/// the process ends, not when the test thread that started a server ends.
fn spawn_tied_to_process(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let started = std::thread::Builder::new()
            .name("mariadb-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = started {
            panic!("cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot find a free TCP port: {e}"),
    }
}

fn start_once(extra: &[&str]) -> Result<MariaDb, StartError> {
    static SERVERS: AtomicUsize = AtomicUsize::new(0);
    let n = SERVERS.fetch_add(1, Ordering::SeqCst);
    let dir = process_root().join(format!("s{n}"));
    let data = dir.join("data");
    copy_dir(template_datadir(), &data)
        .map_err(|e| StartError::Fatal(format!("cannot copy the template datadir: {e}")))?;
    let port = free_port();
    let mut child = launch(&dir, port, extra)?;
    if let Err(e) = wait_ready(&mut child, &dir, port, extra) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let socket = dir.join("mysqld.sock");
    let err_log = dir.join("mysqld.err");

    let setup = format!(
        "CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;
         CREATE USER '{USER}'@'%' IDENTIFIED BY '{USER_PASSWORD}';
         GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO '{USER}'@'%';"
    );
    if let Err(e) = cli(&socket, &setup) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(StartError::Fatal(format!(
            "creating the test users failed: {e}\nerror log:\n{}",
            tail(&err_log, 40)
        )));
    }
    Ok(MariaDb {
        dir,
        port,
        socket,
        child: Mutex::new(Some(child)),
        next_db: AtomicUsize::new(0),
        extra: extra.iter().map(|a| a.to_string()).collect(),
    })
}

/// Starts mariadbd on the server directory `dir` (its datadir already in place).
fn launch(dir: &Path, port: u16, extra: &[&str]) -> Result<Child, StartError> {
    let data = dir.join("data");
    let socket = dir.join("mysqld.sock");
    let err_log = dir.join("mysqld.err");
    let mut cmd = Command::new(program("mariadbd"));
    cmd.arg("--no-defaults") // must be first
        .arg("--user=root")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--log-error={}", err_log.display()))
        .arg("--skip-name-resolve")
        .arg("--innodb-log-file-size=8M")
        .arg("--innodb-buffer-pool-size=64M")
        .arg("--character-set-server=utf8mb4")
        .arg("--collation-server=utf8mb4_general_ci");
    if !extra.iter().any(|a| a.starts_with("--skip-log-bin")) {
        cmd.arg(format!("--log-bin={}", data.join("binlog").display()));
    }
    cmd.args(BINLOG_FLAGS).args(extra);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_tied_to_process(cmd).map_err(|e| StartError::Fatal(format!("cannot start mariadbd: {e}")))
}

/// Waits until the server started by [`launch`] accepts connections.
fn wait_ready(child: &mut Child, dir: &Path, port: u16, extra: &[&str]) -> Result<(), StartError> {
    let socket = dir.join("mysqld.sock");
    let err_log = dir.join("mysqld.err");

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = tail(&err_log, 40);
            if log.contains("Address already in use") || log.contains("Can't start server: Bind") {
                return Err(StartError::PortTaken(log));
            }
            return Err(StartError::Fatal(format!(
                "mariadbd exited during start-up ({status}) with flags {extra:?}; error log:\n{log}"
            )));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && cli(&socket, "SELECT 1").is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::Fatal(format!(
                "mariadbd did not become ready within {START_TIMEOUT:?}; error log:\n{}",
                tail(&err_log, 40)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    Ok(())
}

/// Runs SQL through the `mariadb` client as root over the socket (used before the users
/// exist, and independent of any async runtime).
fn cli(socket: &Path, sql: &str) -> Result<String, String> {
    let out = Command::new(program("mariadb"))
        .arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", socket.display()))
        .arg("--batch")
        .arg("-e")
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the mariadb client: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
