//! The release's version, everywhere a consumer reads it: Cargo.toml's
//! `version` is the release (`vX.Y.Z`); action.yml runs the image of exactly
//! that version; every `analytics-action@vN` (README, docs, example and
//! repository workflows) pins this release's major, a full `vX.Y.Z` pins this
//! release, a commit SHA is allowed (it pins whatever it names); every
//! `analytics-action:vN…` image tag agrees the same way. Plain std only, so
//! it runs whatever state the library is in.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `version` of `[package]` in Cargo.toml.
fn cargo_version(toml: &str) -> String {
    let mut in_package = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package && let Some(rest) = line.strip_prefix("version") {
            let rest = rest.trim_start();
            if let Some(value) = rest.strip_prefix('=') {
                return value.trim().trim_matches('"').to_string();
            }
        }
    }
    panic!("Cargo.toml has no [package] version");
}

/// The major of a version (`1.2.3-rc1` → `1`).
fn major(version: &str) -> &str {
    version.split('.').next().unwrap()
}

/// What follows each `needle` in `text` up to the first character that
/// cannot be part of a git ref or tag, with its line number.
fn refs_after<'a>(text: &'a str, needle: &str) -> Vec<(usize, &'a str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(needle) {
            let after = &rest[at + needle.len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                .unwrap_or(after.len());
            // A sentence's full stop is not part of the ref.
            found.push((i + 1, after[..end].trim_end_matches('.')));
            rest = after;
        }
    }
    found
}

fn is_sha(r: &str) -> bool {
    r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit())
}

/// `vN` or `vN.N.N` or `vN.N.N-pre`: a literal version (placeholders such as
/// `vX`, `vX.Y.Z` or `v${{ … }}` are not).
fn is_version_ref(r: &str) -> bool {
    r.strip_prefix('v')
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// Problems with the refs and image tags in one file's text.
fn check_text(text: &str, file: &str, version: &str) -> (Vec<String>, usize) {
    let want_major = format!("v{}", major(version));
    let want_full = format!("v{version}");
    let mut problems = Vec::new();
    let mut seen = 0;
    for (line, r) in refs_after(text, "analytics-action@") {
        // `@vX`, `@$MAJOR`, a pattern in a script: placeholders, not pins.
        if r.is_empty() || (r.starts_with('v') && !is_version_ref(r)) {
            continue;
        }
        seen += 1;
        let ok = r == want_major || r == want_full || is_sha(r);
        if !ok {
            problems.push(format!(
                "{file}:{line}: `analytics-action@{r}`: pin {want_major} (or {want_full}, or a commit SHA); Cargo.toml is {version}"
            ));
        }
    }
    for (line, r) in refs_after(text, "analytics-action:") {
        if !is_version_ref(r) {
            continue; // `analytics-action:ci`, `:vX.Y.Z`, `:$TAG` …
        }
        seen += 1;
        if r != want_major && r != want_full {
            problems.push(format!(
                "{file}:{line}: image tag `analytics-action:{r}`: must be {want_full} or {want_major}; Cargo.toml is {version}"
            ));
        }
    }
    (problems, seen)
}

/// Text files under `dir` (recursive) with one of `exts`, skipping build
/// output, dependencies and sample data.
fn files_under(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "node_modules" | "sample" | "archive" | ".git"
            ) {
                files_under(&path, exts, out);
            }
        } else if exts
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
        {
            out.push(path);
        }
    }
}

