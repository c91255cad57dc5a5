//! Jinja SQL rendering with `minijinja`, the dbt way.
//!
//! Every model, test and hook is rendered twice, like dbt does it:
//! - [`Phase::Parse`]: no database; `execute` is false, `run_query` returns an
//!   empty result, and `ref`/`source`/`config` calls are *captured* to build
//!   the DAG and the final config;
//! - [`Phase::Execute`]: right before the node runs, with `this`,
//!   `is_incremental()` and `run_query` answered by the live DuckDB session.
//!
//! Project macros are concatenated into one template (so macros can call each
//! other across files) and imported into every node. dbt-only globals that
//! macros use (`this`, `target`, …) are environment globals, so imported macros
//! see them too.

use crate::environ::Env;
use crate::project::{Config, DbtSourceTable, Project};
use crate::sql::{Relation, quote};
use anyhow::{Result, anyhow};
use minijinja::value::{Kwargs, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Map;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

mod mutable;
mod objects;

use objects::{Adapter, ConfigObject, Exceptions, RunStartedAt};

/// Which of the two renders this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Parse render: no database; `ref`/`source`/`config` calls are captured.
    Parse,
    /// Execute render: right before the node runs, against the live session.
    Execute,
}

/// What `run_query` returns: column names and rows of JSON-like values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// The database side of `run_query`, provided by the engine at execute time.
pub trait QueryRunner: Send + Sync {
    /// Runs `sql` and returns all its rows.
    fn query(&self, sql: &str) -> Result<QueryResult>;
}

/// Where ingested files are, for `source_files()` and `read_source()`.
pub trait FileCatalog: Send + Sync {
    /// Whether an ingest source of this name is declared.
    fn has_source(&self, source: &str) -> bool;
    /// The files this run took for `source` (one MMS `table` of it, if given).
    fn files(&self, source: &str, table: Option<&str>) -> Vec<PathBuf>;
    /// The header shared by all those files, when known without reading them.
    fn columns(&self, source: &str, table: Option<&str>) -> Option<Vec<String>>;
    /// The relation holding the file log.
    fn file_log_relation(&self) -> String;
    /// Whether every column in `columns` is in the header of at least one
    /// of this run's files of `source` (when ingest knows their headers);
    /// the error names the missing column and the files.
    fn check_columns(
        &self,
        _source: &str,
        _table: Option<&str>,
        _columns: &[&str],
    ) -> Result<(), String> {
        Ok(())
    }
    /// The SQL that reads this run's files of `source` (one MMS `table` of
    /// it), typed by `columns`, with a `source_file` column; `None` when the
    /// run took no such files.
    fn read_sql(
        &self,
        source: &str,
        table: Option<&str>,
        columns: Option<&[(String, String)]>,
    ) -> Option<String>;
}

/// What a parse-phase render discovered about a node.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Models named by `ref()`, in call order (with duplicates removed).
    pub refs: Vec<String>,
    /// `source(a, b)` calls.
    pub sources: Vec<(String, String)>,
    /// Ingest sources read through `read_source`/`source_files`.
    pub ingest_sources: Vec<String>,
    /// What each read of an ingest source asks for: `read_source` with
    /// `columns=` names them; `source()`, `source_files()` and `read_source`
    /// without `columns=` read every column.
    pub ingest_reads: Vec<IngestRead>,
    /// Keys set by `config(...)` calls.
    pub config: Config,
    /// Models named by a plain `ref()` (not through `stored_on_new_dates`).
    pub plain_refs: Vec<String>,
    /// `stored_on_new_dates(m, column)` reads that resolved to the rows
    /// this run wrote: the test may read `m` from only the stored files
    /// holding those dates ([`StoredRead`]).
    pub stored_reads: Vec<StoredRead>,
}

/// A test's read of the stored rows of model `model` on the dates (values
/// of DATE column `column`) of the rows this run wrote to it (`kept`, the
/// rows the engine keeps for the tests): rendered as a filter, so it reads
/// the same rows on every target; on an Iceberg target the test runner can
/// also point `model` at local copies of only the data files whose bounds
/// hold those dates (`data_tests::run_test`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRead {
    /// The model read.
    pub model: Relation,
    /// The rows this run wrote to it.
    pub kept: Relation,
    /// Its DATE column.
    pub column: String,
}

