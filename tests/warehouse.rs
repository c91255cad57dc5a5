//! The Iceberg warehouse against a real REST catalog (SeaweedFS): tables
//! created from a DuckDB result, fast appends, reads back into DuckDB, and an
//! independent reader (pyiceberg) seeing the same rows.

mod common;
use analytics::warehouse::maintain::MaintainOptions;
use analytics::warehouse::{IcebergConfig, LocalRead, S3Config, Warehouse, WriteMode, WriteReport};
use common::proxy::{Hold, Proxy, is_commit};
use common::seaweedfs::{SeaweedFs, duckdb_iceberg, pyiceberg};

fn config(sw: &SeaweedFs) -> IcebergConfig {
    IcebergConfig {
        uri: sw.catalog.clone(),
        warehouse: Some("s3://warehouse".into()),
        credential: Some("admin:secretkey".into()),
        token: None,
        s3: S3Config {
            endpoint: Some(sw.s3.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("admin".into()),
            secret_access_key: Some("secretkey".into()),
            path_style: Some(true),
        },
        properties: Default::default(),
        timeout: None,
    }
}

const ROWS_SQL: &str = "SELECT i AS id, (i % 300)::SMALLINT AS hhmm, i * 1.5 AS mw, \
    (i / 100)::DECIMAL(10, 2) AS price, 'DUID' || (i % 7) AS duid, DATE '2024-01-01' + (i % 30)::INTEGER AS day, \
    TIMESTAMP '2024-01-01' + INTERVAL (i * 5) MINUTE AS ts, i % 2 = 0 AS even \
    FROM range({start}, {end}) t(i)";

/// (rows, sum of ids, distinct duids) of a DuckDB table.
fn fingerprint(conn: &duckdb::Connection, table: &str) -> (i64, i64, i64) {
    conn.query_row(
        &format!("SELECT count(*), sum(id)::BIGINT, count(DISTINCT duid) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[test]
fn query_results_append_to_iceberg_and_read_back_identically() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    assert!(!wh.table_exists("marts", "fct_test").unwrap());
    let sql = |a: i64, b: i64| {
        ROWS_SQL
            .replace("{start}", &a.to_string())
            .replace("{end}", &b.to_string())
    };
    assert_eq!(
        wh.append_query(&conn, &sql(0, 50_000), "marts", "fct_test")
            .unwrap(),
        50_000
    );
    assert!(wh.table_exists("marts", "fct_test").unwrap());
    assert_eq!(
        wh.append_query(&conn, &sql(50_000, 60_000), "marts", "fct_test")
            .unwrap(),
        10_000
    );

    conn.execute_batch(&format!("CREATE TABLE expected AS {}", sql(0, 60_000)))
        .unwrap();
    let rows = wh
        .read_into_duckdb(&conn, "marts", "fct_test", "main.\"copy\"")
        .unwrap();
    assert_eq!(rows, 60_000);
    assert_eq!(
        fingerprint(&conn, "main.\"copy\""),
        fingerprint(&conn, "expected")
    );
    // every value survived the round trip (SMALLINT widened to INTEGER)
    let differing: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT id, hhmm::INTEGER, mw, price, duid, day, ts, even FROM expected \
             EXCEPT SELECT id, hhmm, mw, price, duid, day, ts, even FROM main.\"copy\")",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(differing, 0);

    // An independent Iceberg implementation reads the same table.
    let script = "t = c.load_table('marts.fct_test').scan().to_arrow()\n\
         print(t.num_rows, sum(t.column('id').to_pylist()), len(t.schema), len(c.load_table('marts.fct_test').snapshots()))\n";
    let seen = pyiceberg(&sw, script).trim().to_string();
    let expected_sum: i64 = (0..60_000).sum();
    assert_eq!(
        seen,
        format!("60000 {expected_sum} 8 2"),
        "pyiceberg: rows, sum(id), columns, snapshots"
    );
}

#[test]
fn a_bad_credential_is_a_clear_error_without_the_secret() {
    let sw = SeaweedFs::start();
    let mut cfg = config(&sw);
    cfg.credential = Some("admin:wrong-secret-value".into());
    let err = match Warehouse::connect(&cfg) {
        Ok(_) => panic!("a wrong secret must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("Iceberg catalog"), "{err}");
    assert!(
        ["401", "403", "nauthori", "nvalid", "denied", "credential"]
            .iter()
            .any(|w| err.contains(w)),
        "the error should say the credential was refused: {err}"
    );
    assert!(
        !err.contains("wrong-secret-value"),
        "the secret leaked: {err}"
    );
}

/// pyiceberg's view of a table: rows, sum(id), snapshot operations.
fn pyiceberg_view(sw: &SeaweedFs, table: &str) -> String {
    let script = format!(
        "t = c.load_table('{table}')\n\
         a = t.scan().to_arrow()\n\
         print(a.num_rows, sum(a.column('id').to_pylist()), ','.join(s.summary.operation.value for s in t.snapshots()))\n"
    );
    pyiceberg(sw, &script).trim().to_string()
}

fn stage(conn: &duckdb::Connection, sql: &str) {
    conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE staged AS {sql}"))
        .unwrap();
}

fn scan_totals(conn: &duckdb::Connection, table: &str) -> (i64, i64, f64) {
    let (ns, name) = table.split_once('.').unwrap();
    conn.query_row(
        &format!("SELECT count(*), sum(id)::BIGINT, sum(v) FROM iceberg_scan('{ns}', '{name}')"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[test]
fn upserts_rewrite_only_the_files_that_hold_the_keys() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    let upsert = WriteMode::Upsert {
        keys: vec!["id".into()],
    };
    // Five appends of 20,000 rows with disjoint ids: five data files.
    for part in 0..5 {
        stage(
            &conn,
            &format!(
                "SELECT i AS id, 1.0::DOUBLE AS v, 'F' || (i // 1000) AS file FROM range({}, {}) t(i)",
                part * 20_000,
                (part + 1) * 20_000
            ),
        );
        let r = wh
            .write(
                &conn,
                "staged",
                "marts",
                "facts",
                &WriteMode::Append,
                "ignore",
            )
            .unwrap();
        assert_eq!(
            (r.rows_written, r.files_added, r.files_read),
            (20_000, 1, 0)
        );
    }
    assert_eq!(
        scan_totals(&conn, "marts.facts"),
        (100_000, 4_999_950_000, 100_000.0)
    );

    // Ten changed rows inside the third file: only that file is read and rewritten.
    stage(
        &conn,
        "SELECT i AS id, 5.0::DOUBLE AS v, 'G' AS file FROM range(40000, 40010) t(i)",
    );
    let r = wh
        .write(&conn, "staged", "marts", "facts", &upsert, "ignore")
        .unwrap();
    assert_eq!(r.files_read, 1, "{r:?}");
    assert_eq!(r.files_removed, 1, "{r:?}");
    assert_eq!(r.rows_carried, 19_990, "{r:?}");
    assert_eq!(
        scan_totals(&conn, "marts.facts"),
        (100_000, 4_999_950_000, 100_040.0)
    );

    // New keys beyond every file: nothing is read, it is an append.
    stage(
        &conn,
        "SELECT i AS id, 2.0::DOUBLE AS v, 'H' AS file FROM range(200000, 200005) t(i)",
    );
    let r = wh
        .write(&conn, "staged", "marts", "facts", &upsert, "ignore")
        .unwrap();
    assert_eq!(
        (r.files_read, r.files_removed, r.rows_carried),
        (0, 0, 0),
        "{r:?}"
    );
    let expected_sum: i64 = 4_999_950_000 + (200_000..200_005).sum::<i64>();
    assert_eq!(
        scan_totals(&conn, "marts.facts"),
        (100_005, expected_sum, 100_050.0)
    );

    // Two independent readers agree; pyiceberg sees each kind of snapshot.
    assert_eq!(
        pyiceberg_view(&sw, "marts.facts"),
        format!("100005 {expected_sum} append,append,append,append,append,overwrite,append")
    );
    assert_eq!(
        duckdb_iceberg(
            &sw,
            "SELECT count(*), sum(id), sum(v) FROM lake.marts.facts"
        ),
        format!("100005 {expected_sum} 100050.0")
    );

    // Replace: one snapshot, only the new rows remain.
    stage(
        &conn,
        "SELECT i AS id, 3.0::DOUBLE AS v, 'R' AS file FROM range(0, 10) t(i)",
    );
    wh.write(
        &conn,
        "staged",
        "marts",
        "facts",
        &WriteMode::Replace,
        "ignore",
    )
    .unwrap();
    assert_eq!(scan_totals(&conn, "marts.facts"), (10, 45, 30.0));
    assert!(pyiceberg_view(&sw, "marts.facts").starts_with("10 45 "));

    // Projection: a query naming one column works and counts right.
    let n: i64 = conn
        .query_row(
            "SELECT count(file) FROM iceberg_scan('marts', 'facts')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 10);
}

#[test]
fn concurrent_upserts_of_the_same_keys_leave_no_duplicates() {
    let sw = SeaweedFs::start();
    let cfg = config(&sw);
    let setup = Warehouse::connect(&cfg).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    stage(
        &conn,
        "SELECT i AS id, 1.0::DOUBLE AS v FROM range(0, 1000) t(i)",
    );
    setup
        .write(
            &conn,
            "staged",
            "marts",
            "shared",
            &WriteMode::Append,
            "ignore",
        )
        .unwrap();
    // The writers reach the catalog through a proxy that holds their first
    // commits until all four are in, then forwards them together: all four
    // were built on the same snapshot, so the catalog must refuse three.
    let proxy = Proxy::start(&sw.catalog);
    proxy.hold(Hold::Barrier(4), |m, p, b| {
        is_commit(m, p, b, Some("shared"))
    });
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut cfg = cfg.clone();
            cfg.uri = proxy.url.clone();
            std::thread::spawn(move || {
                let wh = Warehouse::connect(&cfg).unwrap();
                let conn = duckdb::Connection::open_in_memory().unwrap();
                stage(
                    &conn,
                    &format!("SELECT i AS id, {w}.0::DOUBLE AS v FROM range(500, 1500) t(i)"),
                );
                wh.write(
                    &conn,
                    "staged",
                    "marts",
                    "shared",
                    &WriteMode::Upsert {
                        keys: vec!["id".into()],
                    },
                    "ignore",
                )
                .unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    check_forced_race(&proxy, 4, &reports);
    scan_register_and_check(&setup, &conn);
}

/// After `writers` writers' first commits were held together: they were all
/// held at once, exactly one of them landed and the others got 409, each
/// writer landed exactly one commit in the end (the losers after retrying),
/// and the attempts the writers report are the commits the catalog saw.
fn check_forced_race(proxy: &Proxy, writers: usize, reports: &[WriteReport]) {
    let commits = proxy.matched();
    let statuses: Vec<Option<u16>> = commits.iter().map(|c| c.status).collect();
    assert_eq!(proxy.max_held(), writers, "held together: {statuses:?}");
    let first: Vec<Option<u16>> = statuses[..writers].to_vec();
    let landed = |s: &[Option<u16>]| {
        s.iter()
            .filter(|s| s.is_some_and(|s| (200..300).contains(&s)))
            .count()
    };
    assert_eq!(
        landed(&first),
        1,
        "one of the held commits lands: {statuses:?}"
    );
    assert_eq!(
        first.iter().filter(|s| **s == Some(409)).count(),
        writers - 1,
        "the others are refused: {statuses:?}"
    );
    assert_eq!(
        landed(&statuses),
        writers,
        "each writer lands once: {statuses:?}"
    );
    assert_eq!(
        statuses.len() - writers,
        statuses.iter().filter(|s| **s == Some(409)).count(),
        "every other commit was a refused one: {statuses:?}"
    );
    let attempts: u32 = reports.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts as usize, commits.len(), "{reports:?}");
    assert_eq!(
        reports.iter().filter(|r| r.attempts == 1).count(),
        1,
        "only the winner of the held round committed at once: {reports:?}"
    );
}

fn scan_register_and_check(wh: &Warehouse, conn: &duckdb::Connection) {
    analytics::warehouse::scan::register(conn, wh).unwrap();
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT id) FROM iceberg_scan('marts', 'shared')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct), (1500, 1500), "no key lost, none doubled");
    // Every key from 500 on holds one writer's value, whole rows from one run.
    let mixed: i64 = conn
        .query_row(
            "SELECT count(DISTINCT v) FROM iceberg_scan('marts', 'shared') WHERE id >= 500",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mixed, 1, "the last writer's rows replace all earlier ones");
}

#[test]
fn schema_changes_follow_on_schema_change_and_maintenance_compacts_and_expires() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    for part in 0..6 {
        stage(
            &conn,
            &format!(
                "SELECT i AS id, 1.0::DOUBLE AS v FROM range({}, {}) t(i)",
                part * 100,
                part * 100 + 100
            ),
        );
        wh.write(&conn, "staged", "ops", "t", &WriteMode::Append, "ignore")
            .unwrap();
    }
    // A new column: `fail` refuses, `append_new_columns` adds it.
    stage(
        &conn,
        "SELECT 600 + i AS id, 1.0::DOUBLE AS v, 'x' AS note FROM range(0, 100) t(i)",
    );
    let err = wh
        .write(&conn, "staged", "ops", "t", &WriteMode::Append, "fail")
        .unwrap_err();
    assert!(format!("{err:#}").contains("note"), "{err:#}");
    wh.write(
        &conn,
        "staged",
        "ops",
        "t",
        &WriteMode::Append,
        "append_new_columns",
    )
    .unwrap();
    let (rows, notes): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(note) FROM iceberg_scan('ops', 't')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, notes), (700, 100));

    let report = wh
        .maintain(
            &conn,
            "ops",
            "t",
            &MaintainOptions {
                target_file_size_mb: 64,
                keep_snapshots: 1,
                expire_after_hours: 0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(report.files_compacted, 7, "{report:?}");
    assert_eq!(report.files_written, 1, "{report:?}");
    assert!(report.snapshots_expired >= 7, "{report:?}");
    assert!(report.files_deleted >= 7, "{report:?}");
    let view = pyiceberg_view(&sw, "ops.t");
    let sum: i64 = (0..700).sum();
    assert_eq!(
        view,
        format!("700 {sum} replace"),
        "one snapshot left, same rows"
    );
}

#[test]
fn concurrent_appends_of_distinct_rows_all_land() {
    let sw = SeaweedFs::start();
    let cfg = config(&sw);
    let setup = Warehouse::connect(&cfg).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    stage(&conn, "SELECT 0::BIGINT AS id, 1.0::DOUBLE AS v");
    setup
        .write(
            &conn,
            "staged",
            "marts",
            "many",
            &WriteMode::Append,
            "ignore",
        )
        .unwrap();
    // All six writers' first commits are held until every one is in, then
    // forwarded together (see the upsert case above).
    let proxy = Proxy::start(&sw.catalog);
    proxy.hold(Hold::Barrier(6), |m, p, b| is_commit(m, p, b, Some("many")));
    let writers: Vec<_> = (1..=6)
        .map(|w| {
            let mut cfg = cfg.clone();
            cfg.uri = proxy.url.clone();
            std::thread::spawn(move || {
                let wh = Warehouse::connect(&cfg).unwrap();
                let conn = duckdb::Connection::open_in_memory().unwrap();
                stage(
                    &conn,
                    &format!(
                        "SELECT i AS id, 1.0::DOUBLE AS v FROM range({}, {}) t(i)",
                        w * 1000,
                        w * 1000 + 100
                    ),
                );
                wh.write(
                    &conn,
                    "staged",
                    "marts",
                    "many",
                    &WriteMode::Upsert {
                        keys: vec!["id".into()],
                    },
                    "ignore",
                )
                .unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    check_forced_race(&proxy, 6, &reports);
    analytics::warehouse::scan::register(&conn, &setup).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM iceberg_scan('marts', 'many')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 601, "every writer's rows landed: {reports:?}");
}

/// A commit whose answer was lost (a gateway's 502) but that the catalog
/// applied later, after the writer had reloaded and retried: the retry is
/// refused, and the writer must find its earlier snapshot instead of
/// committing the same rows a second time on top of it. Appends and
/// copy-on-write upserts alike: no row doubled, and no file the landed
/// snapshot references deleted.
#[test]
fn a_commit_that_lands_after_its_answer_was_lost_is_not_committed_twice() {
    let sw = SeaweedFs::start();
    let cfg = config(&sw);
    let setup = Warehouse::connect(&cfg).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    for table in ["late_append", "late_upsert"] {
        stage(
            &conn,
            "SELECT i AS id, 1.0::DOUBLE AS v FROM range(0, 1000) t(i)",
        );
        setup
            .write(
                &conn,
                "staged",
                "marts",
                table,
                &WriteMode::Append,
                "ignore",
            )
            .unwrap();
    }
    let cases = [
        ("late_append", WriteMode::Append, (1500, 1124250, 1500.0)),
        (
            "late_upsert",
            WriteMode::Upsert {
                keys: vec!["id".into()],
            },
            (1500, 1124250, 2250.0),
        ),
    ];
    for (table, mode, expected) in cases {
        let proxy = Proxy::start(&sw.catalog);
        let mut via_proxy = cfg.clone();
        via_proxy.uri = proxy.url.clone();
        let writer = Warehouse::connect(&via_proxy).unwrap();
        proxy.hold(Hold::Late(1), move |m, p, b| {
            is_commit(m, p, b, Some(table))
        });
        let sql = match mode {
            WriteMode::Append => "SELECT i AS id, 1.0::DOUBLE AS v FROM range(1000, 1500) t(i)",
            _ => "SELECT i AS id, 2.0::DOUBLE AS v FROM range(750, 1500) t(i)",
        };
        stage(&conn, sql);
        let report = writer
            .write(&conn, "staged", "marts", table, &mode, "ignore")
            .unwrap_or_else(|e| panic!("{table}: {e:#}"));
        let statuses: Vec<Option<u16>> = proxy.matched().iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            vec![Some(200), Some(409)],
            "{table}: the first commit landed late, the retry was refused"
        );
        assert_eq!(report.attempts, 2, "{table}: {report:?}");
        let reader = duckdb::Connection::open_in_memory().unwrap();
        analytics::warehouse::scan::register(&reader, &setup).unwrap();
        assert_eq!(
            scan_totals(&reader, &format!("marts.{table}")),
            expected,
            "{table}: the rows are in once (rows, sum of ids, sum of v)"
        );
        let current = setup
            .load_table("marts", table)
            .unwrap()
            .metadata()
            .current_snapshot_id();
        assert_eq!(
            report.snapshot_id, current,
            "{table}: the landed snapshot is reported"
        );
    }
}

#[test]
fn manifests_are_merged_so_planning_stays_flat_over_many_commits() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    for run in 0..40 {
        stage(
            &conn,
            &format!(
                "SELECT i AS id, 1.0::DOUBLE AS v FROM range({}, {}) t(i)",
                run * 10,
                run * 10 + 10
            ),
        );
        wh.write(
            &conn,
            "staged",
            "marts",
            "often",
            &WriteMode::Upsert {
                keys: vec!["id".into()],
            },
            "ignore",
        )
        .unwrap();
    }
    let script = "t = c.load_table('marts.often')\n\
         a = t.scan().to_arrow()\n\
         print(a.num_rows, len(set(a.column('id').to_pylist())), len(t.current_snapshot().manifests(t.io)))\n";
    let seen = pyiceberg(&sw, script);
    let f: Vec<i64> = seen
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!((f[0], f[1]), (400, 400), "{seen}");
    assert!(f[2] < 32, "40 commits left {} manifests: {seen}", f[2]);
}

/// A query that fails after rows have already streamed to the Parquet
/// writers is an error (not a panic) and commits nothing: the table keeps
/// exactly what it had.
#[test]
fn a_query_failing_mid_stream_commits_nothing() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let good = "SELECT i AS id, i * 2 AS v FROM range(1000) t(i)";
    assert_eq!(wh.append_query(&conn, good, "ops", "stream").unwrap(), 1000);
    // A view, so the rows are computed while they stream to the writers:
    // 300,000 go through, then DuckDB raises on one row. One DuckDB thread,
    // so the row's error is the one reported (with several, another thread
    // may report "Interrupted!" first).
    conn.execute_batch(
        "SET threads = 1; CREATE VIEW failing AS SELECT i AS id, CASE WHEN i = 300000 THEN error('bad row 300000') \
         ELSE i * 2 END AS v FROM range(400000) t(i)",
    )
    .unwrap();
    let err = match wh.write(
        &conn,
        "failing",
        "ops",
        "stream",
        &WriteMode::Append,
        "ignore",
    ) {
        Ok(r) => panic!("the failing rows were committed ({} rows)", r.rows_written),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("bad row 300000"), "{err}");
    let seen = pyiceberg(
        &sw,
        "t = c.load_table('ops.stream')\nprint(t.scan().to_arrow().num_rows, len(t.snapshots()))\n",
    );
    assert_eq!(
        seen.trim(),
        "1000 1",
        "rows and snapshots after the failure"
    );
}

/// Rows of `a` not in `b` plus rows of `b` not in `a` (0: same multiset of
/// rows, column by column in order).
fn difference(conn: &duckdb::Connection, a: &str, b: &str) -> i64 {
    conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})) + \
             (SELECT count(*) FROM (FROM {b} EXCEPT ALL FROM {a}))"
        ),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// `DESCRIBE`'s (name, type) pairs of a relation.
fn described(conn: &duckdb::Connection, relation: &str) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare(&format!("DESCRIBE SELECT * FROM {relation}"))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Why `ns.table` keeps streaming through `iceberg_scan` (fails if it
/// would be read from local copies).
fn stream_reason(wh: &Warehouse, conn: &duckdb::Connection, ns: &str, table: &str) -> String {
    match wh.local_read(conn, ns, table).unwrap() {
        LocalRead::Stream(why) => why,
        LocalRead::Parquet(sql) => panic!("{ns}.{table} should stream, yet reads {sql}"),
    }
}

fn parquet_sql(read: LocalRead) -> String {
    match read {
        LocalRead::Parquet(sql) => sql,
        LocalRead::Stream(why) => panic!("expected a local read, got: {why}"),
    }
}

/// DuckDB's Parquet reader over local copies reads what `iceberg_scan`
/// streams — same columns, types and rows — and follows Iceberg's field ids
/// through a rename and an added column (files written before the change
/// carry the old name and lack the new column).
#[test]
fn local_copies_read_the_same_rows_and_follow_renames_by_field_id() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    let sql = |a: i64, b: i64| {
        ROWS_SQL
            .replace("{start}", &a.to_string())
            .replace("{end}", &b.to_string())
    };
    wh.append_query(&conn, &sql(0, 40_000), "marts", "local")
        .unwrap();
    wh.append_query(&conn, &sql(40_000, 50_000), "marts", "local")
        .unwrap();
    let scan = "iceberg_scan('marts', 'local')";
    let local = parquet_sql(wh.local_read(&conn, "marts", "local").unwrap());
    assert!(local.starts_with("read_parquet(["), "{local}");
    assert_eq!(described(&conn, &local), described(&conn, scan));
    assert_eq!(difference(&conn, &local, scan), 0);
    assert_eq!(
        conn.query_row(&format!("SELECT count(*) FROM {local}"), [], |r| r
            .get::<_, i64>(0))
            .unwrap(),
        50_000
    );

    // Rename `mw` and add a column with pyiceberg, then append rows that
    // fill the new column: old files still say `mw`, by field id it is `power`.
    pyiceberg(
        &sw,
        "from pyiceberg.types import StringType\n\
         t = c.load_table('marts.local')\n\
         with t.update_schema() as u:\n    u.rename_column('mw', 'power')\n\
         with t.update_schema() as u:\n    u.add_column('note', StringType())\n",
    );
    conn.execute_batch(
        "CREATE TEMP TABLE more AS SELECT 50000 + i AS id, 1::INTEGER AS hhmm, 2.5 AS power, \
         1.00::DECIMAL(10, 2) AS price, 'DUID9' AS duid, DATE '2024-02-01' AS day, \
         TIMESTAMP '2024-02-01' AS ts, true AS even, 'new' AS note FROM range(100) t(i)",
    )
    .unwrap();
    wh.write(
        &conn,
        "more",
        "marts",
        "local",
        &WriteMode::Append,
        "ignore",
    )
    .unwrap();
    let local = parquet_sql(wh.local_read(&conn, "marts", "local").unwrap());
    let columns = described(&conn, &local);
    assert_eq!(columns, described(&conn, scan));
    assert_eq!(columns[2].0, "power");
    assert_eq!(columns.last().unwrap().0, "note");
    assert_eq!(difference(&conn, &local, scan), 0);
    let (rows, power, notes): (i64, f64, i64) = conn
        .query_row(
            &format!("SELECT count(*), sum(power), count(note) FROM {local}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let expected: f64 = (0..50_000).map(|i| i as f64 * 1.5).sum::<f64>() + 250.0;
    assert_eq!((rows, notes), (50_100, 100));
    assert!((power - expected).abs() < 1e-6, "{power} vs {expected}");

    // The other primitive types read as iceberg_scan gives them.
    let others = "SELECT i AS id, i::REAL / 3 AS r, TIME '01:02:03' + INTERVAL (i) SECOND AS t, \
        TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS tz, \
        ((i * 7)::DECIMAL(30, 4) / 3)::DECIMAL(30, 4) AS wide_decimal FROM range(2000) t(i)";
    wh.append_query(&conn, others, "marts", "types").unwrap();
    let scan = "iceberg_scan('marts', 'types')";
    let local = parquet_sql(wh.local_read(&conn, "marts", "types").unwrap());
    assert_eq!(described(&conn, &local), described(&conn, scan));
    assert_eq!(difference(&conn, &local, scan), 0);
    // … and as they were written (TIMESTAMPTZ is an instant, stored as UTC).
    assert_eq!(difference(&conn, &local, &format!("({others})")), 0);
}

/// Tables DuckDB's reader cannot read exactly stay on `iceberg_scan`: data
/// files without field ids (added by pyiceberg's `add_files`), delete files
/// (DuckDB-iceberg's merge-on-read DELETE), more data than the copy limit.
#[test]
fn tables_the_parquet_reader_cannot_read_exactly_keep_streaming() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    let rows = "SELECT i AS id, i * 2 AS v FROM range(1000) t(i)";
    wh.append_query(&conn, rows, "ops", "limited").unwrap();
    wh.set_local_copy_limit(100);
    let why = stream_reason(&wh, &conn, "ops", "limited");
    assert!(why.contains("local copy limit"), "{why}");
    wh.set_local_copy_limit(analytics::warehouse::DEFAULT_LOCAL_COPY_LIMIT);

    // A nested column: DuckDB's `schema` mapping covers top-level fields only.
    wh.append_query(
        &conn,
        "SELECT i AS id, [i, i + 1] AS pair FROM range(10) t(i)",
        "ops",
        "nested",
    )
    .unwrap();
    let why = stream_reason(&wh, &conn, "ops", "nested");
    assert!(why.contains("column `pair`"), "{why}");

    // A Parquet file without field ids, added as it is.
    pyiceberg(
        &sw,
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         from pyiceberg.schema import Schema\n\
         from pyiceberg.types import NestedField, LongType\n\
         c.create_namespace_if_not_exists('ops')\n\
         t = c.create_table('ops.added', Schema(NestedField(1, 'id', LongType()), NestedField(2, 'v', LongType())))\n\
         path = 's3://warehouse/ops/added/data/plain.parquet'\n\
         with t.io.new_output(path).create() as f:\n    pq.write_table(pa.table({'id': pa.array(range(10), pa.int64()), 'v': pa.array(range(10), pa.int64())}), f)\n\
         t.add_files([path])\n",
    );
    let why = stream_reason(&wh, &conn, "ops", "added");
    assert!(why.contains("field ids"), "{why}");
    let (n, sum): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(v)::BIGINT FROM iceberg_scan('ops', 'added')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, sum), (10, 45), "iceberg_scan maps the columns by name");

    // Positional deletes written by DuckDB's iceberg extension.
    wh.append_query(&conn, rows, "ops", "deleted").unwrap();
    duckdb_iceberg(&sw, "DELETE FROM lake.ops.deleted WHERE id < 10");
    let why = stream_reason(&wh, &conn, "ops", "deleted");
    assert!(why.contains("delete files"), "{why}");
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM iceberg_scan('ops', 'deleted')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 990, "iceberg_scan applies the deletes");
}

