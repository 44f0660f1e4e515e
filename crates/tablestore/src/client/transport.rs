//! The transport under every [`Client`] operation: one signed HTTP POST per attempt (v2 or
//! v4 signature, content MD5), verification of the response (MD5 and signature), service
//! errors decoded from the body, and the retry loop that replays a call as its
//! [`Replay`] class and the [`RetryPolicy`](super::RetryPolicy) allow.

use std::time::Instant;

use prost::Message;
use time::OffsetDateTime;

use super::{invalid, Client};
use crate::error::{Error, Replay, ServiceError};
use crate::{pb, sign};

impl Client {
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
    pub(super) async fn call_encoded<Resp: Message + Default>(
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
