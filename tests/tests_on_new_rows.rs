//! Data tests of incremental models check what the run wrote
//! (`data_tests::narrow_to_new_rows`), against a real DuckDB file across two
//! runs: a duplicate between an old and a new row still fails `unique`, a
//! new row without parent fails `relationships`, a rebuilt parent makes
//! `relationships` read the whole model, and rows already stored are not
//! read again by `not_null`.

mod common;
use common::{TempProject, text};

/// The terminal line of test `name` (`test  <name>  <secs>s  <status>…`).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with("test ") && l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for test {name}:\n{out}"))
}

fn project() -> TempProject {
    let p = TempProject::new("vars:\n  batch: 1\n");
    p.write(
        "analytics.yml",
        "targets:\n  dev: {type: duckdb, path: warehouse.duckdb}\ntests: {incremental_scope: new_rows}\n",
    );
    // Batch 2's calendar no longer holds 2024-01-01, which an old fact uses.
    p.write(
        "models/calendar.sql",
        "{{ config(materialized='table') }}\n\
         select cast(d as date) as d from (values {% if var('batch') == 1 %}('2024-01-01'), {% endif %}('2024-01-02')) t(d)\n",
    );
    // Built incrementally with nothing new in batch 2: a parent that did not change.
    p.write(
        "models/units.sql",
        "{{ config(materialized='incremental') }}\n\
         select 'u1' as unit {% if is_incremental() %}where false{% endif %}\n",
    );
    p.write(
        "models/facts.sql",
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}\n\
         select * from (values\n\
         {% if var('batch') == 1 %}(1, 'a', date '2024-01-01', 'u1'), (2, 'b', date '2024-01-02', 'u1')\n\
         {% else %}(3, 'a', date '2024-01-02', 'u9'){% endif %}\n\
         ) t(id, code, d, unit)\n\
         -- depends_on: {{ ref('calendar') }} {{ ref('units') }}\n",
    );
    p.write(
        "models/schema.yml",
        r#"models:
  - name: facts
    columns:
      - name: code
        data_tests: [not_null, unique]
      - name: d
        data_tests:
          - relationships: { to: ref('calendar'), field: d }
      - name: unit
        data_tests:
          - relationships: { to: ref('units'), field: unit }
"#,
    );
    p
}

