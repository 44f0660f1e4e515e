//! TLS to the source means what the setting says, against a private MariaDB with its own CA:
//! `verify_ca` verifies the chain (and only the chain), `verify_identity` the chain and the
//! host name, `required` encrypts without a CA, `disabled` is plaintext; a certificate that
//! does not verify is a definite error naming the setting to change. The binlog replica
//! connection and the precheck use the same settings.
//!
//! Certificates are made with the `openssl` command line: a CA, a server certificate for
//! `localhost` only (DNS name, no IP address) signed by it, and a second, unrelated CA.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::binlog_stream::{only, position, unbounded};
use crate::harness::mariadb::{MariaDb, USER, USER_PASSWORD};
use crate::harness::{local_config, local_context};
use mysql_async::prelude::Queryable;
use tsmigrate_core::error::{Class, ErrorName};
use tsmigrate_core::mysql::binlog::read_batch;
use tsmigrate_core::mysql::{self, Conn, ConnectOptions, ReadingPool, SourceError, TlsMode};
use tsmigrate_core::steps::{self, Status};

/// A server_id for the binlog reads of this module (unique among the tests' replicas).
const ID_TLS: u32 = 9101;

struct TlsServer {
    db: MariaDb,
    /// The CA that signed the server certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the `openssl` command line is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `name`.pem / `name`.key in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3",
            "-subj",
            &format!("/CN=tsmigrate test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        make_ca(&dir, "ca");
        make_ca(&dir, "other-ca");
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "4242",
                "-days",
                "3",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let flag = |name: &str, file: &str| format!("--{name}={}", dir.join(file).display());
        let flags = [
            flag("ssl-ca", "ca.pem"),
            flag("ssl-cert", "server.pem"),
            flag("ssl-key", "server.key"),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        TlsServer {
            db: MariaDb::start_with(&flags),
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
        }
    })
}

fn options(s: &TlsServer, host: &str, mode: TlsMode, ca: Option<&Path>) -> ConnectOptions {
    let mut o = ConnectOptions::new(host, s.db.port(), USER, USER_PASSWORD).with_tls(mode);
    o.tls_ca_file = ca.map(Path::to_path_buf);
    o
}

/// The session's TLS cipher ("" on a plaintext connection).
async fn cipher(conn: &mut Conn) -> String {
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .expect("Ssl_cipher");
    row.map(|(_, v)| v).unwrap_or_default()
}

/// Connects and returns the session's cipher.
async fn connect_cipher(opts: &ConnectOptions) -> Result<String, SourceError> {
    let mut conn = mysql::connect(opts).await?;
    let c = cipher(&mut conn).await;
    mysql::close(conn).await;
    Ok(c)
}

fn assert_definite_tls(e: &SourceError, must_name: &[&str]) {
    assert!(matches!(e, SourceError::Tls { .. }), "{e:?}");
    assert_eq!(e.class(), Class::Definite(ErrorName::ConfigInvalid), "{e}");
    let text = e.to_string();
    for name in must_name {
        assert!(text.contains(name), "{name} not in: {text}");
    }
}

#[tokio::test]
async fn verify_ca_verifies_the_chain_only() {
    let s = server();
    // 127.0.0.1 is not a name of the certificate: verify_ca does not check it.
    let c = connect_cipher(&options(s, "127.0.0.1", TlsMode::VerifyCa, Some(&s.ca)))
        .await
        .expect("verify_ca with the signing CA connects");
    assert!(!c.is_empty(), "not encrypted");

    let e = connect_cipher(&options(
        s,
        "127.0.0.1",
        TlsMode::VerifyCa,
        Some(&s.other_ca),
    ))
    .await
    .expect_err("verify_ca with another CA must fail");
    assert_definite_tls(&e, &["source.tls_ca_file"]);

    // Without a CA file only the built-in roots are trusted: a private CA fails.
    let e = connect_cipher(&options(s, "localhost", TlsMode::VerifyCa, None))
        .await
        .expect_err("verify_ca without the CA must fail");
    assert_definite_tls(&e, &["source.tls_ca_file"]);
    // The check name verify_ca uses internally never reaches the user.
    assert!(!e.to_string().contains("NotValidForName"), "{e}");
}

