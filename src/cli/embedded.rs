//! `embedded:DIR` destinations are a CLI feature: the core library and the Lambda functions
//! never start a server. Before any step runs, the CLI starts the local Tablestore server for
//! DIR (one per directory per process) and points the config at its loopback endpoint.

use tsmigrate_core::config::{Endpoint, MigrationConfig, SecretResolver};

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
    let url = tablestore_server::embedded::ensure(&dir, &d.instance, ak.expose(), sk.expose())?;
    cfg.destination.endpoint = url;
    Ok(())
}
