//! Export (pipeline stage 7, README): the dashboard's data as compact DuckDB files.
//!
//! Each dataset of `analytics.yml`'s `exports:` is a Jinja SQL query over the
//! models. It is windowed (`window_days`), brought to its grain (time buckets
//! and per-measure aggregates), given compact types (REAL instead of
//! DOUBLE/DECIMAL, SMALLINT `HHMM` times) and written, sorted on the columns
//! the dashboard filters by, into one `.duckdb` file per period
//! (`data/<name>_<period>.duckdb`) holding one table named after the dataset.
//! `manifest.json` at the site root lists every file. The files use a storage
//! version DuckDB-WASM 1.32.0 (DuckDB 1.4.3) can open, and a file over
//! GitHub's 100 MiB limit stops the run before anything is published.
//!
//! A file whose rows did not change keeps its bytes: each period's rows are
//! fingerprinted (an order-independent sum of DuckDB's `hash()` of every
//! staged row, with the columns, the sort order, the storage version and
//! DuckDB's version), and when the site already published (`previous`) holds
//! the same path with the same fingerprint, its manifest entry is reused
//! (same `sha256`, same `exported_at`) and the file is not written: it is
//! linked (or copied) into the staging folder when the published site is a
//! local folder, and otherwise left out of it — publish then keeps the
//! published copy. DuckDB's writer cannot give that by itself: two
//! writes of the same rows differ (a random database identifier in the file
//! header, uninitialised bytes in partly used blocks, block order with
//! several threads; bench/RESULTS.md, "export_incremental").
//!
//! Every statement a dataset's export runs (DESCRIBEs, the window lookup,
//! the staging table, each file's write) is written, in order, to
//! `target/compiled/<project>/exports/<dataset>.sql`, next to the models'
//! compiled SQL: to read what ran, rerun it by hand, or replay it on another
//! engine (`bench/export_iceberg` does).

use crate::engine::{Engine, SqlError};
use crate::manifest::{MANIFEST_VERSION, Manifest, ManifestColumn, ManifestFile};
use crate::mode::Mode;
use crate::plan::Plan;
use crate::project::Config;
use crate::project::settings::{ExportConfig, Grain, Split};
use crate::sql::{literal, quote};
use crate::templating::{Phase, QueryResult, QueryRunner, RenderContext};
use anyhow::{Context, Result, anyhow, bail};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The storage format of exported files. DuckDB 1.5 can write newer formats
/// (`v1.5.0`) that the dashboard's DuckDB-WASM 1.32.0 (DuckDB 1.4.3) refuses
/// to open, so the version is pinned instead of left to the library default.
pub const STORAGE_VERSION: &str = "v1.4.0";

/// GitHub refuses files over 100 MiB in a push (and the Git Data API a blob).
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Above this a file still publishes, with a warning to split it before it
/// reaches the limit.
pub const WARN_FILE_BYTES: u64 = 80 * 1024 * 1024;

/// The datasets `mode` writes: `ci` all of them; the others those whose
/// `modes` name them (by default `backfill` and `import`).
pub fn datasets_for(plan: &Plan, mode: Mode) -> Vec<&ExportConfig> {
    plan.project
        .settings
        .exports
        .iter()
        .filter(|e| e.runs_in(mode))
        .collect()
}

/// The site already published, as far as an export may keep its files.
#[derive(Debug, Clone)]
pub struct PublishedSite {
    /// Its manifest, listing only the files still there as listed.
    pub manifest: Manifest,
    /// Files its manifest lists that a destination no longer holds as
    /// listed: the export writes their periods again.
    pub missing: Vec<ManifestFile>,
    /// The folder holding those files when the site is local (`--site-dir`):
    /// kept files are linked from it into the staging folder, so the staging
    /// folder is the whole site. `None` for a branch: kept files stay out of
    /// the staging folder.
    pub dir: Option<PathBuf>,
}

/// The current time as the manifest writes it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Exports every dataset `mode` writes into `out_dir` (`data/*.duckdb` and
/// `manifest.json`) from the models in `engine`, and returns the manifest.
///
/// The models the datasets `ref()` must exist in the engine's database; in
/// `import` mode nothing builds them, so this is where the warehouse's tables
/// have to be available (see `pipeline::run_import`).
///
/// `previous` is the site already published: a file whose fingerprint it
/// lists for the same path is kept (not written, its entry reused). Returns
/// the manifest and the paths of the files kept.
pub fn export_site(
    engine: &Engine,
    plan: &Plan,
    mode: Mode,
    out_dir: &Path,
    previous: Option<&PublishedSite>,
) -> Result<(Manifest, Vec<String>)> {
    let data_dir = out_dir.join("data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let exported_at = now_rfc3339();
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        project: plan.project.name.clone(),
        exported_at: exported_at.clone(),
        files: Vec::new(),
        summary: None,
        warnings: Vec::new(),
    };
    // CREATE TABLE … ORDER BY keeps the order only while insertion order is
    // preserved; a target may have turned that off to save memory.
    let insertion_order = engine
        .query_rows("SELECT current_setting('preserve_insertion_order')", None)
        .map_err(|e| anyhow!(e))?
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    engine
        .execute_batch("SET preserve_insertion_order = true")
        .map_err(|e| anyhow!(e))?;
    let runner: Arc<dyn QueryRunner> = Arc::new(engine.clone());
    let mut result = Ok(());
    let mut kept = Vec::new();
    for dataset in datasets_for(plan, mode) {
        let started = std::time::Instant::now();
        let recorder = Recorder::new(engine);
        let target = Target {
            out_dir,
            exported_at: &exported_at,
            previous,
            dashboard: plan.project.settings.dashboard.as_ref(),
        };
        let exported = export_dataset(&recorder, plan, &runner, dataset, &target, &mut kept);
        // Written even when the export failed: the statements show where.
        let recorded = recorder.write(&compiled_path(plan, &dataset.name));
        match exported.and_then(|files| recorded.map(|()| files)) {
            Ok((files, warnings)) => {
                let rows: u64 = files.iter().map(|f| f.rows).sum();
                let written: Vec<&ManifestFile> =
                    files.iter().filter(|f| !kept.contains(&f.path)).collect();
                let bytes: u64 = written.iter().map(|f| f.bytes).sum();
                tracing::info!(
                    "export `{}`: {} files, {rows} rows; {} written ({:.2} MB), {} unchanged and kept, in {:.2}s",
                    dataset.name,
                    files.len(),
                    written.len(),
                    bytes as f64 / 1e6,
                    files.len() - written.len(),
                    started.elapsed().as_secs_f64()
                );
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                manifest.files.extend(files);
                manifest.warnings.extend(warnings);
            }
            Err(e) => {
                result = Err(e.context(format!("export `{}`", dataset.name)));
                break;
            }
        }
    }
    if !insertion_order {
        let _ = engine.execute_batch("SET preserve_insertion_order = false");
    }
    result?;
    // The time of the newest file: a run that kept every file writes the
    // same manifest as before (so a publish changes nothing).
    if let Some(newest) = manifest.files.iter().map(|f| f.exported_at.as_str()).max() {
        manifest.exported_at = newest.to_string();
    }
    let path = out_dir.join("manifest.json");
    std::fs::write(&path, manifest.to_json())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((manifest, kept))
}

