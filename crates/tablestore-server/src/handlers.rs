//! One function per API action: protobuf request in, protobuf response out, semantics in the
//! engine. Request-level limits (batch sizes, duplicate keys) are checked here.

use std::collections::HashSet;

use bytes::Bytes;
use prost::Message;

use super::engine::{Engine, TableOptionsUpdate, WriteOp, WriteOutcome};
use tablestore::convert;
use tablestore::error::ServiceError;
use tablestore::pb;
use tablestore::plainbuffer::{self, OperationKind};
use tablestore::read::{Direction, RangeRequest};
use tablestore::row::{Condition, PrimaryKey, Row};
use tablestore::row_ref::RowChangeRef;
use tablestore::schema::{is_valid_name, TableDef};

pub use tablestore::limits::MAX_BATCH_GET_ROWS;
pub use tablestore::limits::MAX_BATCH_WRITE_BYTES;
/// Service limits enforced per request.
pub use tablestore::limits::MAX_BATCH_WRITE_ROWS;

/// Dispatches one action. Unknown actions are the service's "Unsupported operation".
pub async fn handle(engine: &Engine, action: &str, body: &Bytes) -> Result<Vec<u8>, ServiceError> {
    handle_with_row_faults(engine, action, body, &|| false).await
}

/// Asks whether the next row of a multi-row write fails on its own (fault injection).
pub type RowFault<'a> = &'a (dyn Fn() -> bool + Sync);

/// [`handle`], where BatchWriteRow and BulkImport rows for which `fail_row` says true are not
/// written and answered with a row-level OTSServerBusy (fault injection).
pub async fn handle_with_row_faults(
    engine: &Engine,
    action: &str,
    body: &Bytes,
    fail_row: RowFault<'_>,
) -> Result<Vec<u8>, ServiceError> {
    match action {
        "CreateTable" => create_table(engine, decode(body)?).map(enc),
        "ListTable" => list_table(engine).map(enc),
        "DescribeTable" => describe_table(engine, decode(body)?).map(enc),
        "UpdateTable" => update_table(engine, decode(body)?).map(enc),
        "DeleteTable" => delete_table(engine, decode(body)?).map(enc),
        "PutRow" => put_row(engine, decode(body)?).await.map(enc),
        "UpdateRow" => update_row(engine, decode(body)?).await.map(enc),
        "DeleteRow" => delete_row(engine, decode(body)?).await.map(enc),
        "GetRow" => get_row(engine, decode(body)?).await.map(enc),
        "GetRange" => get_range(engine, decode(body)?).await.map(enc),
        "BatchGetRow" => batch_get_row(engine, decode(body)?).await.map(enc),
        "BatchWriteRow" => batch_write_row(engine, decode(body)?, fail_row)
            .await
            .map(enc),
        "BulkImport" => bulk_import(engine, decode(body)?, fail_row).await.map(enc),
        other => Err(ServiceError::new(
            tablestore::error::code::UNSUPPORTED_OPERATION,
            format!("Unsupported operation: {other}."),
        )),
    }
}

fn decode<M: Message + Default>(body: &Bytes) -> Result<M, ServiceError> {
    // From `Bytes`, `bytes` fields configured as such share the body (no copy).
    M::decode(body.clone()).map_err(|e| {
        ServiceError::parameter_invalid(format!("Failed to parse the ProtoBuf message: {e}."))
    })
}

fn enc<M: Message>(m: M) -> Vec<u8> {
    m.encode_to_vec()
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::parameter_invalid(msg)
}

/// Capacity consumed: the service charges ceil(bytes / 4 KB), at least 1.
fn consumed(read_bytes: usize, write_bytes: usize) -> pb::ConsumedCapacity {
    let cu = |b: usize| {
        if b == 0 {
            0
        } else {
            b.div_ceil(4096).max(1) as i32
        }
    };
    pb::ConsumedCapacity {
        capacity_unit: pb::CapacityUnit {
            read: Some(cu(read_bytes)),
            write: Some(cu(write_bytes)),
        },
        capacity_data_size: None,
    }
}

/// Bytes a read row counts: its key, and each cell's name and value.
fn row_size(r: &Row) -> usize {
    r.primary_key.data_size()
        + r.cells
            .iter()
            .map(|c| c.name.len() + c.value.data_size())
            .sum::<usize>()
}

// ------------------------------------------------------------------ tables

