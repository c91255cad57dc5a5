//! Writing a staged DuckDB relation into an Iceberg table: replace, append,
//! or copy-on-write upsert (`delete+insert` and `merge`), with schema
//! alignment and retries when another writer commits first.

use super::failure::iceberg_text;
use super::rest::CommitOutcome;
use super::snapshot::{self, LiveFile, SnapshotChange};
use super::{Warehouse, types};
use crate::sql::quote;
use anyhow::{Context, Result, anyhow, bail};
use duckdb::arrow::array::{
    Array, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use duckdb::arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFile, DataFileFormat, Datum, Operation, PrimitiveType, Type};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, TableCreation, TableIdent};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How new rows meet the rows already stored.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteMode {
    /// The table's contents become the staged rows (one snapshot).
    Replace,
    /// The staged rows are added.
    Append,
    /// Stored rows whose key matches a staged row are replaced by it
    /// (`delete+insert` and `merge`); only files that can hold the keys are
    /// read and rewritten.
    Upsert {
        /// The key columns.
        keys: Vec<String>,
    },
    /// [`WriteMode::Upsert`] of keys the caller read as absent from the
    /// table at its snapshot `absent_at` (`None`: the table had no snapshot
    /// or did not exist). While the table is still at that snapshot, no
    /// stored row can hold them, so the write is an append that reads no
    /// manifest and no data file; once another writer has committed (a
    /// retry, or a commit since the caller read), it is a full upsert.
    /// The file log's writes: O(new), not one file read per earlier run.
    UpsertNew {
        /// The key columns.
        keys: Vec<String>,
        /// The snapshot the caller found none of the keys in.
        absent_at: Option<i64>,
    },
}

/// Which Parquet writer encodes the data files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataEncoder {
    /// DuckDB's own `COPY … TO` local files (one per thread for large
    /// writes), uploaded, entries read from the footers; tables with types
    /// it cannot write as Iceberg expects use `Arrow`.
    #[default]
    DuckdbCopy,
    /// The rows handed over as Arrow and encoded by parquet-rs through
    /// iceberg-rust's writer.
    Arrow,
}

/// What a write did, for the run summary and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    /// Rows taken from the staged relation.
    pub rows_written: u64,
    /// Data files the snapshot added (new rows and rewritten survivors).
    pub files_added: usize,
    /// Stored files whose bounds overlapped the new keys and were read.
    pub files_read: usize,
    /// Stored files removed (rewritten or, for `Replace`, dropped).
    pub files_removed: usize,
    /// Stored rows that moved into rewritten files.
    pub rows_carried: u64,
    /// Small stored files of the new rows' dates folded into the rewrite
    /// (see [`COMPACT_AT`]); counted in `files_read` and `files_removed`.
    pub files_compacted: usize,
    /// Commit attempts (more than one after a concurrent commit).
    pub attempts: u32,
    /// The snapshot created (`None` when there was nothing to write).
    pub snapshot_id: Option<i64>,
    /// Where the new rows' encoding time went when DuckDB's `COPY` wrote
    /// them (`None` for the Arrow path).
    pub copy: Option<super::CopyTimings>,
    /// Seconds from the data files being stored to the commit's answer
    /// (all attempts).
    pub commit_seconds: f64,
}

/// The Parquet settings of the data files we write for a table of
/// `schema`: zstd, whole-value bounds, 128k-row groups, no dictionary for
/// floating-point columns. Public so the benchmarks encode with exactly
/// these.
pub fn data_file_properties(
    schema: &iceberg::spec::Schema,
) -> parquet::file::properties::WriterProperties {
    let mut properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        // Whole values as bounds, so keys that share a long prefix
        // (AEMO file names) still prune.
        .set_statistics_truncate_length(None)
        // Smaller row groups stream to storage instead of growing
        // buffers of hundreds of MB (and give readers finer skipping).
        .set_max_row_group_row_count(Some(128 * 1024));
    // Measurements rarely repeat: dictionary-encoding floats costs most
    // of the write time (hash interning) and saves little.
    for field in schema.as_struct().fields() {
        if matches!(
            field.field_type.as_ref(),
            Type::Primitive(PrimitiveType::Float | PrimitiveType::Double)
        ) {
            properties = properties.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(field.name.as_str()),
                false,
            );
        }
    }
    properties.build()
}

/// Commit attempts before giving up under contention.
const MAX_ATTEMPTS: u32 = 8;
/// Consecutive rows one Parquet writer takes before the next writer's turn:
/// less than a writer's queue holds, so every writer always has work.
const WRITER_SEGMENT_ROWS: usize = 16_384;
/// Rows from which a write uses one Parquet writer per core.
const PARALLEL_WRITE_ROWS: u64 = 1_000_000;
/// Batches queued per Parquet writer.
const WRITER_QUEUE: usize = 16;
/// DuckDB schema for the rows of rewritten files.
const SCRATCH: &str = "\"__analytics_scratch\"";
/// An upsert folds the table's small data files of the new rows' dates into
/// its rewrite once this many of them (its own new file included) would be
/// live: an intraday table written every 5 minutes then holds a handful of
/// files for today instead of one per run (~288 by evening), which every
/// read of today (the export, the next upsert's planning) lists and copies.
/// The fold is part of the write's one snapshot, so a killed run leaves
/// the table as it was or with the write whole: no row lost or doubled.
pub const COMPACT_AT: usize = 8;
/// Data files below this size are small (folded); a fold's result stays
/// small until it passes it, so a day of 5-minute files becomes a few
/// files of about this size, and no fold reads more than ~COMPACT_AT of it.
pub const SMALL_FILE_BYTES: u64 = 1 << 20;

