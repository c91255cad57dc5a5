//! The doctor's source checks: each source answers (or, in ci mode, its
//! sample is there).

use super::{Check, DoctorOptions};
use crate::ingest::candidates;
use crate::ingest::fetch::{self, RetryPolicy};
use crate::mode::Mode;
use crate::project::settings::{SourceConfig, SourceKind};
use anyhow::{Context, Result};
use reqwest::{Client, StatusCode};
use std::time::Duration;

/// A source answers: its listing lists matching files, its GitHub folder is
/// readable, its URL exists — or, in ci mode, its sample is there.
pub(crate) async fn source_check(
    opts: &DoctorOptions,
    client: &Client,
    root: &std::path::Path,
    source: &SourceConfig,
) -> Check {
    let what = format!("source `{}`", source.name);
    if opts.mode == Some(Mode::Ci) {
        return match &source.sample {
            None => Check::skip(what, "no `sample`; ci mode does not download it"),
            Some(sample) => match candidates::list_sample(root, source, sample) {
                Ok(files) if !files.is_empty() => Check::pass(
                    what,
                    format!("sample {sample}: {}", files_count(files.len())),
                ),
                Ok(_) => Check::fail(
                    what,
                    format!("sample {sample} holds no file matching the pattern"),
                    "add sample files (see aemo-gen) or correct `pattern`",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    "correct `sample:` in analytics.yml (a path relative to the project)",
                ),
            },
        };
    }
    if opts.offline {
        return Check::skip(what, "offline: not contacted");
    }
    let policy = RetryPolicy {
        attempts: 1,
        base: Duration::from_millis(200),
    };
    let shown = source
        .url
        .as_deref()
        .map(fetch::redact)
        .or_else(|| source.repo.clone())
        .unwrap_or_default();
    match source.kind {
        SourceKind::Url => {
            let url = source.url.as_deref().unwrap_or_default();
            match reachable(client, url).await {
                Ok(status) if status.is_success() => {
                    Check::pass(what, format!("{shown} answers HTTP {}", status.as_u16()))
                }
                Ok(status) => Check::fail(
                    what,
                    format!("{shown} answers HTTP {}", status.as_u16()),
                    "correct `url:` in analytics.yml",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    "check `url:` and that the runner can reach that host",
                ),
            }
        }
        SourceKind::Listing | SourceKind::Github => {
            let github = candidates::GithubAccess::for_source(source, &opts.run.env);
            match candidates::list_remote(client, source, &github, policy).await {
                Ok(files) if !files.is_empty() => Check::pass(
                    what,
                    format!(
                        "{shown} lists {} matching the pattern",
                        files_count(files.len())
                    ),
                ),
                Ok(_) => Check::fail(
                    what,
                    format!("{shown} lists no file matching the pattern"),
                    "correct `pattern:` (a regex on file names) or the URL in analytics.yml",
                ),
                Err(e) => Check::fail(
                    what,
                    format!("{e:#}"),
                    if source.kind == SourceKind::Github {
                        "check `repo`/`path`/`ref`, and give a token (GITHUB_TOKEN or `token_env`) for private repositories or rate limits"
                    } else {
                        "check `url:` and that the runner can reach that host"
                    },
                ),
            }
        }
    }
}

fn files_count(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// HEAD, falling back to GET for servers that refuse HEAD.
async fn reachable(client: &Client, url: &str) -> Result<StatusCode> {
    let status = client
        .head(url)
        .send()
        .await
        .with_context(|| format!("HEAD {}", fetch::redact(url)))?
        .status();
    if status.is_success() {
        return Ok(status);
    }
    Ok(client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {}", fetch::redact(url)))?
        .status())
}
