//! Ingest: take each source's new files into a local archive of CSV (gzip,
//! or plain in `ci` runs: [`ArchiveFormat`]), exactly once across runs.
//!
//! For every source active in the mode: list what it offers ([`candidates`]),
//! drop what the file log says is done, take the newest up to the mode's
//! limit, download with bounded concurrency and retries ([`fetch`]), and store
//! ([`store`]). A file that fails is reported and skipped; the run goes on.
//!
//! A file counts as done only when every model reading its source has
//! committed it: the pipeline writes the file log after the models, so a run
//! killed in between takes the file again, and `delete+insert` on
//! `source_file` makes that idempotent.

pub mod candidates;
pub mod fetch;
mod projection;
mod read;
pub mod store;

use crate::environ::Env;
use crate::mode::Mode;
use crate::project::Project;
use crate::project::settings::{SourceConfig, SourceKind};
use crate::secret::Secret;
use crate::sql::Relation;
use crate::templating::FileCatalog;
use anyhow::{Context, Result};
use candidates::Candidate;
use fetch::RetryPolicy;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use projection::Projection;
pub use store::{ArchiveFormat, sanitize_name};

/// SQL that turns DuckDB's `filename` column of a stored file (`.gz`, or
/// `.csv` when stored plain) back into the name of the file that was
/// downloaded (e.g. `PUBLIC_DAILY_…zip`).
pub const SOURCE_FILE_SQL: &str = r"regexp_extract(filename, '([^/~]+)(~[^/]*)?\.(gz|csv)$', 1)";

/// Where the file log lives in the warehouse.
pub const FILE_LOG_RELATION: &str = "\"_analytics\".\"file_log\"";

/// One file taken by this run.
#[derive(Debug, Clone)]
pub struct TakenFile {
    /// The `analytics.yml` source it was taken for.
    pub source: String,
    /// The original file name, e.g. `PUBLIC_DAILY_202401300000_20240131040503.zip`.
    pub file_name: String,
    /// Where it came from (URL or local sample path).
    pub url: String,
    /// What was stored, per MMS table (`None` for non-MMS files).
    pub parts: Vec<StoredPart>,
    /// When it was stored (UTC), for the file log.
    pub taken_at: chrono::NaiveDateTime,
    /// Size of the original file, in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the original file; a `url` source skips unchanged content.
    pub sha256: String,
}

/// One stored CSV of a taken file.
#[derive(Debug, Clone)]
pub struct StoredPart {
    /// The MMS table this part holds (`None` for non-MMS files).
    pub table: Option<String>,
    /// The stored CSV in the archive (gzip or plain).
    pub path: PathBuf,
    /// Data rows, when counted while storing.
    pub rows: Option<u64>,
    /// The CSV header, when ingest knows it (MMS tables): lets models read
    /// the file without DuckDB sniffing it first.
    pub columns: Option<Vec<String>>,
    /// The header row of a spreadsheet's sheet, for checking the columns a
    /// model asks for (not used to read the file: its cells may be blank).
    pub header: Option<Vec<String>>,
    /// Columns of the file that were not stored ([`Projection`]).
    pub unstored: Vec<String>,
}

/// Per-source figures for the summary.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    /// The source's name in `analytics.yml`.
    pub source: String,
    /// Files the source offers (matching its pattern).
    pub listed: usize,
    /// Of those, not yet in the file log.
    pub new: usize,
    /// Of the new ones, taken and stored this run.
    pub taken: usize,
    /// Files that failed, with why.
    pub skipped: Vec<String>,
    /// Bytes downloaded (or copied) for the taken files.
    pub bytes: u64,
    /// Wall time spent on the source.
    pub seconds: f64,
    /// Why little or nothing was taken (empty listing, no sample, unchanged), if notable.
    pub note: Option<String>,
}

/// What the file log already holds: done files, and the last hash of each.
#[derive(Debug, Clone, Default)]
pub struct FileLog {
    /// (source, file name) → SHA-256 of its latest take.
    pub done: BTreeMap<(String, String), String>,
    /// On a stored file log: the snapshot it was read at (`Some(None)`:
    /// the table had none or did not exist), so a write of files it did
    /// not hold can skip looking for them while the table is still there.
    pub read_at: Option<Option<i64>>,
}

impl FileLog {
    fn contains(&self, source: &str, file: &str) -> bool {
        self.done
            .contains_key(&(source.to_string(), file.to_string()))
    }

