//! The pipeline: load → parse → plan the DAG → ingest → build models → test,
//! for each mode. `compile` and `list` reuse the same plan.

use crate::data_tests::{self, TestOutcome, TestPlan, TestStatus};
use crate::engine::{Engine, RelationKind};
use crate::graph::Dag;
use crate::ingest::{self, IngestContext, IngestRun};
use crate::project::{Config, Project, TargetConfig};
use crate::summary::{ModelOutcome, ModelStatus, RunReport};
use crate::templating::{
    FileCatalog, Phase, QueryRunner, Relation, RelationMap, RenderContext, Templater,
};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The four ways the action runs (see MISSION.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Everything in memory on sample data: build every model, run every test.
    Ci,
    /// Newest files, incremental builds, no tests, publish the intraday file.
    Intraday,
    /// The daily pass: backfill, rebuild dimensions, run all tests, publish.
    Backfill,
    /// No ingest/transform: export and publish from the warehouse.
    Import,
    /// Warehouse upkeep: compact small files, expire snapshots, delete
    /// files no snapshot uses.
    Maintain,
}

impl Mode {
    /// The mode's name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ci => "ci",
            Mode::Intraday => "intraday",
            Mode::Backfill => "backfill",
            Mode::Import => "import",
            Mode::Maintain => "maintain",
        }
    }
}

/// What to run and where.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The project directory (holding `dbt_project.yml`).
    pub project_dir: PathBuf,
    /// Which of the four modes to run.
    pub mode: Mode,
    /// A target from `analytics.yml`; default: the target named like the mode,
    /// else `memory` in `ci` mode.
    pub target: Option<String>,
    /// Model selectors: `name`, `+name` (with parents), `name+` (with children).
    pub select: Vec<String>,
    /// `--vars` overrides.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// Caps on new files per source that override `analytics.yml`'s `limits`
    /// (the action's `limit-*` inputs, `--limit`).
    pub limits: crate::project::settings::Limits,
    /// Where the exported site goes (`--site-dir`, the GitHub token and pages
    /// inputs).
    pub site: crate::site::SiteOptions,
}

/// A model after the parse render: final config, relation and parents.
#[derive(Debug, Clone)]
pub struct PlannedModel {
    /// The model name (file stem), as `ref()` uses it.
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The model's unrendered SQL/Jinja text.
    pub sql: String,
    /// Final config: project and YAML config merged with the SQL's `config()` calls.
    pub config: Config,
    /// Where the model is built (schema and alias applied).
    pub relation: Relation,
    /// Models it `ref()`s: its parents in the DAG.
    pub refs: Vec<String>,
    /// Ingest sources it reads; its files are committed once this model builds.
    pub ingest_sources: Vec<String>,
}

