//! `ci` mode on the example project (the NEM port), checked against an
//! independent reading of the sample zips.

mod common;
use common::nem::copy_dir;
use common::{int, repo_root, text};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Copies the example project (without build output) into a temp dir.
fn copy_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("example-project"), dir.path());
    dir
}

/// (interval, key) pairs of one MMS table in every zip of a sample folder,
/// read with the zip crate and plain string splitting — not our ingest code.
fn mms_keys(
    folder: &Path,
    table: (&str, &str),
    key_field: &str,
    only_intervention_0: bool,
) -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("zip") {
            continue;
        }
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut text = String::new();
        archive
            .by_index(0)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let mut header: Vec<String> = Vec::new();
        for line in BufReader::new(text.as_bytes()).lines() {
            let line = line.unwrap();
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() < 4 || fields[1] != table.0 || fields[2] != table.1 {
                continue;
            }
            match fields[0] {
                "I" => header = fields[4..].iter().map(|s| s.to_string()).collect(),
                "D" => {
                    let col =
                        |name: &str| fields[4 + header.iter().position(|h| h == name).unwrap()];
                    if only_intervention_0
                        && header.iter().any(|h| h == "INTERVENTION")
                        && col("INTERVENTION") != "0"
                    {
                        continue;
                    }
                    keys.insert((
                        col("SETTLEMENTDATE").trim_matches('"').to_string(),
                        col(key_field).to_string(),
                    ));
                }
                _ => {}
            }
        }
    }
    keys
}

#[test]
fn ci_mode_builds_every_model_and_passes_every_test_with_real_row_counts() {
    let project = copy_example();
    let summary = project.path().join("summary.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "ci", "--target", "local", "--project"])
        .arg(project.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        !all.contains("ERROR") && !all.contains("FAIL") && !all.contains("SKIP"),
        "{all}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("✅ passed"), "{md}");
    assert!(md.contains("0 failed, 0 errored, 0 skipped"), "{md}");

    let sample = project.path().join("sample");
    let daily_units = mms_keys(&sample.join("daily"), ("DUNIT", ""), "DUID", true);
    let scada_units = mms_keys(
        &sample.join("intraday_scada"),
        ("DISPATCH", "UNIT_SCADA"),
        "DUID",
        false,
    );
    let daily_prices = mms_keys(&sample.join("daily"), ("DREGION", ""), "REGIONID", true);
    let intraday_prices = mms_keys(
        &sample.join("intraday_price"),
        ("DISPATCH", "PRICE"),
        "REGIONID",
        true,
    );
    assert!(
        daily_units.len() > 10_000,
        "the sample should hold two days of units"
    );

    let db = common::TempProject { dir: project }.db("target/nem.duckdb");
    // every (interval, unit) reading once: daily reports plus intraday after them
    let expected_scada = daily_units.union(&scada_units).count() as i64;
    assert_eq!(
        int(&db, "select count(*) from main.fct_scada"),
        expected_scada
    );
    let expected_price = daily_prices.union(&intraday_prices).count() as i64;
    assert_eq!(
        int(&db, "select count(*) from main.fct_price"),
        expected_price
    );
    assert!(
        md.contains(&format!("| `fct_scada` | incremental | {expected_scada} |")),
        "{md}"
    );
    // the file log holds every file taken, once
    assert_eq!(
        int(&db, "select count(*) from _analytics.file_log"),
        2 + 12 + 12 + 2
    );
    assert_eq!(
        int(
            &db,
            "select count(distinct sha256) from _analytics.file_log"
        ),
        28
    );
    // every fact row names a file in the log
    assert_eq!(
        int(
            &db,
            "select count(*) from main.fct_scada where source_file not in (select file_name from _analytics.file_log)"
        ),
        0
    );
}

#[test]
fn list_and_compile_show_the_dag_and_rendered_sql() {
    let project = copy_example();
    let out = common::analytics(&["list"], project.path());
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    let pos = |name: &str| {
        listing
            .find(&format!("model {name} "))
            .unwrap_or_else(|| panic!("{name} missing:\n{listing}"))
    };
    assert!(pos("stg_daily_unit") < pos("fct_scada"), "{listing}");
    assert!(pos("dim_duid") < pos("fct_scada"), "{listing}");
    let out = common::analytics(&["compile", "--select", "stg_daily_unit"], project.path());
    let sql = text(&out);
    assert!(out.status.success(), "{sql}");
    assert!(
        sql.contains("NULL::TIMESTAMP AS \"SETTLEMENTDATE\""),
        "compile without ingest renders the empty relation:\n{sql}"
    );
    assert!(
        !sql.contains("fct_scada"),
        "--select limits the output:\n{sql}"
    );
}

/// The example's `memory` target (the one ci mode uses) carries its memory
/// budget into DuckDB, and a project without one gets DuckDB's default.
#[test]
fn the_example_memory_target_budgets_duckdb_memory() {
    let limit_of = |project: &Path| {
        let project = analytics::project::Project::load(project).unwrap();
        let target = project
            .settings
            .target("memory", &analytics::Env::process())
            .unwrap();
        let engine = analytics::engine::Engine::open(&project.root, &target).unwrap();
        let rows = engine
            .query_rows("SELECT current_setting('memory_limit')", None)
            .unwrap();
        rows.rows[0][0].to_string()
    };
    let example = limit_of(&repo_root().join("example-project"));
    // DuckDB reports 200 MB as "190.7 MiB".
    assert!(example.contains("190.7 MiB"), "{example}");
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(
        plain.path().join("dbt_project.yml"),
        "name: plain\nversion: '1.0.0'\nconfig-version: 2\n",
    )
    .unwrap();
    let default = limit_of(plain.path());
    assert!(!default.contains("190.7 MiB"), "{default}");
}
