//! Publish (pipeline stage 8, README): the site — dashboard, `manifest.json` and data
//! files — committed to a branch (default `gh-pages`) in ONE commit through
//! the GitHub Git Data API (`octocrab`): blobs, a tree on top of the branch's
//! tree, a commit, a ref update. Or, with no token, the same tree written to
//! a folder.
//!
//! Both ways merge with what is already there: files of datasets this run did
//! not export stay (an intraday run publishes the intraday file and keeps the
//! hourly files), stale files of the datasets it did export go, and
//! `manifest.json` lists both. A ref update that loses a race (someone pushed
//! meanwhile: not a fast-forward) is retried on the new head, so nothing is
//! lost. Blobs the branch already holds are not uploaded again, and a publish
//! that changes nothing makes no commit.
//!
//! A data file the manifest lists but the site folder does not hold was
//! kept by the export (its rows did not change, see `export`): the
//! destination must still hold it, as listed — it is left as it is and
//! neither read nor uploaded. [`published_in_dir`] and
//! [`published_on_branch`] give the export what the destination holds.
//!
//! The token only travels in the `Authorization` header; errors name the
//! repository, the branch and the API call, never the token.

mod github;
mod wire;

pub use github::{fetch_from_branch, git_blob_sha, publish, published_on_branch};

use crate::export::MAX_FILE_BYTES;
use crate::manifest::Manifest;
use crate::project::settings::History;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where and how to publish through the GitHub API.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// `owner/name`.
    pub repository: String,
    /// The branch; created when missing.
    pub branch: String,
    /// A folder of the branch to publish into (`""`: the root).
    pub folder: String,
    /// `keep`: one commit on top of the branch; `single`: one parentless commit.
    pub history: History,
    /// The REST API base (`GITHUB_API_URL`; `https://api.github.com` on github.com,
    /// `https://HOST/api/v3` on GitHub Enterprise Server).
    pub api_url: String,
    /// The commit message.
    pub message: String,
    /// How many times to rebuild on a moved head, and to try one API call
    /// GitHub answers with a 5xx or 429, before giving up.
    pub max_attempts: u32,
    /// The first wait before repeating an API call GitHub answered with a
    /// 5xx or 429; each further retry waits twice as long.
    pub retry_base: std::time::Duration,
}

