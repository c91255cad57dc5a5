//! Publishing through the GitHub Git Data API, against a fake API on
//! loopback backed by a real bare git repository (tests/common/github.rs),
//! checked with `git clone`.

mod common;
use analytics::Secret;
use analytics::project::settings::History;
use analytics::publish::{PublishConfig, publish, publish_to_dir};
use analytics::{Manifest, ManifestFile};
use common::github::{FakeGitHub, clone_files, commit_count, commit_files, git};
use std::collections::BTreeMap;
use std::path::Path;

const TOKEN: &str = "ghs_fakeTOKEN1234567890secret";

fn entry(dataset: &str, path: &str, bytes: &[u8]) -> ManifestFile {
    ManifestFile {
        dataset: dataset.into(),
        path: path.into(),
        table: dataset.into(),
        grain: "hour".into(),
        period: None,
        rows: 1,
        bytes: bytes.len() as u64,
        sha256: analytics::hash::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes)),
        min_date: None,
        max_date: None,
        columns: Vec::new(),
        exported_at: "2024-01-01T00:00:00Z".into(),
        fingerprint: None,
    }
}

/// A site folder: `files` (path → bytes) plus a manifest listing the
/// `data/` files under the dataset named by the file stem's first word.
fn site(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Manifest {
        version: 1,
        project: "p".into(),
        exported_at: "2024-01-02T00:00:00Z".into(),
        files: Vec::new(),
        summary: None,
        warnings: Vec::new(),
    };
    for (rel, bytes) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        if let Some(name) = rel.strip_prefix("data/") {
            let dataset = name.split(['_', '.']).next().unwrap();
            manifest.files.push(entry(dataset, rel, bytes));
        }
    }
    std::fs::write(dir.path().join("manifest.json"), manifest.to_json()).unwrap();
    dir
}

fn config(gh: &FakeGitHub, history: History) -> PublishConfig {
    let mut cfg = PublishConfig::new("octo/site");
    cfg.api_url = gh.api_url.clone();
    cfg.history = history;
    cfg.retry_base = std::time::Duration::from_millis(10);
    cfg
}

fn manifest_of(files: &BTreeMap<String, Vec<u8>>, key: &str) -> Manifest {
    Manifest::parse(std::str::from_utf8(&files[key]).unwrap()).unwrap()
}

#[test]
fn a_first_publish_creates_the_branch_with_exactly_the_site_in_one_commit() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let s = site(&[
        ("index.html", b"<html>dash</html>"),
        ("data/hourly_2024_h1.duckdb", b"DUCK1"),
        ("data/daily.duckdb", &[0u8, 1, 2, 255]),
    ]);
    let out = publish(s.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap();
    let sha = out.commit_sha.clone().expect("a commit");
    assert!(!out.skipped);
    assert_eq!(out.files.len(), 4, "{out:?}");
    assert_eq!(out.destination, "octo/site@gh-pages");

    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "data/daily.duckdb",
            "data/hourly_2024_h1.duckdb",
            "index.html",
            "manifest.json"
        ]
    );
    assert_eq!(files["data/daily.duckdb"], [0u8, 1, 2, 255]);
    assert_eq!(files["index.html"], b"<html>dash</html>");
    assert_eq!(
        files["manifest.json"],
        std::fs::read(s.path().join("manifest.json")).unwrap()
    );
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 1);
    assert_eq!(
        git(&gh.repo, &["rev-parse", "refs/heads/gh-pages"], None, &[]),
        sha
    );
    // One commit, one tree, one ref creation — the branch never showed a half site.
    assert_eq!(gh.count("POST", "/git/commits"), 1);
    assert_eq!(gh.count("POST", "/git/trees"), 1);
    assert_eq!(gh.count("POST", "/git/refs"), 1);
}

