//! The harness of the `server_request` fuzz target (`fuzz/`), here so that the target and the
//! corpus replay test below run the very same code. Not part of the server's API.
//!
//! A request goes in-process through [`crate::service::respond`] (everything after HTTP
//! framing: method, action path, authentication, fault hooks, handlers, PlainBuffer, the
//! engine, the signed answer), on a store in a scratch directory holding table `t`.
//!
//! Input layout: byte 0 picks how the request is authenticated, byte 1 the action; the rest
//! is the body, except in the raw-headers mode:
//! - 0 / 1: signed correctly (v2 / v4) with the current time, so the body reaches the handler;
//! - 2: raw: the first line is `METHOD /path`, then `name: value` header lines up to an empty
//!   line, then the body (reaches the signature check, rarely beyond);
//! - 3: signed v2, then the header picked by the next byte replaced by the following
//!   length-prefixed value (bad MD5, dates, instance, keys, signatures).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use prost::Message;
use time::OffsetDateTime;

use crate::auth::Identity;
use crate::engine::{Engine, EngineOptions};
use crate::faults::FaultInjector;
use crate::service::{respond, Shared, MAX_BODY_BYTES};
use tablestore::error::ServiceError;
use tablestore::pb;
use tablestore::plainbuffer;
use tablestore::row::{Cell, CellOp, PrimaryKey, Row, RowChange};
use tablestore::schema::{PkSchema, TableDef};
use tablestore::sign;
use tablestore::value::{PkType, Value};

/// The actions byte 1 picks from (the last is not one).
pub const ACTIONS: [&str; 14] = [
    "CreateTable",
    "ListTable",
    "DescribeTable",
    "UpdateTable",
    "DeleteTable",
    "PutRow",
    "UpdateRow",
    "DeleteRow",
    "GetRow",
    "GetRange",
    "BatchGetRow",
    "BatchWriteRow",
    "BulkImport",
    "NoSuchAction",
];

const TABLE: &str = "t";
const INSTANCE: &str = "fuzz";
const AK_ID: &str = "fuzz-ak";
const AK_SECRET: &str = "fuzz-secret";
const REGION: &str = "cn-hangzhou";
/// Requests between store resets: rows written by inputs must not pile up without bound.
const RESET_EVERY: u64 = 20_000;

/// A local server without sockets, for one fuzzing process.
pub struct FuzzServer {
    rt: tokio::runtime::Runtime,
    shared: Option<Arc<Shared>>,
    dir: PathBuf,
    requests: u64,
}

impl FuzzServer {
    /// Opens a store under `$TSMIGRATE_FUZZ_DIR` (default: `/dev/shm` where it exists, as
    /// every write is fsynced, else the temporary directory).
    pub fn new() -> Result<FuzzServer, ServiceError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var_os("TSMIGRATE_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let shm = PathBuf::from("/dev/shm");
                if shm.is_dir() {
                    shm
                } else {
                    std::env::temp_dir()
                }
            });
        let dir = base.join(format!(
            "tsmigrate-fuzz-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| ServiceError::internal(format!("tokio runtime: {e}")))?;
        let mut s = FuzzServer {
            rt,
            shared: None,
            dir,
            requests: 0,
        };
        s.reset()?;
        Ok(s)
    }

    /// A fresh store holding only the empty table `t`.
    fn reset(&mut self) -> Result<(), ServiceError> {
        // The engine's writer thread must be gone before its files are removed.
        self.shared = None;
        let _ = std::fs::remove_dir_all(&self.dir);
        let engine = Engine::open(
            &self.dir,
            EngineOptions {
                max_tables: 8,
                cache_bytes: 4 * 1024 * 1024,
            },
        )?;
        engine.create_table(table_def())?;
        let identity = Identity {
            instance: INSTANCE.into(),
            access_key_id: AK_ID.into(),
            access_key_secret: AK_SECRET.into(),
        };
        self.shared = Some(Arc::new(Shared::new(
            engine,
            identity,
            Arc::new(FaultInjector::default()),
        )));
        Ok(())
    }

    /// Runs one fuzz input. Panics (a finding) on an internal server error: no request, however
    /// malformed, may make the server fail rather than refuse it.
    pub fn request(&mut self, data: &[u8]) {
        if let Some(status) = self.answer(data) {
            assert_ne!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error on a client's request"
            );
        }
    }

    /// The status answered to one input (None: not a request, or the connection dropped),
    /// then the catalog put back to table `t` alone, so every input starts from the same one.
    fn answer(&mut self, data: &[u8]) -> Option<StatusCode> {
        self.requests += 1;
        if self.requests.is_multiple_of(RESET_EVERY) {
            if let Err(e) = self.reset() {
                panic!("cannot reset the fuzz store: {e}");
            }
        }
        let shared = self.shared.clone()?;
        let (method, path, headers, body) = build(data)?;
        let body = if body.len() > MAX_BODY_BYTES {
            Err(ServiceError::new(
                tablestore::error::code::REQUEST_BODY_TOO_LARGE,
                "The size of POST data is too large.",
            ))
        } else {
            Ok(Bytes::from(body))
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let answer = self
            .rt
            .block_on(respond(&shared, peer, &method, &path, &headers, body));
        let engine = &shared.engine;
        if let Ok(tables) = engine.list_tables() {
            for t in tables.iter().filter(|t| t.as_str() != TABLE) {
                let _ = engine.delete_table(t);
            }
            if !tables.iter().any(|t| t == TABLE) {
                let _ = engine.create_table(table_def());
            }
        }
        answer.ok().map(|r| r.status())
    }
}

