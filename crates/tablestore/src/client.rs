//! The Tablestore HTTP client: signed protobuf calls over reqwest (rustls, pooled connections),
//! response verification (content MD5, signature), retries as the official SDKs classify them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use prost::Message;
use time::OffsetDateTime;

use super::convert;
use super::encoded::EncodedChange;
use super::error::{Error, Replay, ServiceError};
use super::pb;
use super::plainbuffer::{self, OperationKind};
use super::read::{Direction, RangePage, RangeRequest, ReadOptions};
use super::row::{CellOp, Condition, PrimaryKey, Row, RowChange};
use super::schema::{TableDef, TableDescription, TableOptions};
use super::sign;

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
        let body = wire::batch_write_row(rows, &tables);
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
        let body = wire::bulk_import(table, changes);
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

    // ---------------------------------------------------------------- transport

    /// Sends one call with retries; a [`Replay::Safe`] call is also retried after transport
    /// errors and server-side failures (see `ServiceError::is_retriable`).
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        action: &str,
        req: &Req,
        replay: Replay,
    ) -> Result<Resp, Error> {
        self.call_encoded(action, req.encode_to_vec(), replay).await
    }

    /// `call` with the request already encoded.
    async fn call_encoded<Resp: Message + Default>(
        &self,
        action: &str,
        body: Vec<u8>,
        replay: Replay,
    ) -> Result<Resp, Error> {
        // Shared, not copied, by every attempt.
        let body = bytes::Bytes::from(body);
        let policy = &self.inner.cfg.retry;
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match self.call_once(action, &body).await {
                Ok(bytes) => {
                    return Resp::decode(bytes)
                        .map_err(|e| invalid(action, format!("cannot decode response body: {e}")))
                }
                Err(e) => {
                    let throttled = e.service().is_some_and(ServiceError::is_throttling);
                    let delay = policy.delay(attempt, throttled);
                    if attempt >= policy.max_retries
                        || !e.is_retriable(replay)
                        || started.elapsed() + delay > policy.deadline
                    {
                        return Err(e);
                    }
                    tracing::debug!(action, attempt, error = %e, "retrying Tablestore call");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One signed call with a raw body and no retries: the response body on 2xx. For tools
    /// and tests that exercise the server with arbitrary bytes.
    pub async fn call_raw(&self, action: &str, body: &[u8]) -> Result<bytes::Bytes, Error> {
        self.call_once(action, &bytes::Bytes::copy_from_slice(body))
            .await
    }

    fn v4_key(&self, region: &str, sign_date: &str) -> String {
        let mut guard = match self.inner.v4_key.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some((d, k)) = guard.as_ref() {
            if d == sign_date {
                return k.clone();
            }
        }
        let k = sign::v4_signing_key(
            &self.inner.cfg.credentials.access_key_secret,
            sign_date,
            region,
        );
        *guard = Some((sign_date.to_owned(), k.clone()));
        k
    }

    async fn call_once(&self, action: &str, body: &bytes::Bytes) -> Result<bytes::Bytes, Error> {
        let cfg = &self.inner.cfg;
        let now = OffsetDateTime::now_utc();
        let mut headers: Vec<(&str, String)> = vec![
            (sign::H_DATE, sign::format_request_date(now)),
            (sign::H_API_VERSION, sign::API_VERSION.to_owned()),
            (sign::H_ACCESS_KEY_ID, cfg.credentials.access_key_id.clone()),
            (sign::H_INSTANCE, cfg.instance.clone()),
            (sign::H_CONTENT_MD5, sign::content_md5(body)),
        ];
        if let Some(t) = &cfg.credentials.sts_token {
            headers.push((sign::H_STS_TOKEN, t.clone()));
        }
        let response_key;
        if let Some(region) = &cfg.region {
            let sign_date = sign::format_sign_date(now);
            headers.push((sign::H_SIGN_DATE, sign_date.clone()));
            headers.push((sign::H_SIGN_REGION, region.clone()));
            let key = self.v4_key(region, &sign_date);
            let sts =
                sign::request_string_to_sign(action, headers.iter().map(|(n, v)| (*n, v.as_str())));
            headers.push((sign::H_SIGNATURE_V4, sign::sign_v4(&key, &sts)));
            response_key = key;
        } else {
            let sts =
                sign::request_string_to_sign(action, headers.iter().map(|(n, v)| (*n, v.as_str())));
            headers.push((
                sign::H_SIGNATURE,
                sign::sign_v2(&cfg.credentials.access_key_secret, &sts),
            ));
            response_key = cfg.credentials.access_key_secret.clone();
        }

        let mut rb = self
            .inner
            .http
            .post(format!("{}/{}", self.inner.base_url, action))
            .header(
                "user-agent",
                concat!("tsmigrate/", env!("CARGO_PKG_VERSION")),
            )
            .body(body.clone());
        for (n, v) in &headers {
            rb = rb.header(*n, v.as_str());
        }
        let resp = rb.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        let header =
            |name: &str| -> Option<&str> { resp_headers.get(name).and_then(|v| v.to_str().ok()) };
        let request_id = header(sign::H_REQUEST_ID).map(str::to_owned);

        if cfg.verify_responses {
            if let Some(md5) = header(sign::H_CONTENT_MD5) {
                if md5 != sign::content_md5(&bytes) {
                    return Err(invalid(
                        action,
                        "response body does not match x-ots-contentmd5",
                    ));
                }
            } else if (200..300).contains(&status) {
                return Err(invalid(
                    action,
                    "x-ots-contentmd5 is missing in the response",
                ));
            }
        }

        if !(200..300).contains(&status) {
            let mut err = match pb::Error::decode(bytes.as_ref()) {
                Ok(e) => ServiceError {
                    http_status: status,
                    code: e.code,
                    message: e.message.unwrap_or_default(),
                    request_id: None,
                },
                Err(_) => ServiceError {
                    http_status: status,
                    code: format!("HTTP{status}"),
                    message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
                    request_id: None,
                },
            };
            err.request_id = request_id;
            return Err(Error::Service(err));
        }

        if cfg.verify_responses {
            let auth = header(sign::H_AUTHORIZATION)
                .ok_or_else(|| invalid(action, "authorization is missing in the response"))?;
            let expected_prefix = format!("OTS {}:", cfg.credentials.access_key_id);
            let sig = auth.strip_prefix(&expected_prefix).ok_or_else(|| {
                invalid(action, "response authorization names another access key")
            })?;
            let sts = sign::response_string_to_sign(
                action,
                resp_headers
                    .iter()
                    .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))),
            );
            if !sign::signatures_equal(sig, &sign::sign_response(&response_key, &sts)) {
                return Err(invalid(action, "response signature mismatch"));
            }
        }
        Ok(bytes)
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // reqwest's Display includes the URL but never headers or bodies.
        let mut detail = format!("{kind}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail.push_str(&format!(": {s}"));
            src = s.source();
        }
        Error::Transport {
            endpoint: self.inner.cfg.endpoint.clone(),
            detail,
        }
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

/// Hand-rolled protobuf encoding of the two bulk write requests, byte-identical to prost's
/// (the tests compare). Each PlainBuffer row is written straight into the request body, where
/// prost would need one Vec per row and then copy it into the body.
mod wire {
    use prost::encoding::{encode_varint, encoded_len_varint};
    use prost::Message;

    use super::{convert, op_type, pb, plainbuffer, BatchRow, EncodedChange};

    /// A message field's bytes: key + length varint + payload.
    fn field_len(payload: usize) -> usize {
        1 + encoded_len_varint(payload as u64) + payload
    }

    fn put_len_field(out: &mut Vec<u8>, key: u8, len: usize) {
        out.push(key);
        encode_varint(len as u64, out);
    }

    /// The row_change field: header + the encoded row.
    fn put_change(out: &mut Vec<u8>, change: &EncodedChange) {
        put_len_field(out, 0x12, 4 + change.len());
        plainbuffer::write_header(out);
        out.extend_from_slice(change.bytes());
    }

    /// `RowInBatchWriteRowRequest` fields: type, row_change, condition (no return_content).
    struct RowSize {
        /// Only rows with a column condition need prost for their condition.
        condition: Option<pb::Condition>,
        condition_len: usize,
        body: usize,
    }

    pub(super) fn batch_write_row(rows: &[BatchRow], tables: &[(&str, Vec<usize>)]) -> Vec<u8> {
        let sizes: Vec<RowSize> = rows
            .iter()
            .map(|r| {
                let change = 4 + r.change.len();
                let condition = r
                    .condition
                    .column_condition
                    .is_some()
                    .then(|| convert::condition_to_pb(&r.condition));
                // Without a column condition: row_existence alone (key + 1-byte enum).
                let condition_len = condition.as_ref().map_or(2, Message::encoded_len);
                let body = 2 + field_len(change) + field_len(condition_len);
                RowSize {
                    condition,
                    condition_len,
                    body,
                }
            })
            .collect();
        let table_len = |name: &str, idx: &[usize]| {
            field_len(name.len()) + idx.iter().map(|&i| field_len(sizes[i].body)).sum::<usize>()
        };
        let total: usize = tables
            .iter()
            .map(|(t, idx)| field_len(table_len(t, idx)))
            .sum();
        let mut out = Vec::with_capacity(total);
        for (t, idx) in tables {
            put_len_field(&mut out, 0x0a, table_len(t, idx));
            put_len_field(&mut out, 0x0a, t.len());
            out.extend_from_slice(t.as_bytes());
            for &i in idx {
                let (r, s) = (&rows[i], &sizes[i]);
                put_len_field(&mut out, 0x12, s.body);
                out.push(0x08);
                encode_varint(op_type(r.change.op()) as i32 as u64, &mut out);
                put_change(&mut out, &r.change);
                put_len_field(&mut out, 0x1a, s.condition_len);
                match &s.condition {
                    Some(c) => c.encode_raw(&mut out),
                    None => {
                        out.push(0x08);
                        encode_varint(
                            convert::condition_to_pb(&r.condition).row_existence as u64,
                            &mut out,
                        );
                    }
                }
            }
        }
        debug_assert_eq!(out.len(), total, "BatchWriteRow size disagrees");
        out
    }

    pub(super) fn bulk_import(table: &str, changes: &[&EncodedChange]) -> Vec<u8> {
        let total = field_len(table.len())
            + changes
                .iter()
                .map(|c| field_len(2 + field_len(4 + c.len())))
                .sum::<usize>();
        let mut out = Vec::with_capacity(total);
        put_len_field(&mut out, 0x0a, table.len());
        out.extend_from_slice(table.as_bytes());
        for c in changes {
            put_len_field(&mut out, 0x12, 2 + field_len(4 + c.len()));
            out.push(0x08);
            encode_varint(op_type(c.op()) as i32 as u64, &mut out);
            put_change(&mut out, c);
        }
        debug_assert_eq!(out.len(), total, "BulkImport size disagrees");
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::plainbuffer::OperationKind;
        use crate::row::{
            CellOp, ColumnCondition, Comparator, Condition, PrimaryKey, Row, RowChange,
            RowExistence,
        };

        /// (table, change, condition): prost encodes these, our encoder the BatchRows of them.
        fn changes() -> Vec<(&'static str, RowChange, Condition)> {
            let long = "x".repeat(300);
            let cond =
                Condition::expect(RowExistence::ExpectExist).with_column(ColumnCondition::Single {
                    column: "a".into(),
                    comparator: Comparator::Equal,
                    value: 1i64.into(),
                    pass_if_missing: false,
                    latest_version_only: true,
                });
            vec![
                (
                    "t1",
                    RowChange::Put(
                        Row::new(PrimaryKey::new().with("id", 1i64))
                            .with("a", long.as_str())
                            .with("b", 2.5f64),
                    ),
                    Condition::ignore(),
                ),
                (
                    "t2",
                    RowChange::Delete(PrimaryKey::new().with("id", "k")),
                    cond,
                ),
                (
                    "t1",
                    RowChange::Update {
                        primary_key: PrimaryKey::new().with("id", 2i64),
                        ops: vec![CellOp::Increment {
                            name: "n".into(),
                            delta: -3,
                        }],
                    },
                    Condition {
                        row_existence: RowExistence::ExpectNotExist,
                        column_condition: None,
                    },
                ),
            ]
        }

        fn rows() -> Vec<BatchRow> {
            changes()
                .into_iter()
                .map(|(table, change, condition)| BatchRow {
                    table: table.into(),
                    change: change.into(),
                    condition,
                })
                .collect()
        }

        fn kind(c: &RowChange) -> OperationKind {
            match c {
                RowChange::Put(_) => OperationKind::Put,
                RowChange::Update { .. } => OperationKind::Update,
                RowChange::Delete(_) => OperationKind::Delete,
            }
        }

        fn prost_row(
            (_, change, condition): &(&str, RowChange, Condition),
        ) -> pb::RowInBatchWriteRowRequest {
            pb::RowInBatchWriteRowRequest {
                r#type: op_type(kind(change)) as i32,
                row_change: plainbuffer::change_buffer(change).into(),
                condition: convert::condition_to_pb(condition),
                return_content: None,
            }
        }

        #[test]
        fn batch_write_row_matches_prost() {
            let (rows, changes) = (rows(), changes());
            let tables = vec![("t1", vec![0, 2]), ("t2", vec![1])];
            let expected = pb::BatchWriteRowRequest {
                tables: tables
                    .iter()
                    .map(|(t, idx)| pb::TableInBatchWriteRowRequest {
                        table_name: (*t).to_owned(),
                        rows: idx.iter().map(|&i| prost_row(&changes[i])).collect(),
                    })
                    .collect(),
                transaction_id: None,
                is_atomic: None,
            }
            .encode_to_vec();
            assert_eq!(batch_write_row(&rows, &tables), expected);
        }

        #[test]
        fn bulk_import_matches_prost() {
            let rows = rows();
            let encoded: Vec<&EncodedChange> = rows.iter().map(|r| &r.change).collect();
            let expected = pb::BulkImportRequest {
                table_name: "t1".into(),
                rows: changes()
                    .iter()
                    .map(|(_, c, _)| pb::RowInBulkImportRequest {
                        r#type: op_type(kind(c)) as i32,
                        row_change: plainbuffer::change_buffer(c).into(),
                    })
                    .collect(),
            }
            .encode_to_vec();
            assert_eq!(bulk_import("t1", &encoded), expected);
        }
    }
}
