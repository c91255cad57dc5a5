//! Each materialization against a real DuckDB file, across two runs, so the
//! incremental paths (append, delete+insert, merge, on_schema_change) run.

mod common;
use common::{TempProject, int, text};

const TARGET: &str = "targets:\n  dev: {type: duckdb, path: warehouse.duckdb}\n";

fn project() -> TempProject {
    let p = TempProject::new("vars:\n  batch: 1\n");
    p.write("analytics.yml", TARGET);
    // batch 1: ids 1..10; batch 2: ids 6..15 (6..10 restated with new values)
    p.write(
        "models/src.sql",
        "{{ config(materialized='table') }}\n\
         select i as id, i * {{ var('batch') }} as v, {{ var('batch') }} as batch\n\
         from range({{ (var('batch') - 1) * 5 + 1 }}, {{ (var('batch') - 1) * 5 + 11 }}) t(i)\n",
    );
    p.write(
        "models/appended.sql",
        "{{ config(materialized='incremental') }}\nselect * from {{ ref('src') }}\n",
    );
    p.write(
        "models/replaced.sql",
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['id']) }}\n\
         select * from {{ ref('src') }}\n\
         {% if is_incremental() %}where id > (select min(id) from {{ this }}){% endif %}\n",
    );
    p.write(
        "models/merged.sql",
        "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id') }}\n\
         select * from {{ ref('src') }}\n",
    );
    p.write(
        "models/as_view.sql",
        "select count(*) as n from {{ ref('merged') }}\n",
    );
    p
}

#[test]
fn incremental_strategies_apply_new_rows_like_dbt() {
    let p = project();
    let out = p.run(&["run", "--target", "dev"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.run(&["run", "--target", "dev", "--vars", "{batch: 2}"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = p.db("warehouse.duckdb");
    // append keeps both batches: 10 + 10
    assert_eq!(int(&db, "select count(*) from main.appended"), 20);
    // delete+insert: ids 1..15 once each, 6..15 from batch 2 (id 1 kept by the filter)
    assert_eq!(int(&db, "select count(*) from main.replaced"), 15);
    assert_eq!(int(&db, "select count(distinct id) from main.replaced"), 15);
    assert_eq!(
        int(&db, "select count(*) from main.replaced where batch = 2"),
        10
    );
    // merge: 15 keys, restated ones updated
    assert_eq!(int(&db, "select count(*) from main.merged"), 15);
    assert_eq!(int(&db, "select v from main.merged where id = 7"), 14);
    assert_eq!(int(&db, "select n from main.as_view"), 15);
    let kind: String = db
        .query_row(
            "select table_type from information_schema.tables where table_name = 'as_view'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "VIEW");
    // no staging tables left behind
    assert_eq!(
        int(
            &db,
            "select count(*) from information_schema.tables where table_name like '%dbt_tmp%'"
        ),
        0
    );
}

#[test]
fn full_refresh_rebuilds_incremental_models() {
    let p = project();
    assert!(p.run(&["run", "--target", "dev"]).status.success());
    assert!(p.run(&["run", "--target", "dev"]).status.success());
    {
        let db = p.db("warehouse.duckdb");
        assert_eq!(int(&db, "select count(*) from main.appended"), 20);
    }
    let out = p.run(&["run", "--target", "dev", "--full-refresh"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = p.db("warehouse.duckdb");
    assert_eq!(int(&db, "select count(*) from main.appended"), 10);
}

#[test]
fn on_schema_change_adds_fails_or_ignores_new_columns() {
    let p = TempProject::new("vars:\n  extra: false\n");
    p.write("analytics.yml", TARGET);
    for (name, mode) in [
        ("added", "append_new_columns"),
        ("ignored", "ignore"),
        ("strict", "fail"),
    ] {
        p.write(
            &format!("models/{name}.sql"),
            &format!(
                "{{{{ config(materialized='incremental', on_schema_change='{mode}') }}}}\n\
                 select 1 as id{{% if var('extra') %}}, 'x' as note{{% endif %}}\n"
            ),
        );
    }
    assert!(p.run(&["run", "--target", "dev"]).status.success());
    let out = p.run(&["run", "--target", "dev", "--vars", "{extra: true}"]);
    assert!(
        !out.status.success(),
        "on_schema_change=fail must fail the run"
    );
    let all = text(&out);
    assert!(all.contains("strict") && all.contains("note"), "{all}");
    let db = p.db("warehouse.duckdb");
    assert_eq!(
        int(&db, "select count(*) from main.added where note = 'x'"),
        1
    );
    assert_eq!(
        int(
            &db,
            "select count(*) from information_schema.columns where table_name = 'ignored'"
        ),
        1
    );
    assert_eq!(int(&db, "select count(*) from main.ignored"), 2);
    assert_eq!(int(&db, "select count(*) from main.strict"), 1);
}

#[test]
fn a_table_can_become_a_view_and_back() {
    let p = TempProject::new("vars:\n  m: table\n");
    p.write("analytics.yml", TARGET);
    p.write(
        "models/x.sql",
        "{{ config(materialized=var('m')) }}\nselect 42 as answer\n",
    );
    for (m, kind) in [
        ("table", "BASE TABLE"),
        ("view", "VIEW"),
        ("table", "BASE TABLE"),
    ] {
        let out = p.run(&["run", "--target", "dev", "--vars", &format!("{{m: {m}}}")]);
        assert!(out.status.success(), "{m}: {}", text(&out));
        let db = p.db("warehouse.duckdb");
        let found: Vec<String> = db
            .prepare(
                "select table_type from information_schema.tables \
                 where table_schema = 'main' and table_name = 'x'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(found, vec![kind.to_string()], "after the {m} run");
        assert_eq!(int(&db, "select answer from main.x"), 42);
    }
}

#[test]
fn target_settings_are_applied_to_the_session() {
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        "targets:\n  dev:\n    type: duckdb\n    path: warehouse.duckdb\n    settings: {memory_limit: 300MB, preserve_insertion_order: false}\n",
    );
    p.write(
        "models/s.sql",
        "{{ config(materialized='table') }}\nselect current_setting('memory_limit') as m, current_setting('preserve_insertion_order') as p\n",
    );
    let out = p.run(&["run", "--target", "dev"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = p.db("warehouse.duckdb");
    let (m, keep): (String, bool) = db
        .query_row("select m, p from main.s", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(m.starts_with("286.1"), "300MB shows as 286.1 MiB: {m}");
    assert!(!keep);
}
