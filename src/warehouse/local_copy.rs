//! Reading a stored table with DuckDB's own Parquet reader, from local
//! copies of its data files.
//!
//! `iceberg_scan` hands DuckDB rows as Arrow arrays: strings arrive flat
//! (DuckDB's reader gives dictionary vectors whose hashes it computes once),
//! and no filter reaches the files (DuckDB's reader skips row groups on their
//! statistics). For a query that reads a whole table — every export does —
//! copying the data files to local disk once per run and reading them with
//! `read_parquet` is faster than streaming them, even counting the copy.
//!
//! iceberg-rust still decides *what* to read: it plans the current
//! snapshot's files, and the columns are matched by Iceberg field id (the
//! `schema` parameter of `read_parquet`), so renamed and added columns read
//! as Iceberg says. Tables this cannot read exactly stay on `iceberg_scan`:
//! delete files, nested columns, files without field ids, other file formats,
//! or more data than [`LocalCopies::limit_bytes`] allows on disk.
//!
//! Data files are never modified in place (a rewrite writes a new path), so
//! a copy stays valid for as long as the run lasts, and two reads of one
//! table in one run copy it once.

use super::Warehouse;
use super::types::duckdb_type;
use crate::sql::literal;
use anyhow::{Context, Result, anyhow};
use futures::{StreamExt, TryStreamExt};
use iceberg::Catalog;
use iceberg::io::FileIO;
use iceberg::spec::{DataFileFormat, Type};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;

/// Largest table (sum of its data files) copied by default: 4 GiB, well
/// inside a GitHub-hosted runner's free disk.
pub const DEFAULT_LIMIT_BYTES: u64 = 4 << 30;
/// Files copied at once.
const PARALLEL_FILES: usize = 4;
/// Files copied at once when each is one ranged read: an intraday table
/// holds several small files for today (up to 7 of the latest intervals
/// and the files they were folded into), each a round trip, and 4 at a
/// time leaves the connection idle between them.
const PARALLEL_SMALL_FILES: usize = 16;
/// Bytes per ranged read of one file (several in flight per file).
const RANGE_BYTES: u64 = 8 << 20;
/// Ranged reads in flight per file.
const PARALLEL_RANGES: usize = 4;
/// Manifests (and their entries) read at once when planning a read:
/// iceberg-rust reads as many as the machine has cores by default, and an
/// intraday table holds one small manifest per append, each a round trip.
const PARALLEL_MANIFESTS: usize = 16;

/// The run's local copies of data files, in a temporary directory removed
/// when the warehouse handle goes away.
pub struct LocalCopies {
    dir: Mutex<Option<tempfile::TempDir>>,
    /// Data file path → its local copy.
    copied: Mutex<HashMap<String, PathBuf>>,
    /// Metadata file → the table loaded from it, whose object cache holds
    /// the manifests already read: a table read twice in a run at one
    /// snapshot (an export's window lookup, then its restaged periods)
    /// reads its manifests once.
    tables: Mutex<HashMap<String, iceberg::table::Table>>,
    /// Tables pinned by [`Warehouse::pin_tables`]: (schema, name) → the
    /// table loaded once, which every read of it answers from until
    /// [`Warehouse::unpin_tables`] (or a write to it) drops it, so an
    /// export's snapshot, changed dates and copies are one load, at one
    /// snapshot.
    pinned: Mutex<HashMap<(String, String), iceberg::table::Table>>,
    limit: AtomicU64,
}

impl Default for LocalCopies {
    fn default() -> Self {
        LocalCopies {
            dir: Mutex::new(None),
            copied: Mutex::new(HashMap::new()),
            tables: Mutex::new(HashMap::new()),
            pinned: Mutex::new(HashMap::new()),
            limit: AtomicU64::new(DEFAULT_LIMIT_BYTES),
        }
    }
}

