//! dbt compatibility: the dbt-duckdb project in `tests/fixtures/dbt_compat`
//! must build with `analytics` to the same relations, with the same columns
//! and the same rows, as with dbt-duckdb itself.
//!
//! Each side builds its own copy of the fixture twice: once with the
//! project's vars and once with `--vars '{batch: 2}'`, which brings restated
//! and new keys so the incremental strategies (delete+insert, append, merge)
//! decide the result. The two `compat.duckdb` files are then compared.
//!
//! dbt comes from `.venv-dbt/`, made by `scripts/setup-dbt-venv`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use duckdb::{AccessMode, Config, Connection};

const FIXTURE: &str = "tests/fixtures/dbt_compat";
const DB_FILE: &str = "compat.duckdb";
const BATCH_2: &str = "{batch: 2}";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the fixture into `dest`, leaving out anything a build in place
/// may have left behind.
fn copy_fixture(dest: &Path) {
    copy_dir(&repo_root().join(FIXTURE), dest);
}

fn copy_dir(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap_or_else(|e| panic!("creating {}: {e}", dest.display()));
    let entries = fs::read_dir(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if matches!(name.as_ref(), "target" | "logs" | ".user.yml") || name.contains(".duckdb") {
            continue;
        }
        let from = entry.path();
        let to = dest.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&from, &to);
        } else {
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }
}

/// The same environment for both tools: one env var set, one left to its
/// default, no telemetry, no colours.
fn prepare(cmd: &mut Command) -> &mut Command {
    cmd.env("COMPAT_RUN_LABEL", "compat")
        .env_remove("COMPAT_CURRENCY")
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_USE_COLORS", "false")
        .env("NO_COLOR", "1")
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn dbt_bin() -> PathBuf {
    let dbt = repo_root().join(".venv-dbt/bin/dbt");
    assert!(
        dbt.exists(),
        "{} is missing: run scripts/setup-dbt-venv first (it installs dbt-core, \
         dbt-duckdb and duckdb 1.5.6 into .venv-dbt/)",
        dbt.display()
    );
    dbt
}

fn run_dbt(dbt: &Path, project: &Path, vars: Option<&str>) -> Output {
    let mut cmd = Command::new(dbt);
    cmd.arg("build")
        .arg("--project-dir")
        .arg(project)
        .arg("--profiles-dir")
        .arg(project)
        .args(["--target", "dev"]);
    if let Some(vars) = vars {
        cmd.args(["--vars", vars]);
    }
    // dbt-duckdb opens `path: compat.duckdb` relative to its working directory.
    prepare(&mut cmd).current_dir(project);
    cmd.output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", dbt.display()))
}

fn run_ours(project: &Path, cwd: &Path, vars: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
    cmd.args(["run", "--mode", "ci", "--project"])
        .arg(project)
        .args(["--target", "dev"]);
    if let Some(vars) = vars {
        cmd.args(["--vars", vars]);
    }
    // Run from outside the project: the target path is relative to the project.
    prepare(&mut cmd).current_dir(cwd);
    cmd.output().expect("starting analytics")
}

/// What one relation looks like: its type, its columns and its rows.
#[derive(Debug, PartialEq)]
struct Relation {
    table_type: String,
    columns: Vec<(String, String)>,
    /// Each row rendered as text (a struct literal), sorted.
    rows: Vec<String>,
}

type Snapshot = BTreeMap<(String, String), Relation>;

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn snapshot(db: &Path, who: &str) -> Snapshot {
    assert!(
        db.exists(),
        "{who} exited 0 but did not create {}",
        db.display()
    );
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .expect("read-only config");
    let conn = Connection::open_with_flags(db, config)
        .unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
    let mut relations = Vec::new();
    {
        let mut stmt = conn
            .prepare(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 WHERE table_catalog = current_database() \
                   AND table_schema NOT IN ('information_schema', 'pg_catalog') \
                 ORDER BY ALL",
            )
            .expect("listing relations");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .expect("listing relations");
        for row in rows {
            relations.push(row.expect("relation row"));
        }
    }
    let mut snap = Snapshot::new();
    for (schema, name, table_type) in relations {
        let label = format!("{schema}.{name} in {}", db.display());
        let mut stmt = conn
            .prepare(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? \
                 ORDER BY ordinal_position",
            )
            .expect("listing columns");
        let columns = stmt
            .query_map([&schema, &name], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<(String, String)>, _>>())
            .unwrap_or_else(|e| panic!("columns of {label}: {e}"));
        let sql = format!(
            "SELECT CAST(t AS VARCHAR) FROM {}.{} AS t ORDER BY 1",
            quote(&schema),
            quote(&name)
        );
        let mut stmt = conn
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("reading {label}: {e}"));
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .unwrap_or_else(|e| panic!("reading {label}: {e}"));
        snap.insert(
            (schema, name),
            Relation {
                table_type,
                columns,
                rows,
            },
        );
    }
    snap
}

