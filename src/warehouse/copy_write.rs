//! Writing data files with DuckDB's own Parquet writer: `COPY … TO` a local
//! temporary folder (one file per thread for large writes), the files
//! uploaded to the table's data folder, and each file's Iceberg entry
//! (rows, sizes, value/null counts, bounds per field id) read from its
//! Parquet footer.
//!
//! Bounds are only what the footer proves: DuckDB truncates string
//! statistics longer than 256 bytes and marks them inexact; an inexact
//! bound, a row group without statistics or a NaN bound drops that side of
//! the column's bounds, since upserts prune files on them.

use super::{Warehouse, types};
use crate::sql::quote;
use anyhow::{Context, Result, anyhow, bail};
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, PrimitiveType, Schema, Type,
};
use iceberg::table::Table;
use iceberg::writer::file_writer::location_generator::{
    DefaultLocationGenerator, LocationGenerator,
};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Whether DuckDB's Parquet writer can write this table's data files with
/// the physical types Iceberg readers expect: an unpartitioned table of
/// flat columns whose types map one to one (booleans, 32/64-bit integers,
/// floats, dates, microsecond timestamps, strings).
pub(super) fn supported(table: &Table) -> bool {
    let metadata = table.metadata();
    metadata.default_partition_spec().is_unpartitioned()
        && metadata
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .all(|f| {
                matches!(
                    f.field_type.as_ref(),
                    Type::Primitive(
                        PrimitiveType::Boolean
                            | PrimitiveType::Int
                            | PrimitiveType::Long
                            | PrimitiveType::Float
                            | PrimitiveType::Double
                            | PrimitiveType::Date
                            | PrimitiveType::Timestamp
                            | PrimitiveType::Timestamptz
                            | PrimitiveType::String
                    )
                )
            })
}

/// zstd level of the data files. DuckDB's default is 3; on the 55-column
/// DUNIT fact (3.9 M rows) level 2 spends ~10% less CPU for 3% more bytes
/// (39.2 vs 38.0 MB), level 1 as little CPU for 45% more (55.1 MB):
/// bench/RESULTS.md, 2026-11-29 22:00.
const ZSTD_LEVEL: u8 = 2;

