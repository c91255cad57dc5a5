//! Building a snapshot by hand: one manifest of ADDED files, the manifests
//! that held rewritten files re-listed with those files DELETED (the rest
//! EXISTING), every other manifest carried over untouched, a manifest list,
//! and the commit with the requirements that make it safe under concurrency.

use super::rest::{CommitClient, CommitOutcome};
use anyhow::{Result, anyhow};
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{
    DataFile, DataFileFormat, FormatVersion, ManifestContentType, ManifestFile, ManifestListWriter,
    ManifestWriter, ManifestWriterBuilder, Operation, Snapshot, SnapshotReference,
    SnapshotRetention, Summary,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use std::collections::{HashMap, HashSet};

/// Data manifests a snapshot may list before they are merged into one.
const MERGE_MANIFESTS_AT: usize = 32;
/// The snapshot summary property holding a replace's rows fingerprint.
pub const FINGERPRINT_PROPERTY: &str = "analytics.rows-fingerprint";
/// Manifests read at once when listing the live files.
const PARALLEL_MANIFESTS: usize = 16;

/// A data file that is live in the table's current snapshot.
#[derive(Clone, Debug)]
pub struct LiveFile {
    /// The file's manifest entry (bounds, size, rows).
    pub data_file: DataFile,
}

/// Every live data file of the current snapshot (reads manifests, not data).
pub async fn live_files(table: &Table) -> Result<Vec<LiveFile>> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(|e| anyhow!("reading the manifest list: {e}"))?;
    // Several manifests at once: a table written every few minutes lists
    // up to MERGE_MANIFESTS_AT of them, each one round trip to storage.
    let loaded: Vec<_> = futures::stream::iter(
        list.entries()
            .iter()
            .filter(|m| m.content == ManifestContentType::Data),
    )
    .map(|manifest| async move {
        manifest
            .load_manifest(table.file_io())
            .await
            .map_err(|e| anyhow!("reading manifest {}: {e}", manifest.manifest_path))
    })
    .buffered(PARALLEL_MANIFESTS)
    .try_collect()
    .await?;
    let mut files = Vec::new();
    for loaded in &loaded {
        for entry in loaded.entries() {
            if entry.is_alive() {
                files.push(LiveFile {
                    data_file: entry.data_file().clone(),
                });
            }
        }
    }
    Ok(files)
}

/// What a snapshot changes.
pub struct SnapshotChange<'a> {
    /// New data files.
    pub added: Vec<DataFile>,
    /// Paths of live files this snapshot removes.
    pub deleted: &'a HashSet<String>,
    /// `append`, `overwrite` or `replace`.
    pub operation: Operation,
    /// The rows fingerprint of a replace, recorded in the summary.
    pub fingerprint: Option<String>,
}

fn random_snapshot_id(table: &Table) -> i64 {
    loop {
        let id = (rand::random::<u64>() >> 1) as i64;
        if id != 0 && !table.metadata().snapshots().any(|s| s.snapshot_id() == id) {
            return id;
        }
    }
}

fn manifest_writer(table: &Table, snapshot_id: i64, path: String) -> Result<ManifestWriter> {
    let output = table
        .file_io()
        .new_output(path)
        .map_err(|e| anyhow!("creating a manifest: {e}"))?;
    let builder = ManifestWriterBuilder::new(
        output,
        Some(snapshot_id),
        table.metadata().current_schema().clone(),
        table.metadata().default_partition_spec().as_ref().clone(),
    );
    Ok(match table.metadata().format_version() {
        FormatVersion::V1 => builder.build_v1(),
        FormatVersion::V2 => builder.build_v2_data(),
        FormatVersion::V3 => builder.build_v3_data(),
    })
}

