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
    let opening = Instant::now();
    let engine = Engine::open(&plan.project.root, &plan.target)?;
    tracing::debug!(
        "engine open (catalog connected) in {:.2}s",
        opening.elapsed().as_secs_f64()
    );
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
    let reading = Instant::now();
    let log = if has_sources {
        engine.read_file_log()?
    } else {
        Default::default()
    };
    tracing::debug!(
        "file log read: {} files in {:.2}s",
        log.done.len(),
        reading.elapsed().as_secs_f64()
    );
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
            projection: Arc::new(ingest::Projection::for_run(&plan, opts.mode)),
        },
    )?;
    report.ingest = files.reports.clone();
    report.ingest_duration = files.duration;
    if let Some(why) = nothing_new(opts, &files) {
        // Decided from the file log alone, before any model, test, export or
        // catalog commit: the stored tables and the published site are
        // current, so the cycle writes nothing anywhere.
        tracing::info!("{why}");
        report.nothing_new = Some(why);
        // …but a publish to the site folder that an earlier run left
        // unfinished is finished now, not at the next new file.
        report.site = crate::site::finish_interrupted_publish(&plan, &opts.site);
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
    let workers = Workers::open(&engine, &plan, &selected)?;
    let build = Build {
        full_refresh: opts.full_refresh,
        views_kept: views_read_twice(&plan, &selected, &engine, opts.mode != Mode::Intraday),
    };
    let (outcomes, failed) = build_models(&plan, &workers, &selected, &build, &runner, &catalog)?;
    report.models = outcomes;
    let built: BTreeSet<String> = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .map(|m| m.name.clone())
        .collect();

    if has_sources {
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
        let writing = Instant::now();
        engine.write_file_log(&done, &log)?;
        tracing::debug!(
            "file log: {} files recorded in {:.2}s",
            done.len(),
            writing.elapsed().as_secs_f64()
        );
    }

    // Intraday runs every few minutes; tests run in the daily backfill.
    stage("tests");
    let mut tests = if opts.mode == Mode::Intraday {
        Vec::new()
    } else {
        data_tests::plan_tests(&plan, &selected, &runner, &catalog)?
    };
    // dbt's results by default; the rows this run wrote when the project asks
    // (`tests: {incremental_scope: new_rows}`).
    if plan.project.settings.tests.incremental_scope == crate::project::TestScope::NewRows {
        data_tests::narrow_to_new_rows(&engine, &plan, &mut tests, &built)?;
    }
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
    let mut ran = run_tests(&workers, &runnable)?.into_iter();
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
        let rendering = Instant::now();
        crate::dashboard::render_for_plan(plan, dir, None, None)?;
        tracing::debug!(
            "dashboard rendered in {:.2}s",
            rendering.elapsed().as_secs_f64()
        );
        Ok(())
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
        let stored: Vec<_> = plan
            .models
            .iter()
            .filter(|m| which(m))
            .filter(|m| matches!(m.config.materialized(), "table" | "incremental"))
            .map(|m| &m.relation)
            .collect();
        engine.attach_stored_all(&stored)?;
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

/// Builds the selected models in DAG order. A model starts once every
/// selected parent has finished; independent models run at once, each on its
/// own DuckDB connection, on the connections [`Workers::open`] gives. A model
/// whose parent failed or was skipped is skipped. Outcomes come back in plan
/// order, with the models that did not build (`failed` / `skipped`).
/// (When [`Workers::open`] gives one connection, one at a time in plan order.)
/// How this run builds its models.
struct Build {
    /// `--full-refresh`: incremental models are rebuilt whole.
    full_refresh: bool,
    /// The `view` models whose rows are kept in a table this run
    /// ([`views_read_twice`]).
    views_kept: BTreeSet<String>,
}

/// The `view` models over ingested files that this run reads more than once
/// (by selected downstream models, plus their generic tests when the run
/// tests), when the database is in memory: their rows are computed once and
/// kept in a table ([`Engine::materialize_view_rows`]), so the files behind
/// them are parsed once instead of once per reader (ci at 30 days: the daily
/// reports' 3.9 M unit rows were parsed by `fct_scada`, then again by
/// `stg_daily_unit`'s tests).
fn views_read_twice(
    plan: &Plan,
    selected: &BTreeSet<String>,
    engine: &Engine,
    tests_run: bool,
) -> BTreeSet<String> {
    if !engine.in_memory() {
        return BTreeSet::new();
    }
    plan.models
        .iter()
        .filter(|m| {
            m.config.materialized() == "view"
                && !m.ingest_sources.is_empty()
                && selected.contains(&m.name)
        })
        .filter(|m| {
            let children = plan
                .models
                .iter()
                .filter(|c| selected.contains(&c.name) && c.refs.contains(&m.name))
                .count();
            let tested = tests_run
                && plan
                    .project
                    .generic_tests
                    .iter()
                    .any(|t| t.model == m.name && t.config.bool("enabled") != Some(false));
            children + usize::from(tested) >= 2
        })
        .map(|m| m.name.clone())
        .collect()
}

fn build_models(
    plan: &Plan,
    workers: &Workers,
    selected: &BTreeSet<String>,
    build: &Build,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<(Vec<ModelOutcome>, BTreeMap<String, String>)> {
    let todo: Vec<&PlannedModel> = plan
        .models
        .iter()
        .filter(|m| selected.contains(&m.name))
        .collect();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let engine = &workers.engines[0];
    if workers.engines.len() <= 1 {
        let mut outcomes = Vec::with_capacity(todo.len());
        for model in todo {
            let outcome = build_model(plan, engine, model, build, &failed, runner, catalog);
            log_model(&outcome, &mut failed);
            outcomes.push(outcome);
        }
        return Ok((outcomes, failed));
    }
    // Concurrent models must not race to create one schema.
    engine.create_schemas(todo.iter().map(|m| m.relation.schema.as_str()))?;
    let engines = &workers.engines;
    let runners: Vec<Arc<dyn QueryRunner>> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                runner.clone()
            } else {
                Arc::new(e.clone()) as Arc<dyn QueryRunner>
            }
        })
        .collect();
    let index: BTreeMap<&str, usize> = todo
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut outcomes: Vec<Option<ModelOutcome>> = vec![None; todo.len()];
    let mut started = vec![false; todo.len()];
    std::thread::scope(|scope| -> Result<()> {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, usize, ModelOutcome)>();
        let mut idle: Vec<usize> = (0..engines.len()).rev().collect();
        let mut running = 0usize;
        loop {
            // Start, in plan order, every model whose selected parents have
            // all finished, while a connection is free; a model with a
            // failed or skipped parent finishes at once as skipped.
            let mut progressed = true;
            while progressed && !idle.is_empty() {
                progressed = false;
                for (i, model) in todo.iter().enumerate() {
                    if started[i] || !parents_done(model, &index, &outcomes) {
                        continue;
                    }
                    started[i] = true;
                    if model.refs.iter().any(|r| failed.contains_key(r)) {
                        let outcome =
                            build_model(plan, engine, model, build, &failed, runner, catalog);
                        log_model(&outcome, &mut failed);
                        outcomes[i] = Some(outcome);
                        progressed = true;
                        continue;
                    }
                    let Some(w) = idle.pop() else { break };
                    running += 1;
                    let (tx, engine, runner) = (done_tx.clone(), &engines[w], &runners[w]);
                    let model: &PlannedModel = model;
                    scope.spawn(move || {
                        let outcome = build_model(
                            plan,
                            engine,
                            model,
                            build,
                            &BTreeMap::new(),
                            runner,
                            catalog,
                        );
                        let _ = tx.send((i, w, outcome));
                    });
                    if idle.is_empty() {
                        break;
                    }
                }
            }
            if running == 0 {
                break;
            }
            let (i, w, outcome) = done_rx
                .recv()
                .context("a model's build thread stopped without an outcome")?;
            running -= 1;
            idle.push(w);
            log_model(&outcome, &mut failed);
            outcomes[i] = Some(outcome);
        }
        Ok(())
    })?;
    let outcomes = outcomes
        .into_iter()
        .zip(&todo)
        .map(|(o, m)| o.with_context(|| format!("model `{}` was never scheduled", m.name)))
        .collect::<Result<Vec<_>>>()?;
    Ok((outcomes, failed))
}

