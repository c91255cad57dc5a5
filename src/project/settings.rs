//! `analytics.yml`: what dbt has no place for — targets, sources to ingest,
//! dashboard exports and publishing.

use super::dashboard::DashboardConfig;
use super::targets::{MaintainOptions, TargetConfig, TargetYaml};
use crate::environ::Env;
use crate::mode::Mode;
use anyhow::{Context, Result, bail};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The parsed `analytics.yml`. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    /// Named places where models are built.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetYaml>,
    /// Files to ingest before models run.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where ingested files are kept, relative to the project (default `target/archive`).
    #[serde(default)]
    pub archive_dir: Option<String>,
    /// `maintain` mode's settings (file size target, snapshots to keep).
    #[serde(default)]
    pub maintenance: Option<MaintainOptions>,
    /// Datasets exported as compact DuckDB files for the dashboard.
    #[serde(default)]
    pub exports: Vec<ExportConfig>,
    /// Where the site (dashboard + data files) is published.
    #[serde(default)]
    pub publish: PublishSettings,
    /// How the data tests run (`tests:`).
    #[serde(default)]
    pub tests: TestSettings,
    /// The dashboard page (`dashboard:`), parsed and validated at load;
    /// `None` when the file has no such section.
    #[serde(skip)]
    pub dashboard: Option<DashboardConfig>,
    /// Unknown sections (reported as warnings).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `tests:` in analytics.yml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TestSettings {
    /// What the built-in generic tests of an incrementally built model read.
    #[serde(default)]
    pub incremental_scope: TestScope,
}

/// What the built-in generic tests (`not_null`, `accepted_values`, `unique`,
/// `relationships`) of a model built incrementally read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TestScope {
    /// The whole model, as `dbt build` does (same failures, same counts).
    #[default]
    All,
    /// What the run wrote (see `data_tests::narrow_to_new_rows`): a daily
    /// backfill's tests cost what it added, not the history.
    NewRows,
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
    /// `github`: the folder to list (default: the repository root); `{year}`
    /// in it is replaced by every year of `years`.
    pub path: Option<String>,
    /// `github`: the years a `{year}` in `path` stands for: `2015..` (to the
    /// current year, UTC) or `2015..2020`.
    #[serde(default)]
    pub years: Option<String>,
    /// Offer only the newest matching file (by name, as AEMO's dated names
    /// sort), e.g. the latest registration workbook of a folder of them.
    #[serde(default)]
    pub latest: bool,
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

/// The time grain of an exported dataset.
///
/// `native` keeps the query's rows as they are; the others bucket the
/// dataset's `time_column` (and, at `day`, keep only the date column) and
/// aggregate the measures named in `aggregate`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Grain {
    /// The rows of the query, unaggregated.
    #[serde(rename = "native")]
    Native,
    /// 5-minute buckets (AEMO's dispatch interval).
    #[serde(rename = "5min")]
    FiveMinutes,
    /// 15-minute buckets.
    #[serde(rename = "15min")]
    FifteenMinutes,
    /// 30-minute buckets.
    #[serde(rename = "30min")]
    HalfHour,
    /// Hourly buckets.
    #[serde(rename = "hour")]
    Hour,
    /// One row per date (and group keys).
    #[serde(rename = "day")]
    Day,
}

impl Grain {
    /// The name written in `analytics.yml` and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Grain::Native => "native",
            Grain::FiveMinutes => "5min",
            Grain::FifteenMinutes => "15min",
            Grain::HalfHour => "30min",
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    /// The DuckDB interval a timestamp is bucketed to (`None`: native or day).
    pub fn bucket(self) -> Option<&'static str> {
        match self {
            Grain::FiveMinutes => Some("5 minutes"),
            Grain::FifteenMinutes => Some("15 minutes"),
            Grain::HalfHour => Some("30 minutes"),
            Grain::Hour => Some("1 hour"),
            Grain::Native | Grain::Day => None,
        }
    }
}

/// How an exported dataset is split into period files by its date column.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// One file per year: `name_2024.duckdb`.
    Year,
    /// One file per half-year: `name_2024_h1.duckdb`.
    HalfYear,
    /// One file per quarter: `name_2024_q1.duckdb`.
    Quarter,
    /// One file per month: `name_2024_01.duckdb`.
    Month,
    /// One file per day: `name_2024_01_31.duckdb` (a window of recent
    /// days, so a run rewrites only the days that changed).
    Day,
}