fn create_table(
    engine: &Engine,
    req: pb::CreateTableRequest,
) -> Result<pb::CreateTableResponse, ServiceError> {
    if !req.index_metas.is_empty() {
        return Err(bad("Secondary indexes are not supported by this server."));
    }
    let options = convert::options_from_pb(req.table_options.as_ref());
    let (name, primary_key, defined_columns) = convert::table_meta_from_pb(req.table_meta)?;
    engine.create_table(TableDef {
        name,
        primary_key,
        defined_columns,
        options,
    })?;
    Ok(pb::CreateTableResponse {})
}

fn list_table(engine: &Engine) -> Result<pb::ListTableResponse, ServiceError> {
    Ok(pb::ListTableResponse {
        table_names: engine.list_tables()?,
    })
}

fn describe_table(
    engine: &Engine,
    req: pb::DescribeTableRequest,
) -> Result<pb::DescribeTableResponse, ServiceError> {
    Ok(convert::describe_response(
        &engine.describe_table(&req.table_name)?,
    ))
}

fn update_table(
    engine: &Engine,
    req: pb::UpdateTableRequest,
) -> Result<pb::UpdateTableResponse, ServiceError> {
    let o = req.table_options.unwrap_or_default();
    let options = engine.update_table(
        &req.table_name,
        TableOptionsUpdate {
            time_to_live: o.time_to_live,
            max_versions: o.max_versions,
            deviation_cell_version_in_sec: o.deviation_cell_version_in_sec,
            allow_update: o.allow_update,
        },
    )?;
    let d = engine.describe_table(&req.table_name)?;
    Ok(pb::UpdateTableResponse {
        reserved_throughput_details: pb::ReservedThroughputDetails {
            capacity_unit: convert::zero_cu(),
            last_increase_time: d.creation_time,
            last_decrease_time: None,
        },
        table_options: convert::options_to_pb(&options),
        stream_details: None,
    })
}

fn delete_table(
    engine: &Engine,
    req: pb::DeleteTableRequest,
) -> Result<pb::DeleteTableResponse, ServiceError> {
    engine.delete_table(&req.table_name)?;
    Ok(pb::DeleteTableResponse {})
}

// ------------------------------------------------------------------ single-row writes

/// What a write asks to get back (ReturnContent).
fn return_spec(rc: Option<&pb::ReturnContent>) -> (bool, Vec<String>) {
    match rc {
        None => (false, Vec::new()),
        Some(rc) => match rc
            .return_type
            .and_then(|t| pb::ReturnType::try_from(t).ok())
        {
            Some(pb::ReturnType::RtPk) => (true, Vec::new()),
            Some(pb::ReturnType::RtAfterModify) => (true, rc.return_column_names.clone()),
            _ => (false, Vec::new()),
        },
    }
}

fn decode_change(bytes: &[u8], kind: OperationKind) -> Result<RowChangeRef<'_>, ServiceError> {
    plainbuffer::decode_request_change(bytes, kind)
        .map_err(|e| bad(format!("Invalid row data: {e}")))
}

/// PutRow / UpdateRow / DeleteRow: one encoded row of `kind` under a condition.
async fn write_one(
    engine: &Engine,
    table: String,
    row: &[u8],
    kind: OperationKind,
    condition: &pb::Condition,
    rc: Option<&pb::ReturnContent>,
) -> Result<(Option<Vec<u8>>, pb::ConsumedCapacity), ServiceError> {
    let change = decode_change(row, kind)?;
    let condition = convert::condition_from_pb(condition)?;
    if !is_valid_name(&table) {
        return Err(bad(format!("Invalid table name: '{table}'.")));
    }
    let size = change.data_size();
    let (return_pk, return_columns) = return_spec(rc);
    let mut results = engine
        .write(vec![WriteOp {
            table,
            change: change.into_owned(),
            condition,
            return_pk,
            return_columns,
        }])
        .await;
    let outcome: WriteOutcome = results
        .pop()
        .unwrap_or_else(|| Err(ServiceError::internal("engine returned no result")))?;
    let row = outcome.returned.map(|r| plainbuffer::rows_buffer(&[r]));
    Ok((row, consumed(0, size)))
}

async fn put_row(
    engine: &Engine,
    req: pb::PutRowRequest,
) -> Result<pb::PutRowResponse, ServiceError> {
    let rc = req.return_content.as_ref();
    let kind = OperationKind::Put;
    let (row, consumed) =
        write_one(engine, req.table_name, &req.row, kind, &req.condition, rc).await?;
    Ok(pb::PutRowResponse { consumed, row })
}

