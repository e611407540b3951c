//! What settings there are, read off [`Settings`]' own definition (its JSON Schema): their
//! names, the kind of value each takes, and their documentation. The loader and the flags use
//! it, so a setting added to the struct is accepted from every source at once.

use std::sync::LazyLock;

use serde_json::Value;

use super::Settings;

/// The kind of value a setting takes, which decides how text from the environment or a flag
/// is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A whole number.
    Integer,
    /// A number, fractions allowed.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A comma-separated list.
    List,
}

/// One setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Its name in lower case, as in a file (`database_url`).
    pub key: String,
    /// Its environment variable (`DATABASE_URL`).
    pub env: String,
    /// Its flag, without the dashes (`database-url`).
    pub flag: String,
    /// The kind of value.
    pub kind: Kind,
    /// What it does.
    pub doc: String,
}

/// Every setting, in the order [`Settings`] declares them.
pub fn catalog() -> &'static [Setting] {
    static CATALOG: LazyLock<Vec<Setting>> = LazyLock::new(|| {
        let schema = schemars::schema_for!(Settings);
        let root = schema.as_value();
        let properties = root.get("properties").and_then(Value::as_object);
        properties
            .into_iter()
            .flatten()
            .map(|(key, property)| Setting {
                key: key.clone(),
                env: key.to_ascii_uppercase(),
                flag: key.replace('_', "-"),
                kind: kind_of(property, root),
                doc: property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect()
    });
    &CATALOG
}

/// The setting named `key` in any case.
pub(super) fn find(key: &str) -> Option<&'static Setting> {
    catalog().iter().find(|s| s.key.eq_ignore_ascii_case(key))
}

/// The kind of a property's schema: its first type other than null, through `$ref`s and
/// `anyOf`s.
fn kind_of(schema: &Value, root: &Value) -> Kind {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix("#/")
            .and_then(|path| path.split('/').try_fold(root, |node, part| node.get(part)));
        return target.map_or(Kind::Text, |target| kind_of(target, root));
    }
    for alternatives in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(alternatives).and_then(Value::as_array)
            && let Some(option) = options
                .iter()
                .find(|o| o.get("type").and_then(Value::as_str) != Some("null"))
        {
            return kind_of(option, root);
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match types.into_iter().find(|t| *t != "null") {
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("array") => Kind::List,
        _ => Kind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_a_documented_setting_of_the_right_kind() {
        let kind = |key: &str| find(key).map(|s| s.kind);
        assert_eq!(kind("DATABASE_URL"), Some(Kind::Text));
        assert_eq!(kind("max_retries"), Some(Kind::Integer));
        assert_eq!(kind("retry_backoff_seconds"), Some(Kind::Number));
        assert_eq!(kind("auto_migrate"), Some(Kind::Boolean));
        assert_eq!(kind("cors_origins"), Some(Kind::List));
        assert_eq!(kind("rate_limit_per_minute"), Some(Kind::Integer));
        assert_eq!(kind("queue_type"), Some(Kind::Text));
        assert_eq!(kind("log_format"), Some(Kind::Text));
        assert_eq!(kind("checkpoint_retention"), Some(Kind::Integer));
        assert_eq!(kind("auto_approve_refund_below"), Some(Kind::Number));
        assert_eq!(kind("approval_required"), Some(Kind::List));
        assert_eq!(kind("demo_data"), Some(Kind::Boolean));
        assert!(find("no_such_setting").is_none());
        for setting in catalog() {
            assert!(!setting.doc.is_empty(), "{} has no documentation", setting.env);
        }
        assert_eq!(catalog().len(), 69);
    }
}
