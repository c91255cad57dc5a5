//! The example project on AEMO's real formats, not the generator's: real
//! registration rows (as the xlsx workbook AEMO publishes, read as text),
//! real unit coordinates, real SCADA values (negative output at a bagasse
//! unit and a solar farm, a unit the list does not know), and daily reports
//! of two MMS table versions with different column lists. `ci` builds it in
//! a DuckDB file, and the models' results are checked against values worked
//! out by hand from the fixtures (tests/fixtures/real_formats/README.md).

mod common;
use common::{int, repo_root, text};
use std::io::Write;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "target" || name == "sample" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The registration rows written as AEMO's workbook: sheet `PU and
/// Scheduled Loads`, header on the first row, numbers as numbers, `-` and
/// text as text.
/// (The header row is edited by `edit` first.)
fn registration_workbook_with(path: &Path, edit: impl Fn(&mut Vec<String>)) {
    let rows = std::fs::read_to_string(
        repo_root().join("tests/fixtures/real_formats/registration_rows.csv"),
    )
    .unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut lines: Vec<Vec<String>> = Vec::new();
    let header: Vec<String> = rows
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    // Quoted fields ("1-4, 5-9") need a CSV reader: DuckDB reads the file as text.
    let mut stmt = conn
        .prepare(&format!(
            "SELECT * FROM read_csv('{}', all_varchar = true, header = true)",
            repo_root()
                .join("tests/fixtures/real_formats/registration_rows.csv")
                .display()
        ))
        .unwrap();
    let n = header.len();
    let mut result = stmt.query([]).unwrap();
    while let Some(row) = result.next().unwrap() {
        lines.push(
            (0..n)
                .map(|i| row.get::<_, Option<String>>(i).unwrap().unwrap_or_default())
                .collect(),
        );
    }
    // The real list's duplicate-DUID quirk, added by hand: BARCSF1 again
    // under another participant, smaller.
    let mut dup = lines.iter().find(|l| l[12] == "BARCSF1").unwrap().clone();
    dup[0] = "Diamond Energy Trading Pty Ltd".into();
    dup[13] = "10".into();
    lines.push(dup);

    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut header = header;
    edit(&mut header);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("PU and Scheduled Loads").unwrap();
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, h).unwrap();
    }
    for (r, line) in lines.iter().enumerate() {
        for (c, v) in line.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            if v.is_empty() {
                continue;
            }
            match v.parse::<f64>() {
                Ok(x) if (13..=19).contains(&c) => {
                    sheet.write_number(r, c, x).unwrap();
                }
                _ => {
                    sheet.write_string(r, c, v).unwrap();
                }
            }
        }
    }
    book.save(path).unwrap();
}