async fn update_row(
    engine: &Engine,
    req: pb::UpdateRowRequest,
) -> Result<pb::UpdateRowResponse, ServiceError> {
    let rc = req.return_content.as_ref();
    let kind = OperationKind::Update;
    let (row, consumed) = write_one(
        engine,
        req.table_name,
        &req.row_change,
        kind,
        &req.condition,
        rc,
    )
    .await?;
    Ok(pb::UpdateRowResponse { consumed, row })
}

async fn delete_row(
    engine: &Engine,
    req: pb::DeleteRowRequest,
) -> Result<pb::DeleteRowResponse, ServiceError> {
    let rc = req.return_content.as_ref();
    let kind = OperationKind::Delete;
    let (row, consumed) = write_one(
        engine,
        req.table_name,
        &req.primary_key,
        kind,
        &req.condition,
        rc,
    )
    .await?;
    Ok(pb::DeleteRowResponse { consumed, row })
}

// ------------------------------------------------------------------ reads

fn decode_pk(bytes: &[u8]) -> Result<PrimaryKey, ServiceError> {
    plainbuffer::decode_request_pk(bytes).map_err(|e| bad(format!("Invalid primary key: {e}")))
}

/// Runs a synchronous engine read off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::internal(format!("read task failed: {e}")))?
}

async fn get_row(
    engine: &Engine,
    req: pb::GetRowRequest,
) -> Result<pb::GetRowResponse, ServiceError> {
    let pk = decode_pk(&req.primary_key)?;
    let read = convert::read_options_from_pb(
        req.columns_to_get,
        req.max_versions,
        req.time_range.as_ref(),
        req.filter.as_deref(),
    )?;
    let engine = engine.clone();
    let table = req.table_name;
    let row = blocking(move || engine.get_row(&table, &pk, &read)).await?;
    let size = row.as_ref().map(row_size).unwrap_or(0);
    Ok(pb::GetRowResponse {
        consumed: consumed(size.max(1), 0),
        row: row
            .map(|r| plainbuffer::rows_buffer(&[r]))
            .unwrap_or_default(),
        next_token: None,
    })
}

async fn get_range(
    engine: &Engine,
    req: pb::GetRangeRequest,
) -> Result<pb::GetRangeResponse, ServiceError> {
    let direction = match pb::Direction::try_from(req.direction) {
        Ok(pb::Direction::Forward) => Direction::Forward,
        Ok(pb::Direction::Backward) => Direction::Backward,
        Err(_) => return Err(bad(format!("Invalid direction: {}.", req.direction))),
    };
    if let Some(l) = req.limit {
        if l <= 0 {
            return Err(bad("The limit must be greater than 0."));
        }
    }
    let range = RangeRequest {
        direction,
        start: decode_pk(&req.inclusive_start_primary_key)?,
        end: decode_pk(&req.exclusive_end_primary_key)?,
        limit: req.limit,
        read: convert::read_options_from_pb(
            req.columns_to_get,
            req.max_versions,
            req.time_range.as_ref(),
            req.filter.as_deref(),
        )?,
    };
    let engine = engine.clone();
    let table = req.table_name;
    let page = blocking(move || engine.get_range(&table, &range)).await?;
    let size: usize = page.rows.iter().map(row_size).sum();
    Ok(pb::GetRangeResponse {
        consumed: consumed(size.max(1), 0),
        rows: if page.rows.is_empty() {
            Vec::new()
        } else {
            plainbuffer::rows_buffer(&page.rows)
        },
        next_start_primary_key: page.next_start.as_ref().map(plainbuffer::pk_buffer),
        ..Default::default()
    })
}

