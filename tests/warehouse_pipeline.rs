//! The example project against a real Iceberg REST catalog (SeaweedFS):
//! `intraday` then `backfill` from a loopback NEMWEB, compared with an
//! all-in-memory `ci` run on the same files; reruns change nothing; two
//! backfills at once leave no duplicates; `maintain` compacts. Every table is
//! also read by pyiceberg, an independent Iceberg implementation.

mod common;
use common::http::TestServer;
use common::nem::{nemweb, project, pyiceberg_counts};
use common::proxy::{Hold, Proxy, is_commit};
use common::seaweedfs::{SeaweedFs, duckdb_iceberg, pyiceberg_output};
use common::text;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn run(project: &Path, sw: &SeaweedFs, args: &[&str]) -> Output {
    let tmp = project.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .env("TMPDIR", &tmp)
        .args(args)
        .arg("--project")
        .arg(project)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("ICEBERG_REST_ENDPOINT", &sw.catalog)
        .env("ICEBERG_WAREHOUSE", "s3://warehouse")
        .env("ICEBERG_CREDENTIAL", "admin:secretkey")
        .env("AWS_ENDPOINT_URL_S3", &sw.s3)
        .env("AWS_ACCESS_KEY_ID", "admin")
        .env("AWS_SECRET_ACCESS_KEY", "secretkey")
        // Debug logs too: a library's debug output once printed the S3 key.
        .env("ANALYTICS_LOG", "debug")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains("secretkey"), "a secret leaked:\n{t}");
    t
}

/// Each snapshot's operation and summary, for failure messages.
fn pyiceberg_history(sw: &SeaweedFs, table: &str) -> String {
    text(&pyiceberg_output(
        sw,
        &format!(
            "for s in c.load_table('{table}').snapshots(): print(s.snapshot_id, s.parent_snapshot_id, s.summary)\n"
        ),
    ))
}

/// Row counts of the facts and dimensions after an in-memory `ci` run on the same files.
fn in_memory_counts(server: &TestServer) -> BTreeMap<String, i64> {
    let dir = project(server, "nem");
    let out = common::analytics(&["run", "--mode", "ci", "--target", "local"], dir.path());
    assert!(out.status.success(), "{}", text_of(&out));
    let conn = duckdb::Connection::open(dir.path().join("target/nem.duckdb")).unwrap();
    ["fct_scada", "fct_price", "dim_duid", "dim_calendar"]
        .iter()
        .map(|t| {
            (
                t.to_string(),
                common::int(&conn, &format!("SELECT count(*) FROM main.{t}")),
            )
        })
        .collect()
}

fn text_of(out: &Output) -> String {
    text(out)
}

#[test]
fn intraday_then_backfill_on_iceberg_matches_an_in_memory_run() {
    let sw = SeaweedFs::start();
    let server = nemweb();
    let dir = project(&server, "nem");

    // intraday: only the 5-minute feeds, incremental, no tests.
    let t = ok(run(dir.path(), &sw, &["run", "--mode", "intraday"]));
    assert!(t.contains("models built"), "{t}");
    let after_intraday = pyiceberg_counts(&sw, "nem");
    assert!(after_intraday["fct_scada"].0 > 0, "{after_intraday:?}");
    assert!(t.contains("tests do not run in intraday mode"), "{t}");

    // intraday again: every file was taken, so no model runs, nothing is
    // exported (nor published) and the run says why.
    let t = ok(run(dir.path(), &sw, &["run", "--mode", "intraday"]));
    assert!(t.contains("nothing new: 2 sources took no new file"), "{t}");
    assert_eq!(pyiceberg_counts(&sw, "nem"), after_intraday);

    // backfill: daily reports and reference data too, and every test, on the stored tables.
    let t = ok(run(dir.path(), &sw, &["run", "--mode", "backfill"]));
    assert!(t.contains("0 failed, 0 errored"), "{t}");
    // The GitHub archive's copies of the two days were taken too (and kept
    // once: the counts below match the in-memory run, which has no archive).
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("source history") && l.contains("taken     2")),
        "{t}"
    );
    // Its exports read the stored facts with DuckDB's Parquet reader.
    assert!(
        t.contains("nem.fct_scada: read by DuckDB's Parquet reader from"),
        "{t}"
    );
    // … and the copies are gone when the run ends.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    let stored = pyiceberg_counts(&sw, "nem");
    let expected = in_memory_counts(&server);
    for (table, rows) in &expected {
        assert_eq!(
            stored[table].0, *rows,
            "{table}: stored {stored:?} vs in memory {expected:?}"
        );
        assert_eq!(
            stored[table].0, stored[table].1,
            "{table} holds duplicate keys: {stored:?}"
        );
        // DuckDB's own iceberg extension reads the same rows.
        assert_eq!(
            duckdb_iceberg(&sw, &format!("SELECT count(*) FROM lake.nem.{table}")),
            rows.to_string(),
            "{table} through duckdb-iceberg"
        );
    }

    // Running again takes no file twice and changes no contents.
    let t = ok(run(dir.path(), &sw, &["run", "--mode", "backfill"]));
    assert!(t.contains("0 failed, 0 errored"), "{t}");
    assert_eq!(pyiceberg_counts(&sw, "nem"), stored);

    // maintain compacts the small files the runs left, keeping every row.
    let t = ok(run(dir.path(), &sw, &["run", "--mode", "maintain"]));
    assert!(t.contains("compacted"), "{t}");
    // Its summary is per table, not models and tests.
    assert!(t.contains("stored tables maintained"), "{t}");
    assert!(
        regex::Regex::new(r"table nem\.fct_scada +compacted [1-9]\d* files into")
            .unwrap()
            .is_match(&t),
        "{t}"
    );
    assert!(!t.contains("models built"), "{t}");
    assert_eq!(pyiceberg_counts(&sw, "nem"), stored);
}

