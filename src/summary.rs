//! The job summary: what ran, rows, timings and test results — as Markdown for
//! `$GITHUB_STEP_SUMMARY` and as a short table for a terminal.

use crate::data_tests::{TestOutcome, TestStatus};
use crate::ingest::SourceReport;
use crate::mode::Mode;
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
    /// Wall time of ingest as a whole (its sources are taken at once).
    pub ingest_duration: Duration,
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
    /// Why an intraday run stopped after ingest (its sources took no new
    /// file): nothing was built, tested, exported or published.
    pub nothing_new: Option<String>,
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

    /// The dashboard's address, when the run published or wrote the site:
    /// the GitHub Pages address, else the folder's `index.html`.
    pub fn dashboard_url(&self) -> Option<&str> {
        let site = self.site.as_ref()?;
        [&site.published, &site.local]
            .into_iter()
            .flatten()
            .find_map(|p| p.url.as_deref())
    }

    /// What GitHub Pages said about the publish, when it is worth a line.
    pub fn pages_note(&self) -> Option<String> {
        self.site
            .as_ref()?
            .published
            .as_ref()
            .and_then(|p| p.pages.note())
    }

    fn is_mode(&self, mode: Mode) -> bool {
        self.mode == mode.name()
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
        if let Some(url) = self.dashboard_url() {
            let _ = writeln!(md, "**Dashboard:** {url}\n");
        }
        if let Some(note) = self.pages_note() {
            let _ = writeln!(md, "> ⚠️ {}\n", escape(&note));
        }
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
        if let Some(why) = &self.nothing_new {
            let _ = writeln!(md, "### Nothing new\n\n{}", escape(why));
        } else if self.is_mode(Mode::Maintain) {
            self.maintenance_markdown(&mut md);
        } else if self.is_mode(Mode::Import) {
            let _ = writeln!(
                md,
                "### Models — none built: `import` runs no model and no test, it exports the tables target `{}` holds",
                self.target
            );
        } else {
            self.models_markdown(&mut md);
            self.tests_markdown(&mut md);
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

    /// `maintain`: per stored table, what compaction, expiry and clean-up did.
    fn maintenance_markdown(&self, md: &mut String) {
        let m = &self.maintenance;
        if m.is_empty() {
            let _ = writeln!(
                md,
                "### Maintenance — nothing to do: target `{}` stores no model as an Iceberg table",
                self.target
            );
            return;
        }
        let sum = |f: fn(&crate::warehouse::maintain::MaintainReport) -> u64| -> u64 {
            m.iter().map(f).sum()
        };
        let _ = writeln!(
            md,
            "### Maintenance — {} tables: {} files compacted, {} snapshots expired, {} files deleted, {:.2} MB freed\n",
            m.len(),
            sum(|r| r.files_compacted as u64),
            sum(|r| r.snapshots_expired as u64),
            sum(|r| r.files_deleted as u64),
            sum(|r| r.bytes_deleted) as f64 / 1e6
        );
        let _ = writeln!(
            md,
            "| table | files compacted | into | snapshots expired | files deleted | MB freed |\n|---|---:|---:|---:|---:|---:|"
        );
        for r in m {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {:.2} |",
                r.table,
                r.files_compacted,
                r.files_written,
                r.snapshots_expired,
                r.files_deleted,
                r.bytes_deleted as f64 / 1e6
            );
        }
    }

    fn models_markdown(&self, md: &mut String) {
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
    }

    fn tests_markdown(&self, md: &mut String) {
        if self.is_mode(Mode::Intraday) && self.tests.is_empty() {
            let _ = writeln!(
                md,
                "\n### Tests — not run: tests do not run in `intraday` mode (they run in `backfill` and `ci`)"
            );
            return;
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
        if self.ingest.len() > 1 {
            let _ = writeln!(
                out,
                "ingest {:<24} taken {:>5} files, sources at once          {:>8.2} MB  {:>6.2}s",
                format!("{} sources", self.ingest.len()),
                self.ingest.iter().map(|s| s.taken).sum::<usize>(),
                self.ingest.iter().map(|s| s.bytes).sum::<u64>() as f64 / 1e6,
                self.ingest_duration.as_secs_f64()
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
            let shared = if t.scan_shared_by > 1 {
                format!("  (one scan for {} tests)", t.scan_shared_by)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "test  {:<60} {:>7.2}s  {status}{shared}",
                t.name,
                t.duration.as_secs_f64()
            );
        }
        for r in &self.maintenance {
            let _ = writeln!(
                out,
                "table {:<40} compacted {} files into {}, expired {} snapshots, deleted {} files ({:.2} MB)",
                r.table,
                r.files_compacted,
                r.files_written,
                r.snapshots_expired,
                r.files_deleted,
                r.bytes_deleted as f64 / 1e6
            );
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
            if let Some(note) = self.pages_note() {
                let _ = writeln!(out, "site  {note}");
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
        let seconds = self.duration.as_secs_f64();
        let _ = if let Some(why) = &self.nothing_new {
            writeln!(out, "\n{why}; {seconds:.1}s")
        } else if self.is_mode(Mode::Maintain) {
            writeln!(
                out,
                "\n{} stored tables maintained; {seconds:.1}s",
                self.maintenance.len()
            )
        } else if self.is_mode(Mode::Intraday) && self.tests.is_empty() {
            writeln!(
                out,
                "\n{built}/{} models built ({rows} rows); tests do not run in intraday mode; {seconds:.1}s",
                self.models.len()
            )
        } else {
            writeln!(
                out,
                "\n{built}/{} models built ({rows} rows); tests: {pass} passed, {warn} warned, {fail} failed, {error} errored, {skipped} skipped; {seconds:.1}s",
                self.models.len()
            )
        };
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
    if !site.kept.is_empty() {
        let _ = writeln!(
            md,
            "\n{} of {} files unchanged since the last publish (same rows): kept as published, not written or uploaded again.",
            site.kept.len(),
            site.files.len()
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{PagesStatus, PublishOutcome};
    use crate::site::SiteReport;
    use crate::warehouse::maintain::MaintainReport;

    fn report(mode: Mode) -> RunReport {
        RunReport {
            project: "nem".into(),
            mode: mode.name().into(),
            target: "warehouse".into(),
            ..Default::default()
        }
    }

    fn published(url: Option<&str>, pages: PagesStatus) -> SiteReport {
        SiteReport {
            published: Some(PublishOutcome {
                commit_sha: Some("abc123".into()),
                files: vec!["index.html".into()],
                url: url.map(str::to_string),
                destination: "octo/site@gh-pages".into(),
                pages,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn maintain_shows_what_it_did_per_table_instead_of_models_and_tests() {
        let mut r = report(Mode::Maintain);
        r.maintenance = vec![
            MaintainReport {
                table: "nem.fct_scada".into(),
                files_compacted: 48,
                files_written: 1,
                snapshots_expired: 40,
                files_deleted: 130,
                bytes_deleted: 12_500_000,
            },
            MaintainReport {
                table: "nem.dim_duid".into(),
                ..Default::default()
            },
        ];
        let md = r.markdown();
        assert!(
            md.contains("### Maintenance — 2 tables: 48 files compacted, 40 snapshots expired, 130 files deleted, 12.50 MB freed"),
            "{md}"
        );
        assert!(
            md.contains("| `nem.fct_scada` | 48 | 1 | 40 | 130 | 12.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| `nem.dim_duid` | 0 | 0 | 0 | 0 | 0.00 |"),
            "{md}"
        );
        assert!(!md.contains("### Models"), "{md}");
        assert!(!md.contains("### Tests"), "{md}");
        let short = r.short();
        assert!(
            short.contains(
                "compacted 48 files into 1, expired 40 snapshots, deleted 130 files (12.50 MB)"
            ),
            "{short}"
        );
        assert!(short.contains("2 stored tables maintained"), "{short}");
        assert!(!short.contains("tests:"), "{short}");

        let md = report(Mode::Maintain).markdown();
        assert!(
            md.contains("nothing to do: target `warehouse` stores no model"),
            "{md}"
        );
    }

    #[test]
    fn intraday_says_tests_do_not_run_and_import_says_no_model_runs() {
        let md = report(Mode::Intraday).markdown();
        assert!(
            md.contains("### Tests — not run: tests do not run in `intraday` mode"),
            "{md}"
        );
        assert!(!md.contains("0 passed"), "{md}");
        assert!(md.contains("### Models — 0/0 built"), "{md}");
        let md = report(Mode::Backfill).markdown();
        assert!(md.contains("### Tests — 0 passed"), "{md}");
        let md = report(Mode::Import).markdown();
        assert!(md.contains("`import` runs no model and no test"), "{md}");
        assert!(!md.contains("### Tests"), "{md}");
    }

    #[test]
    fn the_dashboard_url_is_at_the_top_and_pages_not_enabled_is_said() {
        let mut r = report(Mode::Backfill);
        r.site = Some(published(
            Some("https://octo.github.io/site/"),
            PagesStatus::Serving,
        ));
        let md = r.markdown();
        let lines: Vec<&str> = md.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("## analytics"), "{md}");
        assert_eq!(
            lines[1], "**Dashboard:** https://octo.github.io/site/",
            "{md}"
        );
        assert!(!md.contains("Pages is not enabled"), "{md}");

        r.site = Some(published(
            None,
            PagesStatus::NotEnabled {
                branch: "gh-pages".into(),
            },
        ));
        let md = r.markdown();
        let lines: Vec<&str> = md.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines[1],
            "> ⚠️ GitHub Pages is not enabled: Settings → Pages → Deploy from branch gh-pages, / (root)",
            "{md}"
        );
        assert!(!md.contains("**Dashboard:**"), "{md}");
        assert!(r.short().contains("site  GitHub Pages is not enabled"));

        // Written to a folder only: that folder's page.
        r.site = Some(SiteReport {
            local: Some(PublishOutcome {
                url: Some("file:///tmp/site/index.html".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(
            r.markdown()
                .contains("**Dashboard:** file:///tmp/site/index.html")
        );
    }
}
