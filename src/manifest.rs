//! `manifest.json`: the one Rust type of the site's index of data files,
//! written by the exporter, merged by publish and read by the dashboard
//! renderer (and, as JSON, by the page). Fields are only ever added; a reader
//! takes a manifest with fields it does not know, and fills the ones an older
//! writer left out with their defaults. Imports nothing of this crate.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manifest's format version (fields are only ever added).
pub const MANIFEST_VERSION: u32 = 1;

/// The manifest's dataset name of the rollups files of `dataset`
/// (`dashboard/rollups.rs` writes them; publish's merge keeps or drops
/// them with their dataset).
pub fn rollups_dataset(dataset: &str) -> String {
    format!("{dataset}{ROLLUPS_DATASET_SUFFIX}")
}

/// What [`rollups_dataset`] appends (a dataset's name is an identifier, so
/// no export is named like this).
pub const ROLLUPS_DATASET_SUFFIX: &str = ".rollups";

/// `manifest.json`: every data file of the site, for the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The dbt project's name.
    pub project: String,
    /// When the newest of its files was exported (RFC 3339, UTC): when
    /// this manifest was written, unless every file was kept from an
    /// earlier export because its rows did not change.
    pub exported_at: String,
    /// The data files, by dataset then period.
    pub files: Vec<ManifestFile>,
    /// The dashboard's first-paint summary (KPIs and the series of the view
    /// the page opens with, computed from these files when the page was
    /// rendered; its format is `dashboard::first_paint`'s). Carried here, not
    /// in a file of its own, because the page reads the manifest fresh on
    /// every visit anyway: the page's HTML never changes when only data does,
    /// and a publish whose summary changed uploads no extra file for it.
    /// `None` before the dashboard renders, or when it has no summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    /// Problems worth a warning (files near the size limit); not written.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One exported `.duckdb` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    /// The dataset's name (several files when split by period).
    pub dataset: String,
    /// The file, relative to the site root (`data/<file>.duckdb`).
    pub path: String,
    /// The table inside the file (the dataset's name).
    pub table: String,
    /// `native`, `5min`, `15min`, `30min`, `hour` or `day` (empty when a
    /// hand-written manifest leaves it out or `null`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub grain: String,
    /// The period of a split dataset (`2024_h1`), else `null`.
    #[serde(default)]
    pub period: Option<String>,
    /// Rows in the table.
    #[serde(default)]
    pub rows: u64,
    /// File size in bytes.
    #[serde(default)]
    pub bytes: u64,
    /// SHA-256 of the file, hex: the page's cache key.
    pub sha256: String,
    /// The first date in the file (`null` without a date column or rows).
    #[serde(default)]
    pub min_date: Option<String>,
    /// The last date in the file.
    #[serde(default)]
    pub max_date: Option<String>,
    /// The table's columns and their DuckDB types.
    #[serde(default)]
    pub columns: Vec<ManifestColumn>,
    /// When this file was exported (RFC 3339, UTC); differs from the
    /// manifest's time for files kept from an earlier publish.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub exported_at: String,
    /// A fingerprint of the file's rows and shape (an order-independent hash
    /// of every row, the columns, the sort and the writer): an export whose
    /// fingerprint equals the published file's keeps that file as it is.
    /// Absent in hand-written manifests and older exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A column of an exported table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestColumn {
    /// The column's name.
    pub name: String,
    /// Its DuckDB type (`DATE`, `SMALLINT`, `FLOAT`, `VARCHAR`, …).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A string field that an older or hand-written manifest may give as `null`.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Manifest {
    /// Reads a manifest from JSON text.
    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_str(text)
            .context("manifest.json is not a manifest of this version")?;
        if manifest.version != MANIFEST_VERSION {
            bail!(
                "manifest version {} is not supported (expected {MANIFEST_VERSION})",
                manifest.version
            );
        }
        Ok(manifest)
    }

    /// Reads and parses a `manifest.json` file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Manifest::parse(&text)
            .with_context(|| format!("{} is not a valid manifest", path.display()))
    }

    /// The manifest as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The dataset a site path belongs to, if the manifest lists it.
    pub fn dataset_of(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.dataset.as_str())
    }
}