/// An AEMO MMS file: header comment, tables (each an `I` line and its `D`
/// lines), the end-of-report trailer; CRLF line ends.
/// One MMS table: report, sub-table, version, columns, rows.
type Table<'a> = (&'a str, &'a str, u32, &'a [&'a str], Vec<Vec<String>>);

fn mms(report: &str, tables: &[Table]) -> String {
    let mut out = format!(
        "C,NEMP.WORLD,{report},AEMO,PUBLIC,2026/08/30,04:05:02,0000000530000000,{report},0000000530000000\r\n"
    );
    let mut lines = 1;
    for (table, sub, version, columns, rows) in tables {
        out.push_str(&format!(
            "I,{table},{sub},{version},{}\r\n",
            columns.join(",")
        ));
        for row in rows {
            out.push_str(&format!("D,{table},{sub},{version},{}\r\n", row.join(",")));
        }
        lines += 1 + rows.len();
    }
    out.push_str(&format!("C,\"END OF REPORT\",{}\r\n", lines + 1));
    out
}

fn zip_file(path: &Path, member: &str, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(body.as_bytes()).unwrap();
    zip.finish().unwrap();
}

fn row(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// DUNIT v2 (fewer columns) on 2026-08-28, v3 (more, another order) on
/// 2026-08-29; DREGION likewise.
fn daily_reports(dir: &Path) {
    let v2_unit = [
        "SETTLEMENTDATE",
        "RUNNO",
        "DUID",
        "INTERVENTION",
        "DISPATCHMODE",
        "INITIALMW",
        "TOTALCLEARED",
        "AVAILABILITY",
    ];
    let v3_unit = [
        "SETTLEMENTDATE",
        "RUNNO",
        "DUID",
        "INTERVENTION",
        "DISPATCHMODE",
        "AGCSTATUS",
        "INITIALMW",
        "TOTALCLEARED",
        "RAMPDOWNRATE",
        "RAMPUPRATE",
        "AVAILABILITY",
        "SEMIDISPATCHCAP",
        "UIGF",
        "INITIAL_ENERGY_STORAGE",
        "ENERGY_STORAGE",
        "LASTCHANGED",
    ];
    let v2_region = [
        "SETTLEMENTDATE",
        "RUNNO",
        "REGIONID",
        "INTERVENTION",
        "RRP",
        "TOTALDEMAND",
    ];
    let v3_region = [
        "SETTLEMENTDATE",
        "RUNNO",
        "REGIONID",
        "INTERVENTION",
        "RRP",
        "EEP",
        "ROP",
        "APCFLAG",
        "TOTALDEMAND",
        "LASTCHANGED",
    ];
    let regions = ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"];
    let at = "\"2026/08/28 12:00:00\"";
    let v2 = mms(
        "DAILY",
        &[
            (
                "DUNIT",
                "",
                2,
                &v2_unit,
                vec![
                    row(&[at, "1", "BW01", "0", "0", "612.5", "610", "660"]),
                    // An intervention re-run of the same interval: not kept.
                    row(&[at, "1", "BW01", "1", "0", "999", "999", "660"]),
                    row(&[at, "1", "BWTR1", "0", "0", "21.25", "21", "38"]),
                ],
            ),
            (
                "DREGION",
                "",
                2,
                &v2_region,
                regions
                    .iter()
                    .map(|r| row(&[at, "1", r, "0", "88.5", "7000"]))
                    .collect(),
            ),
        ],
    );
    zip_file(
        &dir.join("PUBLIC_DAILY_202608280000_20260829040503.zip"),
        "PUBLIC_DAILY_202608280000_20260829040503.CSV",
        &v2,
    );
    let at = "\"2026/08/29 10:00:00\"";
    let lc = "\"2026/08/29 09:55:04\"";
    let v3 = mms(
        "DAILY",
        &[
            (
                "DUNIT",
                "",
                3,
                &v3_unit,
                vec![
                    row(&[
                        at, "1", "BW01", "0", "0", "1", "640.25", "640", "3", "3", "660", "0", "",
                        "", "", lc,
                    ]),
                    row(&[
                        at, "1", "DALNTH1", "0", "0", "1", "-20", "-20", "1", "1", "30", "0", "",
                        "6.1", "6.0", lc,
                    ]),
                ],
            ),
            (
                "DREGION",
                "",
                3,
                &v3_region,
                regions
                    .iter()
                    .map(|r| row(&[at, "1", r, "0", "101.25", "0", "101.25", "0", "7100", lc]))
                    .collect(),
            ),
        ],
    );
    zip_file(
        &dir.join("PUBLIC_DAILY_202608290000_20260830040502.zip"),
        "PUBLIC_DAILY_202608290000_20260830040502.CSV",
        &v3,
    );
}

/// One 5-minute SCADA file with real captured values, and its prices.
fn intraday(scada: &Path, price: &Path) {
    let at = "\"2026/08/29 14:05:00\"";
    let lc = "\"2026/08/29 14:00:14\"";
    let cols = ["SETTLEMENTDATE", "DUID", "SCADAVALUE", "LASTCHANGED"];
    let rows = [
        ("BARCSF1", "0.10"),
        ("HUGSF1", "-0.10"),
        ("BWTR1", "-12.460880"),
        ("BW01", "655.3"),
        ("DALNTH1", "-25.5"),
    ]
    .iter()
    .map(|(d, v)| row(&[at, d, v, lc]))
    .collect();
    zip_file(
        &scada.join("PUBLIC_DISPATCHSCADA_202608291405_0000000530001405.zip"),
        "PUBLIC_DISPATCHSCADA_202608291405_0000000530001405.CSV",
        &mms(
            "DISPATCHSCADA",
            &[("DISPATCH", "UNIT_SCADA", 1, &cols, rows)],
        ),
    );
    let cols = [
        "SETTLEMENTDATE",
        "RUNNO",
        "REGIONID",
        "DISPATCHINTERVAL",
        "INTERVENTION",
        "RRP",
        "EEP",
        "ROP",
        "APCFLAG",
        "MARKETSUSPENDEDFLAG",
        "LASTCHANGED",
    ];
    let rows = ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"]
        .iter()
        .map(|r| {
            row(&[
                at,
                "1",
                r,
                "20260829170",
                "0",
                "-12.5",
                "0",
                "-12.5",
                "0",
                "0",
                lc,
            ])
        })
        .collect();
    zip_file(
        &price.join("PUBLIC_DISPATCHIS_202608291405_0000000530001406.zip"),
        "PUBLIC_DISPATCHIS_202608291405_0000000530001406.CSV",
        &mms("DISPATCHIS", &[("DISPATCH", "PRICE", 5, &cols, rows)]),
    );
}

/// A copy of the example project whose sample is the real-format fixtures:
/// the registration workbook (header edited by `edit`), the coordinates,
/// the daily reports and the intraday files.
fn real_format_project(edit: impl Fn(&mut Vec<String>)) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("nem");
    copy_dir(&repo_root().join("example-project"), &project);
    let sample = project.join("sample");
    registration_workbook_with(
        &sample.join("reference/registration/NEM-Registration-and-Exemption-List_20260801.xls"),
        edit,
    );
    std::fs::copy(
        repo_root().join("tests/fixtures/real_formats/geo_data.csv"),
        sample.join("reference/geo_data.csv"),
    )
    .unwrap();
    daily_reports(&sample.join("daily"));
    intraday(
        &sample.join("intraday_scada"),
        &sample.join("intraday_price"),
    );
    (dir, project)
}

fn one_f64(conn: &duckdb::Connection, sql: &str) -> f64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn one_text(conn: &duckdb::Connection, sql: &str) -> Option<String> {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_example_builds_from_real_formats_with_hand_checked_results() {
    let (_dir, project) = real_format_project(|_| {});

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "ci", "--target", "local", "--project"])
        .arg(&project)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let all = text(&out);
    // Real data passes every test that fails a run; what is odd but real
    // (negative output at a bagasse unit, a unit the list does not know)
    // warns.
    assert!(out.status.success(), "{all}");
    assert!(all.contains("2 warned, 0 failed, 0 errored"), "{all}");
    // BWTR1 at -12.46 MW (solar at -0.10 is within auxiliary load; the
    // battery is charging), and HUGSF1, which the list does not know.
    for warned in [
        "test `warn_negative_output_beyond_auxiliary_load` warned: 1 failing rows",
        "test `relationships_fct_scada_duid__ref_dim_duid` warned: 1 failing rows",
    ] {
        assert!(all.contains(warned), "{warned}: {all}");
    }

    let cfg = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let db = duckdb::Connection::open_with_flags(project.join("target/nem.duckdb"), cfg).unwrap();
    // 15 real rows: the `-` placeholder is not a unit, BARCSF1 is listed
    // twice: 14 units.
    assert_eq!(int(&db, "select count(*) from main.dim_duid"), 14);
    // The duplicate keeps the larger registration.
    assert_eq!(
        one_f64(
            &db,
            "select capacity_mw from main.dim_duid where duid = 'BARCSF1'"
        ),
        20.0
    );
    // Categories from the seed: bagasse is bioenergy, `Battery Storage`
    // (capital S) and `Battery storage` are both batteries, waste coal mine
    // gas is gas, a link with no fuel is Other.
    let fuel = |duid: &str| {
        one_text(
            &db,
            &format!("select fuel from main.dim_duid where duid = '{duid}'"),
        )
        .unwrap()
    };
    assert_eq!(fuel("BWTR1"), "Bioenergy");
    assert_eq!(fuel("TIB1"), "Battery");
    assert_eq!(fuel("DALNTH1"), "Battery");
    assert_eq!(fuel("APPIN"), "Gas");
    assert_eq!(fuel("BW01"), "Coal");
    assert_eq!(fuel("BLNKTAS"), "Other");
    // Text cleaned: a trailing space trimmed, `-` in a numeric column is NULL
    // and does not stop the numbers beside it.
    assert_eq!(
        one_text(
            &db,
            "select station_name from main.dim_duid where duid = 'ALDGASF1'"
        )
        .unwrap(),
        "Aldoga Solar Farm"
    );
    assert_eq!(
        one_f64(
            &db,
            "select max_capacity_mw from main.dim_duid where duid = 'ADPMH1'"
        ),
        1.0
    );
    // Coordinates from aemo_fabric's file; blanks stay NULL; state from the region.
    assert_eq!(
        one_f64(
            &db,
            "select latitude from main.dim_duid where duid = 'BWTR1'"
        ),
        -29.016483
    );
    assert_eq!(
        int(
            &db,
            "select count(*) from main.dim_duid where duid = 'ADPBA1G' and latitude is null"
        ),
        1
    );
    assert_eq!(
        one_text(&db, "select state from main.dim_duid where duid = 'BWTR1'").unwrap(),
        "NSW"
    );

    // Both DUNIT versions reached the fact table, read by column name; the
    // intervention re-run did not.
    assert_eq!(
        one_f64(
            &db,
            "select mw from main.fct_scada where duid = 'BW01' and settlementdate = '2026-08-28 12:00:00'"
        ),
        612.5
    );
    assert_eq!(
        one_f64(
            &db,
            "select mw from main.fct_scada where duid = 'DALNTH1' and settlementdate = '2026-08-29 10:00:00'"
        ),
        -20.0
    );
    // The real SCADA readings, negative ones and the unregistered unit included.
    assert_eq!(
        one_f64(
            &db,
            "select mw from main.fct_scada where duid = 'BWTR1' and settlementdate = '2026-08-29 14:05:00'"
        ),
        -12.46088
    );
    assert_eq!(
        int(
            &db,
            "select count(*) from main.fct_scada where duid = 'HUGSF1'"
        ),
        1
    );
    // 2 readings from the v2 report, 2 from the v3 one, 5 from SCADA.
    assert_eq!(int(&db, "select count(*) from main.fct_scada"), 9);
    // Prices: v2 and v3 regions and the negative intraday price, every region.
    assert_eq!(int(&db, "select count(*) from main.fct_price"), 15);
    assert_eq!(
        one_f64(
            &db,
            "select rrp from main.fct_price where region_id = 'SA1' and settlementdate = '2026-08-29 14:05:00'"
        ),
        -12.5
    );
}

#[test]
fn a_renamed_registration_column_is_an_error_naming_the_column_and_the_file() {
    // AEMO renames a column: `DUID` becomes `Unit ID`.
    let (_dir, project) = real_format_project(|h| {
        for c in h.iter_mut().filter(|c| *c == "DUID") {
            *c = "Unit ID".into();
        }
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "ci", "--project"])
        .arg(&project)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("column `DUID` is in none of this run's files"),
        "names the column: {all}"
    );
    assert!(
        all.contains("NEM-Registration-and-Exemption-List_20260801.xls"),
        "names the file: {all}"
    );
    assert!(!all.contains("panicked"), "{all}");
}
