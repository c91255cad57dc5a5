//! The lineage page's data: sources and models as a DAG, laid out in columns
//! by depth so the template can draw it as SVG without JavaScript.

use serde::Serialize;
use std::collections::BTreeMap;

/// One box of the lineage drawing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineageNode {
    /// Model or source name.
    pub name: String,
    /// `source` or `model`.
    pub kind: String,
    /// A model's materialization (`view`, `table`, `incremental`…); empty for sources.
    pub materialized: String,
    /// The model's file, relative to the project.
    pub path: String,
    /// The model's description from YAML.
    pub description: String,
    /// Column (0 = sources) and row in the drawing; set by [`Lineage::layout`].
    pub column: usize,
    /// Row within the column.
    pub row: usize,
}

/// Sources and models, and the edges between them (parent → child).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Lineage {
    /// Boxes, in drawing order.
    pub nodes: Vec<LineageNode>,
    /// (parent, child) names.
    pub edges: Vec<(String, String)>,
}

impl Lineage {
    /// The lineage of a parsed project: ingest sources and models, edges from
    /// `ref()` and `read_source()`.
    pub fn from_plan(plan: &crate::plan::Plan) -> Lineage {
        let mut lineage = Lineage::default();
        let mut sources: Vec<&str> = plan
            .models
            .iter()
            .flat_map(|m| m.ingest_sources.iter().map(String::as_str))
            .collect();
        sources.sort();
        sources.dedup();
        for s in sources {
            lineage.nodes.push(LineageNode {
                name: s.to_string(),
                kind: "source".into(),
                materialized: String::new(),
                path: String::new(),
                description: String::new(),
                column: 0,
                row: 0,
            });
        }
        for m in &plan.models {
            let description = plan
                .project
                .models
                .iter()
                .find(|pm| pm.name == m.name)
                .and_then(|pm| pm.description.clone())
                .unwrap_or_default();
            lineage.nodes.push(LineageNode {
                name: m.name.clone(),
                kind: "model".into(),
                materialized: m.config.materialized().to_string(),
                path: m.path.display().to_string(),
                description,
                column: 0,
                row: 0,
            });
            for s in &m.ingest_sources {
                lineage.edges.push((s.clone(), m.name.clone()));
            }
            for r in &m.refs {
                lineage.edges.push((r.clone(), m.name.clone()));
            }
        }
        lineage.edges.sort();
        lineage.edges.dedup();
        lineage.layout();
        lineage
    }

    /// Sets each node's column (sources 0, a model one right of its deepest
    /// parent) and row (order within the column).
    pub fn layout(&mut self) {
        let mut depth: BTreeMap<String, usize> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), usize::from(n.kind == "model")))
            .collect();
        // Longest path; the graph is acyclic, so |nodes| passes settle it.
        for _ in 0..self.nodes.len() {
            let mut changed = false;
            for (p, c) in &self.edges {
                let want = depth.get(p).copied().unwrap_or(0) + 1;
                if let Some(d) = depth.get_mut(c)
                    && *d < want
                {
                    *d = want;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        for n in &mut self.nodes {
            n.column = depth.get(&n.name).copied().unwrap_or(0);
            let row = rows.entry(n.column).or_default();
            n.row = *row;
            *row += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, kind: &str) -> LineageNode {
        LineageNode {
            name: name.into(),
            kind: kind.into(),
            materialized: String::new(),
            path: String::new(),
            description: String::new(),
            column: 0,
            row: 0,
        }
    }

    #[test]
    fn columns_follow_the_longest_path() {
        let mut l = Lineage {
            nodes: vec![
                node("raw", "source"),
                node("stg", "model"),
                node("dim", "model"),
                node("fct", "model"),
            ],
            edges: vec![
                ("raw".into(), "stg".into()),
                ("stg".into(), "fct".into()),
                ("dim".into(), "fct".into()),
            ],
        };
        l.layout();
        let col = |n: &str| l.nodes.iter().find(|x| x.name == n).unwrap().column;
        assert_eq!(
            (col("raw"), col("stg"), col("dim"), col("fct")),
            (0, 1, 1, 2)
        );
        assert_eq!(l.nodes.iter().find(|x| x.name == "dim").unwrap().row, 1);
    }
}