/// A key column and the range the staged rows span in it.
struct KeyRange {
    field_id: i32,
    /// `None` when the type has no usable bounds: every file is a candidate.
    range: Option<(Datum, Datum)>,
}

impl Warehouse {
    /// Writes the DuckDB relation `staged` into `schema.name`, creating the
    /// namespace and table from its columns when missing.
    ///
    /// `on_schema_change` (dbt's values) decides what happens when the
    /// staged columns differ from the table's.
    ///
    /// An S3 failure is said in one line naming the setting to check.
    pub fn write(
        &self,
        conn: &duckdb::Connection,
        staged: &str,
        schema: &str,
        name: &str,
        mode: &WriteMode,
        on_schema_change: &str,
    ) -> Result<WriteReport> {
        self.write_table(conn, staged, schema, name, mode, on_schema_change)
            .map_err(super::failure::explain)
    }

    fn write_table(
        &self,
        conn: &duckdb::Connection,
        staged: &str,
        schema: &str,
        name: &str,
        mode: &WriteMode,
        on_schema_change: &str,
    ) -> Result<WriteReport> {
        let context = || format!("writing Iceberg table {schema}.{name}");
        self.unpin(schema, name);
        let ident = Self::ident(schema, name);
        let staged_schema = arrow_schema_of(conn, staged).with_context(context)?;
        let table = self
            .runtime
            .block_on(self.ensure_table(&ident, &staged_schema))
            .with_context(context)?;
        let mut table = self
            .align_schema(table, &staged_schema, on_schema_change)
            .with_context(context)?;

        let staged_rows = count(conn, staged)?;
        let mut report = WriteReport {
            rows_written: staged_rows,
            ..Default::default()
        };
        if staged_rows == 0 && *mode != WriteMode::Replace {
            return Ok(report);
        }
        // A replace records its rows' fingerprint in the snapshot; a replace
        // by the very rows the table holds makes no snapshot at all (a
        // `table` model rebuilt from unchanged inputs: same result, so the
        // stored table, its history and what exports see stay as they are).
        //
        // Hashing every row costs about a quarter of a write (1 s on two
        // cores for the 3.9 M-row x 55-column bench table), so a large
        // replace is fingerprinted only when it could equal the stored rows
        // (same row count as the current snapshot); small ones always are.
        let fingerprint = match mode {
            WriteMode::Replace if fingerprint_worthwhile(&table, staged_rows) => Some(
                rows_fingerprint(conn, staged, &staged_schema)
                    .with_context(|| format!("{}: fingerprinting the rows", context()))?,
            ),
            _ => None,
        };
        if let Some(fp) = &fingerprint
            && holds_rows(&table, fp, &staged_schema)
        {
            tracing::debug!(
                "{schema}.{name}: the new rows equal the stored ones (fingerprint {fp}): no snapshot"
            );
            return Ok(report);
        }
        let keys = match mode {
            WriteMode::Upsert { keys } | WriteMode::UpsertNew { keys, .. } => {
                Some(key_ranges(conn, staged, keys, &table).with_context(|| {
                    format!("{}: reading the key range of the new rows", context())
                })?)
            }
            _ => None,
        };
        // The days of the new rows in every date or timestamp column: only
        // small files within them are folded, so a fold never widens the
        // dates a snapshot changes (what exports restage).
        let days = match mode {
            WriteMode::Upsert { .. } | WriteMode::UpsertNew { .. } => Some(
                day_ranges(conn, staged, &table)
                    .with_context(|| format!("{}: reading the dates of the new rows", context()))?,
            ),
            _ => None,
        };
        let (new_files, copy) = self
            .write_files_timed(
                conn,
                &format!("SELECT * FROM {staged}"),
                &table,
                staged_rows,
            )
            .with_context(context)?;
        report.copy = copy;
        let commit_started = std::time::Instant::now();
        // Every snapshot this write asked the catalog to commit. A commit
        // whose answer was lost (timeout, 5xx from a gateway) may still land
        // later, but at most one attempt can: each asserts the branch head it
        // was built on, and a landing moves the head. So after any refusal or
        // lost answer the reloaded table is searched for all of them, and
        // files an unanswered attempt referenced are never deleted (they
        // would be live if it landed; orphan cleanup removes them otherwise).
        let mut attempted: Vec<(i64, WriteReport)> = Vec::new();
        let mut unanswered = 0usize;

        for attempt in 1..=MAX_ATTEMPTS {
            report.attempts = attempt;
            // Keys read as absent at the snapshot the table is still at.
            let known_absent = matches!(mode, WriteMode::UpsertNew { absent_at, .. }
                if table.metadata().current_snapshot_id() == *absent_at);
            // Whether enough files are live for a fold to be possible (the
            // snapshot's summary says how many, without reading manifests).
            let may_fold = days.as_ref().is_some_and(|d| d.is_some())
                && total_data_files(&table).is_none_or(|n| n + new_files.len() >= COMPACT_AT);
            // An append (and an upsert of keys known absent) removes no
            // file, so it reads no manifest to find the live ones.
            let live = if (*mode == WriteMode::Append || known_absent) && !may_fold {
                Vec::new()
            } else {
                self.runtime
                    .block_on(snapshot::live_files(&table))
                    .with_context(context)?
            };
            let fold: Vec<&LiveFile> = match &days {
                Some(Some(days)) if may_fold => {
                    let small: Vec<&LiveFile> = live.iter().filter(|f| foldable(f, days)).collect();
                    if small.len() + new_files.len() >= COMPACT_AT {
                        small
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            };
            let mut deleted = HashSet::new();
            let mut carried_files = Vec::new();
            report.files_read = 0;
            report.rows_carried = 0;
            let operation = match (mode, &keys) {
                (WriteMode::Replace, _) => {
                    deleted.extend(live.iter().map(|f| f.data_file.file_path().to_string()));
                    Operation::Overwrite
                }
                (WriteMode::UpsertNew { .. }, Some(_)) if known_absent && fold.is_empty() => {
                    Operation::Append
                }
                (
                    WriteMode::Upsert { keys: names } | WriteMode::UpsertNew { keys: names, .. },
                    Some(ranges),
                ) => {
                    // Keys known absent are in no file: only the fold is read.
                    let scope: Vec<LiveFile> = if known_absent {
                        fold.iter().map(|f| (*f).clone()).collect()
                    } else {
                        Vec::new()
                    };
                    let rewrite = self
                        .rewrite_matching(
                            conn,
                            &table,
                            staged,
                            names,
                            ranges,
                            if known_absent { &scope } else { &live },
                            &fold,
                        )
                        .with_context(context)?;
                    report.files_read = rewrite.files_read;
                    report.files_compacted = fold.len();
                    report.rows_carried = rewrite.rows_carried;
                    deleted = rewrite.deleted;
                    carried_files = rewrite.carried_files;
                    if deleted.is_empty() {
                        Operation::Append
                    } else {
                        Operation::Overwrite
                    }
                }
                _ => Operation::Append,
            };
            let mut added = new_files.clone();
            added.extend(carried_files.iter().cloned());
            report.files_added = added.len();
            report.files_removed = deleted.len();
            let change = SnapshotChange {
                added,
                deleted: &deleted,
                operation,
                fingerprint: fingerprint.clone(),
            };
            let (outcome, snapshot_id) = self
                .runtime
                .block_on(snapshot::commit(&self.commits, &table, change))
                .with_context(context)?;
            report.commit_seconds = commit_started.elapsed().as_secs_f64();
            report.snapshot_id = Some(snapshot_id);
            attempted.push((snapshot_id, report.clone()));
            let (reason, answered) = match outcome {
                CommitOutcome::Committed => return Ok(report),
                CommitOutcome::Conflict(reason) => (reason, true),
                CommitOutcome::Unknown(reason) => (reason, false),
            };
            report.snapshot_id = None;
            if answered {
                self.delete_files(&table, &carried_files);
                tracing::warn!(
                    "{schema}.{name}: another writer committed first ({reason}); retrying on the new snapshot (attempt {attempt} of {MAX_ATTEMPTS})"
                );
            } else {
                unanswered += 1;
                tracing::warn!(
                    "{schema}.{name}: the catalog's answer to the commit was lost ({reason}); looking for it, then retrying (attempt {attempt} of {MAX_ATTEMPTS})"
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(
                50 * u64::from(attempt) + rand::random::<u64>() % 100,
            ));
            table = self.load_table(schema, name)?;
            if unanswered > 0
                && let Some((_, landed)) = attempted
                    .iter()
                    .find(|(id, _)| table.metadata().snapshot_by_id(*id).is_some())
            {
                // An attempt whose answer was lost did land: that is this
                // write's commit (no later attempt can have landed too).
                let mut landed = landed.clone();
                landed.attempts = attempt;
                landed.commit_seconds = commit_started.elapsed().as_secs_f64();
                return Ok(landed);
            }
        }
        if unanswered > 0 {
            bail!(
                "writing Iceberg table {schema}.{name}: the catalog did not answer {unanswered} of {MAX_ATTEMPTS} commits and refused the others; an unanswered commit may still land, so the new data files were kept (`mode: maintain` removes them if it never does)"
            )
        }
        self.delete_files(&table, &new_files);
        bail!(
            "writing Iceberg table {schema}.{name}: gave up after {MAX_ATTEMPTS} attempts because other writers kept committing first; nothing was written"
        )
    }

    /// Creates the namespace and the table (from `source`'s columns) when missing.
    async fn ensure_table(&self, ident: &TableIdent, source: &SchemaRef) -> Result<Table> {
        // The table usually exists: one round trip (a load) instead of
        // asking for the namespace and the table first.
        match self.catalog.load_table(ident).await {
            Ok(table) => return Ok(table),
            Err(e) if e.kind() == iceberg::ErrorKind::TableNotFound => {}
            Err(e) => return Err(anyhow!("loading the table: {}", iceberg_text(&e))),
        }
        let namespace = ident.namespace().clone();
        if !self
            .catalog
            .namespace_exists(&namespace)
            .await
            .map_err(|e| anyhow!("checking the namespace: {}", iceberg_text(&e)))?
        {
            // Another writer may create it at the same moment.
            if let Err(e) = self
                .catalog
                .create_namespace(&namespace, HashMap::new())
                .await
                && !self
                    .catalog
                    .namespace_exists(&namespace)
                    .await
                    .unwrap_or(false)
            {
                bail!("creating the namespace: {}", iceberg_text(&e));
            }
        }
        if self
            .catalog
            .table_exists(ident)
            .await
            .map_err(|e| anyhow!("checking the table: {}", iceberg_text(&e)))?
        {
            return self
                .catalog
                .load_table(ident)
                .await
                .map_err(|e| anyhow!("loading the table: {}", iceberg_text(&e)));
        }
        let schema = types::iceberg_schema(source)
            .context("the result has a column Iceberg cannot store")?;
        let creation = TableCreation::builder()
            .name(ident.name().to_string())
            .schema(schema)
            .properties(HashMap::from([(
                "write.parquet.compression-codec".to_string(),
                "zstd".to_string(),
            )]))
            .build();
        match self.catalog.create_table(&namespace, creation).await {
            Ok(t) => Ok(t),
            // Lost a race with another writer creating it: use theirs.
            Err(e) => self
                .catalog
                .load_table(ident)
                .await
                .map_err(|_| anyhow!("creating the table: {}", iceberg_text(&e))),
        }
    }

    /// Applies dbt's `on_schema_change` to the table's schema.
    fn align_schema(&self, table: Table, staged: &SchemaRef, policy: &str) -> Result<Table> {
        let current = table.metadata().current_schema().clone();
        let has = |name: &str| current.field_by_name(name).is_some();
        let added: Vec<_> = staged.fields().iter().filter(|f| !has(f.name())).collect();
        let removed: Vec<String> = current
            .as_struct()
            .fields()
            .iter()
            .filter(|f| staged.field_with_name(&f.name).is_err())
            .map(|f| f.name.clone())
            .collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(table);
        }
        let names = |v: Vec<String>| v.join(", ");
        match policy {
            "ignore" => Ok(table),
            "fail" => bail!(
                "on_schema_change='fail': the model's columns changed (new: {}; missing: {})",
                names(added.iter().map(|f| f.name().clone()).collect()),
                names(removed)
            ),
            "append_new_columns" | "sync_all_columns" => {
                let new_fields =
                    types::iceberg_schema(&Arc::new(duckdb::arrow::datatypes::Schema::new(
                        added.iter().map(|f| f.as_ref().clone()).collect::<Vec<_>>(),
                    )))?;
                let tx = Transaction::new(&table);
                let mut action = tx.update_schema();
                for field in new_fields.as_struct().fields() {
                    action = action.add_column(iceberg::transaction::AddColumn::optional(
                        field.name.clone(),
                        field.field_type.as_ref().clone(),
                    ));
                }
                if policy == "sync_all_columns" {
                    for name in &removed {
                        action = action.delete_column(name);
                    }
                }
                let tx = action.apply(tx).map_err(|e| anyhow!("{e}"))?;
                self.runtime
                    .block_on(tx.commit(self.catalog.as_ref()))
                    .map_err(|e| anyhow!("changing the table's columns: {e}"))
            }
            other => bail!(
                "unknown on_schema_change '{other}' (use ignore, fail, append_new_columns or sync_all_columns)"
            ),
        }
    }

    /// Writes the rows of `sql` as Parquet data files (zstd, column bounds)
    /// in the table's current schema; columns the query lacks are NULL.
    pub(crate) fn write_files(
        &self,
        conn: &duckdb::Connection,
        sql: &str,
        table: &Table,
        rows_hint: u64,
    ) -> Result<Vec<DataFile>> {
        Ok(self.write_files_timed(conn, sql, table, rows_hint)?.0)
    }

    /// [`Self::write_files`], saying where the time went when DuckDB's
    /// `COPY` wrote the files.
    fn write_files_timed(
        &self,
        conn: &duckdb::Connection,
        sql: &str,
        table: &Table,
        rows_hint: u64,
    ) -> Result<(Vec<DataFile>, Option<super::CopyTimings>)> {
        if self.encoder == DataEncoder::DuckdbCopy && super::copy_write::supported(table) {
            let (files, timings) =
                self.write_files_by_copy(conn, sql, table, rows_hint >= PARALLEL_WRITE_ROWS)?;
            return Ok((files, Some(timings)));
        }
        Ok((self.write_files_arrow(conn, sql, table, rows_hint)?, None))
    }

    /// The Arrow path: DuckDB's rows streamed to parquet-rs writers.
    fn write_files_arrow(
        &self,
        conn: &duckdb::Connection,
        sql: &str,
        table: &Table,
        rows_hint: u64,
    ) -> Result<Vec<DataFile>> {
        let mut stmt = conn.prepare(sql).context("preparing the rows to write")?;
        // Streamed chunk by chunk: DuckDB produces the next rows while the
        // writers encode the last ones, and the result is never held whole
        // (`query_arrow` would materialize it first, and panic on a failed
        // fetch where `step` returns the error).
        drop(stmt.stream_arrow([]).context("reading the rows to write")?);
        let iceberg_schema = table.metadata().current_schema().clone();
        let target = Arc::new(
            iceberg::arrow::schema_to_arrow_schema(&iceberg_schema).map_err(|e| anyhow!("{e}"))?,
        );
        let properties = data_file_properties(&iceberg_schema);
        let prefix = format!("data-{:016x}", rand::random::<u64>());
        // Encoding and compressing Parquet is the costly part and runs on
        // one core per file: deal short runs of rows to one writer per core
        // (each file then spans the whole key range of this write, which
        // one file per write would too).
        // Small writes stay one file (fewer files to list and prune).
        let writers = if rows_hint >= PARALLEL_WRITE_ROWS {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        } else {
            1
        };
        self.runtime.block_on(async {
            let mut senders = Vec::new();
            let mut tasks = Vec::new();
            for w in 0..writers {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(WRITER_QUEUE);
                senders.push(tx);
                let parquet = ParquetWriterBuilder::new(properties.clone(), iceberg_schema.clone());
                let rolling = RollingFileWriterBuilder::new_with_default_file_size(
                    parquet,
                    table.file_io().clone(),
                    DefaultLocationGenerator::new(table.metadata()).map_err(|e| anyhow!("{e}"))?,
                    // A fresh prefix per write and writer: the generator's
                    // counter restarts at 0.
                    DefaultFileNameGenerator::new(
                        format!("{prefix}-{w}"),
                        None,
                        DataFileFormat::Parquet,
                    ),
                );
                tasks.push(self.runtime.spawn(async move {
                    let mut writer = DataFileWriterBuilder::new(rolling)
                        .build(None)
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                    let mut rows = 0;
                    while let Some(batch) = rx.recv().await {
                        rows += batch.num_rows();
                        writer
                            .write(batch)
                            .await
                            .map_err(|e| anyhow!("writing a data file: {e}"))?;
                    }
                    if rows == 0 {
                        return Ok(Vec::new());
                    }
                    writer
                        .close()
                        .await
                        .map_err(|e| anyhow!("closing a data file: {e}"))
                }));
            }
            let mut rows = 0usize;
            let mut failed = None;
            while let Some(chunk) = stmt.step().context("reading the rows to write")? {
                let batch = RecordBatch::from(&chunk);
                if batch.num_rows() == 0 {
                    continue;
                }
                let writer = (rows / WRITER_SEGMENT_ROWS) % writers;
                rows += batch.num_rows();
                let batch = types::conform(&batch, &target)?;
                if senders[writer].send(batch).await.is_err() {
                    failed = Some(writer);
                    break;
                }
            }
            drop(senders);
            let mut files = Vec::new();
            for task in tasks {
                files.extend(
                    task.await
                        .map_err(|e| anyhow!("a Parquet writer failed: {e}"))??,
                );
            }
            if let Some(w) = failed {
                bail!("Parquet writer {w} stopped early");
            }
            Ok(files)
        })
    }

    /// Best-effort removal of data files a failed attempt wrote.
    fn delete_files(&self, table: &Table, files: &[DataFile]) {
        for f in files {
            let _ = self.runtime.block_on(table.file_io().delete(f.file_path()));
        }
    }

    /// Copy-on-write for upserts: reads only the live files whose bounds
    /// overlap the staged keys, and for those holding a matching key writes
    /// the rows that stay into new files. The files of `fold` are rewritten
    /// whether or not they hold a key (their rows that stay join the same
    /// new files): small files folded into one.
    #[allow(clippy::too_many_arguments)]
    fn rewrite_matching(
        &self,
        conn: &duckdb::Connection,
        table: &Table,
        staged: &str,
        keys: &[String],
        ranges: &[KeyRange],
        live: &[LiveFile],
        fold: &[&LiveFile],
    ) -> Result<Rewrite> {
        let folded: HashSet<&str> = fold.iter().map(|f| f.data_file.file_path()).collect();
        let candidates: Vec<&LiveFile> = live
            .iter()
            .filter(|f| {
                folded.contains(f.data_file.file_path())
                    || ranges.iter().all(|r| overlaps(&f.data_file, r))
            })
            .collect();
        let mut rewrite = Rewrite {
            files_read: candidates.len(),
            ..Default::default()
        };
        if candidates.is_empty() {
            return Ok(rewrite);
        }
        let columns = types::duckdb_columns(table.metadata().current_schema())?;
        conn.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {SCRATCH};
             CREATE OR REPLACE TABLE {SCRATCH}.candidate ({columns});
             CREATE OR REPLACE TABLE {SCRATCH}.carried ({columns});"
        ))
        .context("preparing scratch tables")?;
        let matches = keys
            .iter()
            .map(|k| format!("c.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let field_ids: Vec<i32> = table
            .metadata()
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .map(|f| f.id)
            .collect();
        // The rows of the candidate(s) read that no staged row replaces.
        let carry = format!(
            "INSERT INTO {SCRATCH}.carried SELECT * FROM {SCRATCH}.candidate c \
             WHERE NOT EXISTS (SELECT 1 FROM {staged} s WHERE {matches})"
        );
        // The folded files are rewritten whatever they hold: read at once
        // (one round trip each, all in flight), their rows that stay carried.
        let folding: Vec<&DataFile> = candidates
            .iter()
            .filter(|f| folded.contains(f.data_file.file_path()))
            .map(|f| &f.data_file)
            .collect();
        if !folding.is_empty() {
            self.read_files_into(conn, table, &folding, &field_ids, "candidate")?;
            let kept = conn.execute(&carry, [])?;
            rewrite.rows_carried += kept as u64;
            rewrite
                .deleted
                .extend(folding.iter().map(|f| f.file_path().to_string()));
        }
        for file in candidates
            .into_iter()
            .filter(|f| !folded.contains(f.data_file.file_path()))
        {
            conn.execute_batch(&format!("DELETE FROM {SCRATCH}.candidate"))?;
            self.read_file_into(conn, table, &file.data_file, &field_ids, "candidate")?;
            let hits: i64 = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {SCRATCH}.candidate c WHERE EXISTS (SELECT 1 FROM {staged} s WHERE {matches})"
                ),
                [],
                |r| r.get(0),
            )?;
            if hits == 0 {
                continue;
            }
            let kept = conn.execute(&carry, [])?;
            rewrite.rows_carried += kept as u64;
            rewrite
                .deleted
                .insert(file.data_file.file_path().to_string());
        }
        if rewrite.rows_carried > 0 {
            rewrite.carried_files = self.write_files(
                conn,
                &format!("SELECT * FROM {SCRATCH}.carried"),
                table,
                rewrite.rows_carried,
            )?;
        }
        conn.execute_batch(&format!("DROP SCHEMA {SCRATCH} CASCADE"))?;
        Ok(rewrite)
    }

