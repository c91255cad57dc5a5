//! Checks the `aemo-gen` binary: deterministic bytes, well-formed MMS files, working
//! listings, reference data that matches the dispatch data, and plausible shapes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook};

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

/// Parses an MMS CSV, checking its framing on the way: CRLF line ends, a `C` header first, an
/// `END OF REPORT` footer with the right line count last, and every `D` row as wide
/// as the `I` line of its table. Tables are keyed `REPORT` or `REPORT_SUBTABLE`.
fn parse_mms(text: &str, file: &str) -> HashMap<String, Table> {
    assert!(
        text.ends_with("\r\n") && text.matches('\n').count() == text.matches("\r\n").count(),
        "{file}: every line ends with CRLF"
    );
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

/// The registration workbook's sheet and its 21 columns, verbatim.
const SHEET: &str = "PU and Scheduled Loads";
const COLUMNS: [&str; 21] = [
    "Participant",
    "Station Name",
    "Region",
    "Dispatch Type",
    "Category",
    "Classification",
    "Fuel Source - Primary",
    "Fuel Source - Descriptor",
    "Technology Type - Primary",
    "Technology Type - Descriptor",
    "Units",
    "Aggregation",
    "DUID",
    "Reg Cap generation (MW)",
    "Max Cap generation (MW)",
    "Max ROC/Min generation",
    "Reg Cap consumption (MW)",
    "Max Cap consumption (MW)",
    "Max ROC/Min consumption",
    "Maximum storage capacity ",
    "Comments",
];

/// The registration list's rows, each as column → cell.
struct Registration {
    rows: Vec<BTreeMap<&'static str, Data>>,
}

impl Registration {
    /// The workbook named after the first generated day (2024-01-30), read with
    /// calamine as xlsx whatever its `.xls` name says; checks the sheet and header.
    fn read(root: &Path) -> Self {
        let dir = root.join("reference/registration");
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["NEM-Registration-and-Exemption-List_20240130.xls"],
            "one workbook named after the first day"
        );
        let mut book: Xlsx<_> = open_workbook(dir.join(&names[0])).expect("an xlsx workbook");
        assert_eq!(book.sheet_names(), [SHEET]);
        let range = book.worksheet_range(SHEET).unwrap();
        assert_eq!(range.start(), Some((0, 0)), "header on the first row");
        let mut rows = range.rows();
        let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(header, COLUMNS);
        let rows = rows
            .map(|r| {
                assert_eq!(r.len(), COLUMNS.len());
                COLUMNS.iter().copied().zip(r.iter().cloned()).collect()
            })
            .collect();
        Registration { rows }
    }

    /// The text of a cell (numbers as written, blanks as "").
    fn text(row: &BTreeMap<&'static str, Data>, column: &str) -> String {
        row[column].to_string()
    }

    /// DUID → fuel (`Fuel Source - Primary`) of the first row of each real DUID
    /// (the `-` row left out).
    fn fuels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for r in &self.rows {
            let duid = Self::text(r, "DUID");
            if duid != "-" {
                out.entry(duid)
                    .or_insert_with(|| Self::text(r, "Fuel Source - Primary"));
            }
        }
        out
    }

    /// The distinct values of a column.
    fn values(&self, column: &str) -> BTreeSet<String> {
        self.rows.iter().map(|r| Self::text(r, column)).collect()
    }
}