#[test]
fn keep_history_adds_a_commit_keeps_other_files_and_drops_stale_files_of_the_datasets_exported() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    // What an earlier backfill published, plus a file someone else keeps there.
    let old = site(&[
        ("data/hourly_2023_h2.duckdb", b"old hourly h2"),
        ("data/hourly_2024_h1.duckdb", b"old hourly h1"),
        ("data/intraday.duckdb", b"old intraday"),
    ]);
    publish(old.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap();
    commit_files(
        &gh.repo,
        "gh-pages",
        &[("CNAME", b"dash.example.org")],
        "custom domain",
    );
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 2);

    // An intraday run: only the intraday dataset.
    let new = site(&[("data/intraday.duckdb", b"new intraday")]);
    let out = publish(new.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap();
    assert_eq!(out.files, ["data/intraday.duckdb", "manifest.json"]);
    assert!(out.deleted.is_empty());
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(files["CNAME"], b"dash.example.org");
    assert_eq!(files["data/intraday.duckdb"], b"new intraday");
    assert_eq!(files["data/hourly_2023_h2.duckdb"], b"old hourly h2");
    let m = manifest_of(&files, "manifest.json");
    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/intraday.duckdb",
            "data/hourly_2023_h2.duckdb",
            "data/hourly_2024_h1.duckdb"
        ]
    );
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 3);

    // A backfill whose hourly files are now one period: the stale one goes.
    let backfill = site(&[
        ("data/hourly_2024_h1.duckdb", b"new hourly h1"),
        ("data/intraday.duckdb", b"new intraday"),
    ]);
    let out = publish(
        backfill.path(),
        &config(&gh, History::Keep),
        &Secret::new(TOKEN),
    )
    .unwrap();
    assert_eq!(out.deleted, ["data/hourly_2023_h2.duckdb"]);
    // The unchanged intraday file is not uploaded again.
    assert_eq!(out.files, ["data/hourly_2024_h1.duckdb", "manifest.json"]);
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "CNAME",
            "data/hourly_2024_h1.duckdb",
            "data/intraday.duckdb",
            "manifest.json"
        ]
    );
    assert_eq!(files["data/hourly_2024_h1.duckdb"], b"new hourly h1");
    assert_eq!(manifest_of(&files, "manifest.json").files.len(), 2);
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 4);
}

#[test]
fn single_history_leaves_one_parentless_commit_and_nothing_changed_makes_no_commit() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let a = site(&[("data/daily.duckdb", b"v1"), ("index.html", b"<html/>")]);
    publish(a.path(), &config(&gh, History::Single), &Secret::new(TOKEN)).unwrap();
    let b = site(&[("data/daily.duckdb", b"v2"), ("index.html", b"<html/>")]);
    let out = publish(b.path(), &config(&gh, History::Single), &Secret::new(TOKEN)).unwrap();
    assert!(out.commit_sha.is_some());
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 1);
    assert_eq!(
        clone_files(&gh.repo, "gh-pages")["data/daily.duckdb"],
        b"v2"
    );
    let head = git(&gh.repo, &["rev-parse", "gh-pages"], None, &[]);

    let commits_before = gh.count("POST", "/git/commits");
    let blobs_before = gh.count("POST", "/git/blobs");
    let again = publish(b.path(), &config(&gh, History::Single), &Secret::new(TOKEN)).unwrap();
    assert!(again.skipped, "{again:?}");
    assert_eq!(again.commit_sha, None);
    assert_eq!(gh.count("POST", "/git/commits"), commits_before);
    assert_eq!(gh.count("POST", "/git/blobs"), blobs_before);
    assert_eq!(git(&gh.repo, &["rev-parse", "gh-pages"], None, &[]), head);
}

#[test]
fn a_concurrent_push_is_retried_on_the_new_head_and_nothing_is_lost() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let first = site(&[("data/daily.duckdb", b"v1")]);
    publish(
        first.path(),
        &config(&gh, History::Keep),
        &Secret::new(TOKEN),
    )
    .unwrap();
    // Between our commit and our ref update, someone else pushes a file.
    *gh.before_ref_update.lock().unwrap() = Some(Box::new(|repo: &Path| {
        commit_files(
            repo,
            "gh-pages",
            &[("other/notes.txt", b"theirs")],
            "concurrent",
        );
    }));
    let second = site(&[("data/daily.duckdb", b"v2")]);
    let out = publish(
        second.path(),
        &config(&gh, History::Keep),
        &Secret::new(TOKEN),
    )
    .unwrap();
    assert_eq!(out.retries, 1, "{out:?}");
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(files["other/notes.txt"], b"theirs");
    assert_eq!(files["data/daily.duckdb"], b"v2");
    // v1, theirs, ours: a fast-forward chain, nothing rewritten.
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 3);
    assert_eq!(gh.count("PATCH", "/git/refs/heads/gh-pages"), 2);
}

