//! The dashboard: the site rendered from the example project's `dashboard:`
//! configuration, then driven in Debian's Chromium (playwright-core) with
//! bundled assets and no network — charts, filters, grains, the CSV download
//! (recomputed here with DuckDB on the same files), caching across visits, a
//! deleted period file, the Analyze tab, the lineage page and the console.
//!
//! Until the exporter lands, the data files come from `dashboard-fixture`
//! (the export contract: manifest.json + data/*.duckdb).

mod common;
use analytics::dashboard::{self, AssetsMode, DashboardConfig, Lineage, Manifest};
use common::repo_root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes a fixture site (manifest + data files) into `dir`.
fn fixture_site(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_dashboard-fixture"))
        .arg("--out")
        .arg(dir)
        .arg("--project")
        .arg(repo_root().join("example-project"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dashboard-fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("manifest.json").is_file());
}

/// Gives the fixture's `units` file the coordinates the example's `units`
/// export carries (latitude, longitude from the sample's `duid_geo.csv`, as
/// `dim_duid` joins them), and updates its manifest entry: the map needs them.
fn add_unit_coordinates(site: &Path) {
    use sha2::{Digest, Sha256};
    let units = site.join("data/units.duckdb");
    let geo = repo_root().join("example-project/sample/reference/geo_data.csv");
    {
        let conn = duckdb::Connection::open(&units).unwrap();
        conn.execute_batch(&format!(
            "ALTER TABLE units ADD COLUMN latitude DOUBLE;
             ALTER TABLE units ADD COLUMN longitude DOUBLE;
             UPDATE units SET latitude = g.latitude, longitude = g.longitude
             FROM read_csv('{}', header = true, types = {{'latitude': 'DOUBLE', 'longitude': 'DOUBLE'}}) AS g
             WHERE trim(g.DUID) = units.duid;
             CHECKPOINT;",
            geo.display()
        ))
        .unwrap();
    }
    let manifest_path = site.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&read(&manifest_path)).unwrap();
    let bytes = std::fs::read(&units).unwrap();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["dataset"] == "units" {
            f["bytes"] = bytes.len().into();
            f["sha256"] = sha.clone().into();
            let cols = f["columns"].as_array_mut().unwrap();
            cols.push(serde_json::json!({"name": "latitude", "type": "DOUBLE"}));
            cols.push(serde_json::json!({"name": "longitude", "type": "DOUBLE"}));
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn example_site_renders_with_cdn_assets_and_lineage() {
    let site = tempfile::tempdir().unwrap();
    fixture_site(site.path());
    let rendered = dashboard::render_site(
        &repo_root().join("example-project"),
        site.path(),
        Some(AssetsMode::Cdn),
        None,
    )
    .unwrap();
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    let index = read(&site.path().join("index.html"));
    assert!(index.contains("<title>NEM electricity — generation and prices</title>"));
    assert!(index.contains(
        "https://cdn.jsdelivr.net/npm/@duckdb/duckdb-wasm@1.32.0/dist/duckdb-browser.mjs"
    ));
    assert!(index.contains("https://cdn.jsdelivr.net/npm/echarts@6.0.0/dist/echarts.min.js"));
    assert!(index.contains(r#"id="filter-unit""#) && index.contains(r#"id="filter-region""#));
    assert!(
        !site.path().join("assets/vendor").exists(),
        "CDN mode copies no vendor files"
    );
    // The configuration travels to the page as JSON the script parses.
    let start = index.find(r#"type="application/json">"#).unwrap() + 24;
    let end = start + index[start..].find("</script>").unwrap();
    let page: serde_json::Value = serde_json::from_str(&index[start..end]).unwrap();
    assert_eq!(page["config"]["grains"][0]["dataset"], "intraday");
    assert_eq!(page["config"]["measures"][1]["sql"], "sum(mwh)");
    let lineage = read(&site.path().join("lineage.html"));
    for model in [
        "stg_daily_unit",
        "fct_scada",
        "fct_price",
        "dim_duid",
        "dim_calendar",
    ] {
        assert!(
            lineage.contains(&format!(r#"data-name="{model}""#)),
            "{model} missing from lineage"
        );
    }
    assert!(
        lineage.contains(r#"data-name="scada""#),
        "ingest sources are drawn too"
    );
}

#[test]
fn bundled_assets_need_the_pinned_packages() {
    let empty = tempfile::tempdir().unwrap();
    let err = dashboard::Assets::resolve(AssetsMode::Bundled, Some(empty.path())).unwrap_err();
    assert!(format!("{err:#}").contains("npm ci"), "{err:#}");
}

#[test]
fn a_project_without_dashboard_section_still_gets_a_page() {
    let site = tempfile::tempdir().unwrap();
    let manifest: Manifest = serde_json::from_value(serde_json::json!({
        "version": 1, "project": "tiny", "exported_at": "2026-01-01T00:00:00Z",
        "files": [{"dataset": "orders", "path": "data/orders.duckdb", "table": "orders",
                   "grain": "day", "period": null, "rows": 3, "bytes": 10, "sha256": "00"}]
    }))
    .unwrap();
    let rendered = dashboard::render(
        &DashboardConfig::default(),
        &manifest,
        &Lineage::default(),
        site.path(),
        &dashboard::Assets::Cdn,
    )
    .unwrap();
    assert!(rendered.files.iter().any(|f| f == Path::new("index.html")));
    let index = read(&site.path().join("index.html"));
    assert!(index.contains("<title>tiny</title>"));
    assert!(
        index.contains("no <code>dashboard:</code> grains"),
        "explains the missing charts"
    );
    assert!(index.contains(r#"id="sql""#), "the Analyze tab is there");
}

/// The parsed CSV the page downloaded: header and rows.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Recomputes a download with DuckDB from the same data files, with SQL
/// written here (not taken from the page), and compares every row. The page
/// rounds values to 2 decimals and names units and the time zone in the
/// header.
fn check_download(site: &Path, manifest: &Manifest, d: &serde_json::Value) {
    let grain = d["grain"].as_str().unwrap();
    let (from, to) = (d["from"].as_str().unwrap(), d["to"].as_str().unwrap());
    let dataset = match grain {
        "5min" => "intraday",
        "hour" => "hourly",
        _ => "daily",
    };
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut parts = Vec::new();
    for (i, f) in manifest
        .files
        .iter()
        .filter(|f| f.dataset == dataset)
        .enumerate()
    {
        let path = site.join(&f.path);
        conn.execute_batch(&format!("ATTACH '{}' AS f{i} (READ_ONLY)", path.display()))
            .unwrap();
        parts.push(format!("SELECT * FROM f{i}.{}", f.table));
    }
    let (time, generation, energy) = match grain {
        "5min" | "hour" => (
            "strftime(date + make_time(time // 100, time % 100, 0), '%Y-%m-%d %H:%M')",
            "sum(mw)",
            "sum(mwh)",
        ),
        _ => ("strftime(date, '%Y-%m-%d')", "sum(mw)", "sum(mwh)"),
    };
    let mut filters = vec![format!("date BETWEEN DATE '{from}' AND DATE '{to}'")];
    if let Some(r) = d["filters"]["region"].as_str() {
        filters.push(format!("region_id = '{r}'"));
    }
    if let Some(f) = d["filters"]["fuel"].as_str() {
        filters.push(format!("fuel = '{f}'"));
    }
    let sql = format!(
        "SELECT {time} AS t, region_id, fuel, {generation}::DOUBLE, ({energy})::DOUBLE, avg(rrp)::DOUBLE
         FROM ({}) WHERE {} GROUP BY ALL ORDER BY 1, 2, 3",
        parts.join(" UNION ALL "),
        filters.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let expected: Vec<(String, String, String, f64, f64, f64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let file = PathBuf::from(d["file"].as_str().unwrap());
    let (header, rows) = parse_csv(&read(&file));
    let time = if grain == "day" { "date" } else { "time" };
    assert_eq!(
        header,
        [
            format!("{time} (market time UTC+10)").as_str(),
            "region",
            "fuel",
            "generation (MW)",
            "energy (MWh)",
            "region_price ($/MWh)"
        ],
        "{}",
        file.display()
    );
    let suggested = d["suggested"].as_str().unwrap();
    assert!(
        suggested.starts_with(&format!("nem_{grain}_{from}_{to}")),
        "file name {suggested} names grain and range"
    );
    assert!(!rows.is_empty(), "{} is empty", file.display());
    assert_eq!(
        rows.len(),
        expected.len(),
        "{}: row count differs from DuckDB's",
        file.display()
    );
    // Rounded to 2 decimals: no float noise (104.3974380493164) in the file.
    let close = |a: f64, b: &str| {
        let decimals = b.split_once('.').map_or(0, |(_, d)| d.len());
        let b: f64 = b.parse().unwrap();
        decimals <= 2 && (a - b).abs() <= 0.005 + 1e-9 * a.abs()
    };
    for (row, e) in rows.iter().zip(&expected) {
        assert_eq!(
            (&row[0], &row[1], &row[2]),
            (&e.0, &e.1, &e.2),
            "{}",
            file.display()
        );
        assert!(
            close(e.3, &row[3]) && close(e.4, &row[4]) && close(e.5, &row[5]),
            "{}: {row:?} vs DuckDB {e:?}",
            file.display()
        );
    }
    if let Some(r) = d["filters"]["region"].as_str() {
        assert!(rows.iter().all(|row| row[1] == r));
    }
}

#[test]
fn dashboard_in_chromium() {
    let root = repo_root();
    let node_modules = root.join("node_modules");
    assert!(
        Path::new("/usr/bin/chromium").is_file() && node_modules.join("playwright-core").is_dir(),
        "the browser test needs Debian's chromium and `npm ci`: run scripts/test (it installs both)"
    );
    let site = tempfile::tempdir().unwrap();
    fixture_site(site.path());
    add_unit_coordinates(site.path());
    // The example's configuration with one fuel colour left out, so the page
    // meets a fuel the configuration does not name (Hydro).
    let project = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(root.join("example-project/."))
        .arg(project.path())
        .status()
        .unwrap();
    assert!(status.success());
    let yml = project.path().join("analytics.yml");
    let text: Vec<String> = read(&yml)
        .lines()
        .filter(|l| !l.trim_start().starts_with("Hydro: \"#"))
        .map(str::to_string)
        .collect();
    std::fs::write(&yml, text.join("\n")).unwrap();
    let rendered = dashboard::render_site(
        project.path(),
        site.path(),
        Some(AssetsMode::Bundled),
        Some(&node_modules),
    )
    .unwrap();
    assert!(rendered.files.iter().any(|f| f.ends_with("duckdb-eh.wasm")));
    // The fixture's units, for the browser checks of the narrowing lists.
    let units_json = {
        let conn = duckdb::Connection::open(site.path().join("data/units.duckdb")).unwrap();
        let mut stmt = conn
            .prepare("SELECT duid, region_id, fuel FROM units ORDER BY duid")
            .unwrap();
        let rows: Vec<serde_json::Value> = stmt
            .query_map([], |r| {
                Ok(serde_json::json!({"duid": r.get::<_, String>(0)?,
                    "region": r.get::<_, String>(1)?, "fuel": r.get::<_, String>(2)?}))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        serde_json::to_string(&rows).unwrap()
    };
    let out_dir = root.join("target/dashboard-test");
    let _ = std::fs::remove_dir_all(&out_dir);
    if std::env::var_os("DASHBOARD_KEEP_SITE").is_some() {
        // For working on the page: run tests/browser/dashboard.mjs against
        // this copy (ANALYTICS_DASHBOARD_TEMPLATE re-renders it from edits).
        let keep = root.join("target/dashboard-test-site");
        let _ = std::fs::remove_dir_all(&keep);
        let status = Command::new("cp")
            .arg("-a")
            .arg(site.path())
            .arg(&keep)
            .status()
            .unwrap();
        assert!(status.success());
        println!("site kept in {}", keep.display());
    }
    let out = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .env("SITE_DIR", site.path())
        .env("OUT_DIR", &out_dir)
        .env("UNITS_JSON", &units_json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all browser checks passed"));
    for shot in [
        "01-overview-7d.png",
        "03-30d-hourly.png",
        "06-lineage.png",
        "07-missing-file.png",
        "14-drill-fuel.png",
        "15-map-selected.png",
        "20-phone-overview.png",
        "22-phone-wind-by-unit.png",
        "24-phone-dark.png",
        "25-dark-1440.png",
    ] {
        assert!(out_dir.join(shot).is_file(), "screenshot {shot} missing");
    }

    let manifest = Manifest::load(&site.path().join("manifest.json")).unwrap();
    let checks: serde_json::Value =
        serde_json::from_str(&read(&out_dir.join("checks.json"))).unwrap();
    let downloads = checks["downloads"].as_array().unwrap();
    let grains: BTreeMap<&str, usize> = downloads.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d["grain"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(grains.len(), 3, "a download at each grain: {grains:?}");
    for d in downloads {
        check_download(site.path(), &manifest, d);
    }
}

#[test]
fn dashboard_uses_threads_when_cross_origin_isolated() {
    let root = repo_root();
    let node_modules = root.join("node_modules");
    assert!(
        Path::new("/usr/bin/chromium").is_file() && node_modules.join("playwright-core").is_dir(),
        "the browser test needs Debian's chromium and `npm ci`: run scripts/test (it installs both)"
    );
    let site = tempfile::tempdir().unwrap();
    fixture_site(site.path());
    add_unit_coordinates(site.path());
    let project = analytics::project::Project::load(&root.join("example-project")).unwrap();
    let mut config = DashboardConfig::from_settings(&project.settings).unwrap();
    config.wasm_builds = Some(vec!["eh".into(), "coi".into()]);
    let manifest = Manifest::load(&site.path().join("manifest.json")).unwrap();
    dashboard::render(
        &config,
        &manifest,
        &Lineage::default(),
        site.path(),
        &dashboard::Assets::Bundled(node_modules),
    )
    .unwrap();
    assert!(site.path().join("assets/vendor/duckdb-coi.wasm").is_file());
    assert!(
        site.path()
            .join("assets/vendor/duckdb-browser-coi.pthread.worker.js")
            .is_file()
    );
    let out_dir = root.join("target/dashboard-test-isolated");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/browser/isolated.mjs"))
        .env("SITE_DIR", site.path())
        .env("OUT_DIR", &out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all isolated checks passed"),
        "isolated checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/browser/view.mjs` on `site` (first paint from the summary vs
/// DuckDB-WASM, the default view's downloads, partial day, spikes, Analyze);
/// `expect` says what the site holds.
fn view_checks(site: &Path, out_dir: &Path, expect: serde_json::Value) {
    let root = repo_root();
    let _ = std::fs::remove_dir_all(out_dir);
    let out = Command::new("node")
        .arg(root.join("tests/browser/view.mjs"))
        .env("SITE_DIR", site)
        .env("OUT_DIR", out_dir)
        .env("EXPECT", expect.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all view checks passed"),
        "view checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shot in [
        "preview-1440-light.png",
        "preview-390-dark.png",
        "live-1440-light.png",
        "live-1440-dark.png",
        "live-390-light.png",
        "live-390-dark.png",
        "analyze-picker.png",
    ] {
        assert!(out_dir.join(shot).is_file(), "screenshot {shot} missing");
    }
}

/// The newest date of the site's `intraday` files and its last interval
/// (HH:MM), read here with DuckDB: what the page must call a partial day.
fn newest_interval(site: &Path) -> (String, String) {
    let manifest = Manifest::load(&site.join("manifest.json")).unwrap();
    let newest = manifest
        .files
        .iter()
        .filter(|f| f.dataset == "intraday")
        .max_by_key(|f| f.max_date.clone())
        .unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS newest (READ_ONLY)",
        site.join(&newest.path).display()
    ))
    .unwrap();
    conn.query_row(
        "SELECT max(date)::VARCHAR, strftime(max(date + make_time(time // 100, time % 100, 0)), '%H:%M')
         FROM newest.intraday WHERE date = (SELECT max(date) FROM newest.intraday)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// The browser checks on what the exporter itself writes: the example project
/// run in `ci` mode on its sample data (`analytics run --mode ci --site-dir`),
/// with bundled assets — charts with data, the map with points, no console
/// error, the first paint from the exporter's summary equal to DuckDB-WASM's
/// numbers, the sample's partial last day flagged, Analyze.
#[test]
fn dashboard_on_the_exporters_own_site() {
    let root = repo_root();
    let node_modules = root.join("node_modules");
    assert!(
        Path::new("/usr/bin/chromium").is_file() && node_modules.join("playwright-core").is_dir(),
        "the browser test needs Debian's chromium and `npm ci`: run scripts/test (it installs both)"
    );
    let project = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(root.join("example-project/."))
        .arg(project.path())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(project.path().join("target"));
    let yml = project.path().join("analytics.yml");
    let text = read(&yml).replace("  assets: cdn ", "  assets: bundled ");
    assert!(text.contains("assets: bundled"));
    std::fs::write(&yml, text).unwrap();
    let site = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .current_dir(project.path())
        .args(["run", "--mode", "ci", "--site-dir"])
        .arg(site.path())
        .env("ANALYTICS_DASHBOARD_ASSETS", &node_modules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "analytics run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(site.path().join("assets/vendor/duckdb-eh.wasm").is_file());
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&site.path().join("manifest.json"))).unwrap();
    assert_eq!(
        manifest["summary"]["version"], 1,
        "the run writes the first-paint summary into manifest.json"
    );
    assert!(!site.path().join("data/summary.json").exists());
    assert!(!read(&site.path().join("index.html")).contains("summary"));
    let (date, last) = newest_interval(site.path());
    assert_ne!(last, "23:55", "the sample's newest day is partial");
    view_checks(
        site.path(),
        &root.join("target/dashboard-test-exporter"),
        serde_json::json!({"map": true, "partial": {"date": date, "last": last}}),
    );
}

/// The first paint and the opening view's downloads on a site whose intraday
/// dataset is one file per day (`split: day`, from `dashboard-fixture
/// --intraday-split day`), with a partial last day and a $15 000 price spike:
/// the 7-day view downloads its 7 days of the 14, the partial day is flagged
/// at 5-minute and daily grain, the spike does not flatten normal prices.
#[test]
fn dashboard_opening_view_on_day_files() {
    let root = repo_root();
    let node_modules = root.join("node_modules");
    assert!(
        Path::new("/usr/bin/chromium").is_file() && node_modules.join("playwright-core").is_dir(),
        "the browser test needs Debian's chromium and `npm ci`: run scripts/test (it installs both)"
    );
    let site = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dashboard-fixture"))
        .arg("--out")
        .arg(site.path())
        .arg("--project")
        .arg(root.join("example-project"))
        .args(["--days", "60", "--intraday-split", "day"])
        .args(["--last-day-until", "1155", "--price-spike", "15000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dashboard-fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dashboard::render_site(
        &root.join("example-project"),
        site.path(),
        Some(AssetsMode::Bundled),
        Some(&node_modules),
    )
    .unwrap();
    let manifest = Manifest::load(&site.path().join("manifest.json")).unwrap();
    let days = manifest
        .files
        .iter()
        .filter(|f| f.dataset == "intraday")
        .count();
    assert_eq!(days, 14, "one intraday file per day");
    let (date, last) = newest_interval(site.path());
    assert_eq!((date.as_str(), last.as_str()), ("2025-03-31", "11:55"));
    view_checks(
        site.path(),
        &root.join("target/dashboard-test-day-files"),
        serde_json::json!({"split": true, "spike": true, "map": false,
            "partial": {"date": date, "last": last}}),
    );
}
