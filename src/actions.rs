//! The GitHub Actions runtime contract: what the container does when a
//! workflow step `uses:` this action.
//!
//! GitHub starts the image (entrypoint `analytics`, `args` from `action.yml`)
//! with the workspace as working directory and every input as an environment
//! variable named `INPUT_` + the input's name upper-cased, spaces turned into
//! `_` and hyphens kept (`project-dir` → `INPUT_PROJECT-DIR`). Relative paths
//! are resolved against `GITHUB_WORKSPACE`. Results go back through files
//! GitHub names — `$GITHUB_OUTPUT` (step outputs, `name=value` lines) and
//! `$GITHUB_STEP_SUMMARY` (the job summary, Markdown) — and through workflow
//! commands on stdout: `::add-mask::`, `::group::`/`::endgroup::`,
//! `::error file=…,line=…::` and `::warning …::`.
//!
//! Secrets: every secret input is masked (`::add-mask::`) before anything else
//! is printed, and everything this module writes — logs, annotations, the
//! summary, outputs — goes through a [`Redactor`] as a second line of defence.
//!
//! [`INPUTS`] and [`OUTPUTS`] are the contract with `action.yml`; a test
//! checks that both declare exactly the same names and defaults.

use crate::data_tests::TestStatus;
use crate::pipeline::{self, Mode, RunOptions};
use crate::project::settings::Limits;
use crate::summary::{ModelStatus, RunReport};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// One input declared in `action.yml`.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// The input's name, as in `with:`.
    pub name: &'static str,
    /// The default `action.yml` declares (GitHub passes it when the step gives none).
    pub default: &'static str,
    /// Masked before anything is printed, never echoed.
    pub secret: bool,
}

const fn input(name: &'static str, default: &'static str) -> InputSpec {
    InputSpec {
        name,
        default,
        secret: false,
    }
}

const fn secret(name: &'static str, default: &'static str) -> InputSpec {
    InputSpec {
        name,
        default,
        secret: true,
    }
}

/// Every input the binary reads; `action.yml` declares exactly these.
pub const INPUTS: &[InputSpec] = &[
    input("mode", "ci"),
    input("project-dir", "."),
    input("target", ""),
    input("select", ""),
    input("vars", ""),
    input("full-refresh", "false"),
    input("limit-ci", ""),
    input("limit-intraday", ""),
    input("limit-backfill", ""),
    input("catalog-uri", ""),
    secret("catalog-token", ""),
    secret("catalog-credential", ""),
    input("warehouse", ""),
    input("s3-endpoint", ""),
    input("s3-region", ""),
    secret("s3-access-key-id", ""),
    secret("s3-secret-access-key", ""),
    secret("github-token", "${{ github.token }}"),
    input("pages-repository", "${{ github.repository }}"),
    input("pages-branch", "gh-pages"),
    input("pages-history", "false"),
];

/// Every output the binary writes; `action.yml` declares exactly these.
pub const OUTPUTS: &[&str] = &[
    "models-built",
    "rows-written",
    "tests-passed",
    "tests-warned",
    "tests-failed",
    "files-published",
    "commit-sha",
    "pages-url",
];

/// The environment variable GitHub sets for an input of a container action:
/// `INPUT_` + the name upper-cased, spaces to `_`, hyphens kept.
pub fn input_env_name(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

/// The process environment, as a map (tests pass their own).
pub type Env = BTreeMap<String, String>;

/// The environment of this process (variables that are not UTF-8 are left out).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Whether GitHub started the image with no arguments for an action step
/// (`GITHUB_ACTIONS=true` and the `mode` input set).
pub fn invoked_implicitly() -> bool {
    std::env::args_os().len() <= 1
        && std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")
        && std::env::var_os(input_env_name("mode")).is_some()
}

// ---------------------------------------------------------------------------
// Secrets

/// A secret value: never shown by `Debug`, only through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header, a form).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Replaces known secret values with `***` in text this binary writes.
#[derive(Clone, Default, Debug)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    values: std::sync::Arc<Vec<String>>,
}

