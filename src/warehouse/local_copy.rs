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
/// Bytes per ranged read of one file (several in flight per file).
const RANGE_BYTES: u64 = 8 << 20;
/// Ranged reads in flight per file.
const PARALLEL_RANGES: usize = 4;

/// The run's local copies of data files, in a temporary directory removed
/// when the warehouse handle goes away.
pub struct LocalCopies {
    dir: Mutex<Option<tempfile::TempDir>>,
    /// Data file path → its local copy.
    copied: Mutex<HashMap<String, PathBuf>>,
    limit: AtomicU64,
}

impl Default for LocalCopies {
    fn default() -> Self {
        LocalCopies {
            dir: Mutex::new(None),
            copied: Mutex::new(HashMap::new()),
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
        self.copy_locally(conn, schema, name)
            .map_err(super::failure::explain)
    }

    fn copy_locally(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
    ) -> Result<LocalRead> {
        let limit = self.local.limit_bytes();
        if limit == 0 {
            return Ok(LocalRead::Stream("local copies are turned off".into()));
        }
        let table = self.load_table(schema, name)?;
        if table.metadata().current_snapshot().is_none() {
            return Ok(LocalRead::Stream("the table has no snapshot".into()));
        }
        let current = table.metadata().current_schema();
        let mut columns = Vec::new();
        for field in current.as_struct().fields() {
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

        let tasks: Vec<_> = self
            .runtime
            .block_on(async {
                table
                    .scan()
                    .select_all()
                    .build()?
                    .plan_files()
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .map_err(|e| anyhow!("planning a read of {schema}.{name}: {e}"))?;
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
            "{schema}.{name}: read by DuckDB's Parquet reader from {} data files copied locally ({:.1} MB)",
            paths.len(),
            bytes as f64 / 1e6
        );
        Ok(LocalRead::Parquet(format!(
            "read_parquet({list}, schema = MAP {{{}}})",
            columns.join(", ")
        )))
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
        let copied: Vec<(String, PathBuf)> = self.runtime.block_on(
            futures::stream::iter(wanted)
                .map(|(path, size, local)| async move {
                    copy_file(io, &path, size, &local)
                        .await
                        .with_context(|| format!("copying {path}"))?;
                    Ok::<_, anyhow::Error>((path, local))
                })
                .buffer_unordered(PARALLEL_FILES)
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