/// Whether a `Fuel Source - Primary` value is a battery (the list spells it both
/// `Battery storage` and `Battery Storage`).
fn is_battery(fuel: &str) -> bool {
    fuel.eq_ignore_ascii_case("battery storage")
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
    let reg = Registration::read(root).fuels();
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
    assert_eq!(seen_duids.len(), UNITS);
    // Every dispatching unit but one is in the list: AEMO publishes units
    // before it registers them.
    let unregistered: Vec<&String> = seen_duids
        .iter()
        .filter(|d| !reg.contains_key(*d))
        .collect();
    assert_eq!(unregistered.len(), 1, "unregistered: {unregistered:?}");
    assert!(
        reg.keys().all(|d| seen_duids.contains(d)),
        "every listed unit dispatches"
    );

    // Coordinates: aemo_fabric's header, one row per listed unit, `geo` is
    // "lat lon" or blank with the coordinates, a few units without any.
    let geo = fs::read_to_string(root.join("reference/geo_data.csv")).unwrap();
    let mut lines = geo.lines();
    let header = fields(lines.next().unwrap());
    assert_eq!(
        header.join(","),
        "StationName,Region,FuelSourceDescriptor,DUID,Technology,latitude,longitude,Tech,RegMW,id,TEST,LENGHT,geo,checkgeo"
    );
    let at = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut geo_duids = BTreeSet::new();
    let mut blank = 0;
    for line in lines {
        let f = fields(line);
        assert_eq!(f.len(), header.len(), "geo row {line}");
        assert!(geo_duids.insert(f[at("DUID")].clone()), "{line}");
        let (lat, lon, geo) = (&f[at("latitude")], &f[at("longitude")], &f[at("geo")]);
        if lat.is_empty() {
            assert!(lon.is_empty() && geo.trim().is_empty(), "{line}");
            blank += 1;
        } else {
            let (la, lo): (f64, f64) = (lat.parse().unwrap(), lon.parse().unwrap());
            assert!(
                (-44.0..-10.0).contains(&la) && (112.0..154.0).contains(&lo),
                "{line}"
            );
            assert_eq!(geo, &format!("{lat} {lon}"), "{line}");
        }
    }
    assert!(
        (1..=3).contains(&blank),
        "a few units without coordinates: {blank}"
    );
    assert_eq!(
        geo_duids,
        reg.keys().cloned().collect::<BTreeSet<_>>(),
        "one coordinate row per listed unit"
    );
}

