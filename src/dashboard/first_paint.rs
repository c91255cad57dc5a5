//! The first paint's summary (field `summary` of `manifest.json`): the KPIs
//! and the chart series of the view the page opens with (`default_days`
//! ending at the newest data, the grain the page would choose, no filters),
//! computed here with DuckDB from the exported files and the same
//! `dashboard:` configuration.
//! The page draws it before DuckDB-WASM has compiled, marked "preview", and
//! replaces it with its own queries once DuckDB is ready.
//!
//! The page's query builder (`dashboard-template/assets/app.js`: `main`,
//! `setRange`, `chooseGrain`, `filesInRange`, `relation`, `baseSql`,
//! `renderKpis`, `renderTimeChart`, `renderBarChart`, `checkLastDay`) is the
//! specification: the SQL below is built the same way, so the numbers are the
//! ones the page computes after take-over. The summary names the files (and
//! their sha256) it was computed from and the range and grain, so the page
//! uses it only while the manifest still lists those files and opens that
//! view.

use super::DashboardConfig;
use super::rollups::{self, StoredRollup};
use crate::manifest::{Manifest, ManifestFile};
use crate::project::dashboard::{GrainConfig, MeasureConfig, MeasureSql};
use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One data file the summary was computed from.
#[derive(Debug, Serialize)]
struct UsedFile {
    path: String,
    sha256: String,
}

/// The newest day at the finest grain that holds it: complete when its
/// last interval ends at midnight.
#[derive(Debug, Serialize)]
struct LastDay {
    date: String,
    last: String,
    complete: bool,
}

/// A time chart's data: timestamps as runs `[first_ms, step_ms, count]`, one
/// value per timestamp and series (`null`: no value).
///
/// Only what the first paint draws: a chart with more than
/// [`PREVIEW_POINTS`] timestamps is drawn from the means of `every`
/// consecutive intervals (7 days at 5 minutes: hourly means, 168 points
/// instead of 2016), rounded to [`PREVIEW_DIGITS`] significant digits, so
/// the summary stays a few kB; the page's own query redraws the chart at its
/// grain once DuckDB-WASM is ready.
#[derive(Debug, Serialize)]
struct TimeSeries {
    /// The query's row count (a series may have rows whose value is null).
    rows: usize,
    /// How many of the grain's intervals each value averages (1: none).
    every: usize,
    times: Vec<[f64; 3]>,
    series: Vec<Series>,
}

/// At most this many timestamps per preview time chart.
const PREVIEW_POINTS: usize = 200;
/// Significant digits of a preview value (never more decimals than the
/// measure's own).
const PREVIEW_DIGITS: i32 = 3;

/// How many consecutive intervals one preview value averages: the smallest of
/// 1, 2, 3, 4, 6, 12, 24, 48… that leaves at most [`PREVIEW_POINTS`] values
/// (whole hours and days for 5-minute and hourly grains).
fn preview_every(n: usize) -> usize {
    let mut every = 1;
    for f in [1, 2, 3, 4, 6, 12]
        .into_iter()
        .chain((1..).map(|k| 24usize << (k - 1)))
    {
        every = f;
        if n.div_ceil(f) <= PREVIEW_POINTS {
            break;
        }
    }
    every
}

/// The means of `every` consecutive values (a missing value is left out; a
/// bucket with none is `None`).
fn bucket_means(values: &[Option<f64>], every: usize) -> Vec<Option<f64>> {
    values
        .chunks(every.max(1))
        .map(|c| {
            let (sum, n) = c
                .iter()
                .flatten()
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        })
        .collect()
}

/// `v` to [`PREVIEW_DIGITS`] significant digits, and at most `decimals`.
fn preview_value(v: Option<f64>, decimals: i32) -> serde_json::Value {
    let digits = match v.filter(|x| x.is_finite() && *x != 0.0) {
        Some(x) => PREVIEW_DIGITS - 1 - x.abs().log10().floor() as i32,
        None => decimals,
    };
    rounded(v, digits.min(decimals))
}

#[derive(Debug, Serialize)]
struct Series {
    name: String,
    /// Rounded to the measure's decimals; whole numbers without `.0`.
    values: Vec<serde_json::Value>,
}

/// `v` rounded to `decimals`, as a JSON number (an integer when whole, so a
/// MW series costs no `.0` per value); `null` for no value.
fn rounded(v: Option<f64>, decimals: i32) -> serde_json::Value {
    match v.filter(|x| x.is_finite()) {
        None => serde_json::Value::Null,
        Some(x) => {
            // Negative decimals (a preview's significant digits): whole
            // tens, hundreds… computed by a division, so they stay exact.
            let r = if decimals < 0 {
                let p = 10f64.powi(-decimals);
                (x / p).round() * p
            } else {
                let p = 10f64.powi(decimals);
                (x * p).round() / p
            };
            // -0 stays a float: the page shows it as "-0", as DuckDB-WASM's.
            if r.fract() == 0.0 && r.abs() < 1e15 && !(r == 0.0 && r.is_sign_negative()) {
                serde_json::json!(r as i64)
            } else {
                serde_json::json!(r)
            }
        }
    }
}