#[test]
fn tests_of_an_incremental_model_check_the_new_rows_and_what_they_can_break() {
    let p = project();
    let first = p.run(&["run", "--target", "dev"]);
    let all = text(&first);
    assert!(first.status.success(), "{all}");
    // A first build is tested whole (nothing narrowed).
    assert!(!all.contains(" checks the "), "{all}");

    // An old row that breaks not_null, written behind the model's back: the
    // second run's not_null reads only its own rows, so it does not see it.
    {
        let db = duckdb::Connection::open(p.path().join("warehouse.duckdb")).unwrap();
        db.execute_batch("insert into main.facts values (99, null, date '2024-01-02', 'u1')")
            .unwrap();
    }

    let second = p.run(&["run", "--target", "dev", "--vars", "{batch: 2}"]);
    let all = text(&second);
    assert!(!second.status.success(), "{all}");
    assert!(
        all.contains("test `unique_facts_code` checks the stored rows sharing a value with the 1 rows this run wrote"),
        "{all}"
    );
    // The new row's code 'a' duplicates an old row's: dbt's count (1 value).
    let unique = line(&all, "unique_facts_code");
    assert!(unique.contains("FAIL 1"), "{unique}");
    // The new row's unit has no parent; the parent did not change, so only
    // the new rows are read.
    assert!(
        all.contains(
            "test `relationships_facts_unit__ref_units` checks the 1 rows this run wrote (parent not rebuilt)"
        ),
        "{all}"
    );
    let unit = line(&all, "relationships_facts_unit__ref_units");
    assert!(unit.contains("FAIL 1"), "{unit}");
    // The calendar was rebuilt without an old row's date: the whole model is
    // read, as dbt reads it, and the old row fails.
    let day = line(&all, "relationships_facts_d__ref_calendar");
    assert!(day.contains("FAIL 1"), "{day}");
    // not_null read the new row only (the old null row is not read again).
    assert!(
        all.contains("test `not_null_facts_code` checks the 1 rows this run wrote"),
        "{all}"
    );
    let not_null = line(&all, "not_null_facts_code");
    assert!(not_null.contains("PASS"), "{not_null}");
    // Nothing kept for the tests outlives the run.
    let db = p.db("warehouse.duckdb");
    let kept: i64 = db
        .query_row(
            "select count(*) from duckdb_tables() where table_name like '%__dbt_new_rows'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 0);
}

/// A project whose fact table is appended to (no unique key, so a reading
/// can be stored twice), tested by the example project's own uniqueness test
/// and two singular tests written with `new_rows()`; `scope` is analytics.yml's
/// `tests:` line (empty: dbt's default).
fn singular_project(scope: &str) -> TempProject {
    let p = TempProject::new("vars:\n  batch: 1\n");
    p.write(
        "analytics.yml",
        &format!("targets:\n  dev: {{type: duckdb, path: warehouse.duckdb}}\n{scope}"),
    );
    p.write(
        "models/fct_scada.sql",
        "{{ config(materialized='incremental') }}\n\
         select settlementdate, cast(settlementdate as date) as date, duid, mw, source_file\n\
         from (values\n\
         {% if var('batch') == 1 %}\
         (timestamp '2023-12-31 23:55', 'U1', 0.5, 'a'), \
         (timestamp '2024-01-01 00:05', 'U1', 1.0, 'a'), (timestamp '2024-01-01 00:10', 'U1', 2.0, 'a')\n\
         {% else %}\
         (timestamp '2024-01-01 00:10', 'U1', 3.0, 'b'), (timestamp '2024-01-01 00:15', 'U1', 4.0, 'b')\n\
         {% endif %}\
         ) t(settlementdate, duid, mw, source_file)\n",
    );
    // The example project's test, as it is in example-project/tests.
    p.write(
        "tests/assert_fct_scada_one_row_per_unit_interval.sql",
        include_str!("../example-project/tests/assert_fct_scada_one_row_per_unit_interval.sql"),
    );
    p.write(
        "tests/assert_mw_not_null.sql",
        "select * from {{ new_rows('fct_scada') }} where mw is null\n",
    );
    p
}

#[test]
fn singular_tests_read_the_new_rows_through_new_rows_and_an_old_new_duplicate_still_fails() {
    let p = singular_project("tests: {incremental_scope: new_rows}\n");
    let first = p.run(&["run", "--target", "dev"]);
    let all = text(&first);
    assert!(first.status.success(), "{all}");
    {
        let db = duckdb::Connection::open(p.path().join("warehouse.duckdb")).unwrap();
        // Written behind the model's back: a null reading and a duplicate,
        // both of a market date batch 2 does not write.
        db.execute_batch(
            "insert into main.fct_scada values (timestamp '2023-12-31 23:50', date '2023-12-31', 'U1', null, 'x'), \
             (timestamp '2023-12-31 23:55', date '2023-12-31', 'U1', 1.0, 'x')",
        )
        .unwrap();
    }
    let second = p.run(&["run", "--target", "dev", "--vars", "{batch: 2}"]);
    let all = text(&second);
    assert!(!second.status.success(), "{all}");
    // Batch 2's 00:10 reading duplicates the stored one: found, and only that
    // key (the stored 23:55 duplicate is on a date it did not write).
    let unique = line(&all, "assert_fct_scada_one_row_per_unit_interval");
    assert!(unique.contains("FAIL 1"), "{unique}");
    // The old null reading is not read again.
    let not_null = line(&all, "assert_mw_not_null");
    assert!(not_null.contains("PASS"), "{not_null}");
}

#[test]
fn without_the_new_rows_scope_new_rows_is_the_whole_model_as_ref() {
    let p = singular_project("");
    let first = p.run(&["run", "--target", "dev"]);
    assert!(first.status.success(), "{}", text(&first));
    {
        let db = duckdb::Connection::open(p.path().join("warehouse.duckdb")).unwrap();
        db.execute_batch(
            "insert into main.fct_scada values (timestamp '2023-12-31 23:50', date '2023-12-31', 'U1', null, 'x'), \
             (timestamp '2023-12-31 23:55', date '2023-12-31', 'U1', 1.0, 'x')",
        )
        .unwrap();
    }
    let second = p.run(&["run", "--target", "dev", "--vars", "{batch: 2}"]);
    let all = text(&second);
    assert!(!second.status.success(), "{all}");
    // dbt's reading: both duplicated keys (23:55 and 00:10), the null row.
    let unique = line(&all, "assert_fct_scada_one_row_per_unit_interval");
    assert!(unique.contains("FAIL 2"), "{unique}");
    let not_null = line(&all, "assert_mw_not_null");
    assert!(not_null.contains("FAIL 1"), "{not_null}");
}

#[test]
fn a_model_cannot_read_new_rows() {
    let p = singular_project("tests: {incremental_scope: new_rows}\n");
    p.write(
        "models/downstream.sql",
        "select * from {{ new_rows('fct_scada') }}\n",
    );
    let out = p.run(&["run", "--target", "dev"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("new_rows('fct_scada') is for tests"), "{all}");
}

/// Runs the binary on `project` against SeaweedFS (the target `wh`).
fn run_on_warehouse(
    project: &std::path::Path,
    sw: &common::seaweedfs::SeaweedFs,
    batch: u32,
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--target", "wh", "--vars"])
        .arg(format!("{{batch: {batch}}}"))
        .arg("--project")
        .arg(project)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("ICEBERG_REST_ENDPOINT", &sw.catalog)
        .env("ICEBERG_WAREHOUSE", "s3://warehouse")
        .env("ICEBERG_CREDENTIAL", "admin:secretkey")
        .env("AWS_ENDPOINT_URL_S3", &sw.s3)
        .env("AWS_ACCESS_KEY_ID", "admin")
        .env("AWS_SECRET_ACCESS_KEY", "secretkey")
        .output()
        .unwrap()
}

/// `stored_on_new_dates('m', 'date')` on the Iceberg warehouse: the test
/// reads `m` from local copies of only the data files whose `date` bounds
/// hold the dates this run wrote (one append = one data file here), finds a
/// new reading duplicating a stored one through them, and does not see a
/// duplicate on a date the run did not write.
#[test]
fn a_test_reads_the_stored_files_of_the_dates_the_run_wrote_on_iceberg() {
    let sw = common::seaweedfs::SeaweedFs::start();
    let p = TempProject::new("vars:\n  batch: 1\n");
    p.write(
        "analytics.yml",
        "targets:\n  wh:\n    type: iceberg\n    uri: ${ICEBERG_REST_ENDPOINT}\n    \
         warehouse: ${ICEBERG_WAREHOUSE}\n    credential: ${ICEBERG_CREDENTIAL}\n    \
         schema: new_dates\n    s3:\n      endpoint: ${AWS_ENDPOINT_URL_S3}\n      \
         region: us-east-1\n      access_key_id: ${AWS_ACCESS_KEY_ID}\n      \
         secret_access_key: ${AWS_SECRET_ACCESS_KEY}\n      path_style: true\n\
         tests: {incremental_scope: new_rows}\n",
    );
    // Appended (no unique key): batch 2 stores a second reading of 01-01 11:00.
    p.write(
        "models/fct_scada.sql",
        "{{ config(materialized='incremental') }}\n\
         select settlementdate, cast(settlementdate as date) as date, duid, mw, source_file\n\
         from (values\n\
         {% if var('batch') == 1 %}\
         (timestamp '2024-01-01 10:00', 'U1', 1.0, 'a'), (timestamp '2024-01-01 11:00', 'U1', 2.0, 'a')\n\
         {% elif var('batch') == 2 %}\
         (timestamp '2024-01-01 11:00', 'U1', 3.0, 'b'), (timestamp '2024-01-02 10:00', 'U1', 4.0, 'b')\n\
         {% else %}\
         (timestamp '2024-01-03 10:00', 'U1', 5.0, 'c')\n\
         {% endif %}\
         ) t(settlementdate, duid, mw, source_file)\n",
    );
    p.write(
        "tests/assert_fct_scada_one_row_per_unit_interval.sql",
        include_str!("../example-project/tests/assert_fct_scada_one_row_per_unit_interval.sql"),
    );
    let first = run_on_warehouse(p.path(), &sw, 1);
    let all = text(&first);
    assert!(first.status.success(), "{all}");

    // Batch 2 writes 01-01 and 01-02: the files of batch 1 (01-01) and its
    // own; the duplicate of 01-01 11:00 is found.
    let second = run_on_warehouse(p.path(), &sw, 2);
    let all = text(&second);
    assert!(!second.status.success(), "{all}");
    let unique = line(&all, "assert_fct_scada_one_row_per_unit_interval");
    assert!(unique.contains("FAIL 1"), "{unique}");
    assert!(
        all.contains(
            "new_dates.fct_scada: read by DuckDB's Parquet reader from 2 data files copied locally"
        ) && all.contains("those whose `date` bounds overlap the dates read"),
        "{all}"
    );

    // Batch 3 writes 01-03 only: its own file of the three is read, and the
    // stored duplicate of 01-01 is not (a date this run did not write).
    let third = run_on_warehouse(p.path(), &sw, 3);
    let all = text(&third);
    assert!(third.status.success(), "{all}");
    let unique = line(&all, "assert_fct_scada_one_row_per_unit_interval");
    assert!(unique.contains("PASS"), "{unique}");
    assert!(
        all.contains(
            "new_dates.fct_scada: read by DuckDB's Parquet reader from 1 data files copied locally"
        ),
        "{all}"
    );
}
