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
    let mut attached = 0usize;
    // `relation`: the union of the dataset's files over the range (all of
    // them without a range).
    let mut relation = |dataset: &str, range: Option<(&str, &str)>| -> Result<Option<String>> {
        let files: Vec<&ManifestFile> = manifest
            .files
            .iter()
            .filter(|f| f.dataset == dataset)
            .filter(|f| match (range, &f.min_date, &f.max_date) {
                (Some((from, to)), Some(min), Some(max)) => {
                    max.as_str() >= from && min.as_str() <= to
                }
                _ => true,
            })
            .collect();
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
    let Some(rel) = relation(&grain.dataset, Some((&from, &to)))? else {
        return Ok(None);
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
    let mut jobs: Vec<Job> = Vec::new();
    let (mut simple, mut latest) = (Vec::new(), Vec::new());
    for (i, k) in config.kpis.iter().enumerate() {
        match (&k.measure, k.latest) {
            (Some(m), true) => {
                latest.push((i, format!("{} AS k{i}", measure_sql(measure(m)?, g)?)))
            }
            (Some(m), false) => {
                simple.push((i, format!("{} AS k{i}", measure_sql(measure(m)?, g)?), true))
            }
            (None, true) => {
                simple.push((i, format!("strftime(max(_time), '{fmt}') AS k{i}"), false))
            }
            _ => {}
        }
    }
    if !simple.is_empty() {
        let sql = format!(
            "SELECT {} FROM {base}",
            simple
                .iter()
                .map(|s| s.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let numbers: Vec<bool> = simple.iter().map(|s| s.2).collect();
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
        let sql = format!(
            "SELECT {}, strftime(max(_time), '{fmt}') AS at FROM {base} WHERE _time = (SELECT max(_time) FROM {base})",
            latest
                .iter()
                .map(|s| s.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
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
        let sql = format!(
            "SELECT CAST({} AS VARCHAR) AS v FROM {base} GROUP BY 1 ORDER BY {} DESC NULLS LAST LIMIT 1",
            ident(&d.column),
            measure_sql(measure(by)?, g)?
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
        let msql = measure_sql(measure(&c.measure)?, g)?;
        if c.kind == "bar" {
            let Some(cat) = &c.category else {
                continue;
            };
            let sql = format!(
                "SELECT CAST({} AS VARCHAR) AS c, {msql} AS v FROM {base} GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT {}",
                ident(&dimension(cat)?.column),
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
        let series_sql = match &c.series {
            Some(s) => format!("CAST({} AS VARCHAR)", ident(&dimension(s)?.column)),
            None => "''".to_string(),
        };
        let sql = format!(
            "SELECT CAST(epoch_ms(_time) AS DOUBLE) AS t, {series_sql} AS s, {msql} AS v FROM {base} GROUP BY ALL ORDER BY 1, 2"
        );
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
    if !simple.is_empty() {
        let Out::Values(values) = next()? else {
            unreachable!("the KPI query gives values")
        };
        for ((i, _, _), v) in simple.iter().zip(values) {
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