/// Rows in `a` that are not matched one-for-one by rows in `b`.
fn rows_missing_from(a: &[String], b: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for row in b {
        *counts.entry(row).or_default() += 1;
    }
    let mut missing = Vec::new();
    for row in a {
        match counts.get_mut(row.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing.push(row.clone()),
        }
    }
    missing
}

fn sample(rows: &[String]) -> String {
    if rows.is_empty() {
        return "(none)".to_string();
    }
    let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
    let more = rows.len().saturating_sub(shown.len());
    let mut text = shown.join("\n      ");
    if more > 0 {
        text.push_str(&format!("\n      ... and {more} more"));
    }
    text
}

/// Every difference between the two builds, one line (or block) each.
fn differences(dbt: &Snapshot, ours: &Snapshot) -> Vec<String> {
    let mut diffs = Vec::new();
    let names: BTreeSet<&(String, String)> = dbt.keys().chain(ours.keys()).collect();
    for key @ (schema, name) in names {
        let rel = format!("{schema}.{name}");
        let (d, o) = match (dbt.get(key), ours.get(key)) {
            (Some(d), Some(o)) => (d, o),
            (Some(d), None) => {
                diffs.push(format!(
                    "{rel}: built by dbt ({}, {} rows) but not by analytics",
                    d.table_type,
                    d.rows.len()
                ));
                continue;
            }
            (None, Some(o)) => {
                diffs.push(format!(
                    "{rel}: built by analytics ({}, {} rows) but not by dbt",
                    o.table_type,
                    o.rows.len()
                ));
                continue;
            }
            (None, None) => unreachable!(),
        };
        if d.table_type != o.table_type {
            diffs.push(format!(
                "{rel}: dbt made a {}, analytics a {}",
                d.table_type, o.table_type
            ));
        }
        if d.columns != o.columns {
            diffs.push(format!(
                "{rel}: columns differ\n    dbt:       {:?}\n    analytics: {:?}",
                d.columns, o.columns
            ));
        }
        if d.rows.len() != o.rows.len() {
            diffs.push(format!(
                "{rel}: dbt has {} rows, analytics has {}",
                d.rows.len(),
                o.rows.len()
            ));
        }
        if d.rows != o.rows {
            let only_dbt = rows_missing_from(&d.rows, &o.rows);
            let only_ours = rows_missing_from(&o.rows, &d.rows);
            diffs.push(format!(
                "{rel}: contents differ ({} rows only in dbt's, {} only in ours)\n    only in dbt:\n      {}\n    only in analytics:\n      {}",
                only_dbt.len(),
                only_ours.len(),
                sample(&only_dbt),
                sample(&only_ours)
            ));
        }
    }
    diffs
}

/// dbt-duckdb's own leftovers, should a version of it ever leave any.
fn drop_dbt_internals(snap: &mut Snapshot) {
    snap.retain(|(_, name), _| !name.contains("__dbt_tmp") && !name.contains("__dbt_backup"));
}

