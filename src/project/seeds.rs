//! dbt seeds: CSV files under `seed-paths` loaded as tables, so `ref('seed')`
//! works as in dbt. A seed becomes a model whose SQL reads the CSV once with
//! DuckDB (typed by `column_types` where given, sniffed otherwise).

use super::{Model, relative};
use crate::sql::{literal, quote};
use serde_json::Value;
use std::path::Path;

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
            let column_types = config.0.remove("column_types");
            config.set("materialized", Value::String("table".into()));
            let mut options = vec!["header = true".to_string()];
            if let Some(Value::Object(types)) = &column_types {
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
            let sql = format!(
                "-- seed {}\nSELECT * FROM read_csv({}, {})\n",
                quote(&name),
                literal(&path.to_string_lossy()),
                options.join(", ")
            );
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