/// A bar chart's rows, in the query's order.
#[derive(Debug, Serialize)]
struct Bars {
    keys: Vec<Option<String>>,
    values: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
struct Summary {
    version: u32,
    from: String,
    to: String,
    days: u32,
    grain: String,
    dataset: String,
    files: Vec<UsedFile>,
    /// KPI values by `k<i>` (numbers unrounded, as the page's query returns
    /// them; text for `top` and `latest`), and `at` for latest KPIs.
    kpis: serde_json::Map<String, serde_json::Value>,
    latest_at: Option<String>,
    /// One entry per chart: a [`TimeSeries`], [`Bars`] or `null`.
    charts: Vec<serde_json::Value>,
    /// Display names of the values the charts show (dimension → value → name).
    lookups: BTreeMap<String, BTreeMap<String, String>>,
    last_day: Option<LastDay>,
}

/// Attaches the exported file `path` read-only as `alias`; returns the query
/// selecting its `table`.
fn attach(conn: &duckdb::Connection, path: &Path, alias: &str, table: &str) -> Result<String> {
    conn.execute_batch(&format!(
        "ATTACH {} AS {} (READ_ONLY)",
        literal(&path.display().to_string()),
        ident(alias)
    ))
    .with_context(|| format!("attaching {}", path.display()))?;
    Ok(format!("SELECT * FROM {}.{}", ident(alias), ident(table)))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `measureSql` of the page.
fn measure_sql(m: &MeasureConfig, grain: &str) -> Result<String> {
    let sql = match &m.sql {
        MeasureSql::Same(s) => s.clone(),
        MeasureSql::PerGrain(map) => map
            .get(grain)
            .cloned()
            .with_context(|| format!("measure `{}` has no SQL for grain {grain}", m.name))?,
    };
    Ok(format!("CAST(({sql}) AS DOUBLE)"))
}

/// `coverage` of the page: the first and last date of a dataset's files.
fn coverage(manifest: &Manifest, dataset: &str) -> Option<(Option<String>, Option<String>)> {
    let files: Vec<&ManifestFile> = manifest
        .files
        .iter()
        .filter(|f| f.dataset == dataset)
        .collect();
    if files.is_empty() {
        return None;
    }
    let min = files.iter().filter_map(|f| f.min_date.clone()).min();
    let max = files.iter().filter_map(|f| f.max_date.clone()).max();
    Some((min, max))
}

fn day(iso: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(iso, "%Y-%m-%d").with_context(|| format!("date {iso:?}"))
}

/// Minutes between two intervals of a grain that has intervals within a day.
fn step_minutes(grain: &str) -> Option<i64> {
    match grain {
        "5min" => Some(5),
        "15min" => Some(15),
        "30min" => Some(30),
        "hour" => Some(60),
        _ => None,
    }
}

/// The summary of the view the page opens with, as JSON (what [`write`]
/// writes); `None` when the configuration has no grains or charts and KPIs,
/// or a file it needs is not in `site_dir`.
pub fn summary(
    config: &DashboardConfig,
    manifest: &Manifest,
    site_dir: &Path,
) -> Result<Option<serde_json::Value>> {
    if config.grains.is_empty() || (config.kpis.is_empty() && config.charts.is_empty()) {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let computed = compute(config, manifest, site_dir)?;
    tracing::debug!(
        "first-paint summary computed in {:.3}s",
        started.elapsed().as_secs_f64()
    );
    let Some(summary) = computed else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::to_value(&summary).context("serialising the summary")?,
    ))
}

/// The data files (site paths) the summary reads: the opening view's files
/// of its grain's dataset, the lookups' datasets and the newest day's files
/// at the finest grain — a superset of what [`summary`] attaches, so a site
/// whose other files are elsewhere (kept on a branch) can fetch just these.
pub fn inputs(config: &DashboardConfig, manifest: &Manifest) -> Result<Vec<String>> {
    if config.grains.is_empty() || (config.kpis.is_empty() && config.charts.is_empty()) {
        return Ok(Vec::new());
    }
    let Some(view) = opening_view(config, manifest)? else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<String> = Vec::new();
    let mut add = |f: &ManifestFile| {
        if !paths.contains(&f.path) {
            paths.push(f.path.clone());
        }
    };
    for f in manifest
        .files
        .iter()
        .filter(|f| f.dataset == view.grain.dataset)
    {
        if let (Some(min), Some(max)) = (&f.min_date, &f.max_date)
            && (max.as_str() < view.from.as_str() || min.as_str() > view.to.as_str())
        {
            continue;
        }
        add(f);
    }
    // The stored rollups the panels read (a missing one: the rows).
    let rollups_dataset = rollups::dataset_of(&view.grain.dataset);
    for f in in_range(manifest, &rollups_dataset, Some((&view.from, &view.to))) {
        add(f);
    }
    for d in &config.dimensions {
        if let Some(l) = &d.lookup {
            manifest
                .files
                .iter()
                .filter(|f| f.dataset == l.dataset)
                .for_each(&mut add);
        }
    }
    if let Some(g) = config.grains.iter().find(|g| {
        step_minutes(&g.grain).is_some()
            && coverage(manifest, &g.dataset)
                .is_some_and(|(_, max)| max == Some(view.data_max.clone()))
    }) {
        manifest
            .files
            .iter()
            .filter(|f| {
                f.dataset == g.dataset && f.max_date.as_deref() == Some(view.data_max.as_str())
            })
            .for_each(&mut add);
    }
    Ok(paths)
}

/// The view the page opens with (`main`, `setRange(default_days || 7)`,
/// `chooseGrain`): the newest date, the range and the grain.
struct OpeningView<'a> {
    data_max: String,
    days: u32,
    from: String,
    to: String,
    grain: &'a GrainConfig,
}

fn opening_view<'a>(
    config: &'a DashboardConfig,
    manifest: &Manifest,
) -> Result<Option<OpeningView<'a>>> {
    // `main`: the data's dates over every grain's dataset.
    let covs: Vec<(Option<String>, Option<String>)> = config
        .grains
        .iter()
        .filter_map(|g| coverage(manifest, &g.dataset))
        .collect();
    let (Some(data_min), Some(data_max)) = (
        covs.iter().filter_map(|c| c.0.clone()).min(),
        covs.iter().filter_map(|c| c.1.clone()).max(),
    ) else {
        return Ok(None);
    };
    // `setRange(default_days || 7)`.
    let days = if config.default_days == 0 {
        7
    } else {
        config.default_days
    };
    let to = data_max.clone();
    let from = {
        let start = day(&data_max)? - Duration::days(i64::from(days) - 1);
        std::cmp::max(start, day(&data_min)?)
            .format("%Y-%m-%d")
            .to_string()
    };
    let range_days = (day(&to)? - day(&from)?).num_days() + 1;
    // `chooseGrain`.
    let grain: &GrainConfig = config
        .grains
        .iter()
        .find(|g| {
            let Some((min, max)) = coverage(manifest, &g.dataset) else {
                return false;
            };
            if g.max_days.is_some_and(|m| range_days > i64::from(m)) {
                return false;
            }
            let end = if to < data_max { &to } else { &data_max };
            min.as_deref().is_some_and(|m| m <= from.as_str())
                && max.as_deref().is_some_and(|m| m >= end.as_str())
        })
        .or_else(|| {
            config
                .grains
                .iter()
                .rev()
                .find(|g| coverage(manifest, &g.dataset).is_some())
        })
        .context("no grain has data")?;
    Ok(Some(OpeningView {
        data_max,
        days,
        from,
        to,
        grain,
    }))
}

/// A summary query's rows.
enum Out {
    /// One row's values (KPIs).
    Values(Vec<serde_json::Value>),
    /// A bar chart's (category, value) rows.
    Bars(Vec<(Option<String>, Option<f64>)>),
    /// A time chart's (epoch ms, series, value) rows.
    Times(Vec<(f64, Option<String>, Option<f64>)>),
}