/// One read of an ingest source seen by a render (see [`Captured::ingest_reads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRead {
    /// The `analytics.yml` source.
    pub source: String,
    /// The MMS table read; `None`: every part of the source.
    pub table: Option<String>,
    /// The columns named; `None`: every column.
    pub columns: Option<Vec<String>>,
}

/// How `ref()` resolves at execute time.
pub type RelationMap = BTreeMap<String, Relation>;

/// Everything a render needs besides the node's own text.
#[derive(Clone)]
pub struct RenderContext {
    /// Parse or execute.
    pub phase: Phase,
    /// The model, test or hook name (for messages and `model.name`).
    pub node_name: String,
    /// `this` (the model's own relation), when the node is a model.
    pub this: Option<Relation>,
    /// What `is_incremental()` returns: an incremental model with an existing table.
    pub is_incremental: bool,
    /// The node's config so far (for `config.get`).
    pub config: Config,
    /// Model relations by name (execute phase).
    pub relations: Arc<RelationMap>,
    /// Answers `run_query` (execute phase only).
    pub runner: Option<Arc<dyn QueryRunner>>,
    /// Ingested files, for `source_files()` and `read_source()` (execute phase only).
    pub files: Option<Arc<dyn FileCatalog>>,
}

/// Renders project SQL; built once per run from the project.
pub struct Templater {
    macros: String,
    macro_names: Vec<String>,
    /// For mapping lines of the concatenated macro template back to files.
    macro_offsets: Vec<(usize, PathBuf)>,
    vars: Map<String, serde_json::Value>,
    target: serde_json::Value,
    dbt_sources: Vec<DbtSourceTable>,
    default_schema: String,
    /// dbt's `run_started_at` (UTC) and `invocation_id`, fixed for the run.
    started_at: chrono::DateTime<chrono::Utc>,
    invocation_id: String,
    /// What `env_var()` reads: the run's environment, resolved by the front-end.
    env: Arc<Env>,
    /// `tests: {incremental_scope: new_rows}`: `new_rows('m')` reads the rows
    /// this run wrote to `m` (else the whole model, as `ref`).
    new_rows_scope: bool,
}

/// The output of one render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The rendered SQL.
    pub sql: String,
    /// What the render captured (`ref`, `source`, `config` calls).
    pub captured: Captured,
}

impl Templater {
    /// Prepares macros and globals for `project` built into target `target_name`.
    pub fn new(
        project: &Project,
        target_name: &str,
        target: &crate::project::TargetConfig,
        cli_vars: &Map<String, serde_json::Value>,
        env: &Env,
        warnings: &mut Vec<String>,
    ) -> Result<Templater> {
        let test_open = regex::Regex::new(r"\{%(-?)\s*test\s+(\w+)\s*\(")?;
        let test_close = regex::Regex::new(r"\{%(-?)\s*endtest\s*(-?)%\}")?;
        let materialization = regex::Regex::new(
            r"(?s)\{%-?\s*materialization\b.*?\{%-?\s*endmaterialization\s*-?%\}",
        )?;
        let macro_name = regex::Regex::new(r"\{%-?\s*macro\s+(\w+)")?;
        let mut macros = String::new();
        let mut macro_names: Vec<String> = Vec::new();
        let mut macro_offsets = Vec::new();
        for file in &project.macro_files {
            let mut text = test_open
                .replace_all(&file.text, "{%$1 macro test_$2(")
                .into_owned();
            text = test_close
                .replace_all(&text, "{%$1 endmacro $2%}")
                .into_owned();
            if materialization.is_match(&text) {
                warnings.push(format!(
                    "{}: custom materializations are not supported; the block is ignored",
                    file.path.display()
                ));
                text = materialization
                    .replace_all(&text, |c: &regex::Captures| {
                        "\n".repeat(c[0].matches('\n').count())
                    })
                    .into_owned();
            }
            for cap in macro_name.captures_iter(&text) {
                let name = cap[1].to_string();
                if macro_names.contains(&name) {
                    warnings.push(format!(
                        "macro `{name}` is defined more than once; the definition in {} wins",
                        file.path.display()
                    ));
                } else {
                    macro_names.push(name);
                }
            }
            macro_offsets.push((macros.matches('\n').count() + 1, file.path.clone()));
            macros.push_str(&mutable::make_literals_mutable(&text));
            macros.push('\n');
        }
        let mut vars = project.vars.clone();
        vars.extend(cli_vars.clone());
        let (kind, path, threads) = match target {
            crate::project::TargetConfig::Duckdb { path, threads, .. } => {
                ("duckdb", path.clone(), threads.unwrap_or(1))
            }
            crate::project::TargetConfig::Iceberg { threads, .. } => {
                ("iceberg", ":memory:".to_string(), threads.unwrap_or(1))
            }
        };
        let database = if path == ":memory:" {
            "memory".to_string()
        } else {
            std::path::Path::new(&path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "memory".into())
        };
        let target_value = serde_json::json!({
            "name": target_name,
            "type": kind,
            "schema": target.schema(),
            "database": database,
            "path": path,
            "threads": threads,
            "profile_name": project.name,
        });
        let templater = Templater {
            macros,
            macro_names,
            macro_offsets,
            vars,
            target: target_value,
            dbt_sources: project.dbt_sources.clone(),
            default_schema: target.schema().to_string(),
            started_at: chrono::Utc::now(),
            invocation_id: invocation_id(),
            env: Arc::new(env.clone()),
            new_rows_scope: project.settings.tests.incremental_scope
                == crate::project::TestScope::NewRows,
        };
        // Fail early, naming the file, when a macro file does not parse.
        if !templater.macros.is_empty() {
            let mut env = Environment::new();
            env.add_template_owned("__macros__", templater.macros.clone())
                .map_err(|e| templater.describe_error("macros", &e))?;
        }
        Ok(templater)
    }