/// The current snapshot's id and its rows fingerprint (if it has one).
fn current(wh: &Warehouse, table: &str) -> (i64, Option<String>) {
    let table = wh.load_table("marts", table).unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    let fp = snapshot
        .summary()
        .additional_properties
        .get("analytics.rows-fingerprint")
        .cloned();
    (snapshot.snapshot_id(), fp)
}

#[test]
fn a_replace_by_the_stored_rows_makes_no_snapshot_and_large_ones_are_hashed_only_when_they_could_be_equal()
 {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let replace = |sql: &str, table: &str| {
        stage(&conn, sql);
        wh.write(
            &conn,
            "staged",
            "marts",
            table,
            &WriteMode::Replace,
            "ignore",
        )
        .unwrap();
        current(&wh, table)
    };
    // Small: fingerprinted from the first write; the same rows again make no snapshot.
    let small = "SELECT i AS id, i * 2 AS v FROM range(10) t(i)";
    let (s1, fp1) = replace(small, "small");
    assert!(fp1.is_some());
    assert_eq!(replace(small, "small"), (s1, fp1.clone()));
    let (s2, fp2) = replace("SELECT i AS id, i * 3 AS v FROM range(10) t(i)", "small");
    assert_ne!(s2, s1);
    assert_ne!(fp2, fp1);
    // Large (over a million rows): the first write into the empty table is
    // not hashed; a rewrite with as many rows is, so the third makes none.
    let large = "SELECT i AS id, i * 2 AS v FROM range(1200000) t(i)";
    let (l1, fp1) = replace(large, "large");
    assert_eq!(fp1, None, "a large first write is not hashed");
    let (l2, fp2) = replace(large, "large");
    assert_ne!(l2, l1);
    assert!(fp2.is_some());
    assert_eq!(replace(large, "large"), (l2, fp2.clone()));
    // Same count, other rows: hashed, different, written.
    let (l3, fp3) = replace(
        "SELECT i AS id, i * 2 + 1 AS v FROM range(1200000) t(i)",
        "large",
    );
    assert_ne!(l3, l2);
    assert_ne!(fp3, fp2);
    let rows: i64 = {
        wh.read_into_duckdb(&conn, "marts", "large", "main.large_copy")
            .unwrap();
        conn.query_row("SELECT sum(v - 2 * id) FROM main.large_copy", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(rows, 1_200_000, "the last rows are the stored ones");
}

/// An export pins the tables it reads (`Warehouse::pin_tables`): its
/// snapshot, changed dates and local copies come from one load. A write
/// through the handle unpins the table it writes; another writer's commit
/// is seen once the export unpins; a missing table is not pinned; and a
/// table missing from the catalog is still created by the first write (a
/// write loads the table first and creates it only on "not found").
#[test]
fn pinned_tables_answer_from_one_load_until_a_write_or_unpin() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let other = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
    let append = |wh: &Warehouse, start: u32| {
        stage(
            &conn,
            &format!("SELECT {start} AS id, DATE '2024-01-01' + {start}::INTEGER AS day"),
        );
        wh.write(&conn, "staged", "pins", "t", &WriteMode::Append, "ignore")
            .unwrap()
            .snapshot_id
            .unwrap()
    };
    // The namespace and the table do not exist: the first write makes both.
    let s1 = append(&wh, 0);
    assert_eq!(
        wh.pin_tables(&[("pins", "t"), ("pins", "missing")])
            .unwrap(),
        1,
        "only the existing table is pinned"
    );
    assert!(!wh.table_exists("pins", "missing").unwrap());
    assert!(wh.table_exists("pins", "t").unwrap());
    // Another writer commits: the pinned table still answers as loaded
    // (snapshot, changes and local reads agree with each other).
    let s2 = append(&other, 1);
    assert_eq!(wh.current_snapshot_id("pins", "t").unwrap(), Some(s1));
    assert_eq!(
        wh.changes_since("pins", "t", s1, "day").unwrap(),
        analytics::warehouse::StoredChanges::Dates(vec![])
    );
    let read = parquet_sql(
        wh.local_read_within(&conn, "pins", "t", "day", &[(day(1), day(2))])
            .unwrap(),
    );
    let ids: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {read}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids, 1, "the pinned snapshot's one file");
    // Unpinned: the other writer's commit is seen.
    wh.unpin_tables();
    assert_eq!(wh.current_snapshot_id("pins", "t").unwrap(), Some(s2));
    assert_eq!(
        wh.changes_since("pins", "t", s1, "day").unwrap(),
        analytics::warehouse::StoredChanges::Dates(vec![(day(2), day(2))])
    );
    // A write through the pinning handle drops the pin: its own commit is
    // seen at once.
    wh.pin_tables(&[("pins", "t")]).unwrap();
    assert_eq!(wh.current_snapshot_id("pins", "t").unwrap(), Some(s2));
    let s3 = append(&wh, 2);
    assert_eq!(wh.current_snapshot_id("pins", "t").unwrap(), Some(s3));
}