/// Where the statements of `dataset`'s export are written.
pub fn compiled_path(plan: &Plan, dataset: &str) -> PathBuf {
    plan.compiled_path(&Path::new("exports").join(format!("{dataset}.sql")))
}

/// The engine as one dataset's export uses it, keeping every statement run.
struct Recorder<'a> {
    engine: &'a Engine,
    statements: RefCell<Vec<String>>,
}

impl<'a> Recorder<'a> {
    fn new(engine: &'a Engine) -> Recorder<'a> {
        Recorder {
            engine,
            statements: RefCell::new(Vec::new()),
        }
    }

    fn record(&self, sql: &str) {
        let sql = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
        self.statements.borrow_mut().push(format!("{sql};\n"));
    }

    fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        self.record(sql);
        self.engine.execute_batch(sql)
    }

    fn query_rows(&self, sql: &str, limit: Option<usize>) -> Result<QueryResult, SqlError> {
        self.record(sql);
        self.engine.query_rows(sql, limit)
    }

    fn columns_of(&self, relation_sql: &str) -> Result<Vec<(String, String)>, SqlError> {
        self.record(&format!("DESCRIBE {relation_sql}"));
        self.engine.columns_of(relation_sql)
    }

    /// Writes the statements run so far to `path`, one after another.
    fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, self.statements.borrow().join("\n"))
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Renders a dataset's SQL like a model's, and checks the models it reads
/// exist in the engine.
fn render(
    engine: &Engine,
    plan: &Plan,
    runner: &Arc<dyn QueryRunner>,
    dataset: &ExportConfig,
) -> Result<Rendered> {
    let origin = format!("analytics.yml exports `{}`", dataset.name);
    let ctx = RenderContext {
        phase: Phase::Execute,
        node_name: dataset.name.clone(),
        this: None,
        is_incremental: false,
        config: Config::default(),
        relations: plan.relations.clone(),
        runner: Some(runner.clone()),
        files: None,
    };
    let rendered = plan.templater.render(&origin, &dataset.sql, &ctx)?;
    let mut models = Vec::new();
    for model in &rendered.captured.refs {
        let Some(relation) = plan.relations.get(model) else {
            let hint = plan
                .project
                .closest_model(model)
                .map(|c| format!(" — did you mean `{c}`?"))
                .unwrap_or_default();
            bail!("ref('{model}'): no model named `{model}`{hint}");
        };
        if engine.relation_kind(relation)?.is_none() {
            bail!(
                "it reads model `{model}` ({relation}), which target `{}` does not hold: \
                 build it first (ci, intraday or backfill mode) or point --target at the \
                 database that has it",
                plan.target_name
            );
        }
        models.push((model.clone(), relation.clone()));
    }
    Ok(Rendered {
        sql: rendered
            .sql
            .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
            .to_string(),
        models,
        reads_sources: !rendered.captured.sources.is_empty()
            || !rendered.captured.ingest_sources.is_empty(),
    })
}

/// A dataset's rendered query and what it reads.
struct Rendered {
    sql: String,
    /// The models it `ref()`s: name and relation.
    models: Vec<(String, crate::sql::Relation)>,
    /// Whether it also reads `source()`s or ingested files.
    reads_sources: bool,
}

/// Where a dataset's files go, and what the published site already holds.
struct Target<'a> {
    out_dir: &'a Path,
    exported_at: &'a str,
    previous: Option<&'a PublishedSite>,
    /// The dashboard whose rollups the files of its grains' datasets hold.
    dashboard: Option<&'a crate::dashboard::DashboardConfig>,
}

/// One output column of the shaped query.
struct OutColumn {
    name: String,
    expr: String,
}

/// Exports one dataset; returns its files and warnings.
fn export_dataset(
    engine: &Recorder,
    plan: &Plan,
    runner: &Arc<dyn QueryRunner>,
    d: &ExportConfig,
    target: &Target,
    kept: &mut Vec<String>,
) -> Result<(Vec<ManifestFile>, Vec<String>)> {
    let rendered = render(engine.engine, plan, runner, d)?;
    // Each stored table the query reads is loaded once, all at once, for
    // the whole export: its snapshot (`as_of`), its changes since the
    // published files and the files read all come from that one load.
    let relations: Vec<&crate::sql::Relation> = rendered.models.iter().map(|(_, r)| r).collect();
    engine
        .engine
        .pin_stored(&relations)
        .context("loading the stored tables the export reads")?;
    let result = export_pinned(engine, &rendered, d, target, kept);
    engine.engine.unpin_stored();
    result
}

fn export_pinned(
    engine: &Recorder,
    rendered: &Rendered,
    d: &ExportConfig,
    target: &Target,
    kept: &mut Vec<String>,
) -> Result<(Vec<ManifestFile>, Vec<String>)> {
    let mut reads = Reads {
        engine: engine.engine,
        rendered,
        narrowed: false,
        current: Current::Stream,
    };
    let result = export_rendered(engine, &mut reads, d, target, kept);
    // Views read within some dates go back to the whole table for what
    // comes next (another dataset, another stage).
    if reads.narrowed {
        for (model, relation) in &rendered.models {
            engine
                .engine
                .attach_stored(relation)
                .with_context(|| format!("reading model `{model}` ({relation}) again"))?;
        }
    }
    result
}

/// How the models a dataset reads are read: whole tables, or only the data
/// files that can hold some dates.
struct Reads<'a> {
    engine: &'a Engine,
    rendered: &'a Rendered,
    /// Whether a view was last pointed at some dates only.
    narrowed: bool,
    /// What the views read now.
    current: Current,
}

/// What the views of the models a dataset reads point at.
#[derive(Debug, Clone, PartialEq)]
enum Current {
    /// As attached: streaming each whole table.
    Stream,
    /// Local copies of every data file.
    All,
    /// Local copies of the data files whose bounds overlap these dates.
    Within(Vec<(chrono::NaiveDate, chrono::NaiveDate)>),
}

