//! `dashboard-fixture`: writes a site folder shaped like the exporter's output
//! (`manifest.json` + `data/*.duckdb`, the export contract) from the example
//! project's generating units and a deterministic synthetic 5-minute history,
//! for the dashboard's browser test and benchmark.
//!
//! Units come from the sample's registration workbook
//! (`sample/reference/registration/NEM-Registration-and-Exemption-List_*.xls`,
//! the newest by name; sheet `PU and Scheduled Loads`, read with calamine):
//! NEM rows with a real DUID, each DUID once (its largest registration), the
//! fuel as the example's `dim_duid` names it (the category
//! `seeds/fuel_categories.csv` gives the primary/descriptor pair, so
//! `Battery storage` and `Battery Storage` are both `Battery`), the output
//! shape from `Fuel Source - Descriptor`.
//!
//! Datasets, shaped as the exporter writes the example project's: `intraday`
//! (5-minute, the last `--intraday-days`: date, time SMALLINT HHMM,
//! region_id, fuel, duid, mw, mwh, rrp), `hourly` (the same columns by hour,
//! one file per quarter, e.g. `hourly_2024_q1`), `daily` (date, region_id,
//! fuel, duid, mwh, mw, rrp; one file per quarter) and `units`; next to each
//! file of a grain's dataset, its `.rollups.duckdb` file (the dashboard's
//! stored rollups, as the exporter writes them). Hourly and daily rows are aggregated from the same 5-minute rows,
//! so every grain agrees.

use analytics::dashboard::{DashboardConfig, rollups};
use anyhow::{Context, Result, bail};
use calamine::{Data, Reader, Xlsx, open_workbook};
use chrono::{Datelike, NaiveDate, TimeDelta};
use clap::Parser;
use duckdb::{Connection, params};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The registration workbook's sheet of generating units.
const SHEET: &str = "PU and Scheduled Loads";

/// The registration columns the fixture uses, in `RegistrationRow` order.
const COLUMNS: [&str; 6] = [
    "DUID",
    "Station Name",
    "Region",
    "Fuel Source - Primary",
    "Fuel Source - Descriptor",
    "Reg Cap generation (MW)",
];

/// One row of the registration sheet: `COLUMNS` as text, the capacity as a
/// number (`None` for `-` or a blank).
type RegistrationRow = ([String; 5], Option<f64>);

/// The newest registration workbook of `project`'s sample.
fn registration_workbook(project: &Path) -> Result<PathBuf> {
    let dir = project.join("sample/reference/registration");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("{} not found (pass --project)", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("NEM-Registration-and-Exemption-List_") && n.ends_with(".xls"))
        .collect();
    names.sort();
    match names.pop() {
        Some(newest) => Ok(dir.join(newest)),
        None => bail!(
            "no NEM-Registration-and-Exemption-List_*.xls in {}",
            dir.display()
        ),
    }
}

/// Reads the registration sheet's `COLUMNS` (by name, header on the first row).
fn read_registration(path: &Path) -> Result<Vec<RegistrationRow>> {
    let mut book: Xlsx<_> =
        open_workbook(path).with_context(|| format!("opening {}", path.display()))?;
    let range = book
        .worksheet_range(SHEET)
        .with_context(|| format!("sheet {SHEET:?} of {}", path.display()))?;
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default();
    let mut at = [0usize; 6];
    for (slot, name) in at.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name:?} in {}", path.display()))?;
    }
    Ok(rows
        .map(|r| {
            let text = |k: usize| r[at[k]].to_string().trim().to_string();
            let capacity = match &r[at[5]] {
                Data::Float(v) => Some(*v),
                Data::Int(v) => Some(*v as f64),
                Data::String(v) => v.trim().parse().ok(),
                _ => None,
            };
            ([text(0), text(1), text(2), text(3), text(4)], capacity)
        })
        .collect())
}