/// How a measure is aggregated when a dataset is coarser than its rows.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Volumes (MWh, counts of events).
    Sum,
    /// Levels and prices (MW, $/MWh).
    Avg,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// Non-null values.
    Count,
}

impl Aggregate {
    /// The DuckDB aggregate function.
    pub fn function(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Count => "count",
        }
    }
}

/// One dashboard dataset (`exports:` in `analytics.yml`): a SQL query over the
/// models, shaped into one or more compact `.duckdb` files.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportConfig {
    /// The dataset's name: its file name prefix and the table inside each file.
    pub name: String,
    /// A SELECT over the models, Jinja like a model (`ref()`, macros, vars).
    pub sql: String,
    /// `native` (default), `5min`, `15min`, `30min`, `hour` or `day`.
    #[serde(default = "native_grain")]
    pub grain: Grain,
    /// A TIMESTAMP column: bucketed to the grain and written as `time`
    /// (SMALLINT `HHMM`); dropped at `day` grain.
    #[serde(default)]
    pub time_column: Option<String>,
    /// The DATE column that windows, splits and dates the files (default `date`).
    #[serde(default)]
    pub date_column: Option<String>,
    /// Measure → `sum` | `avg` | `min` | `max` | `count`; every other column is a
    /// group key. Needed for any grain but `native`.
    #[serde(default)]
    pub aggregate: BTreeMap<String, Aggregate>,
    /// Keep only the last N dates (counted back from the newest date in the data).
    #[serde(default)]
    pub window_days: Option<u32>,
    /// Split into period files by the date column.
    #[serde(default)]
    pub split: Option<Split>,
    /// Columns the rows are sorted by (what the dashboard filters on; DuckDB's
    /// zone maps then skip row groups). Default: date, time, then group keys.
    #[serde(default)]
    pub sort: Vec<String>,
    /// Modes that write this dataset (default `backfill`, `import`); `ci`
    /// writes every dataset when it has a site folder.
    #[serde(default)]
    pub modes: Vec<String>,
    /// Compact types: DOUBLE/DECIMAL → REAL, TIME → SMALLINT `HHMM`,
    /// HUGEINT → BIGINT (default true).
    #[serde(default = "yes")]
    pub compact: bool,
    /// Anything else: reported as unknown.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn native_grain() -> Grain {
    Grain::Native
}

fn yes() -> bool {
    true
}

impl ExportConfig {
    /// Whether `mode` writes this dataset.
    pub fn runs_in(&self, mode: Mode) -> bool {
        if mode == Mode::Ci {
            return true;
        }
        if self.modes.is_empty() {
            return matches!(mode, Mode::Backfill | Mode::Import);
        }
        mode.named_in(&self.modes)
    }
}

/// Whether each publish adds a commit on top of the branch or replaces it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum History {
    /// Each publish is one commit on top of the branch.
    Keep,
    /// Each publish is one parentless commit: old data files do not pile up
    /// in the repository's history.
    #[default]
    Single,
}

/// `publish:` in `analytics.yml`: where the site goes. Action inputs and
/// command-line options override it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PublishSettings {
    /// `owner/name` (default: `GITHUB_REPOSITORY`, the repository running the workflow).
    #[serde(default)]
    pub repository: Option<String>,
    /// The branch (default `gh-pages`).
    #[serde(default)]
    pub branch: Option<String>,
    /// A folder of the branch to publish into (default: the root).
    #[serde(default)]
    pub folder: Option<String>,
    /// `keep` or `single` (default `single`).
    #[serde(default)]
    pub history: Option<History>,
    /// The commit message (default `analytics: publish <mode> (<n> files)`).
    #[serde(default)]
    pub message: Option<String>,
    /// Anything else: reported as unknown.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Limits {
    /// The cap for `mode`, if one is set.
    pub fn for_mode(&self, mode: Mode) -> Option<usize> {
        match mode {
            Mode::Ci => self.ci,
            Mode::Intraday => self.intraday,
            Mode::Backfill => self.backfill,
            Mode::Import | Mode::Maintain => None,
        }
    }
}

