//! `analytics doctor`: checks what a run will need and says what works, one
//! line each, with the fix when something fails — the project loads and
//! parses, every source answers, the Iceberg REST catalog is reachable,
//! accepts the credentials and lists namespaces, the S3 endpoint answers, and
//! the GitHub token can push to the pages repository.
//!
//! Read-only: nothing is created or changed anywhere.

use crate::actions::{ActionSettings, CatalogSettings, S3Settings, Secret};
use crate::ingest::candidates;
use crate::ingest::fetch::{self, RetryPolicy};
use crate::pipeline::{Mode, Plan, RunOptions};
use crate::project::settings::{SourceConfig, SourceKind};
use anyhow::{Context, Result};
use clap::Args;
use reqwest::{Client, StatusCode};
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

/// What the doctor checks.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The project, target and vars the plan is built with.
    pub run: RunOptions,
    /// Only this mode's sources; `ci` checks samples. `None`: all, over the network.
    pub mode: Option<Mode>,
    /// Do not contact sources.
    pub offline: bool,
    /// The Iceberg REST catalog to check.
    pub catalog: CatalogSettings,
    /// The S3 endpoint to check.
    pub s3: S3Settings,
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

fn github_api() -> String {
    std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://api.github.com".to_string())
        .trim_end_matches('/')
        .to_string()
}

impl DoctorOptions {
    /// From `analytics doctor`'s command line and environment.
    pub fn from_args(args: &DoctorArgs) -> DoctorOptions {
        DoctorOptions {
            run: RunOptions {
                project_dir: args.project.clone(),
                mode: args.mode.unwrap_or(Mode::Ci),
                target: args.target.clone(),
                select: Vec::new(),
                vars: serde_json::Map::new(),
                full_refresh: false,
                limits: Default::default(),
                site: Default::default(),
            },
            mode: args.mode,
            offline: args.offline,
            catalog: CatalogSettings {
                uri: non_empty(&args.catalog_uri).map(|u| u.trim_end_matches('/').to_string()),
                token: non_empty(&args.catalog_token).map(Secret::new),
                credential: non_empty(&args.catalog_credential).map(Secret::new),
                warehouse: non_empty(&args.warehouse),
            },
            s3: S3Settings {
                endpoint: non_empty(&args.s3_endpoint),
                ..Default::default()
            },
            github_token: non_empty(&args.github_token).map(Secret::new),
            pages_repository: non_empty(&args.pages_repository),
            github_api: github_api(),
        }
    }

