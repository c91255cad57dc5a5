//! Publish (MISSION stage 8): the site — dashboard, `manifest.json` and data
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
//! The token only travels in the `Authorization` header; errors name the
//! repository, the branch and the API call, never the token.

use crate::actions::Secret;
use crate::export::{MAX_FILE_BYTES, Manifest};
use crate::project::settings::History;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha1::Digest;
use std::collections::{BTreeMap, BTreeSet};
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
    /// How many times to rebuild on a moved head before giving up.
    pub max_attempts: u32,
}

impl PublishConfig {
    /// Defaults for `repository`: branch `gh-pages`, the root, a single commit,
    /// `GITHUB_API_URL` or github.com.
    pub fn new(repository: &str) -> PublishConfig {
        PublishConfig {
            repository: repository.to_string(),
            branch: "gh-pages".into(),
            folder: String::new(),
            history: History::Single,
            api_url: std::env::var("GITHUB_API_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "https://api.github.com".into()),
            message: "analytics: publish the dashboard".into(),
            max_attempts: 5,
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
}

/// A file of the site to publish.
#[derive(Debug, Clone)]
struct SiteFile {
    /// Relative to the site root, `/`-separated.
    rel: String,
    path: PathBuf,
    bytes: u64,
}

/// Every file under `site_dir`, sorted, with the size guard applied: a file
/// over GitHub's limit fails here, before anything is sent or written.
fn site_files(site_dir: &Path) -> Result<(Vec<SiteFile>, Option<Manifest>)> {
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
    let exported: BTreeSet<&str> = new.files.iter().map(|f| f.dataset.as_str()).collect();
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

/// `folder/` (or `""`) for repository paths.
fn prefix(folder: &str) -> String {
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
    let mut outcome = PublishOutcome {
        destination: dest.display().to_string(),
        url: Some(format!("file://{}/index.html", dest.display())),
        ..Default::default()
    };
    for f in &files {
        let target = dest.join(&f.rel);
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

fn empty_manifest() -> Manifest {
    Manifest {
        version: crate::export::MANIFEST_VERSION,
        project: String::new(),
        exported_at: String::new(),
        files: Vec::new(),
        warnings: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Through the GitHub API

/// The git blob id of `content` (what the API returns for it), so unchanged
/// files are recognised without uploading them.
pub fn git_blob_sha(content: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    crate::export::hex(&h.finalize())
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Deserialize)]
struct RefObject {
    object: Sha,
}

#[derive(Deserialize)]
struct Commit {
    tree: Sha,
}

#[derive(Deserialize)]
struct Tree {
    #[serde(default)]
    tree: Vec<TreeItem>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeItem {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    sha: String,
}

#[derive(Deserialize)]
struct Blob {
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Deserialize, Default)]
struct Repository {
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    permissions: Option<Permissions>,
}

#[derive(Deserialize)]
struct Permissions {
    #[serde(default)]
    push: bool,
}

#[derive(Deserialize)]
struct Pages {
    html_url: Option<String>,
}

#[derive(Serialize)]
struct NewBlob<'a> {
    content: &'a str,
    encoding: &'a str,
}

#[derive(Serialize)]
struct NewTreeEntry {
    path: String,
    mode: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    /// `None` (JSON null) deletes the path from the base tree.
    sha: Option<String>,
}

#[derive(Serialize)]
struct NewTree {
    #[serde(skip_serializing_if = "Option::is_none")]
    base_tree: Option<String>,
    tree: Vec<NewTreeEntry>,
}

#[derive(Serialize)]
struct NewCommit<'a> {
    message: &'a str,
    tree: &'a str,
    parents: Vec<String>,
}

#[derive(Serialize)]
struct NewRef<'a> {
    #[serde(rename = "ref")]
    name: String,
    sha: &'a str,
}

#[derive(Serialize)]
struct UpdateRef<'a> {
    sha: &'a str,
    force: bool,
}

/// An API call that failed: the HTTP status (when GitHub answered) and text.
fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("HTTP {}: {}", source.status_code.as_u16(), source.message)
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    }
}

/// Publishes `site_dir` to `cfg.branch` of `cfg.repository` in one commit.
pub fn publish(site_dir: &Path, cfg: &PublishConfig, token: &Secret) -> Result<PublishOutcome> {
    let (files, manifest) = site_files(site_dir)?;
    let Some((owner, name)) = cfg.repository.split_once('/') else {
        bail!(
            "publish: repository `{}` is not `owner/name`",
            cfg.repository
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the publish runtime")?;
    runtime.block_on(Publisher::run(Publisher {
        cfg,
        owner,
        name,
        token,
        files,
        manifest,
    }))
}

struct Publisher<'a> {
    cfg: &'a PublishConfig,
    owner: &'a str,
    name: &'a str,
    token: &'a Secret,
    files: Vec<SiteFile>,
    manifest: Option<Manifest>,
}

impl Publisher<'_> {
    fn repo_path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.name)
    }

    async fn run(self) -> Result<PublishOutcome> {
        let cfg = self.cfg;
        let destination = format!(
            "{}@{}{}",
            cfg.repository,
            cfg.branch,
            if prefix(&cfg.folder).is_empty() {
                String::new()
            } else {
                format!(":{}", cfg.folder.trim_matches('/'))
            }
        );
        let gh = octocrab::OctocrabBuilder::new()
            .base_uri(cfg.api_url.as_str())
            .map_err(|e| {
                anyhow!(
                    "publish: GITHUB_API_URL `{}`: {}",
                    cfg.api_url,
                    describe(&e)
                )
            })?
            .personal_token(self.token.expose().to_string())
            .set_connect_timeout(Some(std::time::Duration::from_secs(30)))
            .set_read_timeout(Some(std::time::Duration::from_secs(600)))
            .set_write_timeout(Some(std::time::Duration::from_secs(600)))
            .build()
            .map_err(|e| anyhow!("publish: building the GitHub client: {}", describe(&e)))?;
        let at = |what: &str| format!("publish to {destination}: {what}");

        let repo: Repository =
            gh.get(self.repo_path(), None::<&()>)
                .await
                .map_err(|e| match status_of(&e) {
                    Some(401) => anyhow!(
                        "{}: the token was refused (HTTP 401); check github-token",
                        at("reading the repository")
                    ),
                    Some(404) => anyhow!(
                        "{}: repository not found, or the token cannot see it (HTTP 404)",
                        at("reading the repository")
                    ),
                    _ => anyhow!("{}: {}", at("reading the repository"), describe(&e)),
                })?;
        if let Some(p) = &repo.permissions
            && !p.push
        {
            bail!(
                "{}: the token can read {} but not push to it; give the job \
                 `permissions: contents: write`, or use a token with write access",
                at("checking permissions"),
                cfg.repository
            );
        }

        let pre = prefix(&cfg.folder);
        // Local blob ids, computed once.
        let mut local: Vec<(String, SiteFile, String)> = Vec::new();
        for f in &self.files {
            if f.rel == "manifest.json" && self.manifest.is_some() {
                continue; // merged per attempt
            }
            let content =
                std::fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
            local.push((format!("{pre}{}", f.rel), f.clone(), git_blob_sha(&content)));
        }
        let mut uploaded: BTreeSet<String> = BTreeSet::new();
        let mut retries = 0;
        for attempt in 1..=cfg.max_attempts.max(1) {
            let head = self
                .head(&gh)
                .await
                .map_err(|e| anyhow!("{}: {e}", at("reading the branch")))?;
            let (base_tree, existing) = match &head {
                Some(commit) => {
                    let c: Commit = gh
                        .get(
                            format!("{}/git/commits/{commit}", self.repo_path()),
                            None::<&()>,
                        )
                        .await
                        .map_err(|e| {
                            anyhow!("{}: {}", at("reading the head commit"), describe(&e))
                        })?;
                    let tree: Tree = gh
                        .get(
                            format!("{}/git/trees/{}?recursive=1", self.repo_path(), c.tree.sha),
                            None::<&()>,
                        )
                        .await
                        .map_err(|e| {
                            anyhow!("{}: {}", at("reading the branch's tree"), describe(&e))
                        })?;
                    let mut map = BTreeMap::new();
                    if !tree.truncated {
                        for item in tree.tree.into_iter().filter(|i| i.kind == "blob") {
                            map.insert(item.path, item.sha);
                        }
                    }
                    (Some(c.tree.sha), map)
                }
                None => (None, BTreeMap::new()),
            };

            // The manifest, merged with the published one.
            let mut wanted: Vec<(String, String, Option<Vec<u8>>)> = local
                .iter()
                .map(|(path, _, sha)| (path.clone(), sha.clone(), None))
                .collect();
            let mut removed = Vec::new();
            if let Some(m) = &self.manifest {
                let manifest_path = format!("{pre}manifest.json");
                let base = match existing.get(&manifest_path) {
                    Some(sha) => self.read_manifest(&gh, sha).await,
                    None => None,
                };
                let (merged, stale) = merge_manifest(m, base.as_ref(), |p| {
                    existing.contains_key(&format!("{pre}{p}"))
                });
                removed = stale.into_iter().map(|p| format!("{pre}{p}")).collect();
                let bytes = merged.to_json().into_bytes();
                wanted.push((manifest_path, git_blob_sha(&bytes), Some(bytes)));
            }

            let mut entries = Vec::new();
            let mut changed = Vec::new();
            for (path, sha, content) in &wanted {
                if existing.get(path) == Some(sha) {
                    continue;
                }
                if !uploaded.contains(sha) {
                    let content = match content {
                        Some(c) => c.clone(),
                        None => {
                            let f = &local
                                .iter()
                                .find(|(p, _, _)| p == path)
                                .ok_or_else(|| anyhow!("internal: {path} not in the site"))?
                                .1;
                            std::fs::read(&f.path)
                                .with_context(|| format!("reading {}", f.path.display()))?
                        }
                    };
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
                    let blob: Sha = gh
                        .post(
                            format!("{}/git/blobs", self.repo_path()),
                            Some(&NewBlob {
                                content: &encoded,
                                encoding: "base64",
                            }),
                        )
                        .await
                        .map_err(|e| {
                            anyhow!("{}: {}", at(&format!("uploading {path}")), describe(&e))
                        })?;
                    if &blob.sha != sha {
                        bail!(
                            "{}: the API stored {path} as {} but its content hashes to {sha}",
                            at("uploading"),
                            blob.sha
                        );
                    }
                    uploaded.insert(sha.clone());
                }
                changed.push(path.clone());
                entries.push(NewTreeEntry {
                    path: path.clone(),
                    mode: "100644",
                    kind: "blob",
                    sha: Some(sha.clone()),
                });
            }
            let removed: Vec<String> = removed
                .into_iter()
                .filter(|p| existing.contains_key(p))
                .collect();
            for path in &removed {
                entries.push(NewTreeEntry {
                    path: path.clone(),
                    mode: "100644",
                    kind: "blob",
                    sha: None,
                });
            }
            let url = self.pages_url(&gh, repo.html_url.as_deref()).await;
            if head.is_some() && entries.is_empty() {
                return Ok(PublishOutcome {
                    skipped: true,
                    destination,
                    url,
                    retries,
                    ..Default::default()
                });
            }
            let tree: Sha = gh
                .post(
                    format!("{}/git/trees", self.repo_path()),
                    Some(&NewTree {
                        base_tree: base_tree.clone(),
                        tree: entries,
                    }),
                )
                .await
                .map_err(|e| anyhow!("{}: {}", at("creating the tree"), describe(&e)))?;
            if base_tree.as_deref() == Some(tree.sha.as_str()) {
                return Ok(PublishOutcome {
                    skipped: true,
                    destination,
                    url,
                    retries,
                    ..Default::default()
                });
            }
            // `keep` and the first step of `single`: a commit on top of the
            // head, so the ref update is a fast-forward the API refuses if the
            // branch moved meanwhile (then we rebuild on the new head).
            let parents = head.iter().cloned().collect::<Vec<_>>();
            let commit = self
                .commit(&gh, &tree.sha, parents)
                .await
                .map_err(|e| anyhow!("{}: {e}", at("creating the commit")))?;
            let moved = match &head {
                None => {
                    // `single` starts the branch parentless; so does `keep` (no head).
                    let created: Result<serde_json::Value, _> = gh
                        .post(
                            format!("{}/git/refs", self.repo_path()),
                            Some(&NewRef {
                                name: format!("refs/heads/{}", cfg.branch),
                                sha: &commit,
                            }),
                        )
                        .await;
                    match created {
                        Ok(_) => false,
                        // Someone created the branch meanwhile: rebuild on it.
                        Err(e) if matches!(status_of(&e), Some(409 | 422)) => true,
                        Err(e) => bail!("{}: {}", at("creating the branch"), describe(&e)),
                    }
                }
                Some(_) => match self.update_ref(&gh, &commit, false).await {
                    Ok(()) => false,
                    // Not a fast-forward: the branch moved under us.
                    Err(e) if matches!(status_of(&e), Some(409 | 422)) => true,
                    Err(e) => bail!("{}: {}", at("updating the branch"), describe(&e)),
                },
            };
            if moved {
                retries += 1;
                tracing::warn!(
                    "publish to {destination}: the branch moved during publish (attempt {attempt}); rebuilding on the new head"
                );
                continue;
            }
            let mut commit = commit;
            if cfg.history == History::Single && head.is_some() {
                // Now that our tree is safely on the branch, replace its
                // history with one parentless commit of the same tree.
                let single = self
                    .commit(&gh, &tree.sha, Vec::new())
                    .await
                    .map_err(|e| anyhow!("{}: {e}", at("creating the commit")))?;
                self.update_ref(&gh, &single, true).await.map_err(|e| {
                    anyhow!("{}: {}", at("replacing the branch history"), describe(&e))
                })?;
                commit = single;
            }
            return Ok(PublishOutcome {
                commit_sha: Some(commit),
                files: changed,
                deleted: removed,
                url,
                skipped: false,
                destination,
                retries,
            });
        }
        bail!(
            "{}: the branch kept moving; gave up after {} attempts (is another job publishing? \
             give the workflows one concurrency group)",
            at("updating the branch"),
            cfg.max_attempts
        )
    }

    /// Creates a commit of `tree` with `parents`; its sha.
    async fn commit(
        &self,
        gh: &octocrab::Octocrab,
        tree: &str,
        parents: Vec<String>,
    ) -> Result<String> {
        let commit: Sha = gh
            .post(
                format!("{}/git/commits", self.repo_path()),
                Some(&NewCommit {
                    message: &self.cfg.message,
                    tree,
                    parents,
                }),
            )
            .await
            .map_err(|e| anyhow!(describe(&e)))?;
        Ok(commit.sha)
    }

    /// Points the branch at `sha` (a fast-forward unless `force`).
    async fn update_ref(
        &self,
        gh: &octocrab::Octocrab,
        sha: &str,
        force: bool,
    ) -> std::result::Result<(), octocrab::Error> {
        let _: serde_json::Value = gh
            .patch(
                format!("{}/git/refs/heads/{}", self.repo_path(), self.cfg.branch),
                Some(&UpdateRef { sha, force }),
            )
            .await?;
        Ok(())
    }

    /// The branch's head commit, `None` when the branch does not exist.
    async fn head(&self, gh: &octocrab::Octocrab) -> Result<Option<String>> {
        let r: Result<RefObject, _> = gh
            .get(
                format!("{}/git/ref/heads/{}", self.repo_path(), self.cfg.branch),
                None::<&()>,
            )
            .await;
        match r {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(None),
            Err(e) => Err(anyhow!(describe(&e))),
        }
    }

    /// The published manifest, or `None` (with a warning) when unreadable.
    async fn read_manifest(&self, gh: &octocrab::Octocrab, sha: &str) -> Option<Manifest> {
        let blob: Blob = match gh
            .get(format!("{}/git/blobs/{sha}", self.repo_path()), None::<&()>)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    "publish: reading the published manifest.json: {}",
                    describe(&e)
                );
                return None;
            }
        };
        let bytes = if blob.encoding == "base64" {
            let clean: String = blob.content.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .ok()?
        } else {
            blob.content.into_bytes()
        };
        match Manifest::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(
                    "publish: the published manifest.json is not readable ({e:#}); files it listed are not kept"
                );
                None
            }
        }
    }

    /// The GitHub Pages address: from the Pages API, else (on github.com)
    /// `https://OWNER.github.io/NAME/`, plus the folder.
    async fn pages_url(&self, gh: &octocrab::Octocrab, _html: Option<&str>) -> Option<String> {
        let pages: Result<Pages, _> = gh
            .get(format!("{}/pages", self.repo_path()), None::<&()>)
            .await;
        let base = match pages {
            Ok(Pages {
                html_url: Some(url),
            }) => url,
            _ if self.cfg.api_url.trim_end_matches('/') == "https://api.github.com" => {
                let owner = self.owner.to_lowercase();
                if self.name.to_lowercase() == format!("{owner}.github.io") {
                    format!("https://{owner}.github.io/")
                } else {
                    format!("https://{owner}.github.io/{}/", self.name)
                }
            }
            _ => return None,
        };
        let base = if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        };
        Some(format!("{base}{}", prefix(&self.cfg.folder)))
    }
}
