//! Broken inputs give clear errors (naming the file, model or test) and a
//! non-zero exit — never a panic.

mod common;
use common::{TempProject, text};

fn ok_project() -> TempProject {
    let p = TempProject::new("");
    p.write("models/base.sql", "select range as id from range(3)\n");
    p.write("models/child.sql", "select id from {{ ref('base') }}\n");
    p
}

fn assert_clean_failure(out: &std::process::Output) -> String {
    let all = text(out);
    assert!(!out.status.success(), "expected failure:\n{all}");
    assert!(!all.contains("panicked"), "must not panic:\n{all}");
    all
}

#[test]
fn a_sql_error_names_the_file_the_line_and_duckdbs_message() {
    let p = ok_project();
    p.write(
        "models/child.sql",
        "select id,\n  id * 2 as double_id\nfrom {{ ref('base') }}\nwhere no_such_column > 1\n",
    );
    p.write(
        "models/grandchild.sql",
        "select * from {{ ref('child') }}\n",
    );
    let out = p.run(&["run"]);
    let all = assert_clean_failure(&out);
    assert!(all.contains("models/child.sql"), "{all}");
    assert!(all.contains("line 4"), "{all}");
    assert!(all.contains("no_such_column"), "{all}");
    assert!(all.contains("Binder Error"), "{all}");
    // downstream is skipped, upstream still built
    assert!(all.contains("grandchild") && all.contains("SKIP"), "{all}");
    assert!(all.contains("model base"), "{all}");
}

#[test]
fn an_unknown_ref_suggests_the_closest_model() {
    let p = ok_project();
    p.write("models/child.sql", "select id from {{ ref('bsae') }}\n");
    let all = assert_clean_failure(&p.run(&["run"]));
    assert!(all.contains("`child` refers to `bsae`"), "{all}");
    assert!(all.contains("did you mean `base`"), "{all}");
}

#[test]
fn a_cycle_names_every_model_in_it() {
    let p = ok_project();
    p.write("models/base.sql", "select id from {{ ref('child') }}\n");
    let all = assert_clean_failure(&p.run(&["list"]));
    assert!(all.contains("cycle"), "{all}");
    assert!(all.contains("`base`") && all.contains("`child`"), "{all}");
}

#[test]
fn malformed_yaml_names_the_file() {
    let p = ok_project();
    p.write(
        "models/schema.yml",
        "models:\n  - name: base\n    columns: [\n",
    );
    let all = assert_clean_failure(&p.run(&["run"]));
    assert!(all.contains("models/schema.yml"), "{all}");
    assert!(all.contains("not valid YAML"), "{all}");
}

