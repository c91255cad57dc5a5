//! Killed runs inside the Iceberg path converge: an `intraday` run of the
//! example project (loopback NEMWEB, SeaweedFS) is SIGKILLed at an exact
//! point — a Parquet upload in flight, a table commit sent but not yet at the
//! catalog (its manifests written), a commit the catalog applied whose answer
//! never came back, a publish request to the GitHub API — then the same mode
//! runs again to completion. pyiceberg must then read every key exactly once
//! (the same rows as an uninterrupted run) and, after `maintain`, find no
//! data or manifest file that no snapshot references. Runs whose upserts
//! fold the day's small files into their snapshot (`COMPACT_AT`) are killed
//! at each step of the fold the same way.
//!
//! Each point is made exact by a holding proxy (`tests/common/proxy.rs`) in
//! front of the catalog, S3 and the fake GitHub API: the proxy holds the
//! k-th matching request, the test kills the process while it is held, and
//! the request is dropped (or, for "after the commit", its answer is). The
//! ignored `random_kill_trials` runs `KILL_TRIALS` trials at seeded random
//! points (`KILL_SEED`); `bench/kill_trials` runs it and records the figures.

mod common;
use analytics::warehouse::COMPACT_AT;
use common::github::FakeGitHub;
use common::http::TestServer;
use common::nem::{
    copy_dir, list_first, nemweb, nemweb_from, project, pyiceberg_counts, unreferenced_files,
};
use common::proxy::{Hold, Proxy, Release, is_commit, is_data_put};
use common::repo_root;
use common::seaweedfs::SeaweedFs;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which requests a proxy matches: method, path, body.
type Matcher = fn(&str, &str, &[u8]) -> bool;
/// A matcher that may capture (a kill point's own request number).
type BoxedMatcher = Box<dyn Fn(&str, &str, &[u8]) -> bool + Send + Sync>;

const TOKEN: &str = "ghs_killTrialToken0123456789";

/// SeaweedFS, the loopback NEMWEB, the fake GitHub, and a proxy in front of
/// the catalog, S3 and GitHub each.
struct Rig {
    sw: SeaweedFs,
    server: TestServer,
    _gh: FakeGitHub,
    catalog: Proxy,
    s3: Proxy,
    github: Proxy,
}

/// Where a run is killed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Point {
    /// The k-th Parquet data file upload, held before S3 has it.
    DataPut(usize),
    /// The k-th table commit, held before the catalog has it.
    CommitBefore(usize),
    /// The k-th table commit, applied by the catalog, its answer held.
    CommitAfter(usize),
    /// The k-th write request to the GitHub API (publish), held.
    Publish(usize),
    /// The k-th request of any kind to one proxy (0 catalog, 1 S3,
    /// 2 GitHub), held before (false) or after (true) it is forwarded.
    Request(u8, usize, bool),
    /// After this many milliseconds, wherever the run is.
    Time(u64),
}

impl Point {
    fn kind(&self) -> &'static str {
        match self {
            Point::DataPut(_) => "data upload",
            Point::CommitBefore(_) => "before commit",
            Point::CommitAfter(_) => "after commit",
            Point::Publish(_) => "publish",
            Point::Request(..) => "any request",
            Point::Time(_) => "random time",
        }
    }
}

/// What one trial found.
#[derive(Debug, Default)]
struct Outcome {
    /// Whether the kill point was reached before the run ended by itself.
    killed: bool,
    /// Tables with fewer rows than the uninterrupted run.
    lost: Vec<String>,
    /// Tables with more rows than keys, or more rows than the uninterrupted run.
    duplicated: Vec<String>,
    /// Unreferenced files after the rerun, and after `maintain`.
    orphans_after_rerun: usize,
    orphans_after_maintain: Vec<String>,
    /// Failed reruns or maintenance (their output).
    errors: Vec<String>,
    /// Seconds of the killed run, the rerun, and maintain.
    seconds: [f64; 3],
    /// The killed run's output.
    killed_log: String,
}

