//! `analytics.yml`: what dbt has no place for — targets, sources to ingest,
//! and (in later stages) exports and publishing.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The parsed `analytics.yml`. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    /// Named places where models are built.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// Files to ingest before models run.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where ingested files are kept, relative to the project (default `target/archive`).
    #[serde(default)]
    pub archive_dir: Option<String>,
    /// `maintain` mode's settings (file size target, snapshots to keep).
    #[serde(default)]
    pub maintenance: Option<crate::warehouse::maintain::MaintainOptions>,
    /// Sections owned by later pipeline stages, kept so they are not reported as unknown.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Sections of `analytics.yml` that later stages read; anything else is a typo.
const LATER_SECTIONS: &[&str] = &["exports", "publish", "dashboard"];

/// A build target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetConfig {
    /// A DuckDB database: `:memory:` or a file path relative to the project.
    Duckdb {
        #[serde(default = "memory_path")]
        /// `:memory:` (the default) or a database file relative to the project.
        path: String,
        /// The schema models go to when they configure none (dbt's `target.schema`).
        #[serde(default = "main_schema")]
        schema: String,
        #[serde(default)]
        /// DuckDB's `threads` setting; DuckDB's default when unset.
        threads: Option<u32>,
        /// Other DuckDB settings applied when the session opens, e.g.
        /// `memory_limit: 400MB`, `preserve_insertion_order: false`.
        #[serde(default)]
        settings: BTreeMap<String, Value>,
    },
    /// Models computed in an in-memory DuckDB and stored as Iceberg tables
    /// through a REST catalog (the durable warehouse of `intraday`,
    /// `backfill`, `import` and `maintain`).
    Iceberg {
        /// Catalog URI, warehouse, auth and S3 settings (`${ENV}` allowed).
        #[serde(flatten)]
        catalog: Box<crate::warehouse::IcebergConfig>,
        /// The namespace models land in by default.
        #[serde(default = "main_schema")]
        schema: String,
        /// DuckDB's `threads` setting for the compute session.
        #[serde(default)]
        threads: Option<u32>,
        /// Other DuckDB settings for the compute session.
        #[serde(default)]
        settings: BTreeMap<String, Value>,
    },
}

fn memory_path() -> String {
    ":memory:".to_string()
}

fn main_schema() -> String {
    "main".to_string()
}

impl TargetConfig {
    /// The in-memory DuckDB target that `ci` mode uses when none is named.
    pub fn memory() -> Self {
        TargetConfig::Duckdb {
            path: memory_path(),
            schema: main_schema(),
            threads: None,
            settings: BTreeMap::new(),
        }
    }

    /// The `warehouse` target a project gets without defining one, when
    /// `ICEBERG_REST_ENDPOINT` is set (the action sets it from its inputs):
    /// every value comes from the standard environment variables.
    pub fn from_standard_env() -> Self {
        let var = |name: &str| Some(format!("${{{name}:-}}"));
        TargetConfig::Iceberg {
            catalog: Box::new(crate::warehouse::IcebergConfig {
                uri: "${ICEBERG_REST_ENDPOINT}".into(),
                warehouse: var("ICEBERG_WAREHOUSE"),
                credential: var("ICEBERG_CREDENTIAL"),
                token: var("ICEBERG_TOKEN"),
                s3: crate::warehouse::S3Config {
                    endpoint: var("AWS_ENDPOINT_URL_S3"),
                    region: var("AWS_REGION"),
                    access_key_id: var("AWS_ACCESS_KEY_ID"),
                    secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
                    path_style: std::env::var_os("AWS_ENDPOINT_URL_S3").map(|_| true),
                },
                properties: Default::default(),
            }),
            schema: main_schema(),
            threads: None,
            settings: BTreeMap::new(),
        }
    }

    /// The schema models land in by default.
    pub fn schema(&self) -> &str {
        match self {
            TargetConfig::Duckdb { schema, .. } | TargetConfig::Iceberg { schema, .. } => schema,
        }
    }

    /// dbt's `target.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Duckdb { .. } => "duckdb",
            TargetConfig::Iceberg { .. } => "iceberg",
        }
    }
}

/// How a source finds its files.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// An HTML directory listing (e.g. AEMO NEMWEB); links picked by `pattern`.
    Listing,
    /// A folder of a GitHub repository, listed through the contents API.
    Github,
    /// One fixed file.
    Url,
}

/// How a downloaded file is stored in the archive.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Stored as it is (gzip-compressed).
    #[default]
    Raw,
    /// A CSV file (stored gzip-compressed).
    Csv,
    /// AEMO MMS multi-table CSV: split into one CSV per table.
    Mms,
}

/// Per-mode caps on how many new files a run takes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Cap in `ci` mode.
    pub ci: Option<usize>,
    /// Cap in `intraday` mode.
    pub intraday: Option<usize>,
    /// Cap in `backfill` mode.
    pub backfill: Option<usize>,
}