/// Writes the manifests and manifest list for `change` on top of the table's
/// current snapshot and commits them. Returns the new snapshot id when the
/// catalog accepted it.
pub async fn commit(
    client: &CommitClient,
    table: &Table,
    change: SnapshotChange<'_>,
) -> Result<(CommitOutcome, i64)> {
    let metadata = table.metadata();
    let snapshot_id = random_snapshot_id(table);
    let sequence_number = metadata.next_sequence_number();
    let parent = metadata.current_snapshot_id();
    let commit_id = format!("{:032x}", rand::random::<u128>());
    let meta_dir = format!("{}/metadata", metadata.location());
    let mut manifest_counter = 0;
    let mut next_manifest_path = || {
        manifest_counter += 1;
        format!("{meta_dir}/{commit_id}-m{manifest_counter}.avro")
    };

    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut deleted_files = 0u64;
    let mut deleted_rows = 0u64;
    let mut removed_bytes = 0u64;
    if let Some(current) = metadata.current_snapshot() {
        let list = table
            .manifest_list_reader(current)
            .load()
            .await
            .map_err(|e| anyhow!("reading the manifest list: {e}"))?;
        for manifest in list.consume_entries() {
            let live = manifest.added_files_count.unwrap_or(1)
                + manifest.existing_files_count.unwrap_or(1);
            if live == 0 {
                // Only DELETED entries: already reported by an earlier snapshot.
                continue;
            }
            if change.deleted.is_empty() || manifest.content != ManifestContentType::Data {
                manifests.push(manifest);
                continue;
            }
            let loaded = manifest
                .load_manifest(table.file_io())
                .await
                .map_err(|e| anyhow!("reading manifest {}: {e}", manifest.manifest_path))?;
            let touched = loaded
                .entries()
                .iter()
                .any(|e| e.is_alive() && change.deleted.contains(e.file_path()));
            if !touched {
                manifests.push(manifest);
                continue;
            }
            let mut writer = manifest_writer(table, snapshot_id, next_manifest_path())?;
            for entry in loaded.entries().iter().filter(|e| e.is_alive()) {
                let seq = entry.sequence_number.unwrap_or(manifest.sequence_number);
                let file_seq = entry.file_sequence_number.or(Some(seq));
                if change.deleted.contains(entry.file_path()) {
                    deleted_files += 1;
                    deleted_rows += entry.record_count();
                    removed_bytes += entry.file_size_in_bytes();
                    writer
                        .add_delete_file(entry.data_file().clone(), seq, file_seq)
                        .map_err(|e| anyhow!("{e}"))?;
                } else {
                    writer
                        .add_existing_file(
                            entry.data_file().clone(),
                            entry.snapshot_id().unwrap_or(manifest.added_snapshot_id),
                            seq,
                            file_seq,
                        )
                        .map_err(|e| anyhow!("{e}"))?;
                }
            }
            manifests.push(
                writer
                    .write_manifest_file()
                    .await
                    .map_err(|e| anyhow!("writing a manifest: {e}"))?,
            );
        }
    }

    // Every commit adds a manifest; without merging, planning a write would
    // read more manifests every run. Past a bound, fold the data manifests
    // into one (entries kept as EXISTING with their sequence numbers).
    if manifests
        .iter()
        .filter(|m| m.content == ManifestContentType::Data)
        .count()
        >= MERGE_MANIFESTS_AT
    {
        let (data, other): (Vec<ManifestFile>, Vec<ManifestFile>) = manifests
            .into_iter()
            .partition(|m| m.content == ManifestContentType::Data);
        let mut writer = manifest_writer(table, snapshot_id, next_manifest_path())?;
        for manifest in &data {
            let loaded = manifest
                .load_manifest(table.file_io())
                .await
                .map_err(|e| anyhow!("reading manifest {}: {e}", manifest.manifest_path))?;
            for entry in loaded.entries().iter().filter(|e| e.is_alive()) {
                let seq = entry.sequence_number.unwrap_or(manifest.sequence_number);
                writer
                    .add_existing_file(
                        entry.data_file().clone(),
                        entry.snapshot_id().unwrap_or(manifest.added_snapshot_id),
                        seq,
                        entry.file_sequence_number.or(Some(seq)),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        manifests = other;
        manifests.push(
            writer
                .write_manifest_file()
                .await
                .map_err(|e| anyhow!("writing a merged manifest: {e}"))?,
        );
    }

    let added_files = change.added.len() as u64;
    let added_rows: u64 = change.added.iter().map(|f| f.record_count()).sum();
    let added_bytes: u64 = change.added.iter().map(|f| f.file_size_in_bytes()).sum();
    if !change.added.is_empty() {
        let mut writer = manifest_writer(table, snapshot_id, next_manifest_path())?;
        for file in change.added {
            writer.add_file(file, -1).map_err(|e| anyhow!("{e}"))?;
        }
        manifests.push(
            writer
                .write_manifest_file()
                .await
                .map_err(|e| anyhow!("writing a manifest: {e}"))?,
        );
    }

    let list_path = format!(
        "{meta_dir}/snap-{snapshot_id}-0-{commit_id}.{}",
        DataFileFormat::Avro
    );
    let output = table
        .file_io()
        .new_output(list_path.clone())
        .map_err(|e| anyhow!("creating the manifest list: {e}"))?
        .writer()
        .await
        .map_err(|e| anyhow!("creating the manifest list: {e}"))?;
    let mut list_writer = match metadata.format_version() {
        FormatVersion::V1 => ManifestListWriter::v1(output, snapshot_id, parent),
        FormatVersion::V2 => ManifestListWriter::v2(output, snapshot_id, parent, sequence_number),
        FormatVersion::V3 => ManifestListWriter::v3(
            output,
            snapshot_id,
            parent,
            sequence_number,
            Some(metadata.next_row_id()),
        ),
    };
    let (mut total_files, mut total_rows) = (0u64, 0u64);
    for m in &manifests {
        total_files += u64::from(m.added_files_count.unwrap_or(0))
            + u64::from(m.existing_files_count.unwrap_or(0));
        total_rows += m.added_rows_count.unwrap_or(0) + m.existing_rows_count.unwrap_or(0);
    }
    list_writer
        .add_manifests(manifests.into_iter())
        .map_err(|e| anyhow!("{e}"))?;
    let next_row_id = list_writer.next_row_id();
    list_writer
        .close()
        .await
        .map_err(|e| anyhow!("writing the manifest list: {e}"))?;

    let properties: HashMap<String, String> = [
        ("added-data-files", added_files),
        ("added-records", added_rows),
        ("added-files-size", added_bytes),
        ("removed-files-size", removed_bytes),
        ("deleted-data-files", deleted_files),
        ("deleted-records", deleted_rows),
        ("total-data-files", total_files),
        ("total-records", total_rows),
        ("total-delete-files", 0),
        ("total-position-deletes", 0),
        ("total-equality-deletes", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(
        change
            .fingerprint
            .map(|fp| (FINGERPRINT_PROPERTY.to_string(), fp)),
    )
    .collect();
    let builder = Snapshot::builder()
        .with_manifest_list(list_path.clone())
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent)
        .with_sequence_number(sequence_number)
        .with_summary(Summary {
            operation: change.operation,
            additional_properties: properties,
        })
        .with_schema_id(metadata.current_schema_id())
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis());
    let snapshot = match next_row_id {
        Some(next) => builder
            .with_row_range(metadata.next_row_id(), next - metadata.next_row_id())
            .build(),
        None => builder.build(),
    };
    let updates = [
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: "main".to_string(),
            reference: SnapshotReference::new(
                snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ];
    let requirements = [
        TableRequirement::UuidMatch {
            uuid: metadata.uuid(),
        },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: "main".to_string(),
            snapshot_id: parent,
        },
    ];
    let outcome = client
        .commit(table.identifier(), &requirements, &updates)
        .await?;
    if let CommitOutcome::Conflict(_) = outcome {
        // Refused: no snapshot will ever name this attempt's manifests and
        // manifest list (the retry writes its own). Best effort: `maintain`
        // deletes what is left.
        for n in 1..=manifest_counter {
            let _ = table
                .file_io()
                .delete(format!("{meta_dir}/{commit_id}-m{n}.avro"))
                .await;
        }
        let _ = table.file_io().delete(&list_path).await;
    }
    Ok((outcome, snapshot_id))
}