impl Outcome {
    fn converged(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.orphans_after_maintain.is_empty()
            && self.errors.is_empty()
    }
}

/// Requests per proxy and per kind in an uninterrupted run.
#[derive(Debug, Clone, Copy)]
struct Calls {
    requests: [usize; 3],
    data_puts: usize,
    commits: usize,
    publish: usize,
}

fn is_publish_write(method: &str, _: &str, _: &[u8]) -> bool {
    method != "GET" && method != "HEAD"
}

impl Rig {
    fn start() -> Rig {
        Rig::serving(nemweb())
    }

    /// [`Rig::start`] with this loopback NEMWEB (e.g. over a sample copy).
    fn serving(server: TestServer) -> Rig {
        let sw = SeaweedFs::start();
        let gh = FakeGitHub::start("nem/dashboard", TOKEN, true);
        let catalog = Proxy::start(&sw.catalog);
        let s3 = Proxy::start(&sw.s3);
        let github = Proxy::start(&gh.api_url);
        Rig {
            sw,
            server,
            _gh: gh,
            catalog,
            s3,
            github,
        }
    }

    fn proxy(&self, which: u8) -> &Proxy {
        match which {
            0 => &self.catalog,
            1 => &self.s3,
            _ => &self.github,
        }
    }

    /// A copy of the example project storing in `namespace`, whose
    /// `maintain` removes unreferenced files at once (nothing else writes).
    fn project(&self, namespace: &str) -> tempfile::TempDir {
        let dir = project(&self.server, namespace);
        let yml = dir.path().join("analytics.yml");
        let text = std::fs::read_to_string(&yml).unwrap();
        let text = text.replacen(
            "maintenance:\n",
            "maintenance:\n  orphan_after_hours: 0\n",
            1,
        );
        assert!(text.contains("orphan_after_hours: 0"), "{text}");
        // Each trial publishes to its own branch: on a branch an earlier
        // trial wrote, the same rows are already published, nothing changes
        // and the run makes no publish request to kill.
        let text = text.replacen(
            "  branch: gh-pages\n",
            &format!("  branch: pages-{namespace}\n"),
            1,
        );
        assert!(
            text.contains(&format!("branch: pages-{namespace}")),
            "{text}"
        );
        std::fs::write(&yml, text).unwrap();
        dir
    }

    /// Drops the file log (one per catalog, `analytics_meta.file_log`), so
    /// the next run takes every sample file again, as a first run does.
    fn fresh_file_log(&self) {
        common::seaweedfs::pyiceberg(
            &self.sw,
            "try:\n    c.drop_table('analytics_meta.file_log')\nexcept Exception:\n    pass\n",
        );
    }

    /// Starts `analytics run --mode <mode>` on `dir` through the proxies;
    /// output goes to `dir/run-<label>.log`.
    fn spawn(&self, dir: &Path, mode: &str, label: &str) -> Child {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let log = std::fs::File::create(dir.join(format!("run-{label}.log"))).unwrap();
        Command::new(env!("CARGO_BIN_EXE_analytics"))
            .args(["run", "--mode", mode, "--project"])
            .arg(dir)
            .env("TMPDIR", &tmp)
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("ANALYTICS_LOG", "info,analytics=debug")
            .env("ICEBERG_REST_ENDPOINT", &self.catalog.url)
            .env("ICEBERG_WAREHOUSE", "s3://warehouse")
            .env("ICEBERG_CREDENTIAL", "admin:secretkey")
            .env("AWS_ENDPOINT_URL_S3", &self.s3.url)
            .env("AWS_ACCESS_KEY_ID", "admin")
            .env("AWS_SECRET_ACCESS_KEY", "secretkey")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &self.github.url)
            .env("GITHUB_REPOSITORY", "nem/dashboard")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Runs a mode to the end: Ok(seconds) or Err(its output).
    fn run(&self, dir: &Path, mode: &str, label: &str) -> Result<f64, String> {
        let started = Instant::now();
        let status = self.spawn(dir, mode, label).wait().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let log = std::fs::read_to_string(dir.join(format!("run-{label}.log"))).unwrap();
        if status.success() {
            Ok(seconds)
        } else {
            Err(format!("{mode} failed ({status}):\n{log}"))
        }
    }

