//! The site of a run: export the datasets the mode writes into a staging
//! folder, let the dashboard render next to them, then publish — to a branch
//! through the GitHub API, and/or to a local folder (`--site-dir`).
//!
//! Which modes do what (README, "Modes"): `ci` exports every dataset only when
//! given a site folder (and everything passed) and never publishes to GitHub; `intraday` exports the
//! datasets marked for it; `backfill` exports and publishes only when every
//! model built and every test passed; `import` exports everything from the
//! tables the target holds. An `intraday` run that took no new file and
//! changed no incremental model exports and publishes nothing: the site
//! already shows what the warehouse holds.
//!
//! Before exporting, the site already published is asked what it holds
//! (the `--site-dir` folder's `manifest.json`, the branch's through the
//! publisher): a file whose rows did not change is kept there as it is (see
//! `export`): linked into the staging folder from the `--site-dir` folder,
//! else left out of it (the branch keeps its copy).
//!
//! The site carries an empty `.nojekyll` at its root, so GitHub Pages serves
//! the files as they are instead of running Jekyll over them.

use crate::dashboard::{DashboardConfig, first_paint};
use crate::engine::Engine;
use crate::export::{self, PublishedSite};
use crate::manifest::{Manifest, ManifestFile};
use crate::mode::Mode;
use crate::plan::Plan;
use crate::project::settings::History;
use crate::publish::{self, PublishConfig, PublishOutcome};
use crate::secret::Secret;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a run's site goes (command line and action inputs; they override
/// `analytics.yml`'s `publish:`).
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    /// Write the site to this folder (the laptop flow; `--site-dir`).
    pub site_dir: Option<PathBuf>,
    /// A token that may push to the pages repository; without one nothing
    /// goes to GitHub.
    pub github_token: Option<Secret>,
    /// `owner/name` (default: `publish.repository`, else `GITHUB_REPOSITORY`).
    pub repository: Option<String>,
    /// The branch (default: `publish.branch`, else `gh-pages`).
    pub branch: Option<String>,
    /// A folder of the branch (default: `publish.folder`, else the root).
    pub folder: Option<String>,
    /// `keep` or `single` (default: `publish.history`, else `single`).
    pub history: Option<History>,
    /// The repository running the workflow (`GITHUB_REPOSITORY`): the
    /// repository when neither the options nor `publish:` name one.
    pub workflow_repository: Option<String>,
    /// The GitHub REST API base (`GITHUB_API_URL`, else api.github.com).
    pub api_url: Option<String>,
}

impl SiteOptions {
    /// The parts of the options that come from the run's environment:
    /// `GITHUB_REPOSITORY` and `GITHUB_API_URL`.
    pub fn with_env(mut self, env: &crate::environ::Env) -> SiteOptions {
        self.workflow_repository = env.non_empty("GITHUB_REPOSITORY").map(str::to_string);
        self.api_url = Some(env.github_api_url());
        self
    }
}

/// What the export and publish stages did, for the summary and outputs.
#[derive(Debug, Clone, Default)]
pub struct SiteReport {
    /// Files exported by this run.
    pub files: Vec<ManifestFile>,
    /// Of those, the files whose rows did not change: kept as published,
    /// not written again.
    pub kept: Vec<String>,
    /// Files near the size limit, unpublished sites and the like.
    pub warnings: Vec<String>,
    /// The GitHub publish, when one ran.
    pub published: Option<PublishOutcome>,
    /// The local folder written, when one was given.
    pub local: Option<PublishOutcome>,
    /// Why nothing was exported (e.g. failing tests in backfill).
    pub skipped: Option<String>,
    /// The export, dashboard or publish error that failed the run.
    pub error: Option<String>,
    /// Wall time of export + publish.
    pub seconds: f64,
}

/// A site being built: the staging folder, the manifest once exported, and
/// the report. Each step runs only while the previous ones succeeded.
pub struct SiteRun {
    /// The staging folder: `manifest.json`, `data/`, and the dashboard's files.
    pub dir: PathBuf,
    /// The manifest written by the export.
    pub manifest: Option<Manifest>,
    /// What happened so far.
    pub report: SiteReport,
    started: Instant,
    /// Published files copied into staging for the dashboard only.
    borrowed: Vec<String>,
    /// `manifest.json` lists the whole site, not the export's files.
    view_written: bool,
}