    /// Appends one data file's rows (in the table's current schema) to a
    /// scratch table.
    pub(super) fn read_file_into(
        &self,
        conn: &duckdb::Connection,
        table: &Table,
        file: &DataFile,
        field_ids: &[i32],
        scratch_table: &str,
    ) -> Result<()> {
        self.read_files_into(conn, table, &[file], field_ids, scratch_table)
    }

    /// Appends the rows of data files (in the table's current schema) to a
    /// scratch table, several files read at once.
    pub(super) fn read_files_into(
        &self,
        conn: &duckdb::Connection,
        table: &Table,
        files: &[&DataFile],
        field_ids: &[i32],
        scratch_table: &str,
    ) -> Result<()> {
        let tasks: Vec<iceberg::Result<FileScanTask>> = files
            .iter()
            .map(|file| Ok(scan_task(table, file, field_ids)))
            .collect();
        let mut appender = conn
            .appender_to_db(scratch_table, "__analytics_scratch")
            .context("opening the scratch table")?;
        let reader = ArrowReaderBuilder::new(
            table.file_io().clone(),
            iceberg::Runtime::new(&self.runtime),
        )
        .with_data_file_concurrency_limit(READ_FILES_AT_ONCE)
        .build();
        self.runtime.block_on(async {
            let mut stream = reader
                .read(Box::pin(futures::stream::iter(tasks)))
                .map_err(|e| anyhow!("{e}"))?
                .stream();
            while let Some(batch) = stream.try_next().await.map_err(|e| {
                let paths: Vec<&str> = files.iter().map(|f| f.file_path()).collect();
                anyhow!("reading {}: {e}", paths.join(", "))
            })? {
                appender
                    .append_record_batch(batch)
                    .context("loading rows into the scratch table")?;
            }
            Ok::<(), anyhow::Error>(())
        })?;
        appender
            .flush()
            .context("loading rows into the scratch table")?;
        Ok(())
    }
}