    /// Runs intraday on `dir` (output in `run-<label>.log`) with `proxy`
    /// holding the request `hold` and `matcher` select, kills the run while
    /// it is held, and drops it. Err when the run ended before (its status).
    fn kill_held(
        &self,
        dir: &Path,
        label: &str,
        proxy: &Proxy,
        hold: Hold,
        matcher: BoxedMatcher,
    ) -> Result<(), String> {
        proxy.hold(hold, matcher);
        let mut child = self.spawn(dir, "intraday", label);
        let killed = proxy.wait_held(1, || child.try_wait().unwrap().is_some());
        let _ = child.kill();
        let status = child.wait().unwrap();
        let ended = format!("ended by itself: {status}; {:?}", proxy.seen().len());
        proxy.clear(Release::Drop);
        proxy.wait_idle();
        if killed { Ok(()) } else { Err(ended) }
    }

    /// An uninterrupted intraday run in its own namespace: the rows every
    /// trial must end with, and how many requests of each kind a run makes.
    fn reference(&self) -> (BTreeMap<String, (i64, i64)>, Calls, f64) {
        let matchers: [(&Proxy, Matcher); 3] = [
            (&self.catalog, |m, p, b| is_commit(m, p, b, None)),
            (&self.s3, |m, p, _| is_data_put(m, p)),
            (&self.github, is_publish_write),
        ];
        // Count the matching requests without holding any.
        for (proxy, matcher) in &matchers {
            proxy.hold(Hold::Barrier(0), *matcher);
        }
        let before: Vec<usize> = (0..3).map(|w| self.proxy(w).seen().len()).collect();
        self.fresh_file_log();
        let dir = self.project("nem_ref");
        let seconds = self.run(dir.path(), "intraday", "ref").unwrap();
        let requests = [0, 1, 2].map(|w| self.proxy(w).seen().len() - before[w as usize]);
        let calls = Calls {
            requests,
            commits: self.catalog.matched().len(),
            data_puts: self.s3.matched().len(),
            publish: self.github.matched().len(),
        };
        for w in 0..3 {
            self.proxy(w).clear(Release::Forward);
        }
        let counts = pyiceberg_counts(&self.sw, "nem_ref");
        assert!(
            counts.get("fct_scada").is_some_and(|c| c.0 > 0),
            "{counts:?}"
        );
        assert!(
            calls.data_puts > 0 && calls.commits > 0 && calls.publish > 0,
            "{calls:?}"
        );
        (counts, calls, seconds)
    }

