//! The GitHub REST API's JSON for the Git Data calls publish makes (the wire
//! format, apart from the publish logic).

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub(super) struct Sha {
    pub(super) sha: String,
}

#[derive(Deserialize)]
pub(super) struct RefObject {
    pub(super) object: Sha,
}

#[derive(Deserialize)]
pub(super) struct Commit {
    pub(super) tree: Sha,
}

#[derive(Deserialize)]
pub(super) struct Tree {
    #[serde(default)]
    pub(super) tree: Vec<TreeItem>,
    #[serde(default)]
    pub(super) truncated: bool,
}

#[derive(Deserialize)]
pub(super) struct TreeItem {
    pub(super) path: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) sha: String,
}

#[derive(Deserialize)]
pub(super) struct Blob {
    pub(super) content: String,
    #[serde(default)]
    pub(super) encoding: String,
}

#[derive(Deserialize, Default)]
pub(super) struct Repository {
    #[serde(default)]
    pub(super) permissions: Option<Permissions>,
}

#[derive(Deserialize)]
pub(super) struct Permissions {
    #[serde(default)]
    pub(super) push: bool,
}

#[derive(Serialize)]
pub(super) struct NewBlob<'a> {
    pub(super) content: &'a str,
    pub(super) encoding: &'a str,
}

#[derive(Serialize)]
pub(super) struct NewTreeEntry {
    pub(super) path: String,
    pub(super) mode: &'static str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    /// `None` (JSON null) deletes the path from the base tree.
    pub(super) sha: Option<String>,
}

#[derive(Serialize)]
pub(super) struct NewTree {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) base_tree: Option<String>,
    pub(super) tree: Vec<NewTreeEntry>,
}

#[derive(Serialize)]
pub(super) struct NewCommit<'a> {
    pub(super) message: &'a str,
    pub(super) tree: &'a str,
    pub(super) parents: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct NewRef<'a> {
    #[serde(rename = "ref")]
    pub(super) name: String,
    pub(super) sha: &'a str,
}

#[derive(Serialize)]
pub(super) struct UpdateRef<'a> {
    pub(super) sha: &'a str,
    pub(super) force: bool,
}
