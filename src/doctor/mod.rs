//! `analytics doctor`: checks what a run will need and says what works, one
//! line each, with the fix when something fails — the project loads and
//! parses, every source answers, the Iceberg REST catalog is reachable,
//! accepts the credentials and lists namespaces, the S3 endpoint answers, the
//! GitHub token can push to the pages repository, and GitHub Pages serves
//! the branch the dashboard is published to.
//!
//! Read-only: nothing is created or changed anywhere.

mod catalog;
mod github;
mod sources;

use crate::environ::Env;
use crate::ingest::fetch;
use crate::mode::Mode;
use crate::pipeline::RunOptions;
use crate::plan::Plan;
use crate::project::{IcebergConfig, TargetConfig, TargetYaml};
use crate::secret::Secret;
use anyhow::Result;
use clap::Args;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `analytics doctor` options. Secrets are best given through the environment
/// variables named here, not on the command line.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The project folder (holds dbt_project.yml).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Check for this mode: only its sources, and `ci` checks samples instead
    /// of the network. Default: every source, over the network.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// A target from analytics.yml.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not contact sources (the catalog and GitHub are still checked when given).
    #[arg(long)]
    pub offline: bool,
    /// Iceberg REST catalog URI.
    #[arg(long, env = "ICEBERG_REST_ENDPOINT")]
    pub catalog_uri: Option<String>,
    /// Bearer token for the catalog.
    #[arg(long, env = "ICEBERG_TOKEN", hide_env_values = true)]
    pub catalog_token: Option<String>,
    /// OAuth2 client credentials for the catalog, `client_id:client_secret`.
    #[arg(long, env = "ICEBERG_CREDENTIAL", hide_env_values = true)]
    pub catalog_credential: Option<String>,
    /// Warehouse name or location in the catalog.
    #[arg(long, env = "ICEBERG_WAREHOUSE")]
    pub warehouse: Option<String>,
    /// S3-compatible endpoint of the warehouse storage.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub s3_endpoint: Option<String>,
    /// A GitHub token (checked for push access to the pages repository).
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// The repository the dashboard is published to, `owner/name`.
    #[arg(long, env = "GITHUB_REPOSITORY")]
    pub pages_repository: Option<String>,
}

