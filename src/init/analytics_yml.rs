//! `analytics.yml` as `init` writes it: targets from the dbt profile, a
//! commented `sources:` skeleton, `exports:` and `dashboard:` for the fact
//! models (described by one in-memory ci build).

use super::InitOptions;
use crate::mode::Mode;
use crate::pipeline::{self, RunOptions};
use crate::project::Project;
use crate::project::profiles::Profile;
use crate::project::targets::{IcebergYaml, TargetYaml};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// A fact model found in the project, with its columns when the in-memory
/// build described it.
#[derive(Debug, Clone)]
pub(super) struct Fact {
    model: String,
    dataset: String,
    columns: Option<Vec<(String, String)>>,
}

/// Builds the project once in memory (a `ci` run on the built-in `memory`
/// target) and describes the fact models; without a build (it failed), the
/// facts are found by name and written as skeletons.
pub(super) fn describe_facts(
    opts: &InitOptions,
    project: &Project,
    notes: &mut Vec<String>,
) -> Vec<Fact> {
    let run = RunOptions {
        project_dir: opts.project_dir.clone(),
        mode: Mode::Ci,
        target: Some("memory".into()),
        select: Vec::new(),
        vars: Default::default(),
        profiles_dir: opts.profiles_dir.clone(),
        full_refresh: false,
        limits: Default::default(),
        site: Default::default(),
        env: opts.env.clone(),
    };
    let mut facts = Vec::new();
    let outcome = pipeline::run_then(&run, |plan, engine| {
        let models: Vec<(&str, &Path, &str)> = plan
            .models
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_path(), m.config.materialized()))
            .collect();
        for name in fact_models(&models) {
            let Some(model) = plan.models.iter().find(|m| m.name == name) else {
                continue;
            };
            let columns = engine
                .columns_of(&model.relation.to_string())
                .ok()
                .filter(|c| !c.is_empty());
            facts.push((name, columns));
        }
        Ok(())
    });
    match outcome {
        Ok(report) if report.failed() => notes.push(
            "the project's ci run in memory did not pass (see the log above): fix it before \
             relying on the scaffold"
                .into(),
        ),
        Ok(_) => {}
        Err(e) => {
            notes.push(format!(
                "the project could not be built in memory ({e:#}); exports are skeletons \
                 until it builds"
            ));
            let models: Vec<(&str, &Path, &str)> = project
                .models
                .iter()
                .map(|m| (m.name.as_str(), m.path.as_path(), m.config.materialized()))
                .collect();
            facts = fact_models(&models)
                .into_iter()
                .map(|name| (name, None))
                .collect();
        }
    }
    let mut used = BTreeSet::new();
    facts
        .into_iter()
        .map(|(model, columns)| {
            let short = ["fct_", "fact_", "facts_"]
                .iter()
                .find_map(|p| model.strip_prefix(p))
                .filter(|s| !s.is_empty())
                .unwrap_or(&model)
                .to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
            let dataset = if used.insert(short.clone()) {
                short
            } else {
                used.insert(model.clone());
                model.clone()
            };
            Fact {
                model,
                dataset,
                columns,
            }
        })
        .collect()
}

/// The fact models of `(name, path, materialized)`: those named `fct_*`,
/// `fact_*` or `facts_*`; without any, the tables and incremental models in
/// a `marts` folder that are not dimensions (`dim_*`). Seeds are not models
/// here.
fn fact_models(models: &[(&str, &Path, &str)]) -> Vec<String> {
    let is_seed = |p: &Path| p.extension().is_some_and(|e| e == "csv");
    let named: Vec<String> = models
        .iter()
        .filter(|(n, p, m)| {
            let n = n.to_ascii_lowercase();
            !is_seed(p)
                && *m != "ephemeral"
                && ["fct_", "fact_", "facts_"].iter().any(|x| n.starts_with(x))
        })
        .map(|(n, _, _)| n.to_string())
        .collect();
    if !named.is_empty() {
        return named;
    }
    models
        .iter()
        .filter(|(n, p, m)| {
            !is_seed(p)
                && matches!(*m, "table" | "incremental")
                && !n.to_ascii_lowercase().starts_with("dim_")
                && p.components().any(|c| c.as_os_str() == "marts")
        })
        .map(|(n, _, _)| n.to_string())
        .collect()
}

/// Numeric DuckDB types: measures.
fn is_numeric(ty: &str) -> bool {
    let ty = ty.to_ascii_uppercase();
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "REAL",
        "DOUBLE",
        "DECIMAL",
        "NUMERIC",
    ]
    .iter()
    .any(|t| ty.starts_with(t))
}

