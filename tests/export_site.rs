//! Export: datasets shaped to their grain, windowed, split, compact and
//! sorted; which modes write what; the files open in DuckDB-WASM 1.32.0;
//! and the whole flow (ci builds, import exports and publishes) against the
//! fake GitHub API.

mod common;
use analytics::Manifest;
use common::github::{FakeGitHub, clone_files};
use common::{TempProject, int, repo_root, text};
use std::path::Path;
use std::process::Command;

/// Runs `node tests/wasm/open_duckdb.cjs FILES…` and returns its JSON.
fn open_in_wasm(files: &[&Path]) -> Result<serde_json::Value, String> {
    assert!(
        repo_root()
            .join("node_modules/@duckdb/duckdb-wasm")
            .is_dir(),
        "node_modules is missing: run `npm ci` at the repository root (scripts/test does)"
    );
    let out = Command::new("node")
        .current_dir(repo_root())
        .arg("tests/wasm/open_duckdb.cjs")
        .args(files)
        .output()
        .expect("node is needed for the DuckDB-WASM check");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn read_only(path: &Path) -> duckdb::Connection {
    let cfg = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    duckdb::Connection::open_with_flags(path, cfg).unwrap()
}

/// Two units, 5-minute readings from 2024-06-29 to 2024-07-02 (four days
/// across the half-year boundary), DOUBLE MW and a DECIMAL price.
const READINGS: &str = "
{{ config(materialized='table') }}
select
    timestamp '2024-06-29 00:00:00' + to_minutes(5 * i) as ts,
    cast(timestamp '2024-06-29 00:00:00' + to_minutes(5 * i) as date) as date,
    unit,
    case when unit = 'A' then 10.0 + (i % 12) else 100.0 end::double as mw,
    cast(50.25 as decimal(10, 2)) as price
from range(4 * 288) as r(i), (values ('B'), ('A')) as u(unit)
";

const EXPORTS: &str = "
targets:
  wh: { type: duckdb, path: wh.duckdb, settings: { preserve_insertion_order: false } }
exports:
  - name: fine
    sql: select ts, date, unit, mw, price from {{ ref('readings') }}
    grain: 5min
    time_column: ts
    aggregate: { mw: avg, price: avg }
    window_days: 2
    modes: [intraday, backfill]
  - name: hourly
    sql: select ts, date, unit, mw, mw / 12 as mwh, price from {{ ref('readings') }}
    grain: hour
    time_column: ts
    aggregate: { mw: avg, mwh: sum, price: avg }
    split: half_year
  - name: daily
    sql: select ts, date, unit, mw, price from {{ ref('readings') }}
    grain: day
    time_column: ts
    aggregate: { mw: max, price: avg }
  - name: units
    sql: select distinct unit from {{ ref('readings') }}
";

fn project() -> TempProject {
    let p = TempProject::new("");
    p.write("models/readings.sql", READINGS)
        .write("analytics.yml", EXPORTS);
    p
}

#[test]
fn datasets_are_shaped_to_their_grain_window_split_compact_types_and_sort_order() {
    let p = project();
    let site = p.path().join("site");
    let out = p.run(&[
        "run",
        "--mode",
        "backfill",
        "--target",
        "wh",
        "--site-dir",
        site.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&site);
    assert_eq!(m.version, 1);
    assert_eq!(m.project, "p");
    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/fine.duckdb",
            "data/hourly_2024_h1.duckdb",
            "data/hourly_2024_h2.duckdb",
            "data/daily.duckdb",
            "data/units.duckdb"
        ]
    );
    let file = |name: &str| m.files.iter().find(|f| f.path == name).unwrap();

    // 5-minute, last 2 dates: 2 units x 288 intervals x 2 days.
    let fine = file("data/fine.duckdb");
    assert_eq!((fine.rows, fine.grain.as_str()), (2 * 288 * 2, "5min"));
    assert_eq!(fine.min_date.as_deref(), Some("2024-07-01"));
    assert_eq!(fine.max_date.as_deref(), Some("2024-07-02"));
    let types: Vec<(&str, &str)> = fine
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("date", "DATE"),
            ("time", "SMALLINT"),
            ("unit", "VARCHAR"),
            ("mw", "FLOAT"),
            ("price", "FLOAT")
        ]
    );

    // Hourly, split at the half-year: June 29-30 and July 1-2, 24 h x 2 units each.
    let h1 = file("data/hourly_2024_h1.duckdb");
    let h2 = file("data/hourly_2024_h2.duckdb");
    assert_eq!((h1.rows, h1.period.as_deref()), (96, Some("2024_h1")));
    assert_eq!((h2.rows, h2.period.as_deref()), (96, Some("2024_h2")));
    assert_eq!(h1.max_date.as_deref(), Some("2024-06-30"));
    assert_eq!(h2.min_date.as_deref(), Some("2024-07-01"));
    let db = read_only(&site.join("data/hourly_2024_h2.duckdb"));
    // Unit A reads 10..21 MW over each hour: avg 15.5, energy 15.5 MWh.
    let (mw, mwh, time): (f32, f32, i16) = db
        .query_row(
            "select mw, mwh, time from hourly where unit = 'A' and date = '2024-07-01' and time = 1300",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((mw, time), (15.5, 1300));
    assert!((mwh - 15.5).abs() < 1e-4, "{mwh}");
    assert_eq!(
        int(&db, "select count(distinct time) from hourly"),
        24,
        "HHMM hours 0, 100, … 2300"
    );
    assert_eq!(int(&db, "select max(time) from hourly"), 2300);
    // Sorted on date, time, unit in storage order (the target turned
    // insertion order off; the export turns it back on).
    db.execute_batch("SET threads = 1").unwrap();
    assert_eq!(
        int(
            &db,
            "select count(*) from (select row_number() over () as stored,
                    row_number() over (order by date, time, unit) as sorted from hourly)
             where stored <> sorted"
        ),
        0
    );
    assert_eq!(
        int(
            &db,
            "select count(*) from duckdb_tables() where database_name = current_database()"
        ),
        1,
        "one table per file, named after the dataset"
    );

    // Daily: 4 dates x 2 units, no time column; max of A is 21.
    let daily = file("data/daily.duckdb");
    assert_eq!(daily.rows, 8);
    assert!(!daily.columns.iter().any(|c| c.name == "time"));
    let db = read_only(&site.join("data/daily.duckdb"));
    assert_eq!(
        int(&db, "select max(mw)::int from daily where unit = 'A'"),
        21
    );

    // No date column: no dates.
    let units = file("data/units.duckdb");
    assert_eq!((units.rows, units.min_date.clone()), (2, None));

    // Every file is what the manifest says.
    for f in &m.files {
        let (bytes, sha) = analytics::hash::hash_file(&site.join(&f.path)).unwrap();
        assert_eq!((bytes, sha), (f.bytes, f.sha256.clone()), "{}", f.path);
    }
    let summary = text(&out);
    assert!(summary.contains("data/hourly_2024_h2.duckdb"), "{summary}");

    // The statements each export ran, in order, next to the compiled models.
    let script = std::fs::read_to_string(p.path().join("target/compiled/p/exports/hourly.sql"))
        .expect("the hourly export's statements");
    let at = |s: &str| {
        script
            .find(s)
            .unwrap_or_else(|| panic!("{s} in:\n{script}"))
    };
    assert!(at("CREATE OR REPLACE TEMP TABLE \"__export_hourly\"") < at("hourly_2024_h1.duckdb"));
    assert!(at("hourly_2024_h1.duckdb") < at("hourly_2024_h2.duckdb"));
    assert_eq!(script.matches("ATTACH ").count(), 2, "{script}");
    assert!(
        script
            .trim_end()
            .ends_with("DROP TABLE IF EXISTS temp.main.\"__export_hourly\";")
    );
}

