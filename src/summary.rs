//! The job summary: what ran, rows, timings and test results — as Markdown for
//! `$GITHUB_STEP_SUMMARY` and as a short table for a terminal.

use crate::data_tests::{TestOutcome, TestStatus};
use crate::ingest::SourceReport;
use std::fmt::Write as _;
use std::time::Duration;

/// How a model ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    /// Built.
    Success,
    /// The build failed, with DuckDB's or the renderer's message.
    Error(String),
    /// Not built because an upstream model failed.
    Skipped(String),
}

/// One model's result.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// The model name.
    pub name: String,
    /// The model's file, relative to the project root.
    pub path: String,
    /// The relation built, e.g. `"main"."fct_scada"`.
    pub relation: String,
    /// `view`, `table` or `incremental`.
    pub materialized: String,
    /// Built, failed or skipped.
    pub status: ModelStatus,
    /// Rows written, when known.
    pub rows: Option<u64>,
    /// How long the model took, hooks included.
    pub duration: Duration,
}

/// Everything a run did, for the summary and the exit status.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The project's `name:`.
    pub project: String,
    /// The mode's name (`ci`, `intraday`, …).
    pub mode: String,
    /// The target built into.
    pub target: String,
    /// Per-source ingest figures.
    pub ingest: Vec<SourceReport>,
    /// Model results, in build order.
    pub models: Vec<ModelOutcome>,
    /// Test results, in run order.
    pub tests: Vec<TestOutcome>,
    /// Non-fatal problems found while loading and parsing.
    pub warnings: Vec<String>,
    /// What `maintain` mode did per stored table.
    pub maintenance: Vec<crate::warehouse::maintain::MaintainReport>,
    /// Wall time of the whole run.
    pub duration: Duration,
}

impl RunReport {
    /// Whether the run should fail the step: a model error or a failing test.
    pub fn failed(&self) -> bool {
        self.models
            .iter()
            .any(|m| matches!(m.status, ModelStatus::Error(_)))
            || self
                .tests
                .iter()
                .any(|t| matches!(t.status, TestStatus::Fail | TestStatus::Error(_)))
    }

