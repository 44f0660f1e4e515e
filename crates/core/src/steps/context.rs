//! What every step starts from: a validated config with its secrets resolved, the source's
//! connection options and a destination client.

use std::time::Duration;

use crate::config::{Endpoint, MigrationConfig, SecretResolver, SecretString};
use crate::mysql::ConnectOptions;
use tablestore::client::{Client, ClientConfig};

use super::error::{ErrorName, StepError};

/// A step's resources. Built once per invocation (or once per cold start in Lambda).
pub struct Context {
    pub config: MigrationConfig,
    pub source: ConnectOptions,
    pub destination: Client,
}

impl Context {
    /// Validates the config, resolves secrets and builds the clients. No I/O to the source.
    pub async fn new(
        config: MigrationConfig,
        resolver: &dyn SecretResolver,
    ) -> Result<Context, StepError> {
        if let Err(problems) = config.validate() {
            return Err(StepError::new(
                ErrorName::ConfigInvalid,
                problems.to_string(),
            ));
        }
        let secrets = config
            .resolve_secrets(resolver)
            .await
            .map_err(|e| StepError::new(ErrorName::ConfigInvalid, e.to_string()))?;
        let s = &config.source;
        let source = ConnectOptions {
            host: s.host.clone(),
            port: s.port,
            user: s.user.clone(),
            password: secrets.source_password.expose().to_owned(),
            database: Some(s.database.clone()),
            tls: s.tls,
            tls_ca_file: s.tls_ca_file.clone(),
            connect_timeout: Duration::from_secs(10),
        };
        let destination = destination_client(
            &config,
            &secrets.access_key_id,
            &secrets.access_key_secret,
            secrets.sts_token.as_ref(),
        )?;
        Ok(Context {
            config,
            source,
            destination,
        })
    }
}

/// The Tablestore client of `config`'s destination with resolved credentials (also what the
/// execution-ended handler uses, which needs no source connection).
pub fn destination_client(
    config: &MigrationConfig,
    access_key_id: &SecretString,
    access_key_secret: &SecretString,
    sts_token: Option<&SecretString>,
) -> Result<Client, StepError> {
    let d = &config.destination;
    let endpoint = match d
        .endpoint()
        .map_err(|e| StepError::new(ErrorName::ConfigInvalid, e))?
    {
        Endpoint::Http { url, .. } => url,
        Endpoint::Embedded { dir } => {
            return Err(StepError::new(
                ErrorName::ConfigInvalid,
                format!(
                    "destination.endpoint `embedded:{}` is the local server that only the \
                     tsmigrate command line starts; here (a Lambda function or a library \
                     caller) set destination.endpoint to the instance's endpoint, e.g. \
                     https://INSTANCE.REGION.ots.aliyuncs.com, or to a running \
                     `tsmigrate tablestore serve`",
                    dir.display()
                ),
            ))
        }
    };
    let mut cc = ClientConfig::new(
        endpoint,
        d.instance.clone(),
        access_key_id.expose(),
        access_key_secret.expose(),
    );
    cc.credentials.sts_token = sts_token.map(|t| t.expose().to_owned());
    cc.region = d.region.clone();
    Client::new(cc).map_err(|e| StepError::new(ErrorName::ConfigInvalid, e.to_string()))
}
