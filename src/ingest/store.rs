//! Storing a taken file: zip members are streamed (never held in memory)
//! into `<archive>/<source>/`, through gzip or as plain CSV
//! ([`ArchiveFormat`]); AEMO MMS files, which hold many tables in one CSV,
//! are split while streaming into one clean CSV per table
//! (`<archive>/<source>/<TABLE>/<file>.gz`, header from the `I` row, `D` rows
//! only); spreadsheets become CSV.
//!
//! Stored names keep the original file name (`<file>[~<part>].gz`, or
//! `.csv` when plain), so [`super::SOURCE_FILE_SQL`] recovers which
//! downloaded file a row came from.

use super::{Projection, StoredPart, TakenFile};
use crate::project::settings::{SourceConfig, SourceFormat};
use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// How the archive stores a taken file's CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// gzip level 1 (`<name>.gz`): ~7x smaller on disk, but compressing
    /// costs ingest CPU and DuckDB must inflate each file on one thread
    /// every time a model or test reads it.
    Gzip,
    /// Plain CSV (`<name>.csv`): no compression at ingest, and DuckDB parses
    /// even a single file on every thread. Takes ~7x the disk.
    Plain,
}

impl ArchiveFormat {
    /// `ci` runs (sample files, a throw-away archive, every model and test
    /// reading it in the same run) store plain CSV; the other modes, whose
    /// backfills may take years of files onto a runner's disk, store gzip.
    pub fn for_mode(mode: crate::mode::Mode) -> ArchiveFormat {
        if mode == crate::mode::Mode::Ci {
            ArchiveFormat::Plain
        } else {
            ArchiveFormat::Gzip
        }
    }

    /// The suffix added to the stored name; DuckDB's `read_csv` picks the
    /// decompression from it.
    fn suffix(self) -> &'static str {
        match self {
            ArchiveFormat::Gzip => "gz",
            ArchiveFormat::Plain => "csv",
        }
    }
}

/// Takes one file on local disk (a sample, or a finished download): hashes
/// it and stores its content in the archive under `file_name`.
pub fn take_file(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    url: &str,
    dir: &Path,
    format: ArchiveFormat,
    projection: &Projection,
) -> Result<TakenFile> {
    let file_name = sanitize_name(file_name);
    let mut hasher = Sha256::new();
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = std::io::copy(&mut f, &mut hasher)?;
    let sha256 = format!("{:x}", hasher.finalize());
    let parts = store(source, path, &file_name, dir, format, projection)?;
    Ok(TakenFile {
        source: source.name.clone(),
        file_name,
        url: url.to_string(),
        parts,
        taken_at: chrono::Utc::now().naive_utc(),
        bytes,
        sha256,
    })
}

/// Whether a file is a spreadsheet to turn into CSV (by `sheet:` or name).
fn is_spreadsheet(source: &SourceConfig, file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    source.sheet.is_some()
        || [".xlsx", ".xls", ".xlsm", ".xlsb", ".ods"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// Converts one sheet (the `sheet:` option, else the first) to a CSV.
fn store_spreadsheet(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    dir: &Path,
    format: ArchiveFormat,
) -> Result<Vec<StoredPart>> {
    use calamine::{Data, Reader};
    let mut workbook = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(
        // Reference spreadsheets are small; the reader needs `Clone + Seek`.
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    ))
    .with_context(|| format!("`{file_name}` is not a readable spreadsheet"))?;
    let names = workbook.sheet_names();
    let sheet = match source.sheet.as_deref() {
        Some(s) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .cloned()
            .with_context(|| {
                format!(
                    "`{file_name}` has no sheet `{s}` (it has: {})",
                    names.join(", ")
                )
            })?,
        None => names
            .first()
            .cloned()
            .with_context(|| format!("`{file_name}` has no sheets"))?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .with_context(|| format!("reading sheet `{sheet}` of `{file_name}`"))?;
    let skip = source.skip_rows;
    std::fs::create_dir_all(dir)?;
    let out_path = dir.join(format!("{file_name}.{}", format.suffix()));
    let mut out = AtomicOut::create(&out_path, format)?;
    let mut rows = 0u64;
    let mut header = None;
    for row in range.rows().skip(skip) {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| {
                let text = match cell {
                    Data::Empty => String::new(),
                    Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
                    Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                        format!("{}", *f as i64)
                    }
                    Data::DateTime(d) => d
                        .as_datetime()
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| d.as_f64().to_string()),
                    other => other.to_string(),
                };
                csv_field(&text)
            })
            .collect();
        if header.is_none() {
            header = Some(
                row.iter()
                    .map(|c| c.to_string().trim().to_string())
                    .collect(),
            );
        }
        out.writer.write_all(cells.join(",").as_bytes())?;
        out.writer.write_all(b"\n")?;
        rows += 1;
    }
    out.finish()?;
    Ok(vec![StoredPart {
        table: None,
        path: out_path,
        rows: Some(rows.saturating_sub(1)),
        columns: None,
        header,
        unstored: Vec::new(),
    }])
}

