//! TLS to the source: the one [`TlsMode`] (config `source.tls`), the CA file
//! (`source.tls_ca_file`), how each mode maps onto mysql_async's rustls options, and what a
//! failed handshake tells the user to change.
//!
//! Trust for `verify_ca` / `verify_identity` is the built-in Mozilla root set (webpki-roots,
//! as mysql_async ships it; a Lambda has no useful system store) plus every certificate of
//! `source.tls_ca_file`.
//!
//! `verify_ca` needs "verify the chain, skip only the name". mysql_async 0.37.1 offers that
//! switch (`with_danger_skip_domain_validation`), but on its rustls path it recognises a name
//! mismatch by searching rustls' error text for `NotValidForName`, and rustls 0.23 renders the
//! error as "certificate not valid for name \"HOST\"; ..." (mysql_async issue #404, fixed
//! upstream by matching the variant, not yet released). The name rustls checks is ours to
//! choose (`tls_hostname_override`): `verify_ca` checks the certificate against
//! [`VERIFY_CA_NAME`], a name no certificate holds that spells `NotValidForName`, so the only
//! failure that matches the text is the name check, which rustls runs after the chain, the
//! validity dates and the key usage have passed. Both directions fail closed: with the upstream
//! fix the switch works by variant; should rustls stop quoting the name, `verify_ca` refuses
//! every certificate (the integration tests in `tests/integration/source_tls.rs` would fail).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use mysql_async::SslOpts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::CertificateError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::SourceError;

/// TLS on the MySQL connection; the values are MySQL's --ssl-mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS if the server offers it, otherwise plaintext (the MySQL client default). The server
    /// certificate is not verified: this protects against passive sniffing only.
    #[default]
    Preferred,
    /// TLS or fail; the server certificate is not verified.
    Required,
    /// TLS or fail; the server certificate must chain to a trusted CA (the built-in roots plus
    /// `tls_ca_file`); the host name is not checked.
    VerifyCa,
    /// As verify_ca, and the certificate must name `host`.
    VerifyIdentity,
    /// Plaintext only.
    Disabled,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disabled => "disabled",
            TlsMode::Preferred => "preferred",
            TlsMode::Required => "required",
            TlsMode::VerifyCa => "verify_ca",
            TlsMode::VerifyIdentity => "verify_identity",
        }
    }

    /// True for the modes that verify the server certificate (and so use `tls_ca_file`).
    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyIdentity)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS mode name that is none of MySQL's --ssl-mode values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TLS mode {0:?}: use one of disabled, preferred, required, verify_ca, verify_identity"
)]
pub struct UnknownTlsMode(pub String);

impl FromStr for TlsMode {
    type Err = UnknownTlsMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Ok(TlsMode::Disabled),
            "preferred" => Ok(TlsMode::Preferred),
            "required" => Ok(TlsMode::Required),
            "verify_ca" => Ok(TlsMode::VerifyCa),
            "verify_identity" => Ok(TlsMode::VerifyIdentity),
            _ => Err(UnknownTlsMode(s.to_string())),
        }
    }
}

/// The name `verify_ca` checks certificates against (see the module docs): a valid DNS name
/// under the reserved `.invalid` top-level domain (RFC 2606), so no CA issues it, and spelled
/// so mysql_async 0.37's text match recognises the mismatch.
pub(crate) const VERIFY_CA_NAME: &str = "NotValidForName.tsmigrate-verify-ca.invalid";

/// What a connection needs to set up TLS in its mode: the CA file's bytes, read and checked.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// PEM certificates of `source.tls_ca_file` (only for the verifying modes).
    ca_pem: Option<Vec<u8>>,
}