    /// Whether the project defines a macro of this name.
    pub fn has_macro(&self, name: &str) -> bool {
        self.macro_names.iter().any(|m| m == name)
    }

    /// Renders `text` (the node's Jinja SQL) in `ctx`; `origin` names the file
    /// for error messages.
    pub fn render(&self, origin: &str, text: &str, ctx: &RenderContext) -> Result<Rendered> {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let env = self.environment(ctx, &captured)?;
        let mut source = String::new();
        if !self.macro_names.is_empty() {
            // On the first line, so line numbers in errors match the file.
            source.push_str("{% from \"__macros__\" import ");
            source.push_str(&self.macro_names.join(", "));
            source.push_str(" %}");
        }
        source.push_str(&mutable::make_literals_mutable(text));
        let template = env
            .template_from_named_str(origin, &source)
            .map_err(|e| self.describe_error(origin, &e))?;
        let sql = template
            .render(minijinja::context! {})
            .map_err(|e| self.describe_error(origin, &e))?;
        let captured = lock(&captured).clone();
        Ok(Rendered { sql, captured })
    }

    /// Calls the project's `generate_schema_name(custom_schema_name, node)`
    /// macro if it has one, else applies dbt's default rule
    /// (`<target schema>` or `<target schema>_<custom>`).
    pub fn schema_for(&self, model: &str, custom: Option<&str>, config: &Config) -> Result<String> {
        if !self.has_macro("generate_schema_name") {
            return Ok(match custom {
                None => self.default_schema.clone(),
                Some(custom) => format!("{}_{}", self.default_schema, custom.trim()),
            });
        }
        let ctx = RenderContext {
            phase: Phase::Execute,
            node_name: model.to_string(),
            this: None,
            is_incremental: false,
            config: config.clone(),
            relations: Arc::new(RelationMap::new()),
            runner: None,
            files: None,
        };
        let call = "{{ generate_schema_name(__custom, model) }}";
        let captured = Arc::new(Mutex::new(Captured::default()));
        let env = self.environment(&ctx, &captured)?;
        let source = format!(
            "{{% from \"__macros__\" import {} %}}{call}",
            self.macro_names.join(", ")
        );
        let template = env
            .template_from_str(&source)
            .map_err(|e| self.describe_error("generate_schema_name", &e))?;
        let out = template
            .render(minijinja::context! { __custom => custom })
            .map_err(|e| {
                anyhow!(
                    "generate_schema_name failed for model `{model}`: {}",
                    self.describe_error("generate_schema_name", &e)
                )
            })?;
        let schema = out.trim().to_string();
        if schema.is_empty() {
            anyhow::bail!("generate_schema_name returned an empty schema for model `{model}`");
        }
        Ok(schema)
    }

