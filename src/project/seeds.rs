//! dbt seeds: CSV files under `seed-paths` loaded as tables, so `ref('seed')`
//! works as in dbt. A seed becomes a model whose SQL reads the CSV once with
//! DuckDB (typed by `column_types` where given, sniffed otherwise; split on
//! `delimiter`, a comma by default). Both are read from `dbt_project.yml`
//! (`+column_types`) and from a properties file's `seeds:` `config:`; seed
//! configs that are not honoured are named by `unsupported.rs`.

use super::{Model, relative};
use crate::sql::{literal, quote};
use serde_json::Value;
use std::path::Path;

/// The seed configs read here, beyond those every model has.
pub const SEED_KEYS: &[&str] = &["column_types", "delimiter"];

/// Whether a model is a seed (its file is a CSV).
pub fn is_seed(model: &Model) -> bool {
    model.path.extension().is_some_and(|e| e == "csv")
}

/// The SQL of the seed `name` at `path`: `read_csv` with its
/// `column_types` and `delimiter` configs.
pub fn seed_sql(path: &Path, name: &str, config: &super::Config) -> String {
    let mut options = vec!["header = true".to_string()];
    if let Some(Value::String(delim)) = config.0.get("delimiter") {
        options.push(format!("delim = {}", literal(delim)));
    }
    if let Some(Value::Object(types)) = config.0.get("column_types") {
        let list: Vec<String> = types
            .iter()
            .map(|(col, ty)| {
                format!(
                    "{}: {}",
                    literal(col),
                    literal(ty.as_str().unwrap_or("VARCHAR"))
                )
            })
            .collect();
        options.push(format!("types = {{{}}}", list.join(", ")));
    }
    format!(
        "-- seed {}\nSELECT * FROM read_csv({}, {})\n",
        quote(name),
        literal(&path.to_string_lossy()),
        options.join(", ")
    )
}

/// Builds a model for each `*.csv` under the seed folders.
///
/// `seed_configs` is the `seeds: <project>:` tree of `dbt_project.yml`
/// (folder-level `+schema`, `+column_types`, `+enabled`, …).
pub fn seed_models(
    root: &Path,
    seed_paths: &[String],
    seed_configs: &Value,
) -> anyhow::Result<Vec<Model>> {
    let mut models = Vec::new();
    for seed_path in seed_paths {
        let dir = root.join(seed_path);
        for path in super::files_under(&dir)? {
            if path.extension().and_then(|e| e.to_str()) != Some("csv") {
                continue;
            }
            let name = super::file_stem(&path);
            let folders = super::folders_between(&dir, &path);
            let mut config = super::folder_config(seed_configs, &folders, &name);
            config.set("materialized", Value::String("table".into()));
            let sql = seed_sql(&path, &name, &config);
            models.push(Model {
                name,
                path: relative(root, &path),
                sql,
                config,
                description: None,
            });
        }
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::super::{Project, Severity};

    #[test]
    fn delimiter_and_yaml_column_types_are_read_and_quote_columns_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("seeds")).unwrap();
        std::fs::write(
            root.join("dbt_project.yml"),
            "name: p\nseeds:\n  p:\n    +delimiter: ';'\n    +quote_columns: true\n    \
             +column_types: {code: varchar}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("seeds/units.csv"),
            "code;id;mw\n007;1;2.5\n010;2;3\n",
        )
        .unwrap();
        std::fs::write(
            root.join("seeds/units.yml"),
            "version: 2\nseeds:\n  - name: units\n    config:\n      column_types: {code: varchar, id: varchar}\n",
        )
        .unwrap();
        let project = Project::read(root).unwrap();
        let seed = project.model("units").unwrap();
        // Read as DuckDB reads it: split on `;`, typed by the YAML's types.
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let (code, id): (String, String) = conn
            .query_row(
                &format!(
                    "SELECT code, typeof(id) FROM ({}) ORDER BY id LIMIT 1",
                    seed.sql
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (code.as_str(), id.as_str()),
            ("007", "VARCHAR"),
            "{}",
            seed.sql
        );
        // quote_columns is named on the seed with what to do, not as an
        // unknown key; the seed keys read here are not unknown either.
        let found: Vec<String> = project.unsupported.iter().map(|u| u.to_string()).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("seeds/units.csv: seed config `quote_columns` — ignored"),
            "{found:?}"
        );
        assert_eq!(project.unsupported[0].severity, Severity::Warning);
        assert!(
            !project
                .warnings
                .iter()
                .any(|w| w.contains("unknown config key")),
            "{:?}",
            project.warnings
        );
    }
}
