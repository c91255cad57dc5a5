//! The intraday cycle of the example project on a real Iceberg REST catalog
//! (SeaweedFS), files published one interval at a time by a loopback
//! NEMWEB: a cycle that finds no new file changes nothing anywhere (no
//! snapshot, no catalog commit, no file in the site folder), and cycles that
//! take one new interval each end with the same tables and the same exported
//! rows as one run that takes them all at once; a publish to the folder
//! left unfinished is finished by the next cycle, and a published file the
//! folder lost is written again by the next export.

mod common;
use common::nem::{copy_dir, list_first, nemweb_from, project, zip_names};
use common::seaweedfs::{SeaweedFs, duckdb_iceberg, pyiceberg};
use common::{repo_root, text};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn run(project: &Path, sw: &SeaweedFs, site: &Path) -> String {
    run_mode("intraday", project, sw, site)
}

fn run_mode(mode: &str, project: &Path, sw: &SeaweedFs, site: &Path) -> String {
    let (ok, t) = try_run_mode(mode, project, sw, site);
    assert!(ok, "{t}");
    t
}

/// Runs `mode`; whether it succeeded, and its output.
fn try_run_mode(mode: &str, project: &Path, sw: &SeaweedFs, site: &Path) -> (bool, String) {
    try_run_logged(mode, project, sw, site, "info")
}

/// An intraday run with this crate's debug lines (what each write did).
fn run_debug(project: &Path, sw: &SeaweedFs, site: &Path) -> String {
    let (ok, t) = try_run_logged("intraday", project, sw, site, "info,analytics=debug");
    assert!(ok, "{t}");
    t
}

fn try_run_logged(
    mode: &str,
    project: &Path,
    sw: &SeaweedFs,
    site: &Path,
    log: &str,
) -> (bool, String) {
    let tmp = project.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out: Output = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .env("TMPDIR", &tmp)
        .args(["run", "--mode", mode, "--project"])
        .arg(project)
        .arg("--site-dir")
        .arg(site)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_TOKEN")
        .env("ICEBERG_REST_ENDPOINT", &sw.catalog)
        .env("ICEBERG_WAREHOUSE", "s3://warehouse")
        .env("ICEBERG_CREDENTIAL", "admin:secretkey")
        .env("AWS_ENDPOINT_URL_S3", &sw.s3)
        .env("AWS_ACCESS_KEY_ID", "admin")
        .env("AWS_SECRET_ACCESS_KEY", "secretkey")
        .env("ANALYTICS_LOG", log)
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// A copy of the example's sample folder whose two intraday listings show
/// only their first `n` intervals (see [`list_first`]).
fn sample_copy(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("example-project/sample"), dir.path());
    list_first(dir.path(), n);
    dir
}

/// Every table of the catalog: (metadata location, number of snapshots).
fn catalog_state(sw: &SeaweedFs) -> BTreeMap<String, (String, usize)> {
    pyiceberg(
        sw,
        "for ns in c.list_namespaces():\n\
         \x20   for ident in c.list_tables(ns):\n\
         \x20       t = c.load_table(ident)\n\
         \x20       print('.'.join(ident), t.metadata_location, len(t.metadata.snapshots))\n",
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f[0].to_string(), (f[1].to_string(), f[2].parse().unwrap()))
    })
    .collect()
}

/// Every file under `dir`: (sha256, modification time).
fn folder_state(dir: &Path) -> BTreeMap<String, (String, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let sha = format!("{:x}", Sha256::digest(std::fs::read(&p).unwrap()));
                let mtime = p.metadata().unwrap().modified().unwrap();
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    (sha, mtime),
                );
            }
        }
    }
    out
}

/// Rows and an order-independent hash of the rows of each stored model, read
/// by DuckDB's iceberg extension.
fn table_contents(sw: &SeaweedFs) -> BTreeMap<String, String> {
    ["fct_scada", "fct_price", "dim_duid", "dim_calendar"]
        .iter()
        .map(|t| {
            (
                t.to_string(),
                duckdb_iceberg(
                    sw,
                    &format!("SELECT count(*), bit_xor(hash(x)) FROM lake.nem.{t} AS x"),
                ),
            )
        })
        .collect()
}

/// Rows and an order-independent hash of the rows of every exported data
/// file (the writer's bytes differ between two exports of the same rows).
fn site_contents(site: &Path) -> BTreeMap<String, String> {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(site.join("data")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "duckdb") {
            continue;
        }
        conn.execute_batch(&format!("ATTACH '{}' AS f (READ_ONLY)", p.display()))
            .unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT table_name FROM duckdb_tables() WHERE database_name = 'f' ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for t in tables {
            let (rows, hash): (i64, String) = conn
                .query_row(
                    &format!("SELECT count(*), bit_xor(hash(x))::VARCHAR FROM f.\"{t}\" AS x"),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let name = p.file_name().unwrap().to_string_lossy();
            out.insert(format!("{name}:{t}"), format!("{rows} {hash}"));
        }
        conn.execute_batch("DETACH f").unwrap();
    }
    out
}

