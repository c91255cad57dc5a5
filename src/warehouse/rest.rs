//! The one REST catalog call iceberg-rust 0.10.1 keeps private: committing a
//! snapshot we built ourselves (`POST /v1/{prefix}/namespaces/{ns}/tables/{t}`
//! with requirements and updates). Copy-on-write needs it, because the crate
//! offers fast appends only.

use super::session::{Session, SessionError};
use crate::project::IcebergConfig;
use anyhow::{Context, Result, bail};
use iceberg::{TableIdent, TableRequirement, TableUpdate};
use serde::Serialize;
use tokio::sync::Mutex;

/// What the catalog said about a commit.
#[derive(Debug)]
pub enum CommitOutcome {
    /// The new metadata is in place.
    Committed,
    /// A requirement failed (someone else committed first): reload and retry.
    Conflict(String),
    /// The catalog failed mid-way (5xx, timeout, connection lost after the
    /// request was sent): the commit may or may not have landed, now or later.
    Unknown(String),
}

/// A minimal REST client for table commits, sharing the catalog's settings
/// and its [`session`](super::session).
pub struct CommitClient {
    http: reqwest::Client,
    config: IcebergConfig,
    /// Bearer token and URL prefix, fetched on the first commit.
    session: Mutex<Option<Session>>,
}

#[derive(Serialize)]
struct CommitBody<'a> {
    identifier: IdentBody<'a>,
    requirements: &'a [TableRequirement],
    updates: &'a [TableUpdate],
}

#[derive(Serialize)]
struct IdentBody<'a> {
    namespace: Vec<&'a str>,
    name: &'a str,
}

/// The HTTP client for catalog requests: each bounded by the target's
/// `timeout_secs` (connecting by at most 30 s of it).
pub fn client(config: &IcebergConfig) -> reqwest::Result<reqwest::Client> {
    let timeout = config.request_timeout();
    reqwest::Client::builder()
        .connect_timeout(timeout.min(std::time::Duration::from_secs(30)))
        .timeout(timeout)
        .build()
}

impl CommitClient {
    /// A client for the catalog `config` describes.
    pub fn new(config: &IcebergConfig) -> Result<CommitClient> {
        let http = client(config).context("creating the HTTP client for catalog commits")?;
        Ok(CommitClient {
            http,
            config: config.clone(),
            session: Mutex::new(None),
        })
    }

    async fn session(&self) -> Result<Session> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let session = super::session::open(&self.http, &self.config)
            .await
            .map_err(|e| match e {
                SessionError::Refused(status, _) if status == 401 || status == 403 => {
                    anyhow::anyhow!("the catalog refused the credential (HTTP {status})")
                }
                other => anyhow::anyhow!("opening the catalog session: {other}"),
            })?;
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Posts one commit for `ident`.
    pub async fn commit(
        &self,
        ident: &TableIdent,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> Result<CommitOutcome> {
        let session = self.session().await?;
        let namespace: Vec<&str> = ident.namespace().iter().map(String::as_str).collect();
        let mut url = reqwest::Url::parse(&self.config.uri)
            .with_context(|| format!("the catalog URI `{}` is not a URL", self.config.uri))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| anyhow::anyhow!("the catalog URI cannot take a path"))?;
            segments.pop_if_empty().push("v1");
            if let Some(p) = &session.prefix {
                segments.push(p);
            }
            segments
                .push("namespaces")
                .push(&namespace.join("\u{1f}"))
                .push("tables")
                .push(ident.name());
        }
        let body = CommitBody {
            identifier: IdentBody {
                namespace,
                name: ident.name(),
            },
            requirements,
            updates,
        };
        let mut request = self.http.post(url).json(&body);
        if let Some(t) = &session.token {
            request = request.bearer_auth(t.expose());
        }
        let response = match request.send().await {
            Ok(r) => r,
            // Never connected: the catalog cannot have seen it.
            Err(e) if e.is_connect() => {
                return Err(e).context("posting the commit to the catalog");
            }
            // Sent, but the answer was lost (timeout, reset): it may land.
            Err(e) if e.is_timeout() => {
                return Ok(CommitOutcome::Unknown(format!(
                    "no answer within the Iceberg target's `timeout_secs`: {e}"
                )));
            }
            Err(e) => return Ok(CommitOutcome::Unknown(format!("no answer: {e}"))),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) if status.is_success() => {
                // The status line said it landed; the body does not matter.
                tracing::debug!("reading the commit's answer: {e}");
                String::new()
            }
            Err(e) => {
                return Ok(CommitOutcome::Unknown(format!(
                    "HTTP {status}, answer lost: {e}"
                )));
            }
        };
        let message = || super::session::error_message(&text);
        Ok(match status.as_u16() {
            200..=299 => CommitOutcome::Committed,
            409 => CommitOutcome::Conflict(message()),
            500 | 502 | 503 | 504 => {
                CommitOutcome::Unknown(format!("HTTP {status}: {}", message()))
            }
            _ => bail!(
                "the catalog rejected the commit (HTTP {status}): {}",
                message()
            ),
        })
    }
}
