//! `maintain` mode, per table: compact small data files into files of the
//! target size, expire old snapshots, delete the files only expired
//! snapshots referenced (data files, manifests, manifest lists), and the
//! files no snapshot ever referenced ([`super::orphans`]). Frequent
//! intraday commits otherwise leave thousands of small files and an ever
//! longer snapshot history, which the seed never cleaned up.

use super::Warehouse;
use super::rest::CommitOutcome;
use super::snapshot::{self, SnapshotChange};
use anyhow::{Context, Result, anyhow, bail};
use iceberg::spec::{DataFile, Operation};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use std::collections::{HashMap, HashSet};

pub use crate::project::MaintainOptions;

/// What maintenance did to one table.
#[derive(Debug, Clone, Default)]
pub struct MaintainReport {
    /// `namespace.table`.
    pub table: String,
    /// Small data files merged away.
    pub files_compacted: usize,
    /// Files written by the compaction.
    pub files_written: usize,
    /// Snapshots removed from the table's history.
    pub snapshots_expired: usize,
    /// Files deleted from storage because no remaining snapshot uses them.
    pub files_deleted: usize,
    /// Bytes of the deleted data and manifest files, as the table's metadata
    /// records them (manifest lists, a few KB each, are not counted).
    pub bytes_deleted: u64,
}

impl Warehouse {
    /// Compacts, expires and cleans `schema.name`.
    pub fn maintain(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        options: &MaintainOptions,
    ) -> Result<MaintainReport> {
        let mut report = MaintainReport {
            table: format!("{schema}.{name}"),
            ..Default::default()
        };
        let context = || format!("maintaining Iceberg table {schema}.{name}");
        self.compact(conn, schema, name, options, &mut report)
            .with_context(context)
            .map_err(super::failure::explain)?;
        self.expire(schema, name, options, &mut report)
            .with_context(context)
            .map_err(super::failure::explain)?;
        let table = self.load_table(schema, name).with_context(context)?;
        self.remove_orphans(&table, options.orphan_after_hours, &mut report)
            .with_context(context)?;
        Ok(report)
    }

    fn compact(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        options: &MaintainOptions,
        report: &mut MaintainReport,
    ) -> Result<()> {
        let small_limit = options.target_file_size_mb * 1024 * 1024;
        for _attempt in 0..5 {
            let table = self.load_table(schema, name)?;
            let live = self.runtime.block_on(snapshot::live_files(&table))?;
            let small: Vec<&DataFile> = live
                .iter()
                .map(|f| &f.data_file)
                .filter(|f| f.file_size_in_bytes() < small_limit)
                .collect();
            if small.len() < 2 {
                return Ok(());
            }
            let columns = super::types::duckdb_columns(table.metadata().current_schema())?;
            conn.execute_batch(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"__analytics_scratch\";
                 CREATE OR REPLACE TABLE \"__analytics_scratch\".compact ({columns});"
            ))?;
            let field_ids: Vec<i32> = table
                .metadata()
                .current_schema()
                .as_struct()
                .fields()
                .iter()
                .map(|f| f.id)
                .collect();
            for file in &small {
                self.read_file_into(conn, &table, file, &field_ids, "compact")?;
            }
            let rows: u64 = small.iter().map(|f| f.record_count()).sum();
            let written = self.write_files(
                conn,
                "SELECT * FROM \"__analytics_scratch\".compact",
                &table,
                rows,
            )?;
            conn.execute_batch("DROP SCHEMA \"__analytics_scratch\" CASCADE")?;
            let deleted: HashSet<String> =
                small.iter().map(|f| f.file_path().to_string()).collect();
            let change = SnapshotChange {
                added: written.clone(),
                deleted: &deleted,
                operation: Operation::Replace,
                fingerprint: None,
            };
            let (outcome, _) =
                self.runtime
                    .block_on(snapshot::commit(&self.commits, &table, change))?;
            match outcome {
                CommitOutcome::Committed => {
                    report.files_compacted = small.len();
                    report.files_written = written.len();
                    return Ok(());
                }
                CommitOutcome::Conflict(_) | CommitOutcome::Unknown(_) => {
                    for f in &written {
                        let _ = self.runtime.block_on(table.file_io().delete(f.file_path()));
                    }
                }
            }
        }
        bail!("compaction kept conflicting with other writers; try again later")
    }

    fn expire(
        &self,
        schema: &str,
        name: &str,
        options: &MaintainOptions,
        report: &mut MaintainReport,
    ) -> Result<()> {
        let table = self.load_table(schema, name)?;
        let before: HashSet<i64> = table
            .metadata()
            .snapshots()
            .map(|s| s.snapshot_id())
            .collect();
        let cutoff =
            chrono::Utc::now().timestamp_millis() - (options.expire_after_hours as i64) * 3_600_000;
        let tx = Transaction::new(&table);
        let tx = tx
            .expire_snapshots()
            .retain_last(options.keep_snapshots.max(1))
            .expire_older_than_ms(cutoff)
            .apply(tx)
            .map_err(|e| anyhow!("{e}"))?;
        let after_table = self
            .runtime
            .block_on(tx.commit(self.catalog.as_ref()))
            .map_err(|e| anyhow!("expiring snapshots: {e}"))?;
        let after: HashSet<i64> = after_table
            .metadata()
            .snapshots()
            .map(|s| s.snapshot_id())
            .collect();
        let expired: Vec<i64> = before.difference(&after).copied().collect();
        report.snapshots_expired = expired.len();
        if expired.is_empty() {
            return Ok(());
        }
        // Files reachable from the expired snapshots minus those still
        // reachable from the kept ones.
        let gone = self.runtime.block_on(reachable(&table, &expired))?;
        let kept: Vec<i64> = after.into_iter().collect();
        let still = self.runtime.block_on(reachable(&after_table, &kept))?;
        for (path, bytes) in gone.iter().filter(|(p, _)| !still.contains_key(*p)) {
            self.runtime
                .block_on(after_table.file_io().delete(path))
                .map_err(|e| anyhow!("deleting {path}: {e}"))?;
            report.files_deleted += 1;
            report.bytes_deleted += bytes;
        }
        Ok(())
    }
}

/// Every file (manifest lists, manifests, data files) the given snapshots
/// use, with its size as the metadata records it (0 for manifest lists).
pub(super) async fn reachable(table: &Table, snapshot_ids: &[i64]) -> Result<HashMap<String, u64>> {
    let mut files = HashMap::new();
    let mut seen_manifests = HashSet::new();
    for id in snapshot_ids {
        let Some(snapshot) = table.metadata().snapshot_by_id(*id) else {
            continue;
        };
        files.insert(snapshot.manifest_list().to_string(), 0);
        let list = table
            .manifest_list_reader(snapshot)
            .load()
            .await
            .map_err(|e| anyhow!("reading a manifest list: {e}"))?;
        for manifest in list.entries() {
            if !seen_manifests.insert(manifest.manifest_path.clone()) {
                continue;
            }
            files.insert(
                manifest.manifest_path.clone(),
                u64::try_from(manifest.manifest_length).unwrap_or(0),
            );
            let loaded = manifest
                .load_manifest(table.file_io())
                .await
                .map_err(|e| anyhow!("reading manifest {}: {e}", manifest.manifest_path))?;
            for entry in loaded.entries() {
                // DELETED entries still name the file, but only for history:
                // a file is in use when some snapshot lists it as live.
                if entry.is_alive() {
                    files.insert(entry.file_path().to_string(), entry.file_size_in_bytes());
                }
            }
        }
    }
    Ok(files)
}