impl Current {
    /// Whether the views already read every row dated within `ranges`
    /// (every file that can hold such a row is among those read): all
    /// files, or files overlapping dates that cover `ranges`. The export's
    /// queries filter on the dates themselves, so reading more files than
    /// needed changes no result.
    fn covers(&self, ranges: &[(chrono::NaiveDate, chrono::NaiveDate)]) -> bool {
        match self {
            Current::Stream => false,
            Current::All => true,
            Current::Within(read) => {
                let merged = merge_ranges(read.clone());
                ranges.iter().all(|(from, to)| {
                    merged
                        .iter()
                        .any(|(first, last)| first <= from && to <= last)
                })
            }
        }
    }
}

/// `ranges` sorted, overlapping and adjacent ones merged.
fn merge_ranges(
    mut ranges: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
) -> Vec<(chrono::NaiveDate, chrono::NaiveDate)> {
    ranges.sort();
    let mut merged: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
    for (from, to) in ranges {
        match merged.last_mut() {
            Some(last) if from <= last.1.succ_opt().unwrap_or(last.1) => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

impl Reads<'_> {
    /// Every model's whole table (local copies where possible).
    fn all(&mut self) -> Result<()> {
        if self.current == Current::All {
            return Ok(());
        }
        for (model, relation) in &self.rendered.models {
            if self.narrowed {
                self.engine
                    .attach_stored(relation)
                    .with_context(|| format!("reading model `{model}` ({relation})"))?;
            }
            // Exports read whole tables: DuckDB's own Parquet reader over
            // local copies beats streaming them (see warehouse::local_copy).
            self.engine
                .read_stored_locally(relation)
                .with_context(|| format!("reading model `{model}` ({relation})"))?;
        }
        self.narrowed = false;
        self.current = Current::All;
        Ok(())
    }

    /// Only the data files whose bounds of `column` overlap `ranges`, the
    /// rows of those dates being all the export reads (README "Project
    /// format": the column dates the rows exported under it).
    fn within(
        &mut self,
        column: &str,
        ranges: &[(chrono::NaiveDate, chrono::NaiveDate)],
    ) -> Result<()> {
        // The restaged periods usually lie within the dates first read (the
        // changed dates and the newest published day): no second plan.
        if self.current.covers(ranges) {
            return Ok(());
        }
        for (model, relation) in &self.rendered.models {
            self.narrowed = true;
            self.engine
                .read_stored_within(relation, column, ranges)
                .with_context(|| format!("reading model `{model}` ({relation})"))?;
        }
        self.current = Current::Within(ranges.to_vec());
        Ok(())
    }
}

fn export_rendered(
    engine: &Recorder,
    reads: &mut Reads,
    d: &ExportConfig,
    target: &Target,
    kept: &mut Vec<String>,
) -> Result<(Vec<ManifestFile>, Vec<String>)> {
    let rendered = reads.rendered;
    let sql = rendered.sql.clone();
    // The snapshot of each stored table the query reads, taken before it
    // is read: the files written record it (`as_of`), and the next export
    // restages only what changed since (a commit landing in between is
    // then counted twice, never missed).
    let mut as_of = Vec::new();
    for (model, relation) in &rendered.models {
        match engine.engine.stored_snapshot(relation) {
            Ok(Some(id)) => as_of.push(format!("{model}={id}")),
            Ok(None) => as_of.clear(),
            Err(e) => {
                tracing::debug!("export `{}`: no snapshot of `{model}`: {e:#}", d.name);
                as_of.clear();
            }
        }
        if as_of.is_empty() {
            break;
        }
    }
    let as_of =
        (!as_of.is_empty() && as_of.len() == rendered.models.len()).then(|| as_of.join(","));
    let columns = engine
        .columns_of(&format!("SELECT * FROM (\n{sql}\n) AS __q"))
        .map_err(|e| anyhow!("the query does not run: {e}"))?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let has = |c: &str| names.contains(&c);
    let listed = || names.join(", ");

    let date_col = match &d.date_column {
        Some(c) if has(c) => Some(c.clone()),
        Some(c) => bail!(
            "date_column `{c}` is not a column of the query (it returns {})",
            listed()
        ),
        None if has("date") => Some("date".to_string()),
        None => None,
    };
    if date_col.is_none() && (d.window_days.is_some() || d.split.is_some()) {
        bail!(
            "window_days and split need a DATE column: name it `date` or set date_column (the query returns {})",
            listed()
        );
    }
    if let Some(tc) = &d.time_column {
        let Some((_, ty)) = columns.iter().find(|(n, _)| n == tc) else {
            bail!(
                "time_column `{tc}` is not a column of the query (it returns {})",
                listed()
            );
        };
        if !ty.starts_with("TIMESTAMP") {
            bail!("time_column `{tc}` is {ty}; it must be a TIMESTAMP");
        }
    }
    for measure in d.aggregate.keys() {
        if !has(measure) {
            bail!(
                "aggregate names `{measure}`, which the query does not return (it returns {})",
                listed()
            );
        }
    }
    if d.grain == Grain::Day && date_col.is_none() {
        bail!("grain `day` needs a DATE column: name it `date` or set date_column");
    }

    // Shape: window, grain, aggregates.
    let mut out: Vec<OutColumn> = Vec::new();
    if let Some(dc) = &date_col {
        out.push(OutColumn {
            name: "date".into(),
            expr: format!("CAST({} AS DATE)", quote(dc)),
        });
    }
    if let Some(tc) = d.time_column.as_ref().filter(|_| d.grain != Grain::Day) {
        let bucket = match d.grain.bucket() {
            Some(interval) => format!("time_bucket(INTERVAL '{interval}', {})", quote(tc)),
            None => quote(tc),
        };
        out.push(OutColumn {
            name: "time".into(),
            expr: format!("CAST(hour({bucket}) * 100 + minute({bucket}) AS SMALLINT)"),
        });
    }
    let mut keys: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    for name in &names {
        if Some(*name) == date_col.as_deref() || Some(*name) == d.time_column.as_deref() {
            continue;
        }
        if out.iter().any(|c| c.name == *name) {
            bail!(
                "the query returns a column `{name}` as well as the date/time column written under that name; rename it"
            );
        }
        let timestamp = columns
            .iter()
            .any(|(n, t)| n == name && t.starts_with("TIMESTAMP"));
        if timestamp && d.grain != Grain::Native && !d.aggregate.contains_key(*name) {
            bail!(
                "column `{name}` is a TIMESTAMP and would be a group key at grain `{}`, \
                 so nothing would aggregate: set `time_column: {name}` (or drop it from the query)",
                d.grain.name()
            );
        }
        match d.aggregate.get(*name) {
            Some(agg) if d.grain != Grain::Native => out.push(OutColumn {
                name: name.to_string(),
                expr: format!("{}({})", agg.function(), quote(name)),
            }),
            _ => {
                keys.push(name.to_string());
                out.push(OutColumn {
                    name: name.to_string(),
                    expr: quote(name),
                });
            }
        }
    }
    // What the stored tables read changed since the published files
    // (manifests only); then the models are read: only the data files that
    // can hold those dates (and the newest published date, for the window)
    // when that is known, else every file.
    let changes = match date_col.as_deref() {
        Some(dc) => changed_since_published(engine.engine, d, rendered, dc, target),
        None => Err("the dataset has no date column".to_string()),
    };
    let published_newest = target
        .previous
        .and_then(|site| {
            site.manifest
                .files
                .iter()
                .filter(|f| f.dataset == d.name)
                .filter_map(|f| f.max_date.clone())
                .max()
        })
        .as_deref()
        .and_then(parse_date);
    match (&changes, date_col.as_deref()) {
        (Ok(changed), Some(dc)) => {
            let mut dates = changed.ranges.clone();
            if d.window_days.is_some()
                && let Some(day) = published_newest
            {
                dates.push((day, day));
            }
            if !dates.is_empty() {
                reads.within(dc, &dates)?;
            }
        }
        _ => reads.all()?,
    }
    // The window's first date is looked up first, so the main query filters
    // on a constant DuckDB can push down into the models' scans.
    let mut newest_date = None;
    let window = match (d.window_days, &date_col) {
        (Some(n), Some(dc)) => {
            let q = quote(dc);
            let newest_since = |since: Option<&str>| -> Result<Option<String>> {
                let filter = since
                    .map(|day| format!(" WHERE CAST({q} AS DATE) >= DATE {}", literal(day)))
                    .unwrap_or_default();
                Ok(engine
                    .query_rows(
                        &format!(
                            "SELECT CAST(max(CAST({q} AS DATE)) AS VARCHAR) FROM (\n{sql}\n) AS __q{filter}"
                        ),
                        None,
                    )
                    .map_err(|e| anyhow!("finding the newest date: {e}"))?
                    .rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_str())
                    .map(str::to_string))
            };
            // The newest date the published files hold bounds the search: a
            // filter DuckDB pushes into the models' scans, so an intraday
            // cycle reads the newest day, not all history. Exact: when a row
            // is that new, the newest row is too; else all rows are read.
            let published = target.previous.and_then(|site| {
                site.manifest
                    .files
                    .iter()
                    .filter(|f| f.dataset == d.name)
                    .filter_map(|f| f.max_date.clone())
                    .max()
            });
            let mut newest = match published.as_deref() {
                Some(day) => newest_since(Some(day))?,
                None => None,
            };
            if newest.is_none() {
                // Nothing as new as the published files: all rows.
                reads.all()?;
                newest = newest_since(None)?;
            }
            newest_date = newest.as_deref().and_then(parse_date);
            match newest {
                Some(day) => format!(
                    "WHERE CAST({q} AS DATE) > DATE {} - INTERVAL {n} DAY",
                    literal(&day)
                ),
                None => String::new(),
            }
        }
        _ => String::new(),
    };
    let select: Vec<String> = out
        .iter()
        .map(|c| format!("{} AS {}", c.expr, quote(&c.name)))
        .collect();
    let group = if d.grain != Grain::Native && !d.aggregate.is_empty() {
        "GROUP BY ALL"
    } else {
        ""
    };
    let shaped = format!(
        "WITH __base AS (\n{sql}\n)\nSELECT {} FROM __base {window} {group}",
        select.join(", ")
    );

    // Compact types.
    let shaped_cols = engine
        .columns_of(&format!("SELECT * FROM ({shaped}) AS __s"))
        .map_err(|e| anyhow!("shaping the rows failed: {e}"))?;
    let compact: Vec<String> = shaped_cols
        .iter()
        .map(|(name, ty)| {
            let q = quote(name);
            if !d.compact {
                return q;
            }
            if ty == "DOUBLE" || ty.starts_with("DECIMAL") {
                format!("CAST({q} AS REAL) AS {q}")
            } else if ty == "HUGEINT" {
                format!("CAST({q} AS BIGINT) AS {q}")
            } else if ty == "TIME" {
                format!("CAST(hour({q}) * 100 + minute({q}) AS SMALLINT) AS {q}")
            } else {
                q
            }
        })
        .collect();
    let engine_version = duckdb_version(engine)?;
    // The dashboard's rollups, stored next to the rows (dashboard/rollups.rs).
    let shaped_names: Vec<&str> = shaped_cols.iter().map(|(n, _)| n.as_str()).collect();
    let rollup_signature = crate::dashboard::rollups::signature(
        &crate::dashboard::rollups::stored_for(target.dashboard, &d.name, &shaped_names),
    );
    // Everything that shapes the files but the window's dates: published
    // files made by another definition are never kept without restaging.
    let definition = crate::hash::sha256_hex(
        format!(
            "analytics export definition 1\nduckdb {engine_version}\nstorage {STORAGE_VERSION}\n\
             table {}\nsql {sql}\nselect {}\n{group}\ncompact {}\nwindow {:?}\nsplit {:?}\n\
             sort {:?}\nkeys {:?}\n{rollup_signature}",
            d.name,
            select.join(", "),
            compact.join(", "),
            d.window_days,
            d.split,
            d.sort,
            keys
        )
        .as_bytes(),
    )[..16]
        .to_string();
    let suffix = match &as_of {
        Some(ids) => format!(" definition:{definition} as_of:{ids}"),
        None => format!(" definition:{definition}"),
    };
    let restage = match changes {
        Ok(changed) => restage_plan(d, changed, &definition, newest_date),
        Err(why) => Restage::All(why),
    };
    let (periods, mut keep) = match restage {
        Restage::All(why) => {
            tracing::info!("export `{}`: every file restaged ({why})", d.name);
            (None, Vec::new())
        }
        Restage::Periods { ranges, keep, why } => {
            tracing::info!(
                "export `{}`: {} date range(s) restaged, {} published file(s) kept as they are ({why})",
                d.name,
                ranges.len(),
                keep.len()
            );
            (Some(ranges), keep)
        }
    };
    for entry in &mut keep {
        // Current as of the same snapshots as the files written now.
        entry.fingerprint = entry
            .fingerprint
            .as_deref()
            .map(|fp| format!("{}{suffix}", rows_fingerprint(fp)));
        if let Some(dir) = target.previous.and_then(|site| site.dir.as_ref()) {
            link_or_copy(&dir.join(&entry.path), &target.out_dir.join(&entry.path))?;
        }
        kept.push(entry.path.clone());
    }
    if periods.as_ref().is_some_and(|r| r.is_empty()) {
        return Ok((keep, Vec::new()));
    }
    match (&periods, &date_col) {
        (Some(ranges), Some(dc)) => reads.within(dc, ranges)?,
        _ => reads.all()?,
    }
    let shaped = match (&periods, &date_col) {
        (Some(ranges), Some(dc)) => {
            let q = quote(dc);
            let within: Vec<String> = ranges
                .iter()
                .map(|(from, to)| {
                    format!(
                        "CAST({q} AS DATE) BETWEEN DATE '{}' AND DATE '{}'",
                        from.format("%Y-%m-%d"),
                        to.format("%Y-%m-%d")
                    )
                })
                .collect();
            let join = if window.is_empty() { "WHERE" } else { "AND" };
            format!(
                "WITH __base AS (\n{sql}\n)\nSELECT {} FROM __base {window} {join} ({}) {group}",
                select.join(", "),
                within.join(" OR ")
            )
        }
        _ => shaped,
    };
    let staged = quote(&format!("__export_{}", d.name));
    engine
        .execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE {staged} AS SELECT {} FROM ({shaped}) AS __s",
            compact.join(", ")
        ))
        .map_err(|e| anyhow!("{e}"))?;
    let result = write_files(engine, d, &staged, &keys, target, kept, &suffix);
    let _ = engine.execute_batch(&format!("DROP TABLE IF EXISTS temp.main.{staged}"));
    let (mut files, warnings) = result?;
    if !keep.is_empty() {
        files.append(&mut keep);
        files.sort_by(|a, b| a.period.cmp(&b.period).then_with(|| a.path.cmp(&b.path)));
    }
    Ok((files, warnings))
}

