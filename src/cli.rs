//! The command line: `analytics run | compile | list | doctor | dashboard | init`.
//! A front-end: flags are resolved once into the typed settings the core
//! takes ([`RunOptions`], the doctor's options); nothing imports this module.
//! `analytics action` is the GitHub Actions front-end (`main.rs` hands over
//! to it before the command line is parsed).

use crate::environ::Env;
use crate::mode::Mode;
use crate::pipeline::{self, RunOptions};
use crate::plan::Plan;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

// Doc comments on the clap types are their `--help` text, so the few fields
// whose help is generated (subcommand, flattened options) carry none.
/// Ingest, transform, test, store, export and publish — from one Git repository.
#[allow(missing_docs)]
#[derive(Debug, Parser)]
#[command(name = "analytics", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a mode of the pipeline.
    Run {
        #[command(flatten)]
        common: Common,
        /// ci | intraday | backfill | import | maintain
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
    /// Scaffold analytics.yml (targets from the dbt profile, a sources
    /// skeleton, exports and dashboard for the fact models) and the consumer
    /// workflows for a dbt-duckdb project. Overwrites nothing without --force.
    Init {
        /// The dbt-duckdb project to start from (default: the current folder).
        #[arg(long, value_name = "DIR")]
        from_dbt: Option<PathBuf>,
        /// The repository root `.github/workflows/` is written under
        /// (default: the Git work tree holding the project, else the project).
        #[arg(long, value_name = "OUT")]
        dir: Option<PathBuf>,
        /// The folder holding dbt's profiles.yml (default: DBT_PROFILES_DIR,
        /// the project folder, then ~/.dbt).
        #[arg(long)]
        profiles_dir: Option<PathBuf>,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
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
    /// A target from analytics.yml, or an output of the dbt profile.
    #[arg(long)]
    pub target: Option<String>,
    /// The folder holding dbt's profiles.yml (default: DBT_PROFILES_DIR, the
    /// project folder, then ~/.dbt).
    #[arg(long)]
    pub profiles_dir: Option<PathBuf>,
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
        let env = Env::process();
        Ok(RunOptions {
            project_dir: self.project.clone(),
            mode,
            target: self.target.clone(),
            select: self.select.clone(),
            vars: crate::project::parse_vars(self.vars.as_deref(), "--vars")?,
            profiles_dir: self.profiles_dir.clone(),
            full_refresh,
            limits: crate::project::settings::Limits {
                ci: self.limit,
                intraday: self.limit,
                backfill: self.limit,
            },
            site: crate::site::SiteOptions::default().with_env(&env),
            env,
        })
    }
}

/// Entry point of the command line (`main.rs` has already handed `action`
/// and argument-less container starts to the Actions front-end).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
    crate::progress::init_logging_to(
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
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
            opts.site.github_token = opts
                .env
                .non_empty("GITHUB_TOKEN")
                .map(crate::secret::Secret::new);
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
            if let Some(path) = opts.env.non_empty("GITHUB_STEP_SUMMARY") {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
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
            let plan = Plan::build(&opts.plan_options())?;
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
        Command::Init {
            from_dbt,
            dir,
            profiles_dir,
            force,
        } => {
            let opts = crate::init::InitOptions {
                project_dir: from_dbt.unwrap_or_else(|| PathBuf::from(".")),
                repo_dir: dir,
                profiles_dir,
                force,
                env: Env::process(),
            };
            let scaffold = crate::init::scaffold(&opts)?;
            crate::init::write(&scaffold, opts.force)?;
            let mut out = std::io::stdout().lock();
            for (path, _) in &scaffold.files {
                writeln!(out, "wrote {}", path.display())?;
            }
            for note in &scaffold.notes {
                writeln!(out, "note: {note}")?;
            }
            writeln!(
                out,
                "next: analytics run --mode ci --project {}",
                opts.project_dir.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Action => {
            anyhow::bail!("`analytics action` runs through the Actions front-end (see main.rs)")
        }
        Command::List { common } => {
            let opts = common.options(Mode::Ci, false)?;
            let plan = Plan::build(&opts.plan_options())?;
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
