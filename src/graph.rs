//! The model DAG: edges from `ref()` calls, a stable topological order, and
//! clear errors for unknown refs (with a "did you mean") and cycles.

use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};

/// Models and the models each one refers to.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    /// model → models it depends on
    pub parents: BTreeMap<String, BTreeSet<String>>,
}

impl Dag {
    /// Builds the DAG; `closest` suggests a model name for an unknown ref.
    pub fn new(
        edges: &BTreeMap<String, Vec<String>>,
        closest: impl Fn(&str) -> Option<String>,
    ) -> Result<Dag> {
        let mut parents = BTreeMap::new();
        for (model, refs) in edges {
            for r in refs {
                if !edges.contains_key(r) {
                    let hint = closest(r)
                        .map(|c| format!(" — did you mean `{c}`?"))
                        .unwrap_or_default();
                    bail!(
                        "model `{model}` refers to `{r}`, which is not a model in this project{hint}"
                    );
                }
            }
            parents.insert(model.clone(), refs.iter().cloned().collect());
        }
        let dag = Dag { parents };
        dag.order()?;
        Ok(dag)
    }

    /// Models in dependency order; ties broken by name so runs are repeatable.
    pub fn order(&self) -> Result<Vec<String>> {
        let mut remaining: BTreeMap<&str, usize> = self
            .parents
            .iter()
            .map(|(m, p)| (m.as_str(), p.iter().filter(|x| *x != m).count()))
            .collect();
        for (m, p) in &self.parents {
            if p.contains(m) {
                bail!("model `{m}` refers to itself (use {{{{ this }}}} for its own table)");
            }
        }
        let mut ready: BTreeSet<&str> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(m, _)| *m)
            .collect();
        let mut order = Vec::new();
        while let Some(next) = ready.pop_first() {
            remaining.remove(next);
            order.push(next.to_string());
            for (child, parents) in &self.parents {
                if parents.contains(next)
                    && let Some(n) = remaining.get_mut(child.as_str())
                {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(child.as_str());
                    }
                }
            }
        }
        if !remaining.is_empty() {
            let cycle = self.find_cycle(remaining.keys().copied().collect());
            bail!(
                "the models form a cycle: {}",
                cycle
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
        }
        Ok(order)
    }

    /// One cycle among `stuck` models, as a path that returns to its start.
    fn find_cycle(&self, stuck: BTreeSet<&str>) -> Vec<String> {
        let Some(start) = stuck.first().copied() else {
            return Vec::new();
        };
        let mut path = vec![start.to_string()];
        let mut current = start;
        loop {
            let next = self.parents[current]
                .iter()
                .find(|p| stuck.contains(p.as_str()))
                .map(String::as_str);
            let Some(next) = next else { return path };
            if let Some(pos) = path.iter().position(|p| p == next) {
                let mut cycle = path[pos..].to_vec();
                cycle.push(next.to_string());
                // Show it in the direction data flows: parent → child.
                cycle.reverse();
                return cycle;
            }
            path.push(next.to_string());
            current = next;
        }
    }

    /// `name` and everything upstream of it.
    pub fn ancestors(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(m) = stack.pop() {
            if out.insert(m.clone()) {
                stack.extend(self.parents.get(&m).into_iter().flatten().cloned());
            }
        }
        out
    }

    /// `name` and everything downstream of it.
    pub fn descendants(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(m) = stack.pop() {
            if out.insert(m.clone()) {
                for (child, parents) in &self.parents {
                    if parents.contains(&m) {
                        stack.push(child.clone());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, r)| (m.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_parents_before_children() {
        let dag = Dag::new(&edges(&[("c", &["b"]), ("b", &["a"]), ("a", &[])]), |_| {
            None
        })
        .unwrap();
        assert_eq!(dag.order().unwrap(), vec!["a", "b", "c"]);
        assert_eq!(dag.descendants("b").len(), 2);
        assert_eq!(dag.ancestors("b").len(), 2);
    }

    #[test]
    fn a_cycle_names_its_models() {
        let err = Dag::new(
            &edges(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cycle"), "{err}");
        for m in ["a", "b", "c"] {
            assert!(err.contains(&format!("`{m}`")), "{err}");
        }
        assert!(!err.contains("`d`"), "{err}");
    }

    #[test]
    fn an_unknown_ref_suggests_the_closest_name() {
        let err = Dag::new(
            &edges(&[("a", &["stg_ordrs"]), ("stg_orders", &[])]),
            |_| Some("stg_orders".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`stg_ordrs`") && err.contains("did you mean `stg_orders`"),
            "{err}"
        );
    }
}
