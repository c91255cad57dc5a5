//! Files under a table's location that no snapshot references: the data
//! files, manifests and manifest lists of writes that never committed (a
//! process killed during an upload or before its commit, a failed write
//! whose cleanup did not run). Expiry cannot find them, since no snapshot
//! ever named them; they are found by listing the table's location and
//! deleted once older than `orphan_after_hours` (a younger file may belong
//! to a write still in progress, whose commit would then miss it).

use super::Warehouse;
use super::maintain::{MaintainReport, reachable};
use anyhow::{Context, Result, anyhow};
use iceberg::table::Table;

/// Only these are ours to judge: data files and Avro metadata (manifests,
/// manifest lists). Table metadata files belong to the catalog.
fn is_judged(path: &str) -> bool {
    path.ends_with(".parquet") || path.ends_with(".avro")
}

/// An S3 operator for the table's bucket, with the table's storage settings
/// (the catalog's vended credentials included).
fn operator(table: &Table) -> Result<(opendal::Operator, String, String)> {
    let location = table.metadata().location().trim_end_matches('/');
    let (scheme, rest) = location
        .split_once("://")
        .with_context(|| format!("the table location `{location}` has no scheme"))?;
    anyhow::ensure!(
        matches!(scheme, "s3" | "s3a"),
        "listing `{scheme}://` locations is not supported"
    );
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let props = table.file_io().config().props();
    let get = |k: &str| props.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut builder = opendal::services::S3::default()
        .bucket(bucket)
        .root("/")
        .disable_config_load()
        .disable_ec2_metadata();
    if let Some(v) = get("s3.endpoint") {
        builder = builder.endpoint(v);
    }
    if let Some(v) = get("s3.region").or(get("client.region")) {
        builder = builder.region(v);
    }
    if let Some(v) = get("s3.access-key-id") {
        builder = builder.access_key_id(v);
    }
    if let Some(v) = get("s3.secret-access-key") {
        builder = builder.secret_access_key(v);
    }
    if let Some(v) = get("s3.session-token") {
        builder = builder.session_token(v);
    }
    let path_style = get("s3.path-style-access")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "t" | "1" | "on"));
    if !path_style {
        builder = builder.enable_virtual_host_style();
    }
    let op = opendal::Operator::new(builder)
        .map_err(|e| anyhow!("opening the table's storage: {e}"))?
        .finish();
    Ok((op, format!("{scheme}://{bucket}/"), format!("{prefix}/")))
}

impl Warehouse {
    /// Deletes the files under `table`'s location that no snapshot
    /// references and that are older than `older_than_hours`.
    pub(super) fn remove_orphans(
        &self,
        table: &Table,
        older_than_hours: u64,
        report: &mut MaintainReport,
    ) -> Result<()> {
        let ids: Vec<i64> = table
            .metadata()
            .snapshots()
            .map(|s| s.snapshot_id())
            .collect();
        let used = self.runtime.block_on(reachable(table, &ids))?;
        let (op, root, prefix) = operator(table)?;
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(older_than_hours)
                .unwrap_or(i64::MAX / 3_600_000)
                .saturating_mul(3_600_000);
        self.runtime.block_on(async {
            let entries = op
                .list_with(&prefix)
                .recursive(true)
                .await
                .map_err(|e| anyhow!("listing {root}{prefix}: {e}"))?;
            for entry in entries {
                let meta = entry.metadata();
                if !meta.is_file() {
                    continue;
                }
                let path = format!("{root}{}", entry.path().trim_start_matches('/'));
                if !is_judged(&path) || used.contains_key(&path) {
                    continue;
                }
                let old_enough = match meta.last_modified() {
                    Some(t) => t.into_inner().as_millisecond() <= cutoff,
                    // Unknown age: only when asked to delete at any age.
                    None => older_than_hours == 0,
                };
                if !old_enough {
                    continue;
                }
                op.delete(entry.path())
                    .await
                    .map_err(|e| anyhow!("deleting {path}: {e}"))?;
                report.files_deleted += 1;
                report.bytes_deleted += meta.content_length();
            }
            Ok(())
        })
    }
}