    /// Builds the environment for one render: macros plus dbt's globals.
    fn environment(
        &self,
        ctx: &RenderContext,
        captured: &Arc<Mutex<Captured>>,
    ) -> Result<Environment<'static>> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        // Python methods dbt macros rely on: str.upper(), dict.items(), …
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        mutable::register(&mut env);
        env.set_undefined_behavior(match ctx.phase {
            // Parse renders must get through code that only makes sense with data.
            Phase::Parse => UndefinedBehavior::Chainable,
            Phase::Execute => UndefinedBehavior::Lenient,
        });
        if !self.macros.is_empty() {
            env.add_template_owned("__macros__", self.macros.clone())
                .map_err(|e| self.describe_error("macros", &e))?;
        }
        let execute = ctx.phase == Phase::Execute;
        env.add_global("execute", execute);
        env.add_global("target", Value::from_serialize(&self.target));
        env.add_global(
            "flags",
            Value::from_serialize(serde_json::json!({"FULL_REFRESH": false, "WHICH": "build"})),
        );
        let this = ctx
            .this
            .clone()
            .unwrap_or_else(|| Relation::new(&self.default_schema, &ctx.node_name));
        env.add_global("this", Value::from_object(this));
        env.add_global(
            "model",
            Value::from_serialize(serde_json::json!({
                "name": ctx.node_name,
                "alias": ctx.node_name,
                "config": ctx.config.0,
                "resource_type": "model",
            })),
        );
        env.add_global(
            "config",
            Value::from_object(ConfigObject {
                captured: captured.clone(),
                base: ctx.config.clone(),
            }),
        );
        env.add_global("exceptions", Value::from_object(Exceptions));
        env.add_global(
            "run_started_at",
            Value::from_object(RunStartedAt(self.started_at)),
        );
        env.add_global("invocation_id", self.invocation_id.clone());
        env.add_global(
            "adapter",
            Value::from_object(Adapter {
                runner: ctx.runner.clone().filter(|_| ctx.phase == Phase::Execute),
            }),
        );

        let is_incremental = ctx.is_incremental && execute;
        env.add_function("is_incremental", move || is_incremental);

