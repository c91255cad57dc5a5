//! S3 and catalog refusals said in one line that names the setting to check,
//! instead of the storage library's dump (response headers, request ids,
//! nested `source:` chains, a kilobyte per error).
//!
//! opendal (iceberg-rust's S3 storage) keeps the S3 answer only in its
//! error's text (`status: 403`, `S3Error { code: "SignatureDoesNotMatch" … }`,
//! the request's URL), so the parts are read back from that text. The short
//! status and S3 code are kept; what is dropped never holds a secret (S3
//! answers name the access key id at most, which the action masks).

use std::sync::LazyLock;

use anyhow::anyhow;
use regex::Regex;

/// Where an S3 setting is given: `analytics.yml`, the action's input, the
/// standard variable.
struct Setting {
    yaml: &'static str,
    input: &'static str,
    env: &'static str,
}

impl Setting {
    fn hint(&self) -> String {
        format!(
            "{} (the action's `{}` input, {})",
            self.yaml, self.input, self.env
        )
    }
}

const SECRET_KEY: Setting = Setting {
    yaml: "s3.secret_access_key",
    input: "s3-secret-access-key",
    env: "AWS_SECRET_ACCESS_KEY",
};
const KEY_ID: Setting = Setting {
    yaml: "s3.access_key_id",
    input: "s3-access-key-id",
    env: "AWS_ACCESS_KEY_ID",
};
const ENDPOINT: Setting = Setting {
    yaml: "s3.endpoint",
    input: "s3-endpoint",
    env: "AWS_ENDPOINT_URL_S3",
};

/// What S3 answered (or that it did not), read out of an error's text.
#[derive(Debug, Default, PartialEq)]
struct S3Failure {
    /// The HTTP status, when S3 answered.
    status: Option<u16>,
    /// S3's error code (`SignatureDoesNotMatch`, `NoSuchBucket`, …).
    code: Option<String>,
    /// S3's own message, for codes without a hint of ours.
    message: Option<String>,
    /// The operation (`write`, `read`, `stat`, `delete`, `list`).
    operation: Option<String>,
    /// The object path inside the bucket.
    path: Option<String>,
    /// `scheme://host:port` of the request.
    endpoint: Option<String>,
    /// The bucket, when the request or S3's answer names it.
    bucket: Option<String>,
    /// No HTTP answer at all (connection refused, DNS, TLS).
    unreachable: bool,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, checked by its tests.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("bad pattern {pattern}: {e}"))
}

static STATUS: LazyLock<Regex> = LazyLock::new(|| re(r"response: Parts \{ status: (\d{3})"));
static CODE: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"S3Error \{ code: "([^"]*)", message: "((?:[^"\\]|\\.)*)", resource: "([^"]*)""#)
});
static OPERATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Za-z]+ \((?:persistent|temporary|permanent)\) at (\w+), context"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:uri|url): (https?://[^\s,/]+)(/[^\s,]*)?"));
static PATH: LazyLock<Regex> = LazyLock::new(|| re(r"\bservice: s3, path: ([^\s,]+)"));
/// Where a library's rendering of an error starts (`Unexpected => …`,
/// `Unexpected, context: …`, `DataInvalid => …`): what comes before is
/// our own context.
static DUMP: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Z][A-Za-z]+(?: => |, context: \{)"));
/// iceberg-rust's rendering of a catalog answer it did not expect: the
/// token exchange (`code: 401 Unauthorized, operation: auth, url: …, json:
/// …`) or another call (`status: 401 Unauthorized, headers: …`).
static CATALOG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"context: \{ (?:code|status): (\d{3})[^,}]*(?:, operation: (\w+))?(?:, url: ([^\s,]+))?(?:, json: (.*?) \} =>)?",
    )
});

