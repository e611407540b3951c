//! JSON Schemas in the form OpenAI's strict mode accepts: the LLM steps' structured outputs
//! and the tools' arguments are generated from Rust types and rewritten here.

use schemars::JsonSchema;
use serde_json::Value;

/// Keywords strict mode rejects or ignores; dropped from generated schemas.
const UNSUPPORTED: &[&str] = &[
    "$schema", "format", "default", "minimum", "maximum", "minItems", "maxItems",
];

/// The strict schema of `T`: every object lists all its properties as required and forbids
/// others (`additionalProperties: false`); optional fields stay nullable.
pub fn strict_schema<T: JsonSchema>() -> Value {
    let mut schema = schemars::schema_for!(T).to_value();
    make_strict(&mut schema);
    schema
}

/// Rewrites a schema in place to strict form.
pub fn make_strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for key in UNSUPPORTED {
                map.remove(*key);
            }
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                // The keys of `properties` are field names, not keywords: only their schemas
                // are rewritten.
                properties.values_mut().for_each(make_strict);
                let required: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
                map.insert("required".into(), Value::Array(required));
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                if key != "properties" {
                    make_strict(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_strict),
        _ => {}
    }
}

/// The problems strict mode would reject in `schema` (empty when it is strict); used by the
/// tests' stand-in server, as the real service answers 400 to a broken schema.
pub fn strict_violations(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check(schema, "#", &mut problems);
    problems
}

fn check(schema: &Value, path: &str, problems: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                    problems.push(format!("{path}: additionalProperties must be false"));
                }
                let required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for key in properties.keys() {
                    if !required.contains(&key.as_str()) {
                        problems.push(format!("{path}: property `{key}` must be required"));
                    }
                }
            }
            for (key, value) in map {
                check(value, &format!("{path}/{key}"), problems);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &format!("{path}/{i}"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        /// A field named like a keyword.
        format: Option<String>,
        minimum: u32,
        nested: Nested,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        default: Vec<u8>,
    }

    #[test]
    fn fields_named_like_keywords_survive_and_everything_is_required() {
        let schema = strict_schema::<Args>();
        assert!(strict_violations(&schema).is_empty(), "{schema}");
        let properties = schema["properties"].as_object().unwrap();
        assert!(
            properties.contains_key("format") && properties.contains_key("minimum"),
            "{schema}"
        );
        assert_eq!(schema["required"], serde_json::json!(["format", "minimum", "nested"]));
        assert!(!schema.to_string().contains("\"$schema\""));
    }
}
