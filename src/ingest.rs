//! Ingest: take source files into a local archive of gzip-compressed CSV.
//!
//! Zip members are streamed (never held in memory) through gzip into
//! `<archive>/<source>/`. AEMO MMS files, which hold many tables in one CSV,
//! are split while streaming into one clean CSV per table
//! (`<archive>/<source>/<TABLE>/<file>.gz`, header from the `I` row, `D` rows
//! only), so models read each table once, typed, with a plain `read_csv`.
//!
//! Stored names keep the original file name (`<file>[~<part>].gz`), so
//! [`SOURCE_FILE_SQL`] recovers which downloaded file a row came from.

use crate::project::Project;
use crate::project::settings::{SourceConfig, SourceFormat};
use crate::templating::FileCatalog;
use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// SQL that turns DuckDB's `filename` column of a stored file back into the
/// name of the file that was downloaded (e.g. `PUBLIC_DAILY_…zip`).
pub const SOURCE_FILE_SQL: &str = r"regexp_extract(filename, '([^/~]+)(~[^/]*)?\.gz$', 1)";

/// The pipeline mode, as far as ingest cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    Ci,
    Intraday,
    Backfill,
}

impl IngestMode {
    fn name(self) -> &'static str {
        match self {
            IngestMode::Ci => "ci",
            IngestMode::Intraday => "intraday",
            IngestMode::Backfill => "backfill",
        }
    }
}

/// One file taken by this run.
#[derive(Debug, Clone)]
pub struct TakenFile {
    pub source: String,
    /// The original file name, e.g. `PUBLIC_DAILY_202401300000_20240131040503.zip`.
    pub file_name: String,
    /// Where it came from (URL or local sample path).
    pub url: String,
    /// What was stored, per MMS table (`None` for non-MMS files).
    pub parts: Vec<StoredPart>,
    pub taken_at: chrono::NaiveDateTime,
    pub bytes: u64,
    pub sha256: String,
}

/// One stored CSV of a taken file.
#[derive(Debug, Clone)]
pub struct StoredPart {
    pub table: Option<String>,
    pub path: PathBuf,
    pub rows: Option<u64>,
    /// The CSV header, when ingest knows it (MMS tables): lets models read
    /// the file without DuckDB sniffing it first.
    pub columns: Option<Vec<String>>,
}

/// Per-source figures for the summary.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    pub source: String,
    pub listed: usize,
    pub taken: usize,
    pub skipped: Vec<String>,
    pub bytes: u64,
    pub seconds: f64,
    pub note: Option<String>,
}

/// The outcome of ingest: what was taken, per source.
#[derive(Debug, Clone, Default)]
pub struct IngestRun {
    /// Every source declared in `analytics.yml` (active this run or not).
    pub declared: Vec<String>,
    pub taken: Vec<TakenFile>,
    pub reports: Vec<SourceReport>,
}

impl IngestRun {
    /// The stored parts of `source` (one MMS `table` of it, if given).
    fn parts<'a>(
        &'a self,
        source: &'a str,
        table: Option<&'a str>,
    ) -> impl Iterator<Item = &'a StoredPart> {
        self.taken
            .iter()
            .filter(move |f| f.source == source)
            .flat_map(|f| f.parts.iter())
            .filter(move |p| match table {
                Some(t) => p
                    .table
                    .as_deref()
                    .is_some_and(|pt| pt.eq_ignore_ascii_case(t)),
                None => true,
            })
    }
}

impl FileCatalog for IngestRun {
    fn has_source(&self, source: &str) -> bool {
        self.declared.iter().any(|s| s == source)
    }

    fn files(&self, source: &str, table: Option<&str>) -> Vec<PathBuf> {
        self.parts(source, table).map(|p| p.path.clone()).collect()
    }

    fn columns(&self, source: &str, table: Option<&str>) -> Option<Vec<String>> {
        let mut parts = self.parts(source, table);
        let first = parts.next()?.columns.clone()?;
        parts
            .all(|p| p.columns.as_ref() == Some(&first))
            .then_some(first)
    }

    fn file_log_relation(&self) -> String {
        FILE_LOG_RELATION.to_string()
    }
}

/// Where the file log lives in the warehouse.
pub const FILE_LOG_RELATION: &str = "\"_analytics\".\"file_log\"";