/// A catalog that takes a request and never answers fails the call within
/// the target's `timeout_secs`, naming the catalog, instead of holding the
/// run: the proxy holds the first table load for good. (The 60 s wait
/// below is a deadlock guard, not a speed check: without a timeout the
/// call would never return.)
#[test]
fn a_catalog_that_stops_answering_fails_the_call_within_the_timeout() {
    let sw = SeaweedFs::start();
    let proxy = Proxy::start(&sw.catalog);
    let mut cfg = config(&sw);
    cfg.uri = proxy.url.clone();
    cfg.timeout = Some(std::time::Duration::from_secs(2));
    let wh = Warehouse::connect(&cfg).unwrap();
    proxy.hold(Hold::Before(1), |m, p, _| {
        m == "GET" && p.split('?').next().unwrap_or_default().contains("/tables/")
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wh.load_table("nowhere", "held").map(|_| ()));
    });
    let outcome = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the held table load never returned: no request timeout");
    let err = format!("{:#}", outcome.expect_err("a held load must fail"));
    assert!(proxy.max_held() == 1, "the load was not held");
    // The error names the table, the request that got no answer, and the
    // setting that bounded it.
    assert!(
        err.contains("loading table nowhere.held") && err.contains("/tables/held"),
        "{err}"
    );
    assert!(
        err.contains("timed out") && err.contains("`timeout_secs`"),
        "{err}"
    );
    proxy.clear(common::proxy::Release::Drop);
}