/// Data files read at once by [`Warehouse::read_files_into`].
const READ_FILES_AT_ONCE: usize = 16;

/// A task reading all of one data file in the table's current schema.
fn scan_task(table: &Table, file: &DataFile, field_ids: &[i32]) -> FileScanTask {
    FileScanTask::builder()
        .with_file_size_in_bytes(file.file_size_in_bytes())
        .with_start(0)
        .with_length(file.file_size_in_bytes())
        .with_record_count(Some(file.record_count()))
        .with_data_file_path(file.file_path().to_string())
        .with_data_file_format(DataFileFormat::Parquet)
        .with_schema(table.metadata().current_schema().clone())
        .with_project_field_ids(field_ids.to_vec())
        .with_case_sensitive(true)
        .build()
}

#[derive(Default)]
struct Rewrite {
    files_read: usize,
    rows_carried: u64,
    deleted: HashSet<String>,
    carried_files: Vec<DataFile>,
}

fn arrow_schema_of(conn: &duckdb::Connection, relation: &str) -> Result<SchemaRef> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {relation} LIMIT 0"))
        .with_context(|| format!("reading the columns of {relation}"))?;
    let arrow = stmt
        .query_arrow([])
        .with_context(|| format!("reading the columns of {relation}"))?;
    Ok(arrow.get_schema())
}