#[test]
fn every_pinned_version_agrees_with_cargo_toml() {
    let root = repo_root();
    let version = cargo_version(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap());
    assert!(
        version.split('.').count() >= 3 && major(&version).parse::<u64>().is_ok(),
        "Cargo.toml version {version} is not X.Y.Z"
    );
    assert_ne!(
        major(&version),
        "0",
        "the first release is 1.0.0: consumers pin @v1"
    );

    // action.yml runs the prebuilt image of exactly this version.
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let image = action
        .lines()
        .find_map(|l| l.trim().strip_prefix("image:"))
        .expect("action.yml has runs.image")
        .trim()
        .trim_matches('"')
        .to_string();
    assert!(
        image.starts_with("docker://ghcr.io/") && image.ends_with(&format!(":v{version}")),
        "action.yml runs {image}; Cargo.toml is {version}: the image must be docker://ghcr.io/OWNER/analytics-action:v{version}"
    );

    let mut files = vec![
        root.join("action.yml"),
        root.join("README.md"),
        root.join("DEVELOPERS.md"),
        root.join("Dockerfile"),
    ];
    let exts = ["yml", "yaml", "md", "txt", "sh"];
    for dir in [".github", "docs", "examples", "example-project", "bench"] {
        files_under(&root.join(dir), &exts, &mut files);
    }
    let mut problems = Vec::new();
    let mut seen_in = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let (p, seen) = check_text(&text, &rel, &version);
        problems.extend(p);
        if seen > 0 {
            seen_in.push(rel);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Not vacuous: the README and the example workflows do pin the action.
    for must in ["README.md", "example-project/workflows/"] {
        assert!(
            seen_in.iter().any(|f| f.starts_with(must)),
            "no `analytics-action@vN` found in {must} (seen in {seen_in:?})"
        );
    }
}

#[test]
fn the_check_catches_a_wrong_major_a_wrong_image_tag_and_a_branch() {
    let text = "uses: org/analytics-action@v0\n\
                uses: org/analytics-action@v1.0.0\n\
                uses: org/analytics-action@v1\n\
                uses: org/analytics-action@main\n\
                uses: org/analytics-action@0123456789abcdef0123456789abcdef01234567 # v1.0.0\n\
                image: docker://ghcr.io/org/analytics-action:v0.1.0\n\
                docker pull ghcr.io/org/analytics-action:v1\n\
                tags: analytics-action:ci and analytics-action:vX.Y.Z\n\
                Pin it: `org/analytics-action@v1`.\n\
                placeholders: analytics-action@vX, analytics-action@$MAJOR\n";
    let (problems, seen) = check_text(text, "t.md", "1.0.0");
    assert_eq!(seen, 8, "{problems:?}");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("t.md:1") && problems[0].contains("@v0"));
    assert!(problems[1].contains("t.md:4") && problems[1].contains("@main"));
    assert!(problems[2].contains("t.md:6") && problems[2].contains(":v0.1.0"));
    // A pre-release of 1.1.0 still belongs to major v1.
    let (problems, _) = check_text("uses: o/analytics-action@v1\n", "t", "1.1.0-rc1");
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn the_release_workflow_never_moves_the_major_tag_before_the_smoke_test() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    // The job that moves the major tag and image needs the smoke job, and the
    // tag filter does not take a pre-release (`v1.0.0-rc1`) for a release.
    let jobs = text
        .split("\njobs:\n")
        .nth(1)
        .expect("release.yml has jobs");
    let mut job_texts: Vec<(String, String)> = Vec::new();
    for line in jobs.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
            .and_then(|l| l.strip_suffix(':'))
        {
            job_texts.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = job_texts.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let mover = job_texts
        .iter()
        .find(|(_, body)| body.contains("git push") && body.contains("refs/tags/"))
        .expect("a job pushes the major tag");
    let smoke = job_texts
        .iter()
        .find(|(_, body)| body.contains("scripts/image-smoke"))
        .expect("a job runs scripts/image-smoke on the pushed image");
    let needs = mover
        .1
        .lines()
        .find(|l| l.trim_start().starts_with("needs:"))
        .unwrap_or_default();
    assert!(
        needs.contains(&smoke.0),
        "job `{}` moves the major tag but does not need `{}`: {needs:?}",
        mover.0,
        smoke.0
    );
    assert!(
        mover.1.contains("prerelease"),
        "job `{}` must not move the major for a pre-release",
        mover.0
    );
    assert!(
        !text.contains("\"v*.*.*\"") && !text.contains("'v*.*.*'"),
        "the tag filter v*.*.* takes v1.0.0-rc1 for a release"
    );
}
