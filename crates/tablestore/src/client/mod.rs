//! The Tablestore HTTP client: signed protobuf calls over reqwest (rustls, pooled connections),
//! response verification (content MD5, signature), retries as the official SDKs classify them.
//!
//! This file holds the configuration and one method per Tablestore operation (request in,
//! response decoded); `transport` is the signed HTTP call and its retry loop, `batch_ops` the
//! hand-rolled encoding of the BatchWriteRow and BulkImport request bodies.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream};

use super::convert;
use super::encoded::EncodedChange;
use super::error::{Error, Replay, ServiceError};
use super::pb;
use super::plainbuffer::{self, OperationKind};
use super::read::{Direction, RangePage, RangeRequest, ReadOptions};
use super::row::{CellOp, Condition, PrimaryKey, Row, RowChange};
use super::schema::{TableDef, TableDescription, TableOptions};

mod batch_ops;
mod transport;

/// Access key credentials (optionally an STS token). Never logged: `Debug` hides the secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub sts_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("sts_token", &self.sts_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Retry budget: capped, jittered exponential backoff within an overall deadline.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub throttle_base_delay: Duration,
    pub max_delay: Duration,
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            throttle_base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// Sleep before retry number `attempt` (0-based): uniformly in `[d/2, d]` with
    /// `d = min(base·2^attempt, max)`.
    pub fn delay(&self, attempt: u32, throttled: bool) -> Duration {
        let base = if throttled {
            self.throttle_base_delay
        } else {
            self.base_delay
        };
        let d = base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    pub instance: String,
    pub credentials: Credentials,
    /// Some(region) signs requests with v4; None uses v2.
    pub region: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Check response signatures and content MD5 (on by default, as the Python SDK does).
    pub verify_responses: bool,
}

impl ClientConfig {
    pub fn new(
        endpoint: impl Into<String>,
        instance: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            instance: instance.into(),
            credentials: Credentials {
                access_key_id: access_key_id.into(),
                access_key_secret: access_key_secret.into(),
                sts_token: None,
            },
            region: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            verify_responses: true,
        }
    }
}

/// One row of a BatchWriteRow request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub table: Arc<str>,
    pub change: EncodedChange,
    pub condition: Condition,
}

impl BatchRow {
    /// A row of `table` with no condition (what a migration writes).
    pub fn new(table: impl Into<Arc<str>>, change: impl Into<EncodedChange>) -> Self {
        BatchRow {
            table: table.into(),
            change: change.into(),
            condition: Condition::ignore(),
        }
    }
}

/// Per-row outcome of a multi-row write: Ok, or the service's error for that row.
pub type RowResult = Result<(), ServiceError>;

