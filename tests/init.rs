//! `analytics init`: the real binary scaffolds a dbt-duckdb project (the
//! repository's `tests/fixtures/dbt_compat`, and small projects whose
//! profile attaches an Iceberg catalog), and what it writes runs: a `ci` run
//! passes with the dashboard files exported, the workflows are valid YAML
//! using only the action's inputs (and pass actionlint when it is
//! installed), and no secret of the profile is copied or shown.

mod common;

use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "target" | "logs" | ".user.yml") || name.contains(".duckdb") {
            continue;
        }
        let to = dest.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

fn analytics(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
    cmd.args(args).current_dir(cwd).env("NO_COLOR", "1");
    for var in [
        "DBT_PROFILES_DIR",
        "ICEBERG_REST_ENDPOINT",
        "ICEBERG_TOKEN",
        "ICEBERG_CREDENTIAL",
        "ICEBERG_WAREHOUSE",
        "GITHUB_STEP_SUMMARY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("starting analytics")
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The inputs `action.yml` declares.
fn declared_inputs() -> BTreeSet<String> {
    let action = yaml(&repo_root().join("action.yml"));
    action["inputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// Checks a written workflow: valid YAML, triggered as `kind` should be, one
/// step using the action with `mode: kind`, only declared inputs.
fn check_workflow(path: &Path, kind: &str, project_dir: &str) -> Value {
    let wf = yaml(path);
    let on = &wf["on"];
    match kind {
        "ci" => assert!(on.get("pull_request").is_some(), "{kind}: {on:?}"),
        _ => {
            let cron = on["schedule"][0]["cron"].as_str().unwrap_or_default();
            assert_eq!(cron.split_whitespace().count(), 5, "{kind}: {on:?}");
        }
    }
    let jobs = wf["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 1, "{kind}");
    let steps = jobs.values().next().unwrap()["steps"]
        .as_sequence()
        .unwrap();
    let step = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.contains("analytics-action"))
        })
        .unwrap_or_else(|| panic!("{kind}: no step uses the action: {steps:?}"));
    assert_eq!(
        step["uses"].as_str(),
        Some("analytics-action/analytics-action@v1")
    );
    assert_eq!(step["with"]["mode"].as_str(), Some(kind));
    assert_eq!(step["with"]["project-dir"].as_str(), Some(project_dir));
    let declared = declared_inputs();
    for key in step["with"].as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(declared.contains(key), "{kind}: `{key}` is not an input");
    }
    wf
}

/// actionlint (installed by scripts/lint-action into .venv-lint) on the
/// written workflows, when it is there.
fn actionlint(repo: &Path) {
    let bin = repo_root().join(".venv-lint/bin/actionlint");
    if !bin.exists() {
        eprintln!("actionlint is not installed (scripts/lint-action): skipped");
        return;
    }
    let files: Vec<PathBuf> = fs::read_dir(repo.join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = Command::new(&bin)
        .args(["-shellcheck=", "-pyflakes="])
        .args(&files)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "actionlint: {}", text(&out));
}

#[test]
fn init_from_the_dbt_compat_fixture_gives_a_project_whose_ci_run_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let project = repo.join("analytics");
    copy_dir(&repo_root().join("tests/fixtures/dbt_compat"), &project);
    let before = fs::read_to_string(project.join("analytics.yml")).unwrap();
    let args = |force: bool| {
        let mut a = vec![
            "init",
            "--from-dbt",
            project.to_str().unwrap(),
            "--dir",
            repo.to_str().unwrap(),
        ];
        if force {
            a.push("--force");
        }
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |force: bool| {
        let a = args(force);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        analytics(&a, tmp.path(), &[])
    };

    // The fixture has an analytics.yml: refused, nothing written.
    let out = run(false);
    assert!(!out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("analytics.yml") && all.contains("--force"),
        "{all}"
    );
    assert_eq!(
        fs::read_to_string(project.join("analytics.yml")).unwrap(),
        before
    );
    assert!(!repo.join(".github").exists(), "{all}");
    // Refused before the in-memory build (which writes target/compiled/):
    // a refusal on a large project is not minutes late.
    assert!(
        !project.join("target").exists(),
        "the project was built before the refusal: {all}"
    );

    let out = run(true);
    assert!(out.status.success(), "{}", text(&out));

    // analytics.yml parses, with the profile's output, a ci target in
    // memory, a warehouse of ${VAR}s, and an export per fact model.
    let yml = yaml(&project.join("analytics.yml"));
    assert_eq!(
        yml["targets"]["dev"]["path"].as_str(),
        Some("compat.duckdb")
    );
    assert_eq!(yml["targets"]["ci"]["path"].as_str(), Some(":memory:"));
    assert_eq!(
        yml["targets"]["warehouse"]["type"].as_str(),
        Some("iceberg")
    );
    assert!(
        yml["targets"]["warehouse"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("${")
    );
    let exports: BTreeSet<&str> = yml["exports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        exports,
        BTreeSet::from(["orders", "order_events", "customer_latest"])
    );
    assert_eq!(
        yml["dashboard"]["grains"][0]["dataset"].as_str(),
        Some("orders")
    );

    // The scaffolded project runs: every model builds, every test passes
    // (the fixture's one warn-severity test warns), the exports and the
    // dashboard are written.
    let site = tmp.path().join("site");
    let started = std::time::Instant::now();
    let out = analytics(
        &[
            "run",
            "--mode",
            "ci",
            "--project",
            project.to_str().unwrap(),
            "--site-dir",
            site.to_str().unwrap(),
        ],
        tmp.path(),
        &[],
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    eprintln!("ci run on the scaffold: {:?}", started.elapsed());
    assert!(all.contains("target `ci` from analytics.yml"), "{all}");
    let summary = regex::Regex::new(
        r"(\d+)/(\d+) models built \(\d+ rows\); tests: (\d+) passed, (\d+) warned, (\d+) failed",
    )
    .unwrap();
    let c = summary.captures(&all).unwrap_or_else(|| panic!("{all}"));
    assert_eq!(&c[1], &c[2], "{all}");
    assert!(c[1].parse::<u32>().unwrap() >= 10, "{all}");
    assert!(c[3].parse::<u32>().unwrap() >= 20, "{all}");
    assert_eq!((&c[4], &c[5]), ("1", "0"), "{all}");
    for dataset in ["orders", "order_events", "customer_latest"] {
        assert!(
            site.join(format!("data/{dataset}.duckdb")).is_file(),
            "{all}"
        );
    }
    assert!(site.join("index.html").is_file(), "{all}");

    // The workflows: valid YAML, the action with the right mode, the
    // project's folder, declared inputs only; the catalog only where used.
    for kind in ["ci", "intraday", "backfill", "maintain"] {
        let path = repo.join(format!(".github/workflows/analytics-{kind}.yml"));
        let wf = check_workflow(&path, kind, "analytics");
        let body = serde_yaml_ng::to_string(&wf).unwrap();
        assert_eq!(body.contains("catalog-uri"), kind != "ci", "{kind}: {body}");
    }
    actionlint(&repo);
}

/// A loopback "catalog" that answers 401 to everything and keeps the
/// Authorization headers it was sent.
fn refusing_catalog() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let server = common::server::Server::start(move |request| {
        if let Some(auth) = request.header("authorization") {
            keep.lock().unwrap().push(auth.to_string());
        }
        Some(common::server::Response::new(401, "no"))
    });
    let url = server.url.clone();
    // The server lives as long as the test process.
    std::mem::forget(server);
    (url, seen)
}

const TOKEN: &str = "tok-profile-9f3c2a7e55d1";

/// A dbt-duckdb project whose profile attaches an Iceberg REST catalog with
/// a literal token (the worst case: dbt users do write them).
fn lake_project(dir: &Path, endpoint: &str) {
    fs::create_dir_all(dir.join("models/marts")).unwrap();
    fs::write(
        dir.join("dbt_project.yml"),
        "name: lake\nprofile: lake\nmodels:\n  lake:\n    +materialized: table\n",
    )
    .unwrap();
    fs::write(
        dir.join("models/marts/fct_sales.sql"),
        "select date '2024-01-01' + i::int as sale_date, 'r' || (i % 3) as region, \
         i * 1.5 as amount from range(10) t(i)\n",
    )
    .unwrap();
    fs::write(
        dir.join("profiles.yml"),
        format!(
            "lake:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      \
             path: lake.duckdb\n      schema: mart\n      secrets:\n        - type: iceberg\n          \
             name: lake_secret\n          token: {TOKEN}\n      attach:\n        - path: lake_wh\n          \
             alias: lake\n          type: iceberg\n          secret: lake_secret\n          \
             options:\n            endpoint: \"{{{{ env_var('LAKE_URI', '{endpoint}') }}}}\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn the_profiles_attached_catalog_is_the_warehouse_and_its_token_is_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, seen) = refusing_catalog();
    lake_project(tmp.path(), &url);
    let out = analytics(&["run", "--mode", "intraday"], tmp.path(), &[]);
    let all = text(&out);
    // The catalog refused the token, so the run fails — after sending it.
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(
            "target `warehouse` from profiles.yml (profile `lake`), output `dev`, \
             attached Iceberg catalog `lake`"
        ),
        "{all}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|h| h == &format!("Bearer {TOKEN}")),
        "the catalog was not sent the profile's token: {:?}\n{all}",
        seen.lock().unwrap()
    );
    assert!(!all.contains(TOKEN), "the token is in the output:\n{all}");

    // analytics.yml's warehouse wins over the profile's, and the log says so.
    fs::write(
        tmp.path().join("analytics.yml"),
        format!("targets:\n  warehouse:\n    type: iceberg\n    uri: {url}\n    token: other\n"),
    )
    .unwrap();
    let out = analytics(&["run", "--mode", "intraday"], tmp.path(), &[]);
    let all = text(&out);
    assert!(
        all.contains(
            "target `warehouse` from analytics.yml (over the Iceberg catalog attached in \
             profiles.yml (profile `lake`))"
        ),
        "{all}"
    );
    assert!(
        seen.lock().unwrap().iter().any(|h| h == "Bearer other"),
        "{all}"
    );
    assert!(!all.contains(TOKEN), "{all}");
}

#[test]
fn init_writes_the_attached_catalog_with_placeholders_and_never_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    lake_project(tmp.path(), "https://catalog.example.com");
    let out = analytics(
        &["init", "--from-dbt", tmp.path().to_str().unwrap()],
        tmp.path(),
        &[],
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    assert!(
        all.contains("ICEBERG_TOKEN"),
        "the note names the secret: {all}"
    );
    let yml_text = fs::read_to_string(tmp.path().join("analytics.yml")).unwrap();
    assert!(!yml_text.contains(TOKEN), "{yml_text}");
    let yml: Value = serde_yaml_ng::from_str(&yml_text).unwrap();
    let wh = &yml["targets"]["warehouse"];
    assert_eq!(wh["token"].as_str(), Some("${ICEBERG_TOKEN}"), "{yml_text}");
    assert_eq!(
        wh["uri"].as_str(),
        Some("${LAKE_URI:-https://catalog.example.com}")
    );
    assert_eq!(wh["warehouse"].as_str(), Some("lake_wh"));
    assert_eq!(wh["schema"].as_str(), Some("mart"));
    assert_eq!(yml["targets"]["ci"]["schema"].as_str(), Some("mart"));
    // The fact model, described by the in-memory build: by date and region.
    assert_eq!(
        yml["exports"][0]["name"].as_str(),
        Some("sales"),
        "{yml_text}"
    );
    assert_eq!(yml["exports"][0]["grain"].as_str(), Some("day"));
    assert_eq!(
        yml["exports"][0]["aggregate"]["amount"].as_str(),
        Some("sum")
    );

    // No `.git` above the temporary folder: the workflows go in the project.
    for kind in ["ci", "intraday", "backfill", "maintain"] {
        let path = tmp
            .path()
            .join(format!(".github/workflows/analytics-{kind}.yml"));
        let wf_text = fs::read_to_string(&path).unwrap();
        assert!(!wf_text.contains(TOKEN));
        let wf = check_workflow(&path, kind, ".");
        if kind != "ci" {
            let step = &wf["jobs"][kind]["steps"][1];
            assert_eq!(
                step["with"]["catalog-token"].as_str(),
                Some("${{ secrets.ICEBERG_TOKEN }}")
            );
            assert_eq!(
                step["env"]["LAKE_URI"].as_str(),
                Some("${{ secrets.LAKE_URI }}")
            );
        }
    }
    actionlint(tmp.path());

    // And the scaffold's ci run passes, in the profile's schema.
    let site = tmp.path().join("site");
    let out = analytics(
        &["run", "--mode", "ci", "--site-dir", site.to_str().unwrap()],
        tmp.path(),
        &[],
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("1/1 models built"), "{all}");
    assert!(site.join("data/sales.duckdb").is_file(), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
}