impl LocalCopies {
    /// The most bytes of data files one table may copy; larger tables are
    /// streamed by `iceberg_scan` instead (0 turns local reads off).
    pub fn limit_bytes(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    fn directory(&self) -> Result<PathBuf> {
        let mut dir = self
            .dir
            .lock()
            .map_err(|_| anyhow!("local copies poisoned"))?;
        if dir.is_none() {
            *dir = Some(
                tempfile::Builder::new()
                    .prefix("analytics-iceberg-")
                    .tempdir()
                    .context("creating a temporary directory for Iceberg data files")?,
            );
        }
        Ok(dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default())
    }
}

/// How a stored table is read.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalRead {
    /// A `read_parquet(…)` call over local copies, columns as Iceberg names
    /// and types them.
    Parquet(String),
    /// The table stays on `iceberg_scan`, for this reason.
    Stream(String),
}

impl Warehouse {
    /// Loads the existing tables among `tables` (schema, name) at once and
    /// pins them: until [`Warehouse::unpin_tables`], the snapshot, the
    /// changes and the local reads of a pinned table are answered from
    /// that one load (one catalog round trip per table instead of one per
    /// question). A write to a pinned table through this handle unpins it.
    /// Returns how many were pinned.
    pub fn pin_tables(&self, tables: &[(&str, &str)]) -> Result<usize> {
        let loaded = self
            .runtime
            .block_on(futures::future::join_all(tables.iter().map(
                |(schema, name)| async move {
                    let ident = Self::ident(schema, name);
                    match self.catalog.load_table(&ident).await {
                        Ok(table) => Some(((schema.to_string(), name.to_string()), table)),
                        // Missing (or unreadable): not pinned, asked as before.
                        Err(_) => None,
                    }
                },
            )));
        let mut pinned = self
            .local
            .pinned
            .lock()
            .map_err(|_| anyhow!("pinned tables poisoned"))?;
        let mut n = 0;
        for (key, table) in loaded.into_iter().flatten() {
            let table = self.cached(table)?;
            pinned.insert(key, table);
            n += 1;
        }
        Ok(n)
    }

    /// Drops every pinned table: later reads load the table again.
    pub fn unpin_tables(&self) {
        if let Ok(mut pinned) = self.local.pinned.lock() {
            pinned.clear();
        }
    }

    /// Drops `schema.name`'s pin (a write changes it).
    pub(super) fn unpin(&self, schema: &str, name: &str) {
        if let Ok(mut pinned) = self.local.pinned.lock() {
            pinned.remove(&(schema.to_string(), name.to_string()));
        }
    }

    /// The pinned table `schema.name`, if it is pinned.
    pub(super) fn pinned(&self, schema: &str, name: &str) -> Option<iceberg::table::Table> {
        self.local
            .pinned
            .lock()
            .ok()?
            .get(&(schema.to_string(), name.to_string()))
            .cloned()
    }

    /// The pinned table, else the table loaded now.
    fn current_table(&self, schema: &str, name: &str) -> Result<iceberg::table::Table> {
        match self.pinned(schema, name) {
            Some(table) => Ok(table),
            None => self.load_table(schema, name),
        }
    }

    /// Sets the most bytes of data files one table may copy to local disk
    /// (0: always stream through `iceberg_scan`).
    pub fn set_local_copy_limit(&self, bytes: u64) {
        self.local.limit.store(bytes, Ordering::Relaxed);
    }

    /// Copies the data files of `schema.name`'s current snapshot to local
    /// disk (those not copied yet in this run) and returns the
    /// `read_parquet` call that reads them, or why the table must be
    /// streamed instead. `conn` checks the copies carry Iceberg field ids.
    ///
    /// An S3 failure is said in one line naming the setting to check.
    pub fn local_read(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
    ) -> Result<LocalRead> {
        self.copy_locally(conn, schema, name, None, None)
            .map_err(super::failure::explain)
    }

    /// [`Warehouse::local_read`] of only the columns `columns` (other
    /// columns, even nested ones, are neither typed nor read).
    pub fn local_read_columns(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        columns: &[&str],
    ) -> Result<LocalRead> {
        self.copy_locally(conn, schema, name, None, Some(columns))
            .map_err(super::failure::explain)
    }