    /// One trial: run intraday in `namespace`, kill it at `point`, rerun,
    /// compare with `expected`, maintain, look for unreferenced files.
    fn trial(
        &self,
        namespace: &str,
        point: Point,
        expected: &BTreeMap<String, (i64, i64)>,
    ) -> Outcome {
        let dir = self.project(namespace);
        let mut outcome = Outcome::default();
        self.fresh_file_log();
        let held: Option<(&Proxy, Hold, BoxedMatcher)> = match point {
            Point::DataPut(k) => Some((
                &self.s3,
                Hold::Before(k),
                Box::new(|m: &str, p: &str, _: &[u8]| is_data_put(m, p)),
            )),
            Point::CommitBefore(k) => Some((
                &self.catalog,
                Hold::Before(k),
                Box::new(|m: &str, p: &str, b: &[u8]| is_commit(m, p, b, None)),
            )),
            Point::CommitAfter(k) => Some((
                &self.catalog,
                Hold::After(k),
                Box::new(|m: &str, p: &str, b: &[u8]| is_commit(m, p, b, None)),
            )),
            Point::Publish(k) => Some((&self.github, Hold::Before(k), Box::new(is_publish_write))),
            Point::Request(w, k, after) => Some((
                self.proxy(w),
                if after {
                    Hold::After(k)
                } else {
                    Hold::Before(k)
                },
                Box::new(|_: &str, _: &str, _: &[u8]| true),
            )),
            Point::Time(_) => None,
        };
        let started = Instant::now();
        match (held, point) {
            (Some((proxy, hold, matcher)), _) => {
                match self.kill_held(dir.path(), "killed", proxy, hold, matcher) {
                    Ok(()) => outcome.killed = true,
                    Err(e) => outcome.errors.push(e),
                }
            }
            (None, Point::Time(ms)) => {
                let mut child = self.spawn(dir.path(), "intraday", "killed");
                let deadline = started + Duration::from_millis(ms);
                // Polls the child until the kill time (a kill point, not a
                // synchronisation: whatever the run is doing then is the point).
                while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                outcome.killed = child.try_wait().unwrap().is_none();
                let _ = child.kill();
                child.wait().unwrap();
            }
            _ => unreachable!(),
        }
        outcome.seconds[0] = started.elapsed().as_secs_f64();
        outcome.killed_log = std::fs::read_to_string(dir.path().join("run-killed.log")).unwrap();
        match self.run(dir.path(), "intraday", "rerun") {
            Ok(s) => outcome.seconds[1] = s,
            Err(e) => outcome.errors.push(e),
        }
        let stored = pyiceberg_counts(&self.sw, namespace);
        for (table, (rows, keys)) in expected {
            let (got_rows, got_keys) = stored.get(table).copied().unwrap_or((0, 0));
            if got_keys < *keys {
                outcome
                    .lost
                    .push(format!("{table}: {got_keys} keys of {keys}"));
            }
            // Rows per key as in the uninterrupted run (a table keyed by
            // another column than its first may repeat it there).
            if got_rows > *rows || got_rows - got_keys > rows - keys {
                outcome.duplicated.push(format!(
                    "{table}: {got_rows} rows, {got_keys} keys, {rows} expected"
                ));
            }
        }
        let unreferenced = || {
            let mut files = unreferenced_files(&self.sw, namespace);
            files.extend(unreferenced_files(&self.sw, "analytics_meta"));
            files
        };
        outcome.orphans_after_rerun = unreferenced().len();
        match self.run(dir.path(), "maintain", "maintain") {
            Ok(s) => outcome.seconds[2] = s,
            Err(e) => outcome.errors.push(e),
        }
        if pyiceberg_counts(&self.sw, namespace) != stored {
            outcome.errors.push("maintain changed the rows".into());
        }
        outcome.orphans_after_maintain = unreferenced();
        outcome
    }
}

/// The four kill points of issue 20, each at the middle request of its kind.
#[test]
fn killed_intraday_runs_converge_at_every_iceberg_kill_point() {
    let rig = Rig::start();
    let (expected, calls, _) = rig.reference();
    let points = [
        Point::DataPut(calls.data_puts.div_ceil(2)),
        Point::CommitBefore(calls.commits.div_ceil(2)),
        Point::CommitAfter(calls.commits.div_ceil(2)),
        Point::Publish(calls.publish.div_ceil(2)),
    ];
    let mut orphans_left = 0;
    for (i, point) in points.into_iter().enumerate() {
        let outcome = rig.trial(&format!("nem_kill{i}"), point, &expected);
        assert!(
            outcome.killed,
            "{point:?}: the run ended before the kill point: {:?}\n{}",
            outcome.errors, outcome.killed_log
        );
        assert!(outcome.converged(), "{point:?}: {outcome:#?}");
        orphans_left += outcome.orphans_after_rerun;
    }
    // A kill inside an upload or before a commit leaves files no snapshot
    // references (so the check above is not vacuous): maintain removed them.
    assert!(orphans_left > 0, "no kill left an unreferenced file");
}

