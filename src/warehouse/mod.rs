//! The Iceberg warehouse: tables in an Iceberg REST catalog on S3-compatible
//! storage, written from and read into the DuckDB session.
//!
//! This is the first step of the warehouse stage: connecting (OAuth2 client
//! credentials or a bearer token), namespaces, tables created from a query's
//! result schema, fast-append writes of Parquet (zstd, with column bounds) and
//! streaming reads into DuckDB. Copy-on-write (`table` replace,
//! `delete+insert`, `merge`), schema evolution and maintenance come next (see
//! docs/iceberg-notes.md).

mod types;

use anyhow::{Context, Result, anyhow};
use duckdb::arrow::array::RecordBatch;
use duckdb::arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use iceberg::spec::DataFileFormat;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_rest::{RestCatalog, RestCatalogBuilder};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// How to reach the catalog and its storage. String values may name
/// environment variables as `${NAME}`, so secrets stay out of files.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct IcebergConfig {
    /// The REST catalog's base URL.
    pub uri: String,
    /// The warehouse name or location the catalog expects.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// OAuth2 client credentials, `id:secret`.
    #[serde(default)]
    pub credential: Option<String>,
    /// A bearer token (instead of `credential`).
    #[serde(default)]
    pub token: Option<String>,
    /// S3-compatible storage; omitted values come from the catalog's
    /// vended configuration when it sends them.
    #[serde(default)]
    pub s3: S3Config,
    /// Extra catalog properties, passed through as they are.
    #[serde(default)]
    pub properties: HashMap<String, String>,
}

/// S3 settings for the data files.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct S3Config {
    /// Endpoint URL (for S3-compatible stores such as SeaweedFS, R2, MinIO).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when the store does not care).
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Path-style addressing (needed by most S3-compatible stores).
    #[serde(default)]
    pub path_style: Option<bool>,
}

