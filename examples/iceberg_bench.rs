//! Iceberg warehouse benchmark (run by `bench/iceberg`): write throughput,
//! one-file `delete+insert` cost as the table grows, full-scan read
//! throughput, and our write path for the wide fact table that
//! `bench/iceberg` also writes with DuckDB's iceberg extension and pyiceberg.
//!
//! usage: iceberg_bench CATALOG_URL S3_URL CASE [ARGS]
//!   write ROWS            write ROWS fact rows (replace), then scan them
//!   upsert ROWS RUNS      table of ROWS rows; time one new 5-minute file and
//!                         one re-taken file (delete+insert), median of RUNS
//!   wide PARQUET RUNS [copy|arrow]
//!                         write the rows of PARQUET (replace), median of
//!                         RUNS, with DuckDB's COPY (default) or the Arrow
//!                         path; with the COPY breakdown
//!   stream PARQUET        only stream the rows of PARQUET out of DuckDB as
//!                         Arrow chunks (the hand-over a write starts with;
//!                         the catalog URLs are ignored)
//!   encode PARQUET RUNS   only encode the rows of PARQUET with our Parquet
//!                         settings, in memory (no catalog, no storage): on
//!                         one thread, and on two splitting the rows like
//!                         the write; medians of RUNS (CATALOG_URL and
//!                         S3_URL are ignored)
//!
//! Prints `key value` lines for the script to tabulate.

use analytics::warehouse::{DataEncoder, IcebergConfig, S3Config, Warehouse, WriteMode, scan};
use anyhow::{Context, Result, bail};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Units reporting every 5 minutes, like the NEM's ~500 DUIDs.
const UNITS: u64 = 500;

fn config(catalog: &str, s3: &str) -> IcebergConfig {
    IcebergConfig {
        uri: catalog.into(),
        warehouse: Some("s3://warehouse".into()),
        credential: Some("admin:secretkey".into()),
        token: None,
        s3: S3Config {
            endpoint: Some(s3.into()),
            region: Some("us-east-1".into()),
            access_key_id: Some("admin".into()),
            secret_access_key: Some("secretkey".into()),
            path_style: Some(true),
        },
        properties: Default::default(),
        timeout: None,
    }
}