/// One declarative source of files.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    /// The source's name: its archive folder and the name models read it by.
    pub name: String,
    /// How the source finds its files.
    pub kind: SourceKind,
    #[serde(default)]
    /// `listing`: the page to list; `url`: the file; `github`: the API base (optional).
    pub url: Option<String>,
    /// Regex that file names must match (listing/github).
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    /// How downloaded files are stored (raw, CSV or split MMS).
    pub format: SourceFormat,
    /// MMS tables to keep (`DUNIT`, `DISPATCH_PRICE`…); all when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    /// A local file or folder used instead of the network in `ci` mode.
    #[serde(default)]
    pub sample: Option<String>,
    #[serde(default)]
    /// Per-mode caps on new files taken per run.
    pub limits: Limits,
    /// Modes the source runs in; all ingesting modes when empty.
    #[serde(default)]
    pub modes: Vec<String>,
    /// Also take this source, whatever the mode, while this model's table is
    /// missing or empty (e.g. reference data feeding a dimension).
    #[serde(default)]
    pub also_when_empty: Option<String>,
    /// `github`: the repository (`owner/name`), folder and ref to list.
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    /// `github`: the folder to list (default: the repository root).
    pub path: Option<String>,
    #[serde(default, rename = "ref")]
    /// `github`: the branch, tag or commit to list (default: the default branch).
    pub git_ref: Option<String>,
    /// `github`: the environment variable holding a token (default `GITHUB_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// `url`: the name to store the file under (default: the URL's last segment).
    #[serde(default)]
    pub file_name: Option<String>,
    /// Spreadsheets: the sheet to read (default: the first) and rows above the header.
    #[serde(default)]
    pub sheet: Option<String>,
    #[serde(default)]
    /// Spreadsheets: rows to skip above the header.
    pub skip_rows: usize,
    /// Downloads at once (default 4), and the pause between batches.
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    /// Milliseconds to wait between download batches (default 0).
    pub pause_ms: Option<u64>,
    /// Attempts per request on 403/429/5xx/timeouts (default 4) and the first
    /// backoff (default 500 ms, doubling).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    /// Milliseconds of the first retry backoff (default 500, doubling).
    pub retry_base_ms: Option<u64>,
    /// Seconds one download may take (default 600).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Anything else: reported as unknown.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Limits {
    /// The cap for `mode`, if one is set.
    pub fn for_mode(&self, mode: &str) -> Option<usize> {
        match mode {
            "ci" => self.ci,
            "intraday" => self.intraday,
            "backfill" => self.backfill,
            _ => None,
        }
    }
}

impl SourceConfig {
    /// The cap on new files for `mode` (`None`: no cap).
    pub fn limit(&self, mode: &str) -> Option<usize> {
        self.limits.for_mode(mode)
    }

    /// Whether the source runs in `mode` (all modes when `modes` is empty).
    pub fn runs_in(&self, mode: &str) -> bool {
        self.modes.is_empty() || self.modes.iter().any(|m| m == mode)
    }
}

impl Settings {
    /// Reads `analytics.yml` from the project root; a missing file means defaults.
    pub fn load(root: &Path, warnings: &mut Vec<String>) -> Result<Settings> {
        let path = root.join("analytics.yml");
        if !path.exists() {
            return Ok(Settings::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(Settings::default());
        }
        let settings: Settings = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is not a valid analytics.yml", path.display()))?;
        for key in settings.other.keys() {
            if !LATER_SECTIONS.contains(&key.as_str()) {
                warnings.push(format!("analytics.yml: unknown section `{key}` ignored"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for source in &settings.sources {
            if !seen.insert(source.name.as_str()) {
                bail!("analytics.yml: source `{}` is declared twice", source.name);
            }
            for key in source.other.keys() {
                warnings.push(format!(
                    "analytics.yml: source `{}`: unknown option `{key}` ignored",
                    source.name
                ));
            }
            match source.kind {
                SourceKind::Listing | SourceKind::Url if source.url.is_none() => {
                    bail!("analytics.yml: source `{}` needs a `url`", source.name)
                }
                SourceKind::Github if source.repo.is_none() => bail!(
                    "analytics.yml: source `{}` (kind github) needs `repo: owner/name`",
                    source.name
                ),
                _ => {}
            }
            if let Some(pattern) = &source.pattern {
                regex::Regex::new(pattern).with_context(|| {
                    format!(
                        "analytics.yml: source `{}` has an invalid pattern",
                        source.name
                    )
                })?;
            }
        }
        Ok(settings)
    }

    /// Looks up a target by name; `memory` always exists.
    pub fn target(&self, name: &str) -> Result<TargetConfig> {
        if let Some(target) = self.targets.get(name) {
            return Ok(target.clone());
        }
        if name == "memory" {
            return Ok(TargetConfig::memory());
        }
        if name == "warehouse" && std::env::var_os("ICEBERG_REST_ENDPOINT").is_some() {
            return Ok(TargetConfig::from_standard_env());
        }
        let known: Vec<&str> = self
            .targets
            .keys()
            .map(String::as_str)
            .chain(["memory"])
            .collect();
        bail!(
            "unknown target `{name}`; analytics.yml defines: {}",
            known.join(", ")
        )
    }
}
