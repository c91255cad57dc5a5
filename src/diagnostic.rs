//! [`Located`]: an error that knows the project file and line it is about,
//! as data. Stages create it where the location is known (a template error in
//! a model file, a SQL error mapped back to the model's line, a YAML file that
//! does not parse); front-ends find it in an error chain with [`located`] and
//! point annotations at it, instead of reading paths back out of message
//! text. Imports nothing of this crate.

use std::fmt;
use std::path::PathBuf;

/// A message about one line of one project file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file, relative to the project root.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// The whole message, as shown to the user.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Located {}

/// The location of the first [`Located`] in `err`'s chain.
pub fn located(err: &anyhow::Error) -> Option<&Located> {
    err.chain().find_map(|e| e.downcast_ref::<Located>())
}
