//! The doctor's GitHub checks: the token can read the pages repository and
//! push to it.

use super::{Check, DoctorOptions, error_body};
use reqwest::{Client, StatusCode};

/// The token can read the pages repository and push to it.
pub(crate) async fn github_checks(opts: &DoctorOptions, client: &Client, checks: &mut Vec<Check>) {
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
    let resp = match client
        .get(&url)
        .bearer_auth(token.expose())
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await
    {
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
}