async fn batch_get_row(
    engine: &Engine,
    req: pb::BatchGetRowRequest,
) -> Result<pb::BatchGetRowResponse, ServiceError> {
    let total: usize = req.tables.iter().map(|t| t.primary_key.len()).sum();
    if total == 0 {
        return Err(bad("No row specified in the request of BatchGetRow."));
    }
    if total > MAX_BATCH_GET_ROWS {
        return Err(bad(format!(
            "Rows count exceeds the upper limit: {MAX_BATCH_GET_ROWS}."
        )));
    }
    let mut seen = HashSet::new();
    let mut tables = Vec::with_capacity(req.tables.len());
    for t in req.tables {
        if !seen.insert(t.table_name.clone()) {
            return Err(bad(format!("Duplicated table name: '{}'.", t.table_name)));
        }
        let read = convert::read_options_from_pb(
            t.columns_to_get,
            t.max_versions,
            t.time_range.as_ref(),
            t.filter.as_deref(),
        )?;
        let keys = t
            .primary_key
            .iter()
            .map(|b| decode_pk(b))
            .collect::<Result<Vec<_>, _>>()?;
        let engine = engine.clone();
        let name = t.table_name.clone();
        let rows = blocking(move || {
            Ok(keys
                .iter()
                .map(|k| engine.get_row(&name, k, &read))
                .collect::<Vec<_>>())
        })
        .await?;
        tables.push(pb::TableInBatchGetRowResponse {
            table_name: t.table_name,
            rows: rows
                .into_iter()
                .map(|r| match r {
                    Ok(row) => pb::RowInBatchGetRowResponse {
                        is_ok: true,
                        error: None,
                        consumed: Some(consumed(row.as_ref().map(row_size).unwrap_or(1), 0)),
                        row: Some(
                            row.map(|r| plainbuffer::rows_buffer(&[r]))
                                .unwrap_or_default(),
                        ),
                        next_token: None,
                    },
                    Err(e) => row_failure_get(e),
                })
                .collect(),
        });
    }
    Ok(pb::BatchGetRowResponse { tables })
}

fn pb_error(e: ServiceError) -> pb::Error {
    pb::Error {
        code: e.code,
        message: Some(e.message),
    }
}

fn row_failure_get(e: ServiceError) -> pb::RowInBatchGetRowResponse {
    pb::RowInBatchGetRowResponse {
        is_ok: false,
        error: Some(pb_error(e)),
        consumed: None,
        row: None,
        next_token: None,
    }
}

// ------------------------------------------------------------------ multi-row writes