/// Quotes a CSV field when it needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Stores a downloaded file: zip members one by one, or the file itself.
fn store(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    dir: &Path,
    format: ArchiveFormat,
    projection: &Projection,
) -> Result<Vec<StoredPart>> {
    if is_spreadsheet(source, file_name) {
        return store_spreadsheet(source, path, file_name, dir, format);
    }
    let mut magic = [0u8; 4];
    let n = File::open(path)?.read(&mut magic)?;
    let is_zip = n == 4 && magic == *b"PK\x03\x04";
    if file_name.to_ascii_lowercase().ends_with(".zip") && !is_zip {
        let head = String::from_utf8_lossy(&magic[..n]).into_owned();
        bail!("`{file_name}` is not a zip archive (it starts with {head:?}; an error page?)");
    }
    let mut parts = Vec::new();
    if is_zip {
        let mut archive = zip::ZipArchive::new(File::open(path)?)
            .with_context(|| format!("`{file_name}` is not a readable zip archive"))?;
        let members = archive.len();
        for i in 0..members {
            let member = archive.by_index(i)?;
            if member.is_dir() {
                continue;
            }
            let member_name = member
                .enclosed_name()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .map(|n| sanitize_name(&n))
                .with_context(|| format!("`{file_name}` has a member with an unsafe name"))?;
            let stored = if members == 1 {
                file_name.to_string()
            } else {
                format!("{file_name}~{member_name}")
            };
            parts.extend(store_stream(
                source,
                BufReader::new(member),
                &stored,
                dir,
                format,
                projection,
            )?);
        }
    } else {
        let reader = BufReader::new(File::open(path)?);
        parts.extend(store_stream(
            source, reader, file_name, dir, format, projection,
        )?);
    }
    Ok(parts)
}

/// Writes one stream into the archive, split by MMS table when configured.
fn store_stream(
    source: &SourceConfig,
    reader: impl BufRead,
    stored: &str,
    dir: &Path,
    format: ArchiveFormat,
    projection: &Projection,
) -> Result<Vec<StoredPart>> {
    match source.format {
        SourceFormat::Mms => split_mms(reader, stored, dir, &source.tables, format, |table| {
            projection.columns(&source.name, table)
        }),
        SourceFormat::Csv | SourceFormat::Raw => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{stored}.{}", format.suffix()));
            let mut out = AtomicOut::create(&path, format)?;
            let mut reader = reader;
            std::io::copy(&mut reader, &mut out.writer)
                .with_context(|| format!("storing {stored}"))?;
            out.finish()?;
            Ok(vec![StoredPart {
                table: None,
                path,
                rows: None,
                header: None,
                columns: None,
                unstored: Vec::new(),
            }])
        }
    }
}

