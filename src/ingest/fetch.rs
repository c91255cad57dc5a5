//! HTTP for ingest: one `reqwest` client with a User-Agent, timeouts, and
//! retries with exponential backoff on 403/429/5xx and network errors.
//! Bodies stream to disk, so file size never decides memory use.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Client, StatusCode};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How hard to try one request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    /// The first backoff; each retry waits twice as long as the one before.
    pub base: Duration,
}

/// The shared HTTP client.
pub fn client(timeout: Duration) -> Result<Client> {
    Client::builder()
        .user_agent(concat!(
            "analytics-action/",
            env!("CARGO_PKG_VERSION"),
            " (+https://github.com/analytics-action/analytics-action)"
        ))
        .connect_timeout(Duration::from_secs(15))
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

/// Whether a status is worth another try (rate limits and server trouble).
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Sends a GET (with optional bearer token), retrying per `policy`; returns a
/// response with a success status.
pub async fn get(
    client: &Client,
    url: &str,
    token: Option<&str>,
    policy: RetryPolicy,
) -> Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let outcome = request.send().await;
        let wait = match &outcome {
            Ok(resp) if resp.status().is_success() => {
                return outcome.map_err(|e| anyhow!(e));
            }
            Ok(resp) if retryable(resp.status()) && attempt < policy.attempts => {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)));
                tracing::debug!("GET {url}: HTTP {}, retrying", resp.status());
                retry_after.unwrap_or(policy.base * 2u32.pow(attempt - 1))
            }
            Ok(resp) => bail!("HTTP {} from {}", resp.status(), redact(url)),
            Err(e)
                if attempt < policy.attempts
                    && (e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()) =>
            {
                tracing::debug!("GET {url}: {e}, retrying");
                policy.base * 2u32.pow(attempt - 1)
            }
            Err(e) => bail!(
                "GET {} failed: {}",
                redact(url),
                e.to_string().replace(url, &redact(url))
            ),
        };
        tokio::time::sleep(wait).await;
    }
}

/// Downloads `url` to `dest` (streamed), returning the bytes written. A
/// failure mid-body is retried like a failed request.
pub async fn download(
    client: &Client,
    url: &str,
    token: Option<&str>,
    dest: &Path,
    policy: RetryPolicy,
) -> Result<u64> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let mut resp = get(client, url, token, policy).await?;
            let expected = resp.content_length();
            let mut file = tokio::fs::File::create(dest)
                .await
                .with_context(|| format!("creating {}", dest.display()))?;
            let mut bytes = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(|e| anyhow!(e.without_url()))? {
                bytes += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            if let Some(expected) = expected
                && expected != bytes
            {
                bail!("body ended after {bytes} of {expected} bytes");
            }
            Ok(bytes)
        }
        .await;
        match result {
            Ok(bytes) => return Ok(bytes),
            Err(e) if attempt < policy.attempts && is_body_error(&e) => {
                tokio::time::sleep(policy.base * 2u32.pow(attempt - 1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_body_error(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    text.contains("body ended") || text.contains("error decoding response body")
}

/// A URL without its query string (which may carry a signature or token).
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}