/// Keys and codes: never summed, never a filter of their own.
fn is_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id"
        || ["_id", "_key", "_sk", "_code"]
            .iter()
            .any(|s| n.ends_with(s))
}

/// How a fact is exported and shown: its date column, group keys, measures.
struct Shape<'a> {
    date: &'a str,
    dimensions: Vec<&'a str>,
    measures: Vec<&'a str>,
}

fn shape(columns: &[(String, String)]) -> Option<Shape<'_>> {
    let date = columns
        .iter()
        .find(|(_, t)| t.eq_ignore_ascii_case("DATE"))
        .or_else(|| {
            columns
                .iter()
                .find(|(_, t)| t.to_ascii_uppercase().starts_with("TIMESTAMP"))
        })?;
    let other = || {
        columns
            .iter()
            .filter(|(n, _)| n != &date.0 && n != "date" && !is_key(n))
    };
    Some(Shape {
        date: &date.0,
        dimensions: other()
            .filter(|(_, t)| t.eq_ignore_ascii_case("VARCHAR"))
            .map(|(n, _)| n.as_str())
            .take(3)
            .collect(),
        measures: other()
            .filter(|(_, t)| is_numeric(t))
            .map(|(n, _)| n.as_str())
            .take(4)
            .collect(),
    })
}

/// An identifier for SQL: bare when it is a plain lower-case name.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::sql::quote(name)
    }
}

/// A YAML scalar: bare when it is a plain name, else double-quoted (JSON
/// string syntax is YAML's).
pub(super) fn yaml(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null"
        );
    if plain {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    }
}