/// The files `manifest.json` in `site` lists: path → sha256.
fn listed(site: &Path) -> BTreeMap<String, String> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("manifest.json")).unwrap())
            .unwrap();
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_intraday_cycle_with_no_new_file_writes_nothing_anywhere() {
    let sw = SeaweedFs::start();
    let sample = sample_copy(11);
    let server = nemweb_from(sample.path().to_path_buf());
    let dir = project(&server, "nem");
    let site = dir.path().join("site-out");

    let t = run(dir.path(), &sw, &site);
    assert!(t.contains("models built"), "{t}");
    let catalog = catalog_state(&sw);
    assert!(catalog.contains_key("nem.fct_scada"), "{catalog:?}");
    let folder = folder_state(&site);
    assert!(folder.keys().any(|f| f.starts_with("data/")), "{folder:?}");

    // Nothing new listed: the run stops after the file log says so, and the
    // catalog (no snapshot, no commit) and the site folder (no file written)
    // are as they were.
    let t = run(dir.path(), &sw, &site);
    assert!(
        t.contains(
            "nothing new: 2 sources took no new file, so no model, test, export or publish ran"
        ),
        "{t}"
    );
    assert!(!t.contains("models built"), "{t}");
    assert_eq!(catalog_state(&sw), catalog, "{t}");
    assert_eq!(folder_state(&site), folder, "{t}");

    // A publish to the folder that fails half-way (today's file cannot be
    // written: a folder sits where its temporary copy goes) leaves the
    // folder's manifest listing the older site …
    list_first(sample.path(), 12);
    let obstacle = site.join("data/intraday_2024_01_03.partial");
    std::fs::create_dir_all(&obstacle).unwrap();
    let (ok, t) = try_run_mode("intraday", dir.path(), &sw, &site);
    assert!(!ok && t.contains("writing the site to"), "{t}");
    let staged = listed(&dir.path().join("target/site-staging"));
    assert_ne!(listed(&site), staged, "{t}");
    // … and the next cycle, though it takes no new file, finishes it: the
    // folder lists what the failed run exported, and holds it as listed.
    std::fs::remove_dir(&obstacle).unwrap();
    let t = run(dir.path(), &sw, &site);
    assert!(t.contains("nothing new: 2 sources took no new file"), "{t}");
    assert!(
        t.contains("finished the publish an earlier run left unfinished"),
        "{t}"
    );
    assert_eq!(listed(&site), staged, "{t}");
    for (path, sha) in listed(&site) {
        let bytes = std::fs::read(site.join(&path)).unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(bytes)), sha, "{path}");
    }
    // Once finished, a cycle with nothing new writes nothing again.
    let folder = folder_state(&site);
    let t = run(dir.path(), &sw, &site);
    assert!(!t.contains("finished the publish"), "{t}");
    assert_eq!(folder_state(&site), folder, "{t}");
}

