//! The file log in the target: which downloaded files are done. A table of
//! the DuckDB database, or on Iceberg targets a stored table written by
//! upsert on (source, file), so a file taken again replaces its entry.

use super::{Engine, FILE_LOG_NAMESPACE};
use crate::ingest::{FILE_LOG_RELATION, FileLog, TakenFile};
use crate::sql::literal;
use crate::warehouse::{WriteMode, scan};
use anyhow::{Context, Result, anyhow};

impl Engine {
    /// Creates the file log table if it is missing.
    fn ensure_file_log(&self) -> Result<()> {
        self.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"_analytics\";
             CREATE TABLE IF NOT EXISTS {FILE_LOG_RELATION} (
                source VARCHAR, file_name VARCHAR, url VARCHAR, stored_paths VARCHAR[],
                taken_at TIMESTAMP, bytes BIGINT, sha256 VARCHAR, rows BIGINT)"
        ))
        .map_err(|e| anyhow!(e))
        .context("creating the file log")
    }

    /// What the file log says is done: (source, file) → latest sha256.
    pub fn read_file_log(&self) -> Result<FileLog> {
        let mut read_at = None;
        // The stored log's rows, read once from local copies of its data
        // files (a few a day: each run adds a small one and the write
        // folds them once 8 of a day are live; copied many at once) when
        // it can be read so; else streamed.
        let mut local = None;
        if let Some(warehouse) = &self.warehouse {
            // One load answers the snapshot and the files read: the rows
            // read are exactly that snapshot's, and the log never loses a
            // key, so a key absent from the rows was absent at it.
            let stored = warehouse.pin_tables(&[(FILE_LOG_NAMESPACE, "file_log")])? > 0;
            let pinned_read = || -> Result<(Option<i64>, Option<String>)> {
                if !stored {
                    return Ok((None, None));
                }
                let at = warehouse
                    .current_snapshot_id(FILE_LOG_NAMESPACE, "file_log")
                    .context("reading the file log's snapshot")?;
                let conn = self.conn();
                let read = warehouse
                    .local_read_columns(
                        &conn,
                        FILE_LOG_NAMESPACE,
                        "file_log",
                        &["source", "file_name", "sha256", "taken_at"],
                    )
                    .context("copying the file log's data files")?;
                Ok((
                    at,
                    match read {
                        crate::warehouse::LocalRead::Parquet(sql) => Some(sql),
                        crate::warehouse::LocalRead::Stream(_) => None,
                    },
                ))
            };
            let result = pinned_read();
            warehouse.unpin_tables();
            let (at, sql) = result?;
            read_at = Some(at);
            local = sql;
            if stored {
                // Later reads of the log (the singular tests of a backfill)
                // stream the table as it is then, with this run's entries.
                self.execute_batch(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"_analytics\"; CREATE OR REPLACE VIEW {FILE_LOG_RELATION} AS SELECT * FROM {}",
                    scan::call(FILE_LOG_NAMESPACE, "file_log")
                ))
                .map_err(|e| anyhow!(e))
                .context("attaching the stored file log")?;
            }
        }
        self.ensure_file_log()?;
        let from = match &local {
            Some(sql) => sql.clone(),
            None => FILE_LOG_RELATION.to_string(),
        };
        let rows = self
            .query_rows(
                &format!(
                    "SELECT source, file_name, arg_max(sha256, taken_at) FROM {from} GROUP BY ALL"
                ),
                None,
            )
            .map_err(|e| anyhow!(e))
            .context("reading the file log")?;
        let mut log = FileLog {
            read_at,
            ..FileLog::default()
        };
        for r in rows.rows {
            let text = |i: usize| r[i].as_str().unwrap_or_default().to_string();
            log.done.insert((text(0), text(1)), text(2));
        }
        Ok(log)
    }

    /// Records files in the file log (in one statement, so all or none land).
    /// `read` is the log this run read: files it did not hold are new keys,
    /// written without looking for them in the stored log while it is still
    /// at the snapshot `read` saw ([`WriteMode::UpsertNew`]).
    pub fn write_file_log(&self, files: &[&TakenFile], read: &FileLog) -> Result<()> {
        self.ensure_file_log()?;
        if files.is_empty() {
            return Ok(());
        }
        let mut values = Vec::new();
        for f in files {
            let paths: Vec<String> = f
                .parts
                .iter()
                .map(|p| literal(&p.path.to_string_lossy()))
                .collect();
            let rows: Option<u64> = f.parts.iter().map(|p| p.rows).sum();
            values.push(format!(
                "({}, {}, {}, [{}]::VARCHAR[], {}::TIMESTAMP, {}, {}, {})",
                literal(&f.source),
                literal(&f.file_name),
                literal(&f.url),
                paths.join(", "),
                literal(&f.taken_at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
                f.bytes,
                literal(&f.sha256),
                rows.map(|r| r.to_string()).unwrap_or_else(|| "NULL".into())
            ));
        }
        if let Some(warehouse) = &self.warehouse {
            // Keyed on (source, file): a file taken again replaces its entry,
            // and two runs recording the same file leave one.
            let staged = "\"__analytics_file_log_new\"";
            self.execute_batch(&format!(
                "CREATE OR REPLACE TEMP TABLE {staged} AS SELECT * FROM {FILE_LOG_RELATION} LIMIT 0;
                 INSERT INTO {staged} VALUES {}",
                values.join(",\n")
            ))
            .map_err(|e| anyhow!(e))
            .context("staging the file log")?;
            let keys = vec!["source".into(), "file_name".into()];
            let all_new = files.iter().all(|f| {
                !read
                    .done
                    .contains_key(&(f.source.clone(), f.file_name.clone()))
            });
            let mode = match read.read_at {
                Some(absent_at) if all_new => WriteMode::UpsertNew { keys, absent_at },
                _ => WriteMode::Upsert { keys },
            };
            let result = {
                let conn = self.conn();
                warehouse.write(
                    &conn,
                    staged,
                    FILE_LOG_NAMESPACE,
                    "file_log",
                    &mode,
                    "append_new_columns",
                )
            };
            if let Ok(report) = &result {
                tracing::debug!("stored file log: {report:?}");
            }
            let _ = self.execute_batch(&format!("DROP TABLE IF EXISTS {staged}"));
            result.context("writing the file log to the warehouse")?;
            return Ok(());
        }
        self.execute_batch(&format!(
            "INSERT INTO {FILE_LOG_RELATION} VALUES {}",
            values.join(",\n")
        ))
        .map_err(|e| anyhow!(e))
        .context("writing the file log")
    }
}