    /// [`Warehouse::local_read`] of only the data files whose bounds of the
    /// DATE column `column` overlap `ranges` (inclusive): what an export
    /// restaging those dates reads, so the copy does not grow with history.
    /// Every file when the column is not a DATE, or when no file overlaps.
    pub fn local_read_within(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        column: &str,
        ranges: &[(chrono::NaiveDate, chrono::NaiveDate)],
    ) -> Result<LocalRead> {
        self.copy_locally(conn, schema, name, Some((column, ranges)), None)
            .map_err(super::failure::explain)
    }

    fn copy_locally(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        within: Option<(&str, &[(chrono::NaiveDate, chrono::NaiveDate)])>,
        only: Option<&[&str]>,
    ) -> Result<LocalRead> {
        let limit = self.local.limit_bytes();
        if limit == 0 {
            return Ok(LocalRead::Stream("local copies are turned off".into()));
        }
        let table = self.cached(self.current_table(schema, name)?)?;
        if table.metadata().current_snapshot().is_none() {
            return Ok(LocalRead::Stream("the table has no snapshot".into()));
        }
        let current = table.metadata().current_schema();
        let mut columns = Vec::new();
        for field in current.as_struct().fields() {
            if only.is_some_and(|only| !only.contains(&field.name.as_str())) {
                continue;
            }
            let ty = match field.field_type.as_ref() {
                Type::Primitive(_) => duckdb_type(&field.field_type).ok(),
                _ => None,
            };
            let Some(ty) = ty.filter(|t| t != "UUID" && t != "BLOB") else {
                return Ok(LocalRead::Stream(format!(
                    "column `{}` is {}",
                    field.name, field.field_type
                )));
            };
            columns.push(format!(
                "{}: {{name: {}, type: {}, default_value: NULL}}",
                field.id,
                literal(&field.name),
                literal(&ty)
            ));
        }

        let filter = within.and_then(|(column, ranges)| date_filter(&table, column, ranges));
        let filtered = filter.is_some();
        let mut tasks: Vec<_> = self
            .runtime
            .block_on(plan_tasks(&table, filter))
            .map_err(|e| anyhow!("planning a read of {schema}.{name}: {e}"))?;
        if filtered && tasks.is_empty() {
            tasks = self
                .runtime
                .block_on(plan_tasks(&table, None))
                .map_err(|e| anyhow!("planning a read of {schema}.{name}: {e}"))?;
        }
        if tasks.is_empty() {
            return Ok(LocalRead::Stream("the table has no data files".into()));
        }
        let mut files: Vec<(String, u64)> = Vec::new();
        for task in &tasks {
            if !task.deletes.is_empty() {
                return Ok(LocalRead::Stream(format!(
                    "data file {} has delete files",
                    task.data_file_path
                )));
            }
            if task.data_file_format != DataFileFormat::Parquet {
                return Ok(LocalRead::Stream(format!(
                    "data file {} is not Parquet",
                    task.data_file_path
                )));
            }
            if !files.iter().any(|(p, _)| *p == task.data_file_path) {
                files.push((task.data_file_path.clone(), task.file_size_in_bytes));
            }
        }
        let bytes: u64 = files.iter().map(|(_, size)| size).sum();
        if bytes > limit {
            return Ok(LocalRead::Stream(format!(
                "its {:.0} MB of data files exceed the local copy limit of {:.0} MB",
                bytes as f64 / 1e6,
                limit as f64 / 1e6
            )));
        }

        let paths = self
            .copy_files(table.file_io(), &files)
            .with_context(|| format!("copying the data files of {schema}.{name}"))?;
        let list = format!(
            "[{}]",
            paths
                .iter()
                .map(|p| literal(&p.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let missing_ids: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM parquet_schema({list}) \
                     WHERE num_children IS NULL AND field_id IS NULL"
                ),
                [],
                |r| r.get(0),
            )
            .with_context(|| format!("reading the Parquet schemas of {schema}.{name}"))?;
        if missing_ids > 0 {
            return Ok(LocalRead::Stream(
                "its data files have columns without Iceberg field ids".into(),
            ));
        }
        tracing::info!(
            "{schema}.{name}: read by DuckDB's Parquet reader from {} data files copied locally ({:.1} MB){}",
            paths.len(),
            bytes as f64 / 1e6,
            match within {
                Some((column, _)) if filtered => {
                    format!(", those whose `{column}` bounds overlap the dates read")
                }
                _ => String::new(),
            }
        );
        Ok(LocalRead::Parquet(format!(
            "read_parquet({list}, schema = MAP {{{}}})",
            columns.join(", ")
        )))
    }

    /// The table loaded earlier in this run from the same metadata file as
    /// `table` (so its manifests are read once), else `table`, kept.
    fn cached(&self, table: iceberg::table::Table) -> Result<iceberg::table::Table> {
        let Some(location) = table.metadata_location().map(str::to_string) else {
            return Ok(table);
        };
        let mut tables = self
            .local
            .tables
            .lock()
            .map_err(|_| anyhow!("local copies poisoned"))?;
        Ok(tables.entry(location).or_insert(table).clone())
    }

    /// Local copies of `files` (path, size), copying those not copied yet.
    fn copy_files(&self, io: &FileIO, files: &[(String, u64)]) -> Result<Vec<PathBuf>> {
        let dir = self.local.directory()?;
        let known = self
            .local
            .copied
            .lock()
            .map_err(|_| anyhow!("local copies poisoned"))?
            .clone();
        let wanted: Vec<(String, u64, PathBuf)> = files
            .iter()
            .filter(|(path, _)| !known.contains_key(path))
            .map(|(path, size)| {
                let digest = Sha256::digest(path.as_bytes());
                let local = dir.join(format!("{}.parquet", crate::hash::hex(&digest[..12])));
                (path.clone(), *size, local)
            })
            .collect();
        // Small files are one request each: more of them at once. Large
        // ones keep 4 files x 4 ranges in flight (memory stays bounded).
        let parallel = if wanted.iter().all(|(_, size, _)| *size <= RANGE_BYTES) {
            PARALLEL_SMALL_FILES
        } else {
            PARALLEL_FILES
        };
        let copied: Vec<(String, PathBuf)> = self.runtime.block_on(
            futures::stream::iter(wanted)
                .map(|(path, size, local)| async move {
                    copy_file(io, &path, size, &local)
                        .await
                        .with_context(|| format!("copying {path}"))?;
                    Ok::<_, anyhow::Error>((path, local))
                })
                .buffer_unordered(parallel)
                .try_collect(),
        )?;
        let mut known = self
            .local
            .copied
            .lock()
            .map_err(|_| anyhow!("local copies poisoned"))?;
        known.extend(copied);
        files
            .iter()
            .map(|(path, _)| {
                known
                    .get(path)
                    .cloned()
                    .ok_or_else(|| anyhow!("no local copy of {path}"))
            })
            .collect()
    }
}

/// The files of `table`'s current snapshot a read needs: those whose bounds
/// can hold rows matching `filter` (all without one).
async fn plan_tasks(
    table: &iceberg::table::Table,
    filter: Option<iceberg::expr::Predicate>,
) -> iceberg::Result<Vec<iceberg::scan::FileScanTask>> {
    let mut scan = table
        .scan()
        .select_all()
        .with_concurrency_limit(PARALLEL_MANIFESTS);
    if let Some(filter) = filter {
        scan = scan.with_filter(filter);
    }
    scan.build()?.plan_files().await?.try_collect().await
}

/// `column` within one of `ranges` (inclusive), when `column` is a DATE of
/// `table`'s current schema.
fn date_filter(
    table: &iceberg::table::Table,
    column: &str,
    ranges: &[(chrono::NaiveDate, chrono::NaiveDate)],
) -> Option<iceberg::expr::Predicate> {
    use iceberg::expr::Reference;
    use iceberg::spec::{Datum, PrimitiveType};
    let field = table.metadata().current_schema().field_by_name(column)?;
    if *field.field_type != Type::Primitive(PrimitiveType::Date) {
        return None;
    }
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let days = |d: &chrono::NaiveDate| i32::try_from((*d - epoch).num_days()).ok();
    let mut filter: Option<iceberg::expr::Predicate> = None;
    for (from, to) in ranges {
        let within = Reference::new(column)
            .greater_than_or_equal_to(Datum::date(days(from)?))
            .and(Reference::new(column).less_than_or_equal_to(Datum::date(days(to)?)));
        filter = Some(match filter {
            Some(f) => f.or(within),
            None => within,
        });
    }
    filter
}

/// Copies one data file of `size` bytes to `local` in ranged reads. The
/// bytes go to a `.part` file renamed at the end, so a failed copy never
/// looks complete.
async fn copy_file(io: &FileIO, path: &str, size: u64, local: &Path) -> Result<()> {
    let reader = io
        .new_input(path)
        .map_err(|e| anyhow!("{e}"))?
        .reader()
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let part = local.with_extension("part");
    let mut out = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("creating {}", part.display()))?;
    let ranges: Vec<std::ops::Range<u64>> = (0..size.div_ceil(RANGE_BYTES))
        .map(|i| i * RANGE_BYTES..((i + 1) * RANGE_BYTES).min(size))
        .collect();
    let mut chunks = futures::stream::iter(ranges)
        .map(|range| reader.read(range))
        .buffered(PARALLEL_RANGES);
    let mut written = 0u64;
    while let Some(bytes) = chunks.next().await {
        let bytes = bytes.map_err(|e| anyhow!("{e}"))?;
        out.write_all(&bytes)
            .await
            .with_context(|| format!("writing {}", part.display()))?;
        written += bytes.len() as u64;
    }
    out.flush()
        .await
        .with_context(|| format!("writing {}", part.display()))?;
    drop(out);
    if written != size {
        anyhow::bail!("read {written} bytes where the manifest says {size}");
    }
    tokio::fs::rename(&part, local)
        .await
        .with_context(|| format!("renaming {}", part.display()))?;
    Ok(())
}

