//! Ingest over HTTP against loopback servers serving generated AEMO files:
//! only new files, limits, retries, bad files skipped, exactly-once after a
//! failed or killed run, GitHub folders, spreadsheets.

mod common;
use common::http::{Reply, TestServer};
use common::{TempProject, int, text};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const SCADA_DIR: &str = "/Reports/Current/Dispatch_SCADA/";

/// Generated AEMO intraday SCADA zips: name → bytes, plus the listing page.
fn generated_scada(intervals: usize) -> (BTreeMap<String, Vec<u8>>, String) {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_aemo-gen"))
        .args(["--days", "1", "--units", "5", "--intraday-intervals"])
        .arg(intervals.to_string())
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dir = out.path().join("intraday_scada");
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".zip") {
            files.insert(name, std::fs::read(&p).unwrap());
        }
    }
    let listing = std::fs::read_to_string(dir.join("index.html")).unwrap();
    (files, listing)
}

/// A listing page linking `names` under `dir`.
fn listing(dir: &str, names: &[String]) -> String {
    let links: String = names
        .iter()
        .map(|n| {
            format!(" Monday, January 1, 2024  1:00 AM  1000 <A HREF=\"{dir}{n}\">{n}</A><br>")
        })
        .collect();
    format!(
        "<html><body><pre><A HREF=\"/Reports/Current/\">[To Parent Directory]</A><br><br>{links}</pre></body></html>"
    )
}

/// Serves `files` under the SCADA folder with `listing` as its index, with
/// `special` answers for chosen paths (path, nth request) first.
fn serve(
    files: BTreeMap<String, Vec<u8>>,
    listing: String,
    special: impl Fn(&str, usize) -> Option<Reply> + Send + Sync + 'static,
) -> TestServer {
    let files = Arc::new(files);
    TestServer::start(move |path, n| {
        if let Some(r) = special(path, n) {
            return r;
        }
        if path == SCADA_DIR {
            return Reply::ok(listing.clone());
        }
        match path
            .strip_prefix(SCADA_DIR)
            .and_then(|name| files.get(name))
        {
            Some(bytes) => Reply::ok(bytes.clone()),
            None => Reply::status(404),
        }
    })
}

/// A project ingesting the SCADA listing into an incremental fact.
fn project(base: &str, limit: usize, extra_model: Option<&str>) -> TempProject {
    let p = TempProject::new("vars:\n  fail: false\n");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\n\
             sources:\n  - name: scada\n    kind: listing\n    url: {base}{SCADA_DIR}\n\
             \x20   pattern: 'PUBLIC_DISPATCHSCADA_\\d{{12}}_\\d{{16}}\\.zip'\n    format: mms\n\
             \x20   tables: [DISPATCH_UNIT_SCADA]\n    limits: {{intraday: {limit}, backfill: 1000}}\n\
             \x20   retry_base_ms: 20\n    concurrency: 3\n"
        ),
    );
    p.write(
        "models/fct_scada.sql",
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='source_file') }}\n\
         select SETTLEMENTDATE as ts, DUID as duid, SCADAVALUE as mw, source_file\n\
         from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'SETTLEMENTDATE': 'TIMESTAMP', 'DUID': 'VARCHAR', 'SCADAVALUE': 'DOUBLE'}) }}\n",
    );
    if let Some(sql) = extra_model {
        p.write("models/scada_check.sql", sql);
    }
    p
}

fn files_in_fact(p: &TempProject) -> i64 {
    int(
        &p.db("wh.duckdb"),
        "select count(distinct source_file) from main.fct_scada",
    )
}

/// Every (interval, unit) exactly once, and the log holds each file once.
fn assert_exactly_once(p: &TempProject, files: i64) {
    let db = p.db("wh.duckdb");
    assert_eq!(int(&db, "select count(*) from main.fct_scada"), files * 5);
    assert_eq!(
        int(
            &db,
            "select count(*) from (select distinct ts, duid from main.fct_scada)"
        ),
        files * 5
    );
    assert_eq!(int(&db, "select count(*) from _analytics.file_log"), files);
    assert_eq!(
        int(
            &db,
            "select count(distinct file_name) from _analytics.file_log"
        ),
        files
    );
}

#[test]
fn takes_only_new_files_within_limits_and_nothing_twice() {
    let (files, page) = generated_scada(6);
    // The names carry the interval: sorted, the last four are the newest.
    let all_names: Vec<String> = files.keys().cloned().collect();
    let server = serve(files, page, |_, _| None);
    let p = project(&server.base, 4, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_in_fact(&p), 4, "the intraday limit holds");
    // newest first: exactly the 4 latest intervals
    let db = p.db("wh.duckdb");
    let mut stmt = db
        .prepare("select distinct source_file from main.fct_scada order by 1")
        .unwrap();
    let taken: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(taken, all_names[2..].to_vec(), "the four newest files");
    drop(stmt);
    drop(db);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_in_fact(&p), 6);
    let before = server.hits(&format!("{SCADA_DIR}PUBLIC"));
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("taken     0 of     0 new"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.hits(&format!("{SCADA_DIR}PUBLIC")),
        before,
        "a third run downloads nothing"
    );
    assert_exactly_once(&p, 6);
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let (files, page) = generated_scada(3);
    let names: Vec<String> = files.keys().cloned().collect();
    let (a, b) = (
        format!("{SCADA_DIR}{}", names[0]),
        format!("{SCADA_DIR}{}", names[1]),
    );
    let server = serve(files, page, move |path, n| {
        if path == a && n == 1 {
            return Some(Reply::status(403));
        }
        if path == b && n <= 2 {
            return Some(Reply::status(if n == 1 { 503 } else { 429 }).header("Retry-After", "0"));
        }
        None
    });
    let p = project(&server.base, 10, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        server.hits(&format!("{SCADA_DIR}{}", names[0])),
        2,
        "403 then 200"
    );
    assert_eq!(
        server.hits(&format!("{SCADA_DIR}{}", names[1])),
        3,
        "503, 429, then 200"
    );
    assert_exactly_once(&p, 3);
}