/// Replaces `${NAME}` with the environment variable's value; a missing
/// variable is an error naming it (never its value).
pub fn expand_env(text: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .with_context(|| format!("unclosed `${{` in `{text}`"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .with_context(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl IcebergConfig {
    /// Catalog properties with `${VAR}` references expanded.
    fn catalog_props(&self) -> Result<HashMap<String, String>> {
        let mut props = HashMap::new();
        let mut put = |key: &str, value: Option<&String>| -> Result<()> {
            if let Some(v) = value {
                props.insert(key.to_string(), expand_env(v)?);
            }
            Ok(())
        };
        put("uri", Some(&self.uri))?;
        put("warehouse", self.warehouse.as_ref())?;
        put("credential", self.credential.as_ref())?;
        put("token", self.token.as_ref())?;
        put("s3.endpoint", self.s3.endpoint.as_ref())?;
        put("s3.region", self.s3.region.as_ref())?;
        put("s3.access-key-id", self.s3.access_key_id.as_ref())?;
        put("s3.secret-access-key", self.s3.secret_access_key.as_ref())?;
        if let Some(path_style) = self.s3.path_style {
            props.insert("s3.path-style-access".into(), path_style.to_string());
        }
        for (k, v) in &self.properties {
            props.insert(k.clone(), expand_env(v)?);
        }
        Ok(props)
    }
}

/// A connection to the catalog, with its own async runtime so the rest of
/// the pipeline stays synchronous.
pub struct Warehouse {
    catalog: RestCatalog,
    runtime: tokio::runtime::Runtime,
}

impl Warehouse {
    /// Connects to the catalog (the first call authenticates).
    pub fn connect(config: &IcebergConfig) -> Result<Warehouse> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime for the catalog")?;
        let props = config.catalog_props()?;
        let catalog = runtime
            .block_on(
                RestCatalogBuilder::default()
                    .with_runtime(iceberg::Runtime::new(&runtime))
                    .with_storage_factory(Arc::new(
                        iceberg_storage_opendal::OpenDalStorageFactory::S3 {
                            customized_credential_load: None,
                        },
                    ))
                    .load("analytics", props),
            )
            .map_err(|e| anyhow!("connecting to the Iceberg catalog: {e}"))?;
        let warehouse = Warehouse { catalog, runtime };
        // Authenticate now, so a bad credential fails here with a clear message.
        warehouse
            .runtime
            .block_on(
                warehouse
                    .catalog
                    .namespace_exists(&NamespaceIdent::new("analytics_probe".into())),
            )
            .map_err(|e| anyhow!("the Iceberg catalog refused the request: {e}"))?;
        Ok(warehouse)
    }

    fn ident(schema: &str, name: &str) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(schema.to_string()), name.to_string())
    }

    /// Whether `schema.name` exists.
    pub fn table_exists(&self, schema: &str, name: &str) -> Result<bool> {
        self.runtime
            .block_on(self.catalog.table_exists(&Self::ident(schema, name)))
            .map_err(|e| anyhow!("checking table {schema}.{name}: {e}"))
    }

    /// Drops `schema.name` if it exists (tests and maintenance).
    pub fn drop_table(&self, schema: &str, name: &str) -> Result<()> {
        if self.table_exists(schema, name)? {
            self.runtime
                .block_on(self.catalog.drop_table(&Self::ident(schema, name)))
                .map_err(|e| anyhow!("dropping table {schema}.{name}: {e}"))?;
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
        let mut stmt = conn
            .prepare(sql)
            .with_context(|| format!("preparing the rows for {schema}.{name}"))?;
        let arrow = stmt
            .query_arrow([])
            .with_context(|| format!("querying the rows for {schema}.{name}"))?;
        let source_schema = arrow.get_schema();
        let batches: Vec<RecordBatch> = arrow.collect();
        self.runtime
            .block_on(self.append_batches(source_schema, batches, schema, name))
    }

    async fn append_batches(
        &self,
        source_schema: SchemaRef,
        batches: Vec<RecordBatch>,
        schema: &str,
        name: &str,
    ) -> Result<u64> {
        let namespace = NamespaceIdent::new(schema.to_string());
        let ident = Self::ident(schema, name);
        let context = || format!("writing table {schema}.{name}");
        if !self
            .catalog
            .namespace_exists(&namespace)
            .await
            .map_err(|e| anyhow!("{e}"))
            .with_context(context)?
        {
            self.catalog
                .create_namespace(&namespace, HashMap::new())
                .await
                .map_err(|e| anyhow!("creating namespace {schema}: {e}"))?;
        }
        let table = if self
            .catalog
            .table_exists(&ident)
            .await
            .map_err(|e| anyhow!("{e}"))
            .with_context(context)?
        {
            self.catalog
                .load_table(&ident)
                .await
                .map_err(|e| anyhow!("loading {schema}.{name}: {e}"))?
        } else {
            let iceberg_schema = types::iceberg_schema(&source_schema).with_context(|| {
                format!("the result of {schema}.{name} has a column Iceberg cannot store")
            })?;
            let creation = TableCreation::builder()
                .name(name.to_string())
                .schema(iceberg_schema)
                .build();
            self.catalog
                .create_table(&namespace, creation)
                .await
                .map_err(|e| anyhow!("creating {schema}.{name}: {e}"))?
        };
        let target = Arc::new(
            iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema())
                .map_err(|e| anyhow!("{e}"))
                .with_context(context)?,
        );
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(0);
        }
        let parquet = ParquetWriterBuilder::new(
            parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build(),
            table.metadata().current_schema().clone(),
        );
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            parquet,
            table.file_io().clone(),
            DefaultLocationGenerator::new(table.metadata()).map_err(|e| anyhow!("{e}"))?,
            // A fresh prefix per write: the generator's counter restarts at 0.
            DefaultFileNameGenerator::new(
                format!("data-{:016x}", rand::random::<u64>()),
                None,
                DataFileFormat::Parquet,
            ),
        );
        let mut writer = DataFileWriterBuilder::new(rolling)
            .build(None)
            .await
            .map_err(|e| anyhow!("{e}"))
            .with_context(context)?;
        for batch in batches {
            let batch = types::conform(&batch, &target).with_context(context)?;
            writer
                .write(batch)
                .await
                .map_err(|e| anyhow!("{e}"))
                .with_context(context)?;
        }
        let files = writer
            .close()
            .await
            .map_err(|e| anyhow!("{e}"))
            .with_context(context)?;
        let tx = Transaction::new(&table);
        let tx = tx
            .fast_append()
            .add_data_files(files)
            .apply(tx)
            .map_err(|e| anyhow!("{e}"))
            .with_context(context)?;
        tx.commit(&self.catalog)
            .await
            .map_err(|e| anyhow!("committing {schema}.{name}: {e}"))?;
        Ok(rows as u64)
    }

    /// Streams `schema.name` into a new DuckDB table `duckdb_table` (replaced
    /// if it exists), batch by batch. Returns the rows read.
    pub fn read_into_duckdb(
        &self,
        conn: &duckdb::Connection,
        schema: &str,
        name: &str,
        duckdb_table: &str,
    ) -> Result<u64> {
        let ident = Self::ident(schema, name);
        let table = self
            .runtime
            .block_on(self.catalog.load_table(&ident))
            .map_err(|e| anyhow!("loading {schema}.{name}: {e}"))?;
        let ddl = types::duckdb_columns(table.metadata().current_schema())
            .with_context(|| format!("reading {schema}.{name}"))?;
        conn.execute_batch(&format!("CREATE OR REPLACE TABLE {duckdb_table} ({ddl})"))
            .with_context(|| format!("creating {duckdb_table}"))?;
        let mut appender = conn
            .appender_to_db(
                duckdb_table
                    .rsplit('.')
                    .next()
                    .unwrap_or(duckdb_table)
                    .trim_matches('"'),
                duckdb_table
                    .rsplit_once('.')
                    .map(|(s, _)| s.trim_matches('"'))
                    .unwrap_or("main"),
            )
            .with_context(|| format!("appending to {duckdb_table}"))?;
        let rows = self.runtime.block_on(async {
            let scan = table
                .scan()
                .build()
                .map_err(|e| anyhow!("scanning {schema}.{name}: {e}"))?;
            let mut stream = scan
                .to_arrow()
                .await
                .map_err(|e| anyhow!("scanning {schema}.{name}: {e}"))?;
            let mut rows = 0u64;
            while let Some(batch) = stream
                .try_next()
                .await
                .map_err(|e| anyhow!("reading {schema}.{name}: {e}"))?
            {
                rows += batch.num_rows() as u64;
                appender
                    .append_record_batch(batch)
                    .with_context(|| format!("loading {schema}.{name} into DuckDB"))?;
            }
            Ok::<u64, anyhow::Error>(rows)
        })?;
        appender.flush()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_references_expand_and_missing_ones_name_the_variable() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("ANALYTICS_TEST_URI", "http://127.0.0.1:8181") };
        assert_eq!(
            expand_env("${ANALYTICS_TEST_URI}/v1").unwrap(),
            "http://127.0.0.1:8181/v1"
        );
        let err = expand_env("${ANALYTICS_NOT_SET_123}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ANALYTICS_NOT_SET_123"), "{err}");
    }
}