    fn sha(&self, source: &str, file: &str) -> Option<&str> {
        self.done
            .get(&(source.to_string(), file.to_string()))
            .map(String::as_str)
    }
}

/// The outcome of ingest: what was taken, per source.
#[derive(Debug, Clone, Default)]
pub struct IngestRun {
    /// Every source declared in `analytics.yml` (active this run or not).
    pub declared: Vec<String>,
    /// Files taken this run, from all sources.
    pub taken: Vec<TakenFile>,
    /// One report per source active this run.
    pub reports: Vec<SourceReport>,
    /// Wall time of the whole ingest (sources are taken at once).
    pub duration: Duration,
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

    fn check_columns(
        &self,
        source: &str,
        table: Option<&str>,
        columns: &[&str],
    ) -> Result<(), String> {
        let files: Vec<(&str, &Vec<String>)> = self
            .taken
            .iter()
            .filter(|f| f.source == source)
            .flat_map(|f| {
                f.parts
                    .iter()
                    .filter(move |p| match table {
                        Some(t) => p
                            .table
                            .as_deref()
                            .is_some_and(|pt| pt.eq_ignore_ascii_case(t)),
                        None => true,
                    })
                    .map(move |p| (f.file_name.as_str(), p))
            })
            .filter_map(|(name, p)| Some((name, p.columns.as_ref().or(p.header.as_ref())?)))
            .collect();
        // Only when every file's header is known: a column may be missing
        // from some files (older table versions), not from all of them.
        if files.is_empty() || files.len() < self.parts(source, table).count() {
            return Ok(());
        }
        for column in columns {
            let dropped = self.parts(source, table).any(|p| {
                p.unstored.iter().any(|u| u.eq_ignore_ascii_case(column))
                    && !p
                        .columns
                        .iter()
                        .flatten()
                        .any(|c| c.eq_ignore_ascii_case(column))
            });
            if dropped {
                return Err(format!(
                    "read_source('{source}'{}): column `{column}` was not stored: a ci run stores \
                     only the columns that the models' read_source(..., columns=...) calls name \
                     when the project is parsed, and this read was not among them",
                    table.map(|t| format!(", '{t}'")).unwrap_or_default(),
                ));
            }
            let found = files
                .iter()
                .any(|(_, header)| header.iter().any(|h| h.eq_ignore_ascii_case(column)));
            if !found {
                let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
                let header = files[0].1.join(", ");
                return Err(format!(
                    "read_source('{source}'{}): column `{column}` is in none of this run's files \
                     ({}); the first one's columns are: {header}",
                    table.map(|t| format!(", '{t}'")).unwrap_or_default(),
                    names.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn read_sql(
        &self,
        source: &str,
        table: Option<&str>,
        columns: Option<&[(String, String)]>,
    ) -> Option<String> {
        let paths = self.files(source, table);
        if paths.is_empty() {
            return None;
        }
        Some(read::read_sql(&paths, self.columns(source, table), columns))
    }
}

/// What ingest needs to know about the run.
pub struct IngestContext<'a> {
    /// The run's mode: `ci` takes samples only; sources run in the modes they name.
    pub mode: Mode,
    /// The run's environment (GitHub API base and tokens of `github` sources).
    pub env: &'a Env,
    /// The archive folder; each active source's sub-folder is cleared first.
    pub archive: &'a Path,
    /// Done files, from the warehouse.
    pub log: &'a FileLog,
    /// Models whose table is missing or empty (for `also_when_empty`).
    pub empty_models: &'a BTreeSet<String>,
    /// A cap on new files per source that overrides the sources' `limits`.
    pub limit: Option<usize>,
    /// The columns of MMS tables to store ([`Projection::for_run`]).
    pub projection: Arc<Projection>,
}

/// Takes this run's files for every source active in the mode.
///
/// In `ci` mode files come only from each source's `sample` (no network).
pub fn ingest(project: &Project, ctx: &IngestContext) -> Result<IngestRun> {
    let mut run = IngestRun {
        declared: project
            .settings
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        ..Default::default()
    };
    let active: Vec<&SourceConfig> = project
        .settings
        .sources
        .iter()
        .filter(|s| {
            s.runs_in(ctx.mode)
                || s.also_when_empty
                    .as_ref()
                    .is_some_and(|m| ctx.empty_models.contains(m))
        })
        .collect();
    if active.is_empty() {
        return Ok(run);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime for downloads")?;
    // Sources are taken at once (each with its own `concurrency`): a source
    // of many small files overlaps one of a few large ones instead of
    // waiting for it. Their folders are cleared first, and their reports
    // and files come back in the order the project declares them.
    for source in &active {
        let dir = ctx.archive.join(&source.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let narrowed = ctx.projection.describe(&source.name);
        if !narrowed.is_empty() {
            tracing::info!(
                "source `{}`: storing only the columns the models read: {}",
                source.name,
                narrowed.join("; ")
            );
        }
    }
    let each = active.iter().map(|source| async move {
        let started = Instant::now();
        let dir = ctx.archive.join(&source.name);
        let (taken, mut report) = take_source(project, source, ctx, &dir).await;
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            "source `{}`: {} listed, {} new, {} taken, {} skipped, {:.2} MB in {:.2}s",
            source.name,
            report.listed,
            report.new,
            report.taken,
            report.skipped.len(),
            report.bytes as f64 / 1e6,
            report.seconds
        );
        (taken, report)
    });
    let started = Instant::now();
    for (taken, report) in runtime.block_on(futures::future::join_all(each)) {
        run.taken.extend(taken);
        run.reports.push(report);
    }
    run.duration = started.elapsed();
    Ok(run)
}

fn policy(source: &SourceConfig) -> RetryPolicy {
    RetryPolicy {
        attempts: source.retries.unwrap_or(4).max(1),
        base: Duration::from_millis(source.retry_base_ms.unwrap_or(500)),
    }
}

/// Lists, filters and takes one source's files. Never fails as a whole: a
/// listing error is a skipped entry in the report.
async fn take_source(
    project: &Project,
    source: &SourceConfig,
    ctx: &IngestContext<'_>,
    dir: &Path,
) -> (Vec<TakenFile>, SourceReport) {
    let mut report = SourceReport {
        source: source.name.clone(),
        ..Default::default()
    };
    let policy = policy(source);
    let timeout = Duration::from_secs(source.timeout_secs.unwrap_or(600));
    let client = match fetch::client(timeout) {
        Ok(c) => c,
        Err(e) => {
            report.skipped.push(format!("{e:#}"));
            return (Vec::new(), report);
        }
    };
    let local = ctx.mode == Mode::Ci;
    let github = candidates::GithubAccess::for_source(source, ctx.env);
    let listed = match (local, &source.sample) {
        (true, Some(sample)) => candidates::list_sample(&project.root, source, sample),
        (true, None) => {
            report.note = Some("no `sample`; ci mode does not download".into());
            return (Vec::new(), report);
        }
        (false, _) => candidates::list_remote(&client, source, &github, policy).await,
    };
    let mut listed = match listed {
        Ok(l) => l,
        Err(e) => {
            let msg = format!("listing failed: {e:#}");
            tracing::warn!("source `{}`: {msg}", source.name);
            report.skipped.push(msg);
            return (Vec::new(), report);
        }
    };
    if source.latest
        && let Some(newest) = listed.iter().map(|c| c.file_name.clone()).max()
    {
        // Only the newest file is on offer: older ones are superseded.
        listed.retain(|c| c.file_name == newest);
    }
    report.listed = listed.len();
    if listed.is_empty() {
        let msg = format!(
            "source `{}`: the listing offers no matching files",
            source.name
        );
        tracing::warn!("{msg}");
        report.note = Some("empty listing".into());
    }
    // A fixed URL is taken every time its source runs (its content changes);
    // listed files are taken once.
    if source.kind != SourceKind::Url {
        listed.retain(|c| !ctx.log.contains(&source.name, &c.file_name));
    }
    report.new = listed.len();
    // Newest first: AEMO-style names carry their timestamp.
    listed.sort_by(|a, b| b.file_name.cmp(&a.file_name));
    listed.truncate(ctx.limit.or(source.limit(ctx.mode)).unwrap_or(usize::MAX));

    let token = (source.kind == SourceKind::Github)
        .then(|| github.token.clone())
        .flatten();
    let transport = Transport {
        client,
        token,
        policy,
    };
    let taken = take_all(source, listed, &transport, dir, ctx, &mut report).await;
    (taken, report)
}

/// How a source's files are downloaded: the HTTP client, the token sent with
/// GitHub downloads, and the retry policy.
struct Transport {
    client: reqwest::Client,
    token: Option<Secret>,
    policy: RetryPolicy,
}

/// How often a source's progress is logged while it is taken.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Downloads (or copies) and stores the chosen files, `concurrency` at a
/// time: a new file starts as soon as one finishes, or, with `pause_ms`,
/// in batches of `concurrency` with the pause between them (a politeness
/// delay for the server).
async fn take_all(
    source: &SourceConfig,
    chosen: Vec<Candidate>,
    transport: &Transport,
    dir: &Path,
    ctx: &IngestContext<'_>,
    report: &mut SourceReport,
) -> Vec<TakenFile> {
    let total = chosen.len();
    let concurrency = source.concurrency.unwrap_or(4).max(1);
    let pause = Duration::from_millis(source.pause_ms.unwrap_or(0));
    let partial = dir.join(".download");
    let store = Arc::new(Destination {
        dir: dir.to_path_buf(),
        partial: partial.clone(),
        format: ArchiveFormat::for_mode(ctx.mode),
        projection: ctx.projection.clone(),
    });
    let source = Arc::new(source.clone());
    let mut taken = Vec::new();
    let started = Instant::now();
    let mut queue = chosen.into_iter();
    let mut jobs = tokio::task::JoinSet::new();
    let (mut done, mut in_batch) = (0usize, 0usize);
    let mut last_progress = Instant::now();
    loop {
        // Fill the window: up to `concurrency` files at once; with a pause,
        // the next batch starts only when the whole previous one is done.
        while jobs.len() < concurrency && (pause.is_zero() || in_batch < concurrency) {
            let Some(candidate) = queue.next() else { break };
            in_batch += 1;
            let policy = transport.policy;
            let (client, source, token, store) = (
                transport.client.clone(),
                source.clone(),
                transport.token.clone(),
                store.clone(),
            );
            jobs.spawn(async move {
                let result =
                    take_one(&client, &source, &candidate, token.as_ref(), policy, &store).await;
                (candidate, result)
            });
        }
        let Some(joined) = jobs.join_next().await else {
            break;
        };
        done += 1;
        match joined {
            Err(e) => report.skipped.push(format!("a download task failed: {e}")),
            Ok((_, Ok(file))) => {
                if source.kind == SourceKind::Url
                    && ctx.log.sha(&source.name, &file.file_name) == Some(file.sha256.as_str())
                {
                    report.note = Some("unchanged since the last run".into());
                } else {
                    report.taken += 1;
                    report.bytes += file.bytes;
                    taken.push(file);
                }
            }
            Ok((candidate, Err(e))) => {
                let msg = format!("{}: {e:#}", candidate.file_name);
                tracing::warn!("source `{}`: skipped {msg}", source.name);
                report.skipped.push(msg);
            }
        }
        // Progress every few seconds: a long download is followed, a source
        // of hundreds of small files is not one line per batch.
        if last_progress.elapsed() >= PROGRESS_EVERY && done < total {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                "source `{}`: {}/{} files, {:.2} MB, {:.2} MB/s",
                source.name,
                done,
                total,
                report.bytes as f64 / 1e6,
                report.bytes as f64 / 1e6 / secs
            );
        }
        if !pause.is_zero() && jobs.is_empty() && in_batch == concurrency && done < total {
            tokio::time::sleep(pause).await;
            in_batch = 0;
        }
    }
    let _ = std::fs::remove_dir_all(&partial);
    taken
}

/// Where and how a taken file is stored.
struct Destination {
    /// The source's archive folder.
    dir: PathBuf,
    /// Downloads in progress (a folder of `dir`).
    partial: PathBuf,
    /// Gzip or plain (`ci` runs store plain CSV).
    format: ArchiveFormat,
    /// The columns of MMS tables to store.
    projection: Arc<Projection>,
}

/// Takes one candidate: a local path is stored directly; a URL is downloaded
/// to a temporary file first.
async fn take_one(
    client: &reqwest::Client,
    source: &Arc<SourceConfig>,
    candidate: &Candidate,
    token: Option<&Secret>,
    policy: RetryPolicy,
    store: &Destination,
) -> Result<TakenFile> {
    let Destination {
        dir,
        partial,
        format,
        projection,
    } = store;
    let format = *format;
    let projection = projection.clone();
    let is_remote =
        candidate.location.starts_with("http://") || candidate.location.starts_with("https://");
    let file_name = sanitize_name(&candidate.file_name);
    let local = if is_remote {
        tokio::fs::create_dir_all(partial).await?;
        let tmp = partial.join(&file_name);
        fetch::download(
            client,
            &candidate.location,
            token.map(Secret::expose),
            &tmp,
            policy,
        )
        .await?;
        tmp
    } else {
        PathBuf::from(&candidate.location)
    };
    let (source2, dir, url) = (
        source.clone(),
        dir.to_path_buf(),
        fetch::redact(&candidate.location),
    );
    let local2 = local.clone();
    let result = tokio::task::spawn_blocking(move || {
        store::take_file(
            &source2,
            &local2,
            &file_name,
            &url,
            &dir,
            format,
            &projection,
        )
    })
    .await
    .context("storing task failed")?;
    if is_remote {
        let _ = tokio::fs::remove_file(&local).await;
    }
    result
}

/// The rule of the file log: a file is done once every model reading its
/// source has built this run. `readers` lists each model with the ingest
/// sources it reads; `built` the models that succeeded. The files returned
/// may enter the file log; the others are taken again by the next run.
pub fn files_done<'a>(
    run: &'a IngestRun,
    readers: impl IntoIterator<Item = (&'a str, &'a [String])>,
    built: &BTreeSet<String>,
) -> Vec<&'a TakenFile> {
    let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (model, sources) in readers {
        for s in sources {
            consumers
                .entry(s.clone())
                .or_default()
                .push(model.to_string());
        }
    }
    committed(run, &consumers, built)
}

/// Whether a model's relation is missing or holds no rows: what
/// `also_when_empty` asks of the target (the engine answers).
pub trait TableProbe {
    /// `true` when `relation` does not exist or is empty.
    fn is_missing_or_empty(&self, relation: &Relation) -> Result<bool>;
}

/// The models named by a source's `also_when_empty` whose table is missing
/// or empty: their sources are taken whatever the mode.
pub fn empty_models(
    project: &Project,
    relation_of: impl Fn(&str) -> Option<Relation>,
    probe: &dyn TableProbe,
) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for source in &project.settings.sources {
        if let Some(model) = &source.also_when_empty {
            let relation = relation_of(model).with_context(|| {
                format!(
                    "source `{}`: also_when_empty names `{model}`, which is not a model",
                    source.name
                )
            })?;
            if probe.is_missing_or_empty(&relation)? {
                out.insert(model.clone());
            }
        }
    }
    Ok(out)
}

/// The files whose every consumer built: they may enter the file log.
/// `consumers` maps a source to the models reading it; `built` lists the
/// models that succeeded this run.
pub fn committed<'a>(
    run: &'a IngestRun,
    consumers: &BTreeMap<String, Vec<String>>,
    built: &BTreeSet<String>,
) -> Vec<&'a TakenFile> {
    run.taken
        .iter()
        .filter(|f| {
            consumers
                .get(&f.source)
                .is_none_or(|models| models.iter().all(|m| built.contains(m)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(columns: &[&str], unstored: &[&str]) -> StoredPart {
        StoredPart {
            table: Some("DUNIT".into()),
            path: PathBuf::from("/archive/daily/DUNIT/f.zip.csv"),
            rows: Some(1),
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
            header: None,
            unstored: unstored.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn reading_a_column_ingest_did_not_store_is_an_error_naming_it() {
        let run = IngestRun {
            declared: vec!["daily".into()],
            taken: vec![TakenFile {
                source: "daily".into(),
                file_name: "f.zip".into(),
                url: "f.zip".into(),
                parts: vec![part(&["SETTLEMENTDATE", "DUID"], &["RUNNO", "INITIALMW"])],
                taken_at: chrono::NaiveDateTime::default(),
                bytes: 1,
                sha256: String::new(),
            }],
            ..Default::default()
        };
        assert!(run.check_columns("daily", Some("DUNIT"), &["duid"]).is_ok());
        let err = run
            .check_columns("daily", Some("DUNIT"), &["DUID", "initialmw"])
            .unwrap_err();
        assert!(err.contains("column `initialmw` was not stored"), "{err}");
        let err = run
            .check_columns("daily", Some("DUNIT"), &["NOPE"])
            .unwrap_err();
        assert!(err.contains("is in none of this run's files"), "{err}");
    }
}
