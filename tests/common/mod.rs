//! Helpers shared by the integration tests: throwaway projects and running the
//! real `analytics` binary.
#![allow(dead_code)]

pub mod github;
pub mod http;
pub mod nem;
pub mod proxy;
pub mod seaweedfs;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A project in a temporary folder, written file by file.
pub struct TempProject {
    pub dir: tempfile::TempDir,
}

impl TempProject {
    /// A project named `p` with the given `dbt_project.yml` extra lines.
    pub fn new(dbt_project_extra: &str) -> TempProject {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dbt_project.yml"),
            format!("name: p\n{dbt_project_extra}"),
        )
        .unwrap();
        TempProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (creating folders).
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Runs `analytics <args> --project <dir>`.
    pub fn run(&self, args: &[&str]) -> Output {
        analytics(args, self.path())
    }

    /// Opens the DuckDB file target `rel` read-only.
    pub fn db(&self, rel: &str) -> duckdb::Connection {
        let cfg = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap();
        duckdb::Connection::open_with_flags(self.path().join(rel), cfg).unwrap()
    }
}

/// Runs the real binary with `args` plus `--project project`.
pub fn analytics(args: &[&str], project: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .arg("--project")
        .arg(project)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

/// stdout + stderr as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One integer from a query.
pub fn int(conn: &duckdb::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