/// The `COPY` statement writing the rows of `sql` into `dir` in the
/// table's schema: columns matched by name and cast to the table's types
/// (a column the query lacks is NULL), each carrying its Iceberg field id.
fn copy_statement(
    schema: &Schema,
    source_columns: &[String],
    sql: &str,
    dir: &Path,
    per_thread: bool,
) -> Result<String> {
    let mut select = Vec::new();
    let mut field_ids = Vec::new();
    for field in schema.as_struct().fields() {
        let ty = types::duckdb_type(&field.field_type)
            .with_context(|| format!("column `{}`", field.name))?;
        let name = quote(&field.name);
        if source_columns.iter().any(|c| c == &field.name) {
            select.push(format!("CAST(q.{name} AS {ty}) AS {name}"));
        } else {
            select.push(format!("CAST(NULL AS {ty}) AS {name}"));
        }
        field_ids.push(format!("{}: {}", sql_string(&field.name), field.id));
    }
    let dir = dir
        .to_str()
        .context("the temporary folder's path is not UTF-8")?;
    let target = if per_thread {
        sql_string(dir)
    } else {
        sql_string(&format!("{dir}/data_0.parquet"))
    };
    Ok(format!(
        "COPY (SELECT {} FROM ({sql}) q) TO {target} (FORMAT parquet, COMPRESSION zstd, \
         COMPRESSION_LEVEL {ZSTD_LEVEL}, FIELD_IDS {{{}}}{})",
        select.join(", "),
        field_ids.join(", "),
        if per_thread {
            ", PER_THREAD_OUTPUT true, FILE_SIZE_BYTES '512MB'"
        } else {
            ""
        }
    ))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Where the time of one write went, for the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct CopyTimings {
    /// DuckDB's `COPY` to local files.
    pub copy_seconds: f64,
    /// Reading the footers into Iceberg entries.
    pub footer_seconds: f64,
    /// Uploading the files to storage.
    pub upload_seconds: f64,
}

impl Warehouse {
    /// Writes the rows of `sql` as data files with DuckDB's `COPY`, one file
    /// per DuckDB thread when `per_thread`, else one file.
    pub(super) fn write_files_by_copy(
        &self,
        conn: &duckdb::Connection,
        sql: &str,
        table: &Table,
        per_thread: bool,
    ) -> Result<(Vec<DataFile>, CopyTimings)> {
        let mut timings = CopyTimings::default();
        let schema = table.metadata().current_schema().clone();
        let source_columns: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM ({sql}) LIMIT 0"))
                .context("reading the columns of the rows to write")?;
            let arrow = stmt
                .query_arrow([])
                .context("reading the columns of the rows to write")?;
            arrow
                .get_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        let dir = tempfile::Builder::new()
            .prefix("analytics-copy-")
            .tempdir()
            .context("creating a temporary folder for data files")?;
        let started = std::time::Instant::now();
        conn.execute_batch(&copy_statement(
            &schema,
            &source_columns,
            sql,
            dir.path(),
            per_thread,
        )?)
        .context("writing data files with DuckDB's COPY")?;
        timings.copy_seconds = started.elapsed().as_secs_f64();

        let started = std::time::Instant::now();
        let mut local: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .context("listing the data files DuckDB wrote")?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .context("listing the data files DuckDB wrote")?;
        local.sort();
        let locations =
            DefaultLocationGenerator::new(table.metadata()).map_err(|e| anyhow!("{e}"))?;
        let prefix = format!("data-{:016x}", rand::random::<u64>());
        let spec_id = table.metadata().default_partition_spec_id();
        let mut files = Vec::new();
        for (n, path) in local.iter().enumerate() {
            let metadata = read_footer(path)?;
            if metadata.file_metadata().num_rows() == 0 {
                continue;
            }
            let size = std::fs::metadata(path)
                .with_context(|| format!("reading the size of {}", path.display()))?
                .len();
            let location = locations.generate_location(None, &format!("{prefix}-{n}.parquet"));
            let data_file = data_file(&schema, &metadata, size, location, spec_id)
                .with_context(|| format!("reading the footer of {}", path.display()))?;
            files.push((path.clone(), data_file));
        }
        timings.footer_seconds = started.elapsed().as_secs_f64();

        let started = std::time::Instant::now();
        let file_io = table.file_io().clone();
        let uploaded = self.runtime.block_on(async {
            let uploads = files.iter().map(|(path, data_file)| {
                let file_io = file_io.clone();
                async move {
                    let bytes = tokio::fs::read(path)
                        .await
                        .with_context(|| format!("reading {}", path.display()))?;
                    file_io
                        .new_output(data_file.file_path())
                        .map_err(|e| anyhow!("{e}"))?
                        .write(bytes.into())
                        .await
                        .map_err(|e| anyhow!("uploading {}: {e}", data_file.file_path()))
                }
            });
            futures::future::join_all(uploads).await
        });
        timings.upload_seconds = started.elapsed().as_secs_f64();
        let failed = uploaded.into_iter().find_map(Result::err);
        let files: Vec<DataFile> = files.into_iter().map(|(_, f)| f).collect();
        if let Some(e) = failed {
            // Best effort: the ones that did arrive are referenced by no
            // snapshot (`maintain` deletes what is left).
            self.runtime.block_on(async {
                for f in &files {
                    let _ = file_io.delete(f.file_path()).await;
                }
            });
            return Err(e);
        }
        Ok((files, timings))
    }
}

fn read_footer(path: &Path) -> Result<ParquetMetaData> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .with_context(|| format!("reading the footer of {}", path.display()))
}

/// One column's bounds over the row groups seen so far; `None` once a row
/// group could not prove its side (no statistics, inexact, NaN).
struct Bounds {
    lower: Option<Option<Datum>>,
    upper: Option<Option<Datum>>,
}