type Reader = Box<dyn FnOnce(&duckdb::Connection, &str) -> duckdb::Result<Out> + Send>;

/// A summary query and how its rows are read.
struct Job {
    sql: String,
    read: Reader,
}

impl Job {
    fn new(
        sql: String,
        read: impl FnOnce(&duckdb::Connection, &str) -> duckdb::Result<Out> + Send + 'static,
    ) -> Job {
        Job {
            sql,
            read: Box::new(read),
        }
    }
}

/// Runs the jobs on up to one connection per core (clones of `conn`: the
/// same database, its attached files and its one-thread setting); results
/// in the jobs' order.
fn run_jobs(conn: &duckdb::Connection, jobs: Vec<Job>) -> Result<Vec<Out>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    let conns = (0..workers)
        .map(|_| {
            conn.try_clone()
                .context("opening a connection for the summary")
        })
        .collect::<Result<Vec<_>>>()?;
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let mut outs: Vec<(usize, Result<Out>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|c| {
                let queue = &queue;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        // From the end: the charts, the longest queries, first.
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                        let Some((i, job)) = job else { break };
                        let started = std::time::Instant::now();
                        let out = (job.read)(&c, &job.sql)
                            .with_context(|| format!("summary query failed: {}", job.sql));
                        tracing::debug!(
                            "summary query {i} in {:.3}s: {}",
                            started.elapsed().as_secs_f64(),
                            job.sql.chars().take(160).collect::<String>()
                        );
                        done.push((i, out));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    outs.sort_by_key(|(i, _)| *i);
    outs.into_iter().map(|(_, out)| out).collect()
}

/// The files of `dataset` whose dates overlap `range` (all of them without
/// a range, and those without dates): app.js `filesInRange`.
fn in_range<'m>(
    manifest: &'m Manifest,
    dataset: &str,
    range: Option<(&str, &str)>,
) -> Vec<&'m ManifestFile> {
    manifest
        .files
        .iter()
        .filter(|f| f.dataset == dataset)
        .filter(|f| match (range, &f.min_date, &f.max_date) {
            (Some((from, to)), Some(min), Some(max)) => max.as_str() >= from && min.as_str() <= to,
            _ => true,
        })
        .collect()
}

/// Below this many rows in the range the page reads the rows instead of
/// building a rollup from them (app.js `probe.rollupMinRows`).
const ROLLUP_MIN_ROWS: f64 = 200_000.0;

/// The rows of `files` within `from`–`to`, each file's rows spread evenly
/// over its dates (app.js `rowsInRange`).
fn rows_in_range(files: &[&ManifestFile], from: &str, to: &str) -> Result<f64> {
    let mut n = 0.0;
    for f in files.iter().filter(|f| f.rows > 0) {
        let (Some(min), Some(max)) = (&f.min_date, &f.max_date) else {
            n += f.rows as f64;
            continue;
        };
        let days = (day(max)? - day(min)?).num_days() + 1;
        let lo = std::cmp::max(min.as_str(), from);
        let hi = std::cmp::min(max.as_str(), to);
        let overlap = ((day(hi)? - day(lo)?).num_days() + 1).max(0);
        n += f.rows as f64 * overlap as f64 / days as f64;
    }
    Ok(n)
}

/// KPIs read from one source: (KPI index, its SQL, whether it is a number).
type KpiItems = Vec<(usize, String, bool)>;

/// Where a panel of the opening view reads (app.js `source`): a table made
/// from the stored rollups, or the rows of the range.
struct Src {
    base: String,
    rollup: bool,
}

impl Src {
    /// The measure over this source (app.js `src.msql`).
    fn msql(&self, m: &MeasureConfig, grain: &str) -> Result<String> {
        match (&m.rollup, self.rollup) {
            (Some(r), true) => Ok(format!("CAST(({}) AS DOUBLE)", r.sql)),
            _ => measure_sql(m, grain),
        }
    }
}

/// The opening view's stored rollups (`dashboard/rollups.rs`): the page,
/// once DuckDB-WASM is ready, reads each panel from the first rollup that
/// fits it (app.js `source`), made from the rollups files of the range
/// (`storedRollupSql`); the summary reads the same, a few thousand rows per
/// day instead of every unit's rows, so its numbers are the page's.
struct StoredRollups<'a> {
    config: &'a DashboardConfig,
    site_dir: &'a Path,
    grain: &'a GrainConfig,
    from: &'a str,
    to: &'a str,
    /// The rollups every file of the grain's dataset stores.
    defs: Vec<StoredRollup>,
    /// The rollups files of the range; empty when one is not listed for a
    /// rows file or not in the site folder (then the rows are read).
    files: Vec<&'a ManifestFile>,
    /// Whether the range has enough rows for the page to build a rollup
    /// from them when none is stored.
    many: bool,
    /// Whether the rollups files are attached (as `r<k>`).
    attached: bool,
    /// The tables made, by rollup index (`None`: making it failed).
    tables: BTreeMap<usize, Option<String>>,
}

impl<'a> StoredRollups<'a> {
    fn new(
        config: &'a DashboardConfig,
        manifest: &'a Manifest,
        site_dir: &'a Path,
        view: (&'a GrainConfig, &'a str, &'a str),
    ) -> Result<StoredRollups<'a>> {
        let (grain, from, to) = view;
        let rows = in_range(manifest, &grain.dataset, Some((from, to)));
        let defs = manifest
            .files
            .iter()
            .find(|f| f.dataset == grain.dataset)
            .map(|f| {
                let names: Vec<&str> = f.columns.iter().map(|c| c.name.as_str()).collect();
                rollups::stored_for(Some(config), &grain.dataset, &names)
            })
            .unwrap_or_default();
        // `rollupsCover`: every rows file of the range has its rollups
        // file listed; here it must also be in the site folder.
        let dataset = rollups::dataset_of(&grain.dataset);
        let listed: Vec<&str> = manifest
            .files
            .iter()
            .filter(|f| f.dataset == dataset)
            .map(|f| f.path.as_str())
            .collect();
        let files = in_range(manifest, &dataset, Some((from, to)));
        let covered = !defs.is_empty()
            && !rows.is_empty()
            && rows
                .iter()
                .all(|f| listed.contains(&rollups::file_of(&f.path).as_str()))
            && files.iter().all(|f| site_dir.join(&f.path).is_file());
        Ok(StoredRollups {
            config,
            site_dir,
            grain,
            from,
            to,
            defs,
            files: if covered { files } else { Vec::new() },
            many: rows_in_range(&rows, from, to)? >= ROLLUP_MIN_ROWS,
            attached: false,
            tables: BTreeMap::new(),
        })
    }