impl Redactor {
    /// A redactor for `values` (empty strings are ignored).
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor {
            values: std::sync::Arc::new(values),
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

/// The pieces of a secret input worth masking: each line of it, and for a
/// `client_id:client_secret` credential also the secret half (it travels alone
/// in an OAuth2 form).
fn secret_pieces(name: &str, raw: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for line in raw.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        pieces.push(line.to_string());
        if name == "catalog-credential"
            && let Some((_, secret)) = line.split_once(':')
            && !secret.is_empty()
        {
            pieces.push(secret.to_string());
        }
    }
    pieces
}

/// The `::add-mask::` commands for every secret input set in `env`, and a
/// redactor for the same values. Print the commands before anything else.
pub fn mask_secrets(env: &Env) -> (Vec<String>, Redactor) {
    let mut commands = Vec::new();
    let mut values = Vec::new();
    for spec in INPUTS.iter().filter(|s| s.secret) {
        let Some(raw) = env.get(&input_env_name(spec.name)) else {
            continue;
        };
        for piece in secret_pieces(spec.name, raw) {
            commands.push(format!("::add-mask::{}", escape_data(&piece)));
            values.push(piece);
        }
    }
    (commands, Redactor::new(values))
}

/// Masks a secret learned at run time (e.g. an OAuth2 access token) when
/// running in GitHub Actions.
pub fn mask_runtime_secret(value: &str) {
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        for line in value.lines().filter(|l| !l.trim().is_empty()) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "::add-mask::{}", escape_data(line.trim()));
        }
    }
}

// ---------------------------------------------------------------------------
// Settings read from the inputs

/// The Iceberg REST catalog (read and validated; used once the warehouse exists).
#[derive(Debug, Clone, Default)]
pub struct CatalogSettings {
    /// The REST base URL (without `/v1`).
    pub uri: Option<String>,
    /// A bearer token.
    pub token: Option<Secret>,
    /// OAuth2 client credentials, `client_id:client_secret`.
    pub credential: Option<Secret>,
    /// The warehouse name or location.
    pub warehouse: Option<String>,
}

/// S3-compatible storage of the warehouse's files (read and validated; used
/// once the warehouse exists).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// The S3-compatible endpoint URL.
    pub endpoint: Option<String>,
    /// The region (`auto` for R2).
    pub region: Option<String>,
    /// The access key id (masked).
    pub access_key_id: Option<Secret>,
    /// The secret access key (masked).
    pub secret_access_key: Option<Secret>,
}

/// Where the dashboard is published.
#[derive(Debug, Clone, Default)]
pub struct PagesSettings {
    /// The token that commits to the pages branch.
    pub github_token: Option<Secret>,
    /// `owner/name`.
    pub repository: Option<String>,
    /// The branch the site is committed to.
    pub branch: String,
    /// Keep earlier commits of the pages branch (`true`), or replace it with a
    /// single commit on each publish so old data files do not pile up (`false`).
    pub history: bool,
}

/// What the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the pipeline in a mode.
    Run(Mode),
    /// `mode: doctor`: check what a run needs instead of running.
    Doctor,
}

/// Everything the inputs say, validated.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    /// Run or doctor.
    pub command: Command,
    /// What the pipeline runs (mode, project, target, select, vars, full refresh).
    pub run: RunOptions,
    /// `GITHUB_WORKSPACE`: the base of relative paths and of annotation paths.
    pub workspace: PathBuf,
    /// Per-mode caps on new files per source (also passed to the pipeline in
    /// `run.limits`, where they override `analytics.yml`'s `limits:`).
    pub limits: Limits,
    /// TODO(warehouse): passed through; the pipeline does not write Iceberg yet.
    pub catalog: CatalogSettings,
    /// TODO(warehouse): passed through.
    pub s3: S3Settings,
    /// Where the dashboard is published (also passed to the pipeline in `run.site`).
    pub pages: PagesSettings,
    /// Problems worth a `::warning::` that do not stop the run.
    pub warnings: Vec<String>,
}

