//! Checks the `aemo-gen` binary: deterministic bytes, well-formed MMS files, working
//! listings, reference data that matches the dispatch data, and plausible shapes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: usize = 24;
const DAYS: usize = 2;
const INTRADAY: usize = 4;

/// Runs the generator with the test's standard arguments, `units` units and `extra`.
fn generate(out: &Path, units: usize, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_aemo-gen"))
        .arg("--out")
        .arg(out)
        .args(["--start", "2024-01-30"])
        .args(["--days", &DAYS.to_string()])
        .args(["--units", &units.to_string()])
        .args(["--intraday-intervals", &INTRADAY.to_string()])
        .args(extra)
        .status()
        .expect("run aemo-gen");
    assert!(status.success(), "aemo-gen failed: {status}");
}

/// Every file under `root`, by path relative to it, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Zip files of one output folder, sorted by name.
fn zips(dir: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .collect();
    list.sort();
    list
}

/// The single member of a zip: its name and its text.
fn only_member(zip_path: &Path) -> (String, String) {
    let mut archive = zip::ZipArchive::new(fs::File::open(zip_path).unwrap()).unwrap();
    assert_eq!(
        archive.len(),
        1,
        "{} must hold one member",
        zip_path.display()
    );
    let mut member = archive.by_index(0).unwrap();
    let name = member.name().unwrap().to_string();
    let mut text = String::new();
    member.read_to_string(&mut text).unwrap();
    (name, text)
}

/// Splits a CSV line on commas outside double quotes and strips the quotes.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// One parsed MMS table: its column names and data rows as name → value maps.
#[derive(Default)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
}

/// Parses an MMS CSV, checking its framing on the way: a `C` header first, an
/// `END OF REPORT` footer with the right line count last, and every `D` row as wide
/// as the `I` line of its table. Tables are keyed `REPORT` or `REPORT_SUBTABLE`.
fn parse_mms(text: &str, file: &str) -> HashMap<String, Table> {
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("C,NEMP.WORLD,"),
        "{file}: bad header {}",
        lines[0]
    );
    let footer = fields(lines.last().unwrap());
    assert_eq!(footer[0], "C", "{file}: last line must be a C line");
    assert_eq!(footer[1], "END OF REPORT", "{file}");
    assert_eq!(
        footer[2],
        lines.len().to_string(),
        "{file}: footer line count"
    );
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut current: Option<(String, usize)> = None;
    for (n, line) in lines.iter().enumerate() {
        let f = fields(line);
        let key = if f.len() > 2 && f[2].is_empty() {
            f[1].clone()
        } else if f.len() > 2 {
            format!("{}_{}", f[1], f[2])
        } else {
            String::new()
        };
        match f[0].as_str() {
            "C" => assert!(n == 0 || n == lines.len() - 1, "{file}: stray C line {n}"),
            "I" => {
                let table = tables.entry(key.clone()).or_default();
                assert!(table.columns.is_empty(), "{file}: {key} declared twice");
                table.columns = f[4..].to_vec();
                current = Some((key, f.len()));
            }
            "D" => {
                let (cur_key, width) = current.as_ref().expect("D line before any I line");
                assert_eq!(&key, cur_key, "{file}: line {n} belongs to another table");
                assert_eq!(
                    f.len(),
                    *width,
                    "{file}: line {n} has the wrong field count"
                );
                tables.get_mut(&key).unwrap().rows.push(f[4..].to_vec());
            }
            other => panic!("{file}: line {n} has record type {other:?}"),
        }
    }
    tables
}

/// Registration rows: DUID → (region, fuel).
fn registration(root: &Path) -> BTreeMap<String, (String, String)> {
    let text = fs::read_to_string(root.join("reference/duid_registration.csv")).unwrap();
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap());
    assert_eq!(
        header,
        [
            "DUID",
            "Participant",
            "Station Name",
            "Region",
            "Dispatch Type",
            "Fuel Source - Primary",
            "Technology Type",
            "Reg Cap (MW)"
        ]
    );
    lines
        .map(|l| {
            let f = fields(l);
            assert_eq!(f.len(), 8, "registration row {l}");
            let cap: f64 = f[7].parse().unwrap();
            assert!(cap > 0.0, "capacity of {}", f[0]);
            (f[0].clone(), (f[3].clone(), f[5].clone()))
        })
        .collect()
}

