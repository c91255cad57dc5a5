//! The Iceberg REST session: the OAuth2 token exchange and `/v1/config`
//! (the URL prefix the catalog wants), shared by the warehouse's commit
//! client and `analytics doctor`, so both talk to a catalog the same way.
//! The steps are separate functions so the doctor can report each one.

use crate::project::IcebergConfig;
use crate::secret::Secret;
use std::fmt;

/// The OAuth2 scope asked for with client credentials (Polaris needs it;
/// catalogs that do not use scopes ignore it).
pub const SCOPE: &str = "PRINCIPAL_ROLE:ALL";

/// Why a session step failed.
#[derive(Debug, Clone)]
pub enum SessionError {
    /// No HTTP answer (DNS, connection, TLS, timeout).
    Unreachable(String),
    /// The credential is not `client_id:client_secret`.
    MalformedCredential,
    /// The token endpoint refused the credential (HTTP status and body).
    Refused(u16, String),
    /// An answer that is not what the REST spec says (no `access_token`, not JSON).
    Invalid(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Unreachable(e) => write!(f, "no answer: {e}"),
            SessionError::MalformedCredential => {
                f.write_str("the credential is not `client_id:client_secret`")
            }
            SessionError::Refused(status, body) => write!(f, "HTTP {status}: {body}"),
            SessionError::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SessionError {}

/// A session's token and URL prefix.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The bearer token (exchanged or given), if any.
    pub token: Option<Secret>,
    /// The URL prefix from `/v1/config` (`overrides`, else `defaults`).
    pub prefix: Option<String>,
    /// The whole `/v1/config` answer.
    pub config: serde_json::Value,
}

/// The error body a catalog sent, shortened: its `error.message` when JSON.
pub fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// The response when it is a success, else [`SessionError::Refused`] with
/// the catalog's message.
async fn success(response: reqwest::Response) -> Result<reqwest::Response, SessionError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    Err(SessionError::Refused(status.as_u16(), error_message(&text)))
}

/// Exchanges OAuth2 client credentials (`client_id:client_secret`) for a
/// bearer token at `{base}/v1/oauth/tokens`.
pub async fn exchange_token(
    http: &reqwest::Client,
    base: &str,
    credential: &Secret,
) -> Result<Secret, SessionError> {
    let (id, secret) = credential
        .expose()
        .split_once(':')
        .ok_or(SessionError::MalformedCredential)?;
    let response = http
        .post(format!("{}/v1/oauth/tokens", base.trim_end_matches('/')))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .map_err(|e| SessionError::Unreachable(e.to_string()))?;
    let response = success(response).await?;
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| SessionError::Invalid(format!("reading the catalog token: {e}")))?;
    let token = body
        .get("access_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            SessionError::Invalid("the catalog's token response has no access_token".into())
        })?;
    crate::secret::mask_runtime_secret(token);
    Ok(Secret::new(token))
}

/// `GET {base}/v1/config` (for `warehouse`), with the token when given.
pub async fn fetch_config(
    http: &reqwest::Client,
    base: &str,
    warehouse: Option<&str>,
    token: Option<&Secret>,
) -> Result<serde_json::Value, SessionError> {
    let mut request = http.get(format!("{}/v1/config", base.trim_end_matches('/')));
    if let Some(w) = warehouse {
        request = request.query(&[("warehouse", w)]);
    }
    if let Some(t) = token {
        request = request.bearer_auth(t.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|e| SessionError::Unreachable(e.to_string()))?;
    success(response)
        .await?
        .json()
        .await
        .map_err(|e| SessionError::Invalid(format!("parsing the catalog's /v1/config: {e}")))
}

/// The URL prefix a `/v1/config` answer names (`overrides` win over `defaults`).
pub fn prefix(config: &serde_json::Value) -> Option<String> {
    ["overrides", "defaults"].iter().find_map(|section| {
        config
            .get(section)
            .and_then(|s| s.get("prefix"))
            .and_then(|p| p.as_str())
            .map(str::to_string)
    })
}

/// Opens a session: the token (a given bearer token wins over exchanging
/// the credential), then `/v1/config`.
pub async fn open(http: &reqwest::Client, config: &IcebergConfig) -> Result<Session, SessionError> {
    let token = match (&config.token, &config.credential) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(cred)) => Some(exchange_token(http, &config.uri, cred).await?),
        (None, None) => None,
    };
    let answer = fetch_config(
        http,
        &config.uri,
        config.warehouse.as_deref(),
        token.as_ref(),
    )
    .await?;
    Ok(Session {
        token,
        prefix: prefix(&answer),
        config: answer,
    })
}