fn count(conn: &duckdb::Connection, relation: &str) -> Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {relation}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .with_context(|| format!("counting {relation}"))
}

/// An order-independent fingerprint of `staged`'s rows and columns: the
/// row count and the sum of DuckDB's `hash()` of every row, with the column
/// names and types and the DuckDB version (whose `hash()` it is).
fn rows_fingerprint(conn: &duckdb::Connection, staged: &str, schema: &SchemaRef) -> Result<String> {
    let (rows, hash_sum, version): (i64, Option<String>, String) = conn.query_row(
        &format!(
            "SELECT count(*), CAST(sum(hash(__r)) AS VARCHAR), version() FROM {staged} AS __r"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect();
    let text = format!(
        "analytics rows fingerprint 1\nduckdb {version}\ncolumns {}\nrows {rows}\nrow hash sum {}\n",
        columns.join(", "),
        hash_sum.unwrap_or_default()
    );
    Ok(format!(
        "sha256:{}",
        crate::hash::sha256_hex(text.as_bytes())
    ))
}

/// Replaces of at most this many rows are always fingerprinted.
const FINGERPRINT_ALWAYS_ROWS: u64 = 1_000_000;

/// Whether a replace of `staged_rows` rows is worth fingerprinting: a small
/// one always (its fingerprint lets the next identical rebuild make no
/// snapshot), a large one only when the current snapshot holds as many rows
/// (a different count can never be the same rows).
fn fingerprint_worthwhile(table: &Table, staged_rows: u64) -> bool {
    if staged_rows <= FINGERPRINT_ALWAYS_ROWS {
        return true;
    }
    table
        .metadata()
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("total-records"))
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|stored| stored == staged_rows)
}