/// A parsed project: models in DAG order with their relations.
pub struct Plan {
    /// The loaded project.
    pub project: Project,
    /// The name of the target from `analytics.yml` (or `memory`).
    pub target_name: String,
    /// The target's settings.
    pub target: TargetConfig,
    /// Renders the project's SQL with its macros.
    pub templater: Templater,
    /// Enabled models, in DAG order.
    pub models: Vec<PlannedModel>,
    /// The model dependency graph, for ordering and selection.
    pub dag: Dag,
    /// Every model's relation, for `ref()` at execute time.
    pub relations: Arc<RelationMap>,
    /// Non-fatal problems found while loading and parsing.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Loads and parses the project for `opts`.
    pub fn build(opts: &RunOptions) -> Result<Plan> {
        let project = Project::load(&opts.project_dir)?;
        let mut warnings = project.warnings.clone();
        let target_name = match &opts.target {
            Some(t) => t.clone(),
            None if project.settings.targets.contains_key(opts.mode.name()) => {
                opts.mode.name().to_string()
            }
            None if opts.mode == Mode::Ci => "memory".to_string(),
            None if project.settings.targets.contains_key("warehouse")
                || std::env::var_os("ICEBERG_REST_ENDPOINT").is_some() =>
            {
                "warehouse".to_string()
            }
            None => bail!(
                "mode `{}` needs a target: pass --target, or define `targets: warehouse:` (used by every mode but ci) or `targets: {}:` in analytics.yml",
                opts.mode.name(),
                opts.mode.name()
            ),
        };
        let target = project.settings.target(&target_name)?;
        let templater = Templater::new(&project, &target_name, &target, &opts.vars, &mut warnings)?;

        let empty = Arc::new(RelationMap::new());
        let mut parsed = Vec::new();
        for model in &project.models {
            let ctx = RenderContext {
                phase: Phase::Parse,
                node_name: model.name.clone(),
                this: None,
                is_incremental: false,
                config: model.config.clone(),
                relations: empty.clone(),
                runner: None,
                files: None,
            };
            let rendered = templater
                .render(&model.path.display().to_string(), &model.sql, &ctx)
                .with_context(|| format!("model `{}`", model.name))?;
            let mut config = model.config.clone();
            config.merge(&rendered.captured.config);
            for key in rendered.captured.config.unknown_keys() {
                warnings.push(format!(
                    "model `{}`: unknown config key `{key}` ignored",
                    model.name
                ));
            }
            if config.bool("enabled") == Some(false) {
                continue;
            }
            for (source, table) in &rendered.captured.sources {
                let declared = project
                    .dbt_sources
                    .iter()
                    .any(|t| &t.source == source && &t.table == table)
                    || project.settings.sources.iter().any(|s| &s.name == source);
                if !declared {
                    bail!(
                        "model `{}` ({}) uses source('{source}', '{table}'), which is not declared \
                         in a sources: block of models/*.yml or in analytics.yml",
                        model.name,
                        model.path.display()
                    );
                }
            }
            for source in &rendered.captured.ingest_sources {
                if !project.settings.sources.iter().any(|s| &s.name == source) {
                    bail!(
                        "model `{}` ({}) reads source `{source}`, which analytics.yml does not declare",
                        model.name,
                        model.path.display()
                    );
                }
            }
            parsed.push((model, config, rendered.captured));
        }
        let edges: BTreeMap<String, Vec<String>> = parsed
            .iter()
            .map(|(m, _, c)| (m.name.clone(), c.refs.clone()))
            .collect();
        let dag = Dag::new(&edges, |name| {
            project.closest_model(name).map(str::to_string)
        })?;
        let order = dag.order()?;

        let mut relations = RelationMap::new();
        let mut models = Vec::new();
        for name in &order {
            let Some((model, config, captured)) = parsed.iter().find(|(m, _, _)| &m.name == name)
            else {
                continue;
            };
            let schema = templater
                .schema_for(name, config.str("schema"), config)
                .with_context(|| format!("model `{name}`"))?;
            let mut relation = Relation::new(&schema, config.str("alias").unwrap_or(name));
            if config.materialized() == "ephemeral" {
                relation.raw = Some(format!(
                    "temp.main.{}",
                    crate::templating::quote(&relation.identifier)
                ));
            }
            relations.insert(name.clone(), relation.clone());
            models.push(PlannedModel {
                name: name.clone(),
                path: model.path.clone(),
                sql: model.sql.clone(),
                config: config.clone(),
                relation,
                refs: captured.refs.clone(),
                ingest_sources: captured.ingest_sources.clone(),
            });
        }
        Ok(Plan {
            project,
            target_name,
            target,
            templater,
            models,
            dag,
            relations: Arc::new(relations),
            warnings,
        })
    }

