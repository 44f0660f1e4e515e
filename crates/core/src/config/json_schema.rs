//! The config's JSON Schema (`tsmigrate schema`; the source of the README config reference).
//! Descriptions are the doc comments of the config types.

use super::MigrationConfig;

/// The JSON Schema (draft 2020-12) of [`MigrationConfig`], with a description on every field.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(MigrationConfig).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "title".to_owned(),
            serde_json::Value::String("tsmigrate migration config".to_owned()),
        );
    }
    unwrap_descriptions(&mut schema);
    schema
}

/// Doc comments are hard-wrapped; a description reads better (and fits a README table) with
/// lines joined into paragraphs.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|para| {
                                para.split('\n')
                                    .map(str::trim)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every property schema (at any depth, including `$defs`), with its JSON pointer.
    fn properties<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "properties" {
                        if let Value::Object(props) = child {
                            for (name, prop) in props {
                                out.push((format!("{at}/properties/{name}"), prop));
                            }
                        }
                    }
                    properties(child, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    properties(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    fn text_of(schema: &Value) -> String {
        schema.to_string()
    }

    #[test]
    fn every_field_has_a_description() {
        let schema = json_schema();
        let mut props = Vec::new();
        properties(&schema, String::new(), &mut props);
        assert!(props.len() > 50, "{}", props.len());
        let missing: Vec<&str> = props
            .iter()
            .filter(|(_, p)| {
                p.get("description")
                    .and_then(Value::as_str)
                    .is_none_or(|d| d.trim().is_empty())
            })
            .map(|(at, _)| at.as_str())
            .collect();
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn has_the_design_fields_and_defaults() {
        let schema = json_schema();
        let top = schema["properties"].as_object().unwrap();
        for field in [
            "migration_id",
            "source",
            "destination",
            "migration_types",
            "conflicting_tables",
            "operation_types",
            "dirty_data",
            "write_mode",
            "batch_write_mode",
            "writer",
            "name_case",
            "objects",
            "retry",
            "throttle",
            "heartbeat",
            "monitoring",
            "full",
            "incremental",
            "float_precision",
        ] {
            assert!(top.contains_key(field), "{field}");
        }
        assert_eq!(top.len(), 19);
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        assert_eq!(
            schema["required"],
            serde_json::json!(["migration_id", "source", "destination"])
        );
        assert_eq!(top["writer"]["default"]["bucket_count"], 8);
        assert_eq!(top["retry"]["default"]["connection_minutes"], 720);
        let defs = &schema["$defs"];
        assert_eq!(
            defs["WriterConfig"]["properties"]["bucket_count"]["minimum"],
            1
        );
        assert_eq!(
            defs["IncrementalConfig"]["properties"]["max_seconds"]["maximum"],
            840
        );
        assert_eq!(
            defs["FullConfig"]["properties"]["chunks_per_execution"]["maximum"],
            1000
        );
        assert!(top["migration_id"]["pattern"].is_string());
        assert!(
            !text_of(&schema).contains("\\n"),
            "descriptions are unwrapped"
        );
        let text = text_of(&schema);
        for word in [
            "precheck_and_report",
            "epoch_micros",
            "verify_identity",
            "\"rds\"",
        ] {
            assert!(text.contains(word), "{word}");
        }
    }
}
