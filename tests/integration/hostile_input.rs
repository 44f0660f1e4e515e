//! Hostile input as users and peers send it, and what they get back (the catalogue in
//! docs/reliability.md names these tests): bad configs through `tsmigrate config check` and
//! `tsmigrate run`, misuse of the command line, and hand-made requests to the local server
//! (unknown key, bad signature, clock skew, bodies that are not protobuf, a PlainBuffer row
//! with a wrong checksum).

use std::path::Path;
use std::process::Output;

use prost::Message;
use tablestore::client::ClientConfig;
use tablestore::{pb, plainbuffer, sign, PrimaryKey, Row, RowChange};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::output::{text, tsmigrate};
use crate::harness::tablestore::{int_table, start};

/// A config for a remote source and a cloud destination, secrets by reference.
const REMOTE: &str = r#"{
  "migration_id": "shop",
  "source": {"host": "db.example.com", "user": "dts", "password": {"env": "SRC_PASSWORD"},
             "database": "shop"},
  "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com", "instance": "shop",
                  "access_key_id": {"env": "OTS_AK"}, "access_key_secret": {"env": "OTS_SK"}},
  "migration_types": ["schema", "full"],
  "objects": {"tables": "*"}
}"#;

/// `REMOTE` with `from` replaced by `to` (which must occur).
fn remote_with(from: &str, to: &str) -> String {
    assert!(REMOTE.contains(from), "{from}");
    REMOTE.replacen(from, to, 1)
}

/// `tsmigrate config check` of `json`: exit code and everything printed.
fn check(dir: &Path, json: &str) -> (Option<i32>, String) {
    let file = dir.join("config.json");
    std::fs::write(&file, json).expect("write");
    let out = tsmigrate(&["config", "check", &file.display().to_string()]);
    (out.status.code(), text(&out))
}

fn assert_refused(dir: &Path, json: &str, wants: &[&str]) {
    let (code, out) = check(dir, json);
    assert_eq!(code, Some(1), "{out}");
    for w in wants {
        assert!(out.contains(w), "missing {w:?} in: {out}");
    }
}

#[test]
fn the_remote_base_config_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = check(dir.path(), REMOTE);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn malformed_json_names_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Truncated.
    assert_refused(
        dir.path(),
        &REMOTE[..REMOTE.len() - 3],
        &["config.json:", "EOF while parsing"],
    );
    // A trailing comma.
    assert_refused(
        dir.path(),
        &remote_with(r#""full"]"#, r#""full",]"#),
        &["config.json:7:", "at migration_types: trailing comma"],
    );
}