    /// The stored rollup a panel grouped by `dims` (and by the timestamp
    /// when `time`) showing `measures` reads, as the page picks it; `None`
    /// when the page reads the rows (or a rollup it builds from them: the
    /// same values).
    fn pick(&self, dims: &[&str], measures: &[&MeasureConfig], time: bool) -> Option<usize> {
        for (idx, r) in self.config.rollups.iter().enumerate() {
            if !dims.iter().all(|n| r.by.iter().any(|b| b == n))
                || (time && !r.time)
                || !measures.iter().all(|m| rollups::serves(self.config, r, m))
            {
                continue;
            }
            let def = self.defs.iter().find(|s| s.index == idx);
            let stored = !self.files.is_empty() && def.is_some();
            if !self.many && !stored {
                continue;
            }
            // A rollup stored per period has no date to take the range's
            // filter: the panel reads the rows (as `make` would fail to).
            return (stored && !def.is_some_and(|s| s.period)).then_some(idx);
        }
        None
    }

    /// The panel's source: the table of its stored rollup (made on first
    /// use), else `rows`.
    fn source(
        &mut self,
        conn: &duckdb::Connection,
        used: &mut Vec<UsedFile>,
        rows: &str,
        (dims, measures, time): (&[&str], &[&MeasureConfig], bool),
    ) -> Result<Src> {
        let rows = Src {
            base: rows.to_string(),
            rollup: false,
        };
        let Some(idx) = self.pick(dims, measures, time) else {
            return Ok(rows);
        };
        if !self.tables.contains_key(&idx) {
            let started = std::time::Instant::now();
            let made = self.make(conn, used, idx);
            tracing::debug!(
                "summary: stored rollup {idx} read in {:.3}s",
                started.elapsed().as_secs_f64()
            );
            if let Err(e) = &made {
                tracing::debug!(
                    "first-paint summary: stored rollup {idx} not read ({e:#}): the rows"
                );
            }
            self.tables.insert(idx, made.ok());
        }
        Ok(match &self.tables[&idx] {
            Some(table) => Src {
                base: format!("(SELECT * FROM {table}) AS t"),
                rollup: true,
            },
            None => rows,
        })
    }

