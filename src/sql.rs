//! SQL vocabulary shared by every stage: identifier and literal quoting for
//! DuckDB, and [`Relation`], the name of a table or view as `ref()` and
//! `this` render it. Imports nothing of this crate.

use std::fmt;

/// A table or view name as `ref()`/`this` return it: renders as `"schema"."name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The catalog, for the Jinja `database` attribute (not part of the rendered name).
    pub database: Option<String>,
    /// The schema (DuckDB's `main` by default).
    pub schema: String,
    /// The table or view name.
    pub identifier: String,
    /// Verbatim SQL instead of a quoted name (dbt-duckdb `external_location`,
    /// ingested files).
    pub raw: Option<String>,
}

impl Relation {
    /// A relation in `schema` named `identifier`.
    pub fn new(schema: &str, identifier: &str) -> Relation {
        Relation {
            database: None,
            schema: schema.to_string(),
            identifier: identifier.to_string(),
            raw: None,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            Some(raw) => f.write_str(raw),
            None => write!(f, "{}.{}", quote(&self.schema), quote(&self.identifier)),
        }
    }
}

/// Double-quotes an identifier for DuckDB.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Single-quotes a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `['a.csv.gz', 'b.csv.gz']` — a DuckDB list literal of paths.
pub fn path_list(paths: &[std::path::PathBuf]) -> String {
    let items: Vec<String> = paths
        .iter()
        .map(|p| literal(&p.to_string_lossy()))
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_render_quoted() {
        let r = Relation::new("main", "we\"ird");
        assert_eq!(r.to_string(), "\"main\".\"we\"\"ird\"");
    }
}