/// Whether the table's current snapshot was written by a replace with the
/// rows of `fingerprint`, and the table still has exactly the staged
/// columns (a later snapshot of any other kind carries no fingerprint).
fn holds_rows(table: &Table, fingerprint: &str, staged: &SchemaRef) -> bool {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return false;
    };
    let columns: Vec<&str> = table
        .metadata()
        .current_schema()
        .as_struct()
        .fields()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let staged: Vec<&str> = staged.fields().iter().map(|f| f.name().as_str()).collect();
    columns == staged
        && snapshot
            .summary()
            .additional_properties
            .get(snapshot::FINGERPRINT_PROPERTY)
            .is_some_and(|fp| fp == fingerprint)
}

/// The snapshot summary's count of live data files (`None` when missing).
fn total_data_files(table: &Table) -> Option<usize> {
    table
        .metadata()
        .current_snapshot()?
        .summary()
        .additional_properties
        .get("total-data-files")?
        .parse()
        .ok()
}

/// A date or timestamp column and the days (since 1970-01-01, UTC) the
/// staged rows span in it.
struct DayRange {
    field_id: i32,
    first: i64,
    last: i64,
}

/// The days the staged rows span in each date and timestamp column of the
/// table; `None` when a column's range is unknown (a NULL, an empty
/// stage): then nothing is folded.
fn day_ranges(
    conn: &duckdb::Connection,
    staged: &str,
    table: &Table,
) -> Result<Option<Vec<DayRange>>> {
    let schema = table.metadata().current_schema();
    let columns: Vec<String> = schema
        .as_struct()
        .fields()
        .iter()
        .filter(|f| {
            matches!(
                f.field_type.as_ref(),
                Type::Primitive(
                    PrimitiveType::Date | PrimitiveType::Timestamp | PrimitiveType::Timestamptz
                )
            )
        })
        .map(|f| f.name.clone())
        .collect();
    let mut days = Vec::new();
    for range in key_ranges(conn, staged, &columns, table)? {
        let Some((lo, hi)) = &range.range else {
            return Ok(None);
        };
        match (day_of(lo), day_of(hi)) {
            (Some(first), Some(last)) => days.push(DayRange {
                field_id: range.field_id,
                first,
                last,
            }),
            _ => return Ok(None),
        }
    }
    Ok(Some(days))
}

