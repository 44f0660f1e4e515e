//! The HTTP side of the local server: accept loop, request framing (POST /Action, body limit),
//! authentication, fault injection, and signed responses exactly as the SDKs verify them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::{self, Identity};
use super::engine::Engine;
use super::faults::{Fault, FaultInjector};
use super::handlers;
use tablestore::error::{code, ServiceError};
use tablestore::pb;
use tablestore::sign;

/// Largest request body accepted (the service's HTTP limit).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

pub(crate) struct Shared {
    pub engine: Engine,
    pub identity: Identity,
    pub faults: Arc<FaultInjector>,
    request_seq: AtomicU64,
    instance_tag: u32,
}

impl Shared {
    pub fn new(engine: Engine, identity: Identity, faults: Arc<FaultInjector>) -> Self {
        Shared {
            engine,
            identity,
            faults,
            request_seq: AtomicU64::new(1),
            instance_tag: fastrand::u32(..),
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            self.instance_tag,
            (n >> 48) & 0xffff,
            (n >> 32) & 0xffff,
            (n >> 16) & 0xffff,
            n & 0xffff_ffff_ffff
        )
    }
}

/// Accepts connections until `shutdown` flips to true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { handle_request(shared, peer, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection closed with error");
                    }
                }
                _ = conn_shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Error returned to hyper to close a connection without an answer (fault injection).
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DropConnection {}

async fn handle_request(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    // Only a POST's body is read.
    let body = if parts.method != hyper::Method::POST {
        Ok(Bytes::new())
    } else {
        match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) => {
                let too_large = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                Err(if too_large {
                    ServiceError::new(
                        code::REQUEST_BODY_TOO_LARGE,
                        "The size of POST data is too large.",
                    )
                } else {
                    ServiceError::new(code::REQUEST_TIMEOUT, "Request timeout.")
                })
            }
        }
    };
    respond(
        &shared,
        peer,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        body,
    )
    .await
}

/// Answers a request whose body has been read (or failed to be): everything after the HTTP
/// framing. The in-process seam the fuzz harness (`crate::fuzz`) drives without sockets.
pub(crate) async fn respond(
    shared: &Shared,
    peer: SocketAddr,
    method: &hyper::Method,
    path: &str,
    headers: &hyper::HeaderMap,
    body: Result<Bytes, ServiceError>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let request_id = shared.next_request_id();
    let action = path.rsplit('/').next().unwrap_or_default().to_owned();
    if method != hyper::Method::POST {
        let e = ServiceError::new(
            code::METHOD_NOT_ALLOWED,
            format!("Only POST is allowed, got {method}."),
        );
        return Ok(error_response(&action, &request_id, e, None));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return Ok(error_response(&action, &request_id, e, None)),
    };

    let verified = match auth::verify(&shared.identity, &action, headers, &body) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(%peer, action, code = %e.code, "request rejected");
            return Ok(error_response(&action, &request_id, e, None));
        }
    };
    let key = Some((
        shared.identity.access_key_id.as_str(),
        verified.response_key.as_str(),
    ));

    // Chaos mode: a WAN's round trip. An async sleep, so other requests go on meanwhile.
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let mut drop_after = false;
    let mut row_errors = 0.0;
    match shared.faults.take(&action) {
        None => {}
        Some(Fault::RowErrors(fraction)) => row_errors = fraction,
        Some(Fault::Error { code, message }) => {
            return Ok(error_response(
                &action,
                &request_id,
                ServiceError::new(&code, message),
                key,
            ))
        }
        Some(Fault::Timeout(d)) => {
            tokio::time::sleep(d).await;
            let e = ServiceError::new(code::TIMEOUT, "Operation timeout.");
            return Ok(error_response(&action, &request_id, e, key));
        }
        Some(Fault::DropConnection) => return Err(DropConnection),
        Some(Fault::DropAfterApply) => drop_after = true,
    }

    let faults = &shared.faults;
    let fail_row = move || row_errors > 0.0 && faults.row_fails(row_errors);
    let result = handlers::handle_with_row_faults(&shared.engine, &action, &body, &fail_row).await;
    if drop_after {
        return Err(DropConnection);
    }
    Ok(match result {
        Ok(bytes) => signed_response(&action, &request_id, StatusCode::OK, bytes, key),
        Err(e) => {
            tracing::debug!(action, code = %e.code, "request failed");
            error_response(&action, &request_id, e, key)
        }
    })
}

fn error_response(
    action: &str,
    request_id: &str,
    e: ServiceError,
    key: Option<(&str, &str)>,
) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = pb::Error {
        code: e.code,
        message: Some(e.message),
    }
    .encode_to_vec();
    signed_response(action, request_id, status, body, key)
}

/// Builds a response with the headers the SDKs require; signs it when the caller was
/// authenticated (auth failures go out unsigned, as the service does).
fn signed_response(
    action: &str,
    request_id: &str,
    status: StatusCode,
    body: Vec<u8>,
    key: Option<(&str, &str)>,
) -> Response<Full<Bytes>> {
    let md5 = sign::content_md5(&body);
    let date = sign::format_response_date(OffsetDateTime::now_utc());
    let x_ots = [
        (sign::H_CONTENT_MD5, md5.as_str()),
        (sign::H_CONTENT_TYPE, sign::CONTENT_TYPE_PB),
        (sign::H_DATE, date.as_str()),
        (sign::H_REQUEST_ID, request_id),
    ];
    let mut builder = Response::builder().status(status);
    for (n, v) in x_ots {
        builder = builder.header(n, v);
    }
    if let Some((access_key_id, key)) = key {
        let sts = sign::response_string_to_sign(action, x_ots);
        builder = builder.header(
            sign::H_AUTHORIZATION,
            sign::authorization_header(access_key_id, &sign::sign_response(key, &sts)),
        );
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
