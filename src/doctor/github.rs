//! The doctor's GitHub checks: the token can read the pages repository and
//! push to it, and GitHub Pages serves the branch a publish writes.

use super::{Check, DoctorOptions, error_body};
use crate::publish::{PagesStatus, pages_served};
use crate::secret::Secret;
use reqwest::{Client, StatusCode};

/// Where a publish writes in the pages repository.
pub(crate) struct PagesTarget {
    /// The branch (default `gh-pages`).
    pub(crate) branch: String,
    /// The folder of the branch (`""`: the root).
    pub(crate) folder: String,
}

/// The token can read the pages repository and push to it; Pages serves
/// the branch.
pub(crate) async fn github_checks(
    opts: &DoctorOptions,
    target: &PagesTarget,
    client: &Client,
    checks: &mut Vec<Check>,
) {
    let Some(token) = &opts.github_token else {
        checks.push(Check::skip(
            "GitHub token",
            "no github-token / GITHUB_TOKEN given",
        ));
        return;
    };
    let Some(repo) = &opts.pages_repository else {
        checks.push(Check::fail(
            "pages repository",
            "a GitHub token is given but no repository",
            "set pages-repository (owner/name) or GITHUB_REPOSITORY",
        ));
        return;
    };
    let url = format!("{}/repos/{repo}", opts.github_api);
    let resp = match api_get(client, &url, token).send().await {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::fail(
                "pages repository readable",
                format!("GET {url}: {e}"),
                "check GITHUB_API_URL and the network",
            ));
            return;
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let fix = match status {
            StatusCode::UNAUTHORIZED => {
                "the token is invalid or expired: create a new one and update the secret"
            }
            StatusCode::NOT_FOUND => {
                "check pages-repository; for another repository than the workflow's, give a token that can see it (a fine-grained PAT or a GitHub App token)"
            }
            _ => "check the token's permissions and pages-repository",
        };
        checks.push(Check::fail(
            "pages repository readable",
            format!("{repo}: {}", error_body(resp).await),
            fix,
        ));
        return;
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    checks.push(Check::pass(
        "pages repository readable",
        format!(
            "{} (default branch {})",
            body.get("full_name")
                .and_then(|v| v.as_str())
                .unwrap_or(repo),
            body.get("default_branch")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        ),
    ));
    match body
        .get("permissions")
        .and_then(|p| p.get("push"))
        .and_then(|p| p.as_bool())
    {
        Some(true) => checks.push(Check::pass(
            "pages push permission",
            format!("the token can push to {repo}"),
        )),
        Some(false) => checks.push(Check::fail(
            "pages push permission",
            format!("the token can read {repo} but not push to it"),
            "give the job `permissions: contents: write` (GITHUB_TOKEN), or use a token with Contents: write on that repository",
        )),
        None => checks.push(Check::skip(
            "pages push permission",
            "not reported for this kind of token (e.g. the workflow's GITHUB_TOKEN): make sure the job has `permissions: contents: write`",
        )),
    }
    checks.push(pages_check(opts, target, client, token, repo).await);
}

/// GitHub Pages is on and serves the branch (and folder) a publish writes,
/// as the Pages API says.
async fn pages_check(
    opts: &DoctorOptions,
    target: &PagesTarget,
    client: &Client,
    token: &crate::secret::Secret,
    repo: &str,
) -> Check {
    const WHAT: &str = "GitHub Pages";
    let fix = format!(
        "Settings → Pages → Build and deployment: Deploy from a branch, `{}`, / (root) \
         (the branch exists after the first publish)",
        target.branch
    );
    let url = format!("{}/repos/{repo}/pages", opts.github_api);
    let resp = match api_get(client, &url, token).send().await {
        Ok(r) => r,
        Err(e) => return Check::skip(WHAT, format!("GET {url}: {e}")),
    };
    match resp.status() {
        StatusCode::NOT_FOUND => {
            return Check::warn(WHAT, format!("not enabled on {repo}"), fix);
        }
        s if !s.is_success() => {
            return Check::skip(
                WHAT,
                format!(
                    "the token may not read the Pages settings ({}); with the workflow's GITHUB_TOKEN \
                     add `permissions: pages: read` to check it",
                    error_body(resp).await
                ),
            );
        }
        _ => {}
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    match pages_served(&body, &target.branch, &target.folder) {
        (Some(address), _) => Check::pass(
            WHAT,
            format!("serves branch `{}` at {address}", target.branch),
        ),
        (None, PagesStatus::OtherSource { serves, published }) => Check::warn(
            WHAT,
            format!("{repo} serves {serves}, but the dashboard is published to {published}"),
            fix,
        ),
        (None, other) => Check::skip(
            WHAT,
            other
                .note()
                .unwrap_or_else(|| "the Pages API gave no address".into()),
        ),
    }
}

/// A GET to the GitHub REST API with the token and the API version headers.
fn api_get(client: &Client, url: &str, token: &Secret) -> reqwest::RequestBuilder {
    client
        .get(url)
        .bearer_auth(token.expose())
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
}