impl TlsSettings {
    /// Reads and checks `source.tls_ca_file` when the mode verifies; other modes ignore it
    /// (config validation refuses a CA file with a mode that would not use it).
    pub(crate) async fn load(
        mode: TlsMode,
        ca_file: Option<&Path>,
        addr: &str,
    ) -> Result<TlsSettings, SourceError> {
        let Some(path) = ca_file.filter(|_| mode.verifies()) else {
            return Ok(TlsSettings::default());
        };
        let bad = |detail: String| SourceError::Tls {
            addr: addr.to_string(),
            detail,
            fix: "set source.tls_ca_file to a readable PEM file holding the CA certificate(s) \
                  that signed the server's certificate (e.g. the RDS global bundle)"
                .to_string(),
        };
        let pem = tokio::fs::read(path).await.map_err(|e| {
            bad(format!(
                "source.tls_ca_file `{}` cannot be read: {e}",
                path.display()
            ))
        })?;
        let mut count = 0usize;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| {
                bad(format!(
                    "source.tls_ca_file `{}` is not valid PEM: {e}",
                    path.display()
                ))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(bad(format!(
                "source.tls_ca_file `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            )));
        }
        tracing::debug!(certificates = count, "loaded source.tls_ca_file");
        Ok(TlsSettings { ca_pem: Some(pem) })
    }

    /// mysql_async's options for `mode` with TLS on.
    pub(crate) fn ssl_opts(&self, mode: TlsMode) -> SslOpts {
        let mut ssl = SslOpts::default();
        match mode {
            // Encrypted, unverified (documented for both modes).
            TlsMode::Disabled | TlsMode::Preferred | TlsMode::Required => {
                ssl = ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            TlsMode::VerifyCa => {
                ssl = ssl
                    .with_danger_skip_domain_validation(true)
                    .with_danger_tls_hostname_override(Some(VERIFY_CA_NAME));
            }
            TlsMode::VerifyIdentity => {}
        }
        if let (true, Some(pem)) = (mode.verifies(), &self.ca_pem) {
            ssl = ssl.with_root_certs(vec![pem.clone().into()]);
        }
        ssl
    }
}

/// The rustls error inside a driver error, if the failure was the TLS handshake (tokio-rustls
/// wraps it in an `io::Error`; loading roots gives it directly).
pub(crate) fn rustls_error(err: &mysql_async::Error) -> Option<&rustls::Error> {
    use mysql_async::{Error, IoError};
    match err {
        Error::Io(IoError::Io(e)) => e.get_ref()?.downcast_ref::<rustls::Error>(),
        Error::Io(IoError::Tls(e)) => std::error::Error::source(e)?.downcast_ref(),
        _ => None,
    }
}

/// A failed handshake as the user must see it: what failed and which setting to change.
/// `mode` and `host` are known while connecting; a pool reconnecting passes `None`.
pub(crate) fn handshake_failure(
    addr: &str,
    target: Option<(TlsMode, &str)>,
    err: &rustls::Error,
) -> SourceError {
    let mode = target.map(|(m, _)| m);
    let detail = match (err, mode) {
        // The verify_ca check name is an implementation detail: never show it.
        (rustls::Error::InvalidCertificate(c), Some(TlsMode::VerifyCa)) if is_name(c) => {
            "the certificate's name check failed".to_string()
        }
        _ => err.to_string(),
    };
    let fix = match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the server certificate is not signed by a trusted CA: set source.tls_ca_file to \
                 the PEM file of the CA that signed it (e.g. the RDS global bundle), or set \
                 source.tls = required to encrypt without verifying"
                    .to_string()
            }
            c if is_name(c) => match target {
                Some((TlsMode::VerifyIdentity, host)) => format!(
                    "with source.tls = verify_identity the certificate must name source.host \
                     `{host}`: set source.host to a name the certificate holds, or set \
                     source.tls = verify_ca to verify the CA only"
                ),
                _ => "set source.host to a name the certificate holds, or set source.tls = \
                      verify_ca to verify the CA only"
                    .to_string(),
            },
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "the server certificate is outside its validity period: renew it on the server \
                 (or check this machine's clock); source.tls = required encrypts without \
                 verifying"
                    .to_string()
            }
            _ => generic_fix(),
        },
        _ => generic_fix(),
    };
    SourceError::Tls {
        addr: addr.to_string(),
        detail,
        fix,
    }
}