        let (cap, relations, phase, schema) = (
            captured.clone(),
            ctx.relations.clone(),
            ctx.phase,
            self.default_schema.clone(),
        );
        env.add_function("ref", move |args: &[Value]| -> Result<Value, Error> {
            let names: Vec<String> = args
                .iter()
                .filter(|v| v.kind() == minijinja::value::ValueKind::String)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let name = names
                .last()
                .ok_or_else(|| Error::new(ErrorKind::MissingArgument, "ref() needs a model name"))?
                .clone();
            {
                let mut c = lock(&cap);
                if !c.refs.contains(&name) {
                    c.refs.push(name.clone());
                }
                if !c.plain_refs.contains(&name) {
                    c.plain_refs.push(name.clone());
                }
            }
            match phase {
                Phase::Parse => Ok(Value::from_object(Relation::new(&schema, &name))),
                Phase::Execute => relations
                    .get(&name)
                    .cloned()
                    .map(Value::from_object)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("ref('{name}'): no such model"),
                        )
                    }),
            }
        });

        // `new_rows('m')` and `stored_on_new_dates('m', 'date')` read a
        // model from a test; both resolve it the same way (`TestRead`).
        let reads = TestRead {
            captured: captured.clone(),
            relations: ctx.relations.clone(),
            runner: ctx.runner.clone(),
            scoped: self.new_rows_scope,
            in_model: ctx.this.is_some(),
            schema: self.default_schema.clone(),
            phase,
        };

        // `new_rows('m')`: in a test, the rows this run's incremental build
        // wrote to `m` when the project asks for that scope and the build
        // kept them (the engine keeps them as `<m>__dbt_new_rows` until the
        // tests end); otherwise `m` itself, as `ref('m')` — so a test written
        // with it reads the whole model under dbt's default scope.
        let r = reads.clone();
        env.add_function("new_rows", move |name: String| -> Result<Value, Error> {
            Ok(match r.resolve("new_rows", &name)? {
                TestReadOf::Placeholder(rel) => Value::from_object(rel),
                TestReadOf::Model { model, kept } => Value::from_object(kept.unwrap_or(model)),
            })
        });

        // `stored_on_new_dates('m', 'date')`: in a test, the stored rows of
        // `m` on the dates of the rows this run wrote to it (under the
        // new_rows scope, when the build kept them): the rows an old/new
        // duplicate or conflict of this run can be in, without the rest of
        // the history. Otherwise the whole model, as `ref('m')`.
        let r = reads;
        env.add_function(
            "stored_on_new_dates",
            move |name: String, column: Option<String>| -> Result<Value, Error> {
                let (model, kept) = match r.resolve("stored_on_new_dates", &name)? {
                    TestReadOf::Placeholder(rel) => return Ok(Value::from_object(rel)),
                    TestReadOf::Model { model, kept: None } => {
                        return Ok(Value::from_object(model));
                    }
                    TestReadOf::Model {
                        model,
                        kept: Some(kept),
                    } => (model, kept),
                };
                // Nothing written: no stored row can conflict with it.
                if r.runner
                    .as_deref()
                    .and_then(|q| q.query(&format!("SELECT 1 FROM {kept} LIMIT 1")).ok())
                    .is_some_and(|q| q.rows.is_empty())
                {
                    return Ok(Value::from_safe_string(format!(
                        "(SELECT * FROM {model} WHERE false)"
                    )));
                }
                let column = column.unwrap_or_else(|| "date".to_string());
                let c = quote(&column);
                let sql = format!(
                    "(SELECT * FROM {model} WHERE {c} IN (SELECT DISTINCT {c} FROM {kept}))"
                );
                let read = StoredRead {
                    model,
                    kept,
                    column,
                };
                let mut captured = lock(&r.captured);
                if !captured.stored_reads.contains(&read) {
                    captured.stored_reads.push(read);
                }
                Ok(Value::from_safe_string(sql))
            },
        );

        let (cap, sources, files) = (
            captured.clone(),
            self.dbt_sources.clone(),
            ctx.files.clone(),
        );
        env.add_function("source", move |source: String, table: String| -> Result<Value, Error> {
            lock(&cap).sources.push((source.clone(), table.clone()));
            if let Some(t) = sources.iter().find(|t| t.source == source && t.table == table) {
                let mut rel = Relation::new(&t.schema, &t.identifier);
                if let Some(location) = &t.external_location {
                    rel.raw = Some(
                        location
                            .replace("{name}", &t.table)
                            .replace("{identifier}", &t.identifier),
                    );
                }
                return Ok(Value::from_object(rel));
            }
            if files.as_ref().is_some_and(|f| f.has_source(&source)) || phase == Phase::Parse {
                lock(&cap).ingest_reads.push(IngestRead {
                    source: source.clone(),
                    table: Some(table.clone()),
                    columns: None,
                });
                let mut rel = Relation::new(&source, &table);
                rel.raw = Some(read_source_sql(files.as_deref(), &source, Some(&table), None, phase));
                return Ok(Value::from_object(rel));
            }
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("source('{source}', '{table}') is not declared in any sources: block or analytics.yml"),
            ))
        });

        let (cap, files) = (captured.clone(), ctx.files.clone());
        env.add_function(
            "source_files",
            move |source: String, table: Option<String>| -> Result<String, Error> {
                check_ingest_source(files.as_deref(), &source, phase)?;
                lock(&cap).ingest_sources.push(source.clone());
                lock(&cap).ingest_reads.push(IngestRead {
                    source: source.clone(),
                    table: table.clone(),
                    columns: None,
                });
                let paths = files
                    .as_ref()
                    .map(|f| f.files(&source, table.as_deref()))
                    .unwrap_or_default();
                Ok(crate::sql::path_list(&paths))
            },
        );
        let (cap, files) = (captured.clone(), ctx.files.clone());
        env.add_function(
            "read_source",
            move |source: String, args: &[Value]| -> Result<String, Error> {
                let (table, kwargs): (Option<String>, Kwargs) = from_args(args)?;
                check_ingest_source(files.as_deref(), &source, phase)?;
                lock(&cap).ingest_sources.push(source.clone());
                let columns: Option<Vec<(String, String)>> =
                    match kwargs.get::<Option<Value>>("columns")? {
                        None => None,
                        Some(map) => Some(
                            map.try_iter()?
                                .map(|k| {
                                    let ty = map.get_item(&k)?;
                                    Ok((k.to_string(), ty.to_string()))
                                })
                                .collect::<Result<_, Error>>()?,
                        ),
                    };
                let table = table.or(kwargs.get::<Option<String>>("table")?);
                kwargs.assert_all_used()?;
                lock(&cap).ingest_reads.push(IngestRead {
                    source: source.clone(),
                    table: table.clone(),
                    columns: columns
                        .as_ref()
                        .map(|c| c.iter().map(|(n, _)| n.clone()).collect()),
                });
                if phase == Phase::Execute
                    && let (Some(f), Some(cols)) = (files.as_deref(), columns.as_deref())
                {
                    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
                    f.check_columns(&source, table.as_deref(), &names)
                        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
                }
                Ok(read_source_sql(
                    files.as_deref(),
                    &source,
                    table.as_deref(),
                    columns.as_deref(),
                    phase,
                ))
            },
        );
        let files = ctx.files.clone();
        env.add_function("file_log", move || -> String {
            files
                .as_ref()
                .map(|f| f.file_log_relation())
                .unwrap_or_else(|| "\"_analytics\".\"file_log\"".into())
        });

        let vars = self.vars.clone();
        env.add_function(
            "var",
            move |name: String, default: Option<Value>| -> Result<Value, Error> {
                match vars.get(&name) {
                    Some(v) => Ok(Value::from_serialize(v)),
                    None => default.ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!(
                                "required var '{name}' is not set in dbt_project.yml vars or --vars"
                            ),
                        )
                    }),
                }
            },
        );
        let run_env = self.env.clone();
        env.add_function("env_var", move |name: String, default: Option<Value>| -> Result<Value, Error> {
            match run_env.get(&name) {
                Some(v) => Ok(Value::from(v)),
                None => default.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("env_var('{name}'): the environment variable is not set and no default was given"),
                    )
                }),
            }
        });
        let (node, phase) = (ctx.node_name.clone(), ctx.phase);
        env.add_function("log", move |args: &[Value]| -> Result<String, Error> {
            // dbt's log(msg, info=True): `info` only picks the log level there.
            let (msg, _info, _kwargs): (Value, Option<Value>, Kwargs) = from_args(args)?;
            if phase == Phase::Parse {
                return Ok(String::new());
            }
            tracing::info!(target: "analytics::log", "[{node}] {msg}");
            Ok(String::new())
        });
        env.add_function("return", |value: Value| value);

        let runner = ctx.runner.clone();
        env.add_function("run_query", move |sql: String| -> Result<Value, Error> {
            let result = match (&runner, phase) {
                (Some(r), Phase::Execute) => r.query(&sql).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("run_query failed: {e:#}"),
                    )
                })?,
                _ => QueryResult::default(),
            };
            let columns: Vec<serde_json::Value> = result
                .columns
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    serde_json::json!({
                        "name": name,
                        "values": result.rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Ok(Value::from_serialize(serde_json::json!({
                "rows": result.rows,
                "column_names": result.columns,
                "columns": columns,
            })))
        });
        Ok(env)
    }

    /// Turns a minijinja error into a message naming the file and line
    /// (macro errors point into the macro's own file).
    fn describe_error(&self, origin: &str, err: &Error) -> anyhow::Error {
        let mut where_ = origin.to_string();
        let mut at: Option<(PathBuf, usize)> = None;
        if let Some(line) = err.line() {
            if err.name() == Some("__macros__") {
                let (start, file) = self
                    .macro_offsets
                    .iter()
                    .rev()
                    .find(|(start, _)| *start <= line)
                    .cloned()
                    .unwrap_or((1, PathBuf::from("macros")));
                let line = line + 1 - start;
                where_ = format!("{} line {line}", file.display());
                at = Some((file, line));
            } else {
                where_ = format!("{origin} line {line}");
                // Models, tests and macros are rendered under their file's
                // path; hooks under a description of where they are declared.
                let path = PathBuf::from(origin);
                if path
                    .extension()
                    .is_some_and(|e| e == "sql" || e == "yml" || e == "yaml")
                {
                    at = Some((path, line));
                }
            }
        }
        let mut msg = err
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| err.kind().to_string());
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            msg.push_str(": ");
            msg.push_str(&inner.to_string());
            source = inner.source();
        }
        let message = format!("{where_}: template error: {msg}");
        match at {
            Some((file, line)) => anyhow::Error::new(crate::diagnostic::Located {
                file,
                line,
                message,
            }),
            None => anyhow!(message),
        }
    }
}

