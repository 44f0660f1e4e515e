//! docs/configuration.md lists every field of the config's JSON Schema (kept in sync).

use serde_json::Value;

fn fields(defs: &Value, node: &Value, prefix: &str, out: &mut Vec<String>) {
    let mut node = node;
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        node = &defs[name];
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let path = format!("{prefix}{k}");
            out.push(path.clone());
            if prefix.matches('.').count() < 2 {
                fields(defs, v, &format!("{path}."), out);
            }
        }
    }
}

#[test]
fn every_config_field_is_documented() {
    let schema = tsmigrate_core::config::json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut all = Vec::new();
    fields(&defs, &schema, "", &mut all);
    assert!(all.len() > 30, "{all:?}");
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let missing: Vec<&String> = all
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "fields missing from docs/configuration.md: {missing:?}"
    );
}