    /// Makes the range's rollup `idx` from the stored one (app.js
    /// `storedRollupSql`): its rows as they are when it keeps the time, else
    /// its per-date values merged.
    fn make(
        &mut self,
        conn: &duckdb::Connection,
        used: &mut Vec<UsedFile>,
        idx: usize,
    ) -> Result<String> {
        let s = self
            .defs
            .iter()
            .find(|s| s.index == idx)
            .context("the rollup is not stored")?;
        let r = &self.config.rollups[idx];
        if !self.attached {
            for (k, f) in self.files.iter().enumerate() {
                conn.execute_batch(&format!(
                    "ATTACH {} AS {} (READ_ONLY)",
                    literal(&self.site_dir.join(&f.path).display().to_string()),
                    ident(&format!("r{k}"))
                ))
                .with_context(|| format!("attaching {}", f.path))?;
                used.push(UsedFile {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                });
            }
            self.attached = true;
        }
        let srel = (0..self.files.len())
            .map(|k| {
                format!(
                    "SELECT * FROM {}.{}",
                    ident(&format!("r{k}")),
                    ident(&s.table)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL BY NAME ");
        let dims =
            r.by.iter()
                .map(|n| {
                    self.config
                        .dimensions
                        .iter()
                        .find(|d| &d.name == n)
                        .map(|d| ident(&d.column))
                        .with_context(|| format!("dimension `{n}` is not declared"))
                })
                .collect::<Result<Vec<_>>>()?;
        let filter = format!(
            "{} BETWEEN DATE {} AND DATE {}",
            ident(&self.config.date_column),
            literal(self.from),
            literal(self.to)
        );
        let sql = if r.time {
            let columns = std::iter::once(format!("{} AS _time", self.grain.time))
                .chain(dims)
                .chain(s.columns.iter().map(|c| ident(&c.name)));
            format!(
                "SELECT {} FROM ({srel}) WHERE {filter}",
                columns.collect::<Vec<_>>().join(", ")
            )
        } else {
            let grouped = !dims.is_empty();
            let merged = s
                .columns
                .iter()
                .map(|c| {
                    let merge = c
                        .merge
                        .context("a per-date rollup column that does not merge")?;
                    let m = format!("{merge}({})", ident(&c.name));
                    let count = c.sql.trim_start().to_ascii_lowercase().starts_with("count")
                        && c.sql.trim_start()[5..].trim_start().starts_with('(');
                    Ok(format!(
                        "{} AS {}",
                        if count {
                            format!("CAST({m} AS BIGINT)")
                        } else {
                            m
                        },
                        ident(&c.name)
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            format!(
                "SELECT {} FROM ({srel}) WHERE {filter}{}",
                dims.into_iter()
                    .chain(merged)
                    .collect::<Vec<_>>()
                    .join(", "),
                if grouped { " GROUP BY ALL" } else { "" }
            )
        };
        let table = ident(&format!("_summary_rollup_{idx}"));
        conn.execute_batch(&format!("CREATE TABLE {table} AS {sql}"))
            .with_context(|| format!("summary query failed: {sql}"))?;
        Ok(table)
    }
}

fn compute(
    config: &DashboardConfig,
    manifest: &Manifest,
    site_dir: &Path,
) -> Result<Option<Summary>> {
    let Some(OpeningView {
        data_max,
        days,
        from,
        to,
        grain,
    }) = opening_view(config, manifest)?
    else {
        return Ok(None);
    };

    let conn = duckdb::Connection::open_in_memory().context("opening DuckDB")?;
    // One thread: the same summation order as DuckDB-WASM's single thread.
    conn.execute_batch("SET threads = 1")
        .context("setting DuckDB threads")?;
    let mut used = Vec::new();
    // The rows of the range (`relation`): named in the summary, attached
    // (as `g<k>`) only when a panel reads them rather than a stored rollup.
    let rows_files = in_range(manifest, &grain.dataset, Some((&from, &to)));
    if rows_files.is_empty() {
        return Ok(None);
    }
    for f in &rows_files {
        if !site_dir.join(&f.path).is_file() {
            // The page would say the file is missing: no preview.
            return Ok(None);
        }
        used.push(UsedFile {
            path: f.path.clone(),
            sha256: f.sha256.clone(),
        });
    }
    let rel = format!(
        "({})",
        rows_files
            .iter()
            .enumerate()
            .map(|(k, f)| format!(
                "SELECT * FROM {}.{}",
                ident(&format!("g{k}")),
                ident(&f.table)
            ))
            .collect::<Vec<_>>()
            .join(" UNION ALL BY NAME ")
    );
    let attach_rows = || -> Result<()> {
        for (k, f) in rows_files.iter().enumerate() {
            attach(&conn, &site_dir.join(&f.path), &format!("g{k}"), &f.table)?;
        }
        Ok(())
    };
    let mut attached = 0usize;
    // `relation`: the union of the dataset's files over the range (all of
    // them without a range).
    let mut relation = |dataset: &str, range: Option<(&str, &str)>| -> Result<Option<String>> {
        let files = in_range(manifest, dataset, range);
        let mut parts = Vec::new();
        for f in files {
            let path = site_dir.join(&f.path);
            if !path.is_file() {
                // The page would say the file is missing: no preview.
                return Ok(None);
            }
            parts.push(attach(&conn, &path, &format!("f{attached}"), &f.table)?);
            attached += 1;
            used.push(UsedFile {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
            });
        }
        Ok(match parts.len() {
            0 => None,
            1 => Some(format!("({})", parts[0])),
            _ => Some(format!("({})", parts.join(" UNION ALL BY NAME "))),
        })
    };
    let date = ident(&config.date_column);
    let base = format!(
        "(SELECT *, {} AS _time FROM {rel} WHERE {date} BETWEEN DATE {} AND DATE {}) AS t",
        grain.time,
        literal(&from),
        literal(&to)
    );
    let g = grain.grain.as_str();
    let measure = |name: &str| -> Result<&MeasureConfig> {
        config
            .measures
            .iter()
            .find(|m| m.name == name)
            .with_context(|| format!("measure `{name}` is not declared"))
    };
    let dimension = |name: &str| {
        config
            .dimensions
            .iter()
            .find(|d| d.name == name)
            .with_context(|| format!("dimension `{name}` is not declared"))
    };
    let query_err = |sql: &str| format!("summary query failed: {sql}");

    // `renderKpis` and the charts: independent queries over the same
    // attached files, run at once on connections of this database (each
    // single-threaded, so every sum adds in WASM's order); their results are
    // read back in the order below.
    let fmt = if g == "day" {
        "%Y-%m-%d"
    } else {
        "%Y-%m-%d %H:%M"
    };
    // Each panel reads where the page reads it (`source`): a stored rollup
    // that fits, else the rows.
    let mut stored = StoredRollups::new(config, manifest, site_dir, (grain, &from, &to))?;
    let mut used_rollups = Vec::new();
    let mut rows_attached = false;
    let mut source = |dims: &[&str], ms: &[&MeasureConfig], time: bool| -> Result<Src> {
        let src = stored.source(&conn, &mut used_rollups, &base, (dims, ms, time))?;
        if !src.rollup && !rows_attached {
            attach_rows()?;
            rows_attached = true;
        }
        Ok(src)
    };
    let mut jobs: Vec<Job> = Vec::new();
    // KPIs of the range, one query per source: (source, [(kpi, SQL, number)]).
    let mut simple: Vec<(String, KpiItems)> = Vec::new();
    let mut latest: Vec<(usize, &MeasureConfig)> = Vec::new();
    for (i, k) in config.kpis.iter().enumerate() {
        let (src, item, number) = match (&k.measure, k.latest) {
            (Some(m), true) => {
                latest.push((i, measure(m)?));
                continue;
            }
            (Some(m), false) => {
                let m = measure(m)?;
                let src = source(&[], &[m], false)?;
                let item = format!("{} AS k{i}", src.msql(m, g)?);
                (src, item, true)
            }
            (None, true) => {
                let src = source(&[], &[], true)?;
                (src, format!("strftime(max(_time), '{fmt}') AS k{i}"), false)
            }
            _ => continue,
        };
        match simple.iter_mut().find(|(base, _)| *base == src.base) {
            Some((_, items)) => items.push((i, item, number)),
            None => simple.push((src.base, vec![(i, item, number)])),
        }
    }
    for (base, items) in &simple {
        let sql = format!(
            "SELECT {} FROM {base}",
            items
                .iter()
                .map(|s| s.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let numbers: Vec<bool> = items.iter().map(|s| s.2).collect();
        jobs.push(Job::new(sql, move |conn, sql| {
            conn.query_row(sql, [], |r| {
                numbers
                    .iter()
                    .enumerate()
                    .map(|(col, number)| {
                        Ok(if *number {
                            serde_json::json!(r.get::<_, Option<f64>>(col)?)
                        } else {
                            serde_json::json!(r.get::<_, Option<String>>(col)?)
                        })
                    })
                    .collect::<duckdb::Result<Vec<_>>>()
            })
            .map(Out::Values)
        }));
    }
    if !latest.is_empty() {
        let ms: Vec<&MeasureConfig> = latest.iter().map(|(_, m)| *m).collect();
        let src = source(&[], &ms, true)?;
        let items = latest
            .iter()
            .map(|(i, m)| Ok(format!("{} AS k{i}", src.msql(m, g)?)))
            .collect::<Result<Vec<_>>>()?;
        let sql = format!(
            "SELECT {}, strftime(max(_time), '{fmt}') AS at FROM {b} WHERE _time = (SELECT max(_time) FROM {b})",
            items.join(", "),
            b = src.base
        );
        let n = latest.len();
        jobs.push(Job::new(sql, move |conn, sql| {
            conn.query_row(sql, [], |r| {
                let mut values = (0..n)
                    .map(|col| Ok(serde_json::json!(r.get::<_, Option<f64>>(col)?)))
                    .collect::<duckdb::Result<Vec<_>>>()?;
                values.push(serde_json::json!(r.get::<_, Option<String>>(n)?));
                Ok(values)
            })
            .map(Out::Values)
        }));
    }
    let mut tops = Vec::new();
    for (i, k) in config.kpis.iter().enumerate() {
        let (Some(top), Some(by)) = (&k.top, &k.by) else {
            continue;
        };
        let d = dimension(top)?;
        let by = measure(by)?;
        let src = source(&[d.name.as_str()], &[by], false)?;
        let sql = format!(
            "SELECT CAST({} AS VARCHAR) AS v FROM {} GROUP BY 1 ORDER BY {} DESC NULLS LAST LIMIT 1",
            ident(&d.column),
            src.base,
            src.msql(by, g)?
        );
        tops.push(i);
        jobs.push(Job::new(sql, |conn, sql| {
            let mut stmt = conn.prepare(sql)?;
            let v: Option<String> = stmt
                .query_map([], |r| r.get::<_, Option<String>>(0))?
                .next()
                .transpose()?
                .flatten();
            Ok(Out::Values(vec![serde_json::json!(v)]))
        }));
    }
    // Charts at their default measure, no filter (so no drill-down).
    for c in &config.charts {
        let m = measure(&c.measure)?;
        if c.kind == "bar" {
            let Some(cat) = &c.category else {
                continue;
            };
            let d = dimension(cat)?;
            let src = source(&[d.name.as_str()], &[m], false)?;
            let sql = format!(
                "SELECT CAST({} AS VARCHAR) AS c, {} AS v FROM {} GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT {}",
                ident(&d.column),
                src.msql(m, g)?,
                src.base,
                c.limit.unwrap_or(10)
            );
            jobs.push(Job::new(sql, |conn, sql| {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<duckdb::Result<_>>()?;
                Ok(Out::Bars(rows))
            }));
            continue;
        }
        let series = c.series.as_deref().map(dimension).transpose()?;
        let series_sql = match series {
            Some(d) => format!("CAST({} AS VARCHAR)", ident(&d.column)),
            None => "''".to_string(),
        };
        let dims: Vec<&str> = series.iter().map(|d| d.name.as_str()).collect();
        let src = source(&dims, &[m], true)?;
        let msql = src.msql(m, g)?;
        // From a rollup, the page's own query (`renderTimeChart`).
        let sql = if src.rollup {
            format!(
                "SELECT CAST(epoch_ms(t) AS DOUBLE) AS t, s, v FROM (SELECT _time AS t, {series_sql} AS s, {msql} AS v FROM {} GROUP BY ALL) ORDER BY 1, 2",
                src.base
            )
        } else {
            format!(
                "SELECT CAST(epoch_ms(_time) AS DOUBLE) AS t, {series_sql} AS s, {msql} AS v FROM {} GROUP BY ALL ORDER BY 1, 2",
                src.base
            )
        };
        jobs.push(Job::new(sql, |conn, sql| {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<duckdb::Result<_>>()?;
            Ok(Out::Times(rows))
        }));
    }
    let mut outs = run_jobs(&conn, jobs)?.into_iter();
    let mut next = || outs.next().context("a summary query gave no result");

    let mut kpis = serde_json::Map::new();
    let mut latest_at = None;
    for (_, items) in &simple {
        let Out::Values(values) = next()? else {
            unreachable!("the KPI query gives values")
        };
        for ((i, _, _), v) in items.iter().zip(values) {
            kpis.insert(format!("k{i}"), v);
        }
    }
    if !latest.is_empty() {
        let Out::Values(mut values) = next()? else {
            unreachable!("the latest KPI query gives values")
        };
        latest_at = values.pop().and_then(|v| v.as_str().map(str::to_string));
        for ((i, _), v) in latest.iter().zip(values) {
            kpis.insert(format!("k{i}"), v);
        }
    }
    for i in tops {
        let Out::Values(mut values) = next()? else {
            unreachable!("the top KPI query gives a value")
        };
        kpis.insert(format!("k{i}"), values.pop().unwrap_or_default());
    }

    let mut charts = Vec::new();
    let mut lookups: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for c in &config.charts {
        let m = measure(&c.measure)?;
        let decimals = i32::try_from(m.decimals.unwrap_or(1)).unwrap_or(1);
        if c.kind == "bar" {
            let Some(cat) = &c.category else {
                charts.push(serde_json::Value::Null);
                continue;
            };
            let d = dimension(cat)?;
            let Out::Bars(rows) = next()? else {
                unreachable!("a bar chart's query gives bars")
            };
            if d.lookup.is_some() {
                let entry = lookups.entry(d.name.clone()).or_default();
                for k in rows.iter().filter_map(|r| r.0.as_ref()) {
                    entry.insert(k.clone(), String::new());
                }
            }
            charts.push(serde_json::to_value(Bars {
                keys: rows.iter().map(|r| r.0.clone()).collect(),
                values: rows.iter().map(|r| r.1).collect(),
            })?);
            continue;
        }
        let Out::Times(rows) = next()? else {
            unreachable!("a time chart's query gives times")
        };
        let mut times: Vec<f64> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (t, s, _) in &rows {
            if times.last() != Some(t) {
                times.push(*t);
            }
            let s = s.clone().unwrap_or_default();
            if !names.contains(&s) {
                names.push(s);
            }
        }
        let mut values: Vec<Vec<Option<f64>>> = vec![vec![None; times.len()]; names.len()];
        let mut at = 0usize;
        for (t, s, v) in &rows {
            while times[at] != *t {
                at += 1;
            }
            let s = s.clone().unwrap_or_default();
            if let Some(k) = names.iter().position(|n| *n == s) {
                values[k][at] = v.filter(|x| x.is_finite());
            }
        }
        // Coarser for the preview only when the timestamps are one regular
        // run (the grain's intervals), so a bucket is `every` intervals.
        let regular = times.windows(2).all(|w| w[1] - w[0] == times[1] - times[0]);
        let every = if regular && times.len() > 2 {
            preview_every(times.len())
        } else {
            1
        };
        let times: Vec<f64> = times.iter().step_by(every).copied().collect();
        let values: Vec<Vec<serde_json::Value>> = values
            .iter()
            .map(|vs| {
                if every == 1 {
                    vs.iter().map(|v| rounded(*v, decimals)).collect()
                } else {
                    bucket_means(vs, every)
                        .into_iter()
                        .map(|v| preview_value(v, decimals))
                        .collect()
                }
            })
            .collect();
        let mut runs: Vec<[f64; 3]> = Vec::new();
        for (k, t) in times.iter().enumerate() {
            match runs.last_mut() {
                Some(run) if run[2] == 1.0 && k > 0 => {
                    run[1] = t - run[0];
                    run[2] = 2.0;
                }
                Some(run) if run[0] + run[1] * run[2] == *t => run[2] += 1.0,
                _ => runs.push([*t, 0.0, 1.0]),
            }
        }
        charts.push(serde_json::to_value(TimeSeries {
            rows: rows.len(),
            every,
            times: runs,
            series: names
                .into_iter()
                .zip(values)
                .map(|(name, values)| Series { name, values })
                .collect(),
        })?);
    }
    // Display names of the bar charts' values (`loadLookups`).
    for (name, entry) in lookups.iter_mut() {
        let d = dimension(name)?;
        let Some(l) = &d.lookup else { continue };
        let Some(lrel) = relation(&l.dataset, None)? else {
            continue;
        };
        let sql = format!(
            "SELECT CAST({} AS VARCHAR) AS k, any_value(CAST({} AS VARCHAR)) AS l FROM {lrel} GROUP BY 1",
            ident(&l.key),
            ident(&l.label)
        );
        let mut stmt = conn.prepare(&sql).with_context(|| query_err(&sql))?;
        let rows: Vec<(Option<String>, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .with_context(|| query_err(&sql))?
            .collect::<Result<_, _>>()?;
        for (k, v) in rows {
            if let (Some(k), Some(v)) = (k, v)
                && let Some(slot) = entry.get_mut(&k)
            {
                *slot = v;
            }
        }
        entry.retain(|_, v| !v.is_empty());
    }
    used.extend(used_rollups);
    let last_day = last_day(config, manifest, site_dir, &conn, &data_max)?;
    Ok(Some(Summary {
        version: 1,
        from,
        to,
        days,
        grain: grain.grain.clone(),
        dataset: grain.dataset.clone(),
        files: used,
        kpis,
        latest_at,
        charts,
        lookups,
        last_day,
    }))
}

/// `checkLastDay` of the page: the newest day at the finest grain with
/// intervals that has it; complete when its last interval ends at midnight.
fn last_day(
    config: &DashboardConfig,
    manifest: &Manifest,
    site_dir: &Path,
    conn: &duckdb::Connection,
    data_max: &str,
) -> Result<Option<LastDay>> {
    let Some((grain, step)) = config.grains.iter().find_map(|g| {
        let step = step_minutes(&g.grain)?;
        let (_, max) = coverage(manifest, &g.dataset)?;
        (max.as_deref() == Some(data_max)).then_some((g, step))
    }) else {
        return Ok(None);
    };
    let files: Vec<&ManifestFile> = manifest
        .files
        .iter()
        .filter(|f| f.dataset == grain.dataset && f.max_date.as_deref() == Some(data_max))
        .collect();
    let mut parts = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let path = site_dir.join(&f.path);
        if !path.is_file() {
            return Ok(None);
        }
        parts.push(attach(conn, &path, &format!("last{k}"), &f.table)?);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT strftime(max(_time), '%H:%M'), max(_time) + INTERVAL {step} MINUTE >= DATE {} + INTERVAL 1 DAY \
         FROM (SELECT {} AS _time FROM ({}) WHERE {} = DATE {})",
        literal(data_max),
        grain.time,
        parts.join(" UNION ALL BY NAME "),
        ident(&config.date_column),
        literal(data_max)
    );
    let (last, complete): (Option<String>, Option<bool>) = conn
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .with_context(|| format!("summary query failed: {sql}"))?;
    Ok(last.map(|last| LastDay {
        date: data_max.to_string(),
        last,
        complete: complete.unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_at_five_minutes_is_previewed_as_hourly_means() {
        assert_eq!(preview_every(2016), 12);
        assert_eq!(preview_every(200), 1);
        assert_eq!(preview_every(201), 2);
        assert_eq!(preview_every(30 * 24), 4);
        assert_eq!(preview_every(365 * 288), 768);
        for n in [1usize, 199, 201, 2016, 8760, 105_120] {
            assert!(
                n.div_ceil(preview_every(n)) <= PREVIEW_POINTS,
                "{n} intervals"
            );
        }
    }

    /// A site of `days` one-day 5-minute files (3 units in 2 regions), each
    /// with its rollups file beside it, as the exporter writes them.
    fn site_with_rollups(dir: &Path, config: &DashboardConfig, days: u32) -> Manifest {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE rows AS SELECT CAST(DATE '2024-03-01' + CAST(d AS INTEGER) AS DATE) AS date, \
             CAST(100 * (i // 12) + 5 * (i % 12) AS INTEGER) AS time, \
             u.region_id, u.fuel, u.duid, \
             CAST(u.k * 37.1 + ((d * 288 + i) * 7919 % 1000) / 13.0 - 11 AS DOUBLE) AS mw, \
             CAST((u.k * 37.1 + ((d * 288 + i) * 7919 % 1000) / 13.0 - 11) / 12 AS DOUBLE) AS mwh, \
             CAST(40 + ((d * 288 + i) * 104729 % 997) / 7.0 + u.k AS DOUBLE) AS rrp \
             FROM range({days}) AS r(d), range(288) AS s(i), \
             (VALUES ('R1', 'Coal', 'A', 1), ('R1', 'Wind', 'B', 2), ('R2', 'Gas', 'C', 3)) \
             AS u(region_id, fuel, duid, k)"
        ))
        .unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let names = [
            "date",
            "time",
            "region_id",
            "fuel",
            "duid",
            "mw",
            "mwh",
            "rrp",
        ];
        let stored = rollups::stored_for(Some(config), "intraday", &names);
        assert_eq!(stored.len(), 2, "{stored:?}");
        let mut files = Vec::new();
        for d in 0..days {
            let date = (day("2024-03-01").unwrap() + Duration::days(i64::from(d)))
                .format("%Y-%m-%d")
                .to_string();
            let path = format!("data/intraday_{}.duckdb", date.replace('-', "_"));
            let from = format!("rows WHERE date = DATE '{date}'");
            conn.execute_batch(&format!(
                "ATTACH '{}' AS out; CREATE TABLE out.intraday AS SELECT * FROM {from} \
                 ORDER BY date, time, duid; DETACH out; \
                 ATTACH '{}' AS out (BLOCK_SIZE {}); {} DETACH out;",
                dir.join(&path).display(),
                dir.join(rollups::file_of(&path)).display(),
                rollups::BLOCK_SIZE,
                rollups::create_sql(&stored, "out", &from)
            ))
            .unwrap();
            let file = ManifestFile {
                dataset: "intraday".into(),
                path: path.clone(),
                table: "intraday".into(),
                grain: "5min".into(),
                period: Some(date.replace('-', "_")),
                rows: 288 * 3,
                bytes: 1,
                sha256: format!("sha-{date}"),
                min_date: Some(date.clone()),
                max_date: Some(date.clone()),
                columns: names
                    .iter()
                    .map(|n| crate::manifest::ManifestColumn {
                        name: n.to_string(),
                        data_type: "VARCHAR".into(),
                    })
                    .collect(),
                exported_at: String::new(),
                fingerprint: None,
            };
            files.push(ManifestFile {
                dataset: rollups::dataset_of("intraday"),
                path: rollups::file_of(&path),
                table: "_rollup_0".into(),
                sha256: format!("sha-rollups-{date}"),
                columns: Vec::new(),
                ..file.clone()
            });
            files.push(file);
        }
        Manifest {
            version: 1,
            project: "p".into(),
            exported_at: String::new(),
            files,
            summary: None,
            warnings: Vec::new(),
        }
    }

    fn close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
        match (a, b) {
            (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{at}: {x} vs {y}");
            }
            (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (k, (x, y)) in x.iter().zip(y).enumerate() {
                    close(x, y, &format!("{at}[{k}]"));
                }
            }
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                assert_eq!(
                    x.keys().collect::<Vec<_>>(),
                    y.keys().collect::<Vec<_>>(),
                    "{at}"
                );
                for (k, v) in x {
                    close(v, &y[k], &format!("{at}.{k}"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    #[test]
    fn the_summary_from_stored_rollups_equals_the_one_from_the_rows() {
        // The example project's dashboard, in short: a per-unit rollup
        // without the time (bars, unit KPIs) and one per interval, region
        // and fuel (time charts, latest KPIs).
        let v: serde_json::Value = serde_yaml_ng::from_str(
            "default_days: 7\n\
             grains: [{grain: 5min, dataset: intraday, max_days: 7, time: 'date + make_time(time // 100, time % 100, 0)'}]\n\
             dimensions: [{name: region, column: region_id}, {name: fuel, column: fuel}, {name: unit, column: duid}]\n\
             rollups: [{by: [region, fuel, unit], time: false}, {by: [region, fuel]}]\n\
             measures:\n\
             - {name: generation, sql: 'sum(mw) / count(DISTINCT _time)', rollup: {columns: {mw: 'sum(mw)'}, sql: 'sum(mw) / count(DISTINCT _time)'}}\n\
             - {name: energy, sql: 'sum(mwh)', rollup: {columns: {mwh: 'sum(mwh)'}, sql: 'sum(mwh)'}}\n\
             - {name: price, decimals: 2, sql: 'sum(rrp * mwh) FILTER (WHERE mwh > 0) / nullif(sum(mwh) FILTER (WHERE mwh > 0), 0)', rollup: {columns: {rrp_mwh: 'sum(rrp * mwh) FILTER (WHERE mwh > 0)', mwh_sold: 'sum(mwh) FILTER (WHERE mwh > 0)'}, sql: 'sum(rrp_mwh) / nullif(sum(mwh_sold), 0)'}}\n\
             - {name: region_price, decimals: 2, sql: 'avg(rrp)', rollup: {columns: {rrp_sum: 'sum(rrp)', rrp_n: 'count(rrp)'}, sql: 'sum(rrp_sum) / nullif(sum(rrp_n), 0)'}}\n\
             - {name: active_units, decimals: 0, sql: 'count(DISTINCT duid) FILTER (WHERE mw > 0)', rollup: {columns: {mw_max: 'max(mw)'}, sql: 'count(DISTINCT duid) FILTER (WHERE mw_max > 0)'}}\n\
             kpis:\n\
             - {label: Latest generation, measure: generation, latest: true}\n\
             - {label: Latest price, measure: price, latest: true}\n\
             - {label: Average generation, measure: generation}\n\
             - {label: Average price, measure: price}\n\
             - {label: Active units, measure: active_units}\n\
             - {label: Top fuel, top: fuel, by: energy}\n\
             - {label: Latest, latest: true}\n\
             charts:\n\
             - {title: Generation by fuel, type: area, series: fuel, measure: generation}\n\
             - {title: Price by region, type: line, series: region, measure: region_price}\n\
             - {title: Top units, type: bar, category: unit, measure: energy}\n",
        )
        .unwrap();
        let config = DashboardConfig::from_value(Some(&v)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // 9 days: the opening view is the last 7.
        let manifest = site_with_rollups(dir.path(), &config, 9);
        let from_rollups = summary(&config, &manifest, dir.path()).unwrap().unwrap();
        let files: Vec<&str> = from_rollups["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        // The 7 rows files of the range (named, not read) and their
        // rollups files (read).
        assert_eq!(files.len(), 14, "{files:?}");
        assert!(files.contains(&"data/intraday_2024_03_03.rollups.duckdb"));
        assert!(!files.contains(&"data/intraday_2024_03_02.rollups.duckdb"));
        // Without the rollups files listed: the rows, the same numbers.
        let rows_only = Manifest {
            files: manifest
                .files
                .iter()
                .filter(|f| !f.dataset.ends_with(rollups::DATASET_SUFFIX))
                .cloned()
                .collect(),
            ..manifest.clone()
        };
        let from_rows = summary(&config, &rows_only, dir.path()).unwrap().unwrap();
        assert_eq!(from_rows["files"].as_array().unwrap().len(), 7);
        let strip = |s: &serde_json::Value| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("files");
            s
        };
        close(&strip(&from_rollups), &strip(&from_rows), "summary");
        assert_eq!(from_rollups["kpis"]["k4"], serde_json::json!(3.0));
        assert_eq!(from_rollups["kpis"]["k6"], "2024-03-09 23:55");
        // A rollups file listed but missing from the folder: the rows.
        std::fs::remove_file(dir.path().join("data/intraday_2024_03_05.rollups.duckdb")).unwrap();
        let missing = summary(&config, &manifest, dir.path()).unwrap().unwrap();
        assert_eq!(missing["files"].as_array().unwrap().len(), 7);
        close(&strip(&missing), &strip(&from_rows), "summary");
    }

    #[test]
    fn bucket_means_leave_missing_values_out() {
        let v = [Some(1.0), None, Some(3.0), None, None, None, Some(5.0)];
        assert_eq!(bucket_means(&v, 3), vec![Some(2.0), None, Some(5.0)]);
        assert_eq!(bucket_means(&v, 1), v.to_vec());
    }

    #[test]
    fn preview_values_keep_three_significant_digits() {
        assert_eq!(preview_value(Some(26994.403), 1), serde_json::json!(27000));
        assert_eq!(preview_value(Some(59.6195), 2), serde_json::json!(59.6));
        assert_eq!(preview_value(Some(0.012345), 1), serde_json::json!(0));
        assert_eq!(preview_value(Some(-123.456), 2), serde_json::json!(-123));
        assert_eq!(preview_value(None, 2), serde_json::Value::Null);
    }
}
