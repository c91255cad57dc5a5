//! [`Env`]: the environment a run sees, read once by the front-end and passed
//! down as data. The Action front-end lays its inputs over the process
//! environment as the standard variables (`ICEBERG_REST_ENDPOINT`,
//! `AWS_ACCESS_KEY_ID`, …) instead of writing them into the process, so
//! `${VAR}` references in `analytics.yml` and `env_var()` in SQL see the
//! inputs, and nothing round-trips through `std::env::set_var`. Imports
//! nothing of this crate.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;

/// Environment variables by name (values that are not UTF-8 are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The environment of this process.
    pub fn process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly `vars`.
    pub fn from_map(vars: BTreeMap<String, String>) -> Env {
        Env { vars }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value of `name` when set and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Whether `name` is set (even to an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Sets `name` in this map (never in the process).
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    /// Every variable, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Replaces `${NAME}` with the variable's value (`${NAME:-x}` falls back
    /// to `x` when it is unset or empty); a missing variable is an error
    /// naming it (never its value).
    pub fn expand(&self, text: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .with_context(|| format!("unclosed `${{` in `{text}`"))?;
            let (name, fallback) = match after[..end].split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (&after[..end], None),
            };
            let value = match (self.get(name), fallback) {
                (Some(v), None) => v.to_string(),
                (Some(v), Some(_)) if !v.is_empty() => v.to_string(),
                (_, Some(fallback)) => fallback.to_string(),
                (None, None) => bail!("environment variable `{name}` is not set"),
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The GitHub REST API base (`GITHUB_API_URL`, set by runners and by GHES;
    /// default `https://api.github.com`), without a trailing `/`.
    pub fn github_api_url(&self) -> String {
        self.non_empty("GITHUB_API_URL")
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references_from_the_map_not_the_process() {
        let mut env = Env::default();
        env.set("ANALYTICS_TEST_URI", "http://127.0.0.1:8181");
        assert_eq!(
            env.expand("${ANALYTICS_TEST_URI}/v1").unwrap(),
            "http://127.0.0.1:8181/v1"
        );
        assert_eq!(env.expand("${ANALYTICS_UNSET_X:-d}").unwrap(), "d");
        let err = env.expand("${ANALYTICS_UNSET_X}").unwrap_err();
        assert!(err.to_string().contains("ANALYTICS_UNSET_X"));
    }
}