#[test]
fn each_mode_writes_its_datasets_and_a_failing_backfill_publishes_nothing() {
    let p = project();
    let site = p.path().join("site");
    let site_arg = site.to_str().unwrap();
    // ci without a site folder exports nothing.
    let out = p.run(&["run", "--mode", "ci"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!p.path().join("target/site-staging").exists());

    // intraday: only the datasets marked for it.
    let out = p.run(&[
        "run",
        "--mode",
        "intraday",
        "--target",
        "wh",
        "--site-dir",
        site_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&site);
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].path, "data/fine.duckdb");

    // backfill: everything; a later intraday run keeps the rest.
    let out = p.run(&[
        "run",
        "--mode",
        "backfill",
        "--target",
        "wh",
        "--site-dir",
        site_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(manifest(&site).files.len(), 5);
    let hourly_before = std::fs::read(site.join("data/hourly_2024_h1.duckdb")).unwrap();
    let out = p.run(&[
        "run",
        "--mode",
        "intraday",
        "--target",
        "wh",
        "--site-dir",
        site_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&site);
    assert_eq!(m.files.len(), 5);
    assert_eq!(
        std::fs::read(site.join("data/hourly_2024_h1.duckdb")).unwrap(),
        hourly_before
    );

    // A failing test in backfill: nothing exported, the site untouched.
    p.write(
        "tests/no_rows.sql",
        "select * from {{ ref('readings') }} where mw > 0",
    );
    let before = std::fs::read(site.join("manifest.json")).unwrap();
    let out = p.run(&[
        "run",
        "--mode",
        "backfill",
        "--target",
        "wh",
        "--site-dir",
        site_arg,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not exported"), "{}", text(&out));
    assert_eq!(std::fs::read(site.join("manifest.json")).unwrap(), before);
}

#[test]
fn bad_export_settings_name_the_dataset() {
    let cases = [
        (
            "exports:\n  - name: x\n    sql: select 1 as a\n    grain: hour\n    aggregate: {a: sum}\n",
            "time_column",
        ),
        (
            "exports:\n  - name: x\n    sql: select 1 as a\n    grain: day\n",
            "aggregate",
        ),
        (
            "exports:\n  - name: x\n    sql: select 1 as a from {{ ref('nope') }}\n",
            "nope",
        ),
        (
            "exports:\n  - name: x\n    sql: select 1 as a\n    aggregate: {b: sum}\n    grain: 5min\n    time_column: a\n",
            "time_column `a`",
        ),
        (
            "exports:\n  - name: Bad-Name\n    sql: select 1\n",
            "Bad-Name",
        ),
    ];
    for (yml, expect) in cases {
        let p = TempProject::new("");
        p.write("models/m.sql", "select 1 as a")
            .write("analytics.yml", yml);
        let site = p.path().join("site");
        let out = p.run(&["run", "--mode", "ci", "--site-dir", site.to_str().unwrap()]);
        let all = text(&out);
        assert!(!out.status.success(), "{yml}: {all}");
        assert!(all.contains(expect), "{yml}: expected `{expect}` in {all}");
        assert!(
            all.contains("export `x`") || all.contains("Bad-Name"),
            "the dataset is named: {all}"
        );
    }
}

#[test]
fn exported_files_open_in_duckdb_wasm_and_a_newer_storage_format_would_not() {
    let p = project();
    let site = p.path().join("site");
    let out = p.run(&["run", "--mode", "ci", "--site-dir", site.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&site);
    let paths: Vec<std::path::PathBuf> = m.files.iter().map(|f| site.join(&f.path)).collect();
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let wasm = open_in_wasm(&refs).unwrap();
    assert_eq!(wasm["version"], "v1.4.3", "the dashboard's DuckDB-WASM");
    for (f, opened) in m.files.iter().zip(wasm["files"].as_array().unwrap()) {
        let tables = opened["tables"].as_object().unwrap();
        assert_eq!(tables.keys().collect::<Vec<_>>(), [&f.dataset]);
        assert_eq!(tables[&f.dataset]["rows"], f.rows, "{}", f.path);
    }
    // The check can fail: DuckDB 1.5's own newest format is refused.
    let newer = p.path().join("newer.duckdb");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS n (STORAGE_VERSION 'v1.5.0'); CREATE TABLE n.t AS SELECT 1 AS a; DETACH n;",
        newer.display()
    ))
    .unwrap();
    let err = open_in_wasm(&[&newer]).unwrap_err();
    assert!(err.contains("version number"), "{err}");
}

/// A copy of the example project, without build output.
fn copy_example() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_name() == "target" {
                continue;
            }
            if e.path().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&repo_root().join("example-project"), dir.path());
    dir
}

#[test]
fn the_example_project_exports_match_its_tables_and_import_publishes_them_to_github() {
    let dir = copy_example();
    let project = dir.path();
    let site = project.join("site");
    // The laptop flow: ci builds everything and writes the site.
    let out = common::analytics(
        &[
            "run",
            "--mode",
            "ci",
            "--target",
            "local",
            "--site-dir",
            site.to_str().unwrap(),
        ],
        project,
    );
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&site);
    assert_eq!(m.project, "nem");
    let mut datasets: Vec<&str> = m
        .files
        .iter()
        .map(|f| f.dataset.as_str())
        .filter(|d| !d.ends_with(".rollups"))
        .collect();
    datasets.dedup();
    assert_eq!(datasets, ["intraday", "hourly", "daily", "units"]);
    // Next to every file of a grain's dataset, its rollups file (same
    // period and dates); none for the units.
    for f in m
        .files
        .iter()
        .filter(|f| f.dataset != "units" && !f.dataset.ends_with(".rollups"))
    {
        let r = m
            .files
            .iter()
            .find(|r| r.path == analytics::dashboard::rollups::file_of(&f.path))
            .unwrap_or_else(|| panic!("{}: no rollups file", f.path));
        assert_eq!(r.dataset, format!("{}.rollups", f.dataset));
        assert_eq!(
            (&r.period, &r.min_date, &r.max_date),
            (&f.period, &f.min_date, &f.max_date)
        );
        assert!(
            r.bytes < f.bytes,
            "{}: {} bytes, rows {}",
            r.path,
            r.bytes,
            f.bytes
        );
    }
    assert!(!m.files.iter().any(|f| f.dataset == "units.rollups"));

    // Row counts against the source tables at each grain.
    let wh = read_only(&project.join("target/nem.duckdb"));
    let rows = |dataset: &str| -> i64 {
        m.files
            .iter()
            .filter(|f| f.dataset == dataset)
            .map(|f| f.rows as i64)
            .sum()
    };
    assert_eq!(
        rows("intraday"),
        int(
            &wh,
            "select count(*) from fct_scada where date > (select max(date) from fct_scada) - interval 14 day"
        )
    );
    assert_eq!(
        rows("hourly"),
        int(
            &wh,
            "select count(distinct (date, date_trunc('hour', settlementdate - interval 5 minute), duid)) from fct_scada"
        )
    );
    assert_eq!(
        rows("daily"),
        int(&wh, "select count(distinct (date, duid)) from fct_scada")
    );
    assert_eq!(rows("units"), int(&wh, "select count(*) from dim_duid"));
    // Energy is conserved from the 5-minute facts to the daily files (one a quarter).
    let daily_files: Vec<_> = m.files.iter().filter(|f| f.dataset == "daily").collect();
    assert!(
        daily_files
            .iter()
            .all(|f| f.path.starts_with("data/daily_")),
        "{:?}",
        daily_files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    let file_mwh: f64 = daily_files
        .iter()
        .map(|f| {
            read_only(&site.join(&f.path))
                .query_row("select sum(mwh)::double from daily", [], |r| {
                    r.get::<_, f64>(0)
                })
                .unwrap()
        })
        .sum();
    let fact_mwh: f64 = wh
        .query_row("select sum(mw / 12) from fct_scada", [], |r| r.get(0))
        .unwrap();
    assert!(
        (file_mwh - fact_mwh).abs() <= fact_mwh.abs() * 1e-5,
        "{file_mwh} vs {fact_mwh}"
    );
    // The dashboard's rollups (`dashboard.rollups`) are stored in a file
    // next to every file of a grain's dataset (not in it), grouped per date
    // (and time): the same numbers as the rows aggregated independently here.
    for f in m
        .files
        .iter()
        .filter(|f| f.dataset != "units" && !f.dataset.ends_with(".rollups"))
    {
        let c = read_only(&site.join(&f.path));
        assert_eq!(
            int(
                &c,
                "select count(*) from duckdb_tables() where table_name like '\\_rollup%' escape '\\'"
            ),
            0,
            "{}: the rows file holds rollups",
            f.path
        );
        let rollups = site.join(analytics::dashboard::rollups::file_of(&f.path));
        c.execute_batch(&format!("attach '{}' as r (read_only)", rollups.display()))
            .unwrap();
        let t = &f.dataset;
        let time = if t == "daily" { "" } else { "time, " };
        let differ = |table: &str, keys: &str, cols: &[(&str, &str)]| -> i64 {
            let agg: Vec<String> = cols.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
            let cmp: Vec<String> = cols
                .iter()
                .map(|(n, _)| {
                    format!(
                        "abs(coalesce(s.{n}, 0) - coalesce(q.{n}, 0)) > 1e-6 * greatest(1, abs(coalesce(q.{n}, 0)))"
                    )
                })
                .collect();
            int(
                &c,
                &format!(
                    "select count(*) from {table} as s full join \
                     (select {keys}, {} from {t} group by all) as q using ({keys}) \
                     where s.fuel is null or q.fuel is null or {}",
                    agg.join(", "),
                    cmp.join(" or ")
                ),
            )
        };
        let per_fuel = differ(
            "r._rollup_1",
            &format!("date, {time}region_id, fuel"),
            &[
                ("mw", "sum(mw)"),
                ("mwh", "sum(mwh)"),
                ("rrp_n", "count(rrp)"),
                ("rrp_sum", "sum(rrp)"),
                ("rrp_mwh", "sum(rrp * mwh) filter (where mwh > 0)"),
            ],
        );
        // Per unit and date at the day grain would be the rows again: stored
        // per file (its period), one row per unit.
        let per_unit = differ(
            "r._rollup_0",
            if t == "daily" {
                "region_id, fuel, duid"
            } else {
                "date, region_id, fuel, duid"
            },
            &[
                ("mwh", "sum(mwh)"),
                ("mw_max", "max(mw)"),
                ("mwh_sold", "sum(mwh) filter (where mwh > 0)"),
            ],
        );
        if t == "daily" {
            assert_eq!(
                int(
                    &c,
                    "select count(*) from duckdb_columns() where database_name = 'r' \
                     and table_name = '_rollup_0' and column_name = 'date'"
                ),
                0,
                "{}: the per-unit rollup of a daily file is per period",
                f.path
            );
        }
        assert_eq!(
            (per_fuel, per_unit),
            (0, 0),
            "{}: stored rollup rows that differ from the rows",
            f.path
        );
        assert!(
            int(&c, "select count(*) from r._rollup_1") < f.rows as i64,
            "{}",
            f.path
        );
    }
    let paths: Vec<std::path::PathBuf> = m.files.iter().map(|f| site.join(&f.path)).collect();
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let wasm = open_in_wasm(&refs).unwrap();
    for (f, opened) in m.files.iter().zip(wasm["files"].as_array().unwrap()) {
        if f.dataset.ends_with(".rollups") {
            assert!(opened["tables"][&f.table]["rows"].is_u64(), "{}", f.path);
        } else {
            assert_eq!(opened["tables"][&f.dataset]["rows"], f.rows, "{}", f.path);
        }
    }
    drop(wh);

    // import: no ingest, no models — export from the target and publish.
    let token = "ghs_exampleTOKEN0987654321abc";
    let gh = FakeGitHub::start("nem/dashboard", token, true);
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "import", "--target", "local", "--project"])
        .arg(project)
        .env("GITHUB_TOKEN", token)
        .env("GITHUB_API_URL", &gh.api_url)
        .env("GITHUB_REPOSITORY", "nem/dashboard")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(token), "the token leaked: {all}");
    assert!(all.contains("nem/dashboard@gh-pages"), "{all}");
    assert!(!all.contains("model "), "import builds no model: {all}");
    let published = clone_files(&gh.repo, "gh-pages");
    let staged = project.join("target/site-staging");
    let pm = Manifest::parse(std::str::from_utf8(&published["manifest.json"]).unwrap()).unwrap();
    assert_eq!(pm.files.len(), m.files.len());
    for f in &pm.files {
        assert_eq!(
            published[&f.path],
            std::fs::read(staged.join(&f.path)).unwrap(),
            "{}",
            f.path
        );
        assert_eq!(published[&f.path].len() as u64, f.bytes);
    }
    // Data files, manifest and the dashboard page: all of the staged site,
    // nothing else, in the one commit.
    assert!(
        published.contains_key("index.html"),
        "{:?}",
        published.keys()
    );
    let mut staged_files = std::collections::BTreeSet::new();
    let mut dirs = vec![staged.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                staged_files.insert(
                    path.strip_prefix(&staged)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let published_files: std::collections::BTreeSet<String> = published.keys().cloned().collect();
    assert_eq!(published_files, staged_files);
    assert!(published.len() > pm.files.len() + 1);
}

#[test]
fn an_export_over_100_mib_fails_naming_the_dataset_and_nothing_is_written_to_the_site() {
    // 18 M random 64-bit values barely compress: ~115 MB.
    let p = TempProject::new("");
    p.write(
        "models/noise.sql",
        "{{ config(materialized='table') }} select hash(range) as h from range(18000000)",
    )
    .write(
        "analytics.yml",
        "exports:\n  - name: noise\n    sql: select h from {{ ref('noise') }}\n",
    );
    let site = p.path().join("site");
    let out = p.run(&["run", "--mode", "ci", "--site-dir", site.to_str().unwrap()]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("export `noise`"), "{all}");
    assert!(all.contains("100 MiB"), "{all}");
    assert!(all.contains("split"), "{all}");
    assert!(!site.exists(), "nothing may reach the site: {all}");
}

/// Runs `analytics run --mode intraday` on `p` into `site` and to the fake
/// GitHub `gh`, as a workflow step would (token and repository from the
/// environment).
fn intraday_publishing(p: &TempProject, site: &Path, gh: &FakeGitHub, token: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "intraday", "--target", "wh", "--site-dir"])
        .arg(site)
        .arg("--project")
        .arg(p.path())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("GITHUB_TOKEN", token)
        .env("GITHUB_API_URL", &gh.api_url)
        .env("GITHUB_REPOSITORY", "octo/site")
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(token), "the token leaked: {all}");
    all
}