/// Serves the SCADA files, answering each file's first request with `first`
/// (503 with a `Retry-After`); returns the server and, per file, the instants
/// of its requests.
type Times = Arc<std::sync::Mutex<BTreeMap<String, Vec<std::time::Instant>>>>;

fn serve_timed(n: usize, first: impl Fn() -> Reply + Send + Sync + 'static) -> (TestServer, Times) {
    let (files, page) = generated_scada(n);
    let times: Times = Arc::default();
    let seen = times.clone();
    let server = serve(files, page, move |path, nth| {
        if !path.starts_with(&format!("{SCADA_DIR}PUBLIC")) {
            return None;
        }
        seen.lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push(std::time::Instant::now());
        (nth == 1).then(&first)
    });
    (server, times)
}

/// The shortest gap between a file's first request and its retry.
fn shortest_retry_gap(times: &Times) -> std::time::Duration {
    let times = times.lock().unwrap();
    assert!(!times.is_empty());
    times
        .values()
        .map(|t| {
            assert_eq!(t.len(), 2, "one 503, then the retry");
            t[1] - t[0]
        })
        .min()
        .unwrap()
}

#[test]
fn a_retry_after_in_seconds_is_waited_for() {
    // The backoff is 20 ms: only the header can make the retry wait ~1 s.
    let (server, times) = serve_timed(2, || Reply::status(503).header("Retry-After", "1"));
    let p = project(&server.base, 10, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    let gap = shortest_retry_gap(&times);
    assert!(gap >= std::time::Duration::from_millis(950), "{gap:?}");
    assert_exactly_once(&p, 2);
}

#[test]
fn a_retry_after_http_date_is_waited_for() {
    // Two seconds ahead, to the second: at least one second from now.
    let (server, times) = serve_timed(2, || {
        let at = chrono::Utc::now() + chrono::Duration::seconds(2);
        Reply::status(503).header(
            "Retry-After",
            &at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        )
    });
    let p = project(&server.base, 10, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    let gap = shortest_retry_gap(&times);
    assert!(gap >= std::time::Duration::from_millis(950), "{gap:?}");
    assert_exactly_once(&p, 2);
}

#[test]
fn running_out_of_retries_names_the_attempts() {
    let (files, page) = generated_scada(2);
    let names: Vec<String> = files.keys().cloned().collect();
    let failing = format!("{SCADA_DIR}{}", names[0]);
    let f = failing.clone();
    let server = serve(files, page, move |path, _| {
        (path == f).then(|| Reply::status(503))
    });
    let p = project(&server.base, 10, None);
    p.write(
        "analytics.yml",
        &std::fs::read_to_string(p.path().join("analytics.yml"))
            .unwrap()
            .replace("retry_base_ms: 20", "retry_base_ms: 20\n    retries: 3"),
    );
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    let all = text(&out);
    assert!(out.status.success(), "a failed file is a warning:\n{all}");
    assert_eq!(server.hits(&failing), 3, "{all}");
    assert!(
        all.contains(&names[0])
            && all.contains("HTTP 503")
            && all.contains("gave up after 3 attempts"),
        "{all}"
    );
    assert_eq!(files_in_fact(&p), 1);
}

/// A raw HTTP/1.1 server for the SCADA folder whose first answer for each
/// file sends the headers and half the body, then drops the connection.
fn serve_dropping_mid_body(
    files: BTreeMap<String, Vec<u8>>,
    listing: String,
) -> (String, Arc<std::sync::Mutex<BTreeMap<String, usize>>>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counts: Arc<std::sync::Mutex<BTreeMap<String, usize>>> = Arc::default();
    let seen = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let nth = {
                let mut c = seen.lock().unwrap();
                let n = c.entry(path.clone()).or_default();
                *n += 1;
                *n
            };
            let body = if path == SCADA_DIR {
                listing.clone().into_bytes()
            } else {
                match path.strip_prefix(SCADA_DIR).and_then(|n| files.get(n)) {
                    Some(b) => b.clone(),
                    None => {
                        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        continue;
                    }
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let cut = if path != SCADA_DIR && nth == 1 {
                body.len() / 2
            } else {
                body.len()
            };
            let _ = stream.write_all(&body[..cut]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (base, counts)
}

#[test]
fn a_download_dropped_mid_body_is_retried_whole() {
    let (files, page) = generated_scada(3);
    let names: Vec<String> = files.keys().cloned().collect();
    let (base, counts) = serve_dropping_mid_body(files, page);
    let p = project(&base, 10, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    let counts = counts.lock().unwrap();
    for n in &names {
        assert_eq!(
            counts.get(&format!("{SCADA_DIR}{n}")),
            Some(&2),
            "{n}: cut after half its body, then taken whole\n{}",
            text(&out)
        );
    }
    drop(counts);
    assert_exactly_once(&p, 3);
}

/// A zip whose only member tries to climb out of the archive.
fn zip_with_member(name: &str, body: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(body).unwrap();
    w.finish().unwrap();
    out.into_inner()
}

#[test]
fn bad_files_are_reported_and_skipped_while_the_others_land() {
    let (mut files, _) = generated_scada(3);
    let good: Vec<String> = files.keys().cloned().collect();
    let sample = files.values().next().unwrap().clone();
    let bad =
        |minute: u32| format!("PUBLIC_DISPATCHSCADA_2030010100{minute:02}_0000000000000001.zip");
    files.insert(bad(5), sample[..sample.len() / 2].to_vec()); // truncated zip
    files.insert(
        bad(10),
        b"<html><body>Service unavailable</body></html>".to_vec(),
    ); // HTML, 200
    let csv = "C,x\nI,DISPATCH,UNIT_SCADA,1,SETTLEMENTDATE,DUID,SCADAVALUE,LASTCHANGED\nD,DISPATCH,UNIT_SCADA,1,\"2030/01/01 00:15:00\",EVIL1,1,\"2030/01/01 00:15:00\"\n";
    files.insert(bad(15), zip_with_member("../../x.CSV", csv.as_bytes())); // path traversal
    let mut names: Vec<String> = files.keys().cloned().collect();
    names.push(bad(20)); // listed but 404
    let server = serve(files, listing(SCADA_DIR, &names), |_, _| None);
    let p = project(&server.base, 100, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    let all = text(&out);
    assert!(
        out.status.success(),
        "per-file failures are warnings:\n{all}"
    );
    assert!(
        all.contains(&bad(5)) && all.contains(&bad(10)) && all.contains(&bad(20)),
        "{all}"
    );
    assert!(all.contains("not a zip archive"), "{all}");
    assert!(all.contains("404"), "{all}");
    assert!(
        all.contains("unsafe name") && all.contains(&bad(15)),
        "{all}"
    );
    assert!(all.contains("(4 skipped)"), "{all}");
    // the traversal member is rejected, never written outside the archive
    assert!(!p.path().join("x.CSV").exists() && !p.path().join("target/x.CSV").exists());
    let db = p.db("wh.duckdb");
    for g in &good {
        assert_eq!(
            int(
                &db,
                &format!("select count(*) from main.fct_scada where source_file = '{g}'")
            ),
            5,
            "{g} landed"
        );
    }
    assert_eq!(
        int(
            &db,
            &format!(
                "select count(*) from _analytics.file_log where file_name in ('{}', '{}', '{}', '{}')",
                bad(5),
                bad(10),
                bad(15),
                bad(20)
            )
        ),
        0
    );
}

#[test]
fn an_empty_listing_is_a_warning() {
    let server = serve(BTreeMap::new(), listing(SCADA_DIR, &[]), |_, _| None);
    let p = project(&server.base, 10, None);
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("WARN") && all.contains("no matching files"),
        "{all}"
    );
    // Nothing new: no model runs (pipeline::nothing_new), so no table is made.
    assert!(all.contains("nothing new"), "{all}");
    if p.path().join("wh.duckdb").exists() {
        let tables = int(
            &p.db("wh.duckdb"),
            "select count(*) from duckdb_tables() where table_name = 'fct_scada'",
        );
        assert_eq!(tables, 0);
    }
}

#[test]
fn a_run_that_fails_after_committing_one_model_converges_on_rerun() {
    let (files, page) = generated_scada(4);
    let server = serve(files, page, |_, _| None);
    // A second consumer of the source fails in the first run: the files
    // reached fct_scada but are not done, so the next run takes them again.
    let p = project(
        &server.base,
        10,
        Some(
            "{{ config(materialized='table') }}\nselect count(*) as n{% if var('fail') %}, error('boom') as e{% endif %}\n\
             from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'DUID': 'VARCHAR'}) }}\n",
        ),
    );
    let out = p.run(&[
        "run",
        "--mode",
        "intraday",
        "--target",
        "wh",
        "--vars",
        "{fail: true}",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    {
        let db = p.db("wh.duckdb");
        assert_eq!(int(&db, "select count(*) from main.fct_scada"), 20);
        assert_eq!(int(&db, "select count(*) from _analytics.file_log"), 0);
    }
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("taken     4 of     4 new"),
        "{}",
        text(&out)
    );
    assert_exactly_once(&p, 4);
}

#[test]
fn a_killed_run_rerun_ends_with_every_file_exactly_once() {
    let (files, page) = generated_scada(4);
    let server = serve(files, page, |_, _| None);
    // A slow model after the fact table gives a window to kill the process
    // between fct_scada's commit and the file log.
    let p = project(
        &server.base,
        10,
        Some(
            "{{ config(materialized='table') }}\n\
             select count(*) as n from range(20000000000) t(i), (select count(*) from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'DUID': 'VARCHAR'}) }})\n",
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "intraday", "--target", "wh", "--project"])
        .arg(p.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    for line in reader {
        if line.unwrap().contains("model `fct_scada`") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    {
        let db = p.db("wh.duckdb");
        assert_eq!(
            int(&db, "select count(*) from main.fct_scada"),
            20,
            "fct_scada committed before the kill"
        );
        assert_eq!(
            int(&db, "select count(*) from _analytics.file_log"),
            0,
            "the log was not written"
        );
    }
    p.write("models/scada_check.sql", "select 1 as n\n");
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&p, 4);
}

#[test]
fn github_folders_are_listed_page_by_page_with_the_token() {
    let (files, _) = generated_scada(5);
    let names: Vec<String> = files.keys().cloned().collect();
    let files = Arc::new(files);
    let token = "ghs_not_a_real_token_123";
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b2 = base.clone();
    let n2 = names.clone();
    let server = TestServer::start(move |path, _| {
        let base = b2.get().cloned().unwrap_or_default();
        let entry = |n: &String| serde_json::json!({"type": "file", "name": n, "download_url": format!("{base}/raw/{n}")});
        if path.starts_with("/repos/aemo/archive/contents/scada") {
            let page2 = path.contains("page=2");
            let list: Vec<_> = if page2 {
                n2[3..].iter().map(entry).collect()
            } else {
                let mut l: Vec<_> = n2[..3].iter().map(entry).collect();
                l.push(serde_json::json!({"type": "dir", "name": "sub", "download_url": null}));
                l
            };
            let mut reply = Reply::ok(serde_json::to_vec(&list).unwrap());
            if !page2 {
                reply = reply.header(
                    "Link",
                    &format!("<{base}/repos/aemo/archive/contents/scada?page=2>; rel=\"next\""),
                );
            }
            return reply;
        }
        match path.strip_prefix("/raw/").and_then(|n| files.get(n)) {
            Some(b) => Reply::ok(b.clone()),
            None => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n  - name: scada\n    kind: github\n\
             \x20   url: {}\n    repo: aemo/archive\n    path: scada\n    token_env: ARCHIVE_TOKEN\n\
             \x20   pattern: 'PUBLIC_DISPATCHSCADA_.*\\.zip'\n    format: mms\n    modes: [backfill]\n",
            server.base
        ),
    );
    p.write(
        "models/fct_scada.sql",
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='source_file') }}\n\
         select DUID as duid, source_file from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'DUID': 'VARCHAR'}) }}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "backfill", "--target", "wh", "--project"])
        .arg(p.path())
        .env("ARCHIVE_TOKEN", token)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(token), "the token must never be printed");
    assert_eq!(
        int(
            &p.db("wh.duckdb"),
            "select count(distinct source_file) from main.fct_scada"
        ),
        5
    );
    let requests = server.requests.lock().unwrap().clone();
    let api_calls: Vec<_> = requests
        .iter()
        .filter(|(p, _)| p.starts_with("/repos/"))
        .collect();
    assert_eq!(api_calls.len(), 2, "two pages: {api_calls:?}");
    assert!(
        api_calls
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(&format!("Bearer {token}")))
    );
}