/// Fact rows `from..to` (fct_scada's shape: interval, unit, MW, source file).
fn facts(from: u64, to: u64) -> String {
    format!(
        "SELECT TIMESTAMP '2024-01-01' + INTERVAL (i // {UNITS} * 5) MINUTE AS settlementdate, \
         'DUID' || lpad((i % {UNITS})::VARCHAR, 4, '0') AS duid, \
         (hash(i) % 50000) / 100.0 AS mw, \
         'PUBLIC_DISPATCHSCADA_' || strftime(TIMESTAMP '2024-01-01' + INTERVAL (i // {UNITS} * 5) MINUTE, '%Y%m%d%H%M') || '_0000000417301153.zip' AS source_file \
         FROM range({from}, {to}) t(i)"
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn stage(conn: &duckdb::Connection, sql: &str) -> Result<()> {
    conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE staged AS {sql}"))
        .context("staging rows")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        bail!("usage: iceberg_bench CATALOG_URL S3_URL write|upsert|wide ...");
    }
    match args[3].as_str() {
        "encode" => return encode(args.get(4).context("missing PARQUET")?, &args[5]),
        "stream" => return stream(args.get(4).context("missing PARQUET")?),
        _ => {}
    }
    let wh = Warehouse::connect(&config(&args[1], &args[2]))?;
    let conn = duckdb::Connection::open_in_memory()?;
    scan::register(&conn, &wh)?;
    let arg = |i: usize| -> Result<u64> {
        args.get(i)
            .context("missing argument")?
            .parse()
            .context("not a number")
    };
    match args[3].as_str() {
        "write" => {
            let rows = arg(4)?;
            stage(&conn, &facts(0, rows))?;
            let started = Instant::now();
            let report = wh.write(
                &conn,
                "staged",
                "bench",
                "write",
                &WriteMode::Replace,
                "ignore",
            )?;
            let secs = started.elapsed().as_secs_f64();
            let bytes = table_bytes(&wh, "bench", "write")?;
            println!("write_rows {}", report.rows_written);
            println!("write_seconds {secs:.3}");
            println!("write_rows_per_s {:.0}", rows as f64 / secs);
            println!("write_mb_per_s {:.1}", bytes as f64 / 1e6 / secs);
            println!("write_bytes {bytes}");
            let started = Instant::now();
            let (n, _sum): (i64, f64) = conn.query_row(
                "SELECT count(*), sum(mw) FROM iceberg_scan('bench', 'write')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let secs = started.elapsed().as_secs_f64();
            println!("scan_rows {n}");
            println!("scan_seconds {secs:.3}");
            println!("scan_rows_per_s {:.0}", n as f64 / secs);
            println!("scan_mb_per_s {:.1}", bytes as f64 / 1e6 / secs);
        }
        "upsert" => {
            let rows = arg(4)?;
            let runs = arg(5)?;
            let table = format!("upsert_{rows}");
            stage(&conn, &facts(0, rows))?;
            wh.write(
                &conn,
                "staged",
                "bench",
                &table,
                &WriteMode::Replace,
                "ignore",
            )?;
            let keys = WriteMode::Upsert {
                keys: vec!["settlementdate".into(), "duid".into()],
            };
            let (mut new_file, mut retaken) = (Vec::new(), Vec::new());
            let mut next = rows;
            for _ in 0..runs {
                // A new 5-minute file: the next interval for every unit.
                stage(&conn, &facts(next, next + UNITS))?;
                next += UNITS;
                let started = Instant::now();
                let r = wh.write(&conn, "staged", "bench", &table, &keys, "ignore")?;
                new_file.push(started.elapsed().as_secs_f64());
                println!("new_file_files_read {}", r.files_read);
                // The same file taken again: its rows replace themselves.
                let started = Instant::now();
                let r = wh.write(&conn, "staged", "bench", &table, &keys, "ignore")?;
                retaken.push(started.elapsed().as_secs_f64());
                println!("retaken_files_read {}", r.files_read);
                println!("retaken_rows_carried {}", r.rows_carried);
            }
            let n: i64 = conn.query_row(
                &format!("SELECT count(*) FROM iceberg_scan('bench', '{table}')"),
                [],
                |r| r.get(0),
            )?;
            if n as u64 != next {
                bail!("table {table} holds {n} rows, expected {next}");
            }
            println!("new_file_seconds {:.3}", median(new_file));
            println!("retaken_seconds {:.3}", median(retaken));
        }
        "wide" => {
            let parquet = args.get(4).context("missing PARQUET")?;
            let runs = arg(5)?;
            let encoder = match args.get(6).map(String::as_str) {
                None | Some("copy") => DataEncoder::DuckdbCopy,
                Some("arrow") => DataEncoder::Arrow,
                Some(other) => bail!("unknown encoder {other} (copy or arrow)"),
            };
            let wh = wh.clone().with_encoder(encoder);
            conn.execute_batch(&format!(
                "CREATE TEMP TABLE staged AS SELECT * FROM read_parquet('{parquet}')"
            ))?;
            let rows: i64 = conn.query_row("SELECT count(*) FROM staged", [], |r| r.get(0))?;
            let mut times = Vec::new();
            let mut parts: Vec<[f64; 4]> = Vec::new();
            // A fresh table each write: a replace by the rows a table already
            // holds makes no snapshot, so rewriting one table would time nothing.
            for run in 0..runs {
                let started = Instant::now();
                let report = wh.write(
                    &conn,
                    "staged",
                    "bench",
                    &format!("wide_ours_{}_{run}", std::process::id()),
                    &WriteMode::Replace,
                    "ignore",
                )?;
                times.push(started.elapsed().as_secs_f64());
                if let Some(copy) = report.copy {
                    parts.push([
                        copy.copy_seconds,
                        copy.footer_seconds,
                        copy.upload_seconds,
                        report.commit_seconds,
                    ]);
                }
            }
            let secs = median(times);
            if !parts.is_empty() {
                for (i, key) in ["copy", "footer", "upload", "commit"].iter().enumerate() {
                    let part = median(parts.iter().map(|p| p[i]).collect());
                    println!("wide_{key}_seconds {part:.3}");
                }
            }
            println!("wide_rows {rows}");
            println!("wide_seconds {secs:.3}");
            println!("wide_rows_per_s {:.0}", rows as f64 / secs);
        }
        "export" => {
            // How long DuckDB alone takes to hand the rows over as Arrow.
            let parquet = args.get(4).context("missing PARQUET")?;
            conn.execute_batch(&format!(
                "CREATE TEMP TABLE staged AS SELECT * FROM read_parquet('{parquet}')"
            ))?;
            let started = Instant::now();
            let mut stmt = conn.prepare("SELECT * FROM staged")?;
            let rows: usize = stmt.query_arrow([])?.map(|b| b.num_rows()).sum();
            println!("export_rows {rows}");
            println!("export_seconds {:.3}", started.elapsed().as_secs_f64());
        }
        other => bail!("unknown case {other}"),
    }
    Ok(())
}

/// Bytes of the table's live data files.
fn table_bytes(wh: &Warehouse, schema: &str, name: &str) -> Result<u64> {
    let table = wh.load_table(schema, name)?;
    Ok(table
        .metadata()
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("added-files-size"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The hand-over floor of a write: the rows of `parquet`, loaded into a
/// DuckDB table first, streamed out as Arrow chunks as `write` reads them.
fn stream(parquet: &str) -> Result<()> {
    let conn = duckdb::Connection::open_in_memory()?;
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE staged AS SELECT * FROM read_parquet('{parquet}')"
    ))?;
    let started = Instant::now();
    let mut stmt = conn.prepare("SELECT * FROM staged")?;
    drop(stmt.stream_arrow([])?);
    let mut rows = 0;
    while let Some(chunk) = stmt.step()? {
        rows += duckdb::arrow::array::RecordBatch::from(&chunk).num_rows();
    }
    println!("stream_rows {rows}");
    println!("stream_seconds {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}

/// The encoding floor of a write: the rows of `parquet`, as DuckDB hands
/// them over (2,048-row Arrow chunks), encoded with our data-file settings
/// into memory, on one thread and on two.
fn encode(parquet: &str, runs: &str) -> Result<()> {
    use duckdb::arrow::array::RecordBatch;
    use parquet::arrow::ArrowWriter;
    let runs: usize = runs.parse().context("RUNS is not a number")?;
    let conn = duckdb::Connection::open_in_memory()?;
    let mut stmt = conn.prepare(&format!("SELECT * FROM read_parquet('{parquet}')"))?;
    let batches: Vec<RecordBatch> = stmt.query_arrow([])?.collect();
    let schema = batches.first().context("no rows")?.schema();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let iceberg_schema = iceberg::arrow::arrow_schema_to_schema_auto_assign_ids(&schema)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let properties = analytics::warehouse::data_file_properties(&iceberg_schema);
    let encode_part = |part: Vec<&RecordBatch>| -> Result<usize> {
        let mut writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties.clone()))?;
        for batch in part {
            writer.write(batch)?;
        }
        Ok(writer.into_inner()?.len())
    };
    let (mut one, mut two, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let started = Instant::now();
        bytes = encode_part(batches.iter().collect())?;
        one.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let halves: Vec<_> = (0..2)
                .map(|w| {
                    let part: Vec<&RecordBatch> = batches.iter().skip(w).step_by(2).collect();
                    scope.spawn(move || encode_part(part))
                })
                .collect();
            for half in halves {
                half.join()
                    .map_err(|_| anyhow::anyhow!("encoder panicked"))??;
            }
            Ok(())
        })?;
        two.push(started.elapsed().as_secs_f64());
    }
    println!("encode_rows {rows}");
    println!("encode_bytes {bytes}");
    println!("encode_1t_seconds {:.3}", median(one));
    println!("encode_2t_seconds {:.3}", median(two));
    Ok(())
}
