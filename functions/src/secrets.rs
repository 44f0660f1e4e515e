//! [`SecretsManagerResolver`]: the functions' [`SecretResolver`], backed by AWS Secrets Manager.
//!
//! `fetch` returns the secret's whole `SecretString`; picking a JSON field for a reference with
//! `key` (RDS-managed secrets: `{"username": …, "password": …}`) is done by the config module
//! ([`SecretRef::resolve`](tsmigrate_core::config::SecretRef::resolve)). Fetched strings are cached for
//! [`DEFAULT_TTL`] per warm container: a step resolves up to four references (often of one
//! secret), and a wave of `CopyChunk` invocations would otherwise call `GetSecretValue` for
//! each. After a rotation, a cached old password fails the connection, the state machine retries
//! (`Migration.ConnectionFailed`) and the next fetch after the TTL gets the new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use futures_util::future::BoxFuture;
use tsmigrate_core::config::{SecretResolver, SecretString};

/// How long a fetched secret is reused by a warm container.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Resolves `{"secret_arn": …}` references with `GetSecretValue`. Build it once per cold start.
pub struct SecretsManagerResolver {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretString)>>,
}

impl SecretsManagerResolver {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self::with_ttl(client, DEFAULT_TTL)
    }

    /// `ttl` zero disables the cache.
    pub fn with_ttl(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        SecretsManagerResolver {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, secret_id: &str) -> Option<SecretString> {
        let cache = self.cache.lock().ok()?;
        let (at, secret) = cache.get(secret_id)?;
        (at.elapsed() < self.ttl).then(|| secret.clone())
    }

    fn remember(&self, secret_id: &str, secret: &SecretString) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(secret_id.to_owned(), (Instant::now(), secret.clone()));
        }
    }

    async fn get(&self, secret_id: &str) -> Result<SecretString, String> {
        if let Some(secret) = self.cached(secret_id) {
            return Ok(secret);
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            // The SDK's error text names the error code and message; it never holds the secret.
            .map_err(|e| {
                format!(
                    "GetSecretValue on {secret_id} failed: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        let text = output.secret_string().ok_or_else(|| {
            format!(
                "secret {secret_id} has no SecretString (binary secrets are not supported); \
                 store the credential as a string or a JSON object"
            )
        })?;
        let secret = SecretString::new(text);
        self.remember(secret_id, &secret);
        Ok(secret)
    }
}

impl std::fmt::Debug for SecretsManagerResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self
            .cache
            .lock()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("SecretsManagerResolver")
            .field("ttl", &self.ttl)
            .field("cached_ids", &ids)
            .finish()
    }
}

impl SecretResolver for SecretsManagerResolver {
    fn fetch<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<SecretString, String>> {
        Box::pin(self.get(secret_id))
    }
}
