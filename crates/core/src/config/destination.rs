//! `destination`: the Tablestore instance ([`DestinationConfig`]) and the parsed form of its
//! endpoint ([`Endpoint`]: remote http(s) or `embedded:DIR`). Split from `config/mod.rs` so each
//! config section reads on its own; re-exported as `config::*`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;

/// The Tablestore destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// "https://INSTANCE.REGION.ots.aliyuncs.com" (or any http(s)://host[:port] Tablestore
    /// endpoint), or "embedded:DIR" to run the local Tablestore server in-process with its data
    /// in DIR.
    pub endpoint: String,
    /// Tablestore instance name (3-16 letters, digits and hyphens, starting with a letter).
    pub instance: String,
    /// AccessKey ID, as a secret reference.
    pub access_key_id: SecretRef,
    /// AccessKey secret, as a secret reference.
    pub access_key_secret: SecretRef,
    /// STS security token for temporary credentials, as a secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_token: Option<SecretRef>,
    /// Region id (e.g. "cn-hangzhou"). When set, requests use V4 signing scoped to this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Table limit of the instance (Tablestore's default is 64, raised on request). The
    /// precheck fails when the migrated tables plus the state table would exceed it.
    #[serde(default = "default_max_tables")]
    #[schemars(range(min = 1))]
    pub max_tables: u32,
    /// Name of the Tablestore table that holds migration state (checkpoints, chunk plan,
    /// lease). Several migrations may share it: rows are keyed by migration_id.
    #[serde(default = "default_state_table")]
    pub state_table: String,
}

fn default_max_tables() -> u32 {
    tablestore::limits::DEFAULT_MAX_TABLES as u32
}

fn default_state_table() -> String {
    "tsmigrate_state".to_owned()
}

impl DestinationConfig {
    /// A destination with default region, limits and state table.
    pub fn new(
        endpoint: impl Into<String>,
        instance: impl Into<String>,
        access_key_id: SecretRef,
        access_key_secret: SecretRef,
    ) -> Self {
        DestinationConfig {
            endpoint: endpoint.into(),
            instance: instance.into(),
            access_key_id,
            access_key_secret,
            sts_token: None,
            region: None,
            max_tables: default_max_tables(),
            state_table: default_state_table(),
        }
    }

    /// The parsed endpoint; the error text says what is wrong.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        Endpoint::parse(&self.endpoint)
    }
}

/// A parsed `destination.endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A remote (or separately started local) Tablestore endpoint.
    Http {
        /// The endpoint as configured, without a trailing `/`.
        url: String,
        https: bool,
        host: String,
        port: Option<u16>,
    },
    /// The local Tablestore server, started in-process with its data in `dir`.
    Embedded { dir: PathBuf },
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        const SHAPE: &str = "expected http(s)://host[:port] or embedded:DIR";
        if let Some(dir) = text.strip_prefix("embedded:") {
            if dir.trim().is_empty() {
                return Err(format!("embedded: needs a data directory ({SHAPE})"));
            }
            return Ok(Endpoint::Embedded {
                dir: PathBuf::from(dir),
            });
        }
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "\"{text}\" has no http://, https:// or embedded: prefix ({SHAPE})"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "\"{text}\" has a path, query or user part; a Tablestore endpoint is only \
                 scheme://host[:port]"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("\"{text}\" does not end in a valid host[:port] ({SHAPE})"))?;
        Ok(Endpoint::Http {
            url: text.strip_suffix('/').unwrap_or(text).to_owned(),
            https,
            host,
            port,
        })
    }
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
    };
    Some((host, port))
}