impl ActionSettings {
    /// Reads and validates every input from `env` (see [`input_env_name`]).
    pub fn from_env(env: &Env, workspace: &Path) -> Result<ActionSettings> {
        let get = |name: &str| -> Option<String> {
            debug_assert!(INPUTS.iter().any(|s| s.name == name), "undeclared {name}");
            env.get(&input_env_name(name))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| get(name).map(Secret::new);
        let mut warnings = Vec::new();
        for key in env.keys() {
            if let Some(rest) = key.strip_prefix("INPUT_")
                && !INPUTS.iter().any(|s| input_env_name(s.name) == *key)
            {
                warnings.push(format!(
                    "`{}` is not an input of this action; it is ignored",
                    rest.to_lowercase()
                ));
            }
        }

        let mode_text = get("mode").unwrap_or_else(|| "ci".into());
        let command = if mode_text.eq_ignore_ascii_case("doctor") {
            Command::Doctor
        } else {
            let mode = <Mode as clap::ValueEnum>::from_str(&mode_text, true).map_err(|_| {
                anyhow!("input `mode`: `{mode_text}` is not one of ci, intraday, backfill, import, maintain, doctor")
            })?;
            Command::Run(mode)
        };
        let run_mode = match command {
            Command::Run(m) => m,
            Command::Doctor => Mode::Ci,
        };

        let project_input = get("project-dir").unwrap_or_else(|| ".".into());
        let project_dir = normalize(&workspace.join(&project_input));
        if !project_dir.join("dbt_project.yml").is_file() {
            bail!(
                "input `project-dir`: `{project_input}` ({}) holds no dbt_project.yml — \
                 give the folder of the analytics project, relative to the repository root, \
                 and check out the repository first (actions/checkout)",
                project_dir.display()
            );
        }
        let select = get("select")
            .map(|s| {
                s.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let vars = crate::cli::parse_vars(get("vars").as_deref(), "input `vars`")?;
        let full_refresh = boolean(get("full-refresh").as_deref(), "full-refresh")?;

        let limits = Limits {
            ci: count(get("limit-ci").as_deref(), "limit-ci")?,
            intraday: count(get("limit-intraday").as_deref(), "limit-intraday")?,
            backfill: count(get("limit-backfill").as_deref(), "limit-backfill")?,
        };

        let catalog = CatalogSettings {
            uri: get("catalog-uri")
                .map(|u| http_url(&u, "catalog-uri"))
                .transpose()?,
            token: secret("catalog-token"),
            credential: secret("catalog-credential"),
            warehouse: get("warehouse"),
        };
        if let Some(cred) = &catalog.credential
            && !cred.expose().contains(':')
        {
            bail!(
                "input `catalog-credential` must be `client_id:client_secret` (OAuth2 client credentials); \
                 for a bearer token use `catalog-token`"
            );
        }
        if catalog.uri.is_none()
            && (catalog.token.is_some()
                || catalog.credential.is_some()
                || catalog.warehouse.is_some())
        {
            warnings.push(
                "catalog-token / catalog-credential / warehouse are set but catalog-uri is not"
                    .into(),
            );
        }
        if catalog.token.is_some() && catalog.credential.is_some() {
            warnings.push(
                "both catalog-token and catalog-credential are set; the credential is used".into(),
            );
        }

        let s3 = S3Settings {
            endpoint: get("s3-endpoint")
                .map(|u| http_url(&u, "s3-endpoint"))
                .transpose()?,
            region: get("s3-region"),
            access_key_id: secret("s3-access-key-id"),
            secret_access_key: secret("s3-secret-access-key"),
        };
        if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
            bail!(
                "inputs `s3-access-key-id` and `s3-secret-access-key` go together: set both or neither"
            );
        }

        let repository = get("pages-repository");
        if let Some(repo) = &repository {
            let ok = repo.split('/').count() == 2
                && repo.split('/').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            if !ok {
                bail!("input `pages-repository`: `{repo}` is not `owner/name`");
            }
        }
        let branch = get("pages-branch").unwrap_or_else(|| "gh-pages".into());
        if branch.contains("..")
            || branch.starts_with('/')
            || branch.ends_with('/')
            || branch
                .chars()
                .any(|c| c.is_whitespace() || "~^:?*[\\".contains(c))
        {
            bail!("input `pages-branch`: `{branch}` is not a valid branch name");
        }
        let pages = PagesSettings {
            github_token: secret("github-token"),
            repository,
            branch,
            history: boolean(get("pages-history").as_deref(), "pages-history")?,
        };

        Ok(ActionSettings {
            command,
            run: RunOptions {
                project_dir,
                mode: run_mode,
                target: get("target"),
                select,
                vars,
                full_refresh,
                limits: limits.clone(),
                site: crate::site::SiteOptions {
                    site_dir: None,
                    github_token: pages.github_token.clone(),
                    repository: pages.repository.clone(),
                    branch: Some(pages.branch.clone()),
                    folder: None,
                    history: Some(if pages.history {
                        crate::project::settings::History::Keep
                    } else {
                        crate::project::settings::History::Single
                    }),
                },
            },
            workspace: workspace.to_path_buf(),
            limits,
            catalog,
            s3,
            pages,
            warnings,
        })
    }

    /// Hands the catalog and S3 inputs to the pipeline as the standard
    /// environment variables that `analytics.yml` targets reference (and
    /// that define the `warehouse` target when the project has none).
    pub fn export_warehouse_env(&self) {
        let pairs: [(&str, Option<&str>); 8] = [
            ("ICEBERG_REST_ENDPOINT", self.catalog.uri.as_deref()),
            ("ICEBERG_WAREHOUSE", self.catalog.warehouse.as_deref()),
            (
                "ICEBERG_CREDENTIAL",
                self.catalog.credential.as_ref().map(Secret::expose),
            ),
            (
                "ICEBERG_TOKEN",
                self.catalog.token.as_ref().map(Secret::expose),
            ),
            ("AWS_ENDPOINT_URL_S3", self.s3.endpoint.as_deref()),
            ("AWS_REGION", self.s3.region.as_deref()),
            (
                "AWS_ACCESS_KEY_ID",
                self.s3.access_key_id.as_ref().map(Secret::expose),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.s3.secret_access_key.as_ref().map(Secret::expose),
            ),
        ];
        for (name, value) in pairs {
            if let Some(value) = value {
                // SAFETY: called on the main thread before the pipeline starts
                // any thread, so nothing reads the environment concurrently.
                unsafe { std::env::set_var(name, value) };
            }
        }
    }

    /// The settings as lines for the log; secrets only as "set".
    pub fn describe(&self) -> String {
        let set = |s: &Option<Secret>| if s.is_some() { "set" } else { "not set" };
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "–".into());
        let limit = |l: Option<usize>| l.map(|n| n.to_string()).unwrap_or_else(|| "–".into());
        let mode = match self.command {
            Command::Run(m) => m.name(),
            Command::Doctor => "doctor",
        };
        format!(
            "mode: {mode}\nproject-dir: {}\ntarget: {}\nselect: {}\nvars: {}\nfull-refresh: {}\n\
             limits (ci/intraday/backfill): {}/{}/{}\n\
             catalog-uri: {}\ncatalog-token: {}\ncatalog-credential: {}\nwarehouse: {}\n\
             s3-endpoint: {}\ns3-region: {}\ns3 keys: {}\n\
             github-token: {}\npages: {} branch {} (history: {})\n",
            self.relative(&self.run.project_dir),
            opt(&self.run.target),
            if self.run.select.is_empty() {
                "all models".to_string()
            } else {
                self.run.select.join(" ")
            },
            serde_json::Value::Object(self.run.vars.clone()),
            self.run.full_refresh,
            limit(self.limits.ci),
            limit(self.limits.intraday),
            limit(self.limits.backfill),
            opt(&self.catalog.uri),
            set(&self.catalog.token),
            set(&self.catalog.credential),
            opt(&self.catalog.warehouse),
            opt(&self.s3.endpoint),
            opt(&self.s3.region),
            set(&self.s3.access_key_id),
            set(&self.pages.github_token),
            opt(&self.pages.repository),
            self.pages.branch,
            self.pages.history,
        )
    }

    /// `path` relative to the workspace (for annotations), `/`-separated.
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.workspace).unwrap_or(path);
        let text = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if text.is_empty() { ".".into() } else { text }
    }
}

