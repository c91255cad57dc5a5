//! Targets: where models are built. `analytics.yml` names them with `${VAR}`
//! references ([`TargetYaml`], the file format); [`TargetYaml::resolve`] turns
//! one into a [`TargetConfig`] once, against the run's [`Env`], with every
//! secret held as a [`Secret`]. Nothing below resolves a target again.

use crate::environ::Env;
use crate::secret::Secret;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A build target, resolved: the engine opens it as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetConfig {
    /// A DuckDB database: `:memory:` or a file path relative to the project.
    Duckdb {
        /// `:memory:` or a database file relative to the project.
        path: String,
        /// The schema models go to when they configure none (dbt's `target.schema`).
        schema: String,
        /// DuckDB's `threads` setting; DuckDB's default when unset.
        threads: Option<u32>,
        /// Other DuckDB settings applied when the session opens, e.g.
        /// `memory_limit: 400MB`, `preserve_insertion_order: false`.
        settings: BTreeMap<String, Value>,
    },
    /// Models computed in an in-memory DuckDB and stored as Iceberg tables
    /// through a REST catalog (the durable warehouse of `intraday`,
    /// `backfill`, `import` and `maintain`).
    Iceberg {
        /// Catalog URI, warehouse, auth and S3 settings.
        catalog: Box<IcebergConfig>,
        /// The namespace models land in by default.
        schema: String,
        /// DuckDB's `threads` setting for the compute session.
        threads: Option<u32>,
        /// Other DuckDB settings for the compute session.
        settings: BTreeMap<String, Value>,
    },
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

/// How to reach an Iceberg REST catalog and its storage, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcebergConfig {
    /// The REST catalog's base URL (without `/v1`).
    pub uri: String,
    /// The warehouse name or location the catalog expects.
    pub warehouse: Option<String>,
    /// OAuth2 client credentials, `id:secret`.
    pub credential: Option<Secret>,
    /// A bearer token (instead of `credential`).
    pub token: Option<Secret>,
    /// S3-compatible storage; omitted values come from the catalog's
    /// vended configuration when it sends them.
    pub s3: S3Config,
    /// Extra catalog properties, passed through as they are.
    pub properties: HashMap<String, String>,
    /// How long one catalog request may take (`timeout_secs`); `None` is
    /// [`IcebergConfig::DEFAULT_TIMEOUT`].
    pub timeout: Option<std::time::Duration>,
}

impl IcebergConfig {
    /// The catalog request timeout when `timeout_secs` is not set.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

    /// How long one catalog request may take before the run fails.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }
}

/// S3 settings for the data files, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct S3Config {
    /// Endpoint URL (for S3-compatible stores such as SeaweedFS, R2, MinIO).
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when the store does not care).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Path-style addressing (needed by most S3-compatible stores).
    pub path_style: Option<bool>,
}

/// A target as `analytics.yml` writes it: string values may name
/// environment variables as `${NAME}` (`${NAME:-default}`), so secrets stay
/// out of files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetYaml {
    /// A DuckDB database.
    Duckdb {
        /// `:memory:` (the default) or a database file relative to the project.
        #[serde(default = "memory_path")]
        path: String,
        /// The schema models go to when they configure none.
        #[serde(default = "main_schema")]
        schema: String,
        /// DuckDB's `threads` setting.
        #[serde(default)]
        threads: Option<u32>,
        /// Other DuckDB settings.
        #[serde(default)]
        settings: BTreeMap<String, Value>,
    },
    /// An Iceberg REST catalog.
    Iceberg {
        /// Catalog URI, warehouse, auth and S3 settings (`${ENV}` allowed).
        #[serde(flatten)]
        catalog: Box<IcebergYaml>,
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

/// The catalog part of an Iceberg target in `analytics.yml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct IcebergYaml {
    /// The REST catalog's base URL.
    pub uri: String,
    /// The warehouse name or location.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// OAuth2 client credentials, `id:secret` (normally `${ICEBERG_CREDENTIAL}`).
    #[serde(default)]
    pub credential: Option<String>,
    /// A bearer token (normally `${ICEBERG_TOKEN}`).
    #[serde(default)]
    pub token: Option<String>,
    /// S3-compatible storage.
    #[serde(default)]
    pub s3: S3Yaml,
    /// Extra catalog properties.
    #[serde(default)]
    pub properties: HashMap<String, String>,
    /// Seconds one catalog request may take (default 120): a catalog that
    /// stops answering fails the run instead of holding it.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// The `s3:` part of an Iceberg target in `analytics.yml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct S3Yaml {
    /// Endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Path-style addressing.
    #[serde(default)]
    pub path_style: Option<bool>,
}

fn memory_path() -> String {
    ":memory:".to_string()
}

fn main_schema() -> String {
    "main".to_string()
}

/// `${VAR}` references expanded; a value left empty (`${VAR:-}`) means "not set".
fn expand(env: &Env, value: Option<&String>, what: &str) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = env
                .expand(v)
                .with_context(|| format!("target setting `{what}`"))?;
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