/// What changed in a stored table since a time, told by the bounds of one
/// DATE (or TIMESTAMP) column in the data files added or removed since: an
/// export reading the table restages only the periods those dates fall in.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredChanges {
    /// Inclusive date ranges covering every row added or removed since;
    /// empty when the table did not change.
    Dates(Vec<(chrono::NaiveDate, chrono::NaiveDate)>),
    /// The changes cannot be dated, for this reason.
    Unknown(String),
}

impl Warehouse {
    /// The id of `schema.name`'s current snapshot (`None` without one).
    pub fn current_snapshot_id(&self, schema: &str, name: &str) -> Result<Option<i64>> {
        let table = self.current_table(schema, name)?;
        Ok(table.metadata().current_snapshot_id())
    }

    /// The dates of `column` that `schema.name` changed since its snapshot
    /// `base`: the live data files of the current snapshot compared with
    /// those of `base` (manifests both list are not read), and each added or
    /// removed file's bounds of `column`. Unknown when `base` is gone
    /// (expired), when a changed file has no bound for the column, or when
    /// delete files appeared.
    pub fn changes_since(
        &self,
        schema: &str,
        name: &str,
        base: i64,
        column: &str,
    ) -> Result<StoredChanges> {
        self.dated_changes(schema, name, base, column)
            .map_err(super::failure::explain)
    }