/// Takes this run's files for every source active in `mode`.
///
/// In `ci` mode files come from each source's `sample` (no network), and each
/// source's archive folder is cleared first so the run sees only its own files.
pub fn ingest(project: &Project, mode: IngestMode, archive: &Path) -> Result<IngestRun> {
    let mut run = IngestRun {
        declared: project
            .settings
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        ..Default::default()
    };
    for source in &project.settings.sources {
        if !source.modes.is_empty() && !source.modes.iter().any(|m| m == mode.name()) {
            continue;
        }
        let started = Instant::now();
        let mut report = SourceReport {
            source: source.name.clone(),
            ..Default::default()
        };
        let dir = archive.join(&source.name);
        match (mode, &source.sample) {
            (IngestMode::Ci, Some(sample)) => {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("clearing {}", dir.display()))?;
                }
                let candidates = list_sample(project, source, sample)?;
                report.listed = candidates.len();
                let limit = source.limits.ci.unwrap_or(usize::MAX);
                for path in candidates.into_iter().take(limit) {
                    match take_local_file(source, &path, &dir) {
                        Ok(file) => {
                            report.taken += 1;
                            report.bytes += file.bytes;
                            run.taken.push(file);
                        }
                        Err(err) => {
                            let msg = format!("{}: {err:#}", path.display());
                            tracing::warn!("source `{}`: skipped {msg}", source.name);
                            report.skipped.push(msg);
                        }
                    }
                }
            }
            (IngestMode::Ci, None) => {
                report.note = Some("no `sample`; ci mode does not download".into());
            }
            (_, _) => bail!(
                "source `{}`: downloading in {} mode is not available in this version",
                source.name,
                mode.name()
            ),
        }
        report.seconds = started.elapsed().as_secs_f64();
        run.reports.push(report);
    }
    Ok(run)
}

/// Files of a sample folder (or the one sample file), newest first by name.
fn list_sample(project: &Project, source: &SourceConfig, sample: &str) -> Result<Vec<PathBuf>> {
    let path = project.root.join(sample);
    if path.is_file() {
        return Ok(vec![path]);
    }
    let pattern = source
        .pattern
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .with_context(|| format!("source `{}`: invalid pattern", source.name))?;
    let entries = std::fs::read_dir(&path).with_context(|| {
        format!(
            "source `{}`: cannot read sample {}",
            source.name,
            path.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let p = entry?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let keep = match &pattern {
            Some(re) => re.is_match(&name),
            None => !name.ends_with(".html"),
        };
        if p.is_file() && keep {
            files.push(p);
        }
    }
    files.sort();
    files.reverse();
    Ok(files)
}

/// Takes one local file: hashes it and stores its content in the archive.
pub fn take_local_file(source: &SourceConfig, path: &Path, dir: &Path) -> Result<TakenFile> {
    let file_name = sanitize_name(
        &path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let mut hasher = Sha256::new();
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = std::io::copy(&mut f, &mut hasher)?;
    let sha256 = format!("{:x}", hasher.finalize());
    let parts = store(source, path, &file_name, dir)?;
    Ok(TakenFile {
        source: source.name.clone(),
        file_name,
        url: path.to_string_lossy().into_owned(),
        parts,
        taken_at: chrono::Utc::now().naive_utc(),
        bytes,
        sha256,
    })
}

/// Stores a downloaded file: zip members one by one, or the file itself.
fn store(
    source: &SourceConfig,
    path: &Path,
    file_name: &str,
    dir: &Path,
) -> Result<Vec<StoredPart>> {
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
                columns: None,
            }])
        }
    }
}

/// A gzip file written under a temporary name and renamed when complete, so a
/// killed run never leaves a truncated file that looks finished.
struct AtomicGz {
    encoder: GzEncoder<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicGz {
    fn create(path: &Path) -> Result<AtomicGz> {
        let tmp = path.with_extension("gz.partial");
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

/// Rows of the file log for this run: (source, file_name, url, stored_paths,
/// taken_at, bytes, sha256, rows).
pub fn file_log_rows(run: &IngestRun) -> BTreeMap<String, Vec<&TakenFile>> {
    let mut by_source: BTreeMap<String, Vec<&TakenFile>> = BTreeMap::new();
    for f in &run.taken {
        by_source.entry(f.source.clone()).or_default().push(f);
    }
    by_source
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