    /// Counts of (passed, warned, failed, errored, skipped) tests.
    pub fn test_counts(&self) -> (usize, usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0, 0);
        for t in &self.tests {
            match t.status {
                TestStatus::Pass => c.0 += 1,
                TestStatus::Warn => c.1 += 1,
                TestStatus::Fail => c.2 += 1,
                TestStatus::Error(_) => c.3 += 1,
                TestStatus::Skipped(_) => c.4 += 1,
            }
        }
        c
    }

    /// The Markdown job summary.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let verdict = if self.failed() {
            "❌ failed"
        } else {
            "✅ passed"
        };
        let _ = writeln!(
            md,
            "## analytics · `{}` · mode `{}` · target `{}` — {verdict} in {:.1}s\n",
            self.project,
            self.mode,
            self.target,
            self.duration.as_secs_f64()
        );
        if !self.ingest.is_empty() {
            let _ = writeln!(
                md,
                "### Sources\n\n| source | listed | new | taken | skipped | MB | s |\n|---|---:|---:|---:|---:|---:|---:|"
            );
            for s in &self.ingest {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                    s.source,
                    s.listed,
                    s.new,
                    s.taken,
                    s.skipped.len(),
                    s.bytes as f64 / 1e6,
                    s.seconds
                );
            }
            for s in &self.ingest {
                for skipped in &s.skipped {
                    let _ = writeln!(md, "\n> ⚠️ `{}` skipped {}", s.source, escape(skipped));
                }
            }
            md.push('\n');
        }
        let built = self
            .models
            .iter()
            .filter(|m| m.status == ModelStatus::Success)
            .count();
        let rows: u64 = self.models.iter().filter_map(|m| m.rows).sum();
        let _ = writeln!(
            md,
            "### Models — {built}/{} built, {rows} rows\n\n| model | materialized | rows | s | status |\n|---|---|---:|---:|---|",
            self.models.len()
        );
        for m in &self.models {
            let status = match &m.status {
                ModelStatus::Success => "✅".to_string(),
                ModelStatus::Error(e) => format!("❌ {}", escape(first_line(e))),
                ModelStatus::Skipped(why) => format!("⏭️ {}", escape(why)),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {:.2} | {status} |",
                m.name,
                m.materialized,
                m.rows.map(|r| r.to_string()).unwrap_or_else(|| "–".into()),
                m.duration.as_secs_f64()
            );
        }
        let (pass, warn, fail, error, skipped) = self.test_counts();
        let _ = writeln!(
            md,
            "\n### Tests — {pass} passed, {warn} warned, {fail} failed, {error} errored, {skipped} skipped\n"
        );
        if !self.tests.is_empty() {
            let _ = writeln!(
                md,
                "| test | model | failing rows | status |\n|---|---|---:|---|"
            );
            for t in &self.tests {
                let status = match &t.status {
                    TestStatus::Pass => "✅ pass".to_string(),
                    TestStatus::Warn => "⚠️ warn".to_string(),
                    TestStatus::Fail => "❌ fail".to_string(),
                    TestStatus::Error(e) => format!("💥 {}", escape(first_line(e))),
                    TestStatus::Skipped(why) => format!("⏭️ {}", escape(why)),
                };
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {status} |",
                    t.name,
                    t.model.as_deref().unwrap_or("–"),
                    t.failures
                );
            }
            for t in self.tests.iter().filter(|t| !t.sample.rows.is_empty()) {
                let _ = writeln!(
                    md,
                    "\n<details><summary><code>{}</code>: {} failing rows (first {})</summary>\n\n{}\n</details>",
                    t.name,
                    t.failures,
                    t.sample.rows.len(),
                    sample_table(t)
                );
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(md, "\n### Warnings\n");
            for w in &self.warnings {
                let _ = writeln!(md, "- {}", escape(w));
            }
        }
        md
    }

    /// A short plain-text summary for a terminal.
    pub fn short(&self) -> String {
        let mut out = String::new();
        for s in &self.ingest {
            let _ = writeln!(
                out,
                "source {:<24} taken {:>5} of {:>5} new ({:>5} listed)  {:>8.2} MB  {:>6.2}s{}",
                s.source,
                s.taken,
                s.new,
                s.listed,
                s.bytes as f64 / 1e6,
                s.seconds,
                if s.skipped.is_empty() {
                    String::new()
                } else {
                    format!("  ({} skipped)", s.skipped.len())
                }
            );
        }
        for m in &self.models {
            let status = match &m.status {
                ModelStatus::Success => "OK".to_string(),
                ModelStatus::Error(_) => "ERROR".to_string(),
                ModelStatus::Skipped(_) => "SKIP".to_string(),
            };
            let _ = writeln!(
                out,
                "model {:<32} {:<12} {:>12} rows  {:>7.2}s  {status}",
                m.name,
                m.materialized,
                m.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                m.duration.as_secs_f64()
            );
        }
        for t in &self.tests {
            let status = match &t.status {
                TestStatus::Pass => "PASS".to_string(),
                TestStatus::Warn => format!("WARN {}", t.failures),
                TestStatus::Fail => format!("FAIL {}", t.failures),
                TestStatus::Error(_) => "ERROR".to_string(),
                TestStatus::Skipped(_) => "SKIP".to_string(),
            };
            let _ = writeln!(out, "test  {:<60} {status}", t.name);
        }
        let built = self
            .models
            .iter()
            .filter(|m| m.status == ModelStatus::Success)
            .count();
        let rows: u64 = self.models.iter().filter_map(|m| m.rows).sum();
        let (pass, warn, fail, error, skipped) = self.test_counts();
        let _ = writeln!(
            out,
            "\n{built}/{} models built ({rows} rows); tests: {pass} passed, {warn} warned, {fail} failed, {error} errored, {skipped} skipped; {:.1}s",
            self.models.len(),
            self.duration.as_secs_f64()
        );
        out
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Keeps table cells intact: no pipes or newlines.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn sample_table(t: &TestOutcome) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "| {} |", t.sample.columns.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(t.sample.columns.len()));
    for row in &t.sample.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => escape(s),
                other => escape(&other.to_string()),
            })
            .collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md
}
