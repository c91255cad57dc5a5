//! What a run report becomes in the Action: `::error` / `::warning`
//! annotations on the files (and lines) that declare what failed, read from
//! the locations the stages recorded, and the step outputs.

use super::commands::{Location, annotation};
use super::inputs::ActionSettings;
use crate::data_tests::TestStatus;
use crate::summary::{ModelStatus, RunReport};
use std::collections::BTreeMap;

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
        if let Some(p) = &site.published
            && p.pages.not_served()
            && let Some(note) = p.pages.note()
        {
            out.push(annotation("warning", None, "GitHub Pages", &note));
        }
    }
    capped(out)
}

/// GitHub shows at most 10 error and 10 warning annotations of a step and
/// drops the rest: beyond 10 of a kind, the first 9 and a 10th saying how
/// many more the job summary holds (an 11th would be the one dropped).
const MAX_ANNOTATIONS: usize = 10;

fn capped(all: Vec<String>) -> Vec<String> {
    let kind_of = |a: &str| {
        ["error", "warning"]
            .into_iter()
            .find(|k| a.strip_prefix("::").is_some_and(|r| r.starts_with(k)))
    };
    let mut total: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in all.iter().filter_map(|a| kind_of(a)) {
        *total.entry(kind).or_default() += 1;
    }
    let keep = |kind: &str| match total.get(kind) {
        Some(&n) if n > MAX_ANNOTATIONS => MAX_ANNOTATIONS - 1,
        _ => MAX_ANNOTATIONS,
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for a in &all {
        if let Some(kind) = kind_of(a) {
            let n = seen.entry(kind).or_default();
            *n += 1;
            if *n > keep(kind) {
                continue;
            }
        }
        out.push(a.clone());
    }
    for (&kind, &n) in &total {
        if n > MAX_ANNOTATIONS {
            let more = n - keep(kind);
            out.push(annotation(
                kind,
                None,
                "analytics",
                &format!("{more} more {kind}s in the job summary"),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn many(kind: &str, n: usize) -> Vec<String> {
        (1..=n)
            .map(|i| annotation(kind, None, "t", &format!("{kind} {i}")))
            .collect()
    }

    #[test]
    fn more_than_ten_of_a_kind_become_nine_and_one_saying_how_many_more() {
        let mut all = many("error", 25);
        all.extend(many("warning", 10));
        all.push("::notice::kept".into());
        let out = capped(all);
        let errors: Vec<&String> = out.iter().filter(|a| a.starts_with("::error")).collect();
        let warnings: Vec<&String> = out.iter().filter(|a| a.starts_with("::warning")).collect();
        // GitHub shows 10 of each per step: the 10th error says what is left.
        assert_eq!(errors.len(), 10, "{out:#?}");
        assert_eq!(errors[0], "::error title=t::error 1");
        assert_eq!(errors[8], "::error title=t::error 9");
        assert_eq!(
            errors[9],
            "::error title=analytics::16 more errors in the job summary"
        );
        // Exactly 10 warnings: all shown, no note.
        assert_eq!(warnings.len(), 10, "{out:#?}");
        assert_eq!(warnings[9], "::warning title=t::warning 10");
        assert!(out.contains(&"::notice::kept".to_string()));
        assert_eq!(capped(many("error", 3)), many("error", 3));
    }
}