#[test]
fn two_backfills_at_once_leave_no_duplicates() {
    let sw = SeaweedFs::start();
    let server = nemweb();
    let first = project(&server, "nem_race");
    let second = project(&server, "nem_race");
    ok(run(first.path(), &sw, &["run", "--mode", "intraday"]));
    // Two checkouts (as two workflow runs have) see the same stored file log,
    // so both take the two daily reports and both write them. They reach the
    // catalog through a proxy that holds each one's first commit of
    // fct_scada until both are in, then forwards both: the writes overlap
    // whatever the scheduler does, and one of them must lose.
    let proxy = Proxy::start(&sw.catalog);
    proxy.hold(Hold::Barrier(2), |m, p, b| {
        is_commit(m, p, b, Some("fct_scada"))
    });
    let handles: Vec<_> = [first.path(), second.path()]
        .into_iter()
        .map(|dir| {
            let path = dir.to_path_buf();
            let catalog = proxy.url.clone();
            let s3 = sw.s3.clone();
            std::thread::spawn(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
                    .args(["run", "--mode", "backfill", "--project"])
                    .arg(&path)
                    .env_remove("GITHUB_STEP_SUMMARY")
                    .env("ICEBERG_REST_ENDPOINT", catalog)
                    .env("ICEBERG_WAREHOUSE", "s3://warehouse")
                    .env("ICEBERG_CREDENTIAL", "admin:secretkey")
                    .env("AWS_ENDPOINT_URL_S3", s3)
                    .env("AWS_ACCESS_KEY_ID", "admin")
                    .env("AWS_SECRET_ACCESS_KEY", "secretkey")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let outputs: Vec<String> = handles
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert!(out.status.success(), "{}", text(&out));
            text(&out)
        })
        .collect();
    // Both commits were held at once; one landed, the other got 409 and
    // its writer retried on the new snapshot (three commits in all).
    let statuses: Vec<Option<u16>> = proxy.matched().iter().map(|c| c.status).collect();
    assert_eq!(proxy.max_held(), 2, "{statuses:?}");
    let mut first_two = statuses[..2].to_vec();
    first_two.sort();
    assert!(
        first_two[0].is_some_and(|s| (200..300).contains(&s)) && first_two[1] == Some(409),
        "one held commit lands, the other is refused: {statuses:?}"
    );
    assert_eq!(statuses.len(), 3, "the loser retried once: {statuses:?}");
    assert!(
        statuses[2].is_some_and(|s| (200..300).contains(&s)),
        "{statuses:?}"
    );
    let retried: Vec<bool> = outputs
        .iter()
        .map(|t| t.contains("fct_scada: another writer committed first"))
        .collect();
    assert_eq!(
        retried.iter().filter(|r| **r).count(),
        1,
        "exactly one run says it retried:\n{}",
        outputs.join("\n-----\n")
    );
    let stored = pyiceberg_counts(&sw, "nem_race");
    let expected = in_memory_counts(&server);
    for (table, rows) in &expected {
        assert_eq!(
            stored[table],
            (*rows, *rows),
            "{table}: {stored:?} vs {expected:?}\n{}",
            pyiceberg_history(&sw, &format!("nem_race.{table}"))
        );
    }
    // Both runs recorded the same files in the file log, each having read
    // it before the other wrote: the second writer finds the table moved
    // since its read, so it looks for the keys and replaces them (the
    // shortcut for keys absent from the log a run read holds only while
    // the table is still at that snapshot). Each file once.
    let log = common::seaweedfs::pyiceberg(
        &sw,
        "a = c.load_table('analytics_meta.file_log').scan().to_arrow()\n\
         k = list(zip(a.column('source').to_pylist(), a.column('file_name').to_pylist()))\n\
         print(len(k), len(set(k)))\n",
    );
    let counts: Vec<usize> = log.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!(counts[0] > 0, "{log}");
    assert_eq!(
        counts[0],
        counts[1],
        "a file recorded twice in the file log: {log}\n{}",
        pyiceberg_history(&sw, "analytics_meta.file_log")
    );
}
