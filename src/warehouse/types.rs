//! Type mapping between DuckDB's Arrow output, Iceberg and DuckDB columns.

use anyhow::{Context, Result, bail};
use duckdb::arrow::array::{RecordBatch, RecordBatchOptions, new_null_array};
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use iceberg::spec::{PrimitiveType, Type};
use std::sync::Arc;

/// The Arrow type Iceberg stores for a DuckDB result column: Iceberg has
/// no 8/16-bit or unsigned integers, one string type and microsecond
/// timestamps.
fn storable(data_type: &DataType) -> Result<DataType> {
    Ok(match data_type {
        DataType::Boolean => DataType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            DataType::Int32
        }
        DataType::Int64 | DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Float16 | DataType::Float32 => DataType::Float32,
        DataType::Float64 => DataType::Float64,
        DataType::Decimal128(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::LargeBinary,
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Time32(_) | DataType::Time64(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        // An instant: DuckDB labels it with the session's zone (`Etc/UTC`),
        // Iceberg's timestamptz is UTC; the values are the same.
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        }
        DataType::List(item) | DataType::LargeList(item) => DataType::List(Arc::new(Field::new(
            "element",
            storable(item.data_type())?,
            true,
        ))),
        other => bail!("type {other} is not supported in Iceberg tables yet"),
    })
}

/// The Iceberg schema for a query result (field ids assigned in order).
pub fn iceberg_schema(source: &SchemaRef) -> Result<iceberg::spec::Schema> {
    let fields: Vec<Field> = source
        .fields()
        .iter()
        .map(|f| {
            storable(f.data_type())
                .with_context(|| format!("column `{}`", f.name()))
                .map(|t| Field::new(f.name(), t, true))
        })
        .collect::<Result<_>>()?;
    iceberg::arrow::arrow_schema_to_schema_auto_assign_ids(&Schema::new(fields))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Casts a batch's columns to the table's Arrow schema (which carries the
/// field ids the Parquet writer needs), matching columns by name; a column
/// the batch lacks (the table has more columns than the model) is NULL.
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => cast(column, field.data_type())
                .with_context(|| format!("column `{}` to {}", field.name(), field.data_type()))?,
            None => new_null_array(field.data_type(), batch.num_rows()),
        };
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        Arc::clone(target),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .context("building the batch to write")
}

/// DuckDB column definitions for an Iceberg schema.
pub fn duckdb_columns(schema: &iceberg::spec::Schema) -> Result<String> {
    let mut cols = Vec::new();
    for field in schema.as_struct().fields() {
        let ty =
            duckdb_type(&field.field_type).with_context(|| format!("column `{}`", field.name))?;
        cols.push(format!("{} {ty}", crate::sql::quote(&field.name)));
    }
    Ok(cols.join(", "))
}

/// The DuckDB type of an Iceberg type.
pub(super) fn duckdb_type(ty: &Type) -> Result<String> {
    Ok(match ty {
        Type::Primitive(p) => match p {
            PrimitiveType::Boolean => "BOOLEAN".to_string(),
            PrimitiveType::Int => "INTEGER".to_string(),
            PrimitiveType::Long => "BIGINT".to_string(),
            PrimitiveType::Float => "REAL".to_string(),
            PrimitiveType::Double => "DOUBLE".to_string(),
            PrimitiveType::Decimal { precision, scale } => {
                format!("DECIMAL({precision}, {scale})")
            }
            PrimitiveType::Date => "DATE".to_string(),
            PrimitiveType::Time => "TIME".to_string(),
            PrimitiveType::Timestamp => "TIMESTAMP".to_string(),
            PrimitiveType::Timestamptz => "TIMESTAMPTZ".to_string(),
            PrimitiveType::String => "VARCHAR".to_string(),
            PrimitiveType::Uuid => "UUID".to_string(),
            PrimitiveType::Binary | PrimitiveType::Fixed(_) => "BLOB".to_string(),
            other => bail!("Iceberg type {other} is not supported yet"),
        },
        Type::List(list) => format!("{}[]", duckdb_type(&list.element_field.field_type)?),
        other => bail!("nested type {other} is not supported yet"),
    })
}
