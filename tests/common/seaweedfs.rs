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

/// Runs a pyiceberg script against this catalog (`c` is the connected
/// `RestCatalog`); the process output, whatever its status.
pub fn pyiceberg_output(sw: &SeaweedFs, body: &str) -> std::process::Output {
    let script = format!(
        "from pyiceberg.catalog.rest import RestCatalog\n\
         c = RestCatalog('x', uri='{}', credential='admin:secretkey', warehouse='s3://warehouse', \
         **{{'s3.endpoint': '{}', 's3.access-key-id': 'admin', 's3.secret-access-key': 'secretkey', \
         's3.region': 'us-east-1', 's3.path-style-access': 'true'}})\n{body}",
        sw.catalog, sw.s3
    );
    Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap()
}

/// Runs a pyiceberg script (see [`pyiceberg_output`]) that must succeed;
/// its stdout.
pub fn pyiceberg(sw: &SeaweedFs, body: &str) -> String {
    let out = pyiceberg_output(sw, body);
    assert!(
        out.status.success(),
        "pyiceberg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Row count of `namespace.table` as pyiceberg reads it.
pub fn pyiceberg_rows(sw: &SeaweedFs, table: &str) -> i64 {
    pyiceberg(
        sw,
        &format!("print(c.load_table('{table}').scan().to_arrow().num_rows)\n"),
    )
    .trim()
    .parse()
    .unwrap()
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
    /// A start that fails (another process took a port between our probe and
    /// weed's bind, or a start slowed down by a loaded machine) is retried on
    /// fresh ports.
    pub fn start() -> SeaweedFs {
        let weed = venv().join("bin/weed");
        assert!(
            weed.is_file(),
            "no {}: run scripts/setup-seaweedfs",
            weed.display()
        );
        let mut log = String::new();
        for attempt in 1..=3 {
            match Self::try_start(&weed) {
                Ok(server) => return server,
                Err(why) => log.push_str(&format!("attempt {attempt}: {why}\n")),
            }
        }
        panic!("SeaweedFS did not start:\n{log}");
    }

    fn try_start(weed: &std::path::Path) -> Result<SeaweedFs, String> {
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
        let log_path = dir.path().join("weed.log");
        let log_file = std::fs::File::create(&log_path).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let child = Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
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
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut server = SeaweedFs {
            child,
            _dir: dir,
            catalog: format!("http://127.0.0.1:{iceberg}"),
            s3: format!("http://127.0.0.1:{s3}"),
        };
        let started = std::time::Instant::now();
        let tail = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        };
        // Ready when the catalog answers its config endpoint, S3 accepts
        // connections, and the table bucket (created a moment later) lists.
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("weed exited ({status}): {}", tail()));
            }
            let ready = std::net::TcpStream::connect(("127.0.0.1", s3)).is_ok()
                && Command::new("curl")
                    .args(["-sf", &format!("{}/v1/config", server.catalog)])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                && server.bucket_ready();
            if ready {
                return Ok(server);
            }
            if started.elapsed().as_secs() > 60 {
                return Err(format!("not ready after 60 s: {}", tail()));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
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
