//! A real SeaweedFS (S3 + Iceberg REST catalog) on free loopback ports, for
//! warehouse tests. `scripts/setup-seaweedfs` installs `weed` (and pyiceberg,
//! the independent reader) into `.venv-seaweedfs`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running `weed mini`; killed when dropped.
pub struct SeaweedFs {
    child: Child,
    _dir: tempfile::TempDir,
    /// The Iceberg REST catalog URL.
    pub catalog: String,
    /// The S3 endpoint URL.
    pub s3: String,
}

/// Runs SQL with DuckDB's iceberg extension against this catalog (tables as
/// `lake.<namespace>.<table>`); one line per row.
pub fn duckdb_iceberg(sw: &SeaweedFs, sql: &str) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg(super::repo_root().join("tests/common/duckdb_iceberg.py"))
        .args([&sw.catalog, &sw.s3, sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb-iceberg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Row count of `namespace.table` as pyiceberg reads it.
pub fn pyiceberg_rows(sw: &SeaweedFs, table: &str) -> i64 {
    let script = format!(
        "from pyiceberg.catalog.rest import RestCatalog\n\
         c = RestCatalog('x', uri='{}', credential='admin:secretkey', warehouse='s3://warehouse', \
         **{{'s3.endpoint': '{}', 's3.access-key-id': 'admin', 's3.secret-access-key': 'secretkey', \
         's3.region': 'us-east-1', 's3.path-style-access': 'true'}})\n\
         print(c.load_table('{table}').scan().to_arrow().num_rows)\n",
        sw.catalog, sw.s3
    );
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyiceberg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The venv that `scripts/setup-seaweedfs` creates.
pub fn venv() -> PathBuf {
    super::repo_root().join(".venv-seaweedfs")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SeaweedFs {
    /// Starts SeaweedFS with bucket `warehouse` and credential `admin:secretkey`.
    pub fn start() -> SeaweedFs {
        let weed = venv().join("bin/weed");
        assert!(
            weed.is_file(),
            "no {}: run scripts/setup-seaweedfs",
            weed.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let (iceberg, s3) = (free_port(), free_port());
        let mut flags = vec![("s3.port.iceberg", iceberg), ("s3.port", s3)];
        for name in [
            "master.port",
            "master.port.grpc",
            "volume.port.grpc",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port.grpc",
            "volume.port",
            "filer.port",
            "admin.port",
            "debug.port",
        ] {
            flags.push((name, free_port()));
        }
        let child = Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-tableBucket=warehouse",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .args(flags.iter().map(|(k, v)| format!("-{k}={v}")))
            .env("AWS_ACCESS_KEY_ID", "admin")
            .env("AWS_SECRET_ACCESS_KEY", "secretkey")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = SeaweedFs {
            child,
            _dir: dir,
            catalog: format!("http://127.0.0.1:{iceberg}"),
            s3: format!("http://127.0.0.1:{s3}"),
        };
        let started = std::time::Instant::now();
        // Ready when the catalog answers its config endpoint and S3 accepts connections.
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", s3)).is_ok()
                && Command::new("curl")
                    .args(["-sf", &format!("{}/v1/config", server.catalog)])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(started.elapsed().as_secs() < 90, "SeaweedFS did not start");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        // The table bucket is created a moment after the ports open.
        loop {
            if server.bucket_ready() {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 90,
                "the SeaweedFS table bucket did not appear"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        server
    }

    /// Whether the catalog lists namespaces of the `warehouse` bucket.
    fn bucket_ready(&self) -> bool {
        let token = Command::new("curl")
            .args([
                "-sf",
                "-X",
                "POST",
                &format!("{}/v1/oauth/tokens", self.catalog),
                "-d",
                "grant_type=client_credentials&client_id=admin&client_secret=secretkey",
            ])
            .output();
        let Some(token) = token.ok().filter(|o| o.status.success()).and_then(|o| {
            serde_json::from_slice::<serde_json::Value>(&o.stdout)
                .ok()?
                .get("access_token")?
                .as_str()
                .map(str::to_string)
        }) else {
            return false;
        };
        Command::new("curl")
            .args([
                "-sf",
                "-H",
                &format!("Authorization: Bearer {token}"),
                &format!("{}/v1/warehouse/namespaces", self.catalog),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