/// The part of a file's fingerprint that stands for its rows and shape
/// (without the definition and the snapshots it was exported as of).
fn rows_fingerprint(fingerprint: &str) -> &str {
    fingerprint
        .split_once(" definition:")
        .map_or(fingerprint, |(rows, _)| rows)
}

/// A file's fingerprint without the snapshots it was exported as of: its
/// rows, shape and definition.
fn without_as_of(fingerprint: &str) -> &str {
    fingerprint
        .split_once(" as_of:")
        .map_or(fingerprint, |(rest, _)| rest)
}

/// What an export of a dataset restages.
enum Restage {
    /// Every file of the dataset (the rows are all staged, then each
    /// file's fingerprint decides whether it is written), for this reason.
    All(String),
    /// Only these inclusive date ranges (whole periods of a split dataset;
    /// possibly none); the published files in `keep` stay as they are.
    Periods {
        ranges: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
        keep: Vec<ManifestFile>,
        why: String,
    },
}

fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// The first day of the period `day` falls in, and of the next one.
fn period_bounds(split: Split, day: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let months = |first_month: u32, n: u32| {
        let start = chrono::NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day);
        let next = start
            .checked_add_months(chrono::Months::new(n))
            .unwrap_or(chrono::NaiveDate::MAX);
        (start, next)
    };
    match split {
        Split::Day => (day, day.succ_opt().unwrap_or(chrono::NaiveDate::MAX)),
        Split::Month => months(day.month(), 1),
        Split::Quarter => months((day.month() - 1) / 3 * 3 + 1, 3),
        Split::HalfYear => months(if day.month() <= 6 { 1 } else { 7 }, 6),
        Split::Year => months(1, 12),
    }
}