fn generic_fix() -> String {
    "check source.tls and source.tls_ca_file against the server's TLS setup (ssl_cert, ssl_key, \
     tls_version); source.tls = required encrypts without verifying"
        .to_string()
}

fn is_name(c: &CertificateError) -> bool {
    matches!(
        c,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    #[test]
    fn tls_mode_names() {
        for m in [
            TlsMode::Disabled,
            TlsMode::Preferred,
            TlsMode::Required,
            TlsMode::VerifyCa,
            TlsMode::VerifyIdentity,
        ] {
            assert_eq!(m.as_str().parse::<TlsMode>().ok(), Some(m));
            let json = serde_json::to_string(&m).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        assert_eq!("VERIFY-CA".parse::<TlsMode>().ok(), Some(TlsMode::VerifyCa));
        let e = "sometimes".parse::<TlsMode>().err();
        assert!(e.is_some_and(|e| e.to_string().contains("verify_ca")));
        assert_eq!(TlsMode::default(), TlsMode::Preferred);
        assert!(TlsMode::VerifyCa.verifies() && TlsMode::VerifyIdentity.verifies());
        assert!(!TlsMode::Required.verifies() && !TlsMode::Preferred.verifies());
    }

    /// What `verify_ca` rests on: the check name is a valid DNS name, and rustls' error for a
    /// certificate that does not hold it contains the text mysql_async 0.37 matches.
    #[test]
    fn verify_ca_name_is_recognised_as_a_name_mismatch() {
        let name = ServerName::try_from(VERIFY_CA_NAME).map(|n| n.to_owned());
        let Ok(name) = name else {
            panic!("{VERIFY_CA_NAME} is not a valid server name");
        };
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: name,
            presented: vec!["DnsName(\"db.example\")".to_string()],
        });
        assert!(err.to_string().contains("NotValidForName"), "{err}");
        // Any other certificate failure does not contain it, so it is not skipped.
        for other in [CertificateError::UnknownIssuer, CertificateError::Expired] {
            let e = rustls::Error::InvalidCertificate(other);
            assert!(!e.to_string().contains("NotValidForName"), "{e}");
        }
    }

    #[test]
    fn failures_name_the_setting_and_hide_the_check_name() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let e = handshake_failure("h:3306", Some((TlsMode::VerifyCa, "h")), &unknown);
        assert!(e.to_string().contains("source.tls_ca_file"), "{e}");
        let name = ServerName::try_from("127.0.0.1").map(|n| n.to_owned());
        let Ok(name) = name else {
            panic!("127.0.0.1 is a server name");
        };
        let mismatch =
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: name,
                presented: vec![],
            });
        let e = handshake_failure(
            "127.0.0.1:3306",
            Some((TlsMode::VerifyIdentity, "127.0.0.1")),
            &mismatch,
        );
        let text = e.to_string();
        assert!(text.contains("source.host `127.0.0.1`"), "{text}");
        assert!(text.contains("source.tls = verify_ca"), "{text}");
        assert!(matches!(
            e.class(),
            crate::error::Class::Definite(crate::error::ErrorName::ConfigInvalid)
        ));
        let e = handshake_failure("h:1", Some((TlsMode::VerifyCa, "h")), &mismatch);
        assert!(!e.to_string().contains("NotValidForName"), "{e}");
    }

    #[tokio::test]
    async fn ca_file_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = TlsSettings::load(TlsMode::VerifyCa, Some(&missing), "h:1")
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("source.tls_ca_file"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsSettings::load(TlsMode::VerifyIdentity, Some(&empty), "h:1")
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        // Modes that do not verify never read it.
        assert!(TlsSettings::load(TlsMode::Required, Some(&missing), "h:1")
            .await
            .is_ok());
    }
}