/// The day (since 1970-01-01, UTC) of a date or timestamp value.
fn day_of(value: &Datum) -> Option<i64> {
    use iceberg::spec::PrimitiveLiteral;
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    match (value.data_type(), value.literal()) {
        (PrimitiveType::Date, PrimitiveLiteral::Int(d)) => Some(i64::from(*d)),
        (PrimitiveType::Timestamp | PrimitiveType::Timestamptz, PrimitiveLiteral::Long(us)) => {
            Some(us.div_euclid(MICROS_PER_DAY))
        }
        _ => None,
    }
}

/// Whether a live file is small and all its rows lie within the new rows'
/// days in every date and timestamp column (its bounds say so): folding
/// it changes no other day.
fn foldable(file: &LiveFile, days: &[DayRange]) -> bool {
    let f = &file.data_file;
    f.file_size_in_bytes() < SMALL_FILE_BYTES
        && days.iter().all(|d| {
            let within = |bound: Option<&Datum>| {
                bound
                    .and_then(day_of)
                    .is_some_and(|day| d.first <= day && day <= d.last)
            };
            within(f.lower_bounds().get(&d.field_id)) && within(f.upper_bounds().get(&d.field_id))
        })
}

/// The min and max of each key column over the staged rows, as Iceberg values.
fn key_ranges(
    conn: &duckdb::Connection,
    staged: &str,
    keys: &[String],
    table: &Table,
) -> Result<Vec<KeyRange>> {
    let schema = table.metadata().current_schema();
    let arrow_schema =
        iceberg::arrow::schema_to_arrow_schema(schema).map_err(|e| anyhow!("{e}"))?;
    let mut ranges = Vec::new();
    for key in keys {
        let field = schema
            .field_by_name(key)
            .with_context(|| format!("unique_key `{key}` is not a column of the table"))?;
        let arrow_type = arrow_schema
            .field_with_name(&field.name)
            .map_err(|e| anyhow!("{e}"))?
            .data_type()
            .clone();
        let mut stmt = conn.prepare(&format!(
            "SELECT min({q}) AS lo, max({q}) AS hi FROM {staged}",
            q = quote(key)
        ))?;
        let batch: Option<RecordBatch> = stmt.query_arrow([])?.next();
        let range = match (batch, field.field_type.as_ref()) {
            (Some(batch), Type::Primitive(p)) => {
                let lo = duckdb::arrow::compute::cast(batch.column(0), &arrow_type)?;
                let hi = duckdb::arrow::compute::cast(batch.column(1), &arrow_type)?;
                match (datum_at(lo.as_ref(), p), datum_at(hi.as_ref(), p)) {
                    (Some(lo), Some(hi)) => Some((lo, hi)),
                    _ => None,
                }
            }
            _ => None,
        };
        ranges.push(KeyRange {
            field_id: field.id,
            range,
        });
    }
    Ok(ranges)
}