/// An xlsx workbook (named `.xls`, as AEMO's registration list is).
fn registration_xlsx(path: &Path, capacity: f64) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("PU and Scheduled Loads").unwrap();
    sheet
        .write_string(0, 0, "NEM Registration and Exemption List")
        .unwrap();
    for (c, h) in ["DUID", "Station Name", "Reg Cap (MW)"].iter().enumerate() {
        sheet.write_string(1, c as u16, *h).unwrap();
    }
    for (r, (duid, name)) in [
        ("BAYSW1", "Bayswater, Unit 1"),
        ("ARWF1", "Ararat \"Wind\" Farm"),
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(r as u32 + 2, 0, *duid).unwrap();
        sheet.write_string(r as u32 + 2, 1, *name).unwrap();
        sheet.write_number(r as u32 + 2, 2, capacity).unwrap();
    }
    book.save(path).unwrap();
}

#[test]
fn a_spreadsheet_url_becomes_a_table_and_is_retaken_only_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let xls = dir.path().join("reg.xls");
    registration_xlsx(&xls, 660.0);
    let file = Arc::new(std::sync::Mutex::new(std::fs::read(&xls).unwrap()));
    let f2 = file.clone();
    let server = TestServer::start(move |path, _| match path {
        "/reports/NEM-Registration-and-Exemption-List.xls" => Reply::ok(f2.lock().unwrap().clone()),
        _ => Reply::status(404),
    });
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n  - name: registration\n    kind: url\n\
             \x20   url: {}/reports/NEM-Registration-and-Exemption-List.xls\n    format: csv\n\
             \x20   sheet: PU and Scheduled Loads\n    skip_rows: 1\n    modes: [backfill]\n    also_when_empty: dim_duid\n",
            server.base
        ),
    );
    p.write(
        "models/dim_duid.sql",
        "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='duid') }}\n\
         select DUID as duid, \"Station Name\" as station, \"Reg Cap (MW)\" as capacity_mw\n\
         from {{ read_source('registration', columns={'DUID': 'VARCHAR', 'Station Name': 'VARCHAR', 'Reg Cap (MW)': 'DOUBLE'}) }}\n",
    );
    // intraday: the source is not in its modes, but the dimension is empty
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    {
        let db = p.db("wh.duckdb");
        assert_eq!(int(&db, "select count(*) from main.dim_duid"), 2);
        assert_eq!(
            int(
                &db,
                "select count(*) from main.dim_duid where station = 'Ararat \"Wind\" Farm'"
            ),
            1
        );
        assert_eq!(
            int(&db, "select sum(capacity_mw)::BIGINT from main.dim_duid"),
            1320
        );
    }
    // intraday again: the dimension has rows now, nothing is fetched
    let hits = server.hits("/reports/");
    assert!(
        p.run(&["run", "--mode", "intraday", "--target", "wh"])
            .status
            .success()
    );
    assert_eq!(server.hits("/reports/"), hits);
    // backfill, file unchanged: fetched but not taken again
    let out = p.run(&["run", "--mode", "backfill", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("taken     0"), "{}", text(&out));
    // backfill after the file changed: taken, merged
    registration_xlsx(&xls, 700.0);
    *file.lock().unwrap() = std::fs::read(&xls).unwrap();
    assert!(
        p.run(&["run", "--mode", "backfill", "--target", "wh"])
            .status
            .success()
    );
    let db = p.db("wh.duckdb");
    assert_eq!(
        int(&db, "select sum(capacity_mw)::BIGINT from main.dim_duid"),
        1400
    );
    assert_eq!(int(&db, "select count(*) from _analytics.file_log"), 2);
}

