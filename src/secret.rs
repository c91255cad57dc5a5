//! [`Secret`], the only way this crate holds a secret (catalog tokens and
//! credentials, S3 keys, GitHub tokens), and [`Redactor`], which removes known
//! secret values from text before it is written anywhere. Imports nothing of
//! this crate.

use std::io::Write;

/// A secret value: never shown by `Debug` or `Display`, only through
/// [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header, a form).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Replaces known secret values with `***` in text this binary writes.
#[derive(Clone, Default, Debug)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    values: std::sync::Arc<Vec<String>>,
}

impl Redactor {
    /// A redactor for `values` (empty strings are ignored).
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor {
            values: std::sync::Arc::new(values),
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

/// Masks a secret learned at run time (e.g. an OAuth2 access token) when
/// running in GitHub Actions: `::add-mask::` makes the runner hide it in the
/// log from then on.
pub fn mask_runtime_secret(value: &str) {
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        for line in value.lines().filter(|l| !l.trim().is_empty()) {
            let mut out = std::io::stdout().lock();
            let text = line
                .trim()
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A");
            let _ = writeln!(out, "::add-mask::{text}");
        }
    }
}
