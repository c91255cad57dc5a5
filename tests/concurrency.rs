//! Independent models (and the tests of different models) run at once, each
//! on its own DuckDB connection, up to DuckDB's `threads`: the same tables,
//! test results and summary as one at a time, a model never before its
//! parents, and a failing model stops only its dependents.

mod common;
use common::{TempProject, int, text};

/// `par`: DuckDB `threads` 4 x the cores gives four connections on any
/// machine; `seq`: `threads: 1`, one.
fn targets() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "targets:\n  par: {{type: duckdb, path: par.duckdb, threads: {}}}\n  seq: {{type: duckdb, path: seq.duckdb, threads: 1}}\n",
        4 * cores
    )
}

/// A query that takes a noticeable moment (a few hundred ms) on DuckDB.
const SLOW: &str = "select count(*) as n, sum(hash(i) % 1000) as h from range(30000000) t(i)";

/// `slow` and `tick` are independent; `joined` needs both, `top` needs
/// `joined` and `other`; `other_view` reads `other`; each has tests.
fn project() -> TempProject {
    let p = TempProject::new("");
    p.write("analytics.yml", &targets());
    // Its post-hook records when it finished building.
    p.write(
        "models/slow.sql",
        &format!(
            "{{{{ config(materialized='table', post_hook=\"create or replace table main.slow_done as select current_timestamp as t\") }}}}\n{SLOW}\n"
        ),
    );
    // current_timestamp is its statement's start.
    p.write(
        "models/tick.sql",
        "{{ config(materialized='table') }}\nselect i as id, current_timestamp as started from range(10) t(i)\n",
    );
    p.write(
        "models/other.sql",
        "{{ config(materialized='table') }}\nselect i as id, i % 3 as grp from range(1000) t(i)\n",
    );
    p.write(
        "models/joined.sql",
        "{{ config(materialized='table') }}\nselect q.id, s.n, s.h from {{ ref('tick') }} q cross join {{ ref('slow') }} s\n",
    );
    p.write(
        "models/top.sql",
        "{{ config(materialized='table') }}\nselect j.id, j.n, o.grp from {{ ref('joined') }} j join {{ ref('other') }} o using (id)\n",
    );
    p.write(
        "models/other_view.sql",
        "select grp, count(*) as k from {{ ref('other') }} group by grp\n",
    );
    p.write(
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: top\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n      - name: grp\n        data_tests:\n          - accepted_values: {values: [0, 1], quote: false}\n  - name: other\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n  - name: other_view\n    columns:\n      - name: grp\n        data_tests: [unique]\n  - name: joined\n    columns:\n      - name: id\n        data_tests:\n          - relationships: {to: ref('top'), field: id}\n",
    );
    p
}