/// A run id in dbt's UUID format, from the clock and the process id.
fn invocation_id() -> String {
    use sha2::Digest;
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let h = sha2::Sha256::digest(seed.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) fn to_json(value: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("config value: {e}")))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another render panicked; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_ingest_source(
    files: Option<&dyn FileCatalog>,
    source: &str,
    phase: Phase,
) -> Result<(), Error> {
    match files {
        Some(f) if !f.has_source(source) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("no source named '{source}' in analytics.yml"),
        )),
        None if phase == Phase::Execute => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("source '{source}': no ingested files are available in this run"),
        )),
        _ => Ok(()),
    }
}

/// The SQL behind `read_source(source, table, columns={...})`: ingest's typed
/// read of this run's files (see [`FileCatalog::read_sql`]). With no files,
/// or in the parse render, it is an empty relation of the same columns, so
/// models still build.
fn read_source_sql(
    files: Option<&dyn FileCatalog>,
    source: &str,
    table: Option<&str>,
    columns: Option<&[(String, String)]>,
    phase: Phase,
) -> String {
    if phase == Phase::Execute
        && let Some(sql) = files.and_then(|f| f.read_sql(source, table, columns))
    {
        return sql;
    }
    match columns {
        Some(cols) => {
            let list: Vec<String> = cols
                .iter()
                .map(|(name, ty)| format!("NULL::{ty} AS {}", quote(name)))
                .chain(["NULL::VARCHAR AS source_file".to_string()])
                .collect();
            format!("(SELECT {} WHERE false)", list.join(", "))
        }
        None => "(SELECT NULL::VARCHAR AS source_file WHERE false)".to_string(),
    }
}