fn boolean(value: Option<&str>, name: &str) -> Result<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => bail!("input `{name}`: `{other}` is not true or false"),
    }
}

fn count(value: Option<&str>, name: &str) -> Result<Option<usize>> {
    value
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| anyhow!("input `{name}`: `{v}` is not a whole number of files"))
        })
        .transpose()
}

fn http_url(value: &str, name: &str) -> Result<String> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| anyhow!("input `{name}`: `{value}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("input `{name}`: `{value}` must start with https:// (or http://)");
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Removes `.` and folds `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Workflow commands and files

/// Escapes the message of a workflow command.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property (`file=`, `title=`) of a workflow command.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Where an annotation points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Relative to the workspace (the repository root).
    pub file: String,
    pub line: usize,
}

/// An `::error` / `::warning` / `::notice` command.
pub fn annotation(kind: &str, at: Option<&Location>, title: &str, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(at) = at {
        props.push(format!("file={}", escape_property(&at.file)));
        props.push(format!("line={}", at.line));
    }
    if !title.is_empty() {
        props.push(format!("title={}", escape_property(title)));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{kind}{props}::{}", escape_data(message))
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or the heredoc form for values
/// with line breaks.
pub fn output_entry(name: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    let mut delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    while value.contains(&delimiter) {
        delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Stdout for workflow commands and messages, redacted.
/// Whether pipeline stages print `::group::` markers (set by the action run).
static STAGE_GROUPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether a stage group is open.
static STAGE_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts a collapsible log group for a pipeline stage (closing the previous
/// one) when running as the action; does nothing on the command line.
pub fn stage(name: &str) {
    use std::sync::atomic::Ordering;
    if !STAGE_GROUPS.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if STAGE_OPEN.swap(true, Ordering::SeqCst) {
        let _ = writeln!(out, "::endgroup::");
    }
    let _ = writeln!(out, "::group::{}", escape_data(name));
    let _ = out.flush();
}

/// Closes the open stage group, if any, and stops printing stage groups.
fn end_stages() {
    use std::sync::atomic::Ordering;
    STAGE_GROUPS.store(false, Ordering::SeqCst);
    if STAGE_OPEN.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "::endgroup::");
        let _ = out.flush();
    }
}

struct Console {
    redactor: Redactor,
}

impl Console {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.redactor.redact(text));
        let _ = out.flush();
    }

    fn group(&self, title: &str) {
        self.line(&format!("::group::{}", escape_data(title)));
    }

    fn endgroup(&self) {
        self.line("::endgroup::");
    }
}

/// `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` (either may be missing outside GitHub).
struct Files {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
    redactor: Redactor,
}

impl Files {
    fn outputs(&self, values: &[(&str, String)]) -> Result<()> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        let text: String = values
            .iter()
            .map(|(k, v)| output_entry(k, &self.redactor.redact(v)))
            .collect();
        append(path, &text).context("writing step outputs ($GITHUB_OUTPUT)")
    }

    fn summary(&self, markdown: &str) -> Result<()> {
        let Some(path) = &self.summary else {
            return Ok(());
        };
        append(path, &self.redactor.redact(markdown))
            .context("writing the job summary ($GITHUB_STEP_SUMMARY)")
    }
}

/// Logs to stderr with secrets redacted (each event is written whole on drop).
#[derive(Clone)]
struct RedactingStderr(Redactor);

struct RedactingWriter {
    redactor: Redactor,
    buf: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let text = self.redactor.redact(&String::from_utf8_lossy(&self.buf));
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            redactor: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Annotations from a run report

/// `::error` / `::warning` commands for failed models, failing and warning
/// tests, pointing at the file (and line) that declares them.
pub fn annotations(report: &RunReport, settings: &ActionSettings) -> Vec<String> {
    let root = &settings.run.project_dir;
    let at = |rel: &str, line: usize| Location {
        file: settings.relative(&root.join(rel)),
        line,
    };
    let mut out = Vec::new();
    for m in &report.models {
        if let ModelStatus::Error(e) = &m.status {
            let (file, line) = model_error_location(root, &m.path, e);
            out.push(annotation(
                "error",
                Some(&at(&file, line)),
                &format!("model {} failed", m.name),
                e,
            ));
        }
    }
    let project = crate::project::Project::load(root).ok();
    for t in &report.tests {
        let (kind, what) = match &t.status {
            TestStatus::Fail => ("error", "failed"),
            TestStatus::Warn => ("warning", "warned"),
            TestStatus::Error(_) => ("error", "could not run"),
            TestStatus::Pass | TestStatus::Skipped(_) => continue,
        };
        let line = project
            .as_ref()
            .and_then(|p| test_line(p, root, &t.name, &t.file))
            .unwrap_or(1);
        let on = t
            .model
            .as_deref()
            .map(|m| format!(" on `{m}`"))
            .unwrap_or_default();
        let message = match &t.status {
            TestStatus::Error(e) => format!("test `{}`{on} could not run: {e}", t.name),
            _ => format!(
                "test `{}`{on}: {} failing row{} (the job summary shows a sample)",
                t.name,
                t.failures,
                if t.failures == 1 { "" } else { "s" }
            ),
        };
        out.push(annotation(
            kind,
            Some(&at(&t.file, line)),
            &format!("test {} {what}", t.name),
            &message,
        ));
    }
    for s in &report.ingest {
        for skipped in &s.skipped {
            out.push(annotation(
                "warning",
                None,
                &format!("source {}", s.source),
                &format!("source `{}` skipped {skipped}", s.source),
            ));
        }
    }
    for w in &report.warnings {
        out.push(annotation("warning", None, "analytics", w));
    }
    if let Some(site) = &report.site {
        for w in &site.warnings {
            out.push(annotation("warning", None, "analytics export", w));
        }
        if let Some(e) = &site.error {
            out.push(annotation("error", None, "analytics export/publish", e));
        }
    }
    out
}

/// The file (relative to the project) and line a model error points at:
/// a template error's own file and line; for a SQL error, the line of the
/// model file holding the failing rendered line (else that line's number in
/// the rendered SQL); else the model file's first line.
pub fn model_error_location(root: &Path, model_path: &str, error: &str) -> (String, usize) {
    static RENDERED: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let rendered = RENDERED.get_or_init(|| {
        regex::Regex::new(r"(?m)line (\d+) of the rendered SQL \([^)]*\): `(.*)`$").ok()
    });
    if let Some(caps) = rendered.as_ref().and_then(|re| re.captures(error)) {
        let n: usize = caps[1].parse().unwrap_or(1);
        let text = caps[2].trim();
        let source = std::fs::read_to_string(root.join(model_path)).unwrap_or_default();
        let lines: Vec<&str> = source.lines().collect();
        let found = lines
            .iter()
            .position(|l| !text.is_empty() && l.trim() == text)
            .or_else(|| {
                lines
                    .iter()
                    .position(|l| text.len() > 3 && l.contains(text))
            });
        let line = match found {
            Some(i) => i + 1,
            None => n.clamp(1, lines.len().max(1)),
        };
        return (model_path.to_string(), line);
    }
    if let Some((file, line)) = file_in_message(root, error) {
        return (file, line.unwrap_or(1));
    }
    (model_path.to_string(), 1)
}

/// The first project file an error message names (`models/x.sql line 3: …`).
pub fn file_in_message(root: &Path, message: &str) -> Option<(String, Option<usize>)> {
    static PATH: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = PATH
        .get_or_init(|| {
            regex::Regex::new(r"([A-Za-z0-9_./-]+\.(?:sql|ya?ml))(?:[: ]+line (\d+)|:(\d+))?").ok()
        })
        .as_ref()?;
    for caps in re.captures_iter(message) {
        let path = caps[1].trim_start_matches("./");
        let candidate = Path::new(path);
        let rel = if candidate.is_absolute() {
            match candidate.strip_prefix(root) {
                Ok(rel) => rel.to_path_buf(),
                Err(_) => continue,
            }
        } else {
            candidate.to_path_buf()
        };
        if root.join(&rel).is_file() {
            let line = caps
                .get(2)
                .or_else(|| caps.get(3))
                .and_then(|m| m.as_str().parse().ok());
            return Some((rel.to_string_lossy().into_owned(), line));
        }
    }
    None
}

/// The line of the YAML file that declares a generic test: the test's name
/// after its column after its model; singular tests point at line 1.
fn test_line(
    project: &crate::project::Project,
    root: &Path,
    name: &str,
    file: &str,
) -> Option<usize> {
    let test = project
        .generic_tests
        .iter()
        .find(|t| t.name == name)
        .or_else(|| {
            // The pipeline makes repeated names unique with a `_2`, `_3` suffix.
            let base = name.rsplit_once('_').map(|(b, _)| b)?;
            project.generic_tests.iter().find(|t| t.name == base)
        })?;
    let text = std::fs::read_to_string(root.join(file)).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let name_line = |from: usize, value: &str| -> Option<usize> {
        let re = regex::Regex::new(&format!(
            r#"^\s*(?:-\s*)?name:\s*['"]?{}['"]?\s*(?:#.*)?$"#,
            regex::escape(value)
        ))
        .ok()?;
        (from..lines.len()).find(|&i| re.is_match(lines[i]))
    };
    let model_at = name_line(0, &test.model)?;
    let column_at = match &test.column {
        Some(c) => name_line(model_at + 1, c).unwrap_or(model_at),
        None => model_at,
    };
    let short = test.test.rsplit('.').next().unwrap_or(&test.test);
    let word = regex::Regex::new(&format!(r"\b{}\b", regex::escape(short))).ok()?;
    let next_name = regex::Regex::new(r"^\s*-\s*name:").ok()?;
    let mut at = column_at;
    for (i, line) in lines.iter().enumerate().skip(column_at + 1) {
        if next_name.is_match(line) {
            break;
        }
        if word.is_match(line) {
            at = i;
            break;
        }
    }
    Some(at + 1)
}

/// The step outputs of a run.
pub fn outputs(report: &RunReport) -> Vec<(&'static str, String)> {
    let built = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .count();
    let rows: u64 = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .filter_map(|m| m.rows)
        .sum();
    let (pass, warn, fail, error, _) = report.test_counts();
    let published = report.site.as_ref().and_then(|s| s.published.as_ref());
    vec![
        ("models-built", built.to_string()),
        ("rows-written", rows.to_string()),
        ("tests-passed", pass.to_string()),
        ("tests-warned", warn.to_string()),
        ("tests-failed", (fail + error).to_string()),
        (
            "files-published",
            published.map(|p| p.files.len()).unwrap_or(0).to_string(),
        ),
        (
            "commit-sha",
            published
                .and_then(|p| p.commit_sha.clone())
                .unwrap_or_default(),
        ),
        (
            "pages-url",
            published.and_then(|p| p.url.clone()).unwrap_or_default(),
        ),
    ]
}

// ---------------------------------------------------------------------------
// The entry point

/// Runs the action as GitHub runs the container; the process's exit status.
pub fn main() -> ExitCode {
    let env = process_env();
    // Masks first: nothing may be printed before them.
    let (masks, redactor) = mask_secrets(&env);
    {
        let mut out = std::io::stdout().lock();
        for m in &masks {
            let _ = writeln!(out, "{m}");
        }
        let _ = out.flush();
    }
    crate::cli::init_logging_to(RedactingStderr(redactor.clone()), false);
    let console = Console {
        redactor: redactor.clone(),
    };
    let files = Files {
        output: env
            .get("GITHUB_OUTPUT")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        summary: env
            .get("GITHUB_STEP_SUMMARY")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        redactor,
    };
    match run(&env, &console, &files) {
        Ok(code) => code,
        Err(err) => {
            let message = format!("{err:#}");
            let root = env
                .get("GITHUB_WORKSPACE")
                .map(PathBuf::from)
                .unwrap_or_default();
            let at = file_in_message(&root, &message).map(|(file, line)| Location {
                file,
                line: line.unwrap_or(1),
            });
            console.line(&annotation("error", at.as_ref(), "analytics", &message));
            let _ = files.summary(&failure_summary("the action", &message));
            let _ = files.outputs(&outputs(&RunReport::default()));
            ExitCode::FAILURE
        }
    }
}

fn failure_summary(what: &str, message: &str) -> String {
    format!("## analytics — ❌ {what} could not run\n\n```text\n{message}\n```\n")
}

fn run(env: &Env, console: &Console, files: &Files) -> Result<ExitCode> {
    let workspace = match env.get("GITHUB_WORKSPACE").filter(|w| !w.is_empty()) {
        Some(w) => PathBuf::from(w),
        None => std::env::current_dir().context("finding the working directory")?,
    };
    console.group("Inputs");
    let settings = ActionSettings::from_env(env, &workspace);
    if let Ok(s) = &settings {
        console.line(s.describe().trim_end());
    }
    console.endgroup();
    let settings = settings?;
    for w in &settings.warnings {
        console.line(&annotation("warning", None, "analytics inputs", w));
    }

    let mode = match settings.command {
        Command::Doctor => return doctor(&settings, console, files),
        Command::Run(mode) => mode,
    };
    settings.export_warehouse_env();
    // One group per stage (ingest, models, tests, export/publish), opened by
    // the pipeline as it goes; this first one holds loading and parsing.
    console.group(&format!(
        "analytics run --mode {} — load project",
        mode.name()
    ));
    STAGE_OPEN.store(true, std::sync::atomic::Ordering::SeqCst);
    STAGE_GROUPS.store(true, std::sync::atomic::Ordering::SeqCst);
    let result = pipeline::run(&settings.run);
    end_stages();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            // The project did not load or parse: point at the file the error names.
            let message = format!("{err:#}");
            let root = &settings.run.project_dir;
            let at = file_in_message(root, &message).map(|(file, line)| Location {
                file: settings.relative(&root.join(file)),
                line: line.unwrap_or(1),
            });
            console.line(&annotation("error", at.as_ref(), "analytics", &message));
            files.summary(&failure_summary(
                &format!("project `{}`", settings.relative(root)),
                &message,
            ))?;
            files.outputs(&outputs(&RunReport::default()))?;
            return Ok(ExitCode::FAILURE);
        }
    };

    console.group("Results");
    console.line(report.short().trim_end());
    console.endgroup();
    for a in annotations(&report, &settings) {
        console.line(&a);
    }
    files.summary(&report.markdown())?;
    files.outputs(&outputs(&report))?;
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn doctor(settings: &ActionSettings, console: &Console, files: &Files) -> Result<ExitCode> {
    let opts = crate::doctor::DoctorOptions::from_action(settings);
    console.group("analytics doctor");
    let checks = crate::doctor::run(&opts);
    for c in &checks {
        console.line(&c.line());
    }
    console.endgroup();
    for c in checks
        .iter()
        .filter(|c| c.status == crate::doctor::Status::Fail)
    {
        console.line(&annotation(
            "error",
            None,
            &format!("doctor: {}", c.what),
            &c.line(),
        ));
    }
    files.summary(&crate::doctor::markdown(&checks))?;
    Ok(if crate::doctor::passed(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_become_env_names_like_github_does() {
        assert_eq!(input_env_name("project-dir"), "INPUT_PROJECT-DIR");
        assert_eq!(input_env_name("my input"), "INPUT_MY_INPUT");
        assert_eq!(input_env_name("mode"), "INPUT_MODE");
    }

    #[test]
    fn commands_escape_their_data_and_properties() {
        let a = annotation(
            "error",
            Some(&Location {
                file: "a,b:c.sql".into(),
                line: 3,
            }),
            "t",
            "50% of\nrows",
        );
        assert_eq!(
            a,
            "::error file=a%2Cb%3Ac.sql,line=3,title=t::50%25 of%0Arows"
        );
    }

    #[test]
    fn multi_line_outputs_use_a_heredoc() {
        assert_eq!(output_entry("a", "1"), "a=1\n");
        let e = output_entry("a", "x\ny");
        let delim = e.lines().next().unwrap().strip_prefix("a<<").unwrap();
        assert!(e.ends_with(&format!("\n{delim}\n")));
        assert!(e.contains("\nx\ny\n"));
    }

    #[test]
    fn secrets_are_masked_per_line_and_credential_halves() {
        let mut env = Env::new();
        env.insert("INPUT_CATALOG-CREDENTIAL".into(), "client:s3cr%t".into());
        env.insert("INPUT_GITHUB-TOKEN".into(), "line1\nline2\n".into());
        env.insert("INPUT_PROJECT-DIR".into(), "not-a-secret".into());
        let (cmds, redactor) = mask_secrets(&env);
        assert!(cmds.contains(&"::add-mask::client:s3cr%25t".to_string()));
        assert!(cmds.contains(&"::add-mask::s3cr%25t".to_string()));
        assert!(cmds.contains(&"::add-mask::line1".to_string()));
        assert!(cmds.contains(&"::add-mask::line2".to_string()));
        assert!(!cmds.iter().any(|c| c.contains("not-a-secret")));
        assert_eq!(redactor.redact("x s3cr%t line2"), "x *** ***");
        assert_eq!(format!("{:?}", Secret::new("abc")), "Secret(***)");
    }

    #[test]
    fn bad_inputs_are_named() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("dbt_project.yml"), "name: p\n").unwrap();
        let with = |k: &str, v: &str| {
            let mut env = Env::new();
            env.insert(input_env_name(k), v.into());
            ActionSettings::from_env(&env, ws.path())
        };
        let err = |k: &str, v: &str| format!("{:#}", with(k, v).unwrap_err());
        assert!(err("mode", "hourly").contains("`hourly` is not one of"));
        assert!(err("full-refresh", "yes please").contains("full-refresh"));
        assert!(err("limit-intraday", "-1").contains("limit-intraday"));
        assert!(err("catalog-uri", "ftp://x").contains("catalog-uri"));
        assert!(err("catalog-credential", "no-colon").contains("client_id:client_secret"));
        assert!(err("pages-repository", "just-a-name").contains("owner/name"));
        assert!(err("project-dir", "nowhere").contains("dbt_project.yml"));
        assert!(err("s3-access-key-id", "AKIA").contains("go together"));
        let ok = with("select", "a, +b\nc+").unwrap();
        assert_eq!(ok.run.select, ["a", "+b", "c+"]);
        assert_eq!(ok.run.project_dir, ws.path());
        assert_eq!(ok.command, Command::Run(Mode::Ci));
        assert_eq!(with("mode", "Doctor").unwrap().command, Command::Doctor);
        assert_eq!(with("limit-ci", "3").unwrap().limits.ci, Some(3));
        let mut env = Env::new();
        env.insert("INPUT_PROJCT-DIR".into(), ".".into());
        let s = ActionSettings::from_env(&env, ws.path()).unwrap();
        assert!(s.warnings[0].contains("projct-dir"), "{:?}", s.warnings);
    }

    #[test]
    fn sql_errors_point_at_the_model_line_holding_the_failing_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        std::fs::write(
            dir.path().join("models/m.sql"),
            "{{ config(materialized='table') }}\nselect a,\n  no_such_column\nfrom t\n",
        )
        .unwrap();
        let e = "models/m.sql: line 2 of the rendered SQL (target/compiled/p/models/m.sql): `no_such_column`\nBinder Error";
        assert_eq!(
            model_error_location(dir.path(), "models/m.sql", e),
            ("models/m.sql".to_string(), 3)
        );
        let e = "models/m.sql line 7: template error: unknown function";
        assert_eq!(
            model_error_location(dir.path(), "models/m.sql", e),
            ("models/m.sql".to_string(), 7)
        );
        assert_eq!(
            model_error_location(dir.path(), "models/m.sql", "boom"),
            ("models/m.sql".to_string(), 1)
        );
    }
}
