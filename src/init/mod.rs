//! `analytics init [--from-dbt DIR]`: scaffolds what a dbt-duckdb project
//! needs to run here, next to what it already has:
//!
//! - `analytics.yml` beside `dbt_project.yml`: targets from the dbt profile
//!   (its DuckDB output; a `ci` target in memory with the same schema; an
//!   attached Iceberg catalog as `warehouse`, written with `${VAR}`
//!   placeholders, never values), a commented `sources:` skeleton, and
//!   `exports:` and `dashboard:` for the fact models it finds;
//! - the consumer workflows under `.github/workflows/` of the repository
//!   (ci on pull requests, intraday on a schedule, backfill daily, maintain
//!   weekly).
//!
//! A front-end stage: the project is built once in memory (a `ci` run) so the
//! fact models' columns can be described; nothing is written until every
//! file is known, and an existing file is never overwritten without `force`.

use crate::environ::Env;
use crate::project::Project;
use crate::project::profiles::{self, Render};
use analytics_yml::{
    describe_facts, write_dashboard, write_exports, write_header, write_sources, write_targets,
};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use workflows::{WORKFLOWS, catalog_inputs, workflow};

/// What `analytics init` was asked, resolved by the front-end.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The dbt project (holds `dbt_project.yml`); `analytics.yml` is written there.
    pub project_dir: PathBuf,
    /// The repository root `.github/workflows/` goes under; default: the Git
    /// work tree holding the project, else the project folder.
    pub repo_dir: Option<PathBuf>,
    /// dbt's `--profiles-dir`.
    pub profiles_dir: Option<PathBuf>,
    /// Overwrite files that exist.
    pub force: bool,
    /// The environment the profile's `env_var()` defaults are read against.
    pub env: Env,
}

/// The files to write and what the user should know about them.
#[derive(Debug, Clone, Default)]
pub struct Scaffold {
    /// Each file's path and text.
    pub files: Vec<(PathBuf, String)>,
    /// Things to do or check, one line each.
    pub notes: Vec<String>,
}

mod analytics_yml;
mod workflows;

/// Works out every file; writes nothing.
pub fn scaffold(opts: &InitOptions) -> Result<Scaffold> {
    let root = &opts.project_dir;
    if !root.join("dbt_project.yml").is_file() {
        bail!(
            "{} holds no dbt_project.yml: give the dbt project with --from-dbt DIR (or run \
             `analytics init` in it)",
            root.display()
        );
    }
    let project = Project::read(root)
        .with_context(|| format!("reading the dbt project in {}", root.display()))?;
    let mut notes = Vec::new();
    for u in &project.unsupported {
        notes.push(format!("to change before a run: {u}"));
    }

    let (values, placeholders) = match &project.profile {
        Some(name) => (
            profiles::load_as(
                root,
                name,
                opts.profiles_dir.as_deref(),
                &opts.env,
                Render::Values,
            )?,
            profiles::load_as(
                root,
                name,
                opts.profiles_dir.as_deref(),
                &opts.env,
                Render::Placeholders,
            )?,
        ),
        None => (None, None),
    };
    if project.profile.is_some() && values.is_none() {
        notes.push(format!(
            "no profile `{}` found (--profiles-dir, DBT_PROFILES_DIR, the project, ~/.dbt): \
             targets are the defaults",
            project.profile.as_deref().unwrap_or_default()
        ));
    }

    let repo = match &opts.repo_dir {
        Some(dir) => dir.clone(),
        None => git_root(root).unwrap_or_else(|| root.clone()),
    };
    let project_rel = relative_to(&repo, root).with_context(|| {
        format!(
            "the project {} is not inside {} (where .github/workflows/ goes)",
            root.display(),
            repo.display()
        )
    })?;
    let yml_path = root.join("analytics.yml");
    let workflow_paths: Vec<PathBuf> = WORKFLOWS
        .iter()
        .map(|kind| {
            repo.join(".github/workflows")
                .join(format!("analytics-{}.yml", kind.name()))
        })
        .collect();
    // Refused before the in-memory build, which can take minutes on a large
    // project.
    if !opts.force {
        refuse_existing(std::iter::once(&yml_path).chain(&workflow_paths))?;
    }

    let facts = describe_facts(opts, &project, &mut notes);
    let mut yml = String::new();
    write_header(&mut yml, &project);
    let warehouse = write_targets(&mut yml, values.as_ref(), placeholders.as_ref(), &mut notes);
    write_sources(&mut yml);
    write_exports(&mut yml, &facts);
    write_dashboard(&mut yml, &project, &facts);

    let inputs = catalog_inputs(&warehouse);
    let mut files = vec![(yml_path, yml)];
    for (kind, path) in WORKFLOWS.iter().zip(workflow_paths) {
        files.push((path, workflow(*kind, &project_rel, &inputs)));
    }
    Ok(Scaffold { files, notes })
}

/// Writes the scaffold: all files, or none when one exists and `force` is
/// not set (the error names every one).
pub fn write(scaffold: &Scaffold, force: bool) -> Result<()> {
    if !force {
        refuse_existing(scaffold.files.iter().map(|(p, _)| p))?;
    }
    for (path, text) in &scaffold.files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// An error naming every one of `paths` that exists, if any does.
fn refuse_existing<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
    let existing: Vec<String> = paths
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "nothing was written: these files exist ({}); pass --force to overwrite them",
            existing.join(", ")
        );
    }
    Ok(())
}

/// The Git work tree holding `dir`, if any.
fn git_root(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `path` relative to `base` (`.` when the same), `/`-separated.
fn relative_to(base: &Path, path: &Path) -> Option<String> {
    let base = std::path::absolute(base).ok()?;
    let path = std::path::absolute(path).ok()?;
    let norm = |p: &Path| -> PathBuf {
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other.as_os_str()),
            }
        }
        out
    };
    let rel = norm(&path).strip_prefix(norm(&base)).ok()?.to_path_buf();
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    Some(if text.is_empty() { ".".into() } else { text })
}
