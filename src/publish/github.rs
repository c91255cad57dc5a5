//! Publishing through the GitHub Git Data API: blobs, a tree on top of the
//! branch's tree, a commit, a ref update — retried on a new head when the
//! branch moves meanwhile.

use super::wire::*;
use super::{
    PagesStatus, PublishConfig, PublishOutcome, Published, SiteFile, kept_file_missing, kept_files,
    merge_manifest, prefix, site_files,
};
use crate::manifest::Manifest;
use crate::project::settings::History;
use crate::secret::Secret;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use sha1::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The git blob id of `content` (what the API returns for it), so unchanged
/// files are recognised without uploading them.
pub fn git_blob_sha(content: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    crate::hash::hex(&h.finalize())
}

/// An API call that failed: the HTTP status (when GitHub answered) and text.
fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// A failed API call after its retries: the last error and how many
/// attempts were made (more than one when GitHub kept answering 5xx/429).
#[derive(Debug)]
struct ApiError {
    source: octocrab::Error,
    attempts: u32,
}

impl ApiError {
    fn status(&self) -> Option<u16> {
        status_of(&self.source)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", describe(&self.source))?;
        if self.attempts > 1 {
            write!(f, " (gave up after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

/// Whether GitHub asked to try again later: a server error or 429.
fn transient(e: &octocrab::Error) -> bool {
    status_of(e).is_some_and(|s| s == 429 || (500..600).contains(&s))
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

/// `cfg.repository` as `(owner, name)`, and a runtime for the API calls.
fn repository_and_runtime(cfg: &PublishConfig) -> Result<((&str, &str), tokio::runtime::Runtime)> {
    let Some(repo) = cfg.repository.split_once('/') else {
        bail!(
            "publish: repository `{}` is not `owner/name`",
            cfg.repository
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the publish runtime")?;
    Ok((repo, runtime))
}

/// Publishes `site_dir` to `cfg.branch` of `cfg.repository` in one commit.
pub fn publish(site_dir: &Path, cfg: &PublishConfig, token: &Secret) -> Result<PublishOutcome> {
    let (files, manifest) = site_files(site_dir)?;
    let ((owner, name), runtime) = repository_and_runtime(cfg)?;
    runtime.block_on(Publisher::run(Publisher {
        cfg,
        owner,
        name,
        token,
        files,
        manifest,
    }))
}

/// The site published on `cfg.branch` (in `cfg.folder`): its manifest
/// holding only the files the branch still has (what an export may keep),
/// and those it lacks. `None` when the branch or its manifest does not
/// exist.
pub fn published_on_branch(cfg: &PublishConfig, token: &Secret) -> Result<Option<Published>> {
    let ((owner, name), runtime) = repository_and_runtime(cfg)?;
    let publisher = Publisher {
        cfg,
        owner,
        name,
        token,
        files: Vec::new(),
        manifest: None,
    };
    runtime.block_on(async {
        let gh = publisher.client()?;
        let existing = publisher.files_on_branch(&gh).await?;
        let pre = prefix(&cfg.folder);
        let Some(sha) = existing.get(&format!("{pre}manifest.json")) else {
            return Ok(None);
        };
        let Some(manifest) = publisher.read_manifest(&gh, sha).await else {
            return Ok(None);
        };
        Ok(Some(Published::new(manifest, |f| {
            existing.contains_key(&format!("{pre}{}", f.path))
        })))
    })
}

/// Copies the files `paths` (site paths, as the manifest lists them) from
/// `cfg.branch` (in `cfg.folder`) into `dest`, each checked against the
/// branch's blob id: the files an export kept on the branch that a later
/// step (the dashboard's first-paint summary) must read. Returns the bytes
/// fetched.
pub fn fetch_from_branch(
    cfg: &PublishConfig,
    token: &Secret,
    paths: &[String],
    dest: &Path,
) -> Result<u64> {
    let ((owner, name), runtime) = repository_and_runtime(cfg)?;
    let publisher = Publisher {
        cfg,
        owner,
        name,
        token,
        files: Vec::new(),
        manifest: None,
    };
    runtime.block_on(async {
        let gh = publisher.client()?;
        let existing = publisher.files_on_branch(&gh).await?;
        let pre = prefix(&cfg.folder);
        let mut fetched = 0u64;
        for path in paths {
            let what = format!("reading {path} from the branch");
            let sha = existing
                .get(&format!("{pre}{path}"))
                .ok_or_else(|| anyhow!("{}: the branch does not hold it", publisher.at(&what)))?;
            let bytes = publisher
                .read_blob(&gh, sha, &what)
                .await
                .map_err(|e| anyhow!("{}: {e}", publisher.at(&what)))?;
            if &git_blob_sha(&bytes) != sha {
                bail!(
                    "{}: the API returned content that does not hash to blob {sha}",
                    publisher.at(&what)
                );
            }
            let target = dest.join(path);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&target, &bytes)
                .with_context(|| format!("writing {}", target.display()))?;
            fetched += bytes.len() as u64;
        }
        Ok(fetched)
    })
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

    /// `owner/name@branch[:folder]`, for messages and the outcome.
    fn destination(&self) -> String {
        let cfg = self.cfg;
        format!(
            "{}@{}{}",
            cfg.repository,
            cfg.branch,
            if prefix(&cfg.folder).is_empty() {
                String::new()
            } else {
                format!(":{}", cfg.folder.trim_matches('/'))
            }
        )
    }

    /// `publish to DEST: what` — the prefix of every error.
    fn at(&self, what: &str) -> String {
        format!("publish to {}: {what}", self.destination())
    }

    /// The API client, authenticated with the token.
    fn client(&self) -> Result<octocrab::Octocrab> {
        let cfg = self.cfg;
        octocrab::OctocrabBuilder::new()
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
            .map_err(|e| anyhow!("publish: building the GitHub client: {}", describe(&e)))
    }

    /// Runs one API call, repeating it on 5xx/429 with a doubling backoff
    /// (`retry_base`, then twice that, …) up to `max_attempts` in all. Every
    /// call of the publish is safe to repeat: blobs, trees and commits are
    /// content-addressed, and a ref change that did land answers 422 next
    /// time, which is handled as a moved branch.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> std::result::Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, octocrab::Error>>,
    {
        let attempts = self.cfg.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && attempt < attempts => {
                    let wait = self.cfg.retry_base * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(
                        "{}: {} (attempt {attempt} of {attempts}); retrying in {} ms",
                        self.at(what),
                        describe(&e),
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(ApiError {
                        source,
                        attempts: attempt,
                    });
                }
            }
        }
    }

    /// Checks that the token can see the repository and push to it.
    async fn repository(&self, gh: &octocrab::Octocrab) -> Result<()> {
        let repo: Repository = self
            .call("reading the repository", || {
                gh.get(self.repo_path(), None::<&()>)
            })
            .await
            .map_err(|e| match e.status() {
                Some(401) => anyhow!(
                    "{}: the token was refused (HTTP 401); check github-token",
                    self.at("reading the repository")
                ),
                Some(404) => anyhow!(
                    "{}: repository not found, or the token cannot see it (HTTP 404)",
                    self.at("reading the repository")
                ),
                _ => anyhow!("{}: {e}", self.at("reading the repository")),
            })?;
        if let Some(p) = &repo.permissions
            && !p.push
        {
            bail!(
                "{}: the token can read {} but not push to it; give the job \
                 `permissions: contents: write`, or use a token with write access",
                self.at("checking permissions"),
                self.cfg.repository
            );
        }
        Ok(())
    }

    /// The site's files (but a manifest, merged per attempt) at their branch
    /// path, with their git blob ids, computed once.
    fn local_blobs(&self) -> Result<Vec<(String, SiteFile, String)>> {
        let pre = prefix(&self.cfg.folder);
        let mut local = Vec::new();
        for f in &self.files {
            if f.rel == "manifest.json" && self.manifest.is_some() {
                continue; // merged per attempt
            }
            let content =
                std::fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
            // GitHub Pages reads `.nojekyll` only at the root of what it
            // serves: the branch's root, whatever the folder.
            let path = if f.rel == ".nojekyll" {
                f.rel.clone()
            } else {
                format!("{pre}{}", f.rel)
            };
            local.push((path, f.clone(), git_blob_sha(&content)));
        }
        Ok(local)
    }

    /// The blobs by path of the branch's head tree (empty when the branch
    /// does not exist yet).
    async fn files_on_branch(&self, gh: &octocrab::Octocrab) -> Result<BTreeMap<String, String>> {
        let head = self
            .head(gh)
            .await
            .map_err(|e| anyhow!("{}: {e}", self.at("reading the branch")))?;
        Ok(self.branch_tree(gh, head.as_ref()).await?.1)
    }

    /// The tree of `head`: its id and its blobs by path (empty when the
    /// branch does not exist yet).
    async fn branch_tree(
        &self,
        gh: &octocrab::Octocrab,
        head: Option<&String>,
    ) -> Result<(Option<String>, BTreeMap<String, String>)> {
        let Some(commit) = head else {
            return Ok((None, BTreeMap::new()));
        };
        let c: Commit = self
            .call("reading the head commit", || {
                gh.get(
                    format!("{}/git/commits/{commit}", self.repo_path()),
                    None::<&()>,
                )
            })
            .await
            .map_err(|e| anyhow!("{}: {e}", self.at("reading the head commit")))?;
        let tree: Tree = self
            .call("reading the branch's tree", || {
                gh.get(
                    format!("{}/git/trees/{}?recursive=1", self.repo_path(), c.tree.sha),
                    None::<&()>,
                )
            })
            .await
            .map_err(|e| anyhow!("{}: {e}", self.at("reading the branch's tree")))?;
        let mut map = BTreeMap::new();
        if !tree.truncated {
            for item in tree.tree.into_iter().filter(|i| i.kind == "blob") {
                map.insert(item.path, item.sha);
            }
        }
        Ok((Some(c.tree.sha), map))
    }

    /// The files the branch should hold after this publish (path, blob id,
    /// content when not a local file), and the stale paths to delete: the
    /// site's files plus the manifest merged with the published one.
    async fn wanted(
        &self,
        gh: &octocrab::Octocrab,
        local: &[(String, SiteFile, String)],
        existing: &BTreeMap<String, String>,
    ) -> Result<(Vec<(String, String, Option<Vec<u8>>)>, Vec<String>)> {
        let pre = prefix(&self.cfg.folder);
        let mut wanted: Vec<(String, String, Option<Vec<u8>>)> = local
            .iter()
            .map(|(path, _, sha)| (path.clone(), sha.clone(), None))
            .collect();
        let mut removed = Vec::new();
        if let Some(m) = &self.manifest {
            let manifest_path = format!("{pre}manifest.json");
            let base = match existing.get(&manifest_path) {
                Some(sha) => self.read_manifest(gh, sha).await,
                None => None,
            };
            // Files the export kept must be on the branch as it listed them
            // (another publish may have replaced them meanwhile).
            for f in kept_files(Some(m), &self.files) {
                let listed = base
                    .as_ref()
                    .and_then(|b| b.files.iter().find(|b| b.path == f.path))
                    .map(|b| b.sha256.as_str());
                if !existing.contains_key(&format!("{pre}{}", f.path))
                    || listed != Some(f.sha256.as_str())
                {
                    return Err(kept_file_missing(
                        &f.path,
                        &self.destination(),
                        "no longer holds it as listed",
                    ));
                }
            }
            let (merged, stale) = merge_manifest(m, base.as_ref(), |p| {
                existing.contains_key(&format!("{pre}{p}"))
            });
            removed = stale.into_iter().map(|p| format!("{pre}{p}")).collect();
            let bytes = merged.to_json().into_bytes();
            wanted.push((manifest_path, git_blob_sha(&bytes), Some(bytes)));
        }
        Ok((wanted, removed))
    }

    /// Uploads the blobs the branch lacks (each content once across
    /// attempts) and returns the tree entries that change, and their paths.
    async fn upload(
        &self,
        gh: &octocrab::Octocrab,
        wanted: &[(String, String, Option<Vec<u8>>)],
        local: &[(String, SiteFile, String)],
        existing: &BTreeMap<String, String>,
        uploaded: &mut BTreeSet<String>,
    ) -> Result<(Vec<NewTreeEntry>, Vec<String>)> {
        let mut entries = Vec::new();
        let mut changed = Vec::new();
        for (path, sha, content) in wanted {
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
                let what = format!("uploading {path}");
                let body = NewBlob {
                    content: &encoded,
                    encoding: "base64",
                };
                let blob: Sha = self
                    .call(&what, || {
                        gh.post(format!("{}/git/blobs", self.repo_path()), Some(&body))
                    })
                    .await
                    .map_err(|e| anyhow!("{}: {e}", self.at(&what)))?;
                if &blob.sha != sha {
                    bail!(
                        "{}: the API stored {path} as {} but its content hashes to {sha}",
                        self.at("uploading"),
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
        Ok((entries, changed))
    }

    /// Points the branch at `commit` (creating it when `head` is `None`);
    /// `true` when the branch moved meanwhile, so the publish must be rebuilt
    /// on the new head.
    async fn advance(
        &self,
        gh: &octocrab::Octocrab,
        head: Option<&String>,
        commit: &str,
    ) -> Result<bool> {
        match head {
            None => {
                // `single` starts the branch parentless; so does `keep` (no head).
                let body = NewRef {
                    name: format!("refs/heads/{}", self.cfg.branch),
                    sha: commit,
                };
                let created: std::result::Result<serde_json::Value, _> = self
                    .call("creating the branch", || {
                        gh.post(format!("{}/git/refs", self.repo_path()), Some(&body))
                    })
                    .await;
                match created {
                    Ok(_) => Ok(false),
                    // Someone created the branch meanwhile: rebuild on it.
                    Err(e) if matches!(e.status(), Some(409 | 422)) => Ok(true),
                    Err(e) => bail!("{}: {e}", self.at("creating the branch")),
                }
            }
            Some(_) => match self.update_ref(gh, commit, false).await {
                Ok(()) => Ok(false),
                // Not a fast-forward: the branch moved under us.
                Err(e) if matches!(e.status(), Some(409 | 422)) => Ok(true),
                Err(e) => bail!("{}: {e}", self.at("updating the branch")),
            },
        }
    }

    /// The whole publish: one commit on the branch, rebuilt on the new head
    /// when the branch moves meanwhile.
    async fn run(self) -> Result<PublishOutcome> {
        let cfg = self.cfg;
        let destination = self.destination();
        let gh = self.client()?;
        self.repository(&gh).await?;
        let local = self.local_blobs()?;
        let mut uploaded: BTreeSet<String> = BTreeSet::new();
        let mut retries = 0;
        for attempt in 1..=cfg.max_attempts.max(1) {
            let head = self
                .head(&gh)
                .await
                .map_err(|e| anyhow!("{}: {e}", self.at("reading the branch")))?;
            let (base_tree, existing) = self.branch_tree(&gh, head.as_ref()).await?;
            let (wanted, removed) = self.wanted(&gh, &local, &existing).await?;
            let (mut entries, changed) = self
                .upload(&gh, &wanted, &local, &existing, &mut uploaded)
                .await?;
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
            let (url, pages) = self.pages(&gh).await;
            let unchanged = PublishOutcome {
                skipped: true,
                destination: destination.clone(),
                url: url.clone(),
                retries,
                pages: pages.clone(),
                ..Default::default()
            };
            if head.is_some() && entries.is_empty() {
                return Ok(unchanged);
            }
            let body = NewTree {
                base_tree: base_tree.clone(),
                tree: entries,
            };
            let tree: Sha = self
                .call("creating the tree", || {
                    gh.post(format!("{}/git/trees", self.repo_path()), Some(&body))
                })
                .await
                .map_err(|e| anyhow!("{}: {e}", self.at("creating the tree")))?;
            if base_tree.as_deref() == Some(tree.sha.as_str()) {
                return Ok(unchanged);
            }
            // `keep` and the first step of `single`: a commit on top of the
            // head, so the ref update is a fast-forward the API refuses if the
            // branch moved meanwhile (then we rebuild on the new head).
            let parents = head.iter().cloned().collect::<Vec<_>>();
            let commit = self
                .commit(&gh, &tree.sha, parents)
                .await
                .map_err(|e| anyhow!("{}: {e}", self.at("creating the commit")))?;
            if self.advance(&gh, head.as_ref(), &commit).await? {
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
                    .map_err(|e| anyhow!("{}: {e}", self.at("creating the commit")))?;
                self.update_ref(&gh, &single, true)
                    .await
                    .map_err(|e| anyhow!("{}: {e}", self.at("replacing the branch history")))?;
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
                pages,
            });
        }
        bail!(
            "{}: the branch kept moving; gave up after {} attempts (is another job publishing? \
             give the workflows one concurrency group)",
            self.at("updating the branch"),
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
        let body = NewCommit {
            message: &self.cfg.message,
            tree,
            parents,
        };
        let commit: Sha = self
            .call("creating the commit", || {
                gh.post(format!("{}/git/commits", self.repo_path()), Some(&body))
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(commit.sha)
    }

    /// Points the branch at `sha` (a fast-forward unless `force`).
    async fn update_ref(
        &self,
        gh: &octocrab::Octocrab,
        sha: &str,
        force: bool,
    ) -> std::result::Result<(), ApiError> {
        let body = UpdateRef { sha, force };
        let _: serde_json::Value = self
            .call("updating the branch", || {
                gh.patch(
                    format!("{}/git/refs/heads/{}", self.repo_path(), self.cfg.branch),
                    Some(&body),
                )
            })
            .await?;
        Ok(())
    }

    /// The branch's head commit, `None` when the branch does not exist.
    async fn head(&self, gh: &octocrab::Octocrab) -> Result<Option<String>> {
        let r: std::result::Result<RefObject, _> = self
            .call("reading the branch", || {
                gh.get(
                    format!("{}/git/ref/heads/{}", self.repo_path(), self.cfg.branch),
                    None::<&()>,
                )
            })
            .await;
        match r {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(e) if matches!(e.status(), Some(404 | 409)) => Ok(None),
            Err(e) => Err(anyhow!("{e}")),
        }
    }

    /// The content of blob `sha` (base64 decoded).
    async fn read_blob(&self, gh: &octocrab::Octocrab, sha: &str, what: &str) -> Result<Vec<u8>> {
        let blob: Blob = self
            .call(what, || {
                gh.get(format!("{}/git/blobs/{sha}", self.repo_path()), None::<&()>)
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(if blob.encoding == "base64" {
            let clean: String = blob.content.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .context("the blob's base64 content does not decode")?
        } else {
            blob.content.into_bytes()
        })
    }

    /// The published manifest, or `None` (with a warning) when unreadable.
    async fn read_manifest(&self, gh: &octocrab::Octocrab, sha: &str) -> Option<Manifest> {
        let bytes = match self
            .read_blob(gh, sha, "reading the published manifest.json")
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("publish: reading the published manifest.json: {e:#}");
                return None;
            }
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

    /// The GitHub Pages address and whether Pages serves what is
    /// published, from the Pages API. Only when the token may not read the
    /// Pages settings is the address assumed (on github.com,
    /// `https://OWNER.github.io/NAME/` plus the folder), and said so.
    async fn pages(&self, gh: &octocrab::Octocrab) -> (Option<String>, PagesStatus) {
        let cfg = self.cfg;
        let answer: Result<serde_json::Value, _> = gh
            .get(format!("{}/pages", self.repo_path()), None::<&()>)
            .await;
        let pages = match answer {
            Ok(p) => p,
            Err(e) if status_of(&e) == Some(404) => {
                return (
                    None,
                    PagesStatus::NotEnabled {
                        branch: cfg.branch.clone(),
                    },
                );
            }
            Err(e) => {
                let why = match status_of(&e) {
                    Some(status) => format!("HTTP {status}"),
                    None => describe(&e),
                };
                tracing::warn!("publish: reading the GitHub Pages settings: {why}");
                return (self.assumed_url(), PagesStatus::Unreadable { why });
            }
        };
        match super::pages_served(&pages, &cfg.branch, &cfg.folder) {
            (None, status @ PagesStatus::Unreadable { .. }) => (self.assumed_url(), status),
            answer => answer,
        }
    }

    /// The usual Pages address on github.com (`None` elsewhere).
    fn assumed_url(&self) -> Option<String> {
        if self.cfg.api_url.trim_end_matches('/') != "https://api.github.com" {
            return None;
        }
        let owner = self.owner.to_lowercase();
        let base = if self.name.to_lowercase() == format!("{owner}.github.io") {
            format!("https://{owner}.github.io/")
        } else {
            format!("https://{owner}.github.io/{}/", self.name)
        };
        Some(super::join_url(&base, &self.cfg.folder))
    }
}
