//! The AWS side of tsmigrate that is not a Lambda function (cargo feature `aws`, on by default):
//! starting and inspecting executions of the migration state machine ([`sfn`]), shared by the
//! `start-migration` function (functions/) and `tsmigrate aws start|status`.
//!
//! The SDK is built without its default HTTPS stack (rustls on aws-lc-rs): [`https_client`] is
//! the smithy hyper client with rustls on ring, already in the tree through mysql_async and
//! reqwest, so no cmake/aws-lc build.

pub mod sfn;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The HTTPS client of every AWS SDK client: hyper + rustls on ring (no aws-lc-rs, no OpenSSL).
/// Plain `http://` endpoints (a local emulator) work too.
pub fn https_client() -> aws_sdk_sfn::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS config loader with [`https_client`]: region, credentials and profile from the
/// standard environment/profile chain, endpoint overrides from `AWS_ENDPOINT_URL*` (how tests
/// point it at an emulator). No SSO and no `credential_process` (features left out).
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client())
}
