//! How models read ingested files: the typed `read_csv` over this run's
//! stored parts of a source, behind `read_source()` in SQL.

use super::SOURCE_FILE_SQL;
use crate::sql::{literal, path_list, quote};
use std::path::PathBuf;

/// One typed read of `paths` (gzip CSV with `header`, when every part shares
/// a known header), selecting `columns` (name, DuckDB type) or every column,
/// with `source_file` naming the downloaded file each row came from.
pub fn read_sql(
    paths: &[PathBuf],
    header: Option<Vec<String>>,
    columns: Option<&[(String, String)]>,
) -> String {
    let select = match columns {
        Some(cols) => cols
            .iter()
            .map(|(n, _)| quote(n))
            .collect::<Vec<_>>()
            .join(", "),
        None => "* EXCLUDE (filename)".to_string(),
    };
    let typed = |name: &str| {
        columns
            .into_iter()
            .flatten()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.clone())
    };
    // With the header known (MMS files split by ingest), every column is
    // declared and DuckDB skips sniffing — which costs more than reading
    // when tables are wide. Unread columns stay VARCHAR and are never parsed.
    let options = match (header, columns) {
        (Some(header), Some(_)) => format!(
            "auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {{{}}}",
            header
                .iter()
                .map(|h| format!(
                    "{}: {}",
                    literal(h),
                    literal(&typed(h).unwrap_or_else(|| "VARCHAR".into()))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (_, Some(cols)) => format!(
            "union_by_name = true, types = {{{}}}",
            cols.iter()
                .map(|(n, t)| format!("{}: {}", literal(n), literal(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (_, None) => "union_by_name = true".to_string(),
    };
    format!(
        "(SELECT {select}, {} AS source_file FROM read_csv({}, header = true, filename = true, \
         timestampformat = '%Y/%m/%d %H:%M:%S', {options}))",
        SOURCE_FILE_SQL,
        path_list(paths)
    )
}