impl TargetYaml {
    /// The `warehouse` target a project gets without defining one, when
    /// `ICEBERG_REST_ENDPOINT` is set (the action sets it from its inputs):
    /// every value comes from the standard environment variables.
    pub fn from_standard_env(env: &Env) -> Self {
        let var = |name: &str| Some(format!("${{{name}:-}}"));
        TargetYaml::Iceberg {
            catalog: Box::new(IcebergYaml {
                uri: "${ICEBERG_REST_ENDPOINT}".into(),
                warehouse: var("ICEBERG_WAREHOUSE"),
                credential: var("ICEBERG_CREDENTIAL"),
                token: var("ICEBERG_TOKEN"),
                s3: S3Yaml {
                    endpoint: var("AWS_ENDPOINT_URL_S3"),
                    region: var("AWS_REGION"),
                    access_key_id: var("AWS_ACCESS_KEY_ID"),
                    secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
                    path_style: env.contains("AWS_ENDPOINT_URL_S3").then_some(true),
                },
                properties: Default::default(),
                timeout_secs: None,
            }),
            schema: main_schema(),
            threads: None,
            settings: BTreeMap::new(),
        }
    }

    /// The target with every `${VAR}` expanded from `env`, once.
    pub fn resolve(&self, env: &Env) -> Result<TargetConfig> {
        Ok(match self {
            TargetYaml::Duckdb {
                path,
                schema,
                threads,
                settings,
            } => TargetConfig::Duckdb {
                path: path.clone(),
                schema: schema.clone(),
                threads: *threads,
                settings: settings.clone(),
            },
            TargetYaml::Iceberg {
                catalog,
                schema,
                threads,
                settings,
            } => TargetConfig::Iceberg {
                catalog: Box::new(catalog.resolve(env)?),
                schema: schema.clone(),
                threads: *threads,
                settings: settings.clone(),
            },
        })
    }
}

impl IcebergYaml {
    /// The catalog settings with `${VAR}` references expanded from `env`.
    pub fn resolve(&self, env: &Env) -> Result<IcebergConfig> {
        let secret = |v: Option<&String>, what: &str| -> Result<Option<Secret>> {
            Ok(expand(env, v, what)?.map(Secret::new))
        };
        let mut properties = HashMap::new();
        for (k, v) in &self.properties {
            properties.insert(
                k.clone(),
                env.expand(v)
                    .with_context(|| format!("target property `{k}`"))?,
            );
        }
        Ok(IcebergConfig {
            uri: expand(env, Some(&self.uri), "uri")?.unwrap_or_default(),
            warehouse: expand(env, self.warehouse.as_ref(), "warehouse")?,
            credential: secret(self.credential.as_ref(), "credential")?,
            token: secret(self.token.as_ref(), "token")?,
            s3: S3Config {
                endpoint: expand(env, self.s3.endpoint.as_ref(), "s3.endpoint")?,
                region: expand(env, self.s3.region.as_ref(), "s3.region")?,
                access_key_id: secret(self.s3.access_key_id.as_ref(), "s3.access_key_id")?,
                secret_access_key: secret(
                    self.s3.secret_access_key.as_ref(),
                    "s3.secret_access_key",
                )?,
                path_style: self.s3.path_style,
            },
            properties,
            timeout: match self.timeout_secs {
                Some(0) => anyhow::bail!("target setting `timeout_secs`: must be at least 1"),
                Some(secs) => Some(std::time::Duration::from_secs(secs)),
                None => None,
            },
        })
    }
}

/// Maintenance settings (`maintenance:` in `analytics.yml`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintainOptions {
    /// Files smaller than this many MB are compacted together.
    #[serde(default = "default_target_mb")]
    pub target_file_size_mb: u64,
    /// Snapshots to keep however old they are.
    #[serde(default = "default_keep")]
    pub keep_snapshots: usize,
    /// Snapshots older than this many hours are expired (beyond `keep_snapshots`).
    #[serde(default = "default_hours")]
    pub expire_after_hours: u64,
    /// Files under a table's location that no snapshot references (left by
    /// killed or failed writes) are deleted once older than this many hours
    /// (younger ones may belong to a write still in progress).
    #[serde(default = "default_orphan_hours")]
    pub orphan_after_hours: u64,
}

fn default_target_mb() -> u64 {
    128
}
fn default_keep() -> usize {
    5
}
fn default_hours() -> u64 {
    24 * 7
}
fn default_orphan_hours() -> u64 {
    72
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions {
            target_file_size_mb: default_target_mb(),
            keep_snapshots: default_keep(),
            expire_after_hours: default_hours(),
            orphan_after_hours: default_orphan_hours(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iceberg(yaml: &str) -> Result<IcebergConfig> {
        let target: TargetYaml = serde_yaml_ng::from_str(yaml).unwrap();
        let TargetYaml::Iceberg { catalog, .. } = target else {
            panic!("not an iceberg target");
        };
        catalog.resolve(&Env::from_map(BTreeMap::new()))
    }

    #[test]
    fn timeout_secs_bounds_each_catalog_request() {
        let base = "type: iceberg\nuri: http://catalog\n";
        assert_eq!(
            iceberg(base).unwrap().request_timeout(),
            IcebergConfig::DEFAULT_TIMEOUT
        );
        let five = iceberg(&format!("{base}timeout_secs: 5\n")).unwrap();
        assert_eq!(five.request_timeout(), std::time::Duration::from_secs(5));
        let zero = iceberg(&format!("{base}timeout_secs: 0\n")).unwrap_err();
        assert!(format!("{zero:#}").contains("timeout_secs"), "{zero:#}");
    }
}