/// Data files a commit request's new snapshot removes (its summary's
/// `deleted-data-files`; 0 for any other request).
fn deleted_data_files(body: &[u8]) -> usize {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    json["updates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["snapshot"]["summary"]["deleted-data-files"].as_str())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum()
}

/// Whether a request commits an upsert that folds the small files of its
/// day: only a fold removes `COMPACT_AT - 1` files at once in these runs
/// (an interval taken again replaces one file).
fn is_fold_commit(method: &str, path: &str, body: &[u8]) -> bool {
    is_commit(method, path, body, None) && deleted_data_files(body) >= COMPACT_AT - 1
}

/// Per table of `namespace`: its rows (count, and a digest of them sorted).
fn table_rows(sw: &SeaweedFs, namespace: &str) -> BTreeMap<String, String> {
    let script = format!(
        "import hashlib\n\
         for ns, t in c.list_tables('{namespace}'):\n\
         \x20   a = c.load_table(ns + '.' + t if isinstance(ns, str) else '.'.join(ns) + '.' + t).scan().to_arrow()\n\
         \x20   a = a.sort_by([(n, 'ascending') for n in a.column_names])\n\
         \x20   print(t, a.num_rows, hashlib.sha256(repr(a.to_pydict()).encode()).hexdigest())\n"
    );
    common::seaweedfs::pyiceberg(sw, &script)
        .lines()
        .map(|l| {
            let (table, rest) = l.split_once(' ').unwrap();
            (table.to_string(), rest.to_string())
        })
        .collect()
}

/// Intraday runs whose upserts fold small files (the `COMPACT_AT`-th
/// interval of the day) killed at each step of a fold, one run after the
/// other on the same tables (the example's upserts run fct_price, then
/// fct_scada, then the file log's, each folding): the fold's rewritten file
/// upload in flight; a folding commit sent but not at the catalog; a
/// folding commit applied, its answer lost (the table folded, the run's
/// file log not written: the next run takes the interval again and must
/// replace its rows inside the folded file); the next table's fold the
/// same way; the file log's commit (a fold too: its `taken_at` dates its
/// rows today) held before, then after, the catalog has it. Killed before
/// that commit, the run had committed every table: they must hold the rows
/// of one uninterrupted run of the same intervals. A last run takes one
/// more interval, and only it; the tables must then hold the rows of one
/// uninterrupted run exactly, the file log each file once, and `maintain`
/// find no unreferenced file. Breaking the fold (the folded files kept, or
/// removed in a snapshot of their own) fails it.
#[test]
fn killed_intraday_runs_converge_while_their_upserts_fold() {
    let intervals = COMPACT_AT + 1;
    let sample = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("example-project/sample"), sample.path());
    list_first(sample.path(), intervals);
    let rig = Rig::serving(nemweb_from(sample.path().to_path_buf()));
    // The rows of one run taking the first `COMPACT_AT` intervals at once,
    // then of all the intervals (one more run).
    rig.fresh_file_log();
    let reference = rig.project("nem_foldref");
    list_first(sample.path(), COMPACT_AT);
    rig.run(reference.path(), "intraday", "ref").unwrap();
    let expected_at_fold = table_rows(&rig.sw, "nem_foldref");
    assert!(
        expected_at_fold.contains_key("fct_scada"),
        "{expected_at_fold:?}"
    );
    list_first(sample.path(), intervals);
    rig.run(reference.path(), "intraday", "ref2").unwrap();
    let expected = table_rows(&rig.sw, "nem_foldref");

    // One interval a run: `COMPACT_AT - 1` small files of the day per table.
    rig.fresh_file_log();
    let dir = rig.project("nem_fold");
    for n in 1..COMPACT_AT {
        list_first(sample.path(), n);
        rig.run(dir.path(), "intraday", &format!("cycle{n}"))
            .unwrap();
    }
    // The next interval folds them; each run is killed in a fold.
    list_first(sample.path(), COMPACT_AT);
    let file_log_commit = |m: &str, p: &str, b: &[u8]| is_commit(m, p, b, Some("file_log"));
    let points: [(&str, &Proxy, Hold, BoxedMatcher); 6] = [
        // The first upsert's new rows are the first upload of a model
        // table, its fold's rewrite of the small files the second.
        (
            "fold upload",
            &rig.s3,
            Hold::Before(2),
            Box::new(|m: &str, p: &str, _: &[u8]| is_data_put(m, p) && p.contains("/fct_")),
        ),
        (
            "fold commit sent",
            &rig.catalog,
            Hold::Before(1),
            Box::new(is_fold_commit),
        ),
        (
            "fold committed",
            &rig.catalog,
            Hold::After(1),
            Box::new(is_fold_commit),
        ),
        (
            "next fold committed",
            &rig.catalog,
            Hold::After(1),
            Box::new(is_fold_commit),
        ),
        (
            "file log fold sent",
            &rig.catalog,
            Hold::Before(1),
            Box::new(file_log_commit),
        ),
        (
            "file log fold committed",
            &rig.catalog,
            Hold::After(1),
            Box::new(file_log_commit),
        ),
    ];
    let mut logs = String::new();
    for (i, (what, proxy, hold, matcher)) in points.into_iter().enumerate() {
        let label = format!("killed{i}");
        let killed = rig.kill_held(dir.path(), &label, proxy, hold, matcher);
        let log = std::fs::read_to_string(dir.path().join(format!("run-{label}.log"))).unwrap();
        assert!(killed.is_ok(), "{what}: not reached: {killed:?}\n{log}");
        logs.push_str(&format!("--- {what}\n{log}"));
        // Killed before its file log commit, the run had committed every
        // table: they hold the first `COMPACT_AT` intervals exactly (the
        // file log's own kills come next: a file log that lost its rows
        // would make the last run take every interval again and hide a
        // table's loss).
        if what == "file log fold sent" {
            let stored = table_rows(&rig.sw, "nem_fold");
            assert_eq!(stored, expected_at_fold, "after {what}:\n{logs}");
        }
    }
    // The last run takes the one new interval of each source, no other.
    list_first(sample.path(), intervals);
    rig.run(dir.path(), "intraday", "rerun").unwrap();
    let last = std::fs::read_to_string(dir.path().join("run-rerun.log")).unwrap();
    for source in ["scada", "price"] {
        assert!(
            last.lines()
                .any(|l| l.starts_with(&format!("source {source} "))
                    && l.contains("taken     1 of     1 new")),
            "{last}\n{logs}"
        );
    }

    let stored = table_rows(&rig.sw, "nem_fold");
    assert_eq!(stored, expected, "{logs}");
    // Every interval file taken is in the file log once: all the intervals
    // of both sources.
    let log = common::seaweedfs::pyiceberg(
        &rig.sw,
        "a = c.load_table('analytics_meta.file_log').scan().to_arrow()\n\
         for s, f in sorted(zip(a.column('source').to_pylist(), a.column('file_name').to_pylist())):\n\
         \x20   if s in ('price', 'scada'):\n\
         \x20       print(s, f)\n",
    );
    let mut listed = Vec::new();
    for (source, folder) in [("price", "intraday_price"), ("scada", "intraday_scada")] {
        let names = common::nem::zip_names(&sample.path().join(folder));
        listed.extend(names[..intervals].iter().map(|n| format!("{source} {n}")));
    }
    assert_eq!(log.lines().collect::<Vec<_>>(), listed, "{logs}");
    // The folds the killed runs committed are in the tables' history: a
    // snapshot of each removing the `COMPACT_AT - 1` small files.
    let folds = common::seaweedfs::pyiceberg(
        &rig.sw,
        "for t in ['fct_scada', 'fct_price']:\n\
         \x20   for s in c.load_table('nem_fold.' + t).metadata.snapshots:\n\
         \x20       print(t, s.summary.get('deleted-data-files', '0'))\n",
    );
    for table in ["fct_scada", "fct_price"] {
        assert!(
            folds.lines().any(|l| l
                .strip_prefix(&format!("{table} "))
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= COMPACT_AT - 1)),
            "{table} never folded: {folds}"
        );
    }
    // Killed uploads and commits left files behind; `maintain` removes
    // them and changes no row.
    let unreferenced = || {
        let mut files = unreferenced_files(&rig.sw, "nem_fold");
        files.extend(unreferenced_files(&rig.sw, "analytics_meta"));
        files
    };
    assert!(!unreferenced().is_empty(), "no kill left a file behind");
    rig.run(dir.path(), "maintain", "maintain").unwrap();
    assert_eq!(unreferenced(), Vec::<String>::new());
    assert_eq!(table_rows(&rig.sw, "nem_fold"), expected);
}