/// The Iceberg entry of a data file, from its Parquet footer. Columns are
/// matched by the field ids DuckDB wrote.
pub(super) fn data_file(
    schema: &Schema,
    metadata: &ParquetMetaData,
    size: u64,
    location: String,
    partition_spec_id: i32,
) -> Result<DataFile> {
    let mut column_sizes: HashMap<i32, u64> = HashMap::new();
    let mut value_counts: HashMap<i32, u64> = HashMap::new();
    let mut null_counts: HashMap<i32, Option<u64>> = HashMap::new();
    let mut bounds: HashMap<i32, Bounds> = HashMap::new();
    for row_group in metadata.row_groups() {
        for column in row_group.columns() {
            let info = column.column_descr().self_type().get_basic_info();
            if !info.has_id() {
                bail!(
                    "column `{}` has no field id",
                    column.column_descr().path().string()
                );
            }
            let field_id = info.id();
            let Some(field) = schema.field_by_id(field_id) else {
                continue;
            };
            let Type::Primitive(ty) = field.field_type.as_ref() else {
                continue;
            };
            *column_sizes.entry(field_id).or_default() += column.compressed_size() as u64;
            let values = column.num_values() as u64;
            *value_counts.entry(field_id).or_default() += values;
            let stats = column.statistics();
            let nulls = stats.and_then(Statistics::null_count_opt);
            let entry = null_counts.entry(field_id).or_insert(Some(0));
            *entry = match (*entry, nulls) {
                (Some(total), Some(n)) => Some(total + n),
                _ => None,
            };
            let b = bounds.entry(field_id).or_insert(Bounds {
                lower: Some(None),
                upper: Some(None),
            });
            if nulls == Some(values) {
                // Only NULLs: nothing to bound.
                continue;
            }
            let (lo, hi) = match stats {
                Some(s) => (
                    if s.min_is_exact() {
                        stat_datum(ty, s, false)?
                    } else {
                        None
                    },
                    if s.max_is_exact() {
                        stat_datum(ty, s, true)?
                    } else {
                        None
                    },
                ),
                None => (None, None),
            };
            b.lower = merge(b.lower.take(), lo, std::cmp::Ordering::Less);
            b.upper = merge(b.upper.take(), hi, std::cmp::Ordering::Greater);
        }
    }
    let mut lower_bounds = HashMap::new();
    let mut upper_bounds = HashMap::new();
    for (id, b) in bounds {
        if let Some(Some(lo)) = b.lower {
            lower_bounds.insert(id, lo);
        }
        if let Some(Some(hi)) = b.upper {
            upper_bounds.insert(id, hi);
        }
    }
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(location)
        .file_format(DataFileFormat::Parquet)
        .partition_spec_id(partition_spec_id)
        .record_count(metadata.file_metadata().num_rows() as u64)
        .file_size_in_bytes(size)
        .column_sizes(column_sizes)
        .value_counts(value_counts)
        .null_value_counts(
            null_counts
                .into_iter()
                .filter_map(|(id, n)| n.map(|n| (id, n)))
                .collect(),
        )
        .lower_bounds(lower_bounds)
        .upper_bounds(upper_bounds)
        .split_offsets(Some(
            metadata
                .row_groups()
                .iter()
                .filter_map(|g| g.file_offset())
                .collect(),
        ))
        .build()
        .map_err(|e| anyhow!("building the data file entry: {e}"))
}

/// Folds one row group's bound into the file's: `keep` is the ordering a
/// new value must have to replace the current one. An unproven side
/// (`None` from the row group) makes the file's side unknown for good.
fn merge(
    current: Option<Option<Datum>>,
    new: Option<Datum>,
    keep: std::cmp::Ordering,
) -> Option<Option<Datum>> {
    let current = current?;
    let new = new?;
    Some(Some(match current {
        Some(c) if new.partial_cmp(&c) != Some(keep) => c,
        _ => new,
    }))
}

/// A row group's min (or max) as an Iceberg value; `None` when the footer
/// has none, or it is NaN or not valid UTF-8 for a string column.
fn stat_datum(ty: &PrimitiveType, stats: &Statistics, max: bool) -> Result<Option<Datum>> {
    fn pick<T: Copy>(s: &parquet::file::statistics::ValueStatistics<T>, max: bool) -> Option<T> {
        if max {
            s.max_opt().copied()
        } else {
            s.min_opt().copied()
        }
    }
    Ok(match (ty, stats) {
        (PrimitiveType::Boolean, Statistics::Boolean(s)) => pick(s, max).map(Datum::bool),
        (PrimitiveType::Int, Statistics::Int32(s)) => pick(s, max).map(Datum::int),
        (PrimitiveType::Date, Statistics::Int32(s)) => pick(s, max).map(Datum::date),
        (PrimitiveType::Long, Statistics::Int64(s)) => pick(s, max).map(Datum::long),
        (PrimitiveType::Timestamp, Statistics::Int64(s)) => {
            pick(s, max).map(Datum::timestamp_micros)
        }
        (PrimitiveType::Timestamptz, Statistics::Int64(s)) => {
            pick(s, max).map(Datum::timestamptz_micros)
        }
        (PrimitiveType::Float, Statistics::Float(s)) => {
            pick(s, max).filter(|v| !v.is_nan()).map(Datum::float)
        }
        (PrimitiveType::Double, Statistics::Double(s)) => {
            pick(s, max).filter(|v| !v.is_nan()).map(Datum::double)
        }
        (PrimitiveType::String, Statistics::ByteArray(s)) => {
            let value = if max { s.max_opt() } else { s.min_opt() };
            value
                .and_then(|v| std::str::from_utf8(v.data()).ok())
                .map(Datum::string)
        }
        (ty, stats) => bail!("statistics {stats} do not match the column type {ty}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unproven_row_group_drops_the_side_for_good() {
        let less = std::cmp::Ordering::Less;
        let b = merge(Some(None), Some(Datum::int(5)), less);
        let b = merge(b, Some(Datum::int(3)), less);
        assert_eq!(b, Some(Some(Datum::int(3))));
        let b = merge(b, None, less);
        assert_eq!(b, None);
        assert_eq!(merge(b, Some(Datum::int(1)), less), None);
        let greater = std::cmp::Ordering::Greater;
        let b = merge(Some(None), Some(Datum::string("a")), greater);
        let b = merge(b, Some(Datum::string("b")), greater);
        assert_eq!(b, Some(Some(Datum::string("b"))));
    }
}