/// Decides which periods of dataset `d` this export restages, from what
/// changed in the stored tables it reads since the published files were
/// exported (README "Exports: what a run rewrites"). Falls back to
/// restaging everything whenever that cannot be told exactly: no published
/// files of the dataset, another definition (query, grain, columns, DuckDB),
/// a source or a model not stored in Iceberg read, a changed table without
/// the date column or without its bounds, a snapshot expired, or a newest
/// date older than the published one.
fn restage_plan(
    d: &ExportConfig,
    changed: Changed,
    definition: &str,
    newest: Option<chrono::NaiveDate>,
) -> Restage {
    let all = |why: String| Restage::All(why);
    let Changed {
        previous,
        ranges,
        definitions,
        missing,
    } = changed;
    if definitions.iter().any(|def| def != definition) {
        return all("the published files were made by another definition".into());
    }
    let mut ranges = ranges;
    let changed = ranges.len() - missing;
    // The window now and as published: dates before its start are dropped.
    let mut window_moved = false;
    let mut start = None;
    if let Some(n) = d.window_days {
        let published_newest = previous.iter().filter_map(|f| f.max_date.as_deref()).max();
        let (Some(newest), Some(published_newest)) =
            (newest, published_newest.and_then(parse_date))
        else {
            return all("no newest date to window by".into());
        };
        if newest < published_newest {
            return all("the newest date is older than the published one".into());
        }
        let back = chrono::Duration::days(i64::from(n.max(1)) - 1);
        start = Some(newest - back);
        window_moved = newest != published_newest;
        ranges = ranges
            .into_iter()
            .filter_map(|(from, to)| {
                let from = start.map_or(from, |s| from.max(s));
                (from <= to.min(newest)).then_some((from, to.min(newest)))
            })
            .collect();
    }
    let mut restage = restage_periods(d, previous, ranges, changed, start, window_moved);
    if missing > 0
        && let Restage::Periods { why, .. } = &mut restage
    {
        why.push_str(&format!(
            ", {missing} published file(s) missing at the destination"
        ));
    }
    restage
}

/// What changed in the stored tables a dataset reads since its published
/// files were exported.
struct Changed {
    /// The published files of the dataset.
    previous: Vec<ManifestFile>,
    /// Inclusive date ranges that changed.
    ranges: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// The definitions the published files were made by.
    definitions: Vec<String>,
    /// Published files of the dataset the destination lost (their dates
    /// are among `ranges`).
    missing: usize,
}

