//! dbt features this project format does not run, found while the project
//! loads: each one names its file and says what to do instead. Those that
//! would silently change what a run builds (Python models, snapshots,
//! packages) are errors raised before any model runs; those that build
//! nothing (exposures, semantic models, metrics, saved queries, unit tests)
//! are warnings. `analytics doctor` lists them all at once.

use std::fmt;
use std::path::PathBuf;

/// Whether a feature stops the run or is only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ignoring it would change what the run builds: the project does not load.
    Error,
    /// Ignoring it changes nothing that is built: a warning.
    Warning,
}

/// One use of an unsupported dbt feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The file using it, relative to the project.
    pub file: PathBuf,
    /// What it is, e.g. `Python model`.
    pub feature: String,
    /// Error or warning.
    pub severity: Severity,
    /// What to do instead.
    pub advice: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} — {}",
            self.file.display(),
            self.feature,
            self.advice
        )
    }
}

impl Unsupported {
    /// A Python model (`models/**/*.py`).
    pub fn python_model(file: PathBuf) -> Self {
        Unsupported {
            file,
            feature: "Python model".into(),
            severity: Severity::Error,
            advice: "Python models do not run here, only SQL models do. To download data, \
                     declare it under `sources:` in analytics.yml (files are fetched, archived \
                     and read in SQL with read_source('name')); write transforms as SQL models"
                .into(),
        }
    }

    /// A snapshot (a file under `snapshot-paths`, a `{% snapshot %}` block or
    /// a YAML `snapshots:` entry).
    pub fn snapshot(file: PathBuf) -> Self {
        Unsupported {
            file,
            feature: "snapshot".into(),
            severity: Severity::Error,
            advice: "snapshots are not built here; keep history with an incremental SQL model \
                     (materialized='incremental', incremental_strategy='append', a loaded-at \
                     column) or remove the snapshot"
                .into(),
        }
    }

    /// `packages.yml` / `dependencies.yml` listing packages.
    pub fn packages(file: PathBuf, names: &[String]) -> Self {
        Unsupported {
            file,
            feature: format!("dbt packages ({})", names.join(", ")),
            severity: Severity::Error,
            advice: "packages are not installed here (there is no `dbt deps`); copy the macros \
                     and generic tests the project uses into macros/ (or tests/generic/) and \
                     remove the file"
                .into(),
        }
    }

    /// A YAML key whose entries build nothing: exposures, semantic models,
    /// metrics, saved queries, unit tests.
    pub fn ignored_yaml(file: PathBuf, key: &str) -> Option<Self> {
        let (feature, advice) = match key {
            "exposures" => (
                "exposures",
                "ignored: exposures build nothing; the dashboard is described by `dashboard:` \
                 in analytics.yml",
            ),
            "semantic_models" => (
                "semantic models",
                "ignored: the semantic layer is not supported; write the aggregation as a SQL \
                 model",
            ),
            "metrics" => (
                "metrics",
                "ignored: metrics are not supported; write them as SQL models (and \
                 `dashboard:` KPIs in analytics.yml)",
            ),
            "saved_queries" => (
                "saved queries",
                "ignored: saved queries are not supported; write them as SQL models",
            ),
            "unit_tests" => (
                "unit tests",
                "not run: unit tests are not supported; express the check as a singular test \
                 (tests/*.sql) or a generic test",
            ),
            _ => return None,
        };
        Some(Unsupported {
            file,
            feature: feature.into(),
            severity: Severity::Warning,
            advice: advice.into(),
        })
    }
}

impl Unsupported {
    /// A seed config that is not honoured, on the seed's CSV file.
    pub fn seed_option(file: PathBuf, key: &str) -> Option<Self> {
        let advice = match key {
            "quote_columns" => {
                "ignored: column names are always the CSV header's, as written (as with \
                 quote_columns: true); to change a name, rename the column in the header or \
                 in the models that read the seed"
            }
            _ => return None,
        };
        Some(Unsupported {
            file,
            feature: format!("seed config `{key}`"),
            severity: Severity::Warning,
            advice: advice.into(),
        })
    }
}

/// The seed configs [`Unsupported::seed_option`] knows (`column_types` and
/// `delimiter` are honoured: `seeds.rs`).
pub const IGNORED_SEED_KEYS: &[&str] = &["quote_columns"];

/// The YAML keys [`Unsupported::ignored_yaml`] knows.
pub const IGNORED_YAML_KEYS: &[&str] = &[
    "exposures",
    "semantic_models",
    "metrics",
    "saved_queries",
    "unit_tests",
];

/// The error raised at load for the features that are errors, all at once.
pub fn load_error(found: &[Unsupported]) -> Option<String> {
    let errors: Vec<String> = found
        .iter()
        .filter(|u| u.severity == Severity::Error)
        .map(|u| format!("  - {u}"))
        .collect();
    (!errors.is_empty()).then(|| {
        format!(
            "this project uses dbt features analytics does not run (nothing was built; \
             `analytics doctor` lists every one):\n{}",
            errors.join("\n")
        )
    })
}
