//! Rollups the exporter stores (issue 17): `dashboard.rollups` written as
//! tables next to the rows in every file of a grain's dataset, so the page
//! queries them instead of aggregating the rows of a date range itself.
//!
//! A rollup keeps the dimensions of its `by`, and the aggregate columns the
//! measures' `rollup: {columns, sql}` declare (of the measures it can give:
//! the rule of the page's `rollupServes`). In a file it is grouped by those
//! dimensions and by the file's date (`date_column`), plus, for a rollup that
//! keeps the time (`time: true`), the columns the grain's timestamp is made
//! of (`grains[].time`): exactly the groups the page makes, since a date
//! never spans two files. A rollup without the time is also grouped per
//! date, so any date range sums (or takes the min/max of) the dates it
//! covers: it is stored only when each of its columns is one `sum`,
//! `count`, `min` or `max` (optionally with `FILTER (…)`), which merge.
//! One that per date would hold the rows again (per unit at the day grain)
//! is stored per file instead (`period`: one row per unit of the file's
//! period): a range covering whole periods reads it and no rows; a period
//! the range covers in part is aggregated from its rows file by the page.
//!
//! They are stored in a file of their own next to each rows file
//! (`hourly_2025_q3.duckdb` → `hourly_2025_q3.rollups.duckdb`), listed in the
//! manifest under the dataset `<dataset>.rollups` ([`dataset_of`]) with the
//! rows file's period and dates: a range change the rollups serve downloads
//! them (a few hundred kB) and not the rows (several MB); the page fetches
//! the rows file only when a view needs rows (a unit filter, a drill-down,
//! Analyze, the CSV). The exporter writes them only for the periods an
//! export restages, and only when smaller than the rows file (with few
//! units they may not be: no rollups file is then listed for that period,
//! and the page, `rollupsCover`, and the first-paint summary read its
//! rows), keeps the published one of a kept period (the export's
//! keep/restage logic and publish's merge carry them like any file of the
//! dataset), and the renderer tells the page which tables each dataset's
//! rollups files hold, from the same function ([`stored_for`]).

use crate::project::dashboard::{DashboardConfig, MeasureConfig, RollupConfig};
use crate::sql::quote;
use serde::Serialize;

/// One rollup as stored in the files of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRollup {
    /// Its position in `dashboard.rollups` (the page's index).
    pub index: usize,
    /// The table in each file (`_rollup_<index>`).
    pub table: String,
    /// Whether it keeps the timestamp's columns.
    pub time: bool,
    /// Whether it is grouped per file (its period) rather than per date: a
    /// rollup without the time that per date would hold the rows again (per
    /// unit at the day grain). A range covering a file's dates whole reads
    /// it; a file the range covers in part is read from its rows (app.js).
    pub period: bool,
    /// The columns it is grouped by, in order (the date first, unless
    /// `period`).
    pub group: Vec<String>,
    /// Aggregate columns: name, aggregate over the rows, and how per-date
    /// values merge over a range (`sum`, `min`, `max`).
    pub columns: Vec<StoredColumn>,
}

/// An aggregate column of a stored rollup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredColumn {
    /// The column's name (the key of a measure's `rollup.columns`).
    pub name: String,
    /// The aggregate over the rows.
    pub sql: String,
    /// The aggregate merging per-date values (`None`: not mergeable, only
    /// possible in a rollup that keeps the time, which is never merged).
    pub merge: Option<&'static str>,
}

/// The manifest's naming of rollups datasets (`X.rollups`), shared with
/// publish, which merges manifests.
pub use crate::manifest::{
    ROLLUPS_DATASET_SUFFIX as DATASET_SUFFIX, rollups_dataset as dataset_of,
};

/// The rollups file of the rows file `path` (`data/x_2025_q3.duckdb` →
/// `data/x_2025_q3.rollups.duckdb`).
pub fn file_of(path: &str) -> String {
    let stem = path.strip_suffix(".duckdb").unwrap_or(path);
    format!("{stem}.rollups.duckdb")
}

/// The block size of a rollups file: DuckDB's smallest (16 kB; DuckDB-WASM
/// reads it from the file's header). A few thousand rows a table, so the
/// default 256 kB blocks would be mostly empty: a day's 5-minute rollups take
/// 0.30 MB instead of 0.80 MB, a quarter's daily ones 0.13 MB instead of 0.54.
pub const BLOCK_SIZE: u32 = 16384;