#[test]
fn a_branch_created_by_someone_else_meanwhile_is_built_upon() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    // No gh-pages yet; another job creates it between our commit and our
    // ref creation.
    *gh.before_ref_update.lock().unwrap() = Some(Box::new(|repo: &Path| {
        commit_files(repo, "gh-pages", &[("theirs.txt", b"x")], "concurrent");
    }));
    let s = site(&[("data/daily.duckdb", b"ours")]);
    let out = publish(s.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap();
    assert_eq!(out.retries, 1, "{out:?}");
    assert_eq!(gh.count("POST", "/git/refs"), 1, "one creation, refused");
    assert_eq!(gh.count("PATCH", "/git/refs/heads/gh-pages"), 1);
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(files["theirs.txt"], b"x");
    assert_eq!(files["data/daily.duckdb"], b"ours");
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 2, "theirs, then ours");
}

#[test]
fn a_branch_that_keeps_moving_gives_up_after_max_attempts() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    commit_files(&gh.repo, "gh-pages", &[("a.txt", b"a")], "init");
    let head = git(&gh.repo, &["rev-parse", "gh-pages"], None, &[]);
    gh.fail("PATCH", "/git/refs/heads/gh-pages", 422, 100);
    let mut cfg = config(&gh, History::Keep);
    cfg.max_attempts = 3;
    let s = site(&[("data/daily.duckdb", b"d")]);
    let err = publish(s.path(), &cfg, &Secret::new(TOKEN)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("gave up after 3 attempts"), "{msg}");
    assert!(msg.contains("kept moving"), "{msg}");
    assert!(!msg.contains(TOKEN));
    assert_eq!(gh.count("PATCH", "/git/refs/heads/gh-pages"), 3);
    assert_eq!(git(&gh.repo, &["rev-parse", "gh-pages"], None, &[]), head);
}

#[test]
fn server_errors_and_rate_limits_are_retried_with_backoff() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    commit_files(&gh.repo, "gh-pages", &[("a.txt", b"a")], "init");
    gh.fail("GET", "/git/ref/heads/gh-pages", 502, 1);
    gh.fail("POST", "/git/blobs", 503, 2);
    gh.fail("POST", "/git/trees", 429, 1);
    gh.fail("PATCH", "/git/refs/heads/gh-pages", 500, 1);
    let s = site(&[("data/daily.duckdb", b"d")]);
    let started = std::time::Instant::now();
    let out = publish(s.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap();
    // 10 ms, then 20 ms for the blob's second retry: waits, not hammering.
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    assert_eq!(out.retries, 0, "no rebuild: the same calls repeated");
    assert_eq!(gh.count("GET", "/git/ref/heads/gh-pages"), 2);
    assert_eq!(gh.count("POST", "/git/trees"), 2);
    assert_eq!(gh.count("PATCH", "/git/refs/heads/gh-pages"), 2);
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(files["a.txt"], b"a");
    assert_eq!(files["data/daily.duckdb"], b"d");
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 2);
}

#[test]
fn a_server_error_that_persists_gives_up_after_max_attempts() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    gh.fail("POST", "/git/blobs", 503, 100);
    let mut cfg = config(&gh, History::Keep);
    cfg.max_attempts = 4;
    let s = site(&[("data/daily.duckdb", b"d")]);
    let err = publish(s.path(), &cfg, &Secret::new(TOKEN)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("HTTP 503") && msg.contains("gave up after 4 attempts"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN));
    assert_eq!(gh.count("POST", "/git/blobs"), 4);
    assert_eq!(gh.count("POST", "/git/refs"), 0, "no branch created");
}

#[test]
fn a_single_history_publish_also_rebuilds_when_the_branch_moved() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let first = site(&[("data/daily.duckdb", b"v1")]);
    publish(
        first.path(),
        &config(&gh, History::Single),
        &Secret::new(TOKEN),
    )
    .unwrap();
    // Another push lands while we build; our force update must not drop it.
    *gh.before_ref_update.lock().unwrap() = Some(Box::new(|repo: &Path| {
        commit_files(repo, "gh-pages", &[("theirs.txt", b"x")], "concurrent");
    }));
    let second = site(&[("data/daily.duckdb", b"v2")]);
    let out = publish(
        second.path(),
        &config(&gh, History::Single),
        &Secret::new(TOKEN),
    )
    .unwrap();
    assert_eq!(out.retries, 1, "{out:?}");
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(files["data/daily.duckdb"], b"v2");
    assert_eq!(files["theirs.txt"], b"x");
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 1);
}