/// Schemas analytics keeps its own bookkeeping in (the ingest file log); they
/// have no counterpart in dbt and are left out of the comparison.
const OUR_INTERNAL_SCHEMAS: &[&str] = &["_analytics"];

fn drop_our_internals(snap: &mut Snapshot) {
    snap.retain(|(schema, _), _| !OUR_INTERNAL_SCHEMAS.contains(&schema.as_str()));
}

/// A data test's outcome: dbt's status word (`pass`, `warn`, `fail`,
/// `error`, `skipped`) and its failing rows.
type Outcomes = BTreeMap<String, (String, u64)>;

/// dbt's outcome for each data test of the last `dbt build`, from
/// `target/run_results.json`, named as analytics names tests. dbt names a
/// generic test after its arguments (`accepted_values_stg_orders_status__placed__shipped__returned`,
/// `relationships_fct_orders_customer_id__customer_id__ref_dim_customers_`) and
/// analytics after test, model and column (`accepted_values_stg_orders_status`,
/// `relationships_fct_orders_customer_id__ref_dim_customers`), so the name is
/// rebuilt from `target/manifest.json`'s `test_metadata`; singular tests keep
/// their file name on both sides.
fn dbt_outcomes(project: &Path) -> Outcomes {
    let read = |name: &str| -> serde_json::Value {
        let path = project.join("target").join(name);
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    };
    let (results, manifest) = (read("run_results.json"), read("manifest.json"));
    let mut out = Outcomes::new();
    for result in results["results"].as_array().expect("results") {
        let id = result["unique_id"].as_str().expect("unique_id");
        if !id.starts_with("test.") {
            continue;
        }
        let node = &manifest["nodes"][id];
        let name = match node["test_metadata"]["name"].as_str() {
            None => node["name"].as_str().expect("test name").to_string(),
            Some(kind) => {
                let model = node["attached_node"]
                    .as_str()
                    .and_then(|n| n.rsplit('.').next())
                    .expect("attached_node");
                let column = node["column_name"].as_str().expect("column_name");
                let mut name = format!("{kind}_{model}_{column}");
                if kind == "relationships" {
                    let to = node["test_metadata"]["kwargs"]["to"].as_str().expect("to");
                    let to = to.trim_start_matches("ref('").trim_end_matches("')");
                    name.push_str(&format!("__ref_{to}"));
                }
                name
            }
        };
        let status = result["status"].as_str().expect("status").to_string();
        let failures = result["failures"].as_u64().unwrap_or(0);
        assert!(
            out.insert(name.clone(), (status, failures)).is_none(),
            "two dbt tests map to {name}"
        );
    }
    out
}

/// Our outcome for each data test, from the run's terminal summary
/// (`test  <name>  [time]  PASS`, `WARN <rows>`, `FAIL <rows>`, `ERROR`, `SKIP`).
fn our_outcomes(out: &Output) -> Outcomes {
    let line = regex::Regex::new(r"^test\s+(\S+)\s.*?\b(PASS|WARN|FAIL|ERROR|SKIP)\b(?: (\d+))?")
        .expect("pattern");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| {
            let status = match &c[2] {
                "SKIP" => "skipped".to_string(),
                s => s.to_lowercase(),
            };
            let failures = c.get(3).map_or(0, |n| n.as_str().parse().expect("rows"));
            (c[1].to_string(), (status, failures))
        })
        .collect()
}