/// The first value of a one-row array as an Iceberg datum (types with
/// simple ordering only; others disable pruning on that key).
fn datum_at(array: &dyn Array, ty: &PrimitiveType) -> Option<Datum> {
    if array.is_empty() || array.is_null(0) {
        return None;
    }
    let any = array.as_any();
    Some(match ty {
        PrimitiveType::Boolean => Datum::bool(any.downcast_ref::<BooleanArray>()?.value(0)),
        PrimitiveType::Int => Datum::int(any.downcast_ref::<Int32Array>()?.value(0)),
        PrimitiveType::Long => Datum::long(any.downcast_ref::<Int64Array>()?.value(0)),
        PrimitiveType::Float => Datum::float(any.downcast_ref::<Float32Array>()?.value(0)),
        PrimitiveType::Double => Datum::double(any.downcast_ref::<Float64Array>()?.value(0)),
        PrimitiveType::Date => Datum::date(any.downcast_ref::<Date32Array>()?.value(0)),
        PrimitiveType::Timestamp => {
            Datum::timestamp_micros(any.downcast_ref::<TimestampMicrosecondArray>()?.value(0))
        }
        PrimitiveType::Timestamptz => {
            Datum::timestamptz_micros(any.downcast_ref::<TimestampMicrosecondArray>()?.value(0))
        }
        PrimitiveType::String => Datum::string(any.downcast_ref::<StringArray>()?.value(0)),
        _ => return None,
    })
}

/// Whether a data file's bounds for the key can include the staged range.
fn overlaps(file: &DataFile, key: &KeyRange) -> bool {
    let Some((lo, hi)) = &key.range else {
        return true;
    };
    if let Some(lower) = file.lower_bounds().get(&key.field_id)
        && lower.partial_cmp(hi) == Some(std::cmp::Ordering::Greater)
    {
        return false;
    }
    if let Some(upper) = file.upper_bounds().get(&key.field_id)
        && upper.partial_cmp(lo) == Some(std::cmp::Ordering::Less)
    {
        return false;
    }
    true
}
