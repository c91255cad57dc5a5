//! Data files written by DuckDB's own `COPY` (the default encoder) against a
//! real REST catalog (SeaweedFS): the same rows back through the scan and
//! through pyiceberg, bounds that are exact where the footer proves them,
//! and no upsert missing a row because DuckDB truncated a long string's
//! statistics.

mod common;
use analytics::warehouse::{DataEncoder, IcebergConfig, S3Config, Warehouse, WriteMode};
use common::seaweedfs::{SeaweedFs, duckdb_iceberg, pyiceberg};
use iceberg::spec::{DataFile, Datum, ManifestContentType};
use std::collections::HashMap;

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

/// The live data files of a table's current snapshot, read from its manifests.
fn live_files(wh: &Warehouse, ns: &str, name: &str) -> Vec<DataFile> {
    let table = wh.load_table(ns, name).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let snapshot = table.metadata().current_snapshot().unwrap();
        let list = table.manifest_list_reader(snapshot).load().await.unwrap();
        let mut files = Vec::new();
        for manifest in list.entries() {
            if manifest.content != ManifestContentType::Data {
                continue;
            }
            let loaded = manifest.load_manifest(table.file_io()).await.unwrap();
            for entry in loaded.entries() {
                if entry.is_alive() {
                    files.push(entry.data_file().clone());
                }
            }
        }
        files
    })
}

fn field_id(wh: &Warehouse, ns: &str, name: &str, column: &str) -> i32 {
    let table = wh.load_table(ns, name).unwrap();
    table
        .metadata()
        .current_schema()
        .field_by_name(column)
        .unwrap()
        .id
}

/// Every column type the COPY path writes, NULLs, a NaN, and a column the
/// table has but the query lacks.
const WIDE_SQL: &str = "SELECT i AS id, (i % 300)::SMALLINT AS hhmm, (i % 1000)::INTEGER AS n, \
    CASE WHEN i = 7 THEN 'NaN'::DOUBLE ELSE i * 1.5 END AS mw, (i % 97)::REAL AS r, \
    'DUID' || lpad((i % 500)::VARCHAR, 4, '0') AS duid, \
    CASE WHEN i % 5 = 0 THEN NULL ELSE 'PUBLIC_DISPATCHSCADA_' || i END AS source_file, \
    DATE '2024-01-01' + (i % 30)::INTEGER AS day, \
    TIMESTAMP '2024-01-01' + INTERVAL (i * 5) MINUTE AS ts, \
    TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) SECOND AS tstz, \
    i % 2 = 0 AS even, NULL::VARCHAR AS always_null \
    FROM range(0, 1200000) t(i)";

