//! Request authentication exactly as the service does it: content MD5, date skew, instance,
//! access key, and the v2 or v4 signature over every `x-ots-*` header.

use hyper::HeaderMap;
use time::OffsetDateTime;

use tablestore::error::ServiceError;
use tablestore::sign;

/// The server's single identity.
#[derive(Clone)]
pub struct Identity {
    pub instance: String,
    pub access_key_id: String,
    pub access_key_secret: String,
}

/// Largest accepted |server time − x-ots-date|.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// A verified request: the key to sign the response with.
pub struct Verified {
    pub response_key: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ServiceError> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ServiceError::auth_failed(format!("Missing header: {name}.")))
}

pub fn verify(
    id: &Identity,
    action: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, ServiceError> {
    let date = header(headers, sign::H_DATE)?;
    header(headers, sign::H_API_VERSION)?;
    let md5 = header(headers, sign::H_CONTENT_MD5)?;
    let instance = header(headers, sign::H_INSTANCE)?;
    let akid = header(headers, sign::H_ACCESS_KEY_ID)?;

    let t = sign::parse_ots_date(date)
        .ok_or_else(|| ServiceError::parameter_invalid(format!("Invalid date format: {date}.")))?;
    if (OffsetDateTime::now_utc() - t).whole_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(ServiceError::auth_failed(format!(
            "Mismatch between system time and x-ots-date: {date}."
        )));
    }
    if md5 != sign::content_md5(body) {
        return Err(ServiceError::auth_failed(
            "Mismatch between MD5 value of request body and x-ots-contentmd5 in header.",
        ));
    }
    if instance != id.instance {
        return Err(ServiceError::auth_failed(format!(
            "The instance '{instance}' does not exist on this server (serving '{}').",
            id.instance
        )));
    }
    if akid != id.access_key_id {
        return Err(ServiceError::auth_failed("The AccessKeyId does not exist."));
    }

    let x_ots = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)));
    let string_to_sign = sign::request_string_to_sign(action, x_ots);
    if let Some(sig) = headers.get(sign::H_SIGNATURE_V4) {
        let sig = sig
            .to_str()
            .map_err(|_| ServiceError::auth_failed("Signature mismatch."))?;
        let sign_date = header(headers, sign::H_SIGN_DATE)?;
        let region = header(headers, sign::H_SIGN_REGION)?;
        let key = sign::v4_signing_key(&id.access_key_secret, sign_date, region);
        if !sign::signatures_equal(sig, &sign::sign_v4(&key, &string_to_sign)) {
            return Err(ServiceError::auth_failed("Signature mismatch."));
        }
        Ok(Verified { response_key: key })
    } else {
        let sig = header(headers, sign::H_SIGNATURE)?;
        if !sign::signatures_equal(sig, &sign::sign_v2(&id.access_key_secret, &string_to_sign)) {
            return Err(ServiceError::auth_failed("Signature mismatch."));
        }
        Ok(Verified {
            response_key: id.access_key_secret.clone(),
        })
    }
}