/// What the run before the site did, as far as the site cares.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunActivity {
    /// A model failed or a test failed.
    pub failed: bool,
    /// Sources that ran in this mode.
    pub sources: usize,
    /// New files those sources took.
    pub files_taken: usize,
    /// Rows incremental models wrote (a table model only recomputes its
    /// inputs, so it changes nothing when they did not change).
    pub incremental_rows: u64,
}

impl RunActivity {
    /// Why an intraday run has nothing to export: its sources took no file
    /// and no incremental model wrote a row. A project without sources in the
    /// mode always exports (nothing tells whether its data changed).
    fn nothing_new(&self) -> Option<String> {
        (self.sources > 0 && self.files_taken == 0 && self.incremental_rows == 0).then(|| {
            format!(
                "nothing new: {} source{} took no new file and no incremental model wrote a row, \
                 so the published site is current",
                self.sources,
                if self.sources == 1 { "" } else { "s" }
            )
        })
    }
}

impl SiteRun {
    /// Decides whether this run builds a site; `None` when it has nothing to
    /// do (no exports declared, or `ci` without a site folder).
    pub fn start(
        plan: &Plan,
        mode: Mode,
        options: &SiteOptions,
        activity: &RunActivity,
    ) -> Option<SiteRun> {
        if plan.project.settings.exports.is_empty() {
            return None;
        }
        if mode == Mode::Ci && options.site_dir.is_none() {
            return None;
        }
        let mut run = SiteRun {
            dir: staging_dir(plan),
            manifest: None,
            report: SiteReport::default(),
            started: Instant::now(),
            borrowed: Vec::new(),
            view_written: false,
        };
        if matches!(mode, Mode::Backfill | Mode::Ci) && activity.failed {
            run.report.skipped =
                Some("a model failed or a test failed: nothing exported or published".into());
        } else if export::datasets_for(plan, mode).is_empty() {
            run.report.skipped = Some(format!(
                "no dataset is exported in `{}` mode (see `modes:` in analytics.yml exports)",
                mode.name()
            ));
        } else if mode == Mode::Intraday
            && let Some(why) = activity.nothing_new()
        {
            tracing::info!("export and publish skipped: {why}");
            run.report.skipped = Some(why);
        }
        Some(run)
    }

    fn active(&self) -> bool {
        self.report.skipped.is_none() && self.report.error.is_none()
    }

    fn fail(&mut self, what: &str, err: anyhow::Error) {
        let message = format!("{what}: {err:#}");
        tracing::error!("{message}");
        self.report.error = Some(message);
    }

    /// Exports the mode's datasets into the staging folder; files the
    /// published site holds with the same rows are kept there.
    pub fn export(&mut self, engine: &Engine, plan: &Plan, mode: Mode, options: &SiteOptions) {
        if !self.active() {
            return;
        }
        let previous = published_site(plan, mode, options);
        let result = (|| -> Result<(Manifest, Vec<String>)> {
            // The staging folder is rebuilt: no longer one to publish again.
            let marker = publishing_marker(&self.dir);
            if marker.exists() {
                std::fs::remove_file(&marker)
                    .with_context(|| format!("removing {}", marker.display()))?;
            }
            if self.dir.exists() {
                std::fs::remove_dir_all(&self.dir)?;
            }
            std::fs::create_dir_all(&self.dir)?;
            let (manifest, kept) =
                export::export_site(engine, plan, mode, &self.dir, previous.as_ref())?;
            let nojekyll = self.dir.join(".nojekyll");
            std::fs::write(&nojekyll, b"")
                .with_context(|| format!("writing {}", nojekyll.display()))?;
            Ok((manifest, kept))
        })();
        match result {
            Ok((m, kept)) => {
                self.report.files = m.files.clone();
                self.report.kept = kept;
                self.report.warnings.extend(m.warnings.clone());
                self.manifest = Some(m);
            }
            Err(e) => return self.fail("export", e),
        }
        if let Some(previous) = &previous
            && let Err(e) = self.stage_site_view(plan, options, previous)
        {
            let w = format!(
                "no first-paint summary: the published files of the opening view could not be read: {e:#}"
            );
            tracing::warn!("{w}");
            self.report.warnings.push(w);
        }
    }