#[test]
fn intraday_cycles_taking_one_new_interval_each_give_the_rows_of_one_run() {
    // One interval at a time: 10 listed, then the 11th, then the 12th.
    let sw = SeaweedFs::start();
    let sample = sample_copy(10);
    let server = nemweb_from(sample.path().to_path_buf());
    let dir = project(&server, "nem");
    let site = dir.path().join("site-out");
    run(dir.path(), &sw, &site);
    for n in [11, 12] {
        let before = catalog_state(&sw);
        list_first(sample.path(), n);
        let t = run_debug(dir.path(), &sw, &site);
        for source in ["scada", "price"] {
            assert!(
                t.lines()
                    .any(|l| l.starts_with(&format!("source {source} "))
                        && l.contains("taken     1 of     1 new")),
                "{t}"
            );
        }
        // The file log records the two new files without reading any of
        // the earlier runs' files (their bounds span both sources' names,
        // so an upsert looking for the new keys would read them all): the
        // keys were absent from the log this run read, at the snapshot the
        // table is still at.
        assert!(
            t.contains(
                "stored file log: WriteReport { rows_written: 2, files_added: 1, files_read: 0, files_removed: 0"
            ),
            "{t}"
        );
        // The seed's `table` model gave the rows its table holds: no
        // snapshot, no commit (same metadata file).
        let after = catalog_state(&sw);
        assert_eq!(
            after["nem.fuel_categories"], before["nem.fuel_categories"],
            "{t}"
        );
        assert!(
            after["analytics_meta.file_log"].1 == before["analytics_meta.file_log"].1 + 1,
            "{before:?} {after:?}"
        );
    }

    // All 12 at once, into another warehouse.
    let sw_all = SeaweedFs::start();
    let sample_all = sample_copy(12);
    let server_all = nemweb_from(sample_all.path().to_path_buf());
    let dir_all = project(&server_all, "nem");
    let site_all = dir_all.path().join("site-out");
    run(dir_all.path(), &sw_all, &site_all);

    let (cycled, at_once) = (table_contents(&sw), table_contents(&sw_all));
    assert!(!cycled["fct_scada"].starts_with("0 "), "{cycled:?}");
    assert_eq!(cycled, at_once, "stored tables");
    let (cycled, at_once) = (site_contents(&site), site_contents(&site_all));
    assert!(!cycled.is_empty());
    assert_eq!(cycled, at_once, "exported files");

    // Every file taken is in the stored file log once.
    let log = pyiceberg(
        &sw,
        "a = c.load_table('analytics_meta.file_log').scan().to_arrow()\n\
         k = list(zip(a.column('source').to_pylist(), a.column('file_name').to_pylist()))\n\
         print(len(k), len(set(k)), sum(1 for s, _ in k if s in ('scada', 'price')))\n",
    );
    let counts: Vec<usize> = log.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(counts[0], counts[1], "a file recorded twice: {log}");
    assert_eq!(counts[2], 24, "12 intervals x 2 sources: {log}");

    // A changed input is stored: the seed gains a row, so the same `table`
    // model's rows differ from the stored ones and a snapshot holds them.
    let seed = dir.path().join("seeds/fuel_categories.csv");
    let mut csv = std::fs::read_to_string(&seed).unwrap();
    csv.push_str("Test,Test fuel,Other\n");
    std::fs::write(&seed, csv).unwrap();
    // (Every interval of the sample is listed: a backfill builds the models.)
    let before = catalog_state(&sw);
    let t = run_mode("backfill", dir.path(), &sw, &site);
    let after = catalog_state(&sw);
    assert_eq!(
        after["nem.fuel_categories"].1,
        before["nem.fuel_categories"].1 + 1,
        "{t}"
    );
    let rows = pyiceberg(
        &sw,
        "a = c.load_table('nem.fuel_categories').scan().to_arrow()\n\
         print(a.num_rows, 'Test fuel' in a.column('fuel_descriptor').to_pylist())\n",
    );
    assert_eq!(rows.trim(), format!("{} True", csv_rows(&seed)), "{t}");
}

/// Data rows of a CSV file (lines after the header).
fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// The data files whose bytes or modification time differ between two
/// states of a site folder (added and removed ones included).
fn data_files_changed(
    before: &BTreeMap<String, (String, std::time::SystemTime)>,
    after: &BTreeMap<String, (String, std::time::SystemTime)>,
) -> Vec<String> {
    let mut paths: Vec<&String> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| p.starts_with("data/") && before.get(*p) != after.get(*p))
        .cloned()
        .collect()
}