impl SourceConfig {
    /// The years `years` names (`2015..` runs to `current`), oldest first.
    pub fn year_range(&self, current: i32) -> Result<std::ops::RangeInclusive<i32>> {
        let Some(text) = self.years.as_deref() else {
            return Ok(current..=current);
        };
        let (from, to) = text
            .split_once("..")
            .with_context(|| format!("`{text}` is not `FROM..` or `FROM..TO`"))?;
        let year = |t: &str| -> Result<i32> {
            t.trim()
                .parse::<i32>()
                .ok()
                .filter(|y| (1900..=2999).contains(y))
                .with_context(|| format!("`{t}` is not a year"))
        };
        let from = year(from)?;
        let to = if to.trim().is_empty() {
            current
        } else {
            year(to)?
        };
        if from > to {
            bail!("{from} is after {to}");
        }
        Ok(from..=to)
    }

    /// The folders a `github` source lists: `path`, or one per year when it
    /// holds `{year}`.
    pub fn github_paths(&self, current: i32) -> Result<Vec<String>> {
        let path = self.path.as_deref().unwrap_or("").trim_matches('/');
        if !path.contains("{year}") {
            return Ok(vec![path.to_string()]);
        }
        Ok(self
            .year_range(current)?
            .map(|y| path.replace("{year}", &y.to_string()))
            .collect())
    }

    /// The cap on new files for `mode` (`None`: no cap).
    pub fn limit(&self, mode: Mode) -> Option<usize> {
        self.limits.for_mode(mode)
    }

    /// Whether the source runs in `mode` (all modes when `modes` is empty).
    pub fn runs_in(&self, mode: Mode) -> bool {
        self.modes.is_empty() || mode.named_in(&self.modes)
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
        let mut settings: Settings = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is not a valid analytics.yml", path.display()))?;
        if let Some(section) = settings.other.remove("dashboard") {
            settings.dashboard = Some(DashboardConfig::from_value(Some(&section))?);
        }
        for key in settings.other.keys() {
            warnings.push(format!("analytics.yml: unknown section `{key}` ignored"));
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
            if let Some(years) = &source.years {
                source
                    .year_range(chrono::Utc::now().year())
                    .with_context(|| {
                        format!("analytics.yml: source `{}`: years `{years}`", source.name)
                    })?;
                if source.kind != SourceKind::Github
                    || !source.path.as_deref().is_some_and(|p| p.contains("{year}"))
                {
                    bail!(
                        "analytics.yml: source `{}`: `years` needs kind github and a `path` with `{{year}}`",
                        source.name
                    );
                }
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
        let mut names = std::collections::BTreeSet::new();
        for export in &settings.exports {
            let name = &export.name;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                bail!(
                    "analytics.yml: export `{name}`: a dataset name is lower-case letters, digits and `_` \
                     (it names the file and the table inside it)"
                );
            }
            if !names.insert(name.as_str()) {
                bail!("analytics.yml: export `{name}` is declared twice");
            }
            for key in export.other.keys() {
                warnings.push(format!(
                    "analytics.yml: export `{name}`: unknown option `{key}` ignored"
                ));
            }
            if export.grain != Grain::Native && export.aggregate.is_empty() {
                bail!(
                    "analytics.yml: export `{name}`: grain `{}` needs `aggregate:` rules \
                     (measure: sum | avg | min | max | count) to know how to combine rows",
                    export.grain.name()
                );
            }
            if export.grain.bucket().is_some() && export.time_column.is_none() {
                bail!(
                    "analytics.yml: export `{name}`: grain `{}` needs `time_column:` (the TIMESTAMP to bucket)",
                    export.grain.name()
                );
            }
            for mode in &export.modes {
                if !["ci", "intraday", "backfill", "import"].contains(&mode.as_str()) {
                    bail!(
                        "analytics.yml: export `{name}`: mode `{mode}` is not one of ci, intraday, backfill, import"
                    );
                }
            }
        }
        for key in settings.publish.other.keys() {
            warnings.push(format!(
                "analytics.yml: publish: unknown option `{key}` ignored"
            ));
        }
        Ok(settings)
    }

    /// Looks up a target by name and resolves it against `env`; `memory`
    /// always exists, and `warehouse` comes from the standard variables
    /// (`ICEBERG_REST_ENDPOINT`, …) when the file does not define it.
    pub fn target(&self, name: &str, env: &Env) -> Result<TargetConfig> {
        let resolve = |t: &TargetYaml| {
            t.resolve(env)
                .with_context(|| format!("analytics.yml: target `{name}`"))
        };
        if let Some(target) = self.targets.get(name) {
            return resolve(target);
        }
        if name == "memory" {
            return Ok(TargetConfig::memory());
        }
        if name == "warehouse" && env.contains("ICEBERG_REST_ENDPOINT") {
            return resolve(&TargetYaml::from_standard_env(env));
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