    /// The action's `mode: doctor`: every source over the network, and the
    /// catalog, storage and pages settings of the step's inputs.
    pub fn from_action(settings: &ActionSettings) -> DoctorOptions {
        DoctorOptions {
            run: settings.run.clone(),
            mode: None,
            offline: false,
            catalog: settings.catalog.clone(),
            s3: settings.s3.clone(),
            github_token: settings.pages.github_token.clone(),
            pages_repository: settings.pages.repository.clone(),
            github_api: github_api(),
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Pass,
    /// Does not work; the check says how to fix it.
    Fail,
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
    fn pass(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Pass,
            what: what.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            what: what.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skip(what: impl Into<String>, detail: impl Into<String>) -> Check {
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
                && !source.runs_in(mode.name())
            {
                continue;
            }
            checks.push(runtime.block_on(source_check(opts, &client, &project.root, source)));
        }
    }
    runtime.block_on(catalog_checks(opts, &client, &mut checks));
    if opts.catalog.uri.is_some()
        && !checks
            .iter()
            .any(|c| c.what.starts_with("catalog") && c.status == Status::Fail)
    {
        checks.push(scratch_table_check(opts));
    }
    if let Some(endpoint) = &opts.s3.endpoint {
        checks.push(runtime.block_on(s3_check(&client, endpoint)));
    }
    runtime.block_on(github_checks(opts, &client, &mut checks));
    checks
}

/// The project loads (files, YAML) and parses (templates, refs, DAG, target).
fn project_checks(
    opts: &DoctorOptions,
    checks: &mut Vec<Check>,
) -> Option<crate::project::Project> {
    let dir = opts.run.project_dir.display().to_string();
    let project = match crate::project::Project::load(&opts.run.project_dir) {
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
    match Plan::build(&opts.run) {
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
    if project.settings.other.contains_key("dashboard") {
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

/// A source answers: its listing lists matching files, its GitHub folder is
/// readable, its URL exists — or, in ci mode, its sample is there.
async fn source_check(
    opts: &DoctorOptions,
    client: &Client,
    root: &std::path::Path,
    source: &SourceConfig,
) -> Check {
    let what = format!("source `{}`", source.name);
    if opts.mode == Some(Mode::Ci) {
        return match &source.sample {
            None => Check::skip(what, "no `sample`; ci mode does not download it"),
            Some(sample) => match candidates::list_sample(root, source, sample) {
                Ok(files) if !files.is_empty() => Check::pass(
                    what,
                    format!("sample {sample}: {}", files_count(files.len())),
                ),
                Ok(_) => Check::fail(
                    what,
                    format!("sample {sample} holds no file matching the pattern"),
                    "add sample files (see aemo-gen) or correct `pattern`",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    "correct `sample:` in analytics.yml (a path relative to the project)",
                ),
            },
        };
    }
    if opts.offline {
        return Check::skip(what, "offline: not contacted");
    }
    let policy = RetryPolicy {
        attempts: 1,
        base: Duration::from_millis(200),
    };
    let shown = source
        .url
        .as_deref()
        .map(fetch::redact)
        .or_else(|| source.repo.clone())
        .unwrap_or_default();
    match source.kind {
        SourceKind::Url => {
            let url = source.url.as_deref().unwrap_or_default();
            match reachable(client, url).await {
                Ok(status) if status.is_success() => {
                    Check::pass(what, format!("{shown} answers HTTP {}", status.as_u16()))
                }
                Ok(status) => Check::fail(
                    what,
                    format!("{shown} answers HTTP {}", status.as_u16()),
                    "correct `url:` in analytics.yml",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    "check `url:` and that the runner can reach that host",
                ),
            }
        }
        SourceKind::Listing | SourceKind::Github => {
            match candidates::list_remote(client, source, policy).await {
                Ok(files) if !files.is_empty() => Check::pass(
                    what,
                    format!(
                        "{shown} lists {} matching the pattern",
                        files_count(files.len())
                    ),
                ),
                Ok(_) => Check::fail(
                    what,
                    format!("{shown} lists no file matching the pattern"),
                    "correct `pattern:` (a regex on file names) or the URL in analytics.yml",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    if source.kind == SourceKind::Github {
                        "check `repo`/`path`/`ref`, and give a token (GITHUB_TOKEN or `token_env`) for private repositories or rate limits"
                    } else {
                        "check `url:` and that the runner can reach that host"
                    },
                ),
            }
        }
    }
}

fn files_count(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// HEAD, falling back to GET for servers that refuse HEAD.
async fn reachable(client: &Client, url: &str) -> Result<StatusCode> {
    let status = client
        .head(url)
        .send()
        .await
        .with_context(|| format!("HEAD {}", fetch::redact(url)))?
        .status();
    if status.is_success() {
        return Ok(status);
    }
    Ok(client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {}", fetch::redact(url)))?
        .status())
}

/// Text of an error response, short and without anything secret-looking.
async fn error_body(resp: reqwest::Response) -> String {
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

/// The catalog answers `/v1/config`, accepts the credentials (OAuth2 client
/// credentials or a bearer token) and lists namespaces.
async fn catalog_checks(opts: &DoctorOptions, client: &Client, checks: &mut Vec<Check>) {
    let Some(base) = &opts.catalog.uri else {
        checks.push(Check::skip(
            "catalog",
            "no catalog-uri / ICEBERG_REST_ENDPOINT given",
        ));
        return;
    };
    let base = base.trim_end_matches('/');
    let mut config_url = format!("{base}/v1/config");
    if let Some(w) = &opts.catalog.warehouse {
        config_url = match reqwest::Url::parse_with_params(&config_url, [("warehouse", w)]) {
            Ok(u) => u.to_string(),
            Err(_) => config_url,
        };
    }

    // 1. reachable: any HTTP answer counts.
    let anonymous = match client.get(&config_url).send().await {
        Ok(resp) => resp,
        Err(e) => {
            checks.push(Check::fail(
                "catalog reachable",
                format!("GET {base}/v1/config: {e}"),
                "check catalog-uri (the REST base URL, without /v1) and that the runner can reach it",
            ));
            return;
        }
    };
    let anon_status = anonymous.status();
    checks.push(Check::pass(
        "catalog reachable",
        format!("GET {base}/v1/config answers HTTP {}", anon_status.as_u16()),
    ));

    // 2. auth accepted.
    let token: Option<Secret> = if let Some(cred) = &opts.catalog.credential {
        let Some((id, secret)) = cred.expose().split_once(':') else {
            checks.push(Check::fail(
                "catalog auth",
                "catalog credential is not `client_id:client_secret`",
                "give the OAuth2 client credentials as `client_id:client_secret`",
            ));
            return;
        };
        let url = format!("{base}/v1/oauth/tokens");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "catalog"),
        ];
        match client.post(&url).form(&form).send().await {
            Err(e) => {
                checks.push(Check::fail(
                    "catalog auth",
                    format!("POST {url}: {e}"),
                    "check catalog-uri; the catalog must offer the OAuth2 token endpoint",
                ));
                return;
            }
            Ok(resp) if !resp.status().is_success() => {
                checks.push(Check::fail(
                    "catalog auth",
                    format!(
                        "OAuth2 client credentials refused: {}",
                        error_body(resp).await
                    ),
                    "check catalog-credential (client_id:client_secret) in the repository secrets",
                ));
                return;
            }
            Ok(resp) => {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                match body.get("access_token").and_then(|t| t.as_str()) {
                    Some(t) => {
                        crate::actions::mask_runtime_secret(t);
                        checks.push(Check::pass(
                            "catalog auth",
                            "OAuth2 client credentials accepted (token issued)",
                        ));
                        Some(Secret::new(t))
                    }
                    None => {
                        checks.push(Check::fail(
                            "catalog auth",
                            "the token endpoint answered without an access_token",
                            "check that catalog-uri is an Iceberg REST catalog",
                        ));
                        return;
                    }
                }
            }
        }
    } else if let Some(token) = &opts.catalog.token {
        Some(token.clone())
    } else {
        if anon_status == StatusCode::UNAUTHORIZED || anon_status == StatusCode::FORBIDDEN {
            checks.push(Check::fail(
                "catalog auth",
                format!(
                    "no credentials given and the catalog answers HTTP {}",
                    anon_status.as_u16()
                ),
                "set catalog-token (bearer) or catalog-credential (client_id:client_secret)",
            ));
            return;
        }
        checks.push(Check::skip("catalog auth", "no token or credential given"));
        None
    };

    let authed = |url: &str| {
        let req = client.get(url);
        match &token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    };
    let config = match authed(&config_url).send().await {
        Ok(resp) if resp.status().is_success() => {
            resp.json::<serde_json::Value>().await.unwrap_or_default()
        }
        Ok(resp) => {
            let status = resp.status();
            let what = if opts.catalog.credential.is_none() && token.is_some() {
                "catalog auth"
            } else {
                "catalog config"
            };
            checks.push(Check::fail(
                what,
                format!("GET /v1/config: {}", error_body(resp).await),
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    "check catalog-token / catalog-credential"
                } else {
                    "check warehouse (the catalog may not know it) and catalog-uri"
                },
            ));
            return;
        }
        Err(e) => {
            checks.push(Check::fail(
                "catalog config",
                format!("GET /v1/config: {e}"),
                "check catalog-uri",
            ));
            return;
        }
    };
    if opts.catalog.credential.is_none() && token.is_some() {
        checks.push(Check::pass("catalog auth", "bearer token accepted"));
    }
    let prefix = ["overrides", "defaults"]
        .iter()
        .find_map(|k| config.get(k)?.get("prefix")?.as_str().map(str::to_string));

    // 3. namespaces listable.
    let url = match &prefix {
        Some(p) => format!("{base}/v1/{}/namespaces", p.trim_matches('/')),
        None => format!("{base}/v1/namespaces"),
    };
    match authed(&url).send().await {
        Ok(resp) if resp.status().is_success() => {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let names: Vec<String> = body
                .get("namespaces")
                .and_then(|n| n.as_array())
                .map(|a| {
                    a.iter()
                        .map(|ns| match ns.as_array() {
                            Some(parts) => parts
                                .iter()
                                .filter_map(|p| p.as_str())
                                .collect::<Vec<_>>()
                                .join("."),
                            None => ns.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let shown = if names.is_empty() {
                "none yet".to_string()
            } else {
                names.join(", ")
            };
            checks.push(Check::pass(
                "catalog namespaces",
                format!("{} listed ({shown})", names.len()),
            ));
        }
        Ok(resp) => checks.push(Check::fail(
            "catalog namespaces",
            format!("GET {url}: {}", error_body(resp).await),
            "give the principal permission to list namespaces, and check warehouse",
        )),
        Err(e) => checks.push(Check::fail(
            "catalog namespaces",
            format!("GET {url}: {e}"),
            "check catalog-uri",
        )),
    }
}

/// What a run does to the warehouse, on a throwaway table: create it, commit
/// an append and a copy-on-write upsert (data files on S3, a hand-built
/// snapshot through the REST commit endpoint), read it back, drop it.
fn scratch_table_check(opts: &DoctorOptions) -> Check {
    let what = "catalog scratch table";
    let Some(uri) = &opts.catalog.uri else {
        return Check::skip(what, "no catalog-uri given");
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if opts.s3.endpoint.is_none()
        && opts.s3.access_key_id.is_none()
        && env("AWS_ACCESS_KEY_ID").is_none()
    {
        return Check::skip(
            what,
            "no S3 settings given (s3-endpoint / AWS_ENDPOINT_URL_S3, keys), so no table was written",
        );
    }
    let config = crate::warehouse::IcebergConfig {
        uri: uri.clone(),
        warehouse: opts.catalog.warehouse.clone(),
        credential: opts
            .catalog
            .credential
            .as_ref()
            .map(|c| c.expose().to_string()),
        token: opts.catalog.token.as_ref().map(|t| t.expose().to_string()),
        s3: crate::warehouse::S3Config {
            endpoint: opts.s3.endpoint.clone(),
            region: opts.s3.region.clone().or_else(|| env("AWS_REGION")),
            access_key_id: opts
                .s3
                .access_key_id
                .as_ref()
                .map(|k| k.expose().to_string())
                .or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: opts
                .s3
                .secret_access_key
                .as_ref()
                .map(|k| k.expose().to_string())
                .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
            path_style: opts.s3.endpoint.as_ref().map(|_| true),
        },
        properties: Default::default(),
    };
    // `$` in a secret must not be taken for a `${VAR}` reference.
    if [
        &config.credential,
        &config.token,
        &config.s3.secret_access_key,
    ]
    .iter()
    .any(|v| v.as_deref().is_some_and(|v| v.contains("${")))
    {
        return Check::skip(what, "a secret contains `${`; not checked");
    }
    let name = format!("doctor_{:08x}", rand::random::<u32>());
    let result = (|| -> anyhow::Result<u64> {
        let warehouse = crate::warehouse::Warehouse::connect(&config)?;
        let conn = duckdb::Connection::open_in_memory()?;
        crate::warehouse::scan::register(&conn, &warehouse)?;
        conn.execute_batch(
            "CREATE TEMP TABLE staged AS SELECT range AS id, 'a' AS v FROM range(3)",
        )?;
        let outcome = (|| -> anyhow::Result<u64> {
            warehouse.write(
                &conn,
                "staged",
                "analytics_doctor",
                &name,
                &crate::warehouse::WriteMode::Append,
                "ignore",
            )?;
            conn.execute_batch(
                "CREATE OR REPLACE TEMP TABLE staged AS SELECT 2::BIGINT AS id, 'b' AS v",
            )?;
            warehouse.write(
                &conn,
                "staged",
                "analytics_doctor",
                &name,
                &crate::warehouse::WriteMode::Upsert {
                    keys: vec!["id".into()],
                },
                "ignore",
            )?;
            let rows: i64 = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE v = 'b'",
                    crate::warehouse::scan::call("analytics_doctor", &name)
                ),
                [],
                |r| r.get(0),
            )?;
            Ok(rows as u64)
        })();
        let dropped = warehouse.drop_table("analytics_doctor", &name);
        let rows = outcome?;
        dropped?;
        Ok(rows)
    })();
    match result {
        Ok(1) => Check::pass(
            what,
            format!(
                "created analytics_doctor.{name}, appended, upserted, read back and dropped it"
            ),
        ),
        Ok(n) => Check::fail(
            what,
            format!("the upserted row read back {n} times instead of once"),
            "the catalog does not apply commits as the Iceberg REST spec says; report it with the catalog's name and version",
        ),
        Err(e) => Check::fail(
            what,
            format!("{e:#}"),
            "check the S3 settings (endpoint, region, keys, path-style) and that the principal may create and drop tables",
        ),
    }
}

/// The S3 endpoint answers (any HTTP status); credentials are not checked yet.
async fn s3_check(client: &Client, endpoint: &str) -> Check {
    match client.get(endpoint).send().await {
        Ok(resp) => Check::pass(
            "S3 endpoint reachable",
            format!(
                "{} answers HTTP {} (credentials not checked yet)",
                fetch::redact(endpoint),
                resp.status().as_u16()
            ),
        ),
        Err(e) => Check::fail(
            "S3 endpoint reachable",
            format!("{}: {e}", fetch::redact(endpoint)),
            "check s3-endpoint and that the runner can reach it",
        ),
    }
}

/// The token can read the pages repository and push to it.
async fn github_checks(opts: &DoctorOptions, client: &Client, checks: &mut Vec<Check>) {
    let Some(token) = &opts.github_token else {
        checks.push(Check::skip(
            "GitHub token",
            "no github-token / GITHUB_TOKEN given",
        ));
        return;
    };
    let Some(repo) = &opts.pages_repository else {
        checks.push(Check::fail(
            "pages repository",
            "a GitHub token is given but no repository",
            "set pages-repository (owner/name) or GITHUB_REPOSITORY",
        ));
        return;
    };
    let url = format!("{}/repos/{repo}", opts.github_api);
    let resp = match client
        .get(&url)
        .bearer_auth(token.expose())
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::fail(
                "pages repository readable",
                format!("GET {url}: {e}"),
                "check GITHUB_API_URL and the network",
            ));
            return;
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let fix = match status {
            StatusCode::UNAUTHORIZED => {
                "the token is invalid or expired: create a new one and update the secret"
            }
            StatusCode::NOT_FOUND => {
                "check pages-repository; for another repository than the workflow's, give a token that can see it (a fine-grained PAT or a GitHub App token)"
            }
            _ => "check the token's permissions and pages-repository",
        };
        checks.push(Check::fail(
            "pages repository readable",
            format!("{repo}: {}", error_body(resp).await),
            fix,
        ));
        return;
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    checks.push(Check::pass(
        "pages repository readable",
        format!(
            "{} (default branch {})",
            body.get("full_name")
                .and_then(|v| v.as_str())
                .unwrap_or(repo),
            body.get("default_branch")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        ),
    ));
    match body
        .get("permissions")
        .and_then(|p| p.get("push"))
        .and_then(|p| p.as_bool())
    {
        Some(true) => checks.push(Check::pass(
            "pages push permission",
            format!("the token can push to {repo}"),
        )),
        Some(false) => checks.push(Check::fail(
            "pages push permission",
            format!("the token can read {repo} but not push to it"),
            "give the job `permissions: contents: write` (GITHUB_TOKEN), or use a token with Contents: write on that repository",
        )),
        None => checks.push(Check::skip(
            "pages push permission",
            "not reported for this kind of token (e.g. the workflow's GITHUB_TOKEN): make sure the job has `permissions: contents: write`",
        )),
    }
}