    /// The models `selectors` pick, in DAG order (all when empty).
    pub fn selected(&self, selectors: &[String]) -> Result<BTreeSet<String>> {
        if selectors.is_empty() {
            return Ok(self.models.iter().map(|m| m.name.clone()).collect());
        }
        let mut out = BTreeSet::new();
        for sel in selectors.iter().flat_map(|s| s.split_whitespace()) {
            let up = sel.starts_with('+');
            let down = sel.ends_with('+');
            let name = sel.trim_matches('+');
            if let Some(tag) = name.strip_prefix("tag:") {
                out.extend(
                    self.models
                        .iter()
                        .filter(|m| m.config.str_list("tags").iter().any(|t| t == tag))
                        .map(|m| m.name.clone()),
                );
                continue;
            }
            if !self.models.iter().any(|m| m.name == name) {
                let hint = self
                    .project
                    .closest_model(name)
                    .map(|c| format!(" — did you mean `{c}`?"))
                    .unwrap_or_default();
                bail!("--select `{sel}`: no model named `{name}`{hint}");
            }
            out.insert(name.to_string());
            if up {
                out.extend(self.dag.ancestors(name));
            }
            if down {
                out.extend(self.dag.descendants(name));
            }
        }
        Ok(out)
    }

    /// Renders a model for execution, with `this` and `is_incremental()`.
    pub fn render_model(
        &self,
        model: &PlannedModel,
        is_incremental: bool,
        runner: Option<Arc<dyn QueryRunner>>,
        files: Option<Arc<dyn FileCatalog>>,
    ) -> Result<String> {
        let ctx = self.execute_context(
            &model.name,
            Some(model.relation.clone()),
            is_incremental,
            &model.config,
            runner,
            files,
        );
        Ok(self
            .templater
            .render(&model.path.display().to_string(), &model.sql, &ctx)?
            .sql)
    }

    fn execute_context(
        &self,
        name: &str,
        this: Option<Relation>,
        is_incremental: bool,
        config: &Config,
        runner: Option<Arc<dyn QueryRunner>>,
        files: Option<Arc<dyn FileCatalog>>,
    ) -> RenderContext {
        RenderContext {
            phase: Phase::Execute,
            node_name: name.to_string(),
            this,
            is_incremental,
            config: config.clone(),
            relations: self.relations.clone(),
            runner,
            files,
        }
    }

    /// Where the compiled SQL of a model or test is written (like dbt's target/compiled).
    pub fn compiled_path(&self, path: &Path) -> PathBuf {
        self.project
            .root
            .join("target")
            .join("compiled")
            .join(&self.project.name)
            .join(path)
    }
}

/// Runs `opts.mode` end to end and returns the report (the caller prints it
/// and sets the exit status).
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    if opts.mode == Mode::Import {
        return run_import(opts, started);
    }
    let plan = Plan::build(opts)?;
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
    attach_stored_models(&plan, &engine)?;
    if opts.mode == Mode::Maintain {
        return maintain(&plan, &engine, report, started);
    }
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
    let mut empty_models = BTreeSet::new();
    for source in &plan.project.settings.sources {
        if let Some(model) = &source.also_when_empty {
            let relation = plan.relations.get(model).with_context(|| {
                format!(
                    "source `{}`: also_when_empty names `{model}`, which is not a model",
                    source.name
                )
            })?;
            let empty = engine.relation_kind(relation)?.is_none()
                || engine
                    .count(&format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {relation} LIMIT 1)"
                    ))
                    .map_err(|e| anyhow::anyhow!(e))?
                    == 0;
            if empty {
                empty_models.insert(model.clone());
            }
        }
    }
    crate::actions::stage("ingest");
    let files = ingest::ingest(
        &plan.project,
        &IngestContext {
            mode: opts.mode.name(),
            archive: &archive,
            log: &log,
            empty_models: &empty_models,
            limit: opts.limits.for_mode(opts.mode.name()),
        },
    )?;
    report.ingest = files.reports.clone();
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

    crate::actions::stage("models");
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
        // A file is done once every model reading its source has committed it.
        let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in &plan.models {
            for s in &m.ingest_sources {
                consumers.entry(s.clone()).or_default().push(m.name.clone());
            }
        }
        let built: BTreeSet<String> = report
            .models
            .iter()
            .filter(|m| m.status == ModelStatus::Success)
            .map(|m| m.name.clone())
            .collect();
        let done = ingest::committed(&files, &consumers, &built);
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
    crate::actions::stage("tests");
    let tests = if opts.mode == Mode::Intraday {
        Vec::new()
    } else {
        plan_tests(&plan, &selected, &runner, &catalog)?
    };
    for (test, blocked_by) in tests {
        let outcome = match blocked_by
            .iter()
            .find(|m| failed.contains_key(*m) || !selected.contains(*m))
        {
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
            },
            None => data_tests::run_test(&engine, &test),
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

    run_project_hooks(
        &plan,
        &engine,
        &plan.project.on_run_end,
        "on-run-end",
        &runner,
        &catalog,
    )?;
    run_site(&plan, &engine, opts, &mut report);
    report.duration = started.elapsed();
    Ok(report)
}