#[test]
fn same_arguments_give_identical_bytes_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&a, UNITS, &["--seed", "7"]);
    generate(&b, UNITS, &["--seed", "7"]);
    generate(&c, UNITS, &["--seed", "8"]);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert_eq!(ta.len(), DAYS + 2 * INTRADAY + 3 + 2, "file count");
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(
            bytes == &tb[path],
            "{} differs between identical runs",
            path.display()
        );
    }
    assert_ne!(ta, tc, "a different seed must change the data");
}

#[test]
fn daily_files_are_well_formed_mms() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    generate(root, UNITS, &[]);
    let reg = registration(root);
    let daily = zips(&root.join("daily"));
    assert_eq!(daily.len(), DAYS);
    let name_re = regex::Regex::new(r"^PUBLIC_DAILY_(\d{8})0000_\d{14}\.zip$").unwrap();
    let mut seen_duids = BTreeSet::new();
    for (d, zip_path) in daily.iter().enumerate() {
        let file_name = zip_path.file_name().unwrap().to_str().unwrap();
        let day = &name_re.captures(file_name).expect("daily file name")[1];
        assert_eq!(day, ["20240130", "20240131"][d]);
        let (member, text) = only_member(zip_path);
        assert_eq!(member, file_name.replace(".zip", ".CSV"));
        assert!(text.starts_with("C,NEMP.WORLD,DAILY,AEMO,PUBLIC,"));
        let tables = parse_mms(&text, file_name);
        assert!(tables.len() >= 3, "daily files carry tables to skip too");

        let dunit = &tables["DUNIT"];
        assert!(dunit.columns.len() >= 45, "DUNIT has ~50 columns");
        assert_eq!(
            &dunit.columns[..8],
            [
                "SETTLEMENTDATE",
                "RUNNO",
                "DUID",
                "INTERVENTION",
                "DISPATCHMODE",
                "AGCSTATUS",
                "INITIALMW",
                "TOTALCLEARED"
            ]
        );
        assert!(dunit.columns.iter().any(|c| c == "LASTCHANGED"));
        let dregion = &tables["DREGION"];
        assert!(dregion.columns.len() >= 110, "DREGION has ~120 columns");
        let (sd, duid, int) = (
            dunit.col("SETTLEMENTDATE"),
            dunit.col("DUID"),
            dunit.col("INTERVENTION"),
        );

        // Interventions: the settlement dates with INTERVENTION=1 region rows.
        let (rsd, rint, rid) = (
            dregion.col("SETTLEMENTDATE"),
            dregion.col("INTERVENTION"),
            dregion.col("REGIONID"),
        );
        let interventions: BTreeSet<&str> = dregion
            .rows
            .iter()
            .filter(|r| r[rint] == "1")
            .map(|r| r[rsd].as_str())
            .collect();
        assert!(
            !interventions.is_empty(),
            "some intervals run under intervention"
        );
        assert_eq!(dregion.rows.len(), 5 * (288 + interventions.len()));
        assert_eq!(dunit.rows.len(), UNITS * (288 + interventions.len()));

        // Every (unit, interval) once with INTERVENTION=0, 288 intervals 00:05 .. 00:00.
        let mut physical = BTreeSet::new();
        for r in &dunit.rows {
            assert!(reg.contains_key(&r[duid]), "{} is not registered", r[duid]);
            seen_duids.insert(r[duid].clone());
            if r[int] == "0" {
                assert!(
                    physical.insert((r[sd].clone(), r[duid].clone())),
                    "duplicate row {r:?}"
                );
            } else {
                assert!(
                    interventions.contains(r[sd].as_str()),
                    "stray intervention row"
                );
            }
        }
        assert_eq!(physical.len(), UNITS * 288);
        let times: BTreeSet<&str> = dunit.rows.iter().map(|r| r[sd].as_str()).collect();
        assert_eq!(times.len(), 288);
        let date = format!("{}/{}/{}", &day[..4], &day[4..6], &day[6..]);
        assert_eq!(*times.first().unwrap(), format!("{date} 00:05:00"));
        assert!(times.last().unwrap().ends_with("00:00:00"));
        assert!(
            !times.last().unwrap().starts_with(&date),
            "last interval ends next day"
        );
        let regions: BTreeSet<&str> = dregion.rows.iter().map(|r| r[rid].as_str()).collect();
        assert_eq!(
            regions.into_iter().collect::<Vec<_>>(),
            ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"]
        );
    }
    // WA units are registered but never dispatched.
    let wa: Vec<&String> = reg
        .iter()
        .filter(|(_, (r, _))| r == "WA1")
        .map(|(d, _)| d)
        .collect();
    assert!((2..=3).contains(&wa.len()), "two or three WA units");
    assert!(wa.iter().all(|d| !seen_duids.contains(*d)));
    assert_eq!(seen_duids.len(), UNITS);
    let geo = fs::read_to_string(root.join("reference/duid_geo.csv")).unwrap();
    assert!(geo.starts_with("DUID,State,Latitude,Longitude\n"));
    assert_eq!(
        geo.lines().count(),
        reg.len() + 1,
        "one coordinate row per unit"
    );
}

