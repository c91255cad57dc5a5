//! dbt's `profiles.yml`, read the way dbt reads it: the project's `profile:`
//! in a `profiles.yml` found in `--profiles-dir`, else `DBT_PROFILES_DIR`,
//! else the project folder, else `~/.dbt/`. Like dbt, the YAML is read first
//! and its strings rendered as Jinja after, output by output, with
//! `env_var('X', 'default')` reading the run's [`Env`] (never the process):
//! an output that cannot render (a `prod` output whose variables a `ci` run
//! does not set) is an error only when it is the output used.
//! Each dbt-duckdb output (`type: duckdb`) becomes a DuckDB [`TargetYaml`];
//! an Iceberg catalog it attaches (`attach:` with `type: iceberg`) becomes an
//! Iceberg [`TargetYaml`], the run's `warehouse` when `analytics.yml` defines
//! none. Which target a run uses is decided in `plan.rs`.
//!
//! [`Render::Placeholders`] reads the same file for `analytics init`:
//! `env_var('X', 'd')` becomes `${X:-d}`, so a target written from it names
//! the variables the profile names and never holds their values.

use super::targets::TargetYaml;
use super::{read_yaml, relative};
use crate::environ::Env;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project's profile from `profiles.yml`.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (`profile:` in `dbt_project.yml`).
    pub name: String,
    /// The `profiles.yml` it was read from.
    pub file: PathBuf,
    /// The profile's `target:` (its default output).
    pub default_target: Option<String>,
    /// Its outputs by name.
    pub outputs: BTreeMap<String, ProfileOutput>,
}

/// One output of a profile.
#[derive(Debug, Clone)]
pub struct ProfileOutput {
    /// The output as a target (dbt-duckdb outputs only), or why it is not one.
    pub target: std::result::Result<TargetYaml, String>,
    /// What of the output is not used here, said when it is used.
    pub warnings: Vec<String>,
    /// The Iceberg catalog the output attaches (`attach:` with `type: iceberg`).
    pub catalog: Option<AttachedCatalog>,
}

/// An Iceberg REST catalog a dbt-duckdb output attaches.
#[derive(Debug, Clone)]
pub struct AttachedCatalog {
    /// Its `alias` (else its `path`), for the log.
    pub alias: String,
    /// The catalog as an Iceberg target, or why it cannot be one.
    pub target: std::result::Result<TargetYaml, String>,
}

/// How `env_var()` renders while the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// The value from the run's [`Env`] (or the default): what a run uses.
    Values,
    /// `${NAME}` / `${NAME:-default}`: what `analytics init` writes, so no
    /// value (a secret above all) is copied into a file.
    Placeholders,
}

impl Profile {
    /// Where this profile came from, for the log: `profiles.yml (profile `x`)`.
    pub fn origin(&self) -> String {
        format!("{} (profile `{}`)", self.file.display(), self.name)
    }

    /// The attached Iceberg catalog that stands for the `warehouse` target:
    /// the one of the profile's `target:` output, else of its only output
    /// attaching one. Returns the output's name with it.
    pub fn catalog(&self) -> Option<(&str, &AttachedCatalog)> {
        if let Some(name) = &self.default_target
            && let Some(c) = self.outputs.get(name).and_then(|o| o.catalog.as_ref())
        {
            return Some((name, c));
        }
        let mut with: Vec<(&str, &AttachedCatalog)> = self
            .outputs
            .iter()
            .filter_map(|(n, o)| o.catalog.as_ref().map(|c| (n.as_str(), c)))
            .collect();
        if with.len() == 1 { with.pop() } else { None }
    }

    /// The attached catalog as the `warehouse` target, with where it came
    /// from for the log; `None` when the profile attaches none.
    pub fn warehouse(&self) -> Option<Result<(&TargetYaml, String)>> {
        let (output, catalog) = self.catalog()?;
        let origin = format!(
            "{}, output `{output}`, attached Iceberg catalog `{}`",
            self.origin(),
            catalog.alias
        );
        Some(match &catalog.target {
            Ok(t) => Ok((t, origin)),
            Err(why) => Err(anyhow::anyhow!("{origin}: {why}")),
        })
    }

