//! Storing a taken file: zip members are streamed (never held in memory)
//! through gzip into `<archive>/<source>/`; AEMO MMS files, which hold many
//! tables in one CSV, are split while streaming into one clean CSV per table
//! (`<archive>/<source>/<TABLE>/<file>.gz`, header from the `I` row, `D` rows
//! only); spreadsheets become CSV.
//!
//! Stored names keep the original file name (`<file>[~<part>].gz`), so
//! [`super::SOURCE_FILE_SQL`] recovers which downloaded file a row came from.

use super::{StoredPart, TakenFile};
use crate::project::settings::{SourceConfig, SourceFormat};
use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Takes one file on local disk (a sample, or a finished download): hashes
/// it and stores its content in the archive under `file_name`.
pub fn take_file(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    url: &str,
    dir: &Path,
) -> Result<TakenFile> {
    let file_name = sanitize_name(file_name);
    let mut hasher = Sha256::new();
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = std::io::copy(&mut f, &mut hasher)?;
    let sha256 = format!("{:x}", hasher.finalize());
    let parts = store(source, path, &file_name, dir)?;
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

/// Converts one sheet (the `sheet:` option, else the first) to a gzip CSV.
fn store_spreadsheet(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    dir: &Path,
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
    let out_path = dir.join(format!("{file_name}.gz"));
    let mut out = AtomicGz::create(&out_path)?;
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
        out.encoder.write_all(cells.join(",").as_bytes())?;
        out.encoder.write_all(b"\n")?;
        rows += 1;
    }
    out.finish()?;
    Ok(vec![StoredPart {
        table: None,
        path: out_path,
        rows: Some(rows.saturating_sub(1)),
        columns: None,
        header,
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
) -> Result<Vec<StoredPart>> {
    if is_spreadsheet(source, file_name) {
        return store_spreadsheet(source, path, file_name, dir);
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
            parts.extend(store_stream(source, BufReader::new(member), &stored, dir)?);
        }
    } else {
        let reader = BufReader::new(File::open(path)?);
        parts.extend(store_stream(source, reader, file_name, dir)?);
    }
    Ok(parts)
}

/// Writes one stream into the archive, split by MMS table when configured.
fn store_stream(
    source: &SourceConfig,
    reader: impl BufRead,
    stored: &str,
    dir: &Path,
) -> Result<Vec<StoredPart>> {
    match source.format {
        SourceFormat::Mms => split_mms(reader, stored, dir, &source.tables),
        SourceFormat::Csv | SourceFormat::Raw => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{stored}.gz"));
            let mut out = AtomicGz::create(&path)?;
            let mut reader = reader;
            std::io::copy(&mut reader, &mut out.encoder)
                .with_context(|| format!("storing {stored}"))?;
            out.finish()?;
            Ok(vec![StoredPart {
                table: None,
                path,
                rows: None,
                header: None,
                columns: None,
            }])
        }
    }
}

/// A gzip file written under a temporary name and renamed when complete, so a
/// killed run never leaves a truncated file that looks finished (the name
/// carries the process id: two runs in one checkout never share one).
struct AtomicGz {
    encoder: GzEncoder<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicGz {
    fn create(path: &Path) -> Result<AtomicGz> {
        let tmp = path.with_extension(format!("gz.partial-{}", std::process::id()));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(AtomicGz {
            encoder: GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::fast()),
            tmp,
            path: path.to_path_buf(),
        })
    }

    fn finish(self) -> Result<()> {
        let mut inner = self.encoder.finish()?;
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

/// Splits an AEMO MMS CSV into one gzip CSV per table (`REPORT` or
/// `REPORT_SUBTABLE`), keeping only `wanted` tables when given.
fn split_mms(
    mut reader: impl BufRead,
    stored: &str,
    dir: &Path,
    wanted: &[String],
) -> Result<Vec<StoredPart>> {
    struct Open {
        table: String,
        header: Vec<u8>,
        out: AtomicGz,
        rows: u64,
    }
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
                let name = if same_table == 0 {
                    format!("{stored}.gz")
                } else {
                    format!("{stored}~{}.gz", same_table + 1)
                };
                let mut out = AtomicGz::create(&table_dir.join(name))?;
                out.encoder.write_all(&header)?;
                out.encoder.write_all(b"\n")?;
                open.push(Open {
                    table,
                    header,
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
                    o.out.encoder.write_all(&line[starts[3]..])?;
                    o.out.encoder.write_all(b"\n")?;
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
        let columns = String::from_utf8_lossy(&o.header)
            .split(',')
            .map(|c| c.trim_matches('"').to_string())
            .collect();
        parts.push(StoredPart {
            table: Some(o.table),
            path,
            rows: Some(o.rows),
            columns: Some(columns),
            header: None,
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
    fn names_cannot_escape_the_archive() {
        assert_eq!(sanitize_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_name("a~b.csv"), "a_b.csv");
    }
}
