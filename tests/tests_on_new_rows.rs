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