/// `Amount cents` from `amount_cents`.
fn label(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn write_header(out: &mut String, project: &Project) {
    let _ = writeln!(
        out,
        "# analytics.yml for the dbt project `{}`, written by `analytics init`.\n\
         # dbt_project.yml, the models, macros, seeds and tests are used as they are;\n\
         # this file holds what dbt has no place for: where models are built\n\
         # (targets), files to download (sources), the dashboard's files (exports)\n\
         # and the dashboard. README: \"Project format\", \"Dashboard\".\n",
        project.name
    );
}

/// Writes `targets:`; returns the `warehouse` target written (placeholders).
pub(super) fn write_targets(
    out: &mut String,
    values: Option<&Profile>,
    placeholders: Option<&Profile>,
    notes: &mut Vec<String>,
) -> IcebergYaml {
    out.push_str("targets:\n");
    let mut ci_schema = "main".to_string();
    let mut ci_settings = String::new();
    if let Some(profile) = values {
        let mut names: Vec<&String> = profile.outputs.keys().collect();
        // The profile's default output first.
        names.sort_by_key(|n| Some(n.as_str()) != profile.default_target.as_deref());
        for name in names {
            let Ok((
                TargetYaml::Duckdb {
                    path,
                    schema,
                    settings,
                    ..
                },
                _,
            )) = profile.target(name)
            else {
                continue;
            };
            let default = Some(name.as_str()) == profile.default_target.as_deref();
            if name == "ci" || name == "warehouse" || name == "memory" {
                notes.push(format!(
                    "the profile's output `{name}` is not written to analytics.yml (the name is \
                     one of this file's own targets)"
                ));
                continue;
            }
            let _ = writeln!(
                out,
                "  # From {} (output `{name}`{}): a DuckDB file, as dbt-duckdb builds it.\n  \
                 # `--target {name}` builds into it; env_var() was read from this shell.",
                profile.origin(),
                if default { ", its `target:`" } else { "" }
            );
            let _ = writeln!(
                out,
                "  {}:\n    type: duckdb\n    path: {}\n    schema: {}",
                yaml(name),
                yaml(path),
                yaml(schema)
            );
            let settings_text = settings_yaml(settings, name, notes);
            out.push_str(&settings_text);
            if default {
                ci_schema = schema.clone();
                ci_settings = settings_text;
            }
        }
    }
    let _ = writeln!(
        out,
        "  # `ci` mode (pull requests, `analytics run --mode ci`): everything in memory,\n  \
         # in the same schema.\n  ci:\n    type: duckdb\n    path: ':memory:'\n    schema: {}",
        yaml(&ci_schema)
    );
    out.push_str(&ci_settings);

    // The warehouse: the profile's attached Iceberg catalog, else the
    // standard variables the action's inputs set.
    let attached = placeholders
        .and_then(|p| p.catalog().map(|(output, c)| (p, output, c)))
        .and_then(|(p, output, c)| match &c.target {
            Ok(TargetYaml::Iceberg {
                catalog, schema, ..
            }) => Some((p, output, c.alias.clone(), (**catalog).clone(), schema)),
            Ok(_) => None,
            Err(why) => {
                notes.push(format!(
                    "the profile's attached Iceberg catalog `{}` is not used: {why}",
                    c.alias
                ));
                None
            }
        });
    let standard = |name: &str| Some(format!("${{{name}:-}}"));
    let (mut catalog, schema) = match attached {
        Some((p, output, alias, catalog, schema)) => {
            let _ = writeln!(
                out,
                "  # intraday, backfill, import and maintain: models stored as Iceberg tables in\n  \
                 # the catalog `{alias}` attached by output `{output}` of {}.\n  \
                 # Values are `${{VAR}}` references, set from the workflow (secrets).",
                p.origin()
            );
            (catalog, schema.clone())
        }
        None => {
            let _ = writeln!(
                out,
                "  # intraday, backfill, import and maintain: models stored as Iceberg tables\n  \
                 # through a REST catalog. Values come from the environment (the action's\n  \
                 # catalog-* and s3-* inputs set these variables): no secret in this file."
            );
            let catalog = IcebergYaml {
                uri: "${ICEBERG_REST_ENDPOINT}".into(),
                warehouse: standard("ICEBERG_WAREHOUSE"),
                credential: standard("ICEBERG_CREDENTIAL"),
                token: standard("ICEBERG_TOKEN"),
                s3: crate::project::targets::S3Yaml {
                    endpoint: standard("AWS_ENDPOINT_URL_S3"),
                    region: standard("AWS_REGION"),
                    access_key_id: standard("AWS_ACCESS_KEY_ID"),
                    secret_access_key: standard("AWS_SECRET_ACCESS_KEY"),
                    path_style: None,
                },
                properties: Default::default(),
                timeout_secs: None,
            };
            (catalog, ci_schema.clone())
        }
    };
    // A secret the profile holds as a literal is not copied: its standard
    // variable stands in for it.
    for (field, value, var) in [
        ("token", &mut catalog.token, "ICEBERG_TOKEN"),
        (
            "client_id:client_secret",
            &mut catalog.credential,
            "ICEBERG_CREDENTIAL",
        ),
        (
            "s3 key_id",
            &mut catalog.s3.access_key_id,
            "AWS_ACCESS_KEY_ID",
        ),
        (
            "s3 secret",
            &mut catalog.s3.secret_access_key,
            "AWS_SECRET_ACCESS_KEY",
        ),
    ] {
        if value.as_deref().is_some_and(|v| !v.contains("${")) {
            notes.push(format!(
                "profiles.yml holds the catalog's {field} as a literal value: it is not copied; \
                 store it as the repository secret {var} (analytics.yml reads ${{{var}}})"
            ));
            *value = Some(format!("${{{var}}}"));
        }
    }
    let _ = writeln!(
        out,
        "  warehouse:\n    type: iceberg\n    uri: {}\n    schema: {}",
        yaml(&catalog.uri),
        yaml(&schema)
    );
    for (key, value) in [
        ("warehouse", &catalog.warehouse),
        ("credential", &catalog.credential),
        ("token", &catalog.token),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "    {key}: {}", yaml(v));
        }
    }
    let s3 = &catalog.s3;
    let s3_lines: Vec<String> = [
        ("endpoint", &s3.endpoint),
        ("region", &s3.region),
        ("access_key_id", &s3.access_key_id),
        ("secret_access_key", &s3.secret_access_key),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("      {k}: {}", yaml(v))))
    .chain(s3.path_style.map(|p| format!("      path_style: {p}")))
    .collect();
    if !s3_lines.is_empty() {
        let _ = writeln!(out, "    s3:\n{}", s3_lines.join("\n"));
    }
    out.push('\n');
    catalog
}