impl Drop for FuzzServer {
    fn drop(&mut self) {
        self.shared = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn table_def() -> TableDef {
    TableDef::new(
        TABLE,
        vec![
            PkSchema::new("id", PkType::Integer),
            PkSchema::new("k", PkType::String),
        ],
    )
}

type Built = (Method, String, HeaderMap, Vec<u8>);

fn build(data: &[u8]) -> Option<Built> {
    let (&mode, rest) = data.split_first()?;
    let (&pick, rest) = rest.split_first()?;
    let action = ACTIONS[pick as usize % ACTIONS.len()];
    match mode % 4 {
        0 => Some(signed(action, rest.to_vec(), false)),
        1 => Some(signed(action, rest.to_vec(), true)),
        2 => Some(raw(rest)),
        _ => {
            let (&which, rest) = rest.split_first()?;
            let (&len, rest) = rest.split_first()?;
            let len = (len as usize).min(rest.len());
            let (value, body) = rest.split_at(len);
            let (m, p, mut headers, body) = signed(action, body.to_vec(), false);
            let names: Vec<HeaderName> = headers.keys().cloned().collect();
            let name = &names[which as usize % names.len()];
            match HeaderValue::from_bytes(value) {
                Ok(v) if which & 0x80 == 0 => {
                    headers.insert(name, v);
                }
                _ => {
                    headers.remove(name);
                }
            }
            Some((m, p, headers, body))
        }
    }
}

/// Headers exactly as the SDKs sign a request now.
fn signed(action: &str, body: Vec<u8>, v4: bool) -> Built {
    let now = OffsetDateTime::now_utc();
    let mut h: Vec<(&str, String)> = vec![
        (sign::H_DATE, sign::format_request_date(now)),
        (sign::H_API_VERSION, sign::API_VERSION.to_owned()),
        (sign::H_ACCESS_KEY_ID, AK_ID.to_owned()),
        (sign::H_INSTANCE, INSTANCE.to_owned()),
        (sign::H_CONTENT_MD5, sign::content_md5(&body)),
    ];
    if v4 {
        let sign_date = sign::format_sign_date(now);
        let key = sign::v4_signing_key(AK_SECRET, &sign_date, REGION);
        h.push((sign::H_SIGN_DATE, sign_date));
        h.push((sign::H_SIGN_REGION, REGION.to_owned()));
        let sts = sign::request_string_to_sign(action, h.iter().map(|(n, v)| (*n, v.as_str())));
        h.push((sign::H_SIGNATURE_V4, sign::sign_v4(&key, &sts)));
    } else {
        let sts = sign::request_string_to_sign(action, h.iter().map(|(n, v)| (*n, v.as_str())));
        h.push((sign::H_SIGNATURE, sign::sign_v2(AK_SECRET, &sts)));
    }
    let mut headers = HeaderMap::new();
    for (n, v) in h {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(n, v);
        }
    }
    (Method::POST, format!("/{action}"), headers, body)
}

fn raw(data: &[u8]) -> Built {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(2, |&b| b == b' ');
    let method = Method::from_bytes(parts.next().unwrap_or_default()).unwrap_or(Method::POST);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut consumed = first.len() + 1;
    let mut headers = HeaderMap::new();
    for line in lines {
        consumed += line.len() + 1;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (n, v) = line.split_at(colon);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n),
            HeaderValue::from_bytes(v[1..].trim_ascii()),
        ) {
            headers.append(n, v);
        }
    }
    let body = data.get(consumed..).unwrap_or_default().to_vec();
    (method, path, headers, body)
}