fn row_count(snap: &Snapshot, schema: &str, name: &str) -> usize {
    snap.get(&(schema.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("dbt built no {schema}.{name}; relations: {:?}", snap.keys()))
        .rows
        .len()
}

#[test]
fn builds_the_same_tables_as_dbt_duckdb() {
    let dbt = dbt_bin();

    // dbt-duckdb.
    let dbt_dir = tempfile::tempdir().expect("tempdir");
    let dbt_project = dbt_dir.path().join("project");
    copy_fixture(&dbt_project);
    let mut dbt_tests = Vec::new();
    for vars in [None, Some(BATCH_2)] {
        let out = run_dbt(&dbt, &dbt_project, vars);
        let what = format!("dbt build (vars: {vars:?})");
        assert!(out.status.success(), "{}", describe(&what, &out));
        // Only the warn-severity test fails; it must warn, not error.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("WARN=1") && stdout.contains("ERROR=0"),
            "fixture: expected exactly one warning and no error from {what}\n{}",
            describe(&what, &out)
        );
        let outcomes = dbt_outcomes(&dbt_project);
        let warned: Vec<_> = outcomes.iter().filter(|(_, (s, _))| s == "warn").collect();
        assert_eq!(warned.len(), 1, "fixture: dbt's warnings {outcomes:?}");
        dbt_tests.push(outcomes);
    }
    let mut dbt_snap = snapshot(&dbt_project.join(DB_FILE), "dbt build");
    drop_dbt_internals(&mut dbt_snap);
    // The fixture itself: the second batch must have gone through each strategy.
    for (schema, name, rows) in [
        ("marts", "fct_orders", 130), // delete+insert: 81-100 replaced, 101-130 new
        ("marts", "fct_order_events", 150), // append: 100 + 50
        ("marts", "fct_customer_latest", 25), // merge: 15-20 updated, 21-25 new
        ("marts", "dim_customers", 25),
    ] {
        assert_eq!(
            row_count(&dbt_snap, schema, name),
            rows,
            "fixture: dbt's {schema}.{name} row count"
        );
    }

    // analytics.
    let our_dir = tempfile::tempdir().expect("tempdir");
    let our_project = our_dir.path().join("project");
    copy_fixture(&our_project);
    for (vars, dbt_tests) in [None, Some(BATCH_2)].into_iter().zip(&dbt_tests) {
        let out = run_ours(&our_project, our_dir.path(), vars);
        let what = format!("analytics run (vars: {vars:?})");
        assert!(out.status.success(), "{}", describe(&what, &out));
        // Every data test: the same tests, each with dbt's status and count
        // of failing rows.
        let ours = our_outcomes(&out);
        let mut diffs = Vec::new();
        for name in dbt_tests.keys().chain(ours.keys()).collect::<BTreeSet<_>>() {
            let (d, o) = (dbt_tests.get(name), ours.get(name));
            if d != o {
                diffs.push(format!("{name}: dbt {d:?}, analytics {o:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "data tests of {what} differ from dbt build's:\n  {}\n{}",
            diffs.join("\n  "),
            describe(&what, &out)
        );
    }
    let mut our_snap = snapshot(&our_project.join(DB_FILE), "analytics run");
    drop_our_internals(&mut our_snap);

    let diffs = differences(&dbt_snap, &our_snap);
    assert!(
        diffs.is_empty(),
        "analytics built {} differently from dbt-duckdb:\n  {}",
        FIXTURE,
        diffs.join("\n  ")
    );
}

#[test]
fn missing_ref_names_the_model_and_suggests_the_closest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("project");
    copy_fixture(&project);
    let model = project.join("models/marts/v_customer_regions.sql");
    let sql = fs::read_to_string(&model).expect("reading v_customer_regions.sql");
    let broken = sql.replace("ref('dim_customers')", "ref('dim_custmers')");
    assert_ne!(
        sql, broken,
        "fixture: v_customer_regions no longer refs dim_customers"
    );
    fs::write(&model, broken).expect("writing v_customer_regions.sql");

    let out = run_ours(&project, dir.path(), None);
    let report = describe("analytics run with a ref to a missing model", &out);
    assert!(!out.status.success(), "expected a failure\n{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (needle, why) in [
        ("dim_custmers", "the missing model"),
        (
            "dim_customers",
            "the closest existing model as a suggestion",
        ),
        ("v_customer_regions", "the model holding the bad ref"),
    ] {
        assert!(
            stderr.contains(needle),
            "stderr should name {why} ({needle:?})\n{report}"
        );
    }
}

/// A small dbt-duckdb project that has no analytics.yml: its target comes
/// from `profiles.yml` alone, whose schema is `mart` through
/// `env_var('DBT_SCHEMA', 'mart')`.
fn write_profile_project(project: &Path, profiles: &Path) {
    let files = [
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nversion: '1.0'\nconfig-version: 2\n\
             models:\n  shop:\n    +materialized: table\n    reporting:\n      +schema: reporting\n      +materialized: view\n",
        ),
        (
            "models/stg_orders.sql",
            "select range as order_id, range % 3 as customer_id, range * 1.5 as amount\nfrom range(10)\n",
        ),
        (
            "models/fct_customer_totals.sql",
            "select customer_id, count(*) as orders, sum(amount) as total\n\
             from {{ ref('stg_orders') }}\ngroup by customer_id\n",
        ),
        (
            "models/reporting/v_top_customer.sql",
            "select * from {{ ref('fct_customer_totals') }} order by total desc limit 1\n",
        ),
    ];
    for (rel, text) in files {
        let path = project.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("creating folders");
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    fs::create_dir_all(profiles).expect("creating the profiles folder");
    fs::write(
        profiles.join("profiles.yml"),
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: shop.duckdb\n\
         \x20     schema: \"{{ env_var('DBT_SCHEMA', 'mart') }}\"\n      threads: 1\n",
    )
    .expect("writing profiles.yml");
}

#[test]
fn a_profile_schema_from_profiles_yml_builds_like_dbt_duckdb() {
    let dbt = dbt_bin();

    let dbt_dir = tempfile::tempdir().expect("tempdir");
    let dbt_project = dbt_dir.path().join("project");
    let dbt_profiles = dbt_dir.path().join("profiles");
    write_profile_project(&dbt_project, &dbt_profiles);
    let mut cmd = Command::new(&dbt);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&dbt_project)
        .arg("--profiles-dir")
        .arg(&dbt_profiles);
    prepare(&mut cmd)
        .env_remove("DBT_SCHEMA")
        .current_dir(&dbt_project);
    let out = cmd.output().expect("starting dbt");
    assert!(out.status.success(), "{}", describe("dbt run", &out));
    let mut dbt_snap = snapshot(&dbt_project.join("shop.duckdb"), "dbt run");
    drop_dbt_internals(&mut dbt_snap);
    assert!(
        dbt_snap.contains_key(&("mart".to_string(), "fct_customer_totals".to_string()))
            && dbt_snap.contains_key(&("mart_reporting".to_string(), "v_top_customer".to_string())),
        "fixture: dbt should build into mart and mart_reporting: {:?}",
        dbt_snap.keys()
    );

    // Ours: no --target and no analytics.yml; the profile's `target: dev`,
    // found through --profiles-dir.
    let our_dir = tempfile::tempdir().expect("tempdir");
    let our_project = our_dir.path().join("project");
    let our_profiles = our_dir.path().join("profiles");
    write_profile_project(&our_project, &our_profiles);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
    cmd.args(["run", "--mode", "ci", "--project"])
        .arg(&our_project)
        .arg("--profiles-dir")
        .arg(&our_profiles);
    prepare(&mut cmd)
        .env_remove("DBT_SCHEMA")
        .env_remove("DBT_PROFILES_DIR")
        .current_dir(our_dir.path());
    let out = cmd.output().expect("starting analytics");
    let report = describe("analytics run", &out);
    assert!(out.status.success(), "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("target `dev` from") && stderr.contains("(profile `shop`)"),
        "the log should say the target came from the profile\n{report}"
    );
    let mut our_snap = snapshot(&our_project.join("shop.duckdb"), "analytics run");
    drop_our_internals(&mut our_snap);

    let diffs = differences(&dbt_snap, &our_snap);
    assert!(
        diffs.is_empty(),
        "analytics built the profile project differently from dbt-duckdb:\n  {}",
        diffs.join("\n  ")
    );
}