/// The dates the stored tables `rendered` reads changed since the
/// snapshots the published files of `d` hold (their `as_of`), by the
/// bounds of each table's column `dc`; why not, when that cannot be told.
fn changed_since_published(
    engine: &Engine,
    d: &ExportConfig,
    rendered: &Rendered,
    dc: &str,
    target: &Target,
) -> std::result::Result<Changed, String> {
    let all = |why: String| Err(why);
    let previous: Vec<&ManifestFile> = target
        .previous
        .map(|site| {
            site.manifest
                .files
                .iter()
                .filter(|f| {
                    f.dataset == d.name
                        || f.dataset == crate::dashboard::rollups::dataset_of(&d.name)
                })
                .collect()
        })
        .unwrap_or_default();
    if previous.is_empty() {
        return all("no published file of the dataset".into());
    }
    if rendered.reads_sources {
        return all("the query reads a source, not only models".into());
    }
    // Every published file: one definition, as of the same snapshots.
    let mut definitions: Vec<String> = Vec::new();
    let mut published_as_of = None;
    for f in &previous {
        let tail = f
            .fingerprint
            .as_deref()
            .and_then(|fp| fp.split_once(" definition:"))
            .map(|(_, tail)| tail);
        let (def, ids) = match tail.map(|t| t.split_once(" as_of:")) {
            Some(Some((def, ids))) => (def, Some(ids)),
            Some(None) => (tail.unwrap_or_default(), None),
            None => ("", None),
        };
        if !definitions.iter().any(|known| known == def) {
            definitions.push(def.to_string());
        }
        let Some(ids) = ids else {
            return all("the published files do not say which snapshots they hold".into());
        };
        if published_as_of.is_some_and(|p| p != ids) {
            return all("the published files hold different snapshots".into());
        }
        published_as_of = Some(ids);
    }
    let snapshots: std::collections::BTreeMap<&str, i64> = published_as_of
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(model, id)| Some((model, id.parse().ok()?)))
        .collect();
    // A published file the destination lost (a publish stopped half-way, a
    // file deleted) is written again: its dates count as changed.
    let mut ranges = Vec::new();
    let mut missing = 0;
    for f in target
        .previous
        .iter()
        .flat_map(|site| &site.missing)
        .filter(|f| {
            f.dataset == d.name || f.dataset == crate::dashboard::rollups::dataset_of(&d.name)
        })
    {
        let dates = (
            f.min_date.as_deref().and_then(parse_date),
            f.max_date.as_deref().and_then(parse_date),
        );
        let (Some(min), Some(max)) = dates else {
            return all(format!(
                "published file {} is missing and has no dates",
                f.path
            ));
        };
        ranges.push((min, max));
        missing += 1;
    }
    for (model, rel) in &rendered.models {
        let Some(base) = snapshots.get(model.as_str()) else {
            return all(format!(
                "the published files do not say which snapshot of `{model}` they hold"
            ));
        };
        match engine.stored_changes_since(rel, *base, dc) {
            Ok(crate::warehouse::StoredChanges::Dates(r)) => ranges.extend(r),
            Ok(crate::warehouse::StoredChanges::Unknown(why)) => {
                return all(format!("model `{model}`: {why}"));
            }
            Err(e) => return all(format!("model `{model}`: {e:#}")),
        }
    }
    Ok(Changed {
        previous: previous.into_iter().cloned().collect(),
        ranges,
        definitions,
        missing,
    })
}

/// The periods of split dataset `d` to restage for the changed dates
/// `ranges` (already cut to the window starting at `start`), and the
/// published files to keep.
fn restage_periods(
    d: &ExportConfig,
    previous: Vec<ManifestFile>,
    ranges: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
    changed: usize,
    start: Option<chrono::NaiveDate>,
    window_moved: bool,
) -> Restage {
    let all = |why: String| Restage::All(why);
    let Some(split) = d.split else {
        // One file: restaged when anything in it changed.
        if !ranges.is_empty() || window_moved {
            return all("its one file changed".into());
        }
        return Restage::Periods {
            ranges: Vec::new(),
            keep: previous,
            why: "nothing it reads changed".into(),
        };
    };
    let mut periods: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
    for (from, to) in &ranges {
        let mut day = *from;
        while day <= *to {
            let (first, next) = period_bounds(split, day);
            periods.push((first, next));
            day = next;
        }
    }
    if let Some(s) = start
        && window_moved
    {
        // The period the window now starts in lost its first days.
        let (first, next) = period_bounds(split, s);
        if first < s {
            periods.push((first, next));
        }
    }
    periods.sort();
    periods.dedup();
    let mut keep = Vec::new();
    for f in previous {
        let Some(min) = f.min_date.as_deref().and_then(parse_date) else {
            return all(format!("published file {} has no dates", f.path));
        };
        let max = f.max_date.as_deref().and_then(parse_date).unwrap_or(min);
        if start.is_some_and(|s| max < s) {
            continue; // out of the window now
        }
        let (first, _) = period_bounds(split, min);
        if !periods.iter().any(|(p, _)| *p == first) {
            keep.push(f);
        }
    }
    // Consecutive periods staged as one range, cut to the window.
    let mut staged: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
    for (first, next) in periods {
        let first = start.map_or(first, |s| first.max(s));
        let last = next.pred_opt().unwrap_or(next);
        match staged.last_mut() {
            Some(prev) if prev.1.succ_opt() == Some(first) => prev.1 = last,
            _ => staged.push((first, last)),
        }
    }
    Restage::Periods {
        ranges: staged,
        keep,
        why: format!("{changed} changed date range(s) in the models it reads"),
    }
}

/// DuckDB's version (`SELECT version()`): part of what makes a file's bytes.
fn duckdb_version(engine: &Recorder) -> Result<String> {
    Ok(engine
        .query_rows("SELECT version()", None)
        .map_err(|e| anyhow!(e))?
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}

/// Puts the published file `from` at `to` in the staging folder: a hard
/// link (publish replaces files by renaming, never in place), else a copy.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if to.exists() {
        std::fs::remove_file(to).with_context(|| format!("removing {}", to.display()))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// The SQL expression naming the period a `date` falls in.
fn period_expr(split: Split) -> &'static str {
    match split {
        Split::Year => "strftime(\"date\", '%Y')",
        Split::HalfYear => {
            "strftime(\"date\", '%Y') || '_h' || CASE WHEN month(\"date\") <= 6 THEN '1' ELSE '2' END"
        }
        Split::Quarter => "strftime(\"date\", '%Y') || '_q' || quarter(\"date\")",
        Split::Month => "strftime(\"date\", '%Y_%m')",
        Split::Day => "strftime(\"date\", '%Y_%m_%d')",
    }
}

/// One period's rows in the staging table: how many, their dates, and the
/// order-independent sum of their row hashes.
struct PeriodStats {
    period: Option<String>,
    rows: u64,
    min_date: Option<String>,
    max_date: Option<String>,
    row_hash: String,
}

/// The fingerprint of a file: its rows (count and hash sum) and everything
/// else that shapes its bytes (table, columns, sort, storage version, the
/// DuckDB that writes it).
fn fingerprint(
    engine_version: &str,
    table: &str,
    columns: &[(String, String)],
    order: &str,
    stats: &PeriodStats,
    rollups: &str,
) -> String {
    let columns: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    let text = format!(
        "analytics export fingerprint 1\nduckdb {engine_version}\nstorage {STORAGE_VERSION}\n\
         table {table}\ncolumns {}\n{order}\nrows {}\nrow hash sum {}\n{rollups}",
        columns.join(", "),
        stats.rows,
        stats.row_hash
    );
    format!("sha256:{}", crate::hash::sha256_hex(text.as_bytes()))
}

