//! Secret references (design invariant 5: secrets never travel in payloads, events, logs or
//! errors).
//!
//! A config never holds a credential itself, only a [`SecretRef`] saying where to get it:
//!
//! - `{"env": "NAME"}`: the environment variable `NAME` of the process that resolves it.
//! - `{"secret_arn": "arn:aws:secretsmanager:…", "key": "password"}`: an AWS Secrets Manager
//!   secret, fetched through a [`SecretResolver`] (the Lambda functions implement it with the
//!   Secrets Manager client). With `key`, the secret string is a JSON object and the credential is
//!   that field (the shape of RDS-managed secrets: `{"username": …, "password": …}`).
//! - `{"value": "literal"}`: the credential itself. Only accepted for a local setup (embedded
//!   destination or loopback hosts, see `validate`), for quickstarts and tests.
//!
//! `Debug`, `Display` and `Serialize` never show a literal value: it prints as `<redacted>`. A
//! config that went through `Serialize` therefore no longer carries its literal secrets; a
//! process that must hand a config with literals to another step (the local runner) first calls
//! [`MigrationConfig::detach_literal_secrets`](super::MigrationConfig::detach_literal_secrets),
//! which swaps each literal for a `local:` reference answered by an in-memory resolver.

use std::collections::BTreeMap;
use std::fmt;

use futures_util::future::BoxFuture;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug`, `Display` and `Serialize` print instead of a literal secret.
pub const REDACTED: &str = "<redacted>";

/// The `secret_arn` prefix used by [`LocalSecrets`] for literals detached from a config.
pub const LOCAL_SECRET_PREFIX: &str = "local:";

/// A resolved credential. `Debug` and `Display` print `<redacted>`; read it with
/// [`SecretString::expose`] at the one place that hands it to a client.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Never log or return it in an error.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where a credential comes from. See the module documentation for the three JSON forms.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{"env": "NAME"}`: the environment variable `NAME`.
    Env(String),
    /// `{"secret_arn": "…", "key": "field"?}`: an AWS Secrets Manager secret (ARN or name),
    /// optionally one field of a JSON secret.
    SecretArn { arn: String, key: Option<String> },
    /// `{"value": "…"}`: the credential itself (local setups only).
    Literal(SecretString),
}

impl SecretRef {
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef::Env(name.into())
    }

    pub fn secret_arn(arn: impl Into<String>, key: Option<&str>) -> Self {
        SecretRef::SecretArn {
            arn: arn.into(),
            key: key.map(str::to_owned),
        }
    }

    pub fn literal(value: impl Into<String>) -> Self {
        SecretRef::Literal(SecretString::new(value))
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, SecretRef::Literal(_))
    }

    /// Resolves the reference without a Secrets Manager client: env and literal references
    /// work, a `secret_arn` reference is an error that says so. `path` is the reference's place
    /// in the config (`source.password`), used in error messages.
    pub fn resolve_env(&self, path: &str) -> Result<SecretString, SecretError> {
        match self {
            SecretRef::Env(name) => read_env(path, name),
            SecretRef::Literal(value) => Ok(value.clone()),
            SecretRef::SecretArn { .. } => Err(SecretError {
                path: path.to_owned(),
                reference: self.to_string(),
                problem: "a secret_arn reference needs AWS Secrets Manager, and no secret \
                          resolver is available here (local mode has none)"
                    .to_owned(),
                fix: format!(
                    "run this step as a Lambda function, or for a local run use \
                     {{\"env\": \"NAME\"}} for {path} and export NAME"
                ),
            }),
        }
    }

    /// Resolves the reference; `secret_arn` references are fetched through `resolver`.
    pub async fn resolve(
        &self,
        path: &str,
        resolver: &dyn SecretResolver,
    ) -> Result<SecretString, SecretError> {
        let (arn, key) = match self {
            SecretRef::SecretArn { arn, key } => (arn, key),
            _ => return self.resolve_env(path),
        };
        let secret = resolver.fetch(arn).await.map_err(|problem| SecretError {
            path: path.to_owned(),
            reference: self.to_string(),
            problem,
            fix: format!(
                "check that the secret exists and that the function's role may call \
                 secretsmanager:GetSecretValue on {arn}"
            ),
        })?;
        match key {
            None => Ok(secret),
            Some(key) => extract_key(path, &self.to_string(), &secret, key),
        }
    }
}

