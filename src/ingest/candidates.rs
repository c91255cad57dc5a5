//! Finding what a source offers: links of an HTML directory listing, files
//! of a GitHub folder (contents API, paginated), one fixed URL, or a local
//! sample folder.

use super::fetch::{self, RetryPolicy};
use crate::environ::Env;
use crate::project::settings::SourceConfig;
use crate::secret::Secret;
use anyhow::{Context, Result, bail};
use chrono::Datelike;
use reqwest::{Client, Url};
use std::path::Path;

/// A file a source offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The file name (last path segment), which the file log is keyed on.
    pub file_name: String,
    /// Where to get it: an absolute URL or a local path.
    pub location: String,
}

/// The links of an HTML listing page whose file names match `pattern`.
/// NEMWEB pages are `<A HREF="/Reports/…/file.zip">file.zip</A><br>` lines.
pub fn parse_listing(base: &Url, html: &str, pattern: Option<&regex::Regex>) -> Vec<Candidate> {
    static HREF: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let href = HREF.get_or_init(|| {
        regex::Regex::new(r#"(?i)<a\s[^>]*href\s*=\s*["']([^"']+)["']"#).expect("valid regex")
    });
    let mut out: Vec<Candidate> = Vec::new();
    for cap in href.captures_iter(html) {
        let Ok(url) = base.join(&cap[1]) else {
            continue;
        };
        let Some(name) = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|n| !n.is_empty())
            .map(percent_decode)
        else {
            continue;
        };
        if pattern.is_some_and(|p| !p.is_match(&name)) {
            continue;
        }
        if !out.iter().any(|c| c.file_name == name) {
            out.push(Candidate {
                file_name: name,
                location: url.to_string(),
            });
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a source reaches the GitHub API: the API base and the token, read
/// from the run's environment once, before any download starts.
#[derive(Debug, Clone, Default)]
pub struct GithubAccess {
    /// The API base: the source's `url`, else `GITHUB_API_URL` (GitHub
    /// Enterprise Server), else api.github.com.
    pub api: String,
    /// The variable named by the source's `token_env`, else `GITHUB_TOKEN`.
    pub token: Option<Secret>,
}

impl GithubAccess {
    /// The access `source` has in `env`.
    pub fn for_source(source: &SourceConfig, env: &Env) -> GithubAccess {
        let var = source.token_env.as_deref().unwrap_or("GITHUB_TOKEN");
        GithubAccess {
            api: source.url.clone().unwrap_or_else(|| env.github_api_url()),
            token: env.non_empty(var).map(Secret::new),
        }
    }
}

/// Lists a source over the network.
pub async fn list_remote(
    client: &Client,
    source: &SourceConfig,
    github: &GithubAccess,
    policy: RetryPolicy,
) -> Result<Vec<Candidate>> {
    let pattern = source
        .pattern
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .with_context(|| format!("source `{}`: invalid pattern", source.name))?;
    match source.kind {
        crate::project::settings::SourceKind::Listing => {
            let url = source.url.as_deref().context("listing needs a url")?;
            let base =
                Url::parse(url).with_context(|| format!("source `{}`: bad url", source.name))?;
            let resp = fetch::get(client, url, None, policy).await?;
            let html = resp.text().await.context("reading the listing")?;
            Ok(parse_listing(&base, &html, pattern.as_ref()))
        }
        crate::project::settings::SourceKind::Url => {
            let url = source.url.as_deref().context("url source needs a url")?;
            let parsed =
                Url::parse(url).with_context(|| format!("source `{}`: bad url", source.name))?;
            let file_name = source.file_name.clone().unwrap_or_else(|| {
                parsed
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .map(percent_decode)
                    .unwrap_or_else(|| source.name.clone())
            });
            Ok(vec![Candidate {
                file_name,
                location: url.to_string(),
            }])
        }
        crate::project::settings::SourceKind::Github => {
            list_github(client, source, github, pattern.as_ref(), policy).await
        }
    }
}

/// GitHub's contents API lists at most this many entries of a folder;
/// a folder that answers with this many is listed again through the git
/// trees API, which has no such cap.
pub const CONTENTS_CAP: usize = 1000;

/// Lists a source's repository folders (one per year with `{year}`),
/// oldest folder first. A year folder that does not exist (yet) is skipped.
async fn list_github(
    client: &Client,
    source: &SourceConfig,
    github: &GithubAccess,
    pattern: Option<&regex::Regex>,
    policy: RetryPolicy,
) -> Result<Vec<Candidate>> {
    let repo = source.repo.as_deref().context("github source needs repo")?;
    let paths = source.github_paths(chrono::Utc::now().year())?;
    let by_year = paths.len() > 1 || source.years.is_some();
    let mut out = Vec::new();
    for path in &paths {
        match list_github_folder(client, source, github, repo, path, pattern, policy).await {
            Ok(files) => out.extend(files),
            Err(e) if by_year && e.downcast_ref::<fetch::NotFound>().is_some() => {
                tracing::info!(
                    "source `{}`: {repo}/{path} does not exist; skipped",
                    source.name
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One folder: the contents API, page by page; past its cap, the trees API.
async fn list_github_folder(
    client: &Client,
    source: &SourceConfig,
    github: &GithubAccess,
    repo: &str,
    path: &str,
    pattern: Option<&regex::Regex>,
    policy: RetryPolicy,
) -> Result<Vec<Candidate>> {
    let api = &github.api;
    let token = github.token.as_ref().map(Secret::expose);
    let mut out = Vec::new();
    let mut entries_seen = 0;
    let mut page = 1;
    loop {
        let mut url = format!("{api}/repos/{repo}/contents/{path}?per_page=100&page={page}");
        if let Some(r) = &source.git_ref {
            url.push_str(&format!("&ref={r}"));
        }
        let resp = fetch::get(client, &url, token, policy)
            .await
            .with_context(|| format!("listing {repo}/{path} on GitHub"))?;
        let has_next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l.contains("rel=\"next\""));
        let entries: serde_json::Value = resp
            .json()
            .await
            .context("reading the contents API answer")?;
        let Some(entries) = entries.as_array() else {
            bail!("{repo}/{path} is not a folder (the contents API did not return a list)");
        };
        let count = entries.len();
        entries_seen += count;
        for e in entries {
            if e.get("type").and_then(|t| t.as_str()) != Some("file") {
                continue;
            }
            let (Some(name), Some(download)) = (
                e.get("name").and_then(|n| n.as_str()),
                e.get("download_url").and_then(|n| n.as_str()),
            ) else {
                continue;
            };
            if pattern.is_some_and(|p| !p.is_match(name)) {
                continue;
            }
            out.push(Candidate {
                file_name: name.to_string(),
                location: download.to_string(),
            });
        }
        if !has_next || count == 0 || page >= 1000 {
            break;
        }
        page += 1;
    }
    if entries_seen >= CONTENTS_CAP {
        let more = list_github_tree(client, source, github, repo, path, pattern, policy, &out)
            .await
            .with_context(|| {
                format!(
                    "{repo}/{path} holds {CONTENTS_CAP} or more entries, past the contents API's \
                     cap; listing it through the git trees API failed"
                )
            })?;
        for c in more {
            if !out.iter().any(|o| o.file_name == c.file_name) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Every file of a folder through the git trees API (the folder's tree id
/// from its parent's listing). Download addresses follow the contents API's
/// `download_url` of a file already listed, with the name swapped.
#[allow(clippy::too_many_arguments)]
async fn list_github_tree(
    client: &Client,
    source: &SourceConfig,
    github: &GithubAccess,
    repo: &str,
    path: &str,
    pattern: Option<&regex::Regex>,
    policy: RetryPolicy,
    listed: &[Candidate],
) -> Result<Vec<Candidate>> {
    let api = &github.api;
    let token = github.token.as_ref().map(Secret::expose);
    let (parent, folder) = path.rsplit_once('/').unwrap_or(("", path));
    let mut url = format!("{api}/repos/{repo}/contents/{parent}");
    if let Some(r) = &source.git_ref {
        url.push_str(&format!("?ref={r}"));
    }
    let siblings: serde_json::Value = fetch::get(client, &url, token, policy)
        .await?
        .json()
        .await
        .context("reading the parent folder's listing")?;
    let sha = siblings
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("name").and_then(|n| n.as_str()) == Some(folder)
                && e.get("type").and_then(|t| t.as_str()) == Some("dir")
        })
        .and_then(|e| e.get("sha").and_then(|s| s.as_str()))
        .with_context(|| format!("`{folder}` is not listed as a folder of `{parent}`"))?
        .to_string();
    let tree: serde_json::Value = fetch::get(
        client,
        &format!("{api}/repos/{repo}/git/trees/{sha}"),
        token,
        policy,
    )
    .await?
    .json()
    .await
    .context("reading the git trees API answer")?;
    if tree.get("truncated").and_then(|t| t.as_bool()) == Some(true) {
        tracing::warn!(
            "source `{}`: GitHub truncated the tree of {repo}/{path}; some files are not listed",
            source.name
        );
    }
    let template = listed
        .first()
        .map(|c| c.location.clone())
        .context("no file of the folder came with a download address to follow")?;
    let base = template
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in tree
        .get("tree")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
    {
        if e.get("type").and_then(|t| t.as_str()) != Some("blob") {
            continue;
        }
        let Some(name) = e.get("path").and_then(|n| n.as_str()) else {
            continue;
        };
        if pattern.is_some_and(|p| !p.is_match(name)) {
            continue;
        }
        out.push(Candidate {
            file_name: name.to_string(),
            location: format!("{base}/{name}"),
        });
    }
    Ok(out)
}

/// The files of a local sample folder (or the one sample file).
pub fn list_sample(root: &Path, source: &SourceConfig, sample: &str) -> Result<Vec<Candidate>> {
    let path = root.join(sample);
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if path.is_file() {
        return Ok(vec![Candidate {
            file_name: source.file_name.clone().unwrap_or_else(|| name_of(&path)),
            location: path.to_string_lossy().into_owned(),
        }]);
    }
    let pattern = source
        .pattern
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .with_context(|| format!("source `{}`: invalid pattern", source.name))?;
    let entries = std::fs::read_dir(&path).with_context(|| {
        format!(
            "source `{}`: cannot read sample {}",
            source.name,
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let p = entry?.path();
        let name = name_of(&p);
        let keep = match &pattern {
            Some(re) => re.is_match(&name),
            None => !name.ends_with(".html"),
        };
        if p.is_file() && keep {
            out.push(Candidate {
                file_name: name,
                location: p.to_string_lossy().into_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_links_resolve_against_the_page_and_match_the_pattern() {
        let base = Url::parse("http://127.0.0.1:8080/Reports/Current/Daily_Reports/").unwrap();
        let html = r#"<pre><A HREF="/Reports/Current/">[To Parent Directory]</A><br><br>
            Wednesday, January 31, 2024  4:30 AM     20479386 <A HREF="/Reports/Current/Daily_Reports/PUBLIC_DAILY_202401300000_20240131040503.zip">PUBLIC_DAILY_202401300000_20240131040503.zip</A><br>
            <a href='other.txt'>other</a><A HREF="PUBLIC_DAILY_202401310000_20240201040503.zip">x</A></pre>"#;
        let re = regex::Regex::new(r"PUBLIC_DAILY_\d{12}_\d{14}\.zip").unwrap();
        let found = parse_listing(&base, html, Some(&re));
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].location,
            "http://127.0.0.1:8080/Reports/Current/Daily_Reports/PUBLIC_DAILY_202401300000_20240131040503.zip"
        );
        assert_eq!(
            found[1].file_name,
            "PUBLIC_DAILY_202401310000_20240201040503.zip"
        );
    }
}