/// Inputs for the starting corpus: one valid request per action, signed both ways, plus raw
/// and corrupted-header forms (written by `write_server_request_seeds` below).
pub fn seed_inputs() -> Vec<Vec<u8>> {
    let pk = |id: i64| PrimaryKey::new().with("id", id).with("k", "a");
    let row = |id: i64| Row {
        primary_key: pk(id),
        cells: vec![
            Cell::new("c", Value::Integer(id)),
            Cell::new("s", Value::String("text".into())),
        ],
    };
    let update = |id: i64| RowChange::Update {
        primary_key: pk(id),
        ops: vec![
            CellOp::Put(Cell::new("c", Value::Double(1.5))),
            CellOp::DeleteAllVersions { name: "s".into() },
            CellOp::Increment {
                name: "n".into(),
                delta: 2,
            },
        ],
    };
    let put = plainbuffer::change_buffer(&RowChange::Put(row(1)));
    let cond = |e: pb::RowExistenceExpectation| pb::Condition {
        row_existence: e as i32,
        column_condition: None,
    };
    let mut range_start = PrimaryKey::new();
    range_start = range_start
        .with("id", tablestore::value::PkValue::InfMin)
        .with("k", tablestore::value::PkValue::InfMin);
    let mut range_end = PrimaryKey::new();
    range_end = range_end
        .with("id", tablestore::value::PkValue::InfMax)
        .with("k", tablestore::value::PkValue::InfMax);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "CreateTable",
            tablestore::convert::create_table_request(&TableDef::new(
                "t2",
                vec![PkSchema::new("b", PkType::Binary)],
            ))
            .encode_to_vec(),
        ),
        ("ListTable", pb::ListTableRequest {}.encode_to_vec()),
        (
            "DescribeTable",
            pb::DescribeTableRequest {
                table_name: TABLE.into(),
            }
            .encode_to_vec(),
        ),
        (
            "UpdateTable",
            pb::UpdateTableRequest {
                table_name: TABLE.into(),
                table_options: Some(pb::TableOptions {
                    time_to_live: Some(-1),
                    max_versions: Some(3),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "DeleteTable",
            pb::DeleteTableRequest {
                table_name: TABLE.into(),
            }
            .encode_to_vec(),
        ),
        (
            "PutRow",
            pb::PutRowRequest {
                table_name: TABLE.into(),
                row: put.clone(),
                condition: cond(pb::RowExistenceExpectation::Ignore),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "UpdateRow",
            pb::UpdateRowRequest {
                table_name: TABLE.into(),
                row_change: plainbuffer::change_buffer(&update(1)),
                condition: cond(pb::RowExistenceExpectation::Ignore),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "DeleteRow",
            pb::DeleteRowRequest {
                table_name: TABLE.into(),
                primary_key: plainbuffer::change_buffer(&RowChange::Delete(pk(1))),
                condition: cond(pb::RowExistenceExpectation::Ignore),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "GetRow",
            pb::GetRowRequest {
                table_name: TABLE.into(),
                primary_key: plainbuffer::pk_buffer(&pk(1)),
                max_versions: Some(1),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "GetRange",
            pb::GetRangeRequest {
                table_name: TABLE.into(),
                direction: pb::Direction::Forward as i32,
                max_versions: Some(1),
                limit: Some(10),
                inclusive_start_primary_key: plainbuffer::pk_buffer(&range_start),
                exclusive_end_primary_key: plainbuffer::pk_buffer(&range_end),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "BatchGetRow",
            pb::BatchGetRowRequest {
                tables: vec![pb::TableInBatchGetRowRequest {
                    table_name: TABLE.into(),
                    primary_key: vec![
                        plainbuffer::pk_buffer(&pk(1)),
                        plainbuffer::pk_buffer(&pk(2)),
                    ],
                    max_versions: Some(1),
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        ),
        (
            "BatchWriteRow",
            pb::BatchWriteRowRequest {
                tables: vec![pb::TableInBatchWriteRowRequest {
                    table_name: TABLE.into(),
                    rows: vec![
                        pb::RowInBatchWriteRowRequest {
                            r#type: pb::OperationType::Put as i32,
                            row_change: put.clone().into(),
                            condition: cond(pb::RowExistenceExpectation::Ignore),
                            ..Default::default()
                        },
                        pb::RowInBatchWriteRowRequest {
                            r#type: pb::OperationType::Update as i32,
                            row_change: plainbuffer::change_buffer(&update(2)).into(),
                            condition: cond(pb::RowExistenceExpectation::Ignore),
                            ..Default::default()
                        },
                        pb::RowInBatchWriteRowRequest {
                            r#type: pb::OperationType::Delete as i32,
                            row_change: plainbuffer::change_buffer(&RowChange::Delete(pk(3)))
                                .into(),
                            condition: cond(pb::RowExistenceExpectation::Ignore),
                            ..Default::default()
                        },
                    ],
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "BulkImport",
            pb::BulkImportRequest {
                table_name: TABLE.into(),
                rows: vec![pb::RowInBulkImportRequest {
                    r#type: pb::OperationType::Put as i32,
                    row_change: plainbuffer::change_buffer(&RowChange::Put(row(4))).into(),
                }],
            }
            .encode_to_vec(),
        ),
    ];
    let mut out = Vec::new();
    for (action, body) in bodies {
        let Some(i) = ACTIONS.iter().position(|a| *a == action) else {
            continue;
        };
        for mode in [0u8, 1] {
            let mut input = vec![mode, i as u8];
            input.extend_from_slice(&body);
            out.push(input);
        }
        // Corrupted: the MD5 header (index 4 when signed v2) replaced.
        let mut input = vec![3, i as u8, 4, 3];
        input.extend_from_slice(b"bad");
        input.extend_from_slice(&body);
        out.push(input);
    }
    let mut raw = vec![2, 0];
    raw.extend_from_slice(b"POST /PutRow\nx-ots-date: 2026-01-01T00:00:00.000Z\n\nbody");
    out.push(raw);
    let mut get = vec![2, 0];
    get.extend_from_slice(b"GET /ListTable\n\n");
    out.push(get);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server_request")
    }

    /// Replays the committed corpus of the `server_request` fuzz target (stable, fast).
    #[test]
    fn fuzz_corpus_server_request_replays_without_panic() {
        let mut server = FuzzServer::new().unwrap();
        let mut n = 0;
        for entry in std::fs::read_dir(corpus_dir()).expect("fuzz corpus directory") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            server.request(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus files in {}", corpus_dir().display());
    }

    /// The seeds reach the handlers: each signed one is answered 200 (so the fuzzer starts
    /// from requests that pass authentication and decode), each corrupted one 403.
    #[test]
    fn fuzz_seed_requests_are_accepted() {
        let mut server = FuzzServer::new().unwrap();
        for input in seed_inputs() {
            let want = match input[0] {
                0 | 1 => StatusCode::OK,
                3 => StatusCode::FORBIDDEN,
                _ => continue,
            };
            assert_eq!(server.answer(&input), Some(want), "{input:?}");
        }
    }

    /// Writes the seed corpus (`cargo test -p tsmigrate-tablestore-server --lib
    /// write_server_request_seeds -- --ignored`); libFuzzer minimises it with the rest.
    #[test]
    #[ignore]
    fn write_server_request_seeds() {
        let dir = corpus_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in seed_inputs().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), input).unwrap();
        }
    }
}