#[test]
fn an_unknown_config_key_warns_but_builds() {
    let p = ok_project();
    p.write(
        "models/child.sql",
        "{{ config(materialised='table') }}\nselect id from {{ ref('base') }}\n",
    );
    let out = p.run(&["run"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("unknown config key `materialised`"), "{all}");
}

#[test]
fn a_template_error_names_the_file_and_line() {
    let p = ok_project();
    p.write("models/child.sql", "select 1 as x\n{% if %}\n");
    let all = assert_clean_failure(&p.run(&["run"]));
    assert!(all.contains("models/child.sql line 2"), "{all}");
}

#[test]
fn a_failing_test_fails_the_run_with_count_and_sample_rows() {
    let p = ok_project();
    p.write(
        "models/dup.sql",
        "select 1 as k union all select 1 union all select 2\n",
    );
    p.write(
        "models/schema.yml",
        "models:\n  - name: dup\n    columns:\n      - name: k\n        tests:\n          - unique\n          - accepted_values:\n              values: [1]\n              config: {severity: warn}\n",
    );
    let summary = p.path().join("summary.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--project"])
        .arg(p.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let all = assert_clean_failure(&out);
    assert!(
        all.contains("unique_dup_k") && all.contains("FAIL 1"),
        "{all}"
    );
    assert!(
        all.contains("accepted_values_dup_k") && all.contains("WARN 1"),
        "{all}"
    );
    let md = std::fs::read_to_string(summary).unwrap();
    assert!(md.contains("❌ failed"), "{md}");
    assert!(md.contains("| `dup` | view |"), "{md}");
    assert!(md.contains("0 passed, 1 warned, 1 failed"), "{md}");
    // the sample of failing rows shows the duplicated value and its count
    assert!(
        md.contains("| unique_field | n_records |") && md.contains("| 1 | 2 |"),
        "{md}"
    );
}

#[test]
fn warnings_alone_pass_and_the_summary_counts_rows() {
    let p = ok_project();
    p.write("models/schema.yml", "models:\n  - name: base\n    config: {materialized: table}\n    columns:\n      - name: id\n        data_tests:\n          - accepted_values:\n              arguments: {values: [0, 1]}\n              config: {severity: warn}\n");
    let out = p.run(&["run"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("WARN 1"), "{all}");
    assert!(
        all.contains("model base") && all.contains(" 3 rows"),
        "{all}"
    );
}

#[test]
fn a_missing_project_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::analytics(&["run"], dir.path());
    let all = assert_clean_failure(&out);
    assert!(all.contains("no dbt_project.yml"), "{all}");
}

#[test]
fn an_unknown_var_is_a_clear_error() {
    let p = ok_project();
    p.write("models/child.sql", "select {{ var('nope') }} as x\n");
    let all = assert_clean_failure(&p.run(&["run"]));
    assert!(
        all.contains("var 'nope'") && all.contains("models/child.sql"),
        "{all}"
    );
}

/// A project whose `ci` target is a DuckDB file, so a test can tell whether
/// any model ran (the file would exist).
fn file_target_project() -> TempProject {
    let p = ok_project();
    p.write(
        "analytics.yml",
        "targets:\n  ci:\n    type: duckdb\n    path: out.duckdb\n",
    );
    p
}

fn assert_nothing_ran(p: &TempProject, all: &str) {
    assert!(
        !p.path().join("out.duckdb").exists(),
        "no model may run before the project is refused:\n{all}"
    );
    assert!(!all.contains("model base"), "{all}");
}

#[test]
fn a_python_model_is_refused_at_load_naming_the_file_and_what_to_do_instead() {
    let p = file_target_project();
    p.write(
        "models/staging/downloader.py",
        "def model(dbt, session):\n    return session.sql('select 1 as id')\n",
    );
    p.write(
        "models/child.sql",
        "select id from {{ ref('base') }} union all select id from {{ ref('downloader') }}\n",
    );
    let all = assert_clean_failure(&p.run(&["run"]));
    for needle in [
        "models/staging/downloader.py",
        "Python models do not run here",
        "`sources:` in analytics.yml",
        "SQL models",
    ] {
        assert!(all.contains(needle), "should say {needle:?}:\n{all}");
    }
    // Not the old, misleading message about the missing model.
    assert!(!all.contains("which is not a model"), "{all}");
    assert_nothing_ran(&p, &all);
}

#[test]
fn snapshots_and_packages_are_refused_and_doctor_lists_every_unsupported_feature() {
    let p = file_target_project();
    p.write(
        "snapshots/orders_snapshot.sql",
        "{% snapshot orders_snapshot %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('base') }}\n{% endsnapshot %}\n",
    );
    p.write(
        "packages.yml",
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
    );
    p.write(
        "models/legacy/loader.py",
        "def model(dbt, session):\n    pass\n",
    );
    p.write(
        "models/extras.yml",
        "version: 2\nexposures:\n  - name: board\n    type: dashboard\n    owner: {name: me}\nsemantic_models:\n  - name: sm\n    model: ref('base')\nunit_tests:\n  - name: ut\n    model: child\n    given: []\n    expect: {rows: []}\n",
    );
    let all = assert_clean_failure(&p.run(&["run"]));
    for needle in [
        "snapshots/orders_snapshot.sql",
        "incremental",
        "packages.yml",
        "dbt-labs/dbt_utils",
        "macros/",
        "models/legacy/loader.py",
    ] {
        assert!(all.contains(needle), "run should say {needle:?}:\n{all}");
    }
    assert_nothing_ran(&p, &all);

    // The doctor names them all at once, the harmless ones marked as ignored.
    let out = p.run(&["doctor", "--offline"]);
    let doctor = text(&out);
    assert!(!out.status.success(), "{doctor}");
    for needle in [
        "snapshots/orders_snapshot.sql",
        "packages.yml",
        "models/legacy/loader.py",
        "(ignored) models/extras.yml: exposures",
        "(ignored) models/extras.yml: semantic models",
        "(ignored) models/extras.yml: unit tests",
    ] {
        assert!(
            doctor.contains(needle),
            "doctor should list {needle:?}:\n{doctor}"
        );
    }
}

#[test]
fn exposures_and_unit_tests_only_warn_and_the_run_builds() {
    let p = file_target_project();
    p.write(
        "models/extras.yml",
        "version: 2\nexposures:\n  - name: board\n    type: dashboard\n    owner: {name: me}\nunit_tests:\n  - name: ut\n    model: child\n    given: []\n    expect: {rows: []}\n",
    );
    let out = p.run(&["run"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("models/extras.yml: exposures"), "{all}");
    assert!(all.contains("models/extras.yml: unit tests"), "{all}");
    assert!(p.path().join("out.duckdb").exists(), "{all}");
}