/// The live data files of a table's current snapshot, by its summary.
fn live_file_count(wh: &Warehouse, ns: &str, table: &str) -> usize {
    let t = wh.load_table(ns, table).unwrap();
    t.metadata()
        .current_snapshot()
        .unwrap()
        .summary()
        .additional_properties["total-data-files"]
        .parse()
        .unwrap()
}

#[test]
fn small_files_of_the_new_rows_days_are_folded_in_the_upserts_snapshot() {
    use analytics::warehouse::{COMPACT_AT, StoredChanges};
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    let upsert = WriteMode::Upsert {
        keys: vec!["ts".into(), "id".into()],
    };
    let interval = |n: i64, v: f64| {
        format!(
            "SELECT TIMESTAMP '2024-06-30 00:00:00' + INTERVAL ({n} * 5) MINUTE AS ts, \
             DATE '2024-06-30' AS date, i AS id, {v}::DOUBLE AS v FROM range(0, 50) t(i)"
        )
    };
    // Yesterday's last interval: a small file of another day.
    stage(
        &conn,
        "SELECT TIMESTAMP '2024-06-29 23:55:00' AS ts, DATE '2024-06-29' AS date, \
         i AS id, 1.0::DOUBLE AS v FROM range(0, 50) t(i)",
    );
    wh.write(&conn, "staged", "marts", "intraday", &upsert, "ignore")
        .unwrap();
    // Today: one small upsert per 5-minute interval, as intraday runs.
    let mut folds = Vec::new();
    for n in 0..30 {
        let before = wh
            .current_snapshot_id("marts", "intraday")
            .unwrap()
            .unwrap();
        stage(&conn, &interval(n, 1.0));
        let r = wh
            .write(&conn, "staged", "marts", "intraday", &upsert, "ignore")
            .unwrap();
        if r.files_compacted > 0 {
            // A fold removes the small files of today only: the export sees
            // today changed, nothing else.
            assert_eq!(r.files_removed, r.files_compacted, "{r:?}");
            let day = chrono::NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
            assert_eq!(
                wh.changes_since("marts", "intraday", before, "date")
                    .unwrap(),
                StoredChanges::Dates(vec![(day, day)]),
                "{r:?}"
            );
            folds.push(n);
        }
        assert!(
            live_file_count(&wh, "marts", "intraday") <= COMPACT_AT + 1,
            "interval {n}: {r:?}"
        );
    }
    assert!(folds.len() >= 3, "folded at {folds:?}");
    // Taking interval 3 again replaces its rows, wherever they were folded.
    stage(&conn, &interval(3, 7.0));
    wh.write(&conn, "staged", "marts", "intraday", &upsert, "ignore")
        .unwrap();
    let (rows, ids, v): (i64, i64, f64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT (ts, id)), sum(v) FROM iceberg_scan('marts', 'intraday')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, ids, v), (31 * 50, 31 * 50, 31.0 * 50.0 + 6.0 * 50.0));
    // Yesterday's file was never folded into today's.
    let yesterday: i64 = conn
        .query_row(
            "SELECT count(*) FROM iceberg_scan('marts', 'intraday') WHERE date = DATE '2024-06-29'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(yesterday, 50);
}

