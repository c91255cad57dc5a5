//! The pipeline: what runs in which order, for each mode. Load and parse
//! ([`Plan`]) → ingest → build models → file log → data tests → site
//! (export, dashboard, publish); `import` skips to the site and `maintain`
//! to warehouse upkeep. The stages decide the details: ingest owns the file
//! log's rule, data_tests plans the tests, site owns what each mode
//! publishes.

use crate::data_tests::{self, TestOutcome, TestStatus};
use crate::diagnostic::{Located, located};
use crate::engine::{Engine, RelationKind};
use crate::environ::Env;
use crate::ingest::{self, IngestContext, IngestRun};
use crate::mode::Mode;
use crate::plan::{Plan, PlanOptions, PlannedModel};
use crate::progress::stage;
use crate::project::Config;
use crate::site::{RunActivity, SiteOptions, SiteRun};
use crate::summary::{ModelOutcome, ModelStatus, RunReport};
use crate::templating::{FileCatalog, QueryRunner};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run and where: the settings a front-end resolved, typed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The project directory (holding `dbt_project.yml`).
    pub project_dir: PathBuf,
    /// Which of the five modes to run.
    pub mode: Mode,
    /// A target from `analytics.yml`; default: the target named like the mode,
    /// else `memory` in `ci` mode.
    pub target: Option<String>,
    /// Model selectors: `name`, `+name` (with parents), `name+` (with children).
    pub select: Vec<String>,
    /// `--vars` overrides.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// `--profiles-dir`: the folder holding dbt's `profiles.yml`.
    pub profiles_dir: Option<PathBuf>,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// Caps on new files per source that override `analytics.yml`'s `limits`
    /// (the action's `limit-*` inputs, `--limit`).
    pub limits: crate::project::settings::Limits,
    /// Where the exported site goes (`--site-dir`, the GitHub token and pages
    /// inputs).
    pub site: SiteOptions,
    /// The run's environment: the process's, with the Action's inputs laid
    /// over it as the standard variables.
    pub env: Env,
}

impl RunOptions {
    /// What the plan of this run is built from.
    pub fn plan_options(&self) -> PlanOptions<'_> {
        PlanOptions {
            project_dir: &self.project_dir,
            mode: self.mode,
            target: self.target.as_deref(),
            vars: &self.vars,
            profiles_dir: self.profiles_dir.as_deref(),
            env: &self.env,
        }
    }
}

/// Runs `opts.mode` end to end and returns the report (the caller prints it
/// and sets the exit status).
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    run_then(opts, |_, _| Ok(()))
}