#[test]
fn an_intraday_run_that_took_nothing_exports_and_publishes_nothing_and_the_site_has_nojekyll() {
    use common::github::commit_count;
    use common::http::{Reply, TestServer};
    use std::sync::{Arc, Mutex};
    let feed = Arc::new(Mutex::new(b"k,v\n1,10.5\n2,20.5\n".to_vec()));
    let served = feed.clone();
    let server = TestServer::start(move |path, _| match path {
        "/feed.csv" => Reply::ok(served.lock().unwrap().clone()),
        _ => Reply::status(404),
    });
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{ type: duckdb, path: wh.duckdb }}\n\
             sources:\n  - name: feed\n    kind: url\n    url: {}/feed.csv\n    format: csv\n    modes: [intraday]\n\
             exports:\n  - name: readings\n    sql: select k, v from {{{{ ref('facts') }}}}\n    modes: [intraday]\n",
            server.base
        ),
    )
    .write(
        "models/facts.sql",
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='k') }}\n\
         select k, v from {{ read_source('feed', columns={'k': 'INTEGER', 'v': 'DOUBLE'}) }}\n",
    )
    // A table model is rebuilt every run with all its rows; it changes nothing.
    .write(
        "models/dim.sql",
        "{{ config(materialized='table') }} select 1 as x",
    );
    let token = "ghs_intradayTOKEN0123456789xyz";
    let gh = FakeGitHub::start("octo/site", token, true);
    let site = p.path().join("site");

    // The first run takes the file, exports and publishes, with `.nojekyll`
    // at the root of both the folder and the branch.
    let all = intraday_publishing(&p, &site, &gh, token);
    assert!(all.contains("commit "), "{all}");
    assert_eq!(manifest(&site).files[0].rows, 2);
    assert_eq!(std::fs::read(site.join(".nojekyll")).unwrap(), b"");
    let published = clone_files(&gh.repo, "gh-pages");
    assert_eq!(published[".nojekyll"], b"");
    assert!(
        published.contains_key("data/readings.duckdb"),
        "{:?}",
        published.keys()
    );
    let manifest_before = std::fs::read(site.join("manifest.json")).unwrap();
    let staged_before = std::fs::read(p.path().join("target/site-staging/manifest.json")).unwrap();
    let requests_before = gh.requests.lock().unwrap().len();

    // Nothing new: the same file is not taken again — no model, no export,
    // no publish, and the run says why.
    let all = intraday_publishing(&p, &site, &gh, token);
    assert!(
        all.contains(
            "nothing new: 1 source took no new file, so no model, test, export or publish ran"
        ),
        "{all}"
    );
    assert!(!all.contains("models built"), "{all}");
    assert_eq!(
        std::fs::read(site.join("manifest.json")).unwrap(),
        manifest_before
    );
    assert_eq!(
        std::fs::read(p.path().join("target/site-staging/manifest.json")).unwrap(),
        staged_before,
        "the export ran again"
    );
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 1);
    assert_eq!(
        gh.requests.lock().unwrap().len(),
        requests_before,
        "no GitHub call at all"
    );

    // A changed file is taken: exported and published again.
    *feed.lock().unwrap() = b"k,v\n1,10.5\n2,20.5\n3,30.5\n".to_vec();
    let all = intraday_publishing(&p, &site, &gh, token);
    assert!(!all.contains("nothing new"), "{all}");
    assert_eq!(manifest(&site).files[0].rows, 3);
    assert_eq!(
        commit_count(&gh.repo, "gh-pages"),
        1,
        "single history: one commit"
    );
    assert_ne!(
        clone_files(&gh.repo, "gh-pages")["data/readings.duckdb"],
        published["data/readings.duckdb"]
    );
}

