//! The command line: `analytics run | compile | list | doctor | action`.

use crate::pipeline::{self, Mode, Plan, RunOptions};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ingest, transform, test, store, export and publish — from one Git repository.
#[derive(Debug, Parser)]
#[command(name = "analytics", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a mode of the pipeline.
    Run {
        #[command(flatten)]
        common: Common,
        /// ci | intraday | backfill | import
        #[arg(long, value_enum, default_value = "ci")]
        mode: Mode,
        /// Rebuild incremental models from scratch.
        #[arg(long)]
        full_refresh: bool,
        /// Write the dashboard site (manifest.json, data/*.duckdb, the page) to
        /// this folder; in `ci` mode this turns the export on.
        #[arg(long)]
        site_dir: Option<PathBuf>,
    },
    /// Print the rendered SQL of the selected models.
    Compile {
        #[command(flatten)]
        common: Common,
    },
    /// List models and tests in DAG order.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Check what a run needs (project, sources, catalog, GitHub token), one line each.
    Doctor {
        #[command(flatten)]
        args: crate::doctor::DoctorArgs,
    },
    /// Render the dashboard (index.html, lineage.html, assets/) into a site
    /// folder that already holds an export's manifest.json and data/.
    Dashboard {
        /// The project folder (holds dbt_project.yml and analytics.yml).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// The site folder (holds manifest.json).
        #[arg(long)]
        site: PathBuf,
        /// Override analytics.yml's `dashboard.assets`.
        #[arg(long, value_enum)]
        assets: Option<crate::dashboard::AssetsMode>,
        /// node_modules folder holding the pinned packages (bundled assets).
        #[arg(long)]
        assets_dir: Option<PathBuf>,
    },
    /// Run as a GitHub Action: inputs from `INPUT_*` variables, outputs to
    /// `$GITHUB_OUTPUT`, summary to `$GITHUB_STEP_SUMMARY` (what the container runs).
    Action,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The project folder (holds dbt_project.yml).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// A target from analytics.yml.
    #[arg(long)]
    pub target: Option<String>,
    /// Models to run: `name`, `+name`, `name+`, `tag:x` (space or repeat to give several).
    #[arg(long, num_args = 1..)]
    pub select: Vec<String>,
    /// Variables as YAML, e.g. `--vars '{batch: 2}'`; they override dbt_project.yml vars.
    #[arg(long)]
    pub vars: Option<String>,
    /// Take at most N new files per source in this run (overrides analytics.yml `limits`).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl Common {
    fn options(&self, mode: Mode, full_refresh: bool) -> Result<RunOptions> {
        Ok(RunOptions {
            project_dir: self.project.clone(),
            mode,
            target: self.target.clone(),
            select: self.select.clone(),
            vars: parse_vars(self.vars.as_deref(), "--vars")?,
            full_refresh,
            limits: crate::project::settings::Limits {
                ci: self.limit,
                intraday: self.limit,
                backfill: self.limit,
            },
            site: Default::default(),
        })
    }
}

/// Parses `--vars` (or the action's `vars` input, named by `what`): a YAML mapping.
pub fn parse_vars(
    text: Option<&str>,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let Some(text) = text else {
        return Ok(serde_json::Map::new());
    };
    let value: serde_json::Value =
        serde_yaml_ng::from_str(text).with_context(|| format!("{what} is not valid YAML"))?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        _ => anyhow::bail!("{what} must be a mapping, e.g. '{{batch: 2}}'"),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // In a container action GitHub starts the image with no arguments; the
    // action sets up its own (secret-redacting) logging.
    if crate::actions::invoked_implicitly() {
        return crate::actions::main();
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Action) {
        return crate::actions::main();
    }
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    init_logging_to(
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
}

/// Logs (level from `ANALYTICS_LOG`, default `info`) to `writer`.
pub(crate) fn init_logging_to<W>(writer: W, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANALYTICS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            common,
            mode,
            full_refresh,
            site_dir,
        } => {
            let mut opts = common.options(mode, full_refresh)?;
            opts.site.site_dir = site_dir;
            // Publishing to GitHub from the command line takes the token and
            // repository from the environment, as in a workflow `run:` step.
            opts.site.github_token = std::env::var("GITHUB_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(crate::actions::Secret::new);
            let report = pipeline::run(&opts)?;
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "{}", report.short());
            for m in &report.models {
                if let crate::summary::ModelStatus::Error(e) = &m.status {
                    eprintln!("\nmodel `{}` failed:\n{e}", m.name);
                }
            }
            for t in &report.tests {
                if let crate::data_tests::TestStatus::Error(e) = &t.status {
                    eprintln!("\ntest `{}` ({}) could not run:\n{e}", t.name, t.file);
                }
            }
            if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY")
                && !path.is_empty()
            {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening GITHUB_STEP_SUMMARY {path}"))?;
                f.write_all(report.markdown().as_bytes())
                    .with_context(|| format!("writing GITHUB_STEP_SUMMARY {path}"))?;
            }
            Ok(if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Compile { common } => {
            let opts = common.options(Mode::Ci, false)?;
            let plan = Plan::build(&opts)?;
            let selected = plan.selected(&opts.select)?;
            let engine = crate::engine::Engine::open(&plan.project.root, &plan.target)?;
            let runner: std::sync::Arc<dyn crate::templating::QueryRunner> =
                std::sync::Arc::new(engine);
            // No ingest here: sources render as empty relations of their columns.
            let no_files: std::sync::Arc<dyn crate::templating::FileCatalog> =
                std::sync::Arc::new(crate::ingest::IngestRun {
                    declared: plan
                        .project
                        .settings
                        .sources
                        .iter()
                        .map(|s| s.name.clone())
                        .collect(),
                    ..Default::default()
                });
            let mut out = std::io::stdout().lock();
            for model in plan.models.iter().filter(|m| selected.contains(&m.name)) {
                let sql =
                    plan.render_model(model, false, Some(runner.clone()), Some(no_files.clone()))?;
                writeln!(
                    out,
                    "-- {} ({}) → {}\n{}\n",
                    model.name,
                    model.path.display(),
                    model.relation,
                    sql.trim_end()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { args } => crate::doctor::main(&args),
        Command::Dashboard {
            project,
            site,
            assets,
            assets_dir,
        } => {
            let rendered =
                crate::dashboard::render_site(&project, &site, assets, assets_dir.as_deref())?;
            for w in &rendered.warnings {
                tracing::warn!("{w}");
            }
            println!(
                "dashboard: {} files written to {}",
                rendered.files.len(),
                site.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Action => Ok(crate::actions::main()),
        Command::List { common } => {
            let opts = common.options(Mode::Ci, false)?;
            let plan = Plan::build(&opts)?;
            let selected = plan.selected(&opts.select)?;
            let mut out = std::io::stdout().lock();
            for model in plan.models.iter().filter(|m| selected.contains(&m.name)) {
                writeln!(
                    out,
                    "model {:<32} {:<12} {}",
                    model.name,
                    model.config.materialized(),
                    model.relation
                )?;
            }
            for test in &plan.project.generic_tests {
                if selected.contains(&test.model) {
                    writeln!(out, "test  {:<32} on {}", test.name, test.model)?;
                }
            }
            for test in &plan.project.singular_tests {
                writeln!(out, "test  {:<32} {}", test.name, test.path.display())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