/// The DuckDB connections models and tests run on: the session's own first.
struct Workers {
    engines: Vec<Engine>,
}

impl Workers {
    /// One connection unless the target's DuckDB `threads` is at least twice
    /// the machine's cores: then `threads / cores` of them, at most one per
    /// selected model. Measured on the reference stack's own project (2
    /// cores, bench/RESULTS.md): its two heavy models at once took 1.2x the
    /// wall time and 1.85x the memory of one after the other, since each
    /// DuckDB query already keeps every core busy. Also one connection when
    /// a model is ephemeral (its temporary view is its connection's own) or
    /// the target is Iceberg (stored writes stay one at a time).
    fn open(engine: &Engine, plan: &Plan, selected: &BTreeSet<String>) -> Result<Workers> {
        let todo = plan
            .models
            .iter()
            .filter(|m| selected.contains(&m.name))
            .count();
        let mut engines = vec![engine.clone()];
        if todo < 2
            || engine.is_warehouse()
            || plan
                .models
                .iter()
                .any(|m| m.config.materialized() == "ephemeral")
        {
            return Ok(Workers { engines });
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for _ in 1..(engine.concurrency() / cores).min(todo) {
            engines.push(engine.worker()?);
        }
        Ok(Workers { engines })
    }
}

/// Runs the tests that can run, the tests of one model together (their
/// column tests share a scan) and the models' groups spread over the
/// workers' connections; outcomes in the order of `tests`.
fn run_tests(workers: &Workers, tests: &[&data_tests::TestPlan]) -> Result<Vec<TestOutcome>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_model: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, test) in tests.iter().enumerate() {
        match test.model.as_deref() {
            Some(m) if by_model.contains_key(m) => groups[by_model[m]].push(i),
            model => {
                if let Some(m) = model {
                    by_model.insert(m, groups.len());
                }
                groups.push(vec![i]);
            }
        }
    }
    let n = workers.engines.len().min(groups.len());
    if n <= 1 {
        return Ok(data_tests::run_tests(&workers.engines[0], tests));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut outcomes: Vec<Option<TestOutcome>> = vec![None; tests.len()];
    let ran: Vec<Vec<(usize, TestOutcome)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers.engines[..n]
            .iter()
            .map(|engine| {
                let (next, groups) = (&next, &groups);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(group) = groups.get(g) else { break };
                        let plans: Vec<&data_tests::TestPlan> =
                            group.iter().map(|&i| tests[i]).collect();
                        out.extend(
                            group
                                .iter()
                                .copied()
                                .zip(data_tests::run_tests(engine, &plans)),
                        );
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, outcome) in ran.into_iter().flatten() {
        outcomes[i] = Some(outcome);
    }
    outcomes
        .into_iter()
        .zip(tests)
        .map(|(o, t)| o.with_context(|| format!("test `{}` did not run", t.name)))
        .collect()
}

/// Whether every selected parent of `model` has finished (built, failed or
/// skipped); parents outside the selection are read as they are.
fn parents_done(
    model: &PlannedModel,
    index: &BTreeMap<&str, usize>,
    outcomes: &[Option<ModelOutcome>],
) -> bool {
    model
        .refs
        .iter()
        .all(|r| index.get(r.as_str()).is_none_or(|&p| outcomes[p].is_some()))
}

/// Logs a model's outcome and records it in `failed` when it did not build.
fn log_model(outcome: &ModelOutcome, failed: &mut BTreeMap<String, String>) {
    match &outcome.status {
        ModelStatus::Error(e) => {
            tracing::error!("model `{}` failed: {e}", outcome.name);
            failed.insert(outcome.name.clone(), "failed".into());
        }
        ModelStatus::Skipped(_) => {
            failed.insert(outcome.name.clone(), "skipped".into());
        }
        ModelStatus::Success => tracing::info!(
            "model `{}` {} {} rows in {:.2}s",
            outcome.name,
            outcome.materialized,
            outcome
                .rows
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            outcome.duration.as_secs_f64()
        ),
    }
}

/// Builds one model: render, pre-hooks, materialize, post-hooks.
fn build_model(
    plan: &Plan,
    engine: &Engine,
    model: &PlannedModel,
    build: &Build,
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
    match try_build_model(plan, engine, model, build, runner, catalog) {
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
    build: &Build,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<Option<u64>> {
    let full_refresh = build.full_refresh;
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
    let written = if build.views_kept.contains(&model.name) {
        engine.materialize_view_rows(&model.relation, &sql)
    } else {
        engine.materialize(&model.relation, &model.config, &sql, full_refresh)
    }
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