fn read_env(path: &str, name: &str) -> Result<SecretString, SecretError> {
    let reference = format!("env:{name}");
    match std::env::var(name) {
        Ok(value) => Ok(SecretString(value)),
        Err(std::env::VarError::NotPresent) => Err(SecretError {
            path: path.to_owned(),
            reference,
            problem: format!("environment variable {name} is not set"),
            fix: format!("export {name}=… before running, or point {path} at another variable"),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(SecretError {
            path: path.to_owned(),
            reference,
            problem: format!("environment variable {name} is not valid UTF-8"),
            fix: format!("set {name} to a UTF-8 value"),
        }),
    }
}

/// Picks field `key` out of a JSON-object secret. Error messages never quote the secret.
fn extract_key(
    path: &str,
    reference: &str,
    secret: &SecretString,
    key: &str,
) -> Result<SecretString, SecretError> {
    let error = |problem: String, fix: String| SecretError {
        path: path.to_owned(),
        reference: reference.to_owned(),
        problem,
        fix,
    };
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(secret.expose())
        .map_err(|_| {
            error(
                format!("`key` is \"{key}\" but the secret string is not a JSON object"),
                format!(
                    "store the secret as JSON ({{\"{key}\": \"…\"}}) or remove `key` from {path}"
                ),
            )
        })?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(SecretString(s.clone())),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(SecretString(v.to_string()))
        }
        Some(_) => Err(error(
            format!("field \"{key}\" of the secret is not a string"),
            format!("store field \"{key}\" as a string"),
        )),
        None => {
            let fields: Vec<&str> = object.keys().map(String::as_str).collect();
            Err(error(
                format!(
                    "the secret has no field \"{key}\" (its fields: {})",
                    fields.join(", ")
                ),
                format!("set `key` in {path} to one of the secret's fields"),
            ))
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretRef::SecretArn { arn, key } => f
                .debug_struct("SecretArn")
                .field("arn", arn)
                .field("key", key)
                .finish(),
            SecretRef::Literal(_) => f.debug_tuple("Literal").field(&REDACTED).finish(),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::SecretArn { arn, key: None } => write!(f, "secret_arn:{arn}"),
            SecretRef::SecretArn { arn, key: Some(k) } => write!(f, "secret_arn:{arn}#{k}"),
            SecretRef::Literal(_) => write!(f, "value:{REDACTED}"),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = match self {
            SecretRef::Env(name) => SecretRefRepr {
                env: Some(name.clone()),
                ..SecretRefRepr::default()
            },
            SecretRef::SecretArn { arn, key } => SecretRefRepr {
                secret_arn: Some(arn.clone()),
                key: key.clone(),
                ..SecretRefRepr::default()
            },
            SecretRef::Literal(_) => SecretRefRepr {
                value: Some(REDACTED.to_owned()),
                ..SecretRefRepr::default()
            },
        };
        repr.serialize(serializer)
    }
}

/// The JSON object behind a [`SecretRef`]; shape rules are checked when converting.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRefRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl SecretRefRepr {
    fn into_ref(self) -> Result<SecretRef, String> {
        match (self.env, self.secret_arn, self.value, self.key) {
            (Some(env), None, None, None) => Ok(SecretRef::Env(env)),
            (None, Some(arn), None, key) => Ok(SecretRef::SecretArn { arn, key }),
            (None, None, Some(value), None) => Ok(SecretRef::Literal(SecretString(value))),
            (env, arn, value, _) => {
                let given = [env.is_some(), arn.is_some(), value.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if given == 1 {
                    Err("`key` is only allowed together with `secret_arn`".to_owned())
                } else {
                    Err(format!(
                        "a secret reference needs exactly one of `env`, `secret_arn` or \
                         `value` (got {given}); e.g. {{\"env\": \"NAME\"}}"
                    ))
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a secret reference: {\"env\": \"NAME\"}, {\"secret_arn\": \"arn:…\"} or {\"value\": \"…\"}",
        )
    }

    // A plain string is most likely the credential itself: never echo it in the error.
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<Self::Value, E> {
        Err(E::custom(
            "a plain string is not accepted here (it would put the secret in the config): \
             use a reference such as {\"env\": \"NAME\"} or {\"secret_arn\": \"arn:…\"}",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let repr = SecretRefRepr::deserialize(de::value::MapAccessDeserializer::new(map))?;
        repr.into_ref().map_err(de::Error::custom)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A reference to a credential, never the credential itself (except `value`, for local setups). Resolved inside the function that needs it, so secrets never travel in payloads or logs.",
            "oneOf": [
                {
                    "type": "object",
                    "description": "Read the environment variable NAME of the process that resolves it.",
                    "properties": {
                        "env": {"type": "string", "description": "Name of the environment variable."}
                    },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "Fetch an AWS Secrets Manager secret (inside Lambda; the local mode cannot resolve these).",
                    "properties": {
                        "secret_arn": {"type": "string", "description": "ARN (or name) of the secret."},
                        "key": {"type": "string", "description": "If set, the secret string is a JSON object and the credential is this field (e.g. \"password\" for RDS-managed secrets)."}
                    },
                    "required": ["secret_arn"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "The credential itself. Only accepted when the destination is embedded: or the hosts are loopback (local setups); printed as <redacted>.",
                    "properties": {
                        "value": {"type": "string", "description": "The literal credential."}
                    },
                    "required": ["value"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Why a secret could not be resolved. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} ({reference}): {problem}; fix: {fix}")]
pub struct SecretError {
    /// The reference's place in the config, e.g. `source.password`.
    pub path: String,
    /// The reference, as `Display` prints it (literals redacted).
    pub reference: String,
    pub problem: String,
    pub fix: String,
}

/// Fetches secrets named by `secret_arn` references. The Lambda functions implement it with AWS
/// Secrets Manager (`GetSecretValue` → `SecretString`); [`NoSecretResolver`] is the local
/// stand-in. Errors are plain text and must not contain the secret.
pub trait SecretResolver: Send + Sync {
    /// Returns the secret string stored under `secret_id` (an ARN or a secret name).
    fn fetch<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<SecretString, String>>;
}

/// The resolver of a process without AWS Secrets Manager: every fetch fails and says so.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSecretResolver;

impl SecretResolver for NoSecretResolver {
    fn fetch<'a>(&'a self, _secret_id: &'a str) -> BoxFuture<'a, Result<SecretString, String>> {
        Box::pin(async {
            Err(
                "a secret_arn reference needs AWS Secrets Manager, and no secret resolver is \
                 available here (local mode has none); use {\"env\": \"NAME\"} locally"
                    .to_owned(),
            )
        })
    }
}

/// In-memory secrets keyed by id; answers the `local:<path>` references made by
/// [`MigrationConfig::detach_literal_secrets`](super::MigrationConfig::detach_literal_secrets)
/// and is handy in tests. Any other id falls through to `fallback` if set.
#[derive(Default)]
pub struct LocalSecrets {
    secrets: BTreeMap<String, SecretString>,
    fallback: Option<Box<dyn SecretResolver>>,
}

impl LocalSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids not held here are fetched from `fallback`.
    pub fn with_fallback(mut self, fallback: Box<dyn SecretResolver>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    pub fn insert(&mut self, id: impl Into<String>, secret: SecretString) {
        self.secrets.insert(id.into(), secret);
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

impl fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSecrets")
            .field("ids", &self.secrets.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl SecretResolver for LocalSecrets {
    fn fetch<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<SecretString, String>> {
        match (self.secrets.get(secret_id), &self.fallback) {
            (Some(secret), _) => {
                let secret = secret.clone();
                Box::pin(async move { Ok(secret) })
            }
            (None, Some(fallback)) => fallback.fetch(secret_id),
            (None, None) => {
                Box::pin(
                    async move { Err(format!("no secret with id {secret_id} in this process")) },
                )
            }
        }
    }
}

/// Every credential a migration needs, resolved. `Debug` shows none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSecrets {
    pub source_password: SecretString,
    pub access_key_id: SecretString,
    pub access_key_secret: SecretString,
    pub sts_token: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn parse(json: &str) -> Result<SecretRef, String> {
        serde_json::from_str::<SecretRef>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse(r#"{"env":"A"}"#).unwrap(), SecretRef::env("A"));
        assert_eq!(
            parse(r#"{"secret_arn":"arn:x","key":"password"}"#).unwrap(),
            SecretRef::secret_arn("arn:x", Some("password"))
        );
        assert_eq!(
            parse(r#"{"secret_arn":"arn:x"}"#).unwrap(),
            SecretRef::secret_arn("arn:x", None)
        );
        assert_eq!(parse(r#"{"value":"v"}"#).unwrap(), SecretRef::literal("v"));
    }

    #[test]
    fn rejects_bad_shapes_without_echoing_secrets() {
        let e = parse(r#""hunter2""#).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("{\"env\""), "{e}");
        assert!(parse(r#"{}"#).unwrap_err().contains("exactly one"));
        assert!(parse(r#"{"env":"A","value":"B"}"#)
            .unwrap_err()
            .contains("exactly one"));
        assert!(parse(r#"{"env":"A","key":"k"}"#)
            .unwrap_err()
            .contains("only allowed together with `secret_arn`"));
        let e = parse(r#"{"valeu":"hunter2"}"#).unwrap_err();
        assert!(e.contains("unknown field `valeu`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn literal_is_redacted_everywhere() {
        let r = SecretRef::literal("hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{r}").contains("hunter2"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"value":"<redacted>"}"#);
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn non_literal_refs_round_trip() {
        for r in [
            SecretRef::env("X"),
            SecretRef::secret_arn("arn:aws:secretsmanager:r:1:secret:s", Some("password")),
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<SecretRef>(&json).unwrap(), r);
        }
    }

    #[test]
    fn resolves_env_and_names_missing_variables() {
        let name = "TSMIGRATE_TEST_SECRET_RESOLVES_ENV_7F3A";
        std::env::set_var(name, "s3cret");
        let got = SecretRef::env(name).resolve_env("source.password").unwrap();
        assert_eq!(got.expose(), "s3cret");

        let missing = "TSMIGRATE_TEST_SECRET_SURELY_UNSET_91C2";
        let e = SecretRef::env(missing)
            .resolve_env("destination.access_key_id")
            .unwrap_err();
        assert_eq!(e.path, "destination.access_key_id");
        let text = e.to_string();
        assert!(text.contains(missing) && text.contains("destination.access_key_id"));
    }

    #[test]
    fn secret_arn_without_resolver_is_an_error_that_says_so() {
        let r = SecretRef::secret_arn("arn:aws:secretsmanager:r:1:secret:s", None);
        let e = r.resolve_env("source.password").unwrap_err();
        assert!(e.problem.contains("no secret resolver"), "{e}");
        let e = block_on(r.resolve("source.password", &NoSecretResolver)).unwrap_err();
        assert!(e.problem.contains("no secret resolver"), "{e}");
    }

    #[test]
    fn resolves_through_a_resolver_and_picks_json_keys() {
        let mut local = LocalSecrets::new();
        local.insert(
            "arn:a",
            SecretString::new(r#"{"username":"u","password":"p","port":3306}"#),
        );
        local.insert("arn:plain", SecretString::new("not json hunter2"));
        let whole = block_on(SecretRef::secret_arn("arn:plain", None).resolve("p", &local));
        assert_eq!(whole.unwrap().expose(), "not json hunter2");
        let pw = block_on(SecretRef::secret_arn("arn:a", Some("password")).resolve("p", &local));
        assert_eq!(pw.unwrap().expose(), "p");
        let port = block_on(SecretRef::secret_arn("arn:a", Some("port")).resolve("p", &local));
        assert_eq!(port.unwrap().expose(), "3306");
        let e = block_on(SecretRef::secret_arn("arn:a", Some("pass")).resolve("p", &local))
            .unwrap_err();
        assert!(e.problem.contains("no field \"pass\""), "{e}");
        assert!(!e.to_string().contains("\"p\","), "{e}");
        let e = block_on(SecretRef::secret_arn("arn:plain", Some("k")).resolve("p", &local))
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = block_on(SecretRef::secret_arn("arn:none", None).resolve("p", &local)).unwrap_err();
        assert!(e.problem.contains("arn:none"), "{e}");
        let chained = LocalSecrets::new().with_fallback(Box::new(local));
        let pw = block_on(SecretRef::secret_arn("arn:a", Some("password")).resolve("p", &chained));
        assert_eq!(pw.unwrap().expose(), "p");
    }
}