/// What the doctor checks, resolved once by a front-end.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The project, target, vars and environment the plan is built with.
    pub run: RunOptions,
    /// Only this mode's sources; `ci` checks samples. `None`: all, over the network.
    pub mode: Option<Mode>,
    /// Do not contact sources.
    pub offline: bool,
    /// The Iceberg REST catalog (and its storage) a run would use: the
    /// standard variables of the run's environment, resolved like the
    /// `warehouse` target a project gets without defining one.
    pub catalog: Option<IcebergConfig>,
    /// The token to check for push access.
    pub github_token: Option<Secret>,
    /// The pages repository, `owner/name`.
    pub pages_repository: Option<String>,
    /// `GITHUB_API_URL` (GitHub Enterprise Server) or api.github.com.
    pub github_api: String,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl DoctorOptions {
    /// The options for `run` (whose environment holds the catalog's
    /// standard variables), checking `mode`'s sources.
    pub fn new(
        run: RunOptions,
        mode: Option<Mode>,
        offline: bool,
        github_token: Option<Secret>,
        pages_repository: Option<String>,
    ) -> DoctorOptions {
        let env = &run.env;
        let catalog = env
            .non_empty("ICEBERG_REST_ENDPOINT")
            .is_some()
            .then(|| match TargetYaml::from_standard_env(env).resolve(env) {
                Ok(TargetConfig::Iceberg { catalog, .. }) => Some(*catalog),
                _ => None,
            })
            .flatten();
        DoctorOptions {
            github_api: env.github_api_url(),
            run,
            mode,
            offline,
            catalog,
            github_token,
            pages_repository,
        }
    }

    /// From `analytics doctor`'s command line: the flags laid over the
    /// process environment as the standard variables.
    pub fn from_args(args: &DoctorArgs) -> DoctorOptions {
        let mut env = Env::process();
        for (name, value) in [
            (
                "ICEBERG_REST_ENDPOINT",
                non_empty(&args.catalog_uri).map(|u| u.trim_end_matches('/').to_string()),
            ),
            ("ICEBERG_TOKEN", non_empty(&args.catalog_token)),
            ("ICEBERG_CREDENTIAL", non_empty(&args.catalog_credential)),
            ("ICEBERG_WAREHOUSE", non_empty(&args.warehouse)),
            ("AWS_ENDPOINT_URL_S3", non_empty(&args.s3_endpoint)),
        ] {
            if let Some(value) = value {
                env.set(name, &value);
            }
        }
        let run = RunOptions {
            project_dir: args.project.clone(),
            mode: args.mode.unwrap_or(Mode::Ci),
            target: args.target.clone(),
            select: Vec::new(),
            vars: serde_json::Map::new(),
            profiles_dir: None,
            full_refresh: false,
            limits: Default::default(),
            site: Default::default(),
            env,
        };
        DoctorOptions::new(
            run,
            args.mode,
            args.offline,
            non_empty(&args.github_token).map(Secret::new),
            non_empty(&args.pages_repository),
        )
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Pass,
    /// Does not work; the check says how to fix it.
    Fail,
    /// Works, but something a run relies on is missing (e.g. GitHub Pages is
    /// off); says how to fix it, and does not fail the doctor.
    Warn,
    /// Not checked (not configured, or not possible yet).
    Skip,
}

/// One line of the doctor's report.
#[derive(Debug, Clone)]
pub struct Check {
    /// How it ended.
    pub status: Status,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Pass,
            what: what.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn fail(
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Fail,
            what: what.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn warn(
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            what: what.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn skip(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Skip,
            what: what.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    /// `✅ what: detail`, or `❌ what: detail → fix: …`.
    pub fn line(&self) -> String {
        let icon = match self.status {
            Status::Pass => "✅",
            Status::Fail => "❌",
            Status::Warn => "⚠️",
            Status::Skip => "⏭️",
        };
        match &self.fix {
            Some(fix) => format!("{icon} {}: {} → fix: {fix}", self.what, self.detail),
            None => format!("{icon} {}: {}", self.what, self.detail),
        }
    }
}

/// Whether nothing failed.
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

/// The report as Markdown for the job summary.
pub fn markdown(checks: &[Check]) -> String {
    let mut md = format!(
        "## analytics doctor — {}\n\n",
        if passed(checks) {
            "✅ ready"
        } else {
            "❌ not ready"
        }
    );
    for c in checks {
        let _ = writeln!(md, "- {}", c.line().replace('|', "\\|"));
    }
    md
}

/// `analytics doctor`: prints one line per check; fails if any check fails.
pub fn main(args: &DoctorArgs) -> Result<ExitCode> {
    let checks = run(&DoctorOptions::from_args(args));
    let mut out = std::io::stdout().lock();
    for c in &checks {
        writeln!(out, "{}", c.line())?;
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        writeln!(out, "\n{failed} check(s) failed")?;
        Ok(ExitCode::FAILURE)
    } else {
        writeln!(out, "\nready")?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Runs every check that applies.
pub fn run(opts: &DoctorOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::fail(
                "doctor",
                format!("cannot start the async runtime: {e}"),
                "report this as a bug",
            ));
            return checks;
        }
    };
    let client = match fetch::client(Duration::from_secs(30)) {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::fail(
                "doctor",
                format!("{e:#}"),
                "report this as a bug",
            ));
            return checks;
        }
    };
    let project = project_checks(opts, &mut checks);
    if let Some(project) = &project {
        for source in &project.settings.sources {
            if let Some(mode) = opts.mode
                && !source.runs_in(mode)
            {
                continue;
            }
            checks.push(runtime.block_on(sources::source_check(
                opts,
                &client,
                &project.root,
                source,
            )));
        }
    }
    runtime.block_on(catalog::catalog_checks(opts, &client, &mut checks));
    if opts.catalog.is_some()
        && !checks
            .iter()
            .any(|c| c.what.starts_with("catalog") && c.status == Status::Fail)
    {
        checks.push(catalog::scratch_table_check(opts));
    }
    if let Some(endpoint) = opts.catalog.as_ref().and_then(|c| c.s3.endpoint.as_ref()) {
        checks.push(runtime.block_on(catalog::s3_check(&client, endpoint)));
    }
    // Where a publish goes: the run's options, else analytics.yml's `publish:`.
    let publish = project.as_ref().map(|p| &p.settings.publish);
    let pages = github::PagesTarget {
        branch: opts
            .run
            .site
            .branch
            .clone()
            .or_else(|| publish.and_then(|p| p.branch.clone()))
            .unwrap_or_else(|| "gh-pages".into()),
        folder: opts
            .run
            .site
            .folder
            .clone()
            .or_else(|| publish.and_then(|p| p.folder.clone()))
            .unwrap_or_default(),
    };
    runtime.block_on(github::github_checks(opts, &pages, &client, &mut checks));
    checks
}

/// The project loads (files, YAML) and parses (templates, refs, DAG, target).
fn project_checks(
    opts: &DoctorOptions,
    checks: &mut Vec<Check>,
) -> Option<crate::project::Project> {
    let dir = opts.run.project_dir.display().to_string();
    let project = match crate::project::Project::read(&opts.run.project_dir) {
        Ok(p) => p,
        Err(e) => {
            checks.push(Check::fail(
                "project loads",
                format!("{dir}: {e:#}"),
                "point --project (or the `project-dir` input) at the folder holding dbt_project.yml \
                 and correct the file named above",
            ));
            return None;
        }
    };
    checks.push(Check::pass(
        "project loads",
        format!(
            "`{}` in {dir}: {} models, {} tests, {} sources",
            project.name,
            project.models.len(),
            project.generic_tests.len() + project.singular_tests.len(),
            project.settings.sources.len()
        ),
    ));
    checks.push(dbt_features_check(&project));
    let blocked = project
        .unsupported
        .iter()
        .any(|u| u.severity == crate::project::Severity::Error);
    match Plan::build(&opts.run.plan_options()) {
        Err(_) if blocked => checks.push(Check::skip(
            "models parse",
            "not parsed: the dbt features above stop a run first",
        )),
        Ok(plan) => checks.push(Check::pass(
            "models parse",
            format!(
                "{} models in DAG order, target `{}` ({})",
                plan.models.len(),
                plan.target_name,
                plan.target.kind()
            ),
        )),
        Err(e) => checks.push(Check::fail(
            "models parse",
            format!("{e:#}"),
            "correct the model or file named above; `analytics compile` shows the rendered SQL",
        )),
    }
    if project.settings.dashboard.is_some() {
        match crate::dashboard::DashboardConfig::from_settings(&project.settings) {
            Ok(c) => checks.push(Check::pass(
                "dashboard config",
                format!(
                    "{} grains, {} KPIs, {} charts, assets {}",
                    c.grains.len(),
                    c.kpis.len(),
                    c.charts.len(),
                    if c.assets == crate::dashboard::AssetsMode::Bundled {
                        "bundled"
                    } else {
                        "from the CDN"
                    }
                ),
            )),
            Err(e) => checks.push(Check::fail(
                "dashboard config",
                format!("{e:#}"),
                "correct the `dashboard:` section of analytics.yml (README: Dashboard)",
            )),
        }
    }
    Some(project)
}

/// The dbt features the project uses that do not run here, all at once:
/// fails on those that would change what is built, warns on the others.
fn dbt_features_check(project: &crate::project::Project) -> Check {
    use crate::project::Severity;
    let what = "dbt features";
    if project.unsupported.is_empty() {
        return Check::pass(what, "none that analytics does not run");
    }
    let lines: Vec<String> = project
        .unsupported
        .iter()
        .map(|u| {
            let mark = match u.severity {
                Severity::Error => "error",
                Severity::Warning => "ignored",
            };
            format!("\n    - ({mark}) {u}")
        })
        .collect();
    let detail = format!(
        "{} not run here:{}",
        project.unsupported.len(),
        lines.concat()
    );
    if project
        .unsupported
        .iter()
        .any(|u| u.severity == Severity::Error)
    {
        Check::fail(
            what,
            detail,
            "follow the advice on each line marked (error); a run stops before any model until then",
        )
    } else {
        Check::warn(
            what,
            detail,
            "nothing to do for a run; remove the files to silence this",
        )
    }
}

/// Text of an error response, short and without anything secret-looking.
pub(crate) async fn error_body(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    let body = body.replace(['\n', '\r'], " ");
    if body.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", body.trim())
    }
}