/// Adds a SCADA file for 2024-01-02 12:00 (a day the daily report already
/// filled) to the intraday listing: late data for an old day. Its readings
/// are the first interval's, scaled, so the day's rows change.
fn publish_late_scada_file(sample: &Path) {
    let dir = sample.join("intraday_scada");
    let names = zip_names(&dir);
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(dir.join(&names[0])).unwrap()).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut archive.by_index(0).unwrap(), &mut csv).unwrap();
    let csv: String = csv
        .lines()
        .map(|l| {
            let l = l.replace("2024/01/03 00:05:00", "2024/01/02 12:00:00");
            if !l.starts_with("D,") {
                return format!("{l}\n");
            }
            // D,DISPATCH,UNIT_SCADA,1,"time",DUID,SCADAVALUE,"changed"
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            let v: f64 = f[6].parse().unwrap();
            f[6] = format!("{}", v * 2.0 + 1.0);
            format!("{}\n", f.join(","))
        })
        .collect();
    let name = "PUBLIC_DISPATCHSCADA_202401021200_0000000417300000";
    let mut zip =
        zip::ZipWriter::new(std::fs::File::create(dir.join(format!("{name}.zip"))).unwrap());
    zip.start_file(
        format!("{name}.CSV"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    std::io::Write::write_all(&mut zip, csv.as_bytes()).unwrap();
    zip.finish().unwrap();
    let index = dir.join("index.html");
    let html = std::fs::read_to_string(&index).unwrap().replace(
        "</pre>",
        &format!("<A HREF=\"{name}.zip\">{name}.zip</A><br></pre>"),
    );
    std::fs::write(&index, html).unwrap();
}

/// The exported `intraday` files' rows (count and hash per file).
fn intraday_contents(site: &Path) -> BTreeMap<String, String> {
    site_contents(site)
        .into_iter()
        .filter(|(k, _)| k.starts_with("intraday_"))
        .collect()
}

#[test]
fn an_intraday_export_restages_only_the_days_the_run_changed() {
    let sw = SeaweedFs::start();
    let sample = sample_copy(10);
    let server = nemweb_from(sample.path().to_path_buf());
    let dir = project(&server, "nem");
    let site = dir.path().join("site-out");
    // History from the daily reports (2024-01-01 to 2024-01-03 04:00),
    // then the first intraday export: every file, nothing published yet.
    run_mode("backfill", dir.path(), &sw, &site);
    list_first(sample.path(), 11);
    let t = run(dir.path(), &sw, &site);
    assert!(
        t.contains("export `intraday`: every file restaged (no published file of the dataset)"),
        "{t}"
    );
    let days: Vec<String> = folder_state(&site)
        .into_keys()
        .filter(|k| k.starts_with("data/intraday_"))
        .collect();
    assert_eq!(
        days,
        [
            "data/intraday_2024_01_01.duckdb",
            "data/intraday_2024_01_01.rollups.duckdb",
            "data/intraday_2024_01_02.duckdb",
            "data/intraday_2024_01_02.rollups.duckdb",
            "data/intraday_2024_01_03.duckdb",
            "data/intraday_2024_01_03.rollups.duckdb"
        ],
        "{t}"
    );

    // One new interval (2024-01-03 00:55): the days the stored tables'
    // changed files span (the new files hold 2024-01-03 only) are restaged,
    // the other two days kept without reading them; only today's files
    // (rows and the dashboard's rollups) are written.
    let before = folder_state(&site);
    list_first(sample.path(), 12);
    let t = run(dir.path(), &sw, &site);
    assert!(
        t.lines().any(|l| l.contains("export `intraday`: ")
            && l.contains("1 date range(s) restaged, 4 published file(s) kept as they are")),
        "{t}"
    );
    assert_eq!(
        data_files_changed(&before, &folder_state(&site)),
        [
            "data/intraday_2024_01_03.duckdb",
            "data/intraday_2024_01_03.rollups.duckdb"
        ],
        "{t}"
    );
    // … and only the data files that can hold those days were copied.
    assert!(
        t.lines().any(
            |l| l.contains("nem.fct_scada: read by DuckDB's Parquet reader")
                && l.contains("those whose `date` bounds overlap the dates read")
        ),
        "{t}"
    );

    // Late data for an old day: that day's file is rewritten, no other —
    // but for a published file the folder lost (deleted by hand, or by a
    // publish stopped half-way), which is written again, though its rows did
    // not change (its rollups file, still there and unchanged, is kept).
    // (The upsert rewrote a data file spanning 2024-01-02 and -03, so today
    // is restaged too, and kept: its rows did not change.)
    std::fs::remove_file(site.join("data/intraday_2024_01_01.duckdb")).unwrap();
    let before = folder_state(&site);
    publish_late_scada_file(sample.path());
    let t = run(dir.path(), &sw, &site);
    assert!(t.contains("taken     1 of     1 new"), "{t}");
    assert!(
        t.lines().any(|l| l.contains("export `intraday`: ")
            && l.contains("1 published file(s) missing at the destination")),
        "{t}"
    );
    assert_eq!(
        data_files_changed(&before, &folder_state(&site)),
        [
            "data/intraday_2024_01_01.duckdb",
            "data/intraday_2024_01_02.duckdb",
            "data/intraday_2024_01_02.rollups.duckdb"
        ],
        "{t}"
    );

    // Every file holds the rows a full export writes (import mode into an
    // empty folder: nothing published, so every period is staged).
    let full = dir.path().join("site-full");
    let t = run_mode("import", dir.path(), &sw, &full);
    assert!(
        t.contains("export `intraday`: every file restaged (no published file of the dataset)"),
        "{t}"
    );
    let (cycled, restaged) = (intraday_contents(&site), intraday_contents(&full));
    // Three day files, each with its rollups file.
    let files: std::collections::BTreeSet<&str> = cycled
        .keys()
        .filter_map(|k| k.split_once(':').map(|(f, _)| f))
        .collect();
    assert_eq!(files.len(), 6, "{cycled:?}");
    assert_eq!(cycled, restaged);
}