/// The writer of one stored file: through gzip, or plain.
enum Sink {
    Gzip(Box<GzEncoder<BufWriter<File>>>),
    Plain(BufWriter<File>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Gzip(w) => w.write(buf),
            Sink::Plain(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Gzip(w) => w.write_all(buf),
            Sink::Plain(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Gzip(w) => w.flush(),
            Sink::Plain(w) => w.flush(),
        }
    }
}

/// A stored file written under a temporary name and renamed when complete,
/// so a killed run never leaves a truncated file that looks finished (the
/// name carries the process id: two runs in one checkout never share one).
struct AtomicOut {
    writer: Sink,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicOut {
    fn create(path: &Path, format: ArchiveFormat) -> Result<AtomicOut> {
        let tmp = path.with_extension(format!(
            "{}.partial-{}",
            format.suffix(),
            std::process::id()
        ));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let file = BufWriter::with_capacity(1 << 16, file);
        let writer = match format {
            ArchiveFormat::Gzip => Sink::Gzip(Box::new(GzEncoder::new(file, Compression::fast()))),
            ArchiveFormat::Plain => Sink::Plain(file),
        };
        Ok(AtomicOut {
            writer,
            tmp,
            path: path.to_path_buf(),
        })
    }

    fn finish(self) -> Result<()> {
        let mut inner = match self.writer {
            Sink::Gzip(w) => w.finish()?,
            Sink::Plain(w) => w,
        };
        inner.flush()?;
        drop(inner);
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("renaming {}", self.tmp.display()))?;
        Ok(())
    }
}

/// The byte offsets just past each of the first `n` unquoted commas.
fn field_starts(line: &[u8], n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    let mut quoted = false;
    for (i, b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(i + 1);
                if out.len() == n {
                    break;
                }
            }
            _ => {}
        }
    }
    out
}

/// The `(start, end)` byte ranges of the first `n` fields of `line`
/// (unquoted commas separate them; quotes stay in the field), into `out`.
fn field_bounds(line: &[u8], n: usize, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push((start, i));
                if out.len() == n {
                    return;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, line.len()));
}

/// The fields of a table's rows to store, given its header and the columns
/// to keep (`None`: all): the kept indices (`None` when all are kept), the
/// stored header and the names left out.
fn projected(
    header: &[u8],
    keep: Option<&BTreeSet<String>>,
) -> (Option<Vec<usize>>, Vec<u8>, Vec<String>) {
    let Some(keep) = keep else {
        return (None, header.to_vec(), Vec::new());
    };
    let mut bounds = Vec::new();
    field_bounds(header, usize::MAX, &mut bounds);
    let name = |&(a, b): &(usize, usize)| {
        String::from_utf8_lossy(&header[a..b])
            .trim()
            .trim_matches('"')
            .to_string()
    };
    let (kept, left): (Vec<usize>, Vec<usize>) =
        (0..bounds.len()).partition(|&i| keep.contains(&name(&bounds[i]).to_ascii_uppercase()));
    // Nothing to drop, or nothing named in this version of the table (a
    // file with no column to store would be no CSV): store it whole.
    if left.is_empty() || kept.is_empty() {
        return (None, header.to_vec(), Vec::new());
    }
    let stored = kept
        .iter()
        .map(|&i| &header[bounds[i].0..bounds[i].1])
        .collect::<Vec<_>>()
        .join(&b","[..]);
    let unstored = left.iter().map(|&i| name(&bounds[i])).collect();
    (Some(kept), stored, unstored)
}

