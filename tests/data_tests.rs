//! Column tests of one relation are counted in one scan, and the outcomes are
//! exactly those of running each test alone (dbt's queries): counts of failing
//! rows, statuses, and which test cannot run.

mod common;
use common::{TempProject, text};

/// The terminal line of test `name` (`test  <name>  <secs>s  <status>…`).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for test {name}:\n{out}"))
}

/// The status part of a test's line: after the duration, without the scan note.
fn status<'a>(out: &'a str, name: &str) -> &'a str {
    let l = line(out, name);
    let after = l.split("s  ").nth(1).unwrap_or("");
    after.split("  (").next().unwrap_or("").trim()
}

#[test]
fn column_tests_of_a_relation_share_one_scan_and_keep_their_exact_outcomes() {
    let p = TempProject::new("");
    // k: 1 is duplicated and one k is null; v: 'z' is not accepted.
    p.write(
        "models/m.sql",
        "select * from (values (1, 'a', 1), (1, 'b', 2), (2, 'z', 3), (null, null, 4)) as t(k, v, n)\n",
    );
    p.write("models/e.sql", "select range as id from range(3)\n");
    p.write(
        "models/schema.yml",
        r#"models:
  - name: m
    columns:
      - name: k
        data_tests:
          - not_null: { config: { severity: warn } }
          - unique: { config: { severity: warn } }
      - name: v
        data_tests:
          - accepted_values:
              arguments: { values: [a, b] }
              config: { severity: warn }
          - accepted_values:
              arguments: { values: [a, b] }
              config: { where: "k = 1" }
      - name: n
        data_tests: [not_null, unique]
  - name: e
    columns:
      - name: id
        data_tests: [not_null]
      - name: nope
        data_tests: [not_null]
"#,
    );
    let out = p.run(&["run"]);
    let all = text(&out);
    assert!(!all.contains("panicked"), "{all}");

    // Failing tests: dbt's counts (rows for not_null, values for unique and
    // accepted_values), found by running each alone after the shared count.
    assert_eq!(status(&all, "not_null_m_k"), "WARN 1", "{all}");
    assert_eq!(status(&all, "unique_m_k"), "WARN 1", "{all}");
    assert_eq!(status(&all, "accepted_values_m_v"), "WARN 1", "{all}");
    // Passing tests of `m` without `where`: five column tests, one scan.
    for name in ["not_null_m_n", "unique_m_n"] {
        assert_eq!(status(&all, name), "PASS", "{all}");
        assert!(
            line(&all, name).ends_with("(one scan for 5 tests)"),
            "{name} should be counted with m's other column tests:\n{all}"
        );
    }
    // `where` scans a different relation: counted alone, and it passes (k = 1
    // has only accepted values).
    assert_eq!(status(&all, "accepted_values_m_v_2"), "PASS", "{all}");
    assert!(
        !line(&all, "accepted_values_m_v_2").contains("one scan"),
        "{all}"
    );

    // A test that cannot run breaks the shared count of `e`: each test then
    // runs alone, so the error lands on the test naming the missing column.
    assert_eq!(status(&all, "not_null_e_id"), "PASS", "{all}");
    assert_eq!(status(&all, "not_null_e_nope"), "ERROR", "{all}");
    assert!(
        all.contains("test `not_null_e_nope` (models/schema.yml) could not run")
            && all.contains("\"nope\" not found"),
        "{all}"
    );
    assert!(
        !out.status.success(),
        "an errored test fails the run:\n{all}"
    );
}