/// [`run`], handing the plan and the still open session to `inspect` at the
/// end (`analytics init` describes the models a ci run built in memory).
/// Import and maintain runs, and an intraday run with nothing new, do not
/// call it.
pub fn run_then(
    opts: &RunOptions,
    inspect: impl FnOnce(&Plan, &Engine) -> Result<()>,
) -> Result<RunReport> {
    let started = Instant::now();
    if opts.mode == Mode::Import {
        return run_import(opts, started);
    }
    let plan = Plan::build(&opts.plan_options())?;
    let selected = plan.selected(&opts.select)?;
    let mut report = RunReport {
        project: plan.project.name.clone(),
        mode: opts.mode.name().to_string(),
        target: plan.target_name.clone(),
        warnings: plan.warnings.clone(),
        ..Default::default()
    };
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    let engine = Engine::open(&plan.project.root, &plan.target)?;
    if opts.mode == Mode::Maintain {
        attach_stored_models(&plan, &engine, |_| true)?;
        return maintain(&plan, &engine, report, started);
    }
    // Only the models `also_when_empty` probes before ingest; the others
    // once the run knows it has something new to build.
    let probed: BTreeSet<&str> = plan
        .project
        .settings
        .sources
        .iter()
        .filter_map(|s| s.also_when_empty.as_deref())
        .collect();
    attach_stored_models(&plan, &engine, |m| probed.contains(m.name.as_str()))?;
    let archive = plan.project.root.join(
        plan.project
            .settings
            .archive_dir
            .as_deref()
            .unwrap_or("target/archive"),
    );
    let has_sources = !plan.project.settings.sources.is_empty();
    let log = if has_sources {
        engine.read_file_log()?
    } else {
        Default::default()
    };
    let empty_models = ingest::empty_models(
        &plan.project,
        |model| plan.relations.get(model).cloned(),
        &engine,
    )?;
    stage("ingest");
    let files = ingest::ingest(
        &plan.project,
        &IngestContext {
            mode: opts.mode,
            env: &opts.env,
            archive: &archive,
            log: &log,
            empty_models: &empty_models,
            limit: opts.limits.for_mode(opts.mode),
        },
    )?;
    report.ingest = files.reports.clone();
    if let Some(why) = nothing_new(opts, &files) {
        // Decided from the file log alone, before any model, test, export or
        // catalog commit: the stored tables and the published site are
        // current, so the cycle writes nothing anywhere.
        tracing::info!("{why}");
        report.nothing_new = Some(why);
        report.duration = started.elapsed();
        return Ok(report);
    }
    attach_stored_models(&plan, &engine, |m| !probed.contains(m.name.as_str()))?;
    let files: Arc<IngestRun> = Arc::new(files);
    let runner: Arc<dyn QueryRunner> = Arc::new(engine.clone());
    let catalog: Arc<dyn FileCatalog> = files.clone();

    run_project_hooks(
        &plan,
        &engine,
        &plan.project.on_run_start,
        "on-run-start",
        &runner,
        &catalog,
    )?;

    stage("models");
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    for model in plan.models.iter().filter(|m| selected.contains(&m.name)) {
        let outcome = build_model(
            &plan,
            &engine,
            model,
            opts.full_refresh,
            &failed,
            &runner,
            &catalog,
        );
        match &outcome.status {
            ModelStatus::Error(e) => {
                tracing::error!("model `{}` failed: {e}", model.name);
                failed.insert(model.name.clone(), "failed".into());
            }
            ModelStatus::Skipped(_) => {
                failed.insert(model.name.clone(), "skipped".into());
            }
            ModelStatus::Success => tracing::info!(
                "model `{}` {} {} rows in {:.2}s",
                model.name,
                outcome.materialized,
                outcome
                    .rows
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                outcome.duration.as_secs_f64()
            ),
        }
        report.models.push(outcome);
    }

    if has_sources {
        let built: BTreeSet<String> = report
            .models
            .iter()
            .filter(|m| m.status == ModelStatus::Success)
            .map(|m| m.name.clone())
            .collect();
        let readers = plan
            .models
            .iter()
            .map(|m| (m.name.as_str(), m.ingest_sources.as_slice()));
        let done = ingest::files_done(&files, readers, &built);
        if done.len() < files.taken.len() {
            tracing::warn!(
                "{} of {} files stay out of the file log (a model reading them did not build); the next run takes them again",
                files.taken.len() - done.len(),
                files.taken.len()
            );
        }
        engine.write_file_log(&done)?;
    }

    // Intraday runs every few minutes; tests run in the daily backfill.
    stage("tests");
    let mut tests = if opts.mode == Mode::Intraday {
        Vec::new()
    } else {
        data_tests::plan_tests(&plan, &selected, &runner, &catalog)?
    };
    let built: BTreeSet<String> = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .map(|m| m.name.clone())
        .collect();
    data_tests::narrow_to_new_rows(&engine, &plan, &mut tests, &built)?;
    // A test whose model failed or was not selected is skipped; the others
    // run together (column tests of one relation share a scan).
    let blocked: Vec<Option<&String>> = tests
        .iter()
        .map(|(_, needs)| {
            needs
                .iter()
                .find(|m| failed.contains_key(*m) || !selected.contains(*m))
        })
        .collect();
    let runnable: Vec<&data_tests::TestPlan> = tests
        .iter()
        .zip(&blocked)
        .filter(|(_, b)| b.is_none())
        .map(|((t, _), _)| t)
        .collect();
    let mut ran = data_tests::run_tests(&engine, &runnable).into_iter();
    for ((test, _), blocked_by) in tests.iter().zip(blocked) {
        let outcome = match blocked_by {
            Some(m) => TestOutcome {
                name: test.name.clone(),
                model: test.model.clone(),
                status: TestStatus::Skipped(format!(
                    "model `{m}` {}",
                    failed.get(m).map(String::as_str).unwrap_or("not selected")
                )),
                failures: 0,
                sample: Default::default(),
                duration: Duration::ZERO,
                file: test.file.clone(),
                line: test.line,
                scan_shared_by: 1,
            },
            None => match ran.next() {
                Some(outcome) => outcome,
                None => data_tests::run_test(&engine, test),
            },
        };
        match &outcome.status {
            TestStatus::Fail => tracing::error!(
                "test `{}` failed: {} failing rows",
                outcome.name,
                outcome.failures
            ),
            TestStatus::Warn => tracing::warn!(
                "test `{}` warned: {} failing rows",
                outcome.name,
                outcome.failures
            ),
            TestStatus::Error(e) => tracing::error!("test `{}` could not run: {e}", outcome.name),
            _ => {}
        }
        report.tests.push(outcome);
    }

    engine.drop_new_rows(plan.models.iter().map(|m| &m.relation))?;
    run_project_hooks(
        &plan,
        &engine,
        &plan.project.on_run_end,
        "on-run-end",
        &runner,
        &catalog,
    )?;
    run_site(&plan, &engine, opts, &mut report);
    inspect(&plan, &engine)?;
    report.duration = started.elapsed();
    Ok(report)
}