/// What a test's read of a model (`new_rows`, `stored_on_new_dates`)
/// needs from the render: shared by both functions so they record the ref,
/// answer the parse phase and refuse a model's use the same way.
#[derive(Clone)]
struct TestRead {
    captured: Arc<Mutex<Captured>>,
    relations: Arc<RelationMap>,
    runner: Option<Arc<dyn QueryRunner>>,
    scoped: bool,
    in_model: bool,
    schema: String,
    phase: Phase,
}

/// A test's read of a model, resolved.
enum TestReadOf {
    /// Parse phase: a placeholder relation (the ref is recorded).
    Placeholder(Relation),
    /// Execute phase: the model, and the rows this run's build kept for
    /// its tests when the project asks for that scope and they exist.
    Model {
        model: Relation,
        kept: Option<Relation>,
    },
}

impl TestRead {
    /// Records `name` as a ref, then resolves it for the function `func`
    /// (named in errors): a placeholder when parsing, an error inside a
    /// model or for an unknown model, else the model and its kept rows.
    fn resolve(&self, func: &str, name: &str) -> Result<TestReadOf, Error> {
        {
            let mut c = lock(&self.captured);
            if !c.refs.iter().any(|r| r == name) {
                c.refs.push(name.to_string());
            }
        }
        if self.phase == Phase::Parse {
            return Ok(TestReadOf::Placeholder(Relation::new(&self.schema, name)));
        }
        if self.in_model {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{func}('{name}') is for tests: a model reads ref('{name}')"),
            ));
        }
        let model = self.relations.get(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{func}('{name}'): no such model"),
            )
        })?;
        let kept = if self.scoped {
            kept_new_rows(&model, self.runner.as_deref())
        } else {
            None
        };
        Ok(TestReadOf::Model { model, kept })
    }
}

/// The rows an incremental build of `model` kept for this run's tests
/// (`engine::Engine::new_rows`: a table `<identifier>__dbt_new_rows` next to
/// the model), when the session has it.
fn kept_new_rows(model: &Relation, runner: Option<&dyn QueryRunner>) -> Option<Relation> {
    if model.raw.is_some() {
        return None;
    }
    let kept = Relation {
        identifier: format!("{}__dbt_new_rows", model.identifier),
        raw: None,
        ..model.clone()
    };
    runner?
        .query(&format!("SELECT 1 FROM {kept} LIMIT 0"))
        .ok()
        .map(|_| kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_read_source_is_a_typed_empty_relation() {
        let sql = read_source_sql(
            None,
            "daily",
            Some("DUNIT"),
            Some(&[("DUID".into(), "VARCHAR".into())]),
            Phase::Execute,
        );
        assert_eq!(
            sql,
            "(SELECT NULL::VARCHAR AS \"DUID\", NULL::VARCHAR AS source_file WHERE false)"
        );
    }
}