#[test]
fn the_limit_flag_overrides_the_configured_limits() {
    let (files, page) = generated_scada(5);
    let server = serve(files, page, |_, _| None);
    let p = project(&server.base, 4, None);
    let out = p.run(&[
        "run", "--mode", "intraday", "--target", "wh", "--limit", "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_in_fact(&p), 2);
}

/// A fake of GitHub's contents and git trees APIs over a history archive:
/// `data/archive/<year>/` folders for 2015 and 2016 (2017 does not exist),
/// 2016 holding more files than the contents API lists (it answers with
/// the first `CAP`, oldest first, as GitHub does past its cap), so the
/// newest files are only found through the trees API.
fn archive_server(cap: usize) -> (TestServer, Vec<String>) {
    let day = |y: i32, n: usize| {
        let d = chrono::NaiveDate::from_ymd_opt(y, 1, 1).unwrap() + chrono::Days::new(n as u64);
        format!("PUBLIC_DAILY_{}0000_20261002000000.zip", d.format("%Y%m%d"))
    };
    let y2015: Vec<String> = (0..3).map(|n| day(2015, n)).collect();
    let y2016: Vec<String> = (0..cap + 5).map(|n| day(2016, n)).collect();
    let mut all: Vec<String> = y2015.iter().chain(&y2016).cloned().collect();
    all.sort();
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b2 = base.clone();
    let server = TestServer::start(move |path, _| {
        let base = b2.get().cloned().unwrap_or_default();
        let file = |folder: &str, n: &String| {
            serde_json::json!({"type": "file", "name": n,
                "download_url": format!("{base}/raw/{folder}/{n}")})
        };
        let json = |v: serde_json::Value| Reply::ok(serde_json::to_vec(&v).unwrap());
        let path = path.split('?').next().unwrap_or_default();
        match path {
            "/repos/aemo/data/contents/data/archive/2015" => json(serde_json::json!(
                y2015.iter().map(|n| file("2015", n)).collect::<Vec<_>>()
            )),
            "/repos/aemo/data/contents/data/archive/2016" => json(serde_json::json!(
                y2016[..cap]
                    .iter()
                    .map(|n| file("2016", n))
                    .collect::<Vec<_>>()
            )),
            "/repos/aemo/data/contents/data/archive" => json(serde_json::json!([
                {"type": "dir", "name": "2015", "sha": "tree2015"},
                {"type": "dir", "name": "2016", "sha": "tree2016"}
            ])),
            "/repos/aemo/data/git/trees/tree2016" => json(serde_json::json!({
                "sha": "tree2016", "truncated": false,
                "tree": y2016.iter().map(|n| serde_json::json!(
                    {"path": n, "type": "blob", "sha": "x"})).collect::<Vec<_>>()
            })),
            p if p.starts_with("/raw/") => Reply::ok(small_zip(p)),
            _ => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    (server, all)
}

/// A zip holding one small CSV that names `what`.
fn small_zip(what: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file("data.csv", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(format!("file\n{what}\n").as_bytes()).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

fn file_log_names(p: &TempProject) -> Vec<String> {
    let db = p.db("wh.duckdb");
    let mut stmt = db
        .prepare("select file_name from _analytics.file_log order by file_name")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_history_archive_by_year_is_filled_newest_first_past_the_contents_cap() {
    let cap = analytics::ingest::candidates::CONTENTS_CAP;
    let (server, all) = archive_server(cap);
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n  - name: history\n    kind: github\n\
             \x20   url: {}\n    repo: aemo/data\n    path: data/archive/{{year}}\n    years: '2015..2017'\n\
             \x20   pattern: 'PUBLIC_DAILY_\\d{{12}}_\\d{{14}}\\.zip'\n    format: raw\n\
             \x20   limits: {{ backfill: 3 }}\n    modes: [backfill]\n",
            server.base
        ),
    );
    let out = p.run(&["run", "--mode", "backfill", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    // The three newest days: 2016 files the contents API did not list.
    let newest: Vec<String> = all[all.len() - 3..].to_vec();
    assert_eq!(file_log_names(&p), newest, "{}", text(&out));
    assert!(server.hits("/repos/aemo/data/git/trees/tree2016") >= 1);
    assert!(
        server.hits("/repos/aemo/data/contents/data/archive/2017") >= 1,
        "the missing year was asked for, then skipped"
    );
    // The next run goes further back, and takes nothing twice.
    let out = p.run(&["run", "--mode", "backfill", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(file_log_names(&p), all[all.len() - 6..].to_vec());
}

#[test]
fn a_folder_of_dated_workbooks_offers_only_the_newest_and_rate_limits_are_named() {
    let names = [
        "NEM-Registration-and-Exemption-List_20260901.xls",
        "NEM-Registration-and-Exemption-List_20261101.xls",
        "NEM-Registration-and-Exemption-List_20261001.xls",
    ];
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b2 = base.clone();
    let reset = chrono::Utc::now().timestamp() + 1800;
    let dir = tempfile::tempdir().unwrap();
    let xls = dir.path().join("reg.xls");
    registration_xlsx(&xls, 660.0);
    let workbook = std::fs::read(&xls).unwrap();
    let server = TestServer::start(move |path, _| {
        let base = b2.get().cloned().unwrap_or_default();
        if path.starts_with("/repos/aemo/data/contents/data/duid/registration") {
            let list: Vec<_> = names
                .iter()
                .map(|n| serde_json::json!({"type": "file", "name": n, "download_url": format!("{base}/raw/{n}")}))
                .collect();
            return Reply::ok(serde_json::to_vec(&list).unwrap());
        }
        if path.starts_with("/repos/aemo/limited/") {
            return Reply::status(403)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &reset.to_string());
        }
        match path.strip_prefix("/raw/") {
            Some(_) => Reply::ok(workbook.clone()),
            None => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n\
             \x20 - name: registration\n    kind: github\n    url: {0}\n    repo: aemo/data\n\
             \x20   path: data/duid/registration\n    pattern: 'NEM-Registration-and-Exemption-List_\\d{{8}}\\.xls'\n\
             \x20   latest: true\n    format: raw\n    modes: [backfill]\n\
             \x20 - name: limited\n    kind: github\n    url: {0}\n    repo: aemo/limited\n    path: x\n\
             \x20   format: raw\n    retries: 4\n    modes: [backfill]\n",
            server.base
        ),
    );
    let out = p.run(&["run", "--mode", "backfill", "--target", "wh"]);
    let all = text(&out);
    assert!(
        out.status.success(),
        "a rate-limited source is skipped: {all}"
    );
    assert_eq!(
        file_log_names(&p),
        ["NEM-Registration-and-Exemption-List_20261101.xls"],
        "{all}"
    );
    assert!(all.contains("rate limit is used up"), "{all}");
    assert!(all.contains("it resets at"), "{all}");
    assert!(all.contains("in 30 min"), "{all}");
    assert_eq!(
        server.hits("/repos/aemo/limited/"),
        1,
        "a used-up rate limit is not retried"
    );
    // Nothing newer: nothing taken again.
    let out = p.run(&["run", "--mode", "backfill", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(file_log_names(&p).len(), 1);
}

#[test]
fn a_refused_github_token_is_never_shown_on_the_failure_path() {
    let token = "ghp_refusedTOKEN0987654321abcdef";
    let server = TestServer::start(move |path, _| {
        if path.starts_with("/repos/aemo/private/") {
            // What GitHub answers a token it does not accept (with the URL
            // of the request echoed back in the body, as its errors do).
            return Reply::status(401);
        }
        Reply::status(404)
    });
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n  - name: private\n    kind: github\n\
             \x20   url: {}\n    repo: aemo/private\n    path: data\n    token_env: PRIVATE_TOKEN\n\
             \x20   format: raw\n    retries: 2\n    retry_base_ms: 10\n    modes: [backfill]\n",
            server.base
        ),
    );
    let summary = p.path().join("summary.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--mode", "backfill", "--target", "wh", "--project"])
        .arg(p.path())
        .env("PRIVATE_TOKEN", token)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let all = text(&out);
    // The source is skipped with the reason, the run goes on.
    assert!(out.status.success(), "{all}");
    assert!(all.contains("401"), "{all}");
    assert!(
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|(_, auth)| auth.as_deref() == Some(&format!("Bearer {token}"))),
        "the token was sent"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("private"), "{summary}");
    for (what, text) in [("output", &all), ("summary", &summary)] {
        assert!(!text.contains(token), "the token is in the {what}: {text}");
        assert!(
            !text.contains("refusedTOKEN"),
            "part of the token in the {what}"
        );
    }
}

/// All rows of `fct_scada` as text, sorted (the source file names included).
fn fact_rows(db: &duckdb::Connection) -> Vec<String> {
    let mut stmt = db
        .prepare("select ts::varchar || '|' || duid || '|' || mw::varchar || '|' || source_file from main.fct_scada order by all")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_ci_run_stores_plain_csv_and_reads_the_same_rows_as_a_gzip_archive() {
    let (files, page) = generated_scada(4);
    let names: Vec<String> = files.keys().cloned().collect();
    // `ci` takes the sample folder; `intraday` downloads the same files.
    let p = project("http://127.0.0.1:9", 100, None);
    std::fs::create_dir_all(p.path().join("sample")).unwrap();
    for (name, bytes) in &files {
        std::fs::write(p.path().join("sample").join(name), bytes).unwrap();
    }
    let yml = std::fs::read_to_string(p.path().join("analytics.yml")).unwrap();
    p.write(
        "analytics.yml",
        &yml.replace("    limits:", "    sample: sample\n    limits:")
            .replace("intraday: 100,", "ci: 100, intraday: 100,"),
    );
    let out = p.run(&["run", "--mode", "ci", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    let table_dir = p.path().join("target/archive/scada/DISPATCH_UNIT_SCADA");
    let mut stored: Vec<String> = std::fs::read_dir(&table_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("{n}.csv")).collect();
    assert_eq!(stored, expected, "ci stores plain CSV, one per file");
    let first = std::fs::read_to_string(table_dir.join(&expected[0])).unwrap();
    // Only the columns the model reads (LASTCHANGED is left out), in the
    // file's order: DuckDB tokenises every stored column of every line.
    assert!(
        first.starts_with("SETTLEMENTDATE,DUID,SCADAVALUE\n\"20"),
        "a plain CSV of the columns read, starting with its header: {:?}",
        &first[..first.len().min(60)]
    );
    assert_eq!(first.lines().nth(1).unwrap().split(',').count(), 3);
    let ci_rows = fact_rows(&p.db("wh.duckdb"));
    assert_eq!(ci_rows.len(), names.len() * 5);

    let server = serve(files, page, |_, _| None);
    let q = project(&server.base, 100, None);
    let out = q.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    let gz = q
        .path()
        .join("target/archive/scada/DISPATCH_UNIT_SCADA")
        .join(format!("{}.gz", names[0]));
    assert!(gz.exists(), "intraday stores gzip: {}", gz.display());
    let mut header = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&gz).unwrap(),
        )),
        &mut header,
    )
    .unwrap();
    assert_eq!(
        header, "SETTLEMENTDATE,DUID,SCADAVALUE,LASTCHANGED\n",
        "other modes store every column"
    );
    assert_eq!(
        fact_rows(&q.db("wh.duckdb")),
        ci_rows,
        "the same rows and source_file names from either archive"
    );
}

/// A ci copy of `project` taking `files` from its sample folder.
fn ci_project(files: &BTreeMap<String, Vec<u8>>) -> TempProject {
    let p = project("http://127.0.0.1:9", 100, None);
    std::fs::create_dir_all(p.path().join("sample")).unwrap();
    for (name, bytes) in files {
        std::fs::write(p.path().join("sample").join(name), bytes).unwrap();
    }
    let yml = std::fs::read_to_string(p.path().join("analytics.yml")).unwrap();
    p.write(
        "analytics.yml",
        &yml.replace("    limits:", "    sample: sample\n    limits:")
            .replace("intraday: 100,", "ci: 100, intraday: 100,"),
    );
    p
}

/// The header of the first stored SCADA part of a ci run of `p`.
fn stored_header(p: &TempProject) -> String {
    let dir = p.path().join("target/archive/scada/DISPATCH_UNIT_SCADA");
    let first = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    let text = std::fs::read_to_string(first.path()).unwrap();
    text.lines().next().unwrap().to_string()
}

#[test]
fn a_ci_run_keeps_every_column_when_something_besides_the_models_reads_the_files() {
    let (files, _) = generated_scada(2);
    // A second model reading the same table: the stored columns are the union.
    let p = ci_project(&files);
    p.write(
        "models/last_change.sql",
        "select max(LASTCHANGED) as last_changed from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'LASTCHANGED': 'VARCHAR'}) }}\n",
    );
    let out = p.run(&["run", "--mode", "ci", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stored_header(&p),
        "SETTLEMENTDATE,DUID,SCADAVALUE,LASTCHANGED"
    );

    // A singular test reading the files (rendered after ingest): every column.
    let q = ci_project(&files);
    q.write(
        "tests/scada_has_rows.sql",
        "select 1 from (select count(*) as n from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={'LASTCHANGED': 'VARCHAR'}) }}) where n = 0\n",
    );
    let out = q.run(&["run", "--mode", "ci", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stored_header(&q),
        "SETTLEMENTDATE,DUID,SCADAVALUE,LASTCHANGED",
        "{}",
        text(&out)
    );
}

/// A loopback server answering each request on its own thread, where a
/// request for a `held` path is answered only once a request for its
/// `until` path has arrived (or after `give_up`, with a 503 and the path
/// noted in the returned list): downloads that must be in flight at the
/// same time show it without timing anything.
fn serve_rendezvous(
    files: BTreeMap<String, Vec<u8>>,
    holds: Vec<(String, String)>,
    give_up: std::time::Duration,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use common::server::Response;
    use std::sync::{Condvar, Mutex};
    let seen: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
    let timed_out: Arc<Mutex<Vec<String>>> = Arc::default();
    let timeouts = timed_out.clone();
    // Each request is handled on a thread of its own (common::server).
    let server = common::server::Server::start(move |request| {
        let path = request.path;
        {
            let (lock, cv) = &*seen;
            lock.lock().unwrap().push(path.clone());
            cv.notify_all();
        }
        if let Some((_, until)) = holds.iter().find(|(held, _)| *held == path) {
            let (lock, cv) = &*seen;
            let (guard, wait) = cv
                .wait_timeout_while(lock.lock().unwrap(), give_up, |s| !s.contains(until))
                .unwrap();
            drop(guard);
            if wait.timed_out() {
                timed_out.lock().unwrap().push(path);
                return Some(Response::new(503, Vec::new()));
            }
        }
        Some(match files.get(&path) {
            Some(bytes) => Response::new(200, bytes.clone()),
            None => Response::new(404, b"not found".to_vec()),
        })
    });
    let base = server.url.clone();
    // The server lives as long as the test process.
    std::mem::forget(server);
    (base, timeouts)
}

/// A listing source `name` over `{base}/{name}/`.
fn listing_source(base: &str, name: &str, concurrency: usize) -> String {
    format!(
        "  - name: {name}\n    kind: listing\n    url: {base}/{name}/\n\
         \x20   pattern: 'PUBLIC_DISPATCHSCADA_\\d{{12}}_\\d{{16}}\\.zip'\n    format: mms\n\
         \x20   tables: [DISPATCH_UNIT_SCADA]\n    limits: {{intraday: 10}}\n\
         \x20   retries: 1\n    concurrency: {concurrency}\n"
    )
}

/// A model per source, so each source's files count as done.
fn model_reading(p: &TempProject, source: &str) {
    p.write(
        &format!("models/fct_{source}.sql"),
        &format!(
            "select DUID as duid, SCADAVALUE as mw, source_file\n\
             from {{{{ read_source('{source}', 'DISPATCH_UNIT_SCADA', columns={{'DUID': 'VARCHAR', 'SCADAVALUE': 'DOUBLE'}}) }}}}\n"
        ),
    );
}

#[test]
fn sources_are_taken_at_once_and_a_slow_file_does_not_hold_back_the_next() {
    let (zips, _) = generated_scada(4);
    let names: Vec<String> = zips.keys().cloned().collect();
    // Source `a`: names[0] only; source `b`: names[1..4], 2 at a time.
    // Files are taken newest first, so b starts names[3] and names[2].
    let mut files = BTreeMap::new();
    files.insert("/a/".to_string(), listing("/a/", &names[..1]).into_bytes());
    files.insert("/b/".to_string(), listing("/b/", &names[1..]).into_bytes());
    files.insert(format!("/a/{}", names[0]), zips[&names[0]].clone());
    for n in &names[1..] {
        files.insert(format!("/b/{n}"), zips[n].clone());
    }
    let holds = vec![
        // `a`'s file waits for `b` to start: sources one after another never get there.
        (format!("/a/{}", names[0]), format!("/b/{}", names[3])),
        // `b`'s first file waits for its third: batches of 2 start the third
        // only after the first is done; a window of 2 starts it when the
        // second is.
        (format!("/b/{}", names[3]), format!("/b/{}", names[1])),
    ];
    let (base, timed_out) = serve_rendezvous(files, holds, std::time::Duration::from_secs(20));
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n{}{}",
            listing_source(&base, "a", 4),
            listing_source(&base, "b", 2)
        ),
    );
    model_reading(&p, "a");
    model_reading(&p, "b");
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        timed_out.lock().unwrap().clone(),
        Vec::<String>::new(),
        "downloads that waited for one that never started: {}",
        text(&out)
    );
    let db = p.db("wh.duckdb");
    assert_eq!(int(&db, "select count(*) from _analytics.file_log"), 4);
    assert_eq!(
        int(&db, "select count(DISTINCT source_file) from main.fct_a"),
        1
    );
    assert_eq!(
        int(&db, "select count(DISTINCT source_file) from main.fct_b"),
        3
    );
}

#[test]
fn with_a_pause_files_are_taken_in_batches() {
    // The same hold as above, with `pause_ms`: the third file starts only
    // after the whole first batch (so the held first file times out and is
    // skipped, then taken by the next run).
    let (zips, _) = generated_scada(3);
    let names: Vec<String> = zips.keys().cloned().collect();
    let mut files = BTreeMap::new();
    files.insert("/b/".to_string(), listing("/b/", &names).into_bytes());
    for n in &names {
        files.insert(format!("/b/{n}"), zips[n].clone());
    }
    let holds = vec![(format!("/b/{}", names[2]), format!("/b/{}", names[0]))];
    let (base, timed_out) = serve_rendezvous(files, holds, std::time::Duration::from_secs(3));
    let p = TempProject::new("");
    p.write(
        "analytics.yml",
        &format!(
            "targets:\n  wh: {{type: duckdb, path: wh.duckdb}}\nsources:\n{}    pause_ms: 10\n",
            listing_source(&base, "b", 2)
        ),
    );
    model_reading(&p, "b");
    let out = p.run(&["run", "--mode", "intraday", "--target", "wh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        timed_out.lock().unwrap().clone(),
        vec![format!("/b/{}", names[2])]
    );
    let db = p.db("wh.duckdb");
    assert_eq!(int(&db, "select count(*) from _analytics.file_log"), 2);
}
