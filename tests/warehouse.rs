//! The Iceberg warehouse against a real REST catalog (SeaweedFS): tables
//! created from a DuckDB result, fast appends, reads back into DuckDB, and an
//! independent reader (pyiceberg) seeing the same rows.

mod common;
use analytics::warehouse::{IcebergConfig, S3Config, Warehouse};
use common::seaweedfs::{SeaweedFs, venv};

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
    let py = venv().join("bin/python");
    let script = format!(
        "from pyiceberg.catalog.rest import RestCatalog\n\
         c = RestCatalog('x', uri='{}', credential='admin:secretkey', warehouse='s3://warehouse', \
         **{{'s3.endpoint': '{}', 's3.access-key-id': 'admin', 's3.secret-access-key': 'secretkey', \
         's3.region': 'us-east-1', 's3.path-style-access': 'true'}})\n\
         t = c.load_table('marts.fct_test').scan().to_arrow()\n\
         print(t.num_rows, sum(t.column('id').to_pylist()), len(t.schema), len(c.load_table('marts.fct_test').snapshots()))\n",
        sw.catalog, sw.s3
    );
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
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