/// Three upserts at once, each folding the same seven small files of the
/// day: one lands; the others are refused, reload and fold or append again
/// on the new snapshot. Every key is stored exactly once.
#[test]
fn concurrent_upserts_that_fold_the_same_files_lose_and_double_nothing() {
    use analytics::warehouse::COMPACT_AT;
    let sw = SeaweedFs::start();
    let cfg = config(&sw);
    let setup = Warehouse::connect(&cfg).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &setup).unwrap();
    let interval = |n: usize| {
        format!(
            "SELECT TIMESTAMP '2024-06-30 00:00:00' + INTERVAL ({n} * 5) MINUTE AS ts, \
             i AS id, {n}.0::DOUBLE AS v FROM range(0, 50) t(i)"
        )
    };
    let upsert = || WriteMode::Upsert {
        keys: vec!["ts".into(), "id".into()],
    };
    for n in 0..COMPACT_AT - 1 {
        stage(&conn, &interval(n));
        let r = setup
            .write(&conn, "staged", "marts", "folded", &upsert(), "ignore")
            .unwrap();
        assert_eq!(r.files_compacted, 0, "{r:?}");
    }
    let proxy = Proxy::start(&sw.catalog);
    proxy.hold(Hold::Barrier(3), |m, p, b| {
        is_commit(m, p, b, Some("folded"))
    });
    let writers: Vec<_> = (COMPACT_AT - 1..COMPACT_AT + 2)
        .map(|n| {
            let mut cfg = cfg.clone();
            cfg.uri = proxy.url.clone();
            let sql = interval(n);
            std::thread::spawn(move || {
                let wh = Warehouse::connect(&cfg).unwrap();
                let conn = duckdb::Connection::open_in_memory().unwrap();
                stage(&conn, &sql);
                wh.write(&conn, "staged", "marts", "folded", &upsert(), "ignore")
                    .unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    check_forced_race(&proxy, 3, &reports);
    let winner = reports.iter().find(|r| r.attempts == 1).unwrap();
    assert_eq!(winner.files_compacted, COMPACT_AT - 1, "{reports:?}");
    let n = (COMPACT_AT + 2) as i64;
    let (rows, keys, v): (i64, i64, f64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT (ts, id)), sum(v) FROM iceberg_scan('marts', 'folded')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, keys, v),
        (n * 50, n * 50, (0..n).sum::<i64>() as f64 * 50.0)
    );
}