#[derive(Parser, Debug)]
#[command(
    name = "dashboard-fixture",
    about = "Write manifest.json + data/*.duckdb following the export contract, for dashboard tests"
)]
struct Args {
    /// The site folder to write (created; `data/` and `manifest.json` inside).
    #[arg(long)]
    out: PathBuf,
    /// The example project (units come from its reference sample).
    #[arg(long, default_value = "example-project")]
    project: PathBuf,
    /// Last market day of the history.
    #[arg(long, default_value = "2025-03-31")]
    end: NaiveDate,
    /// Days of history.
    #[arg(long, default_value_t = 400)]
    days: u32,
    /// Days of the 5-minute intraday file.
    #[arg(long, default_value_t = 14)]
    intraday_days: u32,
    /// Copies of the reference units (1: the 39 listed units of the sample;
    /// more for benchmarks, suffixed `_2`, `_3`…).
    #[arg(long, default_value_t = 1)]
    unit_copies: u32,
    /// `day`: one intraday file per market day (`intraday_2025_03_31`,
    /// period `2025_03_31`, as the exporter's `split: day` writes them).
    #[arg(long)]
    intraday_split: Option<String>,
    /// The last day ends after this interval (HHMM, e.g. 1155): a partial day.
    #[arg(long)]
    last_day_until: Option<u16>,
    /// A price spike of this many $/MWh in SA1 at 18:00 the day before the last.
    #[arg(long)]
    price_spike: Option<f64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let out = &args.out;
    std::fs::create_dir_all(out.join("data"))
        .with_context(|| format!("creating {}/data", out.display()))?;
    let registration = read_registration(&registration_workbook(&args.project)?)?;
    let start = args.end - TimeDelta::days(i64::from(args.days) - 1);
    let intraday_start = args.end - TimeDelta::days(i64::from(args.intraday_days) - 1);
    let conn = Connection::open_in_memory().context("opening DuckDB")?;
    conn.execute_batch(
        "CREATE TABLE registration (duid VARCHAR, station_name VARCHAR, region_id VARCHAR,
                                    fuel VARCHAR, descriptor VARCHAR, capacity DOUBLE);",
    )?;
    {
        let mut appender = conn.appender("registration")?;
        for ([duid, station, region, fuel, descriptor], capacity) in &registration {
            appender.append_row(params![duid, station, region, fuel, descriptor, capacity])?;
        }
    }
    conn.execute_batch(&format!(
        "SET preserve_insertion_order = false;
         -- One row per real NEM DUID (the list has a '-' DUID and a DUID under
         -- two participants), fuels in their most common spelling.
         -- Fuel as the example's dim_duid names it: the category its seed
         -- gives the (primary, descriptor) pair, else 'Other'.
         CREATE TABLE base_units AS
           WITH categories AS (
             SELECT * FROM read_csv('{seed}', header = true, all_varchar = true))
           SELECT DISTINCT ON (duid) duid, station_name, region_id,
                  coalesce(c.fuel, 'Other') AS fuel, descriptor, capacity
           FROM registration AS r
           LEFT JOIN categories AS c
             ON lower(c.fuel_primary) = lower(r.fuel) AND lower(c.fuel_descriptor) = lower(r.descriptor)
           WHERE duid NOT IN ('', '-') AND capacity > 0
             AND region_id IN ('NSW1', 'QLD1', 'SA1', 'TAS1', 'VIC1')
           ORDER BY duid, capacity DESC;
         CREATE TABLE units AS
           SELECT CASE WHEN c = 1 THEN duid ELSE duid || '_' || c END AS duid,
                  CASE WHEN c = 1 THEN station_name ELSE station_name || ' ' || c END AS station_name,
                  region_id, fuel, descriptor, capacity, hash(duid, c) % 1000 / 1000.0 AS phase
           FROM base_units, range(1, {copies} + 1) AS r(c);
         -- Regional price per 5-minute interval: a daily shape, a seasonal drift
         -- and occasional spikes, all from hashes (deterministic).
         CREATE TABLE intervals AS
           SELECT d::DATE AS date, i AS slot,
                  (i // 12) * 100 + (i % 12) * 5 AS hhmm
           FROM range(DATE '{start}', DATE '{end}' + INTERVAL 1 DAY, INTERVAL 1 DAY) AS t(d),
                range(0, 288) AS s(i);
         CREATE TABLE prices AS
           SELECT date, slot, region_id,
                  (70 + 35 * sin(2 * pi() * (slot / 288.0 - 0.3)) + 20 * sin(dayofyear(date) / 58.0)
                   + CASE WHEN hash(date, slot, region_id) % 1500 = 0 THEN 900 ELSE 0 END
                   + (hash(region_id, date, slot) % 200) / 10.0 - 10
                   + CASE region_id WHEN 'SA1' THEN 25 WHEN 'TAS1' THEN -15 ELSE 0 END)::REAL AS rrp
           FROM intervals, (VALUES ('NSW1'), ('QLD1'), ('SA1'), ('TAS1'), ('VIC1')) AS r(region_id);
         CREATE TABLE five AS
           SELECT i.date, i.hhmm::SMALLINT AS time, u.region_id, u.fuel, u.duid,
                  greatest(0, u.capacity * CASE
                     WHEN u.descriptor = 'Solar' THEN greatest(0, sin(pi() * (i.slot - 78) / 144.0))
                     WHEN u.descriptor = 'Wind' THEN 0.35 + 0.3 * sin(dayofyear(i.date) / 3.0 + 6 * u.phase) + 0.1 * sin(i.slot / 40.0 + u.phase * 9)
                     WHEN u.descriptor LIKE '%Coal' THEN 0.78 + 0.08 * sin(2 * pi() * (i.slot / 288.0 - 0.35))
                     WHEN u.descriptor LIKE '%Gas%' THEN CASE WHEN i.slot BETWEEN 204 AND 252 THEN 0.7 ELSE 0.08 END
                     WHEN u.descriptor = 'Water' THEN 0.25 + 0.25 * sin(2 * pi() * (i.slot / 288.0 - 0.45))
                     ELSE 0.2 * sin(2 * pi() * (i.slot / 288.0 - 0.5)) END
                     * (0.92 + (hash(u.duid, i.date, i.slot) % 160) / 1000.0))::REAL AS mw,
                  p.rrp
           FROM intervals AS i
           CROSS JOIN units AS u
           JOIN prices AS p ON p.date = i.date AND p.slot = i.slot AND p.region_id = u.region_id;",
        copies = args.unit_copies,
        seed = args
            .project
            .join("seeds/fuel_categories.csv")
            .display()
            .to_string()
            .replace('\'', "''"),
        start = start,
        end = args.end,
    ))
    .context("generating the 5-minute history")?;
    if let Some(until) = args.last_day_until {
        conn.execute_batch(&format!(
            "DELETE FROM five WHERE date = DATE '{end}' AND time > {until};",
            end = args.end
        ))
        .context("cutting the last day")?;
    }
    if let Some(spike) = args.price_spike {
        conn.execute_batch(&format!(
            "UPDATE five SET rrp = {spike} WHERE region_id = 'SA1' AND time = 1800
               AND date = DATE '{end}' - INTERVAL 1 DAY;",
            end = args.end
        ))
        .context("adding the price spike")?;
    }

    // The example project's dashboard, for the rollups its files hold.
    let settings = args.project.join("analytics.yml");
    let yaml: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&settings)
            .with_context(|| format!("reading {}", settings.display()))?,
    )
    .with_context(|| format!("parsing {}", settings.display()))?;
    let dashboard = match yaml.get("dashboard") {
        Some(section) => Some(
            DashboardConfig::from_value(Some(section))
                .with_context(|| format!("{}: dashboard", settings.display()))?,
        ),
        None => None,
    };

    let mut files = Vec::new();
    let mut write = |dataset: &str,
                     file: &str,
                     grain: Option<&str>,
                     period: Option<String>,
                     select: &str,
                     order: &str|
     -> Result<()> {
        let rel = format!("data/{file}.duckdb");
        let path = out.join(&rel);
        let _ = std::fs::remove_file(&path);
        let path_sql = path.display().to_string().replace('\'', "''");
        conn.execute_batch(&format!(
            "ATTACH '{path_sql}' AS x;
             CREATE TABLE x.{dataset} AS {select} ORDER BY {order};"
        ))
        .with_context(|| format!("writing {rel}"))?;
        // The dashboard's rollups, stored as the exporter stores them.
        let names: Vec<String> = conn
            .prepare(&format!(
                "SELECT column_name FROM duckdb_columns() \
                 WHERE database_name = 'x' AND table_name = '{dataset}' ORDER BY column_index"
            ))?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let stored = rollups::stored_for(dashboard.as_ref(), dataset, &names);
        // Next to the rows, in a file of their own, as the exporter stores them.
        let mut companion = None;
        if !stored.is_empty() {
            let rrel = rollups::file_of(&rel);
            let rpath = out.join(&rrel);
            let _ = std::fs::remove_file(&rpath);
            let rpath_sql = rpath.display().to_string().replace('\'', "''");
            conn.execute_batch(&format!(
                "ATTACH '{rpath_sql}' AS r (STORAGE_VERSION '{}', BLOCK_SIZE {}); {}",
                analytics::export::STORAGE_VERSION,
                rollups::BLOCK_SIZE,
                rollups::create_sql(&stored, "r", &format!("x.{dataset}"))
            ))
            .with_context(|| format!("writing {rrel}"))?;
            let count: Vec<String> = stored
                .iter()
                .map(|r| format!("(SELECT count(*) FROM r.{})", r.table))
                .collect();
            let rows: i64 =
                conn.query_row(&format!("SELECT {}", count.join(" + ")), [], |r| r.get(0))?;
            conn.execute_batch("DETACH r;")?;
            let bytes = std::fs::read(&rpath).with_context(|| format!("reading {rrel}"))?;
            companion = Some(serde_json::json!({
                "dataset": rollups::dataset_of(dataset), "path": rrel, "table": stored[0].table,
                "grain": grain, "period": period, "rows": rows, "bytes": bytes.len(),
                "sha256": hex(&Sha256::digest(&bytes)),
            }));
        }
        conn.execute_batch("DETACH x;")
            .with_context(|| format!("writing {rel}"))?;
        let check = Connection::open(&path).with_context(|| format!("reopening {rel}"))?;
        let (rows, min_date, max_date): (i64, Option<String>, Option<String>) = check.query_row(
            &format!(
                "SELECT count(*), {min}, {max} FROM {dataset}",
                min = if dataset == "units" {
                    "NULL"
                } else {
                    "min(date)::VARCHAR"
                },
                max = if dataset == "units" {
                    "NULL"
                } else {
                    "max(date)::VARCHAR"
                },
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut stmt = check.prepare(&format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_name = '{dataset}' ORDER BY ordinal_position"
        ))?;
        let columns: Vec<serde_json::Value> = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(n, t)| serde_json::json!({"name": n, "type": t}))
            .collect();
        drop(stmt);
        drop(check);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {rel}"))?;
        files.push(serde_json::json!({
            "dataset": dataset, "path": rel, "table": dataset, "grain": grain, "period": period,
            "rows": rows, "bytes": bytes.len(), "sha256": hex(&Sha256::digest(&bytes)),
            "min_date": min_date, "max_date": max_date, "columns": columns,
        }));
        if let Some(mut c) = companion {
            c["min_date"] = serde_json::json!(min_date);
            c["max_date"] = serde_json::json!(max_date);
            files.push(c);
        }
        Ok(())
    };

    let intraday = |filter: &str| {
        format!(
            "SELECT date, time, region_id, fuel, duid, mw, (mw / 12)::REAL AS mwh, rrp FROM five WHERE {filter}"
        )
    };
    match args.intraday_split.as_deref() {
        None => write(
            "intraday",
            "intraday",
            Some("5min"),
            None,
            &intraday(&format!("date >= DATE '{intraday_start}'")),
            "date, time, region_id, duid",
        )?,
        Some("day") => {
            let mut day = intraday_start;
            while day <= args.end {
                let period = day.format("%Y_%m_%d").to_string();
                write(
                    "intraday",
                    &format!("intraday_{period}"),
                    Some("5min"),
                    Some(period),
                    &intraday(&format!("date = DATE '{day}'")),
                    "date, time, region_id, duid",
                )?;
                day += TimeDelta::days(1);
            }
        }
        Some(other) => bail!("--intraday-split {other}: only `day` is known"),
    }
    // One hourly and one daily file per quarter, as the example project
    // exports them (`split: quarter`).
    let mut quarter = (start.year(), (start.month0() / 3) + 1);
    loop {
        let (y, q) = quarter;
        let first = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1).context("quarter start")?;
        if first > args.end {
            break;
        }
        let next = if q == 4 { (y + 1, 1) } else { (y, q + 1) };
        let last = NaiveDate::from_ymd_opt(next.0, (next.1 - 1) * 3 + 1, 1)
            .context("quarter end")?
            - TimeDelta::days(1);
        write(
            "hourly",
            &format!("hourly_{y}_q{q}"),
            Some("hour"),
            Some(format!("{y}_q{q}")),
            &format!(
                "SELECT date, ((time // 100) * 100)::SMALLINT AS time, region_id, fuel, duid,
                        avg(mw)::REAL AS mw, (sum(mw) / 12)::REAL AS mwh, avg(rrp)::REAL AS rrp
                 FROM five WHERE date BETWEEN DATE '{first}' AND DATE '{last}'
                 GROUP BY ALL"
            ),
            "date, time, region_id, duid",
        )?;
        write(
            "daily",
            &format!("daily_{y}_q{q}"),
            Some("day"),
            Some(format!("{y}_q{q}")),
            &format!(
                "SELECT date, region_id, fuel, duid, (sum(mw) / 12)::REAL AS mwh,
                        avg(mw)::REAL AS mw, avg(rrp)::REAL AS rrp
                 FROM five WHERE date BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY ALL"
            ),
            "date, region_id, duid",
        )?;
        quarter = next;
    }
    write(
        "units",
        "units",
        None,
        None,
        "SELECT duid, station_name, region_id, fuel FROM units",
        "duid",
    )?;
    let manifest = serde_json::json!({
        "version": 1,
        "project": "nem",
        "exported_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "files": files,
    });
    let path = out.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