impl S3Failure {
    /// The S3 failure an error's text describes, if it is one.
    fn find(text: &str) -> Option<S3Failure> {
        if !text.contains("service: s3") && !text.contains("S3Error {") {
            return None;
        }
        let mut f = S3Failure {
            status: STATUS.captures(text).and_then(|c| c[1].parse().ok()),
            operation: OPERATION.captures(text).map(|c| c[1].to_string()),
            path: PATH.captures(text).map(|c| c[1].to_string()),
            unreachable: text.contains("error sending request")
                || text.contains("send http request"),
            ..S3Failure::default()
        };
        let mut resource = None;
        if let Some(c) = CODE.captures(text) {
            f.code = Some(c[1].to_string()).filter(|s| !s.is_empty());
            f.message = Some(c[2].to_string()).filter(|s| !s.is_empty());
            resource = Some(c[3].to_string()).filter(|s| !s.is_empty());
        }
        let mut url_path = None;
        if let Some(c) = URL.captures(text) {
            f.endpoint = Some(c[1].to_string());
            url_path = c.get(2).map(|m| m.as_str().to_string());
        }
        // Path-style requests and S3's `Resource` are `/bucket/key`.
        let bucket_of = |p: &str| {
            p.trim_start_matches('/')
                .split('/')
                .next()
                .filter(|b| !b.is_empty())
                .map(str::to_string)
        };
        f.bucket = resource.as_deref().and_then(bucket_of).or_else(|| {
            let (url_path, key) = (url_path?, f.path.as_deref()?);
            url_path
                .strip_suffix(key)
                .map(|p| p.trim_end_matches('/').to_string())
                .as_deref()
                .and_then(bucket_of)
        });
        (f.status.is_some() || f.code.is_some() || f.unreachable).then_some(f)
    }

    /// One line: what S3 said, on which object, and what to check.
    fn describe(&self) -> String {
        let answer = match (self.status, &self.code) {
            (Some(s), Some(c)) => format!("HTTP {s} {c}"),
            (Some(s), None) => format!("HTTP {s}"),
            (None, Some(c)) => c.clone(),
            (None, None) => "no answer".into(),
        };
        let mut place = Vec::new();
        if let (Some(op), Some(path)) = (&self.operation, &self.path) {
            place.push(format!("{op} of `{path}`"));
        }
        if let Some(e) = &self.endpoint {
            place.push(format!("endpoint {e}"));
        }
        if let Some(b) = &self.bucket {
            place.push(format!("bucket `{b}`"));
        }
        let place = if place.is_empty() {
            String::new()
        } else {
            format!(" ({})", place.join(", "))
        };
        let code = self.code.as_deref().unwrap_or_default();
        let (what, check) = if self.unreachable && self.status.is_none() {
            (
                "S3 did not answer".to_string(),
                format!("check {}", ENDPOINT.hint()),
            )
        } else if code == "SignatureDoesNotMatch" {
            (
                format!(
                    "S3 refused the credentials ({answer}: the secret key does not match the access key id)"
                ),
                format!("check {}", SECRET_KEY.hint()),
            )
        } else if code == "InvalidAccessKeyId" {
            (
                format!("S3 does not know the access key id ({answer})"),
                format!("check {}", KEY_ID.hint()),
            )
        } else if code == "NoSuchBucket" {
            (
                format!("S3 has no such bucket ({answer})"),
                format!(
                    "check the warehouse location (the action's `warehouse` input) and {}",
                    ENDPOINT.hint()
                ),
            )
        } else if matches!(self.status, Some(401 | 403)) {
            (
                format!("S3 refused the credentials ({answer})"),
                format!(
                    "check {} and {}, and that these keys may read and write the bucket",
                    KEY_ID.hint(),
                    SECRET_KEY.hint()
                ),
            )
        } else {
            let message = self
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            (format!("S3 answered {answer}{message}"), String::new())
        };
        if check.is_empty() {
            format!("{what}{place}")
        } else {
            format!("{what}{place}: {check}")
        }
    }
}

/// `message` with an S3 failure's dump replaced by [`S3Failure::describe`]
/// (our own context before it kept); `None` when it holds no S3 failure.
fn rewrite(message: &str) -> Option<String> {
    let failure = S3Failure::find(message)?;
    let context = DUMP
        .find(message)
        .map(|m| &message[..m.start()])
        .unwrap_or_default();
    Some(format!("{context}{}", failure.describe()))
}

/// The text of an error as it will be shown, with an S3 failure said in one
/// line (see [`S3Failure::describe`]); any other text unchanged.
pub(crate) fn explain_text(text: &str) -> String {
    rewrite(text).unwrap_or_else(|| text.to_string())
}

/// `error` with an S3 failure said in one line that names the setting to
/// check; the contexts around it kept. Other errors pass unchanged.
pub(crate) fn explain(error: anyhow::Error) -> anyhow::Error {
    if S3Failure::find(&format!("{error:#}")).is_none() {
        return error;
    }
    let mut parts = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if let Some(short) = rewrite(&text) {
            parts.push(short);
            break;
        }
        parts.push(text);
    }
    anyhow!("{}", parts.join(": "))
}

/// The text of an iceberg-rust error with the causes its own `Display`
/// leaves out: it shows only its first source (reqwest's "error sending
/// request for url (…)"), not what is under it ("operation timed out").
/// A request that ran out of the Iceberg target's `timeout_secs` says so,
/// naming the setting.
pub(crate) fn iceberg_text(error: &iceberg::Error) -> String {
    let mut text = error.to_string();
    let mut timed_out = false;
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        timed_out |= c
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout);
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    if timed_out {
        text.push_str(" (no answer within the Iceberg target's `timeout_secs`)");
    }
    text
}