#[tokio::test]
async fn verify_identity_checks_the_host_name() {
    let s = server();
    let e = connect_cipher(&options(
        s,
        "127.0.0.1",
        TlsMode::VerifyIdentity,
        Some(&s.ca),
    ))
    .await
    .expect_err("the certificate names localhost, not 127.0.0.1");
    assert_definite_tls(&e, &["source.host `127.0.0.1`", "source.tls"]);

    let c = connect_cipher(&options(
        s,
        "localhost",
        TlsMode::VerifyIdentity,
        Some(&s.ca),
    ))
    .await
    .expect("verify_identity with the CA and the certificate's name connects");
    assert!(!c.is_empty(), "not encrypted");

    let e = connect_cipher(&options(
        s,
        "localhost",
        TlsMode::VerifyIdentity,
        Some(&s.other_ca),
    ))
    .await
    .expect_err("another CA must fail");
    assert_definite_tls(&e, &["source.tls_ca_file"]);
}

#[tokio::test]
async fn required_encrypts_without_a_ca_and_disabled_is_plaintext() {
    let s = server();
    let c = connect_cipher(&options(s, "127.0.0.1", TlsMode::Required, None))
        .await
        .expect("required connects without a CA");
    assert!(!c.is_empty(), "required must encrypt");
    let c = connect_cipher(&options(s, "127.0.0.1", TlsMode::Preferred, None))
        .await
        .expect("preferred connects");
    assert!(!c.is_empty(), "preferred uses TLS when offered");
    let c = connect_cipher(&options(s, "127.0.0.1", TlsMode::Disabled, None))
        .await
        .expect("disabled connects");
    assert_eq!(c, "", "disabled must be plaintext");
}

#[tokio::test]
async fn a_reading_pool_keeps_the_verifying_mode() {
    let s = server();
    let pool = ReadingPool::connect(&options(s, "127.0.0.1", TlsMode::VerifyCa, Some(&s.ca)), 2)
        .await
        .expect("pool");
    let mut a = pool.get().await.expect("conn a");
    let mut b = pool.get().await.expect("conn b");
    assert!(!cipher(&mut a).await.is_empty());
    assert!(!cipher(&mut b).await.is_empty());
    drop((a, b));
    pool.close().await;
}

#[tokio::test]
async fn the_binlog_connection_uses_the_same_tls_settings() {
    let s = server();
    let opts = options(s, "localhost", TlsMode::VerifyIdentity, Some(&s.ca));
    let database = s.db.fresh_database("tls_binlog").await;
    s.db.exec(&format!("CREATE TABLE `{database}`.t (id INT PRIMARY KEY)"))
        .await;
    let start = position(&opts).await;
    s.db.exec(&format!("INSERT INTO `{database}`.t VALUES (1), (2)"))
        .await;
    let batch = read_batch(&opts, ID_TLS, &start, &unbounded(), only(&database))
        .await
        .expect("a verified binlog connection reads");
    let rows: usize = batch.transactions.iter().map(|t| t.changes.len()).sum();
    assert_eq!(rows, 2, "{batch:?}");

    // The same read with a CA that did not sign the server certificate must not connect.
    let bad = options(s, "localhost", TlsMode::VerifyIdentity, Some(&s.other_ca));
    let e = read_batch(&bad, ID_TLS, &start, &unbounded(), only(&database))
        .await
        .expect_err("the binlog connection verifies the certificate");
    assert_definite_tls(&e, &["source.tls_ca_file"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_names_the_tls_setting() {
    let s = server();
    let database = s.db.fresh_database("tls_precheck").await;
    let dir = tempfile::tempdir().unwrap();
    let run = |mode: TlsMode, ca: &Path| {
        let mut cfg = local_config(&s.db, &database, dir.path(), "tls-precheck".into());
        cfg.source.host = "localhost".into();
        cfg.source.tls = mode;
        cfg.source.tls_ca_file = Some(ca.to_path_buf());
        async move {
            let ctx = local_context(cfg).await;
            steps::precheck(&ctx).await
        }
    };
    let r = run(TlsMode::VerifyIdentity, &s.ca).await;
    let item = r.item("source_connection").expect("source_connection");
    assert_eq!(item.status, Status::Passed, "{r:#?}");

    let r = run(TlsMode::VerifyCa, &s.other_ca).await;
    assert!(!r.passed);
    let item = r.item("source_connection").expect("source_connection");
    assert_eq!(item.status, Status::Failed, "{r:#?}");
    assert!(item.detail.contains("source.tls_ca_file"), "{item:?}");
    assert!(item.fix.contains("source.tls (now verify_ca)"), "{item:?}");
}
