//! The example project served the way NEMWEB and GitHub serve the real
//! files, from its `sample/` folder, for the warehouse tests.

use super::http::{Reply, TestServer};
use super::repo_root;
use super::seaweedfs::{SeaweedFs, pyiceberg};
use std::collections::BTreeMap;
use std::path::Path;

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Serves the example's sample files the way NEMWEB and GitHub serve the real
/// ones: NEMWEB listings, the unit coordinates file, and GitHub's contents
/// API over the registration workbooks and the history archive (whose 2024
/// folder holds the same daily reports NEMWEB offers, so a backfill takes
/// each market day from both feeds and must keep it once).
pub fn nemweb() -> TestServer {
    nemweb_from(repo_root().join("example-project/sample"))
}

/// [`nemweb`] over a copy of the sample folder (a test that edits its
/// listings publishes files one at a time).
pub fn nemweb_from(sample: std::path::PathBuf) -> TestServer {
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let b2 = base.clone();
    let server = TestServer::start(move |path, _| {
        let base = b2.get().cloned().unwrap_or_default();
        let folders = [
            ("/Reports/Current/Daily_Reports/", "daily"),
            ("/Reports/Current/Dispatch_SCADA/", "intraday_scada"),
            ("/Reports/Current/DispatchIS_Reports/", "intraday_price"),
            ("/raw/daily/", "daily"),
            ("/raw/registration/", "reference/registration"),
        ];
        for (prefix, folder) in folders {
            if let Some(rest) = path.strip_prefix(prefix) {
                let file = if rest.is_empty() { "index.html" } else { rest };
                return match std::fs::read(sample.join(folder).join(file)) {
                    Ok(bytes) => Reply::ok(bytes),
                    Err(_) => Reply::status(404),
                };
            }
        }
        // The contents API: a JSON list of the folder's files.
        let contents = |folder: &str, raw: &str, suffix: &str| {
            let mut names: Vec<String> = std::fs::read_dir(sample.join(folder))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect();
            names.sort();
            let list: Vec<_> = names
                .iter()
                .map(|n| {
                    serde_json::json!({"type": "file", "name": n,
                    "download_url": format!("{base}/raw/{raw}/{n}")})
                })
                .collect();
            Reply::ok(serde_json::to_vec(&list).unwrap())
        };
        match path.split('?').next().unwrap_or_default() {
            "/ref/geo_data.csv" => {
                Reply::ok(std::fs::read(sample.join("reference/geo_data.csv")).unwrap())
            }
            "/repos/djouallah/aemo_data/contents/data/duid/registration" => {
                contents("reference/registration", "registration", ".xls")
            }
            "/repos/djouallah/aemo_data/contents/data/archive/2024" => {
                contents("daily", "daily", ".zip")
            }
            _ => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    server
}

/// The `.zip` files in `dir`, by name (oldest first for NEMWEB's names).
pub fn zip_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zip"))
        .collect();
    names.sort();
    names
}

/// Rewrites the SCADA and DispatchIS listings to link their first `n` files
/// (oldest first), as NEMWEB's folder looks when the `n`th was just published.
pub fn list_first(sample: &Path, n: usize) {
    for folder in ["intraday_scada", "intraday_price"] {
        let dir = sample.join(folder);
        let names = zip_names(&dir);
        assert!(names.len() >= n, "{folder} holds {} files", names.len());
        let links: String = names[..n]
            .iter()
            .map(|f| format!("<A HREF=\"{f}\">{f}</A><br>"))
            .collect();
        std::fs::write(
            dir.join("index.html"),
            format!("<html><body><pre>{links}</pre></body></html>"),
        )
        .unwrap();
    }
}

/// A copy of the example project reading from `server`, storing in namespace `schema`.
pub fn project(server: &TestServer, schema: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("example-project"), dir.path());
    let yml = dir.path().join("analytics.yml");
    let text = std::fs::read_to_string(&yml)
        .unwrap()
        .replace("https://nemweb.com.au", &server.base)
        .replace(
            "https://raw.githubusercontent.com/djouallah/aemo_fabric/refs/heads/main/geo_data.csv",
            &format!("{}/ref/geo_data.csv", server.base),
        )
        .replace(
            "    repo: djouallah/aemo_data\n",
            &format!("    repo: djouallah/aemo_data\n    url: {}\n", server.base),
        )
        .replace("schema: nem", &format!("schema: {schema}"));
    std::fs::write(&yml, text).unwrap();
    dir
}

/// Per table of `namespace`: (rows, distinct grain keys) as pyiceberg reads them.
pub fn pyiceberg_counts(sw: &SeaweedFs, namespace: &str) -> BTreeMap<String, (i64, i64)> {
    let script = format!(
        "keys = {{'fct_scada': ['settlementdate', 'duid'], 'fct_price': ['settlementdate', 'region_id'], \
         'dim_duid': ['duid'], 'dim_calendar': ['date']}}\n\
         for ns, t in c.list_tables('{namespace}'):\n\
         \x20   a = c.load_table(ns + '.' + t if isinstance(ns, str) else '.'.join(ns) + '.' + t).scan().to_arrow()\n\
         \x20   k = keys.get(t, a.column_names[:1])\n\
         \x20   distinct = len(set(zip(*[a.column(x).to_pylist() for x in k])))\n\
         \x20   print(t, a.num_rows, distinct)\n"
    );
    pyiceberg(sw, &script)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect()
}

/// Files under each table's location of `namespace` that no snapshot of the
/// table references (manifest lists, manifests, data files of any entry),
/// as `table path`; table metadata files (`*.metadata.json`, the catalog's)
/// are not counted.
pub fn unreferenced_files(sw: &SeaweedFs, namespace: &str) -> Vec<String> {
    let script = format!(
        "import pyarrow.fs as pafs\n\
         fs = pafs.S3FileSystem(endpoint_override='{endpoint}', scheme='http', access_key='admin', \
         secret_key='secretkey', region='us-east-1')\n\
         for ns, t in c.list_tables('{namespace}'):\n\
         \x20   tb = c.load_table(ns + '.' + t if isinstance(ns, str) else '.'.join(ns) + '.' + t)\n\
         \x20   used = set()\n\
         \x20   for s in tb.metadata.snapshots:\n\
         \x20       used.add(s.manifest_list)\n\
         \x20       for m in s.manifests(tb.io):\n\
         \x20           used.add(m.manifest_path)\n\
         \x20           for e in m.fetch_manifest_entry(tb.io, discard_deleted=False):\n\
         \x20               used.add(e.data_file.file_path)\n\
         \x20   base = tb.location().split('://', 1)[1].rstrip('/')\n\
         \x20   for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):\n\
         \x20       path = 's3://' + info.path\n\
         \x20       if info.type == pafs.FileType.File and path not in used and not path.endswith('.metadata.json'):\n\
         \x20           print(t, path)\n",
        endpoint = sw.s3.trim_start_matches("http://"),
    );
    pyiceberg(sw, &script).lines().map(str::to_string).collect()
}
