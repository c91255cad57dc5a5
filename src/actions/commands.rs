//! Workflow commands and the files GitHub names: `::group::`, annotations
//! (`::error file=…,line=…::`), `$GITHUB_OUTPUT` entries, escaping.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Escapes the message of a workflow command.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property (`file=`, `title=`) of a workflow command.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Where an annotation points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Relative to the workspace (the repository root).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
}

/// An `::error` / `::warning` / `::notice` command.
pub fn annotation(kind: &str, at: Option<&Location>, title: &str, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(at) = at {
        props.push(format!("file={}", escape_property(&at.file)));
        props.push(format!("line={}", at.line));
    }
    if !title.is_empty() {
        props.push(format!("title={}", escape_property(title)));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{kind}{props}::{}", escape_data(message))
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or the heredoc form for values
/// with line breaks.
pub fn output_entry(name: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    let mut delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    while value.contains(&delimiter) {
        delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Appends `text` to a file GitHub names (outputs, summary).
pub fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
