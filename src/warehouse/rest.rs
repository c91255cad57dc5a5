//! The one REST catalog call iceberg-rust 0.10.1 keeps private: committing a
//! snapshot we built ourselves (`POST /v1/{prefix}/namespaces/{ns}/tables/{t}`
//! with requirements and updates). Copy-on-write needs it, because the crate
//! offers fast appends only.

use anyhow::{Context, Result, bail};
use iceberg::{TableIdent, TableRequirement, TableUpdate};
use serde::Serialize;
use std::collections::HashMap;
use tokio::sync::Mutex;

/// What the catalog said about a commit.
#[derive(Debug)]
pub enum CommitOutcome {
    /// The new metadata is in place.
    Committed,
    /// A requirement failed (someone else committed first): reload and retry.
    Conflict(String),
    /// The catalog failed mid-way (5xx): the commit may or may not have landed.
    Unknown(String),
}

/// A minimal REST client for table commits, sharing the catalog's settings.
pub struct CommitClient {
    http: reqwest::Client,
    uri: String,
    warehouse: Option<String>,
    credential: Option<String>,
    static_token: Option<String>,
    /// Bearer token and URL prefix, fetched on the first commit.
    session: Mutex<Option<Session>>,
}

#[derive(Clone)]
struct Session {
    token: Option<String>,
    prefix: Option<String>,
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

impl CommitClient {
    /// A client for the catalog at `props["uri"]` (props already expanded).
    pub fn new(props: &HashMap<String, String>) -> Result<CommitClient> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("creating the HTTP client for catalog commits")?;
        Ok(CommitClient {
            http,
            uri: props
                .get("uri")
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_default(),
            warehouse: props.get("warehouse").cloned(),
            credential: props.get("credential").cloned(),
            static_token: props.get("token").cloned(),
            session: Mutex::new(None),
        })
    }

    async fn session(&self) -> Result<Session> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let token = match (&self.static_token, &self.credential) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(cred)) => {
                let (id, secret) = cred.split_once(':').unwrap_or(("", cred.as_str()));
                let response = self
                    .http
                    .post(format!("{}/v1/oauth/tokens", self.uri))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", id),
                        ("client_secret", secret),
                        ("scope", "PRINCIPAL_ROLE:ALL"),
                    ])
                    .send()
                    .await
                    .context("requesting a catalog token")?;
                let status = response.status();
                if !status.is_success() {
                    bail!("the catalog refused the credential (HTTP {status})");
                }
                let body: serde_json::Value =
                    response.json().await.context("reading the catalog token")?;
                Some(
                    body.get("access_token")
                        .and_then(|t| t.as_str())
                        .context("the catalog's token response has no access_token")?
                        .to_string(),
                )
            }
            (None, None) => None,
        };
        let mut request = self.http.get(format!("{}/v1/config", self.uri));
        if let Some(w) = &self.warehouse {
            request = request.query(&[("warehouse", w)]);
        }
        if let Some(t) = &token {
            request = request.bearer_auth(t);
        }
        let config: serde_json::Value = request
            .send()
            .await
            .context("reading the catalog's /v1/config")?
            .json()
            .await
            .context("parsing the catalog's /v1/config")?;
        let prefix = ["overrides", "defaults"].iter().find_map(|section| {
            config
                .get(section)
                .and_then(|s| s.get("prefix"))
                .and_then(|p| p.as_str())
                .map(str::to_string)
        });
        let session = Session { token, prefix };
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
        let mut url = reqwest::Url::parse(&self.uri)
            .with_context(|| format!("the catalog URI `{}` is not a URL", self.uri))?;
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
            request = request.bearer_auth(t);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Ok(CommitOutcome::Unknown(format!("no answer: {e}")));
            }
            Err(e) => return Err(e).context("posting the commit to the catalog"),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = || {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| text.chars().take(300).collect())
        };
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
