//! `embedded:DIR` destinations are a CLI feature: the core library and the Lambda functions
//! never start a server. Before any step runs, the CLI starts the local Tablestore server for
//! DIR (one per directory per process) and points the config at its loopback endpoint.

use std::time::Duration;

use tablestore_server::ChaosConfig;
use tsmigrate_core::config::{Endpoint, MigrationConfig, SecretResolver};

/// Chaos mode of the embedded server (and defaults of `tablestore serve`'s chaos flags):
/// share of requests (0-1) that fail at random.
pub const ENV_FAULT_RATE: &str = "TSMIGRATE_CHAOS_FAULT_RATE";
/// Milliseconds every request waits before it is answered.
pub const ENV_LATENCY_MS: &str = "TSMIGRATE_CHAOS_LATENCY_MS";
/// Seed of the random faults (random when unset; logged).
pub const ENV_SEED: &str = "TSMIGRATE_CHAOS_SEED";

/// The chaos settings the environment asks for, None when off.
pub fn chaos_from_env() -> Result<Option<ChaosConfig>, String> {
    fn var<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v:?} is not a valid number")),
            _ => Ok(None),
        }
    }
    let rate = var::<f64>(ENV_FAULT_RATE)?.unwrap_or(0.0);
    let latency = Duration::from_millis(var::<u64>(ENV_LATENCY_MS)?.unwrap_or(0));
    let c = ChaosConfig::new(rate, latency, var::<u64>(ENV_SEED)?)
        .map_err(|e| format!("{ENV_FAULT_RATE}: {e}"))?;
    Ok(c.is_active().then_some(c))
}

/// Replaces an `embedded:DIR` endpoint with the endpoint of the local server it starts (or
/// already started) for DIR; any other endpoint is left as it is.
pub async fn resolve(
    cfg: &mut MigrationConfig,
    secrets: &dyn SecretResolver,
) -> Result<(), String> {
    let d = &cfg.destination;
    let Endpoint::Embedded { dir } = d.endpoint()? else {
        return Ok(());
    };
    let ak = d
        .access_key_id
        .resolve("destination.access_key_id", secrets)
        .await
        .map_err(|e| e.to_string())?;
    let sk = d
        .access_key_secret
        .resolve("destination.access_key_secret", secrets)
        .await
        .map_err(|e| e.to_string())?;
    let url = tablestore_server::embedded::ensure_with(
        &dir,
        &d.instance,
        ak.expose(),
        sk.expose(),
        chaos_from_env()?,
    )?;
    cfg.destination.endpoint = url;
    Ok(())
}