/// The catalog's refusal of the first request (the token exchange, or the
/// first call with a bearer token) said in one line naming the setting;
/// `None` when `text` is not an HTTP refusal from the catalog.
/// `uri` is the catalog's, named when the error does not say which URL.
pub(crate) fn catalog_refusal(text: &str, bearer_token: bool, uri: &str) -> Option<String> {
    let c = CATALOG.captures(text)?;
    let status: u16 = c[1].parse().ok()?;
    if !matches!(status, 401 | 403) {
        return None;
    }
    let operation = c.get(2).map(|m| m.as_str()).unwrap_or_default();
    let url = c.get(3).map(|m| m.as_str()).unwrap_or(uri);
    // The OAuth2 error code (`invalid_client`), never the whole body.
    let code = c
        .get(4)
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j.as_str()).ok())
        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let check = if operation == "auth" || !bearer_token {
        "check the target's `credential` (`client_id:client_secret`: the action's \
         `catalog-credential` input, ICEBERG_CREDENTIAL)"
    } else {
        "check the target's `token` (the action's `catalog-token` input, ICEBERG_TOKEN)"
    };
    Some(format!(
        "the Iceberg catalog refused the credentials (HTTP {status}{code} at {url}): {check}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request to `url` by a client with a 300 ms timeout, wrapped as
    /// iceberg-catalog-rest wraps a failed send.
    fn failed_send(url: &str) -> iceberg::Error {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_millis(300))
                    .build()
                    .unwrap();
                client.get(url).send().await
            })
            .expect_err("the request must fail");
        iceberg::Error::new(iceberg::ErrorKind::Unexpected, "Failed to send request")
            .with_source(err)
    }

    #[test]
    fn a_catalog_request_that_timed_out_says_so_and_names_the_setting() {
        // Takes the connection and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/config", listener.local_addr().unwrap());
        let err = failed_send(&url);
        assert!(!err.to_string().contains("timed out"), "{err}");
        let text = iceberg_text(&err);
        assert!(text.starts_with(&err.to_string()), "{text}");
        assert!(
            text.contains("timed out") && text.contains("`timeout_secs`"),
            "{text}"
        );
        drop(listener);
    }

    #[test]
    fn a_refused_connection_is_not_called_a_timeout() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let text = iceberg_text(&failed_send(&format!("http://127.0.0.1:{port}/v1/config")));
        assert!(text.contains("error sending request"), "{text}");
        assert!(!text.contains("timeout_secs"), "{text}");
    }

    /// As iceberg-rust 0.10.1 + opendal 0.57 render a write SeaweedFS
    /// refused for a wrong secret key.
    const SIGNATURE: &str = r#"closing a data file: Unexpected => Failed to finish parquet writer., source: External: Unexpected => Failure in doing io operation, source: PermissionDenied (persistent) at write, context: { uri: http://127.0.0.1:18333/warehouse/main/numbers/data/data-05ad85dcefeafb67-0-00000.parquet, response: Parts { status: 403, version: HTTP/1.1, headers: {"accept-ranges": "bytes", "content-length": "454", "content-type": "application/xml", "server": "SeaweedFS 8000GB 4.48", "vary": "Origin", "x-amz-request-id": "18EC80C07E5FA1B923797BC5", "date": "Sun, 29 Nov 2026 11:31:55 GMT"} }, service: s3, path: main/numbers/data/data-05ad85dcefeafb67-0-00000.parquet, written: 631 } => S3Error { code: "SignatureDoesNotMatch", message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.", resource: "/warehouse/main/numbers/data/data-05ad85dcefeafb67-0-00000.parquet", request_id: "18EC80C07E5FA1B923797BC5" }"#;

    /// The same write to an endpoint nothing listens on.
    const UNREACHABLE: &str = "closing a data file: Unexpected => Failed to finish parquet writer., source: External: Unexpected => Failure in doing io operation, source: Unexpected (persistent) at write, context: { url: http://127.0.0.1:9/warehouse/main/numbers/data/data-bc72cd90310c51e2-0-00000.parquet, called: http_util::Client::send, service: s3, path: main/numbers/data/data-bc72cd90310c51e2-0-00000.parquet, written: 631 } => send http request, source: error sending request for url (http://127.0.0.1:9/warehouse/main/numbers/data/data-bc72cd90310c51e2-0-00000.parquet)";

    #[test]
    fn a_wrong_secret_key_names_the_setting_and_keeps_status_and_code() {
        let short = explain_text(SIGNATURE);
        assert_eq!(
            short,
            "closing a data file: S3 refused the credentials (HTTP 403 SignatureDoesNotMatch: \
             the secret key does not match the access key id) (write of \
             `main/numbers/data/data-05ad85dcefeafb67-0-00000.parquet`, endpoint \
             http://127.0.0.1:18333, bucket `warehouse`): check s3.secret_access_key (the \
             action's `s3-secret-access-key` input, AWS_SECRET_ACCESS_KEY)"
        );
        assert!(!short.contains("x-amz-request-id") && short.len() < SIGNATURE.len() / 2);
    }

    #[test]
    fn other_s3_answers_and_no_answer() {
        let key_id = SIGNATURE
            .replace("SignatureDoesNotMatch", "InvalidAccessKeyId")
            .replace("uri: http://127.0.0.1:18333/warehouse/", "uri: http://h:1/");
        let short = explain_text(&key_id);
        assert!(short.contains("S3 does not know the access key id (HTTP 403 InvalidAccessKeyId)"));
        assert!(short.contains("check s3.access_key_id (the action's `s3-access-key-id` input"));
        // The bucket from S3's `Resource` when the URL does not hold it.
        assert!(
            short.contains("endpoint http://h:1, bucket `warehouse`"),
            "{short}"
        );
        let denied = SIGNATURE.replace("SignatureDoesNotMatch", "AccessDenied");
        assert!(explain_text(&denied).contains(
            "S3 refused the credentials (HTTP 403 AccessDenied) (write of `main/numbers"
        ));
        let short = explain_text(UNREACHABLE);
        assert_eq!(
            short,
            "closing a data file: S3 did not answer (write of \
             `main/numbers/data/data-bc72cd90310c51e2-0-00000.parquet`, endpoint \
             http://127.0.0.1:9, bucket `warehouse`): check s3.endpoint (the action's \
             `s3-endpoint` input, AWS_ENDPOINT_URL_S3)"
        );
        let other = SIGNATURE
            .replace("status: 403", "status: 500")
            .replace("SignatureDoesNotMatch", "InternalError")
            .replace("The request signature", "We broke. The request signature");
        assert!(
            explain_text(&other)
                .starts_with("closing a data file: S3 answered HTTP 500 InternalError: We broke.")
        );
        assert_eq!(explain_text("no such table"), "no such table");
    }

    #[test]
    fn contexts_around_the_failure_are_kept() {
        let e = anyhow!("{SIGNATURE}").context("writing Iceberg table main.numbers");
        let short = format!("{:#}", explain(e));
        assert!(
            short.starts_with(
                "writing Iceberg table main.numbers: closing a data file: S3 refused the credentials (HTTP 403 SignatureDoesNotMatch"
            ),
            "{short}"
        );
        let plain = anyhow!("no such table").context("reading");
        assert_eq!(format!("{:#}", explain(plain)), "reading: no such table");
    }

    #[test]
    fn a_refused_catalog_credential_names_the_input() {
        let text = r#"Unexpected, context: { code: 401 Unauthorized, operation: auth, url: http://127.0.0.1:18181/v1/oauth/tokens, json: {"error":"invalid_client","error_description":"Invalid client credentials"} } => Received unexpected response, source: invalid type: string "invalid_client", expected struct ErrorModel at line 1 column 25"#;
        assert_eq!(
            catalog_refusal(text, false, "http://c").as_deref(),
            Some(
                "the Iceberg catalog refused the credentials (HTTP 401 invalid_client at \
                 http://127.0.0.1:18181/v1/oauth/tokens): check the target's `credential` \
                 (`client_id:client_secret`: the action's `catalog-credential` input, \
                 ICEBERG_CREDENTIAL)"
            )
        );
        // A refused bearer token, as the first call after it renders.
        let bearer = r#"Unexpected, context: { status: 401 Unauthorized, headers: {"content-length": "101", "www-authenticate": "Bearer"} } => Received response with unexpected status code"#;
        assert_eq!(
            catalog_refusal(bearer, true, "http://c").as_deref(),
            Some(
                "the Iceberg catalog refused the credentials (HTTP 401 at http://c): check the \
                 target's `token` (the action's `catalog-token` input, ICEBERG_TOKEN)"
            )
        );
        assert_eq!(
            catalog_refusal("connection refused", false, "http://c"),
            None
        );
        let missing = bearer.replace("status: 401", "status: 404");
        assert_eq!(catalog_refusal(&missing, true, "http://c"), None);
    }
}