impl PublishConfig {
    /// Defaults for `repository`: branch `gh-pages`, the root, a single
    /// commit, api.github.com (the site stage sets the run's `GITHUB_API_URL`).
    pub fn new(repository: &str) -> PublishConfig {
        PublishConfig {
            repository: repository.to_string(),
            branch: "gh-pages".into(),
            folder: String::new(),
            history: History::Single,
            api_url: "https://api.github.com".into(),
            message: "analytics: publish the dashboard".into(),
            max_attempts: 5,
            retry_base: std::time::Duration::from_secs(1),
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishOutcome {
    /// The commit made (`None` for a folder, or when nothing changed).
    pub commit_sha: Option<String>,
    /// Paths (in the branch or folder) written because they are new or changed.
    pub files: Vec<String>,
    /// Paths removed: stale files of the datasets this run exported.
    pub deleted: Vec<String>,
    /// The dashboard's address, when known (GitHub Pages, or the folder).
    pub url: Option<String>,
    /// Nothing changed, so no commit was made.
    pub skipped: bool,
    /// `owner/name@branch[:folder]` or the folder written.
    pub destination: String,
    /// Ref updates that lost a race and were rebuilt on the new head.
    pub retries: u32,
    /// What the GitHub Pages API says about serving the branch (`Unknown`
    /// for a folder).
    pub pages: PagesStatus,
}

/// Whether GitHub Pages serves what was published, as the Pages API
/// (`GET /repos/{owner}/{repo}/pages`) tells.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PagesStatus {
    /// Not asked (a folder, or no publish).
    #[default]
    Unknown,
    /// Pages serves the published branch and folder at the outcome's `url`.
    Serving,
    /// The repository has no Pages site (HTTP 404): `branch` was published
    /// but nobody serves it.
    NotEnabled {
        /// The branch published, to name in the fix.
        branch: String,
    },
    /// Pages serves something else: another branch or folder, or a
    /// workflow's artifact.
    OtherSource {
        /// What Pages serves, e.g. "branch `main`, folder `/docs`".
        serves: String,
        /// What was published, e.g. "branch `gh-pages`, folder `/`".
        published: String,
    },
    /// The token may not read the Pages settings (HTTP 401/403) or the call
    /// failed; the outcome's `url` is then the usual address on github.com,
    /// assumed.
    Unreadable {
        /// The HTTP status or error.
        why: String,
    },
}

impl PagesStatus {
    /// One sentence for the summary when the address is not known for sure
    /// (`None` when Pages serves the site, or nothing was asked).
    pub fn note(&self) -> Option<String> {
        match self {
            PagesStatus::Unknown | PagesStatus::Serving => None,
            PagesStatus::NotEnabled { branch } => Some(format!(
                "GitHub Pages is not enabled: Settings → Pages → Deploy from branch {branch}, / (root)"
            )),
            PagesStatus::OtherSource { serves, published } => Some(format!(
                "GitHub Pages serves {serves}, not the published {published}: \
                 Settings → Pages → Deploy from branch, the published one"
            )),
            PagesStatus::Unreadable { why } => Some(format!(
                "could not read the GitHub Pages settings ({why}); the dashboard address is assumed — \
                 give the job `permissions: pages: read` (or the token Pages: read) to check it"
            )),
        }
    }

    /// Whether the published site is known not to be served (a warning).
    pub fn not_served(&self) -> bool {
        matches!(
            self,
            PagesStatus::NotEnabled { .. } | PagesStatus::OtherSource { .. }
        )
    }
}

/// What GitHub Pages serves, from the Pages API's answer
/// (`GET /repos/{owner}/{repo}/pages`), for a site published to `branch`
/// and `folder`: the dashboard's address when Pages serves it.
pub fn pages_served(
    pages: &serde_json::Value,
    branch: &str,
    folder: &str,
) -> (Option<String>, PagesStatus) {
    let folder = folder.trim_matches('/');
    let workflow = pages["build_type"].as_str() == Some("workflow");
    let source = pages["source"]["branch"]
        .as_str()
        .map(|b| (b, pages["source"]["path"].as_str().unwrap_or("/")));
    // The published folder, relative to the folder Pages serves.
    let served = match source {
        _ if workflow => None,
        None => Some(folder.to_string()),
        Some((b, _)) if b != branch => None,
        Some((_, path)) => {
            let root = path.trim_matches('/');
            if root.is_empty() {
                Some(folder.to_string())
            } else if folder == root {
                Some(String::new())
            } else {
                folder.strip_prefix(&format!("{root}/")).map(str::to_string)
            }
        }
    };
    match (served, pages["html_url"].as_str()) {
        (Some(rest), Some(base)) => (Some(join_url(base, &rest)), PagesStatus::Serving),
        (Some(_), None) => (
            None,
            PagesStatus::Unreadable {
                why: "the Pages API gave no address".into(),
            },
        ),
        (None, _) => {
            let serves = match source {
                _ if workflow => "a GitHub Actions workflow's artifact".to_string(),
                Some((b, path)) => format!("branch `{b}`, folder `/{}`", path.trim_matches('/')),
                None => "another source".to_string(),
            };
            (
                None,
                PagesStatus::OtherSource {
                    serves,
                    published: format!("branch `{branch}`, folder `/{folder}`"),
                },
            )
        }
    }
}

/// `base` (with a trailing slash) plus `folder/` when there is one.
pub(crate) fn join_url(base: &str, folder: &str) -> String {
    let base = if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    };
    format!("{base}{}", prefix(folder))
}

/// A file of the site to publish.
#[derive(Debug, Clone)]
pub(crate) struct SiteFile {
    /// Relative to the site root, `/`-separated.
    pub(crate) rel: String,
    /// Where it is on disk.
    pub(crate) path: PathBuf,
    /// Its size.
    pub(crate) bytes: u64,
}

/// Every file under `site_dir`, sorted, with the size guard applied: a file
/// over GitHub's limit fails here, before anything is sent or written.
pub(crate) fn site_files(site_dir: &Path) -> Result<(Vec<SiteFile>, Option<Manifest>)> {
    let mut files = Vec::new();
    let mut stack = vec![site_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(site_dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = entry.metadata()?.len();
                files.push(SiteFile { rel, path, bytes });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let manifest = match files.iter().find(|f| f.rel == "manifest.json") {
        Some(f) => Some(Manifest::parse(
            &std::fs::read_to_string(&f.path)
                .with_context(|| format!("reading {}", f.path.display()))?,
        )?),
        None => None,
    };
    for f in &files {
        if f.bytes > MAX_FILE_BYTES {
            let dataset = manifest
                .as_ref()
                .and_then(|m| m.dataset_of(&f.rel))
                .map(|d| format!("dataset `{d}`: "))
                .unwrap_or_default();
            bail!(
                "{dataset}{} is {:.1} MB, over GitHub's 100 MiB file limit, so nothing was published; \
                 split the dataset into smaller periods (split: quarter or month) or shorten its window",
                f.rel,
                f.bytes as f64 / 1e6
            );
        }
    }
    Ok((files, manifest))
}

/// Merges a new manifest into the one already published: the new files
/// first, in export order, then the files of datasets not exported now, kept (while `still_there` says the file exists),
/// files of re-exported datasets are replaced. Returns the merged manifest
/// and the site paths of stale files to remove.
pub fn merge_manifest(
    new: &Manifest,
    base: Option<&Manifest>,
    still_there: impl Fn(&str) -> bool,
) -> (Manifest, Vec<String>) {
    let mut merged = new.clone();
    let mut removed = Vec::new();
    let Some(base) = base else {
        return (merged, removed);
    };
    // A dataset's rollups files are exported with it (`dashboard/rollups.rs`),
    // even when none is written (none smaller than its rows file): the
    // published ones of an exported dataset are never kept beside new rows.
    let exported: BTreeSet<String> = new
        .files
        .iter()
        .flat_map(|f| {
            [
                f.dataset.clone(),
                crate::manifest::rollups_dataset(&f.dataset),
            ]
        })
        .collect();
    let new_paths: BTreeSet<&str> = new.files.iter().map(|f| f.path.as_str()).collect();
    for f in &base.files {
        if exported.contains(f.dataset.as_str()) {
            if !new_paths.contains(f.path.as_str()) && still_there(&f.path) {
                removed.push(f.path.clone());
            }
        } else if still_there(&f.path) && !new_paths.contains(f.path.as_str()) {
            merged.files.push(f.clone());
        }
    }
    (merged, removed)
}

/// The manifest files a publish keeps rather than writes: listed in the
/// site's manifest, absent from the site folder.
pub(crate) fn kept_files<'a>(
    manifest: Option<&'a Manifest>,
    files: &[SiteFile],
) -> Vec<&'a crate::manifest::ManifestFile> {
    let present: BTreeSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    manifest
        .map(|m| {
            m.files
                .iter()
                .filter(|f| !present.contains(f.path.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// The error for a kept file the destination no longer holds as listed.
pub(crate) fn kept_file_missing(path: &str, destination: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{path} was kept from the published site (its rows did not change) but {destination} {why}; \
         nothing was published — run again: the export then writes it"
    )
}

/// What a destination holds of the site published there.
#[derive(Debug, Clone)]
pub struct Published {
    /// Its manifest, listing only the files still there as listed: what an
    /// export may keep.
    pub manifest: Manifest,
    /// The files its manifest lists that are gone or not as listed (a
    /// publish stopped half-way, a file deleted by hand): an export must
    /// write them again.
    pub missing: Vec<crate::manifest::ManifestFile>,
}

impl Published {
    /// Splits `manifest`'s files into those `held` says are there as listed
    /// and the missing ones.
    pub(crate) fn new(
        mut manifest: Manifest,
        held: impl Fn(&crate::manifest::ManifestFile) -> bool,
    ) -> Published {
        let (kept, missing) = manifest.files.into_iter().partition(held);
        manifest.files = kept;
        Published { manifest, missing }
    }
}

/// The site in folder `dest`: the files still there with their listed size
/// (`None` without a readable manifest).
pub fn published_in_dir(dest: &Path) -> Option<Published> {
    let manifest = Manifest::load(&dest.join("manifest.json")).ok()?;
    Some(Published::new(manifest, |f| {
        std::fs::metadata(dest.join(&f.path)).is_ok_and(|m| m.is_file() && m.len() == f.bytes)
    }))
}

/// `folder/` (or `""`) for repository paths.
pub(crate) fn prefix(folder: &str) -> String {
    let f = folder.trim_matches('/');
    if f.is_empty() {
        String::new()
    } else {
        format!("{f}/")
    }
}

// ---------------------------------------------------------------------------
// To a folder

/// Writes the site into `dest` (the laptop's "publish"): changed files are
/// copied, stale data files of re-exported datasets removed, the manifest
/// merged with the one already there.
pub fn publish_to_dir(site_dir: &Path, dest: &Path) -> Result<PublishOutcome> {
    let (files, manifest) = site_files(site_dir)?;
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let base = match std::fs::read_to_string(dest.join("manifest.json")) {
        Ok(text) => Manifest::parse(&text).ok(),
        Err(_) => None,
    };
    let (merged, removed) = match &manifest {
        Some(m) => merge_manifest(m, base.as_ref(), |p| dest.join(p).is_file()),
        None => (empty_manifest(), Vec::new()),
    };
    for f in kept_files(manifest.as_ref(), &files) {
        let held = std::fs::metadata(dest.join(&f.path)).is_ok_and(|m| m.len() == f.bytes);
        if !held
            || base
                .as_ref()
                .and_then(|b| b.files.iter().find(|b| b.path == f.path))
                .map(|b| &b.sha256)
                != Some(&f.sha256)
        {
            return Err(kept_file_missing(
                &f.path,
                &dest.display().to_string(),
                "no longer holds it as listed",
            ));
        }
    }
    let mut outcome = PublishOutcome {
        destination: dest.display().to_string(),
        url: Some(format!("file://{}/index.html", dest.display())),
        ..Default::default()
    };
    for f in &files {
        let target = dest.join(&f.rel);
        if f.rel != "manifest.json" && same_file(&f.path, &target) {
            // A kept file the export linked from this folder: already there.
            continue;
        }
        let content = if f.rel == "manifest.json" && manifest.is_some() {
            merged.to_json().into_bytes()
        } else {
            std::fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?
        };
        if std::fs::read(&target).ok().as_deref() == Some(content.as_slice()) {
            continue;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = target.with_extension("partial");
        std::fs::write(&tmp, &content).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &target).with_context(|| format!("writing {}", target.display()))?;
        outcome.files.push(f.rel.clone());
    }
    for rel in removed {
        let path = dest.join(&rel);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        outcome.deleted.push(rel);
    }
    outcome.skipped = outcome.files.is_empty() && outcome.deleted.is_empty();
    Ok(outcome)
}

/// Whether `a` and `b` are one file (hard links of one inode).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

fn empty_manifest() -> Manifest {
    Manifest {
        version: crate::manifest::MANIFEST_VERSION,
        project: String::new(),
        exported_at: String::new(),
        files: Vec::new(),
        summary: None,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_manifest;
    use crate::manifest::Manifest;

    fn site(files: &[(&str, &str)]) -> Manifest {
        let files: Vec<String> = files
            .iter()
            .map(|(dataset, path)| {
                format!(
                    r#"{{"dataset": "{dataset}", "path": "{path}", "table": "t", "sha256": "x"}}"#
                )
            })
            .collect();
        Manifest::parse(&format!(
            r#"{{"version": 1, "project": "p", "exported_at": "2024-01-01T00:00:00Z", "files": [{}]}}"#,
            files.join(", ")
        ))
        .unwrap()
    }

    #[test]
    fn a_rollups_file_of_an_exported_dataset_is_never_kept_beside_new_rows() {
        let base = site(&[
            ("hourly", "data/hourly_2024_q1.duckdb"),
            ("hourly.rollups", "data/hourly_2024_q1.rollups.duckdb"),
            ("units", "data/units.duckdb"),
        ]);
        // A new export of `hourly` that wrote no rollups file (not smaller
        // than its rows): the published one is removed, not listed.
        let new = site(&[("hourly", "data/hourly_2024_q1.duckdb")]);
        let (merged, removed) = merge_manifest(&new, Some(&base), |_| true);
        let paths: Vec<&str> = merged.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["data/hourly_2024_q1.duckdb", "data/units.duckdb"]);
        assert_eq!(removed, ["data/hourly_2024_q1.rollups.duckdb"]);
        // A dataset not exported now keeps its files, rollups too.
        let new = site(&[("units", "data/units.duckdb")]);
        let (merged, removed) = merge_manifest(&new, Some(&base), |_| true);
        assert_eq!(merged.files.len(), 3);
        assert!(removed.is_empty());
    }
}
