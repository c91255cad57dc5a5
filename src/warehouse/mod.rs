//! The Iceberg warehouse: tables in an Iceberg REST catalog on S3-compatible
//! storage, written from and read into the DuckDB session.
//!
//! DuckDB computes; Iceberg keeps. A model on an Iceberg target is staged in
//! DuckDB and then written here ([`Warehouse::write`]): `table` replaces the
//! contents in one snapshot, `append` adds files, `delete+insert` / `merge`
//! rewrite only the data files whose column bounds can hold the new keys
//! (copy-on-write, committed through [`rest`] because iceberg-rust 0.10.1
//! has no overwrite action). Reads go the other way through the
//! `iceberg_scan` table function ([`scan`]), so `ref()` of a stored model is
//! a DuckDB view streaming the table; exports, which read whole tables,
//! switch that view to DuckDB's Parquet reader over local copies of the
//! data files ([`local_copy`]). [`maintain`] compacts, expires
//! snapshots and deletes unreferenced files.

mod copy_write;
mod failure;
mod local_copy;
pub mod maintain;
mod orphans;
mod rest;
pub mod scan;
pub mod session;
mod snapshot;
mod types;
mod write;

pub use copy_write::CopyTimings;
pub use local_copy::{DEFAULT_LIMIT_BYTES as DEFAULT_LOCAL_COPY_LIMIT, LocalRead, StoredChanges};
pub use write::{
    COMPACT_AT, DataEncoder, SMALL_FILE_BYTES, WriteMode, WriteReport, data_file_properties,
};

use crate::secret::Secret;
use anyhow::{Context, Result, anyhow};
use failure::iceberg_text;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableIdent};
use iceberg_catalog_rest::{RestCatalog, RestCatalogBuilder};
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::project::{IcebergConfig, S3Config};

/// Catalog properties for iceberg-rust and our commit client.
fn catalog_props(config: &IcebergConfig) -> HashMap<String, String> {
    let mut props = HashMap::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            props.insert(key.to_string(), v.to_string());
        }
    };
    put("uri", Some(&config.uri));
    put("warehouse", config.warehouse.as_deref());
    put("credential", config.credential.as_ref().map(Secret::expose));
    put("token", config.token.as_ref().map(Secret::expose));
    put("s3.endpoint", config.s3.endpoint.as_deref());
    put("s3.region", config.s3.region.as_deref());
    put(
        "s3.access-key-id",
        config.s3.access_key_id.as_ref().map(Secret::expose),
    );
    put(
        "s3.secret-access-key",
        config.s3.secret_access_key.as_ref().map(Secret::expose),
    );
    if let Some(path_style) = config.s3.path_style {
        props.insert("s3.path-style-access".into(), path_style.to_string());
    }
    // Ask for credentials vended with each table (R2, Polaris, Lakekeeper
    // send short-lived S3 keys); catalogs that do not vend ignore it.
    props.insert(
        "header.X-Iceberg-Access-Delegation".into(),
        "vended-credentials".into(),
    );
    for (k, v) in &config.properties {
        props.insert(k.clone(), v.clone());
    }
    props
}

/// A connection to the catalog, with its own async runtime so the rest of
/// the pipeline stays synchronous. Cheap to clone (shared handles), so the
/// DuckDB table function can hold one.
#[derive(Clone)]
pub struct Warehouse {
    catalog: Arc<RestCatalog>,
    commits: Arc<rest::CommitClient>,
    runtime: Arc<tokio::runtime::Runtime>,
    local: Arc<local_copy::LocalCopies>,
    encoder: DataEncoder,
}