    /// Makes the staging folder show the dashboard the site as it will be
    /// once published: the files this run exported plus the published files
    /// it keeps and those of datasets it did not export. The dashboard's
    /// first-paint summary is computed from that site (else a backfill that
    /// does not export the intraday dataset, or a publish keeping unchanged
    /// files on a branch, would give a summary of another view, or none).
    /// `manifest.json` lists that site until [`SiteRun::publish`] puts the
    /// export's own list back (with the summary); the opening view's files
    /// that are not in staging are borrowed — linked from the `--site-dir`
    /// folder, else copied from the branch (only those) — and removed
    /// again before publishing.
    fn stage_site_view(
        &mut self,
        plan: &Plan,
        options: &SiteOptions,
        previous: &PublishedSite,
    ) -> Result<()> {
        let Some(manifest) = &self.manifest else {
            return Ok(());
        };
        let (view, _) = publish::merge_manifest(manifest, Some(&previous.manifest), |_| true);
        if view.files.len() > manifest.files.len() {
            let path = self.dir.join("manifest.json");
            std::fs::write(&path, view.to_json())
                .with_context(|| format!("writing {}", path.display()))?;
            self.view_written = true;
        }
        let Ok(config) = DashboardConfig::from_settings(&plan.project.settings) else {
            return Ok(());
        };
        let needed: Vec<String> = first_paint::inputs(&config, &view)?
            .into_iter()
            .filter(|p| !self.dir.join(p).is_file())
            .collect();
        if needed.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // Borrowed files are removed before publishing, even half fetched.
        self.borrowed = needed.clone();
        let mut bytes = 0u64;
        if let Some(dir) = &previous.dir {
            for path in &needed {
                let (from, to) = (dir.join(path), self.dir.join(path));
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).with_context(|| {
                        format!("copying {} to {}", from.display(), to.display())
                    })?;
                }
            }
        } else if let (Some(token), Some(repository)) =
            (&options.github_token, repository(plan, options))
        {
            let cfg = github_config(plan, options, &repository);
            bytes = publish::fetch_from_branch(&cfg, token, &needed, &self.dir)?;
            for path in &needed {
                let listed = view.files.iter().find(|f| &f.path == path);
                let (_, sha256) = crate::hash::hash_file(&self.dir.join(path))?;
                if listed.map(|f| f.sha256.as_str()) != Some(sha256.as_str()) {
                    anyhow::bail!("{path} on the branch is not the file manifest.json lists");
                }
            }
        }
        tracing::info!(
            "first paint: {} published files of the opening view read from {} ({:.2} MB) in {:.2}s",
            needed.len(),
            if previous.dir.is_some() {
                "the site folder"
            } else {
                "the branch"
            },
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Undoes [`SiteRun::stage_site_view`] before publishing: the borrowed
    /// files leave the staging folder (publish must not write back a
    /// published file it did not export), and `manifest.json` lists the
    /// export's files again, with the summary the dashboard wrote.
    fn unstage_site_view(&mut self) -> Result<()> {
        for path in std::mem::take(&mut self.borrowed) {
            let file = self.dir.join(&path);
            if file.exists() {
                std::fs::remove_file(&file)
                    .with_context(|| format!("removing {}", file.display()))?;
            }
        }
        if std::mem::take(&mut self.view_written)
            && let Some(manifest) = &self.manifest
        {
            let path = self.dir.join("manifest.json");
            let rendered = Manifest::load(&path)?;
            let restored = Manifest {
                summary: rendered.summary,
                ..manifest.clone()
            };
            std::fs::write(&path, restored.to_json())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Runs one more step on the exported site (the dashboard renderer):
    /// `f(site_dir, manifest)`; an error fails the run and stops publishing.
    pub fn step(&mut self, what: &str, f: impl FnOnce(&Path, &Manifest) -> Result<()>) {
        if !self.active() {
            return;
        }
        let Some(manifest) = self.manifest.clone() else {
            return;
        };
        if let Err(e) = f(&self.dir, &manifest) {
            self.fail(what, e);
        }
    }

    /// Publishes the staging folder: to `--site-dir` when given, and to GitHub
    /// when a token and a repository are known (never in `ci` mode).
    pub fn publish(&mut self, plan: &Plan, mode: Mode, options: &SiteOptions) {
        if let Err(e) = self.unstage_site_view() {
            self.fail("preparing the site to publish", e);
        }
        if !self.active() || self.manifest.is_none() {
            self.report.seconds = self.started.elapsed().as_secs_f64();
            return;
        }
        if let Some(dest) = site_dir(options) {
            // Named in a marker until the folder holds the whole site: a
            // publish killed or failed half-way is finished by the next run,
            // even one that takes no new file (`finish_interrupted_publish`).
            let marker = publishing_marker(&self.dir);
            let written = std::fs::write(&marker, dest.to_string_lossy().as_bytes())
                .with_context(|| format!("writing {}", marker.display()))
                .and_then(|()| publish::publish_to_dir(&self.dir, &dest));
            match written {
                Ok(outcome) => {
                    let _ = std::fs::remove_file(&marker);
                    tracing::info!(
                        "site written to {}: {} files changed, {} removed",
                        dest.display(),
                        outcome.files.len(),
                        outcome.deleted.len()
                    );
                    self.report.local = Some(outcome);
                }
                Err(e) => self.fail(&format!("writing the site to {}", dest.display()), e),
            }
        }
        if mode != Mode::Ci && self.active() {
            let settings = &plan.project.settings.publish;
            let repository = repository(plan, options);
            match (&options.github_token, repository) {
                (Some(token), Some(repository)) => {
                    let mut cfg = github_config(plan, options, &repository);
                    let files = self.manifest.as_ref().map(|m| m.files.len()).unwrap_or(0);
                    cfg.message = settings.message.clone().unwrap_or_else(|| {
                        format!(
                            "analytics: publish `{}` ({}, {files} data files)",
                            plan.project.name,
                            mode.name()
                        )
                    });
                    match publish::publish(&self.dir, &cfg, token) {
                        Ok(outcome) => {
                            match &outcome.commit_sha {
                                Some(sha) => tracing::info!(
                                    "published {} files to {} in commit {sha}",
                                    outcome.files.len(),
                                    outcome.destination
                                ),
                                None => tracing::info!(
                                    "{}: nothing changed, no commit",
                                    outcome.destination
                                ),
                            }
                            self.report.published = Some(outcome);
                        }
                        Err(e) => self.fail("publish", e),
                    }
                }
                (token, repository) if options.site_dir.is_none() => {
                    let missing = if token.is_none() {
                        "no GitHub token (github-token input or GITHUB_TOKEN)"
                    } else if repository.is_none() {
                        "no repository (pages-repository, publish.repository or GITHUB_REPOSITORY)"
                    } else {
                        "nothing to publish"
                    };
                    let w = format!(
                        "the site was exported to {} but not published: {missing}; \
                         pass --site-dir DIR to write it to a folder",
                        self.dir.display()
                    );
                    tracing::warn!("{w}");
                    self.report.warnings.push(w);
                }
                _ => {}
            }
        }
        self.report.seconds = self.started.elapsed().as_secs_f64();
    }
}

/// Where a run stages its site before publishing it.
fn staging_dir(plan: &Plan) -> PathBuf {
    plan.project.root.join("target").join("site-staging")
}

/// The file next to the staging folder `staging` that names the
/// `--site-dir` folder a publish is writing, while it does.
fn publishing_marker(staging: &Path) -> PathBuf {
    staging.with_file_name("site-staging.publishing")
}

/// Finishes a publish to the `--site-dir` folder that an earlier run began
/// and did not finish (killed, or failed half-way, leaving the folder with
/// some new files and an older `manifest.json`): the staging folder that
/// run built, complete since its publish had begun, is written to the
/// folder again (unchanged files are not rewritten). `None` when no publish
/// to this folder was left unfinished. An intraday run that took no new
/// file calls it, so the site does not wait for the next file to heal.
pub fn finish_interrupted_publish(plan: &Plan, options: &SiteOptions) -> Option<SiteReport> {
    let dest = site_dir(options)?;
    let staging = staging_dir(plan);
    let marker = publishing_marker(&staging);
    let named = std::fs::read_to_string(&marker).ok()?;
    if Path::new(&named) != dest {
        return None;
    }
    let started = Instant::now();
    let mut report = SiteReport::default();
    match publish::publish_to_dir(&staging, &dest) {
        Ok(outcome) => {
            let _ = std::fs::remove_file(&marker);
            tracing::info!(
                "site written to {}: finished the publish an earlier run left unfinished, \
                 {} files changed, {} removed",
                dest.display(),
                outcome.files.len(),
                outcome.deleted.len()
            );
            if let Ok(m) = Manifest::load(&staging.join("manifest.json")) {
                report.files = m.files;
            }
            report.local = Some(outcome);
        }
        Err(e) => {
            let message = format!(
                "finishing the publish to {} an earlier run left unfinished: {e:#}",
                dest.display()
            );
            tracing::error!("{message}");
            report.error = Some(message);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Some(report)
}

/// The `--site-dir` folder, absolute.
fn site_dir(options: &SiteOptions) -> Option<PathBuf> {
    options.site_dir.as_ref().map(|dest| {
        if dest.is_absolute() {
            dest.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(dest)
        }
    })
}

/// The repository a publish goes to: the options, `publish.repository`,
/// else the workflow's.
fn repository(plan: &Plan, options: &SiteOptions) -> Option<String> {
    options
        .repository
        .clone()
        .or_else(|| plan.project.settings.publish.repository.clone())
        .or_else(|| options.workflow_repository.clone())
}

/// The GitHub publish settings: the options over `analytics.yml`'s
/// `publish:` (the commit message is set by the caller).
fn github_config(plan: &Plan, options: &SiteOptions, repository: &str) -> PublishConfig {
    let settings = &plan.project.settings.publish;
    let mut cfg = PublishConfig::new(repository);
    if let Some(api) = &options.api_url {
        cfg.api_url = api.clone();
    }
    if let Some(b) = options.branch.clone().or_else(|| settings.branch.clone()) {
        cfg.branch = b;
    }
    if let Some(f) = options.folder.clone().or_else(|| settings.folder.clone()) {
        cfg.folder = f;
    }
    cfg.history = options.history.or(settings.history).unwrap_or_default();
    cfg
}

/// What every destination of this run already holds: the files listed
/// alike (path, sha256, fingerprint) by the `--site-dir` folder and the
/// branch, when both are written (the folder then provides the kept files'
/// bytes). `None` (export everything) when a destination has no manifest or
/// cannot be read.
fn published_site(plan: &Plan, mode: Mode, options: &SiteOptions) -> Option<PublishedSite> {
    let mut sites: Vec<publish::Published> = Vec::new();
    let dir = site_dir(options);
    if let Some(dest) = &dir {
        sites.push(publish::published_in_dir(dest)?);
    }
    if mode != Mode::Ci
        && let (Some(token), Some(repository)) = (&options.github_token, repository(plan, options))
    {
        let cfg = github_config(plan, options, &repository);
        match publish::published_on_branch(&cfg, token) {
            Ok(Some(m)) => sites.push(m),
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(
                    "reading the published site to keep unchanged files: {e:#}; every file is exported"
                );
                return None;
            }
        }
    }
    let mut sites = sites.into_iter();
    let publish::Published {
        mut manifest,
        mut missing,
    } = sites.next()?;
    for other in sites {
        // A file one destination holds and the other does not hold alike
        // is written again, for both.
        let (same, differ): (Vec<_>, Vec<_>) =
            manifest.files.into_iter().partition(|f| {
                other.manifest.files.iter().any(|o| {
                    o.path == f.path && o.sha256 == f.sha256 && o.fingerprint == f.fingerprint
                })
            });
        missing.extend(
            other
                .manifest
                .files
                .into_iter()
                .filter(|o| !same.iter().any(|f| f.path == o.path)),
        );
        manifest.files = same;
        missing.extend(differ);
        missing.extend(other.missing);
    }
    Some(PublishedSite {
        manifest,
        missing,
        dir,
    })
}