#[test]
fn wrong_types_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with = |extra: &str| remote_with(r#""objects""#, &format!("{extra}, \"objects\""));
    assert_refused(
        dir.path(),
        &with(r#""full": {"chunk_rows": "many"}"#),
        &["at full.chunk_rows: invalid type: string \"many\", expected u64"],
    );
    assert_refused(
        dir.path(),
        &with(r#""writer": {"concurrency": -1}"#),
        &["at writer.concurrency: invalid value: integer `-1`"],
    );
    assert_refused(
        dir.path(),
        &remote_with(r#""schema", "full""#, r#""schema", "everything""#),
        &["migration_types", "unknown variant `everything`"],
    );
}

#[test]
fn unknown_fields_suggest_the_near_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_refused(
        dir.path(),
        &remote_with(
            r#""database": "shop""#,
            r#""database": "shop", "sever_id": 7"#,
        ),
        &[
            "at source.sever_id: unknown field",
            "(did you mean `server_id`?)",
        ],
    );
}

#[test]
fn a_bad_where_filter_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for filter in [
        "id > 1; DROP TABLE orders",
        "id IN (SELECT id FROM x)",
        "a = = 1",
    ] {
        let tables = format!(r#"[{{"name": "orders", "filter": "{filter}"}}]"#);
        assert_refused(
            dir.path(),
            &remote_with(r#""*""#, &tables),
            &["objects.tables[0].filter"],
        );
    }
}

#[test]
fn names_tablestore_refuses_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = r#"[{"name": "items", "target": "9items"}, {"name": "order-lines"},
                     {"name": "x", "target": "tsmigrate_state"}]"#;
    assert_refused(
        dir.path(),
        &remote_with(r#""*""#, tables),
        &[
            "objects.tables[0].target",
            "objects.tables[1].name",
            "objects.tables[2].target",
        ],
    );
}

#[test]
fn inline_secrets_are_refused_and_not_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A bare string where a reference is required.
    let (code, out) = check(
        dir.path(),
        &remote_with(r#"{"env": "SRC_PASSWORD"}"#, r#""hunter2""#),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("source.password"), "{out}");
    assert!(!out.contains("hunter2"), "the secret was echoed: {out}");
    // A literal value, allowed for local setups only.
    let (code, out) = check(
        dir.path(),
        &remote_with(r#"{"env": "OTS_SK"}"#, r#"{"value": "s3cr3t-sk"}"#),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("destination.access_key_secret"), "{out}");
    assert!(out.contains("{\"env\""), "the fix names a reference: {out}");
    assert!(!out.contains("s3cr3t-sk"), "the secret was echoed: {out}");
}

#[test]
fn run_refuses_a_bad_config_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.json");
    std::fs::write(
        &file,
        remote_with(r#"{"env": "OTS_SK"}"#, r#"{"value": "sk"}"#),
    )
    .unwrap();
    let out = tsmigrate(&["run", "--config", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("error: the config has problems:"),
        "{}",
        text(&out)
    );
}

fn assert_usage_error(out: &Output, wants: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    for w in wants {
        assert!(err.contains(w), "missing {w:?} in: {}", text(out));
    }
}

#[test]
fn command_line_misuse_gets_usage_and_exit_2() {
    assert_usage_error(&tsmigrate(&[]), &["Usage: tsmigrate"]);
    assert_usage_error(
        &tsmigrate(&["frobnicate"]),
        &["unrecognized subcommand 'frobnicate'"],
    );
    assert_usage_error(
        &tsmigrate(&["run"]),
        &[
            "the following required arguments were not provided",
            "--config",
        ],
    );
    assert_usage_error(
        &tsmigrate(&["run", "--config", "c.json", "--mode", "sometimes"]),
        &["invalid value 'sometimes' for '--mode", "possible values"],
    );
    assert_usage_error(
        &tsmigrate(&["verify", "--config", "c.json", "--chunk", "many"]),
        &["invalid value 'many' for '--chunk <CHUNK>'"],
    );
    // A config that does not exist: exit 2 and the path, for every command that takes one.
    for cmd in ["run", "verify", "status", "precheck", "stop"] {
        let out = tsmigrate(&[cmd, "--config", "/nonexistent/tsm.json"]);
        assert_usage_error(&out, &["cannot read /nonexistent/tsm.json"]);
    }
    let out = tsmigrate(&["config", "check", "/nonexistent/tsm.json"]);
    assert_usage_error(&out, &["cannot read /nonexistent/tsm.json"]);
}

// ---------------------------------------------------------------------------------------------
// Requests to the local server, made by hand.

/// The headers of a v2-signed request of `action` with `body` at `date`, signed with
/// `secret`.
fn signed_headers(
    cfg: &ClientConfig,
    action: &str,
    body: &[u8],
    date: OffsetDateTime,
    secret: &str,
) -> Vec<(String, String)> {
    let mut h = vec![
        (sign::H_DATE.to_owned(), sign::format_request_date(date)),
        (sign::H_API_VERSION.to_owned(), sign::API_VERSION.to_owned()),
        (
            sign::H_ACCESS_KEY_ID.to_owned(),
            cfg.credentials.access_key_id.clone(),
        ),
        (sign::H_INSTANCE.to_owned(), cfg.instance.clone()),
        (sign::H_CONTENT_MD5.to_owned(), sign::content_md5(body)),
    ];
    let sts = sign::request_string_to_sign(action, h.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    h.push((sign::H_SIGNATURE.to_owned(), sign::sign_v2(secret, &sts)));
    h
}

/// POSTs `body` to `/action` with `headers` over a plain HTTP/1.1 connection; returns the
/// status and the protobuf error of a refused request (`None` on success).
async fn post(
    endpoint: &str,
    action: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Option<pb::Error>) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "POST /{action} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line of {head:?}"));
    let payload = &resp[split + 4..];
    let error = (status >= 400)
        .then(|| pb::Error::decode(payload).unwrap_or_else(|e| panic!("{e}: {head}")));
    (status, error)
}

fn list_tables_body() -> Vec<u8> {
    pb::ListTableRequest {}.encode_to_vec()
}

/// Refused with 403 OTSAuthFailed and `message`.
fn assert_auth_failed(answer: (u16, Option<pb::Error>), message: &str) {
    let (status, error) = answer;
    let error = error.unwrap_or_else(|| panic!("accepted with {status}"));
    assert_eq!(
        (status, error.code.as_str()),
        (403, "OTSAuthFailed"),
        "{error:?}"
    );
    assert!(
        error.message.as_deref().unwrap_or("").contains(message),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_access_key_and_bad_signature_are_refused() {
    let t = start().await;
    let cfg = t.server.client_config();
    let ep = t.server.endpoint();
    let body = list_tables_body();
    let now = OffsetDateTime::now_utc();
    let secret = cfg.credentials.access_key_secret.clone();

    let good = signed_headers(&cfg, "ListTable", &body, now, &secret);
    assert_eq!(post(&ep, "ListTable", &good, &body).await.0, 200);

    let mut other = cfg.clone();
    other.credentials.access_key_id = "LTAI-not-ours".into();
    let h = signed_headers(&other, "ListTable", &body, now, &secret);
    assert_auth_failed(
        post(&ep, "ListTable", &h, &body).await,
        "The AccessKeyId does not exist.",
    );

    let h = signed_headers(&cfg, "ListTable", &body, now, "wrong-secret");
    assert_auth_failed(
        post(&ep, "ListTable", &h, &body).await,
        "Signature mismatch.",
    );

    // Signed for another action than the one requested.
    let h = signed_headers(&cfg, "DeleteTable", &body, now, &secret);
    assert_auth_failed(
        post(&ep, "ListTable", &h, &body).await,
        "Signature mismatch.",
    );

    // The body changed after signing.
    let h = signed_headers(&cfg, "ListTable", &body, now, &secret);
    assert_auth_failed(
        post(&ep, "ListTable", &h, b"\x0a\x01x").await,
        "Mismatch between MD5 value of request body",
    );

    // No signature at all.
    let h: Vec<_> = good
        .iter()
        .filter(|(n, _)| n != sign::H_SIGNATURE)
        .cloned()
        .collect();
    assert_auth_failed(
        post(&ep, "ListTable", &h, &body).await,
        "Missing header: x-ots-signature.",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_skewed_beyond_fifteen_minutes_is_refused() {
    let t = start().await;
    let cfg = t.server.client_config();
    let ep = t.server.endpoint();
    let body = list_tables_body();
    let secret = cfg.credentials.access_key_secret.clone();
    let now = OffsetDateTime::now_utc();
    let minutes = |m: i64| time::Duration::minutes(m);

    for within in [now - minutes(14), now + minutes(14)] {
        let h = signed_headers(&cfg, "ListTable", &body, within, &secret);
        assert_eq!(post(&ep, "ListTable", &h, &body).await.0, 200, "{within}");
    }
    for beyond in [now - minutes(16), now + minutes(16)] {
        let h = signed_headers(&cfg, "ListTable", &body, beyond, &secret);
        assert_auth_failed(
            post(&ep, "ListTable", &h, &body).await,
            "Mismatch between system time and x-ots-date",
        );
    }
    let mut h = signed_headers(&cfg, "ListTable", &body, now, &secret);
    h[0].1 = "yesterday".into();
    let (status, error) = post(&ep, "ListTable", &h, &body).await;
    let error = error.expect("refused");
    assert_eq!((status, error.code.as_str()), (400, "OTSParameterInvalid"));
    assert!(error
        .message
        .unwrap_or_default()
        .contains("Invalid date format"));
}

/// Refused with 400 OTSParameterInvalid and `message`, through the client (signed properly).
async fn assert_parameter_invalid(
    client: &tablestore::client::Client,
    action: &str,
    body: &[u8],
    message: &str,
) {
    match client.call_raw(action, body).await {
        Err(tablestore::error::Error::Service(e)) => {
            assert_eq!(
                (e.http_status, e.code.as_str()),
                (400, "OTSParameterInvalid"),
                "{e}"
            );
            assert!(e.message.contains(message), "{e}");
        }
        other => panic!("{action}: expected OTSParameterInvalid, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_protobuf_is_a_parameter_error() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    for action in [
        "GetRow",
        "PutRow",
        "BatchWriteRow",
        "GetRange",
        "CreateTable",
    ] {
        assert_parameter_invalid(
            &t.client,
            action,
            b"\xff\xff\xff\xff not protobuf",
            "Failed to parse the ProtoBuf message",
        )
        .await;
    }
    // The server still serves.
    assert_eq!(t.client.list_tables().await.unwrap(), vec!["t".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plainbuffer_row_with_a_wrong_checksum_is_refused() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let row = Row::new(PrimaryKey::new().with("id", 5)).with("s", "text");
    let valid = plainbuffer::change_buffer(&RowChange::Put(row));
    let put = |buf: Vec<u8>| {
        pb::PutRowRequest {
            table_name: "t".into(),
            row: buf,
            condition: pb::Condition {
                row_existence: 0,
                column_condition: None,
            },
            return_content: None,
            transaction_id: None,
        }
        .encode_to_vec()
    };
    // The row checksum is the last byte.
    let mut bad_row = valid.clone();
    *bad_row.last_mut().unwrap() ^= 0x01;
    assert_parameter_invalid(&t.client, "PutRow", &put(bad_row), "row checksum mismatch").await;
    // A cell checksum: the byte before TAG_ROW_CHECKSUM and the row checksum.
    let mut bad_cell = valid.clone();
    let at = bad_cell.len() - 3;
    bad_cell[at] ^= 0x01;
    assert_parameter_invalid(&t.client, "PutRow", &put(bad_cell), "checksum mismatch").await;
    // Nothing was written; the valid buffer still is.
    let key = PrimaryKey::new().with("id", 5);
    let read = tablestore::read::ReadOptions::default();
    assert!(t.client.get_row("t", &key, &read).await.unwrap().is_none());
    t.client.call_raw("PutRow", &put(valid)).await.unwrap();
    assert!(t.client.get_row("t", &key, &read).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Source data Tablestore cannot hold.

/// A string cell over 2 MB and a key string over 1 KB: under `dirty_data: skip` each row is
/// recorded with its key and reason and the others arrive; under `block` the copy stops on the
/// first one, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_tablestore_cannot_hold_are_dirty_rows() {
    use tsmigrate_core::config::{DirtyDataPolicy, MigrationType};
    use tsmigrate_core::steps::{self, ErrorName};

    let db = crate::harness::mariadb::MariaDb::shared();
    let d = db.fresh_database("hostile_values").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.big (id INT PRIMARY KEY, note LONGTEXT);
         INSERT INTO `{d}`.big VALUES (1, 'small'), (2, REPEAT('y', 3 * 1024 * 1024)), (3, 'also small');
         CREATE TABLE `{d}`.k (name VARCHAR(2000) CHARACTER SET latin1 PRIMARY KEY, v INT);
         INSERT INTO `{d}`.k VALUES ('short', 1), (REPEAT('k', 1100), 2)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = |policy| {
        let mut cfg =
            crate::harness::local_config(db, &d, &dir.path().join("data"), format!("hv_{d}"));
        cfg.migration_types = vec![MigrationType::Schema, MigrationType::Full];
        cfg.dirty_data = policy;
        cfg
    };

    let ctx = crate::harness::local_context(config(DirtyDataPolicy::Skip)).await;
    steps::create_schema(&ctx).await.expect("schema");
    steps::begin(&ctx, "x").await.expect("begin");
    let plan = steps::plan::plan_chunks(&ctx).await.expect("plan");
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        while !steps::copy::copy_chunk(&ctx, i, Some("x"))
            .await
            .expect("copy")
            .done
        {}
    }
    let store = steps::lifecycle::state_store(&ctx);
    let mut dirty = store.dirty_records(10).await.unwrap();
    dirty.sort_by(|a, b| a.table.cmp(&b.table));
    assert_eq!(dirty.len(), 2, "{dirty:?}");
    assert_eq!(
        (dirty[0].table.as_str(), dirty[0].primary_key.as_str()),
        ("big", "id=2")
    );
    assert!(
        dirty[0]
            .reason
            .contains("more than Tablestore's 2097152-byte limit for an attribute"),
        "{dirty:?}"
    );
    assert_eq!(dirty[1].table, "k");
    assert!(
        dirty[1]
            .reason
            .contains("1100 bytes, more than Tablestore's 1024-byte primary-key limit"),
        "{dirty:?}"
    );
    let big = crate::full_copy::all_rows(&ctx, "big", &["id"]).await;
    let ids: Vec<_> = big
        .iter()
        .map(|r| r.primary_key.columns()[0].value.clone())
        .collect();
    assert_eq!(
        ids,
        [
            tablestore::PkValue::Integer(1),
            tablestore::PkValue::Integer(3)
        ]
    );
    assert_eq!(
        crate::full_copy::all_rows(&ctx, "k", &["name"]).await.len(),
        1
    );
    drop(ctx);

    // Block: the same source stops the copy of `big`, naming the key.
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = config(DirtyDataPolicy::Block);
    cfg.destination.endpoint = format!("embedded:{}", dir2.path().display());
    let ctx = crate::harness::local_context(cfg).await;
    steps::create_schema(&ctx).await.expect("schema");
    steps::begin(&ctx, "x").await.expect("begin");
    let plan = steps::plan::plan_chunks(&ctx).await.expect("plan");
    let mut errors = Vec::new();
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        if let Err(e) = steps::copy::copy_chunk(&ctx, i, Some("x")).await {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.name == ErrorName::DirtyData),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("table big, key id=2")),
        "{errors:?}"
    );
}

/// A table without a primary key or NOT NULL unique key (a nullable unique key does not
/// count): `precheck` fails its primary_keys item naming the table and the fix, and `run`
/// stops at the precheck before creating anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_usable_key_fails_precheck_and_run() {
    use crate::harness::mariadb::{MariaDb, USER, USER_PASSWORD};
    let db = MariaDb::shared();
    let d = db.fresh_database("hostile_nokey").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.nokey (a INT, b INT);
         CREATE TABLE `{d}`.nullable_unique (a INT NULL, b INT, UNIQUE KEY (a));
         INSERT INTO `{d}`.nokey VALUES (1, 1), (1, 1)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "migration_id": format!("nokey_{d}"),
        "source": {"host": "127.0.0.1", "port": db.port(), "user": USER,
                   "password": {"value": USER_PASSWORD}, "database": d, "tls": "disabled"},
        "destination": {"endpoint": format!("embedded:{}", dir.path().join("data").display()),
                        "instance": "local", "access_key_id": {"value": "local-ak"},
                        "access_key_secret": {"value": "local-secret"}},
        "migration_types": ["schema", "full"],
        "objects": {"tables": "*"}
    });
    let file = dir.path().join("config.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let file = file.display().to_string();

    let pre = tsmigrate(&["precheck", "--config", &file]);
    let out = text(&pre);
    assert_eq!(pre.status.code(), Some(1), "{out}");
    for want in [
        "primary_keys",
        "nokey: the table has no primary key and no NOT NULL unique key",
        "nullable_unique: the table has no primary key",
        "\"primary_key\": [",
    ] {
        assert!(out.contains(want), "missing {want:?}: {out}");
    }
    let run = tsmigrate(&["run", "--config", &file]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    assert!(out.contains("FAILED: Migration.PrecheckFailed"), "{out}");
    // The run names the failed item and its fix itself.
    for want in [
        "  primary_keys: nokey: the table has no primary key",
        "    fix: nokey: add a primary key to the source table",
    ] {
        assert!(out.contains(want), "missing {want:?}: {out}");
    }
}