/// A DuckDB output's `settings:`, leaving out what looks like a secret (a
/// DuckDB target's settings are not `${VAR}`-expanded, so they would be
/// copied as they are).
fn settings_yaml(
    settings: &std::collections::BTreeMap<String, Value>,
    output: &str,
    notes: &mut Vec<String>,
) -> String {
    let mut text = String::new();
    for (key, value) in settings {
        let k = key.to_ascii_lowercase();
        if [
            "secret",
            "token",
            "password",
            "key_id",
            "access_key",
            "session",
        ]
        .iter()
        .any(|s| k.contains(s))
        {
            notes.push(format!(
                "the setting `{key}` of output `{output}` is not copied (it may be a secret); \
                 give storage credentials to the warehouse target"
            ));
            continue;
        }
        let v = match value {
            Value::String(s) => yaml(s),
            other => other.to_string(),
        };
        let _ = writeln!(text, "      {}: {v}", yaml(key));
    }
    if text.is_empty() {
        text
    } else {
        format!("    settings:\n{text}")
    }
}

pub(super) fn write_sources(out: &mut String) {
    out.push_str(
        "# Files to download before the models run (what a dbt-duckdb project does in\n\
         # Python or a separate script). Each source's files are taken once, kept\n\
         # gzip-compressed in the archive, and read in SQL with read_source('name').\n\
         # Uncomment and adapt:\n\
         # sources:\n\
         #   - name: daily                 # read_source('daily') in a model\n\
         #     kind: listing               # an HTML directory listing: every link matching `pattern`\n\
         #     url: https://example.com/reports/daily/\n\
         #     pattern: 'report_\\d{8}\\.zip'\n\
         #     format: csv                 # csv | mms (AEMO multi-table CSV) | raw\n\
         #     sample: sample/daily        # files used instead of the network in ci mode\n\
         #     limits: { ci: 2, intraday: 10, backfill: 100 }   # new files per run\n\
         #     modes: [ci, intraday, backfill]\n\
         #   - name: history\n\
         #     kind: github                # the files of a folder of a GitHub repository\n\
         #     repo: owner/archive\n\
         #     path: data/{year}\n\
         #     years: '2020..'\n\
         #     pattern: 'report_\\d{8}\\.zip'\n\
         #     format: csv\n\
         #     modes: [backfill]\n\
         #   - name: reference\n\
         #     kind: url                   # one file at a URL\n\
         #     url: https://example.com/reference.csv\n\
         #     format: csv\n\
         #     sample: sample/reference.csv\n\
         #     modes: [ci, backfill]\n\n",
    );
}

pub(super) fn write_exports(out: &mut String, facts: &[Fact]) {
    out.push_str(
        "# Dashboard files: compact DuckDB files the published page queries in the\n\
         # browser (data/<name>.duckdb). One per fact model found; `grain: day` sums\n\
         # the measures per date and group keys. README \"Project format\".\n",
    );
    if facts.is_empty() {
        out.push_str(
            "# No fact model (fct_*, fact_*, or a table in a marts folder) was found:\n\
             # exports:\n\
             #   - name: daily\n\
             #     sql: select order_date as date, region, amount from {{ ref('fct_orders') }}\n\
             #     grain: day\n\
             #     aggregate: { amount: sum }\n\n",
        );
        return;
    }
    out.push_str("exports:\n");
    for fact in facts {
        let shaped = fact.columns.as_deref().and_then(shape);
        match (&fact.columns, shaped) {
            (_, Some(s)) => {
                let mut select = vec![format!("cast({} as date) as date", ident(s.date))];
                select.extend(s.dimensions.iter().map(|d| ident(d)));
                select.extend(s.measures.iter().map(|m| ident(m)));
                let _ = writeln!(
                    out,
                    "  # {}: by date ({}){}.",
                    fact.model,
                    s.date,
                    if s.dimensions.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", s.dimensions.join(", "))
                    }
                );
                let _ = writeln!(
                    out,
                    "  - name: {}\n    sql: |\n      select\n          {}\n      from {{{{ ref('{}') }}}}\n    grain: day",
                    fact.dataset,
                    select.join(",\n          "),
                    fact.model
                );
                if !s.measures.is_empty() {
                    let aggregate: Vec<String> = s
                        .measures
                        .iter()
                        .map(|m| format!("{}: sum", yaml(m)))
                        .collect();
                    let _ = writeln!(out, "    aggregate: {{ {} }}", aggregate.join(", "));
                }
            }
            (columns, None) => {
                let why = if columns.is_some() {
                    "it has no DATE or TIMESTAMP column"
                } else {
                    "its columns are not known (the project did not build)"
                };
                let _ = writeln!(
                    out,
                    "  # {}: every row as it is ({why}); set `grain:`, `aggregate:`\n  \
                     # and a `date` column to make it smaller.\n  \
                     - name: {}\n    sql: select * from {{{{ ref('{}') }}}}\n    grain: native",
                    fact.model, fact.dataset, fact.model
                );
            }
        }
    }
    out.push('\n');
}

