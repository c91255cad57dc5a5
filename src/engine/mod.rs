//! The transform engine: one DuckDB session that builds models in DAG order
//! with dbt's materializations (`view`, `table`, `incremental` with `append`,
//! `delete+insert` and `merge`) and answers `run_query`.

mod file_log;

use crate::project::{Config, TargetConfig};
use crate::sql::{Relation, literal, quote};
use crate::templating::{QueryResult, QueryRunner};
use crate::warehouse::{LocalRead, StoredChanges, Warehouse, WriteMode, scan};
use anyhow::{Context, Result, anyhow, bail};
use duckdb::Connection;
use duckdb::types::{TimeUnit, Value};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

impl crate::ingest::TableProbe for Engine {
    fn is_missing_or_empty(&self, relation: &Relation) -> Result<bool> {
        Ok(self.relation_kind(relation)?.is_none()
            || self
                .count(&format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {relation} LIMIT 1)"
                ))
                .map_err(|e| anyhow!(e))?
                == 0)
    }
}

/// What exists in the database under a relation's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// A base table (what `table` and `incremental` build).
    Table,
    /// A view.
    View,
}

/// The DuckDB session shared by models, tests and `run_query`.
#[derive(Clone)]
pub struct Engine {
    conn: Arc<Mutex<Connection>>,
    /// On an Iceberg target: where `table` and `incremental` models are
    /// stored (DuckDB only computes them).
    warehouse: Option<Warehouse>,
    /// Statements that set up a connection's session (the default database,
    /// the target's settings): replayed on each [`Engine::worker`].
    session: Arc<str>,
    /// The database lives in this process's memory (the `:memory:` target,
    /// or the session of an Iceberg target): no relation outlives the run.
    in_memory: bool,
}

/// The Iceberg namespace of the file log (catalogs such as S3 Tables refuse
/// names starting with `_`); DuckDB still sees it as `_analytics.file_log`.
const FILE_LOG_NAMESPACE: &str = "analytics_meta";

/// A DuckDB error with the line of the rendered SQL it points at, if any.
#[derive(Debug)]
pub struct SqlError {
    /// The 1-based line of the rendered SQL DuckDB reported (`LINE n:`).
    pub line: Option<usize>,
    /// DuckDB's full error message.
    pub message: String,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

/// Rows written by a materialization, when DuckDB can tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    /// Rows written; `None` for views and when DuckDB does not report it.
    pub rows: Option<u64>,
}

impl Engine {
    /// Opens the target's database (a file path is relative to the project).
    pub fn open(root: &Path, target: &TargetConfig) -> Result<Engine> {
        let (path, threads, settings) = match target {
            TargetConfig::Duckdb {
                path,
                threads,
                settings,
                ..
            } => (path.as_str(), threads, settings),
            TargetConfig::Iceberg {
                threads, settings, ..
            } => (":memory:", threads, settings),
        };
        let mut session = String::new();
        let conn = if path == ":memory:" {
            let conn = Connection::open_in_memory()?;
            // In-memory databases store tables uncompressed unless
            // attached with COMPRESS; compressed, a 30-day AEMO build
            // peaks at far less memory.
            conn.execute_batch(
                "ATTACH ':memory:' AS memory_compressed (COMPRESS); USE memory_compressed;",
            )
            .context("attaching a compressed in-memory database")?;
            // The attachment is the database's; `USE` is the connection's.
            session.push_str("USE memory_compressed;\n");
            conn
        } else {
            let file = root.join(path);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            Connection::open(&file)
                .with_context(|| format!("opening DuckDB database {}", file.display()))?
        };
        if let Some(t) = threads {
            conn.execute_batch(&format!("SET threads = {t}"))?;
        }
        for (key, value) in settings {
            let value = match value {
                serde_json::Value::String(s) => literal(s),
                other => other.to_string(),
            };
            let set = format!("SET {} = {value};\n", quote(key));
            conn.execute_batch(&set)
                .with_context(|| format!("applying the target setting `{key}`"))?;
            session.push_str(&set);
        }
        let warehouse = match target {
            TargetConfig::Iceberg { catalog, .. } => {
                let warehouse = Warehouse::connect(catalog)?;
                scan::register(&conn, &warehouse)?;
                Some(warehouse)
            }
            TargetConfig::Duckdb { .. } => None,
        };
        Ok(Engine {
            conn: Arc::new(Mutex::new(conn)),
            warehouse,
            session: session.into(),
            in_memory: path == ":memory:",
        })
    }