/// Checks request-level limits shared by BatchWriteRow and BulkImport: row count, data size,
/// one change per primary key per table. Returns each row's data size.
fn check_batch(rows: &[(&str, &RowChangeRef<'_>)]) -> Result<Vec<usize>, ServiceError> {
    if rows.len() > MAX_BATCH_WRITE_ROWS {
        return Err(bad(format!(
            "Rows count exceeds the upper limit: {MAX_BATCH_WRITE_ROWS}."
        )));
    }
    let sizes: Vec<usize> = rows.iter().map(|(_, c)| c.data_size()).collect();
    let size: usize = sizes.iter().sum();
    if size > MAX_BATCH_WRITE_BYTES {
        return Err(bad(format!(
            "The total data size of the request exceeds the limit: {size} > {MAX_BATCH_WRITE_BYTES} bytes."
        )));
    }
    let mut keys =
        HashSet::with_capacity_and_hasher(rows.len(), foldhash::fast::RandomState::default());
    for (t, c) in rows {
        if !keys.insert((*t, c.primary_key())) {
            return Err(bad(format!(
                "The input parameter is invalid: the same primary key appears more than once for table '{t}'."
            )));
        }
    }
    Ok(sizes)
}

fn op_kind(t: i32) -> Result<OperationKind, ServiceError> {
    match pb::OperationType::try_from(t) {
        Ok(pb::OperationType::Put) => Ok(OperationKind::Put),
        Ok(pb::OperationType::Update) => Ok(OperationKind::Update),
        Ok(pb::OperationType::Delete) => Ok(OperationKind::Delete),
        Err(_) => Err(bad(format!("Invalid operation type: {t}."))),
    }
}

async fn batch_write_row(
    engine: &Engine,
    req: pb::BatchWriteRowRequest,
    fail_row: RowFault<'_>,
) -> Result<pb::BatchWriteRowResponse, ServiceError> {
    if req.tables.iter().all(|t| t.rows.is_empty()) {
        return Err(bad("No row is specified in BatchWriteRow."));
    }
    let mut seen = HashSet::new();
    let mut ops = Vec::new();
    let mut shape = Vec::with_capacity(req.tables.len());
    for t in &req.tables {
        if t.rows.is_empty() {
            return Err(bad(format!(
                "No operation is specified for table: '{}'.",
                t.table_name
            )));
        }
        if !seen.insert(t.table_name.as_str()) {
            return Err(bad(format!("Duplicated table name: '{}'.", t.table_name)));
        }
        // The service fails the whole request when any named table is missing.
        engine.table_def(&t.table_name)?;
        shape.push((t.table_name.clone(), t.rows.len()));
        for r in &t.rows {
            let change = decode_change(&r.row_change, op_kind(r.r#type)?)?;
            let condition = convert::condition_from_pb(&r.condition)?;
            let (return_pk, return_columns) = return_spec(r.return_content.as_ref());
            ops.push(WriteOp {
                table: t.table_name.clone(),
                change,
                condition,
                return_pk,
                return_columns,
            });
        }
    }
    let keyed: Vec<(&str, &RowChangeRef<'_>)> =
        ops.iter().map(|o| (o.table.as_str(), &o.change)).collect();
    let sizes = check_batch(&keyed)?;
    drop(keyed);
    let mut results = write_some(engine, ops, fail_row)
        .await
        .into_iter()
        .zip(sizes);
    let tables = shape
        .into_iter()
        .map(|(table_name, n)| pb::TableInBatchWriteRowResponse {
            table_name,
            rows: results
                .by_ref()
                .take(n)
                .map(|(r, size)| match r {
                    Ok(o) => pb::RowInBatchWriteRowResponse {
                        is_ok: true,
                        error: None,
                        consumed: Some(consumed(0, size)),
                        row: o.returned.map(|r| plainbuffer::rows_buffer(&[r])),
                    },
                    Err(e) => pb::RowInBatchWriteRowResponse {
                        is_ok: false,
                        error: Some(pb_error(e)),
                        consumed: None,
                        row: None,
                    },
                })
                .collect(),
        })
        .collect();
    Ok(pb::BatchWriteRowResponse { tables })
}

/// Writes the ops `fail_row` lets through; the others get a row-level OTSServerBusy, as a
/// busy partition answers. Results stay in request order.
async fn write_some(
    engine: &Engine,
    ops: Vec<WriteOp<RowChangeRef<'_>>>,
    fail_row: RowFault<'_>,
) -> Vec<Result<WriteOutcome, ServiceError>> {
    let failing: Vec<bool> = ops.iter().map(|_| fail_row()).collect();
    if !failing.contains(&true) {
        return engine.write_borrowed(ops).await;
    }
    let kept: Vec<WriteOp<RowChangeRef<'_>>> = ops
        .into_iter()
        .zip(&failing)
        .filter(|(_, f)| !**f)
        .map(|(o, _)| o)
        .collect();
    let mut written = if kept.is_empty() {
        Vec::new().into_iter()
    } else {
        engine.write_borrowed(kept).await.into_iter()
    };
    failing
        .into_iter()
        .map(|f| {
            if f {
                Err(ServiceError::new(
                    tablestore::error::code::SERVER_BUSY,
                    "Server is busy.",
                ))
            } else {
                written
                    .next()
                    .unwrap_or_else(|| Err(ServiceError::internal("a row got no result")))
            }
        })
        .collect()
}

async fn bulk_import(
    engine: &Engine,
    req: pb::BulkImportRequest,
    fail_row: RowFault<'_>,
) -> Result<pb::BulkImportResponse, ServiceError> {
    if req.rows.is_empty() {
        return Err(bad("No row is specified in BulkImport."));
    }
    engine.table_def(&req.table_name)?;
    let mut changes = Vec::with_capacity(req.rows.len());
    for r in &req.rows {
        changes.push(decode_change(&r.row_change, op_kind(r.r#type)?)?);
    }
    let keyed: Vec<(&str, &RowChangeRef<'_>)> = changes
        .iter()
        .map(|c| (req.table_name.as_str(), c))
        .collect();
    let sizes = check_batch(&keyed)?;
    drop(keyed);
    let ops = changes
        .into_iter()
        .map(|change| WriteOp {
            table: req.table_name.clone(),
            change,
            condition: Condition::ignore(),
            return_pk: false,
            return_columns: Vec::new(),
        })
        .collect();
    let rows = write_some(engine, ops, fail_row)
        .await
        .into_iter()
        .zip(sizes)
        .map(|(r, size)| match r {
            Ok(_) => pb::RowInBulkImportResponse {
                is_ok: true,
                error: None,
                consumed: Some(consumed(0, size)),
            },
            Err(e) => pb::RowInBulkImportResponse {
                is_ok: false,
                error: Some(pb_error(e)),
                consumed: None,
            },
        })
        .collect();
    Ok(pb::BulkImportResponse {
        table_name: req.table_name,
        rows,
    })
}
