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

/// An HTTP 404: the error [`get`] returns for it, so callers can tell a
/// missing folder from a failure.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP 404 Not Found from {}", self.0)
    }
}

impl std::error::Error for NotFound {}

/// Whether a 403/429 is GitHub saying the rate limit is used up
/// (`x-ratelimit-remaining: 0`): retrying before the reset only wastes time.
fn rate_limited(resp: &reqwest::Response) -> bool {
    matches!(
        resp.status(),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) && resp
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        == Some("0")
}

/// ` (it resets at HH:MM:SS UTC, in N min)` from `x-ratelimit-reset`.
fn reset_in(resp: &reqwest::Response) -> String {
    let Some(reset) = resp
        .headers()
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return String::new();
    };
    let Some(at) = chrono::DateTime::from_timestamp(reset, 0) else {
        return String::new();
    };
    let minutes = (reset - chrono::Utc::now().timestamp())
        .max(0)
        .saturating_add(59)
        / 60;
    format!(
        " (it resets at {} UTC, in {minutes} min)",
        at.format("%H:%M:%S")
    )
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
            Ok(resp) if rate_limited(resp) => bail!(
                "{} from {}: the GitHub API rate limit is used up{}; give the source a \
                 token (GITHUB_TOKEN, or `token_env`) for 1000 requests an hour instead \
                 of 60, or take fewer files per run",
                resp.status(),
                redact(url),
                reset_in(resp)
            ),
            Ok(resp) if retryable(resp.status()) && attempt < policy.attempts => {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, chrono::Utc::now()));
                tracing::debug!("GET {url}: HTTP {}, retrying", resp.status());
                retry_after.unwrap_or(policy.base * 2u32.pow(attempt - 1))
            }
            Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                return Err(anyhow::Error::new(NotFound(redact(url))));
            }
            Ok(resp) if retryable(resp.status()) => bail!(
                "HTTP {} from {} (gave up after {attempt} {})",
                resp.status(),
                redact(url),
                if attempt == 1 { "attempt" } else { "attempts" }
            ),
            Ok(resp) => bail!("HTTP {} from {}", resp.status(), redact(url)),
            Err(e)
                if attempt < policy.attempts
                    && (e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()) =>
            {
                tracing::debug!("GET {url}: {e}, retrying");
                policy.base * 2u32.pow(attempt - 1)
            }
            Err(e) => bail!(
                "GET {} failed after {attempt} {}: {}",
                redact(url),
                if attempt == 1 { "attempt" } else { "attempts" },
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

/// The longest `Retry-After` honoured: a server asking for more gets 60 s.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// The wait a `Retry-After` value asks for, at `now`: delay-seconds
/// (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`; a date in the
/// past means now), capped at [`RETRY_AFTER_CAP`]. `None` when unreadable.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_CAP))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn retry_after_seconds_are_honoured_up_to_the_cap() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 60 ", now), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("3600", now), Some(RETRY_AFTER_CAP));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_dates_are_the_wait_until_then() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        // In the past: retry now.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        // An hour away: the cap.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 08:27:30 GMT", now),
            Some(RETRY_AFTER_CAP)
        );
    }
}