    fn dated_changes(
        &self,
        schema: &str,
        name: &str,
        base_id: i64,
        column: &str,
    ) -> Result<StoredChanges> {
        use iceberg::spec::{ManifestContentType, PrimitiveLiteral, PrimitiveType};
        let unknown = |why: String| Ok(StoredChanges::Unknown(why));
        let table = self.current_table(schema, name)?;
        let metadata = table.metadata();
        let Some(current) = metadata.current_snapshot() else {
            return unknown("the table has no snapshot".into());
        };
        if base_id == current.snapshot_id() {
            return Ok(StoredChanges::Dates(Vec::new()));
        }
        let Some(base) = metadata.snapshot_by_id(base_id).cloned() else {
            return unknown(format!(
                "snapshot {base_id} (read by the published export) has expired"
            ));
        };
        if base.snapshot_id() == current.snapshot_id() {
            return Ok(StoredChanges::Dates(Vec::new()));
        }
        let Some(field) = metadata.current_schema().field_by_name(column) else {
            return unknown(format!("it has no column `{column}` to date its changes"));
        };
        let (field_id, field_type) = (field.id, field.field_type.clone());
        let changed = self
            .runtime
            .block_on(async {
                let old = table.manifest_list_reader(&base).load().await?;
                let new = table.manifest_list_reader(current).load().await?;
                let old_paths: std::collections::HashSet<&str> = old
                    .entries()
                    .iter()
                    .map(|m| m.manifest_path.as_str())
                    .collect();
                let new_paths: std::collections::HashSet<&str> = new
                    .entries()
                    .iter()
                    .map(|m| m.manifest_path.as_str())
                    .collect();
                // A file live in both snapshots is in a manifest both list
                // or in one manifest of each side: those cancel out.
                let mut files: HashMap<String, (iceberg::spec::DataFile, i32)> = HashMap::new();
                for (list, other, side) in [(&old, &new_paths, -1), (&new, &old_paths, 1)] {
                    for manifest in list.entries() {
                        if other.contains(manifest.manifest_path.as_str()) {
                            continue;
                        }
                        if manifest.content != ManifestContentType::Data {
                            return Ok::<_, iceberg::Error>(None);
                        }
                        let loaded = manifest.load_manifest(table.file_io()).await?;
                        for entry in loaded.entries().iter().filter(|e| e.is_alive()) {
                            let seen = files
                                .entry(entry.file_path().to_string())
                                .or_insert_with(|| (entry.data_file().clone(), 0));
                            seen.1 += side;
                        }
                    }
                }
                Ok(Some(
                    files
                        .into_values()
                        .filter(|(_, side)| *side != 0)
                        .map(|(file, _)| file)
                        .collect::<Vec<_>>(),
                ))
            })
            .map_err(|e| anyhow!("comparing snapshots of {schema}.{name}: {e}"))?;
        let Some(changed) = changed else {
            return unknown("delete files were added".into());
        };
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let to_date = |datum: Option<&iceberg::spec::Datum>| -> Option<chrono::NaiveDate> {
            let datum = datum?;
            match (&*field_type, datum.literal()) {
                (Type::Primitive(PrimitiveType::Date), PrimitiveLiteral::Int(days)) => {
                    epoch.checked_add_signed(chrono::Duration::days(i64::from(*days)))
                }
                (Type::Primitive(PrimitiveType::Timestamp), PrimitiveLiteral::Long(micros)) => {
                    chrono::DateTime::from_timestamp_micros(*micros).map(|t| t.date_naive())
                }
                _ => None,
            }
        };
        let mut ranges = Vec::new();
        for file in &changed {
            let lower = to_date(file.lower_bounds().get(&field_id));
            let upper = to_date(file.upper_bounds().get(&field_id));
            let (Some(lower), Some(upper)) = (lower, upper) else {
                return unknown(format!(
                    "data file {} has no bounds of `{column}` ({})",
                    file.file_path(),
                    field_type
                ));
            };
            ranges.push((lower, upper));
        }
        ranges.sort();
        let mut merged: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
        for (lower, upper) in ranges {
            match merged.last_mut() {
                Some(last) if lower <= last.1.succ_opt().unwrap_or(last.1) => {
                    last.1 = last.1.max(upper);
                }
                _ => merged.push((lower, upper)),
            }
        }
        Ok(StoredChanges::Dates(merged))
    }
}