/// Splits an AEMO MMS CSV into one CSV per table (`REPORT` or
/// `REPORT_SUBTABLE`), keeping only `wanted` tables when given, and of a
/// table only the columns `keep` names for it (all when `None`).
fn split_mms<'k>(
    mut reader: impl BufRead,
    stored: &str,
    dir: &Path,
    wanted: &[String],
    format: ArchiveFormat,
    keep: impl Fn(&str) -> Option<&'k BTreeSet<String>>,
) -> Result<Vec<StoredPart>> {
    struct Open {
        table: String,
        header: Vec<u8>,
        stored_header: Vec<u8>,
        keep: Option<Vec<usize>>,
        unstored: Vec<String>,
        out: AtomicOut,
        rows: u64,
    }
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut current: Option<usize> = None;
    let mut line = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        match line.first() {
            Some(b'I') => {
                let starts = field_starts(&line, 4);
                if starts.len() < 4 {
                    bail!("{stored} line {line_no}: an MMS `I` row needs at least 5 fields");
                }
                let field = |k: usize| {
                    String::from_utf8_lossy(&line[starts[k - 1]..starts[k] - 1])
                        .trim_matches('"')
                        .to_string()
                };
                let (report, sub) = (field(1), field(2));
                let table = if sub.is_empty() {
                    report
                } else {
                    format!("{report}_{sub}")
                };
                if !wanted.is_empty() && !wanted.iter().any(|w| w.eq_ignore_ascii_case(&table)) {
                    current = None;
                    continue;
                }
                let header = line[starts[3]..].to_vec();
                if let Some(i) = open
                    .iter()
                    .position(|o| o.table == table && o.header == header)
                {
                    current = Some(i);
                    continue;
                }
                let same_table = open.iter().filter(|o| o.table == table).count();
                let table_dir = dir.join(sanitize_name(&table));
                std::fs::create_dir_all(&table_dir)
                    .with_context(|| format!("creating {}", table_dir.display()))?;
                let suffix = format.suffix();
                let name = if same_table == 0 {
                    format!("{stored}.{suffix}")
                } else {
                    format!("{stored}~{}.{suffix}", same_table + 1)
                };
                let mut out = AtomicOut::create(&table_dir.join(name), format)?;
                let (kept, stored_header, unstored) = projected(&header, keep(&table));
                out.writer.write_all(&stored_header)?;
                out.writer.write_all(b"\n")?;
                open.push(Open {
                    table,
                    header,
                    stored_header,
                    keep: kept,
                    unstored,
                    out,
                    rows: 0,
                });
                current = Some(open.len() - 1);
            }
            Some(b'D') => {
                if let Some(i) = current {
                    let starts = field_starts(&line, 4);
                    if starts.len() < 4 {
                        bail!("{stored} line {line_no}: an MMS `D` row needs at least 5 fields");
                    }
                    let o = &mut open[i];
                    let data = &line[starts[3]..];
                    match &o.keep {
                        None => o.out.writer.write_all(data)?,
                        Some(kept) => {
                            let last = kept.last().map_or(0, |k| k + 1);
                            field_bounds(data, last, &mut bounds);
                            for (n, &k) in kept.iter().enumerate() {
                                if n > 0 {
                                    o.out.writer.write_all(b",")?;
                                }
                                if let Some(&(a, b)) = bounds.get(k) {
                                    o.out.writer.write_all(&data[a..b])?;
                                }
                            }
                        }
                    }
                    o.out.writer.write_all(b"\n")?;
                    o.rows += 1;
                }
            }
            _ => {}
        }
    }
    let mut parts = Vec::new();
    for o in open {
        let path = o.out.path.clone();
        o.out.finish()?;
        let columns = String::from_utf8_lossy(&o.stored_header)
            .split(',')
            .map(|c| c.trim_matches('"').to_string())
            .collect();
        parts.push(StoredPart {
            table: Some(o.table),
            path,
            rows: Some(o.rows),
            columns: Some(columns),
            header: None,
            unstored: o.unstored,
        });
    }
    Ok(parts)
}