    /// The output `name` as a target, with its warnings; an error when it is
    /// not a dbt-duckdb output.
    pub fn target(&self, name: &str) -> Result<(&TargetYaml, &[String])> {
        let output = self.outputs.get(name).with_context(|| {
            format!(
                "{}: profile `{}` has no output `{name}`",
                self.file.display(),
                self.name
            )
        })?;
        match &output.target {
            Ok(t) => Ok((t, &output.warnings)),
            Err(why) => bail!(
                "{}: output `{name}` of profile `{}`: {why}",
                self.file.display(),
                self.name
            ),
        }
    }
}

/// The `profiles.yml` dbt would read for a project in `project_root`:
/// `profiles_dir` (`--profiles-dir`), `DBT_PROFILES_DIR`, the project
/// folder, then `$HOME/.dbt`.
pub fn locate(project_root: &Path, profiles_dir: Option<&Path>, env: &Env) -> Option<PathBuf> {
    if let Some(dir) = profiles_dir {
        return Some(dir.join("profiles.yml"));
    }
    if let Some(dir) = env.non_empty("DBT_PROFILES_DIR") {
        return Some(Path::new(dir).join("profiles.yml"));
    }
    let in_project = project_root.join("profiles.yml");
    if in_project.is_file() {
        return Some(in_project);
    }
    let home = env.non_empty("HOME")?;
    let in_home = Path::new(home).join(".dbt").join("profiles.yml");
    in_home.is_file().then_some(in_home)
}

/// The profile `name` for the project in `project_root`, when a
/// `profiles.yml` is found and holds it. A directory given explicitly
/// (`--profiles-dir`, `DBT_PROFILES_DIR`) must hold a `profiles.yml`.
pub fn load(
    project_root: &Path,
    name: &str,
    profiles_dir: Option<&Path>,
    env: &Env,
) -> Result<Option<Profile>> {
    load_as(project_root, name, profiles_dir, env, Render::Values)
}

/// [`load`], with `env_var()` rendered as `how` says.
pub fn load_as(
    project_root: &Path,
    name: &str,
    profiles_dir: Option<&Path>,
    env: &Env,
    how: Render,
) -> Result<Option<Profile>> {
    let explicit = profiles_dir.is_some() || env.non_empty("DBT_PROFILES_DIR").is_some();
    let Some(path) = locate(project_root, profiles_dir, env) else {
        return Ok(None);
    };
    if !path.is_file() {
        if explicit {
            bail!(
                "no profiles.yml in {} (from --profiles-dir or DBT_PROFILES_DIR)",
                path.parent().unwrap_or(&path).display()
            );
        }
        return Ok(None);
    }
    let shown = relative(project_root, &path);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", shown.display()))?;
    parse(&text, &shown, name, env, how)
}

/// Reads the text of a `profiles.yml`, then renders the profile's `target:`
/// and each output's strings (an output that does not render keeps why, as
/// an output that is not a target does).
fn parse(text: &str, file: &Path, name: &str, env: &Env, how: Render) -> Result<Option<Profile>> {
    let doc: Value = read_yaml(text, file)?;
    let Some(profile) = doc.get(name) else {
        return Ok(None);
    };
    let default_target =
        match profile.get("target") {
            Some(Value::String(s)) => Some(render(s, env, how).with_context(|| {
                format!("rendering {}: profile `{name}`'s target", file.display())
            })?),
            Some(other) if !other.is_null() => Some(other.to_string()),
            _ => None,
        };
    let mut outputs = BTreeMap::new();
    for (out_name, output) in profile
        .get("outputs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let read = match render_strings(output, env, how) {
            Ok(rendered) => read_output(&rendered, file, name, out_name)?,
            Err(e) => ProfileOutput {
                target: Err(format!("rendering it: {e:#}")),
                warnings: Vec::new(),
                catalog: None,
            },
        };
        outputs.insert(out_name.clone(), read);
    }
    Ok(Some(Profile {
        name: name.to_string(),
        file: file.to_path_buf(),
        default_target,
        outputs,
    }))
}

