//! Which columns of an MMS table ingest stores: in `ci` runs, only those the
//! models read.
//!
//! A daily report's DUNIT table has 55 columns; the example's models read
//! four. DuckDB's CSV reader tokenises every column of every line even when a
//! query names four (at 30 days: ~5.5 CPU s a pass over 664 MB against ~0.9 s
//! over the same rows with four columns), so a `ci` run, whose archive is
//! thrown away and read only by this run's models and tests, stores just the
//! columns the parse render saw `read_source(..., columns={...})` name.
//!
//! Anything that could read a column the parse render did not see keeps
//! every column: a `source()`/`source_files()` read or a `read_source`
//! without `columns=`, any `read_source`/`source_files` in a test, macro,
//! hook or export (rendered later, or not per model), and a model that
//! reads a source behind `is_incremental()`, `execute` or `run_query`
//! (its execute render may take another branch). The other modes keep
//! every column: their archive may outlive the run.

use crate::mode::Mode;
use crate::plan::Plan;
use std::collections::{BTreeMap, BTreeSet};

/// Per source, per MMS table (upper case), the columns to store (upper
/// case). A table not named keeps every column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    tables: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// What reads a source's table: named columns, or all of them.
enum Wanted {
    Columns(BTreeSet<String>),
    All,
}

/// Words in a node's text that mean it reads ingested files.
const READS_FILES: [&str; 2] = ["read_source", "source_files"];

/// Words in a model's text that may make its execute render read other
/// columns than its parse render.
const BRANCHES: [&str; 3] = ["is_incremental", "execute", "run_query"];

impl Projection {
    /// The projection of a run of `plan` in `mode`: empty (store every
    /// column) outside `ci` or when something besides the models' parse
    /// render may read ingested files.
    pub fn for_run(plan: &Plan, mode: Mode) -> Projection {
        if mode != Mode::Ci {
            return Projection::default();
        }
        let project = &plan.project;
        let mentions = |text: &str| READS_FILES.iter().any(|w| text.contains(w));
        let elsewhere = project
            .singular_tests
            .iter()
            .chain(&project.macro_files)
            .any(|f| mentions(&f.text))
            || project
                .on_run_start
                .iter()
                .chain(&project.on_run_end)
                .any(|h| mentions(h))
            || project.settings.exports.iter().any(|e| mentions(&e.sql))
            || plan.models.iter().any(|m| {
                ["pre_hook", "post_hook"]
                    .iter()
                    .flat_map(|k| m.config.str_list(k))
                    .any(|h| mentions(&h))
            });
        if elsewhere {
            return Projection::default();
        }
        let mut wanted: BTreeMap<(String, Option<String>), Wanted> = BTreeMap::new();
        for model in &plan.models {
            if model.ingest_reads.is_empty() {
                continue;
            }
            if BRANCHES.iter().any(|w| model.sql.contains(w)) {
                return Projection::default();
            }
            for read in &model.ingest_reads {
                let key = (
                    read.source.clone(),
                    read.table.as_deref().map(str::to_ascii_uppercase),
                );
                let entry = wanted
                    .entry(key)
                    .or_insert_with(|| Wanted::Columns(BTreeSet::new()));
                match (&read.columns, entry) {
                    (None, entry) => *entry = Wanted::All,
                    (Some(cols), Wanted::Columns(set)) => {
                        set.extend(cols.iter().map(|c| c.to_ascii_uppercase()))
                    }
                    (Some(_), Wanted::All) => {}
                }
            }
        }
        let mut out = Projection::default();
        // A read of a whole source (no table) adds to every table of it.
        let whole: BTreeMap<&str, &Wanted> = wanted
            .iter()
            .filter(|((_, t), _)| t.is_none())
            .map(|((s, _), w)| (s.as_str(), w))
            .collect();
        for ((source, table), w) in &wanted {
            let Some(table) = table else { continue };
            let mut cols = match w {
                Wanted::All => continue,
                Wanted::Columns(c) => c.clone(),
            };
            match whole.get(source.as_str()) {
                Some(Wanted::All) => continue,
                Some(Wanted::Columns(more)) => cols.extend(more.iter().cloned()),
                None => {}
            }
            out.tables
                .entry(source.clone())
                .or_default()
                .insert(table.clone(), cols);
        }
        out
    }

    /// The columns to store of `table` of `source`; `None`: every column.
    pub fn columns(&self, source: &str, table: &str) -> Option<&BTreeSet<String>> {
        self.tables.get(source)?.get(&table.to_ascii_uppercase())
    }

    /// The tables of `source` this projection narrows (for the log).
    pub fn describe(&self, source: &str) -> Vec<String> {
        self.tables
            .get(source)
            .map(|t| {
                t.iter()
                    .map(|(table, cols)| {
                        format!(
                            "{table} ({})",
                            cols.iter().cloned().collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A projection from a literal map (tests).
    #[cfg(test)]
    pub fn from_tables(tables: &[(&str, &str, &[&str])]) -> Projection {
        let mut out = Projection::default();
        for (source, table, cols) in tables {
            out.tables.entry(source.to_string()).or_default().insert(
                table.to_ascii_uppercase(),
                cols.iter().map(|c| c.to_ascii_uppercase()).collect(),
            );
        }
        out
    }
}