#[test]
fn a_large_write_by_duckdb_copy_reads_back_the_same_rows_with_exact_bounds() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch("SET threads = 2").unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    conn.execute_batch(&format!("CREATE TEMP TABLE staged AS {WIDE_SQL}"))
        .unwrap();
    let report = wh
        .write(
            &conn,
            "staged",
            "marts",
            "wide",
            &WriteMode::Replace,
            "ignore",
        )
        .unwrap();
    assert!(
        report.copy.is_some(),
        "written by DuckDB's COPY: {report:?}"
    );
    assert_eq!(report.rows_written, 1_200_000);
    let files = live_files(&wh, "marts", "wide");
    assert_eq!(files.len(), report.files_added);
    assert!(
        files.len() >= 2,
        "one file per DuckDB thread: {}",
        files.len()
    );
    assert_eq!(
        files.iter().map(DataFile::record_count).sum::<u64>(),
        1_200_000
    );

    // The same rows back through the scan (types as the table stores them).
    wh.read_into_duckdb(&conn, "marts", "wide", "main.back")
        .unwrap();
    let differing: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM (SELECT * REPLACE (hhmm::INTEGER AS hhmm) FROM staged EXCEPT ALL SELECT * FROM main.back)) \
                  + (SELECT count(*) FROM (SELECT * FROM main.back EXCEPT ALL SELECT * REPLACE (hhmm::INTEGER AS hhmm) FROM staged))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(differing, 0, "rows differ after the round trip");
    // An independent reader agrees.
    let seen = pyiceberg(
        &sw,
        "a = c.load_table('marts.wide').scan().to_arrow()\n\
         print(a.num_rows, sum(a.column('id').to_pylist()), a.column('source_file').null_count)\n",
    );
    let ids: i64 = (0..1_200_000).sum();
    assert_eq!(seen.trim(), format!("1200000 {ids} 240000"));
    assert_eq!(
        duckdb_iceberg(
            &sw,
            "SELECT count(*), count(DISTINCT duid), epoch(min(tstz))::BIGINT, epoch(max(tstz))::BIGINT FROM lake.marts.wide"
        ),
        "1200000 500 1704067200 1705267199"
    );

    // Bounds: over all files, the lowest lower bound and the highest upper
    // bound of each column are the column's true min and max; counts add up.
    let table = wh.load_table("marts", "wide").unwrap();
    let schema = table.metadata().current_schema().clone();
    let bound = |column: &str, upper: bool| -> Option<Datum> {
        let id = schema.field_by_name(column).unwrap().id;
        let values: Vec<&Datum> = files
            .iter()
            .filter_map(|f| {
                if upper {
                    f.upper_bounds().get(&id)
                } else {
                    f.lower_bounds().get(&id)
                }
            })
            .collect();
        assert!(
            values.is_empty() || values.len() == files.len(),
            "{column}: some files have a bound, others not"
        );
        let best = values.into_iter().reduce(|a, b| {
            let b_wins = if upper { b > a } else { b < a };
            if b_wins { b } else { a }
        });
        best.cloned()
    };
    let checks: [(&str, Datum, Datum); 9] = [
        ("id", Datum::long(0), Datum::long(1_199_999)),
        ("hhmm", Datum::int(0), Datum::int(299)),
        ("n", Datum::int(0), Datum::int(999)),
        ("r", Datum::float(0.0), Datum::float(96.0)),
        ("duid", Datum::string("DUID0000"), Datum::string("DUID0499")),
        (
            "source_file",
            Datum::string("PUBLIC_DISPATCHSCADA_1"),
            Datum::string("PUBLIC_DISPATCHSCADA_999999"),
        ),
        ("day", Datum::date(19723), Datum::date(19752)),
        (
            "ts",
            Datum::timestamp_micros(1_704_067_200_000_000),
            Datum::timestamp_micros(1_704_067_200_000_000 + 1_199_999 * 300_000_000),
        ),
        (
            "tstz",
            Datum::timestamptz_micros(1_704_067_200_000_000),
            Datum::timestamptz_micros(1_704_067_200_000_000 + 1_199_999 * 1_000_000),
        ),
    ];
    for (column, lo, hi) in checks {
        assert_eq!(bound(column, false), Some(lo), "{column} lower bound");
        assert_eq!(bound(column, true), Some(hi), "{column} upper bound");
    }
    // An all-NULL column has no bounds; a NaN never becomes one (the file
    // holding it may have none for that column).
    assert_eq!(bound("always_null", false), None);
    assert_eq!(bound("always_null", true), None);
    let mw = schema.field_by_name("mw").unwrap().id;
    for f in &files {
        for b in [f.lower_bounds().get(&mw), f.upper_bounds().get(&mw)]
            .into_iter()
            .flatten()
        {
            assert!(
                *b >= Datum::double(0.0) && *b <= Datum::double(1_199_999.0 * 1.5),
                "mw bound {b}"
            );
        }
    }
    let null_id = schema.field_by_name("source_file").unwrap().id;
    let value_id = schema.field_by_name("id").unwrap().id;
    let sum = |f: fn(&DataFile) -> &HashMap<i32, u64>, id: i32| -> u64 {
        files.iter().map(|file| f(file)[&id]).sum()
    };
    assert_eq!(sum(DataFile::null_value_counts, null_id), 240_000);
    assert_eq!(sum(DataFile::value_counts, value_id), 1_200_000);

    // The Arrow path writes the same table the same way (one encoder is
    // not a different table).
    let arrow = wh.clone().with_encoder(DataEncoder::Arrow);
    let report = arrow
        .write(
            &conn,
            "staged",
            "marts",
            "wide",
            &WriteMode::Replace,
            "ignore",
        )
        .unwrap();
    assert!(report.copy.is_none());
    let again: i64 = conn
        .query_row(
            "SELECT count(*) FROM iceberg_scan('marts', 'wide')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(again, 1_200_000);
}

#[test]
fn an_upsert_finds_keys_past_a_truncated_string_bound() {
    let sw = SeaweedFs::start();
    let wh = Warehouse::connect(&config(&sw)).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    analytics::warehouse::scan::register(&conn, &wh).unwrap();
    // Keys of 300 bytes sharing a 290-byte prefix: DuckDB keeps 256 bytes
    // of their statistics and marks them inexact. Every key sorts after
    // the 256-byte prefix, so a file whose upper bound were that prefix
    // would be pruned by an upsert of any of them.
    let key = "'K' || repeat('x', 289) || lpad(i::VARCHAR, 10, '0')";
    let upsert = WriteMode::Upsert {
        keys: vec!["key".into()],
    };
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE staged AS SELECT {key} AS key, i AS id, 1.0::DOUBLE AS v FROM range(0, 1000) t(i)"
    ))
    .unwrap();
    let r = wh
        .write(&conn, "staged", "marts", "long_keys", &upsert, "ignore")
        .unwrap();
    assert!(r.copy.is_some(), "written by DuckDB's COPY: {r:?}");
    let key_id = field_id(&wh, "marts", "long_keys", "key");
    let files = live_files(&wh, "marts", "long_keys");
    assert_eq!(files.len(), 1);
    let true_max = format!("K{}{:010}", "x".repeat(289), 999);
    if let Some(upper) = files[0].upper_bounds().get(&key_id) {
        assert!(
            *upper >= Datum::string(&true_max),
            "the upper bound {upper} is below the largest key"
        );
    }
    // Short keys keep exact bounds (id is exact).
    let id_id = field_id(&wh, "marts", "long_keys", "id");
    assert_eq!(files[0].upper_bounds().get(&id_id), Some(&Datum::long(999)));

    // Upsert ten stored keys (the largest ones) with new values: they must
    // replace the stored rows, not be added beside them.
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE staged AS SELECT {key} AS key, i AS id, 2.0::DOUBLE AS v FROM range(990, 1000) t(i)"
    ))
    .unwrap();
    let r = wh
        .write(&conn, "staged", "marts", "long_keys", &upsert, "ignore")
        .unwrap();
    assert_eq!((r.files_read, r.files_removed), (1, 1), "{r:?}");
    let (rows, keys, total): (i64, i64, f64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT key), sum(v) FROM iceberg_scan('marts', 'long_keys')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, keys, total),
        (1000, 1000, 1010.0),
        "each key once, the ten upserted with their new value"
    );
}