    /// Another session on the same database: its own DuckDB connection (so
    /// its queries run while this one's do), the same default database,
    /// settings and warehouse. Temporary objects (ephemeral models, staged
    /// rows) are each connection's own.
    pub fn worker(&self) -> Result<Engine> {
        let conn = self
            .conn()
            .try_clone()
            .context("opening another connection to the database")?;
        conn.execute_batch(&self.session)
            .context("setting up another connection to the database")?;
        Ok(Engine {
            conn: Arc::new(Mutex::new(conn)),
            warehouse: self.warehouse.clone(),
            session: self.session.clone(),
            in_memory: self.in_memory,
        })
    }

    /// DuckDB's `threads` setting (the machine's cores unless the target
    /// sets it).
    pub fn concurrency(&self) -> usize {
        self.count("SELECT current_setting('threads')")
            .map_or(1, |n| usize::try_from(n).unwrap_or(1).max(1))
    }

    /// Creates the schemas models of this run write to that do not exist
    /// yet, so models built at once on several connections do not race to
    /// create one (DuckDB refuses the second as a write-write conflict).
    pub fn create_schemas<'a>(&self, schemas: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut done: Vec<&str> = Vec::new();
        for schema in schemas {
            if done.contains(&schema) {
                continue;
            }
            self.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)))
                .map_err(|e| anyhow!(e))
                .with_context(|| format!("creating schema {schema}"))?;
            done.push(schema);
        }
        Ok(())
    }

    /// Whether models are stored in Iceberg (rather than in this database).
    pub fn is_warehouse(&self) -> bool {
        self.warehouse.is_some()
    }

    /// Makes a stored Iceberg table queryable under its model's name (a view
    /// streaming the table). Returns whether the table exists.
    pub fn attach_stored(&self, rel: &Relation) -> Result<bool> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(false);
        };
        if !warehouse.table_exists(&rel.schema, &rel.identifier)? {
            return Ok(false);
        }
        self.view_over_stored(rel)?;
        Ok(true)
    }

    /// [`Engine::attach_stored`] of several relations, the catalog asked
    /// about all of them at once (one round trip's wait, not one each).
    pub fn attach_stored_all(&self, rels: &[&Relation]) -> Result<()> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(());
        };
        let tables: Vec<(&str, &str)> = rels
            .iter()
            .map(|r| (r.schema.as_str(), r.identifier.as_str()))
            .collect();
        let exist = warehouse.tables_exist(&tables)?;
        for (rel, _) in rels.iter().zip(exist).filter(|(_, e)| *e) {
            self.view_over_stored(rel)?;
        }
        Ok(())
    }

    /// The view under a stored table's model name that streams the table.
    fn view_over_stored(&self, rel: &Relation) -> Result<()> {
        self.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE OR REPLACE VIEW {rel} AS SELECT * FROM {}",
            quote(&rel.schema),
            scan::call(&rel.schema, &rel.identifier)
        ))
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("attaching stored table {rel}"))
    }

    /// Switches the view of a stored table (made by [`Engine::attach_stored`])
    /// to DuckDB's Parquet reader over local copies of its data files, for
    /// queries that read the whole table (exports). Leaves the view
    /// streaming when the table cannot be read that way, and does nothing to
    /// relations that are not such a view. Returns whether it switched.
    pub fn read_stored_locally(&self, rel: &Relation) -> Result<bool> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(false);
        };
        let view = self
            .query_rows(
                &format!(
                    "SELECT sql FROM duckdb_views() WHERE schema_name = {} AND view_name = {} \
                     AND database_name = current_database()",
                    literal(&rel.schema),
                    literal(&rel.identifier)
                ),
                Some(1),
            )
            .map_err(|e| anyhow!(e))?;
        let streaming = view
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_str())
            .is_some_and(|sql| sql.contains(&scan::call(&rel.schema, &rel.identifier)));
        if !streaming {
            return Ok(false);
        }
        let read = {
            let conn = self.conn();
            warehouse.local_read(&conn, &rel.schema, &rel.identifier)?
        };
        match read {
            LocalRead::Parquet(sql) => {
                self.view_over_local_copies(rel, &sql)?;
                Ok(true)
            }
            LocalRead::Stream(why) => {
                tracing::info!("{rel}: streamed by iceberg_scan ({why})");
                Ok(false)
            }
        }
    }

    /// Points the view `rel` at `sql`, a read of local copies of its files.
    fn view_over_local_copies(&self, rel: &Relation, sql: &str) -> Result<()> {
        self.execute_batch(&format!(
            "CREATE OR REPLACE VIEW {rel} AS SELECT * FROM {sql}"
        ))
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("reading stored table {rel} from local copies"))
    }

    /// Loads the stored tables of `rels` at once and pins them
    /// (`Warehouse::pin_tables`): until [`Engine::unpin_stored`], their
    /// snapshot, changes and local reads come from that one load. Returns
    /// how many were pinned (0 without a warehouse).
    pub fn pin_stored(&self, rels: &[&Relation]) -> Result<usize> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(0);
        };
        let tables: Vec<(&str, &str)> = rels
            .iter()
            .map(|r| (r.schema.as_str(), r.identifier.as_str()))
            .collect();
        warehouse.pin_tables(&tables)
    }

    /// Undoes [`Engine::pin_stored`]: later reads load the tables again.
    pub fn unpin_stored(&self) {
        if let Some(warehouse) = &self.warehouse {
            warehouse.unpin_tables();
        }
    }

    /// The current snapshot of `rel`'s stored table; `None` when `rel` is
    /// not a stored Iceberg table (or has no snapshot).
    pub fn stored_snapshot(&self, rel: &Relation) -> Result<Option<i64>> {
        match &self.warehouse {
            Some(w) if w.table_exists(&rel.schema, &rel.identifier)? => {
                w.current_snapshot_id(&rel.schema, &rel.identifier)
            }
            _ => Ok(None),
        }
    }

    /// The dates `rel`'s stored table changed since its snapshot `base`, by
    /// the bounds of its column `column` in the data files added or removed
    /// since (`Warehouse::changes_since`); unknown when `rel` is not a
    /// stored Iceberg table.
    pub fn stored_changes_since(
        &self,
        rel: &Relation,
        base: i64,
        column: &str,
    ) -> Result<StoredChanges> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(StoredChanges::Unknown("the target is not Iceberg".into()));
        };
        if !warehouse.table_exists(&rel.schema, &rel.identifier)? {
            return Ok(StoredChanges::Unknown("it is not a stored table".into()));
        }
        warehouse.changes_since(&rel.schema, &rel.identifier, base, column)
    }

    /// Points the view of stored table `rel` at local copies of only its
    /// data files whose bounds of the DATE column `column` overlap `ranges`
    /// (`Warehouse::local_read_within`): an export restaging those dates.
    /// The view then holds only those files' rows until
    /// [`Engine::attach_stored`] points it back at the whole table. Returns
    /// whether it did (a table that cannot be read so stays streamed).
    pub fn read_stored_within(
        &self,
        rel: &Relation,
        column: &str,
        ranges: &[(chrono::NaiveDate, chrono::NaiveDate)],
    ) -> Result<bool> {
        let Some(warehouse) = &self.warehouse else {
            return Ok(false);
        };
        if !warehouse.table_exists(&rel.schema, &rel.identifier)? {
            return Ok(false);
        }
        let read = {
            let conn = self.conn();
            warehouse.local_read_within(&conn, &rel.schema, &rel.identifier, column, ranges)?
        };
        match read {
            LocalRead::Parquet(sql) => {
                self.view_over_local_copies(rel, &sql)?;
                Ok(true)
            }
            LocalRead::Stream(why) => {
                tracing::info!("{rel}: streamed by iceberg_scan ({why})");
                self.attach_stored(rel)?;
                Ok(false)
            }
        }
    }

    /// Whether the relation is stored in the warehouse.
    pub fn is_stored(&self, rel: &Relation) -> Result<bool> {
        match &self.warehouse {
            Some(w) => w.table_exists(&rel.schema, &rel.identifier),
            None => Ok(false),
        }
    }

    /// Runs maintenance on a stored table (no-op when it does not exist).
    pub fn maintain(
        &self,
        rel: &Relation,
        options: &crate::warehouse::maintain::MaintainOptions,
    ) -> Result<Option<crate::warehouse::maintain::MaintainReport>> {
        let Some(warehouse) = &self.warehouse else {
            bail!("mode `maintain` needs an Iceberg target");
        };
        if !warehouse.table_exists(&rel.schema, &rel.identifier)? {
            return Ok(None);
        }
        let conn = self.conn();
        warehouse
            .maintain(&conn, &rel.schema, &rel.identifier, options)
            .map(Some)
    }

    /// Maintenance of the file log table.
    pub fn maintain_file_log(
        &self,
        options: &crate::warehouse::maintain::MaintainOptions,
    ) -> Result<Option<crate::warehouse::maintain::MaintainReport>> {
        self.maintain(
            &Relation {
                database: None,
                schema: FILE_LOG_NAMESPACE.into(),
                identifier: "file_log".into(),
                raw: None,
            },
            options,
        )
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic elsewhere; the connection itself is fine.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs statements, mapping errors to [`SqlError`] with a line number.
    pub fn execute(&self, sql: &str) -> Result<usize, SqlError> {
        let conn = self.conn();
        let mut stmts = sql_error(conn.prepare(sql))?;
        sql_error(stmts.execute([]))
    }

    /// Runs several statements at once (hooks, DDL).
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        sql_error(self.conn().execute_batch(sql))
    }

    /// Runs a query and returns all rows as JSON values.
    pub fn query_rows(&self, sql: &str, limit: Option<usize>) -> Result<QueryResult, SqlError> {
        let conn = self.conn();
        let mut stmt = sql_error(conn.prepare(sql))?;
        let mut rows = sql_error(stmt.query([]))?;
        let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut out = Vec::new();
        while let Some(row) = sql_error(rows.next())? {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let v: Value = sql_error(row.get(i))?;
                values.push(to_json(v));
            }
            out.push(values);
        }
        Ok(QueryResult { columns, rows: out })
    }

    /// A single count.
    pub fn count(&self, sql: &str) -> Result<u64, SqlError> {
        let conn = self.conn();
        let n: i64 = sql_error(conn.query_row(sql, [], |r| r.get(0)))?;
        Ok(n.max(0) as u64)
    }

    /// Whether `rel` exists, and as what.
    pub fn relation_kind(&self, rel: &Relation) -> Result<Option<RelationKind>> {
        let sql = format!(
            "SELECT table_type FROM information_schema.tables \
             WHERE table_schema = {} AND table_name = {} AND table_catalog = current_database()",
            literal(&rel.schema),
            literal(&rel.identifier)
        );
        let result = self.query_rows(&sql, Some(1)).map_err(|e| anyhow!(e))?;
        Ok(result.rows.first().map(|r| {
            if r[0].as_str() == Some("VIEW") {
                RelationKind::View
            } else {
                RelationKind::Table
            }
        }))
    }

    /// Column names and types of a relation or query, in order.
    pub fn columns_of(&self, relation_sql: &str) -> Result<Vec<(String, String)>, SqlError> {
        let result = self.query_rows(&format!("DESCRIBE {relation_sql}"), None)?;
        Ok(result
            .rows
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_string(),
                    r[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// Whether the database lives only in this process's memory, so that no
    /// relation in it is seen outside this run.
    pub fn in_memory(&self) -> bool {
        self.in_memory
    }

    /// Builds a `view` model's rows once, into a table of the view's name:
    /// for a view over ingested files that the run reads more than once (a
    /// downstream model, then its tests) on an in-memory database. Every
    /// reader gets the rows the view would give, and the files behind it
    /// are parsed once instead of once per reader. Nothing outside the run
    /// sees the difference: the database ends with it.
    pub fn materialize_view_rows(&self, this: &Relation, sql: &str) -> Result<Written> {
        if !self.in_memory {
            bail!("{this}: a view's rows are kept in a table only in an in-memory database");
        }
        let body = strip_trailing_semicolons(sql);
        self.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(&this.schema)
        ))
        .map_err(|e| anyhow!(e))?;
        let existing = self.relation_kind(this)?;
        self.create_table(this, existing, body)?;
        Ok(Written { rows: None })
    }

    /// Builds one model from its rendered SQL.
    pub fn materialize(
        &self,
        this: &Relation,
        config: &Config,
        sql: &str,
        full_refresh: bool,
    ) -> Result<Written> {
        let body = strip_trailing_semicolons(sql);
        self.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(&this.schema)
        ))
        .map_err(|e| anyhow!(e))?;
        self.drop_new_rows([this])?;
        if let Some(warehouse) = &self.warehouse
            && matches!(config.materialized(), "table" | "incremental")
        {
            return self.materialize_stored(warehouse, this, config, body, full_refresh);
        }
        let existing = self.relation_kind(this)?;
        match config.materialized() {
            "view" => {
                if existing == Some(RelationKind::Table) {
                    self.execute_batch(&format!("DROP TABLE {this}"))
                        .map_err(|e| anyhow!(e))?;
                }
                self.execute(&format!("CREATE OR REPLACE VIEW {this} AS {body}"))?;
                Ok(Written { rows: None })
            }
            "table" => self.create_table(this, existing, body),
            "incremental" => {
                if existing != Some(RelationKind::Table) || full_refresh {
                    return self.create_table(this, existing, body);
                }
                self.incremental(this, config, body)
            }
            "ephemeral" => {
                // dbt inlines ephemeral models as CTEs; a session-only view
                // gives readers the same rows without storing anything.
                self.execute(&format!(
                    "CREATE OR REPLACE TEMP VIEW {} AS {body}",
                    quote(&this.identifier)
                ))?;
                Ok(Written { rows: None })
            }
            other => bail!(
                "unknown materialization '{other}' (use view, table, incremental or ephemeral)"
            ),
        }
    }

    /// Builds a model stored in Iceberg: the rows are computed into a temp
    /// table here, then written to the warehouse (replace, append or
    /// copy-on-write upsert), and the model's name becomes a view over the
    /// stored table.
    fn materialize_stored(
        &self,
        warehouse: &Warehouse,
        this: &Relation,
        config: &Config,
        body: &str,
        full_refresh: bool,
    ) -> Result<Written> {
        let stored = warehouse.table_exists(&this.schema, &this.identifier)?;
        let mode = if config.materialized() == "table" || !stored || full_refresh {
            WriteMode::Replace
        } else {
            let keys = config.str_list("unique_key");
            if !config.str_list("incremental_predicates").is_empty() {
                bail!(
                    "incremental_predicates are not supported on Iceberg targets: \
                     delete+insert there replaces exactly the rows whose unique_key matches, \
                     reading only the files whose bounds can hold those keys"
                );
            }
            match config
                .str("incremental_strategy")
                .unwrap_or(if keys.is_empty() {
                    "append"
                } else {
                    "delete+insert"
                }) {
                "append" => WriteMode::Append,
                "delete+insert" | "merge" if keys.is_empty() => {
                    bail!("incremental_strategy needs a unique_key")
                }
                "delete+insert" | "merge" => WriteMode::Upsert { keys },
                other => bail!(
                    "unknown incremental_strategy '{other}' (use append, delete+insert or merge)"
                ),
            }
        };
        let staged = quote(&format!("{}__dbt_tmp", this.identifier));
        self.execute(&format!("CREATE OR REPLACE TEMP TABLE {staged} AS {body}"))?;
        if let WriteMode::Upsert { keys } = &mode {
            let cols = self.columns_of(&staged).map_err(|e| anyhow!(e))?;
            for key in keys {
                if !cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(key)) {
                    bail!("unique_key `{key}` is not a column of the model's result");
                }
            }
        }
        let result = {
            let conn = self.conn();
            warehouse.write(
                &conn,
                &staged,
                &this.schema,
                &this.identifier,
                &mode,
                config.str("on_schema_change").unwrap_or("ignore"),
            )
        };
        if result.is_ok() && mode != WriteMode::Replace {
            self.keep_new_rows(this, &staged)?;
        }
        let _ = self.execute_batch(&format!("DROP TABLE IF EXISTS {staged}"));
        let report = result?;
        tracing::debug!("{this}: {report:?}");
        if self.relation_kind(this)? == Some(RelationKind::Table) {
            self.execute_batch(&format!("DROP TABLE {this}"))
                .map_err(|e| anyhow!(e))?;
        }
        self.attach_stored(this)?;
        Ok(Written {
            rows: Some(report.rows_written),
        })
    }

    fn create_table(
        &self,
        this: &Relation,
        existing: Option<RelationKind>,
        body: &str,
    ) -> Result<Written> {
        if existing == Some(RelationKind::View) {
            self.execute_batch(&format!("DROP VIEW {this}"))
                .map_err(|e| anyhow!(e))?;
        }
        self.execute(&format!("CREATE OR REPLACE TABLE {this} AS {body}"))?;
        let rows = self
            .count(&format!("SELECT count(*) FROM {this}"))
            .map_err(|e| anyhow!(e))?;
        Ok(Written { rows: Some(rows) })
    }

    /// Applies new rows to an existing table: stage them in a temp table, align
    /// the schema, then append / delete+insert / merge in one transaction.
    fn incremental(&self, this: &Relation, config: &Config, body: &str) -> Result<Written> {
        let staged = quote(&format!("{}__dbt_tmp", this.identifier));
        self.execute(&format!("CREATE OR REPLACE TEMP TABLE {staged} AS {body}"))?;
        let result = self.apply_staged(this, config, &staged);
        if result.is_ok() {
            self.keep_new_rows(this, &staged)?;
        }
        let _ = self.execute_batch(&format!("DROP TABLE IF EXISTS {staged}"));
        result
    }

    /// Keeps the rows an incremental build just wrote into an existing
    /// table (its staged rows) as [`Engine::new_rows`], for the data tests
    /// that check only what this run wrote (`data_tests::narrow_to_new_rows`):
    /// a table next to the model, `<model>__dbt_new_rows` (like dbt's
    /// `__dbt_tmp`), so every connection of the session sees it;
    /// [`Engine::drop_new_rows`] removes them after the tests.
    fn keep_new_rows(&self, this: &Relation, staged: &str) -> Result<()> {
        let kept = new_rows_relation(this);
        self.execute_batch(&format!(
            "CREATE OR REPLACE TABLE {kept} AS SELECT * FROM {staged}"
        ))
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("keeping the rows this run wrote to {this} for its tests"))
    }

    /// The rows this run's incremental build wrote into `rel` (a relation to
    /// query), or `None` when the model was not built incrementally (built
    /// from scratch, as a table or view). Every build of a model first
    /// drops what an earlier build kept, so only a model built in this run
    /// can have them.
    pub fn new_rows(&self, rel: &Relation) -> Result<Option<String>> {
        let kept = new_rows_relation(rel);
        Ok((self.relation_kind(&kept)? == Some(RelationKind::Table)).then(|| kept.to_string()))
    }

    /// Drops what [`Engine::new_rows`] kept for `relations`.
    pub fn drop_new_rows<'a>(
        &self,
        relations: impl IntoIterator<Item = &'a Relation>,
    ) -> Result<()> {
        for rel in relations {
            if self.new_rows(rel)?.is_some() {
                let kept = new_rows_relation(rel);
                self.execute_batch(&format!("DROP TABLE IF EXISTS {kept}"))
                    .map_err(|e| anyhow!(e))
                    .with_context(|| format!("dropping {kept}"))?;
            }
        }
        Ok(())
    }

    fn apply_staged(&self, this: &Relation, config: &Config, staged: &str) -> Result<Written> {
        let target_cols = self.columns_of(&this.to_string())?;
        let new_cols = self.columns_of(staged)?;
        let columns = self.align_schema(this, config, &target_cols, &new_cols)?;
        let col_list = columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = config.str_list("unique_key");
        let predicates = config.str_list("incremental_predicates");
        let strategy = config
            .str("incremental_strategy")
            .unwrap_or(if keys.is_empty() {
                "append"
            } else {
                "delete+insert"
            });
        for key in &keys {
            if !new_cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(key)) {
                bail!("unique_key `{key}` is not a column of the model's result");
            }
        }
        let insert = format!("INSERT INTO {this} ({col_list}) SELECT {col_list} FROM {staged}");
        let statements: Vec<String> = match strategy {
            "append" => vec![insert],
            "delete+insert" | "merge" if keys.is_empty() => {
                bail!("incremental_strategy '{strategy}' needs a unique_key")
            }
            "delete+insert" => {
                let mut cond: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{this}.{q} = {staged}.{q}", q = quote(k)))
                    .collect();
                cond.extend(predicates.iter().map(|p| format!("({p})")));
                vec![
                    format!(
                        "DELETE FROM {this} USING {staged} WHERE {}",
                        cond.join(" AND ")
                    ),
                    insert,
                ]
            }
            "merge" => {
                let on: Vec<String> = keys
                    .iter()
                    .map(|k| format!("t.{q} = s.{q}", q = quote(k)))
                    .collect();
                let set: Vec<String> = columns
                    .iter()
                    .filter(|c| !keys.iter().any(|k| k.eq_ignore_ascii_case(c)))
                    .map(|c| format!("{q} = s.{q}", q = quote(c)))
                    .collect();
                let values: Vec<String> =
                    columns.iter().map(|c| format!("s.{}", quote(c))).collect();
                let update = if set.is_empty() {
                    String::new()
                } else {
                    format!(" WHEN MATCHED THEN UPDATE SET {}", set.join(", "))
                };
                vec![format!(
                    "MERGE INTO {this} AS t USING {staged} AS s ON {}{update} \
                     WHEN NOT MATCHED THEN INSERT ({col_list}) VALUES ({})",
                    on.join(" AND "),
                    values.join(", ")
                )]
            }
            other => {
                bail!("unknown incremental_strategy '{other}' (use append, delete+insert or merge)")
            }
        };
        let rows = self.in_transaction(|| {
            let mut last = 0;
            for stmt in &statements {
                last = self.execute(stmt)?;
            }
            Ok(last as u64)
        })?;
        Ok(Written { rows: Some(rows) })
    }

    /// Applies `on_schema_change`; returns the columns to write.
    fn align_schema(
        &self,
        this: &Relation,
        config: &Config,
        target: &[(String, String)],
        new: &[(String, String)],
    ) -> Result<Vec<String>> {
        let has = |cols: &[(String, String)], name: &str| {
            cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(name))
        };
        let added: Vec<&(String, String)> = new.iter().filter(|(c, _)| !has(target, c)).collect();
        let removed: Vec<&(String, String)> = target.iter().filter(|(c, _)| !has(new, c)).collect();
        let mode = config.str("on_schema_change").unwrap_or("ignore");
        if added.is_empty() && removed.is_empty() {
            return Ok(new.iter().map(|(c, _)| c.clone()).collect());
        }
        match mode {
            "ignore" => Ok(new
                .iter()
                .filter(|(c, _)| has(target, c))
                .map(|(c, _)| c.clone())
                .collect()),
            "fail" => bail!(
                "on_schema_change='fail': the model's columns changed (new: {}; missing: {})",
                added
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                removed
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "append_new_columns" | "sync_all_columns" => {
                for (c, ty) in &added {
                    self.execute(&format!("ALTER TABLE {this} ADD COLUMN {} {ty}", quote(c)))?;
                }
                if mode == "sync_all_columns" {
                    for (c, _) in &removed {
                        self.execute(&format!("ALTER TABLE {this} DROP COLUMN {}", quote(c)))?;
                    }
                }
                Ok(new.iter().map(|(c, _)| c.clone()).collect())
            }
            other => bail!(
                "unknown on_schema_change '{other}' (use ignore, fail, append_new_columns or sync_all_columns)"
            ),
        }
    }

    /// Runs `f` inside BEGIN/COMMIT, rolling back on error.
    fn in_transaction<T>(&self, f: impl FnOnce() -> Result<T, SqlError>) -> Result<T> {
        self.execute_batch("BEGIN TRANSACTION")
            .map_err(|e| anyhow!(e))?;
        match f() {
            Ok(v) => {
                self.execute_batch("COMMIT").map_err(|e| anyhow!(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.execute_batch("ROLLBACK");
                Err(anyhow!(e))
            }
        }
    }
}

impl QueryRunner for Engine {
    fn query(&self, sql: &str) -> Result<QueryResult> {
        self.query_rows(sql, None).map_err(|e| anyhow!(e))
    }
}

/// Where [`Engine::new_rows`] keeps an incremental model's rows of this run.
fn new_rows_relation(rel: &Relation) -> Relation {
    Relation {
        identifier: format!("{}__dbt_new_rows", rel.identifier),
        raw: None,
        ..rel.clone()
    }
}

/// Removes trailing `;` and whitespace so the SQL can be wrapped.
fn strip_trailing_semicolons(sql: &str) -> &str {
    sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// Converts a DuckDB error into a [`SqlError`], pulling out `LINE n:`.
fn sql_error<T>(r: duckdb::Result<T>) -> Result<T, SqlError> {
    r.map_err(|e| {
        let message = e.to_string();
        let line = message
            .split("LINE ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.trim().parse().ok());
        SqlError { line, message }
    })
}

/// A DuckDB value as JSON, for `run_query` results and test samples.
fn to_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::TinyInt(i) => J::from(i),
        Value::SmallInt(i) => J::from(i),
        Value::Int(i) => J::from(i),
        Value::BigInt(i) => J::from(i),
        Value::UTinyInt(i) => J::from(i),
        Value::USmallInt(i) => J::from(i),
        Value::UInt(i) => J::from(i),
        Value::UBigInt(i) => J::from(i),
        Value::HugeInt(i) => i64::try_from(i)
            .map(J::from)
            .unwrap_or_else(|_| J::String(i.to_string())),
        Value::UHugeInt(i) => u64::try_from(i)
            .map(J::from)
            .unwrap_or_else(|_| J::String(i.to_string())),
        Value::Float(f) => J::from(f as f64),
        Value::Double(f) => J::from(f),
        Value::Decimal(d) => {
            let text = d.to_string();
            text.parse::<f64>().map(J::from).unwrap_or(J::String(text))
        }
        Value::Text(s) | Value::Enum(s) => J::String(s),
        Value::Timestamp(unit, n) => {
            let micros = match unit {
                TimeUnit::Second => n.saturating_mul(1_000_000),
                TimeUnit::Millisecond => n.saturating_mul(1_000),
                TimeUnit::Microsecond => n,
                TimeUnit::Nanosecond => n / 1_000,
            };
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|t| J::String(t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()))
                .unwrap_or(J::Null)
        }
        Value::Date32(days) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days as i64)))
            .map(|d| J::String(d.to_string()))
            .unwrap_or(J::Null),
        Value::List(items) | Value::Array(items) => {
            J::Array(items.into_iter().map(to_json).collect())
        }
        Value::Struct(map) => J::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_json(v.clone())))
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}
