//! The doctor's catalog checks: the Iceberg REST catalog answers, accepts
//! the credentials (through the same session code the warehouse uses), lists
//! namespaces, and takes a scratch table; the S3 endpoint answers.

use super::{Check, DoctorOptions, error_body};
use crate::ingest::fetch;
use crate::secret::Secret;
use crate::warehouse::session::{self, SessionError};
use reqwest::{Client, StatusCode};

/// The catalog answers `/v1/config`, accepts the credentials (OAuth2 client
/// credentials or a bearer token) and lists namespaces.
pub(crate) async fn catalog_checks(opts: &DoctorOptions, client: &Client, checks: &mut Vec<Check>) {
    let Some(catalog) = &opts.catalog else {
        checks.push(Check::skip(
            "catalog",
            "no catalog-uri / ICEBERG_REST_ENDPOINT given",
        ));
        return;
    };
    let base = catalog.uri.trim_end_matches('/');
    let warehouse = catalog.warehouse.as_deref();

    // 1. reachable: any HTTP answer counts.
    let anon_status = match session::fetch_config(client, base, warehouse, None).await {
        Ok(_) => StatusCode::OK,
        Err(SessionError::Refused(status, _)) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(SessionError::Invalid(_)) => StatusCode::OK,
        Err(e) => {
            checks.push(Check::fail(
                "catalog reachable",
                format!("GET {base}/v1/config: {e}"),
                "check catalog-uri (the REST base URL, without /v1) and that the runner can reach it",
            ));
            return;
        }
    };
    checks.push(Check::pass(
        "catalog reachable",
        format!("GET {base}/v1/config answers HTTP {}", anon_status.as_u16()),
    ));

    // 2. auth accepted: the session's token exchange.
    let token: Option<Secret> = if let Some(cred) = &catalog.credential {
        match session::exchange_token(client, base, cred).await {
            Ok(t) => {
                checks.push(Check::pass(
                    "catalog auth",
                    "OAuth2 client credentials accepted (token issued)",
                ));
                Some(t)
            }
            Err(SessionError::MalformedCredential) => {
                checks.push(Check::fail(
                    "catalog auth",
                    "catalog credential is not `client_id:client_secret`",
                    "give the OAuth2 client credentials as `client_id:client_secret`",
                ));
                return;
            }
            Err(SessionError::Unreachable(e)) => {
                checks.push(Check::fail(
                    "catalog auth",
                    format!("POST {base}/v1/oauth/tokens: {e}"),
                    "check catalog-uri; the catalog must offer the OAuth2 token endpoint",
                ));
                return;
            }
            Err(SessionError::Refused(status, body)) => {
                checks.push(Check::fail(
                    "catalog auth",
                    format!("OAuth2 client credentials refused: HTTP {status}: {body}"),
                    "check catalog-credential (client_id:client_secret) in the repository secrets",
                ));
                return;
            }
            Err(SessionError::Invalid(_)) => {
                checks.push(Check::fail(
                    "catalog auth",
                    "the token endpoint answered without an access_token",
                    "check that catalog-uri is an Iceberg REST catalog",
                ));
                return;
            }
        }
    } else if let Some(token) = &catalog.token {
        Some(token.clone())
    } else {
        if anon_status == StatusCode::UNAUTHORIZED || anon_status == StatusCode::FORBIDDEN {
            checks.push(Check::fail(
                "catalog auth",
                format!(
                    "no credentials given and the catalog answers HTTP {}",
                    anon_status.as_u16()
                ),
                "set catalog-token (bearer) or catalog-credential (client_id:client_secret)",
            ));
            return;
        }
        checks.push(Check::skip("catalog auth", "no token or credential given"));
        None
    };

    // The session's `/v1/config` with the token: the prefix every other
    // call goes under.
    let bearer_only = catalog.credential.is_none() && token.is_some();
    let config = match session::fetch_config(client, base, warehouse, token.as_ref()).await {
        Ok(config) => config,
        Err(SessionError::Refused(status, body)) => {
            checks.push(Check::fail(
                if bearer_only {
                    "catalog auth"
                } else {
                    "catalog config"
                },
                format!("GET /v1/config: HTTP {status}: {body}"),
                if status == 401 || status == 403 {
                    "check catalog-token / catalog-credential"
                } else {
                    "check warehouse (the catalog may not know it) and catalog-uri"
                },
            ));
            return;
        }
        Err(e) => {
            checks.push(Check::fail(
                "catalog config",
                format!("GET /v1/config: {e}"),
                "check catalog-uri",
            ));
            return;
        }
    };
    if bearer_only {
        checks.push(Check::pass("catalog auth", "bearer token accepted"));
    }
    let prefix = session::prefix(&config);
    let authed = |url: &str| {
        let req = client.get(url);
        match &token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    };

    // 3. namespaces listable.
    let url = match &prefix {
        Some(p) => format!("{base}/v1/{}/namespaces", p.trim_matches('/')),
        None => format!("{base}/v1/namespaces"),
    };
    match authed(&url).send().await {
        Ok(resp) if resp.status().is_success() => {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let names: Vec<String> = body
                .get("namespaces")
                .and_then(|n| n.as_array())
                .map(|a| {
                    a.iter()
                        .map(|ns| match ns.as_array() {
                            Some(parts) => parts
                                .iter()
                                .filter_map(|p| p.as_str())
                                .collect::<Vec<_>>()
                                .join("."),
                            None => ns.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let shown = if names.is_empty() {
                "none yet".to_string()
            } else {
                names.join(", ")
            };
            checks.push(Check::pass(
                "catalog namespaces",
                format!("{} listed ({shown})", names.len()),
            ));
        }
        Ok(resp) => checks.push(Check::fail(
            "catalog namespaces",
            format!("GET {url}: {}", error_body(resp).await),
            "give the principal permission to list namespaces, and check warehouse",
        )),
        Err(e) => checks.push(Check::fail(
            "catalog namespaces",
            format!("GET {url}: {e}"),
            "check catalog-uri",
        )),
    }
}

/// What a run does to the warehouse, on a throwaway table: create it, commit
/// an append and a copy-on-write upsert (data files on S3, a hand-built
/// snapshot through the REST commit endpoint), read it back, drop it.
pub(crate) fn scratch_table_check(opts: &DoctorOptions) -> Check {
    let what = "catalog scratch table";
    let Some(config) = &opts.catalog else {
        return Check::skip(what, "no catalog-uri given");
    };
    if config.s3.endpoint.is_none() && config.s3.access_key_id.is_none() {
        return Check::skip(
            what,
            "no S3 settings given (s3-endpoint / AWS_ENDPOINT_URL_S3, keys), so no table was written",
        );
    }
    let name = format!("doctor_{:08x}", rand::random::<u32>());
    let result = (|| -> anyhow::Result<u64> {
        let warehouse = crate::warehouse::Warehouse::connect(config)?;
        let conn = duckdb::Connection::open_in_memory()?;
        crate::warehouse::scan::register(&conn, &warehouse)?;
        conn.execute_batch(
            "CREATE TEMP TABLE staged AS SELECT range AS id, 'a' AS v FROM range(3)",
        )?;
        let outcome = (|| -> anyhow::Result<u64> {
            warehouse.write(
                &conn,
                "staged",
                "analytics_doctor",
                &name,
                &crate::warehouse::WriteMode::Append,
                "ignore",
            )?;
            conn.execute_batch(
                "CREATE OR REPLACE TEMP TABLE staged AS SELECT 2::BIGINT AS id, 'b' AS v",
            )?;
            warehouse.write(
                &conn,
                "staged",
                "analytics_doctor",
                &name,
                &crate::warehouse::WriteMode::Upsert {
                    keys: vec!["id".into()],
                },
                "ignore",
            )?;
            let rows: i64 = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE v = 'b'",
                    crate::warehouse::scan::call("analytics_doctor", &name)
                ),
                [],
                |r| r.get(0),
            )?;
            Ok(rows as u64)
        })();
        let dropped = warehouse.drop_table("analytics_doctor", &name);
        let rows = outcome?;
        dropped?;
        Ok(rows)
    })();
    match result {
        Ok(1) => Check::pass(
            what,
            format!(
                "created analytics_doctor.{name}, appended, upserted, read back and dropped it"
            ),
        ),
        Ok(n) => Check::fail(
            what,
            format!("the upserted row read back {n} times instead of once"),
            "the catalog does not apply commits as the Iceberg REST spec says; report it with the catalog's name and version",
        ),
        Err(e) => Check::fail(
            what,
            format!("{e:#}"),
            "check the S3 settings (endpoint, region, keys, path-style) and that the principal may create and drop tables",
        ),
    }
}

/// The S3 endpoint answers (any HTTP status); credentials are not checked yet.
pub(crate) async fn s3_check(client: &Client, endpoint: &str) -> Check {
    match client.get(endpoint).send().await {
        Ok(resp) => Check::pass(
            "S3 endpoint reachable",
            format!(
                "{} answers HTTP {} (credentials not checked yet)",
                fetch::redact(endpoint),
                resp.status().as_u16()
            ),
        ),
        Err(e) => Check::fail(
            "S3 endpoint reachable",
            format!("{}: {e}", fetch::redact(endpoint)),
            "check s3-endpoint and that the runner can reach it",
        ),
    }
}