/// Writes the staged rows into one file per period, keeping the published
/// file of a period whose fingerprint did not change.
fn write_files(
    engine: &Recorder,
    d: &ExportConfig,
    staged: &str,
    keys: &[String],
    target: &Target,
    kept: &mut Vec<String>,
    suffix: &str,
) -> Result<(Vec<ManifestFile>, Vec<String>)> {
    let columns = engine.columns_of(staged).map_err(|e| anyhow!(e))?;
    let has_date = columns.iter().any(|(n, _)| n == "date");
    let sort: Vec<String> = if d.sort.is_empty() {
        keys.to_vec()
    } else {
        for s in &d.sort {
            if !columns.iter().any(|(n, _)| n == s) {
                bail!(
                    "sort names `{s}`, which is not a column of the exported table ({})",
                    columns
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        d.sort.clone()
    };
    let order = if sort.is_empty() {
        String::new()
    } else {
        format!(
            "ORDER BY {}",
            sort.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
        )
    };
    let engine_version = duckdb_version(engine)?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let defs = crate::dashboard::rollups::stored_for(target.dashboard, &d.name, &names);
    let rollups = RollupsOf {
        signature: crate::dashboard::rollups::signature(&defs),
        defs: &defs,
        suffix,
    };
    // One scan of the staged rows for every period: rows, dates, row hashes.
    let dates = if has_date {
        "CAST(min(\"date\") AS VARCHAR), CAST(max(\"date\") AS VARCHAR)"
    } else {
        "NULL, NULL"
    };
    let hash_sum = "CAST(sum(hash(__r)) AS VARCHAR)";
    let stats_sql = match d.split {
        None => format!("SELECT NULL, count(*), {dates}, {hash_sum} FROM {staged} AS __r"),
        Some(split) => format!(
            "SELECT {} AS __period, count(*), {dates}, {hash_sum} FROM {staged} AS __r \
             WHERE \"date\" IS NOT NULL GROUP BY __period ORDER BY __period",
            period_expr(split)
        ),
    };
    let periods: Vec<PeriodStats> = engine
        .query_rows(&stats_sql, None)
        .map_err(|e| anyhow!("counting and hashing the rows of each file: {e}"))?
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).and_then(|v| v.as_str()).map(str::to_string);
            PeriodStats {
                period: text(0),
                rows: r.get(1).and_then(|v| v.as_u64()).unwrap_or(0),
                min_date: text(2),
                max_date: text(3),
                row_hash: text(4).unwrap_or_default(),
            }
        })
        .collect();
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for stats in periods {
        let (file_name, filter) = match (&stats.period, d.split) {
            (Some(p), Some(split)) => (
                format!("{}_{p}.duckdb", d.name),
                format!("WHERE {} = {}", period_expr(split), literal(p)),
            ),
            _ => (format!("{}.duckdb", d.name), String::new()),
        };
        let rel = format!("data/{file_name}");
        let rows_fp = fingerprint(&engine_version, &d.name, &columns, &order, &stats, "");
        let fingerprint = format!("{rows_fp}{suffix}");
        let entry = ManifestFile {
            dataset: d.name.clone(),
            path: rel.clone(),
            table: d.name.clone(),
            grain: d.grain.name().to_string(),
            period: stats.period.clone(),
            rows: stats.rows,
            bytes: 0,
            sha256: String::new(),
            min_date: stats.min_date.clone(),
            max_date: stats.max_date.clone(),
            columns: columns
                .iter()
                .map(|(n, t)| ManifestColumn {
                    name: n.clone(),
                    data_type: t.clone(),
                })
                .collect(),
            exported_at: target.exported_at.to_string(),
            fingerprint: Some(fingerprint),
        };
        let path = target.out_dir.join(&rel);
        if let Some(old) = keep_published(target, &entry, kept)? {
            // Same rows, same shape: the published file stays, byte for byte.
            let rollups_file = write_rollups_file(
                engine,
                &rollups,
                (&entry, old.bytes),
                &rows_fp,
                &format!("{staged} {filter}"),
                target,
                kept,
            )?;
            files.push(ManifestFile {
                bytes: old.bytes,
                sha256: old.sha256.clone(),
                exported_at: old.exported_at.clone(),
                ..entry
            });
            files.extend(rollups_file);
            continue;
        }
        remove_stale(&path)?;
        let alias = "__export_file";
        let write = format!(
            "ATTACH {} AS {alias} (STORAGE_VERSION '{STORAGE_VERSION}');\n\
             CREATE TABLE {alias}.main.{} AS SELECT * FROM {staged} {filter} {order};",
            literal(&path.to_string_lossy()),
            quote(&d.name),
        );
        let written = engine.execute_batch(&write);
        let detached = engine.execute_batch(&format!("DETACH {alias}"));
        written.map_err(|e| anyhow!("writing {rel}: {e}"))?;
        detached.map_err(|e| anyhow!("closing {rel}: {e}"))?;

        let (bytes, sha256) = crate::hash::hash_file(&path)?;
        let mb = bytes as f64 / 1e6;
        if bytes > MAX_FILE_BYTES {
            bail!(
                "{rel} is {mb:.1} MB, over GitHub's 100 MiB file limit; export smaller files: \
                 split it by a shorter period (split: quarter, month or day), shorten window_days, \
                 or aggregate to a coarser grain"
            );
        }
        if bytes > WARN_FILE_BYTES {
            warnings.push(format!(
                "export `{}`: {rel} is {mb:.1} MB, near GitHub's 100 MiB file limit; \
                 consider a smaller period (split: quarter or month)",
                d.name
            ));
        }
        let rollups_file = write_rollups_file(
            engine,
            &rollups,
            (&entry, bytes),
            &rows_fp,
            &format!("{staged} {filter}"),
            target,
            kept,
        )?;
        files.push(ManifestFile {
            bytes,
            sha256,
            ..entry
        });
        files.extend(rollups_file);
    }
    Ok((files, warnings))
}