/// Keeps a file name safe for the archive: no separators, no `~` (our part
/// marker), no leading dots.
pub fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | '~' | '\0' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "_".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn mms_is_split_per_table_with_headers_and_quotes_kept() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "C,NEMP.WORLD,DAILY,AEMO,PUBLIC\n\
                   I,DUNIT,,3,SETTLEMENTDATE,DUID,MW\n\
                   D,DUNIT,,3,\"2024/01/31 00:05:00\",A,1.5\n\
                   D,DUNIT,,3,\"2024/01/31 00:10:00\",\"B,1\",2\n\
                   I,DISPATCH,PRICE,5,SETTLEMENTDATE,REGIONID,RRP\n\
                   D,DISPATCH,PRICE,5,\"2024/01/31 00:05:00\",NSW1,80\n\
                   I,OTHER,,1,X\nD,OTHER,,1,9\n\
                   C,\"END OF REPORT\",8\n";
        let parts = split_mms(
            Cursor::new(csv),
            "f.zip",
            dir.path(),
            &["DUNIT".into(), "DISPATCH_PRICE".into()],
            ArchiveFormat::Gzip,
            |_| None,
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].rows, Some(2));
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&parts[0].path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text,
            "SETTLEMENTDATE,DUID,MW\n\"2024/01/31 00:05:00\",A,1.5\n\"2024/01/31 00:10:00\",\"B,1\",2\n"
        );
        assert!(parts[1].path.ends_with("DISPATCH_PRICE/f.zip.gz"));
        assert!(!dir.path().join("OTHER").exists());
    }

    #[test]
    fn a_plain_archive_holds_the_same_csv_uncompressed() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "I,DUNIT,,3,SETTLEMENTDATE,DUID,MW\n\
                   D,DUNIT,,3,\"2024/01/31 00:05:00\",A,1.5\n\
                   I,DUNIT,,4,SETTLEMENTDATE,DUID,MW,X\n\
                   D,DUNIT,,4,\"2024/01/31 00:10:00\",B,2,9\n";
        let parts = split_mms(
            Cursor::new(csv),
            "f.zip",
            dir.path(),
            &[],
            ArchiveFormat::Plain,
            |_| None,
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].path.ends_with("DUNIT/f.zip.csv"));
        assert!(parts[1].path.ends_with("DUNIT/f.zip~2.csv"));
        assert_eq!(
            std::fs::read_to_string(&parts[0].path).unwrap(),
            "SETTLEMENTDATE,DUID,MW\n\"2024/01/31 00:05:00\",A,1.5\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("DUNIT"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_projected_table_stores_only_the_named_columns_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "I,DUNIT,,3,SETTLEMENTDATE,RUNNO,DUID,Note,INITIALMW\n\
                   D,DUNIT,,3,\"2024/01/31 00:05:00\",1,A,\"x,y\",1.5\n\
                   D,DUNIT,,3,\"2024/01/31 00:10:00\",1,\"B,1\",,2\n\
                   I,DREGION,,3,SETTLEMENTDATE,REGIONID,RRP\n\
                   D,DREGION,,3,\"2024/01/31 00:05:00\",NSW1,80\n";
        let projection = Projection::from_tables(&[(
            "daily",
            "dunit",
            &["initialmw", "DUID", "SettlementDate"],
        )]);
        let parts = split_mms(
            Cursor::new(csv),
            "f.zip",
            dir.path(),
            &[],
            ArchiveFormat::Plain,
            |table| projection.columns("daily", table),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&parts[0].path).unwrap(),
            "SETTLEMENTDATE,DUID,INITIALMW\n\"2024/01/31 00:05:00\",A,1.5\n\"2024/01/31 00:10:00\",\"B,1\",2\n"
        );
        assert_eq!(
            parts[0].columns.as_deref(),
            Some(
                &[
                    "SETTLEMENTDATE".to_string(),
                    "DUID".into(),
                    "INITIALMW".into()
                ][..]
            )
        );
        assert_eq!(parts[0].unstored, vec!["RUNNO".to_string(), "Note".into()]);
        // A table the projection does not name keeps every column.
        assert_eq!(
            std::fs::read_to_string(&parts[1].path).unwrap(),
            "SETTLEMENTDATE,REGIONID,RRP\n\"2024/01/31 00:05:00\",NSW1,80\n"
        );
        assert!(parts[1].unstored.is_empty());
    }

    #[test]
    fn names_cannot_escape_the_archive() {
        assert_eq!(sanitize_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_name("a~b.csv"), "a_b.csv");
    }
}
