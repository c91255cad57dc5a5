//! Model configuration: the merged result of `dbt_project.yml` folder configs,
//! `models/*.yml` `config:` blocks and in-file `{{ config(...) }}` calls.

use serde_json::{Map, Value};

/// Config keys we understand or knowingly accept (dbt's own plus ours).
/// Anything else gets a warning, since a typo there silently changes nothing.
pub const KNOWN_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "enabled",
    "unique_key",
    "incremental_strategy",
    "incremental_predicates",
    "on_schema_change",
    "pre_hook",
    "post_hook",
    "full_refresh",
    "meta",
    "docs",
    "persist_docs",
    "grants",
    "contract",
    "group",
    "access",
    "severity",
    "where",
    "error_if",
    "warn_if",
    "limit",
    "store_failures",
    "sql_header",
    "description",
    "column_types",
    "quote_columns",
    "quoting",
    "packages",
    "labels",
    "partition_by",
    "cluster_by",
];

/// A model's (or test's) configuration as an ordered JSON map, with typed accessors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config(pub Map<String, Value>);

/// Normalises a config key: dbt accepts `+materialized`, `pre-hook` and `pre_hook`.
pub fn normalize_key(key: &str) -> String {
    key.trim_start_matches('+').replace('-', "_")
}

impl Config {
    /// Merges `other` on top of `self`: scalar keys are replaced, `tags` are
    /// unioned and hooks are appended (dbt runs project hooks and model hooks).
    pub fn merge(&mut self, other: &Config) {
        for (key, value) in &other.0 {
            let key = normalize_key(key);
            match key.as_str() {
                "tags" | "pre_hook" | "post_hook" => {
                    let mut items = as_list(self.0.get(&key));
                    for item in as_list(Some(value)) {
                        if !(key == "tags" && items.contains(&item)) {
                            items.push(item);
                        }
                    }
                    self.0.insert(key, Value::Array(items));
                }
                "meta" => {
                    let mut merged = self
                        .0
                        .get("meta")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(obj) = value.as_object() {
                        merged.extend(obj.clone());
                    }
                    self.0.insert(key, Value::Object(merged));
                }
                _ => {
                    self.0.insert(key, value.clone());
                }
            }
        }
    }

    /// Sets one key (normalised), as `config(key=value)` in SQL does.
    pub fn set(&mut self, key: &str, value: Value) {
        let mut single = Map::new();
        single.insert(key.to_string(), value);
        self.merge(&Config(single));
    }

    /// A string-valued key, if present and a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// A boolean key (YAML/JSON booleans, or the strings "true"/"false").
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.0.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A key that may be one string or a list of strings (`unique_key`, `tags`, hooks).
    pub fn str_list(&self, key: &str) -> Vec<String> {
        as_list(self.0.get(key))
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect()
    }

    /// The materialization, `view` unless configured.
    pub fn materialized(&self) -> &str {
        self.str("materialized").unwrap_or("view")
    }

    /// Keys that are neither dbt's nor ours, for a warning.
    pub fn unknown_keys(&self) -> Vec<String> {
        self.0
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// Views a config value as a list: `null` is empty, a scalar is one item.
fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(obj)) if obj.contains_key("sql") => {
            // dbt allows hooks as {sql: ..., transaction: ...}
            vec![obj.get("sql").cloned().unwrap_or(Value::Null)]
        }
        Some(other) => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Config {
        Config(v.as_object().unwrap().clone())
    }

    #[test]
    fn later_configs_override_scalars_and_extend_hooks_and_tags() {
        let mut base = cfg(json!({"+materialized": "view", "tags": ["a"], "pre-hook": "select 1"}));
        base = {
            let mut c = Config::default();
            c.merge(&base);
            c
        };
        base.merge(&cfg(
            json!({"materialized": "table", "tags": ["a", "b"], "pre_hook": ["select 2"]}),
        ));
        assert_eq!(base.materialized(), "table");
        assert_eq!(base.str_list("tags"), vec!["a", "b"]);
        assert_eq!(base.str_list("pre_hook"), vec!["select 1", "select 2"]);
    }

    #[test]
    fn unknown_keys_are_reported() {
        let c = cfg(json!({"materialized": "table", "materialised": "view"}));
        assert_eq!(c.unknown_keys(), vec!["materialised".to_string()]);
    }
}