/// The published file of `entry`'s path whose rows fingerprint is `entry`'s:
/// linked (or copied) from the previous site into the output and noted in
/// `kept`, so it stays byte for byte. `None` when the file must be written.
fn keep_published<'a>(
    target: &Target<'a>,
    entry: &ManifestFile,
    kept: &mut Vec<String>,
) -> Result<Option<&'a ManifestFile>> {
    let Some(site) = target.previous else {
        return Ok(None);
    };
    let Some(old) = site.manifest.files.iter().find(|f| {
        f.path == entry.path
            && f.fingerprint.as_deref().map(rows_fingerprint)
                == entry.fingerprint.as_deref().map(rows_fingerprint)
            && !f.sha256.is_empty()
    }) else {
        return Ok(None);
    };
    if let Some(dir) = &site.dir {
        link_or_copy(&dir.join(&entry.path), &target.out_dir.join(&entry.path))?;
    }
    kept.push(entry.path.clone());
    Ok(Some(old))
}

/// Removes what an earlier, unfinished write may have left at `path` (the
/// file and its WAL) before a file is written there.
fn remove_stale(path: &Path) -> Result<()> {
    for stale in [path.to_path_buf(), path.with_extension("duckdb.wal")] {
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    Ok(())
}

/// The rollups a dataset's files store (`dashboard/rollups.rs`): their
/// definitions, the signature of those, and the fingerprint suffix of the
/// export (its definition).
struct RollupsOf<'a> {
    defs: &'a [crate::dashboard::rollups::StoredRollup],
    signature: String,
    suffix: &'a str,
}

/// The rollups file of one period (`dashboard/rollups.rs`), next to its rows
/// file `rows` of `rows_bytes` bytes (whose fingerprint without the
/// definition is `rows_fp`): the published one kept when its rows and
/// rollups did not change, else written from the period's staged rows
/// `from`. `None` when the dataset stores no rollups, or when the file would
/// not be smaller than the rows (few units: the page then reads the rows,
/// which cost it fewer bytes); that decision stands while the rows file is
/// kept under the same definition (its rollups are not written again).
fn write_rollups_file(
    engine: &Recorder,
    rollups_of: &RollupsOf,
    (rows, rows_bytes): (&ManifestFile, u64),
    rows_fp: &str,
    from: &str,
    target: &Target,
    kept: &mut Vec<String>,
) -> Result<Option<ManifestFile>> {
    use crate::dashboard::rollups;
    let RollupsOf {
        defs: rollups,
        signature,
        suffix,
    } = rollups_of;
    if rollups.is_empty() {
        return Ok(None);
    }
    let rel = rollups::file_of(&rows.path);
    let fp = crate::hash::sha256_hex(format!("rollups of {rows_fp}\n{signature}").as_bytes());
    let entry = ManifestFile {
        dataset: rollups::dataset_of(&rows.dataset),
        path: rel.clone(),
        table: rollups[0].table.clone(),
        rows: 0,
        columns: Vec::new(),
        fingerprint: Some(format!("sha256:{fp}{suffix}")),
        ..rows.clone()
    };
    let path = target.out_dir.join(&rel);
    // The rows file published as it is now (same rows, same definition:
    // same rollups) had no rollups file, listed or lost: it was not smaller
    // than the rows, and would not be now.
    if let Some(site) = target.previous
        && site.manifest.files.iter().any(|f| {
            f.path == rows.path
                && f.fingerprint.as_deref().map(without_as_of).is_some()
                && f.fingerprint.as_deref().map(without_as_of)
                    == rows.fingerprint.as_deref().map(without_as_of)
        })
        && !site
            .manifest
            .files
            .iter()
            .chain(&site.missing)
            .any(|f| f.path == rel)
    {
        return Ok(None);
    }
    if let Some(old) = keep_published(target, &entry, kept)? {
        return Ok(Some(ManifestFile {
            rows: old.rows,
            bytes: old.bytes,
            sha256: old.sha256.clone(),
            exported_at: old.exported_at.clone(),
            ..entry
        }));
    }
    remove_stale(&path)?;
    let alias = "__export_rollups";
    let count: Vec<String> = rollups
        .iter()
        .map(|r| format!("(SELECT count(*) FROM {alias}.main.{})", quote(&r.table)))
        .collect();
    let written = engine
        .execute_batch(&format!(
            "ATTACH {} AS {alias} (STORAGE_VERSION '{STORAGE_VERSION}', BLOCK_SIZE {});\n{}",
            literal(&path.to_string_lossy()),
            rollups::BLOCK_SIZE,
            rollups::create_sql(rollups, alias, from)
        ))
        .and_then(|()| engine.query_rows(&format!("SELECT {}", count.join(" + ")), None));
    let detached = engine.execute_batch(&format!("DETACH {alias}"));
    let counted = written.map_err(|e| anyhow!("writing {rel}: {e}"))?;
    detached.map_err(|e| anyhow!("closing {rel}: {e}"))?;
    let (bytes, sha256) = crate::hash::hash_file(&path)?;
    if bytes >= rows_bytes {
        tracing::info!(
            "{rel} not written: {bytes} bytes, not smaller than its rows file ({rows_bytes} bytes); the page reads the rows"
        );
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        return Ok(None);
    }
    Ok(Some(ManifestFile {
        rows: counted
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        bytes,
        sha256,
        ..entry
    }))
}

#[cfg(test)]
mod tests {
    use super::{Current, merge_ranges};
    use chrono::NaiveDate;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    #[test]
    fn a_second_read_is_skipped_only_when_the_dates_read_cover_it() {
        // As attached (streaming), nothing is covered: the first read plans.
        assert!(!Current::Stream.covers(&[(day(3), day(3))]));
        // Every file read: any dates are covered.
        assert!(Current::All.covers(&[(day(1), day(9))]));
        // Files overlapping Jan 2–3 and Jan 5: Jan 3 and Jan 2–3 are
        // covered; Jan 4, Jan 3–5 (a gap) and Jan 1 are not.
        let read = Current::Within(vec![(day(5), day(5)), (day(2), day(3))]);
        assert!(read.covers(&[(day(3), day(3))]));
        assert!(read.covers(&[(day(2), day(3)), (day(5), day(5))]));
        assert!(!read.covers(&[(day(4), day(4))]));
        assert!(!read.covers(&[(day(3), day(5))]));
        assert!(!read.covers(&[(day(1), day(2))]));
        assert!(!read.covers(&[(day(3), day(3)), (day(6), day(6))]));
        // Adjacent days read separately cover the range they make.
        let read = Current::Within(vec![(day(1), day(1)), (day(2), day(2))]);
        assert!(read.covers(&[(day(1), day(2))]));
    }

    #[test]
    fn date_ranges_merge_when_they_overlap_or_touch() {
        assert_eq!(
            merge_ranges(vec![
                (day(7), day(8)),
                (day(1), day(2)),
                (day(3), day(4)),
                (day(4), day(5))
            ]),
            vec![(day(1), day(5)), (day(7), day(8))]
        );
    }
}
