//! A `view` over ingested files that a run reads twice (a downstream model,
//! then its tests) has its rows computed once into a table when the database
//! is in memory (`pipeline::views_read_twice`): the same rows and test
//! results, the files parsed once. A file target keeps the view.

mod common;
use common::{TempProject, text};

/// A ci project over generated SCADA samples: `stg` (a view read by `fct`
/// and by its own test), `once` (a view read by one model only, untested).
fn project() -> TempProject {
    let p = TempProject::new("");
    let sample = p.path().join("sample");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_aemo-gen"))
        .args(["--days", "1", "--units", "5", "--intraday-intervals", "4"])
        .arg("--out")
        .arg(&sample)
        .status()
        .unwrap();
    assert!(status.success());
    p.write(
        "analytics.yml",
        "targets:\n  memory: {type: duckdb, path: ':memory:'}\n  local: {type: duckdb, path: wh.duckdb}\n\
         sources:\n  - name: scada\n    kind: listing\n    url: http://127.0.0.1:9/\n\
         \x20   pattern: 'PUBLIC_DISPATCHSCADA_\\d{12}_\\d{16}\\.zip'\n    format: mms\n\
         \x20   tables: [DISPATCH_UNIT_SCADA]\n    sample: sample/intraday_scada\n    limits: {ci: 100}\n",
    );
    let read = "{{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'SETTLEMENTDATE': 'TIMESTAMP', 'DUID': 'VARCHAR', 'SCADAVALUE': 'DOUBLE'}) }}";
    p.write(
        "models/stg.sql",
        &format!(
            "select SETTLEMENTDATE as ts, DUID as duid, SCADAVALUE as mw, source_file from {read}\n"
        ),
    );
    p.write(
        "models/once.sql",
        &format!("select DUID as duid from {read}\n"),
    );
    p.write(
        "models/fct.sql",
        "{{ config(materialized='table') }}\nselect * from {{ ref('stg') }} join (select distinct duid from {{ ref('once') }}) using (duid)\n",
    );
    p.write(
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: stg\n    columns:\n      - name: duid\n        tests: [not_null]\n      - name: source_file\n        tests: [not_null]\n",
    );
    // What each relation is, from inside the run (an in-memory database
    // cannot be looked at afterwards): rows here fail the test.
    p.write(
        "tests/assert_relation_kinds.sql",
        "select table_name, table_type from information_schema.tables\n\
         where (table_name = 'stg' and table_type <> '{{ var(\"stg_kind\") }}')\n\
         \x20  or (table_name = 'once' and table_type <> 'VIEW')\n",
    );
    p.write(
        "tests/assert_fct_rows.sql",
        "select n from (select count(*) as n, count(distinct source_file) as files from {{ ref('fct') }})\n\
         where n <> 20 or files <> 4\n",
    );
    p
}

#[test]
fn a_view_read_twice_in_memory_is_kept_as_rows_with_the_same_results() {
    let p = project();
    let out = p.run(&["run", "--mode", "ci", "--vars", "{stg_kind: BASE TABLE}"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("tests: 4 passed, 0 warned, 0 failed, 0 errored"),
        "{log}"
    );
    // The summary still names the model a view.
    assert!(
        log.lines()
            .any(|l| l.starts_with("model stg ") && l.contains(" view ")),
        "{log}"
    );

    // A file target keeps the view; the same tests pass.
    let out = p.run(&[
        "run",
        "--mode",
        "ci",
        "--target",
        "local",
        "--vars",
        "{stg_kind: VIEW}",
    ]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("tests: 4 passed, 0 warned, 0 failed, 0 errored"),
        "{log}"
    );
}
