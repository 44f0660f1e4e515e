//! Request and response signatures (v2 HMAC-SHA1, v4 HMAC-SHA256 with a region-scoped key),
//! content MD5 and the `x-ots-date` format. Shared by the client and the local server, so the
//! two sides cannot drift apart; the unit tests pin the official SDK's test vectors.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

pub const API_VERSION: &str = "2015-12-31";
pub const EMPTY_BODY_MD5: &str = "1B2M2Y8AsgTpgAmY7PhCfg==";

pub const H_DATE: &str = "x-ots-date";
pub const H_API_VERSION: &str = "x-ots-apiversion";
pub const H_ACCESS_KEY_ID: &str = "x-ots-accesskeyid";
pub const H_INSTANCE: &str = "x-ots-instancename";
pub const H_CONTENT_MD5: &str = "x-ots-contentmd5";
pub const H_STS_TOKEN: &str = "x-ots-ststoken";
pub const H_SIGNATURE: &str = "x-ots-signature";
pub const H_SIGNATURE_V4: &str = "x-ots-signaturev4";
pub const H_SIGN_DATE: &str = "x-ots-signdate";
pub const H_SIGN_REGION: &str = "x-ots-signregion";
pub const H_REQUEST_ID: &str = "x-ots-requestid";
pub const H_CONTENT_TYPE: &str = "x-ots-contenttype";
pub const H_AUTHORIZATION: &str = "authorization";
pub const CONTENT_TYPE_PB: &str = "protocol buffer";

const V4_SALT: &str = "ots";

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    match HmacSha1::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// base64(MD5(body)), the `x-ots-contentmd5` value.
pub fn content_md5(body: &[u8]) -> String {
    B64.encode(Md5::digest(body))
}

/// The v4 derived signing key, as the base64 *text* the protocol uses as the HMAC key.
pub fn v4_signing_key(access_key_secret: &str, sign_date: &str, region: &str) -> String {
    let k1 = hmac_sha256(
        format!("aliyun_v4{access_key_secret}").as_bytes(),
        sign_date.as_bytes(),
    );
    let k2 = hmac_sha256(&k1, region.as_bytes());
    let k3 = hmac_sha256(&k2, b"ots");
    let k4 = hmac_sha256(&k3, b"aliyun_v4_request");
    B64.encode(k4)
}

/// The canonical request string: `/Action\nPOST\n\n` then every `x-ots-*` header (except the
/// signature headers), lower-cased name, trimmed value, sorted by name, each ending in `\n`.
pub fn request_string_to_sign<'a>(
    action: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut lines: Vec<(String, &str)> = headers
        .into_iter()
        .filter_map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            (n.starts_with("x-ots-") && n != H_SIGNATURE && n != H_SIGNATURE_V4)
                .then_some((n, v.trim()))
        })
        .collect();
    lines.sort();
    let mut s = format!("/{action}\nPOST\n\n");
    for (n, v) in lines {
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// v2 signature: base64(HMAC-SHA1(secret, string_to_sign)).
pub fn sign_v2(access_key_secret: &str, string_to_sign: &str) -> String {
    B64.encode(hmac_sha1(
        access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// v4 signature: base64(HMAC-SHA256(derived key text, string_to_sign + "ots")).
pub fn sign_v4(signing_key_b64: &str, string_to_sign: &str) -> String {
    let mut msg = String::with_capacity(string_to_sign.len() + V4_SALT.len());
    msg.push_str(string_to_sign);
    msg.push_str(V4_SALT);
    B64.encode(hmac_sha256(signing_key_b64.as_bytes(), msg.as_bytes()))
}

/// The canonical response string: sorted `x-ots-*` headers as `name:value\n`, then `/Action`.
pub fn response_string_to_sign<'a>(
    action: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut lines: Vec<(String, &str)> = headers
        .into_iter()
        .filter_map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            n.starts_with("x-ots-").then_some((n, v))
        })
        .collect();
    lines.sort();
    let mut s = String::new();
    for (n, v) in lines {
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(action);
    s
}

/// Response signature (HMAC-SHA1 for v2 and v4 sessions alike). `key` is the secret for v2
/// sessions and the v4 derived key text for v4 sessions.
pub fn sign_response(key: &str, string_to_sign: &str) -> String {
    B64.encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()))
}

/// The `authorization` response header value.
pub fn authorization_header(access_key_id: &str, signature: &str) -> String {
    format!("OTS {access_key_id}:{signature}")
}