#[test]
fn a_folder_and_an_enterprise_api_path_are_honoured() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    commit_files(&gh.repo, "gh-pages", &[("README.md", b"root")], "init");
    let s = site(&[("data/daily.duckdb", b"d")]);
    let mut cfg = config(&gh, History::Keep);
    cfg.folder = "/nem/".into();
    cfg.branch = "gh-pages".into();
    let out = publish(s.path(), &cfg, &Secret::new(TOKEN)).unwrap();
    assert_eq!(out.destination, "octo/site@gh-pages:nem");
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["README.md", "nem/data/daily.duckdb", "nem/manifest.json"]
    );
    // Every call went under the GHES-style /api/v3 base.
    assert!(
        gh.requests
            .lock()
            .unwrap()
            .iter()
            .all(|(_, p)| p.starts_with("/api/v3/"))
    );
    // Not github.com and no Pages API answer: no guessed URL.
    assert_eq!(out.url, None);
}

#[test]
fn a_file_over_100_mib_is_refused_before_any_request() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let s = site(&[
        ("data/hourly_2024_h1.duckdb", b"x"),
        ("data/daily.duckdb", b"y"),
    ]);
    let big = std::fs::File::options()
        .write(true)
        .open(s.path().join("data/hourly_2024_h1.duckdb"))
        .unwrap();
    big.set_len(100 * 1024 * 1024 + 1).unwrap();
    let err = publish(s.path(), &config(&gh, History::Keep), &Secret::new(TOKEN)).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("dataset `hourly`"), "{text}");
    assert!(text.contains("data/hourly_2024_h1.duckdb"), "{text}");
    assert!(text.contains("smaller periods"), "{text}");
    assert_eq!(gh.count("POST", "/git/blobs"), 0);
    assert!(gh.requests.lock().unwrap().is_empty());
    // And a folder publish refuses it too.
    let dest = tempfile::tempdir().unwrap();
    assert!(publish_to_dir(s.path(), dest.path()).is_err());
    assert!(!dest.path().join("data/daily.duckdb").exists());
}

#[test]
fn refused_tokens_and_read_only_access_fail_clearly_without_showing_the_token() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let s = site(&[("data/daily.duckdb", b"d")]);
    let wrong = "ghp_wrongTOKENabcdef0123456789";
    let err = format!(
        "{:#}",
        publish(s.path(), &config(&gh, History::Keep), &Secret::new(wrong)).unwrap_err()
    );
    assert!(err.contains("401") && err.contains("octo/site"), "{err}");
    assert!(!err.contains(wrong), "{err}");

    let ro = FakeGitHub::start("octo/site", TOKEN, false);
    let err = format!(
        "{:#}",
        publish(s.path(), &config(&ro, History::Keep), &Secret::new(TOKEN)).unwrap_err()
    );
    assert!(err.contains("contents: write"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert_eq!(ro.count("POST", "/git/blobs"), 0);
}

#[test]
fn a_folder_publish_merges_like_the_branch() {
    let dest = tempfile::tempdir().unwrap();
    let full = site(&[
        ("data/hourly_2024_h1.duckdb", b"h1"),
        ("data/intraday.duckdb", b"i1"),
        ("index.html", b"<html/>"),
    ]);
    let out = publish_to_dir(full.path(), dest.path()).unwrap();
    assert_eq!(out.files.len(), 4);
    let intraday = site(&[("data/intraday.duckdb", b"i2")]);
    let out = publish_to_dir(intraday.path(), dest.path()).unwrap();
    assert_eq!(out.files, ["data/intraday.duckdb", "manifest.json"]);
    assert_eq!(
        std::fs::read(dest.path().join("data/hourly_2024_h1.duckdb")).unwrap(),
        b"h1"
    );
    assert_eq!(
        std::fs::read(dest.path().join("data/intraday.duckdb")).unwrap(),
        b"i2"
    );
    let m = Manifest::parse(&std::fs::read_to_string(dest.path().join("manifest.json")).unwrap())
        .unwrap();
    assert_eq!(m.files.len(), 2);
    let again = publish_to_dir(intraday.path(), dest.path()).unwrap();
    assert!(again.skipped, "{again:?}");
}

#[test]
fn nojekyll_goes_to_the_branch_root_where_pages_reads_it_even_under_a_folder() {
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let s = site(&[(".nojekyll", b""), ("index.html", b"<html/>")]);
    let mut cfg = config(&gh, History::Keep);
    cfg.folder = "nem".into();
    let out = publish(s.path(), &cfg, &Secret::new(TOKEN)).unwrap();
    assert!(out.commit_sha.is_some(), "{out:?}");
    let files = clone_files(&gh.repo, "gh-pages");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [".nojekyll", "nem/index.html", "nem/manifest.json"]
    );
    assert!(files[".nojekyll"].is_empty());
    // Published again: nothing changed, no commit.
    let again = publish(s.path(), &cfg, &Secret::new(TOKEN)).unwrap();
    assert!(again.skipped, "{again:?}");
    assert_eq!(commit_count(&gh.repo, "gh-pages"), 1);
}