/// `KILL_TRIALS` (default 20) trials at seeded random points (`KILL_SEED`,
/// default from the clock; printed): the exact points above at a random
/// request, any request to any proxy, and random times. Prints a summary;
/// fails if any trial lost, doubled or left files behind.
#[test]
#[ignore = "a benchmark: bench/kill_trials runs it"]
fn random_kill_trials() {
    use rand::{Rng, SeedableRng};
    let trials: usize = std::env::var("KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    println!("kill trials: seed {seed}, {trials} trials");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let rig = Rig::start();
    let (expected, calls, ref_seconds) = rig.reference();
    println!("reference intraday run: {ref_seconds:.2} s, {calls:?}, rows {expected:?}");
    let mut rows = Vec::new();
    for i in 0..trials {
        let point = match i % 6 {
            0 => Point::DataPut(rng.random_range(1..=calls.data_puts)),
            1 => Point::CommitBefore(rng.random_range(1..=calls.commits)),
            2 => Point::CommitAfter(rng.random_range(1..=calls.commits)),
            3 => Point::Publish(rng.random_range(1..=calls.publish)),
            4 => {
                let w = rng.random_range(0..3u8);
                let k = rng.random_range(1..=calls.requests[w as usize]);
                Point::Request(w, k, rng.random_bool(0.5))
            }
            _ => Point::Time(rng.random_range(0..=(ref_seconds * 1000.0) as u64)),
        };
        let outcome = rig.trial(&format!("nem_trial{i}"), point, &expected);
        println!(
            "trial {i:>3} {:<14} {point:?}: killed {} converged {} lost {} duplicated {} orphans after rerun {} after maintain {} errors {} ({:.2} s killed run, {:.2} s rerun, {:.2} s maintain)",
            point.kind(),
            outcome.killed,
            outcome.converged(),
            outcome.lost.len(),
            outcome.duplicated.len(),
            outcome.orphans_after_rerun,
            outcome.orphans_after_maintain.len(),
            outcome.errors.len(),
            outcome.seconds[0],
            outcome.seconds[1],
            outcome.seconds[2],
        );
        if !outcome.converged() {
            println!("  {outcome:#?}");
        }
        rows.push((point, outcome));
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| rows.iter().filter(|(_, o)| f(o)).count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (p, _) in &rows {
        *kinds.entry(p.kind()).or_default() += 1;
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = rows.iter().map(|(_, o)| o.seconds[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "SUMMARY seed {seed}: {} trials ({} killed at their point, the rest ended first); kill points {kinds:?}; converged {}, lost {}, duplicated {}, orphans after rerun {} trials ({} files), orphans after maintain {}, errors {}; median s: killed run {:.2}, rerun {:.2}, maintain {:.2}; reference run {ref_seconds:.2}",
        rows.len(),
        count(&|o| o.killed),
        count(&|o| o.converged()),
        count(&|o| !o.lost.is_empty()),
        count(&|o| !o.duplicated.is_empty()),
        count(&|o| o.orphans_after_rerun > 0),
        rows.iter()
            .map(|(_, o)| o.orphans_after_rerun)
            .sum::<usize>(),
        count(&|o| !o.orphans_after_maintain.is_empty()),
        count(&|o| !o.errors.is_empty()),
        median(0),
        median(1),
        median(2),
    );
    assert_eq!(
        count(&|o| o.converged()),
        rows.len(),
        "not every trial converged"
    );
}