/// Every data file of the site at `dir`: path → bytes.
fn data_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("data")) else {
        return files;
    };
    for e in entries {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(format!("data/{name}"), std::fs::read(&path).unwrap());
    }
    files
}

/// The data files of the staging folder the export wrote itself: not hard
/// links of the site's files (kept files are linked from the site folder).
fn written_in_staging(project: &Path, site: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let staging = project.join("target/site-staging");
    data_files(&staging)
        .into_keys()
        .filter(|path| {
            let ino = |dir: &Path| std::fs::metadata(dir.join(path)).map(|m| m.ino()).ok();
            ino(&staging) != ino(site)
        })
        .collect()
}

#[test]
fn an_unchanged_export_keeps_every_file_byte_for_byte_and_a_changed_day_rewrites_only_its_files() {
    let p = TempProject::new("");
    p.write("models/readings.sql", READINGS).write(
        "analytics.yml",
        &EXPORTS.replace("window_days: 2\n", "window_days: 2\n    split: day\n"),
    );
    let site = p.path().join("site");
    let backfill = || {
        let out = p.run(&[
            "run",
            "--mode",
            "backfill",
            "--target",
            "wh",
            "--site-dir",
            site.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    backfill();
    let first = manifest(&site);
    let paths: Vec<&str> = first.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/fine_2024_07_01.duckdb",
            "data/fine_2024_07_02.duckdb",
            "data/hourly_2024_h1.duckdb",
            "data/hourly_2024_h2.duckdb",
            "data/daily.duckdb",
            "data/units.duckdb"
        ]
    );
    let day = first.files.iter().find(|f| f.path == paths[1]).unwrap();
    assert_eq!(day.period.as_deref(), Some("2024_07_02"));
    assert_eq!(
        (day.min_date.as_deref(), day.max_date.as_deref(), day.rows),
        (Some("2024-07-02"), Some("2024-07-02"), 2 * 288)
    );
    assert!(first.files.iter().all(|f| f.fingerprint.is_some()));
    let bytes_before = data_files(&site);

    // The same rows again: every file keeps its bytes and its sha256, and
    // none is written (the staging folder links the site's files).
    let all = backfill();
    assert!(all.contains("0 written"), "{all}");
    let second = manifest(&site);
    assert_eq!(second.files, first.files, "{all}");
    assert_eq!(data_files(&site), bytes_before);
    assert_eq!(
        data_files(&p.path().join("target/site-staging")),
        bytes_before
    );
    assert!(
        written_in_staging(p.path(), &site).is_empty(),
        "an unchanged file was written again"
    );

    // One day's rows change (unit A on 2024-07-02): its day file, the
    // half-year and the daily file are rewritten; the other day, the other
    // half-year and the units keep their bytes.
    p.write(
        "models/readings.sql",
        &READINGS.replace(
            "else 100.0 end::double as mw",
            "else 100.0 end::double \
             + case when unit = 'A' and ts >= timestamp '2024-07-02 12:00:00' then 1 else 0 end as mw",
        ),
    );
    backfill();
    let third = manifest(&site);
    let after = data_files(&site);
    let changed: Vec<&str> = third
        .files
        .iter()
        .filter(|f| {
            let old = first.files.iter().find(|o| o.path == f.path).unwrap();
            assert_eq!(
                old.sha256 == f.sha256,
                bytes_before[&f.path] == after[&f.path],
                "{}: sha256 and bytes disagree",
                f.path
            );
            old.sha256 != f.sha256
        })
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "data/fine_2024_07_02.duckdb",
            "data/hourly_2024_h2.duckdb",
            "data/daily.duckdb"
        ]
    );
    assert_eq!(
        written_in_staging(p.path(), &site),
        [
            "data/daily.duckdb",
            "data/fine_2024_07_02.duckdb",
            "data/hourly_2024_h2.duckdb"
        ]
    );
    // The kept files are still valid files.
    let kept = read_only(&site.join("data/hourly_2024_h1.duckdb"));
    assert_eq!(int(&kept, "select count(*) from hourly"), 2 * 24 * 2);
}