/// The table name of rollup `index` in a file.
pub fn table_name(index: usize) -> String {
    format!("_rollup_{index}")
}

/// Whether `sql` names `name` as a word (not as part of a longer name).
fn mentions(sql: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(name).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Whether rollup `r` can give measure `m`: it declares how, and its SQL
/// names no dimension column (or `_time`) the rollup drops (app.js
/// `rollupServes`).
pub(crate) fn serves(config: &DashboardConfig, r: &RollupConfig, m: &MeasureConfig) -> bool {
    let Some(rollup) = &m.rollup else {
        return false;
    };
    if !r.time && mentions(&rollup.sql, "_time") {
        return false;
    }
    config
        .dimensions
        .iter()
        .all(|d| r.by.contains(&d.name) || !mentions(&rollup.sql, &d.column))
}

/// The index just past the parenthesis matching the one at `open`.
fn closing(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in text[open..].char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// How per-date values of the aggregate `sql` merge into a range's value:
/// `sum(…)` and `count(…)` sum, `min(…)` and `max(…)` take the min and max;
/// `None` for anything else (an expression, `count(DISTINCT …)`, `avg`).
pub fn merge_function(sql: &str) -> Option<&'static str> {
    let text = sql.trim();
    let open = text.find('(')?;
    let merge = match text[..open].trim().to_ascii_lowercase().as_str() {
        "sum" | "count" => "sum",
        "min" => "min",
        "max" => "max",
        _ => return None,
    };
    if text[open + 1..]
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("distinct")
    {
        return None;
    }
    let end = closing(text, open)?;
    let rest = text[end..].trim();
    if rest.is_empty() {
        return Some(merge);
    }
    // `FILTER (WHERE …)` and nothing after it.
    let filter = rest.get(..6)?;
    if !filter.eq_ignore_ascii_case("filter") {
        return None;
    }
    let open = end + text[end..].find('(')?;
    if !text[end..open].trim().eq_ignore_ascii_case("filter") {
        return None;
    }
    let after = closing(text, open)?;
    text[after..].trim().is_empty().then_some(merge)
}

/// The rollups stored in every file of `dataset`, whose table has
/// `columns`: none when no grain reads the dataset. A rollup is left out
/// (the page then builds it from the rows) when the files lack the date
/// column or a dimension's column, when it drops the time and one of its
/// columns does not merge, or when it would keep every dimension and time
/// column the files have (the rows again).
pub fn stored_for(
    config: Option<&DashboardConfig>,
    dataset: &str,
    columns: &[&str],
) -> Vec<StoredRollup> {
    let Some(config) = config else {
        return Vec::new();
    };
    let grains: Vec<_> = config
        .grains
        .iter()
        .filter(|g| g.dataset == dataset)
        .collect();
    if grains.is_empty() || !columns.contains(&config.date_column.as_str()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (index, r) in config.rollups.iter().enumerate() {
        let mut group = vec![config.date_column.clone()];
        if r.time {
            for c in columns {
                if grains.iter().any(|g| mentions(&g.time, c)) && !group.iter().any(|g| g == c) {
                    group.push(c.to_string());
                }
            }
        }
        let mut complete = true;
        for name in &r.by {
            match config.dimensions.iter().find(|d| &d.name == name) {
                Some(d) if columns.contains(&d.column.as_str()) => {
                    if !group.contains(&d.column) {
                        group.push(d.column.clone());
                    }
                }
                _ => complete = false,
            }
        }
        let mut aggregates: Vec<StoredColumn> = Vec::new();
        for m in config.measures.iter().filter(|m| serves(config, r, m)) {
            let Some(rollup) = &m.rollup else { continue };
            for (name, sql) in &rollup.columns {
                if aggregates.iter().any(|c| &c.name == name) {
                    continue;
                }
                let merge = merge_function(sql);
                if !r.time && merge.is_none() {
                    complete = false;
                }
                aggregates.push(StoredColumn {
                    name: name.clone(),
                    sql: sql.clone(),
                    merge,
                });
            }
        }
        // Grouped by the date, every time column and every dimension the
        // file has, a rollup would hold the rows again (e.g. per unit at
        // the day grain): stored per file instead (one row per unit), so a
        // range of whole periods needs no rows; one that keeps the time is
        // left out (the page reads the rows).
        let time_columns = columns
            .iter()
            .copied()
            .filter(|c| grains.iter().any(|g| mentions(&g.time, c)));
        let dimension_columns = config
            .dimensions
            .iter()
            .map(|d| d.column.as_str())
            .filter(|c| columns.contains(c));
        let rows_again = time_columns
            .chain(dimension_columns)
            .all(|c| group.iter().any(|g| g.as_str() == c));
        let period = rows_again && !r.time;
        if period {
            group.retain(|c| c != &config.date_column);
            // Without a dimension: one row per file, nothing to group by.
            complete &= !group.is_empty();
        }
        if complete && (!rows_again || period) && !aggregates.is_empty() {
            out.push(StoredRollup {
                index,
                table: table_name(index),
                time: r.time,
                period,
                group,
                columns: aggregates,
            });
        }
    }
    out
}

impl StoredRollup {
    /// The query giving this rollup from the rows of `from` (a table, with
    /// an optional `WHERE …` after it), sorted by its groups.
    pub fn select_sql(&self, from: &str) -> String {
        let group: Vec<String> = self.group.iter().map(|c| quote(c)).collect();
        // (`group` is never empty: a rollup keeps the date or a dimension.)
        let aggregates: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} AS {}", c.sql, quote(&c.name)))
            .collect();
        format!(
            "SELECT {}, {} FROM {from} GROUP BY {} ORDER BY {}",
            group.join(", "),
            aggregates.join(", "),
            group.join(", "),
            group.join(", ")
        )
    }
}

/// The statements writing `rollups` into the attached database `schema`
/// from the rows of `from` (a table with an optional `WHERE …`).
pub fn create_sql(rollups: &[StoredRollup], schema: &str, from: &str) -> String {
    rollups
        .iter()
        .map(|r| {
            format!(
                "CREATE TABLE {schema}.main.{} AS {};\n",
                quote(&r.table),
                r.select_sql(from)
            )
        })
        .collect()
}

/// What shapes the stored rollups' bytes: part of an exported file's
/// fingerprint, so a file written before (or with other rollups) is
/// written again rather than kept.
pub fn signature(rollups: &[StoredRollup]) -> String {
    rollups
        .iter()
        .map(|r| format!("rollup file {} {}\n", r.table, r.select_sql("rows")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> DashboardConfig {
        let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        DashboardConfig::from_value(Some(&v)).unwrap()
    }

    #[test]
    fn only_single_sums_counts_mins_and_maxes_merge() {
        assert_eq!(merge_function("sum(mw)"), Some("sum"));
        assert_eq!(merge_function(" COUNT(rrp) "), Some("sum"));
        assert_eq!(merge_function("max(mw)"), Some("max"));
        assert_eq!(merge_function("min(a + b)"), Some("min"));
        assert_eq!(
            merge_function("sum(rrp * mwh) FILTER (WHERE mwh > 0)"),
            Some("sum")
        );
        assert_eq!(merge_function("sum(mw) / count(*)"), None);
        assert_eq!(merge_function("avg(mw)"), None);
        assert_eq!(merge_function("count(DISTINCT duid)"), None);
        assert_eq!(merge_function("sum(mw) FILTER (WHERE x > 0) + 1"), None);
        assert_eq!(merge_function("mw"), None);
    }

    #[test]
    fn rollups_are_stored_per_date_with_the_grains_time_columns() {
        let c = config(
            "grains: [{grain: hour, dataset: hourly, time: 'date + make_time(time // 100, 0, 0)'}]\n\
             dimensions: [{name: region, column: region_id}, {name: unit, column: duid}]\n\
             measures:\n\
             - {name: mw, sql: 'sum(mw) / count(DISTINCT _time)', rollup: {columns: {mw: 'sum(mw)'}, sql: 'sum(mw) / count(DISTINCT _time)'}}\n\
             - {name: units, sql: 'count(DISTINCT duid)', rollup: {columns: {mw_max: 'max(mw)'}, sql: 'count(DISTINCT duid) FILTER (WHERE mw_max > 0)'}}\n\
             - {name: odd, sql: 'avg(mw)', rollup: {columns: {avg_mw: 'avg(mw)'}, sql: 'avg(avg_mw)'}}\n\
             rollups: [{by: [region, unit], time: false}, {by: [region]}]",
        );
        let cols = ["date", "time", "region_id", "duid", "mw"];
        assert!(stored_for(Some(&c), "daily", &cols).is_empty());
        let stored = stored_for(Some(&c), "hourly", &cols);
        // The per-unit rollup would need avg(mw) per date merged: not stored.
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(stored[0].table, "_rollup_1");
        assert_eq!(stored[0].group, ["date", "time", "region_id"]);
        let names: Vec<&str> = stored[0].columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["mw", "avg_mw"]);
        // Without the odd measure, the per-unit rollup is stored per date.
        let c = config(
            "grains: [{grain: hour, dataset: hourly, time: 'date + make_time(time // 100, 0, 0)'}]\n\
             dimensions: [{name: region, column: region_id}, {name: unit, column: duid}]\n\
             measures:\n\
             - {name: units, sql: 'count(DISTINCT duid)', rollup: {columns: {mw_max: 'max(mw)'}, sql: 'count(DISTINCT duid) FILTER (WHERE mw_max > 0)'}}\n\
             rollups: [{by: [region, unit], time: false}]",
        );
        let stored = stored_for(Some(&c), "hourly", &cols);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].group, ["date", "region_id", "duid"]);
        assert_eq!(stored[0].columns[0].merge, Some("max"));
        assert_eq!(
            stored[0].select_sql("t"),
            "SELECT \"date\", \"region_id\", \"duid\", max(mw) AS \"mw_max\" FROM t \
             GROUP BY \"date\", \"region_id\", \"duid\" ORDER BY \"date\", \"region_id\", \"duid\""
        );
        // A file without the unit column gets none.
        assert!(stored_for(Some(&c), "hourly", &["date", "time", "region_id", "mw"]).is_empty());
        // One whose rows it would repeat (per unit and date at the day grain)
        // is stored per file, without the date.
        let c = config(
            "grains: [{grain: day, dataset: daily, time: 'CAST(date AS TIMESTAMP)'}]\n\
             dimensions: [{name: region, column: region_id}, {name: unit, column: duid}]\n\
             measures:\n\
             - {name: mw, sql: 'sum(mw)', rollup: {columns: {mw: 'sum(mw)'}, sql: 'sum(mw)'}}\n\
             - {name: units, sql: 'count(DISTINCT duid)', rollup: {columns: {mw_max: 'max(mw)'}, sql: 'count(DISTINCT duid) FILTER (WHERE mw_max > 0)'}}\n\
             rollups: [{by: [region, unit], time: false}, {by: [region], time: false}]",
        );
        // (the per-region rollup serves `mw` only: `units` counts units.)
        let stored = stored_for(Some(&c), "daily", &["date", "region_id", "duid", "mw"]);
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert_eq!(stored[0].table, "_rollup_0");
        assert!(stored[0].period);
        assert_eq!(stored[0].group, ["region_id", "duid"]);
        assert_eq!(
            stored[0].select_sql("t"),
            "SELECT \"region_id\", \"duid\", sum(mw) AS \"mw\", max(mw) AS \"mw_max\" FROM t \
             GROUP BY \"region_id\", \"duid\" ORDER BY \"region_id\", \"duid\""
        );
        assert_eq!(stored[1].table, "_rollup_1");
        assert!(!stored[1].period);
        assert_eq!(stored[1].group, ["date", "region_id"]);
        // Kept per date when it keeps the time, it would be the rows: not stored.
        let c = config(
            "grains: [{grain: day, dataset: daily, time: 'CAST(date AS TIMESTAMP)'}]\n\
             dimensions: [{name: unit, column: duid}]\n\
             measures:\n\
             - {name: mw, sql: 'sum(mw)', rollup: {columns: {mw: 'sum(mw)'}, sql: 'sum(mw)'}}\n\
             rollups: [{by: [unit]}]",
        );
        assert!(stored_for(Some(&c), "daily", &["date", "duid", "mw"]).is_empty());
    }
}