#[test]
fn shapes_are_plausible() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    generate(root, 60, &[]);
    let reg = registration(root);
    let fuels: BTreeSet<&str> = reg.values().map(|(_, f)| f.as_str()).collect();
    assert_eq!(
        fuels.into_iter().collect::<Vec<_>>(),
        ["Battery", "Coal", "Gas", "Hydro", "Solar", "Wind"]
    );
    let mut solar_night = Vec::new();
    let mut solar_noon = Vec::new();
    let mut negatives = BTreeSet::new();
    let mut battery_charges = false;
    let mut prices = Vec::new();
    for zip_path in zips(&root.join("daily")) {
        let (_, text) = only_member(&zip_path);
        let tables = parse_mms(&text, "daily");
        let dunit = &tables["DUNIT"];
        let (sd, duid, int, mw) = (
            dunit.col("SETTLEMENTDATE"),
            dunit.col("DUID"),
            dunit.col("INTERVENTION"),
            dunit.col("INITIALMW"),
        );
        for r in dunit.rows.iter().filter(|r| r[int] == "0") {
            let value: f64 = r[mw].parse().unwrap();
            let fuel = reg[&r[duid]].1.as_str();
            if value < 0.0 {
                negatives.insert(fuel.to_string());
            }
            if fuel == "Battery" && value < 0.0 && r[sd].ends_with(" 12:30:00") {
                battery_charges = true;
            }
            if fuel == "Solar" && r[sd].ends_with(" 02:00:00") {
                solar_night.push(value);
            }
            if fuel == "Solar" && r[sd].ends_with(" 12:00:00") {
                solar_noon.push(value);
            }
        }
        let dregion = &tables["DREGION"];
        let rrp = dregion.col("RRP");
        prices.extend(dregion.rows.iter().map(|r| r[rrp].parse::<f64>().unwrap()));
    }
    assert!(
        !solar_night.is_empty() && !solar_noon.is_empty(),
        "solar units exist"
    );
    assert!(
        solar_night.iter().all(|&v| v == 0.0),
        "solar at 02:00: {solar_night:?}"
    );
    assert!(
        solar_noon.iter().all(|&v| v > 0.0),
        "solar at 12:00: {solar_noon:?}"
    );
    assert!(
        negatives.iter().all(|f| f == "Battery"),
        "negative output from {negatives:?}"
    );
    assert!(battery_charges, "batteries charge around midday");
    assert!(prices.iter().all(|p| (-1000.0..=15000.0).contains(p)));
    let mean = prices.iter().sum::<f64>() / prices.len() as f64;
    assert!((20.0..300.0).contains(&mean), "mean price {mean}");
}