/// Constant-time comparison for signatures.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const DATE_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const DATE_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const DATE_SECONDS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
const SIGN_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]");

/// Request date, as the SDKs send it: `2024-01-01T00:00:00.000Z`.
pub fn format_request_date(t: OffsetDateTime) -> String {
    t.format(DATE_MILLIS).unwrap_or_default()
}

/// Response date with microseconds, as the service sends it (the Python SDK requires a fraction).
pub fn format_response_date(t: OffsetDateTime) -> String {
    t.format(DATE_MICROS).unwrap_or_default()
}

/// `yyyyMMdd` for v4 signing.
pub fn format_sign_date(t: OffsetDateTime) -> String {
    t.format(SIGN_DATE).unwrap_or_default()
}

/// Parses `x-ots-date` leniently: the fraction is ignored (the Go SDK sends a garbage fraction),
/// a trailing `Z` is required.
pub fn parse_ots_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim().strip_suffix('Z')?;
    let seconds_part = s.split('.').next()?;
    PrimitiveDateTime::parse(seconds_part, DATE_SECONDS)
        .ok()
        .map(|p| p.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("x-ots-date", "2024-01-01T00:00:00.000Z"),
            ("x-ots-apiversion", "2015-12-31"),
            ("x-ots-accesskeyid", "AKID"),
            ("x-ots-instancename", "inst1"),
            ("x-ots-contentmd5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("User-Agent", "not signed"),
        ]
    }

    #[test]
    fn v2_vector() {
        let s = request_string_to_sign("ListTable", vector_headers());
        assert_eq!(
            s,
            "/ListTable\nPOST\n\nx-ots-accesskeyid:AKID\nx-ots-apiversion:2015-12-31\nx-ots-contentmd5:1B2M2Y8AsgTpgAmY7PhCfg==\nx-ots-date:2024-01-01T00:00:00.000Z\nx-ots-instancename:inst1\n"
        );
        assert_eq!(sign_v2("SECRET", &s), "91CV/4Q8lH/GrNYLmUyIkpdeaZE=");
    }

    #[test]
    fn v4_vector() {
        let key = v4_signing_key("SECRET", "20240101", "cn-hangzhou");
        assert_eq!(key, "eD4qZBwRQRwnkJQT7ZTPxmxrFg25XNuXQnUmCVyHHzw=");
        let mut h = vector_headers();
        h.push(("x-ots-signdate", "20240101"));
        h.push(("x-ots-signregion", "cn-hangzhou"));
        h.push(("x-ots-signaturev4", "ignored"));
        let s = request_string_to_sign("ListTable", h);
        assert_eq!(
            sign_v4(&key, &s),
            "1A/7SCdKOhhyIfHzT3w47QXHrBP+cQl60+PQsxCAAhA="
        );
    }

    #[test]
    fn response_vector() {
        let h = [
            ("x-ots-contentmd5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("x-ots-contenttype", "protocol buffer"),
            ("x-ots-date", "2024-01-01T00:00:01.000Z"),
            ("x-ots-requestid", "req-1"),
        ];
        let s = response_string_to_sign("ListTable", h);
        assert_eq!(s, "x-ots-contentmd5:1B2M2Y8AsgTpgAmY7PhCfg==\nx-ots-contenttype:protocol buffer\nx-ots-date:2024-01-01T00:00:01.000Z\nx-ots-requestid:req-1\n/ListTable");
        assert_eq!(sign_response("SECRET", &s), "7tmaFojw37OE8OsgmQ0yXCHpYGc=");
        let v4 = v4_signing_key("SECRET", "20240101", "cn-hangzhou");
        assert_eq!(sign_response(&v4, &s), "1IlOxDe0oW69bhi7774fETftvIA=");
    }

    #[test]
    fn md5_of_empty_body() {
        assert_eq!(content_md5(b""), EMPTY_BODY_MD5);
    }

    #[test]
    fn dates() {
        let t = parse_ots_date("2024-01-01T00:00:00.000Z").unwrap();
        assert_eq!(format_request_date(t), "2024-01-01T00:00:00.000Z");
        assert_eq!(format_sign_date(t), "20240101");
        assert_eq!(format_response_date(t), "2024-01-01T00:00:00.000000Z");
        // The Go SDK's garbage fraction parses.
        assert!(parse_ots_date("2026-11-27T01:06:38.11271Z").is_some());
        assert!(parse_ots_date("2026-11-27 01:06:38").is_none());
    }
}
