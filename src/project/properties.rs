//! `models/**/*.yml` properties files: model configs, column tests (with
//! the line each is declared on) and dbt `sources:` blocks.

use super::unsupported::{self, Unsupported};
use super::{Config, DbtSourceTable, GenericTest, Project, read_yaml, relative};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;

impl Project {
    /// Reads one `models/**/*.yml` file: model configs, column tests, sources.
    pub(super) fn apply_properties(&mut self, path: &Path) -> Result<()> {
        let rel = relative(&self.root, path);
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", rel.display()))?;
        let doc: Value = read_yaml(&text, &rel)?;
        if doc.is_null() {
            return Ok(());
        }
        for key in unsupported::IGNORED_YAML_KEYS {
            if doc
                .get(*key)
                .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()))
                && let Some(u) = Unsupported::ignored_yaml(rel.clone(), key)
            {
                self.unsupported.push(u);
            }
        }
        if doc
            .get("snapshots")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            self.unsupported.push(Unsupported::snapshot(rel.clone()));
        }
        let first_test = self.generic_tests.len();
        self.apply_model_properties(&doc, &rel)?;
        for test in &mut self.generic_tests[first_test..] {
            test.line = declaration_line(&text, test).unwrap_or(1);
        }
        self.apply_source_properties(&doc, &rel)
    }

    /// The `models:` and `seeds:` entries of a properties file.
    fn apply_model_properties(&mut self, doc: &Value, rel: &Path) -> Result<()> {
        let root = self.root.clone();
        let entries = ["models", "seeds"]
            .iter()
            .filter_map(|k| doc.get(*k).and_then(Value::as_array))
            .flatten();
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .with_context(|| format!("{}: a model entry has no `name`", rel.display()))?;
            let Some(model) = self.models.iter_mut().find(|m| m.name == name) else {
                self.warnings.push(format!(
                    "{}: properties for `{name}`, but no model has that name",
                    rel.display()
                ));
                continue;
            };
            if let Some(cfg) = entry.get("config").and_then(Value::as_object) {
                model.config.merge(&Config(cfg.clone()));
                // A seed's `column_types` / `delimiter` here change how its CSV is read.
                if super::seeds::is_seed(model)
                    && super::seeds::SEED_KEYS.iter().any(|k| cfg.contains_key(*k))
                {
                    model.sql =
                        super::seeds::seed_sql(&root.join(&model.path), name, &model.config);
                }
            }
            model.description = entry
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            let model_tests = test_entries(entry);
            for test in model_tests {
                let t = parse_test(test, name, None, rel)?;
                self.generic_tests.push(t);
            }
            for column in entry
                .get("columns")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let column_name =
                    column
                        .get("name")
                        .and_then(Value::as_str)
                        .with_context(|| {
                            format!("{}: a column of `{name}` has no `name`", rel.display())
                        })?;
                for test in test_entries(column) {
                    let t = parse_test(test, name, Some(column_name), rel)?;
                    self.generic_tests.push(t);
                }
            }
        }
        Ok(())
    }

    /// The dbt `sources:` entries of a properties file.
    fn apply_source_properties(&mut self, doc: &Value, rel: &Path) -> Result<()> {
        for source in doc
            .get("sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let source_name = source
                .get("name")
                .and_then(Value::as_str)
                .with_context(|| format!("{}: a source has no `name`", rel.display()))?;
            let schema = source
                .get("schema")
                .and_then(Value::as_str)
                .unwrap_or(source_name);
            let source_location = source
                .pointer("/meta/external_location")
                .or_else(|| source.pointer("/config/meta/external_location"))
                .and_then(Value::as_str);
            for table in source
                .get("tables")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let table_name = table.get("name").and_then(Value::as_str).with_context(|| {
                    format!(
                        "{}: a table of source `{source_name}` has no `name`",
                        rel.display()
                    )
                })?;
                let location = table
                    .pointer("/meta/external_location")
                    .or_else(|| table.pointer("/config/meta/external_location"))
                    .and_then(Value::as_str)
                    .or(source_location);
                self.dbt_sources.push(DbtSourceTable {
                    source: source_name.to_string(),
                    table: table_name.to_string(),
                    schema: schema.to_string(),
                    identifier: table
                        .get("identifier")
                        .and_then(Value::as_str)
                        .unwrap_or(table_name)
                        .to_string(),
                    external_location: location.map(str::to_string),
                });
            }
        }
        Ok(())
    }
}

