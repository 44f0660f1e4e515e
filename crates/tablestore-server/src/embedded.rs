//! `embedded:DIR` destinations: one local server per data directory per process, on its own
//! runtime thread so it outlives whichever async runtime asked for it (tests, CLI, runner).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::chaos::ChaosConfig;
use super::launch::{start, ServerConfig};

#[derive(Clone)]
struct Entry {
    endpoint: String,
    instance: String,
    access_key_id: String,
    access_key_secret: String,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Entry>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Entry>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Returns the endpoint of the embedded server for `dir`, starting it on first use. The
/// instance and keys must match the running server's.
pub fn ensure(
    dir: &Path,
    instance: &str,
    access_key_id: &str,
    access_key_secret: &str,
) -> Result<String, String> {
    ensure_with(dir, instance, access_key_id, access_key_secret, None)
}

/// [`ensure`], starting the server in chaos mode when `chaos` is Some (a server already
/// running for `dir` keeps its settings).
pub fn ensure_with(
    dir: &Path,
    instance: &str,
    access_key_id: &str,
    access_key_secret: &str,
    chaos: Option<ChaosConfig>,
) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the embedded data directory {}: {e}",
            dir.display()
        )
    })?;
    let key = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let mut reg = registry()
        .lock()
        .map_err(|_| "embedded server registry poisoned".to_string())?;
    if let Some(e) = reg.get(&key) {
        if e.instance != instance
            || e.access_key_id != access_key_id
            || e.access_key_secret != access_key_secret
        {
            return Err(format!(
                "the embedded server for {} already runs with another instance name or key pair; use the same destination settings",
                dir.display()
            ));
        }
        return Ok(e.endpoint.clone());
    }
    let mut cfg = ServerConfig::local(&key);
    cfg.instance = instance.to_owned();
    cfg.access_key_id = access_key_id.to_owned();
    cfg.access_key_secret = access_key_secret.to_owned();
    cfg.chaos = chaos;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tsmigrate-embedded-tablestore".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start a runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                match start(cfg).await {
                    Ok(srv) => {
                        let _ = tx.send(Ok(srv.endpoint()));
                        srv.wait().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the embedded server thread: {e}"))?;
    let endpoint = rx
        .recv()
        .map_err(|_| "the embedded server thread ended before it was ready".to_string())??;
    reg.insert(
        key,
        Entry {
            endpoint: endpoint.clone(),
            instance: instance.to_owned(),
            access_key_id: access_key_id.to_owned(),
            access_key_secret: access_key_secret.to_owned(),
        },
    );
    Ok(endpoint)
}
