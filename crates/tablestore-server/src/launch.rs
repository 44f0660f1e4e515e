//! Starting and stopping the local server, in-process or from the CLI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::Identity;
use super::engine::{Engine, EngineOptions};
use super::faults::{ChaosConfig, FaultInjector};
use super::service::{serve, Shared};

/// Settings of a local server.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub instance: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub max_tables: usize,
    pub cache_bytes: usize,
    /// The random chaos mode (faults and latency), off when None.
    pub chaos: Option<ChaosConfig>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("instance", &self.instance)
            .field("access_key_id", &self.access_key_id)
            .field("max_tables", &self.max_tables)
            .field("chaos", &self.chaos)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A loopback server on a free port with the given data directory.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            instance: "local".into(),
            access_key_id: "local-ak".into(),
            access_key_secret: "local-secret".into(),
            max_tables: tablestore::limits::DEFAULT_MAX_TABLES,
            cache_bytes: 64 * 1024 * 1024,
            chaos: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the data directory {dir}: {detail}")]
    Storage { dir: PathBuf, detail: String },
    #[error(
        "cannot listen on {addr}: {source}. Pick another --listen address or stop what uses it"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    addr: SocketAddr,
    config: ServerConfig,
    faults: Arc<FaultInjector>,
    engine: Engine,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Fault injection for tests.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Direct engine access (tests, embedded tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Client settings that reach this server.
    pub fn client_config(&self) -> tablestore::client::ClientConfig {
        tablestore::client::ClientConfig::new(
            self.endpoint(),
            self.config.instance.clone(),
            self.config.access_key_id.clone(),
            self.config.access_key_secret.clone(),
        )
    }

    /// Stops accepting, lets open requests finish, and waits for the accept loop.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the accept loop ends (it runs until `shutdown`).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Opens the store, binds the port and starts serving on the current tokio runtime.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let engine = Engine::open(
        &config.data_dir,
        EngineOptions {
            max_tables: config.max_tables,
            cache_bytes: config.cache_bytes,
        },
    )
    .map_err(|e| ServerError::Storage {
        dir: config.data_dir.clone(),
        detail: e.message,
    })?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let faults = Arc::new(FaultInjector::default());
    if let Some(chaos) = config.chaos.filter(ChaosConfig::is_active) {
        // Warn level: the CLI's default filter shows it, and a flaky server must not pass
        // unnoticed. The seed repeats the run.
        tracing::warn!(%addr, "chaos mode on: {chaos}");
        faults.set_chaos(Some(chaos));
    }
    let shared = Arc::new(Shared::new(
        engine.clone(),
        Identity {
            instance: config.instance.clone(),
            access_key_id: config.access_key_id.clone(),
            access_key_secret: config.access_key_secret.clone(),
        },
        faults.clone(),
    ));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, shared, stop_rx));
    tracing::info!(%addr, instance = %config.instance, "local Tablestore server listening");
    Ok(RunningServer {
        addr,
        config,
        faults,
        engine,
        stop,
        task,
    })
}