#[test]
fn intraday_files_follow_the_daily_files_and_listings_link_to_real_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    generate(root, UNITS, &[]);
    // The intraday intervals are the K five-minute intervals after 2024/02/01 00:00.
    let expected: Vec<String> = (1..=INTRADAY)
        .map(|k| format!("2024020100{:02}", k * 5))
        .collect();
    let folders = [
        (
            "intraday_scada",
            "PUBLIC_DISPATCHSCADA_",
            "DISPATCH_UNIT_SCADA",
            UNITS,
            "/Reports/Current/Dispatch_SCADA/",
        ),
        (
            "intraday_price",
            "PUBLIC_DISPATCHIS_",
            "DISPATCH_PRICE",
            5,
            "/Reports/Current/DispatchIS_Reports/",
        ),
    ];
    for (folder, prefix, table, rows, _) in folders {
        let files = zips(&root.join(folder));
        assert_eq!(files.len(), INTRADAY, "{folder}");
        for (k, zip_path) in files.iter().enumerate() {
            let name = zip_path.file_name().unwrap().to_str().unwrap().to_string();
            let re = regex::Regex::new(&format!(r"^{prefix}(\d{{12}})_(\d{{16}})\.zip$")).unwrap();
            let caps = re
                .captures(&name)
                .unwrap_or_else(|| panic!("file name {name}"));
            assert_eq!(&caps[1], expected[k]);
            let (member, text) = only_member(zip_path);
            assert_eq!(member, name.replace(".zip", ".CSV"));
            let tables = parse_mms(&text, &name);
            let t = &tables[table];
            assert_eq!(t.rows.len(), rows, "{name}");
            let sd = t.col("SETTLEMENTDATE");
            let stamp = &caps[1];
            let want = format!(
                "{}/{}/{} {}:{}:00",
                &stamp[..4],
                &stamp[4..6],
                &stamp[6..8],
                &stamp[8..10],
                &stamp[10..]
            );
            assert!(
                t.rows.iter().all(|r| r[sd] == want),
                "{name}: settlement dates"
            );
        }
    }
    let price_tables = parse_mms(
        &only_member(&zips(&root.join("intraday_price"))[0]).1,
        "price",
    );
    assert!(price_tables.len() >= 3, "DISPATCHIS carries tables to skip");
    assert_eq!(
        &price_tables["DISPATCH_PRICE"].columns[..6],
        [
            "SETTLEMENTDATE",
            "RUNNO",
            "REGIONID",
            "DISPATCHINTERVAL",
            "INTERVENTION",
            "RRP"
        ]
    );
    assert_eq!(
        parse_mms(
            &only_member(&zips(&root.join("intraday_scada"))[0]).1,
            "scada"
        )["DISPATCH_UNIT_SCADA"]
            .columns,
        ["SETTLEMENTDATE", "DUID", "SCADAVALUE", "LASTCHANGED"]
    );

    let href = regex::Regex::new(r#"<A HREF="([^"]+)">([^<]+)</A>"#).unwrap();
    for (folder, url_path) in [
        ("daily", "/Reports/Current/Daily_Reports/"),
        ("intraday_scada", folders[0].4),
        ("intraday_price", folders[1].4),
    ] {
        let html = fs::read_to_string(root.join(folder).join("index.html")).unwrap();
        assert!(html.contains(&format!("<title>nemweb.com.au - {url_path}</title>")));
        let links: Vec<(String, String)> = href
            .captures_iter(&html)
            .map(|c| (c[1].to_string(), c[2].to_string()))
            .collect();
        assert_eq!(
            links[0],
            (
                "/Reports/Current/".to_string(),
                "[To Parent Directory]".to_string()
            )
        );
        let files: Vec<String> = zips(&root.join(folder))
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(links.len() - 1, files.len(), "{folder}: one link per file");
        for (target, text) in &links[1..] {
            assert_eq!(target, &format!("{url_path}{text}"));
            assert!(
                root.join(folder).join(text).is_file(),
                "{folder}: {text} does not exist"
            );
            let size = fs::metadata(root.join(folder).join(text)).unwrap().len();
            assert!(
                html.contains(&format!(" {size} <A HREF=\"{target}\"")),
                "{text}: listed size"
            );
        }
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aemo-gen"))
        .arg("--out")
        .arg(tmp.path())
        .args(["--units", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--units"));
}