#[test]
fn an_import_after_one_new_day_uploads_only_the_files_that_day_changed() {
    let dir = copy_example();
    let project = dir.path();
    let out = common::analytics(&["run", "--mode", "ci", "--target", "local"], project);
    assert!(out.status.success(), "{}", text(&out));
    let token = "ghs_exampleTOKEN0987654321abc";
    let gh = FakeGitHub::start("nem/dashboard", token, true);
    // Published to a folder and to the branch, as a runner keeping the
    // folder would (the folder gives the dashboard step the kept files).
    let site = project.join("site");
    let import = || {
        let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
            .args(["run", "--mode", "import", "--target", "local", "--site-dir"])
            .arg(&site)
            .arg("--project")
            .arg(project)
            .env("GITHUB_TOKEN", token)
            .env("GITHUB_API_URL", &gh.api_url)
            .env("GITHUB_REPOSITORY", "nem/dashboard")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        assert!(!all.contains(token), "the token leaked: {all}");
        all
    };
    import();
    let first = clone_files(&gh.repo, "gh-pages");
    let first_manifest =
        Manifest::parse(std::str::from_utf8(&first["manifest.json"]).unwrap()).unwrap();
    // The sample's intraday days, one file each, then hourly, daily, units;
    // each file of a grain's dataset followed by its rollups file.
    let paths: Vec<&str> = first_manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "data/intraday_2024_01_01.duckdb",
            "data/intraday_2024_01_01.rollups.duckdb",
            "data/intraday_2024_01_02.duckdb",
            "data/intraday_2024_01_02.rollups.duckdb",
            "data/intraday_2024_01_03.duckdb",
            "data/intraday_2024_01_03.rollups.duckdb",
            "data/hourly_2024_q1.duckdb",
            "data/hourly_2024_q1.rollups.duckdb",
            "data/daily_2024_q1.duckdb",
            "data/daily_2024_q1.rollups.duckdb",
            "data/units.duckdb"
        ]
    );

    // The same warehouse again: no blob, no commit.
    let blobs = gh.count("POST", "/git/blobs");
    let all = import();
    let again = clone_files(&gh.repo, "gh-pages");
    let differ: Vec<&String> = again
        .keys()
        .filter(|p| first.get(*p) != again.get(*p))
        .collect();
    assert!(differ.is_empty(), "{differ:?} {all}");
    assert_eq!(gh.count("POST", "/git/blobs"), blobs, "{all}");
    assert!(all.contains("nothing changed"), "{all}");

    // One new day in the warehouse (a copy of the newest day, a day later),
    // imported: exactly 3 data files and their 3 rollups files are
    // uploaded: the new day's intraday file (an import exports every
    // dataset; a backfill leaves the intraday one to intraday runs) and the
    // quarter's hourly and daily files (`split: quarter`: hourly_2024_q1,
    // daily_2024_q1); then manifest.json, which carries the first-paint
    // summary: one blob per changed file, 7 in all. The page (index.html)
    // does not change; the other days' files (rows and rollups) and the
    // units are not uploaded again.
    let wh = duckdb::Connection::open(project.join("target/nem.duckdb")).unwrap();
    wh.execute_batch(
        "insert into fct_scada select * replace (settlementdate + interval 1 day as settlementdate, \
         date + 1 as date) from fct_scada where date = (select max(date) from fct_scada)",
    )
    .unwrap();
    drop(wh);
    let blobs = gh.count("POST", "/git/blobs");
    let all = import();
    let uploaded = gh.count("POST", "/git/blobs") - blobs;
    let after = clone_files(&gh.repo, "gh-pages");
    let changed: Vec<&str> = after
        .iter()
        .filter(|(path, bytes)| first.get(*path) != Some(*bytes))
        .map(|(path, _)| path.as_str())
        .collect();
    let (data, page): (Vec<&str>, Vec<&str>) = changed.iter().partition(|p| p.ends_with(".duckdb"));
    assert_eq!(
        data,
        [
            "data/daily_2024_q1.duckdb",
            "data/daily_2024_q1.rollups.duckdb",
            "data/hourly_2024_q1.duckdb",
            "data/hourly_2024_q1.rollups.duckdb",
            "data/intraday_2024_01_04.duckdb",
            "data/intraday_2024_01_04.rollups.duckdb"
        ],
        "{all}"
    );
    assert_eq!(page, ["manifest.json"], "{all}");
    assert_eq!(uploaded, changed.len(), "one blob per changed file: {all}");
    assert_eq!(uploaded, 7, "{changed:?}");
    // Every file the new manifest lists is the file on the branch (the
    // kept days' rollups files too: carried by the export's keep logic).
    let m = Manifest::parse(std::str::from_utf8(&after["manifest.json"]).unwrap()).unwrap();
    assert_eq!(m.files.len(), 13);
    for f in &m.files {
        assert_eq!(
            analytics::hash::sha256_hex(&after[&f.path]),
            f.sha256,
            "{}",
            f.path
        );
    }
}