/// The line of a properties file that declares `test`: the test's name
/// after its column's `name:` after its model's `name:`.
fn declaration_line(text: &str, test: &GenericTest) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let name_line = |from: usize, value: &str| -> Option<usize> {
        let re = regex::Regex::new(&format!(
            r#"^\s*(?:-\s*)?name:\s*['"]?{}['"]?\s*(?:#.*)?$"#,
            regex::escape(value)
        ))
        .ok()?;
        (from..lines.len()).find(|&i| re.is_match(lines[i]))
    };
    let model_at = name_line(0, &test.model)?;
    let column_at = match &test.column {
        Some(c) => name_line(model_at + 1, c).unwrap_or(model_at),
        None => model_at,
    };
    let short = test.test.rsplit('.').next().unwrap_or(&test.test);
    let word = regex::Regex::new(&format!(r"\b{}\b", regex::escape(short))).ok()?;
    let next_name = regex::Regex::new(r"^\s*-\s*name:").ok()?;
    let mut at = column_at;
    for (i, line) in lines.iter().enumerate().skip(column_at + 1) {
        if next_name.is_match(line) {
            break;
        }
        if word.is_match(line) {
            at = i;
            break;
        }
    }
    Some(at + 1)
}

/// `tests:` and `data_tests:` entries of a model or column.
fn test_entries(node: &Value) -> Vec<&Value> {
    ["tests", "data_tests"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// One entry of a `tests:` list: `unique` or `{accepted_values: {values: […]}}`.
fn parse_test(
    entry: &Value,
    model: &str,
    column: Option<&str>,
    file: &Path,
) -> Result<GenericTest> {
    let (test, raw_args) = match entry {
        Value::String(name) => (name.clone(), serde_json::Map::new()),
        Value::Object(map) if map.len() == 1 => {
            let (name, args) = map.iter().next().context("invariant: one key")?;
            let args = match args {
                Value::Object(a) => a.clone(),
                Value::Null => serde_json::Map::new(),
                other => bail!(
                    "{}: test `{name}` on `{model}` has arguments `{other}`, expected a mapping",
                    file.display()
                ),
            };
            (name.clone(), args)
        }
        Value::Object(map) if map.contains_key("test_name") || map.contains_key("name") => {
            let name = map
                .get("test_name")
                .or_else(|| map.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, map.clone())
        }
        other => bail!(
            "{}: cannot read test entry `{other}` on `{model}`",
            file.display()
        ),
    };
    let mut args = serde_json::Map::new();
    let mut config = Config::default();
    for (key, value) in raw_args {
        match key.as_str() {
            "config" => {
                if let Some(obj) = value.as_object() {
                    config.merge(&Config(obj.clone()));
                }
            }
            "arguments" => {
                if let Some(obj) = value.as_object() {
                    args.extend(obj.clone());
                }
            }
            "severity" | "where" | "error_if" | "warn_if" | "limit" | "tags" | "enabled"
            | "store_failures" => config.set(&key, value),
            "name" | "test_name" | "column_name" => {}
            _ => {
                args.insert(key, value);
            }
        }
    }
    let column = column.map(str::to_string).or_else(|| {
        args.get("column_name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let short = test.rsplit('.').next().unwrap_or(&test);
    let mut name = format!("{short}_{model}");
    if let Some(col) = &column {
        name.push('_');
        name.push_str(&sanitize(col));
    }
    if short == "relationships"
        && let Some(to) = args.get("to").and_then(Value::as_str)
    {
        name.push_str("__");
        name.push_str(&sanitize(to));
    }
    Ok(GenericTest {
        name,
        test,
        model: model.to_string(),
        column,
        args,
        config,
        file: file.to_path_buf(),
        line: 1,
    })
}

/// Keeps letters, digits and underscores, so names work as identifiers.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepted_values_take_values_at_top_level_or_under_arguments() {
        let a = parse_test(
            &json!({"accepted_values": {"values": ["a"], "config": {"severity": "warn"}}}),
            "m",
            Some("c"),
            Path::new("x.yml"),
        )
        .unwrap();
        let b = parse_test(
            &json!({"accepted_values": {"arguments": {"values": ["a"]}}}),
            "m",
            Some("c"),
            Path::new("x.yml"),
        )
        .unwrap();
        assert_eq!(a.args.get("values"), b.args.get("values"));
        assert_eq!(a.config.str("severity"), Some("warn"));
        assert_eq!(a.name, "accepted_values_m_c");
    }
}
