//! `tsmigrate schema` and `tsmigrate check`: the migration config's JSON Schema, and a config
//! file check that lists every problem at once.

use std::path::Path;

use tsmigrate_core::config::{self, ConfigError};

/// Prints the config's JSON Schema (pretty) on stdout. Exit code 0.
pub fn schema_cmd() -> i32 {
    match serde_json::to_string_pretty(&config::json_schema()) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: cannot print the schema: {e}");
            1
        }
    }
}

/// Loads and validates the config at `path`. Prints `ok: <path>` (exit 0), or the problems
/// (exit 1: malformed JSON, unknown fields, invalid values), or why the file could not be read
/// (exit 2).
pub fn check_cmd(path: &Path) -> i32 {
    let (code, text) = check_report(path);
    if code == 0 {
        println!("{text}");
    } else {
        eprintln!("{text}");
    }
    code
}

/// The exit code and the text `check_cmd` prints.
fn check_report(path: &Path) -> (i32, String) {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(e @ ConfigError::Io { .. }) => return (2, format!("error: {e}")),
        Err(e) => return (1, format!("invalid: {}\n  - {e}", path.display())),
    };
    match config.validate() {
        Ok(()) => (0, format!("ok: {}", path.display())),
        Err(problems) => (1, format!("invalid: {}\n{problems}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = r#"{"migration_id": "m",
        "source": {"host": "127.0.0.1", "user": "u", "password": {"env": "P"}, "database": "d"},
        "destination": {"endpoint": "embedded:./x", "instance": "local",
                        "access_key_id": {"value": "a"}, "access_key_secret": {"value": "s"}}}"#;

    #[test]
    fn reports_ok_invalid_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.json", GOOD);
        let (code, text) = check_report(&good);
        assert_eq!((code, text), (0, format!("ok: {}", good.display())));

        let bad = write(
            dir.path(),
            "bad.json",
            &GOOD.replace("\"migration_id\": \"m\",", "\"migration_id\": \"m\", \"writer\": {\"bucket_count\": 99}, \"retry\": {\"other_minutes\": 720},"),
        );
        let (code, text) = check_report(&bad);
        assert_eq!(code, 1);
        assert!(text.contains("2 problems"), "{text}");
        assert!(text.contains("writer.bucket_count") && text.contains("retry.other_minutes"));

        let typo = write(
            dir.path(),
            "typo.json",
            &GOOD.replace("\"instance\"", "\"instanse\""),
        );
        let (code, text) = check_report(&typo);
        assert_eq!(code, 1);
        assert!(text.contains("destination.instanse"), "{text}");

        let (code, text) = check_report(&dir.path().join("missing.json"));
        assert_eq!(code, 2);
        assert!(text.contains("missing.json"), "{text}");
    }
}