/// A site with the example project's shape (a 5-minute dataset split by
/// day that only intraday runs and imports export, half-years, one daily
/// file, the units) and a dashboard opening on 7 days; `readings` holds
/// `var('days')` days from 2024-06-29.
const BRANCH_SITE: &str = "
targets:
  wh: { type: duckdb, path: wh.duckdb }
exports:
  - name: fine
    sql: select ts, date, unit, mw from {{ ref('readings') }}
    grain: 5min
    time_column: ts
    aggregate: { mw: avg }
    window_days: 14
    split: day
    modes: [intraday, import]
  - name: hourly
    sql: select ts, date, unit, mw from {{ ref('readings') }}
    grain: hour
    time_column: ts
    aggregate: { mw: avg }
    split: half_year
  - name: daily
    sql: select ts, date, unit, mw from {{ ref('readings') }}
    grain: day
    time_column: ts
    aggregate: { mw: avg }
  - name: units
    sql: select distinct unit, 'Unit ' || unit as name from {{ ref('readings') }}
dashboard:
  assets: cdn
  date_column: date
  default_days: 7
  grains:
    - { grain: 5min, dataset: fine, max_days: 7, time: \"date + make_time(time // 100, time % 100, 0)\" }
    - { grain: hour, dataset: hourly, max_days: 30, time: \"date + make_time(time // 100, time % 100, 0)\" }
    - { grain: day, dataset: daily, time: \"CAST(date AS TIMESTAMP)\" }
  dimensions:
    - { name: unit, column: unit, label: Unit, lookup: { dataset: units, key: unit, label: name } }
  measures:
    - { name: generation, label: Generation, unit: MW, decimals: 1, sql: \"sum(mw) / count(DISTINCT _time)\" }
  kpis:
    - { label: Latest generation, measure: generation, latest: true }
    - { label: Average generation, measure: generation }
  charts:
    - { title: Generation by unit, type: area, series: unit, measure: generation }
    - { title: Top units, type: bar, category: unit, measure: generation, limit: 5 }
";

const BRANCH_READINGS: &str = "
{{ config(materialized='table') }}
select
    timestamp '2024-06-29 00:00:00' + to_minutes(5 * i) as ts,
    cast(timestamp '2024-06-29 00:00:00' + to_minutes(5 * i) as date) as date,
    unit,
    case when unit = 'A' then 10.0 + (i % 12) else 100.0 + (i % 7) end::double as mw
from range({{ var('days', 4) }} * 288) as r(i), (values ('B'), ('A')) as u(unit)
";

/// The summary the dashboard computes from the whole site as the branch
/// holds it: every file present (`analytics dashboard` on a clone).
fn summary_of_whole_site(
    project: &Path,
    branch: &std::collections::BTreeMap<String, Vec<u8>>,
) -> serde_json::Value {
    let whole = tempfile::tempdir().unwrap();
    for (path, bytes) in branch {
        let file = whole.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["dashboard", "--project"])
        .arg(project)
        .arg("--site")
        .arg(whole.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    manifest(whole.path())
        .summary
        .expect("a summary of the whole site")
}

#[test]
fn a_branch_publish_keeping_files_has_the_whole_sites_summary_and_a_new_day_uploads_two_data_files()
{
    let p = TempProject::new("");
    p.write("models/readings.sql", BRANCH_READINGS)
        .write("analytics.yml", BRANCH_SITE);
    let token = "ghs_branchTOKEN0123456789abc";
    let gh = FakeGitHub::start("octo/site", token, true);
    // Published to the branch only: no folder holds the kept files.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
            .args(["run", "--target", "wh", "--project"])
            .arg(p.path())
            .args(args)
            .env("GITHUB_TOKEN", token)
            .env("GITHUB_API_URL", &gh.api_url)
            .env("GITHUB_REPOSITORY", "octo/site")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        assert!(!all.contains(token), "the token leaked: {all}");
        all
    };
    let summary_on_branch = |files: &std::collections::BTreeMap<String, Vec<u8>>| {
        Manifest::parse(std::str::from_utf8(&files["manifest.json"]).unwrap())
            .unwrap()
            .summary
            .expect("the branch's manifest.json carries the first-paint summary")
    };
    run(&["--mode", "backfill", "--vars", "{days: 4}"]);
    run(&["--mode", "import"]);
    let first = clone_files(&gh.repo, "gh-pages");
    assert!(
        !first.contains_key("data/summary.json"),
        "{:?}",
        first.keys()
    );
    assert_eq!(
        summary_on_branch(&first),
        summary_of_whole_site(p.path(), &first)
    );

    // The daily backfill adds a day. It does not export the 5-minute
    // dataset (intraday runs own it), so it rewrites two data files: the
    // half-year the day falls in and the daily file; the other half-year
    // and the units are kept on the branch. Uploaded: those two and
    // manifest.json (which carries the summary) — the page is unchanged.
    let blobs = gh.count("POST", "/git/blobs");
    let all = run(&["--mode", "backfill", "--vars", "{days: 5}"]);
    let uploaded = gh.count("POST", "/git/blobs") - blobs;
    let second = clone_files(&gh.repo, "gh-pages");
    let changed: Vec<&str> = second
        .iter()
        .filter(|(path, bytes)| first.get(*path) != Some(*bytes))
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "data/daily.duckdb",
            "data/hourly_2024_h2.duckdb",
            "manifest.json"
        ],
        "{all}"
    );
    assert_eq!(uploaded, 3, "one blob per changed file: {all}");
    assert_eq!(second["index.html"], first["index.html"]);
    // The opening view is now hourly (the 5-minute files end a day early):
    // its kept half-year and the units were read from the branch.
    assert!(
        all.contains("first paint: 2 published files of the opening view read from the branch"),
        "{all}"
    );
    let summary = summary_on_branch(&second);
    assert_eq!(summary["grain"], "hour");
    assert_eq!(summary, summary_of_whole_site(p.path(), &second));

    // An import exports the 5-minute days: the new day is written, the four
    // before it are kept on the branch and read back for the summary.
    let all = run(&["--mode", "import"]);
    let third = clone_files(&gh.repo, "gh-pages");
    let summary = summary_on_branch(&third);
    assert_eq!(summary["grain"], "5min");
    assert_eq!(summary["files"].as_array().unwrap().len(), 6, "{summary}");
    assert!(
        all.contains("first paint: 5 published files of the opening view read from the branch"),
        "{all}"
    );
    assert_eq!(summary, summary_of_whole_site(p.path(), &third));
    assert_eq!(third["index.html"], first["index.html"]);
}

/// 200 units in 5 regions, 5-minute readings on 2024-07-01 and 2024-07-02 whose values
/// do not compress (a hash).
const MANY_READINGS: &str = "
{{ config(materialized='table') }}
select
    timestamp '2024-07-01 00:00:00' + to_minutes(5 * i) as ts,
    cast(timestamp '2024-07-01 00:00:00' + to_minutes(5 * i) as date) as date,
    'U' || u as unit,
    'R' || (u % 5) as region,
    (hash(i, u) % 100000) / 7.0 as mw
from range(2 * 288) as r(i), range(200) as s(u)
";

/// A 5-minute dataset split by day and a dashboard storing rollup `ROLLUP`:
/// `{by: [unit], time: false}` holds a row per unit and day (far smaller
/// than the rows); `{by: [unit]}` (without the region, so it is stored)
/// holds a row per unit and 5 minutes with four aggregates, more than the
/// rows file.
const ROLLUPS_SITE: &str = "
targets:
  wh: { type: duckdb, path: wh.duckdb }
exports:
  - name: fine
    sql: select ts, date, region, unit, mw from {{ ref('readings') }}
    grain: 5min
    time_column: ts
    aggregate: { mw: avg }
    split: day
  - name: units
    sql: select distinct unit, 'Unit ' || unit as name from {{ ref('readings') }}
dashboard:
  assets: cdn
  date_column: date
  default_days: 7
  grains:
    - { grain: 5min, dataset: fine, time: \"date + make_time(time // 100, time % 100, 0)\" }
  dimensions:
    - { name: region, column: region, label: Region }
    - { name: unit, column: unit, label: Unit, lookup: { dataset: units, key: unit, label: name } }
  rollups:
    - ROLLUP
  measures:
    - { name: generation, label: Generation, unit: MW, decimals: 1, sql: \"sum(mw) / count(DISTINCT _time)\", rollup: { columns: { mw: \"sum(mw)\" }, sql: \"sum(mw) / count(DISTINCT _time)\" } }
    - { name: peak, label: Peak, unit: MW, decimals: 1, sql: \"max(mw)\", rollup: { columns: { mw_max: \"max(mw)\" }, sql: \"max(mw_max)\" } }
    - { name: low, label: Low, unit: MW, decimals: 1, sql: \"min(mw)\", rollup: { columns: { mw_min: \"min(mw)\" }, sql: \"min(mw_min)\" } }
    - { name: readings, label: Readings, decimals: 0, sql: \"count(mw)\", rollup: { columns: { n: \"count(mw)\" }, sql: \"sum(n)\" } }
  kpis:
    - { label: Latest generation, measure: generation, latest: true }
    - { label: Average generation, measure: generation }
    - { label: Peak, measure: peak }
    - { label: Readings, measure: readings }
  charts:
    - { title: Generation by unit, type: area, series: unit, measure: generation }
";

#[test]
fn a_rollups_file_not_smaller_than_its_rows_is_not_written_nor_listed_and_stays_so_while_kept() {
    let p = TempProject::new("");
    p.write("models/readings.sql", MANY_READINGS).write(
        "analytics.yml",
        &ROLLUPS_SITE.replace("ROLLUP", "{ by: [unit], time: false }"),
    );
    let site = p.path().join("site");
    let backfill = || {
        let out = p.run(&[
            "run",
            "--mode",
            "backfill",
            "--target",
            "wh",
            "--site-dir",
            site.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let paths = |m: &Manifest| -> Vec<String> { m.files.iter().map(|f| f.path.clone()).collect() };
    // Per unit and day: smaller than the rows, written and listed.
    backfill();
    let first = manifest(&site);
    assert_eq!(
        paths(&first),
        [
            "data/fine_2024_07_01.duckdb",
            "data/fine_2024_07_01.rollups.duckdb",
            "data/fine_2024_07_02.duckdb",
            "data/fine_2024_07_02.rollups.duckdb",
            "data/units.duckdb"
        ]
    );
    for f in first.files.iter().filter(|f| f.dataset == "fine.rollups") {
        let rows = first
            .files
            .iter()
            .find(|r| analytics::dashboard::rollups::file_of(&r.path) == f.path)
            .unwrap();
        assert!(
            f.bytes < rows.bytes,
            "{} {} {}",
            f.path,
            f.bytes,
            rows.bytes
        );
    }

    // Per unit and 5 minutes: not smaller than the rows, so no rollups
    // file; the ones published before are removed, not left listed beside
    // the rows (their numbers would be another rollup's).
    p.write(
        "analytics.yml",
        &ROLLUPS_SITE.replace("ROLLUP", "{ by: [unit] }"),
    );
    let all = backfill();
    assert!(
        all.contains("data/fine_2024_07_01.rollups.duckdb not written:"),
        "{all}"
    );
    let second = manifest(&site);
    assert_eq!(
        paths(&second),
        [
            "data/fine_2024_07_01.duckdb",
            "data/fine_2024_07_02.duckdb",
            "data/units.duckdb"
        ],
        "{all}"
    );
    assert_eq!(
        data_files(&site).into_keys().collect::<Vec<_>>(),
        paths(&second),
        "{all}"
    );
    // The first-paint summary reads the rows: the warehouse's numbers.
    let summary = second.summary.clone().expect("a summary");
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"data/fine_2024_07_02.duckdb")
            && !files.iter().any(|f| f.contains("rollups")),
        "{summary}"
    );
    let wh = p.db("wh.duckdb");
    let number = |sql: &str| -> f64 { wh.query_row(sql, [], |r| r.get(0)).unwrap() };
    let kpi = |k: &str| {
        summary["kpis"][k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {summary}"))
    };
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{what}: {got} vs {want}: {summary}"
        )
    };
    close(
        kpi("k0"),
        number("select sum(mw::real) from readings where ts = (select max(ts) from readings)"),
        "latest generation",
    );
    close(
        kpi("k1"),
        number("select sum(mw::real) / count(distinct ts) from readings"),
        "average generation",
    );
    close(
        kpi("k2"),
        number("select max(mw::real) from readings"),
        "peak",
    );
    close(kpi("k3"), 2.0 * 288.0 * 200.0, "readings");
    drop(wh);

    // The same warehouse again: every file kept, none written, and no
    // rollups file written again to be dropped (the decision stands while
    // its rows file is kept under the same definition).
    let all = backfill();
    assert!(all.contains("0 written"), "{all}");
    assert!(!all.contains("not written"), "{all}");
    assert!(!all.contains("missing"), "{all}");
    let third = manifest(&site);
    assert_eq!(third.files, second.files, "{all}");
    assert!(
        written_in_staging(p.path(), &site).is_empty(),
        "an unchanged file was written again"
    );
}