/// Why an intraday run stops right after ingest: its sources took no new
/// file (the file log already holds every file listed), so no model has new
/// input and the published site is current. `None` in other modes, with
/// `--full-refresh`, when no source runs in the mode (nothing tells whether
/// the data changed), or when a file was taken.
fn nothing_new(opts: &RunOptions, files: &IngestRun) -> Option<String> {
    (opts.mode == Mode::Intraday
        && !opts.full_refresh
        && !files.reports.is_empty()
        && files.taken.is_empty())
    .then(|| {
        let n = files.reports.len();
        format!(
            "nothing new: {n} source{} took no new file, so no model, test, export or publish ran \
             (no snapshot, no commit, no file written)",
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Export → dashboard → publish (README stages 7–9), after the tests.
fn run_site(plan: &Plan, engine: &Engine, opts: &RunOptions, report: &mut RunReport) {
    stage("export, dashboard, publish");
    let incremental_rows = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success && m.materialized == "incremental")
        .filter_map(|m| m.rows)
        .sum();
    let activity = RunActivity {
        failed: report.failed(),
        sources: report.ingest.len(),
        files_taken: report.ingest.iter().map(|s| s.taken).sum(),
        incremental_rows,
    };
    let Some(mut site) = SiteRun::start(plan, opts.mode, &opts.site, &activity) else {
        return;
    };
    site.export(engine, plan, opts.mode, &opts.site);
    // The page (index.html, lineage, assets) next to manifest.json, so data,
    // manifest and site land in the same commit.
    site.step("dashboard", |dir, _manifest| {
        crate::dashboard::render_for_plan(plan, dir, None, None).map(|_| ())
    });
    site.publish(plan, opts.mode, &opts.site);
    report.site = Some(site.report);
}

/// On an Iceberg target, makes the stored models `which` picks readable by
/// name (a view streaming its table), so `ref()`, `this`, tests and exports
/// see them.
fn attach_stored_models(
    plan: &Plan,
    engine: &Engine,
    which: impl Fn(&PlannedModel) -> bool,
) -> Result<()> {
    if engine.is_warehouse() {
        for model in plan.models.iter().filter(|m| which(m)) {
            if matches!(model.config.materialized(), "table" | "incremental") {
                engine.attach_stored(&model.relation)?;
            }
        }
    }
    Ok(())
}

/// `import` mode: no ingest, no models, no tests — export the models' tables
/// as the target holds them, and publish.
fn run_import(opts: &RunOptions, started: Instant) -> Result<RunReport> {
    let plan = Plan::build(&opts.plan_options())?;
    let mut report = RunReport {
        project: plan.project.name.clone(),
        mode: opts.mode.name().to_string(),
        target: plan.target_name.clone(),
        warnings: plan.warnings.clone(),
        ..Default::default()
    };
    let engine = Engine::open(&plan.project.root, &plan.target)?;
    attach_stored_models(&plan, &engine, |_| true)?;
    run_site(&plan, &engine, opts, &mut report);
    report.duration = started.elapsed();
    Ok(report)
}

/// `maintain` mode: compaction, snapshot expiry and file cleanup for every
/// stored model and the file log.
fn maintain(
    plan: &Plan,
    engine: &Engine,
    mut report: RunReport,
    started: Instant,
) -> Result<RunReport> {
    stage("maintenance");
    let options = plan
        .project
        .settings
        .maintenance
        .clone()
        .unwrap_or_default();
    for model in &plan.models {
        if !matches!(model.config.materialized(), "table" | "incremental") {
            continue;
        }
        if let Some(done) = engine.maintain(&model.relation, &options)? {
            tracing::info!(
                "{}: compacted {} files into {}, expired {} snapshots, deleted {} unused files ({:.2} MB)",
                done.table,
                done.files_compacted,
                done.files_written,
                done.snapshots_expired,
                done.files_deleted,
                done.bytes_deleted as f64 / 1e6
            );
            report.maintenance.push(done);
        }
    }
    if let Some(done) = engine.maintain_file_log(&options)? {
        report.maintenance.push(done);
    }
    report.duration = started.elapsed();
    Ok(report)
}

/// Builds one model: render, pre-hooks, materialize, post-hooks.
fn build_model(
    plan: &Plan,
    engine: &Engine,
    model: &PlannedModel,
    full_refresh: bool,
    failed: &BTreeMap<String, String>,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> ModelOutcome {
    let started = Instant::now();
    let mut outcome = ModelOutcome {
        name: model.name.clone(),
        path: model.path.display().to_string(),
        relation: model.relation.to_string(),
        materialized: model.config.materialized().to_string(),
        status: ModelStatus::Success,
        rows: None,
        duration: Duration::ZERO,
        error_at: None,
    };
    if let Some(parent) = model.refs.iter().find(|r| failed.contains_key(*r)) {
        outcome.status = ModelStatus::Skipped(format!("upstream `{parent}` {}", failed[parent]));
        return outcome;
    }
    match try_build_model(plan, engine, model, full_refresh, runner, catalog) {
        Ok(rows) => outcome.rows = rows,
        Err(e) => {
            let message = format!("{e:#}");
            // Where the error points: a template or SQL error knows its file
            // and line; anything else points at the model file.
            outcome.error_at = Some(located(&e).cloned().unwrap_or_else(|| Located {
                file: model.path.clone(),
                line: 1,
                message: message.clone(),
            }));
            outcome.status = ModelStatus::Error(message);
        }
    }
    outcome.duration = started.elapsed();
    outcome
}

fn try_build_model(
    plan: &Plan,
    engine: &Engine,
    model: &PlannedModel,
    full_refresh: bool,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<Option<u64>> {
    let exists = if engine.is_warehouse() && model.config.materialized() == "incremental" {
        engine
            .is_stored(&model.relation)?
            .then_some(RelationKind::Table)
    } else {
        engine.relation_kind(&model.relation)?
    };
    let is_incremental = model.config.materialized() == "incremental"
        && exists == Some(RelationKind::Table)
        && !full_refresh;
    let sql = plan.render_model(
        model,
        is_incremental,
        Some(runner.clone()),
        Some(catalog.clone()),
    )?;
    let compiled = plan.compiled_path(&model.path);
    if let Some(dir) = compiled.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&compiled, &sql).with_context(|| format!("writing {}", compiled.display()))?;
    run_hooks(
        plan,
        engine,
        model,
        "pre_hook",
        is_incremental,
        runner,
        catalog,
    )?;
    let written = engine
        .materialize(&model.relation, &model.config, &sql, full_refresh)
        .map_err(|e| explain_sql_error(e, model, &compiled, &plan.project.root, &sql))?;
    run_hooks(
        plan,
        engine,
        model,
        "post_hook",
        is_incremental,
        runner,
        catalog,
    )?;
    Ok(written.rows)
}

/// Adds the file, the line of the rendered SQL and that line's text to a
/// DuckDB error, and locates it in the model's own file: the line whose
/// text is the failing rendered line (else the rendered line's number).
fn explain_sql_error(
    err: anyhow::Error,
    model: &PlannedModel,
    compiled: &Path,
    root: &Path,
    sql: &str,
) -> anyhow::Error {
    let origin = model.path.display();
    let line = err
        .downcast_ref::<crate::engine::SqlError>()
        .and_then(|e| e.line);
    let compiled = crate::project::relative(root, compiled);
    match line {
        Some(n) => {
            let text = sql
                .lines()
                .nth(n.saturating_sub(1))
                .unwrap_or_default()
                .trim();
            anyhow::Error::new(Located {
                file: model.path.clone(),
                line: source_line(&model.sql, text, n),
                message: format!(
                    "{origin}: line {n} of the rendered SQL ({}): `{text}`\n{err:#}",
                    compiled.display()
                ),
            })
        }
        None => anyhow::anyhow!("{origin} (rendered SQL in {}): {err:#}", compiled.display()),
    }
}

/// The line of a model's source holding `text` (a line of its rendered SQL):
/// the first line equal to it once trimmed, else the first containing it,
/// else `rendered_line` within the file's bounds.
fn source_line(source: &str, text: &str, rendered_line: usize) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    let found = lines
        .iter()
        .position(|l| !text.is_empty() && l.trim() == text)
        .or_else(|| {
            lines
                .iter()
                .position(|l| text.len() > 3 && l.contains(text))
        });
    match found {
        Some(i) => i + 1,
        None => rendered_line.clamp(1, lines.len().max(1)),
    }
}

/// Renders and runs a model's `pre_hook` or `post_hook` statements.
fn run_hooks(
    plan: &Plan,
    engine: &Engine,
    model: &PlannedModel,
    key: &str,
    is_incremental: bool,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<()> {
    for (i, hook) in model.config.str_list(key).iter().enumerate() {
        let ctx = plan.execute_context(
            &model.name,
            Some(model.relation.clone()),
            is_incremental,
            &model.config,
            Some(runner.clone()),
            Some(catalog.clone()),
        );
        let origin = format!("{} {key} #{}", model.path.display(), i + 1);
        let sql = plan.templater.render(&origin, hook, &ctx)?.sql;
        if sql.trim().is_empty() {
            continue;
        }
        engine
            .execute_batch(&sql)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    }
    Ok(())
}

fn run_project_hooks(
    plan: &Plan,
    engine: &Engine,
    hooks: &[String],
    what: &str,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let ctx = plan.execute_context(
            what,
            None,
            false,
            &Config::default(),
            Some(runner.clone()),
            Some(catalog.clone()),
        );
        let origin = format!("dbt_project.yml {what} #{}", i + 1);
        let sql = plan.templater.render(&origin, hook, &ctx)?.sql;
        if !sql.trim().is_empty() {
            engine
                .execute_batch(&sql)
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        }
    }
    Ok(())
}
