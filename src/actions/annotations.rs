//! What a run report becomes in the Action: `::error` / `::warning`
//! annotations on the files (and lines) that declare what failed, read from
//! the locations the stages recorded, and the step outputs.

use super::commands::{Location, annotation};
use super::inputs::ActionSettings;
use crate::data_tests::TestStatus;
use crate::summary::{ModelStatus, RunReport};

/// `::error` / `::warning` commands for failed models, failing and warning
/// tests, pointing at the file (and line) that declares them.
pub fn annotations(report: &RunReport, settings: &ActionSettings) -> Vec<String> {
    let root = &settings.run.project_dir;
    let at = |rel: &str, line: usize| Location {
        file: settings.relative(&root.join(rel)),
        line,
    };
    let mut out = Vec::new();
    for m in &report.models {
        if let ModelStatus::Error(e) = &m.status {
            let (file, line) = match &m.error_at {
                Some(at) => (at.file.to_string_lossy().into_owned(), at.line),
                None => (m.path.clone(), 1),
            };
            out.push(annotation(
                "error",
                Some(&at(&file, line)),
                &format!("model {} failed", m.name),
                e,
            ));
        }
    }
    for t in &report.tests {
        let (kind, what) = match &t.status {
            TestStatus::Fail => ("error", "failed"),
            TestStatus::Warn => ("warning", "warned"),
            TestStatus::Error(_) => ("error", "could not run"),
            TestStatus::Pass | TestStatus::Skipped(_) => continue,
        };
        let on = t
            .model
            .as_deref()
            .map(|m| format!(" on `{m}`"))
            .unwrap_or_default();
        let message = match &t.status {
            TestStatus::Error(e) => format!("test `{}`{on} could not run: {e}", t.name),
            _ => format!(
                "test `{}`{on}: {} failing row{} (the job summary shows a sample)",
                t.name,
                t.failures,
                if t.failures == 1 { "" } else { "s" }
            ),
        };
        out.push(annotation(
            kind,
            Some(&at(&t.file, t.line)),
            &format!("test {} {what}", t.name),
            &message,
        ));
    }
    for s in &report.ingest {
        for skipped in &s.skipped {
            out.push(annotation(
                "warning",
                None,
                &format!("source {}", s.source),
                &format!("source `{}` skipped {skipped}", s.source),
            ));
        }
    }
    for w in &report.warnings {
        out.push(annotation("warning", None, "analytics", w));
    }
    if let Some(site) = &report.site {
        for w in &site.warnings {
            out.push(annotation("warning", None, "analytics export", w));
        }
        if let Some(e) = &site.error {
            out.push(annotation("error", None, "analytics export/publish", e));
        }
    }
    out
}

/// The step outputs of a run.
pub fn outputs(report: &RunReport) -> Vec<(&'static str, String)> {
    let built = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .count();
    let rows: u64 = report
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Success)
        .filter_map(|m| m.rows)
        .sum();
    let (pass, warn, fail, error, _) = report.test_counts();
    let published = report.site.as_ref().and_then(|s| s.published.as_ref());
    vec![
        ("models-built", built.to_string()),
        ("rows-written", rows.to_string()),
        ("tests-passed", pass.to_string()),
        ("tests-warned", warn.to_string()),
        ("tests-failed", (fail + error).to_string()),
        (
            "files-published",
            published.map(|p| p.files.len()).unwrap_or(0).to_string(),
        ),
        (
            "commit-sha",
            published
                .and_then(|p| p.commit_sha.clone())
                .unwrap_or_default(),
        ),
        (
            "pages-url",
            published.and_then(|p| p.url.clone()).unwrap_or_default(),
        ),
    ]
}