/// Export → dashboard → publish (MISSION stages 7–9), after the tests.
fn run_site(plan: &Plan, engine: &Engine, opts: &RunOptions, report: &mut RunReport) {
    crate::actions::stage("export, dashboard, publish");
    let Some(mut site) = crate::site::SiteRun::start(plan, opts, report.failed()) else {
        return;
    };
    site.export(engine, plan, opts.mode);
    // The page (index.html, lineage, assets) next to manifest.json, so data,
    // manifest and site land in the same commit.
    site.step("dashboard", |dir, _manifest| {
        crate::dashboard::render_for_plan(plan, dir, None, None).map(|_| ())
    });
    site.publish(plan, opts);
    report.site = Some(site.report);
}

/// On an Iceberg target, makes every stored model readable by name (a view
/// streaming its table), so `ref()`, `this`, tests and exports see it.
fn attach_stored_models(plan: &Plan, engine: &Engine) -> Result<()> {
    if engine.is_warehouse() {
        for model in &plan.models {
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
    let plan = Plan::build(opts)?;
    let mut report = RunReport {
        project: plan.project.name.clone(),
        mode: opts.mode.name().to_string(),
        target: plan.target_name.clone(),
        warnings: plan.warnings.clone(),
        ..Default::default()
    };
    let engine = Engine::open(&plan.project.root, &plan.target)?;
    attach_stored_models(&plan, &engine)?;
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
    crate::actions::stage("maintenance");
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
                "{}: compacted {} files into {}, expired {} snapshots, deleted {} unused files",
                done.table,
                done.files_compacted,
                done.files_written,
                done.snapshots_expired,
                done.files_deleted
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
    };
    if let Some(parent) = model.refs.iter().find(|r| failed.contains_key(*r)) {
        outcome.status = ModelStatus::Skipped(format!("upstream `{parent}` {}", failed[parent]));
        return outcome;
    }
    match try_build_model(plan, engine, model, full_refresh, runner, catalog) {
        Ok(rows) => outcome.rows = rows,
        Err(e) => outcome.status = ModelStatus::Error(format!("{e:#}")),
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
    let origin = model.path.display().to_string();
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
        .map_err(|e| explain_sql_error(e, &origin, &compiled, &plan.project.root, &sql))?;
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
/// DuckDB error.
fn explain_sql_error(
    err: anyhow::Error,
    origin: &str,
    compiled: &Path,
    root: &Path,
    sql: &str,
) -> anyhow::Error {
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
            anyhow::anyhow!(
                "{origin}: line {n} of the rendered SQL ({}): `{text}`\n{err:#}",
                compiled.display()
            )
        }
        None => anyhow::anyhow!("{origin} (rendered SQL in {}): {err:#}", compiled.display()),
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

/// Every test to run, with the models it needs, in model order.
pub fn plan_tests(
    plan: &Plan,
    selected: &BTreeSet<String>,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<Vec<(TestPlan, Vec<String>)>> {
    let mut out = Vec::new();
    let position = |m: &str| {
        plan.models
            .iter()
            .position(|x| x.name == m)
            .unwrap_or(usize::MAX)
    };
    let mut generic: Vec<_> = plan
        .project
        .generic_tests
        .iter()
        .filter(|t| t.config.bool("enabled") != Some(false))
        .filter(|t| plan.relations.contains_key(&t.model))
        .filter(|t| selected.contains(&t.model))
        .collect();
    generic.sort_by_key(|t| position(&t.model));
    let mut names = BTreeSet::new();
    for test in generic {
        let mut name = test.name.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{}_{n}", test.name);
            n += 1;
        }
        let mut needs = vec![test.model.clone()];
        let sql = match data_tests::generic_sql(test, &plan.relations)? {
            Some(sql) => {
                if let Some(to) = test.args.get("to").and_then(|v| v.as_str())
                    && let Some(parent) = plan.relations.keys().find(|k| {
                        to.contains(&format!("'{k}'")) || to.contains(&format!("\"{k}\""))
                    })
                {
                    needs.push(parent.clone());
                }
                sql
            }
            None => render_custom_generic(plan, test, runner, catalog)?,
        };
        out.push((
            TestPlan {
                name,
                model: Some(test.model.clone()),
                sql,
                config: test.config.clone(),
                file: test.file.display().to_string(),
            },
            needs,
        ));
    }
    for test in &plan.project.singular_tests {
        let origin = test.path.display().to_string();
        let parse_ctx = RenderContext {
            phase: Phase::Parse,
            node_name: test.name.clone(),
            this: None,
            is_incremental: false,
            config: Config::default(),
            relations: Arc::new(RelationMap::new()),
            runner: None,
            files: None,
        };
        let parsed = plan.templater.render(&origin, &test.text, &parse_ctx)?;
        if parsed.captured.config.bool("enabled") == Some(false) {
            continue;
        }
        for r in &parsed.captured.refs {
            if !plan.relations.contains_key(r) {
                let hint = plan
                    .project
                    .closest_model(r)
                    .map(|c| format!(" — did you mean `{c}`?"))
                    .unwrap_or_default();
                bail!("test {origin} refers to `{r}`, which is not a model in this project{hint}");
            }
        }
        if !parsed.captured.refs.is_empty()
            && !parsed.captured.refs.iter().any(|r| selected.contains(r))
        {
            continue;
        }
        let ctx = plan.execute_context(
            &test.name,
            None,
            false,
            &parsed.captured.config,
            Some(runner.clone()),
            Some(catalog.clone()),
        );
        let sql = plan.templater.render(&origin, &test.text, &ctx)?.sql;
        out.push((
            TestPlan {
                name: test.name.clone(),
                model: None,
                sql,
                config: parsed.captured.config.clone(),
                file: origin,
            },
            parsed.captured.refs.clone(),
        ));
    }
    Ok(out)
}

/// A generic test defined by the project as `{% test name(model, column_name) %}`.
fn render_custom_generic(
    plan: &Plan,
    test: &crate::project::GenericTest,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<String> {
    let macro_name = format!(
        "test_{}",
        test.test.rsplit('.').next().unwrap_or(&test.test)
    );
    if !plan.templater.has_macro(&macro_name) {
        bail!(
            "{}: test `{}` on `{}` is not a built-in test (unique, not_null, accepted_values, \
             relationships) and the project defines no `{{% test {} %}}`",
            test.file.display(),
            test.test,
            test.model,
            &macro_name[5..]
        );
    }
    let mut call = format!("{{{{ {macro_name}(model=ref({:?})", test.model);
    if let Some(col) = &test.column {
        call.push_str(&format!(", column_name={col:?}"));
    }
    for (key, value) in &test.args {
        call.push_str(&format!(", {key}={value}"));
    }
    call.push_str(") }}");
    let ctx = plan.execute_context(
        &test.name,
        None,
        false,
        &test.config,
        Some(runner.clone()),
        Some(catalog.clone()),
    );
    Ok(plan
        .templater
        .render(&test.file.display().to_string(), &call, &ctx)?
        .sql)
}
