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
    /// Where a failed model's error points (file relative to the project).
    pub error_at: Option<crate::diagnostic::Located>,
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
    /// Dashboard files exported and published, when the run built a site.
    pub site: Option<crate::site::SiteReport>,
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
            || self.site.as_ref().is_some_and(|s| s.error.is_some())
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
        if let Some(site) = &self.site {
            site_markdown(&mut md, site);
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
        if let Some(site) = &self.site {
            for f in &site.files {
                let _ = writeln!(
                    out,
                    "file  {:<40} {:>12} rows  {:>8.2} MB",
                    f.path,
                    f.rows,
                    f.bytes as f64 / 1e6
                );
            }
            for p in [&site.local, &site.published].into_iter().flatten() {
                let _ = writeln!(out, "site  {}", published_line(p));
            }
            if let Some(why) = &site.skipped {
                let _ = writeln!(out, "site  not exported: {why}");
            }
            if let Some(e) = &site.error {
                let _ = writeln!(out, "site  ERROR {}", first_line(e));
            }
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

/// One line saying where the site went.
fn published_line(p: &crate::publish::PublishOutcome) -> String {
    let what = match (&p.commit_sha, p.skipped) {
        (_, true) => "unchanged, no commit".to_string(),
        (Some(sha), _) => format!(
            "commit {sha}: {} files written, {} removed",
            p.files.len(),
            p.deleted.len()
        ),
        (None, _) => format!(
            "{} files written, {} removed",
            p.files.len(),
            p.deleted.len()
        ),
    };
    let url = p
        .url
        .as_deref()
        .map(|u| format!(" — {u}"))
        .unwrap_or_default();
    format!("{}: {what}{url}", p.destination)
}

/// The "Dashboard files" section: each file against GitHub's 100 MiB limit.
fn site_markdown(md: &mut String, site: &crate::site::SiteReport) {
    let limit = crate::export::MAX_FILE_BYTES as f64;
    let total: u64 = site.files.iter().map(|f| f.bytes).sum();
    let _ = writeln!(
        md,
        "\n### Dashboard files — {} files, {:.1} MB, {:.1}s\n",
        site.files.len(),
        total as f64 / 1e6,
        site.seconds
    );
    if let Some(why) = &site.skipped {
        let _ = writeln!(md, "> ⏭️ not exported: {}\n", escape(why));
    }
    if let Some(e) = &site.error {
        let _ = writeln!(md, "> ❌ {}\n", escape(e));
    }
    if !site.files.is_empty() {
        let _ = writeln!(
            md,
            "| file | grain | rows | dates | MB | of 100 MiB |\n|---|---|---:|---|---:|---:|"
        );
        for f in &site.files {
            let dates = match (&f.min_date, &f.max_date) {
                (Some(a), Some(b)) => format!("{a} … {b}"),
                _ => "–".into(),
            };
            let share = f.bytes as f64 / limit * 100.0;
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {dates} | {:.2} | {}{share:.0}% |",
                f.path,
                f.grain,
                f.rows,
                f.bytes as f64 / 1e6,
                if f.bytes > crate::export::WARN_FILE_BYTES {
                    "⚠️ "
                } else {
                    ""
                }
            );
        }
    }
    for p in [&site.local, &site.published].into_iter().flatten() {
        let _ = writeln!(md, "\nPublished to {}", escape(&published_line(p)));
    }
    for w in &site.warnings {
        let _ = writeln!(md, "\n> ⚠️ {}", escape(w));
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
