//! The Action's inputs: the contract with `action.yml` ([`INPUTS`],
//! [`OUTPUTS`]) and [`ActionSettings`], the inputs resolved once into the
//! same typed settings the command line builds.

use crate::environ::Env;
use crate::mode::Mode;
use crate::pipeline::RunOptions;
use crate::project::settings::Limits;
use crate::secret::{Redactor, Secret};
use anyhow::{Result, anyhow, bail};
use std::path::{Component, Path, PathBuf};

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
    input("profiles-dir", ""),
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

/// Whether GitHub started the image with no arguments for an action step
/// (`GITHUB_ACTIONS=true` and the `mode` input set).
pub fn invoked_implicitly() -> bool {
    std::env::args_os().len() <= 1
        && std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")
        && std::env::var_os(input_env_name("mode")).is_some()
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
            commands.push(format!(
                "::add-mask::{}",
                super::commands::escape_data(&piece)
            ));
            values.push(piece);
        }
    }
    (commands, Redactor::new(values))
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
        for (key, _) in env.iter() {
            if let Some(rest) = key.strip_prefix("INPUT_")
                && !INPUTS.iter().any(|s| input_env_name(s.name) == key)
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
        // dbt's `--profiles-dir`: resolved here once, like project-dir.
        let profiles_dir = match get("profiles-dir") {
            None => None,
            Some(dir) => {
                let path = normalize(&workspace.join(&dir));
                if !path.join("profiles.yml").is_file() {
                    bail!(
                        "input `profiles-dir`: `{dir}` ({}) holds no profiles.yml — give the \
                         folder of dbt's profiles.yml, relative to the repository root, or \
                         leave it empty (the project folder, then ~/.dbt)",
                        path.display()
                    );
                }
                Some(path)
            }
        };
        let select = get("select")
            .map(|s| {
                s.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let vars = crate::project::parse_vars(get("vars").as_deref(), "input `vars`")?;
        let full_refresh = boolean(get("full-refresh").as_deref(), "full-refresh")?;

        let limits = Limits {
            ci: count(get("limit-ci").as_deref(), "limit-ci")?,
            intraday: count(get("limit-intraday").as_deref(), "limit-intraday")?,
            backfill: count(get("limit-backfill").as_deref(), "limit-backfill")?,
        };

        // The catalog and storage inputs become the standard variables of the
        // run's environment (never of the process): `analytics.yml` targets
        // name them as `${ICEBERG_TOKEN}` and so on, and without a
        // `warehouse` target they define one.
        let catalog_uri = get("catalog-uri")
            .map(|u| http_url(&u, "catalog-uri"))
            .transpose()?;
        let credential = get("catalog-credential");
        if let Some(cred) = &credential
            && !cred.contains(':')
        {
            bail!(
                "input `catalog-credential` must be `client_id:client_secret` (OAuth2 client credentials); \
                 for a bearer token use `catalog-token`"
            );
        }
        let token = get("catalog-token");
        let warehouse = get("warehouse");
        if catalog_uri.is_none() && (token.is_some() || credential.is_some() || warehouse.is_some())
        {
            warnings.push(
                "catalog-token / catalog-credential / warehouse are set but catalog-uri is not"
                    .into(),
            );
        }
        if token.is_some() && credential.is_some() {
            warnings.push(
                "both catalog-token and catalog-credential are set; the credential is used".into(),
            );
        }
        let s3_endpoint = get("s3-endpoint")
            .map(|u| http_url(&u, "s3-endpoint"))
            .transpose()?;
        let (key_id, secret_key) = (get("s3-access-key-id"), get("s3-secret-access-key"));
        if key_id.is_some() != secret_key.is_some() {
            bail!(
                "inputs `s3-access-key-id` and `s3-secret-access-key` go together: set both or neither"
            );
        }
        let mut run_env = env.clone();
        for (name, value) in [
            ("ICEBERG_REST_ENDPOINT", catalog_uri),
            ("ICEBERG_WAREHOUSE", warehouse),
            ("ICEBERG_CREDENTIAL", credential),
            ("ICEBERG_TOKEN", token),
            ("AWS_ENDPOINT_URL_S3", s3_endpoint),
            ("AWS_REGION", get("s3-region")),
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret_key),
        ] {
            if let Some(value) = value {
                run_env.set(name, &value);
            }
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
                profiles_dir,
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
                    ..Default::default()
                }
                .with_env(&run_env),
                env: run_env,
            },
            workspace: workspace.to_path_buf(),
            limits,
            pages,
            warnings,
        })
    }

    /// The settings as lines for the log; secrets only as "set".
    pub fn describe(&self) -> String {
        let set = |s: &Option<Secret>| if s.is_some() { "set" } else { "not set" };
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "–".into());
        let env = &self.run.env;
        let var = |name: &str| env.non_empty(name).map(str::to_string);
        let var_set = |name: &str| var(name).map(Secret::new);
        let limit = |l: Option<usize>| l.map(|n| n.to_string()).unwrap_or_else(|| "–".into());
        let mode = match self.command {
            Command::Run(m) => m.name(),
            Command::Doctor => "doctor",
        };
        format!(
            "mode: {mode}\nproject-dir: {}\nprofiles-dir: {}\ntarget: {}\nselect: {}\nvars: {}\nfull-refresh: {}\n\
             limits (ci/intraday/backfill): {}/{}/{}\n\
             catalog-uri: {}\ncatalog-token: {}\ncatalog-credential: {}\nwarehouse: {}\n\
             s3-endpoint: {}\ns3-region: {}\ns3 keys: {}\n\
             github-token: {}\npages: {} branch {} (history: {})\n",
            self.relative(&self.run.project_dir),
            self.run
                .profiles_dir
                .as_deref()
                .map(|d| self.relative(d))
                .unwrap_or_else(|| "–".into()),
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
            opt(&var("ICEBERG_REST_ENDPOINT")),
            set(&var_set("ICEBERG_TOKEN")),
            set(&var_set("ICEBERG_CREDENTIAL")),
            opt(&var("ICEBERG_WAREHOUSE")),
            opt(&var("AWS_ENDPOINT_URL_S3")),
            opt(&var("AWS_REGION")),
            set(&var_set("AWS_ACCESS_KEY_ID")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_dir_is_resolved_once_against_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("analytics/config")).unwrap();
        std::fs::write(ws.path().join("analytics/dbt_project.yml"), "name: p\n").unwrap();
        std::fs::write(ws.path().join("analytics/config/profiles.yml"), "p: {}\n").unwrap();
        let with = |dir: Option<&str>| {
            let mut env = Env::default();
            env.set(&input_env_name("project-dir"), "analytics");
            if let Some(dir) = dir {
                env.set(&input_env_name("profiles-dir"), dir);
            }
            ActionSettings::from_env(&env, ws.path())
        };
        let s = with(Some("analytics/./config/")).unwrap();
        assert_eq!(
            s.run.profiles_dir.as_deref(),
            Some(ws.path().join("analytics/config").as_path())
        );
        assert!(s.describe().contains("profiles-dir: analytics/config\n"));
        // The pipeline's plan gets it: nothing reads DBT_PROFILES_DIR for it.
        assert!(s.run.env.get("DBT_PROFILES_DIR").is_none());
        assert_eq!(
            s.run.plan_options().profiles_dir,
            Some(ws.path().join("analytics/config").as_path())
        );
        assert_eq!(with(Some("")).unwrap().run.profiles_dir, None);
        assert_eq!(with(None).unwrap().run.profiles_dir, None);
        let err = format!("{:#}", with(Some("analytics")).unwrap_err());
        assert!(
            err.contains("profiles-dir") && err.contains("holds no profiles.yml"),
            "{err}"
        );
    }
}