pub(super) fn write_dashboard(out: &mut String, project: &Project, facts: &[Fact]) {
    let _ = writeln!(
        out,
        "# The published page (README \"Dashboard\"): every query it runs comes from\n\
         # here. Without grains it still shows the data files, lineage and an Analyze\n\
         # tab with SQL over every dataset.\n\
         dashboard:\n  title: {}\n  assets: cdn",
        yaml(&project.name)
    );
    let main = facts.iter().find_map(|f| {
        let s = f.columns.as_deref().and_then(shape)?;
        (!s.measures.is_empty()).then_some((f, s))
    });
    let Some((fact, s)) = main else {
        if let Some(first) = facts.first() {
            let _ = writeln!(
                out,
                "  analyze_sql: {}",
                yaml(&format!("SELECT * FROM {} LIMIT 100", first.dataset))
            );
        }
        out.push_str(
            "  # grains:\n  #   - { grain: day, dataset: daily, time: \"CAST(date AS TIMESTAMP)\" }\n  \
             # measures:\n  #   - { name: amount, label: Amount, sql: \"sum(amount)\" }\n  \
             # charts:\n  #   - { title: Amount, type: line, measure: amount }\n",
        );
        return;
    };
    let _ = writeln!(
        out,
        "  description: {}\n  date_column: date\n  default_days: 30\n  grains:\n    \
         - {{ grain: day, dataset: {}, time: \"CAST(date AS TIMESTAMP)\" }}",
        yaml(&format!("From the fact model {}", fact.model)),
        fact.dataset
    );
    if !s.dimensions.is_empty() {
        out.push_str("  dimensions:\n");
        for d in &s.dimensions {
            let _ = writeln!(
                out,
                "    - {{ name: {}, column: {}, label: {} }}",
                yaml(d),
                yaml(d),
                yaml(&label(d))
            );
        }
    }
    out.push_str("  measures:\n");
    for m in &s.measures {
        let _ = writeln!(
            out,
            "    - {{ name: {}, label: {}, sql: {} }}",
            yaml(m),
            yaml(&label(m)),
            yaml(&format!("sum({})", ident(m)))
        );
    }
    out.push_str("  kpis:\n");
    for m in &s.measures {
        let _ = writeln!(
            out,
            "    - {{ label: {}, measure: {} }}",
            yaml(&label(m)),
            yaml(m)
        );
    }
    let first = s.measures[0];
    out.push_str("  charts:\n");
    match s.dimensions.first() {
        Some(d) => {
            let _ = writeln!(
                out,
                "    - {{ title: {}, type: area, series: {}, measure: {} }}\n    \
                 - {{ title: {}, type: bar, category: {}, measure: {}, limit: 10 }}",
                yaml(&format!("{} by {}", label(first), d.replace('_', " "))),
                yaml(d),
                yaml(first),
                yaml(&format!(
                    "Top {} by {}",
                    d.replace('_', " "),
                    first.replace('_', " ")
                )),
                yaml(d),
                yaml(first)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "    - {{ title: {}, type: line, measure: {} }}",
                yaml(&label(first)),
                yaml(first)
            );
        }
    }
    let by: Vec<String> = s.dimensions.iter().map(|d| yaml(d)).collect();
    let measures: Vec<String> = s.measures.iter().map(|m| yaml(m)).collect();
    let _ = writeln!(
        out,
        "  download: {{ by: [{}], measures: [{}] }}\n  analyze_sql: {}",
        by.join(", "),
        measures.join(", "),
        yaml(&format!("SELECT * FROM {} LIMIT 100", fact.dataset))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn facts_by_name_else_marts_tables() {
        let p = |s: &str| PathBuf::from(s);
        let (a, b, c, d) = (
            p("models/marts/fct_orders.sql"),
            p("models/marts/dim_customers.sql"),
            p("seeds/fct_seed.csv"),
            p("models/marts/orders_daily.sql"),
        );
        let models = [
            ("fct_orders", a.as_path(), "incremental"),
            ("dim_customers", b.as_path(), "table"),
            ("fct_seed", c.as_path(), "table"),
            ("orders_daily", d.as_path(), "table"),
        ];
        assert_eq!(fact_models(&models), ["fct_orders"]);
        assert_eq!(fact_models(&models[1..]), ["orders_daily"]);
    }
}