#[test]
fn shapes_are_plausible() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    generate(root, 60, &[]);
    let list = Registration::read(root);
    let reg = list.fuels();
    // AEMO's categories, spelled as the list spells them (batteries both ways).
    assert_eq!(
        list.values("Fuel Source - Primary"),
        [
            "Battery Storage",
            "Battery storage",
            "Fossil",
            "Hydro",
            "Solar",
            "Wind"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        list.values("Fuel Source - Descriptor"),
        [
            "Black Coal",
            "Grid",
            "Natural Gas",
            "Solar",
            "Water",
            "Wind"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        list.values("Technology Type - Primary"),
        ["Combustion", "Renewable", "Storage"]
            .map(String::from)
            .into()
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
            // The unregistered unit has no fuel: it counts as not a battery.
            let fuel = reg.get(&r[duid]).map_or("", String::as_str);
            if value < -1.0 {
                negatives.insert(fuel.to_string());
            }
            if is_battery(fuel) && value < 0.0 && r[sd].ends_with(" 12:30:00") {
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
    // Solar farms draw a little at night, as the real ones do (-0.10 MW).
    assert!(
        solar_night.iter().all(|&v| v == -0.1),
        "solar at 02:00: {solar_night:?}"
    );
    assert!(
        solar_noon.iter().all(|&v| v > 0.0),
        "solar at 12:00: {solar_noon:?}"
    );
    // Only batteries are clearly negative (below -1 MW).
    assert!(
        !negatives.is_empty() && negatives.iter().all(|f| is_battery(f)),
        "clearly negative output from {negatives:?}"
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
    let scada = &parse_mms(
        &only_member(&zips(&root.join("intraday_scada"))[0]).1,
        "scada",
    )["DISPATCH_UNIT_SCADA"];
    assert_eq!(
        scada.columns,
        ["SETTLEMENTDATE", "DUID", "SCADAVALUE", "LASTCHANGED"]
    );
    // Just after midnight the solar farms report their small draw.
    let reg = Registration::read(root).fuels();
    let (duid, value) = (scada.col("DUID"), scada.col("SCADAVALUE"));
    let solar: Vec<&Vec<String>> = scada
        .rows
        .iter()
        .filter(|r| reg.get(&r[duid]).is_some_and(|f| f == "Solar"))
        .collect();
    assert!(!solar.is_empty());
    assert!(solar.iter().all(|r| r[value] == "-0.1"), "{solar:?}");

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
fn registration_list_has_the_real_quirks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    generate(root, UNITS, &[]);
    let list = Registration::read(root);
    let t = Registration::text;
    let is_number = |d: &Data| matches!(d, Data::Float(_) | Data::Int(_));
    assert_eq!(
        list.values("Category"),
        BTreeSet::from(["Market".to_string()])
    );
    for r in &list.rows {
        let fuel = t(r, "Fuel Source - Primary");
        let battery = is_battery(&fuel);
        assert_eq!(
            t(r, "Dispatch Type"),
            if battery {
                "Bidirectional Unit"
            } else {
                "Generating Unit"
            },
            "{r:?}"
        );
        if fuel == "Wind" || fuel == "Solar" {
            assert_eq!(t(r, "Classification"), "Semi-Scheduled", "{r:?}");
        }
        assert!(is_number(&r["Reg Cap generation (MW)"]), "{r:?}");
        assert!(is_number(&r["Max Cap generation (MW)"]), "{r:?}");
        for column in [
            "Reg Cap consumption (MW)",
            "Max Cap consumption (MW)",
            "Max ROC/Min consumption",
            "Maximum storage capacity ",
        ] {
            if battery {
                assert!(is_number(&r[column]), "battery {column}: {r:?}");
            } else {
                assert_eq!(r[column], Data::Empty, "{column}: {r:?}");
            }
        }
    }

    // A small Non-Scheduled coal unit without a DUID, at a station that has others.
    let dash: Vec<_> = list.rows.iter().filter(|r| t(r, "DUID") == "-").collect();
    assert_eq!(dash.len(), 1);
    let d = dash[0];
    assert_eq!(t(d, "Classification"), "Non-Scheduled");
    assert_eq!(t(d, "Fuel Source - Primary"), "Fossil");
    assert_eq!(t(d, "Fuel Source - Descriptor"), "Black Coal");
    assert!(
        list.rows
            .iter()
            .any(|r| t(r, "DUID") != "-" && t(r, "Station Name") == t(d, "Station Name"))
    );

    // `Max ROC/Min generation`: numbers, `-` as text, blanks.
    let roc: Vec<&Data> = list
        .rows
        .iter()
        .map(|r| &r["Max ROC/Min generation"])
        .collect();
    assert!(roc.contains(&&Data::String("-".into())));
    assert!(roc.contains(&&Data::Empty));
    assert!(roc.iter().any(|d| is_number(d)));

    // `Units` a spreadsheet turned into dates.
    let units = list.values("Units");
    assert!(
        units.contains("1-Dec") && units.contains("Jan-30"),
        "{units:?}"
    );

    // One DUID listed twice, under two participants, the second smaller.
    let mut by_duid: BTreeMap<String, Vec<&BTreeMap<&str, Data>>> = BTreeMap::new();
    for r in &list.rows {
        by_duid.entry(t(r, "DUID")).or_default().push(r);
    }
    let twice: Vec<_> = by_duid
        .iter()
        .filter(|(d, rows)| *d != "-" && rows.len() > 1)
        .collect();
    assert_eq!(twice.len(), 1, "one duplicated DUID");
    let rows = twice[0].1;
    assert_eq!(rows.len(), 2);
    assert_ne!(t(rows[0], "Participant"), t(rows[1], "Participant"));
    assert_ne!(
        rows[0]["Reg Cap generation (MW)"],
        rows[1]["Reg Cap generation (MW)"]
    );

    // Both spellings of batteries, the capital one once.
    let fuels: Vec<String> = list
        .rows
        .iter()
        .map(|r| t(r, "Fuel Source - Primary"))
        .collect();
    assert_eq!(fuels.iter().filter(|f| *f == "Battery Storage").count(), 1);
    assert!(fuels.iter().any(|f| f == "Battery storage"));

    // One station written with a trailing space.
    let spaced: BTreeSet<String> = list
        .values("Station Name")
        .into_iter()
        .filter(|s| s.ends_with(' '))
        .collect();
    assert_eq!(spaced.len(), 1, "{spaced:?}");
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