/// A Tablestore client. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    cfg: ClientConfig,
    /// v4: (sign date, derived key text), refreshed when the UTC date changes.
    v4_key: std::sync::Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.cfg.endpoint)
            .field("instance", &self.inner.cfg.instance)
            .finish()
    }
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let url = reqwest::Url::parse(&cfg.endpoint).map_err(|e| {
            Error::Config(format!(
                "endpoint {:?} is not a URL ({e}); use http://host:port or https://host",
                cfg.endpoint
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(format!(
                "endpoint {:?} must start with http:// or https:// and name a host",
                cfg.endpoint
            )));
        }
        if cfg.instance.is_empty()
            || cfg.credentials.access_key_id.is_empty()
            || cfg.credentials.access_key_secret.is_empty()
        {
            return Err(Error::Config(
                "instance, access key id and access key secret must all be non-empty".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        let base_url = cfg.endpoint.trim_end_matches('/').to_owned();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                cfg,
                v4_key: std::sync::Mutex::new(None),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    // ---------------------------------------------------------------- table operations

    pub async fn create_table(&self, def: &TableDef) -> Result<(), Error> {
        let _: pb::CreateTableResponse = self
            .call(
                "CreateTable",
                &convert::create_table_request(def),
                Replay::Unsafe,
            )
            .await?;
        Ok(())
    }

    pub async fn list_tables(&self) -> Result<Vec<String>, Error> {
        let r: pb::ListTableResponse = self
            .call("ListTable", &pb::ListTableRequest {}, Replay::Safe)
            .await?;
        Ok(r.table_names)
    }

    pub async fn describe_table(&self, table: &str) -> Result<TableDescription, Error> {
        let r: pb::DescribeTableResponse = self
            .call(
                "DescribeTable",
                &pb::DescribeTableRequest {
                    table_name: table.to_owned(),
                },
                Replay::Safe,
            )
            .await?;
        convert::describe_from_pb(r).map_err(|e| invalid("DescribeTable", e.message))
    }

    pub async fn delete_table(&self, table: &str) -> Result<(), Error> {
        let _: pb::DeleteTableResponse = self
            .call(
                "DeleteTable",
                &pb::DeleteTableRequest {
                    table_name: table.to_owned(),
                },
                Replay::Unsafe,
            )
            .await?;
        Ok(())
    }

    /// Changes table options; returns the options now in force.
    pub async fn update_table(
        &self,
        table: &str,
        options: &TableOptions,
    ) -> Result<TableOptions, Error> {
        let r: pb::UpdateTableResponse = self
            .call(
                "UpdateTable",
                &pb::UpdateTableRequest {
                    table_name: table.to_owned(),
                    table_options: Some(convert::options_to_pb(options)),
                    ..Default::default()
                },
                Replay::Unsafe,
            )
            .await?;
        Ok(convert::options_from_pb(Some(&r.table_options)))
    }

    // ---------------------------------------------------------------- single-row operations

    /// Replaces a row. Writes are keyed and replay-safe, so replays are safe.
    pub async fn put_row(
        &self,
        table: &str,
        row: &Row,
        condition: &Condition,
    ) -> Result<(), Error> {
        let _: pb::PutRowResponse = self
            .call(
                "PutRow",
                &pb::PutRowRequest {
                    table_name: table.to_owned(),
                    row: plainbuffer::change_buffer(&RowChange::Put(row.clone())),
                    condition: convert::condition_to_pb(condition),
                    return_content: None,
                    transaction_id: None,
                },
                replay_of(condition),
            )
            .await?;
        Ok(())
    }

    pub async fn update_row(
        &self,
        table: &str,
        primary_key: &PrimaryKey,
        ops: &[CellOp],
        condition: &Condition,
    ) -> Result<(), Error> {
        let has_increment = ops.iter().any(|o| matches!(o, CellOp::Increment { .. }));
        let change = RowChange::Update {
            primary_key: primary_key.clone(),
            ops: ops.to_vec(),
        };
        let _: pb::UpdateRowResponse = self
            .call(
                "UpdateRow",
                &pb::UpdateRowRequest {
                    table_name: table.to_owned(),
                    row_change: plainbuffer::change_buffer(&change),
                    condition: convert::condition_to_pb(condition),
                    return_content: None,
                    transaction_id: None,
                },
                // An increment applied twice is not harmless; conditional writes neither.
                if has_increment {
                    Replay::Unsafe
                } else {
                    replay_of(condition)
                },
            )
            .await?;
        Ok(())
    }

    pub async fn delete_row(
        &self,
        table: &str,
        primary_key: &PrimaryKey,
        condition: &Condition,
    ) -> Result<(), Error> {
        let _: pb::DeleteRowResponse = self
            .call(
                "DeleteRow",
                &pb::DeleteRowRequest {
                    table_name: table.to_owned(),
                    primary_key: plainbuffer::change_buffer(&RowChange::Delete(
                        primary_key.clone(),
                    )),
                    condition: convert::condition_to_pb(condition),
                    return_content: None,
                    transaction_id: None,
                },
                if condition.row_existence == super::row::RowExistence::Ignore {
                    replay_of(condition)
                } else {
                    Replay::Unsafe
                },
            )
            .await?;
        Ok(())
    }

    /// Reads one row; `None` when it does not exist.
    pub async fn get_row(
        &self,
        table: &str,
        primary_key: &PrimaryKey,
        read: &ReadOptions,
    ) -> Result<Option<Row>, Error> {
        let (max_versions, time_range) = versions_to_pb(read);
        let r: pb::GetRowResponse = self
            .call(
                "GetRow",
                &pb::GetRowRequest {
                    table_name: table.to_owned(),
                    primary_key: plainbuffer::pk_buffer(primary_key),
                    columns_to_get: read.columns_to_get.clone(),
                    time_range,
                    max_versions,
                    filter: read.filter.as_ref().map(super::filter::encode_condition),
                    ..Default::default()
                },
                Replay::Safe,
            )
            .await?;
        if r.row.is_empty() {
            return Ok(None);
        }
        let rows = plainbuffer::decode_rows(&r.row).map_err(|e| invalid("GetRow", e))?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(w) => Ok(Some(w.into_row().map_err(|e| invalid("GetRow", e))?)),
        }
    }

    // ---------------------------------------------------------------- multi-row operations

    /// One GetRange call (one page).
    pub async fn get_range(&self, table: &str, req: &RangeRequest) -> Result<RangePage, Error> {
        let (max_versions, time_range) = versions_to_pb(&req.read);
        let r: pb::GetRangeResponse = self
            .call(
                "GetRange",
                &pb::GetRangeRequest {
                    table_name: table.to_owned(),
                    direction: match req.direction {
                        Direction::Forward => pb::Direction::Forward,
                        Direction::Backward => pb::Direction::Backward,
                    } as i32,
                    columns_to_get: req.read.columns_to_get.clone(),
                    time_range,
                    max_versions,
                    limit: req.limit,
                    inclusive_start_primary_key: plainbuffer::pk_buffer(&req.start),
                    exclusive_end_primary_key: plainbuffer::pk_buffer(&req.end),
                    filter: req
                        .read
                        .filter
                        .as_ref()
                        .map(super::filter::encode_condition),
                    ..Default::default()
                },
                Replay::Safe,
            )
            .await?;
        let rows = plainbuffer::decode_rows(&r.rows)
            .map_err(|e| invalid("GetRange", e))?
            .into_iter()
            .map(|w| w.into_row())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("GetRange", e))?;
        let next_start = match r.next_start_primary_key {
            Some(b) if !b.is_empty() => {
                Some(plainbuffer::decode_pk(&b).map_err(|e| invalid("GetRange", e))?)
            }
            _ => None,
        };
        Ok(RangePage { rows, next_start })
    }

    /// Every row of a range as a stream, following `next_start_primary_key` page by page.
    /// `req.limit` is the page size, not a total.
    pub fn range_stream(
        &self,
        table: &str,
        req: RangeRequest,
    ) -> impl Stream<Item = Result<Row, Error>> + Send + 'static {
        struct St {
            client: Client,
            table: String,
            req: Option<RangeRequest>,
            buf: std::vec::IntoIter<Row>,
        }
        let st = St {
            client: self.clone(),
            table: table.to_owned(),
            req: Some(req),
            buf: Vec::new().into_iter(),
        };
        stream::unfold(st, |mut st| async move {
            loop {
                if let Some(row) = st.buf.next() {
                    return Some((Ok(row), st));
                }
                let req = st.req.take()?;
                match st.client.get_range(&st.table, &req).await {
                    Err(e) => return Some((Err(e), st)),
                    Ok(page) => {
                        st.buf = page.rows.into_iter();
                        if let Some(next) = page.next_start {
                            st.req = Some(RangeRequest { start: next, ..req });
                        }
                    }
                }
            }
        })
    }

    /// BatchGetRow for one table: one result per key, in order (`None` = no such row).
    pub async fn batch_get_row(
        &self,
        table: &str,
        keys: &[PrimaryKey],
        read: &ReadOptions,
    ) -> Result<Vec<Result<Option<Row>, ServiceError>>, Error> {
        let (max_versions, time_range) = versions_to_pb(read);
        let r: pb::BatchGetRowResponse = self
            .call(
                "BatchGetRow",
                &pb::BatchGetRowRequest {
                    tables: vec![pb::TableInBatchGetRowRequest {
                        table_name: table.to_owned(),
                        primary_key: keys.iter().map(plainbuffer::pk_buffer).collect(),
                        columns_to_get: read.columns_to_get.clone(),
                        time_range,
                        max_versions,
                        filter: read.filter.as_ref().map(super::filter::encode_condition),
                        ..Default::default()
                    }],
                },
                Replay::Safe,
            )
            .await?;
        let t = r
            .tables
            .into_iter()
            .next()
            .ok_or_else(|| invalid("BatchGetRow", "response has no table"))?;
        if t.rows.len() != keys.len() {
            return Err(invalid(
                "BatchGetRow",
                format!(
                    "{} keys sent, {} results received",
                    keys.len(),
                    t.rows.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(keys.len());
        for row in t.rows {
            if !row.is_ok {
                out.push(Err(row_error(row.error)));
                continue;
            }
            match row.row {
                Some(b) if !b.is_empty() => {
                    let w = plainbuffer::decode_single_row(&b)
                        .and_then(|w| w.into_row())
                        .map_err(|e| invalid("BatchGetRow", e))?;
                    out.push(Ok(Some(w)));
                }
                _ => out.push(Ok(None)),
            }
        }
        Ok(out)
    }

    /// One BatchWriteRow request (the caller keeps it within 200 rows / 4 MB and free of
    /// duplicate keys; see `batch::BatchWriter`). One result per input row, in input order.
    pub async fn batch_write_row(&self, rows: &[BatchRow]) -> Result<Vec<RowResult>, Error> {
        // Group by table in first-appearance order, remembering each row's input index.
        let mut tables: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            match tables.iter_mut().find(|(t, _)| *t == &*r.table) {
                Some((_, idx)) => idx.push(i),
                None => tables.push((&r.table, vec![i])),
            }
        }
        let body = batch_ops::batch_write_row(rows, &tables);
        let resp: pb::BatchWriteRowResponse = self
            .call_encoded("BatchWriteRow", body, Replay::Safe)
            .await?;
        let mut out: Vec<Option<RowResult>> = vec![None; rows.len()];
        for t in resp.tables {
            let Some((_, idx)) = tables.iter().find(|(n, _)| *n == t.table_name) else {
                return Err(invalid(
                    "BatchWriteRow",
                    format!("response names a table that was not sent: {}", t.table_name),
                ));
            };
            if t.rows.len() != idx.len() {
                return Err(invalid(
                    "BatchWriteRow",
                    format!("{} rows sent, {} results received", idx.len(), t.rows.len()),
                ));
            }
            for (r, &i) in t.rows.into_iter().zip(idx) {
                out[i] = Some(if r.is_ok {
                    Ok(())
                } else {
                    Err(row_error(r.error))
                });
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| invalid("BatchWriteRow", "a row got no result")))
            .collect()
    }

    /// One BulkImport request for one table (no conditions). One result per change.
    pub async fn bulk_import(
        &self,
        table: &str,
        changes: &[RowChange],
    ) -> Result<Vec<RowResult>, Error> {
        let encoded: Vec<EncodedChange> = changes.iter().map(EncodedChange::new).collect();
        let refs: Vec<&EncodedChange> = encoded.iter().collect();
        self.bulk_import_encoded(table, &refs).await
    }

    /// `bulk_import` of changes already encoded (the batch writer's path, no copies).
    pub async fn bulk_import_encoded(
        &self,
        table: &str,
        changes: &[&EncodedChange],
    ) -> Result<Vec<RowResult>, Error> {
        let n = changes.len();
        let body = batch_ops::bulk_import(table, changes);
        let resp: pb::BulkImportResponse =
            self.call_encoded("BulkImport", body, Replay::Safe).await?;
        if resp.rows.len() != n {
            return Err(invalid(
                "BulkImport",
                format!("{} rows sent, {} results received", n, resp.rows.len()),
            ));
        }
        Ok(resp
            .rows
            .into_iter()
            .map(|r| {
                if r.is_ok {
                    Ok(())
                } else {
                    Err(row_error(r.error))
                }
            })
            .collect())
    }
}

fn versions_to_pb(read: &ReadOptions) -> (Option<i32>, Option<pb::TimeRange>) {
    match (&read.time_range, read.max_versions) {
        (Some(t), _) => (None, Some(convert::time_range_to_pb(t))),
        (None, m) => (Some(m.unwrap_or(1)), None),
    }
}

fn op_type(op: OperationKind) -> pb::OperationType {
    match op {
        OperationKind::Put => pb::OperationType::Put,
        OperationKind::Update => pb::OperationType::Update,
        OperationKind::Delete => pb::OperationType::Delete,
    }
}

fn row_error(e: Option<pb::Error>) -> ServiceError {
    match e {
        Some(e) => {
            let mut s = ServiceError::new(&e.code, e.message.unwrap_or_default());
            // Per-row errors arrive inside an HTTP 200; keep the code's own status.
            s.http_status = super::error::http_status_for(&e.code);
            s
        }
        None => ServiceError::internal("row failed without an error description"),
    }
}

/// A keyed write is replay-safe unless a column condition may read the row it wrote itself.
fn replay_of(condition: &Condition) -> Replay {
    if condition.column_condition.is_none() {
        Replay::Safe
    } else {
        Replay::Unsafe
    }
}

fn invalid(action: &str, detail: impl std::fmt::Display) -> Error {
    Error::InvalidResponse {
        action: action.to_owned(),
        detail: detail.to_string(),
    }
}