/// The summary lines that do not depend on timing: statuses, rows, failures.
fn summary(out: &std::process::Output) -> Vec<String> {
    let time = regex::Regex::new(r"\d+\.\d+ ?s\b|\d+ ms\b").unwrap();
    text(out)
        .lines()
        .filter(|l| {
            [
                "model `", "test `", "| ", "PASS", "FAIL", "WARN", "ERROR", "SKIP",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(|l| time.replace_all(l, "T").to_string())
        .filter(|l| !l.contains("model `") || l.contains("failed"))
        .collect()
}

/// Every table's rows, in a fixed order.
fn contents(p: &TempProject, db: &str) -> Vec<(String, String)> {
    let conn = p.db(db);
    let mut tables: Vec<String> = conn
        .prepare(
            "select table_name from information_schema.tables \
             where table_schema = 'main' and table_name not in ('slow_done', 'tick') order by 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    tables
        .into_iter()
        .map(|t| {
            let rows: String = conn
                .query_row(
                    &format!(
                        "select string_agg(x::varchar, '|' order by x::varchar) from main.{t} as x"
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            (t, rows)
        })
        .collect()
}

#[test]
fn independent_models_run_at_once_with_the_same_results() {
    let p = project();
    let par = p.run(&["run", "--mode", "ci", "--target", "par"]);
    let seq = p.run(&["run", "--mode", "ci", "--target", "seq"]);
    // The accepted_values test fails (grp 2 exists) on both.
    assert!(!par.status.success(), "{}", text(&par));
    assert!(!seq.status.success(), "{}", text(&seq));
    assert!(text(&par).contains("accepted_values"), "{}", text(&par));
    assert_eq!(
        summary(&par),
        summary(&seq),
        "{}\n---\n{}",
        text(&par),
        text(&seq)
    );
    assert_eq!(contents(&p, "par.duckdb"), contents(&p, "seq.duckdb"));
    let tick_rows = |db: &str| int(&p.db(db), "select count(*) from main.tick");
    assert_eq!(tick_rows("par.duckdb"), 10);
    assert_eq!(tick_rows("seq.duckdb"), 10);
    // With four connections `tick` started before `slow` had finished; one
    // at a time (plan order: other, other_view, slow, tick, ...), after.
    let overlap = |db: &str| {
        int(
            &p.db(db),
            "select ((select min(started) from main.tick) < (select t from main.slow_done))::int",
        ) == 1
    };
    assert!(overlap("par.duckdb"), "{}", text(&par));
    assert!(!overlap("seq.duckdb"), "{}", text(&seq));
}

#[test]
fn a_model_starts_only_after_its_parents() {
    // `joined` reads `slow` (hundreds of ms) and `tick`, and there are free
    // connections while `slow` builds: started early, it would not find
    // `slow` (no such table) and fail.
    let p = project();
    let out = p.run(&["run", "--mode", "ci", "--target", "par"]);
    let log = text(&out);
    assert!(!log.contains("model `joined` failed"), "{log}");
    assert!(!log.contains("model `top` failed"), "{log}");
    let db = p.db("par.duckdb");
    assert_eq!(int(&db, "select count(*) from main.top"), 10);
    assert_eq!(
        int(&db, "select count(distinct n) from main.joined"),
        1,
        "{log}"
    );
    assert_eq!(int(&db, "select min(n) from main.joined"), 30_000_000);
}

#[test]
fn a_failing_model_is_named_and_stops_only_its_dependents() {
    let p = project();
    // `tick` fails; `joined` and `top` (its descendants) are skipped; `slow`,
    // `other` and `other_view` still build.
    p.write(
        "models/tick.sql",
        "{{ config(materialized='table') }}\nselect no_such_column from range(10) t(i)\n",
    );
    let out = p.run(&["run", "--mode", "ci", "--target", "par"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("model `tick` failed"), "{log}");
    assert!(log.contains("no_such_column"), "{log}");
    assert!(log.contains("models/tick.sql"), "{log}");
    for skipped in ["joined", "top"] {
        let line = regex::Regex::new(&format!(r"model {skipped} +table .* SKIP")).unwrap();
        assert!(line.is_match(&log), "{log}");
    }
    for built in ["other", "other_view", "slow"] {
        let line = regex::Regex::new(&format!(r"model {built} +\w+ .* OK")).unwrap();
        assert!(line.is_match(&log), "{log}");
    }
    let db = p.db("par.duckdb");
    let exists = |t: &str| {
        int(
            &db,
            &format!("select count(*) from information_schema.tables where table_name = '{t}'"),
        )
    };
    assert_eq!(exists("tick"), 0);
    assert_eq!(exists("joined"), 0);
    assert_eq!(exists("top"), 0);
    assert_eq!(int(&db, "select n from main.slow"), 30_000_000);
    assert_eq!(int(&db, "select count(*) from main.other"), 1000);
    assert_eq!(int(&db, "select sum(k) from main.other_view"), 1000);
    // The same outcome one at a time.
    let seq = p.run(&["run", "--mode", "ci", "--target", "seq"]);
    assert_eq!(summary(&out), summary(&seq), "{log}\n---\n{}", text(&seq));
}