impl Warehouse {
    /// Connects to the catalog (the first call authenticates).
    pub fn connect(config: &IcebergConfig) -> Result<Warehouse> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime for the catalog")?;
        let props = catalog_props(config);
        let commits = rest::CommitClient::new(config)?;
        // Every catalog request is bounded: a catalog that stops answering
        // fails the run (naming the request) instead of holding it until
        // the job's own timeout. S3 is bounded by opendal's timeout layer.
        let http = rest::client(config).context("creating the HTTP client for the catalog")?;
        let catalog = runtime
            .block_on(
                RestCatalogBuilder::default()
                    .with_client(http)
                    .with_runtime(iceberg::Runtime::new(&runtime))
                    .with_storage_factory(Arc::new(
                        iceberg_storage_opendal::OpenDalStorageFactory::S3 {
                            customized_credential_load: None,
                        },
                    ))
                    .load("analytics", props),
            )
            .map_err(|e| anyhow!("connecting to the Iceberg catalog: {}", iceberg_text(&e)))?;
        let warehouse = Warehouse {
            catalog: Arc::new(catalog),
            commits: Arc::new(commits),
            runtime: Arc::new(runtime),
            local: Arc::default(),
            encoder: DataEncoder::default(),
        };
        // Authenticate now, so a bad credential fails here with a clear message.
        warehouse
            .runtime
            .block_on(
                warehouse
                    .catalog
                    .namespace_exists(&NamespaceIdent::new("analytics_probe".into())),
            )
            .map_err(|e| {
                let text = e.to_string();
                let bearer = config.token.is_some() && config.credential.is_none();
                match failure::catalog_refusal(&text, bearer, &config.uri) {
                    Some(refused) => anyhow!("{refused}"),
                    None => anyhow!("the Iceberg catalog refused the request: {text}"),
                }
            })?;
        Ok(warehouse)
    }

    /// The same warehouse encoding data files with `encoder` (the
    /// benchmarks compare the two).
    pub fn with_encoder(mut self, encoder: DataEncoder) -> Warehouse {
        self.encoder = encoder;
        self
    }

    fn ident(schema: &str, name: &str) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(schema.to_string()), name.to_string())
    }

    /// Whether `schema.name` exists.
    pub fn table_exists(&self, schema: &str, name: &str) -> Result<bool> {
        if self.pinned(schema, name).is_some() {
            return Ok(true);
        }
        self.runtime
            .block_on(self.catalog.table_exists(&Self::ident(schema, name)))
            .map_err(|e| anyhow!("checking table {schema}.{name}: {}", iceberg_text(&e)))
    }

    /// Whether each of `tables` (schema, name) exists, asked all at once.
    pub fn tables_exist(&self, tables: &[(&str, &str)]) -> Result<Vec<bool>> {
        self.runtime
            .block_on(futures::future::try_join_all(tables.iter().map(
                |(schema, name)| async move {
                    if self.pinned(schema, name).is_some() {
                        return Ok(true);
                    }
                    self.catalog
                        .table_exists(&Self::ident(schema, name))
                        .await
                        .map_err(|e| {
                            anyhow!("checking table {schema}.{name}: {}", iceberg_text(&e))
                        })
                },
            )))
    }

    /// Loads the table's current metadata.
    pub fn load_table(&self, schema: &str, name: &str) -> Result<Table> {
        self.runtime
            .block_on(self.catalog.load_table(&Self::ident(schema, name)))
            .map_err(|e| {
                failure::explain(anyhow!(
                    "loading table {schema}.{name}: {}",
                    iceberg_text(&e)
                ))
            })
    }

    /// The tables of a namespace (empty when it does not exist).
    pub fn list_tables(&self, schema: &str) -> Result<Vec<String>> {
        let namespace = NamespaceIdent::new(schema.to_string());
        self.runtime.block_on(async {
            if !self
                .catalog
                .namespace_exists(&namespace)
                .await
                .map_err(|e| anyhow!("listing namespace {schema}: {}", iceberg_text(&e)))?
            {
                return Ok(Vec::new());
            }
            Ok(self
                .catalog
                .list_tables(&namespace)
                .await
                .map_err(|e| anyhow!("listing namespace {schema}: {}", iceberg_text(&e)))?
                .into_iter()
                .map(|t| t.name().to_string())
                .collect())
        })
    }

    /// Drops `schema.name` if it exists (tests and maintenance).
    pub fn drop_table(&self, schema: &str, name: &str) -> Result<()> {
        if self.table_exists(schema, name)? {
            self.runtime
                .block_on(self.catalog.drop_table(&Self::ident(schema, name)))
                .map_err(|e| anyhow!("dropping table {schema}.{name}: {}", iceberg_text(&e)))?;
        }
        Ok(())
    }

    /// Runs `sql` in DuckDB and appends its rows to `schema.name` in one
    /// fast-append snapshot, creating the namespace and the table (from the
    /// result's schema) when missing. Returns the rows written.
    pub fn append_query(
        &self,
        conn: &duckdb::Connection,
        sql: &str,
        schema: &str,
        name: &str,
    ) -> Result<u64> {
        let staged = "__analytics_append_staged";
        conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE {staged} AS {sql}"))
            .with_context(|| format!("querying the rows for {schema}.{name}"))?;
        let report = self.write(conn, staged, schema, name, &WriteMode::Append, "ignore");
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {staged}"));
        Ok(report?.rows_written)
    }

    /// Streams `schema.name` into a new DuckDB table `duckdb_table` (replaced
    /// if it exists). Returns the rows read.
    pub fn read_into_duckdb(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        duckdb_table: &str,
    ) -> Result<u64> {
        scan::register(conn, self)?;
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE {duckdb_table} AS SELECT * FROM {}",
            scan::call(schema, name)
        ))
        .with_context(|| format!("reading {schema}.{name} into {duckdb_table}"))
        .map_err(failure::explain)?;
        conn.query_row(&format!("SELECT count(*) FROM {duckdb_table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .with_context(|| format!("counting {duckdb_table}"))
    }
}