#[test]
fn the_pages_url_comes_from_the_pages_api_and_pages_not_enabled_is_said() {
    use analytics::publish::PagesStatus;
    use common::github::FakePages;
    let gh = FakeGitHub::start("octo/site", TOKEN, true);
    let cfg = config(&gh, History::Keep);
    let token = Secret::new(TOKEN);
    let publish_once =
        |n: &str| publish(site(&[("index.html", n.as_bytes())]).path(), &cfg, &token).unwrap();

    // No Pages site (404): no address, and the summary's sentence says how to turn it on.
    let out = publish_once("1");
    assert_eq!(out.url, None);
    assert_eq!(
        out.pages,
        PagesStatus::NotEnabled {
            branch: "gh-pages".into()
        }
    );
    assert_eq!(
        out.pages.note().unwrap(),
        "GitHub Pages is not enabled: Settings → Pages → Deploy from branch gh-pages, / (root)"
    );
    assert!(out.pages.not_served());

    // Deployed from the branch: the API's address.
    gh.set_pages(FakePages::branch(
        "https://pages.example/octo/site/",
        "gh-pages",
    ));
    let out = publish_once("2");
    assert_eq!(out.url.as_deref(), Some("https://pages.example/octo/site/"));
    assert_eq!(out.pages, PagesStatus::Serving);
    assert_eq!(out.pages.note(), None);
    // An unchanged publish (no commit) still reports it.
    let out = publish_once("2");
    assert!(out.skipped);
    assert_eq!(out.url.as_deref(), Some("https://pages.example/octo/site/"));

    // Pages serves another branch, or a workflow: not our site, no address.
    gh.set_pages(FakePages::branch(
        "https://pages.example/octo/site/",
        "main",
    ));
    let out = publish_once("3");
    assert_eq!(out.url, None);
    let note = out.pages.note().unwrap();
    assert!(
        note.contains("branch `main`") && note.contains("`gh-pages`"),
        "{note}"
    );
    gh.set_pages(FakePages::FromWorkflow {
        url: "https://pages.example/octo/site/".into(),
    });
    let out = publish_once("4");
    assert!(out.pages.not_served(), "{out:?}");
    assert!(out.pages.note().unwrap().contains("workflow"), "{out:?}");

    // A folder under the served root: the address has the folder.
    gh.set_pages(FakePages::branch(
        "https://pages.example/octo/site",
        "gh-pages",
    ));
    let mut nested = config(&gh, History::Keep);
    nested.folder = "nem".into();
    let out = publish(site(&[("index.html", b"5")]).path(), &nested, &token).unwrap();
    assert_eq!(
        out.url.as_deref(),
        Some("https://pages.example/octo/site/nem/")
    );

    // The token may not read the settings (403): said, and off github.com no
    // address is assumed.
    gh.set_pages(FakePages::Forbidden);
    let out = publish_once("6");
    assert_eq!(out.url, None);
    assert_eq!(
        out.pages,
        PagesStatus::Unreadable {
            why: "HTTP 403".into()
        }
    );
    assert!(out.pages.note().unwrap().contains("pages: read"));
    assert!(!out.pages.not_served());
    assert!(gh.count("GET", "/pages") >= 7);
}