/// `value` with every string rendered as Jinja (keys are left as written).
fn render_strings(value: &Value, env: &Env, how: Render) -> Result<Value> {
    Ok(match value {
        // A rendered number or boolean is one (`threads: "{{ env_var('T', 4) }}"`
        // is 4), as YAML would read it unquoted.
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            let text = render(s, env, how)?;
            let t = text.trim();
            if let Ok(n) = t.parse::<i64>() {
                Value::from(n)
            } else if let Some(n) = t.parse::<f64>().ok().filter(|n| n.is_finite()) {
                Value::from(n)
            } else if let Ok(b) = t.parse::<bool>() {
                Value::from(b)
            } else {
                Value::String(text)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_strings(v, env, how))
                .collect::<Result<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_strings(v, env, how)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// One output: `type: duckdb` becomes a DuckDB target (path, schema,
/// settings); what dbt-duckdb does beyond that is named in warnings.
fn read_output(output: &Value, file: &Path, profile: &str, name: &str) -> Result<ProfileOutput> {
    let kind = output.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "duckdb" {
        return Ok(ProfileOutput {
            target: Err(format!(
                "type `{kind}` is not read here, only dbt-duckdb outputs (type: duckdb); \
                 define the target in analytics.yml (targets:)"
            )),
            warnings: Vec::new(),
            catalog: None,
        });
    }
    let text = |key: &str| -> Option<String> {
        match output.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let at = format!("{} (profile `{profile}`, output `{name}`)", file.display());
    let mut settings = BTreeMap::new();
    if let Some(map) = output.get("settings") {
        let map = map
            .as_object()
            .with_context(|| format!("{at}: `settings` must be a mapping"))?;
        settings.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut warnings = Vec::new();
    let schema = text("schema").unwrap_or_else(|| "main".into());
    let mut catalog = None;
    for attach in output
        .get("attach")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let what = attach.get("path").and_then(Value::as_str).unwrap_or("?");
        let iceberg = attach
            .get("type")
            .or_else(|| attach.get("options").and_then(|o| o.get("type")))
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("iceberg"));
        if !iceberg {
            warnings.push(format!("{at}: `attach` of `{what}` is not used here"));
            continue;
        }
        let alias = attach
            .get("alias")
            .and_then(Value::as_str)
            .unwrap_or(what)
            .to_string();
        if catalog.is_some() {
            warnings.push(format!(
                "{at}: a second attached Iceberg catalog (`{alias}`) is not used: the first \
                 is the warehouse"
            ));
            continue;
        }
        let target = attached_catalog(output, attach, &schema, &mut warnings)
            .map_err(|why| format!("attached Iceberg catalog `{alias}`: {why}"));
        if let Err(why) = &target {
            warnings.push(format!("{at}: {why}"));
        }
        catalog = Some(AttachedCatalog { alias, target });
    }
    // An attached catalog reads its credentials from `secrets:`.
    let secrets_used = catalog.as_ref().is_some_and(|c| c.target.is_ok());
    for key in [
        "extensions",
        "plugins",
        "filesystems",
        "secrets",
        "external_root",
    ] {
        if key == "secrets" && secrets_used {
            continue;
        }
        if output.get(key).is_some_and(|v| !v.is_null()) {
            warnings.push(format!(
                "{at}: `{key}` is not used here (DuckDB's built-in extensions are available)"
            ));
        }
    }
    // dbt's `threads` is how many models dbt builds at once, not DuckDB's
    // `threads` setting: it does not change what is built, so it is not mapped.
    Ok(ProfileOutput {
        target: Ok(TargetYaml::Duckdb {
            path: text("path").unwrap_or_else(|| ":memory:".into()),
            schema,
            threads: None,
            settings,
        }),
        warnings,
        catalog,
    })
}

/// A string value of a YAML mapping (numbers and booleans as text).
fn string_at(map: Option<&Value>, key: &str) -> Option<String> {
    match map?.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::String(_) | Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An `attach:` entry of `type: iceberg` as an Iceberg target, the way
/// dbt-duckdb writes it (DuckDB's `ATTACH 'warehouse' AS alias (TYPE
/// iceberg, ENDPOINT …, SECRET …)`): `path` is the warehouse, `options:
/// endpoint` the REST catalog, and the credentials are in the output's
/// `secrets:` — the `type: iceberg` one (named by the entry's `secret`, else
/// the only one) for the token or OAuth2 client, the `type: s3` one for the
/// storage. `endpoint`, `token`, `client_id`, `client_secret` written on the
/// entry or in its `options` are read too.
fn attached_catalog(
    output: &Value,
    attach: &Value,
    schema: &str,
    warnings: &mut Vec<String>,
) -> std::result::Result<TargetYaml, String> {
    use super::targets::{IcebergYaml, S3Yaml};
    let options = attach.get("options");
    let either = |key: &str| string_at(options, key).or_else(|| string_at(Some(attach), key));
    if let Some(kind) = either("endpoint_type") {
        return Err(format!(
            "endpoint_type `{kind}` is not supported: only Iceberg REST catalogs are (an \
             `endpoint` URL); define `targets: warehouse:` in analytics.yml"
        ));
    }
    let uri = either("endpoint")
        .or_else(|| either("uri"))
        .ok_or_else(|| {
            "it names no REST catalog: give `options: {endpoint: https://…}`".to_string()
        })?;
    let secrets: Vec<&Value> = output
        .get("secrets")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let of_type = |kind: &str| -> Vec<&Value> {
        secrets
            .iter()
            .copied()
            .filter(|s| {
                s.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
            })
            .collect()
    };
    let iceberg_secret = match either("secret") {
        Some(name) => Some(
            secrets
                .iter()
                .copied()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(name.as_str()))
                .ok_or_else(|| {
                    format!("it names secret `{name}`, which `secrets:` does not hold")
                })?,
        ),
        None => {
            let found = of_type("iceberg");
            (found.len() == 1).then(|| found[0])
        }
    };
    let auth = |key: &str| either(key).or_else(|| string_at(iceberg_secret, key));
    if auth("oauth2_server_uri").is_some() {
        warnings.push(
            "the attached Iceberg catalog's `oauth2_server_uri` is not used: the token is \
             asked of the catalog's own /v1/oauth/tokens"
                .into(),
        );
    }
    let credential = match (auth("client_id"), auth("client_secret")) {
        (Some(id), Some(secret)) => Some(format!("{id}:{secret}")),
        (None, None) => None,
        _ => return Err("`client_id` and `client_secret` go together".into()),
    };
    let s3 = of_type("s3").first().copied().map(|s| {
        let endpoint = string_at(Some(s), "endpoint").map(|e| {
            if e.contains("://") {
                e
            } else if string_at(Some(s), "use_ssl").as_deref() == Some("false") {
                format!("http://{e}")
            } else {
                format!("https://{e}")
            }
        });
        S3Yaml {
            endpoint,
            region: string_at(Some(s), "region"),
            access_key_id: string_at(Some(s), "key_id"),
            secret_access_key: string_at(Some(s), "secret"),
            path_style: string_at(Some(s), "url_style").map(|u| u == "path"),
        }
    });
    Ok(TargetYaml::Iceberg {
        catalog: Box::new(IcebergYaml {
            uri,
            warehouse: string_at(Some(attach), "path"),
            credential,
            token: auth("token"),
            s3: s3.unwrap_or_default(),
            properties: Default::default(),
            timeout_secs: None,
        }),
        schema: schema.to_string(),
        threads: None,
        settings: BTreeMap::new(),
    })
}

/// The file's text rendered as Jinja, with dbt's `env_var(name, default)`
/// reading `env` (or written as a `${NAME}` placeholder).
fn render(text: &str, env: &Env, how: Render) -> Result<String> {
    use minijinja::{Error, ErrorKind, Value as JValue};
    let mut jinja = minijinja::Environment::new();
    jinja.set_keep_trailing_newline(true);
    let run_env = env.clone();
    jinja.add_function(
        "env_var",
        move |name: String, default: Option<JValue>| -> std::result::Result<JValue, Error> {
            if how == Render::Placeholders {
                return Ok(JValue::from(match default {
                    Some(d) => format!("${{{name}:-{d}}}"),
                    None => format!("${{{name}}}"),
                }));
            }
            match run_env.get(&name) {
                Some(v) => Ok(JValue::from(v)),
                None => default.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "env_var('{name}'): the environment variable is not set and no \
                             default was given"
                        ),
                    )
                }),
            }
        },
    );
    Ok(jinja.render_str(text, ())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILES: &str = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('SHOP_DB', 'shop.duckdb') }}\"\n      schema: \"{{ env_var('DBT_SCHEMA', 'mart') }}\"\n      threads: 4\n      settings:\n        memory_limit: 1GB\n      extensions: [httpfs]\n    pg:\n      type: postgres\n";

    #[test]
    fn only_the_output_used_must_render_as_dbt_does() {
        // `prod` needs variables a ci run does not set: dbt renders only the
        // selected output, so `ci` works and `prod` says what is missing.
        let text = "shop:\n  target: \"{{ env_var('SHOP_TARGET', 'ci') }}\"\n  outputs:\n    ci:\n      type: duckdb\n      path: ':memory:'\n      settings:\n        threads: \"{{ env_var('SHOP_THREADS', '3') }}\"\n    prod:\n      type: duckdb\n      path: \"{{ env_var('SHOP_PROD_PATH') }}\"\n";
        let env = Env::default();
        let p = parse(
            text,
            Path::new("profiles.yml"),
            "shop",
            &env,
            Render::Values,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.default_target.as_deref(), Some("ci"));
        let (t, _) = p.target("ci").unwrap();
        let TargetYaml::Duckdb { path, settings, .. } = t else {
            panic!("not duckdb: {t:?}")
        };
        assert_eq!(path, ":memory:");
        // A rendered number is a number, as YAML reads it unquoted.
        assert_eq!(settings.get("threads"), Some(&Value::from(3)));
        let err = format!("{:#}", p.target("prod").unwrap_err());
        assert!(
            err.contains("output `prod`") && err.contains("env_var('SHOP_PROD_PATH')"),
            "{err}"
        );
    }

    #[test]
    fn duckdb_outputs_become_targets_with_env_var_from_the_run_env() {
        let mut env = Env::default();
        env.set("SHOP_DB", "other.duckdb");
        let p = parse(
            PROFILES,
            Path::new("profiles.yml"),
            "shop",
            &env,
            Render::Values,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.default_target.as_deref(), Some("dev"));
        let (t, warnings) = p.target("dev").unwrap();
        let TargetYaml::Duckdb {
            path,
            schema,
            settings,
            ..
        } = t
        else {
            panic!("not duckdb: {t:?}")
        };
        assert_eq!((path.as_str(), schema.as_str()), ("other.duckdb", "mart"));
        assert_eq!(settings.get("memory_limit"), Some(&Value::from("1GB")));
        assert!(warnings[0].contains("extensions"), "{warnings:?}");
        let err = p.target("pg").unwrap_err().to_string();
        assert!(err.contains("postgres"), "{err}");
        assert!(
            parse(PROFILES, Path::new("p.yml"), "other", &env, Render::Values)
                .unwrap()
                .is_none()
        );
    }

    const LAKE: &str = "nem:\n  target: prod\n  outputs:\n    dev:\n      type: duckdb\n    prod:\n      type: duckdb\n      path: nem.duckdb\n      schema: mart\n      extensions: [httpfs, iceberg]\n      secrets:\n        - type: iceberg\n          name: lake_secret\n          token: \"{{ env_var('LAKE_TOKEN') }}\"\n        - type: s3\n          key_id: \"{{ env_var('S3_KEY', 'minio') }}\"\n          secret: literal-s3-secret\n          region: us-east-1\n          endpoint: localhost:8333\n          use_ssl: false\n          url_style: path\n      attach:\n        - path: other.duckdb\n        - path: nem_warehouse\n          alias: lake\n          type: iceberg\n          secret: lake_secret\n          options:\n            endpoint: \"{{ env_var('LAKE_URI', 'https://catalog.example.com') }}\"\n";

    fn iceberg(t: &TargetYaml) -> (&super::super::targets::IcebergYaml, &str) {
        match t {
            TargetYaml::Iceberg {
                catalog, schema, ..
            } => (catalog, schema),
            other => panic!("not iceberg: {other:?}"),
        }
    }

    #[test]
    fn an_attached_iceberg_catalog_becomes_the_warehouse_target() {
        let mut env = Env::default();
        env.set("LAKE_TOKEN", "tok-123");
        let p = parse(LAKE, Path::new("profiles.yml"), "nem", &env, Render::Values)
            .unwrap()
            .unwrap();
        let (target, origin) = p.warehouse().unwrap().unwrap();
        assert!(
            origin.contains("output `prod`") && origin.contains("catalog `lake`"),
            "{origin}"
        );
        let (c, schema) = iceberg(target);
        assert_eq!(schema, "mart");
        assert_eq!(c.uri, "https://catalog.example.com");
        assert_eq!(c.warehouse.as_deref(), Some("nem_warehouse"));
        assert_eq!(c.token.as_deref(), Some("tok-123"));
        assert_eq!(c.credential, None);
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://localhost:8333"));
        assert_eq!(c.s3.access_key_id.as_deref(), Some("minio"));
        assert_eq!(c.s3.secret_access_key.as_deref(), Some("literal-s3-secret"));
        assert_eq!(c.s3.path_style, Some(true));
        // Resolved, the token is a Secret.
        let resolved = target.resolve(&env).unwrap();
        let shown = format!("{resolved:?}");
        assert!(!shown.contains("tok-123"), "{shown}");
        // The DuckDB output itself is still the DuckDB target; the other
        // attachment and the extensions are named, the secrets are used.
        let (_, warnings) = p.target("prod").unwrap();
        let all = warnings.join("\n");
        assert!(all.contains("`attach` of `other.duckdb`"), "{all}");
        assert!(all.contains("`extensions`"), "{all}");
        assert!(!all.contains("`secrets`"), "{all}");
    }

    #[test]
    fn placeholders_keep_variable_names_and_never_values() {
        let mut env = Env::default();
        env.set("LAKE_TOKEN", "tok-123");
        let p = parse(
            LAKE,
            Path::new("profiles.yml"),
            "nem",
            &env,
            Render::Placeholders,
        )
        .unwrap()
        .unwrap();
        let (target, _) = p.warehouse().unwrap().unwrap();
        let (c, _) = iceberg(target);
        assert_eq!(c.token.as_deref(), Some("${LAKE_TOKEN}"));
        assert_eq!(c.uri, "${LAKE_URI:-https://catalog.example.com}");
        assert_eq!(c.s3.access_key_id.as_deref(), Some("${S3_KEY:-minio}"));
        assert!(!format!("{p:?}").contains("tok-123"));
    }

    #[test]
    fn a_catalog_without_endpoint_or_with_another_endpoint_type_says_why() {
        let env = Env::default();
        let no_endpoint = "p:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      attach:\n        - path: wh\n          type: iceberg\n";
        let p = parse(
            no_endpoint,
            Path::new("profiles.yml"),
            "p",
            &env,
            Render::Values,
        )
        .unwrap()
        .unwrap();
        let err = p.warehouse().unwrap().unwrap_err().to_string();
        assert!(err.contains("endpoint") && err.contains("`wh`"), "{err}");
        let (_, warnings) = p.target("dev").unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("endpoint")),
            "{warnings:?}"
        );

        let glue = "p:\n  outputs:\n    dev:\n      type: duckdb\n      attach:\n        - path: wh\n          type: iceberg\n          options: {endpoint_type: glue}\n";
        let p = parse(glue, Path::new("profiles.yml"), "p", &env, Render::Values)
            .unwrap()
            .unwrap();
        // No `target:`, one output attaching a catalog: that one.
        let err = p.warehouse().unwrap().unwrap_err().to_string();
        assert!(err.contains("endpoint_type `glue`"), "{err}");

        let client = "p:\n  outputs:\n    dev:\n      type: duckdb\n      secrets:\n        - {type: iceberg, client_id: id1, client_secret: s1}\n      attach:\n        - {path: wh, type: iceberg, options: {endpoint: 'http://127.0.0.1:8181'}}\n";
        let p = parse(client, Path::new("profiles.yml"), "p", &env, Render::Values)
            .unwrap()
            .unwrap();
        let (t, _) = p.warehouse().unwrap().unwrap();
        assert_eq!(iceberg(t).0.credential.as_deref(), Some("id1:s1"));

        // Without an attached catalog there is no warehouse from the profile.
        let p = parse(
            PROFILES,
            Path::new("profiles.yml"),
            "shop",
            &env,
            Render::Values,
        )
        .unwrap()
        .unwrap();
        assert!(p.warehouse().is_none());
    }
}
